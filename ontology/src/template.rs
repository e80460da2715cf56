//! Templates written by tenants (display titles, numbers), rendered with minijinja.
//!
//! Tenant templates are untrusted and rendered in a process every tenant shares, so each render
//! is bounded in time and memory by construction, not only by a fuel counter:
//!
//! - **A small language.** A template is checked when it is parsed ([`Template::parse`]): at most
//!   [`MAX_TEMPLATE_SOURCE`] bytes; text, `{{ expressions }}` and `{% if %}` blocks only (no
//!   `for`, `set`, `macro`, `include`, …: nothing loops or accumulates); no function calls, no
//!   `*` (string repetition multiplies sizes); filters and tests from an allow-list
//!   ([`FILTERS`], [`TESTS`]) whose output is at most the sum of their inputs. So the number of
//!   steps a render takes is bounded by the source, and every value it builds by the sum of the
//!   values it reads.
//! - **A bounded context.** The data a template reads is converted once per render: strings
//!   are cut at [`MAX_TEMPLATE_STRING`] bytes, at most [`MAX_TEMPLATE_NODES`] values of nested
//!   arrays and objects are kept (an array's `length` stays true), and an array or object
//!   printed whole prints at most [`MAX_TEMPLATE_STRING`] bytes. A chain of `~` over the largest
//!   field of an entity therefore builds at most a few hundred kilobytes.
//! - **Backstops.** Fuel ([`TEMPLATE_FUEL`] instructions) and an output buffer that refuses to
//!   grow past [`MAX_TEMPLATE_OUTPUT`] bytes.
//!
//! A [`Template`] is parsed once, when it is created: it owns a clone of the base environment
//! holding just its own compiled template (minijinja's `Template` handle borrows its
//! environment, so this is how an owned, `'static`, `Send + Sync` compiled template is kept
//! without unsafe self-references). A clone of the base shares its filters through `Arc`s.

use std::fmt::{self, Write as _};
use std::io;
use std::sync::{Arc, OnceLock};

use minijinja::machinery::ast::{CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

/// The error of parsing or rendering a template (the template engine's, with its line and span:
/// see [`Template::error_position`]).
pub type TemplateError = Error;

/// Instructions one render may execute: a backstop, since templates cannot loop (a template of
/// [`MAX_TEMPLATE_SOURCE`] bytes compiles to far fewer).
pub const TEMPLATE_FUEL: u64 = 10_000;

/// Bytes one render may output.
pub const MAX_TEMPLATE_OUTPUT: usize = 4096;

/// Bytes of a template's source.
pub const MAX_TEMPLATE_SOURCE: usize = 1024;

/// Bytes of a string value as a template sees it (longer strings are cut, on a character
/// boundary), and of an array or object printed whole.
pub const MAX_TEMPLATE_STRING: usize = 512;

/// Values of nested arrays and objects a render's context keeps (the top-level fields are always
/// kept; deeper values past this count are left out).
pub const MAX_TEMPLATE_NODES: usize = 2000;

/// Widest `pad` accepted, so `pad(1000000000)` cannot allocate.
const MAX_PAD_WIDTH: usize = 64;

/// The filters a template may use: none makes its output larger than the sum of its inputs.
pub const FILTERS: &[&str] = &[
    "pad",
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "default",
    "d",
    "length",
    "count",
    "first",
    "last",
    "abs",
    "int",
    "float",
    "round",
    "string",
    "bool",
    "title_of",
];

/// The tests a template may use (`{% if x is defined %}`).
pub const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "number",
    "integer",
    "float",
    "string",
    "boolean",
    "true",
    "false",
    "odd",
    "even",
    "divisibleby",
    "eq",
    "equalto",
    "==",
    "ne",
    "!=",
    "lt",
    "lessthan",
    "<",
    "le",
    "<=",
    "gt",
    "greaterthan",
    ">",
    "ge",
    ">=",
    "in",
    "startingwith",
    "endingwith",
    "sequence",
    "mapping",
    "lower",
    "upper",
];

/// The shared configuration every [`Template`] is compiled in.
fn base() -> &'static Environment<'static> {
    static BASE: OnceLock<Environment<'static>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut env = Environment::new();
        env.set_fuel(Some(TEMPLATE_FUEL));
        // Chainable: `{{ customer.name }}` renders empty when `customer` is missing, rather
        // than failing the request that wanted a title.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Titles and numbers are plain text; the studio escapes on display.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_filter("pad", pad);
        env.add_filter("title_of", title_of);
        env
    })
}

