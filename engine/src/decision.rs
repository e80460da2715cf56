//! Decision tables: a tenant's rules kept as a table (inputs, outputs, rows of conditions, a hit
//! policy, a default) instead of nested guards, compiled once per published version and
//! evaluated with a trace of which rows matched and which won.
//!
//! A table ([`DecisionDef`], `decisions/<name>.yaml` of a package) declares typed inputs (each
//! may give a JSON-Logic expression over the evaluation context, used when a call does not pass
//! that input), typed outputs, and rows. A row's condition is one cell per input, in a compact
//! syntax for the common cases ([`Cell::parse`]: `-` for any, a literal, `>= 10`, `[1..5)`,
//! `a, b, c`, `!= x`), a YAML list (one of), or a JSON-Logic rule over the inputs; plus an
//! optional `if:` JSON-Logic rule over the inputs. The hit policy ([`HitPolicy`]) says what a
//! match gives: the `first` matching row; the `unique` one (two is an error); under `priority`
//! the one whose output comes first in that output's declared `values`; under `collect`, every
//! match (optionally aggregated: `sum`, `min`, `max`, `count`). Nothing matching gives the
//! `default`.
//!
//! Rows may instead come from entities of a type (`rows_from:`): the store reads them, and
//! [`DecisionTable::with_rows`] compiles them into a table like the package's own
//! (each entity's fields named after the inputs are its cells, those named after the outputs its
//! outputs).
//!
//! Everything here is pure. Sizes are bounded ([`MAX_ROWS`], [`MAX_COLUMNS`], [`MAX_CELL`],
//! [`MAX_LIST`]); JSON-Logic in cells runs under the running JSON-Logic budget
//! ([`crate::logic::budget`]). Numbers are handled in one place ([`num`]) so that an exact
//! decimal kind can replace `f64` there.
//!
//! The static analysis `tenant validate` reports ([`DecisionTable::problems`]): rows that
//! certainly overlap under `unique`, rows an earlier row hides under `first`, a missing default.

use std::cmp::Ordering;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::logic::{Logic, LogicContext};

/// Most rows of a table (declared or read from entities).
pub const MAX_ROWS: usize = 5_000;
/// Most inputs, and most outputs, of a table.
pub const MAX_COLUMNS: usize = 64;
/// Longest compact cell, in bytes.
pub const MAX_CELL: usize = 1_000;
/// Most values of a list cell (`a, b, c` or a YAML list).
pub const MAX_LIST: usize = 1_000;
/// Most tables of a package.
pub const MAX_TABLES: usize = 200;
/// How deep `decide` may call `decide` (through an input expression or a cell's rule).
pub const MAX_DEPTH: usize = 8;

/// Numbers in tables: parsing, comparing and adding, in one place so an exact decimal kind can
/// replace the float here without touching the rest.
pub mod num {
    use serde_json::Value;
    use std::cmp::Ordering;

    /// A number of a table.
    pub type Num = f64;

    /// The number a JSON value holds.
    pub fn from_json(v: &Value) -> Option<Num> {
        v.as_f64()
    }

    /// A number written in a compact cell (`12`, `-0.5`, `1e3`).
    pub fn parse(s: &str) -> Option<Num> {
        s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
    }

    /// The number as JSON (an integer when it has no fraction, as scripts do).
    pub fn to_json(n: Num) -> Value {
        if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            // Within ±2^53 the conversion is exact.
            Value::from(n as i64)
        } else {
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
        }
    }

    /// The order of two numbers (NaN never reaches here: JSON and `parse` have none).
    pub fn cmp(a: Num, b: Num) -> Ordering {
        a.partial_cmp(&b).unwrap_or(Ordering::Equal)
    }

    /// `a + b`, in decimal (a `sum` of 0.1 and 0.2 is 0.3), as rules add.
    pub fn add(a: Num, b: Num) -> Num {
        use ontology::decimal::{from_f64, to_f64};
        match (from_f64(a), from_f64(b)) {
            (Ok(x), Ok(y)) => x.checked_add(y).map_or(a + b, to_f64),
            _ => a + b,
        }
    }

    /// Whether a JSON number is an integer.
    pub fn is_integer(v: &Value) -> bool {
        v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
    }
}

use num::Num;

// ---------------------------------------------------------------------------------------------
// The definition, as written
// ---------------------------------------------------------------------------------------------

/// A decision table as written in `decisions/<name>.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecisionDef {
    /// The table's name (the file's name): what `decide` calls.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The inputs, in column order.
    pub inputs: IndexMap<String, InputDef>,
    /// The outputs, in column order.
    pub outputs: IndexMap<String, OutputDef>,
    /// What a match gives.
    pub hit: HitPolicy,
    /// Under `collect`: how the matches are combined (else a list of every match's outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    /// The rows, in order (or `rows_from`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RowDef>,
    /// Rows read from entities of a type instead of `rules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_from: Option<RowsFrom>,
    /// The outputs when no row matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Map<String, Value>>,
}

/// The kind of an input's or output's values.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    String,
    Number,
    Integer,
    Boolean,
    /// Any JSON value (literals in cells are read as numbers, booleans, `null` or strings).
    Any,
}

impl ValueKind {
    fn name(self) -> &'static str {
        match self {
            ValueKind::String => "a string",
            ValueKind::Number => "a number",
            ValueKind::Integer => "an integer",
            ValueKind::Boolean => "true or false",
            ValueKind::Any => "any value",
        }
    }

    /// Whether `v` (not null) is of this kind.
    pub fn admits(self, v: &Value) -> bool {
        match self {
            ValueKind::String => v.is_string(),
            ValueKind::Number => v.is_number(),
            ValueKind::Integer => v.is_number() && num::is_integer(v),
            ValueKind::Boolean => v.is_boolean(),
            ValueKind::Any => true,
        }
    }

    fn numeric(self) -> bool {
        matches!(self, ValueKind::Number | ValueKind::Integer)
    }
}

/// An input column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputDef {
    #[serde(rename = "type")]
    pub kind: ValueKind,
    /// JSON-Logic over the evaluation context (`{"var": "customer.tier"}`), evaluated when a
    /// call does not pass this input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// An output column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputDef {
    #[serde(rename = "type")]
    pub kind: ValueKind,
    /// The values it may take, in priority order (the first wins under `hit: priority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What a match gives.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HitPolicy {
    /// The first matching row, in order.
    First,
    /// The only matching row; two or more is an error.
    Unique,
    /// The matching row whose output comes first in that output's `values`.
    Priority,
    /// Every matching row (see [`Aggregate`]).
    Collect,
}

/// How `collect` combines the matches' single output.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Min,
    Max,
    Count,
}

/// A row as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RowDef {
    /// Input → cell; an input left out matches anything.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub when: IndexMap<String, Value>,
    /// A JSON-Logic rule over the inputs that must also hold.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// Output → value; an output left out is `null`.
    #[serde(default)]
    pub then: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Rows kept as entities of a type, edited at run time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RowsFrom {
    /// The entity type whose entities are the rows: fields named after the inputs are the cells
    /// (absent or `-`: any), fields named after the outputs the outputs.
    #[serde(rename = "type")]
    pub type_name: String,
    /// A numeric field giving the rows' order (ascending; then by creation). Without it, rows
    /// are in creation order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    /// Only entities in these states are rows (all when absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A problem with a table: compiling it (with the JSON pointer in its file) or evaluating it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    /// The definition is wrong at `pointer` (in `decisions/<table>.yaml`).
    #[error("decision `{table}` at {pointer}: {message}")]
    Definition { table: String, pointer: String, message: String },
    /// `decide` named a table the version does not have.
    #[error("unknown decision table `{table}`")]
    UnknownTable { table: String },
    /// An input of the wrong kind, or one the table does not declare.
    #[error("decision `{table}`, input `{input}`: {message}")]
    Input { table: String, input: String, message: String },
    /// More than one row matched under `hit: unique` (rows numbered from 0).
    #[error("decision `{table}`: rows {} all match, but the hit policy is unique", rows.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    NotUnique { table: String, rows: Vec<usize> },
    /// A JSON-Logic rule of the table (an input expression, a cell, an `if`) failed.
    #[error("decision `{table}`: {message}")]
    Rule { table: String, message: String, limit: bool },
    /// `decide` called itself deeper than [`MAX_DEPTH`].
    #[error("decision `{table}`: `decide` nests deeper than {MAX_DEPTH} calls")]
    Depth { table: String },
}

