//! The engines' semantics, one test body for both: every test runs against SQLite
//! (a file of its own) and PostgreSQL (a schema of its own in the database of
//! `HOOKSERVER_TEST_POSTGRES`, which `scripts/postgres.sh` starts). Without that
//! variable the PostgreSQL half is skipped with a notice, or fails when `CI=true`.
//! Times are chosen by the test (the trait takes "now"), so leases and retries are
//! exact, never slept for.

#![allow(clippy::unwrap_used)]

use super::{
    DeliveryState, ListFilter, ReplayOutcome,
    settings::Engine,
    store::{AttemptRecord, Claim, Claimed, Finish, Inserted, NewEntry, Store},
    workers,
};
use bytes::Bytes;
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// A fixed "now" for the tests, in Unix milliseconds.
pub(super) const T0: i64 = 1_700_000_000_000;
const LEASE: i64 = 60_000;

/// One engine's journal for one test: open as many handles on it as a test needs
/// (two handles are two instances).
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    url: String,
}

impl Backend {
    pub(crate) fn open(&self) -> Arc<dyn Store> {
        Engine::parse(&self.url)
            .unwrap()
            .open(4)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The PostgreSQL URL the tests use, if any; fails under CI without one.
pub(crate) fn postgres_url() -> Option<String> {
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

/// A fresh schema in the test database, and the URL that makes it the search path.
pub(crate) async fn fresh_schema(base: &str, test: &str) -> String {
    let schema = format!(
        "t_{}_{}_{}",
        test,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    drop(client);
    drop(driver.await);
    let join = if base.contains('?') { '&' } else { '?' };
    format!("{base}{join}options=-csearch_path%3D{schema}")
}

async fn backends(test: &str) -> Vec<Backend> {
    let dir = std::env::temp_dir().join(format!(
        "hookserver-engine-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = vec![Backend {
        name: "sqlite",
        url: format!("sqlite:{}", dir.join("journal.db").display()),
    }];
    if let Some(base) = postgres_url() {
        all.push(Backend {
            name: "postgres",
            url: fresh_schema(&base, test).await,
        });
    }
    all
}

/// Runs `body` against every engine.
pub(super) async fn each_backend(test: &str, body: impl AsyncFn(&Backend)) {
    for backend in backends(test).await {
        eprintln!("{test}: {}", backend.name);
        body(&backend).await;
    }
}

pub(super) fn entry(hook: &str, guid: &str, now: i64) -> NewEntry {
    NewEntry {
        hook_id: hook.into(),
        guid: guid.into(),
        event: "push".into(),
        action: None,
        received_at: now,
        client_ip: Some("192.0.2.1".into()),
        headers: b"x-github-event: push\nx-github-delivery: g\n".to_vec(),
        body: Bytes::from_static(b"{\"zen\":\"hi\"}"),
        handled: true,
        claim_until: None,
        max_pending: 1000,
    }
}

fn record(status: u16) -> AttemptRecord {
    AttemptRecord {
        status: Some(status),
        error: (status >= 500).then(|| "failed\0with a NUL".to_owned()),
        duration_ms: 3,
    }
}

fn claim_of(c: &Claimed) -> Claim {
    Claim {
        id: c.id,
        attempt: c.attempts,
    }
}

async fn state_of(store: &dyn Store, guid: &str) -> DeliveryState {
    let shown = store.show(guid.into()).await.unwrap();
    assert_eq!(shown.len(), 1, "{guid}");
    shown[0].entry.state
}

/// Claims exactly the rows due, and finishes each with `finish`.
async fn claim_and_finish(store: &dyn Store, now: i64, finish: Finish) -> usize {
    let claims = store.claim(100, now, now + LEASE).await.unwrap();
    for c in &claims.claimed {
        store
            .finish(claim_of(c), finish.clone(), record(200), now)
            .await
            .unwrap();
    }
    claims.claimed.len()
}

#[tokio::test]
async fn dedupe_outcomes() {
    each_backend("dedupe", async |backend| {
        let store = backend.open();
        let store = &*store;
        let first = store.insert(entry("1", "g-1", T0)).await.unwrap();
        assert!(
            matches!(first, Inserted::New { claimed: false, .. }),
            "{first:?}"
        );
        // Queued: not queued twice.
        assert_eq!(
            store.insert(entry("1", "g-1", T0)).await.unwrap(),
            Inserted::AlreadyQueued
        );
        // The GUID alone is not the key: another hook, or no hook id, is another row.
        assert!(matches!(
            store.insert(entry("2", "g-1", T0)).await.unwrap(),
            Inserted::New { .. }
        ));
        assert!(matches!(
            store.insert(entry("", "g-1", T0)).await.unwrap(),
            Inserted::New { .. }
        ));
        // Running: still not queued twice.
        assert_eq!(
            store.claim(10, T0, T0 + LEASE).await.unwrap().claimed.len(),
            3
        );
        assert_eq!(
            store.insert(entry("1", "g-1", T0)).await.unwrap(),
            Inserted::AlreadyQueued
        );
        // Done: a duplicate.
        let done = Finish::Done;
        let shown = store.show("g-1".into()).await.unwrap();
        for s in &shown {
            let claim = Claim {
                id: s.entry.id,
                attempt: 1,
            };
            let finish = if s.entry.hook_id == Some(2) {
                Finish::Dead
            } else {
                done.clone()
            };
            store.finish(claim, finish, record(200), T0).await.unwrap();
        }
        assert_eq!(
            store.insert(entry("1", "g-1", T0)).await.unwrap(),
            Inserted::Duplicate
        );
        // Dead: queued again with its attempts reset.
        let again = store.insert(entry("2", "g-1", T0 + 1)).await.unwrap();
        assert!(
            matches!(again, Inserted::QueuedAgain { claimed: false, .. }),
            "{again:?}"
        );
        let row = store.show("g-1".into()).await.unwrap();
        let row = row.iter().find(|s| s.entry.hook_id == Some(2)).unwrap();
        assert_eq!(
            (row.entry.state, row.entry.attempts),
            (DeliveryState::Queued, 0)
        );
        assert_eq!(row.entry.finished_at, None);

        // No handler: recorded as unhandled, and again unhandled.
        let mut unhandled = entry("1", "g-u", T0);
        unhandled.handled = false;
        assert_eq!(
            store.insert(unhandled.clone()).await.unwrap(),
            Inserted::Unhandled
        );
        assert_eq!(store.insert(unhandled).await.unwrap(), Inserted::Unhandled);
        assert_eq!(state_of(store, "g-u").await, DeliveryState::Unhandled);
        // A handler now exists: queued again.
        let handled = store.insert(entry("1", "g-u", T0)).await.unwrap();
        assert!(
            matches!(handled, Inserted::QueuedAgain { .. }),
            "{handled:?}"
        );

        // Claimed on insert: running, attempt 1, not claimable by the workers.
        let mut now = entry("1", "g-now", T0);
        now.claim_until = Some(T0 + LEASE);
        let inserted = store.insert(now).await.unwrap();
        assert!(
            matches!(inserted, Inserted::New { claimed: true, .. }),
            "{inserted:?}"
        );
        let shown = store.show("g-now".into()).await.unwrap();
        assert_eq!(
            (shown[0].entry.state, shown[0].entry.attempts),
            (DeliveryState::Running, 1)
        );
        assert_eq!(shown[0].body, Bytes::from_static(b"{\"zen\":\"hi\"}"));
        assert_eq!(shown[0].headers["x-github-event"], "push");
        assert_eq!(shown[0].client_ip, Some("192.0.2.1".parse().unwrap()));
        let claims = store.claim(10, T0, T0 + LEASE).await.unwrap();
        assert!(claims.claimed.iter().all(|c| c.guid != "g-now"));
    })
    .await;
}

#[tokio::test]
async fn a_probe_writes_nothing_and_answers_while_the_journal_takes_writes() {
    each_backend("probe", async |backend| {
        let store = backend.open();
        store
            .probe()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", backend.name));
        let stats = store.stats().await.unwrap();
        assert_eq!(
            stats.queued + stats.running + stats.done + stats.dead + stats.unhandled,
            0,
            "{}",
            backend.name
        );
    })
    .await;
}

#[tokio::test]
async fn too_many_pending() {
    each_backend("pending", async |backend| {
        let store = backend.open();
        let store = &*store;
        let limited = |guid: &str| NewEntry {
            max_pending: 2,
            ..entry("1", guid, T0)
        };
        assert!(matches!(
            store.insert(limited("a")).await.unwrap(),
            Inserted::New { .. }
        ));
        assert!(matches!(
            store.insert(limited("b")).await.unwrap(),
            Inserted::New { .. }
        ));
        assert_eq!(
            store.insert(limited("c")).await.unwrap(),
            Inserted::TooManyPending
        );
        // Known deliveries answer as ever: queued is already queued.
        assert_eq!(
            store.insert(limited("a")).await.unwrap(),
            Inserted::AlreadyQueued
        );
        // Unhandled ones take no room.
        let mut unhandled = limited("u");
        unhandled.handled = false;
        assert_eq!(store.insert(unhandled).await.unwrap(), Inserted::Unhandled);
        // Finishing one makes room.
        let claims = store.claim(1, T0, T0 + LEASE).await.unwrap();
        store
            .finish(claim_of(&claims.claimed[0]), Finish::Done, record(200), T0)
            .await
            .unwrap();
        assert!(matches!(
            store.insert(limited("c")).await.unwrap(),
            Inserted::New { .. }
        ));
        let done = &claims.claimed[0].guid;
        assert_eq!(
            store.insert(limited(done)).await.unwrap(),
            Inserted::Duplicate
        );
    })
    .await;
}

#[tokio::test]
async fn claims_leases_and_fencing() {
    each_backend("claims", async |backend| {
        let store = backend.open();
        let store = &*store;
        for guid in ["a", "b", "c"] {
            store.insert(entry("1", guid, T0)).await.unwrap();
        }
        let first = store.claim(2, T0, T0 + LEASE).await.unwrap();
        assert_eq!(first.claimed.len(), 2);
        assert!(first.claimed.iter().all(|c| c.attempts == 1));
        assert_eq!(
            first.claimed[0].body,
            Bytes::from_static(b"{\"zen\":\"hi\"}")
        );
        let second = store.claim(2, T0, T0 + LEASE).await.unwrap();
        assert_eq!(second.claimed.len(), 1);
        let none = store.claim(2, T0 + 1, T0 + LEASE).await.unwrap();
        assert!(none.claimed.is_empty());
        // Nothing queued: the next row due is the first lease to run out.
        assert_eq!(none.next_due, Some(T0 + LEASE));

        // The leases run out (a killed instance): claimed again, attempt 2.
        let later = T0 + LEASE;
        let again = store.claim(10, later, later + LEASE).await.unwrap();
        assert_eq!(again.claimed.len(), 3);
        assert!(again.claimed.iter().all(|c| c.attempts == 2));

        // The first claim's finish, after its lease was lost, changes nothing...
        let lost = claim_of(&first.claimed[0]);
        store
            .finish(lost, Finish::Done, record(200), later)
            .await
            .unwrap();
        assert_eq!(
            state_of(store, &first.claimed[0].guid).await,
            DeliveryState::Running
        );
        // ...nor does its release.
        store.release(vec![lost], later).await.unwrap();
        assert_eq!(
            state_of(store, &first.claimed[0].guid).await,
            DeliveryState::Running
        );
        // The current claim's does.
        let current = again.claimed.iter().find(|c| c.id == lost.id).unwrap();
        store
            .finish(claim_of(current), Finish::Done, record(204), later)
            .await
            .unwrap();
        let shown = store.show(current.guid.clone()).await.unwrap();
        let e = &shown[0].entry;
        assert_eq!(
            (e.state, e.attempts, e.last_status),
            (DeliveryState::Done, 2, Some(204))
        );
        assert!(e.finished_at.is_some());
        // A finished row is not finished again.
        store
            .finish(claim_of(current), Finish::Dead, record(500), later)
            .await
            .unwrap();
        assert_eq!(state_of(store, &current.guid).await, DeliveryState::Done);
    })
    .await;
}

#[tokio::test]
async fn retry_release_and_dead() {
    each_backend("retry", async |backend| {
        let store = backend.open();
        let store = &*store;
        store.insert(entry("1", "r", T0)).await.unwrap();
        let c = store
            .claim(1, T0, T0 + LEASE)
            .await
            .unwrap()
            .claimed
            .remove(0);
        let at = T0 + 5_000;
        store
            .finish(claim_of(&c), Finish::Retry { at }, record(503), T0)
            .await
            .unwrap();
        let shown = store.show("r".into()).await.unwrap();
        let e = &shown[0].entry;
        assert_eq!((e.state, e.last_status), (DeliveryState::Queued, Some(503)));
        assert!(
            e.last_error.as_deref().unwrap().starts_with("failed"),
            "{:?}",
            e.last_error
        );
        assert_eq!(store.stats().await.unwrap().retrying, 1);
        // Not due before its time; due at it.
        let early = store.claim(1, at - 1, at + LEASE).await.unwrap();
        assert!(early.claimed.is_empty());
        assert_eq!(early.next_due, Some(at));
        let c = store
            .claim(1, at, at + LEASE)
            .await
            .unwrap()
            .claimed
            .remove(0);
        assert_eq!(c.attempts, 2);
        // Given back by a shutdown: queued, due now, claimable again.
        store.release(vec![claim_of(&c)], at).await.unwrap();
        assert_eq!(state_of(store, "r").await, DeliveryState::Queued);
        let c = store
            .claim(1, at, at + LEASE)
            .await
            .unwrap()
            .claimed
            .remove(0);
        assert_eq!(c.attempts, 3);
        store
            .finish(claim_of(&c), Finish::Dead, record(500), at)
            .await
            .unwrap();
        assert_eq!(state_of(store, "r").await, DeliveryState::Dead);
        assert_eq!(
            store
                .claim(1, at + LEASE * 10, at)
                .await
                .unwrap()
                .claimed
                .len(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn replay_list_and_stats() {
    each_backend("replay", async |backend| {
        let store = backend.open();
        let store = &*store;
        for (i, guid) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let mut e = entry("1", guid, T0 + i as i64);
            e.event = if i % 2 == 0 {
                "push".into()
            } else {
                "issues".into()
            };
            e.action = (i % 2 == 1).then(|| "opened\0".into());
            store.insert(e).await.unwrap();
        }
        // a: done, b: dead, c: running, d: queued.
        let claims = store.claim(3, T0 + 3, T0 + LEASE).await.unwrap();
        assert_eq!(claims.claimed.len(), 3);
        let by_guid = |g: &str| claims.claimed.iter().find(|c| c.guid == g).map(claim_of);
        if let (Some(a), Some(b)) = (by_guid("a"), by_guid("b")) {
            store
                .finish(a, Finish::Done, record(200), T0 + 10)
                .await
                .unwrap();
            store
                .finish(b, Finish::Dead, record(500), T0 + 10)
                .await
                .unwrap();
        } else {
            // Claim order is the engine's: finish whichever two came first.
            store
                .finish(
                    claim_of(&claims.claimed[0]),
                    Finish::Done,
                    record(200),
                    T0 + 10,
                )
                .await
                .unwrap();
            store
                .finish(
                    claim_of(&claims.claimed[1]),
                    Finish::Dead,
                    record(500),
                    T0 + 10,
                )
                .await
                .unwrap();
        }
        let stats = store.stats().await.unwrap();
        assert_eq!(
            (
                stats.queued,
                stats.running,
                stats.done,
                stats.dead,
                stats.unhandled
            ),
            (1, 1, 1, 1, 0)
        );
        assert!(stats.oldest_pending.is_some());

        let all = store.list(ListFilter::new()).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.guid.as_str()).collect::<Vec<_>>(),
            ["d", "c", "b", "a"]
        );
        let issues = store.list(ListFilter::new().event("issues")).await.unwrap();
        assert_eq!(issues.len(), 2);
        assert!(issues[0].action.as_deref().unwrap().starts_with("opened"));
        assert_eq!(
            store.list(ListFilter::new().limit(1)).await.unwrap()[0].guid,
            "d"
        );
        let done = store
            .list(ListFilter::new().state(DeliveryState::Done))
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
        let since = store
            .list(ListFilter::new().since(super::time::from_millis(T0 + 2)))
            .await
            .unwrap();
        assert_eq!(since.len(), 2);

        // Replay: finished rows queued again with attempts reset; pending ones left.
        let done_guid = done[0].guid.clone();
        let outcome = store.replay(done_guid.clone(), T0 + 20).await.unwrap();
        assert_eq!(
            outcome,
            ReplayOutcome {
                queued: 1,
                already_queued: 0
            }
        );
        let shown = store.show(done_guid.clone()).await.unwrap();
        assert_eq!(
            (shown[0].entry.state, shown[0].entry.attempts),
            (DeliveryState::Queued, 0)
        );
        let outcome = store.replay(done_guid, T0 + 20).await.unwrap();
        assert_eq!(
            outcome,
            ReplayOutcome {
                queued: 0,
                already_queued: 1
            }
        );
        let outcome = store.replay("nope".into(), T0 + 20).await.unwrap();
        assert_eq!(outcome, ReplayOutcome::default());
    })
    .await;
}

#[tokio::test]
async fn retention_deletes_finished_rows_in_batches() {
    each_backend("retention", async |backend| {
        let store = backend.open();
        let store = &*store;
        for i in 0..7 {
            store
                .insert(entry("1", &format!("old-{i}"), T0))
                .await
                .unwrap();
        }
        assert_eq!(claim_and_finish(store, T0, Finish::Done).await, 7);
        store.insert(entry("1", "pending", T0)).await.unwrap();
        let mut recent = entry("1", "recent", T0);
        recent.handled = false;
        store.insert(recent).await.unwrap();
        // Finished at T0: before T0 + 1, but not before T0.
        assert_eq!(store.delete_finished(T0, 100).await.unwrap(), 0);
        assert_eq!(store.delete_finished(T0 + 1, 3).await.unwrap(), 3);
        // The loop the retention task runs: what is left, and nothing pending.
        let deleted = workers::delete_finished(store, T0 + 1).await.unwrap();
        assert_eq!(deleted, 5, "4 old done rows and the unhandled one");
        let left = store.list(ListFilter::new()).await.unwrap();
        assert_eq!(
            left.iter().map(|e| e.guid.as_str()).collect::<Vec<_>>(),
            ["pending"]
        );
    })
    .await;
}

/// Two handles on one journal (two instances): concurrent inserts of one key make
/// one row, and concurrent claims never take the same row twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_journal() {
    each_backend("instances", async |backend| {
        let stores = [backend.open(), backend.open()];
        let mut tasks = Vec::new();
        for round in 0..40 {
            for store in &stores {
                for _ in 0..2 {
                    let store = Arc::clone(store);
                    tasks.push(tokio::spawn(async move {
                        store.insert(entry("7", &format!("dup-{round}"), T0)).await
                    }));
                }
            }
        }
        let mut new = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Inserted::New { .. } => new += 1,
                Inserted::AlreadyQueued => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(new, 40, "one row per key");
        let mut claimers = Vec::new();
        for store in &stores {
            for _ in 0..3 {
                let store = Arc::clone(store);
                claimers.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let claims = store.claim(3, T0, T0 + LEASE).await.unwrap();
                        if claims.claimed.is_empty() {
                            return mine;
                        }
                        mine.extend(claims.claimed.iter().map(|c| c.id));
                    }
                }));
            }
        }
        let mut ids = Vec::new();
        for claimer in claimers {
            ids.extend(claimer.await.unwrap());
        }
        ids.sort_unstable();
        let claimed = ids.len();
        ids.dedup();
        assert_eq!((claimed, ids.len()), (40, 40), "every row claimed once");
    })
    .await;
}

/// A queued delivery wakes the other instances' idle workers (LISTEN/NOTIFY).
#[tokio::test]
async fn postgres_notify_wakes_other_instances() {
    let Some(base) = postgres_url() else {
        return;
    };
    let backend = Backend {
        name: "postgres",
        url: fresh_schema(&base, "notify").await,
    };
    let (a, b) = (backend.open(), backend.open());
    let woken = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&woken);
    b.watch(Box::new(move || notify.notify_one()));
    // The first wake-up is the listener's own, once it listens.
    tokio::time::timeout(Duration::from_secs(10), woken.notified())
        .await
        .expect("listening");
    a.insert(entry("1", "n", T0)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.notified())
        .await
        .expect("woken by the other instance's insert");
    // A claimed-on-insert row (run here, now) wakes nobody; a replay does.
    let claims = b.claim(1, T0, T0 + LEASE).await.unwrap();
    b.finish(claim_of(&claims.claimed[0]), Finish::Done, record(200), T0)
        .await
        .unwrap();
    a.replay("n".into(), T0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.notified())
        .await
        .expect("woken by a replay");
}

