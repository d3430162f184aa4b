//! Operations endpoints: OpenAPI description, health, readiness, and JSON errors everywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestGate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_health_and_errors() {
    let g = TestGate::start(Backend::Sqlite).await;
    let (status, spec) = g.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/outputs",
        "/v1/claims",
        "/v1/decisions",
        "/v1/releases",
        "/v1/log/checkpoint",
        "/v1/log/proof/inclusion",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI description"
        );
    }
    assert_eq!(g.get("/healthz", None).await.0, 200);
    assert_eq!(g.get("/readyz", None).await.0, 200);
    // Unknown endpoints, wrong credentials and bad bodies all answer {code, message}.
    for (status, body) in [
        g.get("/v1/nope", None).await,
        g.get("/v1/me", Some("cs_dev_not-a-token")).await,
        g.post("/v1/claims", Some(&g.source_token), b"{}".to_vec())
            .await,
        g.post("/v1/enroll", None, b"{\"code\":1}".to_vec()).await,
    ] {
        assert!((400..500).contains(&status), "{status} {body}");
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
    // A source key cannot claim; a reviewer key cannot post outputs.
    let rita = g
        .desk("rita", countersign_gate::service::Role::Reviewer, 1.0)
        .await;
    let (status, body) = g
        .post("/v1/outputs", Some(&rita.token), b"{}".to_vec())
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "wrong_credential");
    // Enrollment codes work once.
    let created = g
        .gate
        .create_user(
            "once",
            countersign_gate::service::Role::Reviewer,
            1.0,
            "test",
        )
        .await
        .unwrap();
    g.enroll("once", &created.enrollment_code).await;
    let key = countersign_core::jws::generate_signing_key();
    let (status, body) = g
        .post_json(
            "/v1/enroll",
            None,
            &serde_json::json!({"code": created.enrollment_code, "public_key": countersign_core::jws::public_jwk(&key.verifying_key()), "device_name": "again"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    g.stop().await;
}

/// What axum and tower would answer on their own (a query or path that does not parse, a body
/// over the limit, a method the endpoint does not take) is `{code, message}` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_by_the_framework_are_json_too() {
    let config = countersign_gate::GateConfig {
        max_output_bytes: 1024,
        max_batch: 4,
        ..countersign_gate::GateConfig::default()
    };
    let g = TestGate::start_with(Backend::Sqlite, config, None).await;
    let token = g.source_token.clone();
    let consumer = g.consumer_token.clone();
    let before = g.get("/v1/log/checkpoint", None).await.1["size"].clone();
    let client = reqwest::Client::new();
    let big = || vec![b' '; 10_000];
    // Method, path, credential, body, and the status and code expected.
    type Case<'a> = (
        reqwest::Method,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case<'_>> = {
        use reqwest::Method;
        let (get, post) = (Method::GET, Method::POST);
        vec![
            (
                get.clone(),
                "/v1/log/entries?start=abc",
                Some(&token),
                vec![],
                400,
                "invalid_query",
            ),
            (
                get.clone(),
                "/v1/log/proof/consistency?from=1&to=-2",
                Some(&token),
                vec![],
                400,
                "invalid_query",
            ),
            (
                get.clone(),
                "/v1/log/proof/inclusion?index=x",
                Some(&token),
                vec![],
                400,
                "invalid_query",
            ),
            (
                get.clone(),
                "/v1/releases?after=minus",
                Some(&consumer),
                vec![],
                400,
                "invalid_query",
            ),
            (
                get,
                "/v1/leases?all=perhaps",
                Some(&token),
                vec![],
                400,
                "invalid_query",
            ),
            (
                post.clone(),
                "/v1/leases/not-a-uuid/withdraw?reason=x",
                Some(&token),
                vec![],
                400,
                "invalid_path",
            ),
            (
                post.clone(),
                "/v1/leases/not-a-uuid/reassign",
                Some(&token),
                b"{}".to_vec(),
                400,
                "invalid_path",
            ),
            (
                post.clone(),
                "/v1/outputs",
                Some(&token),
                big(),
                413,
                "invalid_body",
            ),
            (post, "/v1/claims", Some(&token), big(), 413, "invalid_body"),
            (
                Method::DELETE,
                "/v1/outputs",
                Some(&token),
                vec![],
                405,
                "method_not_allowed",
            ),
            (
                Method::PUT,
                "/healthz",
                None,
                vec![],
                405,
                "method_not_allowed",
            ),
        ]
    };
    for (method, path, credential, body, status, code) in cases {
        let what = format!("{method} {path}");
        let mut request = client
            .request(method, format!("{}{path}", g.base))
            .body(body);
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        let allow = response.headers().get("allow").cloned();
        let content_type = response.headers().get("content-type").cloned();
        let text = response.text().await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{what} answered {text:?}, not JSON"));
        assert_eq!(body["code"], code, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
        assert_eq!(
            content_type.unwrap().to_str().unwrap(),
            "application/json",
            "{what}"
        );
        if status == 405 {
            assert!(allow.is_some(), "{what}: a 405 still says what is allowed");
        }
    }
    // Nothing was logged by any of them.
    assert_eq!(g.get("/v1/log/checkpoint", None).await.1["size"], before);
    g.stop().await;
}

/// A connection that never finishes a request's head (a slow-loris client), or sends nothing
/// at all, is closed after the configured time instead of holding its socket for good; a
/// client that sends its request is served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_finishes_its_request_head_is_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let config = countersign_gate::GateConfig {
        request_head_timeout: std::time::Duration::from_millis(500),
        ..countersign_gate::GateConfig::default()
    };
    let g = TestGate::start_with(Backend::Sqlite, config, None).await;
    let address = g.base.trim_start_matches("http://").to_owned();
    for sent in [&b"GET /healthz HTTP/1.1\r\nHost: x\r\n"[..], b""] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(sent).await.unwrap();
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        // Whatever the gate sends before closing, the read ends with the connection.
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .unwrap_or_else(|_| panic!("after {sent:?} the connection was still open after 10 s"))
        .unwrap();
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(400),
            "closed too early"
        );
        assert!(
            !String::from_utf8_lossy(&answer).contains("200 OK"),
            "{answer:?}"
        );
    }
    assert_eq!(g.get("/healthz", None).await.0, 200);
    g.stop().await;
}

/// docs/openapi.json is generated from the code; this fails when it is stale.
/// Regenerate with `UPDATE_OPENAPI=1 cargo test -p countersign-gate --test operations`.
#[test]
fn committed_openapi_description_is_current() {
    use utoipa::OpenApi as _;
    let generated = countersign_gate::http::ApiDoc::openapi()
        .to_pretty_json()
        .unwrap()
        + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p countersign-gate --test operations"
    );
}
