//! Loading a policy document and routing outputs with it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cel::{Context, Env};
use countersign_core::{
    Attribution, Evidence, Lane, ModelRef, Output, ReasonCode, Routing, V1, sha256_hex,
};
use serde_json::json;
use toml::Spanned;

use crate::error::{EvalError, PolicyError, RouteError};
use crate::expr::{self, EvalFailure, Expression};
use crate::raw::{self, RawCircuitBreaker, RawFallback, RawPolicy, RawRule};
use crate::vars::{Setting, Vars, check_output};

/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
/// Most rules a policy may have.
pub const MAX_RULES: usize = 500;
/// Most distinct approvals a rule may ask for.
pub const MAX_APPROVALS: u32 = 10;
/// Longest SLA accepted: 90 days.
pub const MAX_SLA_SECONDS: u64 = 90 * 24 * 3600;
/// The rule recorded when no rule matched.
pub const NO_RULE_MATCHED: &str = "(no rule matched)";
/// Appended to a rule's id when one of its expressions failed on an output.
pub const ERROR_SUFFIX: &str = "!error";
/// Appended to a rule's id when the circuit breaker turned its `auto` into `review`.
pub const CIRCUIT_BREAKER_SUFFIX: &str = "+circuit-breaker";

const DEFAULT_FALLBACK_SLA_SECONDS: u64 = 24 * 3600;
const DEFAULT_QA_SLA_SECONDS: u64 = 7 * 24 * 3600;
/// Largest circuit-breaker window, in decisions.
pub const MAX_BREAKER_WINDOW: u32 = 100_000;
const DEFAULT_LEASE_MINUTES: i64 = 30;
const MAX_LEASE_MINUTES: i64 = 24 * 60;
const DEFAULT_OFFLINE_LEASE_HOURS: i64 = 72;
const MAX_OFFLINE_LEASE_HOURS: i64 = 30 * 24;
const MAX_ID_LEN: usize = 64;
const MAX_NAME_CHARS: usize = 200;
/// Compiling runs on a thread of its own with this much stack: the CEL parser recurses deeply in
/// a debug build, and a hostile document must get an error, not a stack overflow.
const COMPILER_STACK_BYTES: usize = 64 << 20;

static NO_TRIPPED_MODELS: LazyLock<HashSet<String>> = LazyLock::new(HashSet::new);

/// What the gate knows at routing time beyond the output itself.
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    /// Model ids (`name@version`) whose circuit breaker has tripped: their `auto` outputs go to
    /// `review` instead, and expressions see `circuit_open == true`.
    pub tripped_models: &'a HashSet<String>,
}

impl<'a> RouteContext<'a> {
    pub fn new(tripped_models: &'a HashSet<String>) -> Self {
        RouteContext { tripped_models }
    }
}

impl Default for RouteContext<'static> {
    /// No circuit breaker has tripped.
    fn default() -> Self {
        RouteContext {
            tripped_models: &NO_TRIPPED_MODELS,
        }
    }
}

/// A routing together with the expression failure that caused it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub routing: Routing,
    /// Set when an expression failed on this output. The output was routed to humans all the
    /// same (rule `<id>!error`); the gate should log this.
    pub error: Option<EvalError>,
}

#[derive(Debug)]
struct Rule {
    id: String,
    when: Expression,
    lane: Lane,
    authority: Option<Expression>,
    /// 0 for `auto`.
    approvals: u32,
    /// 0 for `auto`.
    sla_seconds: u64,
    /// 0 for held lanes.
    qa_sample_rate: f64,
}

/// When the gate trips a model version's circuit breaker (`[circuit_breaker]`): its override
/// rate over its last `window` applied human decisions exceeds `threshold`, with at least
/// `min_decisions` of them in the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreaker {
    pub window: u32,
    pub min_decisions: u32,
    /// Trips when overrides / decisions is strictly above this.
    pub threshold: f64,
}

#[derive(Debug)]
struct Fallback {
    authority: Option<Expression>,
    approvals: u32,
    sla_seconds: u64,
}

