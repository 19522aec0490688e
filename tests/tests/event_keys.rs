//! Event keys: one grammar and one table of GitHub's events in both crates, the
//! run-time check of `Hooks::on`, and free-form `repository_dispatch` actions
//! routed over HTTP.

use hookserver::{Config, Hooks, hook};
use serde_json::Value;
use tests::{SECRET, TestServer, capture_logs, client, delivery, send};

/// The grammar and the table are compiled by both crates from copies that
/// `scripts/gen-github-events.py` makes: they must not drift apart.
#[test]
fn both_crates_compile_the_same_files() {
    assert!(
        include_str!("../../hookserver/src/event_key.rs")
            == include_str!("../../hookserver-macros/src/event_key.rs"),
        "hookserver-macros/src/event_key.rs differs from hookserver/src/event_key.rs: \
         run scripts/gen-github-events.py"
    );
    assert!(
        include_str!("../../hookserver/src/github_events.rs")
            == include_str!("../../hookserver-macros/src/github_events.rs"),
        "the two github_events.rs differ: run scripts/gen-github-events.py"
    );
}

#[test]
fn every_key_in_the_table_is_accepted() {
    let keys = hookserver::__private::github_event_keys();
    for key in [
        "push",
        "ping",
        "pull_request",
        "pull_request.opened",
        "check_run.completed",
    ] {
        assert!(
            keys.iter().any(|k| k == key),
            "{key} missing from the table"
        );
    }
    assert!(keys.len() > 300, "{} keys", keys.len());
    for key in &keys {
        assert_eq!(
            hookserver::__private::check_event_key(key),
            Ok(None),
            "{key}"
        );
    }
    assert_eq!(
        hookserver::__private::free_form_events(),
        ["repository_dispatch"]
    );
    for key in [
        "*",
        "repository_dispatch.on-demand-test",
        "repository_dispatch.deployTrigger",
        "repository_dispatch.release.v2",
        "repository_dispatch.deploy prod",
    ] {
        assert_eq!(
            hookserver::__private::check_event_key(key),
            Ok(None),
            "{key}"
        );
    }
}

#[test]
fn malformed_keys_are_rejected_with_the_reason() {
    const GRAMMAR: &str = "expected `event`, `event.action` or `*`, where `event` is \
                           lowercase letters, digits and `_`, and `action` is the text \
                           after the first `.`";
    let long = format!("repository_dispatch.{}", "x".repeat(101));
    let cases = [
        ("", format!("empty event key: {GRAMMAR}")),
        (
            "Push",
            format!("invalid event key `Push`: {GRAMMAR}; did you mean `push`?"),
        ),
        (
            "pull-request.opened",
            format!(
                "invalid event key `pull-request.opened`: {GRAMMAR}; \
                 did you mean `pull_request.opened`?"
            ),
        ),
        (".opened", format!("invalid event key `.opened`: {GRAMMAR}")),
        (
            "*.opened",
            format!("invalid event key `*.opened`: {GRAMMAR}"),
        ),
        (
            "push.",
            "invalid event key `push.`: the action after `.` is empty; write `push` for \
             every action"
                .to_owned(),
        ),
        (
            "issues.*",
            "invalid event key `issues.*`: write `issues` for every action of `issues`".to_owned(),
        ),
        (
            "repository_dispatch.a\u{7f}",
            "invalid event key `repository_dispatch.a\\u{7f}`: the action contains a \
             control character"
                .to_owned(),
        ),
        (
            long.as_str(),
            format!(
                "invalid event key `{long}`: the action is 101 characters long, at most \
                 100 are allowed"
            ),
        ),
    ];
    for (key, want) in cases {
        assert_eq!(
            hookserver::__private::check_event_key(key),
            Err(want),
            "{key:?}"
        );
    }
}

#[test]
fn unknown_keys_are_explained_not_rejected() {
    for (key, want) in [
        (
            "pul_request",
            "unknown GitHub event `pul_request`; did you mean `pull_request`?",
        ),
        (
            "pull_request.openned",
            "unknown action `openned` of GitHub event `pull_request`; \
             did you mean `pull_request.opened`?",
        ),
        ("push.created", "`push` has no actions: write `push`"),
        ("brand_new_event", "unknown GitHub event `brand_new_event`"),
    ] {
        assert_eq!(
            hookserver::__private::check_event_key(key),
            Ok(Some(want.to_owned())),
            "{key}"
        );
    }
}

#[test]
#[should_panic(expected = "invalid event key `pull_request.`: the action after `.` is empty")]
fn hooks_on_panics_on_a_malformed_key() {
    let _ = Hooks::new(config()).on("pull_request.", || async {});
}

#[test]
fn hooks_on_panics_with_the_grammar_message() {
    let caught = std::panic::catch_unwind(|| {
        let _ = Hooks::new(config()).on("issues.*", || async {});
    });
    let payload = caught.expect_err("panicked");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert_eq!(
        message,
        "invalid event key `issues.*`: write `issues` for every action of `issues`"
    );
}

fn config() -> Config {
    Config::new().secret(SECRET).validate_ip(false)
}

#[hook("repository_dispatch.release.v2")]
async fn release_v2() -> &'static str {
    "release.v2"
}

#[hook("repository_dispatch.on-demand-test", "repository_dispatch")]
async fn other_dispatch(payload: Value) -> String {
    format!("dispatch {}", payload["action"])
}

#[tokio::test]
async fn a_free_form_action_reaches_its_handler() {
    let hooks = Hooks::new(config()).hook(release_v2).hook(other_dispatch);
    let s = TestServer::hooks(hooks).await;
    let c = client();
    let body =
        |action: &str| format!(r#"{{"action":"{action}","branch":"main","client_payload":{{}}}}"#);
    for (action, want) in [
        ("release.v2", "release.v2"),
        ("on-demand-test", "dispatch \"on-demand-test\""),
        ("release", "dispatch \"release\""),
        ("v2", "dispatch \"v2\""),
    ] {
        assert_eq!(
            send(delivery(&c, &s.url(), "repository_dispatch", body(action))).await,
            (200, want.to_owned()),
            "{action}"
        );
    }
}

#[hook("brand_new_event", "pull_request.brand_new_action", unchecked)]
async fn too_new() {}

#[hook("pull_request.opened", "repository_dispatch.whatever-you-like")]
async fn known() {}

#[test]
fn an_unknown_key_is_registered_with_a_warning() {
    // The only test of this binary that installs the subscriber.
    let logs = capture_logs(tracing::Level::WARN);
    let hooks = Hooks::new(config())
        .on("pul_request", || async {})
        .hook(too_new)
        .hook(known)
        .on("issues.opened", || async {});
    let registered = format!("{hooks:?}");
    for key in [
        "pul_request",
        "brand_new_event",
        "pull_request.brand_new_action",
    ] {
        assert!(registered.contains(&format!("\"{key}\"")), "{registered}");
    }
    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    let [warning] = warnings[..] else {
        panic!("expected one warning, got: {text}")
    };
    assert!(
        warning.contains(
            "event key `pul_request` may never match: unknown GitHub event `pul_request`; \
             did you mean `pull_request`?"
        ),
        "{warning}"
    );
    assert!(warning.contains("@octokit/openapi-webhooks"), "{warning}");
    assert!(warning.contains("It is registered anyway"), "{warning}");
    assert!(
        warning.contains(&format!("location={}:", file!())),
        "the caller's line: {warning}"
    );
}
