//! Journals for tests: a fresh one per engine available, and helpers to send
//! deliveries with a GUID of their own and to wait for the journal to settle.

use crate::{SECRET, client};
use hookserver::{DeliveryState, Journal, JournalEntry, ListFilter};
use std::{
    path::PathBuf,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// A fresh, empty journal, deleted when dropped.
pub struct TestJournal {
    /// What `Config::journal` takes.
    pub url: String,
    /// The engine's name, for assertion messages.
    pub engine: &'static str,
    dir: Option<PathBuf>,
}

impl Drop for TestJournal {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A new directory under the system's temp dir, unique to this process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "hookserver-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A fresh SQLite journal in a temp dir.
pub fn sqlite() -> TestJournal {
    let dir = temp_dir("journal");
    TestJournal {
        url: format!("sqlite:{}", dir.join("journal.db").display()),
        engine: "sqlite",
        dir: Some(dir),
    }
}

impl TestJournal {
    /// The database file of a SQLite journal.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.url.strip_prefix("sqlite:").map(PathBuf::from)
    }
}

/// The PostgreSQL server of the tests (`HOOKSERVER_TEST_POSTGRES`, set by
/// `scripts/postgres.sh`). Without it: `None` with a printed notice, or a panic
/// when `CI=true` (CI never skips the PostgreSQL tests silently).
pub fn postgres_url() -> Option<String> {
    match std::env::var("HOOKSERVER_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but HOOKSERVER_TEST_POSTGRES is not set: run scripts/test.sh")
        }
        _ => {
            eprintln!(
                "NOTICE: PostgreSQL tests skipped: HOOKSERVER_TEST_POSTGRES is not set \
                 (scripts/test.sh starts a server and sets it)"
            );
            None
        }
    }
}

/// A fresh PostgreSQL journal: a schema of its own in the test database, made the
/// search path by the URL's `options`. `None` as [`postgres_url`] says.
pub fn postgres() -> Option<TestJournal> {
    let base = postgres_url()?;
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "hookserver_test_{}_{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    );
    run_sql(&base, &format!("CREATE SCHEMA {schema}"));
    let join = if base.contains('?') { '&' } else { '?' };
    Some(TestJournal {
        url: format!("{base}{join}options=-csearch_path%3D{schema}"),
        engine: "postgres",
        dir: None,
    })
}

/// Runs `sql` on the database at `url`, from a thread of its own (callable from
/// sync code and from inside a runtime alike).
pub fn run_sql(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test PostgreSQL");
            let driver = tokio::spawn(connection);
            client.batch_execute(&sql).await.expect(&sql);
            drop(client);
            let _ = driver.await;
        })
    })
    .join()
    .expect("run_sql");
}

/// One fresh journal per engine the semantics tests run against: the same test
/// body runs on each.
pub fn journals() -> Vec<TestJournal> {
    let mut all = vec![sqlite()];
    all.extend(postgres());
    all
}

/// A signed JSON delivery with its own GUID and hook id.
pub fn delivery_with(
    url: &str,
    event: &str,
    guid: &str,
    hook_id: Option<&str>,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let mut delivery = hookserver::test::delivery(event)
        .guid(guid)
        .user_agent("GitHub-Hookshot/044aadd")
        .payload_bytes(body.to_vec())
        .secret(SECRET);
    if let Some(hook_id) = hook_id {
        delivery = delivery.hook_id(hook_id.parse().expect("a numeric hook id"));
    }
    let (headers, body) = delivery.headers_and_body();
    client().post(url).headers(headers).body(body)
}

/// Sends a delivery and returns its status, `Retry-After` and body.
pub async fn post(
    url: &str,
    event: &str,
    guid: &str,
    hook_id: Option<&str>,
    body: &[u8],
) -> (u16, Option<String>, String) {
    let response = delivery_with(url, event, guid, hook_id, body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (status, retry_after, response.text().await.expect("body"))
}

/// Polls `journal` until `done` holds for its entries (checked every 20 ms, for at
/// most `within`), and returns them; panics with the last listing otherwise.
pub async fn wait_for(
    journal: &Journal,
    within: Duration,
    what: &str,
    done: impl Fn(&[JournalEntry]) -> bool,
) -> Vec<JournalEntry> {
    let deadline = Instant::now() + within;
    loop {
        let entries = journal.list(ListFilter::new()).await.expect("list");
        if done(&entries) {
            return entries;
        }
        if Instant::now() > deadline {
            panic!("journal never got to: {what}; it holds {entries:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The entry for `guid` (and `hook_id`), if any.
pub fn entry<'a>(
    entries: &'a [JournalEntry],
    guid: &str,
    hook_id: Option<u64>,
) -> Option<&'a JournalEntry> {
    entries
        .iter()
        .find(|e| e.guid == guid && e.hook_id == hook_id)
}

/// Whether every entry is in `state`.
pub fn all_in(entries: &[JournalEntry], state: DeliveryState) -> bool {
    !entries.is_empty() && entries.iter().all(|e| e.state == state)
}

/// Runs `pg_ctl ACTION` on the test PostgreSQL (`HOOKSERVER_TEST_POSTGRES_CTL`, as
/// its owner `HOOKSERVER_TEST_POSTGRES_USER`, both set by `scripts/postgres.sh`).
/// `None` when the tests were given a server of someone else's (no way to stop it).
pub fn postgres_ctl(action: &str) -> Option<()> {
    let ctl = std::env::var("HOOKSERVER_TEST_POSTGRES_CTL").ok()?;
    let command = format!("{ctl} -w -t 60 {action}");
    let mut run = match std::env::var("HOOKSERVER_TEST_POSTGRES_USER") {
        Ok(user) if std::env::var("USER").ok().as_deref() != Some(user.as_str()) => {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", &user, "--", "sh", "-c", &command]);
            c
        }
        _ => {
            let mut c = std::process::Command::new("sh");
            c.args(["-c", &command]);
            c
        }
    };
    let status = run
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run pg_ctl");
    assert!(status.success(), "{command}: {status}");
    Some(())
}
