//! List queries: filters, search, sort and keyset pagination over the entities of one type, and
//! the indexes that keep them index-backed.
//!
//! A list is asked for with query parameters (`docs/api.md`, "Lists"), parsed here against the
//! type's definition: only fields marked `filterable`/`sortable`/`searchable` (plus `id`,
//! `state`, `created_at`, `updated_at`) are accepted, and every value is parsed to the field's
//! kind. Anything else is a 422 naming the parameter.
//!
//! **No SQL text is built from input.** The statement's shape comes from a fixed vocabulary
//! (column names, operators, the `field_<kind>` accessor functions of migration 0004) and its
//! parameters carry everything the client sent: values *and* field names
//! (`field_number(data, $3) >= $4`). Statements are unnamed (`persistent(false)`), so Postgres
//! plans each with its parameters as constants: `field_number(data, $3)` becomes
//! `field_number(data, 'amount')`, the very expression of the index [`index_specs`] creates for
//! that (tenant, type, field), and `tenant_id = $1 and type = $2` proves the index's partial
//! predicate.
//!
//! Pagination is by key: the cursor holds the sort key and the id of the last row, and the next
//! page starts strictly after them, so it is stable under any sort and costs the same on page
//! 1000 as on page 1. A field may be missing (null): rows without it come last, in either
//! direction (then by id, in the same direction). Each page is read as (at most) two
//! index-ordered segments, non-null keys then null keys, so that every condition of each
//! statement stays a plain index condition.
//!
//! Here: the request and page types, the parsed form, and the statements. The parsing of the
//! parameters (pure) is [`parse`]; the indexes are [`index`].

use chrono::{DateTime, SecondsFormat, Utc};
use ontology::def::FieldKind;
use serde_json::{json, Value};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row};
use uuid::Uuid;

use super::{Store, StoreError, TenantId};
use crate::model::Entity;

mod index;
mod parse;
pub(crate) mod rows;

pub use index::{entities_partition, index_specs, unique_specs, IndexSpec, UniqueSpec, SEARCH_OPCLASS, UNIQUE_PREFIX};
pub use parse::ME;
use parse::*;

/// Largest `limit` of a list page.
pub const MAX_LIMIT: i64 = 500;
/// `limit` when none is given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most values of one `in` filter.
pub const MAX_IN_VALUES: usize = 1000;
/// Most characters of `q`, and most words in it.
pub const MAX_Q_CHARS: usize = 200;
pub const MAX_Q_WORDS: usize = 10;
/// Longest value of a filter (a string field's value).
pub const MAX_VALUE_CHARS: usize = 2000;
/// Bumped when what an index contains changes, so indexes of the old recipe are replaced.
const INDEX_RECIPE: u32 = 1;
/// Most entities `total=true` counts: a list with more answers `"total": TOTAL_CAP,
/// "total_exact": false` (counting a million rows would take as long as reading them).
pub const TOTAL_CAP: i64 = 10_000;
/// Prefix of the name of every index [`index_specs`] makes.
pub const INDEX_PREFIX: &str = "entities_q_";

/// A parameter's value: one string (a query string), or several (a JSON array in a bulk
/// filter; for `in`).
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    One(String),
    Many(Vec<String>),
}

/// What a request may say besides filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    /// `GET …/entities/{type}`: filters, `q`, `sort`, `limit`, `cursor`, `total`.
    List,
    /// A CSV export: filters, `q`, `sort` (the server pages).
    Export,
    /// A bulk transition's `filter`: filters and `q` (the server pages, by id).
    Filter,
}

/// A list request: the client's parameters, and what the server sets when it pages through a
/// whole list itself (export, bulk).
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub params: Vec<(String, ParamValue)>,
    pub mode: ListMode,
    /// Set by the server in [`ListMode::Export`] and [`ListMode::Filter`].
    pub cursor: Option<String>,
    /// Set by the server in [`ListMode::Export`] and [`ListMode::Filter`].
    pub limit: Option<i64>,
}

