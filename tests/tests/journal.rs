//! The journal's semantics over real loopback HTTP, each test body run against
//! every engine in `tests::journal::journals()`: what is written, deduplication,
//! processing and retries, the ACK modes, overload, replay, retention, shutdown.

use axum::response::{IntoResponse, Response};
use hookserver::{
    Ack, Config, Delivery, DeliveryState, Hooks, Journal, ListFilter, Payload, State,
};
use serde::Deserialize;
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tests::{
    TestServer, config,
    journal::{TestJournal, all_in, entry, journals, post, wait_for},
};
use tokio::sync::watch;

const SETTLE: Duration = Duration::from_secs(15);

/// What the test handler does, read from the payload.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Script {
    /// Answer `500` to this many attempts first.
    fail: u32,
    /// Answer with this status (once the failures are done).
    status: Option<u16>,
    /// Panic on the first attempt.
    panic_first: bool,
    /// Sleep past the handler timeout on the first attempt.
    stall_first: bool,
    /// Wait until the probe opens its gate.
    hold: bool,
}

/// What the handler saw: every attempt, with its time, and how many ran at once.
#[derive(Clone)]
struct Probe {
    attempts: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
    running: Arc<AtomicUsize>,
    max_running: Arc<AtomicUsize>,
    gate: watch::Receiver<bool>,
    open: Arc<watch::Sender<bool>>,
}

impl Probe {
    fn new() -> Self {
        let (open, gate) = watch::channel(false);
        Self {
            attempts: Arc::default(),
            running: Arc::default(),
            max_running: Arc::default(),
            gate,
            open: Arc::new(open),
        }
    }

    fn open_gate(&self) {
        self.open.send_replace(true);
    }

    fn runs(&self, guid: &str) -> usize {
        self.attempts
            .lock()
            .expect("probe lock")
            .get(guid)
            .map_or(0, Vec::len)
    }

    fn times(&self, guid: &str) -> Vec<Instant> {
        self.attempts
            .lock()
            .expect("probe lock")
            .get(guid)
            .cloned()
            .unwrap_or_default()
    }
}

async fn scripted(
    State(probe): State<Probe>,
    delivery: Delivery,
    Payload(script): Payload<Script>,
) -> Response {
    let attempt = {
        let mut attempts = probe.attempts.lock().expect("probe lock");
        let list = attempts.entry(delivery.guid().to_owned()).or_default();
        list.push(Instant::now());
        list.len() as u32
    };
    let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
    probe.max_running.fetch_max(now, Ordering::SeqCst);
    let _running = Decrement(Arc::clone(&probe.running));
    if script.hold {
        let mut gate = probe.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
    }
    if script.panic_first && attempt == 1 {
        panic!("first attempt panics");
    }
    if script.stall_first && attempt == 1 {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if attempt <= script.fail {
        return (http::StatusCode::INTERNAL_SERVER_ERROR, "not yet").into_response();
    }
    let status = http::StatusCode::from_u16(script.status.unwrap_or(200)).expect("a status");
    (status, format!("handled {}", delivery.guid())).into_response()
}

struct Decrement(Arc<AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A registry journaling at `journal`, with the scripted handler on `push`.
fn hooks(
    journal: &TestJournal,
    probe: &Probe,
    tune: impl FnOnce(Config) -> Config,
) -> Hooks<Probe> {
    let config = tune(
        config()
            .journal(&journal.url)
            .retry_backoff(Duration::from_millis(100))
            // Long enough that a handler held by the test never times out on a busy
            // machine; the tests of timeouts set 1 s.
            .handler_timeout(Duration::from_secs(30)),
    );
    Hooks::with_state(config, probe.clone()).on("push", scripted)
}

async fn serve(hooks: Hooks<Probe>) -> (TestServer, Journal) {
    let journal = hooks.journal().expect("a journal is configured");
    (TestServer::hooks(hooks).await, journal)
}

fn guid(n: usize) -> String {
    format!("0000{n:04}-cc78-11e3-81ab-4c9367dc0958")
}

#[tokio::test]
async fn a_delivery_is_recorded_durably_acknowledged_202_then_processed() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        let body = br#"{"ref":"refs/heads/main","status":201}"#;
        let (status, _, text) = post(&server.url(), "push", &guid(1), Some("7"), body).await;
        assert_eq!(
            (status, text.as_str()),
            (202, "Queued"),
            "{}",
            journal.engine
        );
        let entries = wait_for(&handle, SETTLE, "done", |e| all_in(e, DeliveryState::Done)).await;
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(
            (e.hook_id, e.guid.as_str(), e.event.as_str()),
            (Some(7), &*guid(1), "push")
        );
        assert_eq!((e.attempts, e.last_status), (1, Some(201)));
        assert_eq!(probe.runs(&guid(1)), 1);
        // The row holds the body as received and the headers a handler can read,
        // never the signature.
        let stored = handle.show(&guid(1)).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(&stored[0].body[..], body);
        assert_eq!(stored[0].headers["x-github-event"], "push");
        assert_eq!(stored[0].headers["x-github-hook-id"], "7");
        assert_eq!(stored[0].headers["content-type"], "application/json");
        assert!(stored[0].headers.get("x-hub-signature-256").is_none());
        assert!(stored[0].client_ip.is_none(), "IP checking is off in tests");
    }
}

