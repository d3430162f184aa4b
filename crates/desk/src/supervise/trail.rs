//! Checking a decision trail on the desk: the gate's word is not taken for any of it. The
//! checkpoint must be signed by the log key pinned at enrollment, every entry's bytes must be
//! canonical and proven into that checkpoint's tree, every part of the trail must agree with the
//! entry it points at, and every decision's JWS must verify with a key that a proven entry of the
//! same log enrolled.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use countersign_api::supervision::{ItemTrail, ProvenEntry, TrailDecision};
use countersign_core::checkpoint::Checkpoint;
use countersign_core::merkle::{Hash, hash_from_slice, leaf_hash, verify_inclusion};
use countersign_core::{canonical, jws, sha256_hex};
use serde_json::Value;

use super::types::{
    Check, DecisionCheck, TrailCheckpoint, TrailItem, TrailStage, TrailStep, TrailView,
};

/// An entry whose bytes were read, with what its own proof showed.
struct Proven {
    value: Option<Value>,
    inclusion: Check,
}

/// Checks `entry`'s bytes (canonical, naming its index and kind) and its inclusion proof
/// against `checkpoint`.
fn prove(entry: &ProvenEntry, checkpoint: Option<&Checkpoint>) -> Proven {
    let bytes = entry.entry.get().as_bytes();
    if let Err(e) = canonical::check_canonical(bytes) {
        return Proven {
            value: serde_json::from_slice(bytes).ok(),
            inclusion: Check::fail(format!("the entry is not canonical JSON: {e}")),
        };
    }
    let value: Option<Value> = serde_json::from_slice(bytes).ok();
    let Some(v) = value.as_ref() else {
        return Proven {
            value,
            inclusion: Check::fail("the entry is not JSON"),
        };
    };
    if v["index"].as_u64() != Some(entry.index) || v["kind"].as_str() != Some(&entry.kind) {
        return Proven {
            inclusion: Check::fail(format!(
                "the entry says index {} and kind {}, the gate listed it as {} {}",
                v["index"], v["kind"], entry.index, entry.kind
            )),
            value,
        };
    }
    let Some(checkpoint) = checkpoint else {
        return Proven {
            value,
            inclusion: Check::fail("no validly signed checkpoint to prove it against"),
        };
    };
    let proof: Result<Vec<Hash>, ()> = entry
        .proof
        .iter()
        .map(|h| {
            B64.decode(h)
                .ok()
                .and_then(|b| hash_from_slice(&b).ok())
                .ok_or(())
        })
        .collect();
    let inclusion = match proof {
        Err(()) => Check::fail("the inclusion proof holds a hash that is not base64 of 32 bytes"),
        Ok(proof) => match verify_inclusion(
            &leaf_hash(bytes),
            entry.index,
            checkpoint.size,
            &proof,
            &checkpoint.root,
        ) {
            Ok(()) => Check::pass(format!(
                "leaf {} is in the signed tree of {} entries",
                entry.index, checkpoint.size
            )),
            Err(e) => Check::fail(format!("the inclusion proof does not hold: {e}")),
        },
    };
    Proven { value, inclusion }
}