/// Where the caller puts the titles `title_of` gives, in a render's context: a name no field or
/// template variable can have (it is not an identifier).
pub const REF_TITLES: &str = "reference titles";

/// `{{ product_id | title_of }}` → `SKU-1 Soda`: the title of the entity a reference field
/// names, from the titles the caller looked up for this render ([`REF_TITLES`]: id → title);
/// the value itself (the id) when none was given for it (the entity is gone, the reader may not
/// see it, or it has no title). Its output is one of its inputs, so the language's bound holds.
fn title_of(state: &State<'_, '_>, value: Value) -> Value {
    if value.as_str().is_none() {
        return value;
    }
    match state.lookup(REF_TITLES).map(|titles| titles.get_item(&value)) {
        Some(Ok(title)) if title.as_str().is_some() => title,
        _ => value,
    }
}

/// `{{ seq | pad(6) }}` → `000123`: left-pads an integer (sign kept in front) or a string
/// with zeros to `width` characters. A missing value pads to nothing (as it would print).
fn pad(value: Value, width: usize) -> Result<String, Error> {
    if width > MAX_PAD_WIDTH {
        return Err(Error::new(ErrorKind::InvalidOperation, format!("pad width must be at most {MAX_PAD_WIDTH}")));
    }
    if value.is_undefined() || value.is_none() {
        return Ok(String::new());
    }
    if let Ok(n) = i64::try_from(value.clone()) {
        return Ok(format!("{n:0width$}"));
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count();
        return Ok(format!("{}{s}", "0".repeat(width.saturating_sub(len))));
    }
    Err(Error::new(ErrorKind::InvalidOperation, format!("pad expects an integer or a string, got {}", value.kind())))
}

/// Why a template is outside the language templates may use, with its line.
fn refuse(what: String, line: u16) -> Error {
    Error::new(
        ErrorKind::SyntaxError,
        format!("{what} (line {line}); templates have text, {{{{ expressions }}}} and {{% if %}} blocks only"),
    )
}

/// Checks that a parsed template stays within the small language (see the module's doc).
fn check_stmt(stmt: &Stmt<'_>) -> Result<(), Error> {
    match stmt {
        Stmt::Template(t) => t.children.iter().try_for_each(check_stmt),
        Stmt::EmitRaw(_) => Ok(()),
        Stmt::EmitExpr(e) => check_expr(&e.expr),
        Stmt::IfCond(c) => {
            check_expr(&c.expr)?;
            c.true_body.iter().chain(c.false_body.iter()).try_for_each(check_stmt)
        }
        Stmt::ForLoop(f) => Err(refuse("`for` is not available".into(), f.span().start_line)),
        Stmt::Set(s) => Err(refuse("`set` is not available".into(), s.span().start_line)),
        Stmt::SetBlock(s) => Err(refuse("`set` is not available".into(), s.span().start_line)),
        Stmt::Macro(m) => Err(refuse("`macro` is not available".into(), m.span().start_line)),
        other => Err(refuse("this block is not available".into(), stmt_line(other))),
    }
}

fn stmt_line(stmt: &Stmt<'_>) -> u16 {
    match stmt {
        Stmt::WithBlock(s) => s.span().start_line,
        Stmt::AutoEscape(s) => s.span().start_line,
        Stmt::FilterBlock(s) => s.span().start_line,
        Stmt::Block(s) => s.span().start_line,
        Stmt::Import(s) => s.span().start_line,
        Stmt::FromImport(s) => s.span().start_line,
        Stmt::Extends(s) => s.span().start_line,
        Stmt::Include(s) => s.span().start_line,
        Stmt::CallBlock(s) => s.span().start_line,
        Stmt::Do(s) => s.span().start_line,
        _ => 0,
    }
}