impl DecisionError {
    /// Whether it is a budget of the evaluation that ran out (`RULE_LIMIT`).
    pub fn is_limit(&self) -> bool {
        matches!(self, DecisionError::Rule { limit: true, .. } | DecisionError::Depth { .. })
    }
}

// ---------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------

/// A single value of a cell, read by the input's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
}

impl Scalar {
    fn of(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(_) => Scalar::Num(num::from_json(v)?),
            Value::String(s) => Scalar::Str(s.clone()),
            _ => return None,
        })
    }

    /// The order of two scalars of the same kind (`None` across kinds: they never compare).
    fn cmp(&self, other: &Scalar) -> Option<Ordering> {
        match (self, other) {
            (Scalar::Num(a), Scalar::Num(b)) => Some(num::cmp(*a, *b)),
            (Scalar::Str(a), Scalar::Str(b)) => Some(a.cmp(b)),
            (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
            (Scalar::Null, Scalar::Null) => Some(Ordering::Equal),
            _ => None,
        }
    }

    fn eq(&self, other: &Scalar) -> bool {
        self.cmp(other) == Some(Ordering::Equal)
    }

    fn show(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Num(n) => num::to_json(*n).to_string(),
            Scalar::Str(s) => format!("{s:?}"),
        }
    }
}

/// One end of a range: the value and whether it is included.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: Scalar,
    pub inclusive: bool,
}

/// A compiled cell: the condition on one input.
#[derive(Debug)]
pub enum Cell {
    /// `-` (or absent): anything.
    Any,
    /// A literal: equal to it.
    Eq(Scalar),
    /// `!= x`.
    NotEq(Scalar),
    /// `a, b, c` or a list: one of them.
    In(Vec<Scalar>),
    /// `>= x`, `< x`, `[a..b)`, `a..b`: within bounds (`None`: unbounded on that side).
    Range { low: Option<Bound>, high: Option<Bound> },
    /// A JSON-Logic rule over the inputs (`{"var": "<input>"}`), true when truthy.
    Rule(Logic),
}

impl Cell {
    /// Parses a cell for an input of `kind`: a JSON scalar is a literal, a list is "one of", an
    /// object is a JSON-Logic rule over the inputs, and a string is the compact syntax (see
    /// [`Cell::parse_text`]).
    pub fn parse(v: &Value, kind: ValueKind) -> Result<Cell, String> {
        match v {
            Value::String(s) => Cell::parse_text(s, kind),
            Value::Array(items) => {
                if items.len() > MAX_LIST {
                    return Err(format!("a list cell has more than {MAX_LIST} values"));
                }
                let values = items
                    .iter()
                    .map(|i| literal_json(i, kind))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("in the list: {e}"))?;
                Ok(Cell::In(values))
            }
            Value::Object(_) => {
                Logic::compile(v).map(Cell::Rule).map_err(|e| format!("the cell's rule does not compile: {e}"))
            }
            other => literal_json(other, kind).map(Cell::Eq),
        }
    }

    /// The compact syntax:
    ///
    /// | cell | matches |
    /// | --- | --- |
    /// | `-` or empty | anything |
    /// | `gold`, `12`, `true`, `null` | that value (read by the input's type) |
    /// | `"a, b"` (double quotes) | that string as written (for text that looks like syntax) |
    /// | `gold, silver` | one of them |
    /// | `!= gold` | anything but it |
    /// | `>= 10`, `> 10`, `<= 10`, `< 10`, `= 10` | compared (numbers, or strings in text order) |
    /// | `[1..5]`, `[1..5)`, `(1..5]`, `(1..5)`, `1..5` | within the range (`[`/`]` include the end, `(`/`)` exclude it; without brackets both included) |
    pub fn parse_text(text: &str, kind: ValueKind) -> Result<Cell, String> {
        if text.len() > MAX_CELL {
            return Err(format!("the cell is longer than {MAX_CELL} bytes"));
        }
        let s = text.trim();
        if s.is_empty() || s == "-" {
            return Ok(Cell::Any);
        }
        if let Some(rest) = s.strip_prefix("!=") {
            return literal_text(rest, kind).map(Cell::NotEq);
        }
        for (op, low, inclusive) in [(">=", true, true), ("<=", false, true), (">", true, false), ("<", false, false)] {
            if let Some(rest) = s.strip_prefix(op) {
                let value = ordered(literal_text(rest, kind)?, s)?;
                let bound = Some(Bound { value, inclusive });
                return Ok(if low {
                    Cell::Range { low: bound, high: None }
                } else {
                    Cell::Range { low: None, high: bound }
                });
            }
        }
        if let Some(rest) = s.strip_prefix('=') {
            return literal_text(rest, kind).map(Cell::Eq);
        }
        if let Some(range) = parse_range(s, kind)? {
            return Ok(range);
        }
        let items = split_list(s);
        if items.len() > 1 {
            if items.len() > MAX_LIST {
                return Err(format!("a list cell has more than {MAX_LIST} values"));
            }
            return items.iter().map(|i| literal_text(i, kind)).collect::<Result<Vec<_>, _>>().map(Cell::In);
        }
        literal_text(s, kind).map(Cell::Eq)
    }

    /// Whether the cell holds for `value` (the input), `inputs` being every input (for a rule).
    fn matches(&self, value: &Option<Scalar>, rules: &mut RuleCx<'_>) -> Result<bool, DecisionError> {
        Ok(match self {
            Cell::Any => true,
            Cell::Eq(x) => value.as_ref().is_some_and(|v| v.eq(x)),
            Cell::NotEq(x) => !value.as_ref().is_some_and(|v| v.eq(x)),
            Cell::In(xs) => value.as_ref().is_some_and(|v| xs.iter().any(|x| v.eq(x))),
            Cell::Range { low, high } => value.as_ref().is_some_and(|v| in_range(v, low.as_ref(), high.as_ref())),
            Cell::Rule(logic) => rules.truthy(logic)?,
        })
    }

    fn is_static(&self) -> bool {
        !matches!(self, Cell::Rule(_))
    }
}

fn in_range(v: &Scalar, low: Option<&Bound>, high: Option<&Bound>) -> bool {
    let above = low.is_none_or(|b| match v.cmp(&b.value) {
        Some(Ordering::Greater) => true,
        Some(Ordering::Equal) => b.inclusive,
        _ => false,
    });
    let below = high.is_none_or(|b| match v.cmp(&b.value) {
        Some(Ordering::Less) => true,
        Some(Ordering::Equal) => b.inclusive,
        _ => false,
    });
    above && below
}

/// A bound must be a number or a string (booleans and null have no useful order).
fn ordered(value: Scalar, cell: &str) -> Result<Scalar, String> {
    match value {
        Scalar::Num(_) | Scalar::Str(_) => Ok(value),
        _ => Err(format!("`{cell}`: only numbers and strings can be compared")),
    }
}

/// `[a..b]`, `(a..b)`, mixed brackets, or `a..b`.
fn parse_range(s: &str, kind: ValueKind) -> Result<Option<Cell>, String> {
    let (low_inclusive, rest) = match s.chars().next() {
        Some('[') => (true, &s[1..]),
        Some('(') => (false, &s[1..]),
        _ => (true, s),
    };
    let (high_inclusive, body) = match rest.chars().last() {
        Some(']') if rest.len() < s.len() => (true, &rest[..rest.len() - 1]),
        Some(')') if rest.len() < s.len() => (false, &rest[..rest.len() - 1]),
        Some(']' | ')') => return Err(format!("`{s}`: a range opens with `[` or `(`")),
        _ if rest.len() < s.len() => return Err(format!("`{s}`: a range closes with `]` or `)`")),
        _ => (true, rest),
    };
    let Some((a, b)) = body.split_once("..") else {
        return if rest.len() < s.len() { Err(format!("`{s}`: a range is written `[low..high]`")) } else { Ok(None) };
    };
    // A quoted string may hold `..`: then it is no range.
    if a.trim_start().starts_with('"') && !a.trim().ends_with('"') {
        return Ok(None);
    }
    let bound = |t: &str, inclusive: bool| -> Result<Option<Bound>, String> {
        if t.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(Bound { value: ordered(literal_text(t, kind)?, s)?, inclusive }))
    };
    let (low, high) = (bound(a, low_inclusive)?, bound(b, high_inclusive)?);
    if low.is_none() && high.is_none() {
        return Err(format!("`{s}`: a range needs at least one end"));
    }
    if let (Some(l), Some(h)) = (&low, &high) {
        match l.value.cmp(&h.value) {
            None => return Err(format!("`{s}`: both ends must be of the same kind")),
            Some(Ordering::Greater) => return Err(format!("`{s}`: the low end is above the high end")),
            _ => {}
        }
    }
    Ok(Some(Cell::Range { low, high }))
}