/// A validated, compiled policy. Cheap to share between threads (`Arc<Policy>`); routing takes
/// `&self`.
pub struct Policy {
    version: u32,
    name: String,
    source: String,
    sha256: String,
    protected_features: Vec<String>,
    probation: Vec<String>,
    reasons: Vec<ReasonCode>,
    default_lease: Duration,
    max_offline_lease: Duration,
    rules: Vec<Rule>,
    fallback: Fallback,
    circuit_breaker: Option<CircuitBreaker>,
    qa_sla: Duration,
    env: Arc<Env>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("version", &self.version)
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("rules", &self.rule_ids())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Parses and validates a policy document: TOML syntax, unknown fields, every value's range,
    /// unique rule ids, and every CEL expression, which is compiled and then dry-run on synthetic
    /// outputs so that type errors and unknown variables are refused now rather than met while
    /// routing. Errors name the rule, the field and the line and column of the offending value.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::new(format!(
                "the policy is {} bytes long; the limit is {MAX_POLICY_BYTES}",
                text.len()
            )));
        }
        std::thread::scope(|scope| {
            let compiler = std::thread::Builder::new()
                .name("policy-compiler".to_owned())
                .stack_size(COMPILER_STACK_BYTES)
                .spawn_scoped(scope, || compile_policy(text));
            match compiler {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(PolicyError::new(
                        "the policy compiler failed unexpectedly on this document",
                    ))
                }),
                Err(e) => Err(PolicyError::new(format!(
                    "cannot start the policy compiler: {e}"
                ))),
            }
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document exactly as given to [`Policy::parse`].
    pub fn source_text(&self) -> &str {
        &self.source
    }

    /// Lowercase hex SHA-256 of the document's bytes.
    pub fn sha256(&self) -> String {
        self.sha256.clone()
    }

    pub fn protected_features(&self) -> &[String] {
        &self.protected_features
    }

    /// Model ids (`name@version`) on probation.
    pub fn probation(&self) -> &[String] {
        &self.probation
    }

    /// The reason codes a reviewer may give.
    pub fn reasons(&self) -> &[ReasonCode] {
        &self.reasons
    }

    pub fn default_lease(&self) -> Duration {
        self.default_lease
    }

    /// The longest lease an offline checkout may get.
    pub fn max_offline_lease(&self) -> Duration {
        self.max_offline_lease
    }

    /// The SLA of outputs the policy could not decide (no rule matched, an expression failed, a
    /// circuit breaker tripped).
    pub fn fallback_sla(&self) -> Duration {
        Duration::from_secs(self.fallback.sla_seconds)
    }

    /// The circuit breaker, when the policy configures one.
    pub fn circuit_breaker(&self) -> Option<CircuitBreaker> {
        self.circuit_breaker
    }

    /// The SLA of items in the QA queue (`[qa] sla`, default 7 days).
    pub fn qa_sla(&self) -> Duration {
        self.qa_sla
    }

    /// The rule ids, in order.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    /// Routes an output: the first rule whose `when` holds decides. See [`Policy::route_detailed`]
    /// for what happens when the policy cannot decide; this drops the reason.
    pub fn route(&self, output: &Output, ctx: &RouteContext<'_>) -> Result<Routing, RouteError> {
        self.route_detailed(output, ctx)
            .map(|routed| routed.routing)
    }

    /// Routes an output and says which expression failed, if one did.
    ///
    /// Humans stay in charge when the policy cannot decide:
    /// - no rule matches: `review`, rule `(no rule matched)`, with the `[fallback]` authority,
    ///   approvals and SLA;
    /// - an expression of a rule fails (e.g. a key the output lacks): the output is held, rule
    ///   `<id>!error`, in `human_only` if that rule's lane is `human_only` (it might have
    ///   matched) and in `review` otherwise, with the stricter of the rule's and the fallback's
    ///   approvals; later rules are not consulted;
    /// - the matched rule says `auto` but the model's circuit breaker has tripped: `review`, rule
    ///   `<id>+circuit-breaker`, with the fallback's approvals and SLA.
    ///
    /// An `Err` means the output itself is malformed (confidence outside `[0, 1]`, a non-finite
    /// number, JSON nested too deeply): the gate should refuse it.
    pub fn route_detailed(
        &self,
        output: &Output,
        ctx: &RouteContext<'_>,
    ) -> Result<Routed, RouteError> {
        check_output(output)?;
        let vars = Vars::new(output, self.setting(ctx.tripped_models));
        let mut cel = Context::with_env(Arc::clone(&self.env));
        cel.set_variable_resolver(&vars);
        for rule in &self.rules {
            match expr::eval_bool(&rule.when, &cel) {
                Ok(false) => continue,
                Ok(true) => {
                    let authority = match &rule.authority {
                        None => Ok(0.0),
                        Some(authority) => expr::eval_number(authority, &cel),
                    };
                    return Ok(match authority {
                        Ok(authority) if rule.lane == Lane::Auto && vars.circuit_open() => {
                            self.tripped_routing(rule, authority, &cel)
                        }
                        Ok(authority) => Routed {
                            routing: Routing {
                                policy_version: self.version,
                                rule: rule.id.clone(),
                                lane: rule.lane,
                                authority_required: authority,
                                approvals_required: rule.approvals,
                                sla_seconds: rule.sla_seconds,
                                qa_sample_rate: rule.qa_sample_rate,
                            },
                            error: None,
                        },
                        Err(failure) => self.failed(rule, "authority", &failure, None, &cel),
                    });
                }
                Err(failure) => {
                    let authority = rule
                        .authority
                        .as_ref()
                        .and_then(|a| expr::eval_number(a, &cel).ok());
                    return Ok(self.failed(rule, "when", &failure, authority, &cel));
                }
            }
        }
        let (authority, error) = self.fallback_authority(&cel);
        Ok(Routed {
            routing: Routing {
                policy_version: self.version,
                rule: NO_RULE_MATCHED.to_owned(),
                lane: Lane::Review,
                authority_required: authority,
                approvals_required: self.fallback.approvals,
                sla_seconds: self.fallback.sla_seconds,
                qa_sample_rate: 0.0,
            },
            error,
        })
    }

    fn setting<'a>(&'a self, tripped_models: &'a HashSet<String>) -> Setting<'a> {
        Setting {
            protected_features: &self.protected_features,
            probation: &self.probation,
            tripped_models,
        }
    }

    /// The fallback authority, and the error when its expression failed (then 0: the routing is
    /// still held, and the failure is reported).
    fn fallback_authority(&self, cel: &Context<'_, '_>) -> (f64, Option<EvalError>) {
        match &self.fallback.authority {
            None => (0.0, None),
            Some(expr) => match expr::eval_number(expr, cel) {
                Ok(n) => (n, None),
                Err(failure) => (
                    0.0,
                    Some(EvalError {
                        rule: "fallback".to_owned(),
                        field: "authority",
                        message: failure.to_string(),
                    }),
                ),
            },
        }
    }

    fn tripped_routing(&self, rule: &Rule, authority: f64, cel: &Context<'_, '_>) -> Routed {
        let (fallback, error) = self.fallback_authority(cel);
        Routed {
            routing: Routing {
                policy_version: self.version,
                rule: format!("{}{CIRCUIT_BREAKER_SUFFIX}", rule.id),
                lane: Lane::Review,
                authority_required: authority.max(fallback),
                approvals_required: self.fallback.approvals,
                sla_seconds: self.fallback.sla_seconds,
                qa_sample_rate: 0.0,
            },
            error,
        }
    }

    fn failed(
        &self,
        rule: &Rule,
        field: &'static str,
        failure: &EvalFailure,
        rule_authority: Option<f64>,
        cel: &Context<'_, '_>,
    ) -> Routed {
        // Only one failure is reported: the rule's, which is what sent the output here.
        let (fallback, _) = self.fallback_authority(cel);
        let held = rule.lane != Lane::Auto;
        Routed {
            routing: Routing {
                policy_version: self.version,
                rule: format!("{}{ERROR_SUFFIX}", rule.id),
                lane: if rule.lane == Lane::HumanOnly {
                    Lane::HumanOnly
                } else {
                    Lane::Review
                },
                authority_required: rule_authority.unwrap_or(0.0).max(fallback),
                approvals_required: if held {
                    rule.approvals.max(self.fallback.approvals)
                } else {
                    self.fallback.approvals
                },
                sla_seconds: if held {
                    rule.sla_seconds
                } else {
                    self.fallback.sla_seconds
                },
                qa_sample_rate: 0.0,
            },
            error: Some(EvalError {
                rule: rule.id.clone(),
                field,
                message: failure.to_string(),
            }),
        }
    }
}

