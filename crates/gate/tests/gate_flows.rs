//! The gate's flows end to end over HTTP, each on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestGate, outcome_of, output};
use countersign_core::checkpoint::{NoteVerifier, verify_receipt};
use countersign_core::{DecisionKind, FieldEdit};
use countersign_gate::service::Role;
use serde_json::{Value, json};

async fn verify_receipts(gate: &TestGate, results: &[Value]) {
    let verifier = NoteVerifier::parse(&gate.gate.log_public_key()).unwrap();
    for r in results {
        let receipt: countersign_core::checkpoint::Receipt =
            serde_json::from_value(r["receipt"].clone()).unwrap();
        // The receipt must prove inclusion of exactly the entry the gate logged.
        let index = receipt.leaf_index;
        let mut tx = gate.gate.db.begin_read().await.unwrap();
        let entry = gate
            .gate
            .log
            .entries(&mut tx, index, index + 1)
            .await
            .unwrap()
            .pop()
            .unwrap()
            .1;
        verify_receipt(&receipt, &entry, &verifier, "test.countersign/log").unwrap();
        let logged: Value = serde_json::from_slice(&entry).unwrap();
        assert_eq!(logged["data"]["decision_id"], r["decision_id"]);
    }
}

both_backends!(auto_lane_releases_at_once, |g| {
    let results = g
        .ingest(&[output("o-auto", "APP-1", 5000, 0.95, "approve")])
        .await;
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(results[0]["lane"], "auto");
    let releases = g.releases().await;
    assert_eq!(releases.len(), 1);
    let release = &releases[0]["release"];
    assert_eq!(release["output_id"], "o-auto");
    assert_eq!(release["decided_by"], "policy");
    assert_eq!(release["rule"], "default");
    assert_eq!(release["outcome"]["amount"], 5000);
    assert_eq!(g.count("items").await, 0);
    g.stop().await;
});

both_backends!(review_lane_holds_until_approved, |g| {
    let results = g
        .ingest(&[output("o-rev", "APP-2", 5000, 0.5, "approve")])
        .await;
    assert_eq!(results[0]["lane"], "review");
    assert!(g.releases().await.is_empty());
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    let claimed = g.claim(&rita, 10).await;
    assert_eq!(claimed.len(), 1);
    let item = &claimed[0]["item"];
    assert_eq!(item["routing"]["rule"], "low-confidence");
    assert_eq!(item["proposal"]["amount"], 5000);
    // The evidence hash is the SHA-256 of the served item's canonical bytes.
    let canonical = countersign_core::canonical::to_canonical_bytes(item).unwrap();
    assert_eq!(
        countersign_core::sha256_hex(&canonical),
        claimed[0]["evidence_sha256"]
    );
    let jws = rita.approve(&claimed[0]);
    let results = g.push(&rita, &[jws]).await;
    assert_eq!(outcome_of(&results[0]), "applied", "{results:?}");
    verify_receipts(&g, &results).await;
    let releases = g.releases().await;
    assert_eq!(releases.len(), 1);
    let release = &releases[0]["release"];
    assert_eq!(release["decided_by"], "humans");
    assert_eq!(release["decisions"][0]["user"], "rita");
    assert_eq!(release["decisions"][0]["key_id"], rita.key_id.as_str());
    g.stop().await;
});