impl ListRequest {
    /// A list request from query-string pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>, mode: ListMode) -> ListRequest {
        ListRequest {
            params: pairs.into_iter().map(|(k, v)| (k, ParamValue::One(v))).collect(),
            mode,
            cursor: None,
            limit: None,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub entities: Vec<Entity>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
    /// The number of entities matching the filters (not the page), when asked (`total=true`):
    /// exact up to [`TOTAL_CAP`]; beyond it, [`TOTAL_CAP`] with `total_exact` false.
    pub total: Option<i64>,
    /// Whether `total` is the exact count (false: there are more than `total`).
    pub total_exact: bool,
}

// --- What a field is, in SQL ------------------------------------------------------------------

/// The accessor function of migration 0004 that reads a field of a kind, typed, and whose
/// comparisons are leakproof (so they can be index conditions under row-level security).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accessor {
    Text,
    Number,
    Decimal,
    Boolean,
    Uuid,
    Timestamptz,
}

impl Accessor {
    fn of(kind: FieldKind) -> Option<Accessor> {
        match kind {
            // Dates are `YYYY-MM-DD`: text order is date order.
            FieldKind::String | FieldKind::Enum | FieldKind::Date => Some(Accessor::Text),
            FieldKind::Number | FieldKind::Integer => Some(Accessor::Number),
            FieldKind::Decimal => Some(Accessor::Decimal),
            FieldKind::Boolean => Some(Accessor::Boolean),
            FieldKind::Reference | FieldKind::User => Some(Accessor::Uuid),
            FieldKind::Datetime => Some(Accessor::Timestamptz),
            FieldKind::Object | FieldKind::Array => None,
        }
    }

    /// The SQL function (a fixed name, never input).
    fn function(self) -> &'static str {
        match self {
            Accessor::Text => "field_text",
            Accessor::Number => "field_number",
            Accessor::Decimal => "field_decimal",
            Accessor::Boolean => "field_boolean",
            Accessor::Uuid => "field_uuid",
            Accessor::Timestamptz => "field_timestamptz",
        }
    }
}

/// The columns a list may filter or sort on besides data fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    State,
    CreatedAt,
    UpdatedAt,
}

impl Column {
    fn parse(name: &str) -> Option<Column> {
        match name {
            "id" => Some(Column::Id),
            "state" => Some(Column::State),
            "created_at" => Some(Column::CreatedAt),
            "updated_at" => Some(Column::UpdatedAt),
            _ => None,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::State => "state",
            Column::CreatedAt => "created_at",
            Column::UpdatedAt => "updated_at",
        }
    }
}

/// What a filter or the sort reads.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Column(Column),
    /// A data field (its name, checked against the type) and its kind.
    Field {
        name: String,
        kind: FieldKind,
        accessor: Accessor,
    },
}

impl Key {
    fn nullable(&self) -> bool {
        matches!(self, Key::Field { .. })
    }

    /// The type values compared with this key are parsed to.
    fn value_type(&self) -> Accessor {
        match self {
            Key::Column(Column::Id) => Accessor::Uuid,
            Key::Column(Column::State) => Accessor::Text,
            Key::Column(Column::CreatedAt | Column::UpdatedAt) => Accessor::Timestamptz,
            Key::Field { accessor, .. } => *accessor,
        }
    }
}

/// A typed value, bound as a parameter of its SQL type.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Text(String),
    Number(f64),
    /// A decimal in canonical form (bound as text, cast to numeric).
    Decimal(String),
    Boolean(bool),
    Uuid(Uuid),
    Timestamptz(DateTime<Utc>),
}

