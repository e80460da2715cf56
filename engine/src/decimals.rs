//! Exact decimal arithmetic in rules and scripts (the `decimal` field kind of
//! [`ontology::decimal`]).
//!
//! - **Rules (JSON-Logic).** Numbers in rules are doubles, as JSON-Logic has them, and a decimal
//!   field reads as the double nearest its value (exact up to 15 significant digits, so every
//!   amount of money compares rightly). What is not exact with doubles is arithmetic
//!   (`0.1 + 0.2` is `0.30000000000000004`): `+`, `-`, `*` and `/` are therefore done in decimal
//!   ([`LOGIC_OPERATORS`]; the rule compiler rewrites them) on each operand's shortest
//!   representation, so `0.1 + 0.2` is `0.3` and a sum of order lines equals the total to the
//!   cent. `{"round": [x, 2, "half_even"]}` rounds with an explicit mode.
//! - **Scripts (Rhai).** A decimal field is a Rhai `Decimal` (28 significant digits, exact);
//!   `+ - * / %` and comparisons work between decimals and integers (Rhai's own) and between
//!   decimals and floats ([`register`]: the float is taken by its shortest representation).
//!   `round(x, 2, "half_up")` rounds with a mode, `to_decimal(x)` and `parse_decimal(s)` make
//!   one. A decimal written back to a field is stored exactly ([`ontology::decimal::Spec`]).
//!
//! The values handed to rules and scripts are prepared by [`rules_view`] and
//! [`crate::script::to_dynamic_shaped`] from the types of the entity and of the loaded rows.

use std::borrow::Cow;

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::datavalue::NumberValue;
use datalogic_rs::operator::EvalContext;
use datalogic_rs::DataValue;
use ontology::decimal::{self, Rounding};
use ontology::CompiledType;
use rust_decimal::Decimal;
use serde_json::Value;

/// Which top-level values of a context hold entities (or lists of them, for a load by filter)
/// of which type.
pub type Shapes<'a> = [(&'a str, &'a CompiledType)];

/// The context as rules read it: every decimal field of the entities in it (as [`Shapes`]
/// says) a JSON number. Borrowed as it is when no type of `shapes` has a decimal field.
pub fn rules_view<'c>(context: &'c Value, shapes: &Shapes<'_>) -> Cow<'c, Value> {
    let Value::Object(map) = context else { return Cow::Borrowed(context) };
    let wanted = |(key, ty): &&(&str, &CompiledType)| ty.has_decimals() && map.contains_key(*key);
    if !shapes.iter().any(|s| wanted(&s)) {
        return Cow::Borrowed(context);
    }
    let mut out = context.clone();
    for (key, ty) in shapes.iter().filter(wanted) {
        let Some(value) = out.get_mut(*key) else { continue };
        match value {
            Value::Array(rows) => rows.iter_mut().for_each(|row| ty.for_each_decimal(row, &mut as_number)),
            row => ty.for_each_decimal(row, &mut as_number),
        }
    }
    Cow::Owned(out)
}

/// An entity's data of type `ty` as rules read it: its decimal fields JSON numbers.
pub fn numbers_for_rules(ty: &CompiledType, data: &mut Value) {
    ty.for_each_decimal(data, &mut as_number);
}

/// A decimal value as the JSON number nearest it (left as it is when it is not a decimal).
/// A whole value is an integer (`100`, not `100.0`, in rules and in the values a guard shows).
fn as_number(value: &mut Value) {
    use rust_decimal::prelude::ToPrimitive;
    if let Ok(d) = decimal::from_json(value) {
        if let Some(i) = d.fract().is_zero().then(|| d.to_i64()).flatten() {
            *value = Value::from(i);
        } else if let Some(n) = serde_json::Number::from_f64(decimal::to_f64(d)) {
            *value = Value::Number(n);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// The internal operators the rule compiler puts in place of JSON-Logic's arithmetic, and the
/// operator each replaces. Their names are not builtins, so a tenant cannot write them.
pub const ARITHMETIC: [(&str, &str, Op); 4] = [
    ("+", "__switchyard_add", Op::Add),
    ("-", "__switchyard_sub", Op::Sub),
    ("*", "__switchyard_mul", Op::Mul),
    ("/", "__switchyard_div", Op::Div),
];

/// The rounding operator: `{"round": [x]}`, `{"round": [x, places]}`,
/// `{"round": [x, places, "half_up"]}` (default mode `half_even`).
pub const ROUND_OPERATOR: &str = "round";

/// An arithmetic operator done in decimal.
#[derive(Debug, Clone, Copy)]
pub struct Arithmetic(pub Op);

/// Which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    /// The JSON-Logic name.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
        }
    }

    /// The operator replacing JSON-Logic's `name`, if it is one of the four.
    pub fn internal_name(name: &str) -> Option<&'static str> {
        ARITHMETIC.iter().find(|(op, _, _)| *op == name).map(|(_, internal, _)| *internal)
    }
}

