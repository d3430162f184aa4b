//! Optional push delivery of releases to a downstream webhook, signed with HMAC-SHA256 and retried
//! with exponential backoff. Delivery is at least once: each request carries the release sequence
//! number as an idempotency key, and the durable cursor only moves after a 2xx answer.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::service::Gate;

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-countersign-signature";
/// Header carrying the release sequence number (the idempotency key).
pub const DELIVERY_HEADER: &str = "x-countersign-release-seq";

/// Where and how to deliver.
#[derive(Clone)]
pub struct Webhook {
    /// Names the durable cursor (`webhook:<name>`).
    pub name: String,
    pub url: String,
    pub secret: Vec<u8>,
    pub max_backoff: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`: what a receiver recomputes.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers releases in order until the task is dropped.
pub async fn deliver_forever(gate: Arc<Gate>, hook: Webhook) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        // A redirected POST comes back as a GET without the body (301, 302, 303), whose 2xx
        // would count as delivered: the release would be acknowledged and never received.
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built");
            return;
        }
    };
    let consumer = format!("webhook:{}", hook.name);
    let mut backoff = Duration::from_millis(100);
    loop {
        let page = match gate.pull_releases(&consumer, None, 100).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "webhook: reading releases failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if page.releases.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        for record in page.releases {
            let body = record.release.get().as_bytes().to_vec();
            loop {
                let sent = client
                    .post(&hook.url)
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, signature(&hook.secret, &body))
                    .header(DELIVERY_HEADER, record.release_seq.to_string())
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        backoff = Duration::from_millis(100);
                        break;
                    }
                    Ok(resp) => {
                        tracing::warn!(status = %resp.status(), seq = record.release_seq, "webhook refused a release; retrying")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, seq = record.release_seq, "webhook unreachable; retrying")
                    }
                }
                metrics::counter!("countersign_webhook_retries_total").increment(1);
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(hook.max_backoff);
            }
            if let Err(e) = gate.ack_releases(&consumer, record.release_seq).await {
                tracing::warn!(error = %e, "webhook: moving the cursor failed");
            }
        }
    }
}

/// Up to 50% random extra delay, so many gates retrying at once do not stampede.
fn jitter(base: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let extra = if getrandom::getrandom(&mut byte).is_ok() {
        base.mul_f64(f64::from(byte[0]) / 510.0)
    } else {
        Duration::ZERO
    };
    base + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
