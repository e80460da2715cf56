//! `entities` is partitioned by tenant (migration 0021): a tenant's rows, its list, search and
//! unique indexes live in its own partition, so a statement that names its tenant is planned
//! and checked against that tenant's indexes only, and one tenant's configuration does not slow
//! another's.

use switchyard_tests::server::package_dir;
use switchyard_tests::test_db;

#[tokio::test]
async fn each_tenant_has_its_partition_with_its_own_indexes_and_its_statements_read_only_it() {
    let db = test_db().await;
    let limits = engine::limits::Limits::default();
    let mut published = Vec::new();
    for name in ["query", "unique"] {
        let package = tenants::Package::load_dir(&package_dir(name)).expect("package");
        let applied = tenants::apply::publish(&db.owner, &package, "test", &limits).await.expect("publish");
        published.push((applied.tenant, package));
    }
    let partitions: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, pg_get_expr(c.relpartbound, c.oid) from pg_inherits i \
         join pg_class c on c.oid = i.inhrelid where i.inhparent = 'entities'::regclass order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .expect("partitions");
    assert_eq!(partitions.len(), 2, "one partition per tenant: {partitions:?}");

    for (tenant, package) in &published {
        let partition = engine::store::query::entities_partition(*tenant);
        // The server's name and the migration's function agree, and the partition holds this
        // tenant only.
        let by_sql: String =
            sqlx::query_scalar("select entities_partition($1)").bind(tenant).fetch_one(&db.owner).await.expect("name");
        assert_eq!(by_sql, partition);
        let bound = partitions.iter().find(|(name, _)| *name == partition).map(|(_, bound)| bound.clone());
        assert_eq!(bound, Some(format!("FOR VALUES IN ('{tenant}')")), "{partitions:?}");

        // Every index publishing built for the tenant is on its partition.
        let mut wanted: Vec<String> = tenants::indexes::wanted(*tenant, package).into_iter().map(|w| w.name).collect();
        wanted.extend(engine::store::query::unique_specs(*tenant, &package.types).into_iter().map(|u| u.name));
        assert!(!wanted.is_empty(), "the packages ask for indexes");
        for name in &wanted {
            let on: Option<String> = sqlx::query_scalar(
                "select i.indrelid::regclass::text from pg_index i join pg_class c on c.oid = i.indexrelid \
                 where c.relname = $1",
            )
            .bind(name)
            .fetch_optional(&db.owner)
            .await
            .expect("index");
            assert_eq!(on.as_deref(), Some(partition.as_str()), "{name}");
        }

        // A statement of the server's role, with the tenant set, reads its partition only.
        let mut tx = db.app.begin_with(engine::store::sql::begin_for(*tenant)).await.expect("begin");
        let plan: Vec<String> =
            sqlx::query_scalar("explain (costs off) select id from entities where tenant_id = $1 and type = 'ticket'")
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await
                .expect("explain");
        tx.rollback().await.expect("rollback");
        let plan = plan.join("\n");
        for (other, _) in &partitions {
            assert_eq!(plan.contains(other.as_str()), *other == partition, "{other} in the plan of {tenant}:\n{plan}");
        }
    }
    db.drop_db().await.expect("drop");
}
