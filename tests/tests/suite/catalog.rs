//! The schema can be sharded by tenant (docs/deploy.md, "Past one database: Citus"), checked
//! against the catalog rather than hoped for:
//!
//! * every table is a tenant table (a `tenant_id` column, not null) or one of [`GLOBAL`], each
//!   listed with why it is global;
//! * every primary key, unique constraint and unique index of a tenant table has `tenant_id` among
//!   its columns, and every other index has it among its columns or pins it in its predicate
//!   (the per-tenant list and search indexes built at publish: `where tenant_id = '…'`): what
//!   `create_distributed_table(…, 'tenant_id')` needs of a table's indexes;
//! * every foreign key of a tenant table either references a global table or carries `tenant_id`
//!   to the referenced table's `tenant_id` (colocated: a row never points into another tenant);
//!
//! after publishing packages whose lists, searches and unique fields make the server build its
//! per-tenant indexes, so those are checked too.
//!
//! And over the SQL the server sends ([`statements_name_their_tenant`]): every statement written
//! as a literal in the modules that hold SQL on data names `tenant_id` for each tenant table it
//! reads or writes (`<alias>.tenant_id`, or `tenant_id` when it is the only one), and every join
//! of a tenant table (`join`, or a `,` in a `from` list) equates its `tenant_id` with another
//! side's or binds it, so no statement joins across tenants. A statement that had to work across
//! tenants would be listed in [`CROSS_TENANT`] with why; today none does: the workers find the
//! tenants with work through SECURITY DEFINER functions of the migrations and then work in one
//! tenant at a time. What it does not cover: statements assembled from fragments at run time
//! (lists: `engine::store::query`, whose every statement starts from `from_where`'s
//! `tenant_id = $1`, its record-rule subqueries each with their own, checked by the list tests'
//! plans), SQL inside the migrations' functions (`outbox_pending_tenants`, `webhook_due_tenants`,
//! `claim_due_timers`, `purge_expired_idempotency`: across tenants by design, returning tenant
//! ids or rows that name their tenant), and a condition on `tenant_id` that is there but does not
//! restrict (`or true`): the check reads text, it does not plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use switchyard_tests::server::package_dir;
use switchyard_tests::test_db;

/// The tables without a tenant, and why.
const GLOBAL: &[(&str, &str)] = &[
    ("tenants", "the tenants themselves (slug, live version): a Citus reference table, copied to every node"),
    ("_sqlx_migrations", "the schema's own version (sqlx): about the database, not about any tenant"),
];

#[tokio::test]
async fn every_key_constraint_and_index_of_a_tenant_table_includes_tenant_id() {
    let db = test_db().await;
    let limits = engine::limits::Limits::default();
    // Packages with filterable, sortable, searchable and unique fields: publishing builds the
    // per-tenant list, search and unique indexes.
    for name in ["query", "unique"] {
        let package = tenants::Package::load_dir(&package_dir(name)).expect("package");
        tenants::apply::publish(&db.owner, &package, "test", &limits).await.expect("publish");
    }
    let built: i64 = sqlx::query_scalar(
        "select count(*) from pg_indexes where tablename in (select inhrelid::regclass::text from pg_inherits where inhparent = 'entities'::regclass) \
         and (indexname like 'entities\\_q\\_%' or indexname like 'entities\\_u\\_%')",
    )
    .fetch_one(&db.owner)
    .await
    .expect("count");
    assert!(built >= 10, "publishing built {built} per-tenant indexes");
    let search: i64 = sqlx::query_scalar(
        "select count(*) from pg_indexes where tablename in (select inhrelid::regclass::text from pg_inherits where inhparent = 'entities'::regclass) and indexdef like '%search_trgm_ops%'",
    )
    .fetch_one(&db.owner)
    .await
    .expect("count");
    assert!(search >= 2, "the search indexes of ticket and client ({search})");

    let problems = schema_problems(&db.owner, built).await;
    assert!(problems.is_empty(), "the schema cannot be distributed by tenant_id:\n{}", problems.join("\n"));

    // And the check can fail: an index, a unique constraint and a foreign key that lose the tenant.
    sqlx::raw_sql(
        "create index probe_due on timers (due_at); \
         alter table webhooks add constraint probe_unique unique (url); \
         alter table transitions add column probe_entity uuid; \
         alter table users add constraint probe_id unique (id); \
         alter table transitions add constraint probe_fk foreign key (probe_entity) references users (id);",
    )
    .execute(&db.owner)
    .await
    .expect("the probes");
    let problems = schema_problems(&db.owner, built).await.join("\n");
    for probe in ["probe_due", "probe_unique", "probe_id", "probe_fk"] {
        assert!(problems.contains(probe), "{probe} not found:\n{problems}");
    }
    // `entities` is partitioned by tenant (migration 0021): Postgres itself refuses a key
    // without it.
    let refused = sqlx::raw_sql("alter table entities add constraint probe_entity_id unique (id)")
        .execute(&db.owner)
        .await
        .expect_err("a key of entities without tenant_id");
    assert!(refused.to_string().contains("partition"), "{refused}");
    db.drop_db().await.expect("drop");
}

