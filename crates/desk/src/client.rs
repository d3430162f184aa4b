//! The gate's HTTP API as the desk uses it. Transport failures and 5xx answers are retried with
//! exponential backoff and jitter; a 4xx answer is the gate's word and is returned at once.

use std::time::Duration;

use countersign_api::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DeskError;

/// Attempts per request before a sync gives up for now (the outbox keeps everything).
const ATTEMPTS: u32 = 4;

#[derive(Debug, Clone)]
pub struct GateClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A pause of `base * 2^attempt`, capped, with up to half of it added as random jitter so desks
/// that lost the gate together do not come back in lockstep.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let mut bytes = [0u8; 4];
    let jitter = if getrandom::getrandom(&mut bytes).is_ok() {
        f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
    } else {
        0.5
    };
    exp.mul_f64(1.0 + jitter / 2.0).min(cap)
}

enum Failure {
    Transient(String),
    Final(DeskError),
}

impl GateClient {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, DeskError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| DeskError::invalid_input(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, DeskError> {
        self.call(reqwest::Method::GET, path, None::<&()>).await
    }

    /// GET `path` with `query` as its query string (fields that are `None` are left out).
    pub async fn get_query<Q: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, DeskError> {
        let query = serde_urlencoded::to_string(query)
            .map_err(|e| DeskError::invalid_input(format!("query: {e}")))?;
        if query.is_empty() {
            self.get(path).await
        } else {
            self.get(&format!("{path}?{query}")).await
        }
    }

    /// Streams the body of a GET to `out`, once: a download that fails part-way is started over
    /// by the caller, never resumed into the same file. Returns the bytes written.
    pub async fn download(
        &self,
        path: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, DeskError> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| DeskError::unreachable(transport_text(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(refusal(status, path, &bytes));
        }
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| DeskError::unreachable(transport_text(&e)))?
        {
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        out.flush()?;
        Ok(written)
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, DeskError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, DeskError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| DeskError::invalid_input(format!("request body: {e}")))?;
        let mut attempt = 0;
        loop {
            match self.once(method.clone(), path, body.clone()).await {
                Ok(bytes) => {
                    return serde_json::from_slice(&bytes).map_err(|e| {
                        DeskError::refused(
                            "bad_response",
                            &format!("the gate's answer to {path} is not understood: {e}"),
                        )
                    });
                }
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::Transient(why)) => {
                    attempt += 1;
                    tracing::warn!(path, attempt, %why, "gate request failed");
                    if attempt >= ATTEMPTS {
                        return Err(DeskError::unreachable(why));
                    }
                    tokio::time::sleep(backoff(
                        attempt - 1,
                        Duration::from_millis(200),
                        Duration::from_secs(5),
                    ))
                    .await;
                }
            }
        }
    }

    async fn once(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transient(transport_text(&e)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Transient(transport_text(&e)))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            return Err(Failure::Transient(format!("the gate answered {status}")));
        }
        Err(Failure::Final(refusal(status, path, &bytes)))
    }
}

/// The gate's `{code, message}` of a 4xx answer, or the status when the body is not one.
fn refusal(status: reqwest::StatusCode, path: &str, body: &[u8]) -> DeskError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => DeskError::refused(&body.code, &body.message),
        Err(_) => DeskError::refused(
            "http_error",
            &format!("the gate answered {status} to {path}"),
        ),
    }
}

fn transport_text(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for attempt in 0..3 {
            let d = backoff(attempt, base, cap);
            let exp = base * (1 << attempt);
            assert!(d >= exp && d <= exp.mul_f64(1.5), "{attempt}: {d:?}");
        }
        assert_eq!(backoff(30, base, cap), cap);
    }
}
