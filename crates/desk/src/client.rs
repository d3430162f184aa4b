//! The gate's HTTP API as the desk uses it. Transport failures and 5xx answers are retried with
//! exponential backoff and jitter; a 4xx answer is the gate's word and is returned at once.

use std::time::Duration;

use countersign_api::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DeskError;

/// Attempts per request before a sync gives up for now (the outbox keeps everything).
const ATTEMPTS: u32 = 4;

/// The largest answer the desk reads. The largest the gate sends in earnest is a claim of 500
/// items at its largest output size (256 KB by default), about 130 MB; a gate that sends more
/// is broken or hostile, and reading on would only exhaust the laptop's memory.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The most of a refusal's body read for its `{code, message}`.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct GateClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    timeouts: Timeouts,
}

/// How long the desk waits on the gate.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Longest silence while waiting for or reading an answer. Longer than the gate's own 30 s
    /// bound on a request, so its 408 arrives rather than a cut connection.
    pub idle: Duration,
    /// Longest an API call may take in all. A download has no such bound (an audit bundle may
    /// take minutes over a slow link), only `idle`.
    pub call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(45),
            call: Duration::from_secs(120),
        }
    }
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
        Self::with_timeouts(base, token, Timeouts::default())
    }

    pub fn with_timeouts(
        base: &str,
        token: Option<String>,
        timeouts: Timeouts,
    ) -> Result<Self, DeskError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.idle)
            // The gate never redirects; following one would carry the credential to wherever
            // the answer points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DeskError::invalid_input(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            timeouts,
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
            let bytes = read_limited(response, MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
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
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(self.timeouts.call);
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
        if status.is_success() {
            return read_limited(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| match e {
                    ReadError::Transport(why) => Failure::Transient(why),
                    ReadError::TooLarge => Failure::Final(DeskError::refused(
                        "response_too_large",
                        &format!(
                            "the gate's answer to {path} is larger than {MAX_RESPONSE_BYTES} bytes; nothing of it was used"
                        ),
                    )),
                });
        }
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            return Err(Failure::Transient(format!("the gate answered {status}")));
        }
        let bytes = read_limited(response, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        Err(Failure::Final(refusal(status, path, &bytes)))
    }
}

enum ReadError {
    Transport(String),
    TooLarge,
}