/// A constraint: table, name, kind (`p`, `u`, `f`, `x`), whether `tenant_id` is among its
/// columns, the referenced table, whether `tenant_id` goes to the referenced `tenant_id`, whether
/// the referenced table has one.
type ConstraintRow = (String, String, String, bool, Option<String>, bool, bool);

/// What keeps the schema from being distributed by `tenant_id` (see the module documentation).
async fn schema_problems(db_owner: &sqlx::PgPool, built: i64) -> Vec<String> {
    // Every table: tenant or global.
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "select c.relname::text, exists (select from pg_attribute a where a.attrelid = c.oid \
                and a.attname = 'tenant_id' and a.attnotnull and not a.attisdropped) \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1",
    )
    .fetch_all(db_owner)
    .await
    .expect("tables");
    let global: BTreeSet<&str> = GLOBAL.iter().map(|(t, _)| *t).collect();
    let mut problems = Vec::new();
    for (table, has_tenant) in &tables {
        match (global.contains(table.as_str()), has_tenant) {
            (true, _) | (false, true) => {}
            (false, false) => problems.push(format!("{table}: no `tenant_id not null` and not listed as global")),
        }
    }
    for g in &global {
        assert!(tables.iter().any(|(t, _)| t == g), "{g} is listed as global but does not exist");
    }
    let tenant_tables: Vec<&str> =
        tables.iter().filter(|(t, has)| *has && !global.contains(t.as_str())).map(|(t, _)| t.as_str()).collect();
    assert!(tenant_tables.len() >= 15, "{tenant_tables:?}");

    // Primary keys, unique constraints and foreign keys.
    let constraints: Vec<ConstraintRow> = sqlx::query_as(
        "select c.relname::text, con.conname::text, con.contype::text, \
                coalesce((select attnum from pg_attribute where attrelid = c.oid and attname = 'tenant_id') = any(con.conkey), false), \
                f.relname::text, \
                coalesce(array_position(con.conkey, (select attnum from pg_attribute where attrelid = c.oid and attname = 'tenant_id')) \
                       = array_position(con.confkey, (select attnum from pg_attribute where attrelid = f.oid and attname = 'tenant_id')), false), \
                exists (select from pg_attribute where attrelid = f.oid and attname = 'tenant_id') \
         from pg_constraint con join pg_class c on c.oid = con.conrelid \
         join pg_namespace n on n.oid = c.relnamespace left join pg_class f on f.oid = con.confrelid \
         where n.nspname = 'public' and con.contype in ('p', 'u', 'f', 'x') order by 1, 2",
    )
    .fetch_all(db_owner)
    .await
    .expect("constraints");
    let mut seen = BTreeMap::<&str, usize>::new();
    for (table, name, kind, includes, references, colocated, references_tenant_table) in &constraints {
        if !tenant_tables.contains(&table.as_str()) {
            continue;
        }
        *seen.entry(kind.as_str()).or_default() += 1;
        match kind.as_str() {
            "f" => {
                let to = references.as_deref().unwrap_or("?");
                if global.contains(to) {
                    continue; // to a reference table: Citus accepts it from any shard
                }
                if !references_tenant_table || !includes || !colocated {
                    problems.push(format!(
                        "{table}.{name}: a foreign key to {to} that does not carry tenant_id to its tenant_id"
                    ));
                }
            }
            _ if !includes => problems.push(format!("{table}.{name} ({kind}): tenant_id is not among its columns")),
            _ => {}
        }
    }
    assert!(seen.get("p").copied().unwrap_or(0) >= tenant_tables.len(), "a primary key per tenant table: {seen:?}");
    assert!(seen.get("f").copied().unwrap_or(0) >= 10 && seen.get("u").copied().unwrap_or(0) >= 3, "{seen:?}");

    // Every index (the constraints' own, the migrations', and those publishing built).
    let indexes: Vec<(String, String, bool, bool, Option<String>)> = sqlx::query_as(
        "select c.relname::text, ic.relname::text, i.indisunique, \
                coalesce((select attnum from pg_attribute where attrelid = c.oid and attname = 'tenant_id') = any(i.indkey::int2[]), false), \
                pg_get_expr(i.indpred, i.indrelid) \
         from pg_index i join pg_class c on c.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid \
         join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' order by 1, 2",
    )
    .fetch_all(db_owner)
    .await
    .expect("indexes");
    let mut checked = 0;
    for (table, index, unique, includes, predicate) in &indexes {
        if !tenant_tables.contains(&table.as_str()) {
            continue;
        }
        checked += 1;
        let pinned = predicate.as_deref().is_some_and(|p| p.contains("tenant_id = '"));
        if *unique && !includes {
            problems.push(format!("{table}: unique index {index} does not have tenant_id among its columns"));
        } else if !includes && !pinned {
            problems.push(format!("{table}: index {index} neither has tenant_id among its columns nor pins it"));
        }
    }
    assert!(checked as i64 > built, "{checked} indexes checked");
    problems
}

