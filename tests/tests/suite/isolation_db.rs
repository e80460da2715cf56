//! Tenant isolation at the database: row-level security holds for the server's role whatever
//! the query says, and the transition history is append-only even for that role.

use serde_json::json;
use switchyard_tests::server::TestServer;
use switchyard_tests::test_db;

#[tokio::test]
async fn row_level_security_confines_the_server_role_to_its_tenant() {
    let db = test_db().await;
    let a = TestServer::start(&db, "chemichemi").await;
    let b = TestServer::start(&db, "sandbox").await;
    let user_b = b.token(&db, "user@sandbox.test").await;
    let thing = b.create(&user_b, "thing", json!({ "name": "b's thing" })).await;
    // With an idempotency key, so `idempotency` has a row too.
    let bump = b.url(&format!("entities/thing/{}/transitions/bump", thing["id"].as_str().expect("id")));
    let r = b
        .request(
            reqwest::Method::POST,
            &bump,
            Some(&user_b),
            Some(&json!({ "input": {} })),
            &[("Idempotency-Key", "k")],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let count = |sql: &'static str| {
        let pool = db.app.clone();
        async move {
            let mut tx = pool.begin().await.expect("begin");
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.expect(sql);
            tx.rollback().await.expect("rollback");
            n
        }
    };
    // The tenant tables, from the catalog (so a new one cannot be left out): every table of the
    // schema with row-level security enabled or a `tenant_id` column, and `tenants`. Each must
    // have row-level security enabled and forced.
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity from pg_class c \
         join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition \
           and (c.relrowsecurity or c.relname = 'tenants' or exists (select 1 from pg_attribute a \
                where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)) \
         order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .expect("catalog");
    let names: Vec<&str> = tables.iter().map(|(t, ..)| t.as_str()).collect();
    for expected in [
        "entities",
        "transitions",
        "outbox",
        "users",
        "config_versions",
        "sequences",
        "idempotency",
        "tenants",
        "timers",
        "refresh_tokens",
        "api_keys",
        "webhooks",
        "webhook_deliveries",
        "webhook_attempts",
        "event_streams",
        "event_log",
        "outbox_pending",
        "invitations",
        "config_drafts",
    ] {
        assert!(names.contains(&expected), "{expected} is not among the tenant tables {names:?}");
    }
    for (table, enabled, forced) in &tables {
        assert!(*enabled && *forced, "{table}: row-level security enabled {enabled}, forced {forced}");
    }

    // A row in every tenant table (written as the owner, with A set), so that seeing none of
    // them with no tenant set means something.
    let mut tx = db.tenant_tx(a.tenant).await;
    for statement in [
        "insert into refresh_tokens (tenant_id, id, family_id, user_id, secret_hash, expires_at) \
         select tenant_id, gen_random_uuid(), gen_random_uuid(), id, '\\x00', now() + interval '1 day' from users limit 1",
        "insert into api_keys (tenant_id, id, name, secret_hash, created_by) \
         values (app_tenant(), gen_random_uuid(), 'k', '\\x00', 'test')",
        "insert into invitations (tenant_id, id, user_id, secret_hash, created_by, expires_at) \
         select tenant_id, gen_random_uuid(), id, '\\x00', 'test', now() + interval '1 day' from users limit 1",
        "insert into webhooks (tenant_id, id, url, events, secret, created_by) \
         values (app_tenant(), gen_random_uuid(), 'https://example.com/h', '{*}', 'whsec_test', 'test')",
        "insert into webhook_deliveries (tenant_id, id, webhook_id, outbox_id, event_id) \
         select app_tenant(), gen_random_uuid(), (select id from webhooks limit 1), id, event_id from outbox limit 1",
        "insert into webhook_attempts (tenant_id, delivery_id, attempt, duration_ms) \
         select app_tenant(), id, 1, 1 from webhook_deliveries limit 1",
        "insert into sequences (tenant_id, name, value) values (app_tenant(), 'test', 1) on conflict do nothing",
        "insert into event_streams (tenant_id, position) values (app_tenant(), 1) on conflict do nothing",
        "insert into event_log (tenant_id, position, outbox_id) select app_tenant(), 1, id from outbox limit 1",
        "insert into timers (tenant_id, entity_id, state, transition, due_at, entity_version) \
         select tenant_id, id, state, 'x', now() + interval '1 day', version from entities limit 1",
        "insert into config_drafts (tenant_id, package, version, updated_by) values (app_tenant(), '{}', 1, 'test')",
    ] {
        sqlx::query(statement).execute(&mut *tx).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    tx.commit().await.expect("commit");
    for (table, ..) in &tables {
        let n: i64 =
            sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(&db.owner).await.expect(table);
        assert!(n > 0, "{table} is empty: give it a row above, or the check below proves nothing");
    }

    // No tenant set: nothing at all, in every tenant table.
    for (table, ..) in &tables {
        let mut tx = db.app.begin().await.expect("begin");
        let n: i64 =
            sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(&mut *tx).await.expect(table);
        assert_eq!(n, 0, "{table} is visible with no tenant set");
    }
    assert_eq!(count("select count(*) from entities").await, 0);

    // `entities` is partitioned by tenant (migration 0021): the server role reads it through
    // the table, under its policy, and may not name a partition at all (each has the policy
    // forced as well).
    let partitions: Vec<(String, bool, bool)> = sqlx::query_as(
        "select c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity from pg_inherits i \
         join pg_class c on c.oid = i.inhrelid where i.inhparent = 'entities'::regclass order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .expect("partitions");
    assert!(partitions.len() >= 2, "a partition per tenant: {partitions:?}");
    for (partition, enabled, forced) in &partitions {
        assert!(*enabled && *forced, "{partition}: row-level security enabled {enabled}, forced {forced}");
        let mut tx = db.app.begin_with(engine::store::sql::begin_for(a.tenant)).await.expect("begin");
        let denied = sqlx::query_scalar::<_, i64>(&format!("select count(*) from {partition}"))
            .fetch_one(&mut *tx)
            .await
            .expect_err("the server role reads a partition by name");
        assert!(denied.to_string().contains("permission denied"), "{partition}: {denied}");
    }

    // Tenant A set: B's rows are invisible even when asked for by B's id.
    let mut tx = db.app.begin().await.expect("begin");
    sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(a.tenant.to_string())
        .execute(&mut *tx)
        .await
        .expect("set");
    let mine: i64 = sqlx::query_scalar("select count(*) from entities").fetch_one(&mut *tx).await.expect("count");
    assert!(mine > 0, "A sees its own rows");
    let theirs: i64 = sqlx::query_scalar("select count(*) from entities where tenant_id = $1")
        .bind(b.tenant)
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(theirs, 0);
    // Writing a row for B while A is set is refused by the policy's check.
    let insert = sqlx::query(
        "insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by) values ($1, gen_random_uuid(), 'thing', 'OPEN', '{}', 1, 'x', 'x')",
    )
    .bind(b.tenant)
    .execute(&mut *tx)
    .await;
    assert!(insert.is_err(), "a row of another tenant was written");
    tx.rollback().await.expect("rollback");

    // The server's role cannot switch row security off, nor become another role.
    let mut tx = db.app.begin().await.expect("begin");
    sqlx::query("set local row_security = off").execute(&mut *tx).await.expect("the setting itself is allowed");
    let r = sqlx::query_scalar::<_, i64>("select count(*) from entities").fetch_one(&mut *tx).await;
    assert!(r.is_err(), "with row_security off a query under RLS must fail, not bypass it");
    tx.rollback().await.expect("rollback");
    let mut tx = db.app.begin().await.expect("begin");
    assert!(sqlx::query("set local role switchyard").execute(&mut *tx).await.is_err(), "became the owner");
    tx.rollback().await.expect("rollback");
    let attrs: (bool, bool) =
        sqlx::query_as("select rolsuper, rolbypassrls from pg_roles where rolname = current_user")
            .fetch_one(&db.app)
            .await
            .expect("attrs");
    assert_eq!(attrs, (false, false));
    let owns: i64 =
        sqlx::query_scalar("select count(*) from pg_tables where schemaname = 'public' and tableowner = current_user")
            .fetch_one(&db.app)
            .await
            .expect("owner");
    assert_eq!(owns, 0, "the server's role owns tables");
}

#[tokio::test]
async fn history_rows_cannot_be_updated_or_deleted_even_by_the_server_role() {
    let db = test_db().await;
    let s = TestServer::start(&db, "sandbox").await;
    let user = s.token(&db, "user@sandbox.test").await;
    let thing = s.create(&user, "thing", json!({ "name": "t" })).await;
    let thing_id = thing["id"].as_str().expect("id").to_string();
    assert_eq!(s.fire(&user, "thing", &thing_id, "bump", json!({})).await.status, 200);

    for (pool, who) in [(&db.app, "server role"), (&db.owner, "owner")] {
        for statement in ["update transitions set transition = 'forged'", "delete from transitions"] {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("select set_config('app.tenant_id', $1, true)")
                .bind(s.tenant.to_string())
                .execute(&mut *tx)
                .await
                .expect("set");
            let r = sqlx::query(statement).execute(&mut *tx).await;
            assert!(r.is_err(), "{who} could run `{statement}`");
            tx.rollback().await.expect("rollback");
        }
    }
    let h = s.get(&format!("entities/thing/{thing_id}/history"), &user).await;
    assert_eq!(h.body["data"].as_array().map(Vec::len), Some(2));
}