/// Splits `a, b, "c, d"` at commas outside double quotes.
fn split_list(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A literal written in a cell, read by the input's kind.
fn literal_text(t: &str, kind: ValueKind) -> Result<Scalar, String> {
    let t = t.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        let s = Scalar::Str(t[1..t.len() - 1].to_string());
        return match kind {
            ValueKind::String | ValueKind::Any => Ok(s),
            _ => Err(format!("`{t}` is a string, but the input is {}", kind.name())),
        };
    }
    if t == "null" {
        return Ok(Scalar::Null);
    }
    match kind {
        ValueKind::String => {
            if t.is_empty() {
                Err("an empty value (write `\"\"` for the empty string)".into())
            } else {
                Ok(Scalar::Str(t.to_string()))
            }
        }
        ValueKind::Number | ValueKind::Integer => {
            let n = num::parse(t).ok_or_else(|| format!("`{t}` is not a number"))?;
            if kind == ValueKind::Integer && n.fract() != 0.0 {
                return Err(format!("`{t}` is not an integer"));
            }
            Ok(Scalar::Num(n))
        }
        ValueKind::Boolean => match t {
            "true" => Ok(Scalar::Bool(true)),
            "false" => Ok(Scalar::Bool(false)),
            _ => Err(format!("`{t}` is not true or false")),
        },
        ValueKind::Any => Ok(match t {
            "true" => Scalar::Bool(true),
            "false" => Scalar::Bool(false),
            _ => num::parse(t).map_or_else(|| Scalar::Str(t.to_string()), Scalar::Num),
        }),
    }
}

/// A literal given as JSON (a YAML scalar), checked against the input's kind.
fn literal_json(v: &Value, kind: ValueKind) -> Result<Scalar, String> {
    if !v.is_null() && !kind.admits(v) {
        return Err(format!("`{v}` is not {}", kind.name()));
    }
    Scalar::of(v).ok_or_else(|| format!("`{v}` is not a single value"))
}

// ---------------------------------------------------------------------------------------------
// The compiled table
// ---------------------------------------------------------------------------------------------

/// A compiled input column.
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub kind: ValueKind,
    /// Its expression over the evaluation context, if it has one.
    pub expr: Option<Logic>,
}

/// A compiled row.
#[derive(Debug)]
pub struct Row {
    /// One cell per input, in input order.
    cells: Vec<Cell>,
    condition: Option<Logic>,
    /// The outputs, one per output column (absent ones `null`).
    outputs: Vec<Value>,
    /// Under `priority`: the position of its ranking output's value in `values`.
    rank: usize,
    /// Where the row comes from: the id of its entity, for rows kept as data.
    pub source: Option<String>,
}

/// A compiled decision table (thread-safe, shareable).
#[derive(Debug)]
pub struct DecisionTable {
    name: String,
    inputs: Vec<Input>,
    outputs: Vec<(String, ValueKind)>,
    hit: HitPolicy,
    aggregate: Option<Aggregate>,
    /// Under `priority`: the output whose `values` order ranks the matches, with those values.
    ranking: Option<(usize, Vec<Value>)>,
    rows: Vec<Row>,
    default: Option<Vec<Value>>,
    rows_from: Option<RowsFrom>,
    def: DecisionDef,
}

/// A row that matched, for the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowRef {
    /// Its position in the table (from 0).
    pub row: usize,
    /// The id of its entity, for rows kept as data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What an evaluation did: the inputs it saw, the rows that matched and the one that won.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionTrace {
    pub table: String,
    pub hit: HitPolicy,
    pub inputs: Map<String, Value>,
    /// The rows that matched, in order (under `first`, only the first: the rest are not looked
    /// at).
    pub matched: Vec<RowRef>,
    /// Under `first`, `unique` and `priority`: the row whose outputs were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<RowRef>,
    /// Whether the outputs are the default (nothing matched).
    pub default_used: bool,
    pub outputs: Value,
}

/// The outputs of an evaluation with its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// An object of the outputs (`first`, `unique`, `priority`, aggregated `collect`), an array
    /// of such objects (`collect`), or `null` (nothing matched and no default).
    pub outputs: Value,
    pub trace: DecisionTrace,
}

/// Evaluates the JSON-Logic of cells and `if`s against the inputs, converting them once.
struct RuleCx<'a> {
    inputs: &'a Map<String, Value>,
    ctx: Option<LogicContext>,
    table: &'a str,
}

impl RuleCx<'_> {
    fn truthy(&mut self, logic: &Logic) -> Result<bool, DecisionError> {
        let inputs = self.inputs;
        let ctx = self.ctx.get_or_insert_with(|| LogicContext::new(&Value::Object(inputs.clone())));
        logic.truthy(ctx).map_err(|e| rule_error(self.table, e))
    }
}

fn rule_error(table: &str, e: crate::EngineError) -> DecisionError {
    let limit = matches!(e, crate::EngineError::RuleLimit { .. });
    DecisionError::Rule { table: table.to_string(), message: e.to_string(), limit }
}

