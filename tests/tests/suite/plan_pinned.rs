//! The plan tells the truth about pinned entities: applying a package leaves every existing
//! entity on the version it was created (or migrated) under, so the plan says, per type whose
//! definition changes, how many stay on an older definition (in non-terminal states, and in all)
//! and offers the migration (the exact command, with the state-map entries it needs) — in the
//! text, the JSON, and the HTTP answer the studio uses. On a real Postgres.
//!
//! Fixtures: `config-base` (tickets: 1 NEW, 2 OPEN, 3 WAITING, 1 CLOSED) and `config-changed`
//! (WAITING removed, a new type `article`).

use api::cli::tenant::{execute, TenantCommand};
use serde_json::json;
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::test_db;
use tenants::plan::{MigrationHint, PinnedEntities, UnmappedState};
use tenants::Package;

fn package(name: &str) -> Package {
    Package::load_dir(&package_dir(name)).unwrap_or_else(|e| panic!("package {name}: {e:?}"))
}

fn tickets(total: i64, non_terminal: i64, versions: &[i64]) -> PinnedEntities {
    PinnedEntities { type_name: "ticket".into(), total, non_terminal, versions: versions.to_vec(), type_removed: false }
}

#[tokio::test]
async fn plan_counts_entities_left_on_the_old_version_and_offers_the_migration() {
    let db = test_db().await;
    let s = TestServer::start(&db, "config-base").await;
    let changed = package("config-changed");

    // Before apply: all 7 tickets stay on version 1 (6 not closed); 3 are WAITING, which
    // version 2 does not have.
    let plan = tenants::plan::plan(&db.owner, &engine::store::TenantSlug::parse("helpdesk").expect("a slug"), &changed)
        .await
        .expect("plan");
    assert_eq!(plan.pinned, [tickets(7, 6, &[1])]);
    let hint = MigrationHint {
        to: 2,
        command: "switchyard tenant migrate helpdesk --to 2 --state-map ticket.WAITING=<state>".into(),
        unmapped: vec![UnmappedState { type_name: "ticket".into(), state: "WAITING".into(), count: 3 }],
    };
    assert_eq!(plan.migration.as_ref(), Some(&hint));
    let text = plan.text();
    for line in [
        "\nPinned entities: they keep running the definition of the version they were created or migrated under, not this one:\n",
        "  ticket: 7 entities on version 1 (6 in non-terminal states)\n",
        "after apply run:\n  switchyard tenant migrate helpdesk --to 2 --state-map ticket.WAITING=<state> --dry-run\n",
        "  ticket.WAITING: 3 entities are in a state version 2 does not have: map it to one of its states, or they cannot move\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    // The same over HTTP (the studio's plan) and as the CLI's JSON.
    let admin = s.token(&db, "admin@helpdesk.test").await;
    let r = s.post("config/plan", &admin, &changed.to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["pinned"], json!([{ "type": "ticket", "total": 7, "non_terminal": 6, "versions": [1] }]));
    assert_eq!(r.body["migration"]["to"], 2);
    assert_eq!(r.body["migration"]["unmapped"], json!([{ "type": "ticket", "state": "WAITING", "count": 3 }]));
    assert!(r.body["text"].as_str().is_some_and(|t| t.contains("ticket: 7 entities on version 1")), "{:?}", r.body);

    // Applied: a plan of the same package still says they are pinned (no change to apply, yet
    // the entities run version 1), and a new entity is on version 2.
    let r = s.post("config/apply", &admin, &changed.to_json()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    s.create(&admin, "ticket", json!({ "subject": "On version 2" })).await;
    let again =
        tenants::plan::plan(&db.owner, &engine::store::TenantSlug::parse("helpdesk").expect("a slug"), &changed)
            .await
            .expect("plan");
    assert!(!again.changed);
    assert_eq!(again.pinned, [tickets(7, 6, &[1])]);
    assert_eq!(again.migration.as_ref().map(|m| m.to), Some(2));

    // The migration the plan offered, run: only the closed ticket stays on version 1, and the
    // plan no longer offers a migration.
    std::env::set_var("DATABASE_URL", &db.owner_url);
    std::env::set_var("SWITCHYARD_APP_DATABASE_URL", &db.app_url);
    std::env::set_var("SWITCHYARD_DB_POOL", "2");
    let cfg = api::config::Config::from_env().expect("config");
    let out = execute(
        &cfg,
        TenantCommand::Migrate {
            slug: "helpdesk".into(),
            to: 2,
            state_map: vec!["ticket.WAITING=OPEN".into()],
            dry_run: false,
            json: false,
        },
    )
    .await
    .expect("migrate");
    assert_eq!(out.code, 0, "{}", out.stdout);
    let after =
        tenants::plan::plan(&db.owner, &engine::store::TenantSlug::parse("helpdesk").expect("a slug"), &changed)
            .await
            .expect("plan");
    assert_eq!(after.pinned, [tickets(1, 0, &[1])]);
    assert_eq!(after.migration, None);

    // A package that changes nothing for the pinned ticket's type lists nothing: a plan of
    // version 1 again (which the closed ticket runs) lists the 7 tickets on version 2 instead.
    let base = tenants::plan::plan(
        &db.owner,
        &engine::store::TenantSlug::parse("helpdesk").expect("a slug"),
        &package("config-base"),
    )
    .await
    .expect("plan");
    assert_eq!(base.existing_version, Some(1));
    assert_eq!(base.pinned, [tickets(7, 7, &[2])]);
    db.drop_db().await.expect("drop");
}
