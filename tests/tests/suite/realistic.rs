//! The realistic mix's load generator (issue 14, part 1; docs/benchmarks.md, "The realistic
//! mix") run for a few seconds, so that it cannot rot: chemichemi applied as two tenants, a real
//! `switchyard serve` process (the binary the workspace built, next to this test's) on the test
//! database, two clients running order lives over HTTP. What must hold: lives complete (created,
//! submitted, approved, allocated, dispatched and delivered through a trip), the credit check
//! refuses roughly the tight customers' share of the approvals, and nothing else is refused —
//! no 5xx, no unexpected 4xx. Nothing about time is asserted: the figures are the benchmark's
//! (`make bench-realistic`).

use std::path::PathBuf;
use std::time::Duration;

use engine::limits::Limits;
use engine::store::Store;
use switchyard_bench::realistic::{chemichemi_dir, load, world, ServerEnv, ServerProcess};
use switchyard_tests::test_db;

/// `SWITCHYARD_BIN`, else the `switchyard` binary of this test's target folder (the test binary
/// is `target/<profile>/deps/suite-…`; cargo builds the api crate's binary there for its own
/// integration tests).
fn switchyard_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHYARD_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    profile.join("switchyard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_lives_complete_against_a_real_server() {
    let db = test_db().await;
    let store = Store::new(db.app.clone(), Limits::default());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let package = world::package(&chemichemi_dir(&root), 20).expect("the chemichemi package");
    let tenants = world::apply(&db.owner, &store, &package, 2).await.expect("applying two tenants");
    assert_eq!(tenants.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(), ["chem01", "chem02"]);
    assert!(tenants.iter().all(|t| t.customers.len() == 18 && t.tight.len() == 2), "1 customer in 10 is tight");

    let home = std::env::temp_dir().join(format!("switchyard-realistic-{}", uuid::Uuid::new_v4().simple()));
    let secret = format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let env = ServerEnv {
        bin: switchyard_bin(),
        database_url: db.owner_url.clone(),
        app_database_url: db.app_url.clone(),
        jwt_secret: secret.clone(),
        home: home.join("home"),
        log: home.join("serve.log"),
        settings: Vec::new(),
    };
    let server = ServerProcess::start(&env).await.expect("switchyard serve");
    let keys = api::auth::Keys::from_secrets(&[secret.as_bytes()]).expect("keys");
    let settings = load::Settings {
        clients: 2,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(4),
        seed: 7,
        progress: false,
    };
    let mix = load::run(server.addr, &keys, &tenants, &settings).await;
    server.stop().await.expect("stopping the server");
    let log = std::fs::read_to_string(&env.log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&home);
    let mix = mix.expect("the mix ran");

    let what = format!("errors {:?}, samples {:?}, lives {:?}\nserver log:\n{log}", mix.errors, mix.samples, mix.lives);
    assert_eq!(mix.server_errors(), 0, "no 5xx: {what}");
    assert_eq!(mix.unexpected_errors(), 0, "nothing refused but the credit check's refusals: {what}");
    assert!(mix.lives.get("delivered").copied().unwrap_or(0) > 0, "order lives delivered: {what}");
    assert!(mix.approvals >= 2, "approvals: {what}");
    let share = mix.refused_approvals as f64 / mix.approvals as f64;
    assert!(
        mix.refused_approvals > 0 && share <= 0.5,
        "the credit check refuses about one approval in ten ({} of {}): {what}",
        mix.refused_approvals,
        mix.approvals
    );
    let rejected = mix.lives.get("rejected").copied().unwrap_or(0);
    assert!(rejected <= mix.refused_approvals, "a rejected life follows a refused approval: {what}");
    for op in
        [load::Op::Create, load::Op::Submit, load::Op::Approve, load::Op::Allocate, load::Op::List, load::Op::Detail]
    {
        assert!(mix.ops.get(&op).is_some_and(|s| s.count > 0), "{} ran: {what}", op.name());
    }
}