impl DecisionTable {
    /// Compiles a table, returning every problem with its JSON pointer in the table's file.
    pub fn compile(def: DecisionDef) -> Result<DecisionTable, Vec<DecisionError>> {
        let mut errors = Vec::new();
        let name = def.name.clone();
        let mut err = |pointer: String, message: String| {
            errors.push(DecisionError::Definition { table: name.clone(), pointer, message });
        };
        if def.inputs.len() > MAX_COLUMNS {
            err("/inputs".into(), format!("more than {MAX_COLUMNS} inputs"));
        }
        if def.outputs.is_empty() && def.aggregate != Some(Aggregate::Count) {
            err("/outputs".into(), "a table needs at least one output".into());
        }
        if def.outputs.len() > MAX_COLUMNS {
            err("/outputs".into(), format!("more than {MAX_COLUMNS} outputs"));
        }
        if def.rules.len() > MAX_ROWS {
            err("/rules".into(), format!("more than {MAX_ROWS} rows"));
        }
        let mut inputs = Vec::with_capacity(def.inputs.len());
        for (name, input) in &def.inputs {
            if !is_name(name) {
                err(
                    format!("/inputs/{}", esc(name)),
                    format!("`{name}` is not a name (lowercase letters, digits, `_`)"),
                );
            }
            let expr = match &input.expr {
                Some(rule) => match Logic::compile(rule) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        err(format!("/inputs/{}/expr", esc(name)), e.to_string());
                        None
                    }
                },
                None => None,
            };
            inputs.push(Input { name: name.clone(), kind: input.kind, expr });
        }
        for (name, output) in &def.outputs {
            if !is_name(name) {
                err(
                    format!("/outputs/{}", esc(name)),
                    format!("`{name}` is not a name (lowercase letters, digits, `_`)"),
                );
            }
            for (i, v) in output.values.iter().flatten().enumerate() {
                if !output.kind.admits(v) || v.is_null() {
                    err(format!("/outputs/{}/values/{i}", esc(name)), format!("`{v}` is not {}", output.kind.name()));
                }
            }
        }
        match (def.hit, def.aggregate) {
            (HitPolicy::Collect, Some(agg @ (Aggregate::Sum | Aggregate::Min | Aggregate::Max)))
                if def.outputs.len() != 1 || !def.outputs.values().all(|o| o.kind.numeric()) =>
            {
                err("/aggregate".into(), format!("`{agg:?}` needs exactly one output, a number").to_lowercase());
            }
            (HitPolicy::Collect, _) => {}
            (_, Some(_)) => err("/aggregate".into(), "only `hit: collect` aggregates".into()),
            _ => {}
        }
        let ranking = if def.hit == HitPolicy::Priority {
            let found = def.outputs.values().enumerate().find_map(|(i, o)| Some((i, o.values.clone()?)));
            if found.is_none() {
                err("/hit".into(), "`priority` needs an output that lists its `values` in priority order".into());
            }
            found
        } else {
            None
        };
        match (&def.rows_from, def.rules.is_empty()) {
            (Some(_), false) => err("/rows_from".into(), "a table has `rules` or `rows_from`, not both".into()),
            (Some(r), true) if !is_name(&r.type_name) => {
                err("/rows_from/type".into(), format!("`{}` is not a type name", r.type_name))
            }
            _ => {}
        }
        let outputs: Vec<(String, ValueKind)> = def.outputs.iter().map(|(n, o)| (n.clone(), o.kind)).collect();
        let mut rows = Vec::with_capacity(def.rules.len());
        for (i, row) in def.rules.iter().enumerate() {
            let at = format!("/rules/{i}");
            match compile_row(&inputs, &outputs, ranking.as_ref(), &row.when, row.condition.as_ref(), &row.then, None) {
                Ok(r) => rows.push(r),
                Err(problems) => problems.into_iter().for_each(|(p, m)| err(format!("{at}{p}"), m)),
            }
        }
        let default = match &def.default {
            Some(d) => match row_outputs(&outputs, d) {
                Ok(values) => Some(values),
                Err(problems) => {
                    problems
                        .into_iter()
                        .for_each(|(p, m)| err(format!("/default{}", p.trim_start_matches("/then")), m));
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(DecisionTable {
            name: def.name.clone(),
            inputs,
            outputs,
            hit: def.hit,
            aggregate: def.aggregate,
            ranking,
            rows,
            default,
            rows_from: def.rows_from.clone(),
            def,
        })
    }

    /// A copy of this table with rows read from entities (`rows_from`): each `(id, data)` in
    /// order is a row. A row that does not compile is an error naming its entity (the table
    /// is then not usable until it is fixed: a rule silently left out would decide wrongly).
    pub fn with_rows<'a>(
        &self,
        entities: impl IntoIterator<Item = (String, &'a Value)>,
    ) -> Result<DecisionTable, DecisionError> {
        let mut rows = Vec::new();
        for (id, data) in entities {
            if rows.len() >= MAX_ROWS {
                return Err(DecisionError::Definition {
                    table: self.name.clone(),
                    pointer: "/rows_from".into(),
                    message: format!("more than {MAX_ROWS} rows"),
                });
            }
            let empty = Map::new();
            let data = data.as_object().unwrap_or(&empty);
            let when: IndexMap<String, Value> = self
                .inputs
                .iter()
                .filter_map(|i| data.get(&i.name).filter(|v| !v.is_null()).map(|v| (i.name.clone(), v.clone())))
                .collect();
            let then: Map<String, Value> =
                self.outputs.iter().filter_map(|(name, _)| data.get(name).map(|v| (name.clone(), v.clone()))).collect();
            let row =
                compile_row(&self.inputs, &self.outputs, self.ranking.as_ref(), &when, None, &then, Some(id.clone()))
                    .map_err(|problems| DecisionError::Definition {
                    table: self.name.clone(),
                    pointer: format!("/rows_from (entity {id})"),
                    message: problems.into_iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>().join("; "),
                })?;
            rows.push(row);
        }
        let inputs = self
            .inputs
            .iter()
            .map(|i| Input {
                name: i.name.clone(),
                kind: i.kind,
                expr: self.def.inputs.get(&i.name).and_then(|d| d.expr.as_ref()).and_then(|e| Logic::compile(e).ok()),
            })
            .collect();
        Ok(DecisionTable {
            name: self.name.clone(),
            inputs,
            outputs: self.outputs.clone(),
            hit: self.hit,
            aggregate: self.aggregate,
            ranking: self.ranking.clone(),
            rows,
            default: self.default.clone(),
            rows_from: self.rows_from.clone(),
            def: self.def.clone(),
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The definition as written.
    pub fn def(&self) -> &DecisionDef {
        &self.def
    }

    /// The inputs, in column order.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// Where its rows come from when they are kept as entities.
    pub fn rows_from(&self) -> Option<&RowsFrom> {
        self.rows_from.as_ref()
    }

    /// How many rows it has.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Evaluates the table on `given` inputs (every declared input must be given, or have an
    /// expression that `resolve` evaluates; an undeclared one is an error).
    pub fn evaluate(&self, given: &Map<String, Value>) -> Result<Evaluation, DecisionError> {
        self.evaluate_with(given, |_, _| Ok(Value::Null))
    }

    /// [`DecisionTable::evaluate`], where an input not given is `resolve(name, expr)` when it has
    /// an expression (else `null`).
    pub fn evaluate_with(
        &self,
        given: &Map<String, Value>,
        mut resolve: impl FnMut(&str, &Logic) -> Result<Value, DecisionError>,
    ) -> Result<Evaluation, DecisionError> {
        if let Some(unknown) = given.keys().find(|k| !self.inputs.iter().any(|i| &i.name == *k)) {
            return Err(DecisionError::Input {
                table: self.name.clone(),
                input: unknown.clone(),
                message: format!(
                    "not an input of the table (inputs: {})",
                    self.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let mut inputs = Map::with_capacity(self.inputs.len());
        let mut values = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let v = match (given.get(&input.name), &input.expr) {
                (Some(v), _) => v.clone(),
                (None, Some(expr)) => resolve(&input.name, expr)?,
                (None, None) => Value::Null,
            };
            if !v.is_null() && !input.kind.admits(&v) {
                return Err(DecisionError::Input {
                    table: self.name.clone(),
                    input: input.name.clone(),
                    message: format!("`{v}` is not {}", input.kind.name()),
                });
            }
            values.push(Scalar::of(&v));
            inputs.insert(input.name.clone(), v);
        }
        let mut rules = RuleCx { inputs: &inputs, ctx: None, table: &self.name };
        let mut matched: Vec<usize> = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            if self.row_matches(row, &values, &mut rules)? {
                matched.push(i);
                if self.hit == HitPolicy::First {
                    break;
                }
            }
        }
        let refs = |rows: &[usize]| -> Vec<RowRef> {
            rows.iter().map(|&i| RowRef { row: i, id: self.rows[i].source.clone() }).collect()
        };
        if self.hit == HitPolicy::Unique && matched.len() > 1 {
            return Err(DecisionError::NotUnique { table: self.name.clone(), rows: matched });
        }
        let default_used = matched.is_empty();
        let (outputs, winner) = match self.hit {
            HitPolicy::First | HitPolicy::Unique | HitPolicy::Priority => {
                let winner = match self.hit {
                    HitPolicy::Priority => matched.iter().copied().min_by_key(|&i| self.rows[i].rank),
                    _ => matched.first().copied(),
                };
                match winner {
                    Some(w) => (self.object(&self.rows[w].outputs), Some(w)),
                    None => (self.default.as_ref().map_or(Value::Null, |d| self.object(d)), None),
                }
            }
            HitPolicy::Collect => {
                let rows: Vec<&Vec<Value>> = if matched.is_empty() {
                    self.default.iter().collect()
                } else {
                    matched.iter().map(|&i| &self.rows[i].outputs).collect()
                };
                (self.collect(&rows), None)
            }
        };
        let trace = DecisionTrace {
            table: self.name.clone(),
            hit: self.hit,
            inputs,
            matched: refs(&matched),
            winner: winner.map(|w| RowRef { row: w, id: self.rows[w].source.clone() }),
            default_used,
            outputs: outputs.clone(),
        };
        Ok(Evaluation { outputs, trace })
    }

    fn row_matches(&self, row: &Row, values: &[Option<Scalar>], rules: &mut RuleCx<'_>) -> Result<bool, DecisionError> {
        for (cell, value) in row.cells.iter().zip(values) {
            if !cell.matches(value, rules)? {
                return Ok(false);
            }
        }
        match &row.condition {
            Some(c) => rules.truthy(c),
            None => Ok(true),
        }
    }

    fn object(&self, values: &[Value]) -> Value {
        Value::Object(self.outputs.iter().zip(values).map(|((n, _), v)| (n.clone(), v.clone())).collect())
    }

    fn collect(&self, rows: &[&Vec<Value>]) -> Value {
        let Some(agg) = self.aggregate else {
            return Value::Array(rows.iter().map(|r| self.object(r)).collect());
        };
        let name = self.outputs.first().map_or_else(|| "count".to_string(), |(n, _)| n.clone());
        let numbers = rows.iter().filter_map(|r| r.first().and_then(num::from_json));
        let value = match agg {
            Aggregate::Count => Value::from(rows.len()),
            Aggregate::Sum => num::to_json(numbers.fold(0.0, num::add)),
            Aggregate::Min => numbers.min_by(|a, b| num::cmp(*a, *b)).map_or(Value::Null, num::to_json),
            Aggregate::Max => numbers.max_by(|a, b| num::cmp(*a, *b)).map_or(Value::Null, num::to_json),
        };
        let mut out = Map::with_capacity(1);
        out.insert(name, value);
        Value::Object(out)
    }

    /// The static analysis of the rows, as (JSON pointer, message, is it an error): rows that
    /// certainly overlap under `unique`, rows an earlier row hides under `first`, and a missing
    /// default (a warning). Rows with JSON-Logic are not compared (their sets are unknown).
    pub fn problems(&self) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        if self.default.is_none() && self.hit != HitPolicy::Collect {
            out.push((
                "/default".to_string(),
                "no `default`: when no row matches, `decide` gives null".to_string(),
                false,
            ));
        }
        let comparable = |r: &Row| r.condition.is_none() && r.cells.iter().all(Cell::is_static);
        // Pairs of rows are compared: bounded by the rows a package may declare.
        match self.hit {
            HitPolicy::Unique => {
                for (j, b) in self.rows.iter().enumerate().filter(|(_, r)| comparable(r)) {
                    if let Some(i) = self.rows[..j]
                        .iter()
                        .position(|a| comparable(a) && a.cells.iter().zip(&b.cells).all(|(x, y)| overlap(x, y)))
                    {
                        out.push((
                            format!("/rules/{j}"),
                            format!("rows {i} and {j} overlap: some inputs match both, and the hit policy is unique"),
                            true,
                        ));
                    }
                }
            }
            HitPolicy::First => {
                for (j, b) in self.rows.iter().enumerate() {
                    if let Some(i) = self.rows[..j]
                        .iter()
                        .position(|a| comparable(a) && a.cells.iter().zip(&b.cells).all(|(x, y)| covers(x, y)))
                    {
                        out.push((
                            format!("/rules/{j}"),
                            format!("row {j} is unreachable: row {i} matches everything it matches, and comes first"),
                            true,
                        ));
                    }
                }
            }
            _ => {}
        }
        out
    }
}

/// Compiles one row (pointers relative to the row: `/when/<input>`, `/if`, `/then/<output>`).
fn compile_row(
    inputs: &[Input],
    outputs: &[(String, ValueKind)],
    ranking: Option<&(usize, Vec<Value>)>,
    when: &IndexMap<String, Value>,
    condition: Option<&Value>,
    then: &Map<String, Value>,
    source: Option<String>,
) -> Result<Row, Vec<(String, String)>> {
    let mut problems = Vec::new();
    for name in when.keys().filter(|k| !inputs.iter().any(|i| &i.name == *k)) {
        problems.push((format!("/when/{}", esc(name)), format!("`{name}` is not an input of the table")));
    }
    let mut cells = Vec::with_capacity(inputs.len());
    for input in inputs {
        match when.get(&input.name).map(|v| Cell::parse(v, input.kind)) {
            None => cells.push(Cell::Any),
            Some(Ok(c)) => cells.push(c),
            Some(Err(m)) => problems.push((format!("/when/{}", esc(&input.name)), m)),
        }
    }
    let condition = match condition.map(Logic::compile) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            problems.push(("/if".into(), e.to_string()));
            None
        }
    };
    let outputs_v = match row_outputs(outputs, then) {
        Ok(v) => v,
        Err(p) => {
            problems.extend(p);
            Vec::new()
        }
    };
    let rank = match ranking {
        Some((index, values)) => {
            let v = outputs_v.get(*index).unwrap_or(&Value::Null);
            match values.iter().position(|x| crate::eval::same(x, v)) {
                Some(r) => r,
                None => {
                    let name = &outputs[*index].0;
                    problems.push((
                        format!("/then/{}", esc(name)),
                        format!("`{v}` is not one of the `values` of output `{name}` (they rank the rows)"),
                    ));
                    usize::MAX
                }
            }
        }
        None => 0,
    };
    if problems.is_empty() {
        Ok(Row { cells, condition, outputs: outputs_v, rank, source })
    } else {
        Err(problems)
    }
}

/// The outputs of a row (or the default) in column order, checked against their kinds.
fn row_outputs(
    outputs: &[(String, ValueKind)],
    then: &Map<String, Value>,
) -> Result<Vec<Value>, Vec<(String, String)>> {
    let mut problems = Vec::new();
    for name in then.keys().filter(|k| !outputs.iter().any(|(n, _)| n == *k)) {
        problems.push((format!("/then/{}", esc(name)), format!("`{name}` is not an output of the table")));
    }
    let mut values = Vec::with_capacity(outputs.len());
    for (name, kind) in outputs {
        let v = then.get(name).cloned().unwrap_or(Value::Null);
        if !v.is_null() && !kind.admits(&v) {
            problems.push((format!("/then/{}", esc(name)), format!("`{v}` is not {}", kind.name())));
        }
        values.push(v);
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// The set of values a static cell matches, as intervals and points, for the analysis.
fn overlap(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::Any, _) | (_, Cell::Any) => true,
        (Cell::NotEq(x), Cell::Eq(y)) | (Cell::Eq(y), Cell::NotEq(x)) => !x.eq(y),
        (Cell::NotEq(x), Cell::In(ys)) | (Cell::In(ys), Cell::NotEq(x)) => ys.iter().any(|y| !y.eq(x)),
        // A `!=` against a range or another `!=` leaves values in common except in corner cases.
        (Cell::NotEq(_), _) | (_, Cell::NotEq(_)) => true,
        (Cell::Eq(x), Cell::Eq(y)) => x.eq(y),
        (Cell::Eq(x), Cell::In(ys)) | (Cell::In(ys), Cell::Eq(x)) => ys.iter().any(|y| y.eq(x)),
        (Cell::In(xs), Cell::In(ys)) => xs.iter().any(|x| ys.iter().any(|y| y.eq(x))),
        (Cell::Eq(x), Cell::Range { low, high }) | (Cell::Range { low, high }, Cell::Eq(x)) => {
            in_range(x, low.as_ref(), high.as_ref())
        }
        (Cell::In(xs), Cell::Range { low, high }) | (Cell::Range { low, high }, Cell::In(xs)) => {
            xs.iter().any(|x| in_range(x, low.as_ref(), high.as_ref()))
        }
        (Cell::Range { low: l1, high: h1 }, Cell::Range { low: l2, high: h2 }) => {
            below(l1.as_ref(), h2.as_ref()) && below(l2.as_ref(), h1.as_ref())
        }
        (Cell::Rule(_), _) | (_, Cell::Rule(_)) => true,
    }
}

/// Whether some value is at or above `low` and at or below `high` (of the same kind).
fn below(low: Option<&Bound>, high: Option<&Bound>) -> bool {
    let (Some(l), Some(h)) = (low, high) else { return true };
    match l.value.cmp(&h.value) {
        Some(Ordering::Less) => true,
        Some(Ordering::Equal) => l.inclusive && h.inclusive,
        _ => false,
    }
}

/// Whether cell `a` matches every value cell `b` matches.
fn covers(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::Any, _) => true,
        (_, Cell::Any) | (_, Cell::Rule(_)) | (Cell::Rule(_), _) => false,
        (Cell::Eq(x), Cell::Eq(y)) => x.eq(y),
        (Cell::Eq(x), Cell::In(ys)) => !ys.is_empty() && ys.iter().all(|y| y.eq(x)),
        (Cell::In(xs), Cell::Eq(y)) => xs.iter().any(|x| x.eq(y)),
        (Cell::In(xs), Cell::In(ys)) => ys.iter().all(|y| xs.iter().any(|x| x.eq(y))),
        (Cell::NotEq(x), Cell::NotEq(y)) => x.eq(y),
        (Cell::NotEq(x), Cell::Eq(y)) => !x.eq(y),
        (Cell::NotEq(x), Cell::In(ys)) => ys.iter().all(|y| !y.eq(x)),
        (Cell::NotEq(x), Cell::Range { low, high }) => !in_range(x, low.as_ref(), high.as_ref()),
        (Cell::Range { low, high }, Cell::Eq(y)) => in_range(y, low.as_ref(), high.as_ref()),
        (Cell::Range { low, high }, Cell::In(ys)) => ys.iter().all(|y| in_range(y, low.as_ref(), high.as_ref())),
        (Cell::Range { low: l1, high: h1 }, Cell::Range { low: l2, high: h2 }) => {
            low_covers(l1.as_ref(), l2.as_ref()) && high_covers(h1.as_ref(), h2.as_ref())
        }
        // A point or a list never covers a range (nor anything but `!=` everything).
        (Cell::Eq(_) | Cell::In(_), Cell::Range { .. }) => false,
        (Cell::Range { .. } | Cell::Eq(_) | Cell::In(_), Cell::NotEq(_)) => false,
    }
}

/// Whether lower bound `a` lets through everything lower bound `b` does.
fn low_covers(a: Option<&Bound>, b: Option<&Bound>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => match a.value.cmp(&b.value) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => a.inclusive || !b.inclusive,
            _ => false,
        },
    }
}

