//! `entities` is partitioned by tenant (migration 0021): a tenant's rows, its list, search and
//! unique indexes live in its own partition, so a statement that names its tenant is planned
//! and checked against that tenant's indexes only, and one tenant's configuration does not slow
//! another's.

use switchyard_tests::server::package_dir;
use switchyard_tests::{test_db, TestDb};

/// Publishes the `query` and `unique` test packages (two tenants, with list, search and unique
/// indexes): each tenant and its package, in that order.
async fn two_tenants(db: &TestDb) -> Vec<(engine::store::TenantId, tenants::Package)> {
    let limits = engine::limits::Limits::default();
    let mut published = Vec::new();
    for name in ["query", "unique"] {
        let package = tenants::Package::load_dir(&package_dir(name)).expect("package");
        let applied = tenants::apply::publish(&db.owner, &package, "test", &limits).await.expect("publish");
        published.push((applied.tenant, package));
    }
    published
}

#[tokio::test]
async fn each_tenant_has_its_partition_with_its_own_indexes_and_its_statements_read_only_it() {
    let db = test_db().await;
    let published = two_tenants(&db).await;
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

/// A database written before migration 0021 (one `entities` table, per-tenant indexes on it) is
/// converted by it: every row in its tenant's partition as it was, every per-tenant index on its
/// tenant's partition with its name and comment and still enforcing what it did, the triggers
/// and the policy in place.
#[tokio::test]
async fn an_existing_database_is_converted_with_its_rows_and_indexes() {
    use sqlx::migrate::Migrator;
    let db = switchyard_tests::empty_db().await;
    let all = &switchyard_tests::db::MIGRATOR;
    // The migrations before 0021 (`Migrator`'s fields are what `migrate!` fills in).
    let before = Migrator {
        migrations: std::borrow::Cow::Owned(all.iter().filter(|m| m.version < 21).cloned().collect()),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    };
    before.run(&db.owner).await.expect("migrations before 0021");
    let (ta, tb) = (engine::store::TenantId::generate(), engine::store::TenantId::generate());
    let (a, b) = (ta.as_uuid(), tb.as_uuid());
    sqlx::raw_sql(&format!(
        "insert into tenants (id, slug, name) values ('{a}', 'alpha', 'Alpha'), ('{b}', 'beta', 'Beta');
         insert into config_versions (tenant_id, version, hash, package, created_by) values
             ('{a}', 1, 'h', '{{\"types\": [{{\"name\": \"log\", \"immutable\": true}}]}}', 'test'),
             ('{b}', 1, 'h', '{{}}', 'test');
         insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by)
         select case when g % 2 = 0 then '{a}'::uuid else '{b}'::uuid end, gen_random_uuid(),
                case when g % 5 = 0 and g % 2 = 0 then 'log' else 'part' end, 'NEW',
                jsonb_build_object('sku', 'SKU-' || g, 'qty', g), 1, 'test', 'test'
         from generate_series(1, 500) g;
         create index entities_q_conv_a on entities (field_number(data, 'qty'), id)
             where tenant_id = '{a}'::uuid and type = 'part'::text;
         comment on index entities_q_conv_a is '{{\"tenant\": \"{a}\", \"field\": \"qty\"}}';
         create unique index entities_u_conv_b on entities (tenant_id, lower(field_text(data, 'sku')))
             where tenant_id = '{b}'::uuid and type = 'part'::text;"
    ))
    .execute(&db.owner)
    .await
    .expect("data before 0021");
    let rows = "select coalesce(jsonb_agg(to_jsonb(e) order by tenant_id, id), '[]') from entities e";
    let before_rows: serde_json::Value = sqlx::query_scalar(rows).fetch_one(&db.owner).await.expect("rows");

    all.run(&db.owner).await.expect("migration 0021 over the data");

    let after_rows: serde_json::Value = sqlx::query_scalar(rows).fetch_one(&db.owner).await.expect("rows");
    assert_eq!(after_rows.as_array().map(Vec::len), Some(500));
    assert_eq!(after_rows, before_rows, "every row as it was");
    let (pa, pb) = (engine::store::query::entities_partition(ta), engine::store::query::entities_partition(tb));
    let placed: Vec<(String, i64)> =
        sqlx::query_as("select tableoid::regclass::text, count(*) from entities group by 1 order by 1")
            .fetch_all(&db.owner)
            .await
            .expect("placed");
    let mut expected = vec![(pa.clone(), 250), (pb.clone(), 250)];
    expected.sort();
    assert_eq!(placed, expected);
    let indexes: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select c.relname::text, i.indrelid::regclass::text, obj_description(c.oid, 'pg_class') \
         from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname like 'entities\\_%\\_conv\\_%' order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .expect("indexes");
    assert_eq!(
        indexes,
        vec![
            ("entities_q_conv_a".to_string(), pa.clone(), Some(format!("{{\"tenant\": \"{a}\", \"field\": \"qty\"}}"))),
            ("entities_u_conv_b".to_string(), pb.clone(), None),
        ]
    );
    // The unique index still refuses a duplicate, by its name.
    let dup = sqlx::raw_sql(&format!(
        "insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by) \
         values ('{b}', gen_random_uuid(), 'part', 'NEW', '{{\"sku\": \"sku-1\"}}', 1, 't', 't')"
    ))
    .execute(&db.owner)
    .await
    .expect_err("a duplicate sku");
    assert!(dup.to_string().contains("entities_u_conv_b"), "{dup}");
    // The append-only trigger: a new log of tenant A is immutable and cannot be changed.
    let mut tx = db.tenant_tx(ta).await;
    let id: uuid::Uuid = sqlx::query_scalar(
        "insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by) \
         values (app_tenant(), gen_random_uuid(), 'log', 'NEW', '{}', 1, 't', 't') returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("a log");
    let immutable: bool = sqlx::query_scalar("select immutable from entities where id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .expect("read");
    assert!(immutable);
    tx.commit().await.expect("commit");
    let changed = sqlx::query("update entities set state = 'X' where id = $1").bind(id).execute(&db.owner).await;
    assert!(changed.is_err_and(|e| e.to_string().contains("append-only")));
    // The server role sees its tenant's rows only.
    let mut tx = db.app.begin_with(engine::store::sql::begin_for(tb)).await.expect("begin");
    let seen: i64 = sqlx::query_scalar("select count(*) from entities").fetch_one(&mut *tx).await.expect("count");
    assert_eq!(seen, 250);
    tx.rollback().await.expect("rollback");
    db.drop_db().await.expect("drop");
}

/// Past `MANY_PARTITIONS` tenants, a new connection of the server's pools plans each execution
/// (`force_custom_plan`), so no prepared statement builds a generic plan over every partition,
/// which locks every partition and index until the transaction ends. And the check can fail: a
/// connection left in `auto` does lock them all at the sixth execution.
#[tokio::test]
async fn with_many_tenants_no_statement_plans_over_every_partition() {
    let db = test_db().await;
    let many = engine::store::conn::MANY_PARTITIONS + 6;
    sqlx::query(
        "insert into tenants (id, slug, name) select gen_random_uuid(), 'many-' || g, 'Many ' || g \
         from generate_series(1, $1::int) g",
    )
    .bind(many)
    .execute(&db.owner)
    .await
    .expect("tenants");
    let tenant: uuid::Uuid =
        sqlx::query_scalar("select id from tenants where slug = 'many-1'").fetch_one(&db.owner).await.expect("tenant");
    let tenant = engine::store::TenantId::from_credential(tenant);

    // The plan mode of a pool's connection, and the locks it holds after eight runs of one
    // prepared statement on `entities` in one transaction.
    let runs = |pool: sqlx::PgPool| async move {
        let mut tx = pool.begin_with(engine::store::sql::begin_for(tenant)).await.expect("begin");
        let mode: String = sqlx::query_scalar("show plan_cache_mode").fetch_one(&mut *tx).await.expect("mode");
        for _ in 0..8 {
            sqlx::query("select id from entities where tenant_id = $1 and id = $2")
                .bind(tenant.as_uuid())
                .bind(uuid::Uuid::new_v4())
                .fetch_optional(&mut *tx)
                .await
                .expect("select");
        }
        let locks: i64 = sqlx::query_scalar("select count(*) from pg_locks where pid = pg_backend_pid()")
            .fetch_one(&mut *tx)
            .await
            .expect("locks");
        tx.rollback().await.expect("rollback");
        pool.close().await;
        (mode, locks)
    };
    let server = engine::store::conn::pool_options(1).connect(&db.app_url).await.expect("pool");
    let (mode, locks) = runs(server).await;
    assert_eq!(mode, "force_custom_plan");
    assert!(locks < 30, "{locks} locks with custom plans");

    let plain = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&db.app_url).await.expect("pool");
    let (mode, locks) = runs(plain).await;
    assert_eq!(mode, "auto");
    assert!(locks > many, "{locks} locks: a generic plan over {many} partitions locks each");
    db.drop_db().await.expect("drop");
}

/// A unique index built in a publish holds its tenant's partition only: while it is being built
/// (its transaction open), another tenant's writes go on, and the tenant's own writes wait.
#[tokio::test]
async fn building_one_tenants_unique_index_does_not_hold_up_another_tenants_writes() {
    let db = test_db().await;
    let published = two_tenants(&db).await;
    let (building, other) = (published[1].0, published[0].0);
    // A publish's unique index, mid-build: its transaction holds the lock until it ends.
    let mut publish = db.owner.begin().await.expect("begin");
    sqlx::raw_sql(&format!(
        "create unique index entities_u_probe on {} (tenant_id, lower(field_text(data, 'probe'))) \
         where tenant_id = '{building}'::uuid and type = 'part'::text",
        engine::store::query::entities_partition(building)
    ))
    .execute(&mut *publish)
    .await
    .expect("the index");

    // A write of a tenant, as the server writes (its role, its tenant set), waiting at most 2 s
    // for a lock.
    let write = |tenant: engine::store::TenantId, ty: &'static str| {
        let app = db.app.clone();
        async move {
            let mut tx = app.begin_with(engine::store::sql::begin_for(tenant)).await.expect("begin");
            sqlx::query("set local lock_timeout = '2s'").execute(&mut *tx).await.expect("timeout");
            let done = sqlx::query(
                "insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by) \
                 values ($1, gen_random_uuid(), $2, 'NEW', '{}', \
                         (select max(version) from config_versions where tenant_id = $1), 't', 't')",
            )
            .bind(tenant.as_uuid())
            .bind(ty)
            .execute(&mut *tx)
            .await;
            tx.rollback().await.expect("rollback");
            done
        }
    };
    write(other, "ticket").await.expect("another tenant writes while the index builds");
    let own = write(building, "part").await.expect_err("the tenant's own write waits for the publish");
    assert!(own.to_string().contains("lock timeout"), "{own}");
    publish.rollback().await.expect("rollback");
    db.drop_db().await.expect("drop");
}