/// Reads a body of at most `limit` bytes. A declared length over the limit is refused before
/// anything is read, an undeclared one as soon as it passes the limit.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|declared| declared > limit as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ReadError::Transport(transport_text(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

    /// What a broken or hostile gate on loopback sends after reading a request's head.
    #[derive(Clone, Copy)]
    enum Answer {
        /// `200`, declaring a body of 1 TiB, then a few bytes.
        DeclaredHuge,
        /// `200`, a chunked body that never ends.
        Endless,
        /// `400`, a chunked body that never ends.
        EndlessRefusal,
        /// `200` with a body that is not JSON.
        NotJson,
        /// `200`, then the body `[1,1,…]` one byte every `every`, `count` ones in all.
        Trickle { count: usize, every: Duration },
        /// Nothing at all: the connection stays open and silent.
        Silent,
        /// `302` to `Location`.
        Redirect(std::net::SocketAddr),
    }

    /// `future`'s output, or a failure saying `why` it should have ended within `secs`.
    async fn within<T>(secs: u64, why: &str, future: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(secs), future)
            .await
            .expect(why)
    }

    async fn hostile_gate(answer: Answer) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let chunked = |status: &str| {
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                        )
                    };
                    let start = match answer {
                        Answer::Trickle { .. } => chunked("200 OK"),
                        Answer::Silent => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        Answer::Redirect(to) => format!(
                            "HTTP/1.1 302 Found\r\nlocation: http://{to}/v1/log/checkpoint\r\ncontent-length: 0\r\n\r\n"
                        ),
                        Answer::DeclaredHuge => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1099511627776\r\n\r\n{\"checkpoint\":\"".to_owned(),
                        Answer::Endless => chunked("200 OK"),
                        Answer::EndlessRefusal => chunked("400 Bad Request"),
                        Answer::NotJson => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n<html>hi!".to_owned(),
                    };
                    if socket.write_all(start.as_bytes()).await.is_err() {
                        return;
                    }
                    if let Answer::Trickle { count, every } = answer {
                        let mut body = vec![b'['];
                        body.extend(std::iter::repeat_n(b"1,".as_slice(), count).flatten());
                        body.pop();
                        body.push(b']');
                        for byte in body {
                            tokio::time::sleep(every).await;
                            let chunk = [b'1', b'\r', b'\n', byte, b'\r', b'\n'];
                            if socket.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                        let _ = socket.write_all(b"0\r\n\r\n").await;
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    } else if matches!(answer, Answer::Endless | Answer::EndlessRefusal) {
                        let mut chunk = b"10000\r\n".to_vec();
                        chunk.extend(std::iter::repeat_n(b' ', 0x10000));
                        chunk.extend_from_slice(b"\r\n");
                        while socket.write_all(&chunk).await.is_ok() {}
                    } else {
                        let mut rest = Vec::new();
                        let _ = socket.read_to_end(&mut rest).await;
                    }
                });
            }
        });
        base
    }

    #[tokio::test]
    async fn an_answer_declared_larger_than_the_limit_is_refused_unread() {
        let client = GateClient::new(&hostile_gate(Answer::DeclaredHuge).await, None).unwrap();
        let err = within(
            10,
            "refused at once, not after reading",
            client.get::<serde_json::Value>("/v1/log/checkpoint"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::GateRefused, "{err}");
        assert!(err.message.starts_with("response_too_large:"), "{err}");
        assert!(err.message.contains("/v1/log/checkpoint"), "{err}");
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_limit() {
        let base = hostile_gate(Answer::Endless).await;
        let http = reqwest::Client::new();
        let response = http.get(format!("{base}/v1/leases")).send().await.unwrap();
        let limit = 4 * 1024 * 1024;
        let read = within(
            30,
            "the read stops at the limit",
            read_limited(response, limit),
        )
        .await;
        assert!(matches!(read, Err(ReadError::TooLarge)));
    }

    #[tokio::test]
    async fn an_endless_refusal_is_read_only_as_far_as_its_code_could_be() {
        let client = GateClient::new(&hostile_gate(Answer::EndlessRefusal).await, None).unwrap();
        let err = within(
            30,
            "the refusal is read only up to its limit",
            client.post::<_, serde_json::Value>("/v1/decisions", &serde_json::json!({})),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::GateRefused, "{err}");
        assert!(err.message.starts_with("http_error:"), "{err}");
        assert!(err.message.contains("400"), "{err}");
    }

    #[tokio::test]
    async fn an_answer_that_is_not_json_is_named_as_such() {
        let client = GateClient::new(&hostile_gate(Answer::NotJson).await, None).unwrap();
        let err = client
            .get::<serde_json::Value>("/v1/log/checkpoint")
            .await
            .unwrap_err();
        assert!(err.message.starts_with("bad_response:"), "{err}");
    }

    fn short_timeouts() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(2),
            idle: Duration::from_millis(400),
            call: Duration::from_millis(600),
        }
    }

    #[tokio::test]
    async fn a_download_may_outlast_a_call_as_long_as_data_keeps_coming() {
        let base = hostile_gate(Answer::Trickle {
            count: 8,
            every: Duration::from_millis(100),
        })
        .await;
        let client = GateClient::with_timeouts(&base, None, short_timeouts()).unwrap();
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let written = client
            .download("/v1/supervision/bundle", &mut out)
            .await
            .unwrap();
        assert!(
            started.elapsed() > short_timeouts().call,
            "the test must outlast a call"
        );
        assert_eq!(written, 17);
        assert_eq!(out, b"[1,1,1,1,1,1,1,1]");

        // The same trickle is too slow for an API call, which gives up and says so.
        let err = client
            .get::<serde_json::Value>("/v1/leases")
            .await
            .unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::GateUnreachable, "{err}");
    }

    #[tokio::test]
    async fn a_gate_that_falls_silent_is_given_up_on() {
        let base = hostile_gate(Answer::Silent).await;
        let client = GateClient::with_timeouts(&base, None, short_timeouts()).unwrap();
        let mut out = Vec::new();
        let err = within(
            10,
            "the idle timeout ends a silent download",
            client.download("/v1/supervision/bundle", &mut out),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::GateUnreachable, "{err}");
        let err = within(
            20,
            "a silent gate ends a call after its attempts",
            client.get::<serde_json::Value>("/v1/leases"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::GateUnreachable, "{err}");
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_the_credential_stays_home() {
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = hostile_gate(Answer::Redirect(elsewhere.local_addr().unwrap())).await;
        let client = GateClient::new(&base, Some("the-desk-credential".into())).unwrap();
        let err = client
            .get::<serde_json::Value>("/v1/log/checkpoint")
            .await
            .unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::GateRefused, "{err}");
        assert!(err.message.contains("302"), "{err}");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), elsewhere.accept())
                .await
                .is_err(),
            "the desk followed the redirect"
        );
    }
}