#[tokio::test]
async fn redeliveries_are_deduplicated_on_hook_id_and_guid() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        let url = server.url();
        let body = br#"{"ref":"x"}"#;
        assert_eq!(post(&url, "push", &guid(1), Some("1"), body).await.0, 202);
        wait_for(&handle, SETTLE, "done", |e| all_in(e, DeliveryState::Done)).await;
        // Done: answered, not run again.
        let (status, _, text) = post(&url, "push", &guid(1), Some("1"), body).await;
        assert_eq!((status, text.as_str()), (200, "Duplicate delivery"));
        // The same GUID to another hook, or without a hook id, is another delivery.
        let (status, _, text) = post(&url, "push", &guid(1), Some("2"), body).await;
        assert_eq!((status, text.as_str()), (202, "Queued"));
        let (status, _, text) = post(&url, "push", &guid(1), None, body).await;
        assert_eq!((status, text.as_str()), (202, "Queued"));
        let entries = wait_for(&handle, SETTLE, "three done", |e| {
            e.len() == 3 && all_in(e, DeliveryState::Done)
        })
        .await;
        for hook in [Some(1), Some(2), None] {
            assert!(entry(&entries, &guid(1), hook).is_some(), "{hook:?}");
        }
        let (status, _, text) = post(&url, "push", &guid(1), None, body).await;
        assert_eq!((status, text.as_str()), (200, "Duplicate delivery"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(probe.runs(&guid(1)), 3, "one run per (hook, GUID)");
    }
}

#[tokio::test]
async fn a_delivery_queued_or_running_is_not_queued_twice() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        let url = server.url();
        let body = br#"{"hold":true}"#;
        assert_eq!(post(&url, "push", &guid(1), Some("1"), body).await.0, 202);
        wait_for(&handle, SETTLE, "running", |e| {
            all_in(e, DeliveryState::Running)
        })
        .await;
        let (status, _, text) = post(&url, "push", &guid(1), Some("1"), body).await;
        assert_eq!((status, text.as_str()), (202, "Already queued"));
        probe.open_gate();
        wait_for(&handle, SETTLE, "done", |e| all_in(e, DeliveryState::Done)).await;
        assert_eq!(probe.runs(&guid(1)), 1);
    }
}

#[tokio::test]
async fn failures_are_retried_with_the_backoff_until_done() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        let body = br#"{"fail":2}"#;
        assert_eq!(
            post(&server.url(), "push", &guid(1), None, body).await.0,
            202
        );
        let entries = wait_for(&handle, SETTLE, "done", |e| all_in(e, DeliveryState::Done)).await;
        assert_eq!(
            (entries[0].attempts, entries[0].last_status),
            (3, Some(200))
        );
        let times = probe.times(&guid(1));
        assert_eq!(times.len(), 3);
        // 100 ms, then 200 ms, each ±20%: the delays the policy gives.
        let first = times[1] - times[0];
        let second = times[2] - times[1];
        assert!(
            first >= Duration::from_millis(80),
            "first retry after {first:?}"
        );
        assert!(
            second >= Duration::from_millis(160),
            "second retry after {second:?}"
        );
        assert!(
            second > first,
            "the delay doubles: {first:?} then {second:?}"
        );
    }
}

