//! The variables CEL expressions see, built from one [`Output`].
//!
//! Routing is on the gate's ingest hot path, so variables are built lazily: only those an
//! expression actually reads while routing an output are ever converted, each at most once, and
//! strings are borrowed from the output rather than copied.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use countersign_core::Output;
use serde_json::Value as Json;

use crate::error::RouteError;

/// How deep the JSON an output carries (input snapshot, proposal, attribution values) may nest.
/// Far beyond any real model output, and low enough that recursive conversion and comparison stay
/// well within a thread's stack.
pub const MAX_DATA_DEPTH: usize = 64;

macro_rules! variables {
    ($($var:ident => $name:literal: $doc:literal,)*) => {
        /// A variable the policy's expressions can read.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum Var {
            $(#[doc = $doc] $var,)*
        }

        impl Var {
            pub(crate) const ALL: &[Var] = &[$(Var::$var,)*];

            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Var::$var => $name,)*
                }
            }

            pub(crate) fn from_name(name: &str) -> Option<Var> {
                match name {
                    $($name => Some(Var::$var),)*
                    _ => None,
                }
            }
        }
    };
}

variables! {
    Output => "output": "The whole output, as its JSON serialization.",
    Model => "model": "`{name, version}` of the model.",
    ModelId => "model_id": "`name@version`.",
    Confidence => "confidence": "The model's confidence, a double.",
    Score => "score": "The raw score (double) or null.",
    Proposal => "proposal": "The proposed outcome, a map.",
    Input => "input": "The input snapshot, a map.",
    Amount => "amount": "`proposal.amount` as a double when it is a number, else 0.0.",
    Decision => "decision": "`proposal.decision` when it is a string, else \"\".",
    Attributions => "attributions": "Map from feature to (summed) weight.",
    ProtectedWeight => "protected_weight": "Share of the total absolute weight on protected features.",
    OnProbation => "on_probation": "Whether the model version is on probation.",
    ReasonCodes => "reason_codes": "The codes of the model's reason codes, a list of strings.",
    CircuitOpen => "circuit_open": "Whether the gate's circuit breaker has tripped this model.",
}

/// What, besides the output, the variables are computed from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setting<'a> {
    pub protected_features: &'a [String],
    pub probation: &'a [String],
    pub tripped_models: &'a HashSet<String>,
}

/// Lazily built variables for one output; a CEL [`VariableResolver`].
pub(crate) struct Vars<'o> {
    output: &'o Output,
    setting: Setting<'o>,
    model_id: OnceLock<String>,
    slots: [OnceLock<Box<dyn Val + 'o>>; Var::ALL.len()],
}

impl std::fmt::Debug for Vars<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vars")
            .field("output_id", &self.output.output_id)
            .finish_non_exhaustive()
    }
}