fn compile_policy(text: &str) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| raw::toml_error(text, &e))?;
    let at = |message: String, field: &str, span: std::ops::Range<usize>| {
        PolicyError::new(message).field(field).at(text, span.start)
    };

    let version = u32::try_from(*raw.version.get_ref())
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            at(
                format!(
                    "must be a whole number from 1 to {}, got {}",
                    u32::MAX,
                    raw.version.get_ref()
                ),
                "version",
                raw.version.span(),
            )
        })?;

    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(at(
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
            "name",
            raw.name.span(),
        ));
    }

    let mut protected_features = Vec::with_capacity(raw.protected_features.len());
    for feature in &raw.protected_features {
        if feature.get_ref().trim().is_empty() {
            return Err(at(
                "a feature name cannot be empty".to_owned(),
                "protected_features",
                feature.span(),
            ));
        }
        protected_features.push(feature.get_ref().clone());
    }

    let mut probation = Vec::with_capacity(raw.probation.len());
    for model in &raw.probation {
        let well_formed = model
            .get_ref()
            .split_once('@')
            .is_some_and(|(name, version)| !name.is_empty() && !version.is_empty());
        if !well_formed {
            return Err(at(
                format!(
                    "`{}` is not a model id; write name@version, e.g. credit-scorer@2.0",
                    model.get_ref()
                ),
                "probation",
                model.span(),
            ));
        }
        probation.push(model.get_ref().clone());
    }

    let lease_minutes = bounded(
        raw.default_lease_minutes.as_ref(),
        DEFAULT_LEASE_MINUTES,
        1,
        MAX_LEASE_MINUTES,
    )
    .map_err(|(m, span)| at(m, "default_lease_minutes", span))?;
    let offline_hours = bounded(
        raw.max_offline_lease_hours.as_ref(),
        DEFAULT_OFFLINE_LEASE_HOURS,
        1,
        MAX_OFFLINE_LEASE_HOURS,
    )
    .map_err(|(m, span)| at(m, "max_offline_lease_hours", span))?;
    let default_lease = Duration::from_secs(lease_minutes.unsigned_abs() * 60);
    let max_offline_lease = Duration::from_secs(offline_hours.unsigned_abs() * 3600);

    let mut reasons: Vec<ReasonCode> = Vec::with_capacity(raw.reasons.len());
    for reason in &raw.reasons {
        let reason = reason.get_ref();
        let code = reason.code.get_ref();
        if !is_identifier(code, |c| c == '_' || c == '-') {
            return Err(at(
                format!(
                    "`{code}` is not a valid reason code: use 1 to {MAX_ID_LEN} of a-z, 0-9, _ and -"
                ),
                "reasons.code",
                reason.code.span(),
            ));
        }
        if reasons.iter().any(|r| r.code == *code) {
            return Err(at(
                format!("reason code `{code}` is given twice"),
                "reasons.code",
                reason.code.span(),
            ));
        }
        let words = reason.text.get_ref().trim();
        if words.is_empty() {
            return Err(at(
                format!("reason code `{code}` needs words for people"),
                "reasons.text",
                reason.text.span(),
            ));
        }
        reasons.push(ReasonCode {
            code: code.clone(),
            text: words.to_owned(),
        });
    }

    let env = Arc::new(Env::stdlib());
    let fallback = compile_fallback(text, &env, raw.fallback.as_ref())?;
    let circuit_breaker = raw
        .circuit_breaker
        .as_ref()
        .map(|b| compile_breaker(text, b.get_ref()))
        .transpose()?;
    let qa_sla = match raw.qa.as_ref().and_then(|q| q.get_ref().sla.as_ref()) {
        None => DEFAULT_QA_SLA_SECONDS,
        Some(sla) => parse_sla(sla.get_ref()).map_err(|m| {
            PolicyError::new(m)
                .field("qa.sla")
                .at(text, sla.span().start)
        })?,
    };

    let Some(raw_rules) = raw.rules else {
        return Err(PolicyError::new(
            "a policy needs at least one rule: add a [[rules]] table",
        ));
    };
    if raw_rules.get_ref().is_empty() {
        return Err(at(
            "a policy needs at least one rule".to_owned(),
            "rules",
            raw_rules.span(),
        ));
    }
    if raw_rules.get_ref().len() > MAX_RULES {
        return Err(at(
            format!(
                "the policy has {} rules; the limit is {MAX_RULES}",
                raw_rules.get_ref().len()
            ),
            "rules",
            raw_rules.span(),
        ));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(raw_rules.get_ref().len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, raw_rule) in raw_rules.get_ref().iter().enumerate() {
        let rule = compile_rule(text, &env, index, raw_rule)?;
        let id_span = raw_rule.get_ref().id.span();
        if let Some(first) = seen.insert(raw_rule.get_ref().id.get_ref(), index) {
            let (line, _) =
                crate::error::line_column(text, raw_rules.get_ref()[first].span().start);
            return Err(PolicyError::new(format!(
                "duplicate rule id: rule #{} (line {line}) already uses it",
                first + 1
            ))
            .field("id")
            .in_rule(index, Some(&rule.id))
            .at(text, id_span.start));
        }
        rules.push(rule);
    }

    let policy = Policy {
        version,
        name,
        source: text.to_owned(),
        sha256: sha256_hex(text.as_bytes()),
        protected_features,
        probation,
        reasons,
        default_lease,
        max_offline_lease,
        rules,
        fallback,
        circuit_breaker,
        qa_sla: Duration::from_secs(qa_sla),
        env,
    };
    dry_run(&policy, text, raw_rules.get_ref(), raw.fallback.as_ref())?;
    Ok(policy)
}

