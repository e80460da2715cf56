//! The configuration lifecycle end to end, on a real Postgres: plan (text, impact, exit codes),
//! apply and versions, migrate (dry run and real), export, over real HTTP and through the CLI
//! functions (`api::cli::tenant`).
//!
//! Fixtures: `tests/fixtures/config-base` (a help desk with tickets in every state) and
//! `config-changed` (the same package a release later: state WAITING removed, transition
//! `escalate` added, `notes` shortened, a required `category` with a default, a new type).

use std::path::PathBuf;
use std::process::ExitCode;

use api::cli::tenant::{execute, Output, TenantCommand};
use api::config::Config;
use engine::limits::Limits;
use serde_json::{json, Value};
use switchyard_tests::server::{package_dir, TestServer};
use switchyard_tests::{test_db, TestDb};
use tenants::Package;

fn package(name: &str) -> Package {
    Package::load_dir(&package_dir(name)).unwrap_or_else(|e| panic!("package {name}: {e:?}"))
}

/// The CLI's configuration for this test's database. (Every test runs in its own process.)
fn cli_config(db: &TestDb) -> Config {
    std::env::set_var("DATABASE_URL", &db.owner_url);
    std::env::set_var("SWITCHYARD_APP_DATABASE_URL", &db.app_url);
    std::env::set_var("SWITCHYARD_DB_POOL", "2");
    Config::from_env().expect("config")
}

async fn cli(cfg: &Config, command: TenantCommand) -> Output {
    match execute(cfg, command).await {
        Ok(out) => out,
        Err(e) => panic!("the command failed: {e:#}"),
    }
}

fn plan_cmd(dir: PathBuf) -> TenantCommand {
    TenantCommand::Plan { dir, tenant: None, json: false, skip_tests: false }
}

fn migrate_cmd(to: i64, state_map: &[&str], dry_run: bool) -> TenantCommand {
    TenantCommand::Migrate {
        slug: "helpdesk".into(),
        to,
        state_map: state_map.iter().map(|s| s.to_string()).collect(),
        dry_run,
        json: true,
    }
}

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("switchyard-{what}-{}", uuid::Uuid::new_v4().simple()))
}

/// Everything a tenant has in the database, to compare before and after.
async fn snapshot(db: &TestDb, tenant: engine::store::TenantId) -> Value {
    let mut out = serde_json::Map::new();
    for (name, query) in [
        ("tenants", "select coalesce(jsonb_agg(to_jsonb(t)), '[]') from tenants t where id = $1"),
        (
            "config_versions",
            "select coalesce(jsonb_agg(jsonb_build_object('version', version, 'hash', hash) order by version), '[]') \
             from config_versions where tenant_id = $1",
        ),
        ("entities", "select coalesce(jsonb_agg(to_jsonb(e) order by id), '[]') from entities e where tenant_id = $1"),
        (
            "history",
            "select coalesce(jsonb_agg(to_jsonb(t) order by id), '[]') from transitions t where tenant_id = $1",
        ),
        ("outbox", "select coalesce(jsonb_agg(to_jsonb(o) order by id), '[]') from outbox o where tenant_id = $1"),
    ] {
        let v: Value = sqlx::query_scalar(query).bind(tenant).fetch_one(&db.owner).await.expect(name);
        out.insert(name.to_string(), v);
    }
    Value::Object(out)
}

async fn entity_row(db: &TestDb, id: &str) -> Value {
    sqlx::query_scalar("select to_jsonb(e) from entities e where id = $1::text::uuid")
        .bind(id)
        .fetch_one(&db.owner)
        .await
        .expect("entity")
}

async fn history(db: &TestDb, id: &str) -> Vec<Value> {
    sqlx::query_scalar("select to_jsonb(t) from transitions t where entity_id = $1::text::uuid order by id")
        .bind(id)
        .fetch_all(&db.owner)
        .await
        .expect("history")
}