both_backends!(
    human_only_hides_the_proposal_and_needs_a_human_outcome,
    |g| {
        g.ingest(&[output("o-ho", "APP-3", 5000, 0.9, "refer")])
            .await;
        let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
        let claimed = g.claim(&rita, 1).await;
        let item = &claimed[0]["item"];
        assert!(item.get("proposal").is_none(), "{item}");
        assert!(item.get("confidence").is_none());
        assert!(
            item["evidence"]["attributions"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert!(item["evidence"].get("rationale").is_none());
        assert!(claimed[0]["current_outcome"].is_null());
        let approve = rita.approve(&claimed[0]);
        let results = g.push(&rita, &[approve]).await;
        assert_eq!(outcome_of(&results[0]), "rejected");
        assert_eq!(results[0]["outcome"]["code"], "nothing_to_approve");
        // The lease is still held; a complete human outcome is applied and released.
        let edits = vec![
            FieldEdit {
                field: "decision".into(),
                from: Value::Null,
                to: json!("decline"),
            },
            FieldEdit {
                field: "amount".into(),
                from: Value::Null,
                to: json!(0),
            },
            FieldEdit {
                field: "term_months".into(),
                from: Value::Null,
                to: json!(12),
            },
        ];
        let correct = rita.decide(
            &claimed[0],
            DecisionKind::Correct,
            edits,
            &["affordability"],
        );
        let results = g.push(&rita, &[correct]).await;
        assert_eq!(outcome_of(&results[0]), "applied", "{results:?}");
        let releases = g.releases().await;
        assert_eq!(releases[0]["release"]["outcome"]["decision"], "decline");
        g.stop().await;
    }
);

both_backends!(four_eyes_needs_two_distinct_reviewers, |g| {
    g.ingest(&[output("o-4e", "APP-4", 20_000, 0.9, "approve")])
        .await;
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let rob = g.desk("rob", Role::Reviewer, 25_000.0).await;
    let claimed = g.claim(&rita, 1).await;
    assert_eq!(claimed[0]["approvals_required"], 2);
    let results = g.push(&rita, &[rita.approve(&claimed[0])]).await;
    assert_eq!(outcome_of(&results[0]), "applied");
    assert!(g.releases().await.is_empty(), "one approval is not enough");
    // Rita cannot take the item again; Rob can.
    assert!(g.claim(&rita, 5).await.is_empty());
    let claimed_by_rob = g.claim(&rob, 5).await;
    assert_eq!(claimed_by_rob.len(), 1);
    assert_eq!(claimed_by_rob[0]["approvals_given"], 1);
    let results = g.push(&rob, &[rob.approve(&claimed_by_rob[0])]).await;
    assert_eq!(outcome_of(&results[0]), "applied");
    let releases = g.releases().await;
    assert_eq!(releases.len(), 1);
    let signers: Vec<&str> = releases[0]["release"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["user"].as_str().unwrap())
        .collect();
    assert_eq!(signers, ["rita", "rob"]);
    g.stop().await;
});

both_backends!(same_reviewer_twice_is_refused, |g| {
    g.ingest(&[output("o-twice", "APP-5", 20_000, 0.9, "approve")])
        .await;
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let first = g.claim(&rita, 1).await;
    assert_eq!(
        outcome_of(&g.push(&rita, &[rita.approve(&first[0])]).await[0]),
        "applied"
    );
    // A modified desk signs a second approval on the same lease: the lease is spent.
    let again = rita.approve(&first[0]);
    let results = g.push(&rita, &[again]).await;
    assert_eq!(outcome_of(&results[0]), "conflict");
    // Even with a fresh lease (forced through the supervisor API) it would not count twice.
    assert!(g.releases().await.is_empty());
    g.stop().await;
});

both_backends!(authority_limits_and_escalation_to_a_senior, |g| {
    g.ingest(&[output("o-auth", "APP-6", 12_000, 0.5, "approve")])
        .await;
    let junior = g.desk("junior", Role::Reviewer, 10_000.0).await;
    assert!(
        g.claim(&junior, 5).await.is_empty(),
        "above the junior's authority"
    );
    let rita = g.desk("rita", Role::Reviewer, 15_000.0).await;
    let claimed = g.claim(&rita, 5).await;
    assert_eq!(claimed.len(), 1);
    let escalate = rita.decide(
        &claimed[0],
        DecisionKind::Escalate,
        vec![],
        &["needs-senior"],
    );
    assert_eq!(outcome_of(&g.push(&rita, &[escalate]).await[0]), "applied");
    // Escalated items go to seniors only.
    assert!(g.claim(&rita, 5).await.is_empty());
    let rob = g.desk("rob", Role::Reviewer, 15_000.0).await;
    assert!(g.claim(&rob, 5).await.is_empty());
    let sam = g.desk("sam", Role::Senior, 100_000.0).await;
    let claimed = g.claim(&sam, 5).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0]["escalation_level"], 1);
    assert_eq!(
        outcome_of(&g.push(&sam, &[sam.approve(&claimed[0])]).await[0]),
        "applied"
    );
    assert_eq!(g.releases().await.len(), 1);
    // The gate checks authority itself when the decision arrives, not only at claim time:
    // the junior's limit is cut after the claim, and the signed approval is refused.
    g.ingest(&[output("o-auth2", "APP-7", 9_000, 0.5, "approve")])
        .await;
    let claimed = g.claim(&junior, 5).await;
    assert_eq!(claimed.len(), 1);
    {
        let mut tx = g.gate.db.begin_write().await.unwrap();
        countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE users SET authority_limit = 1000 WHERE name = 'junior'").execute(conn).await.unwrap();
        });
        tx.commit().await.unwrap();
    }
    let results = g.push(&junior, &[junior.approve(&claimed[0])]).await;
    assert_eq!(results[0]["outcome"]["code"], "authority_exceeded");
    assert_eq!(g.releases().await.len(), 1);
    let _ = rob.name.len();
    g.stop().await;
});