fn check_args(args: &[CallArg<'_>]) -> Result<(), Error> {
    args.iter().try_for_each(|a| match a {
        CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => check_expr(e),
    })
}

fn check_expr(expr: &Expr<'_>) -> Result<(), Error> {
    use minijinja::machinery::ast::BinOpKind;
    match expr {
        Expr::Var(_) | Expr::Const(_) => Ok(()),
        Expr::Slice(s) => {
            check_expr(&s.expr)?;
            [&s.start, &s.stop, &s.step].into_iter().flatten().try_for_each(check_expr)
        }
        Expr::UnaryOp(u) => check_expr(&u.expr),
        Expr::BinOp(b) if matches!(b.op, BinOpKind::Mul) => {
            Err(refuse("`*` is not available (it repeats strings)".into(), b.span().start_line))
        }
        Expr::BinOp(b) => {
            check_expr(&b.left)?;
            check_expr(&b.right)
        }
        Expr::Compare(c) => {
            check_expr(&c.expr)?;
            c.ops.iter().try_for_each(|op| check_expr(&op.expr))
        }
        Expr::IfExpr(i) => {
            check_expr(&i.test_expr)?;
            check_expr(&i.true_expr)?;
            i.false_expr.iter().try_for_each(check_expr)
        }
        Expr::Filter(f) => {
            if !FILTERS.contains(&f.name) {
                return Err(refuse(
                    format!("the filter `{}` is not available (available: {})", f.name, FILTERS.join(", ")),
                    f.span().start_line,
                ));
            }
            // What fails whatever the data is found now, not at the first create.
            if f.name == "pad" {
                if let Some(CallArg::Pos(Expr::Const(width))) = f.args.first() {
                    if width.value.as_usize().is_some_and(|w| w > MAX_PAD_WIDTH) {
                        return Err(refuse(format!("pad width must be at most {MAX_PAD_WIDTH}"), f.span().start_line));
                    }
                }
            }
            if f.name == "title_of" && (!matches!(f.expr, Some(Expr::Var(_))) || !f.args.is_empty()) {
                return Err(Error::new(
                    ErrorKind::SyntaxError,
                    format!(
                        "`title_of` takes no arguments and applies to a reference field by its name, as in \
                         {{{{ product_id | title_of }}}} (line {})",
                        f.span().start_line
                    ),
                ));
            }
            f.expr.iter().try_for_each(check_expr)?;
            check_args(&f.args)
        }
        Expr::Test(t) => {
            if !TESTS.contains(&t.name) {
                return Err(refuse(format!("the test `{}` is not available", t.name), t.span().start_line));
            }
            check_expr(&t.expr)?;
            check_args(&t.args)
        }
        Expr::GetAttr(g) => check_expr(&g.expr),
        Expr::GetItem(g) => {
            check_expr(&g.expr)?;
            check_expr(&g.subscript_expr)
        }
        Expr::Call(c) => Err(refuse("function calls are not available".into(), c.span().start_line)),
        Expr::List(l) => l.items.iter().try_for_each(check_expr),
        Expr::Map(m) => m.keys.iter().chain(m.values.iter()).try_for_each(check_expr),
    }
}

/// The names of the variables `title_of` is applied to in `stmt` (each a plain variable: the
/// check refuses anything else).
fn titled_variables(stmt: &Stmt<'_>, out: &mut std::collections::BTreeSet<String>) {
    fn expr(e: &Expr<'_>, out: &mut std::collections::BTreeSet<String>) {
        let args = |args: &[CallArg<'_>], out: &mut std::collections::BTreeSet<String>| {
            for a in args {
                match a {
                    CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                        expr(e, out)
                    }
                }
            }
        };
        match e {
            Expr::Filter(f) => {
                if let (true, Some(Expr::Var(v))) = (f.name == "title_of", &f.expr) {
                    out.insert(v.id.to_owned());
                }
                f.expr.iter().for_each(|e| expr(e, out));
                args(&f.args, out);
            }
            Expr::Var(_) | Expr::Const(_) | Expr::Call(_) => {}
            Expr::Slice(s) => {
                expr(&s.expr, out);
                [&s.start, &s.stop, &s.step].into_iter().flatten().for_each(|e| expr(e, out));
            }
            Expr::UnaryOp(u) => expr(&u.expr, out),
            Expr::BinOp(b) => {
                expr(&b.left, out);
                expr(&b.right, out);
            }
            Expr::Compare(c) => {
                expr(&c.expr, out);
                c.ops.iter().for_each(|op| expr(&op.expr, out));
            }
            Expr::IfExpr(i) => {
                expr(&i.test_expr, out);
                expr(&i.true_expr, out);
                i.false_expr.iter().for_each(|e| expr(e, out));
            }
            Expr::Test(t) => {
                expr(&t.expr, out);
                args(&t.args, out);
            }
            Expr::GetAttr(g) => expr(&g.expr, out),
            Expr::GetItem(g) => {
                expr(&g.expr, out);
                expr(&g.subscript_expr, out);
            }
            Expr::List(l) => l.items.iter().for_each(|e| expr(e, out)),
            Expr::Map(m) => m.keys.iter().chain(m.values.iter()).for_each(|e| expr(e, out)),
        }
    }
    match stmt {
        Stmt::Template(t) => t.children.iter().for_each(|s| titled_variables(s, out)),
        Stmt::EmitExpr(e) => expr(&e.expr, out),
        Stmt::IfCond(c) => {
            expr(&c.expr, out);
            c.true_body.iter().chain(c.false_body.iter()).for_each(|s| titled_variables(s, out));
        }
        _ => {}
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An array of the context: its true length, the elements kept, printed at most
/// [`MAX_TEMPLATE_STRING`] bytes long.
#[derive(Debug)]
struct BoundedSeq {
    items: Vec<Value>,
    len: usize,
}

impl Object for BoundedSeq {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.items.get(key.as_usize()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.items.len())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.len)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("[");
        for (i, item) in self.items.iter().enumerate() {
            if out.len() >= MAX_TEMPLATE_STRING {
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{item}");
        }
        if self.items.len() < self.len {
            out.push_str(", …");
        }
        out.push(']');
        f.write_str(cut(&out, MAX_TEMPLATE_STRING))
    }
}

/// An object of the context (below the top level): the entries kept, printed at most
/// [`MAX_TEMPLATE_STRING`] bytes long.
#[derive(Debug)]
struct BoundedMap {
    entries: Vec<(String, Value)>,
}

impl Object for BoundedMap {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.entries.iter().map(|(k, _)| Value::from(k.as_str())).collect())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("{");
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if out.len() >= MAX_TEMPLATE_STRING {
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{k}: {v}");
        }
        out.push('}');
        f.write_str(cut(&out, MAX_TEMPLATE_STRING))
    }
}