fn assert_contains(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn plan_shows_the_changes_and_their_impact_on_live_entities() {
    let db = test_db().await;
    let s = TestServer::start(&db, "config-base").await;
    let admin = s.token(&db, "admin@helpdesk.test").await;

    let r = s.post("config/plan", &admin, &package("config-changed").to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let text = r.body["text"].as_str().expect("text");
    assert!(text.starts_with("Tenant helpdesk: live version 1 (hash "), "{text}");
    assert_contains(
        text,
        &[
            "\n+ role supervisor: \"Supervisor\"\n",
            "\n~ type ticket\n",
            "\n  ~ field priority: values: [low, normal, high] → [low, normal, high, urgent]\n",
            "\n  ~ field notes: max_length: 2000 → 500\n",
            "\n  + field category: enum [general, billing, hardware], required\n",
            "\n  - state WAITING\n",
            "\n  + transition escalate: [OPEN] → OPEN\n",
            "\n  ~ transition close: from: [NEW, OPEN, WAITING] → [NEW, OPEN], guards changed\n",
            "\n  - transition wait\n",
            "\n  - transition resume\n",
            "\n+ type article\n  + field title: string, required\n",
            "\nImpact on live entities:\n",
            "\n  2 ticket entities are in state OPEN, which would lose transition wait\n",
            "\n  3 ticket entities are in state WAITING, which would be removed\n",
            "\nPlan: 4 to add, 3 to change, 3 to remove.\n",
        ],
    );
    assert_eq!(r.body["changed"], true);
    assert_eq!(r.body["live"]["version"], 1);
    assert_eq!(r.body["hash"], package("config-changed").hash());
    let impact = r.body["impact"].as_array().expect("impact");
    assert_eq!(impact.len(), 2, "{impact:?}");
    assert_eq!(impact[1]["kind"], "state_removed");
    assert_eq!((impact[1]["state"].as_str(), impact[1]["count"].as_i64()), (Some("WAITING"), Some(3)));
    assert_eq!(impact[0]["kind"], "transitions_lost");
    assert_eq!(impact[0]["transitions"], json!(["wait"]));
    let ticket = r.body["changes"].as_array().expect("changes").iter().find(|c| c["name"] == "ticket").expect("ticket");
    assert_eq!(ticket["op"], "change");
    assert!(ticket["children"].as_array().expect("children").contains(&json!({
        "op": "remove", "kind": "state", "name": "WAITING"
    })));

    // The live package itself: nothing to do.
    let r = s.post("config/plan", &admin, &package("config-base").to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["changed"], false);
    assert_eq!(r.body["changes"], json!([]));
    assert!(r.body["text"].as_str().expect("text").contains("No changes"), "{:?}", r.body);
}

#[tokio::test]
async fn plan_exit_codes_follow_terraform() {
    let db = test_db().await;
    let cfg = cli_config(&db);

    // A new tenant plans as all additions.
    let out = cli(&cfg, plan_cmd(package_dir("config-base"))).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.starts_with("Tenant helpdesk has no live version"), "{}", out.stdout);
    assert_contains(&out.stdout, &["\n+ role admin: \"Administrator\"\n", "\n+ type ticket\n  + field subject: "]);
    assert!(!out.stdout.contains("\n- ") && !out.stdout.contains("\n~ "), "{}", out.stdout);

    // Apply prints the plan, then the version (which keeps the comment).
    let comment = Some("First version of the helpdesk".to_string());
    let out = cli(&cfg, TenantCommand::Apply { dir: package_dir("config-base"), skip_tests: false, comment }).await;
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("Tenant helpdesk has no live version"), "{}", out.stdout);
    assert!(out.stdout.contains("\nhelpdesk: version 1 (hash "), "{}", out.stdout);
    assert!(out.stdout.trim_end().ends_with(") published and live."), "{}", out.stdout);

    let out = cli(&cfg, plan_cmd(package_dir("config-base"))).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);

    let out = cli(&cfg, plan_cmd(package_dir("config-changed"))).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_contains(&out.stdout, &["\n  - state WAITING\n"]);
    // (no entities yet: no impact)
    assert_contains(&out.stdout, &["\nNo live entity is affected.\n"]);

    // --json: the same plan as data.
    let out = cli(
        &cfg,
        TenantCommand::Plan { dir: package_dir("config-changed"), tenant: None, json: true, skip_tests: false },
    )
    .await;
    assert_eq!(out.code, 2);
    let plan: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(plan["changed"], true);
    assert_eq!(plan["live"]["version"], 1);

    // `run` (what the binary calls) returns the same codes.
    let code = api::cli::tenant::run(cfg.clone(), plan_cmd(package_dir("config-changed"))).await.expect("run");
    assert_eq!(code, ExitCode::from(2));
    let code = api::cli::tenant::run(cfg.clone(), plan_cmd(package_dir("config-base"))).await.expect("run");
    assert_eq!(code, ExitCode::SUCCESS);

    // Errors (exit code 1 in the binary): a missing folder, a package that does not validate.
    let err = execute(&cfg, plan_cmd(temp_dir("missing"))).await.expect_err("missing folder");
    assert!(err.to_string().contains("does not validate"), "{err:#}");
    let broken = temp_dir("broken");
    tenants::export::write_dir(&package("config-base"), &broken, "", false).expect("write");
    let ticket = broken.join("types/ticket.yaml");
    let yaml = std::fs::read_to_string(&ticket).expect("read").replace("- agent", "- nobody");
    std::fs::write(&ticket, yaml).expect("write");
    let err = execute(&cfg, plan_cmd(broken.clone())).await.expect_err("invalid package");
    assert!(err.to_string().contains("nobody"), "{err:#}");
    let err = execute(&cfg, TenantCommand::Apply { dir: broken.clone(), skip_tests: false, comment: None })
        .await
        .expect_err("not applied");
    assert!(err.to_string().contains("does not validate"), "{err:#}");
    std::fs::remove_dir_all(&broken).expect("cleanup");

    // --tenant: plan against another tenant (here, one that does not exist: all additions).
    let out = cli(
        &cfg,
        TenantCommand::Plan {
            dir: package_dir("config-base"),
            tenant: Some("other".into()),
            json: false,
            skip_tests: false,
        },
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(out.stdout.starts_with("Tenant other has no live version"), "{}", out.stdout);

    let out = cli(&cfg, TenantCommand::Versions { slug: "helpdesk".into() }).await;
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    assert!(out.stdout.lines().nth(1).expect("row").starts_with("*       1  "), "{}", out.stdout);
    assert_eq!(out.stdout.lines().nth(2).map(str::trim), Some("First version of the helpdesk"), "{}", out.stdout);
}

