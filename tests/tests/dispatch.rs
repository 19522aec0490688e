//! Which handler answers, what it can ask for, and what happens when it fails.

use bytes::Bytes;
use hookserver::{Config, Delivery, Hooks, Payload, State};
use serde::Deserialize;
use serde_json::Value;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use tests::{GUID, TestServer, config, github_delivery};

fn pr(action: &str) -> String {
    format!(
        r#"{{"action":"{action}","number":42,"pull_request":{{"title":"Fix it","draft":false}}}}"#
    )
}

#[tokio::test]
async fn the_most_specific_handler_wins() {
    let hooks = Hooks::new(config())
        .on("pull_request.opened", |_: Value| async {
            "pull_request.opened"
        })
        .on("pull_request", |_: Value| async { "pull_request" })
        .on(
            "*",
            |d: Delivery| async move { format!("* ({})", d.event()) },
        );
    let s = TestServer::hooks(hooks).await;
    let cases = [
        ("pull_request", pr("opened"), "pull_request.opened"),
        ("pull_request", pr("closed"), "pull_request"),
        ("pull_request", r#"{"number":1}"#.to_owned(), "pull_request"),
        ("issues", pr("opened"), "* (issues)"),
        (
            "push",
            r#"{"ref":"refs/heads/main"}"#.to_owned(),
            "* (push)",
        ),
    ];
    for (event, body, want) in cases {
        let answer = github_delivery(event, body.clone()).send(&s.url()).await;
        assert_eq!(answer.status, 200, "{event} {body}");
        assert_eq!(answer.text, want, "{event} {body}");
    }
}

#[tokio::test]
async fn an_action_handler_alone_does_not_catch_other_actions() {
    let hooks = Hooks::new(config()).on("pull_request.opened", |_: Value| async { "opened" });
    let s = TestServer::hooks(hooks).await;
    for (event, body, want) in [
        ("pull_request", pr("opened"), "opened"),
        ("pull_request", pr("closed"), "Hook not used"),
        ("ping", "{}".to_owned(), "Hook not used"),
    ] {
        let answer = github_delivery(event, body.clone()).send(&s.url()).await;
        assert_eq!(answer.status, 200, "{event} {body}");
        assert_eq!(answer.text, want, "{event} {body}");
    }
}

#[tokio::test]
async fn handlers_choose_their_status_and_headers() {
    let hooks = Hooks::new(config()).on("push", || async {
        (
            axum::http::StatusCode::ACCEPTED,
            [("x-queued", "yes")],
            "queued",
        )
    });
    let s = TestServer::hooks(hooks).await;
    let answer = github_delivery("push", "{}").send(&s.url()).await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.headers["x-queued"], "yes");
    assert_eq!(answer.text, "queued");
}

#[tokio::test]
async fn delivery_metadata_reaches_the_handler() {
    let hooks = Hooks::new(config()).on("pull_request", |d: Delivery, raw: Bytes| async move {
        format!(
            "{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{}|{}",
            d.event(),
            d.action(),
            d.guid(),
            d.hook_id(),
            d.installation_target_type(),
            d.installation_target_id(),
            d.user_agent(),
            raw.len(),
            d.headers().contains_key("x-hub-signature-256"),
        )
    });
    let s = TestServer::hooks(hooks).await;
    let body = pr("synchronize");
    let answer = github_delivery("pull_request", body.clone())
        .send(&s.url())
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.text,
        format!(
            "pull_request|Some(\"synchronize\")|{GUID}|Some(292430182)|\
             Some(\"repository\")|Some(79929171)|Some(\"GitHub-Hookshot/044aadd\")|{}|true",
            body.len()
        )
    );
}

#[derive(Deserialize)]
struct PullRequestEvent {
    number: u64,
    pull_request: PullRequest,
}

#[derive(Deserialize)]
struct PullRequest {
    title: String,
    draft: bool,
}