/// An optional integer within bounds, or the default.
fn bounded(
    value: Option<&Spanned<i64>>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, (String, std::ops::Range<usize>)> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err((
            format!("must be from {min} to {max}, got {}", v.get_ref()),
            v.span(),
        )),
    }
}

/// `1..=MAX_ID_LEN` characters of `a-z`, `0-9` and those `extra` allows.
fn is_identifier(s: &str, extra: impl Fn(char) -> bool) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra(c))
}

fn parse_sla(value: &toml::Value) -> Result<u64, String> {
    let seconds = match value {
        toml::Value::Integer(n) => u64::try_from(*n).unwrap_or(0),
        toml::Value::String(s) => humantime::parse_duration(s.trim())
            .map_err(|e| {
                format!("`{s}` is not a duration ({e}); write e.g. \"30m\", \"8h\" or \"2d\"")
            })?
            .as_secs(),
        other => {
            return Err(format!(
                "must be a duration such as \"8h\" or a number of seconds, got {}",
                other.type_str()
            ));
        }
    };
    if (1..=MAX_SLA_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!(
            "must be from 1 second to 90 days, got {seconds} seconds"
        ))
    }
}

fn compile_breaker(text: &str, raw: &RawCircuitBreaker) -> Result<CircuitBreaker, PolicyError> {
    let window = u32::try_from(*raw.window.get_ref())
        .ok()
        .filter(|w| (1..=MAX_BREAKER_WINDOW).contains(w))
        .ok_or_else(|| {
            PolicyError::new(format!(
                "must be from 1 to {MAX_BREAKER_WINDOW} decisions, got {}",
                raw.window.get_ref()
            ))
            .field("circuit_breaker.window")
            .at(text, raw.window.span().start)
        })?;
    let threshold = *raw.threshold.get_ref();
    // A threshold of 1 could never be exceeded: such a breaker would be dead configuration.
    if !(0.0..1.0).contains(&threshold) {
        return Err(PolicyError::new(format!(
            "must be at least 0 and below 1 (a share of overridden decisions), got {threshold}"
        ))
        .field("circuit_breaker.threshold")
        .at(text, raw.threshold.span().start));
    }
    let min_decisions = match &raw.min_decisions {
        None => window,
        Some(m) => u32::try_from(*m.get_ref())
            .ok()
            .filter(|n| (1..=window).contains(n))
            .ok_or_else(|| {
                PolicyError::new(format!(
                    "must be from 1 to the window ({window}), got {}",
                    m.get_ref()
                ))
                .field("circuit_breaker.min_decisions")
                .at(text, m.span().start)
            })?,
    };
    Ok(CircuitBreaker {
        window,
        min_decisions,
        threshold,
    })
}