impl<'o> Vars<'o> {
    pub(crate) fn new(output: &'o Output, setting: Setting<'o>) -> Self {
        Vars {
            output,
            setting,
            model_id: OnceLock::new(),
            slots: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    pub(crate) fn model_id(&self) -> &str {
        self.model_id.get_or_init(|| self.output.model.to_string())
    }

    pub(crate) fn circuit_open(&self) -> bool {
        !self.setting.tripped_models.is_empty()
            && self.setting.tripped_models.contains(self.model_id())
    }

    fn on_probation(&self) -> bool {
        let id = self.model_id();
        self.setting.probation.iter().any(|p| p == id)
    }

    fn get(&self, var: Var) -> &(dyn Val + 'o) {
        self.slots[var as usize]
            .get_or_init(|| self.build(var))
            .as_ref()
    }

    fn build(&self, var: Var) -> Box<dyn Val + 'o> {
        let output = self.output;
        match var {
            Var::Output => {
                // Serializing an `Output` cannot fail (string keys, no custom serializers); null
                // would only make expressions on `output` fail and route to humans.
                let json = serde_json::to_value(output).unwrap_or(Json::Null);
                json_to_owned_val(&json)
            }
            Var::Model => {
                let mut map: HashMap<CelMapKey<'o>, Box<dyn Val + 'o>> = HashMap::with_capacity(2);
                map.insert(
                    CelMapKey::from("name"),
                    Box::new(CelString::from(output.model.name.as_str())),
                );
                map.insert(
                    CelMapKey::from("version"),
                    Box::new(CelString::from(output.model.version.as_str())),
                );
                Box::new(CelMap::from(map))
            }
            Var::ModelId => Box::new(CelString::from(self.model_id().to_owned())),
            Var::Confidence => Box::new(CelDouble::from(output.confidence)),
            Var::Score => match output.score {
                Some(score) => Box::new(CelDouble::from(score)),
                None => Box::new(CelNull),
            },
            Var::Proposal => object_to_val(&output.proposal),
            Var::Input => object_to_val(&output.input),
            Var::Amount => Box::new(CelDouble::from(amount(output))),
            Var::Decision => Box::new(CelString::from(
                output
                    .proposal
                    .get("decision")
                    .and_then(Json::as_str)
                    .unwrap_or(""),
            )),
            Var::Attributions => {
                let mut weights: HashMap<&'o str, f64> = HashMap::new();
                for a in &output.evidence.attributions {
                    *weights.entry(a.feature.as_str()).or_insert(0.0) += a.weight;
                }
                let map: HashMap<CelMapKey<'o>, Box<dyn Val + 'o>> = weights
                    .into_iter()
                    .map(|(feature, weight)| {
                        (
                            CelMapKey::from(feature),
                            Box::new(CelDouble::from(weight)) as Box<dyn Val + 'o>,
                        )
                    })
                    .collect();
                Box::new(CelMap::from(map))
            }
            Var::ProtectedWeight => Box::new(CelDouble::from(protected_weight(
                output,
                self.setting.protected_features,
            ))),
            Var::OnProbation => Box::new(CelBool::from(self.on_probation())),
            Var::ReasonCodes => {
                let codes: Vec<Box<dyn Val + 'o>> = output
                    .evidence
                    .reason_codes
                    .iter()
                    .map(|r| Box::new(CelString::from(r.code.as_str())) as Box<dyn Val + 'o>)
                    .collect();
                Box::new(CelList::from(codes))
            }
            Var::CircuitOpen => Box::new(CelBool::from(self.circuit_open())),
        }
    }
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let var = Var::from_name(variable)?;
        Some(CowVal::Borrowed(self.get(var)))
    }
}

/// `proposal.amount` when it is a number, else 0.
pub fn amount(output: &Output) -> f64 {
    output
        .proposal
        .get("amount")
        .and_then(Json::as_f64)
        .unwrap_or(0.0)
}

/// The share of the total absolute attribution weight that falls on protected features: 0 when
/// the output has no attributions (or all weights are 0), 1 when only protected features count.
pub fn protected_weight(output: &Output, protected_features: &[String]) -> f64 {
    let mut total = 0.0;
    let mut protected = 0.0;
    for a in &output.evidence.attributions {
        let weight = a.weight.abs();
        total += weight;
        if protected_features.contains(&a.feature) {
            protected += weight;
        }
    }
    if total > 0.0 { protected / total } else { 0.0 }
}

/// Refuses an output whose numbers or nesting no expression could be trusted on.
pub(crate) fn check_output(output: &Output) -> Result<(), RouteError> {
    if !(0.0..=1.0).contains(&output.confidence) {
        return Err(RouteError::BadConfidence(output.confidence));
    }
    if let Some(score) = output.score
        && !score.is_finite()
    {
        return Err(RouteError::BadScore(score));
    }
    if !object_depth_within(&output.input, MAX_DATA_DEPTH) {
        return Err(RouteError::TooDeep {
            field: "input",
            limit: MAX_DATA_DEPTH,
        });
    }
    if !object_depth_within(&output.proposal, MAX_DATA_DEPTH) {
        return Err(RouteError::TooDeep {
            field: "proposal",
            limit: MAX_DATA_DEPTH,
        });
    }
    for a in &output.evidence.attributions {
        if !a.weight.is_finite() {
            return Err(RouteError::BadAttribution {
                feature: a.feature.clone(),
            });
        }
        if !depth_within(&a.value, MAX_DATA_DEPTH) {
            return Err(RouteError::TooDeep {
                field: "an attribution value",
                limit: MAX_DATA_DEPTH,
            });
        }
    }
    Ok(())
}

fn object_depth_within(object: &serde_json::Map<String, Json>, budget: usize) -> bool {
    budget > 0 && object.values().all(|v| depth_within(v, budget - 1))
}

// Recursion is bounded by `budget`, whatever the depth of `value`.
fn depth_within(value: &Json, budget: usize) -> bool {
    match value {
        Json::Array(items) => budget > 0 && items.iter().all(|v| depth_within(v, budget - 1)),
        Json::Object(object) => object_depth_within(object, budget),
        _ => true,
    }
}

fn object_to_val<'o>(object: &'o serde_json::Map<String, Json>) -> Box<dyn Val + 'o> {
    let map: HashMap<CelMapKey<'o>, Box<dyn Val + 'o>> = object
        .iter()
        .map(|(k, v)| (CelMapKey::from(k.as_str()), json_to_val(v)))
        .collect();
    Box::new(CelMap::from(map))
}

