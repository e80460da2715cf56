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
//! The values handed to rules and scripts are prepared by [`rules_data`] and
//! [`crate::script::to_dynamic_shaped`] from the types of the entity and of the loaded rows.

use datalogic_rs::bumpalo::collections::Vec as BumpVec;
use datalogic_rs::bumpalo::Bump;
use datalogic_rs::datavalue::NumberValue;
use datalogic_rs::operator::EvalContext;
use datalogic_rs::DataValue;
use indexmap::IndexMap;
use ontology::decimal::{self, Rounding};
use ontology::{CompiledType, FieldDef, FieldKind, FieldName};
use rust_decimal::Decimal;
use serde_json::Value;

/// Which top-level values of a context hold entities (or lists of them, for a load by filter)
/// of which type.
pub type Shapes<'a> = [(&'a str, &'a CompiledType)];

/// The context as rules read it, converted straight into the evaluator's form: every decimal
/// field of the entities in it (as [`Shapes`] says) a number, the rest as it is. One walk over
/// the context and nothing copied on the heap; the values live in `arena`.
///
/// Only the fields that hold decimals are walked by their definitions; every other value is
/// converted as JSON. (Copying the whole context to a JSON view with numbers and converting that
/// took the credit check's guard from ~1 µs to ~5.5 µs; see docs/benchmarks.md.)
pub fn rules_data<'a>(context: &Value, shapes: &Shapes<'_>, arena: &'a Bump) -> DataValue<'a> {
    let Value::Object(map) = context else {
        return DataValue::from_serde_value_in(context, arena);
    };
    let mut pairs = BumpVec::with_capacity_in(map.len(), arena);
    for (key, value) in map {
        let shape = shapes.iter().find(|(name, ty)| *name == key.as_str() && ty.has_decimals());
        let data = match (shape, value) {
            (Some((_, ty)), Value::Array(rows)) => {
                let mut items = BumpVec::with_capacity_in(rows.len(), arena);
                items.extend(rows.iter().map(|row| object_data(&ty.def().fields, row, arena)));
                DataValue::Array(items.into_bump_slice())
            }
            (Some((_, ty)), row) => object_data(&ty.def().fields, row, arena),
            (None, value) => DataValue::from_serde_value_in(value, arena),
        };
        pairs.push((arena.alloc_str(key) as &str, data));
    }
    DataValue::Object(pairs.into_bump_slice())
}

/// An entity's data (or an object field's value) with `fields` as its definitions.
fn object_data<'a>(fields: &IndexMap<FieldName, FieldDef>, value: &Value, arena: &'a Bump) -> DataValue<'a> {
    let Value::Object(map) = value else {
        return DataValue::from_serde_value_in(value, arena);
    };
    let mut pairs = BumpVec::with_capacity_in(map.len(), arena);
    for (key, value) in map {
        let data = match fields.get(key.as_str()) {
            Some(field) => field_data(field, value, arena),
            None => DataValue::from_serde_value_in(value, arena),
        };
        pairs.push((arena.alloc_str(key) as &str, data));
    }
    DataValue::Object(pairs.into_bump_slice())
}

/// A field's value: a decimal as the number nearest it, an object or array with decimals inside
/// walked by its definitions, anything else as JSON.
fn field_data<'a>(field: &FieldDef, value: &Value, arena: &'a Bump) -> DataValue<'a> {
    match (field.kind, value, &field.fields, &field.items) {
        (FieldKind::Decimal, value, _, _) => match decimal_number(value) {
            Some(n) => DataValue::Number(n),
            None => DataValue::from_serde_value_in(value, arena),
        },
        (FieldKind::Object, value, Some(fields), _) => object_data(fields, value, arena),
        (FieldKind::Array, Value::Array(elements), _, Some(items)) => {
            let mut out = BumpVec::with_capacity_in(elements.len(), arena);
            out.extend(elements.iter().map(|e| field_data(items, e, arena)));
            DataValue::Array(out.into_bump_slice())
        }
        (_, value, _, _) => DataValue::from_serde_value_in(value, arena),
    }
}