/// Whether upper bound `a` lets through everything upper bound `b` does.
fn high_covers(a: Option<&Bound>, b: Option<&Bound>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => match a.value.cmp(&b.value) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => a.inclusive || !b.inclusive,
            _ => false,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// A version's tables, and the scope `decide` runs in
// ---------------------------------------------------------------------------------------------

/// The decision tables of one published version, compiled once.
#[derive(Debug, Default)]
pub struct Decisions {
    tables: std::collections::HashMap<String, Arc<DecisionTable>>,
}

impl Decisions {
    /// Compiles every table, returning every problem.
    pub fn compile(defs: impl IntoIterator<Item = DecisionDef>) -> Result<Decisions, Vec<DecisionError>> {
        let mut tables = std::collections::HashMap::new();
        let mut errors = Vec::new();
        for def in defs {
            if tables.len() >= MAX_TABLES {
                errors.push(DecisionError::Definition {
                    table: def.name.clone(),
                    pointer: String::new(),
                    message: format!("a package has at most {MAX_TABLES} decision tables"),
                });
                break;
            }
            if !is_name(&def.name) {
                errors.push(DecisionError::Definition {
                    table: def.name.clone(),
                    pointer: "/name".into(),
                    message: format!("`{}` is not a name (lowercase letters, digits, `_`)", def.name),
                });
                continue;
            }
            let name = def.name.clone();
            match DecisionTable::compile(def) {
                Ok(t) => {
                    tables.insert(name, Arc::new(t));
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(Decisions { tables })
        } else {
            Err(errors)
        }
    }

    /// The table named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<DecisionTable>> {
        self.tables.get(name)
    }

    /// Every table, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<DecisionTable>> {
        self.tables.values()
    }

    /// Whether there is no table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The tables whose rows are kept as entities.
    pub fn data_tables(&self) -> impl Iterator<Item = &Arc<DecisionTable>> {
        self.tables.values().filter(|t| t.rows_from.is_some())
    }
}

/// Tables whose rows were read from entities, by name (the store fills it; see
/// [`DecisionTable::with_rows`]). They replace the version's table of the same name; a table
/// whose rows do not compile is its error, given to whoever calls it (and to no one else).
pub type DataTables = std::collections::HashMap<String, Result<Arc<DecisionTable>, DecisionError>>;

/// Most traces one scope keeps (the rest are counted in none: a table called in a loop).
pub const MAX_TRACES: usize = 100;

/// What `decide` sees on this thread while an evaluation runs.
struct Scope {
    tables: Arc<Decisions>,
    data: Arc<DataTables>,
    /// The evaluation context, for input expressions (shared with the calls that read it, on
    /// this thread only).
    context: Option<std::rc::Rc<LogicContext>>,
    traces: Vec<DecisionTrace>,
    depth: usize,
    /// The first error of a call (the JSON-Logic evaluator keeps only a message).
    error: Option<DecisionError>,
}

thread_local! {
    static SCOPE: std::cell::RefCell<Option<Scope>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with the version's `tables` (and those read from entities, `data`) callable by
/// `decide`, input expressions evaluated against the evaluation context `context` gives (asked
/// only when some table has input expressions; the caller may share the one its rules use);
/// returns its result and the traces of every table evaluated. Nested scopes keep the outer one
/// (a follow-up transition runs in its own).
pub fn scope<T>(
    tables: &Arc<Decisions>,
    data: &Arc<DataTables>,
    context: Option<&dyn Fn() -> std::rc::Rc<LogicContext>>,
    f: impl FnOnce() -> T,
) -> (T, Vec<DecisionTrace>) {
    if tables.is_empty() || SCOPE.with(|s| s.borrow().is_some()) {
        return (f(), Vec::new());
    }
    let needs_context = tables.iter().any(|t| t.inputs.iter().any(|i| i.expr.is_some()));
    let context = context.filter(|_| needs_context).map(|c| c());
    let scope =
        Scope { tables: tables.clone(), data: data.clone(), context, traces: Vec::new(), depth: 0, error: None };
    SCOPE.with(|s| *s.borrow_mut() = Some(scope));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SCOPE.with(|s| *s.borrow_mut() = None);
        }
    }
    let reset = Reset;
    let out = f();
    let traces = SCOPE.with(|s| s.borrow_mut().as_mut().map(|s| std::mem::take(&mut s.traces))).unwrap_or_default();
    drop(reset);
    (out, traces)
}