#[tokio::test]
async fn apply_publishes_versions_and_validate_reports_problems() {
    let db = test_db().await;
    let s = TestServer::start(&db, "config-base").await;
    let admin = s.token(&db, "admin@helpdesk.test").await;
    let (base, changed) = (package("config-base"), package("config-changed"));

    let r = s.post("config/apply", &admin, &changed.to_json()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((r.body["version"].as_i64(), r.body["new_version"].as_bool()), (Some(2), Some(true)));
    assert_eq!(r.body["hash"], changed.hash());
    assert_eq!(r.body["plan"]["changed"], true);
    assert!(r.body["plan"]["text"].as_str().expect("text").contains("- state WAITING"), "{:?}", r.body);

    let r = s.get("config/versions", &admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let versions = r.body["data"].as_array().expect("data");
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(
        (versions[0]["version"].as_i64(), versions[0]["live"].as_bool(), versions[0]["created_by"].as_str()),
        (Some(1), Some(false), Some("test"))
    );
    assert_eq!(
        (versions[1]["version"].as_i64(), versions[1]["live"].as_bool(), versions[1]["created_by"].as_str()),
        (Some(2), Some(true), Some("admin@helpdesk.test"))
    );
    assert_eq!(versions[0]["hash"], base.hash());
    assert_eq!(versions[1]["hash"], changed.hash());
    assert!(versions[1]["created_at"].is_string());

    let r = s.get("config/versions/1", &admin).await;
    assert_eq!((r.status, &r.body), (200, &base.to_json()));
    // Key order survives storage: the body hashes like the package.
    assert_eq!(Package::from_json(&r.body).expect("package").hash(), base.hash());
    let r = s.get("config/export", &admin).await;
    assert_eq!((r.status, &r.body), (200, &changed.to_json()));
    for missing in ["config/versions/9", "config/versions/x"] {
        assert_eq!(s.get(missing, &admin).await.status, 404, "{missing}");
    }

    // The same package again: nothing new, and it stays live.
    let r = s.post("config/apply", &admin, &changed.to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!((r.body["version"].as_i64(), r.body["new_version"].as_bool()), (Some(2), Some(false)));
    assert_eq!(r.body["plan"]["changed"], false);
    // The first one again: its version becomes live again (a rollback), no new version.
    let r = s.post("config/plan", &admin, &base.to_json()).await;
    assert_eq!(r.body["existing_version"], 1, "{:?}", r.body);
    let r = s.post("config/apply", &admin, &base.to_json()).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(1)), "{:?}", r.body);
    let r = s.get("config/versions", &admin).await;
    let live: Vec<bool> = r.body["data"].as_array().expect("data").iter().map(|v| v["live"] == true).collect();
    assert_eq!(live, [true, false]);

    // Refused: another tenant's package, a package that does not validate.
    let mut other = changed.to_json();
    other["tenant"]["slug"] = json!("someone-else");
    let r = s.post("config/apply", &admin, &other).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["problems"][0]["path"], "/slug");
    // (types come in file order: article, ticket)
    let ticket = changed.types.iter().position(|t| t.name.as_str() == "ticket").expect("ticket");
    let mut invalid = changed.to_json();
    invalid["types"][ticket]["workflow"]["transitions"]["start"]["roles"] = json!(["nobody"]);
    let r = s.post("config/apply", &admin, &invalid).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_PACKAGE"), "{:?}", r.body);
    let problems = r.body["error"]["details"]["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["file"] == "types/ticket.yaml"
            && p["severity"] == "error"
            && p["message"].as_str().is_some_and(|m| m.contains("nobody"))),
        "{problems:?}"
    );
    let r = s.get("config/versions", &admin).await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(2), "nothing was published");

    // Validate answers with the problems instead of refusing.
    let r = s.post("config/validate", &admin, &changed.to_json()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["valid"], true, "{:?}", r.body);
    let r = s.post("config/validate", &admin, &invalid).await;
    assert_eq!((r.status, &r.body["valid"]), (200, &json!(false)), "{:?}", r.body);
    let p = &r.body["problems"][0];
    assert_eq!((p["severity"].as_str(), p["file"].as_str()), (Some("error"), Some("types/ticket.yaml")), "{p}");
    assert!(p["path"].as_str().is_some_and(|s| s.starts_with("/workflow/transitions/start")), "{p}");
    let mut malformed = changed.to_json();
    malformed["types"][ticket]["fields"]["notes"]["type"] = json!("text");
    let r = s.post("config/validate", &admin, &malformed).await;
    assert_eq!(r.body["valid"], false, "{:?}", r.body);
    let p = &r.body["problems"][0];
    assert_eq!(
        (p["file"].as_str(), p["path"].as_str()),
        (Some("types/ticket.yaml"), Some("/fields/notes/type")),
        "{p}"
    );
    let r = s.post("config/validate", &admin, &other).await;
    assert_eq!((r.body["valid"].as_bool(), r.body["problems"][0]["severity"].as_str()), (Some(true), Some("warning")));
    // Script problems have the line and column within the script; other problems have neither key.
    let mut scripted = changed.to_json();
    let escalate = &mut scripted["types"][ticket]["workflow"]["transitions"]["escalate"];
    escalate["script"] = json!("entity.priority = \"urgent\";\ncreate(\"widget\", #{});\n");
    escalate["guards"] = json!([{ "rule": { "frobnicate": [1] }, "message": "never" }]);
    let r = s.post("config/validate", &admin, &scripted).await;
    assert_eq!(r.body["valid"], false, "{:?}", r.body);
    let problems = r.body["problems"].as_array().expect("problems");
    let at = |path: &str| problems.iter().find(|p| p["path"] == path).unwrap_or_else(|| panic!("{path}: {problems:?}"));
    let script = at("/workflow/transitions/escalate/script");
    assert_eq!(
        (script["file"].as_str(), script["line"].as_u64(), script["column"].as_u64()),
        (Some("types/ticket.yaml"), Some(2), Some(1)),
        "{script}"
    );
    let guard = at("/workflow/transitions/escalate/guards/0/rule");
    assert!(guard.get("line").is_none() && guard.get("column").is_none(), "{guard}");
}