#[tokio::test]
async fn a_handler_that_always_fails_ends_dead_and_a_redelivery_queues_it_again() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c.retry_attempts(3))).await;
        let url = server.url();
        let body = br#"{"fail":1000}"#;
        assert_eq!(post(&url, "push", &guid(1), Some("5"), body).await.0, 202);
        let entries = wait_for(&handle, SETTLE, "dead", |e| all_in(e, DeliveryState::Dead)).await;
        let dead = &entries[0];
        assert_eq!((dead.attempts, dead.last_status), (3, Some(500)));
        assert_eq!(
            dead.last_error.as_deref(),
            Some("not yet"),
            "the handler's body"
        );
        assert_eq!(probe.runs(&guid(1)), 3);
        // A person pressed "Redeliver": queued again, attempts from scratch.
        let (status, _, text) = post(&url, "push", &guid(1), Some("5"), body).await;
        assert_eq!((status, text.as_str()), (202, "Queued again"));
        wait_for(&handle, SETTLE, "dead again", |e| {
            all_in(e, DeliveryState::Dead) && probe.runs(&guid(1)) == 6
        })
        .await;
        assert_eq!(handle.list(ListFilter::new()).await.unwrap()[0].attempts, 3);
    }
}

#[tokio::test]
async fn panics_and_timeouts_are_retried_and_other_statuses_are_final() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| {
            c.handler_timeout(Duration::from_secs(1))
        }))
        .await;
        let url = server.url();
        assert_eq!(
            post(&url, "push", &guid(1), None, br#"{"panic_first":true}"#)
                .await
                .0,
            202
        );
        assert_eq!(
            post(&url, "push", &guid(2), None, br#"{"stall_first":true}"#)
                .await
                .0,
            202
        );
        assert_eq!(
            post(&url, "push", &guid(3), None, br#"{"status":422}"#)
                .await
                .0,
            202
        );
        let entries = wait_for(&handle, SETTLE, "all done", |e| {
            e.len() == 3 && all_in(e, DeliveryState::Done)
        })
        .await;
        let by_guid = |n| entry(&entries, &guid(n), None).unwrap();
        assert_eq!(
            (by_guid(1).attempts, by_guid(1).last_status),
            (2, Some(200))
        );
        assert_eq!(
            (by_guid(2).attempts, by_guid(2).last_status),
            (2, Some(200))
        );
        // A 4xx is the handler's final word: recorded, not retried.
        assert_eq!(
            (by_guid(3).attempts, by_guid(3).last_status),
            (1, Some(422))
        );
        assert_eq!(probe.runs(&guid(3)), 1);
    }
}

#[tokio::test]
async fn a_panic_and_a_timeout_are_recorded_with_their_reason() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| {
            c.retry_attempts(1).handler_timeout(Duration::from_secs(1))
        }))
        .await;
        let url = server.url();
        assert_eq!(
            post(&url, "push", &guid(1), None, br#"{"panic_first":true}"#)
                .await
                .0,
            202
        );
        assert_eq!(
            post(&url, "push", &guid(2), None, br#"{"stall_first":true}"#)
                .await
                .0,
            202
        );
        let entries = wait_for(&handle, SETTLE, "both dead", |e| {
            e.len() == 2 && all_in(e, DeliveryState::Dead)
        })
        .await;
        let panicked = entry(&entries, &guid(1), None).unwrap();
        assert_eq!(panicked.last_status, Some(500));
        assert!(
            panicked
                .last_error
                .as_deref()
                .unwrap()
                .contains("first attempt panics"),
            "{panicked:?}"
        );
        let stalled = entry(&entries, &guid(2), None).unwrap();
        assert_eq!(stalled.last_status, Some(503));
        assert!(
            stalled.last_error.as_deref().unwrap().contains("timed out"),
            "{stalled:?}"
        );
    }
}