/// Statements that work across tenants by design, each found by a piece of its text, and why.
/// Each must still match a statement (so the list cannot outlive what it excuses). None today.
const CROSS_TENANT: &[(&str, &str)] = &[];

/// The modules that hold SQL on data (ARCHITECTURE.md, "A statement").
const SQL_SOURCES: &[&str] = &[
    "engine/src/store/sql.rs",
    "engine/src/store/exec.rs",
    "engine/src/store/edit.rs",
    "engine/src/store/timers.rs",
    "engine/src/store/inbox.rs",
    "engine/src/store/refs.rs",
    "engine/src/store/decisions.rs",
    "engine/src/store/mod.rs",
    "api/src/workers/sql.rs",
    "api/src/auth/sql.rs",
    "tenants/src/apply.rs",
    "tenants/src/export.rs",
    "tenants/src/migrate.rs",
    "tenants/src/draft.rs",
    "tenants/src/unique.rs",
    "tenants/src/plan.rs",
];

#[test]
fn statements_name_their_tenant() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tenant_tables: BTreeSet<&str> = [
        "config_versions",
        "users",
        "entities",
        "transitions",
        "outbox",
        "idempotency",
        "sequences",
        "timers",
        "refresh_tokens",
        "api_keys",
        "outbox_pending",
        "event_streams",
        "event_log",
        "webhooks",
        "webhook_deliveries",
        "webhook_attempts",
        "invitations",
        "config_drafts",
    ]
    .into_iter()
    .collect();
    let mut problems = Vec::new();
    let mut excused = vec![0usize; CROSS_TENANT.len()];
    let (mut statements, mut joins) = (0, 0);
    for file in SQL_SOURCES {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for literal in string_literals(&text) {
            let sql = literal.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
            let first = sql.split(' ').next().unwrap_or("");
            if !matches!(first, "select" | "insert" | "update" | "delete" | "with") {
                continue;
            }
            let refs = table_refs(&sql, &tenant_tables);
            if refs.is_empty() {
                continue;
            }
            statements += 1;
            if let Some(i) = CROSS_TENANT.iter().position(|(piece, _)| sql.contains(piece)) {
                eprintln!("cross-tenant by design ({}): {sql}", CROSS_TENANT[i].1);
                excused[i] += 1;
                continue;
            }
            let found = tenant_problems(&sql, &refs);
            joins += refs.iter().filter(|r| r.joined).count();
            problems.extend(found.into_iter().map(|p| format!("{file}: {p}")));
        }
    }
    eprintln!("{statements} statements on tenant tables, {joins} joins of tenant tables checked");
    assert!(statements > 90, "only {statements} statements found: is the extraction broken?");
    assert!(joins >= 2, "only {joins} joins found");
    for (i, n) in excused.iter().enumerate() {
        assert!(*n > 0, "the cross-tenant exception {:?} matches no statement any more", CROSS_TENANT[i].0);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What is wrong with a statement's tenants: a tenant table whose `tenant_id` it never names
/// (as `<alias>.tenant_id`, or as `tenant_id` between the table and the next one it names; an
/// insert: in its column list), a join of a tenant table (`join`, or a `,` in a `from` list) not
/// on its tenant (its `tenant_id` equated with another side's or with a parameter).
fn tenant_problems(sql: &str, refs: &[TableRef]) -> Vec<String> {
    let tokens = tokens(sql);
    let mut problems = Vec::new();
    for (k, r) in refs.iter().enumerate() {
        let qualified = format!("{}.tenant_id", r.alias);
        let until = refs.get(k + 1).map_or(tokens.len(), |n| n.at);
        let named = if r.insert {
            // `insert into t (a, b, …)`: the column list.
            tokens[r.at..].iter().skip(2).take_while(|t| **t != ")").any(|t| *t == "tenant_id")
        } else {
            sql.contains(&qualified)
                || sql.contains(&format!("{}.tenant_id", r.table))
                || tokens[r.at..until].contains(&"tenant_id")
        };
        if !named {
            problems.push(format!("{} ({}) without its tenant_id: {sql}", r.table, r.alias));
        }
        if r.joined {
            let equated = refs.iter().any(|o| {
                o.alias != r.alias
                    && (sql.contains(&format!("{qualified} = {}.tenant_id", o.alias))
                        || sql.contains(&format!("{}.tenant_id = {qualified}", o.alias)))
            }) || sql.contains(&format!("{qualified} = $"));
            if !equated {
                problems.push(format!("a join of {} not on its tenant: {sql}", r.table));
            }
        }
    }
    problems
}

/// The check finds what it is for (so it can fail).
#[test]
fn the_statement_check_finds_a_join_across_tenants() {
    let tables: BTreeSet<&str> = ["entities", "transitions"].into_iter().collect();
    let check = |sql: &str| tenant_problems(sql, &table_refs(sql, &tables));
    assert!(check("select * from entities e join transitions t on t.tenant_id = e.tenant_id and t.entity_id = e.id where e.tenant_id = $1").is_empty());
    assert!(check("select * from transitions where tenant_id = $1 and entity_id = $2").is_empty());
    let across = check("select * from entities e join transitions t on t.entity_id = e.id where e.tenant_id = $1");
    assert_eq!(across.len(), 2, "{across:?}");
    assert!(across[1].starts_with("a join of transitions not on its tenant"), "{across:?}");
    assert_eq!(check("update entities set state = $2 where id = $1").len(), 1);
    let lateral = "select e.id, t.at from entities e cross join lateral (select r.at from transitions r where r.entity_id = e.id limit 1) t where e.tenant_id = $1";
    let found = check(lateral);
    assert_eq!(found.len(), 2, "a lateral subquery is a join: {found:?}");
    assert!(found[1].starts_with("a join of transitions not on its tenant"), "{found:?}");
    assert!(check("select e.id, t.at from entities e cross join lateral (select r.at from transitions r where r.tenant_id = e.tenant_id and r.entity_id = e.id limit 1) t where e.tenant_id = $1").is_empty());
    let sub = "select id from entities e where e.tenant_id = $1 and e.id in (select r.entity_id from transitions r where r.actor_id = $2)";
    assert_eq!(check(sub).len(), 1, "a subquery without its tenant");
    let literals = string_literals(
        "let a = \"select 1 \\\n   from x\"; // \"not this\"\nlet c = '\"'; let b = r#\"say \"hi\"\"#;",
    );
    assert_eq!(literals, ["select 1 from x", "say \"hi\""]);
}

/// A tenant table a statement names after `from`, `join`, `update` or `into` (or after a `,` in
/// a `from` list), its alias, and where (the index of its name in [`tokens`]).
#[derive(Debug)]
struct TableRef {
    table: String,
    alias: String,
    joined: bool,
    insert: bool,
    at: usize,
}

/// Identifiers (dots kept: `e.tenant_id`), and `,`, `(`, `)`.
fn tokens(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in sql.char_indices() {
        let word = c.is_ascii_alphanumeric() || c == '_' || c == '.';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&sql[s..i]);
                start = None;
            }
            _ => {}
        }
        if matches!(c, ',' | '(' | ')') {
            out.push(&sql[i..i + 1]);
        }
    }
    if let Some(s) = start {
        out.push(&sql[s..]);
    }
    out
}

