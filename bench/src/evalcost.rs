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
use engine::eval;
use engine::limits::Limits;
use engine::logic::LogicContext;
use engine::model::{rfc3339, Actor, Entity, Loaded};
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
fn resolve_keys(ns: Uuid, value: &Value) -> Value {
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
    ty.validate(&data).map_err(|e| anyhow!("sample {type_name} is invalid: {e:?}"))?;
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

/// A sample row of the package by key, as the store would hold it.
fn sample(package: &Package, tenant: &CompiledTenant, ns: Uuid, key: &str, now: DateTime<Utc>) -> Result<Entity> {
    let row =
        package.data.iter().find(|r| r.key.as_deref() == Some(key)).ok_or_else(|| anyhow!("no sample row `{key}`"))?;
    let state = match &row.state {
        Some(s) => s.clone(),
        None => tenant
            .workflow(&row.type_name)
            .map(|w| w.initial_state().to_string())
            .ok_or_else(|| anyhow!("no workflow for {}", row.type_name))?,
    };
    entity(
        tenant,
        &row.type_name,
        tenants::apply::sample_id(ns, key),
        &state,
        resolve_keys(ns, &row.data),
        "system",
        now,
    )
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

/// Runs part (a). `root` is the workspace root; `budget` the time per measurement.
pub fn run(root: &Path, budget: Duration) -> Result<EvalResults> {
    let limits = Limits::default();
    let now = Utc::now();
    let mut all = Vec::new();

    // ---- chemichemi: the order's approveOrder credit guard and submitOrder ----
    let (chem_pkg, chem) = compile_package(&root.join("examples/chemichemi"), &limits)?;
    let ns = Uuid::now_v7();
    let customer = sample(&chem_pkg, &chem, ns, "savanna_hotel", now)?;
    let products: Vec<Entity> =
        ["lpg6", "lpg13", "bleach5"].iter().map(|k| sample(&chem_pkg, &chem, ns, k, now)).collect::<Result<_>>()?;
    let items = json!([
        { "product_id": products[0].id.to_string(), "quantity": 10 },
        { "product_id": products[1].id.to_string(), "quantity": 4 },
        { "product_id": products[2].id.to_string(), "quantity": 12, "unit_price": 600 },
    ]);
    let order_data = json!({
        "customer_id": customer.id.to_string(),
        "warehouse_id": tenants::apply::sample_id(ns, "main").to_string(),
        "items": items,
        "notes": "Deliver before noon",
    });
    let sales = Actor {
        id: "user-sales".into(),
        email: "sales@chemichemi.test".into(),
        roles: vec!["sales".into()],
        system: false,
    };
    let manager = Actor {
        id: "user-manager".into(),
        email: "manager@chemichemi.test".into(),
        roles: vec!["manager".into()],
        system: false,
    };

    // approveOrder: an order pending approval, created by sales, approved by a manager.
    let approve = transition(&chem, "order", "approveOrder")?;
    let guard = approve.guards().get(2).ok_or_else(|| anyhow!("approveOrder has no third (credit) guard"))?;
    let mut pending_data = order_data.clone();
    if let Some(o) = pending_data.as_object_mut() {
        o.insert("subtotal".into(), json!(29_100));
        o.insert("total_amount".into(), json!(29_100));
    }
    let pending = entity(&chem, "order", Uuid::now_v7(), "PENDING_APPROVAL", pending_data, &sales.id, now)?;
    let approve_ctx = context(&pending, json!({}), &manager, now, &[("customer", customer.to_context_value())]);
    let logic_ctx = LogicContext::new(&approve_ctx);
    if !guard.logic.truthy(&logic_ctx)? {
        bail!("the approveOrder credit guard is false on the benchmark's order");
    }
    let guard_idx = all.len();
    all.push(measure(
        "guard: order.approveOrder credit check",
        "compiled JSON-Logic `balance + total <= credit_limit`, on a converted context",
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
            let ctx = LogicContext::new(black_box(&approve_ctx));
            black_box(guard.logic.truthy(&ctx)?);
            Ok(())
        },
    )?);

    // submitOrder: a draft order with three lines.
    let submit = transition(&chem, "order", "submitOrder")?;
    let submit_script = submit.script().ok_or_else(|| anyhow!("submitOrder has no script"))?;
    let draft = entity(&chem, "order", Uuid::now_v7(), "DRAFT", order_data, &sales.id, now)?;
    let products_ctx = Value::Array(products.iter().map(Entity::to_context_value).collect());
    let submit_ctx = context(
        &draft,
        json!({}),
        &sales,
        now,
        &[("customer", customer.to_context_value()), ("products", products_ctx)],
    );
    let engine = chem.script_engine();
    let out = engine.run(submit_script, &submit_ctx)?;
    if out.data["total_amount"] != json!(29_100) {
        bail!("submitOrder priced the benchmark order at {} (expected 29100)", out.data["total_amount"]);
    }
    all.push(measure(
        &format!("script: order.submitOrder ({} lines)", script_lines(submit)),
        "Rhai run incl. JSON→Rhai of the context and Rhai→JSON of the entity; 3 order lines, 3 products",
        None,
        budget,
        || {
            black_box(engine.run(submit_script, black_box(&submit_ctx))?);
            Ok(())
        },
    )?);

    // The whole pure transition, as the store runs it between its queries.
    let loaded: IndexMap<String, Loaded> = IndexMap::from([
        ("customer".to_string(), Loaded::One(Some(customer.clone()))),
        ("products".to_string(), Loaded::Many(products.clone())),
    ]);
    all.push(measure(
        "transition: order.submitOrder, prepare + decide",
        "role + input checks, load requests, 3 guards, the script, entity schema validation, diff, events",
        None,
        budget,
        || {
            let prepared = eval::prepare(&chem, black_box(&draft), "submitOrder", &json!({}), &sales, now)?;
            black_box(eval::decide(prepared, loaded.clone(), &limits)?);
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
    let out = record_engine.run(record_script, &record_ctx)?;
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
            black_box(record_engine.run(record_script, black_box(&record_ctx))?);
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
            let prepared = eval::prepare(&bench, black_box(&meter), "record", &input, &operator, now)?;
            black_box(eval::decide(prepared, no_loads.clone(), &limits)?);
            Ok(())
        },
    )?);

    Ok(EvalResults { all, guard: guard_idx, script: script_idx })
}