/// The help desk at version 1 with one more ticket whose notes the new version refuses, then
/// version 2 published (the entities stay on version 1).
async fn helpdesk_with_v2(db: &TestDb) -> (TestServer, String) {
    let s = TestServer::start(db, "config-base").await;
    let agent = s.token(db, "agent@helpdesk.test").await;
    let long = s.create(&agent, "ticket", json!({ "subject": "Long story", "notes": "x".repeat(600) })).await;
    let applied = tenants::apply::publish(&db.owner, &package("config-changed"), "test", &Limits::default())
        .await
        .expect("publish");
    assert_eq!(applied.version, 2);
    (s, long["id"].as_str().expect("id").to_string())
}

#[tokio::test]
async fn a_migration_dry_run_reports_per_entity_and_changes_nothing() {
    let db = test_db().await;
    let (s, long) = helpdesk_with_v2(&db).await;
    let cfg = cli_config(&db);

    let before = snapshot(&db, s.tenant).await;
    let out = cli(&cfg, migrate_cmd(2, &[], true)).await;
    assert_eq!(out.code, 2, "some cannot move: {}", out.stdout);
    assert_eq!(snapshot(&db, s.tenant).await, before, "a dry run changes nothing");

    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        (report["moved"].as_u64(), report["cannot_move"].as_u64(), report["pinned"].as_u64()),
        (Some(3), Some(4), Some(1))
    );
    assert_eq!(report["dry_run"], true);
    let by_id = |id: &str| -> Value {
        report["entities"].as_array().expect("entities").iter().find(|e| e["id"] == id).expect("entity").clone()
    };
    let new = by_id(&s.sample("t_new"));
    assert_eq!((new["outcome"].as_str(), new["to_state"].as_str()), (Some("moved"), Some("NEW")));
    assert_eq!(new["filled"], json!(["category"]));
    assert_eq!(new["title"], "Printer jammed");
    assert_eq!(by_id(&s.sample("t_open2"))["outcome"], "moved");
    for key in ["t_wait1", "t_wait2", "t_wait3"] {
        let e = by_id(&s.sample(key));
        assert_eq!(e["outcome"], "cannot_move");
        assert_eq!(
            e["reasons"],
            json!(["state WAITING does not exist in version 2: map it to one of that version's states (state map WAITING=<state>)"])
        );
    }
    let e = by_id(&long);
    assert_eq!(e["outcome"], "cannot_move");
    assert!(e["reasons"][0].as_str().is_some_and(|r| r.starts_with("data does not validate: /data/notes: ")), "{e}");
    assert_eq!(by_id(&s.sample("t_closed"))["outcome"], "pinned");

    // The same as text.
    let out = cli(
        &cfg,
        TenantCommand::Migrate { slug: "helpdesk".into(), to: 2, state_map: Vec::new(), dry_run: true, json: false },
    )
    .await;
    assert_contains(
        &out.stdout,
        &[
            "Migrating tenant helpdesk to version 2 (dry run: nothing is changed).\n",
            &format!(
                "  moved        ticket {} (Printer jammed): version 1 → 2, state NEW, defaults filled: category\n",
                s.sample("t_new")
            ),
            &format!(
                "  cannot move  ticket {} (Invoice copy): state WAITING does not exist in version 2",
                s.sample("t_wait1")
            ),
            "\n1 entity in terminal states stays on its version.\n",
            "\nWould move 3 entities to version 2; 4 entities cannot move (left untouched).\n",
        ],
    );
    assert_eq!(snapshot(&db, s.tenant).await, before, "a dry run changes nothing");

    // A state map fixes the WAITING ones (dry: still nothing changes).
    let out = cli(&cfg, migrate_cmd(2, &["WAITING=OPEN"], true)).await;
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!((report["moved"].as_u64(), report["cannot_move"].as_u64()), (Some(6), Some(1)));
    assert_eq!(snapshot(&db, s.tenant).await, before);

    // Errors: no such version, a malformed state map.
    let err = execute(&cfg, migrate_cmd(7, &[], true)).await.expect_err("no version 7");
    assert!(err.to_string().contains("has no version 7"), "{err:#}");
    let err = execute(&cfg, migrate_cmd(2, &["WAITING"], false)).await.expect_err("bad map");
    assert!(err.to_string().contains("OLD=NEW"), "{err:#}");
    assert_eq!(snapshot(&db, s.tenant).await, before);
}

