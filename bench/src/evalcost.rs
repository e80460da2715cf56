//! Part (a): the pure evaluation cost of guards, scripts and whole transitions, on definitions
//! compiled exactly as the store compiles them (no database, no IO).
//!
//! Each measurement calls the function in batches (sized so a batch takes ~20 µs, so the clock
//! is read rarely compared to the work), for a fixed time budget after a short warm-up, and
//! reports the median time per call over all batches (with the 10th and 90th percentiles).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::{DateTime, Utc};
use engine::compiled::{CompiledTenant, CompiledTransition};
use engine::eval::{self, LoadKind, LoadRequest};
use engine::limits::Limits;
use engine::logic::LogicContext;
use engine::model::{rfc3339, Actor, Entity, Loaded};
use engine::store::TenantId;
use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use tenants::Package;
use uuid::Uuid;

/// One measured function.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub name: String,
    /// What is inside the timed call.
    pub covers: String,
    pub median_ns: f64,
    pub p10_ns: f64,
    pub p90_ns: f64,
    pub calls: u64,
    /// The target this number is held against, if any: (nanoseconds, label).
    pub target_ns: Option<f64>,
}

/// The measurements of part (a), by their role in the targets.
#[derive(Debug, Clone)]
pub struct EvalResults {
    pub all: Vec<Measurement>,
    /// Index in `all` of the compiled guard held against the 1 µs target.
    pub guard: usize,
    /// Index in `all` of the ~20-line script held against the 40 µs target.
    pub script: usize,
}

/// Target of a compiled guard.
pub const GUARD_TARGET_NS: f64 = 1_000.0;
/// Target of a ~20-line script including its data conversion.
pub const SCRIPT_TARGET_NS: f64 = 40_000.0;

/// Times `f` for about `budget` and returns (median, p10, p90) ns per call and the call count.
fn time_it(budget: Duration, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64, f64, u64)> {
    // Warm-up (caches, allocator, lazy statics), and a first estimate of one call.
    let warm_until = Instant::now() + budget / 5;
    let mut warm_calls = 0u64;
    let warm_start = Instant::now();
    while Instant::now() < warm_until || warm_calls < 3 {
        f()?;
        warm_calls += 1;
    }
    let per_call = warm_start.elapsed().as_nanos() as f64 / warm_calls as f64;
    let batch = ((20_000.0 / per_call.max(1.0)).ceil() as u64).clamp(1, 10_000);

    let mut samples = Vec::new();
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline || samples.len() < 50 {
        let start = Instant::now();
        for _ in 0..batch {
            f()?;
        }
        samples.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.1), at(0.9), samples.len() as u64 * batch))
}

fn measure(
    name: &str,
    covers: &str,
    target_ns: Option<f64>,
    budget: Duration,
    f: impl FnMut() -> Result<()>,
) -> Result<Measurement> {
    let (median_ns, p10_ns, p90_ns, calls) = time_it(budget, f).with_context(|| format!("measuring {name}"))?;
    Ok(Measurement { name: name.to_string(), covers: covers.to_string(), median_ns, p10_ns, p90_ns, calls, target_ns })
}

/// Loads and compiles a package the way publishing does.
fn compile_package(dir: &Path, limits: &Limits) -> Result<(Package, CompiledTenant)> {
    let package = Package::load_dir(dir).map_err(|errs| {
        anyhow!("package {}: {}", dir.display(), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    let compiled = tenants::compile::compile(&package, limits).map_err(|errs| {
        anyhow!("package {}: {}", dir.display(), errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    })?;
    Ok((package, compiled))
}

fn transition<'a>(tenant: &'a CompiledTenant, type_name: &str, name: &str) -> Result<&'a CompiledTransition> {
    tenant
        .workflow(type_name)
        .and_then(|w| w.transition(name))
        .ok_or_else(|| anyhow!("no transition {type_name}.{name}"))
}

fn script_lines(t: &CompiledTransition) -> usize {
    t.def().script.as_deref().map_or(0, |s| s.lines().filter(|l| !l.trim().is_empty()).count())
}

/// Replaces every string `"@key"` with the stable id of that sample row (as `apply` does).
fn resolve_keys(ns: TenantId, value: &Value) -> Value {
    match value {
        Value::String(s) => match s.strip_prefix('@') {
            Some(key) if !key.is_empty() => Value::String(tenants::apply::sample_id(ns, key).to_string()),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve_keys(ns, v)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve_keys(ns, v))).collect()),
        other => other.clone(),
    }
}