/// N instances starting at once on an empty database: one migrates, all open.
#[tokio::test]
async fn postgres_migrates_once_when_many_start_at_once() {
    let Some(base) = postgres_url() else {
        return;
    };
    let url = fresh_schema(&base, "migrate").await;
    let opened: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Engine::parse(&url).unwrap().open(1).map(drop))
        })
        .collect();
    for thread in opened {
        thread.join().unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let versions = client
        .query(
            "SELECT version FROM hookserver_schema ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = versions.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1, 2], "each migration applied once");
}

/// A database nobody answers for, a wrong password, TLS a server lacks: start-up
/// errors that say what went wrong and never hold the password.
#[tokio::test]
async fn postgres_start_up_errors_are_clear_and_redacted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://u:hunter2@127.0.0.1:{port}/db");
    let err = Engine::parse(&url)
        .unwrap()
        .open(1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot open") && err.contains("u:***@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    eprintln!("unreachable: {err}");

    let Some(base) = postgres_url() else {
        return;
    };
    let join = if base.contains('?') { '&' } else { '?' };
    let tls = format!("{base}{join}sslmode=require");
    let err = Engine::parse(&tls)
        .unwrap()
        .open(1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot open") && err.to_lowercase().contains("tls"),
        "{err}"
    );
    eprintln!("no TLS: {err}");
}