/// Converts data for a template within the bounds (see the module's doc); `budget` counts the
/// nested values still allowed.
fn bounded(v: &serde_json::Value, budget: &mut usize) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::from(cut(s, MAX_TEMPLATE_STRING)),
        J::Array(items) => {
            let mut kept = Vec::new();
            for item in items {
                if *budget == 0 {
                    break;
                }
                *budget -= 1;
                kept.push(bounded(item, budget));
            }
            Value::from_object(BoundedSeq { items: kept, len: items.len() })
        }
        J::Object(map) => {
            let mut entries = Vec::new();
            for (k, item) in map {
                if *budget == 0 {
                    break;
                }
                *budget -= 1;
                entries.push((cut(k, MAX_TEMPLATE_STRING).to_string(), bounded(item, budget)));
            }
            Value::from_object(BoundedMap { entries })
        }
    }
}

/// The context of a render: every top-level field of `data` (bounded as described in the
/// module's doc), then `extra` (which wins over fields of the same name).
pub fn context(data: &serde_json::Value, extra: &[(&str, Value)]) -> Value {
    context_of(data, extra, None)
}

/// [`context`] with only the fields named in `read` when given (the fields a template reads:
/// the others are not converted).
fn context_of(
    data: &serde_json::Value,
    extra: &[(&str, Value)],
    read: Option<&std::collections::BTreeSet<String>>,
) -> Value {
    let mut budget = MAX_TEMPLATE_NODES;
    let mut fields: Vec<(String, Value)> = match data {
        // A field cannot pose as the titles `title_of` reads (data keys are free-form).
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| *k != REF_TITLES && read.is_none_or(|read| read.contains(k.as_str())))
            .map(|(k, v)| (k.clone(), bounded(v, &mut budget)))
            .collect(),
        _ => Vec::new(),
    };
    for (k, v) in extra {
        fields.retain(|(name, _)| name != k);
        fields.push(((*k).to_string(), v.clone()));
    }
    Value::from_iter(fields)
}

/// A parsed template: its source and its compiled form, rendered with the shared limits.
#[derive(Clone)]
pub struct Template {
    name: String,
    source: String,
    env: Environment<'static>,
    /// The variables `title_of` is applied to.
    titled: std::collections::BTreeSet<String>,
    /// The top-level names the template reads (`customer` of `customer.name`): only those fields
    /// of the data are converted for a render. The language has no way to reach a field by a
    /// computed name (no `set`, loops or function calls), so the set is complete.
    roots: std::collections::BTreeSet<String>,
    /// The template as text and plain fields, when it is only that (see [`Piece`]).
    pieces: Option<Vec<Piece>>,
}

/// A part of a template made of text and plain `{{ field }}`s only, as most titles are
/// (`{{ name }}`, `{{ code }} {{ name }}`): such a template is rendered without the template
/// engine when every field it names holds a string (the text and the strings, cut as the
/// engine's context cuts them, joined), which is what the engine outputs for it. Anything else —
/// a number, a missing field, a filter — goes through the engine. [`Template::parse`] checks the
/// two agree on a probe before it keeps the pieces.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Field(String),
}