fn compile_fallback(
    text: &str,
    env: &Env,
    raw: Option<&Spanned<RawFallback>>,
) -> Result<Fallback, PolicyError> {
    let Some(raw) = raw.map(Spanned::get_ref) else {
        return Ok(Fallback {
            authority: None,
            approvals: 1,
            sla_seconds: DEFAULT_FALLBACK_SLA_SECONDS,
        });
    };
    let authority = raw
        .authority
        .as_ref()
        .map(|a| {
            expr::compile(env, a.get_ref()).map_err(|m| {
                PolicyError::new(m)
                    .field("fallback.authority")
                    .at(text, a.span().start)
            })
        })
        .transpose()?;
    let approvals = match &raw.approvals {
        None => 1,
        Some(a) => u32::try_from(*a.get_ref())
            .ok()
            .filter(|n| (1..=MAX_APPROVALS).contains(n))
            .ok_or_else(|| {
                PolicyError::new(format!(
                    "must be from 1 to {MAX_APPROVALS}, got {}",
                    a.get_ref()
                ))
                .field("fallback.approvals")
                .at(text, a.span().start)
            })?,
    };
    let sla_seconds = match &raw.sla {
        None => DEFAULT_FALLBACK_SLA_SECONDS,
        Some(sla) => parse_sla(sla.get_ref()).map_err(|m| {
            PolicyError::new(m)
                .field("fallback.sla")
                .at(text, sla.span().start)
        })?,
    };
    Ok(Fallback {
        authority,
        approvals,
        sla_seconds,
    })
}