#[tokio::test]
async fn typed_payloads_and_their_mismatches() {
    let hooks = Hooks::new(config()).on(
        "pull_request",
        |Payload(e): Payload<PullRequestEvent>| async move {
            format!(
                "#{} {} draft={}",
                e.number, e.pull_request.title, e.pull_request.draft
            )
        },
    );
    let s = TestServer::hooks(hooks).await;
    let answer = github_delivery("pull_request", pr("opened"))
        .send(&s.url())
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text, "#42 Fix it draft=false");

    let wrong_type = r#"{"number":"forty-two","pull_request":{"title":"t","draft":false}}"#;
    let answer = github_delivery("pull_request", wrong_type)
        .send(&s.url())
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .text
            .starts_with("Payload does not match: number: invalid type: string"),
        "{}",
        answer.text
    );

    let missing = r#"{"number":1,"pull_request":{"title":"t"}}"#;
    let answer = github_delivery("pull_request", missing)
        .send(&s.url())
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.text.contains("pull_request: missing field `draft`"),
        "{}",
        answer.text
    );
}

#[derive(Clone, Default)]
struct App {
    seen: Arc<AtomicUsize>,
}

#[tokio::test]
async fn state_is_shared_with_handlers() {
    let app = App::default();
    let hooks = Hooks::with_state(config(), app.clone()).on(
        "push",
        |State(app): State<App>, _: Value| async move {
            (app.seen.fetch_add(1, Ordering::SeqCst) + 1).to_string()
        },
    );
    let s = TestServer::hooks(hooks).await;
    for want in ["1", "2", "3"] {
        let answer = github_delivery("push", "{}").send(&s.url()).await;
        assert_eq!((answer.status.as_u16(), answer.text.as_str()), (200, want));
    }
    assert_eq!(app.seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_and_the_server_keeps_serving() {
    let hooks = Hooks::new(config())
        .on("push", |_: Value| async {
            panic!("handler bug") as &'static str
        })
        .on("ping", |_: Value| async { "pong" });
    let s = TestServer::hooks(hooks).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let url = s.url();
        tasks.push(tokio::spawn(async move {
            let event = if i % 2 == 0 { "push" } else { "ping" };
            let answer = github_delivery(event, "{}").send(&url).await;
            (event, answer.status.as_u16(), answer.text)
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            ("push", status, text) => {
                assert_eq!((status, text.as_str()), (500, "Internal server error"))
            }
            (_, status, text) => assert_eq!((status, text.as_str()), (200, "pong")),
        }
    }
    let answer = github_delivery("ping", "{}").send(&s.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (200, "pong")
    );
}

#[tokio::test]
async fn a_handler_panicking_before_its_future_is_a_500() {
    // A closure that panics while creating its future, not while running it.
    let hooks = Hooks::new(config()).on("push", |_: Value| -> std::future::Ready<&'static str> {
        panic!("sync bug")
    });
    let s = TestServer::hooks(hooks).await;
    let answer = github_delivery("push", "{}").send(&s.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (500, "Internal server error")
    );
}

#[test]
#[should_panic(expected = "ping hook already registered")]
fn registering_a_key_twice_panics() {
    let _ = Hooks::new(config())
        .on("ping", || async { "a" })
        .on("ping", || async { "b" });
}

#[test]
#[should_panic(expected = "pull_request.opened hook already registered")]
fn registering_an_action_twice_panics() {
    let _ = Hooks::new(config())
        .on("pull_request.opened", || async { "a" })
        .on("pull_request.opened", || async { "b" });
}

#[test]
#[should_panic(expected = "invalid event key `Push`")]
fn a_malformed_key_panics() {
    let _ = Hooks::new(config()).on("Push", || async { "a" });
}

#[test]
#[should_panic(expected = "no secret: signature checking is on, so Config::secret is required")]
fn a_registry_without_a_secret_refuses_to_start() {
    let _ = Hooks::new(Config::new().validate_ip(false));
}

#[test]
fn try_new_returns_the_problem_naming_the_setting() {
    let err = Hooks::try_new(Config::new().validate_ip(false)).unwrap_err();
    assert_eq!(err.setting(), Some("Config::secret"));
    let err = Hooks::try_new(Config::new().secret("")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Config::secret: expected a non-empty secret, got \"\""
    );
}
