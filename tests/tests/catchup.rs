//! The catch-up on missed deliveries, over real loopback HTTP against the stand-in
//! GitHub of `tests::github_log` (which delivers, lists its log with `Link` cursors,
//! takes redelivery requests and then delivers again). Each scenario of issue 11:
//! a server down while deliveries are sent, deliveries GitHub logged as failed that
//! the journal has, a redelivery GitHub logged as delivered, the watermark across a
//! restart, rate limits, `422`, bad answers, an App's JWT, two instances on
//! PostgreSQL. Intervals are short and every wait polls for a condition.

use hookserver::{CatchupStatus, Config, Delivery, DeliveryState, Hooks, Journal, State};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime},
};
use tests::{
    CapturedLogs, TestServer, capture_logs, config,
    github_log::{APP_ID, APP_PRIVATE_KEY, GithubLog, Limit, eventually},
    journal::{TestJournal, all_in, journals, postgres, wait_for},
};
use tokio::net::TcpListener;

const SETTLE: Duration = Duration::from_secs(20);
const INTERVAL: Duration = Duration::from_millis(200);
const HOOK_ID: u64 = 7;
const TOKEN: &str = "ghp_test-token";

fn logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| capture_logs(tracing::Level::INFO))
}

/// How often the handler ran, per GUID.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<HashMap<String, usize>>>);

impl Runs {
    fn of(&self, guid: &str) -> usize {
        self.0.lock().expect("runs").get(guid).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.0.lock().expect("runs").values().sum()
    }
}

async fn count(State(runs): State<Runs>, delivery: Delivery) -> &'static str {
    *runs
        .0
        .lock()
        .expect("runs")
        .entry(delivery.guid().to_owned())
        .or_default() += 1;
    "counted"
}

/// The catch-up of repository hook [`HOOK_ID`] against `log`, journaling at `journal`.
fn catchup_config(journal: &TestJournal, log: &GithubLog) -> Config {
    config()
        .journal(&journal.url)
        .github_api_url(&log.url)
        .github_token(TOKEN)
        .catchup(format!("repo:o/r/{HOOK_ID}"))
        .catchup_interval(INTERVAL)
}

/// The counting handler on `push`, under `config`.
fn counting(config: Config, runs: &Runs) -> Hooks<Runs> {
    Hooks::with_state(config, runs.clone()).on("push", count)
}

/// The catch-up of [`catchup_config`] served, counting runs in `runs`.
async fn start(journal: &TestJournal, log: &GithubLog, runs: &Runs) -> (TestServer, Journal) {
    serve(log, counting(catchup_config(journal, log), runs)).await
}

/// A server for `hooks`, its address given to the stand-in as the hook's URL before
/// the catch-up's first pass can ask for anything.
async fn serve(log: &GithubLog, hooks: Hooks<Runs>) -> (TestServer, Journal) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    log.set_hook_url(&format!(
        "http://{}/hooks",
        listener.local_addr().expect("addr")
    ));
    let journal = hooks.journal().expect("a journal");
    let server = TestServer::start_on(listener, hookserver::Server::new(), hooks.router("/hooks"));
    (server, journal)
}