#[tokio::test]
async fn workers_bound_how_many_handlers_run_at_once() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c.workers(2))).await;
        for n in 0..6 {
            let (status, _, _) =
                post(&server.url(), "push", &guid(n), None, br#"{"hold":true}"#).await;
            assert_eq!(status, 202);
        }
        // Every one is claimed (run or about to be), two run.
        wait_for(&handle, SETTLE, "six claimed", |e| {
            e.len() == 6 && all_in(e, DeliveryState::Running)
        })
        .await;
        let deadline = Instant::now() + SETTLE;
        while probe.running.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(probe.running.load(Ordering::SeqCst), 2);
        probe.open_gate();
        wait_for(&handle, SETTLE, "six done", |e| {
            e.len() == 6 && all_in(e, DeliveryState::Done)
        })
        .await;
        assert_eq!(probe.max_running.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn an_event_without_a_handler_is_recorded_unhandled() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        let (status, _, text) = post(
            &server.url(),
            "issues",
            &guid(1),
            Some("3"),
            br#"{"action":"opened"}"#,
        )
        .await;
        assert_eq!((status, text.as_str()), (200, "Hook not used"));
        let entries = handle.list(ListFilter::new()).await.unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.state, DeliveryState::Unhandled);
        assert_eq!(
            (e.event.as_str(), e.action.as_deref()),
            ("issues", Some("opened"))
        );
        assert_eq!(e.attempts, 0);
        let (status, _, text) = post(
            &server.url(),
            "issues",
            &guid(1),
            Some("3"),
            br#"{"action":"opened"}"#,
        )
        .await;
        assert_eq!((status, text.as_str()), (200, "Hook not used"));
        assert_eq!(handle.list(ListFilter::new()).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_payload_that_does_not_fit_is_refused_at_the_door_and_not_journaled() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        // `fail` must be a number: the typed extractor refuses it before the 202.
        let (status, _, text) =
            post(&server.url(), "push", &guid(1), None, br#"{"fail":"x"}"#).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.starts_with("Payload does not match"), "{text}");
        let (status, _, text) = post(&server.url(), "push", &guid(2), None, b"{not json").await;
        assert_eq!(status, 400, "{text}");
        assert!(text.starts_with("Invalid JSON payload"), "{text}");
        assert!(handle.list(ListFilter::new()).await.unwrap().is_empty());
        assert_eq!(probe.runs(&guid(1)), 0);
    }
}

#[tokio::test]
async fn past_max_pending_deliveries_get_503_with_retry_after_and_nothing_is_lost() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| {
            c.journal_max_pending(2).workers(1)
        }))
        .await;
        let url = server.url();
        let hold = br#"{"hold":true}"#;
        assert_eq!(post(&url, "push", &guid(1), None, hold).await.0, 202);
        assert_eq!(post(&url, "push", &guid(2), None, hold).await.0, 202);
        let (status, retry_after, text) = post(&url, "push", &guid(3), None, hold).await;
        assert_eq!(
            (status, text.as_str()),
            (503, "Too many pending deliveries")
        );
        assert_eq!(retry_after.as_deref(), Some("60"));
        // Unhandled events are not pending: still recorded.
        assert_eq!(post(&url, "issues", &guid(4), None, b"{}").await.0, 200);
        probe.open_gate();
        wait_for(&handle, SETTLE, "two done", |e| {
            e.iter().filter(|e| e.state == DeliveryState::Done).count() == 2
        })
        .await;
        // The refused one, sent again (GitHub's redelivery), is taken now.
        assert_eq!(post(&url, "push", &guid(3), None, hold).await.0, 202);
        wait_for(&handle, SETTLE, "three done", |e| {
            e.iter().filter(|e| e.state == DeliveryState::Done).count() == 3
        })
        .await;
    }
}

#[tokio::test]
async fn with_ack_handler_the_handler_answers_and_its_failure_is_retried() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c.ack(Ack::Handler))).await;
        let url = server.url();
        let (status, _, text) = post(&url, "push", &guid(1), None, b"{}").await;
        assert_eq!(
            (status, text.as_str()),
            (200, format!("handled {}", guid(1)).as_str())
        );
        let entries = handle.list(ListFilter::new()).await.unwrap();
        assert_eq!(
            (entries[0].state, entries[0].attempts),
            (DeliveryState::Done, 1)
        );
        // GitHub sees the failure; the workers retry it.
        let (status, _, _) = post(&url, "push", &guid(2), None, br#"{"fail":1}"#).await;
        assert_eq!(status, 500);
        let entries = wait_for(&handle, SETTLE, "both done", |e| {
            e.len() == 2 && all_in(e, DeliveryState::Done)
        })
        .await;
        assert_eq!(entry(&entries, &guid(2), None).unwrap().attempts, 2);
        // A redelivery of a done delivery is still a duplicate.
        let (status, _, text) = post(&url, "push", &guid(1), None, b"{}").await;
        assert_eq!((status, text.as_str()), (200, "Duplicate delivery"));
        assert_eq!(probe.runs(&guid(1)), 1);
    }
}

#[tokio::test]
async fn with_ack_handler_a_dead_delivery_redelivered_runs_in_the_request_again() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| {
            c.ack(Ack::Handler).retry_attempts(1)
        }))
        .await;
        let url = server.url();
        assert_eq!(
            post(&url, "push", &guid(1), None, br#"{"fail":1}"#).await.0,
            500
        );
        wait_for(&handle, SETTLE, "dead", |e| all_in(e, DeliveryState::Dead)).await;
        let (status, _, text) = post(&url, "push", &guid(1), None, br#"{"fail":1}"#).await;
        assert_eq!(
            (status, text.as_str()),
            (200, format!("handled {}", guid(1)).as_str())
        );
        let entries = handle.list(ListFilter::new()).await.unwrap();
        assert_eq!(
            (entries[0].state, entries[0].attempts),
            (DeliveryState::Done, 1)
        );
    }
}