/// Converts JSON to a CEL value borrowing its strings. Numbers keep their JSON type: an integer
/// is a CEL `int` (or `uint` above `i64::MAX`), anything else a `double`.
fn json_to_val<'o>(value: &'o Json) -> Box<dyn Val + 'o> {
    match value {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => number_to_val(n),
        Json::String(s) => Box::new(CelString::from(s.as_str())),
        Json::Array(items) => Box::new(CelList::from(
            items.iter().map(json_to_val).collect::<Vec<_>>(),
        )),
        Json::Object(object) => object_to_val(object),
    }
}

fn json_to_owned_val<'o>(value: &Json) -> Box<dyn Val + 'o> {
    match value {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => number_to_val(n),
        Json::String(s) => Box::new(CelString::from(s.clone())),
        Json::Array(items) => Box::new(CelList::from(
            items.iter().map(json_to_owned_val).collect::<Vec<_>>(),
        )),
        Json::Object(object) => {
            let map: HashMap<CelMapKey<'o>, Box<dyn Val + 'o>> = object
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.clone()), json_to_owned_val(v)))
                .collect();
            Box::new(CelMap::from(map))
        }
    }
}

fn number_to_val<'o>(n: &serde_json::Number) -> Box<dyn Val + 'o> {
    if let Some(i) = n.as_i64() {
        Box::new(CelInt::from(i))
    } else if let Some(u) = n.as_u64() {
        Box::new(CelUInt::from(u))
    } else {
        Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested_arrays(levels: usize) -> Json {
        (0..levels).fold(json!(1), |inner, _| json!([inner]))
    }

    #[test]
    fn depth_counts_every_container_including_the_object_itself() {
        // The input object is one level; 63 arrays inside it make 64.
        let mut input = serde_json::Map::new();
        input.insert("a".into(), nested_arrays(MAX_DATA_DEPTH - 1));
        assert!(object_depth_within(&input, MAX_DATA_DEPTH));
        input.insert("a".into(), nested_arrays(MAX_DATA_DEPTH));
        assert!(!object_depth_within(&input, MAX_DATA_DEPTH));
        input.insert("a".into(), json!({"b": {"c": [1, 2, {"d": null}]}}));
        assert!(object_depth_within(&input, 5));
        assert!(!object_depth_within(&input, 4));
    }

    #[test]
    fn every_variable_name_round_trips() {
        for var in Var::ALL {
            assert_eq!(Var::from_name(var.name()), Some(*var));
        }
        assert_eq!(Var::from_name("nope"), None);
    }
}