/// The traces collected so far in the running scope, taken (for a guard's own).
pub fn take_traces() -> Vec<DecisionTrace> {
    SCOPE.with(|s| s.borrow_mut().as_mut().map(|s| std::mem::take(&mut s.traces))).unwrap_or_default()
}

/// The first error a `decide` call met in the running scope, taken.
pub fn take_error() -> Option<DecisionError> {
    SCOPE.with(|s| s.borrow_mut().as_mut().and_then(|s| s.error.take()))
}

/// `decide(name, inputs)`: evaluates a table of the running scope and gives its outputs,
/// recording the trace. Outside a scope every table is unknown.
pub fn call(name: &str, given: &Map<String, Value>) -> Result<Value, DecisionError> {
    let found = SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let s = s.as_mut()?;
        let table = match s.data.get(name) {
            Some(data) => Some(data.clone()),
            None => s.tables.get(name).cloned().map(Ok),
        };
        s.depth += 1;
        Some((table, s.context.clone(), s.depth))
    });
    let result = match found {
        None | Some((None, _, _)) => Err(DecisionError::UnknownTable { table: name.to_string() }),
        Some((Some(_), _, depth)) if depth > MAX_DEPTH => Err(DecisionError::Depth { table: name.to_string() }),
        Some((Some(Err(e)), _, _)) => Err(e),
        Some((Some(Ok(table)), context, _)) => table.evaluate_with(given, |_, expr| match &context {
            Some(ctx) => expr.evaluate(ctx).map_err(|e| rule_error(name, e)),
            None => Ok(Value::Null),
        }),
    };
    SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let Some(s) = s.as_mut() else { return };
        s.depth = s.depth.saturating_sub(1);
        match &result {
            Ok(e) if s.traces.len() < MAX_TRACES => s.traces.push(e.trace.clone()),
            Ok(_) => {}
            Err(e) => {
                s.error.get_or_insert_with(|| e.clone());
            }
        }
    });
    result.map(|e| e.outputs)
}

/// Names of inputs, outputs and tables: `snake_case`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A JSON pointer segment.
fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

// Keep `Scalar::show` for messages of later checks.
impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.show())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(yaml: &str) -> DecisionTable {
        let def: DecisionDef = serde_yaml_ng::from_str(yaml).expect("parses");
        DecisionTable::compile(def).expect("compiles")
    }

    fn inputs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    const DISCOUNT: &str = r#"
name: discount
inputs:
  tier: { type: string }
  amount: { type: number }
outputs:
  rate: { type: number }
  reason: { type: string }
