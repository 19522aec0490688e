//! `hookserver deliveries` against the stand-in for GitHub's delivery log
//! (`tests::github_log`), paged by `Link` cursors.

mod support;

use hookserver::Hooks;
use support::hookserver;
use tests::{TestServer, config, github_log::GithubLog};

const HOOK_ID: u64 = 5150;
const TOKEN: &str = "ghp_cli_test";

#[tokio::test(flavor = "multi_thread")]
async fn lists_githubs_log_page_by_page_and_only_failures_with_failed() {
    let server =
        TestServer::hooks(Hooks::new(config()).on("push", |_: serde_json::Value| async { "ok" }))
            .await;
    let log = GithubLog::repo(HOOK_ID, &[TOKEN]).await;
    // Three pages of two.
    log.set_page_size(2);
    let mut ok = Vec::new();
    // Sent while the hook is unreachable: GitHub logs a failure.
    let failed = log.send("push", br#"{"ref":"refs/heads/x"}"#).await;
    log.set_hook_url(&server.url());
    for _ in 0..4 {
        ok.push(log.send("push", br#"{"ref":"refs/heads/main"}"#).await);
    }
    let target = format!("repo:o/r/{HOOK_ID}");
    let env = [
        ("HOOKSERVER_CATCHUP", target.as_str()),
        ("GITHUB_TOKEN", TOKEN),
        ("GITHUB_API_URL", log.url.as_str()),
    ];
    let run = hookserver(&["deliveries"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("DELIVERED"), "{run:?}");
    for guid in &ok {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(guid.as_str()) && l.contains(" 200 ") && l.contains("OK")),
            "{guid}: {run:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(failed.as_str()) && l.contains("failed to connect")),
        "{run:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&format!("5 of 5 attempts read from {target}").as_str()),
        "{run:?}"
    );
    assert_eq!(log.list_calls().len(), 3, "three pages");
    assert!(log.list_calls().iter().all(|c| c.who == TOKEN));

    let run = hookserver(&["deliveries", "--failed", "--json"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), 1, "{run:?}");
    assert_eq!(listed[0]["guid"], failed.as_str());
    assert_eq!(listed[0]["ok"], false);
    assert_eq!(listed[0]["status_code"], 0);
    assert_eq!(listed[0]["event"], "push");

    // --limit stops paging once it has enough.
    let calls = log.list_calls().len();
    let run = hookserver(&["deliveries", "--limit", "2"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with(&format!("2 of 2 attempts read from {target}\n")),
        "{run:?}"
    );
    assert_eq!(log.list_calls().len(), calls + 1, "one page");

    // Credentials GitHub refuses: a failure that says so.
    let bad = [
        ("HOOKSERVER_CATCHUP", target.as_str()),
        ("GITHUB_TOKEN", "ghp_wrong"),
        ("GITHUB_API_URL", log.url.as_str()),
    ];
    let run = hookserver(&["deliveries"], &bad).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot read GitHub's delivery log: status 401 Unauthorized"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("ghp_wrong"), "{run:?}");
}