fn compile_rule(
    text: &str,
    env: &Env,
    index: usize,
    spanned: &Spanned<RawRule>,
) -> Result<Rule, PolicyError> {
    let raw = spanned.get_ref();
    let id = raw.id.get_ref();
    let err = |message: String, field: &str, offset: usize| {
        PolicyError::new(message)
            .field(field)
            .in_rule(index, Some(id))
            .at(text, offset)
    };

    if !is_identifier(id, |c| c == '-') {
        return Err(err(
            format!("`{id}` is not a valid rule id: use 1 to {MAX_ID_LEN} of a-z, 0-9 and -"),
            "id",
            raw.id.span().start,
        ));
    }
    let lane: Lane = raw
        .lane
        .get_ref()
        .parse()
        .map_err(|m: String| err(m, "lane", raw.lane.span().start))?;
    let when = expr::compile(env, raw.when.get_ref())
        .map_err(|m| err(m, "when", raw.when.span().start))?;
    let authority = raw
        .authority
        .as_ref()
        .map(|a| expr::compile(env, a.get_ref()).map_err(|m| err(m, "authority", a.span().start)))
        .transpose()?;

    let qa_sample_rate = match &raw.qa_sample_rate {
        None => 0.0,
        Some(rate) if !(0.0..=1.0).contains(rate.get_ref()) => {
            return Err(err(
                format!("must be between 0 and 1, got {}", rate.get_ref()),
                "qa_sample_rate",
                rate.span().start,
            ));
        }
        Some(rate) if lane != Lane::Auto && *rate.get_ref() != 0.0 => {
            return Err(err(
                format!("only auto outputs are sampled for QA; a {lane} rule must leave it out"),
                "qa_sample_rate",
                rate.span().start,
            ));
        }
        Some(rate) => *rate.get_ref(),
    };

    let (approvals, sla_seconds) = if lane == Lane::Auto {
        if let Some(a) = &raw.approvals
            && *a.get_ref() != 0
        {
            return Err(err(
                "an auto rule releases without approval: leave approvals out (or 0)".to_owned(),
                "approvals",
                a.span().start,
            ));
        }
        if let Some(sla) = &raw.sla {
            return Err(err(
                "an auto rule releases at once: it has no sla".to_owned(),
                "sla",
                sla.span().start,
            ));
        }
        (0, 0)
    } else {
        let approvals = match &raw.approvals {
            None => 1,
            Some(a) => u32::try_from(*a.get_ref())
                .ok()
                .filter(|n| (1..=MAX_APPROVALS).contains(n))
                .ok_or_else(|| {
                    err(
                        format!(
                            "a {lane} rule needs from 1 to {MAX_APPROVALS} approvals, got {}",
                            a.get_ref()
                        ),
                        "approvals",
                        a.span().start,
                    )
                })?,
        };
        let Some(sla) = &raw.sla else {
            return Err(err(
                format!("a {lane} rule needs an sla, e.g. sla = \"8h\""),
                "sla",
                spanned.span().start,
            ));
        };
        let sla_seconds = parse_sla(sla.get_ref()).map_err(|m| err(m, "sla", sla.span().start))?;
        (approvals, sla_seconds)
    };

    Ok(Rule {
        id: id.clone(),
        when,
        lane,
        authority,
        approvals,
        sla_seconds,
        qa_sample_rate,
    })
}

