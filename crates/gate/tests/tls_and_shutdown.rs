//! Serving HTTPS from a given certificate, and shutting down without dropping in-flight work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use countersign_gate::server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let gate = Arc::new(
        server::open_gate(&server::OpenOptions {
            data_dir: dir.path().join("data"),
            database_url: None,
            log_key: None,
            origin: "tls.test/log".into(),
            config: countersign_gate::GateConfig::default(),
        })
        .await
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tls = server::Tls {
        cert: cert_path,
        key: key_path,
    };
    let served = tokio::spawn(server::serve(gate, listener, Some(tls), None, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let body = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok\n");
    // Plain HTTP on the TLS port does not get an answer from the API.
    let plain = reqwest::get(format!("http://localhost:{port}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let options = server::OpenOptions {
        data_dir: dir.path().to_path_buf(),
        database_url: None,
        log_key: None,
        origin: "shutdown.test/log".into(),
        config: countersign_gate::GateConfig::default(),
    };
    let gate = Arc::new(server::open_gate(&options).await.unwrap());
    gate.activate_policy(common::TEST_POLICY, "test")
        .await
        .unwrap();
    let token = gate
        .create_api_key("source", "scorer", "test")
        .await
        .unwrap()
        .token;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/outputs", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(gate, listener, None, None, async {
        let _ = stopped.await;
    }));
    let outputs: Vec<_> = (0..500)
        .map(|i| common::output(&format!("o-{i}"), &format!("APP-{i}"), 1000, 0.5, "approve"))
        .collect();
    let body = serde_json::to_vec(&outputs).unwrap();
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
    });
    // Ask for shutdown while the batch is being ingested.
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    stop.send(()).unwrap();
    let response = request.await.unwrap();
    served.await.unwrap().unwrap();
    let db = countersign_gate::db::Db::open_sqlite(&dir.path().join("gate.sqlite"))
        .await
        .unwrap();
    let mut tx = db.begin_read().await.unwrap();
    let stored: i64 = countersign_gate::on_tx!(&mut tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM outputs").fetch_one(conn).await.unwrap()
    });
    // An accepted request completes in full; none is ever half-applied.
    match response {
        Ok(resp) => {
            assert_eq!(resp.status(), 200);
            assert_eq!(stored, 500);
        }
        Err(_) => assert_eq!(stored, 0),
    }
}
