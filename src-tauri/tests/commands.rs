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

/// A TCP relay in front of the gate that can be cut: once cut, connecting to it is refused and
/// the connections it relayed are dropped, so anything still sent to the gate through it fails.
struct Relay {
    url: String,
    cut: tokio::sync::watch::Sender<bool>,
}

fn relay_to(gate: &Gate) -> Relay {
    let target = gate.base.trim_start_matches("http://").to_owned();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", std_listener.local_addr().unwrap());
    let (cut, cut_rx) = tokio::sync::watch::channel(false);
    let mut cut_listener = cut_rx.clone();
    tauri::async_runtime::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut inbound, _)) = accepted else { continue };
                    let target = target.clone();
                    let mut stop = cut_rx.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = stop.wait_for(|c| *c) => {}
                        }
                    });
                }
                // Dropping the listener closes the port: connections are refused from here on.
                _ = cut_listener.wait_for(|c| *c) => return,
            }
        }
    });
    Relay { url, cut }
}

#[test]
fn supervisor_commands_refuse_a_reviewer_without_asking_the_gate_and_serve_a_supervisor() {
    let gate = start_gate();
    let relay = relay_to(&gate);
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());

    // rita (a reviewer) enrolls through the relay, decides one item and syncs it.
    let rita = app.ok(
        "enroll",
        json!({"gateUrl": relay.url, "code": enrollment_code(&gate, "rita.reviewer"), "deviceName": "rita's laptop"}),
    );
    assert_eq!(rita["role"], "reviewer");
    app.ok("claim", json!({"limit": 10, "offlineHours": 8}));
    let queue = app.ok("queue", json!({}));
    let limit = rita["authority_limit"].as_f64().unwrap();
    let entry = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["lane"] == "review" && e["amount"].as_f64().is_some_and(|a| a <= limit))
        .unwrap_or_else(|| panic!("no review item within {limit} in {queue}"))
        .clone();
    let saved = app.ok(
        "decide",
        json!({"request": {"item_id": entry["item_id"], "kind": "approve", "corrections": [], "reason_codes": [], "comment": null}}),
    );
    app.ok("sync", json!({"onProgress": "__CHANNEL__:3"}));

    // With the gate out of reach, every supervisor command still answers `not_supervisor`: the
    // desk refused before asking the gate (asking would have failed as `gate_unreachable`).
    relay.cut.send(true).unwrap();
    let some_id = "0190a5f0-0000-7000-8000-000000000000";
    let out = tempfile::tempdir().unwrap();
    for (cmd, args) in [
        ("supervision_trail", json!({"itemId": entry["item_id"]})),
        ("supervision_decisions", json!({"filter": {}})),
        (
            "supervision_rereview",
            json!({"decisionId": saved["decision_id"], "reason": "look again"}),
        ),
        (
            "supervision_flag",
            json!({"decisionId": saved["decision_id"], "reason": "too fast"}),
        ),
        ("supervision_reviewers", json!({"filter": {}})),
        ("supervision_models", json!({})),
        ("supervision_override_rate", json!({"filter": {}})),
        ("supervision_corrected_fields", json!({"filter": {}})),
        (
            "supervision_reset_breaker",
            json!({"model": "credit@1", "reason": "fixed"}),
        ),
        ("supervision_leases", json!({"filter": {}})),
        (
            "supervision_withdraw",
            json!({"leaseId": some_id, "reason": "reviewer away"}),
        ),
        (
            "supervision_reassign",
            json!({"leaseId": some_id, "toUser": "rob.reviewer"}),
        ),
        (
            "bundle_export",
            json!({"dir": out.path(), "from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}),
        ),
        ("bundle_choose_dir", json!({})),
    ] {
        assert_error(&app.err(cmd, args), "not_supervisor");
    }
    // The log integrity check reads only the public log, so any desk may run it; without the
    // gate it says the gate is out of reach.
    assert_error(
        &app.err("log_check", json!({"onProgress": "__CHANNEL__:4"})),
        "gate_unreachable",
    );
    // The dialog plugin's own commands are not granted to the window: the shell opens the picker.
    let refused = app.err(
        "plugin:dialog|open",
        json!({"options": {"directory": true}}),
    );
    assert!(
        refused.as_str().is_some_and(|m| m.contains("not allowed")),
        "{refused}"
    );

    // sue (a supervisor) on the same app, straight to the gate.
    let sue = app.ok(
        "enroll",
        json!({"gateUrl": gate.base, "code": enrollment_code(&gate, "sue.supervisor"), "deviceName": "sue's laptop"}),
    );
    assert_eq!(sue["role"], "supervisor");
    let page = app.ok(
        "supervision_decisions",
        json!({"filter": {"reviewer": "rita.reviewer", "kind": "approve"}}),
    );
    let found = page["decisions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{page}");
    assert_eq!(found[0]["decision_id"], saved["decision_id"]);
    assert_eq!(
        app.ok(
            "supervision_decisions",
            json!({"filter": {"kind": "correct"}})
        )["decisions"],
        json!([])
    );

    // The trail is verified on this desk: every step proven, the decision's signature checked.
    let trail = app.ok("supervision_trail", json!({"itemId": entry["item_id"]}));
    assert_eq!(trail["verified"], true, "{trail}");
    assert_eq!(trail["checkpoint"]["signature"]["ok"], true);
    let steps = trail["steps"].as_array().unwrap();
    assert!(
        steps.iter().all(|s| s["inclusion"]["ok"] == true),
        "{trail}"
    );
    let decided = steps
        .iter()
        .find(|s| s["stage"] == "decision")
        .unwrap_or_else(|| panic!("no decision step in {trail}"));
    assert_eq!(decided["decision"]["decision_id"], saved["decision_id"]);
    assert_eq!(decided["decision"]["signature"]["ok"], true);
    assert_eq!(decided["decision"]["reviewer"], "rita.reviewer");

    // rita's offline leases, one withdrawn (a reason is required, checked before the gate).
    let leases = app.ok(
        "supervision_leases",
        json!({"filter": {"reviewer": "rita.reviewer"}}),
    );
    let leases = leases.as_array().unwrap();
    assert!(
        !leases.is_empty() && leases.iter().all(|l| l["offline"] == true),
        "{leases:?}"
    );
    let lease = &leases[0];
    assert_error(
        &app.err(
            "supervision_withdraw",
            json!({"leaseId": lease["lease_id"], "reason": "  "}),
        ),
        "invalid_input",
    );
    let withdrawn = app.ok(
        "supervision_withdraw",
        json!({"leaseId": lease["lease_id"], "reason": "rita is away this week"}),
    );
    assert_eq!(withdrawn["state"], "withdrawn");
    let left = app.ok(
        "supervision_leases",
        json!({"filter": {"reviewer": "rita.reviewer"}}),
    );
    assert_eq!(left.as_array().unwrap().len(), leases.len() - 1);
    // Another of rita's items goes to rob, once he has a desk; his lease is a new one.
    let moved = &left.as_array().unwrap()[0];
    let reassign = json!({"leaseId": moved["lease_id"], "toUser": "rob.reviewer"});
    let refused = app.err("supervision_reassign", reassign.clone());
    assert_error(&refused, "gate_refused");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no enrolled desk"),
        "{refused}"
    );
    let rob_dir = tempfile::tempdir().unwrap();
    tauri::async_runtime::block_on(countersign_desk::Desk::enroll(
        rob_dir.path(),
        &gate.base,
        &enrollment_code(&gate, "rob.reviewer"),
        "rob's laptop",
    ))
    .unwrap();
    let reassigned = app.ok("supervision_reassign", reassign);
    assert_eq!(reassigned["state"], "active");
    assert_eq!(reassigned["item_id"], moved["item_id"]);
    assert_ne!(reassigned["lease_id"], moved["lease_id"]);
    let robs = app.ok(
        "supervision_leases",
        json!({"filter": {"reviewer": "rob.reviewer"}}),
    );
    assert_eq!(robs.as_array().unwrap().len(), 1, "{robs}");

    // A flag is logged and shown with the decision in its trail; a re-review makes a QA item.
    let flag = app.ok(
        "supervision_flag",
        json!({"decisionId": saved["decision_id"], "reason": "approved in under a second"}),
    );
    assert_eq!(flag["flagged_by"], "sue.supervisor");
    let flagged = app.ok("supervision_trail", json!({"itemId": entry["item_id"]}));
    let flags = flagged["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "decision")
        .map(|s| s["decision"]["flags"].clone())
        .unwrap();
    assert_eq!(flags[0]["reason"], "approved in under a second", "{flags}");
    let rereview = app.ok(
        "supervision_rereview",
        json!({"decisionId": saved["decision_id"], "reason": "sample check"}),
    );
    assert_eq!(rereview["qa"]["origin"], "re_review");
    assert_eq!(rereview["qa"]["decision_id"], saved["decision_id"]);

    // rita's figures: one approval, applied.
    let reviewers = app.ok(
        "supervision_reviewers",
        json!({"filter": {"reviewer": "rita.reviewer", "from": null, "to": null, "fast_seconds": 5}}),
    );
    let stats = &reviewers["reviewers"][0];
    assert_eq!(stats["reviewer"], "rita.reviewer", "{reviewers}");
    assert_eq!(
        (stats["decisions"].clone(), stats["approve"].clone()),
        (json!(1), json!(1))
    );
    let fields = app.ok("supervision_corrected_fields", json!({"filter": {}}));
    assert_eq!(fields["models"], json!([]), "no corrections yet: {fields}");

    // Model statistics: rita's approval counts as a human decision without an override.
    let now = chrono::Utc::now();
    let (from, to) = (
        now - chrono::Duration::hours(2),
        now + chrono::Duration::hours(1),
    );
    let rates = app.ok(
        "supervision_override_rate",
        json!({"filter": {"bucket": "hour", "from": from, "to": to}}),
    );
    let total: u64 = rates["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap())
        .map(|p| p["decisions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "{rates}");
    let models = app.ok("supervision_models", json!({}));
    assert!(!models["models"].as_array().unwrap().is_empty(), "{models}");

    // The log integrity check, with its progress on the channel.
    app.progress.lock().unwrap().clear();
    let report = app.ok("log_check", json!({"onProgress": "__CHANNEL__:5"}));
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["trail_entries"].as_u64().unwrap() >= steps.len() as u64);
    let progress = app.progress.lock().unwrap().clone();
    assert!(
        progress.iter().any(|p| p["phase"] == "inclusion"),
        "{progress:?}"
    );

    // The audit bundle of the last hours, written into a new directory and verified there.
    let bundle = app.ok(
        "bundle_export",
        json!({"dir": out.path(), "from": from, "to": chrono::Utc::now()}),
    );
    let path = std::path::PathBuf::from(bundle["path"].as_str().unwrap());
    assert_eq!(path.parent(), Some(out.path()), "{bundle}");
    assert!(path.join("manifest.json").is_file(), "{bundle}");
    assert!(bundle["decisions"].as_u64().unwrap() >= 1, "{bundle}");
}