fn entity(
    tenant: &CompiledTenant,
    type_name: &str,
    id: Uuid,
    state: &str,
    mut data: Value,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Entity> {
    let ty = tenant.type_(type_name).ok_or_else(|| anyhow!("no type {type_name}"))?;
    ty.apply_defaults(&mut data);
    // As every write does: decimals to their canonical form, then the schema.
    ty.prepare(&mut data).map_err(|e| anyhow!("sample {type_name} is invalid: {e:?}"))?;
    Ok(Entity {
        id,
        type_name: type_name.to_string(),
        state: state.to_string(),
        version: 3,
        data,
        created_by: by.to_string(),
        updated_by: by.to_string(),
        created_at: now,
        updated_at: now,
    })
}

/// The evaluation context `decide` builds: `{entity, input, actor, now, <loads>}`.
fn context(entity: &Entity, input: Value, actor: &Actor, now: DateTime<Utc>, loads: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    m.insert("entity".into(), entity.to_context_value());
    m.insert("input".into(), input);
    m.insert("actor".into(), actor.to_context_value());
    m.insert("now".into(), Value::String(rfc3339(now)));
    for (name, v) in loads {
        m.insert((*name).to_string(), v.clone());
    }
    Value::Object(m)
}

/// The sample rows of a package as the store would hold them (rows that do not validate alone
/// are skipped: only the ones the benchmark's transitions load matter).
fn samples(package: &Package, tenant: &CompiledTenant, ns: TenantId, now: DateTime<Utc>) -> Result<Vec<Entity>> {
    let mut rows = Vec::new();
    for row in &package.data {
        let key = row.key.as_deref().unwrap_or(&row.origin);
        let state = match &row.state {
            Some(s) => s.clone(),
            None => match tenant.workflow(&row.type_name) {
                Some(w) => w.initial_state().to_string(),
                None => continue,
            },
        };
        let id = tenants::apply::sample_id(ns, key);
        // A sample the package's own types refuse is a broken benchmark, said so (it used to be
        // left out, and the measurement then failed to find it).
        rows.push(
            entity(tenant, &row.type_name, id, &state, resolve_keys(ns, &row.data), "system", now)
                .with_context(|| format!("sample `{key}`"))?,
        );
    }
    Ok(rows)
}

/// What `field` of a row is for a `where` load: `id` and `state` are columns, else data.
fn field_of(e: &Entity, field: &str) -> Value {
    match field {
        "id" => Value::String(e.id.to_string()),
        "state" => Value::String(e.state.clone()),
        f => e.data.get(f).cloned().unwrap_or(Value::Null),
    }
}

/// Equality as the store's SQL sees it: `id`/`state` as text, data fields as jsonb.
fn same(field: &str, a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if field == "id" || field == "state" {
        text(a) == text(b)
    } else {
        a == b || (a.as_f64().is_some() && a.as_f64() == b.as_f64())
    }
}

/// Runs a transition's load requests against rows in memory, as the store does in SQL.
fn load(rows: &[Entity], requests: &[LoadRequest]) -> IndexMap<String, Loaded> {
    requests
        .iter()
        .map(|r| {
            let of_type = |e: &&Entity| e.type_name == r.type_name;
            let loaded = match &r.kind {
                LoadKind::ById(None) => Loaded::One(None),
                LoadKind::ById(Some(id)) => Loaded::One(rows.iter().filter(of_type).find(|e| e.id == *id).cloned()),
                LoadKind::Where(conditions) => {
                    let mut found: Vec<Entity> = rows
                        .iter()
                        .filter(of_type)
                        .filter(|e| {
                            conditions.iter().all(|(f, v)| {
                                let have = field_of(e, f);
                                match v {
                                    Value::Array(any) => any.iter().any(|v| same(f, &have, v)),
                                    v => same(f, &have, v),
                                }
                            })
                        })
                        .cloned()
                        .collect();
                    found.sort_by_key(|e| e.id);
                    Loaded::Many(found)
                }
            };
            (r.name.clone(), loaded)
        })
        .collect()
}

/// Prepares a transition and runs its loads in memory: the context `decide` would build and
/// what it is given.
fn prepare_with_loads(
    tenant: &CompiledTenant,
    rows: &[Entity],
    entity: &Entity,
    name: &str,
    input: &Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Value, IndexMap<String, Loaded>)> {
    let mut prepared = eval::prepare(tenant, entity, name, input, actor, now)?;
    // Stage by stage, as the store runs them: a load may read an earlier one.
    let mut loaded = IndexMap::new();
    loop {
        loaded.extend(load(rows, prepared.pending_loads()));
        if !prepared.next_stage(&loaded)? {
            break;
        }
    }
    let loads: Vec<(&str, Value)> = loaded.iter().map(|(k, v)| (k.as_str(), v.to_context_value())).collect();
    Ok((context(entity, prepared.input().clone(), actor, now, &loads), loaded))
}

/// `prepare` then `decide` (with the tenant's limits, as the store's), with the loads given (and an empty four-eyes history if asked).
fn prepare_and_decide(
    tenant: &CompiledTenant,
    entity: &Entity,
    name: &str,
    input: &Value,
    actor: &Actor,
    now: DateTime<Utc>,
    loaded: &IndexMap<String, Loaded>,
) -> Result<eval::Decision> {
    let mut prepared = eval::prepare(tenant, entity, name, input, actor, now)?;
    // The later stages' requests are computed as the store computes them (their rows are given).
    while prepared.next_stage(loaded)? {}
    if !prepared.needs_history().is_empty() {
        prepared.set_history(IndexMap::new());
    }
    Ok(eval::decide(prepared, loaded.clone(), tenant.limits())?)
}

/// Runs part (a). `root` is the workspace root; `budget` the time per measurement.
pub fn run(root: &Path, budget: Duration) -> Result<EvalResults> {
    let limits = Limits::default();
    let now = Utc::now();
    let mut all = Vec::new();

    // ---- chemichemi: the order's submitOrder script and approveOrder credit guard ----
    let (chem_pkg, chem) = compile_package(&root.join("examples/chemichemi"), &limits)?;
    let ns = TenantId::generate();
    let rows = samples(&chem_pkg, &chem, ns, now)?;
    let id_of = |key: &str| tenants::apply::sample_id(ns, key);
    let customer = rows
        .iter()
        .find(|e| e.id == id_of("savanna_hotel"))
        .ok_or_else(|| anyhow!("chemichemi has no sample customer `savanna_hotel`"))?;
    let mut order_data = json!({
        "customer_id": customer.id.to_string(),
        "warehouse_id": id_of("main").to_string(),
        "items": [
            { "product_id": id_of("lpg6").to_string(), "quantity": 10 },
            { "product_id": id_of("lpg13").to_string(), "quantity": 4 },
            { "product_id": id_of("bleach5").to_string(), "quantity": 12, "unit_price": 600 },
        ],
        "notes": "Deliver before noon",
    });
    // Whoever creates an order copies the customer's price list onto it (the studio does).
    if let (Some(list), Some(o)) = (customer.data.get("price_list_id"), order_data.as_object_mut()) {
        if chem.type_("order").is_some_and(|t| t.def().fields.contains_key("price_list_id")) {
            o.insert("price_list_id".into(), list.clone());
        }
    }
    let sales = Actor {
        id: "user-sales".into(),
        email: "sales@chemichemi.test".into(),
        roles: vec!["sales".into()],
        system: false,
        attributes: Default::default(),
    };
    let manager = Actor {
        id: "user-manager".into(),
        email: "manager@chemichemi.test".into(),
        roles: vec!["manager".into()],
        system: false,
        attributes: Default::default(),
    };

    // submitOrder: a draft order with three lines.
    let submit = transition(&chem, "order", "submitOrder")?;
    let submit_script = submit.script().ok_or_else(|| anyhow!("submitOrder has no script"))?;
    let draft = entity(&chem, "order", Uuid::now_v7(), "DRAFT", order_data, &sales.id, now)?;
    let (submit_ctx, submit_loaded) = prepare_with_loads(&chem, &rows, &draft, "submitOrder", &json!({}), &sales, now)?;
    let engine = chem.script_engine();
    // Run as the engine runs them: decimal fields are decimals in scripts, numbers in rules.
    let order_type = chem.type_("order").ok_or_else(|| anyhow!("chemichemi has no order type"))?;
    let submit_shapes = eval::shapes(&chem, order_type, submit);
    let submitted = engine
        .run_shaped(submit_script, &submit_ctx, &submit_shapes)
        .context("submitOrder on the benchmark's order")?;
    let total = &submitted.data["total_amount"];
    if !(total.as_f64().or_else(|| total.as_str().and_then(|t| t.parse().ok()))).is_some_and(|t| t > 0.0) {
        bail!("submitOrder priced the benchmark order at {}", submitted.data["total_amount"]);
    }

    // approveOrder: that order, pending approval, approved by a manager.
    let approve = transition(&chem, "order", "approveOrder")?;
    let guard = approve
        .guards()
        .iter()
        .find(|g| g.message.to_lowercase().contains("credit"))
        .or_else(|| approve.guards().last())
        .ok_or_else(|| anyhow!("approveOrder has no guard"))?;
    let pending = entity(&chem, "order", draft.id, "PENDING_APPROVAL", submitted.data.clone(), &sales.id, now)?;
    let (approve_ctx, _) = prepare_with_loads(&chem, &rows, &pending, "approveOrder", &json!({}), &manager, now)?;
    let approve_shapes = eval::shapes(&chem, order_type, approve);
    let logic_ctx = LogicContext::shaped(&approve_ctx, &approve_shapes);
    if !guard.logic.truthy(&logic_ctx)? {
        bail!(
            "the approveOrder credit guard is false on the benchmark's order (total {})",
            submitted.data["total_amount"]
        );
    }
    let guard_idx = all.len();
    all.push(measure(
        "guard: order.approveOrder credit check",
        "compiled JSON-Logic `customer.balance + entity.total_amount <= customer.credit_limit`, context converted once",
        Some(GUARD_TARGET_NS),
        budget,
        || {
            black_box(guard.logic.truthy(black_box(&logic_ctx))?);
            Ok(())
        },
    )?);
    all.push(measure(
        "guard + context conversion",
        "the same, plus converting {entity, input, actor, now, customer} to the evaluator's form",
        None,
        budget,
        || {
            let ctx = LogicContext::shaped(black_box(&approve_ctx), &approve_shapes);
            black_box(guard.logic.truthy(&ctx)?);
            Ok(())
        },
    )?);
    all.push(measure(
        &format!("script: order.submitOrder ({} lines)", script_lines(submit)),
        "Rhai run incl. JSON→Rhai of the context (customer, 3 products, price lists) and Rhai→JSON of the entity",
        None,
        budget,
        || {
            black_box(engine.run_shaped(submit_script, black_box(&submit_ctx), &submit_shapes)?);
            Ok(())
        },
    )?);
    all.push(measure(
        "transition: order.submitOrder, prepare + decide",
        "role + input checks, load requests, guards, the script, entity schema validation, diff, events",
        None,
        budget,
        || {
            let d =
                prepare_and_decide(&chem, black_box(&draft), "submitOrder", &json!({}), &sales, now, &submit_loaded)?;
            black_box(d);
            Ok(())
        },
    )?);

    // ---- the bench package: meter.record, the transition of the load test ----
    let (_, bench) = compile_package(&root.join("bench/package"), &limits)?;
    let record = transition(&bench, "meter", "record")?;
    let record_script = record.script().ok_or_else(|| anyhow!("meter.record has no script"))?;
    let operator = Actor {
        id: "user-operator".into(),
        email: "operator@bench.test".into(),
        roles: vec!["operator".into()],
        system: false,
        attributes: Default::default(),
    };
    let meter = entity(
        &bench,
        "meter",
        Uuid::now_v7(),
        "ACTIVE",
        json!({"name": "meter 1", "samples": 41, "total": 20_500.5, "peak": 990, "average": 500.01,
               "recent": [10, 20.5, 30, 40, 50]}),
        &operator.id,
        now,
    )?;
    let input = json!({"value": 123.45});
    let record_ctx = context(&meter, input.clone(), &operator, now, &[]);
    let record_engine = bench.script_engine();
    let meter_type = bench.type_("meter").ok_or_else(|| anyhow!("the bench package has no meter type"))?;
    let record_shapes = eval::shapes(&bench, meter_type, record);
    let out = record_engine.run_shaped(record_script, &record_ctx, &record_shapes)?;
    if out.data["samples"] != json!(42) {
        bail!("meter.record counted {} samples (expected 42)", out.data["samples"]);
    }
    let script_idx = all.len();
    all.push(measure(
        &format!("script: meter.record ({} lines)", script_lines(record)),
        "Rhai run incl. JSON→Rhai of the context and Rhai→JSON of the entity",
        Some(SCRIPT_TARGET_NS),
        budget,
        || {
            black_box(record_engine.run_shaped(record_script, black_box(&record_ctx), &record_shapes)?);
            Ok(())
        },
    )?);
    let no_loads: IndexMap<String, Loaded> = IndexMap::new();
    all.push(measure(
        "transition: meter.record, prepare + decide",
        "role + input checks, the guard, the script, entity schema validation, diff, one event",
        None,
        budget,
        || {
            let d = prepare_and_decide(&bench, black_box(&meter), "record", &input, &operator, now, &no_loads)?;
            black_box(d);
            Ok(())
        },
    )?);

    // ---- decision tables: a 200-row `first` table and a 50-row `collect` table ----
    let (first, first_inputs) = decision_table("first", 200)?;
    all.push(measure(
        "decision table: 200 rows, hit first, match at row 190",
        "input type checks, 191 rows of a range and a list cell, the outputs and the trace",
        Some(DECISION_TARGET_NS),
        budget,
        || {
            black_box(first.evaluate(black_box(&first_inputs))?);
            Ok(())
        },
    )?);
    let (collect, collect_inputs) = decision_table("collect", 50)?;
    all.push(measure(
        "decision table: 50 rows, hit collect, aggregate sum",
        "input type checks, all 50 rows, the sum of the ~half that match, the trace",
        Some(DECISION_TARGET_NS),
        budget,
        || {
            black_box(collect.evaluate(black_box(&collect_inputs))?);
            Ok(())
        },
    )?);

    Ok(EvalResults { all, guard: guard_idx, script: script_idx })
}

/// Target of one decision table evaluation ("a few microseconds at most").
pub const DECISION_TARGET_NS: f64 = 5_000.0;

/// A table of `rows` rows (a numeric range and a list of regions per row) with the hit policy
/// `hit`, and inputs that match row `rows - 10` first (and about half the rows under `collect`).
fn decision_table(hit: &str, rows: usize) -> Result<(engine::decision::DecisionTable, Map<String, Value>)> {
    let regions = ["north", "south", "east", "west", "coast"];
    let rules: Vec<Value> = (0..rows)
        .map(|i| {
            let low = i * 10;
            let region = if hit == "collect" && i % 2 == 0 {
                "-".to_string()
            } else {
                format!("{}, {}", regions[i % 5], regions[(i + 1) % 5])
            };
            json!({
                "when": { "weight": format!("[{low}..{}]", if hit == "collect" { 100_000 } else { low + 9 }), "region": region },
                "then": { "fee": i }
            })
        })
        .collect();
    let def = json!({
        "name": "fees", "hit": hit,
        "inputs": { "weight": { "type": "number" }, "region": { "type": "string" } },
        "outputs": { "fee": { "type": "number" } },
        "rules": rules, "default": { "fee": 0 },
    });
    let mut def: engine::decision::DecisionDef = serde_json::from_value(def)?;
    if hit == "collect" {
        def.aggregate = Some(engine::decision::Aggregate::Sum);
    }
    let table = engine::decision::DecisionTable::compile(def)
        .map_err(|e| anyhow!("the benchmark table does not compile: {e:?}"))?;
    let target = rows - 10;
    let inputs = json!({ "weight": target * 10 + 5, "region": regions[target % 5] });
    let inputs = inputs.as_object().cloned().ok_or_else(|| anyhow!("inputs"))?;
    Ok((table, inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Part (a) runs on the example packages as they are today: a package change that breaks the
    /// benchmark's samples (a renamed customer, a field that became a decimal) fails here, in
    /// `make test`, rather than at the start of the next `make bench`.
    #[test]
    fn measures_every_evaluation_on_the_current_examples() -> Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or_else(|| anyhow!("no workspace root"))?;
        let results = run(root, Duration::from_millis(2))?;
        assert!(results.all.len() >= 6, "{} measurements", results.all.len());
        assert!(results.guard < results.all.len() && results.script < results.all.len());
        for m in &results.all {
            assert!(m.median_ns > 0.0, "{} measured nothing", m.name);
        }
        Ok(())
    }
}
