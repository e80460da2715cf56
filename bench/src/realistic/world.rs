//! The world the realistic mix runs in: `examples/chemichemi` applied as N tenants (`chem01`,
//! `chem02`, …), each with the package's users and sample data (territories, two warehouses with
//! their vehicles, five products, the price lists, stock of each product in each warehouse) plus
//! `customers` active customers on the standard price list. One customer in ten is *tight*: it
//! owes 60 of a credit limit of 100, as the package's own Mama Njeri kiosk does, so approving any
//! order of it fails the credit check (`within_credit`); the others have a limit no run reaches.
//! Stock levels are raised so that no run empties a shelf: allocations contend on the rows, they
//! are not refused.

use std::path::Path;

use engine::limits::Limits;
use engine::store::{Store, TenantId};
use serde_json::{json, Value};
use sqlx::PgPool;
use tenants::package::SampleRow;
use tenants::Package;
use uuid::Uuid;

use super::Error;

/// Stock on hand of every inventory row at the start: more than any run delivers.
pub const STOCK: i64 = 1_000_000_000;
/// One customer in `TIGHT_EVERY` is near its credit limit (every approval of it is refused).
pub const TIGHT_EVERY: usize = 10;

/// A user of a tenant, as tokens name it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub roles: Vec<String>,
}

/// A warehouse with the active vehicle its trips leave with.
#[derive(Debug, Clone)]
pub struct Warehouse {
    pub id: Uuid,
    pub vehicle: Uuid,
}

/// One tenant of the run and the sample rows the load refers to.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub version: i64,
    /// Creates and submits orders.
    pub sales: User,
    /// Approves, rejects, cancels; reads lists and orders.
    pub manager: User,
    /// Allocates stock.
    pub warehouse: User,
    /// Creates, plans and dispatches trips.
    pub dispatcher: User,
    /// Drives the trips: starts them, delivers the orders, completes the trips.
    pub driver: User,
    /// Active customers with room on their credit line.
    pub customers: Vec<Uuid>,
    /// Active customers near their credit limit.
    pub tight: Vec<Uuid>,
    pub warehouses: Vec<Warehouse>,
    pub products: Vec<Uuid>,
}

/// The tenant slug of tenant `n` (1-based): `chem01` …
pub fn slug(n: usize) -> String {
    format!("chem{n:02}")
}

/// Loads `package_dir` (examples/chemichemi) with `customers` customers added to its sample data
/// and its stock raised.
pub fn package(package_dir: &Path, customers: usize) -> Result<Package, Error> {
    let mut package = Package::load_dir(package_dir).map_err(|errs| {
        Error::Setup(format!(
            "{}: {}",
            package_dir.display(),
            errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ))
    })?;
    for row in package.data.iter_mut().filter(|r| r.type_name == "inventory") {
        if let Some(data) = row.data.as_object_mut() {
            data.insert("quantity_on_hand".into(), json!(STOCK));
        }
    }
    for i in 0..customers {
        let tight = i % TIGHT_EVERY == TIGHT_EVERY - 1;
        let (limit, balance) = if tight { (100, 60) } else { (1_000_000_000_000_i64, 0) };
        package.data.push(SampleRow {
            type_name: "customer".into(),
            key: Some(customer_key(i)),
            state: Some("ACTIVE".into()),
            data: json!({
                "name": format!("Load customer {i:04}"),
                "phone": format!("+254 700 {i:06}"),
                "customer_type": "retail",
                "credit_limit": limit,
                "balance": balance,
                "territory_id": if i % 2 == 0 { "@nairobi_west" } else { "@nairobi_east" },
                "price_list_id": "@standard",
                "addresses": [{
                    "address_type": "delivery",
                    "address_line_1": format!("Road {i}"),
                    "city": "Nairobi",
                    "region": "Nairobi",
                    "is_default": true
                }]
            }),
            origin: format!("bench realistic customer {i}"),
        });
    }
    Ok(package)
}

fn customer_key(i: usize) -> String {
    format!("load_customer_{i:04}")
}

fn sample(tenant: TenantId, key: &str) -> Uuid {
    tenants::apply::sample_id(tenant, key)
}

/// Applies `package` as tenants `chem01..chem{count}` (publish, users, sample data), through the
/// code `switchyard tenant apply` and `serve --demo` run.
pub async fn apply(owner: &PgPool, store: &Store, package: &Package, count: usize) -> Result<Vec<Tenant>, Error> {
    let limits = Limits::default();
    let mut out = Vec::with_capacity(count);
    let customers = package.data.iter().filter(|r| r.key.as_deref().is_some_and(|k| k.starts_with("load_customer_")));
    let keys: Vec<(String, bool)> = customers
        .enumerate()
        .filter_map(|(i, r)| r.key.clone().map(|k| (k, i % TIGHT_EVERY == TIGHT_EVERY - 1)))
        .collect();
    for n in 1..=count {
        let mut package = package.clone();
        package.tenant.slug = slug(n);
        let applied = tenants::apply::publish(owner, &package, "bench", &limits).await?;
        let id = applied.tenant;
        tenants::apply::upsert_users(owner, id, &package.tenant.users, None).await?;
        tenants::apply::load_sample_data(owner, store, id, &package).await?;
        let users = users(owner, id).await?;
        let user = |email: &str| {
            users
                .iter()
                .find(|u| u.email == email)
                .cloned()
                .ok_or_else(|| Error::Setup(format!("{}: no user {email}", applied.slug)))
        };
        out.push(Tenant {
            id,
            slug: applied.slug.clone(),
            version: applied.version,
            sales: user("sales@chemichemi.test")?,
            manager: user("manager@chemichemi.test")?,
            warehouse: user("warehouse@chemichemi.test")?,
            dispatcher: user("dispatcher@chemichemi.test")?,
            driver: user("driver@chemichemi.test")?,
            customers: keys.iter().filter(|(_, t)| !t).map(|(k, _)| sample(id, k)).collect(),
            tight: keys.iter().filter(|(_, t)| *t).map(|(k, _)| sample(id, k)).collect(),
            warehouses: vec![
                Warehouse { id: sample(id, "main"), vehicle: sample(id, "truck1") },
                Warehouse { id: sample(id, "coast"), vehicle: sample(id, "coast_truck") },
            ],
            products: ["lpg6", "lpg13", "cyl13", "bleach5", "degreaser20"].iter().map(|k| sample(id, k)).collect(),
        });
    }
    if out.iter().any(|t| t.customers.is_empty() || t.tight.is_empty()) {
        return Err(Error::Setup(format!(
            "the realistic mix needs at least {TIGHT_EVERY} customers per tenant (one of them tight)"
        )));
    }
    Ok(out)
}

async fn users(owner: &PgPool, tenant: TenantId) -> Result<Vec<User>, Error> {
    let mut tx = owner.begin().await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    let rows: Vec<(Uuid, String, Vec<String>)> =
        sqlx::query_as("select id, email, roles from users where tenant_id = $1")
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|(id, email, roles)| User { id, email, roles }).collect())
}

/// The order a life creates: its customer, warehouse and one to three lines.
pub fn order_data(customer: Uuid, warehouse: Uuid, lines: &[(Uuid, u32)]) -> Value {
    json!({
        "customer_id": customer,
        "warehouse_id": warehouse,
        "items": lines.iter().map(|(p, q)| json!({ "product_id": p, "quantity": q })).collect::<Vec<_>>(),
    })
}
