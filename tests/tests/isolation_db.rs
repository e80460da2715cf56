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
    b.create(&user_b, "thing", json!({ "name": "b's thing" })).await;

    let count = |sql: &'static str| {
        let pool = db.app.clone();
        async move {
            let mut tx = pool.begin().await.expect("begin");
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.expect(sql);
            tx.rollback().await.expect("rollback");
            n
        }
    };
    // No tenant set: nothing at all, in every tenant table.
    for table in
        ["entities", "transitions", "outbox", "users", "config_versions", "sequences", "idempotency", "tenants"]
    {
        let mut tx = db.app.begin().await.expect("begin");
        let n: i64 =
            sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(&mut *tx).await.expect(table);
        assert_eq!(n, 0, "{table} is visible with no tenant set");
    }
    assert_eq!(count("select count(*) from entities").await, 0);

    // Tenant A set: B's rows are invisible even when asked for by B's id.
    let mut tx = db.app.begin().await.expect("begin");
    sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(a.tenant.0.to_string())
        .execute(&mut *tx)
        .await
        .expect("set");
    let mine: i64 = sqlx::query_scalar("select count(*) from entities").fetch_one(&mut *tx).await.expect("count");
    assert!(mine > 0, "A sees its own rows");
    let theirs: i64 = sqlx::query_scalar("select count(*) from entities where tenant_id = $1")
        .bind(b.tenant.0)
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(theirs, 0);
    // Writing a row for B while A is set is refused by the policy's check.
    let insert = sqlx::query(
        "insert into entities (tenant_id, id, type, state, data, config_version, created_by, updated_by) values ($1, gen_random_uuid(), 'thing', 'OPEN', '{}', 1, 'x', 'x')",
    )
    .bind(b.tenant.0)
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
                .bind(s.tenant.0.to_string())
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