/// `n` deliveries sent while the server is down (the stand-in's hook URL refuses them);
/// their GUIDs.
async fn sent_while_down(log: &GithubLog, n: usize) -> Vec<String> {
    let mut guids = Vec::new();
    for i in 0..n {
        guids.push(log.send("push", format!(r#"{{"n":{i}}}"#).as_bytes()).await);
    }
    guids
}

fn status(journal: &Journal) -> CatchupStatus {
    journal.catchup().expect("a catch-up is configured")
}

/// Waits for `n` more passes of this process than `status` had.
async fn passes_after(journal: &Journal, before: &CatchupStatus, n: u64) {
    eventually(SETTLE, "more catch-up passes", || {
        status(journal).passes >= before.passes + n
    })
    .await;
}

#[tokio::test]
async fn deliveries_missed_while_down_are_redelivered_and_processed_once_each() {
    let _ = logs();
    for journal in journals() {
        let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
        log.set_page_size(2);
        // The server is down: GitHub logs each delivery as failed.
        let missed = sent_while_down(&log, 5).await;
        assert!(log.attempts().iter().all(|a| a.status_code == 0));
        let runs = Runs::default();
        let (server, handle) = start(&journal, &log, &runs).await;
        wait_for(&handle, SETTLE, "the missed deliveries done", |e| {
            e.len() == 5 && all_in(e, DeliveryState::Done)
        })
        .await;
        // More passes: nothing asked again, nothing run twice.
        let seen = status(&handle);
        passes_after(&handle, &seen, 3).await;
        let mut asked = log.redeliveries();
        asked.sort();
        let mut expected = missed.clone();
        expected.sort();
        assert_eq!(asked, expected, "{}: one redelivery each", journal.engine);
        for guid in &missed {
            assert_eq!(runs.of(guid), 1, "{}: {guid}", journal.engine);
        }
        let now = status(&handle);
        assert_eq!(now.redelivered_total, 5, "{now:?}");
        assert!(
            now.leader && now.last_error.is_none() && now.watermark.is_some(),
            "{now:?}"
        );
        assert_eq!(now.missing, 0, "{now:?}");
        // Paged with GitHub's largest page and the Link cursors.
        let lists = log.list_calls();
        assert!(
            lists
                .iter()
                .all(|c| c.uri.contains("per_page=100") && c.who == TOKEN)
        );
        assert!(
            lists.iter().any(|c| c.uri.contains("cursor=v1_")),
            "{lists:#?}"
        );
        assert!(
            logs()
                .text()
                .contains("catch-up: asked GitHub to redeliver a missed delivery"),
        );
        server.shut_down().await.expect("shut down");
        // Stopped with the server: no request after its end.
        let calls = log.calls().len();
        tokio::time::sleep(INTERVAL * 4).await;
        assert_eq!(
            log.calls().len(),
            calls,
            "{}: the catch-up outlived the server",
            journal.engine
        );
    }
}

#[tokio::test]
async fn a_pass_asks_for_at_most_the_maximum_and_the_next_passes_for_the_rest() {
    let _ = logs();
    let journal = tests::journal::sqlite();
    let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
    let missed = sent_while_down(&log, 5).await;
    let runs = Runs::default();
    let config = catchup_config(&journal, &log).catchup_max_redeliveries(2);
    let (_server, handle) = serve(&log, counting(config, &runs)).await;
    eventually(SETTLE, "a first pass", || status(&handle).passes >= 1).await;
    let first = status(&handle);
    assert_eq!((first.missing, first.redelivered), (5, 2), "{first:?}");
    eventually(SETTLE, "all five run", || runs.total() == 5).await;
    // The oldest first, each once.
    let asked = log.redeliveries();
    assert_eq!(asked[..2], missed[..2], "{asked:?}");
    let mut sorted = asked.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "{asked:?}");
    assert_eq!(asked.len(), 5, "{asked:?}");
}

#[tokio::test]
async fn deliveries_in_the_journal_are_not_redelivered_whatever_github_logged() {
    let _ = logs();
    for journal in journals() {
        let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
        let runs = Runs::default();
        let (server, handle) = start(&journal, &log, &runs).await;
        // Processed here, logged by GitHub as timed out.
        let mut timed_out = Vec::new();
        for _ in 0..3 {
            timed_out.push(log.send_but_log_a_timeout("push", b"{}").await);
        }
        // And one GitHub never got through.
        let missed = tests::github_log::new_guid();
        log.log_attempt(&missed, "push", b"{}", false);
        eventually(SETTLE, "the missed one run", || runs.of(&missed) == 1).await;
        let seen = status(&handle);
        passes_after(&handle, &seen, 3).await;
        assert_eq!(log.redeliveries(), [missed.as_str()], "{}", journal.engine);
        for guid in &timed_out {
            assert_eq!(runs.of(guid), 1, "{}: {guid}", journal.engine);
        }
        drop(server);
    }
}

#[tokio::test]
async fn a_delivery_github_delivered_is_not_asked_for_again() {
    let _ = logs();
    for journal in journals() {
        let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
        // Failed, then redelivered with success (to another server: no row here).
        let delivered = tests::github_log::new_guid();
        log.log_attempt(&delivered, "push", b"{}", false);
        log.log_attempt(&delivered, "push", b"{}", true);
        let missed = tests::github_log::new_guid();
        log.log_attempt(&missed, "push", b"{}", false);
        let runs = Runs::default();
        let (_server, handle) = start(&journal, &log, &runs).await;
        eventually(SETTLE, "the missed one run", || runs.of(&missed) == 1).await;
        let seen = status(&handle);
        passes_after(&handle, &seen, 3).await;
        // The missed one's redelivery succeeded on GitHub's side too: asked once.
        assert_eq!(log.redeliveries(), [missed], "{}", journal.engine);
        assert_eq!(runs.of(&delivered), 0);
    }
}

#[tokio::test]
async fn the_watermark_survives_a_restart() {
    let _ = logs();
    for journal in journals() {
        let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
        log.set_page_size(2);
        // Two hours ago: past the minute the watermark stays behind a pass.
        log.set_clock_behind(Duration::from_secs(2 * 3600));
        sent_while_down(&log, 6).await;
        let runs = Runs::default();
        let (server, handle) = start(&journal, &log, &runs).await;
        eventually(SETTLE, "six runs", || runs.total() == 6).await;
        // Passes until one finds everything settled (the watermark at the newest).
        eventually(SETTLE, "a pass with nothing missing", || {
            let s = status(&handle);
            s.redelivered_total == 6 && s.missing == 0 && s.passes > 1
        })
        .await;
        let watermark = status(&handle).watermark.expect("a watermark");
        server.shut_down().await.expect("shut down");
        drop(handle);
        let before = log.list_calls().len();
        // A restart on the same journal: the list is read from the newest page only.
        let (_server, handle) = start(&journal, &log, &runs).await;
        passes_after(&handle, &CatchupStatus::default(), 2).await;
        let after: Vec<_> = log.list_calls().into_iter().skip(before).collect();
        assert!(!after.is_empty());
        assert!(
            after.iter().all(|c| !c.uri.contains("cursor=")),
            "{}: the restart rescanned older pages: {after:#?}",
            journal.engine
        );
        let restarted = status(&handle);
        assert!(restarted.watermark >= Some(watermark), "{restarted:?}");
        assert_eq!(log.redeliveries().len(), 6, "{}", journal.engine);
        assert_eq!(runs.total(), 6);
    }
}

#[tokio::test]
async fn rate_limits_stop_every_request_until_the_reset() {
    let _ = logs();
    for (limit, secs) in [(Limit::Primary, 2), (Limit::RetryAfter, 2)] {
        let journal = tests::journal::sqlite();
        let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
        let missed = tests::github_log::new_guid();
        log.log_attempt(&missed, "push", b"{}", false);
        let until = SystemTime::now() + Duration::from_secs(secs);
        log.rate_limit(limit, until);
        let runs = Runs::default();
        let (_server, handle) = start(&journal, &log, &runs).await;
        eventually(SETTLE, "rate limited", || {
            status(&handle).rate_limited_until.is_some()
        })
        .await;
        eventually(SETTLE, "the missed one run after the reset", || {
            runs.of(&missed) == 1
        })
        .await;
        let calls = log.calls();
        let limited: Vec<_> = calls
            .iter()
            .filter(|c| c.status != 200 && c.status != 202)
            .collect();
        assert_eq!(
            limited.len(),
            1,
            "{limit:?}: one request while limited: {calls:#?}"
        );
        // The answer's reset, to the second (x-ratelimit-reset) or after retry-after.
        let reset = match limit {
            Limit::Primary => until,
            Limit::RetryAfter => limited[0].at + Duration::from_secs(secs - 1),
        };
        let next = calls
            .iter()
            .find(|c| c.at > limited[0].at)
            .expect("a later call");
        assert!(
            next.at >= reset,
            "{limit:?}: a request at {:?}, before the reset at {reset:?}",
            next.at
        );
        assert!(
            logs()
                .text()
                .contains("catch-up: rate limited by GitHub until")
        );
        assert_eq!(log.redeliveries(), [missed]);
    }
}

#[tokio::test]
async fn a_rate_limit_in_the_middle_of_a_pass_stops_it_until_the_reset() {
    let _ = logs();
    let journal = tests::journal::sqlite();
    let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
    let mut missed = sent_while_down(&log, 3).await;
    // The list and the first redelivery pass; the second redelivery is refused.
    log.rate_limit_after(2, Limit::Primary, Duration::from_secs(2));
    let runs = Runs::default();
    let (_server, handle) = start(&journal, &log, &runs).await;
    eventually(SETTLE, "all three run", || runs.total() == 3).await;
    let calls = log.calls();
    let refused: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].status == 403)
        .collect();
    assert_eq!(refused, [2], "{calls:#?}");
    let (limit_at, next) = (calls[2].at, &calls[3]);
    assert!(
        next.at >= limit_at + Duration::from_secs(1),
        "a request {:?} after the limit",
        next.at.duration_since(limit_at)
    );
    let mut asked = log.redeliveries();
    asked.sort();
    missed.sort();
    assert_eq!(asked, missed, "each asked for once");
    // Counted at the end of the pass that asked (its redelivery may run before).
    eventually(SETTLE, "three counted", || {
        status(&handle).redelivered_total == 3
    })
    .await;
}