fn custom(message: String) -> datalogic_rs::Error {
    datalogic_rs::Error::custom_message(message)
}

/// The decimal an operand stands for, with JSON-Logic's coercions (`null` and `false` are 0,
/// `true` 1, a numeric string its number).
fn operand(v: &DataValue<'_>, op: &str) -> datalogic_rs::Result<Decimal> {
    match v {
        DataValue::Number(NumberValue::Integer(i)) => Ok(Decimal::from(*i)),
        DataValue::Number(NumberValue::Float(f)) => decimal::from_f64(*f)
            .or_else(|_| Decimal::try_from(*f))
            .map_err(|_| custom(format!("`{op}`: {f} is out of range"))),
        DataValue::Null | DataValue::Bool(false) => Ok(Decimal::ZERO),
        DataValue::Bool(true) => Ok(Decimal::ONE),
        DataValue::String(s) if s.trim().is_empty() => Ok(Decimal::ZERO),
        DataValue::String(s) => decimal::parse_str(s).ok_or_else(|| custom(format!("`{op}`: {s:?} is not a number"))),
        _ => Err(custom(format!("`{op}`: a list or an object is not a number"))),
    }
}

/// A decimal result as a rule's number: an integer when whole and in range, else a double.
fn number<'a>(d: Decimal, arena: &'a Bump) -> &'a DataValue<'a> {
    use rust_decimal::prelude::ToPrimitive;
    let n = match d.fract().is_zero().then(|| d.to_i64()).flatten() {
        Some(i) => NumberValue::Integer(i),
        None => NumberValue::Float(decimal::to_f64(d)),
    };
    arena.alloc(DataValue::Number(n))
}

/// `a op b`, falling back to doubles past the decimal's range (28 digits).
fn apply(op: Op, a: Decimal, b: Decimal) -> datalogic_rs::Result<Decimal> {
    let exact = match op {
        Op::Add => a.checked_add(b),
        Op::Sub => a.checked_sub(b),
        Op::Mul => a.checked_mul(b),
        Op::Div if b.is_zero() => return Err(custom("`/`: division by zero".into())),
        Op::Div => a.checked_div(b),
    };
    if let Some(d) = exact {
        return Ok(d);
    }
    let (x, y) = (decimal::to_f64(a), decimal::to_f64(b));
    let f = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div => x / y,
    };
    Decimal::try_from(f).map_err(|_| custom(format!("`{}`: the result is out of range", op.symbol())))
}

impl datalogic_rs::CustomOperator for Arithmetic {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let op = self.0;
        let symbol = op.symbol();
        // `{"+": [[1, 2, 3]]}` (one list) folds the list, as the evaluator does.
        let items: Vec<&DataValue<'a>> = match args {
            [DataValue::Array(list)] => list.iter().collect(),
            _ => args.to_vec(),
        };
        let mut values = items.iter().map(|v| operand(v, symbol));
        let Some(first) = values.next().transpose()? else {
            return Ok(number(if op == Op::Mul { Decimal::ONE } else { Decimal::ZERO }, arena));
        };
        let mut acc = first;
        let mut count = 1;
        for v in values {
            acc = apply(op, acc, v?)?;
            count += 1;
        }
        if count == 1 {
            match op {
                Op::Sub => acc = -acc,
                Op::Div => return Err(custom("`/` needs two operands".into())),
                Op::Add | Op::Mul => {}
            }
        }
        if op == Op::Div && count > 2 {
            return Err(custom("`/` takes two operands".into()));
        }
        Ok(number(acc, arena))
    }
}

/// `{"round": [x, places, mode]}`.
#[derive(Debug, Clone, Copy)]
pub struct Round;

impl datalogic_rs::CustomOperator for Round {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let Some(x) = args.first() else {
            return Err(custom("`round`: write {\"round\": [value, places, \"half_even\"]}".into()));
        };
        let x = operand(x, "round")?;
        let places = match args.get(1) {
            None => 0,
            Some(DataValue::Number(NumberValue::Integer(p))) if (0..=28).contains(p) => *p as u32,
            Some(_) => return Err(custom("`round`: the places must be an integer from 0 to 28".into())),
        };
        let mode = match args.get(2) {
            None => Rounding::HalfEven,
            Some(DataValue::String(s)) => rounding(s).map_err(custom)?,
            Some(_) => return Err(custom(format!("`round`: the mode must be one of {}", modes()))),
        };
        Ok(number(decimal::round(x, places, mode), arena))
    }
}