/// Synthetic outputs the expressions are tried on, chosen to take both sides of the obvious
/// conditions so that fewer parts hide behind a short circuit.
fn samples(policy: &Policy) -> Vec<(&'static str, Output, HashSet<String>)> {
    let base = |model: ModelRef| Output {
        v: V1,
        output_id: "dry-run".to_owned(),
        source: "dry-run".to_owned(),
        model,
        subject: "dry-run".to_owned(),
        produced_at: Default::default(),
        input: Default::default(),
        proposal: Default::default(),
        outcome_schema: Vec::new(),
        confidence: 0.0,
        score: None,
        evidence: Evidence::default(),
    };
    let bare = base(ModelRef {
        name: "dry-run-model".to_owned(),
        version: "0".to_owned(),
    });

    let (name, version) = policy
        .probation
        .first()
        .and_then(|id| id.split_once('@'))
        .unwrap_or(("dry-run-model", "1"));
    let mut full = base(ModelRef {
        name: name.to_owned(),
        version: version.to_owned(),
    });
    full.confidence = 1.0;
    full.score = Some(0.5);
    if let serde_json::Value::Object(proposal) =
        json!({"decision": "approve", "amount": 1_000_000, "term_months": 360})
    {
        full.proposal = proposal;
    }
    let mut attributions: Vec<Attribution> = policy
        .protected_features
        .iter()
        .map(|feature| Attribution {
            feature: feature.clone(),
            value: serde_json::Value::Null,
            weight: 0.25,
        })
        .collect();
    attributions.push(Attribution {
        feature: "dry_run_feature".to_owned(),
        value: serde_json::Value::Null,
        weight: -0.5,
    });
    full.evidence.attributions = attributions;
    full.evidence.reason_codes = vec![ReasonCode {
        code: "dry-run".to_owned(),
        text: "dry run".to_owned(),
    }];
    let tripped = HashSet::from([full.model.to_string()]);

    vec![
        (
            "an output with no score, no evidence and an empty proposal",
            bare,
            HashSet::new(),
        ),
        (
            "a confident approval with a score and attributions, from a model on probation \
             whose circuit breaker is open",
            full,
            tripped,
        ),
    ]
}

/// Evaluates every expression on every sample; a failure that does not depend on the sample's
/// data (a type error, an unknown function, a condition that is not a bool) refuses the policy.
fn dry_run(
    policy: &Policy,
    text: &str,
    raw_rules: &[Spanned<RawRule>],
    raw_fallback: Option<&Spanned<RawFallback>>,
) -> Result<(), PolicyError> {
    for (description, output, tripped) in samples(policy) {
        let vars = Vars::new(&output, policy.setting(&tripped));
        let mut cel = Context::with_env(Arc::clone(&policy.env));
        cel.set_variable_resolver(&vars);
        let refuse = |failure: &EvalFailure| {
            PolicyError::new(format!("{failure} (found by a dry run on {description})"))
        };
        for (index, (rule, raw)) in policy.rules.iter().zip(raw_rules).enumerate() {
            let raw = raw.get_ref();
            if let Err(failure) = expr::eval_bool(&rule.when, &cel)
                && !failure.depends_on_data()
            {
                return Err(refuse(&failure)
                    .field("when")
                    .in_rule(index, Some(&rule.id))
                    .at(text, raw.when.span().start));
            }
            if let (Some(authority), Some(raw_authority)) = (&rule.authority, &raw.authority)
                && let Err(failure) = expr::eval_number(authority, &cel)
                && !failure.depends_on_data()
            {
                return Err(refuse(&failure)
                    .field("authority")
                    .in_rule(index, Some(&rule.id))
                    .at(text, raw_authority.span().start));
            }
        }
        if let (Some(authority), Some(raw_authority)) = (
            &policy.fallback.authority,
            raw_fallback.and_then(|f| f.get_ref().authority.as_ref()),
        ) && let Err(failure) = expr::eval_number(authority, &cel)
            && !failure.depends_on_data()
        {
            return Err(refuse(&failure)
                .field("fallback.authority")
                .at(text, raw_authority.span().start));
        }
    }
    Ok(())
}