#[tokio::test]
async fn unprocessable_and_unusable_answers_back_off_and_are_logged() {
    let _ = logs();
    let journal = tests::journal::sqlite();
    let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
    log.answer_next(422, r#"{"message":"Validation Failed"}"#);
    let runs = Runs::default();
    let (server, handle) = start(&journal, &log, &runs).await;
    eventually(SETTLE, "the 422", || log.calls().len() == 1).await;
    // A secondary limit's back-off (a minute at first): nothing more for a while,
    // though the interval is short.
    tokio::time::sleep(INTERVAL * 10).await;
    assert_eq!(log.calls().len(), 1, "{:#?}", log.calls());
    let s = status(&handle);
    assert!(
        s.last_error.as_deref().is_some_and(|e| e.contains("422")),
        "{s:?}"
    );
    assert!(
        logs()
            .text()
            .contains("catch-up pass failed (status 422 Unprocessable Entity)")
    );
    // The server still takes deliveries.
    let (code, _, _) = tests::journal::post(
        &server.url(),
        "push",
        "aaaaaaaa-0000-0000-0000-000000000001",
        Some("7"),
        b"{}",
    )
    .await;
    assert_eq!(code, 202);
    drop(server);

    // Garbage, then items without their fields: logged, backed off (a second), and
    // the pass after them works.
    let journal = tests::journal::sqlite();
    let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
    let missed = tests::github_log::new_guid();
    log.log_attempt(&missed, "push", b"{}", false);
    log.answer_next(200, "<html>unicorn</html>");
    log.answer_next(200, r#"[{"id":1,"status":"OK"}]"#);
    let runs = Runs::default();
    let (_server, _handle) = start(&journal, &log, &runs).await;
    eventually(SETTLE, "the missed one run", || runs.of(&missed) == 1).await;
    let text = logs().text();
    assert!(
        text.contains("the deliveries list is not the expected JSON: expected value"),
        "{text}"
    );
    assert!(text.contains("missing field `guid`"), "{text}");
}

#[tokio::test]
async fn an_app_hook_is_read_with_a_verified_jwt() {
    let _ = logs();
    let journal = tests::journal::sqlite();
    let log = GithubLog::app(HOOK_ID).await;
    let missed = tests::github_log::new_guid();
    log.log_attempt(&missed, "push", b"{}", false);
    let runs = Runs::default();
    let app = config()
        .journal(&journal.url)
        .github_api_url(&log.url)
        .catchup("app")
        .github_app_id(APP_ID)
        .github_app_private_key(APP_PRIVATE_KEY)
        .catchup_interval(INTERVAL);
    let (_server, handle) = serve(&log, counting(app, &runs)).await;
    eventually(SETTLE, "the missed one run", || runs.of(&missed) == 1).await;
    assert_eq!(log.refused(), 0, "{:#?}", log.calls());
    assert!(log.jwts_verified() >= 2, "the list and the redelivery");
    assert_eq!(status(&handle).target, "app");
    // A wrong App id is refused, and says so.
    let journal = tests::journal::sqlite();
    let wrong = config()
        .journal(&journal.url)
        .github_api_url(&log.url)
        .catchup("app")
        .github_app_id(APP_ID + 1)
        .github_app_private_key(APP_PRIVATE_KEY)
        .catchup_interval(INTERVAL);
    let (_server, handle) = serve(&log, counting(wrong, &Runs::default())).await;
    eventually(SETTLE, "a refusal", || log.refused() > 0).await;
    eventually(SETTLE, "the error reported", || {
        status(&handle)
            .last_error
            .is_some_and(|e| e.contains("401"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_on_postgres_one_reads_the_log() {
    let _ = logs();
    let Some(journal) = postgres() else {
        return;
    };
    let log = GithubLog::repo(HOOK_ID, &["ghp_one", "ghp_two"]).await;
    let instance = |token: &'static str| {
        counting(
            catchup_config(&journal, &log).github_token(token),
            &Runs::default(),
        )
    };
    let mut instances = vec![
        ("ghp_one", serve(&log, instance("ghp_one")).await),
        ("ghp_two", serve(&log, instance("ghp_two")).await),
    ];
    eventually(SETTLE, "several list requests", || {
        log.list_calls().len() >= 6
    })
    .await;
    let who: Vec<String> = log.list_calls().into_iter().map(|c| c.who).collect();
    let leader = who[0].clone();
    assert!(
        who.iter().all(|w| *w == leader),
        "two instances read the log: {who:?}"
    );
    let at = instances
        .iter()
        .position(|(t, _)| *t == leader)
        .expect("a leader");
    let (_, (leader_server, _)) = instances.remove(at);
    let (other_token, (_other, other_journal)) = instances.remove(0);
    assert!(!status(&other_journal).leader);
    // The leader goes: the other takes over at its next interval.
    leader_server.shut_down().await.expect("shut down");
    eventually(SETTLE, "the other instance reading the log", || {
        log.list_calls().iter().any(|c| c.who == other_token)
    })
    .await;
    eventually(SETTLE, "the other instance leading", || {
        status(&other_journal).leader
    })
    .await;
}