#[tokio::test]
async fn a_migration_moves_entities_in_one_transaction_and_leaves_the_unmovable_untouched() {
    let db = test_db().await;
    let (s, long) = helpdesk_with_v2(&db).await;
    let cfg = cli_config(&db);
    let long_before = entity_row(&db, &long).await;
    let closed_before = entity_row(&db, &s.sample("t_closed")).await;

    let out = cli(&cfg, migrate_cmd(2, &["WAITING=OPEN"], false)).await;
    assert_eq!(out.code, 2, "the long ticket cannot move: {}", out.stdout);
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        (report["moved"].as_u64(), report["cannot_move"].as_u64(), report["pinned"].as_u64()),
        (Some(6), Some(1), Some(1))
    );

    // Untouched: the one that cannot move, and the terminal one.
    assert_eq!(entity_row(&db, &long).await, long_before);
    assert_eq!(entity_row(&db, &s.sample("t_closed")).await, closed_before);

    let wait = s.sample("t_wait1");
    let row = entity_row(&db, &wait).await;
    assert_eq!(
        (row["state"].as_str(), row["config_version"].as_i64(), row["version"].as_i64()),
        (Some("OPEN"), Some(2), Some(2))
    );
    assert_eq!(row["data"]["category"], "general");
    assert_eq!(row["updated_by"], "cli");
    let rows = history(&db, &wait).await;
    let last = rows.last().expect("history");
    assert_eq!(last["transition"], "migrate");
    assert_eq!((last["from_state"].as_str(), last["to_state"].as_str()), (Some("WAITING"), Some("OPEN")));
    assert_eq!((last["actor_id"].as_str(), last["config_version"].as_i64()), (Some("cli"), Some(2)));
    assert_eq!(
        last["changes"],
        json!({ "category": { "from": null, "to": "general" }, "config_version": { "from": 1, "to": 2 } })
    );
    let open = entity_row(&db, &s.sample("t_open1")).await;
    assert_eq!((open["state"].as_str(), open["config_version"].as_i64()), (Some("OPEN"), Some(2)));

    // The moved entities run on version 2 now: `escalate` exists there.
    let agent = s.token(&db, "agent@helpdesk.test").await;
    let r = s.fire(&agent, "ticket", &wait, "escalate", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["entity"]["data"]["priority"], "urgent");
    let r = s.fire(&agent, "ticket", &long, "escalate", json!({})).await;
    assert_eq!(r.status, 409, "the long ticket is still on version 1: {:?}", r.body);

    // Again: only the unmovable one is left.
    let out = cli(&cfg, migrate_cmd(2, &["WAITING=OPEN"], false)).await;
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        (report["moved"].as_u64(), report["cannot_move"].as_u64(), report["pinned"].as_u64()),
        (Some(0), Some(1), Some(1))
    );
    assert_eq!(history(&db, &wait).await.iter().filter(|h| h["transition"] == "migrate").count(), 1);
}