fn table_refs(sql: &str, tenant_tables: &BTreeSet<&str>) -> Vec<TableRef> {
    const NOT_ALIAS: &[&str] = &[
        "where",
        "on",
        "set",
        "join",
        "left",
        "inner",
        "cross",
        "order",
        "group",
        "limit",
        "using",
        "values",
        "select",
        "for",
        "returning",
        "natural",
        "as",
        "union",
        "having",
        "default",
        "do",
        "and",
        "when",
        ",",
        "(",
        ")",
        "full",
        "right",
        "lateral",
    ];
    let tokens = tokens(sql);
    let mut out = Vec::new();
    // Whether a `,` continues a `from` list (a comma join) rather than a select list.
    let mut in_from = false;
    for (i, t) in tokens.iter().enumerate() {
        match *t {
            "from" | "join" | "update" | "into" => {}
            "," if in_from => {}
            "where" | "on" | "set" | "order" | "group" | "limit" | "returning" | "select" | "(" | ")" => {
                in_from = false;
                continue;
            }
            _ => continue,
        }
        if *t == "from" {
            in_from = true;
        }
        let Some(table) = tokens.get(i + 1).map(|t| t.trim_start_matches("public.")) else { continue };
        if !tenant_tables.contains(table) {
            continue;
        }
        let mut next = i + 2;
        if tokens.get(next) == Some(&"as") {
            next += 1;
        }
        let insert = *t == "into";
        let alias = match tokens.get(next) {
            Some(a) if !insert && !NOT_ALIAS.contains(a) && !a.contains('.') => a.to_string(),
            _ => table.to_string(),
        };
        // `… lateral (select … from t …)`: a join too (its rows are matched to the outer ones).
        let lateral = *t == "from"
            && tokens[..i]
                .iter()
                .rposition(|t| *t == "select")
                .is_some_and(|s| s >= 2 && tokens[s - 1] == "(" && tokens[s - 2] == "lateral");
        let joined = *t == "join" || *t == "," || lateral;
        out.push(TableRef { table: table.to_string(), alias, joined, insert, at: i + 1 });
    }
    out
}
/// The contents of the string literals of a Rust source (plain and raw), escapes resolved and
/// `\`-newline continuations joined; comments and char literals skipped.
fn string_literals(src: &str) -> Vec<String> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '/' if b.get(i + 1) == Some(&'/') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '\'' => {
                // A char literal ('"', '\'', '\\') or a lifetime.
                if b.get(i + 1) == Some(&'\\') {
                    i += 4;
                } else if b.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            'r' if (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#'))
                && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                let start = j;
                let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let rest: String = b[start..].iter().collect();
                let end = rest.find(&close).unwrap_or(rest.len());
                out.push(rest[..end].to_string());
                i = start + rest[..end].chars().count() + close.chars().count();
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' {
                        match b.get(i + 1) {
                            Some('\n') => {
                                i += 2;
                                while i < b.len() && b[i].is_whitespace() {
                                    i += 1;
                                }
                                continue;
                            }
                            Some('n') => s.push('\n'),
                            Some(c) => s.push(*c),
                            None => {}
                        }
                        i += 2;
                    } else {
                        s.push(b[i]);
                        i += 1;
                    }
                }
                i += 1;
                out.push(s);
            }
            _ => i += 1,
        }
    }
    out
}
