//! `/metrics` over real HTTP: a known mix of deliveries, then a scrape whose every
//! counter and histogram count is checked exactly; the journal's states, retries and
//! dead; the catch-up's counters; `/meta`'s refreshes and list age; the formats.

use hookserver::{Config, Delivery, DeliveryState, Hooks, Payload, State};
use serde::Deserialize;
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tests::{
    GithubStandIn, Reply, SECRET, TestServer, client, config,
    github_log::{GithubLog, eventually},
    journal::{TestJournal, entry, journals, post, wait_for},
};

/// Generous: a loaded machine, a journal write that waits out SQLite's busy timeout.
const DEADLINE: Duration = Duration::from_secs(30);

/// The scraped series of one family: labels (as written, `{...}`) → value.
type Series = BTreeMap<String, f64>;

struct Scrape {
    content_type: String,
    text: String,
}

impl Scrape {
    /// Every sample of `name`, exactly (not `name_something`).
    fn series(&self, name: &str) -> Series {
        self.text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (key, value) = line.rsplit_once(' ')?;
                let labels = key.strip_prefix(name)?;
                if !(labels.is_empty() || labels.starts_with('{')) {
                    return None;
                }
                let value = value.parse().unwrap_or_else(|e| panic!("{e}: {line}"));
                Some((labels.to_owned(), value))
            })
            .collect()
    }

    /// The one sample of `name` with exactly these labels.
    fn value(&self, name: &str, labels: &str) -> Option<f64> {
        self.series(name).get(labels).copied()
    }
}

