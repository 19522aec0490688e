//! Rejections a person notices: the first rejected delivery of each kind is a warning
//! with its reason, the rest of the interval one count (written when the interval
//! ends), and every one of them is still a line of its own at debug.

use hookserver::{Config, Hooks, signature::sign_sha256};
use serde_json::Value;
use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};
use tests::{CapturedLogs, SECRET, TestServer, capture_logs, github_delivery};

/// One capture for the binary, at debug: where every rejection is, in full.
fn logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| capture_logs(tracing::Level::DEBUG))
}

fn lines_with(needles: &[&str]) -> Vec<String> {
    logs()
        .text()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_owned)
        .collect()
}

/// Long enough for 51 deliveries over loopback on a loaded machine, short enough
/// for a test to wait out.
const INTERVAL: Duration = Duration::from_secs(4);

fn hooks() -> Hooks {
    let config = Config::new()
        .secret(SECRET)
        .secret("the previous secret")
        .validate_ip(false);
    Hooks::new(hookserver::__private::rejection_log_interval(
        config, INTERVAL,
    ))
    .on("push", |_: Value| async { "handled" })
}

#[tokio::test]
async fn a_wrong_signature_warns_once_with_its_header_then_one_count_per_interval() {
    logs();
    let s = TestServer::hooks(hooks()).await;
    let body = r#"{"ref":"refs/heads/main"}"#;
    let somebody_else = "a secret of somebody else";
    let forged = sign_sha256(somebody_else.as_bytes(), body.as_bytes());
    let genuine = sign_sha256(SECRET.as_bytes(), body.as_bytes());
    let wrong = |i: usize| {
        github_delivery("push", body)
            .guid(&format!("wrong-{i}"))
            .secret(somebody_else)
    };
    let started = Instant::now();
    let answer = wrong(0).send(&s.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (400, "Wrong signature")
    );
    let warnings = lines_with(&[" WARN ", "delivery rejected: Wrong signature"]);
    let [warning] = &warnings[..] else {
        panic!("{} warnings: {warnings:#?}", warnings.len())
    };
    assert!(
        warning.contains("X-Hub-Signature-256 matches none of the 2 secrets tried"),
        "{warning}"
    );
    assert!(warning.contains("event=\"push\""), "{warning}");
    for i in 1..=50 {
        assert_eq!(wrong(i).send(&s.url()).await.status, 400);
    }
    assert!(
        started.elapsed() < INTERVAL,
        "51 deliveries took {:?}, longer than the interval: the test cannot tell a \
         summary from a flood",
        started.elapsed()
    );
    assert_eq!(
        lines_with(&[" WARN ", "Wrong signature"]).len(),
        1,
        "50 more within the interval add no warning"
    );
    // Each one is at debug, in full.
    for i in 0..=50 {
        let lines = lines_with(&[&format!("guid=\"wrong-{i}\""), "delivery answered"]);
        let [line] = &lines[..] else {
            panic!("{} lines for delivery {i}: {lines:#?}", lines.len())
        };
        assert!(line.contains(" DEBUG "), "{line}");
        assert!(
            line.contains("reason=\"Wrong signature: X-Hub-Signature-256 matches none"),
            "{line}"
        );
    }
    // Once the interval is over, its count is written without waiting for another
    // rejection: the flood may have stopped.
    let deadline = started + INTERVAL + Duration::from_secs(20);
    let summary = loop {
        let summaries = lines_with(&[" WARN ", "more deliveries rejected: Wrong signature"]);
        if let [summary] = &summaries[..] {
            break summary.clone();
        }
        assert!(summaries.is_empty(), "{summaries:#?}");
        assert!(Instant::now() < deadline, "no count after the interval");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        started.elapsed() >= INTERVAL,
        "the count came before the interval ended"
    );
    assert!(
        summary.contains("50 more deliveries rejected: Wrong signature"),
        "{summary}"
    );
    assert!(
        summary.contains("last_reason=\"Wrong signature: X-Hub-Signature-256 matches none"),
        "{summary}"
    );
    // The count began the next interval: one more rejection is counted, not a
    // warning of its own.
    assert_eq!(wrong(51).send(&s.url()).await.status, 400);
    assert_eq!(
        lines_with(&[" WARN ", "Wrong signature"]).len(),
        2,
        "the warning and the count only"
    );
    // Never a MAC or a secret, at any level.
    let text = logs().text();
    for secret in [&forged, &genuine, &forged[7..], &genuine[7..], SECRET] {
        assert!(!text.contains(secret), "the log holds {secret}");
    }
    assert!(!text.contains("the previous secret"));
}

#[tokio::test]
async fn each_kind_has_its_own_first_warning() {
    logs();
    let s = TestServer::hooks(hooks()).await;
    let issues = |guid: &str| github_delivery("issues", "{}").guid(guid);
    let unsigned = issues("kinds-nosig").remove_header("x-hub-signature-256");
    assert_eq!(unsigned.send(&s.url()).await.status, 400);
    // (No wrong signature here: the other test counts those.)
    let text = issues("kinds-type").header("content-type", "text/plain");
    assert_eq!(text.send(&s.url()).await.status, 415);
    let warnings = lines_with(&[" WARN ", "delivery rejected", "event=\"issues\""]);
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].contains("delivery rejected: Missing signature"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1].contains("delivery rejected: Unsupported Content-Type"),
        "{warnings:#?}"
    );
}
