//! The one line per delivery: what it carries, at which level, and that it is the
//! only line a delivery produces, whatever its outcome.

use axum::body::Body;
use hookserver::{Config, Hooks, Payload};
use serde::Deserialize;
use serde_json::Value;
use std::{sync::OnceLock, time::Duration};
use tests::{
    CapturedLogs, EditHeaders, GithubStandIn, Reply, SECRET, TestServer, capture_logs, client,
    delivery, send,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tower::ServiceExt;

/// One capture for the whole binary, at the finest level: a delivery must produce
/// one line, not one line at the levels a test happens to look at.
fn logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| capture_logs(tracing::Level::TRACE))
}

#[derive(Deserialize)]
#[allow(dead_code)]
enum Kind {
    Bug,
}

#[derive(Deserialize)]
struct Label {
    #[allow(dead_code)]
    kind: Kind,
}

#[derive(Deserialize)]
struct Issue {
    #[allow(dead_code)]
    issue: Value,
}

/// The lines that mention `needle`.
fn lines_with(needle: &str) -> Vec<String> {
    logs()
        .text()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn one_line_per_delivery_with_its_event_action_guid_and_status() {
    logs();
    let hooks = Hooks::new(Config::new().secret(SECRET).validate_ip(false))
        .on("pull_request.opened", |_: Value| async {
            "routed by action"
        })
        .on("issues", |_: Payload<Issue>| async {
            "typed, no action asked"
        })
        .on("push", |_: Value| async { "no action at all" });
    let s = TestServer::hooks(hooks).await;
    let cases = [
        ("pull_request", r#"{"action":"opened","number":1}"#, 200),
        // The handler never needs the action; the log still names it, read from
        // the first key where GitHub writes it.
        ("issues", r#"{"action":"closed","issue":{"number":2}}"#, 200),
        ("push", r#"{"ref":"refs/heads/main","commits":[]}"#, 200),
        ("issues", r#"{"action":"closed","issue":"#, 400),
    ];
    for (i, (event, body, want)) in cases.iter().enumerate() {
        let request = delivery(&client(), &s.url(), event, *body)
            .set_header("x-github-delivery", format!("fields-{i}"));
        let (status, text) = send(request).await;
        assert_eq!(status, *want, "{event} {body}: {text}");
    }
    drop(s);
    for (i, (event, action, level, status)) in [
        ("pull_request", Some("opened"), " INFO ", 200),
        ("issues", Some("closed"), " INFO ", 200),
        ("push", None, " INFO ", 200),
        // A flood of bad requests must not drown the log: 4xx at debug.
        ("issues", Some("closed"), " DEBUG ", 400),
    ]
    .into_iter()
    .enumerate()
    {
        let lines = lines_with(&format!("guid=\"fields-{i}\""));
        let [line] = &lines[..] else {
            panic!("{} lines for delivery {i}: {lines:#?}", lines.len())
        };
        assert!(line.contains("delivery answered"), "{line}");
        assert!(line.contains(level), "{line}");
        assert!(line.contains(&format!("event=\"{event}\"")), "{line}");
        match action {
            Some(action) if status == 200 => {
                assert!(line.contains(&format!("action=\"{action}\"")), "{line}")
            }
            Some(_) => {}
            None => assert!(!line.contains("action="), "{line}"),
        }
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(line.contains("elapsed_us="), "{line}");
    }
}

/// What one case expects of its line.
struct Expect {
    guid: String,
    status: u16,
    level: &'static str,
    reason: Option<&'static str>,
}

fn expect(
    guid: impl Into<String>,
    status: u16,
    level: &'static str,
    reason: Option<&'static str>,
) -> Expect {
    Expect {
        guid: guid.into(),
        status,
        level,
        reason,
    }
}

/// Starts a delivery that declares `declared` bytes of body and sends `sent`.
async fn stalled(addr: &str, guid: &str, declared: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /hooks HTTP/1.1\r\nhost: x\r\nx-github-event: push\r\nx-github-delivery: {guid}\r\n\
         content-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&vec![b' '; sent])
        .await
        .expect("part of the body");
    stream
}

async fn read_answer(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Every row of the README's error table, plus the handled and unhandled
/// deliveries: each produces exactly one line, at its level, with its reason, and
/// no other line (at any level, from hookserver or its dependencies) names it.
#[tokio::test]
async fn every_outcome_is_one_line_at_its_level() {
    logs();
    let mut cases: Vec<Expect> = Vec::new();
    let config = || {
        Config::new()
            .secret(SECRET)
            .validate_ip(false)
            .body_limit(1000)
            .body_timeout(Duration::from_secs(1))
            .handler_timeout(Duration::from_secs(1))
    };
    let hooks = Hooks::new(config())
        .on("label", |_: Payload<Label>| async { "typed" })
        .on("push", |_: Value| async { "handled" })
        .on("delete", || async {
            if true {
                panic!("boom in the handler");
            }
            "unreachable"
        })
        .on("create", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        });
    let s = TestServer::hooks(hooks).await;
    let c = client();
    let go = |guid: &str, request: reqwest::RequestBuilder| {
        let request = request.set_header("x-github-delivery", guid);
        async move { send(request).await }
    };

    let (status, _) = go("o-handled", delivery(&c, &s.url(), "push", "{}")).await;
    assert_eq!(status, 200);
    cases.push(expect("o-handled", 200, " INFO ", None));
    let (status, text) = go("o-unused", delivery(&c, &s.url(), "fork", "{}")).await;
    assert_eq!((status, text.as_str()), (200, "Hook not used"));
    cases.push(expect("o-unused", 200, " INFO ", None));
    let (status, _) = go("o-method", c.get(s.url())).await;
    assert_eq!(status, 405);
    cases.push(expect(
        "o-method",
        405,
        " DEBUG ",
        Some("Method not allowed"),
    ));
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(2000));
    let (status, _) = go("o-large", delivery(&c, &s.url(), "push", big)).await;
    assert_eq!(status, 413);
    cases.push(expect("o-large", 413, " DEBUG ", Some("Payload too large")));
    let (status, _) = go(
        "o-nosig",
        delivery(&c, &s.url(), "push", "{}").remove_header("x-hub-signature-256"),
    )
    .await;
    assert_eq!(status, 400);
    cases.push(expect("o-nosig", 400, " DEBUG ", Some("Missing signature")));
    let (status, _) = go(
        "o-badsig",
        delivery(&c, &s.url(), "push", "{}").set_header("x-hub-signature-256", "sha256=00"),
    )
    .await;
    assert_eq!(status, 400);
    cases.push(expect("o-badsig", 400, " DEBUG ", Some("Wrong signature")));
    let signed = tests::delivery(&c, &s.url(), "push", "{}")
        .build()
        .expect("request");
    let sig = signed.headers()["x-hub-signature-256"].clone();
    let twice = delivery(&c, &s.url(), "push", "{}").header("x-hub-signature-256", sig);
    let (status, text) = go("o-twosig", twice).await;
    assert_eq!(status, 400, "{text}");
    cases.push(expect(
        "o-twosig",
        400,
        " DEBUG ",
        Some("Wrong signature: more than one X-Hub-Signature-256 header"),
    ));
    let (status, _) = go(
        "o-noevent",
        delivery(&c, &s.url(), "push", "{}").remove_header("x-github-event"),
    )
    .await;
    assert_eq!(status, 400);
    cases.push(expect(
        "o-noevent",
        400,
        " DEBUG ",
        Some("Missing header: X-GitHub-Event"),
    ));
    let (status, _) = go(
        "o-type",
        delivery(&c, &s.url(), "push", "{}").set_header("content-type", "text/plain"),
    )
    .await;
    assert_eq!(status, 415);
    cases.push(expect(
        "o-type",
        415,
        " DEBUG ",
        Some("Unsupported Content-Type"),
    ));
    let (status, _) = go(
        "o-form",
        delivery(&c, &s.url(), "push", "other=1")
            .set_header("content-type", "application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(status, 400);
    cases.push(expect(
        "o-form",
        400,
        " DEBUG ",
        Some("Form body must carry"),
    ));
    let (status, _) = go("o-json", delivery(&c, &s.url(), "push", "{")).await;
    assert_eq!(status, 400);
    cases.push(expect(
        "o-json",
        400,
        " DEBUG ",
        Some("Invalid JSON payload"),
    ));
    // serde's message quotes the payload: its newline must not reach the log raw.
    let (status, text) = go(
        "o-shape",
        delivery(
            &c,
            &s.url(),
            "label",
            r#"{"kind":"evil\nWARN forged line"}"#,
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains('\n'), "the answer quotes it: {text}");
    cases.push(expect(
        "o-shape",
        400,
        " DEBUG ",
        Some(r"kind: unknown variant `evil\nWARN forged line`, expected `Bug`"),
    ));
    let (status, text) = go("o-panic", delivery(&c, &s.url(), "delete", "{}")).await;
    assert_eq!((status, text.as_str()), (500, "Internal server error"));
    cases.push(expect(
        "o-panic",
        500,
        " ERROR ",
        Some("hook handler panicked: boom in the handler"),
    ));
    let (status, _) = go("o-timeout", delivery(&c, &s.url(), "create", "{}")).await;
    assert_eq!(status, 503);
    cases.push(expect(
        "o-timeout",
        503,
        " WARN ",
        Some("hook handler timed out"),
    ));

    // A body that does not arrive in time.
    let mut slow = stalled(&s.addr(), "o-slow", 100, 10).await;
    assert!(read_answer(&mut slow).await.starts_with("HTTP/1.1 408"));
    cases.push(expect(
        "o-slow",
        408,
        " DEBUG ",
        Some("Request body not received in time"),
    ));
    // A full budget: one stalled body holds 900 of its 1,000 bytes (with a body
    // timeout longer than the wait for room, so it keeps holding them).
    let budget = Hooks::new(
        config()
            .max_buffered_bytes(1000)
            .body_timeout(Duration::from_secs(10)),
    )
    .on("push", |_: Value| async { "ok" });
    let budget = TestServer::hooks(budget).await;
    let holder = stalled(&budget.addr(), "o-holder", 950, 900).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, text) = go(
        "o-budget",
        delivery(
            &c,
            &budget.url(),
            "push",
            format!("{{\"a\":\"{}\"}}", "x".repeat(300)),
        ),
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (
            503,
            "Server busy: too many request bodies in memory, try again later"
        )
    );
    cases.push(expect("o-budget", 503, " WARN ", Some("Server busy")));
    drop(holder);

    // The source check: outside the fixed list, and a bad forwarded address.
    let fixed = Hooks::new(
        Config::new()
            .secret(SECRET)
            .allowed_ips(["192.30.252.0/22".parse().unwrap()])
            .trusted_proxies(["127.0.0.1/32".parse().unwrap()]),
    )
    .on("push", |_: Value| async { "ok" });
    let fixed = TestServer::hooks(fixed).await;
    let (status, _) = go(
        "o-stranger",
        delivery(&c, &fixed.url(), "push", "{}").set_header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(status, 403);
    cases.push(expect(
        "o-stranger",
        403,
        " DEBUG ",
        Some("203.0.113.9 is not in the allow-list"),
    ));
    let (status, _) = go(
        "o-xff",
        delivery(&c, &fixed.url(), "push", "{}").set_header("x-forwarded-for", "github.com"),
    )
    .await;
    assert_eq!(status, 400);
    cases.push(expect(
        "o-xff",
        400,
        " DEBUG ",
        Some("Invalid X-Forwarded-For"),
    ));

    // GitHub's /meta failing, and rate limiting us.
    for (guid, reply, reason) in [
        (
            "o-meta-down",
            Reply::raw(500, &[], "oops"),
            "Error reaching GitHub",
        ),
        (
            "o-meta-limited",
            Reply::raw(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "4102444800"),
                ],
                "",
            ),
            "Rate limited from GitHub until",
        ),
    ] {
        let github = GithubStandIn::start(reply).await;
        let hooks = Hooks::new(
            Config::new()
                .secret(SECRET)
                .github_api_url(&github.url)
                .trusted_proxies(["127.0.0.1/32".parse().unwrap()]),
        )
        .on("push", |_: Value| async { "ok" });
        let meta = TestServer::hooks(hooks).await;
        let request =
            delivery(&c, &meta.url(), "push", "{}").set_header("x-forwarded-for", "192.30.252.1");
        let (status, _) = go(guid, request).await;
        assert_eq!(status, 503);
        cases.push(expect(guid, 503, " WARN ", Some(reason)));
    }

    // A router served without peer addresses.
    let router = Hooks::new(
        Config::new()
            .secret(SECRET)
            .allowed_ips(["192.30.252.0/22".parse().unwrap()]),
    )
    .router("/hooks");
    let request = http::Request::post("/hooks")
        .header("x-github-delivery", "o-nopeer")
        .header("x-github-event", "push")
        .body(Body::from("{}"))
        .expect("request");
    let response = router.oneshot(request).await.expect("answer");
    assert_eq!(response.status(), 500);
    cases.push(expect(
        "o-nopeer",
        500,
        " ERROR ",
        Some("the server gives no peer address"),
    ));

    drop((s, fixed, budget));
    for case in cases {
        let lines = lines_with(&format!("\"{}\"", case.guid));
        let [line] = &lines[..] else {
            panic!("{} lines for {}: {lines:#?}", lines.len(), case.guid)
        };
        assert!(line.contains("delivery answered"), "{line}");
        assert!(line.contains(case.level), "{}: {line}", case.guid);
        assert!(
            line.contains(&format!("status={}", case.status)),
            "{}: {line}",
            case.guid
        );
        if let Some(reason) = case.reason {
            assert!(line.contains("reason="), "{line}");
            assert!(line.contains(reason), "{}: {line}", case.guid);
        }
    }
    // Each line names the outcome the metrics count (the README's error tables).
    for (guid, outcome) in [
        ("o-handled", "handled"),
        ("o-unused", "unhandled"),
        ("o-method", "method_not_allowed"),
        ("o-large", "too_large"),
        ("o-nosig", "missing_signature"),
        ("o-badsig", "bad_signature"),
        ("o-twosig", "bad_signature"),
        ("o-noevent", "missing_header"),
        ("o-type", "unsupported_type"),
        ("o-form", "bad_payload"),
        ("o-json", "bad_payload"),
        ("o-shape", "bad_payload"),
        ("o-panic", "handler_error"),
        ("o-timeout", "handler_timeout"),
        ("o-slow", "body_timeout"),
        ("o-budget", "busy"),
        ("o-stranger", "ip_denied"),
        ("o-xff", "ip_denied"),
        ("o-meta-down", "allow_list_unavailable"),
        ("o-meta-limited", "allow_list_unavailable"),
        ("o-nopeer", "misconfigured"),
    ] {
        let lines = lines_with(&format!("\"{guid}\""));
        assert!(
            lines
                .iter()
                .any(|line| line.contains(&format!(" outcome={outcome} "))),
            "{guid} should be {outcome}: {lines:#?}"
        );
    }
}