both_backends!(
    decisions_on_withdrawn_superseded_and_expired_leases_conflict,
    |g| {
        g.ingest(&[
            output("o-w", "APP-10", 5000, 0.5, "approve"),
            output("o-s", "APP-11", 5000, 0.5, "approve"),
        ])
        .await;
        let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
        let sue = g.desk("sue", Role::Supervisor, 0.0).await;
        let claimed = g.claim(&rita, 10).await;
        assert_eq!(claimed.len(), 2);
        let by_output = |id: &str| {
            claimed
                .iter()
                .find(|c| c["item"]["output_id"] == id)
                .unwrap()
                .clone()
        };
        let withdrawn = by_output("o-w");
        let superseded = by_output("o-s");
        // A supervisor withdraws one lease; a newer output supersedes the other item.
        let lease_id = withdrawn["lease"]["lease_id"].as_str().unwrap();
        let (status, body) = g
            .post_json(
                &format!("/v1/leases/{lease_id}/withdraw?reason=audit"),
                Some(&sue.token),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["lease"]["epoch"], 2);
        let results = g
            .ingest(&[output("o-s2", "APP-11", 6000, 0.5, "approve")])
            .await;
        assert_eq!(results[0]["item_version"], 2);
        let d1 = rita.approve(&withdrawn);
        let d2 = rita.approve(&superseded);
        let results = g.push(&rita, &[d1, d2]).await;
        assert_eq!(
            results[0]["outcome"],
            json!({"outcome": "conflict", "reason": "withdrawn"})
        );
        assert_eq!(
            results[1]["outcome"],
            json!({"outcome": "conflict", "reason": "superseded"})
        );
        verify_receipts(&g, &results).await;
        assert!(g.releases().await.is_empty());
        // The desk learns what happened to its leases.
        let (_, leases) = g.get("/v1/leases?all=true", Some(&rita.token)).await;
        let states: Vec<&str> = leases["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["state"].as_str().unwrap())
            .collect();
        assert!(
            states.contains(&"withdrawn") && states.contains(&"superseded"),
            "{states:?}"
        );
        g.stop().await;
    }
);

// A claim reads unleased items and lapsed leases through separate indexes and merges them:
// the queue's order holds across both, and an item on a live lease is never handed out.
both_backends!(
    a_claim_takes_lapsed_and_free_items_in_due_order_and_skips_live_leases,
    |g| {
        for (i, subject) in ["APP-Q1", "APP-Q2", "APP-Q3"].into_iter().enumerate() {
            g.ingest(&[output(&format!("o-q{i}"), subject, 5000, 0.5, "approve")])
                .await;
        }
        let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
        let sam = g.desk("sam", Role::Reviewer, 10_000.0).await;
        let subjects = |claimed: &[Value]| -> Vec<String> {
            claimed
                .iter()
                .map(|c| c["item"]["subject"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(subjects(&g.claim(&rita, 2).await), ["APP-Q1", "APP-Q2"]);
        // Rita's lease on the first item lapses; the second stays hers.
        {
            let mut tx = g.gate.db.begin_write().await.unwrap();
            countersign_gate::on_tx!(&mut tx, conn => {
                sqlx::query("UPDATE items SET lease_expires_at = 0 WHERE subject = 'APP-Q1'")
                    .execute(&mut *conn).await.unwrap();
                sqlx::query("UPDATE leases SET expires_at = 0 WHERE item_id = (SELECT item_id FROM items WHERE subject = 'APP-Q1')")
                    .execute(&mut *conn).await.unwrap();
            });
            tx.commit().await.unwrap();
        }
        assert_eq!(subjects(&g.claim(&sam, 3).await), ["APP-Q1", "APP-Q3"]);
        assert!(g.claim(&sam, 3).await.is_empty(), "everything is leased");
        g.stop().await;
    }
);

both_backends!(decision_on_an_expired_lease_conflicts, |g| {
    g.ingest(&[output("o-x", "APP-20", 5000, 0.5, "approve")])
        .await;
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    let claimed = g.claim(&rita, 1).await;
    // Time passes beyond the lease's deadline.
    {
        let mut tx = g.gate.db.begin_write().await.unwrap();
        countersign_gate::on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE leases SET expires_at = 0").execute(conn).await.unwrap();
        });
        tx.commit().await.unwrap();
    }
    let results = g.push(&rita, &[rita.approve(&claimed[0])]).await;
    assert_eq!(
        results[0]["outcome"],
        json!({"outcome": "conflict", "reason": "expired"})
    );
    verify_receipts(&g, &results).await;
    assert!(g.releases().await.is_empty());
    // The item went back to the queue and can be claimed again.
    assert_eq!(g.claim(&rita, 1).await.len(), 1);
    g.stop().await;
});

both_backends!(duplicate_pushes_have_no_double_effect, |g| {
    g.ingest(&[output("o-dup", "APP-30", 20_000, 0.9, "approve")])
        .await;
    let rita = g.desk("rita", Role::Reviewer, 25_000.0).await;
    let claimed = g.claim(&rita, 1).await;
    let jws = rita.approve(&claimed[0]);
    let first = g.push(&rita, std::slice::from_ref(&jws)).await;
    let entries_after_first = g.count("log_entries").await;
    let again = g.push(&rita, &[jws.clone(), jws.clone()]).await;
    for r in &again {
        assert_eq!(outcome_of(r), "applied");
        assert_eq!(r["repeated"], true);
        assert_eq!(
            r["receipt"]["leaf_index"],
            first[0]["receipt"]["leaf_index"]
        );
    }
    assert_eq!(g.count("decisions").await, 1);
    assert_eq!(g.count("log_entries").await, entries_after_first);
    assert!(g.releases().await.is_empty(), "one approval of two");
    g.stop().await;
});

both_backends!(forged_tampered_and_replayed_decisions_change_nothing, |g| {
    g.ingest(&[output("o-f", "APP-40", 5000, 0.5, "approve")])
        .await;
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    let mallory = g.desk("mallory", Role::Reviewer, 10_000.0).await;
    let claimed = g.claim(&rita, 1).await;
    let genuine = rita.approve(&claimed[0]);
    let before = g.count("log_entries").await;

    // Forged: signed by another key but naming Rita's key id.
    let forged = {
        let (header, rest) = genuine.split_once('.').unwrap();
        let payload = rest.split_once('.').unwrap().0;
        let forged_sig =
            countersign_core::jws::sign_compact(b"x", Some(&rita.key_id), &mallory.key);
        format!(
            "{header}.{payload}.{}",
            forged_sig.rsplit('.').next().unwrap()
        )
    };
    // Tampered: one character of the payload changed.
    let tampered = {
        let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
        let mut payload = parts[1].clone().into_bytes();
        payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
        parts[1] = String::from_utf8(payload).unwrap();
        parts.join(".")
    };
    let results = g.push(&rita, &[forged, tampered]).await;
    for r in &results {
        assert!(r.get("outcome").is_none(), "{r}");
        assert!(r["error"]["code"].is_string());
    }
    // Mallory replays Rita's genuine decision with her own credential.
    let replayed = g.push(&mallory, std::slice::from_ref(&genuine)).await;
    assert_eq!(replayed[0]["error"]["code"], "key_not_of_this_device");
    assert_eq!(g.count("log_entries").await, before);
    assert_eq!(g.count("decisions").await, 0);
    // The genuine one still applies, once.
    assert_eq!(
        outcome_of(&g.push(&rita, std::slice::from_ref(&genuine)).await[0]),
        "applied"
    );
    g.stop().await;
});

// Pushes of more than a few decisions have their rows read while the signatures are checked;
// they must be judged exactly like small ones.
/// A reviewer, Rita, who claimed `n` fresh outputs and approved them all: the approvals of the
/// first `n - 1`, and the last one with Mallory's signature under Rita's key id (a forgery)
/// next to the genuine last one.
async fn approvals_and_a_forgery(
    g: &TestGate,
    prefix: &str,
    n: usize,
) -> (common::Desk, Vec<String>, String, String) {
    let outputs: Vec<Value> = (0..n)
        .map(|i| {
            output(
                &format!("o-{prefix}-{i}"),
                &format!("APP-{prefix}-{i}"),
                5000,
                0.5,
                "approve",
            )
        })
        .collect();
    g.ingest(&outputs).await;
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    let mallory = g.desk("mallory", Role::Reviewer, 10_000.0).await;
    let claimed = g.claim(&rita, u32::try_from(n).unwrap()).await;
    assert_eq!(claimed.len(), n);
    let genuine: Vec<String> = claimed[..n - 1].iter().map(|c| rita.approve(c)).collect();
    let last = rita.approve(&claimed[n - 1]);
    let forged = {
        let (header, rest) = last.split_once('.').unwrap();
        let payload = rest.split_once('.').unwrap().0;
        let other = countersign_core::jws::sign_compact(b"x", Some(&rita.key_id), &mallory.key);
        format!("{header}.{payload}.{}", other.rsplit('.').next().unwrap())
    };
    (rita, genuine, last, forged)
}

both_backends!(a_large_mixed_push_is_judged_decision_by_decision, |g| {
    let (rita, genuine, ninth, forged) = approvals_and_a_forgery(&g, "LP", 9).await;
    let tampered = {
        let mut parts: Vec<String> = ninth.split('.').map(str::to_owned).collect();
        let mut payload = parts[1].clone().into_bytes();
        payload[12] = if payload[12] == b'A' { b'B' } else { b'A' };
        parts[1] = String::from_utf8(payload).unwrap();
        parts.join(".")
    };
    let mut push: Vec<String> = genuine.clone();
    push.insert(3, forged);
    push.insert(5, tampered);
    push.insert(7, "not a jws".to_owned());
    push.push(genuine[0].clone());
    let results = g.push(&rita, &push).await;
    assert_eq!(results.len(), 12);
    let applied: Vec<&Value> = results
        .iter()
        .filter(|r| outcome_of(r) == "applied" && r["repeated"] == false)
        .collect();
    assert_eq!(applied.len(), 8, "{results:?}");
    for position in [3, 5, 7] {
        assert!(
            results[position].get("outcome").is_none(),
            "{}",
            results[position]
        );
        assert!(results[position]["error"]["code"].is_string());
    }
    assert_eq!(results[11]["repeated"], true, "{}", results[11]);
    assert_eq!(results[11]["decision_id"], results[0]["decision_id"]);
    let entries = g.count("log_entries").await;
    // The same push again changes nothing.
    let again = g.push(&rita, &push).await;
    assert_eq!(again.iter().filter(|r| r["repeated"] == true).count(), 9);
    assert_eq!(g.count("log_entries").await, entries);
    assert_eq!(g.count("decisions").await, 8);
    assert_eq!(g.releases().await.len(), 8);
    g.stop().await;
});

// The signatures of a large push are checked in chunks on the blocking pool while the first
// decisions are already being judged: refusals before and at chunk boundaries, repeats inside
// the push and a second identical push must still come back in the pushed order, each judged
// once.
both_backends!(
    a_push_across_many_signature_chunks_keeps_every_decision_in_place,
    |g| {
        let (rita, genuine, _, forged) = approvals_and_a_forgery(&g, "CH", 101).await;
        // Device sequence number of each position; None where the push holds a refusal.
        let mut push: Vec<String> = genuine.clone();
        let mut seqs: Vec<Option<u64>> = (1..=100).map(Some).collect();
        for (position, refused) in [
            (31, forged.clone()),
            (32, "not a jws".to_owned()),
            (64, forged),
        ] {
            push.insert(position, refused);
            seqs.insert(position, None);
        }
        for repeated in [0, 50] {
            push.push(genuine[repeated].clone());
            seqs.push(Some(repeated as u64 + 1));
        }
        let results = g.push(&rita, &push).await;
        assert_eq!(results.len(), push.len());
        for (position, (result, seq)) in results.iter().zip(&seqs).enumerate() {
            assert_eq!(result["position"], position, "{result}");
            match seq {
                None => {
                    assert!(result.get("outcome").is_none(), "{position}: {result}");
                    assert!(result["error"]["code"].is_string(), "{position}: {result}");
                }
                Some(seq) => {
                    assert_eq!(result["device_seq"], *seq, "{position}: {result}");
                    assert_eq!(outcome_of(result), "applied", "{position}: {result}");
                    assert_eq!(result["repeated"], position >= 103, "{position}: {result}");
                }
            }
        }
        assert_eq!(g.count("decisions").await, 100);
        assert_eq!(g.releases().await.len(), 100);
        let entries = g.count("log_entries").await;
        let again = g.push(&rita, &push).await;
        assert_eq!(again.iter().filter(|r| r["repeated"] == true).count(), 102);
        assert_eq!(g.count("log_entries").await, entries);
        assert_eq!(g.count("decisions").await, 100);
        g.stop().await;
    }
);

both_backends!(revoked_key_is_refused, |g| {
    g.ingest(&[output("o-rk", "APP-50", 5000, 0.5, "approve")])
        .await;
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    let claimed = g.claim(&rita, 1).await;
    let jws = rita.approve(&claimed[0]);
    g.gate
        .revoke_key(&rita.key_id, "test", "laptop stolen")
        .await
        .unwrap();
    let results = g.push(&rita, &[jws]).await;
    assert_eq!(results[0]["outcome"]["code"], "key_revoked");
    assert!(g.releases().await.is_empty());
    g.stop().await;
});

both_backends!(bad_ingest_is_refused_and_stores_nothing, |g| {
    let token = g.source_token.clone();
    let before = g.count("log_entries").await;
    // Malformed JSON, duplicate keys, non-UTF-8, a lone surrogate.
    for body in [
        b"{\"v\":1,".to_vec(),
        br#"{"v":1,"v":1}"#.to_vec(),
        b"[{\"v\":1,\"output_id\":\"\xff\xfe\"}]".to_vec(),
        br#"{"output_id":"\ud800"}"#.to_vec(),
    ] {
        let (status, body) = g.post("/v1/outputs", Some(&token), body).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["code"].is_string() && body["message"].is_string());
    }
    // Deeply nested.
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut nested = output("o-deep", "APP-60", 5000, 0.9, "approve");
    nested["input"]["deep"] = deep;
    let results = g.ingest(&[nested]).await;
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["error"]["code"], "output_too_deep");
    // Hostile nesting beyond the parser's own limit.
    let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, _) = g.post("/v1/outputs", Some(&token), bomb.into_bytes()).await;
    assert_eq!(status, 400);
    // Oversized.
    let mut big = output("o-big", "APP-61", 5000, 0.9, "approve");
    big["evidence"]["rationale"] = json!("x".repeat(300 * 1024));
    let results = g.ingest(&[big]).await;
    assert_eq!(results[0]["error"]["code"], "output_too_large");
    // Schema: unknown field, wrong version, bad confidence, wrong source.
    let mut unknown = output("o-unk", "APP-62", 5000, 0.9, "approve");
    unknown["aproval"] = json!(true);
    let mut v2 = output("o-v2", "APP-63", 5000, 0.9, "approve");
    v2["v"] = json!(2);
    let conf = output("o-conf", "APP-64", 5000, 1.5, "approve");
    let mut other = output("o-src", "APP-65", 5000, 0.9, "approve");
    other["source"] = json!("someone-else");
    let results = g.ingest(&[unknown, v2, conf, other]).await;
    for r in &results {
        assert_eq!(r["status"], "rejected", "{r}");
    }
    assert_eq!(results[3]["error"]["code"], "source_mismatch");
    // No credential, a reviewer's credential.
    let (status, body) = g
        .post_json("/v1/outputs", None, &output("o-n", "A", 1, 0.9, "approve"))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(g.count("outputs").await, 0);
    assert_eq!(g.count("log_entries").await, before);
    g.stop().await;
});