#[tokio::test]
async fn an_export_re_applies_to_the_same_version() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let cfg = cli_config(&db);
    let live_hash: String =
        sqlx::query_scalar("select v.hash from config_versions v join tenants t on t.id = v.tenant_id and v.version = t.live_version where t.id = $1")
            .bind(s.tenant)
            .fetch_one(&db.owner)
            .await
            .expect("live hash");
    assert_eq!(live_hash, package("chemichemi").hash());

    let dir = temp_dir("export");
    let out =
        cli(&cfg, TenantCommand::Export { slug: "chemichemi".into(), dir: dir.clone(), version: None, force: false })
            .await;
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("chemichemi: version 1 (hash "), "{}", out.stdout);
    assert!(dir.join("tenant.yaml").is_file() && dir.join("types/order.yaml").is_file());
    assert!(!dir.join("data").exists(), "no sample data");
    let exported = Package::load_dir(&dir).expect("the export loads");
    assert_eq!(exported.hash(), live_hash);
    assert!(!tenants::validate::validate_dir(&dir, &Limits::default()).has_errors());

    // Publishing it creates no new version, through the library and the CLI.
    let applied = tenants::apply::publish(&db.owner, &exported, "test", &Limits::default()).await.expect("publish");
    assert_eq!((applied.version, applied.new_version), (1, false));
    let out = cli(&cfg, TenantCommand::Apply { dir: dir.clone(), skip_tests: false, comment: None }).await;
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
    assert!(out.stdout.contains("chemichemi: version 1 (hash "), "{}", out.stdout);
    let count: i64 = sqlx::query_scalar("select count(*) from config_versions where tenant_id = $1")
        .bind(s.tenant)
        .fetch_one(&db.owner)
        .await
        .expect("count");
    assert_eq!(count, 1);

    // A folder that holds a package is not overwritten without --force.
    let err = execute(
        &cfg,
        TenantCommand::Export { slug: "chemichemi".into(), dir: dir.clone(), version: None, force: false },
    )
    .await
    .expect_err("not empty");
    assert!(err.to_string().contains("--force"), "{err:#}");
    cli(&cfg, TenantCommand::Export { slug: "chemichemi".into(), dir: dir.clone(), version: Some(1), force: true })
        .await;
    assert_eq!(Package::load_dir(&dir).expect("loads").hash(), live_hash);
    std::fs::remove_dir_all(&dir).expect("cleanup");
    let err =
        execute(&cfg, TenantCommand::Export { slug: "nobody".into(), dir: temp_dir("x"), version: None, force: false })
            .await
            .expect_err("no tenant");
    assert!(err.to_string().contains("no tenant `nobody`"), "{err:#}");

    // Over HTTP, the export is the same package.
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let r = s.get("config/export", &admin).await;
    assert_eq!(r.status, 200);
    assert_eq!(Package::from_json(&r.body).expect("package").hash(), live_hash);
}