/// The pieces of a parsed template, if it is text and plain top-level fields only.
fn pieces_of(stmt: &Stmt<'_>) -> Option<Vec<Piece>> {
    let Stmt::Template(t) = stmt else { return None };
    t.children
        .iter()
        .map(|child| match child {
            Stmt::EmitRaw(raw) => Some(Piece::Text(raw.raw.to_owned())),
            Stmt::EmitExpr(e) => match &e.expr {
                Expr::Var(v) if v.id != REF_TITLES => Some(Piece::Field(v.id.to_owned())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").field("name", &self.name).field("source", &self.source).finish_non_exhaustive()
    }
}

impl Template {
    /// Parses `source` and checks that it stays within the language templates may use (see the
    /// module's doc). `name` appears in error messages (e.g. `title`).
    pub fn parse(name: &str, source: &str) -> Result<Template, Error> {
        if source.len() > MAX_TEMPLATE_SOURCE {
            return Err(Error::new(
                ErrorKind::SyntaxError,
                format!("a template may be at most {MAX_TEMPLATE_SOURCE} bytes long, not {}", source.len()),
            ));
        }
        let ast = parse(source, name, SyntaxConfig, WhitespaceConfig::default())?;
        check_stmt(&ast)?;
        let mut titled = std::collections::BTreeSet::new();
        titled_variables(&ast, &mut titled);
        let mut env = base().clone();
        env.add_template_owned(name.to_owned(), source.to_owned())?;
        let pieces = pieces_of(&ast);
        let mut template = Template {
            name: name.to_owned(),
            source: source.to_owned(),
            env,
            titled,
            roots: Default::default(),
            pieces,
        };
        template.roots =
            template.variables().iter().map(|path| path.split('.').next().unwrap_or_default().to_owned()).collect();
        template.check_pieces();
        Ok(template)
    }

    /// Where in `source` the error of parsing it is: the template engine's line (1-based), and
    /// the column (1-based, in characters) of the start of the span it blames, when it gives one.
    pub fn error_position(source: &str, e: &Error) -> (Option<usize>, Option<usize>) {
        let column = e.range().and_then(|range| {
            let before = source.get(..range.start)?;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            Some(before[line_start..].chars().count() + 1)
        });
        (e.line(), e.line().and(column))
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the template reads from its context, found statically: dotted paths of
    /// attribute lookups (`customer.name`, `seq`), without the template's own variables (`set`,
    /// loop variables) and the environment's globals (`range`, `dict`, …). Used by
    /// `tenant validate` to check them against the fields of the type.
    pub fn variables(&self) -> std::collections::BTreeSet<String> {
        let Ok(template) = self.env.get_template(&self.name) else {
            return std::collections::BTreeSet::new();
        };
        template
            .undeclared_variables(true)
            .into_iter()
            .filter(|path| {
                let root = path.split('.').next().unwrap_or_default();
                !self.env.globals().any(|(global, _)| global == root)
            })
            .collect()
    }

    /// The variables the template applies `title_of` to (`{{ product_id | title_of }}`): the
    /// reference fields whose entities' titles a render wants ([`REF_TITLES`]).
    pub fn titled_variables(&self) -> &std::collections::BTreeSet<String> {
        &self.titled
    }

    /// Renders over the fields of `data` and `extra` (see [`context`]), within the bounds.
    pub fn render(&self, data: &serde_json::Value, extra: &[(&str, Value)]) -> Result<String, Error> {
        if extra.is_empty() {
            if let Some(out) = self.render_pieces(data) {
                return Ok(out);
            }
        }
        self.render_value(context_of(data, extra, Some(&self.roots)))
    }

    /// The render of a template of text and plain fields ([`Piece`]) when every field it names
    /// holds a string and the output stays within [`MAX_TEMPLATE_OUTPUT`]; `None` otherwise (the
    /// engine renders it).
    fn render_pieces(&self, data: &serde_json::Value) -> Option<String> {
        let pieces = self.pieces.as_ref()?;
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(name) => out.push_str(cut(data.get(name)?.as_str()?, MAX_TEMPLATE_STRING)),
            }
            if out.len() > MAX_TEMPLATE_OUTPUT {
                return None;
            }
        }
        Some(out)
    }

    /// Keeps the pieces only if they render a probe (every field a string with markup, quotes,
    /// spaces and a newline) exactly as the engine does.
    fn check_pieces(&mut self) {
        let Some(pieces) = &self.pieces else { return };
        let probe: serde_json::Map<String, serde_json::Value> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Field(name) => Some((name.clone(), serde_json::Value::String(format!(" <{name}> & \"é\"\n")))),
                Piece::Text(_) => None,
            })
            .collect();
        let probe = serde_json::Value::Object(probe);
        let engine = self.render_value(context_of(&probe, &[], Some(&self.roots))).ok();
        if engine.is_none() || engine != self.render_pieces(&probe) {
            self.pieces = None;
        }
    }

    /// Renders over the fields of `data` with `titles` (entity id → title) for what it names with
    /// `title_of` (an id absent renders as itself).
    pub fn render_with_titles(
        &self,
        data: &serde_json::Value,
        titles: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let titles = Value::from_iter(titles.iter().map(|(id, title)| (id.clone(), title.clone())));
        self.render(data, &[(REF_TITLES, titles)])
    }

    /// Renders over a prepared context, within [`TEMPLATE_FUEL`] and [`MAX_TEMPLATE_OUTPUT`].
    fn render_value(&self, ctx: Value) -> Result<String, Error> {
        let template = self.env.get_template(&self.name)?;
        let mut out = BoundedBuf::default();
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => {}
            Err(_) if out.overflowed => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("output is longer than {MAX_TEMPLATE_OUTPUT} bytes"),
                ))
            }
            Err(err) => return Err(err),
        }
        // minijinja writes only whole `str`s, so the bytes are UTF-8.
        String::from_utf8(out.buf).map_err(|err| Error::new(ErrorKind::InvalidOperation, err.to_string()))
    }
}