#[tokio::test]
async fn replay_puts_a_finished_delivery_back_in_the_queue() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        assert_eq!(
            post(&server.url(), "push", &guid(1), None, b"{}").await.0,
            202
        );
        wait_for(&handle, SETTLE, "done", |e| all_in(e, DeliveryState::Done)).await;
        let replayed = handle.replay(&guid(1)).await.unwrap();
        assert_eq!((replayed.queued, replayed.already_queued), (1, 0));
        wait_for(&handle, SETTLE, "run again", |e| {
            all_in(e, DeliveryState::Done) && probe.runs(&guid(1)) == 2
        })
        .await;
        let unknown = handle.replay("no-such-guid").await.unwrap();
        assert_eq!((unknown.queued, unknown.already_queued), (0, 0));
        let stats = handle.stats().await.unwrap();
        assert_eq!((stats.done, stats.queued, stats.running), (1, 0, 0));
        assert_eq!(stats.oldest_pending, None);
    }
}

#[tokio::test]
async fn list_filters_by_state_event_and_time() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        let url = server.url();
        let before = std::time::SystemTime::now() - Duration::from_secs(1);
        assert_eq!(post(&url, "push", &guid(1), None, b"{}").await.0, 202);
        assert_eq!(post(&url, "issues", &guid(2), None, b"{}").await.0, 200);
        wait_for(&handle, SETTLE, "push done", |e| {
            entry(e, &guid(1), None).is_some_and(|e| e.state == DeliveryState::Done)
        })
        .await;
        let list = |f: ListFilter| {
            let handle = handle.clone();
            async move {
                handle
                    .list(f)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.guid)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            list(ListFilter::new().state(DeliveryState::Done)).await,
            [guid(1)]
        );
        assert_eq!(
            list(ListFilter::new().state(DeliveryState::Unhandled)).await,
            [guid(2)]
        );
        assert_eq!(list(ListFilter::new().event("issues")).await, [guid(2)]);
        assert_eq!(
            list(ListFilter::new()).await,
            [guid(2), guid(1)],
            "newest first"
        );
        assert_eq!(list(ListFilter::new().limit(1)).await, [guid(2)]);
        assert_eq!(list(ListFilter::new().since(before)).await.len(), 2);
        assert!(list(ListFilter::new().until(before)).await.is_empty());
    }
}

#[tokio::test]
async fn finished_deliveries_past_the_retention_are_deleted() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| {
            c.journal_retention(Duration::from_secs(1))
        }))
        .await;
        assert_eq!(
            post(&server.url(), "push", &guid(1), None, b"{}").await.0,
            202
        );
        assert_eq!(
            post(&server.url(), "push", &guid(2), None, br#"{"hold":true}"#)
                .await
                .0,
            202
        );
        wait_for(&handle, SETTLE, "one done", |e| {
            entry(e, &guid(1), None).is_some_and(|e| e.state == DeliveryState::Done)
        })
        .await;
        // The retention task runs every second here: the finished row goes, the
        // running one stays however old.
        let left = wait_for(&handle, SETTLE, "the done row deleted", |e| e.len() == 1).await;
        assert_eq!(left[0].guid, guid(2));
        probe.open_gate();
    }
}

#[tokio::test]
async fn shutdown_lets_running_handlers_finish_and_leaves_the_queue_for_the_next_start() {
    for journal in journals() {
        let probe = Probe::new();
        let (server, handle) = serve(hooks(&journal, &probe, |c| c.workers(1))).await;
        let url = server.url();
        assert_eq!(
            post(&url, "push", &guid(1), None, br#"{"hold":true}"#)
                .await
                .0,
            202
        );
        assert_eq!(post(&url, "push", &guid(2), None, b"{}").await.0, 202);
        wait_for(&handle, SETTLE, "one running", |e| {
            entry(e, &guid(1), None).is_some_and(|e| e.state == DeliveryState::Running)
        })
        .await;
        let opener = probe.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            opener.open_gate();
        });
        server.shut_down().await.unwrap();
        // The running handler finished within the grace; the queued one never started.
        let entries = handle.list(ListFilter::new()).await.unwrap();
        assert_eq!(
            entry(&entries, &guid(1), None).unwrap().state,
            DeliveryState::Done
        );
        assert_eq!(
            entry(&entries, &guid(2), None).unwrap().state,
            DeliveryState::Queued
        );
        assert_eq!(probe.runs(&guid(2)), 0);
        drop(handle);
        // The next start processes what was left.
        let (_server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
        wait_for(&handle, SETTLE, "both done", |e| {
            e.len() == 2 && all_in(e, DeliveryState::Done)
        })
        .await;
        assert_eq!(probe.runs(&guid(2)), 1);
    }
}