fn stage_of(kind: &str) -> TrailStage {
    match kind {
        "output_received" => TrailStage::Output,
        "routed" | "superseded" => TrailStage::Routing,
        "leased" | "lease_renewed" | "lease_returned" | "lease_expired" | "withdrawn"
        | "reassigned" => TrailStage::Lease,
        "decided" | "conflict" | "rejected" => TrailStage::Decision,
        "escalated" => TrailStage::Escalation,
        "released" => TrailStage::Release,
        "qa_queued" | "decision_flagged" => TrailStage::Qa,
        _ => TrailStage::Other,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One plain-text line about an entry, from its own data.
fn summary(kind: &str, entry: &Value) -> String {
    let data = &entry["data"];
    let actor = text(&entry["actor"]);
    match kind {
        "output_received" => format!(
            "Output {} from {} ({}@{}) for {}",
            text(&data["output_id"]),
            text(&data["source"]),
            text(&data["model"]["name"]),
            text(&data["model"]["version"]),
            text(&data["subject"])
        ),
        "routed" => {
            let r = &data["routing"];
            format!(
                "Routed to {} by rule {} of policy v{} (authority {}, {} approval(s), SLA {} s)",
                text(&r["lane"]),
                text(&r["rule"]),
                text(&r["policy_version"]),
                text(&r["authority_required"]),
                text(&r["approvals_required"]),
                text(&r["sla_seconds"])
            )
        }
        "superseded" => "Superseded by a newer output for the same subject".to_owned(),
        "leased" => format!(
            "Leased to {actor} until {}{}",
            text(&data["expires_at"]),
            if data["offline"] == Value::Bool(true) {
                " (offline checkout)"
            } else {
                ""
            }
        ),
        "lease_renewed" => format!("Lease renewed until {}", text(&data["expires_at"])),
        "lease_returned" => format!("Returned undecided by {actor}"),
        "lease_expired" => "Lease expired".to_owned(),
        "withdrawn" => format!(
            "Lease withdrawn by {actor}{}",
            match text(&data["reason"]) {
                r if r.is_empty() => String::new(),
                r => format!(": {r}"),
            }
        ),
        "reassigned" => format!("Reassigned by {actor} to another reviewer"),
        "decided" | "conflict" | "rejected" => {
            let result = &data["result"];
            let outcome = text(&result["outcome"]);
            let why = match (text(&result["reason"]), text(&result["code"])) {
                (r, _) if !r.is_empty() => format!(" ({r})"),
                (_, c) if !c.is_empty() => format!(" ({c})"),
                _ => String::new(),
            };
            format!("Decision by {actor}: {outcome}{why}")
        }
        "escalated" => format!(
            "Escalated by {actor} to level {}",
            text(&data["escalation_level"])
        ),
        "released" => "Released downstream".to_owned(),
        "qa_queued" => format!(
            "Queued for QA ({}) by {actor}{}",
            text(&data["origin"]),
            match text(&data["reason"]) {
                r if r.is_empty() => String::new(),
                r => format!(": {r}"),
            }
        ),
        "decision_flagged" => format!("Decision flagged by {actor}: {}", text(&data["reason"])),
        other => other.replace('_', " "),
    }
}

/// What a part of the trail claims about the entry at an index: `Ok` if it agrees.
type Claim = Result<(), String>;

/// Records claims against entries; a claim on an entry the gate did not send is `missing`.
struct Claims<'a> {
    proven: &'a HashMap<u64, Proven>,
    by_index: BTreeMap<u64, Vec<String>>,
    missing: Vec<String>,
}

impl<'a> Claims<'a> {
    fn check(&mut self, index: u64, what: &str, claim: impl FnOnce(&Value) -> Claim) {
        match self.proven.get(&index).and_then(|p| p.value.as_ref()) {
            None => self.missing.push(format!(
                "{what} points at entry {index}, which the gate did not prove"
            )),
            Some(entry) => {
                let problems = self.by_index.entry(index).or_default();
                if let Err(why) = claim(entry) {
                    problems.push(format!("{what}: {why}"));
                }
            }
        }
    }
}

fn kind_is(entry: &Value, kinds: &[&str]) -> Claim {
    let kind = entry["kind"].as_str().unwrap_or_default();
    if kinds.contains(&kind) {
        Ok(())
    } else {
        Err(format!(
            "the entry is a {kind}, not a {}",
            kinds.join(" or ")
        ))
    }
}

fn same(entry_value: &Value, claimed: &str, field: &str) -> Claim {
    if entry_value.as_str() == Some(claimed) {
        Ok(())
    } else {
        Err(format!(
            "its {field} is {entry_value}, the trail says {claimed:?}"
        ))
    }
}

/// Equal as canonical JSON: a number stored as `0.0` and logged as `0` is the same number.
fn same_json(a: &Value, b: &Value) -> bool {
    match (
        canonical::to_canonical_bytes(a),
        canonical::to_canonical_bytes(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The signed decision's payload, decoded for reading (empty when it is not a JWS).
fn payload_text(jws: &str) -> String {
    jws.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

fn check_signature(d: &TrailDecision, item_id: uuid::Uuid) -> Check {
    let key = match jws::parse_public_key(&d.key.jwk.to_string()) {
        Ok(key) => key,
        Err(e) => return Check::fail(format!("the reviewer's key is unusable: {e}")),
    };
    if jws::key_id(&key) != d.key.key_id {
        return Check::fail("the key's thumbprint is not its key id");
    }
    match jws::verify_decision(&d.jws, &key) {
        Err(e) => Check::fail(format!("the signature does not verify: {e}")),
        Ok(v) if v.decision.decision_id != d.decision_id => {
            Check::fail("the signed decision is another decision than the one listed")
        }
        Ok(v) if v.decision.item_id != item_id => {
            Check::fail("the signed decision is about another item")
        }
        Ok(v) if v.decision.kind.as_str() != d.kind => Check::fail(format!(
            "the signed decision is a {}, the gate lists a {}",
            v.decision.kind.as_str(),
            d.kind
        )),
        Ok(v) => Check::pass(format!(
            "EdDSA signature by key {} verifies; signed {} on version {}",
            d.key.key_id,
            v.decision.kind.as_str(),
            v.decision.item_version
        )),
    }
}

/// The decision's key must be the JWK that the (proven) `key_enrolled`/`key_rotated` entry at
/// its `enrolled_at_index` logged.
fn check_key(d: &TrailDecision, keys: &HashMap<u64, Proven>) -> Check {
    let Some(proven) = keys.get(&d.key.enrolled_at_index) else {
        return Check::fail(format!(
            "the gate did not prove the entry {} that enrolled key {}",
            d.key.enrolled_at_index, d.key.key_id
        ));
    };
    if !proven.inclusion.ok {
        return Check::fail(format!(
            "the key's enrollment entry {}: {}",
            d.key.enrolled_at_index, proven.inclusion.detail
        ));
    }
    let Some(entry) = proven.value.as_ref() else {
        return Check::fail("the key's enrollment entry is not JSON");
    };
    if let Err(why) = kind_is(entry, &["key_enrolled", "key_rotated"]) {
        return Check::fail(why);
    }
    let data = &entry["data"];
    if data["key_id"].as_str() != Some(d.key.key_id.as_str()) {
        return Check::fail("the enrollment entry is for another key");
    }
    let logged = jws::parse_public_key(&data["public_key"].to_string());
    let listed = jws::parse_public_key(&d.key.jwk.to_string());
    match (logged, listed) {
        (Ok(a), Ok(b)) if a == b => Check::pass(format!(
            "key {} was enrolled by log entry {} ({})",
            d.key.key_id, d.key.enrolled_at_index, d.key.status
        )),
        _ => Check::fail("the key differs from the one the log enrolled"),
    }
}

/// Checks a trail. `checkpoint` is the trail's checkpoint opened with the pinned log key (or why
/// it could not be), `consistency` whether it extends what this desk saw, `key_entries` the
/// proven enrollment entries of the decisions' keys.
pub(crate) fn check_trail(
    trail: &ItemTrail,
    checkpoint: Result<Checkpoint, String>,
    consistency: Check,
    key_entries: &[ProvenEntry],
) -> TrailView {
    let signature = match &checkpoint {
        Ok(cp) if cp.size != trail.checkpoint.size => Check::fail(format!(
            "the signed checkpoint has {} entries, the trail says {}",
            cp.size, trail.checkpoint.size
        )),
        Ok(cp) if B64.encode(cp.root) != trail.checkpoint.root => {
            Check::fail("the signed checkpoint's root is not the trail's")
        }
        Ok(cp) => Check::pass(format!(
            "signed by the gate's log key for {} ({} entries)",
            cp.origin, cp.size
        )),
        Err(why) => Check::fail(why.clone()),
    };
    let cp = checkpoint.as_ref().ok().filter(|_| signature.ok);
    let proven: HashMap<u64, Proven> = trail
        .entries
        .iter()
        .map(|e| (e.index, prove(e, cp)))
        .collect();
    let keys: HashMap<u64, Proven> = key_entries
        .iter()
        .map(|e| (e.index, prove(e, cp)))
        .collect();
    let mut claims = Claims {
        proven: &proven,
        by_index: BTreeMap::new(),
        missing: Vec::new(),
    };
    let item_id = trail.item.item_id.to_string();

    for v in &trail.versions {
        let body_hash = sha256_hex(v.output.get().as_bytes());
        if let Some(received) = v.received_index {
            claims.check(received, &format!("output of version {}", v.version), |e| {
                kind_is(e, &["output_received"])?;
                same(&e["data"]["output_id"], &v.output_id, "output id")?;
                same(&e["data"]["body_sha256"], &v.body_sha256, "body hash")?;
                if body_hash != v.body_sha256 {
                    return Err("the output shown does not hash to the logged body hash".into());
                }
                Ok(())
            });
        }
        let served_hash = sha256_hex(v.served.get().as_bytes());
        claims.check(
            v.routed_index,
            &format!("routing of version {}", v.version),
            |e| {
                kind_is(e, &["routed", "qa_queued"])?;
                if served_hash != v.evidence_sha256 {
                    return Err(
                        "the item shown to reviewers does not hash to its evidence hash".into(),
                    );
                }
                let data = &e["data"];
                if data.get("evidence_sha256").is_some() {
                    same(
                        &data["evidence_sha256"],
                        &v.evidence_sha256,
                        "evidence hash",
                    )?;
                }
                if data.get("routing").is_some() && !same_json(&data["routing"], &v.routing) {
                    return Err("the routing shown is not the routing logged".into());
                }
                Ok(())
            },
        );
    }
    for lease in &trail.leases {
        let lease_id = lease.lease_id.to_string();
        for &index in &lease.entry_indices {
            claims.check(index, &format!("lease of {}", lease.reviewer), |e| {
                same(&e["item_id"], &item_id, "item")?;
                let data = &e["data"];
                let named = ["lease_id", "from_lease_id", "to_lease_id"]
                    .iter()
                    .any(|f| data[*f].as_str() == Some(lease_id.as_str()));
                if named {
                    Ok(())
                } else {
                    Err("the entry is about another lease".into())
                }
            });
        }
    }
    let mut decisions: HashMap<u64, DecisionCheck> = HashMap::new();
    for d in &trail.decisions {
        claims.check(d.log_index, &format!("decision {}", d.decision_id), |e| {
            kind_is(e, &["decided", "conflict", "rejected"])?;
            let data = &e["data"];
            same(&data["jws"], &d.jws, "signed decision")?;
            same(
                &data["decision_id"],
                &d.decision_id.to_string(),
                "decision id",
            )?;
            same(&data["key_id"], &d.key.key_id, "key id")?;
            same(&data["result"]["outcome"], &d.outcome, "outcome")
        });
        for flag in &d.flags {
            claims.check(flag.log_index, "a flag", |e| {
                kind_is(e, &["decision_flagged"])?;
                same(
                    &e["data"]["decision_id"],
                    &d.decision_id.to_string(),
                    "decision id",
                )
            });
        }
        decisions.insert(
            d.log_index,
            DecisionCheck {
                decision_id: d.decision_id,
                reviewer: d.reviewer.clone(),
                kind: d.kind.clone(),
                outcome: d.outcome.clone(),
                outcome_code: d.outcome_code.clone(),
                item_version: d.item_version,
                logged_at: d.logged_at,
                jws: d.jws.clone(),
                payload: payload_text(&d.jws),
                key_id: d.key.key_id.clone(),
                key_status: d.key.status.clone(),
                signature: check_signature(d, trail.item.item_id),
                key: check_key(d, &keys),
                flags: d.flags.clone(),
            },
        );
    }
    for &index in &trail.escalation_indices {
        claims.check(index, "an escalation", |e| kind_is(e, &["escalated"]));
    }
    if let Some(release) = &trail.release {
        let released: Option<Value> = serde_json::from_str(release.release.get()).ok();
        claims.check(release.log_index, "the release", |e| {
            kind_is(e, &["released"])?;
            if released.as_ref().is_some_and(|r| same_json(r, &e["data"])) {
                Ok(())
            } else {
                Err("the release shown is not the release logged".into())
            }
        });
    }
    if let Some(qa) = &trail.qa {
        claims.check(qa.log_index, "the QA origin", |e| {
            kind_is(e, &["qa_queued"])
        });
    }

    let Claims {
        by_index, missing, ..
    } = claims;
    let mut failures = u32::from(!signature.ok) + u32::from(!consistency.ok);
    failures += u32::try_from(missing.len()).unwrap_or(u32::MAX);
    let mut steps = Vec::with_capacity(trail.entries.len());
    for entry in &trail.entries {
        let Some(p) = proven.get(&entry.index) else {
            continue;
        };
        let value = p.value.clone().unwrap_or(Value::Null);
        let problems = by_index.get(&entry.index).cloned().unwrap_or_default();
        let content = if p.value.is_none() {
            Check::fail("the entry is not JSON")
        } else if problems.is_empty() {
            Check::pass("agrees with the trail")
        } else {
            Check::fail(problems.join("; "))
        };
        let decision = decisions.remove(&entry.index);
        failures += u32::from(!p.inclusion.ok) + u32::from(!content.ok);
        if let Some(d) = &decision {
            failures += u32::from(!d.signature.ok) + u32::from(!d.key.ok);
        }
        steps.push(TrailStep {
            stage: stage_of(&entry.kind),
            index: entry.index,
            kind: entry.kind.clone(),
            at: value["at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            actor: text(&value["actor"]),
            summary: summary(&entry.kind, &value),
            entry: entry.entry.get().to_owned(),
            inclusion: p.inclusion.clone(),
            content,
            decision,
        });
    }
    steps.sort_by_key(|s| s.index);
    let model = trail
        .versions
        .iter()
        .max_by_key(|v| v.version)
        .map(|v| v.model.clone())
        .unwrap_or_default();
    TrailView {
        item: TrailItem {
            item_id: trail.item.item_id,
            subject: trail.item.subject.clone(),
            queue: trail.item.queue.as_str().to_owned(),
            status: trail.item.status.clone(),
            lane: trail.item.lane.clone(),
            current_version: trail.item.current_version,
            escalation_level: trail.item.escalation_level,
            approvals_required: trail.item.approvals_required,
            authority_required: trail.item.authority_required,
            due_at: trail.item.due_at,
            outcome: trail.item.outcome.clone(),
            model,
        },
        qa: trail.qa.clone(),
        qa_items: trail.qa_items.clone(),
        checkpoint: TrailCheckpoint {
            size: trail.checkpoint.size,
            root_hex: checkpoint
                .as_ref()
                .map(|c| hex::encode(c.root))
                .unwrap_or_default(),
            note: trail.checkpoint.checkpoint.clone(),
            signature,
            consistency,
        },
        steps,
        missing,
        verified: failures == 0,
        failures,
    }
}

/// The entries of a verified trail worth proving again later: those whose own inclusion held,
/// as (index, leaf hash).
pub(crate) fn proven_leaves(trail: &ItemTrail, view: &TrailView) -> Vec<(u64, Hash, String)> {
    let ok: HashMap<u64, &TrailStep> = view
        .steps
        .iter()
        .filter(|s| s.inclusion.ok)
        .map(|s| (s.index, s))
        .collect();
    trail
        .entries
        .iter()
        .filter(|e| ok.contains_key(&e.index))
        .map(|e| (e.index, leaf_hash(e.entry.get().as_bytes()), e.kind.clone()))
        .collect()
}