fn modes() -> String {
    Rounding::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

fn rounding(name: &str) -> Result<Rounding, String> {
    Rounding::parse(name).ok_or_else(|| format!("unknown rounding mode {name:?} (one of {})", modes()))
}

// ---------------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------------

/// Registers, in a script engine, arithmetic and comparisons between decimals and floats, and
/// `round(x, places, mode)`.
pub fn register(engine: &mut rhai::Engine) {
    use rhai::{EvalAltResult, Position, FLOAT, INT};
    type R<T> = Result<T, Box<EvalAltResult>>;
    fn err<T>(message: String) -> R<T> {
        Err(Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE)))
    }
    fn dec(f: FLOAT) -> R<Decimal> {
        decimal::from_f64(f).or_else(|_| Decimal::try_from(f)).or_else(|_| err(format!("{f} is not a decimal")))
    }
    fn op(name: &str, a: Decimal, b: Decimal) -> R<Decimal> {
        let r = match name {
            "+" => a.checked_add(b),
            "-" => a.checked_sub(b),
            "*" => a.checked_mul(b),
            "/" if b.is_zero() => return err("division by zero".into()),
            "/" => a.checked_div(b),
            _ if b.is_zero() => return err("division by zero".into()),
            _ => a.checked_rem(b),
        };
        r.map_or_else(|| err(format!("decimal overflow in {a} {name} {b}")), Ok)
    }
    macro_rules! mixed {
        ($($name:literal),*) => {$(
            engine.register_fn($name, |a: Decimal, b: FLOAT| -> R<Decimal> { op($name, a, dec(b)?) });
            engine.register_fn($name, |a: FLOAT, b: Decimal| -> R<Decimal> { op($name, dec(a)?, b) });
        )*};
    }
    mixed!("+", "-", "*", "/", "%");
    macro_rules! compare {
        ($($name:literal => $cmp:expr),*) => {$(
            engine.register_fn($name, |a: Decimal, b: FLOAT| -> R<bool> { Ok($cmp(a, dec(b)?)) });
            engine.register_fn($name, |a: FLOAT, b: Decimal| -> R<bool> { Ok($cmp(dec(a)?, b)) });
        )*};
    }
    compare!(
        "==" => |a: Decimal, b: Decimal| a == b,
        "!=" => |a: Decimal, b: Decimal| a != b,
        "<" => |a: Decimal, b: Decimal| a < b,
        "<=" => |a: Decimal, b: Decimal| a <= b,
        ">" => |a: Decimal, b: Decimal| a > b,
        ">=" => |a: Decimal, b: Decimal| a >= b
    );
    fn places(p: INT) -> R<u32> {
        u32::try_from(p).ok().filter(|p| *p <= 28).map_or_else(|| err(format!("round: {p} places (0 to 28)")), Ok)
    }
    engine.register_fn("round", |x: Decimal, p: INT, mode: &str| -> R<Decimal> {
        Ok(decimal::round(x, places(p)?, rounding(mode).or_else(err)?))
    });
    engine.register_fn("round", |x: FLOAT, p: INT, mode: &str| -> R<Decimal> {
        Ok(decimal::round(dec(x)?, places(p)?, rounding(mode).or_else(err)?))
    });
    engine.register_fn("round", |x: INT, p: INT, mode: &str| -> R<Decimal> {
        Ok(decimal::round(Decimal::from(x), places(p)?, rounding(mode).or_else(err)?))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::{Logic, LogicContext};
    use serde_json::json;

    fn eval(rule: Value, ctx: Value) -> Value {
        Logic::compile(&rule).expect("compiles").evaluate(&LogicContext::new(&ctx)).expect("evaluates")
    }

    #[test]
    fn rule_arithmetic_is_exact_in_decimal() {
        assert_eq!(eval(json!({"+": [0.1, 0.2]}), json!({})), json!(0.3));
        assert_eq!(eval(json!({"==": [{"+": [0.1, 0.2]}, 0.3]}), json!({})), json!(true));
        assert_eq!(eval(json!({"-": [1.1, 0.2, 0.3]}), json!({})), json!(0.6));
        assert_eq!(eval(json!({"*": [1.1, 1.1]}), json!({})), json!(1.21));
        assert_eq!(eval(json!({"/": [1, 4]}), json!({})), json!(0.25));
        assert_eq!(eval(json!({"-": [5]}), json!({})), json!(-5));
        assert_eq!(eval(json!({"+": ["12.50", 1]}), json!({})), json!(13.5));
        assert_eq!(eval(json!({"+": [[0.1, 0.2, 0.3]]}), json!({})), json!(0.6));
        // A sum of lines in a reduce is the total to the cent.
        let lines = json!({"lines": [{"q": 3, "p": 19.99}, {"q": 7, "p": 0.7}, {"q": 1, "p": 1234.56}]});
        let total = json!({"reduce": [{"var": "lines"},
            {"+": [{"var": "accumulator"}, {"*": [{"var": "current.q"}, {"var": "current.p"}]}]}, 0]});
        assert_eq!(eval(total, lines), json!(1299.43));
        // A decision table's `collect` with `sum` adds the same way.
        assert_eq!(crate::decision::num::add(0.1, 0.2), 0.3);
        // Integers stay integers, beyond what a double holds exactly.
        assert_eq!(eval(json!({"+": [9_007_199_254_740_993_i64, 0]}), json!({})), json!(9_007_199_254_740_993_i64));
    }

    #[test]
    fn rule_arithmetic_errors_say_what() {
        let err = Logic::compile(&json!({"/": [1, 0]}))
            .expect("compiles")
            .evaluate(&LogicContext::new(&json!({})))
            .expect_err("division by zero");
        assert!(err.to_string().contains("division by zero"), "{err}");
        let err = Logic::compile(&json!({"+": ["abc", 1]}))
            .expect("compiles")
            .evaluate(&LogicContext::new(&json!({})))
            .expect_err("not a number");
        assert!(err.to_string().contains("not a number"), "{err}");
        // The internal names cannot be written by a tenant.
        assert!(Logic::compile(&json!({"__switchyard_add": [1, 2]})).is_err());
    }

    fn invoice() -> CompiledType {
        let def: ontology::EntityTypeDef = serde_yaml_ng::from_str(
            "name: invoice\nfields:\n  total: { type: decimal, scale: 2 }\n  exact: { type: decimal, precision: 28, scale: 9 }\n  \
             lines: { type: array, items: { type: object, fields: { amount: { type: decimal, precision: 28, scale: 9 } } } }\n",
        )
        .expect("parses");
        CompiledType::compile(def).expect("compiles")
    }

    #[test]
    fn scripts_see_decimals_and_write_them_back_exactly() {
        let ty = invoice();
        let engine = crate::script::ScriptEngine::new(&crate::Limits::default());
        let script = engine
            .compile(
                r#"
                let t = 0;
                for l in entity.lines { t += l.amount; }
                entity.exact = t;
                entity.total = round(t, 2, "half_up");
                if type_of(entity.lines[0].amount) != "decimal" { fail(type_of(entity.lines[0].amount)); }
                if !(entity.lines[0].amount + 0.2 == 0.3) { fail("mixed with a float"); }
                "#,
                &[],
            )
            .expect("compiles");
        let context = json!({
            "entity": {"total": "0.00", "lines": [
                {"amount": "0.100000000"}, {"amount": "0.200000000"}, {"amount": "123456789012.123456789"}
            ]},
            "input": {}, "actor": {}, "now": "2026-12-03T00:00:00Z",
        });
        let out = engine.run_shaped(&script, &context, &[("entity", &ty)]).expect("runs");
        let mut data = out.data;
        ty.prepare(&mut data).expect("valid");
        assert_eq!(data["exact"], json!("123456789012.423456789"));
        assert_eq!(data["total"], json!("123456789012.42"));
        assert_eq!(data["lines"][2]["amount"], json!("123456789012.123456789"));
    }

    #[test]
    fn rules_read_decimal_fields_as_numbers() {
        let ty = invoice();
        let context = json!({"entity": {"total": "100.00", "lines": [{"amount": "0.100000000"}]}, "input": {}});
        let shapes = [("entity", &ty)];
        let view = rules_view(&context, &shapes);
        // Compared as numbers, not as text ("100.00" < "99.5" as text).
        assert_eq!(eval(json!({">": [{"var": "entity.total"}, 99.5]}), view.clone().into_owned()), json!(true));
        assert_eq!(
            eval(json!({"==": [{"+": [{"var": "entity.lines.0.amount"}, 0.2]}, 0.3]}), view.into_owned()),
            json!(true)
        );
    }

    #[test]
    fn round_takes_an_explicit_mode() {
        assert_eq!(eval(json!({"round": [2.345, 2]}), json!({})), json!(2.34));
        assert_eq!(eval(json!({"round": [2.345, 2, "half_up"]}), json!({})), json!(2.35));
        assert_eq!(eval(json!({"round": [-2.345, 2, "floor"]}), json!({})), json!(-2.35));
        assert_eq!(eval(json!({"round": [2.5]}), json!({})), json!(2));
        assert!(Logic::compile(&json!({"round": [1, 2, "nearest"]}))
            .expect("compiles")
            .evaluate(&LogicContext::new(&json!({})))
            .is_err());
    }
}