#[tokio::test]
async fn a_locked_journal_answers_503_journal_unavailable_in_time_never_2xx() {
    let journal = tests::journal::sqlite();
    let probe = Probe::new();
    let (server, handle) = serve(hooks(&journal, &probe, |c| c)).await;
    // Another process holds the write lock (a stuck tool, say).
    let path = journal.sqlite_path().unwrap();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let started = Instant::now();
    let (status, retry_after, text) = post(&server.url(), "push", &guid(1), None, b"{}").await;
    let took = started.elapsed();
    assert_eq!((status, text.as_str()), (503, "Journal unavailable"));
    assert_eq!(retry_after.as_deref(), Some("60"));
    // The write gives up after 4 s (the busy timeout) or 5 s at most: well inside
    // GitHub's 10 s, with room for a busy machine.
    assert!(took < Duration::from_secs(9), "answered after {took:?}");
    release_tx.send(()).unwrap();
    locker.join().unwrap();
    // Nothing was acknowledged. The write may still have landed once the lock was
    // gone (then the redelivery finds it queued, or already processed), or not
    // (then it is taken now): either way it is processed, once.
    let (status, _, text) = post(&server.url(), "push", &guid(1), None, b"{}").await;
    assert!(
        [
            (202, "Queued"),
            (202, "Already queued"),
            (200, "Duplicate delivery")
        ]
        .contains(&(status, text.as_str())),
        "{status} {text}"
    );
    wait_for(&handle, SETTLE, "done", |e| all_in(e, DeliveryState::Done)).await;
    assert_eq!(probe.runs(&guid(1)), 1);
}

#[test]
fn a_journal_that_cannot_be_opened_is_a_start_up_error() {
    let dir = tests::journal::temp_dir("bad-journal");
    let path = dir.join("garbage.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = Hooks::try_new(config().journal(format!("sqlite:{}", path.display())))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot build the journal:"), "{err}");
    assert!(err.contains("garbage.db"), "{err}");
    let missing_dir = dir.join("no/such/dir/j.db");
    let err = Hooks::try_new(config().journal(format!("sqlite:{}", missing_dir.display())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot open"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
    // A PostgreSQL nobody answers for: the same start-up error, without the password.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://hook:hunter2@127.0.0.1:{port}/journal");
    let err = Hooks::try_new(config().journal(url))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot build the journal:"), "{err}");
    assert!(
        err.contains("hook:***@127.0.0.1") && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let debug = format!("{:?}", config().journal("postgres://hook:hunter2@db/j"));
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn journal_settings_from_the_environment() {
    let from = |vars: &[(&str, &str)]| {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut all = map.clone();
        all.insert("GITHUB_WEBHOOKS_KEY".into(), "s".into());
        Config::from_lookup(move |k| all.get(k).cloned())
    };
    assert!(from(&[("HOOKSERVER_JOURNAL", "off")]).is_ok());
    for (name, value) in [
        ("HOOKSERVER_JOURNAL", "hookserver.db"),
        (
            "HOOKSERVER_JOURNAL",
            "postgres://u:hunter2@db/x?sslmode=sometimes",
        ),
        ("HOOKSERVER_JOURNAL", "postgresql://u:hunter2@db:port/x"),
        ("HOOKSERVER_ACK", "later"),
        ("HOOKSERVER_WORKERS", "0"),
        ("HOOKSERVER_RETRY_ATTEMPTS", "none"),
        ("HOOKSERVER_RETRY_BACKOFF_SECS", "0"),
        ("HOOKSERVER_JOURNAL_RETENTION_DAYS", "0"),
        ("HOOKSERVER_JOURNAL_MAX_PENDING", "-5"),
    ] {
        let err = from(&[(name, value)]).unwrap_err();
        assert_eq!(err.setting(), Some(name), "{name}={value}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
