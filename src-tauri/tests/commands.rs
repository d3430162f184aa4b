//! The app's commands through Tauri's real IPC layer (mock runtime, no webview), with the app's
//! own capability file and the desk on a real SQLite file, against a real gate on loopback seeded
//! with the German-credit demo, and the device key in the real Secret Service (`make test` runs
//! the tests inside a private D-Bus session with an unlocked gnome-keyring).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex, Once};

use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindow, WebviewWindowBuilder};

struct Gate {
    base: String,
    credentials: Value,
    _dir: tempfile::TempDir,
}

/// A gate on its own SQLite file, served on tauri's async runtime (the one the commands run on).
fn start_gate() -> Gate {
    tauri::async_runtime::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let options = countersign_gate::server::OpenOptions {
            data_dir: dir.path().join("gate"),
            database_url: None,
            log_key: Some(dir.path().join("log-key")),
            origin: "test.countersign/log".into(),
            config: countersign_gate::GateConfig::default(),
        };
        let gate = Arc::new(countersign_gate::server::open_gate(&options).await.unwrap());
        let credentials_path = dir.path().join("credentials.json");
        countersign_gate::demo::seed(&gate, 40, Some(&credentials_path))
            .await
            .unwrap();
        let credentials: Value =
            serde_json::from_slice(&std::fs::read(&credentials_path).unwrap()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tauri::async_runtime::spawn(async move {
            countersign_gate::server::serve(gate, listener, None, None, std::future::pending())
                .await
                .unwrap();
        });
        Gate {
            base,
            credentials,
            _dir: dir,
        }
    })
}

fn use_keyring() {
    static KEYRING: Once = Once::new();
    KEYRING.call_once(|| {
        countersign_desk::use_os_keyring().expect(
            "the command tests need the Secret Service: run them with `make test` (private D-Bus session with gnome-keyring)",
        );
    });
}

type Progress = Arc<Mutex<Vec<Value>>>;

struct TestApp {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    progress: Progress,
}

/// The real app (commands, state, setup, capabilities from tauri.conf.json) on the mock runtime.
fn app(data_dir: &Path) -> TestApp {
    use_keyring();
    // The shell's log lines show up with a failing test's output.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let progress: Progress = Arc::default();
    let seen = progress.clone();
    let builder = mock_builder().channel_interceptor(move |_webview, _id, _index, body| {
        if let tauri::ipc::InvokeResponseBody::Json(text) = body {
            seen.lock()
                .unwrap()
                .push(serde_json::from_str(text).unwrap());
        }
        true
    });
    let mut app = countersign_desk_app::configure(builder, data_dir.to_path_buf())
        .build(tauri::generate_context!())
        .unwrap();
    // The app's setup (window from the config, opening the last account) runs when the event
    // loop starts; one iteration of the mock loop does exactly that and returns.
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
    let window = match app.get_webview_window("main") {
        Some(w) => w,
        None => WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap(),
    };
    TestApp {
        _app: app,
        window,
        progress,
    }
}

impl TestApp {
    /// What the UI's `invoke(cmd, args)` gets: the value, or the rejection's value.
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args.clone())
            .unwrap_or_else(|e| panic!("{cmd} {args} failed: {e}"))
    }

    fn err(&self, cmd: &str, args: Value) -> Value {
        match self.invoke(cmd, args.clone()) {
            Ok(v) => panic!("{cmd} {args} should have failed, answered {v}"),
            Err(e) => e,
        }
    }
}