/// States moved in the studio's designer: the plan says so in one line, apply publishes a new
/// version, and the export writes the positions back.
#[tokio::test]
async fn a_layout_change_is_planned_published_and_exported() {
    let db = test_db().await;
    let s = TestServer::start(&db, "config-base").await;
    let admin = s.token(&db, "admin@helpdesk.test").await;
    let base = package("config-base");
    let mut moved = base.to_json();
    let ticket = base.types.iter().position(|t| t.name.as_str() == "ticket").expect("ticket");
    let states = moved["types"][ticket]["workflow"]["states"].as_object_mut().expect("states");
    let count = states.len();
    for (i, state) in states.values_mut().enumerate() {
        state["position"] = json!({ "x": 200 * i, "y": 40.5 });
    }

    let r = s.post("config/plan", &admin, &moved).await;
    assert_eq!((r.status, &r.body["changed"]), (200, &json!(true)), "{:?}", r.body);
    let text = r.body["text"].as_str().expect("text");
    assert!(text.contains(&format!("~ type ticket\n  ~ layout: positions of {count} states\n")), "{text}");
    assert!(text.contains("No live entity is affected."), "{text}");
    let r = s.post("config/apply", &admin, &moved).await;
    assert_eq!((r.status, r.body["version"].as_i64()), (201, Some(2)), "{:?}", r.body);

    let dir = temp_dir("layout");
    let out = cli(
        &cli_config(&db),
        TenantCommand::Export { slug: s.slug.clone(), dir: dir.clone(), version: None, force: false },
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let yaml = std::fs::read_to_string(dir.join("types/ticket.yaml")).expect("ticket.yaml");
    assert_eq!(yaml.matches("position:").count(), count, "{yaml}");
    let exported = Package::load_dir(&dir).expect("the export loads");
    assert_eq!(exported.hash(), Package::from_json(&moved).expect("package").hash());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn the_config_endpoints_are_for_admins() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let package = package("chemichemi").to_json();
    for email in ["manager@chemichemi.test", "viewer@chemichemi.test"] {
        let token = s.token(&db, email).await;
        for path in ["config/validate", "config/plan", "config/apply"] {
            let r = s.post(path, &token, &package).await;
            assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{email} {path}: {:?}", r.body);
            // Even with a body that is not a package: the role is checked first.
            let r = s.post(path, &token, &json!("nonsense")).await;
            assert_eq!(r.status, 403, "{email} {path}");
        }
        for path in ["config/versions", "config/versions/1", "config/export"] {
            let r = s.get(path, &token).await;
            assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{email} {path}: {:?}", r.body);
        }
    }
    let r = s.request(reqwest::Method::GET, &s.url("config/versions"), None, None, &[]).await;
    assert_eq!(r.status, 401);
    let foreign = s.foreign_token(uuid::Uuid::now_v7(), "elsewhere", &["admin".to_string()]);
    assert_eq!(s.get("config/versions", &foreign).await.status, 403);
    for path in ["config/versions", "config/versions/1", "config/export"] {
        assert_eq!(s.get(path, &admin).await.status, 200, "{path}");
    }
    assert_eq!(s.post("config/plan", &admin, &package).await.status, 200);
}

#[tokio::test]
async fn types_describe_schema_and_workflow_to_every_user() {
    let db = test_db().await;
    let s = TestServer::start(&db, "chemichemi").await;
    let viewer = s.token(&db, "viewer@chemichemi.test").await;
    let package = package("chemichemi");

    let r = s.get("types", &viewer).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["version"], 1);
    let names: Vec<&str> = r.body["data"].as_array().expect("data").iter().filter_map(|t| t["name"].as_str()).collect();
    let expected: Vec<&str> = package.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, expected, "definition order");

    let order = r.body["data"].as_array().expect("data").iter().find(|t| t["name"] == "order").expect("order").clone();
    assert_eq!(order["label"], "Order");
    // What the viewer may do: view only (the studio offers no create or export).
    assert_eq!(order["actions"], json!(["view"]));
    let admin = s.token(&db, "admin@chemichemi.test").await;
    let r = s.get("types/order", &admin).await;
    assert_eq!(r.body["actions"], json!(["view", "create", "edit", "delete", "export"]));
    let warehouse = s.token(&db, "warehouse@chemichemi.test").await;
    let actions = s.get("types/order", &warehouse).await.body["actions"].clone();
    assert!(!actions.as_array().expect("actions").contains(&json!("export")), "{actions}");
    assert_eq!(order["schema"]["type"], "object");
    assert!(order["schema"]["properties"]["customer_id"].is_object(), "{}", order["schema"]);
    assert!(order["schema"]["required"].as_array().expect("required").contains(&json!("customer_id")));
    let states = order["workflow"]["states"].as_array().expect("states");
    assert_eq!(
        (&states[0]["name"], &states[0]["kind"], &states[0]["label"]),
        (&json!("DRAFT"), &json!("initial"), &json!("Draft"))
    );
    assert_eq!(states[0]["editable"]["roles"], json!(["sales", "manager", "admin"]));
    assert!(states[0]["editable"]["fields"].as_array().expect("fields").contains(&json!("notes")));
    assert_eq!(
        states[1],
        json!({ "name": "PENDING_APPROVAL", "kind": "active", "label": "Pending approval",
                "editable": { "fields": ["requested_delivery_date", "notes"], "roles": ["sales", "manager", "admin"] } })
    );
    assert!(states
        .iter()
        .any(|s| s == &json!({ "name": "CANCELLED", "kind": "terminal", "label": "Cancelled", "editable": null })));
    let transitions = order["workflow"]["transitions"].as_array().expect("transitions");
    // The create transition (placeOrder) comes first, with no `from`.
    assert_eq!((&transitions[0]["name"], &transitions[0]["create"]), (&json!("placeOrder"), &json!(true)));
    assert_eq!(transitions[0]["from"], json!([]));
    let submit = &transitions[1];
    let def: Value =
        package.types.iter().find(|t| t.name.as_str() == "order").and_then(|t| t.workflow.clone()).expect("workflow");
    assert_eq!(submit["name"], "submitOrder");
    assert_eq!(submit["from"], json!(["DRAFT"]));
    assert_eq!(submit["to"], "PENDING_APPROVAL");
    assert_eq!(submit["roles"], def["transitions"]["submitOrder"]["roles"]);
    // Guards as written (a named rule stays a reference to it).
    assert_eq!(submit["guards"], def["transitions"]["submitOrder"]["guards"]);
    assert_eq!(submit["guards"][0]["message"], "An order needs at least one line item");
    assert!(submit["events"].as_array().expect("events").contains(&json!("order.submitted")));
    let reject = transitions.iter().find(|t| t["name"] == "rejectOrder").expect("rejectOrder");
    assert_eq!(reject["input_schema"]["required"], json!(["reason"]));
    assert_eq!(
        transitions.iter().filter_map(|t| t["name"].as_str()).collect::<Vec<_>>(),
        def["transitions"].as_object().expect("transitions").keys().map(String::as_str).collect::<Vec<_>>(),
        "definition order"
    );

    let one = s.get("types/order", &viewer).await;
    assert_eq!((one.status, &one.body), (200, &order));
    let r = s.get("types/nope", &viewer).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"));
}