/// An entity's data of type `ty` as rules read it: its decimal fields JSON numbers.
pub fn numbers_for_rules(ty: &CompiledType, data: &mut Value) {
    ty.for_each_decimal(data, &mut as_number);
}

/// A decimal value as the number nearest it: a whole value an integer (`100`, not `100.0`, in
/// rules and in the values a guard shows), else the nearest double. `None` when the value is not
/// a decimal (it is left as it is).
fn decimal_number(value: &Value) -> Option<NumberValue> {
    use rust_decimal::prelude::ToPrimitive;
    let d = decimal::from_json(value).ok()?;
    if let Some(i) = d.fract().is_zero().then(|| d.to_i64()).flatten() {
        return Some(NumberValue::Integer(i));
    }
    let f = decimal::to_f64(d);
    f.is_finite().then_some(NumberValue::Float(f))
}

/// A decimal value as the JSON number nearest it (left as it is when it is not a decimal).
fn as_number(value: &mut Value) {
    match decimal_number(value) {
        Some(NumberValue::Integer(i)) => *value = Value::from(i),
        Some(NumberValue::Float(f)) => {
            if let Some(n) = serde_json::Number::from_f64(f) {
                *value = Value::Number(n);
            }
        }
        None => {}
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
        let ctx = LogicContext::shaped(&context, &shapes);
        let eval = |rule: Value| Logic::compile(&rule).expect("compiles").evaluate(&ctx).expect("evaluates");
        // Compared as numbers, not as text ("100.00" < "99.5" as text).
        assert_eq!(eval(json!({">": [{"var": "entity.total"}, 99.5]})), json!(true));
        assert_eq!(eval(json!({"==": [{"+": [{"var": "entity.lines.0.amount"}, 0.2]}, 0.3]})), json!(true));
        // What a failed guard shows: the values as the rule read them.
        assert_eq!(ctx.lookup("entity.total"), Some(json!(100)));
        assert_eq!(ctx.lookup("entity.lines.0.amount"), Some(json!(0.1)));
        assert_eq!(ctx.lookup("entity.lines.1.amount"), None);
        assert_eq!(ctx.lookup("input"), Some(json!({})));
    }

    /// The context converted straight to the evaluator's form equals the JSON view with every
    /// decimal field made a number by [`CompiledType::for_each_decimal`] (the old way: a copy of
    /// the whole context), at every depth, for a row and for a list of rows, and leaves alone
    /// what no shape names, fields no definition declares and values that are not decimals.
    #[test]
    fn the_converted_context_is_the_json_view_with_numbers() {
        let ty = invoice();
        let plain = CompiledType::compile(
            serde_yaml_ng::from_str("name: note\nfields:\n  text: { type: string }\n").expect("parses"),
        )
        .expect("compiles");
        let row = json!({
            "total": "1250.00", "exact": "0.333333333", "other": "12.50",
            "lines": [{"amount": "7"}, {"amount": "not a number"}, {"amount": 2.5}, "not an object"],
        });
        let context = json!({
            "entity": row, "rows": [row, {"total": null}], "note": {"text": "1.50"},
            "input": {"total": "3.00"}, "now": "2026-12-04T00:00:00Z", "n": 18446744073709551615u64,
        });
        let shapes = [("entity", &ty), ("rows", &ty), ("note", &plain)];
        let mut expected = context.clone();
        ty.for_each_decimal(&mut expected["entity"], &mut as_number);
        for r in expected["rows"].as_array_mut().expect("rows") {
            ty.for_each_decimal(r, &mut as_number);
        }
        assert_eq!(expected["entity"]["total"], json!(1250));
        assert_eq!(expected["entity"]["lines"][1]["amount"], json!("not a number"));
        let shaped = LogicContext::shaped(&context, &shapes);
        for key in ["entity", "rows", "note", "input", "now"] {
            assert_eq!(shaped.lookup(key).as_ref(), expected.get(key), "{key}");
        }
        // Numbers past i64 are doubles in the evaluator, whichever way it is converted.
        assert_eq!(shaped.lookup("n"), LogicContext::new(&context).lookup("n"));
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