hit: first
rules:
  - when: { tier: gold, amount: ">= 1000" }
    then: { rate: 0.15, reason: gold large }
  - when: { tier: "gold, platinum" }
    then: { rate: 0.1, reason: gold }
  - when: { amount: "[500..1000)" }
    then: { rate: 0.05, reason: medium }
default: { rate: 0, reason: none }
"#;

    #[test]
    fn first_takes_the_first_match_and_traces_it() {
        let t = table(DISCOUNT);
        let e = t.evaluate(&inputs(json!({"tier": "gold", "amount": 1500}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"rate": 0.15, "reason": "gold large"}));
        assert_eq!(e.trace.matched, vec![RowRef { row: 0, id: None }]);
        assert_eq!(e.trace.winner, Some(RowRef { row: 0, id: None }));
        assert!(!e.trace.default_used);
        let e = t.evaluate(&inputs(json!({"tier": "platinum", "amount": 10}))).expect("evaluates");
        assert_eq!(e.outputs["reason"], "gold");
        let e = t.evaluate(&inputs(json!({"tier": "silver", "amount": 999.99}))).expect("evaluates");
        assert_eq!(e.outputs["reason"], "medium");
        assert_eq!(e.trace.winner, Some(RowRef { row: 2, id: None }));
    }

    #[test]
    fn nothing_matching_gives_the_default() {
        let t = table(DISCOUNT);
        let e = t.evaluate(&inputs(json!({"tier": "silver", "amount": 1000}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"rate": 0, "reason": "none"}));
        assert!(e.trace.default_used);
        assert!(e.trace.matched.is_empty());
        assert_eq!(e.trace.winner, None);
        // A missing input is null: it matches only `-` cells.
        let e = t.evaluate(&inputs(json!({}))).expect("evaluates");
        assert!(e.trace.default_used);
    }

    #[test]
    fn without_a_default_nothing_matching_is_null() {
        let t = table(&DISCOUNT.replace("default: { rate: 0, reason: none }", ""));
        let e = t.evaluate(&inputs(json!({"tier": "silver", "amount": 1}))).expect("evaluates");
        assert_eq!(e.outputs, Value::Null);
        assert!(t.problems().iter().any(|(p, m, error)| p == "/default" && m.contains("default") && !error));
    }

    #[test]
    fn inputs_are_checked() {
        let t = table(DISCOUNT);
        let err = t.evaluate(&inputs(json!({"tier": "gold", "amount": "lots"}))).expect_err("a string amount");
        assert!(matches!(&err, DecisionError::Input { input, .. } if input == "amount"), "{err}");
        let err = t.evaluate(&inputs(json!({"tier": "gold", "colour": "red"}))).expect_err("unknown input");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    const UNIQUE: &str = r#"
name: carrier
inputs:
  region: { type: string }
  weight: { type: number }
outputs:
  carrier: { type: string }
hit: unique
rules:
  - when: { region: north, weight: "< 20" }
    then: { carrier: van }
  - when: { region: north, weight: ">= 20" }
    then: { carrier: truck }
  - when: { region: "south, east" }
    then: { carrier: courier }
default: { carrier: pickup }
"#;

    #[test]
    fn unique_gives_the_one_match() {
        let t = table(UNIQUE);
        assert!(t.problems().is_empty(), "{:?}", t.problems());
        let e = t.evaluate(&inputs(json!({"region": "north", "weight": 20}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"carrier": "truck"}));
        let e = t.evaluate(&inputs(json!({"region": "west", "weight": 1}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"carrier": "pickup"}));
        assert!(e.trace.default_used);
    }

    #[test]
    fn unique_with_two_matches_is_an_error_and_validate_sees_the_overlap() {
        let yaml = UNIQUE.replace("weight: \">= 20\"", "weight: \">= 10\"");
        let t = table(&yaml);
        let err = t.evaluate(&inputs(json!({"region": "north", "weight": 15}))).expect_err("two rows");
        assert_eq!(err, DecisionError::NotUnique { table: "carrier".into(), rows: vec![0, 1] });
        let problems = t.problems();
        assert!(
            problems.iter().any(|(p, m, e)| p == "/rules/1" && m.contains("rows 0 and 1 overlap") && *e),
            "{problems:?}"
        );
        // Outside the overlap it still answers.
        let e = t.evaluate(&inputs(json!({"region": "north", "weight": 25}))).expect("evaluates");
        assert_eq!(e.outputs["carrier"], "truck");
    }

    #[test]
    fn priority_takes_the_highest_ranked_output() {
        let t = table(
            r#"
name: risk
inputs:
  amount: { type: number }
  country: { type: string }
outputs:
  level: { type: string, values: [high, medium, low] }
hit: priority
rules:
  - when: { amount: "> 100" }
    then: { level: low }
  - when: { country: "!= home" }
    then: { level: medium }
  - when: { amount: "> 10000" }
    then: { level: high }
default: { level: low }
"#,
        );
        let e = t.evaluate(&inputs(json!({"amount": 50000, "country": "abroad"}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"level": "high"}));
        assert_eq!(e.trace.matched.iter().map(|r| r.row).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(e.trace.winner.map(|w| w.row), Some(2));
        let e = t.evaluate(&inputs(json!({"amount": 500, "country": "abroad"}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"level": "medium"}));
        let e = t.evaluate(&inputs(json!({"amount": 5, "country": "home"}))).expect("evaluates");
        assert!(e.trace.default_used);
    }

    #[test]
    fn priority_needs_ranked_values() {
        let def: DecisionDef = serde_yaml_ng::from_str(
            "{name: x, inputs: {a: {type: number}}, outputs: {l: {type: string}}, hit: priority, rules: []}",
        )
        .expect("parses");
        let errs = DecisionTable::compile(def).expect_err("no values");
        assert!(errs[0].to_string().contains("priority"), "{errs:?}");
    }

    const FEES: &str = r#"
name: fees
inputs:
  weight: { type: number }
  hazardous: { type: boolean }
  express: { type: boolean }
outputs:
  fee: { type: number }
hit: collect
rules:
  - then: { fee: 5 }
  - when: { weight: "> 10" }
    then: { fee: 7.5 }
  - when: { hazardous: true }
    then: { fee: 20 }
  - when: { express: true }
    then: { fee: 12 }
"#;

    #[test]
    fn collect_lists_or_aggregates_every_match() {
        let t = table(FEES);
        let given = inputs(json!({"weight": 12, "hazardous": true, "express": false}));
        let e = t.evaluate(&given).expect("evaluates");
        assert_eq!(e.outputs, json!([{"fee": 5}, {"fee": 7.5}, {"fee": 20}]));
        assert_eq!(e.trace.matched.len(), 3);
        assert_eq!(e.trace.winner, None);
        for (agg, want) in [("sum", json!(32.5)), ("min", json!(5)), ("max", json!(20)), ("count", json!(3))] {
            let t = table(&FEES.replace("hit: collect", &format!("hit: collect\naggregate: {agg}")));
            assert_eq!(t.evaluate(&given).expect("evaluates").outputs, json!({"fee": want}), "{agg}");
        }
        let t =
            table(&FEES.replace("hit: collect", "hit: collect\naggregate: sum").replace("  - then: { fee: 5 }\n", ""));
        let e = t.evaluate(&inputs(json!({"weight": 1, "hazardous": false, "express": false}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"fee": 0}), "the sum of nothing");
        assert!(t.problems().is_empty(), "collect needs no default");
    }

    #[test]
    fn aggregates_need_one_number() {
        let yaml = UNIQUE.replace("hit: unique", "hit: collect\naggregate: sum");
        let def: DecisionDef = serde_yaml_ng::from_str(&yaml).expect("parses");
        let errs = DecisionTable::compile(def).expect_err("sum of a string");
        assert!(errs.iter().any(|e| e.to_string().contains("/aggregate")), "{errs:?}");
    }

    #[test]
    fn compact_cells_parse() {
        use ValueKind::*;
        let m = |cell: &str, kind: ValueKind, v: Value| {
            let c = Cell::parse_text(cell, kind).unwrap_or_else(|e| panic!("{cell}: {e}"));
            c.matches(&Scalar::of(&v), &mut RuleCx { inputs: &Map::new(), ctx: None, table: "t" }).expect("matches")
        };
        assert!(m("-", Number, json!(3)) && m("", String, json!("x")) && m("-", String, Value::Null));
        assert!(m("12", Number, json!(12.0)) && !m("12", Number, json!(13)));
        assert!(m(">= 10", Number, json!(10)) && !m("> 10", Number, json!(10)));
        assert!(m("<10", Number, json!(9.5)) && !m("<= 10", Number, json!(10.5)));
        assert!(m("[1..5]", Number, json!(5)) && !m("[1..5)", Number, json!(5)) && !m("(1..5]", Number, json!(1)));
        assert!(m("1..5", Number, json!(1)) && m("1..5", Number, json!(5)) && !m("1..5", Number, json!(6)));
        assert!(m("[..5]", Number, json!(-100)) && m("[5..]", Number, json!(1e9)));
        assert!(m("gold, silver", String, json!("silver")) && !m("gold, silver", String, json!("bronze")));
        assert!(m("1, 2, 3", Integer, json!(2)) && !m("1, 2, 3", Integer, json!(4)));
        assert!(m("!= gold", String, json!("silver")) && !m("!= gold", String, json!("gold")));
        assert!(m("!= gold", String, Value::Null), "null is not gold");
        assert!(m("\"a, b\"", String, json!("a, b")) && m("\"-\"", String, json!("-")));
        assert!(m("\"x..y\"", String, json!("x..y")));
        assert!(m("[2026-01-01..2026-02-01)", String, json!("2026-01-15")), "strings compare in text order");
        assert!(
            m("true", Boolean, json!(true)) && !m("true", Boolean, json!(false)) && m("true", String, json!("true"))
        );
        assert!(m("null", Number, Value::Null) && !m("0", Number, Value::Null));
        assert!(m("= 3", Any, json!(3)) && m("yes", Any, json!("yes")) && !m("3", Any, json!("3")));
        for (bad, kind) in [
            ("abc", Number),
            ("1.5", Integer),
            ("[1..5", Number),
            ("1..5]", Number),
            ("[5..1]", Number),
            ("[..]", Number),
            (">= true", Boolean),
            ("maybe", Boolean),
            ("\"x\"", Number),
        ] {
            assert!(Cell::parse_text(bad, kind).is_err(), "`{bad}` should not parse as {kind:?}");
        }
        assert!(Cell::parse_text(&"1".repeat(MAX_CELL + 1), Number).is_err(), "too long");
        // YAML values: scalars, lists, rules.
        assert!(matches!(Cell::parse(&json!(3), Number), Ok(Cell::Eq(Scalar::Num(_)))));
        assert!(matches!(Cell::parse(&json!(["a", "b"]), String), Ok(Cell::In(v)) if v.len() == 2));
        assert!(Cell::parse(&json!(["a", 1]), String).is_err(), "a number in a string list");
        assert!(Cell::parse(&json!("x"), Number).is_err());
        assert!(Cell::parse(&json!({"nope": []}), Number).is_err(), "an unknown operator");
    }

    #[test]
    fn rules_in_cells_and_rows_see_the_inputs() {
        let t = table(
            r#"
name: shipping
inputs:
  weight: { type: number }
  volume: { type: number }
outputs:
  band: { type: string }
hit: first
rules:
  - when: { weight: { ">": [{ "var": "weight" }, { "*": [{ "var": "volume" }, 200] }] } }
    then: { band: dense }
  - if: { ">": [{ "var": "volume" }, 1] }
    then: { band: bulky }
default: { band: standard }
"#,
        );
        let band = |w: f64, v: f64| t.evaluate(&inputs(json!({"weight": w, "volume": v}))).expect("evaluates").outputs;
        assert_eq!(band(500.0, 2.0), json!({"band": "dense"}));
        assert_eq!(band(100.0, 2.0), json!({"band": "bulky"}));
        assert_eq!(band(10.0, 0.5), json!({"band": "standard"}));
        assert!(t.problems().is_empty(), "rows with rules are not compared: {:?}", t.problems());
    }

    #[test]
    fn validate_finds_unreachable_rows_under_first() {
        let t = table(
            r#"
name: t
inputs:
  a: { type: number }
  b: { type: string }
outputs:
  o: { type: integer }
hit: first
rules:
  - when: { a: "[0..100]" }
    then: { o: 1 }
  - when: { a: "[10..20)", b: x }
    then: { o: 2 }
  - when: { a: "> 100" }
    then: { o: 3 }
  - when: { a: "(100..200]", b: "x, y" }
    then: { o: 4 }
  - when: { a: "!= 5" }
    then: { o: 5 }
  - when: { a: "[200..300]" }
    then: { o: 6 }
default: { o: 0 }
"#,
        );
        let found: Vec<(String, bool)> = t.problems().into_iter().map(|(p, _, e)| (p, e)).collect();
        assert_eq!(
            found,
            vec![("/rules/1".into(), true), ("/rules/3".into(), true), ("/rules/5".into(), true)],
            "{:?}",
            t.problems()
        );
    }

    #[test]
    fn definitions_are_checked_with_pointers() {
        let def: DecisionDef = serde_yaml_ng::from_str(
            r#"
name: t
inputs:
  a: { type: number }
  Bad: { type: string }
outputs:
  o: { type: integer }
hit: first
aggregate: sum
rules:
  - when: { a: "abc", zzz: 1 }
    then: { o: 1.5, p: 2 }
default: { o: "x" }
"#,
        )
        .expect("parses");
        let errs = DecisionTable::compile(def).expect_err("broken");
        let pointers: Vec<String> = errs
            .iter()
            .map(|e| match e {
                DecisionError::Definition { pointer, .. } => pointer.clone(),
                other => other.to_string(),
            })
            .collect();
        for want in [
            "/inputs/Bad",
            "/aggregate",
            "/rules/0/when/zzz",
            "/rules/0/when/a",
            "/rules/0/then/p",
            "/rules/0/then/o",
            "/default/o",
        ] {
            assert!(pointers.iter().any(|p| p == want), "{want} missing from {pointers:?}");
        }
    }

    #[test]
    fn rows_from_entities_become_rows() {
        let t = table(
            r#"
name: discount
inputs:
  tier: { type: string }
  amount: { type: number }
outputs:
  rate: { type: number }
hit: first
rows_from: { type: discount_rule, order_by: position }
default: { rate: 0 }
"#,
        );
        assert!(t.is_empty());
        let a = json!({"tier": "gold", "amount": ">= 100", "rate": 0.2, "position": 1});
        let b = json!({"tier": "-", "rate": 0.01, "position": 2, "note": "ignored"});
        let with = t.with_rows([("id-a".to_string(), &a), ("id-b".to_string(), &b)]).expect("compiles");
        let e = with.evaluate(&inputs(json!({"tier": "gold", "amount": 150}))).expect("evaluates");
        assert_eq!(e.outputs, json!({"rate": 0.2}));
        assert_eq!(e.trace.winner, Some(RowRef { row: 0, id: Some("id-a".into()) }));
        let e = with.evaluate(&inputs(json!({"tier": "silver", "amount": 150}))).expect("evaluates");
        assert_eq!(e.trace.winner, Some(RowRef { row: 1, id: Some("id-b".into()) }));
        let bad = json!({"amount": "lots", "rate": 1});
        let err = t.with_rows([("id-c".to_string(), &bad)]).expect_err("a bad cell");
        assert!(err.to_string().contains("id-c") && err.to_string().contains("lots"), "{err}");
    }

    #[test]
    fn input_expressions_fill_inputs_not_given() {
        let t = table(
            r#"
name: t
inputs:
  tier: { type: string, expr: { var: customer.tier } }
outputs:
  o: { type: integer }
hit: first
rules:
  - when: { tier: gold }
    then: { o: 1 }
default: { o: 0 }
"#,
        );
        let ctx = LogicContext::new(&json!({"customer": {"tier": "gold"}}));
        let resolve = |_: &str, l: &Logic| l.evaluate(&ctx).map_err(|e| rule_error("t", e));
        let e = t.evaluate_with(&Map::new(), resolve).expect("evaluates");
        assert_eq!(e.outputs, json!({"o": 1}));
        assert_eq!(e.trace.inputs, inputs(json!({"tier": "gold"})));
        let e = t.evaluate_with(&inputs(json!({"tier": "silver"})), resolve).expect("evaluates");
        assert_eq!(e.outputs, json!({"o": 0}), "a given input wins over the expression");
    }
}
