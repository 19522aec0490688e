//! The one line per delivery: what it carries, and at which level.

use hookserver::{Config, Hooks, Payload};
use serde::Deserialize;
use serde_json::Value;
use tests::{SECRET, TestServer, capture_logs, client, delivery, send};

#[derive(Deserialize)]
struct Issue {
    #[allow(dead_code)]
    issue: Value,
}

#[tokio::test]
async fn one_line_per_delivery_with_its_event_action_guid_and_status() {
    let logs = capture_logs(tracing::Level::INFO);
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
        // 4xx is logged at debug, below this subscriber's level.
        ("issues", r#"{"action":"closed","issue":"#, 400),
    ];
    for (event, body, want) in cases {
        let (status, text) = send(delivery(&client(), &s.url(), event, body)).await;
        assert_eq!(status, want, "{event} {body}: {text}");
    }
    drop(s);
    let logs = logs.text();
    let answered: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("delivery answered"))
        .collect();
    assert_eq!(answered.len(), 3, "{logs}");
    for (line, (event, action)) in answered.iter().zip([
        ("pull_request", Some("opened")),
        ("issues", Some("closed")),
        ("push", None),
    ]) {
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains(&format!("event=\"{event}\"")), "{line}");
        match action {
            Some(action) => assert!(line.contains(&format!("action=\"{action}\"")), "{line}"),
            None => assert!(!line.contains("action="), "{line}"),
        }
        assert!(
            line.contains("guid=\"72d3162e-cc78-11e3-81ab-4c9367dc0958\""),
            "{line}"
        );
        assert!(line.contains("status=200"), "{line}");
        assert!(line.contains("elapsed_us="), "{line}");
    }
}