both_backends!(ingest_is_idempotent_on_output_id, |g| {
    let o = output("o-idem", "APP-70", 5000, 0.5, "approve");
    let first = g.ingest(std::slice::from_ref(&o)).await;
    let second = g.ingest(std::slice::from_ref(&o)).await;
    assert_eq!(first[0]["status"], "accepted");
    assert_eq!(second[0]["status"], "duplicate");
    assert_eq!(second[0]["item_id"], first[0]["item_id"]);
    let mut changed = o.clone();
    changed["confidence"] = json!(0.4);
    let third = g.ingest(&[changed]).await;
    assert_eq!(third[0]["error"]["code"], "output_id_reused");
    assert_eq!(g.count("outputs").await, 1);
    assert_eq!(g.count("item_versions").await, 1);
    g.stop().await;
});

both_backends!(ingest_reads_canonical_and_other_spellings_alike, |g| {
    let token = g.source_token.clone();
    let canonical =
        |v: &Value| countersign_core::canonical::canonicalize(v.to_string().as_bytes()).unwrap();
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap();
    let a = output("o-spell-a", "APP-75", 5000, 0.5, "approve");
    let mut b = output("o-spell-b", "APP-76", 5000, 0.95, "approve");
    b["input"]["ratio"] = json!(100.0);
    let mut c = output("o-spell-c", "APP-77", 5000, 0.9, "approve");
    c["source"] = json!("someone-else");
    let batch = |parts: &[Vec<u8>]| {
        let mut body = b"[ ".to_vec();
        body.extend(parts.join(&b" ,\n"[..]));
        body.extend(b" ]");
        body
    };
    // One canonical, one pretty-printed, one canonical but invalid, in one batch.
    let (status, first) = g
        .post(
            "/v1/outputs",
            Some(&token),
            batch(&[canonical(&a), pretty(&b), canonical(&c)]),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let first = first["results"].as_array().unwrap().clone();
    assert_eq!(first[0]["status"], "accepted", "{first:?}");
    assert_eq!(first[1]["status"], "accepted", "{first:?}");
    assert_eq!(first[2]["status"], "rejected");
    assert_eq!(first[2]["output_id"], "o-spell-c");
    assert_eq!(first[2]["error"]["code"], "source_mismatch");
    // The same outputs in the other spelling are the same outputs: duplicates, not reuses.
    let (status, second) = g
        .post(
            "/v1/outputs",
            Some(&token),
            batch(&[pretty(&a), canonical(&b)]),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    let second = second["results"].as_array().unwrap().clone();
    for (again, before) in second.iter().zip(&first) {
        assert_eq!(again["status"], "duplicate", "{again}");
        assert_eq!(again["item_id"], before["item_id"]);
    }
    // A duplicate key inside an output still refuses the whole request.
    let (status, body) = g
        .post(
            "/v1/outputs",
            Some(&token),
            batch(&[canonical(&a), br#"{"v":1,"v":1}"#.to_vec()]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "malformed_json");
    assert_eq!(g.count("outputs").await, 2);
    g.stop().await;
});

both_backends!(log_proofs_and_checkpoints_verify, |g| {
    g.ingest(&[
        output("o-l1", "APP-80", 5000, 0.95, "approve"),
        output("o-l2", "APP-81", 5000, 0.5, "approve"),
    ])
    .await;
    let (_, first) = g.get("/v1/log/checkpoint", None).await;
    g.ingest(&[output("o-l3", "APP-82", 5000, 0.95, "approve")])
        .await;
    let (_, second) = g.get("/v1/log/checkpoint", None).await;
    let verifier = NoteVerifier::parse(second["log_public_key"].as_str().unwrap()).unwrap();
    let cp1 = countersign_core::checkpoint::verify_checkpoint(
        first["checkpoint"].as_str().unwrap(),
        &verifier,
        "test.countersign/log",
    )
    .unwrap();
    let cp2 = countersign_core::checkpoint::verify_checkpoint(
        second["checkpoint"].as_str().unwrap(),
        &verifier,
        "test.countersign/log",
    )
    .unwrap();
    assert!(cp2.size > cp1.size);
    let (_, proof) = g
        .get(
            &format!(
                "/v1/log/proof/consistency?from={}&to={}",
                cp1.size, cp2.size
            ),
            None,
        )
        .await;
    let proof: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(h.as_str().unwrap())
                .unwrap();
            countersign_core::merkle::hash_from_slice(&bytes).unwrap()
        })
        .collect();
    countersign_core::merkle::verify_consistency(cp1.size, cp2.size, &cp1.root, &cp2.root, &proof)
        .unwrap();
    let (status, body) = g
        .get(
            &format!("/v1/log/proof/consistency?from=1&to={}", cp2.size + 5),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    g.stop().await;
});

both_backends!(
    key_rotation_needs_proof_and_keeps_old_decisions_valid,
    |g| {
        g.ingest(&[
            output("o-k1", "APP-90", 5000, 0.5, "approve"),
            output("o-k2", "APP-91", 5000, 0.5, "approve"),
        ])
        .await;
        let mut rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
        let claimed = g.claim(&rita, 2).await;
        // Signed with the old key before the rotation, still in the outbox.
        let before_rotation = rita.approve(&claimed[0]);
        let new_key = countersign_core::jws::generate_signing_key();
        let new_kid = countersign_core::jws::key_id(&new_key.verifying_key());
        let payload = format!("countersign rotate-key {} {new_kid}", rita.device_id);
        // A proof signed by the old key is refused.
        let wrong =
            countersign_core::jws::sign_compact(payload.as_bytes(), Some(&new_kid), &rita.key);
        let request = |proof: String| json!({"public_key": countersign_core::jws::public_jwk(&new_key.verifying_key()), "proof": proof});
        let (status, body) = g
            .post_json("/v1/keys/rotate", Some(&rita.token), &request(wrong))
            .await;
        assert_eq!(status, 401, "{body}");
        let proof =
            countersign_core::jws::sign_compact(payload.as_bytes(), Some(&new_kid), &new_key);
        let (status, body) = g
            .post_json("/v1/keys/rotate", Some(&rita.token), &request(proof))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["key_id"], new_kid.as_str());
        rita.key = new_key;
        rita.key_id = new_kid;
        let after_rotation = rita.approve(&claimed[1]);
        let results = g.push(&rita, &[before_rotation, after_rotation]).await;
        assert_eq!(outcome_of(&results[0]), "applied", "{results:?}");
        assert_eq!(outcome_of(&results[1]), "applied", "{results:?}");
        g.stop().await;
    }
);

both_backends!(a_batch_can_supersede_its_own_item_and_an_earlier_one, |g| {
    let results = g
        .ingest(&[
            output("o-b1", "APP-95", 5000, 0.5, "approve"),
            output("o-b2", "APP-95", 6000, 0.5, "approve"),
            output("o-b3", "APP-96", 5000, 0.5, "approve"),
        ])
        .await;
    assert_eq!(results[0]["item_version"], 1);
    assert_eq!(results[1]["item_version"], 2);
    assert_eq!(results[1]["item_id"], results[0]["item_id"]);
    let later = g
        .ingest(&[output("o-b4", "APP-96", 7000, 0.5, "approve")])
        .await;
    assert_eq!(later[0]["item_version"], 2);
    assert_eq!(later[0]["item_id"], results[2]["item_id"]);
    let rita = g.desk("rita", Role::Reviewer, 10_000.0).await;
    let claimed = g.claim(&rita, 10).await;
    assert_eq!(claimed.len(), 2, "one held item per subject");
    let mut amounts: Vec<i64> = claimed
        .iter()
        .map(|c| c["item"]["proposal"]["amount"].as_i64().unwrap())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [6000, 7000], "the newest version is served");
    assert_eq!(g.count("item_versions").await, 4);
    g.stop().await;
});

both_backends!(a_single_bad_output_gets_its_own_4xx, |g| {
    let token = g.source_token.clone();
    let mut big = output("o-one-big", "APP-97", 5000, 0.9, "approve");
    big["evidence"]["rationale"] = json!("x".repeat(300 * 1024));
    let (status, body) = g.post_json("/v1/outputs", Some(&token), &big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "output_too_large");
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut nested = output("o-one-deep", "APP-98", 5000, 0.9, "approve");
    nested["input"]["deep"] = deep;
    let (status, body) = g.post_json("/v1/outputs", Some(&token), &nested).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "output_too_deep");
    let ok = output("o-one", "APP-99", 5000, 0.9, "approve");
    let (status, _) = g.post_json("/v1/outputs", Some(&token), &ok).await;
    assert_eq!(status, 200);
    let mut reused = ok.clone();
    reused["confidence"] = json!(0.1);
    let (status, body) = g.post_json("/v1/outputs", Some(&token), &reused).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(g.count("outputs").await, 1);
    g.stop().await;
});