impl Val {
    fn to_json(&self) -> Value {
        match self {
            Val::Text(s) => Value::String(s.clone()),
            Val::Number(n) => json!(n),
            Val::Decimal(d) => Value::String(d.clone()),
            Val::Boolean(b) => Value::Bool(*b),
            Val::Uuid(u) => Value::String(u.to_string()),
            Val::Timestamptz(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }

    fn from_json(accessor: Accessor, v: &Value) -> Option<Val> {
        match (accessor, v) {
            (Accessor::Text, Value::String(s)) => Some(Val::Text(s.clone())),
            (Accessor::Number, Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(Val::Number),
            (Accessor::Decimal, v) => ontology::decimal::from_json(v).ok().map(|d| Val::Decimal(d.to_string())),
            (Accessor::Boolean, Value::Bool(b)) => Some(Val::Boolean(*b)),
            (Accessor::Uuid, Value::String(s)) => Uuid::parse_str(s).ok().map(Val::Uuid),
            (Accessor::Timestamptz, Value::String(s)) => {
                DateTime::parse_from_rfc3339(s).ok().map(|t| Val::Timestamptz(t.with_timezone(&Utc)))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Null,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        match s {
            "eq" => Some(Op::Eq),
            "gt" => Some(Op::Gt),
            "gte" => Some(Op::Gte),
            "lt" => Some(Op::Lt),
            "lte" => Some(Op::Lte),
            "in" => Some(Op::In),
            "null" => Some(Op::Null),
            _ => None,
        }
    }

    fn is_range(self) -> bool {
        matches!(self, Op::Gt | Op::Gte | Op::Lt | Op::Lte)
    }

    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::In | Op::Null => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Compare(Op, Val),
    In(Vec<Val>),
    IsNull(bool),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    key: Key,
    cond: Cond,
}

#[derive(Debug, Clone, PartialEq)]
struct Sort {
    key: Key,
    desc: bool,
    /// As written (`-amount`); a cursor carries it, so it cannot be used with another sort.
    spec: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    /// The sort key of the last row (`None`: it was null; always `None` for `sort=id`).
    value: Option<Val>,
    id: Uuid,
}

/// A parsed list request: everything typed, nothing left to interpret.
#[derive(Debug, Clone)]
struct Parsed {
    type_name: String,
    filters: Vec<Filter>,
    /// Fields searched by `q`, and its words (each must appear in one of them).
    search: Option<(Vec<String>, Vec<String>)>,
    sort: Sort,
    limit: i64,
    cursor: Option<Cursor>,
    total: bool,
    /// The rows the caller may see (record rules), and the caller whose values they read.
    scope: Option<(crate::rows::RowScope, crate::model::Actor)>,
}

// --- SQL --------------------------------------------------------------------------------------

/// A parameter.
#[derive(Debug, Clone)]
enum Bind {
    Uuid(Uuid),
    Text(String),
    Number(f64),
    /// Text cast to numeric.
    Decimal(String),
    Boolean(bool),
    Timestamptz(DateTime<Utc>),
    Int(i64),
    Texts(Vec<String>),
    Numbers(Vec<f64>),
    Decimals(Vec<String>),
    Booleans(Vec<bool>),
    Uuids(Vec<Uuid>),
    Timestamptzs(Vec<DateTime<Utc>>),
}

/// A statement being written: fixed SQL text, and the parameters its placeholders name.
struct Stmt {
    text: String,
    binds: Vec<Bind>,
}

impl Stmt {
    fn new(text: &str) -> Stmt {
        Stmt { text: text.to_string(), binds: Vec::new() }
    }

    /// Adds a parameter and returns its placeholder, cast to its type.
    fn param(&mut self, b: Bind) -> String {
        let cast = match &b {
            Bind::Uuid(_) => "uuid",
            Bind::Text(_) => "text",
            Bind::Number(_) => "float8",
            Bind::Decimal(_) => "numeric",
            Bind::Boolean(_) => "boolean",
            Bind::Timestamptz(_) => "timestamptz",
            Bind::Int(_) => "int8",
            Bind::Texts(_) => "text[]",
            Bind::Numbers(_) => "float8[]",
            Bind::Decimals(_) => "numeric[]",
            Bind::Booleans(_) => "boolean[]",
            Bind::Uuids(_) => "uuid[]",
            Bind::Timestamptzs(_) => "timestamptz[]",
        };
        self.binds.push(b);
        format!("${}::{cast}", self.binds.len())
    }

    fn val(&mut self, v: &Val) -> String {
        self.param(match v {
            Val::Text(s) => Bind::Text(s.clone()),
            Val::Number(n) => Bind::Number(*n),
            Val::Decimal(d) => Bind::Decimal(d.clone()),
            Val::Boolean(b) => Bind::Boolean(*b),
            Val::Uuid(u) => Bind::Uuid(*u),
            Val::Timestamptz(t) => Bind::Timestamptz(*t),
        })
    }

    /// The SQL of a key: a column, or the accessor over the field named by a parameter.
    fn key(&mut self, key: &Key) -> String {
        match key {
            Key::Column(c) => c.sql().to_string(),
            Key::Field { name, accessor, .. } => {
                let p = self.param(Bind::Text(name.clone()));
                format!("{}(data, {p})", accessor.function())
            }
        }
    }

    fn push(&mut self, sql: &str) {
        self.text.push_str(sql);
    }

    fn query(&self) -> Query<'_, Postgres, PgArguments> {
        let mut q = sqlx::query(&self.text).persistent(false);
        for b in &self.binds {
            q = match b {
                Bind::Uuid(v) => q.bind(*v),
                Bind::Text(v) => q.bind(v.as_str()),
                Bind::Number(v) => q.bind(*v),
                Bind::Decimal(v) => q.bind(v.as_str()),
                Bind::Boolean(v) => q.bind(*v),
                Bind::Timestamptz(v) => q.bind(*v),
                Bind::Int(v) => q.bind(*v),
                Bind::Texts(v) => q.bind(v.as_slice()),
                Bind::Numbers(v) => q.bind(v.as_slice()),
                Bind::Decimals(v) => q.bind(v.as_slice()),
                Bind::Booleans(v) => q.bind(v.as_slice()),
                Bind::Uuids(v) => q.bind(v.as_slice()),
                Bind::Timestamptzs(v) => q.bind(v.as_slice()),
            };
        }
        q
    }
}

const COLUMNS: &str = super::sql::ENTITY_COLUMNS;

/// Appends ` from entities where <tenant, type, filters, search>`.
fn from_where(s: &mut Stmt, p: &Parsed, tenant: TenantId) {
    let t = s.param(Bind::Uuid(tenant.as_uuid()));
    let ty = s.param(Bind::Text(p.type_name.clone()));
    // `tenant_id = $1 and type = $2`, with exactly these types: they prove the partial
    // predicate of the field indexes (`where tenant_id = '…'::uuid and type = '…'::text`).
    s.push(&format!(" from entities where tenant_id = {t} and type = {ty}"));
    if let Some((scope, actor)) = &p.scope {
        if let Some(cond) = rows::scope_condition(s, &t, "entities", scope, actor) {
            s.push(&format!(" and {cond}"));
        }
    }
    for f in &p.filters {
        let k = s.key(&f.key);
        match &f.cond {
            Cond::Compare(op, v) => {
                let v = s.val(v);
                s.push(&format!(" and {k} {} {v}", op.sql()));
            }
            Cond::In(vals) => {
                let arr = match f.key.value_type() {
                    Accessor::Text => Bind::Texts(vals.iter().filter_map(as_text).collect()),
                    Accessor::Number => Bind::Numbers(vals.iter().filter_map(as_number).collect()),
                    Accessor::Decimal => Bind::Decimals(vals.iter().filter_map(as_decimal).collect()),
                    Accessor::Boolean => Bind::Booleans(vals.iter().filter_map(as_bool).collect()),
                    Accessor::Uuid => Bind::Uuids(vals.iter().filter_map(as_uuid).collect()),
                    Accessor::Timestamptz => Bind::Timestamptzs(vals.iter().filter_map(as_ts).collect()),
                };
                let a = s.param(arr);
                s.push(&format!(" and {k} = any({a})"));
            }
            Cond::IsNull(true) => s.push(&format!(" and {k} is null")),
            Cond::IsNull(false) => s.push(&format!(" and {k} is not null")),
        }
    }
    if let Some((fields, words)) = &p.search {
        // Every word, case-insensitively, somewhere in the searched fields' text: `~~%` is
        // `ilike` that may be an index condition under row-level security, over the expression
        // of the type's trigram index (migration 0016, [`index_specs`]).
        let names = s.param(Bind::Texts(fields.clone()));
        let haystack = format!("search_text(data, {names})");
        for w in words {
            let pattern = s.param(Bind::Text(format!("%{}%", escape_like(w))));
            s.push(&format!(" and {haystack} ~~% {pattern}"));
        }
    }
}

fn as_text(v: &Val) -> Option<String> {
    if let Val::Text(s) = v {
        Some(s.clone())
    } else {
        None
    }
}
fn as_decimal(v: &Val) -> Option<String> {
    if let Val::Decimal(d) = v {
        Some(d.clone())
    } else {
        None
    }
}
fn as_number(v: &Val) -> Option<f64> {
    if let Val::Number(n) = v {
        Some(*n)
    } else {
        None
    }
}
fn as_bool(v: &Val) -> Option<bool> {
    if let Val::Boolean(b) = v {
        Some(*b)
    } else {
        None
    }
}
fn as_uuid(v: &Val) -> Option<Uuid> {
    if let Val::Uuid(u) = v {
        Some(*u)
    } else {
        None
    }
}
fn as_ts(v: &Val) -> Option<DateTime<Utc>> {
    if let Val::Timestamptz(t) = v {
        Some(*t)
    } else {
        None
    }
}

/// `%`, `_` and `\` match themselves.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Which rows of the sort order a statement reads: all (the key is never null), those whose
/// key is not null, or those whose key is null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    All,
    NonNull,
    Null,
}

/// The segments of the sort order, in order: missing (null) keys always come last, in either
/// direction. A filter on the sort key that excludes one kind of row drops its segment.
fn segments(p: &Parsed) -> Vec<Segment> {
    if !p.sort.key.nullable() {
        return vec![Segment::All];
    }
    let on_key = || p.filters.iter().filter(|f| f.key == p.sort.key);
    let only_nulls = on_key().any(|f| f.cond == Cond::IsNull(true));
    let no_nulls = on_key().any(|f| f.cond != Cond::IsNull(true));
    match (no_nulls, only_nulls) {
        (true, true) => vec![],
        (true, false) => vec![Segment::NonNull],
        (false, true) => vec![Segment::Null],
        (false, false) => vec![Segment::NonNull, Segment::Null],
    }
}

/// The statements a page runs, in order, each with the cursor when it starts there.
fn steps(p: &Parsed) -> Vec<(Segment, Option<&Cursor>)> {
    let segs = segments(p);
    let start = match &p.cursor {
        Some(c) if p.sort.key.nullable() => {
            let wanted = if c.value.is_some() { Segment::NonNull } else { Segment::Null };
            segs.iter().position(|s| *s == wanted).unwrap_or(segs.len())
        }
        _ => 0,
    };
    segs.into_iter()
        .enumerate()
        .skip(start)
        .map(|(i, seg)| (seg, if i == start { p.cursor.as_ref() } else { None }))
        .collect()
}

/// The page statement of one segment, starting after `cursor` (when the cursor is in it).
fn page_stmt(p: &Parsed, tenant: TenantId, segment: Segment, cursor: Option<&Cursor>, limit: i64) -> Stmt {
    let mut s = Stmt::new("");
    // One expression, written once: the select list, the segment, the cursor and the order
    // all say exactly what the index says.
    let key = s.key(&p.sort.key);
    // A numeric sort key is read back as its text (the cursor keeps every digit); it is
    // compared and ordered as numeric.
    let read = if p.sort.key.value_type() == Accessor::Decimal { format!("{key}::text") } else { key.clone() };
    s.push(&format!("select {COLUMNS}, {read} as sort_key"));
    from_where(&mut s, p, tenant);
    let dir = if p.sort.desc { "desc" } else { "asc" };
    let cmp = if p.sort.desc { "<" } else { ">" };
    match segment {
        Segment::All => {}
        Segment::NonNull => s.push(&format!(" and {key} is not null")),
        Segment::Null => s.push(&format!(" and {key} is null")),
    }
    if let Some(c) = cursor {
        let id = s.param(Bind::Uuid(c.id));
        match (&p.sort.key, segment, &c.value) {
            (Key::Column(Column::Id), _, _) | (_, Segment::Null, _) | (_, _, None) => {
                s.push(&format!(" and id {cmp} {id}"))
            }
            (_, _, Some(v)) => {
                let v = s.val(v);
                s.push(&format!(" and ({key}, id) {cmp} ({v}, {id})"));
            }
        }
    }
    match &p.sort.key {
        Key::Column(Column::Id) => s.push(&format!(" order by id {dir}")),
        _ => s.push(&format!(" order by {key} {dir}, id {dir}")),
    }
    let l = s.param(Bind::Int(limit));
    s.push(&format!(" limit {l}"));
    s
}

fn sort_value(row: &PgRow, key: &Key) -> Result<Option<Val>, sqlx::Error> {
    Ok(match key {
        Key::Column(Column::Id) => None,
        key => match key.value_type() {
            Accessor::Text => row.try_get::<Option<String>, _>("sort_key")?.map(Val::Text),
            Accessor::Number => row.try_get::<Option<f64>, _>("sort_key")?.map(Val::Number),
            Accessor::Decimal => row.try_get::<Option<String>, _>("sort_key")?.map(Val::Decimal),
            Accessor::Boolean => row.try_get::<Option<bool>, _>("sort_key")?.map(Val::Boolean),
            Accessor::Uuid => row.try_get::<Option<Uuid>, _>("sort_key")?.map(Val::Uuid),
            Accessor::Timestamptz => row.try_get::<Option<DateTime<Utc>>, _>("sort_key")?.map(Val::Timestamptz),
        },
    })
}

async fn fetch_page(tx: &mut PgConnection, tenant: TenantId, p: &Parsed) -> Result<ListPage, StoreError> {
    let want = p.limit + 1;
    let mut rows: Vec<(Entity, Option<Val>)> = Vec::new();
    for (segment, cursor) in steps(p) {
        let stmt = page_stmt(p, tenant, segment, cursor, want - rows.len() as i64);
        for row in stmt.query().fetch_all(&mut *tx).await? {
            rows.push((super::sql::entity_from_row(&row)?.entity, sort_value(&row, &p.sort.key)?));
        }
        if rows.len() as i64 >= want {
            break;
        }
    }
    let next_cursor = if rows.len() as i64 > p.limit {
        rows.truncate(p.limit as usize);
        rows.last().map(|(e, v)| encode_cursor(&p.sort, v.as_ref(), e.id))
    } else {
        None
    };
    let (total, total_exact) = if p.total {
        let n = count_stmt(p, tenant).query().fetch_one(&mut *tx).await?.try_get::<i64, _>(0)?;
        if n > TOTAL_CAP {
            (Some(TOTAL_CAP), false)
        } else {
            (Some(n), true)
        }
    } else {
        (None, true)
    };
    Ok(ListPage { entities: rows.into_iter().map(|(e, _)| e).collect(), next_cursor, total, total_exact })
}

/// `select count(*) from (select 1 … limit TOTAL_CAP + 1)`: counts at most one row past the
/// cap, so its cost is bounded whatever the list's size (more than the cap is "at least").
fn count_stmt(p: &Parsed, tenant: TenantId) -> Stmt {
    let mut s = Stmt::new("select count(*) from (select 1");
    from_where(&mut s, p, tenant);
    let l = s.param(Bind::Int(TOTAL_CAP + 1));
    s.push(&format!(" limit {l}) capped"));
    s
}

/// Parses `request` against the live definitions and reads one page (see the module
/// documentation), in one transaction.
pub(super) async fn run(
    store: &Store,
    tenant: TenantId,
    actor: &crate::model::Actor,
    type_name: &str,
    request: &ListRequest,
) -> Result<ListPage, StoreError> {
    let mut tx = store.begin(tenant).await?;
    let (_, defs) = store.live_in(&mut tx, tenant).await?;
    let mut parsed = parse(&defs, type_name, request, actor.user_id())?;
    parsed.scope = Some((defs.row_scope(actor, type_name), actor.clone()));
    let page = fetch_page(&mut tx, tenant, &parsed).await?;
    tx.commit().await?;
    Ok(page)
}

/// `EXPLAIN (FORMAT JSON)` of each statement that reads the page `request` asks for (one per
/// segment, see the module documentation; then the count's, with `total=true`), planned exactly
/// as [`Store::query`] plans them. For tests and operators.
pub async fn explain_list(
    store: &Store,
    tenant: TenantId,
    actor: &crate::model::Actor,
    type_name: &str,
    request: &ListRequest,
) -> Result<Vec<Value>, StoreError> {
    let mut tx = store.begin(tenant).await?;
    let (_, defs) = store.live_in(&mut tx, tenant).await?;
    let mut parsed = parse(&defs, type_name, request, actor.user_id())?;
    parsed.scope = Some((defs.row_scope(actor, type_name), actor.clone()));
    let mut plans = Vec::new();
    for (segment, cursor) in steps(&parsed) {
        let mut stmt = page_stmt(&parsed, tenant, segment, cursor, parsed.limit + 1);
        stmt.text = format!("explain (format json) {}", stmt.text);
        plans.push(stmt.query().fetch_one(&mut *tx).await?.try_get(0)?);
    }
    if parsed.total {
        let mut stmt = count_stmt(&parsed, tenant);
        stmt.text = format!("explain (format json) {}", stmt.text);
        plans.push(stmt.query().fetch_one(&mut *tx).await?.try_get(0)?);
    }
    tx.commit().await?;
    Ok(plans)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "in a test, a failed unwrap is a failed test")]
mod tests {
    use ontology::def::EntityTypeDef;

    use super::*;

    #[test]
    fn params_split_into_name_and_operator() {
        assert_eq!(split_param("amount"), Some(("amount", None)));
        assert_eq!(split_param("amount[gte]"), Some(("amount", Some("gte"))));
        assert_eq!(split_param("amount[gte"), None);
        assert!(!is_identifier("amount'); drop table entities; --"));
        assert!(is_identifier("customer_id"));
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_sort() {
        let sort = Sort {
            key: Key::Field { name: "amount".into(), kind: FieldKind::Number, accessor: Accessor::Number },
            desc: true,
            spec: "-amount".into(),
        };
        let id = Uuid::now_v7();
        let c = encode_cursor(&sort, Some(&Val::Number(12.5)), id);
        assert_eq!(decode_cursor(&c, Some(&sort)), Some(Cursor { value: Some(Val::Number(12.5)), id }));
        let null = encode_cursor(&sort, None, id);
        assert_eq!(decode_cursor(&null, Some(&sort)), Some(Cursor { value: None, id }));
        let other = Sort { spec: "amount".into(), desc: false, ..sort.clone() };
        assert_eq!(decode_cursor(&c, Some(&other)), None);
        assert_eq!(decode_cursor("zz", Some(&sort)), None);
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like(r"50%_off\"), r"50\%\_off\\");
    }

    #[test]
    fn index_sql_uses_the_query_expression() {
        let def: EntityTypeDef = serde_json::from_value(json!({
            "name": "ticket",
            "fields": {
                "amount": { "type": "number", "sortable": true },
                "note": { "type": "string" },
                "tags": { "type": "array", "items": { "type": "string" }, "filterable": true },
            }
        }))
        .unwrap();
        let tenant = TenantId::fixed(0);
        let specs = index_specs(tenant, &[def]);
        assert_eq!(specs.len(), 1, "{specs:?}");
        let s = &specs[0];
        assert!(s.name.starts_with(INDEX_PREFIX) && s.name.len() == INDEX_PREFIX.len() + 24);
        assert!(s.create_sql.contains("(field_number(data, 'amount'), id)"), "{}", s.create_sql);
        assert!(s
            .create_sql
            .contains("where tenant_id = '00000000-0000-0000-0000-000000000000'::uuid and type = 'ticket'::text"));
        let mut stmt = Stmt::new("");
        let key = Key::Field { name: "amount".into(), kind: FieldKind::Number, accessor: Accessor::Number };
        assert_eq!(stmt.key(&key), "field_number(data, $1::text)");
    }

    #[test]
    fn unique_specs_name_each_constraint_deterministically() {
        let def = |ci: bool| -> ontology::def::EntityTypeDef {
            serde_json::from_value(json!({
                "name": "part",
                "fields": {
                    "sku": { "type": "string", "unique": { "case_insensitive": ci } },
                    "qty": { "type": "integer" },
                    "supplier": { "type": "reference", "to": "supplier" },
                },
                "unique": [["supplier", "qty"]],
            }))
            .unwrap()
        };
        let tenant = TenantId::fixed(0);
        let specs = unique_specs(tenant, &[def(true)]);
        assert_eq!(specs.len(), 2, "{specs:?}");
        let (sku, pair) = (&specs[0], &specs[1]);
        assert_eq!((sku.fields.as_slice(), sku.case_insensitive), (&["sku".to_string()][..], true));
        assert!(sku.name.starts_with(UNIQUE_PREFIX) && sku.name.len() == UNIQUE_PREFIX.len() + 24);
        assert_eq!(
            sku.create_sql,
            format!(
                "create unique index if not exists {} on entities_of_00000000000000000000000000000000 (tenant_id, lower(field_text(data, 'sku'))) \
                 where tenant_id = '00000000-0000-0000-0000-000000000000'::uuid and type = 'part'::text",
                sku.name
            )
        );
        assert_eq!(pair.key, ["field_uuid(data, 'supplier')", "field_number(data, 'qty')"]);
        assert!(pair.duplicates_sql().contains("group by field_uuid(data, 'supplier'), field_number(data, 'qty')"));
        // The same constraint, the same name; another tenant or case rule, another index.
        assert_eq!(unique_specs(tenant, &[def(true)]), specs);
        assert_ne!(unique_specs(tenant, &[def(false)])[0].name, sku.name);
        assert_ne!(unique_specs(TenantId::fixed(1), &[def(true)])[0].name, sku.name);
        assert_eq!(unique_specs(tenant, &[def(false)])[1].name, pair.name);
    }
}
