//! Releases pushed to a webhook: HMAC-signed, retried until accepted, in order, cursor durable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use countersign_gate::server;
use countersign_gate::webhook::{self, Webhook};

/// Serves `g` with its webhook delivering to `url` (the durable cursor `webhook:loans`); send on
/// the first to stop, await the second.
fn serve_delivering_to(
    g: &common::TestGate,
    url: String,
    secret: Vec<u8>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve_with(
        g.gate.clone(),
        listener,
        None,
        None,
        Some(Webhook {
            name: "loans".into(),
            url,
            secret,
            max_backoff: std::time::Duration::from_millis(200),
        }),
        async {
            let _ = stopped.await;
        },
    ));
    (stop, served)
}

#[derive(Default)]
struct Receiver {
    attempts: usize,
    accepted: Vec<(u64, Vec<u8>, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_are_delivered_signed_and_retried() {
    let received = Arc::new(Mutex::new(Receiver::default()));
    let state = received.clone();
    // A receiver that fails its first two requests.
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let mut r = state.lock().unwrap();
                r.attempts += 1;
                if r.attempts <= 2 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let seq = headers[webhook::DELIVERY_HEADER]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let sig = headers[webhook::SIGNATURE_HEADER]
                    .to_str()
                    .unwrap()
                    .to_owned();
                r.accepted.push((seq, body.to_vec(), sig));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, app).await.unwrap() });

    let g = common::TestGate::start(common::Backend::Sqlite).await;
    let secret = b"a-long-enough-webhook-secret".to_vec();
    let (stop, served) = serve_delivering_to(&g, hook_url, secret.clone());
    let outputs: Vec<_> = (0..3)
        .map(|i| {
            common::output(
                &format!("o-{i}"),
                &format!("APP-{i}"),
                1000,
                0.95,
                "approve",
            )
        })
        .collect();
    g.ingest(&outputs).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while received.lock().unwrap().accepted.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "releases not delivered in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    {
        let r = received.lock().unwrap();
        assert!(
            r.attempts >= 5,
            "the first two attempts failed and were retried"
        );
        let seqs: Vec<u64> = r.accepted.iter().map(|(s, _, _)| *s).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "delivered in order");
        for (seq, body, sig) in &r.accepted {
            assert_eq!(
                sig,
                &webhook::signature(&secret, body),
                "HMAC over the exact body"
            );
            let release: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(release["release_seq"], *seq);
        }
    }
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
    g.stop().await;
}

/// A receiver whose URL redirects (say, http to https, or a moved path) must not have its
/// releases counted as delivered: following a 302 turns the POST into a GET without the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_a_delivery() {
    let posts = Arc::new(Mutex::new(0usize));
    let gets = Arc::new(Mutex::new(0usize));
    let (p, q) = (posts.clone(), gets.clone());
    let app = axum::Router::new()
        .route(
            "/moved",
            axum::routing::post(move || {
                let p = p.clone();
                async move {
                    *p.lock().unwrap() += 1;
                    (StatusCode::FOUND, [("location", "/landing")])
                }
            }),
        )
        .route(
            "/landing",
            axum::routing::get(move || {
                let q = q.clone();
                async move {
                    *q.lock().unwrap() += 1;
                    StatusCode::OK
                }
            }),
        );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/moved", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, app).await.unwrap() });

    let g = common::TestGate::start(common::Backend::Sqlite).await;
    let (stop, served) =
        serve_delivering_to(&g, hook_url, b"a-long-enough-webhook-secret".to_vec());
    g.ingest(&[common::output("o-1", "APP-1", 1000, 0.95, "approve")])
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while *posts.lock().unwrap() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the release was not retried"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(*gets.lock().unwrap(), 0, "the redirect was followed");
    let pending = g
        .gate
        .pull_releases("webhook:loans", None, 10)
        .await
        .unwrap();
    assert_eq!(
        pending.releases.len(),
        1,
        "the release is still waiting for its delivery"
    );
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
    g.stop().await;
}