fn enrollment_code(gate: &Gate, user: &str) -> String {
    gate.credentials["users"][user]["enrollment_code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Errors reach the window as exactly `{code, message}`, with a message that says what to do.
fn assert_error(error: &Value, code: &str) {
    let object = error
        .as_object()
        .unwrap_or_else(|| panic!("error is not an object: {error}"));
    assert_eq!(object.len(), 2, "{error}");
    assert_eq!(error["code"], code, "{error}");
    assert!(
        error["message"].as_str().is_some_and(|m| m.len() > 10),
        "{error}"
    );
}

#[test]
fn before_enrolling_every_desk_command_answers_not_enrolled() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    assert_eq!(app.ok("accounts", json!({})), json!([]));
    for (cmd, args) in [
        ("status", json!({})),
        ("queue", json!({})),
        ("claim", json!({"limit": 5, "offlineHours": null})),
        (
            "item",
            json!({"itemId": "0190a5f0-0000-7000-8000-000000000000"}),
        ),
        ("decisions", json!({"limit": 10})),
        ("conflicts", json!({})),
        ("purge", json!({"retentionDays": 30})),
    ] {
        assert_error(&app.err(cmd, args), "not_enrolled");
    }
    // The capability file grants the desk's commands and event listening, nothing else of core.
    for (cmd, args) in [
        ("plugin:app|version", json!({})),
        ("plugin:window|close", json!({"label": "main"})),
        ("plugin:webview|print", json!({"label": "main"})),
    ] {
        let refused = app.err(cmd, args);
        assert!(
            refused.as_str().is_some_and(|m| m.contains("not allowed")),
            "{cmd}: {refused}"
        );
    }
    // A decision with a malformed body never reaches the desk: Tauri refuses to deserialize it.
    let refused = app.err("decide", json!({"request": {"item_id": "nope"}}));
    assert!(refused.is_string(), "{refused}");
}

#[test]
fn enroll_claim_decide_and_sync_through_the_commands() {
    let gate = start_gate();
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());

    // A wrong code is the gate's refusal, passed on as {code, message}.
    let wrong = app.err(
        "enroll",
        json!({"gateUrl": gate.base, "code": "not-a-code", "deviceName": "test laptop"}),
    );
    assert_error(&wrong, "gate_refused");

    let account = app.ok(
        "enroll",
        json!({"gateUrl": gate.base, "code": enrollment_code(&gate, "rita.reviewer"), "deviceName": "test laptop"}),
    );
    assert_eq!(account["user_name"], "rita.reviewer");
    assert_eq!(account["role"], "reviewer");
    let accounts = app.ok("accounts", json!({}));
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert_eq!(accounts[0]["account_id"], account["account_id"]);

    // The shell's own bound on a claim, before the desk is asked.
    assert_error(
        &app.err("claim", json!({"limit": 0, "offlineHours": null})),
        "invalid_input",
    );
    let claimed = app.ok("claim", json!({"limit": 15, "offlineHours": null}));
    assert!(claimed["claimed"].as_u64().unwrap() > 0, "{claimed}");
    let queue = app.ok("queue", json!({}));
    let queue = queue.as_array().unwrap();
    assert_eq!(queue.len() as u64, claimed["claimed"].as_u64().unwrap());

    // Approve the first review item within rita's authority.
    let limit = account["authority_limit"].as_f64().unwrap();
    let entry = queue
        .iter()
        .find(|e| e["lane"] == "review" && e["amount"].as_f64().is_some_and(|a| a <= limit))
        .unwrap_or_else(|| panic!("no review item within {limit} in {queue:?}"));
    let item_id = entry["item_id"].as_str().unwrap();
    let detail = app.ok("item", json!({ "itemId": item_id }));
    assert_eq!(detail["entry"]["item_id"], item_id);
    assert_eq!(detail["evidence_sha256"].as_str().unwrap().len(), 64);

    let request = json!({"item_id": item_id, "kind": "approve", "corrections": [], "reason_codes": [], "comment": null});
    let saved = app.ok("decide", json!({ "request": request }));
    assert_eq!(saved["item_id"], item_id);
    assert_eq!(saved["kind"], "approve");
    // A double key press cannot decide twice.
    assert_error(
        &app.err("decide", json!({ "request": request })),
        "already_decided",
    );
    // An escalation without a reason is refused before anything is signed.
    let other = queue
        .iter()
        .find(|e| e["item_id"] != item_id)
        .expect("a second item");
    assert_error(
        &app.err(
            "decide",
            json!({"request": {"item_id": other["item_id"], "kind": "escalate", "corrections": [], "reason_codes": [], "comment": null}}),
        ),
        "invalid_decision",
    );

    let report = app.ok("sync", json!({"onProgress": "__CHANNEL__:7"}));
    let decisions = app.ok("decisions", json!({"limit": 10}));
    let record = decisions
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["decision_id"] == saved["decision_id"])
        .unwrap_or_else(|| panic!("{decisions}"));
    // The background sync may have pushed it first; either way the gate applied it once.
    assert_eq!(record["state"], "applied", "{record} after {report}");
    assert!(
        report["pushed"].as_u64().unwrap() <= 1 && report["conflicts"] == 0,
        "{report}"
    );
    let progress = app.progress.lock().unwrap().clone();
    assert!(
        !progress.is_empty() && progress.iter().all(|p| p["phase"].is_string()),
        "{progress:?}"
    );

    let status = app.ok("status", json!({}));
    assert_eq!(status["pending_sync"], 0, "{status}");
    assert_eq!(status["account"]["account_id"], account["account_id"]);
    assert!(
        status["checkpoint"]["size"].as_u64().unwrap() > 0,
        "{status}"
    );
    assert_eq!(app.ok("conflicts", json!({})), json!([]));
}

#[test]
fn reopening_the_app_opens_the_last_account() {
    let gate = start_gate();
    let dir = tempfile::tempdir().unwrap();
    let account = {
        let first = app(dir.path());
        first.ok(
            "enroll",
            json!({"gateUrl": gate.base, "code": enrollment_code(&gate, "rob.reviewer"), "deviceName": null}),
        )
    };
    let second = app(dir.path());
    let status = second.ok("status", json!({}));
    assert_eq!(status["account"]["account_id"], account["account_id"]);
    assert_eq!(status["account"]["user_name"], "rob.reviewer");
}
