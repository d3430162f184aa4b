//! Compiling and evaluating the policy's CEL expressions.

use cel::common::ast::{EntryExpr, Expr};
use cel::{Context, Env, ExecutionError, IdedExpr, Program, Value};

use crate::vars::Var;

/// Longest expression accepted, in bytes. Rules are one-liners; this bounds parse time and keeps
/// hostile input (a megabyte of `1 + 1 + ...`) away from the parser.
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// Deepest expression tree accepted. Evaluation recurses along the tree on the caller's thread,
/// at up to ~35 KiB of stack per level in a debug build: 24 levels stay within half of a default
/// 2 MiB thread stack. Real rules are a few levels deep.
pub const MAX_EXPRESSION_DEPTH: usize = 24;

/// Identifiers CEL resolves as types (`type(x) == string`).
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

const MODEL_FIELDS: &[&str] = &["name", "version"];

/// A compiled expression.
#[derive(Debug)]
pub(crate) struct Expression {
    pub program: Program,
}

/// Compiles `source` and checks what a dry run could miss behind a short circuit: the tree depth,
/// variables that do not exist and fields `model` does not have.
pub(crate) fn compile(env: &Env, source: &str) -> Result<Expression, String> {
    if source.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "the expression is {} bytes long; the limit is {MAX_EXPRESSION_BYTES}",
            source.len()
        ));
    }
    if source.trim().is_empty() {
        return Err("the expression is empty".to_owned());
    }
    let program = env.compile(source).map_err(|errors| {
        let Some(first) = errors.errors.first() else {
            return "Syntax error".to_owned();
        };
        if first.msg.contains("Recursion limit") {
            return format!("the expression nests deeper than the parser allows ({MAX_EXPRESSION_DEPTH} levels are accepted)");
        }
        let (line, column) = first.pos;
        if source.contains('\n') {
            format!("{} (at line {line}, column {column} of the expression)", first.msg)
        } else {
            format!("{} (at column {column} of the expression)", first.msg)
        }
    })?;
    check_tree(program.expression(), 1, false, &mut Vec::new())?;
    Ok(Expression { program })
}

// Recursion is bounded: it stops at MAX_EXPRESSION_DEPTH whatever the tree.
fn check_tree<'e>(
    node: &'e IdedExpr,
    depth: usize,
    in_loop: bool,
    bound: &mut Vec<&'e str>,
) -> Result<(), String> {
    if depth > MAX_EXPRESSION_DEPTH {
        return Err(format!(
            "the expression nests deeper than {MAX_EXPRESSION_DEPTH} levels"
        ));
    }
    let next = depth + 1;
    match &node.expr {
        Expr::Unspecified | Expr::Literal(_) => Ok(()),
        Expr::Ident(name) => {
            // Names starting with `@` are the accumulators macros introduce.
            if name.starts_with('@')
                || bound.contains(&name.as_str())
                || Var::from_name(name).is_some()
                || TYPE_NAMES.contains(&name.as_str())
            {
                Ok(())
            } else {
                let known: Vec<&str> = Var::ALL.iter().map(|v| v.name()).collect();
                Err(format!(
                    "unknown variable `{name}` (the variables are {})",
                    known.join(", ")
                ))
            }
        }
        Expr::Select(select) => {
            if let Expr::Ident(operand) = &select.operand.expr
                && operand == Var::Model.name()
                && !bound.contains(&operand.as_str())
                && !MODEL_FIELDS.contains(&select.field.as_str())
            {
                return Err(format!(
                    "`model` has no field `{}` (it has name and version)",
                    select.field
                ));
            }
            check_tree(&select.operand, next, in_loop, bound)
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                check_tree(target, next, in_loop, bound)?;
            }
            call.args
                .iter()
                .try_for_each(|arg| check_tree(arg, next, in_loop, bound))
        }
        Expr::List(list) => list
            .elements
            .iter()
            .try_for_each(|e| check_tree(e, next, in_loop, bound)),
        Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => {
                check_tree(&e.key, next, in_loop, bound)?;
                check_tree(&e.value, next, in_loop, bound)
            }
            EntryExpr::StructField(f) => check_tree(&f.value, next, in_loop, bound),
        }),
        Expr::Struct(s) => s.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => {
                check_tree(&e.key, next, in_loop, bound)?;
                check_tree(&e.value, next, in_loop, bound)
            }
            EntryExpr::StructField(f) => check_tree(&f.value, next, in_loop, bound),
        }),
        Expr::Comprehension(c) => {
            if in_loop {
                return Err(
                    "macros that loop (all, exists, exists_one, map, filter) cannot be \
                     nested: the cost of routing would grow with the square of the data"
                        .to_owned(),
                );
            }
            check_tree(&c.iter_range, next, false, bound)?;
            check_tree(&c.accu_init, next, false, bound)?;
            let outer = bound.len();
            bound.push(&c.accu_var);
            let with_accumulator = bound.len();
            bound.push(&c.iter_var);
            if let Some(second) = &c.iter_var2 {
                bound.push(second);
            }
            let body = check_tree(&c.loop_cond, next, true, bound)
                .and_then(|()| check_tree(&c.loop_step, next, true, bound));
            bound.truncate(with_accumulator);
            let result = body.and_then(|()| check_tree(&c.result, next, false, bound));
            bound.truncate(outer);
            result
        }
    }
}