async fn scrape_as(base: &str, accept: Option<&str>) -> Scrape {
    let mut request = client().get(format!("{base}/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("scrape sent");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    let text = response.text().await.expect("scrape read");
    Scrape { content_type, text }
}

async fn scrape(base: &str) -> Scrape {
    scrape_as(base, None).await
}

/// Scrapes until `done` holds, within [`DEADLINE`].
async fn scrape_until(base: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = Instant::now();
    loop {
        let scraped = scrape(base).await;
        if done(&scraped) {
            return scraped;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not after {DEADLINE:?}:\n{}",
            scraped.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `{event="E",outcome="O"}` → count, as the deliveries family is expected to be.
fn outcomes(expected: &[(&str, &str, f64)]) -> Series {
    expected
        .iter()
        .map(|(event, outcome, n)| (format!("{{event=\"{event}\",outcome=\"{outcome}\"}}"), *n))
        .collect()
}

fn event(name: &str) -> String {
    format!("{{event=\"{name}\"}}")
}

fn bucket(event: &str, le: &str) -> String {
    format!("{{event=\"{event}\",le=\"{le}\"}}")
}

/// The deliveries, the route and the health routes of `hooks`, served.
async fn serve<S: Clone + Send + Sync + 'static>(hooks: Hooks<S>) -> TestServer {
    let metrics = hooks.metrics_route("/metrics");
    TestServer::start(hooks.router("/hooks").merge(metrics)).await
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
}

/// A signed JSON delivery from `client` with its own GUID.
fn signed(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    guid: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    signed_with(SECRET, client, url, event, guid, body)
}

/// [`signed`] with `secret`.
fn signed_with(
    secret: &str,
    client: &reqwest::Client,
    url: &str,
    event: &str,
    guid: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("x-github-event", event)
        .header("x-github-delivery", guid)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            hookserver::signature::sign_sha256(secret.as_bytes(), body),
        )
        .body(body.to_vec())
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_outcome_of_a_known_mix_is_counted_exactly() {
    // IP checking on, against a fixed list holding 127.0.0.1 only: a client bound
    // to 127.0.0.2 is a stranger.
    let config = Config::new()
        .secret(SECRET)
        .allowed_ips(["127.0.0.1/32".parse().expect("CIDR")])
        .body_limit(4096)
        .handler_timeout(Duration::from_millis(200));
    let hooks = Hooks::new(config)
        .on("ping", || async { "pong" })
        .on("push", |Payload(_push): Payload<Push>| async { "pushed" })
        .on("create", || async {
            panic!("the handler's bug") as &'static str
        })
        .on("delete", || async {
            (http::StatusCode::INTERNAL_SERVER_ERROR, "its own 500")
        })
        .on("fork", std::future::pending::<&'static str>);
    let s = serve(hooks).await;
    let url = s.url();
    let c = client();
    let sign = |event: &str, body: &[u8]| signed(&c, &url, event, "g-1", body);
    let wrong = |event: &str, body: &[u8]| signed_with("wrong", &c, &url, event, "g-1", body);
    let ping = br#"{"zen":"Keep it logically awesome."}"#;

    let sent = [
        // handled: 3 pings and a push that fits its Payload<Push>.
        status_of(sign("ping", ping)).await,
        status_of(sign("ping", ping)).await,
        status_of(sign("ping", ping)).await,
        status_of(sign("push", br#"{"ref":"refs/heads/main"}"#)).await,
        // unhandled: a known event nobody handles, and a name GitHub does not have
        // (counted as `other`).
        status_of(sign("issues", b"{}")).await,
        status_of(sign("brand_new_event", b"{}")).await,
        // bad_signature: twice for ping; once under a made-up event name.
        status_of(wrong("ping", ping)).await,
        status_of(wrong("ping", ping)).await,
        status_of(wrong("pushh", ping)).await,
        // missing_signature.
        status_of(
            c.post(&url)
                .header("x-github-event", "ping")
                .header("x-github-delivery", "g-1")
                .header("content-type", "application/json")
                .body(ping.to_vec()),
        )
        .await,
        // missing_header: no GUID (event ping), no event at all (other).
        status_of(signed_without(&c, &url, "x-github-delivery", ping)).await,
        status_of(signed_without(&c, &url, "x-github-event", ping)).await,
        // unsupported_type.
        status_of(
            signed_without(&c, &url, "content-type", ping).header("content-type", "text/plain"),
        )
        .await,
        // too_large: over the 4 KiB limit.
        status_of(sign("ping", &vec![b' '; 5000])).await,
        // bad_payload: broken JSON, and a push that does not fit Payload<Push>.
        status_of(sign("ping", b"{")).await,
        status_of(sign("push", br#"{"ref":7}"#)).await,
        // handler_error: a panic, and a handler's own 500.
        status_of(sign("create", b"{}")).await,
        status_of(sign("delete", b"{}")).await,
        // handler_timeout.
        status_of(sign("fork", b"{}")).await,
        // method_not_allowed.
        status_of(c.get(&url).header("x-github-event", "ping")).await,
    ];
    assert_eq!(
        sent,
        [
            200, 200, 200, 200, 200, 200, 400, 400, 400, 400, 400, 400, 415, 413, 400, 400, 500,
            500, 503, 405
        ]
    );
    // ip_denied: from 127.0.0.2.
    let stranger = reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .expect("client");
    assert_eq!(
        status_of(signed(&stranger, &url, "ping", "g-1", ping)).await,
        403
    );

    let base = s.base.clone();
    let scraped = scrape(&base).await;
    assert_eq!(
        scraped.content_type, "text/plain; version=0.0.4; charset=utf-8",
        "the classic format for a client that does not ask for OpenMetrics"
    );
    assert_eq!(
        scraped.series("hookserver_deliveries_total"),
        outcomes(&[
            ("create", "handler_error", 1.0),
            ("delete", "handler_error", 1.0),
            ("fork", "handler_timeout", 1.0),
            ("issues", "unhandled", 1.0),
            ("other", "bad_signature", 1.0),
            ("other", "missing_header", 1.0),
            ("other", "unhandled", 1.0),
            ("ping", "bad_payload", 1.0),
            ("ping", "bad_signature", 2.0),
            ("ping", "handled", 3.0),
            ("ping", "ip_denied", 1.0),
            ("ping", "method_not_allowed", 1.0),
            ("ping", "missing_header", 1.0),
            ("ping", "missing_signature", 1.0),
            ("ping", "too_large", 1.0),
            ("ping", "unsupported_type", 1.0),
            ("push", "bad_payload", 1.0),
            ("push", "handled", 1.0),
        ]),
        "{}",
        scraped.text
    );
    // Every delivery is timed, by event: 12 pings.
    let delivery = "hookserver_delivery_duration_seconds";
    let counts = scraped.series(&format!("{delivery}_count"));
    let expected_counts: Series = [
        ("create", 1.0),
        ("delete", 1.0),
        ("fork", 1.0),
        ("issues", 1.0),
        ("other", 3.0),
        ("ping", 12.0),
        ("push", 2.0),
    ]
    .iter()
    .map(|(e, n)| (event(e), *n))
    .collect();
    assert_eq!(counts, expected_counts, "{}", scraped.text);
    assert_eq!(
        scraped.value(&format!("{delivery}_bucket"), &bucket("ping", "+Inf")),
        Some(12.0)
    );
    // Handlers ran for the 3 handled pings, the push that fit, the panic, the 500
    // and the timeout; not for the push its extractor refused.
    let handler = "hookserver_handler_duration_seconds";
    let ran: Series = [
        ("create", 1.0),
        ("delete", 1.0),
        ("fork", 1.0),
        ("ping", 3.0),
        ("push", 1.0),
    ]
    .iter()
    .map(|(e, n)| (event(e), *n))
    .collect();
    assert_eq!(
        scraped.series(&format!("{handler}_count")),
        ran,
        "{}",
        scraped.text
    );
    // The stopped handler ran its whole 200 ms timeout: seconds, not a unit off.
    assert_eq!(
        scraped.value(&format!("{handler}_bucket"), &bucket("fork", "0.1")),
        Some(0.0)
    );
    assert_eq!(
        scraped.value(&format!("{handler}_bucket"), &bucket("fork", "+Inf")),
        Some(1.0)
    );
    let fork_sum = scraped
        .value(&format!("{handler}_sum"), &event("fork"))
        .expect("fork's sum");
    assert!(fork_sum >= 0.2, "{fork_sum}");
    // A fixed allow-list and no journal: neither family is there.
    assert!(
        !scraped.text.contains("hookserver_meta_"),
        "{}",
        scraped.text
    );
    assert!(
        !scraped.text.contains("hookserver_journal_"),
        "{}",
        scraped.text
    );
    // The route is not a delivery: scraping counts nothing.
    let again = scrape(&base).await;
    assert_eq!(
        again.series("hookserver_deliveries_total"),
        scraped.series("hookserver_deliveries_total")
    );
}

/// A signed delivery with every header but `without`.
fn signed_without(
    c: &reqwest::Client,
    url: &str,
    without: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let mut request = c.post(url).body(body.to_vec());
    for (name, value) in [
        ("x-github-event", "ping".to_owned()),
        ("x-github-delivery", "g-1".to_owned()),
        ("content-type", "application/json".to_owned()),
        (
            "x-hub-signature-256",
            hookserver::signature::sign_sha256(SECRET.as_bytes(), body),
        ),
    ] {
        if name != without {
            request = request.header(name, value);
        }
    }
    request
}

#[tokio::test]
async fn openmetrics_when_asked_for() {
    let s = serve(Hooks::new(config()).on("ping", || async { "pong" })).await;
    let c = client();
    let ping = br#"{"zen":"z"}"#;
    assert_eq!(
        status_of(signed(&c, &s.url(), "ping", "g-1", ping)).await,
        200
    );
    let scraped = scrape_as(
        &s.base,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .await;
    assert_eq!(
        scraped.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(scraped.text.ends_with("# EOF\n"), "{}", scraped.text);
    assert!(
        scraped
            .text
            .contains("# TYPE hookserver_deliveries counter"),
        "{}",
        scraped.text
    );
    assert_eq!(
        scraped.value(
            "hookserver_deliveries_total",
            "{event=\"ping\",outcome=\"handled\"}"
        ),
        Some(1.0)
    );
}

/// How often each GUID's handler ran.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<BTreeMap<String, usize>>>);

impl Runs {
    fn note(&self, guid: &str) {
        *self
            .0
            .lock()
            .expect("runs")
            .entry(guid.to_owned())
            .or_default() += 1;
    }
}

async fn push_ok(State(runs): State<Runs>, delivery: Delivery) -> &'static str {
    runs.note(delivery.guid());
    "done"
}

async fn issues_fail(State(runs): State<Runs>, delivery: Delivery) -> http::StatusCode {
    runs.note(delivery.guid());
    http::StatusCode::INTERNAL_SERVER_ERROR
}

fn journaled(journal: &TestJournal, runs: &Runs) -> Hooks<Runs> {
    let config = config()
        .journal(&journal.url)
        .retry_attempts(2)
        .retry_backoff(Duration::from_millis(10));
    Hooks::with_state(config, runs.clone())
        .on("push", push_ok)
        .on("issues", issues_fail)
}

#[tokio::test]
async fn journal_answers_states_retries_and_dead() {
    for journal in journals() {
        let engine = journal.engine;
        let runs = Runs::default();
        let hooks = journaled(&journal, &runs);
        let handle = hooks.journal().expect("a journal");
        let s = serve(hooks).await;
        let url = s.url();
        let body = b"{}";
        assert_eq!(post(&url, "push", "a", None, body).await.0, 202, "{engine}");
        assert_eq!(
            post(&url, "issues", "b", None, body).await.0,
            202,
            "{engine}"
        );
        assert_eq!(post(&url, "ping", "c", None, body).await.0, 200, "{engine}");
        // The push again: `Already queued` or `Duplicate delivery`, a duplicate either way.
        let (status, _, text) = post(&url, "push", "a", None, body).await;
        assert!(
            [(202, "Already queued"), (200, "Duplicate delivery")]
                .contains(&(status, text.as_str())),
            "{engine}: {status} {text}"
        );
        wait_for(&handle, DEADLINE, "push done, issues dead", |e| {
            entry(e, "a", None).is_some_and(|e| e.state == DeliveryState::Done)
                && entry(e, "b", None).is_some_and(|e| e.state == DeliveryState::Dead)
        })
        .await;
        // The counts are read at most once a second: poll until they show.
        let scraped = scrape_until(&s.base, "the journal's states", |s| {
            s.value("hookserver_journal_deliveries", "{state=\"dead\"}") == Some(1.0)
                && s.value("hookserver_journal_deliveries", "{state=\"done\"}") == Some(1.0)
        })
        .await;
        let states: Series = [
            ("dead", 1.0),
            ("done", 1.0),
            ("queued", 0.0),
            ("running", 0.0),
            ("unhandled", 1.0),
        ]
        .iter()
        .map(|(state, n)| (format!("{{state=\"{state}\"}}"), *n))
        .collect();
        assert_eq!(
            scraped.series("hookserver_journal_deliveries"),
            states,
            "{engine}"
        );
        assert_eq!(scraped.value("hookserver_journal_up", ""), Some(1.0));
        assert_eq!(
            scraped.value("hookserver_journal_oldest_pending_age_seconds", ""),
            Some(0.0),
            "{engine}: nothing pending"
        );
        // One retry (attempt 1 failed, 2 allowed), then dead.
        assert_eq!(
            scraped.value("hookserver_journal_retries_total", ""),
            Some(1.0),
            "{engine}: {}",
            scraped.text
        );
        assert_eq!(
            scraped.value("hookserver_journal_dead_total", ""),
            Some(1.0),
            "{engine}"
        );
        assert_eq!(
            scraped.series("hookserver_deliveries_total"),
            outcomes(&[
                ("issues", "queued", 1.0),
                ("ping", "unhandled", 1.0),
                ("push", "duplicate", 1.0),
                ("push", "queued", 1.0),
            ]),
            "{engine}: {}",
            scraped.text
        );
        // Handlers timed in the workers: the push once, the failing issues twice.
        let ran: Series = [("issues", 2.0), ("push", 1.0)]
            .iter()
            .map(|(e, n)| (event(e), *n))
            .collect();
        assert_eq!(
            scraped.series("hookserver_handler_duration_seconds_count"),
            ran,
            "{engine}: {}",
            scraped.text
        );
        // unavailable: another process holds SQLite's write lock.
        if let Some(path) = journal.sqlite_path() {
            let (locked_tx, locked_rx) = std::sync::mpsc::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let locker = std::thread::spawn(move || {
                let conn = rusqlite::Connection::open(&path).expect("open");
                conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
                locked_tx.send(()).expect("send");
                let _ = release_rx.recv();
                conn.execute_batch("COMMIT").expect("unlock");
            });
            locked_rx.recv().expect("locked");
            let (status, _, text) = post(&url, "push", "d", None, body).await;
            assert_eq!((status, text.as_str()), (503, "Journal unavailable"));
            release_tx.send(()).expect("release");
            locker.join().expect("locker");
            let scraped = scrape(&s.base).await;
            assert_eq!(
                scraped.value(
                    "hookserver_deliveries_total",
                    "{event=\"push\",outcome=\"unavailable\"}"
                ),
                Some(1.0),
                "{}",
                scraped.text
            );
        }
    }
}

#[tokio::test]
async fn meta_refreshes_by_result_and_the_lists_age() {
    // No list yet: the first deliveries get 503 until GitHub answers.
    let github = GithubStandIn::start(Reply::raw(500, &[], "down")).await;
    let config = Config::new()
        .secret(SECRET)
        .github_api_url(&github.url)
        .meta_ttl(Duration::from_secs(1));
    let s = serve(Hooks::new(config).on("ping", || async { "pong" })).await;
    let c = client();
    let ping = br#"{"zen":"z"}"#;
    let send = || status_of(signed(&c, &s.url(), "ping", "g-1", ping));
    assert_eq!(send().await, 503);
    github.set(Reply::ranges(&["127.0.0.0/8"]));
    let (mut refused, mut handled) = (1.0, 0.0);
    let started = Instant::now();
    // Until the back-off lets the next request go and it succeeds; then until a
    // revalidation after the 1 s TTL is answered 304.
    loop {
        match send().await {
            503 => refused += 1.0,
            200 => handled += 1.0,
            other => panic!("answered {other}"),
        }
        let scraped = scrape(&s.base).await;
        if scraped.value(
            "hookserver_meta_refreshes_total",
            "{result=\"not_modified\"}",
        ) >= Some(1.0)
        {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "{}", scraped.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scraped = scrape(&s.base).await;
    let refreshes = scraped.series("hookserver_meta_refreshes_total");
    let result = |r: &str| refreshes.get(&format!("{{result=\"{r}\"}}")).copied();
    assert_eq!(result("fetched"), Some(1.0), "{}", scraped.text);
    assert_eq!(result("rate_limited"), Some(0.0));
    let failed = result("failed").expect("failed is listed");
    assert!(failed >= 1.0, "{}", scraped.text);
    // Every request the stand-in saw is counted once, under its result.
    assert_eq!(
        refreshes.values().sum::<f64>(),
        github.hits() as f64,
        "{}",
        scraped.text
    );
    let age = scraped
        .value("hookserver_meta_list_age_seconds", "")
        .expect("a list's age");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(
        scraped.series("hookserver_deliveries_total"),
        outcomes(&[
            ("ping", "allow_list_unavailable", refused),
            ("ping", "handled", handled),
        ])
    );
}

#[tokio::test]
async fn catchup_found_and_redelivered() {
    const HOOK_ID: u64 = 7;
    const TOKEN: &str = "ghp_test-token";
    let journal = tests::journal::sqlite();
    let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
    // Three deliveries GitHub could not make: the server is down.
    for i in 0..3 {
        log.send("push", format!(r#"{{"n":{i}}}"#).as_bytes()).await;
    }
    let runs = Runs::default();
    let config = config()
        .journal(&journal.url)
        .github_api_url(&log.url)
        .github_token(TOKEN)
        .catchup(format!("repo:o/r/{HOOK_ID}"))
        .catchup_interval(Duration::from_millis(200));
    let hooks = Hooks::with_state(config, runs.clone()).on("push", push_ok);
    let handle = hooks.journal().expect("a journal");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    log.set_hook_url(&format!("http://{addr}/hooks"));
    let metrics = hooks.metrics_route("/metrics");
    let s = TestServer::start_on(
        listener,
        hookserver::Server::new(),
        hooks.router("/hooks").merge(metrics),
    );
    wait_for(&handle, DEADLINE, "the missed deliveries done", |e| {
        e.len() == 3 && e.iter().all(|e| e.state == DeliveryState::Done)
    })
    .await;
    eventually(DEADLINE, "a pass after the redeliveries", || {
        handle
            .catchup()
            .is_some_and(|c| c.redelivered_total == 3 && c.passes >= 2)
    })
    .await;
    let status = handle.catchup().expect("a catch-up");
    let scraped = scrape(&s.base).await;
    assert_eq!(
        scraped.value("hookserver_catchup_redeliveries_total", ""),
        Some(3.0),
        "{}",
        scraped.text
    );
    // Found per pass: 3 at least, more when a pass ran before a redelivery arrived.
    let missing = scraped
        .value("hookserver_catchup_missing_total", "")
        .expect("missing");
    assert!(missing >= 3.0, "{}", scraped.text);
    assert!(missing as u64 >= status.missing_total, "{status:?}");
    // The redeliveries arrived as deliveries.
    assert_eq!(
        scraped.value(
            "hookserver_deliveries_total",
            "{event=\"push\",outcome=\"queued\"}"
        ),
        Some(3.0),
        "{}",
        scraped.text
    );
}

#[tokio::test]
async fn too_many_pending_and_the_handler_ack_are_outcomes_of_their_own() {
    let journal = tests::journal::sqlite();
    let (open, gate) = tokio::sync::watch::channel(false);
    let config = config()
        .journal(&journal.url)
        .journal_max_pending(1)
        .workers(1);
    // `push` waits for the gate: its delivery stays pending (running).
    let hooks = Hooks::with_state(config, gate).on(
        "push",
        |State(mut gate): State<tokio::sync::watch::Receiver<bool>>| async move {
            let _ = gate.wait_for(|open| *open).await;
            "let through"
        },
    );
    let handle = hooks.journal().expect("a journal");
    let s = serve(hooks).await;
    let url = s.url();
    assert_eq!(post(&url, "push", "a", None, b"{}").await.0, 202);
    let (status, _, text) = post(&url, "push", "b", None, b"{}").await;
    assert_eq!(
        (status, text.as_str()),
        (503, "Too many pending deliveries")
    );
    // Pending, and so its age is there: more than 0 s once a scrape reads it.
    let scraped = scrape_until(&s.base, "one running", |s| {
        s.value("hookserver_journal_deliveries", "{state=\"running\"}") == Some(1.0)
            && s.value("hookserver_journal_oldest_pending_age_seconds", "") > Some(0.0)
    })
    .await;
    assert_eq!(
        scraped.series("hookserver_deliveries_total"),
        outcomes(&[("push", "queued", 1.0), ("push", "too_many_pending", 1.0)]),
        "{}",
        scraped.text
    );
    // The handler has not ended: not timed yet.
    assert!(
        scraped
            .series("hookserver_handler_duration_seconds_count")
            .is_empty(),
        "{}",
        scraped.text
    );
    open.send_replace(true);
    wait_for(&handle, DEADLINE, "a done", |e| {
        entry(e, "a", None).is_some_and(|e| e.state == DeliveryState::Done)
    })
    .await;
    let scraped = scrape(&s.base).await;
    assert_eq!(
        scraped.value("hookserver_handler_duration_seconds_count", &event("push")),
        Some(1.0),
        "{}",
        scraped.text
    );

    // HOOKSERVER_ACK=handler: the handler answers in the request, and that is `handled`.
    let journal = tests::journal::sqlite();
    let config = tests::config()
        .journal(&journal.url)
        .ack(hookserver::Ack::Handler);
    let s = serve(Hooks::new(config).on("ping", || async { "pong" })).await;
    let (status, _, text) = post(&s.url(), "ping", "c", None, b"{}").await;
    assert_eq!((status, text.as_str()), (200, "pong"));
    let scraped = scrape(&s.base).await;
    assert_eq!(
        scraped.series("hookserver_deliveries_total"),
        outcomes(&[("ping", "handled", 1.0)]),
        "{}",
        scraped.text
    );
    assert_eq!(
        scraped.value("hookserver_handler_duration_seconds_count", &event("ping")),
        Some(1.0)
    );
}