/// A byte buffer that fails writes past [`MAX_TEMPLATE_OUTPUT`], aborting the render before a
/// template can use up memory.
#[derive(Default)]
struct BoundedBuf {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for BoundedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_TEMPLATE_OUTPUT {
            self.overflowed = true;
            return Err(io::Error::other("template output too long"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &Template, data: serde_json::Value) -> Result<String, Error> {
        t.render(&data, &[])
    }

    #[test]
    fn text_and_plain_fields_render_without_the_engine_and_as_the_engine_does() {
        let plain = ["{{ name }}", "{{code}} – {{ name }}", "Meter {{ name }}\n", "  {{- name -}}  x", "no fields"];
        for source in plain {
            assert!(Template::parse("title", source).unwrap().pieces.is_some(), "{source}: pieces");
        }
        let engine_only =
            ["{{ name | upper }}", "{{ customer.name }}", "{% if name %}{{ name }}{% endif %}", "{{ 'x' }}"];
        for source in engine_only {
            assert!(Template::parse("title", source).unwrap().pieces.is_none(), "{source}: the engine");
        }
        let long = "é".repeat(400);
        let data = [
            json!({"name": "Main meter", "code": "M-1"}),
            json!({"name": "<b>\"quoted\" & more</b>\n", "code": ""}),
            json!({"name": long, "code": "x".repeat(3000)}),
            json!({"name": 42, "code": "M-1"}),
            json!({"name": null, "code": "M-1"}),
            json!({"code": "M-1"}),
            json!({"name": ["a"], "code": {"b": 1}}),
            json!("not an object"),
        ];
        for source in plain {
            let t = Template::parse("title", source).unwrap();
            for d in &data {
                let engine = t.render_value(context_of(d, &[], Some(&t.roots)));
                let fast = t.render(d, &[]);
                assert_eq!(fast.ok(), engine.ok(), "{source} over {d}");
            }
        }
        // A field holding a string renders without the engine; anything else goes through it.
        let t = Template::parse("title", "{{ code }} {{ name }}").unwrap();
        assert_eq!(t.render_pieces(&json!({"code": "M-1", "name": "Main"})).as_deref(), Some("M-1 Main"));
        assert_eq!(t.render_pieces(&json!({"code": "M-1", "name": 7})), None);
        assert_eq!(t.render_pieces(&json!({"code": "M-1"})), None);
    }

    #[test]
    fn parse_errors_have_a_position() {
        let source = "Order {{ number }}\n  {{ customer. }}";
        let e = Template::parse("title", source).unwrap_err();
        let (line, column) = Template::error_position(source, &e);
        assert_eq!(line, Some(2), "{e}");
        assert!(column.is_some_and(|c| (3..=16).contains(&c)), "{column:?}: {e}");
    }

    #[test]
    fn renders_with_pad() {
        let t = Template::parse("number", "ORD-{{ year }}-{{ seq | pad(6) }}").unwrap();
        assert_eq!(render(&t, json!({ "year": "2026", "seq": 123 })).unwrap(), "ORD-2026-000123");
        let t = Template::parse("t", "{{ n | pad(3) }}|{{ s | pad(4) }}|{{ big | pad(2) }}").unwrap();
        assert_eq!(render(&t, json!({ "n": -7, "s": "42", "big": 12345 })).unwrap(), "-07|0042|12345");
    }

    #[test]
    fn extra_values_win_over_fields() {
        let t = Template::parse("number", "{{ seq }}-{{ name }}").unwrap();
        let out = t.render(&json!({ "seq": "field", "name": "x" }), &[("seq", Value::from(7))]).unwrap();
        assert_eq!(out, "7-x");
    }

    #[test]
    fn pad_refuses_bad_input() {
        let t = Template::parse("t", "{{ x | pad(3) }}").unwrap();
        assert!(render(&t, json!({ "x": [1] })).is_err());
        // A literal width over the bound is refused when parsed; a computed one when rendered.
        let err = Template::parse("t", "{{ 1 | pad(100000) }}").unwrap_err();
        assert!(err.to_string().contains("pad width"), "{err}");
        let t = Template::parse("t", "{{ 1 | pad(w) }}").unwrap();
        assert!(render(&t, json!({ "w": 100000 })).is_err());
    }

    #[test]
    fn undefined_is_forgiving() {
        let t = Template::parse("title", "[{{ missing }}{{ customer.name }}]").unwrap();
        assert_eq!(render(&t, json!({})).unwrap(), "[]");
    }

    #[test]
    fn syntax_errors_fail_parse() {
        let err = Template::parse("title", "{{ order_number ").unwrap_err();
        assert!(err.to_string().contains("title"), "{err}");
    }

    #[test]
    fn variables_are_found_statically() {
        let t = Template::parse(
            "title",
            "{{ code }} {{ customer.name | upper }} {% if x is defined %}{{ x }}{% endif %}{{ seq | pad(6) }}",
        )
        .unwrap();
        let vars: Vec<String> = t.variables().into_iter().collect();
        assert_eq!(vars, ["code", "customer.name", "seq", "x"]);
    }

    #[test]
    fn title_of_names_a_reference_by_the_title_given() {
        let t = Template::parse("title", "Stock of {{ product_id | title_of }} in {{ warehouse_id|title_of|upper }}")
            .unwrap();
        let names: Vec<&str> = t.titled_variables().iter().map(String::as_str).collect();
        assert_eq!(names, ["product_id", "warehouse_id"]);
        let data = json!({ "product_id": "p-1", "warehouse_id": "w-1" });
        let titles = Value::from_iter([("p-1", "SKU-1 Soda"), ("w-1", "WH-N North")]);
        assert_eq!(t.render(&data, &[(REF_TITLES, titles)]).unwrap(), "Stock of SKU-1 Soda in WH-N NORTH");
        // Without a title for it (gone, unseen, untitled): the id, as `{{ product_id }}` prints it.
        let some = Value::from_iter([("w-1", "WH-N North")]);
        assert_eq!(t.render(&data, &[(REF_TITLES, some)]).unwrap(), "Stock of p-1 in WH-N NORTH");
        assert_eq!(render(&t, data).unwrap(), "Stock of p-1 in W-1");
        // A field cannot pose as the titles: they are not reachable by name from a template.
        let posing = json!({ "product_id": "p-1", "reference titles": { "p-1": "forged" } });
        assert_eq!(render(&t, posing).unwrap(), "Stock of p-1 in ");
        // Only a plain field, without arguments.
        for source in ["{{ customer.id | title_of }}", "{{ 'x' | title_of }}", "{{ a | title_of(1) }}"] {
            let err = Template::parse("title", source).unwrap_err();
            assert!(err.to_string().contains("title_of"), "{source}: {err}");
        }
    }

    #[test]
    fn only_the_fields_read_are_converted_and_every_one_read_is() {
        // Every way a field is reached: a path, a filter's input, a test, a subscript by another
        // field, a condition.
        let t = Template::parse(
            "title",
            "{{ customer.name }}|{{ items | length }}|{% if flag is defined %}y{% endif %}|{{ prices[code] }}|{{ a if b else c }}",
        )
        .unwrap();
        let roots: Vec<&str> = t.roots.iter().map(String::as_str).collect();
        assert_eq!(roots, ["a", "b", "c", "code", "customer", "flag", "items", "prices"]);
        let data = json!({
            "customer": { "name": "Soda Ltd" }, "items": [1, 2, 3], "flag": true, "prices": { "x": 5 },
            "code": "x", "a": "A", "b": false, "c": "C", "notes": "n".repeat(100_000), "lines": vec![json!({"q": 1}); 5000],
        });
        assert_eq!(render(&t, data).unwrap(), "Soda Ltd|3|y|5|C");
    }

    #[test]
    fn no_html_escaping() {
        let t = Template::parse("title.html", "{{ x }}").unwrap();
        assert_eq!(render(&t, json!({ "x": "A & <B>" })).unwrap(), "A & <B>");
    }

    /// Everything that loops, accumulates or multiplies is refused when parsed, with its line.
    #[test]
    fn the_language_is_small() {
        for (source, expect) in [
            ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "`for`"),
            ("{% set a = 'x' %}{{ a }}", "`set`"),
            ("{% set a %}x{% endset %}", "`set`"),
            ("{% macro m() %}x{% endmacro %}", "`macro`"),
            ("{% include 'x' %}", "block"),
            ("{% with a = 1 %}{{ a }}{% endwith %}", "block"),
            ("{% filter upper %}x{% endfilter %}", "block"),
            ("{{ 'x' * 100000 }}", "`*`"),
            ("\n\n{{ name | replace('a', name) }}", "line 3"),
            ("{{ items | join(',') }}", "`join`"),
            ("{{ range(10) }}", "function calls"),
            ("{{ x is sameas y }}", "`sameas`"),
        ] {
            let err = Template::parse("title", source).unwrap_err();
            assert!(err.to_string().contains(expect), "{source}: {err}");
        }
        let long = "x".repeat(MAX_TEMPLATE_SOURCE + 1);
        assert!(Template::parse("title", &long).unwrap_err().to_string().contains("at most"));
        // What titles and numbers use is there.
        let t = Template::parse(
            "title",
            "{% if name %}{{ name | title }}{% else %}-{% endif %} ({{ items | length }} items, {{ 'big' if total > 10 else 'small' }}) {{ code ~ '/' ~ (n + 1) }}",
        )
        .unwrap();
        let out = render(&t, json!({"name": "soda", "items": [1, 2, 3], "total": 11, "code": "A", "n": 1})).unwrap();
        assert_eq!(out, "Soda (3 items, big) A/2");
    }

