//! `switchyard tenant test`: a package's own scenarios (`tests/*.yaml`) run with the production
//! engine and API on a throwaway database; `apply` refuses a package whose tests fail unless
//! `--skip-tests`, and the version records what its tests said.

use std::path::{Path, PathBuf};

use api::cli::tenant::{execute, CliError, Output, TenantCommand};
use api::config::Config;
use switchyard_tests::server::package_dir;
use switchyard_tests::{test_db, TestDb};

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

/// A private folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("switchyard-package-tests-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of the fulfilment example in a private folder, to break.
fn copy_of_fulfilment() -> (TempDir, PathBuf) {
    let tmp = TempDir::new();
    let dir = tmp.0.join("fulfilment");
    copy_dir(&package_dir("fulfilment"), &dir);
    (tmp, dir)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The throwaway databases of this process (`Scratch` names them after it).
async fn databases(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar("select datname::text from pg_database where datname like $1")
        .bind(format!("switchyard_test_{}_%", std::process::id()))
        .fetch_all(&db.owner)
        .await
        .expect("databases")
}

#[tokio::test]
async fn the_fulfilment_examples_tests_pass_and_write_junit_on_a_database_dropped_afterwards() {
    let db = test_db().await;
    let cfg = cli_config(&db);
    let tmp = TempDir::new();
    let junit = tmp.0.join("junit.xml");
    let out =
        cli(&cfg, TenantCommand::Test { dir: package_dir("fulfilment"), junit: Some(junit.clone()), generate: false })
            .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    let scenarios = out.stdout.lines().filter(|l| l.trim_start().starts_with("ok ")).count();
    assert!(scenarios >= 6, "{}", out.stdout);
    assert!(out.stdout.contains(&format!("{scenarios} scenario(s): {scenarios} passed, 0 failed")), "{}", out.stdout);
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains(&format!("tests=\"{scenarios}\" failures=\"0\"")), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), scenarios, "{xml}");
    // The throwaway database is gone; the test's own database holds no tenant.
    assert_eq!(databases(&db).await, Vec::<String>::new());
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants").fetch_one(&db.owner).await.expect("count");
    assert_eq!(tenants, 0);
}

#[tokio::test]
async fn a_failing_test_fails_the_run_names_its_step_and_stops_apply_unless_skipped() {
    let db = test_db().await;
    let cfg = cli_config(&db);
    let (_tmp, dir) = copy_of_fulfilment();
    let shipments = dir.join("tests/shipments.yaml");
    let text = std::fs::read_to_string(&shipments).expect("read");
    let broken = text.replace(
        "data: { cod_collected: \"3250.00\", pod_reference: SIG-1 }",
        "data: { cod_collected: \"3000.00\", pod_reference: SIG-1 }",
    );
    assert_ne!(text, broken, "the expectation to break is in the file");
    std::fs::write(&shipments, broken).expect("write");

    let out = cli(&cfg, TenantCommand::Test { dir: dir.clone(), junit: None, generate: false }).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("FAIL  A COD shipment is charged to its client")
            && out.stdout.contains("step 6 (transition deliver on @zuri_to_nakuru as ops@pwani.test): data/cod_collected: expected \"3000.00\", got \"3250.00\""),
        "{}",
        out.stdout
    );

    // Apply refuses it and publishes nothing; plan says so too.
    let plan = cli(&cfg, TenantCommand::Plan { dir: dir.clone(), tenant: None, json: false, skip_tests: false }).await;
    assert_eq!(plan.code, 1, "{}", plan.stdout);
    assert!(plan.stdout.contains("The package's tests fail"), "{}", plan.stdout);
    let err = execute(&cfg, TenantCommand::Apply { dir: dir.clone(), skip_tests: false, comment: None })
        .await
        .expect_err("refused");
    assert!(matches!(err, CliError::TestsFailed(_)), "{err}");
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants").fetch_one(&db.owner).await.expect("count");
    assert_eq!(tenants, 0, "nothing was published");

    // --skip-tests publishes, and the version says its tests were skipped.
    let out = cli(&cfg, TenantCommand::Apply { dir: dir.clone(), skip_tests: true, comment: None }).await;
    assert!(out.stdout.contains("Tests: skipped (--skip-tests)"), "{}", out.stdout);
    let recorded: serde_json::Value =
        sqlx::query_scalar("select tests from config_versions").fetch_one(&db.owner).await.expect("version");
    assert_eq!(recorded, serde_json::json!({ "passed": 0, "failed": 0, "skipped": true }));
}

#[tokio::test]
async fn apply_runs_the_tests_first_and_records_them_and_generate_writes_skeletons_that_validate() {
    let db = test_db().await;
    let cfg = cli_config(&db);
    let (_tmp, dir) = copy_of_fulfilment();
    let out = cli(&cfg, TenantCommand::Apply { dir: dir.clone(), skip_tests: false, comment: None }).await;
    assert!(out.stdout.contains("passed, 0 failed") && out.stdout.contains("published and live"), "{}", out.stdout);
    let recorded: serde_json::Value =
        sqlx::query_scalar("select tests from config_versions").fetch_one(&db.owner).await.expect("version");
    assert_eq!(recorded["failed"], 0);
    assert_eq!(recorded["skipped"], false);
    assert!(recorded["passed"].as_u64().is_some_and(|n| n >= 6), "{recorded}");

    // Skeletons: one file per type with a workflow, never over an existing one, and they validate.
    std::fs::write(dir.join("tests/ndr.generated.yaml"), "scenarios: []\n").expect("write");
    let out = cli(&cfg, TenantCommand::Test { dir: dir.clone(), junit: None, generate: true }).await;
    assert!(out.stdout.contains("kept") && out.stdout.contains("ndr.generated.yaml (it exists)"), "{}", out.stdout);
    let written = std::fs::read_to_string(dir.join("tests/shipment.generated.yaml")).expect("generated");
    for transition in [
        "dispatch",
        "outForDelivery",
        "deliver",
        "reportNonDelivery",
        "reattempt",
        "returnToOrigin",
        "receiveRto",
        "cancel",
    ] {
        assert!(written.contains(&format!("  - name: shipment {transition} from ")), "{transition}: {written}");
    }
    assert!(written.contains("message: \"The freight would take the client over its credit limit\""), "{written}");
    assert!(written.contains("on: \"@zuri_to_nakuru\""), "a sample row starts the paths: {written}");
    let report = tenants::validate::validate_dir(&dir, &engine::limits::Limits::default());
    assert!(!report.has_errors(), "{:?}", report.errors().collect::<Vec<_>>());
}

/// Every example ships tests that pass and fire every transition of its workflows (issue 13): a
/// change to the engine that breaks an example's behaviour fails here, with the scenario named.
#[tokio::test]
async fn every_examples_own_tests_pass_and_fire_every_transition() {
    let db = test_db().await;
    let cfg = cli_config(&db);
    for example in ["change-control", "chemichemi"] {
        let out = cli(&cfg, TenantCommand::Test { dir: package_dir(example), junit: None, generate: false }).await;
        assert_eq!(out.code, 0, "{example}:\n{}", out.stdout);
        let last = out.stdout.lines().last().unwrap_or_default();
        assert!(last.starts_with("Transitions fired: all "), "{example}: {last}");
    }
}
