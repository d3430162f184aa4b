//! The device's signing key and API credential, kept only in the OS keyring (keyring-core's
//! default store). The keyring is called on a blocking thread: the Secret Service store talks
//! D-Bus synchronously.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_core::jws::SigningKey;
use keyring_core::{Entry, Error as KeyringError};
use zeroize::Zeroize as _;

use crate::error::{DeskError, ErrorCode};

const SERVICE: &str = "countersign-desk";

const NO_KEYRING: &str = "no OS keyring is available: on Linux log in to a desktop session or start gnome-keyring (a Secret Service); Countersign never stores keys in a file";

/// Sets the OS keyring as keyring-core's default store, unless a store was already chosen in
/// this process (e.g. an in-memory store in tests).
pub fn use_os_keyring() -> Result<(), DeskError> {
    if keyring_core::get_default_store().is_some() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| {
            DeskError::new(
                ErrorCode::KeyringUnavailable,
                format!("no Secret Service is running ({e}): log in to a desktop session or start gnome-keyring; Countersign never stores keys in a file"),
            )
        })?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(DeskError::new(
            ErrorCode::KeyringUnavailable,
            "this build has no keyring store for this operating system; Countersign never stores keys in a file",
        ))
    }
}

fn keyring_error(err: KeyringError, what: &str) -> DeskError {
    match err {
        KeyringError::NoStorageAccess(e) => DeskError::new(
            ErrorCode::KeyringLocked,
            format!(
                "the keyring is locked ({e}): unlock it (log in to the desktop session, or unlock the login keyring in your passwords manager) and try again"
            ),
        ),
        KeyringError::NoDefaultStore => DeskError::new(ErrorCode::KeyringUnavailable, NO_KEYRING),
        KeyringError::NoEntry => DeskError::new(
            ErrorCode::KeyringUnavailable,
            format!(
                "the {what} of this account is missing from the OS keyring: enroll this device again with a new code"
            ),
        ),
        other => DeskError::new(
            ErrorCode::KeyringUnavailable,
            format!(
                "the OS keyring failed while handling the {what} ({other}): check that a Secret Service (gnome-keyring) runs and is unlocked"
            ),
        ),
    }
}

fn entry(account_id: &str, name: &str, what: &str) -> Result<Entry, DeskError> {
    Entry::new(SERVICE, &format!("{account_id}/{name}")).map_err(|e| keyring_error(e, what))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DeskError> + Send + 'static,
) -> Result<T, DeskError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        DeskError::new(
            ErrorCode::KeyringUnavailable,
            format!("the keyring call did not finish: {e}"),
        )
    })?
}

/// Stores the signing key of an account.
pub async fn store_signing_key(account_id: &str, key: &SigningKey) -> Result<(), DeskError> {
    let account_id = account_id.to_owned();
    let mut text = URL_SAFE_NO_PAD.encode(key.to_bytes());
    blocking(move || {
        let result = entry(&account_id, "signing-key", "device key").and_then(|e| {
            e.set_password(&text)
                .map_err(|err| keyring_error(err, "device key"))
        });
        text.zeroize();
        result
    })
    .await
}

/// Loads the signing key of an account.
pub async fn load_signing_key(account_id: &str) -> Result<SigningKey, DeskError> {
    let account_id = account_id.to_owned();
    blocking(move || {
        let mut text = entry(&account_id, "signing-key", "device key")?
            .get_password()
            .map_err(|e| keyring_error(e, "device key"))?;
        let decoded = URL_SAFE_NO_PAD.decode(text.as_bytes());
        text.zeroize();
        let mut bytes = decoded.map_err(|_| {
            DeskError::new(
                ErrorCode::KeyringUnavailable,
                "the device key in the keyring is damaged: enroll this device again",
            )
        })?;
        let key = <[u8; 32]>::try_from(bytes.as_slice())
            .map(|seed| SigningKey::from_bytes(&seed))
            .map_err(|_| {
                DeskError::new(
                    ErrorCode::KeyringUnavailable,
                    "the device key in the keyring is damaged: enroll this device again",
                )
            });
        bytes.zeroize();
        key
    })
    .await
}

pub async fn store_token(account_id: &str, token: &str) -> Result<(), DeskError> {
    let account_id = account_id.to_owned();
    let token = token.to_owned();
    blocking(move || {
        entry(&account_id, "api-token", "API credential")?
            .set_password(&token)
            .map_err(|e| keyring_error(e, "API credential"))
    })
    .await
}

pub async fn load_token(account_id: &str) -> Result<String, DeskError> {
    let account_id = account_id.to_owned();
    blocking(move || {
        entry(&account_id, "api-token", "API credential")?
            .get_password()
            .map_err(|e| keyring_error(e, "API credential"))
    })
    .await
}

/// Removes both secrets of an account (used when an enrollment fails half way).
pub async fn forget(account_id: &str) {
    let account_id = account_id.to_owned();
    let _ = blocking(move || {
        for name in ["signing-key", "api-token"] {
            if let Ok(e) = entry(&account_id, name, name) {
                let _ = e.delete_credential();
            }
        }
        Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Once;

    static MOCK: Once = Once::new();

    pub(crate) fn mock_store() {
        MOCK.call_once(|| {
            keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap())
        });
    }

    #[tokio::test]
    async fn key_and_token_round_trip_through_the_keyring() {
        mock_store();
        let key = countersign_core::jws::generate_signing_key();
        store_signing_key("acct-1", &key).await.unwrap();
        store_token("acct-1", "tok").await.unwrap();
        assert_eq!(
            load_signing_key("acct-1").await.unwrap().to_bytes(),
            key.to_bytes()
        );
        assert_eq!(load_token("acct-1").await.unwrap(), "tok");
        forget("acct-1").await;
        let err = load_token("acct-1").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::KeyringUnavailable);
    }

    #[tokio::test]
    async fn a_locked_keyring_is_reported_as_locked() {
        mock_store();
        store_token("acct-2", "tok").await.unwrap();
        let e = Entry::new(SERVICE, "acct-2/api-token").unwrap();
        let cred: &keyring_core::mock::Cred = e.as_any().downcast_ref().unwrap();
        cred.set_error(KeyringError::NoStorageAccess("locked collection".into()));
        let err = load_token("acct-2").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::KeyringLocked);
        assert!(err.message.contains("unlock"), "{}", err.message);
        assert_eq!(load_token("acct-2").await.unwrap(), "tok");
    }
}