    #[test]
    fn output_is_bounded() {
        let t = Template::parse("title", "{{ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a }}").unwrap();
        let err = render(&t, json!({ "a": "x".repeat(100_000) })).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    /// A chain of concatenations over the largest field of a large entity: strings are cut
    /// before the template sees them, so the chain stays small and fast.
    #[test]
    fn concatenation_chains_stay_small() {
        let chain = vec!["a"; 200].join(" ~ ");
        let t = Template::parse("title", &format!("{{{{ ({chain}) | length }}}}")).unwrap();
        let out = render(&t, json!({ "a": "y".repeat(10_000_000) })).unwrap();
        assert_eq!(out, (200 * MAX_TEMPLATE_STRING).to_string());
    }

    /// Arrays and objects keep their length but print briefly, however large or nested.
    #[test]
    fn large_and_nested_data_prints_briefly() {
        let mut nested = json!(1);
        for i in 0..100 {
            nested = json!([nested, i, "x".repeat(1000)]);
        }
        let wide: Vec<Vec<u32>> = (0..1000).map(|i| vec![i; 1000]).collect();
        let big: Vec<u32> = (0..100_000).collect();
        let t = Template::parse("title", "{{ big | length }} {{ big ~ nested ~ obj ~ wide }}").unwrap();
        let data = json!({ "big": big, "nested": nested, "obj": { "k": "v".repeat(100_000) }, "wide": wide });
        let out = render(&t, data).unwrap();
        assert!(out.starts_with("100000 [0, 1, 2"), "{out}");
        assert!(out.len() <= 4 * MAX_TEMPLATE_STRING + 10, "{}", out.len());
    }

    #[test]
    fn strings_are_cut_on_a_character_boundary() {
        let t = Template::parse("title", "{{ s | length }}").unwrap();
        let out = render(&t, json!({ "s": "é".repeat(1000) })).unwrap();
        assert_eq!(out, (MAX_TEMPLATE_STRING / 2).to_string());
    }
}
