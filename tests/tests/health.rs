//! `/health` and `/ready` over real HTTP: liveness always, readiness while the
//! allow-list is missing and while the journal cannot be written, and back.

use hookserver::{Config, Hooks};
use serde_json::Value;
use std::time::{Duration, Instant};
use tests::{GithubStandIn, Reply, SECRET, TestServer, client};

/// GitHub's hook ranges as the stand-in serves them: loopback, so the test's own
/// deliveries would pass.
const LOOPBACK: &[&str] = &["127.0.0.0/8"];

/// Generous: a loaded machine, a probe that waits out SQLite's 4 s busy timeout.
const DEADLINE: Duration = Duration::from_secs(60);

async fn get(url: &str) -> (u16, String, Value) {
    let response = client().get(url).send().await.expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    let text = response.text().await.expect("body read");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, content_type, json)
}

/// Polls `url` until `done` holds of its answer, and returns that answer.
async fn until(url: &str, what: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let (status, _, body) = get(url).await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: still {status} {body} after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn serve(hooks: Hooks) -> TestServer {
    let health = hooks.health_routes("/health", "/ready");
    TestServer::start(hooks.router("/hooks").merge(health)).await
}

fn base(s: &TestServer) -> String {
    s.url().trim_end_matches("/hooks").to_owned()
}

#[tokio::test]
async fn ready_with_ip_checking_off_and_health_always() {
    let s = serve(Hooks::new(tests::config())).await;
    let (status, content_type, body) = get(&format!("{}/health", base(&s))).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    let (status, _, body) = get(&format!("{}/ready", base(&s))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "allow_list": "off", "journal": "off"})
    );
}

#[tokio::test]
async fn a_fixed_allow_list_is_always_ready() {
    let config = Config::new()
        .secret(SECRET)
        .allowed_ips(["127.0.0.0/8".parse().expect("CIDR")]);
    let s = serve(Hooks::new(config)).await;
    let (status, _, body) = get(&format!("{}/ready", base(&s))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allow_list"], "static");
}

#[tokio::test]
async fn not_ready_while_meta_fails_then_ready_once_it_answers() {
    let github = GithubStandIn::start(Reply::raw(500, &[], "down")).await;
    let config = Config::new().secret(SECRET).github_api_url(&github.url);
    let s = serve(Hooks::new(config)).await;
    let ready = format!("{}/ready", base(&s));
    let health = format!("{}/health", base(&s));
    // The first probe starts the fetch; it fails.
    let (_, body) = until(&ready, "the failed fetch reported", |status, body| {
        status == 503 && body.get("allow_list_last_refresh").is_some()
    })
    .await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["allow_list"], "no list yet: Error reaching GitHub");
    assert!(body["allow_list_since"].is_string(), "{body}");
    assert!(body["allow_list_last_refresh_at"].is_string(), "{body}");
    assert!(
        body["allow_list_last_refresh"]
            .as_str()
            .is_some_and(|r| r.starts_with("failed: ") && r.contains("500")),
        "{body}"
    );
    assert!(body.get("allow_list_age_secs").is_none(), "{body}");
    assert_eq!(body["journal"], "off");
    assert_eq!(get(&health).await.0, 200, "alive while not ready");
    // GitHub answers: ready once the back-off lets the next request go.
    github.set(Reply::ranges(LOOPBACK));
    let (_, body) = until(&ready, "ready once /meta answers", |status, _| {
        status == 200
    })
    .await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["allow_list"], "ok");
    assert_eq!(body["allow_list_last_refresh"], "ok");
    assert!(
        body["allow_list_age_secs"]
            .as_u64()
            .is_some_and(|age| age < 60),
        "{body}"
    );
    assert!(body.get("allow_list_since").is_none(), "{body}");
    assert_eq!(get(&health).await.0, 200);
}

#[tokio::test]
async fn not_ready_while_another_connection_holds_the_journals_write_lock() {
    let journal = tests::journal::sqlite();
    let path = journal.sqlite_path().expect("a SQLite journal");
    let s = serve(Hooks::new(tests::config().journal(&journal.url))).await;
    let ready = format!("{}/ready", base(&s));
    let (status, _, body) = get(&ready).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["journal"], "ok");
    // Another process (here, connection) takes the write lock and keeps it.
    let other = rusqlite::Connection::open(&path).expect("open the journal");
    other.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let (_, body) = until(&ready, "the locked journal reported", |status, _| {
        status == 503
    })
    .await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["allow_list"], "off");
    let why = body["journal"].as_str().expect("journal is a string");
    assert!(
        why.starts_with("journal unavailable") && why.contains("locked"),
        "{body}"
    );
    assert!(body["journal_since"].is_string(), "{body}");
    assert_eq!(get(&format!("{}/health", base(&s))).await.0, 200);
    other.execute_batch("COMMIT").expect("lock released");
    let (_, body) = until(&ready, "ready once the lock is released", |status, _| {
        status == 200
    })
    .await;
    assert_eq!(body["journal"], "ok");
    assert!(body.get("journal_since").is_none(), "{body}");
}

#[tokio::test]
async fn ready_with_a_journal_on_every_engine() {
    for journal in tests::journal::journals() {
        let s = serve(Hooks::new(tests::config().journal(&journal.url))).await;
        let (status, _, body) = get(&format!("{}/ready", base(&s))).await;
        assert_eq!(status, 200, "{}: {body}", journal.engine);
        assert_eq!(body["journal"], "ok", "{}: {body}", journal.engine);
    }
}