/// Errors that depend on the data an output carries (a key it lacks, an empty list): a dry run on
/// a synthetic output cannot tell them from mistakes, so it lets them pass.
pub(crate) fn depends_on_data(error: &ExecutionError) -> bool {
    matches!(
        error,
        ExecutionError::NoSuchKey(_)
            | ExecutionError::IndexOutOfBounds(_)
            | ExecutionError::DivisionByZero(_)
            | ExecutionError::RemainderByZero(_)
            | ExecutionError::Overflow(..)
    )
}

/// A failed evaluation: the CEL error, or a result of the wrong type.
#[derive(Debug)]
pub(crate) enum EvalFailure {
    Cel(ExecutionError),
    WrongType(String),
    BadNumber(f64),
}

impl EvalFailure {
    pub(crate) fn depends_on_data(&self) -> bool {
        match self {
            EvalFailure::Cel(e) => depends_on_data(e),
            EvalFailure::WrongType(_) => false,
            EvalFailure::BadNumber(_) => true,
        }
    }
}

impl std::fmt::Display for EvalFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalFailure::Cel(e) => write!(f, "{e}"),
            EvalFailure::WrongType(message) => f.write_str(message),
            EvalFailure::BadNumber(n) => {
                write!(f, "authority must be a finite number >= 0, got {n}")
            }
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Function(..) => "a function",
        Value::Int(_) => "an int",
        Value::UInt(_) => "a uint",
        Value::Float(_) => "a double",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "a bool",
        Value::Null => "null",
        _ => "a value of another type",
    }
}

/// Evaluates a condition, which must give a bool.
pub(crate) fn eval_bool(expr: &Expression, ctx: &Context<'_, '_>) -> Result<bool, EvalFailure> {
    match expr.program.execute(ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(EvalFailure::WrongType(format!(
            "must evaluate to a bool, but gives {}",
            type_name(&other)
        ))),
        Err(e) => Err(EvalFailure::Cel(e)),
    }
}

/// Evaluates an authority, which must give a number (int, uint or double).
pub(crate) fn eval_number(expr: &Expression, ctx: &Context<'_, '_>) -> Result<f64, EvalFailure> {
    let n = match expr.program.execute(ctx) {
        Ok(Value::Float(f)) => f,
        Ok(Value::Int(i)) => i as f64,
        Ok(Value::UInt(u)) => u as f64,
        Ok(other) => {
            return Err(EvalFailure::WrongType(format!(
                "must evaluate to a number, but gives {}",
                type_name(&other)
            )));
        }
        Err(e) => return Err(EvalFailure::Cel(e)),
    };
    if n.is_finite() && n >= 0.0 {
        Ok(n)
    } else {
        Err(EvalFailure::BadNumber(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str) -> Result<(), String> {
        compile(&Env::stdlib(), source).map(|_| ())
    }

    #[test]
    fn known_variables_and_macro_variables_pass() {
        check("confidence < 0.7 && amount > 15000.0").unwrap();
        check("attributions.exists(f, f == 'age_in_years')").unwrap();
        check("reason_codes.all(c, c.startsWith('x')) && has(input.age)").unwrap();
        check("[1, 2].map(x, x * 2).size() == 2").unwrap();
        check("type(score) == double || score == null").unwrap();
        check("model.name == 'a' && model.version == '1'").unwrap();
    }

    #[test]
    fn unknown_variables_are_found_even_behind_short_circuits() {
        let err = check("false && confidance > 0.5").unwrap_err();
        assert!(err.starts_with("unknown variable `confidance`"), "{err}");
        // A macro variable is only bound inside its macro.
        let err = check("reason_codes.exists(c, c == 'a') && c == 'b'").unwrap_err();
        assert!(err.starts_with("unknown variable `c`"), "{err}");
        let err = check("model.nmae == 'x'").unwrap_err();
        assert!(err.contains("`model` has no field `nmae`"), "{err}");
    }

    #[test]
    fn loops_may_follow_each_other_but_not_nest() {
        check("attributions.filter(f, f != 'x').map(f, f + 'y').size() > 0").unwrap();
        let err = check("reason_codes.exists(a, reason_codes.exists(b, a != b))").unwrap_err();
        assert!(err.contains("cannot be nested"), "{err}");
    }

    #[test]
    fn deep_and_long_expressions_are_refused() {
        let long = vec!["1"; 40].join(" + ");
        let err = check(&format!("{long} > 0")).unwrap_err();
        assert!(err.contains("nests deeper than"), "{err}");
        let err = check(&"x".repeat(MAX_EXPRESSION_BYTES + 1)).unwrap_err();
        assert!(err.contains("bytes long"), "{err}");
        assert_eq!(check("  ").unwrap_err(), "the expression is empty");
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = check("confidence <").unwrap_err();
        assert!(err.starts_with("Syntax error"), "{err}");
        assert!(err.ends_with("(at column 13 of the expression)"), "{err}");
    }
}
