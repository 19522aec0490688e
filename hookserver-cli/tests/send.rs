//! `hookserver send` against a real server on loopback: signed like GitHub, accepted
//! with the right secret, refused with a wrong one, as a form, with SHA-1; and the
//! command line's errors.

mod support;

use hookserver::{Delivery, Hooks};
use support::{file, hookserver};
use tests::{SECRET, TestServer, config};

/// A server whose `push` handler answers what it received.
async fn echo_server() -> TestServer {
    let hooks = Hooks::new(config()).on("push", |d: Delivery| async move {
        let header = |name: &str| {
            d.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        format!(
            "guid={} type={} sha1={} agent={} payload={}",
            d.guid(),
            header("content-type"),
            header("x-hub-signature").starts_with("sha1="),
            header("user-agent"),
            String::from_utf8_lossy(d.payload()),
        )
    });
    TestServer::hooks(hooks).await
}

const PUSH: &str = r#"{"ref":"refs/heads/main","commits":[],"note":"a+b&c=d"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn accepted_with_the_right_secret_and_refused_with_a_wrong_one() {
    let server = echo_server().await;
    let payload = file("push.json", PUSH);
    let path = payload.to_str().unwrap();
    let url = server.url();
    let run = hookserver(
        &["send", "push", path, "--url", &url, "--guid", "g-1"],
        &[("GITHUB_WEBHOOKS_KEY", SECRET)],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("push g-1 -> 200 OK"), "{run:?}");
    assert!(
        run.stdout
            .contains("guid=g-1 type=application/json sha1=false"),
        "{run:?}"
    );
    assert!(run.stdout.contains("agent=GitHub-Hookshot/"), "{run:?}");
    assert!(run.stdout.contains(&format!("payload={PUSH}")), "{run:?}");
    // A fresh GUID when none is given.
    let run = hookserver(
        &["send", "push", path, "--url", &url],
        &[("GITHUB_WEBHOOKS_KEY", SECRET)],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let guid = run.stdout.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(guid.len(), 36, "{run:?}");
    assert!(run.stdout.contains(&format!("guid={guid}")), "{run:?}");

    let run = hookserver(
        &["send", "push", path, "--url", &url],
        &[("GITHUB_WEBHOOKS_KEY", "not the secret")],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("-> 400 Bad Request"), "{run:?}");
    assert!(run.stdout.contains("Wrong signature"), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("error: {url} answered 400 Bad Request")),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn form_and_sha1_reach_the_server_as_such() {
    let server = echo_server().await;
    let payload = file("push.json", PUSH);
    let url = server.url();
    let run = hookserver(
        &[
            "send",
            "push",
            payload.to_str().unwrap(),
            "--url",
            &url,
            "--form",
            "--sha1",
            "-v",
            "--secret-env",
            "MY_HOOK_SECRET",
        ],
        &[("MY_HOOK_SECRET", SECRET)],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("type=application/x-www-form-urlencoded sha1=true"),
        "{run:?}"
    );
    // The form's payload field decoded is the file's JSON, byte for byte.
    assert!(run.stdout.contains(&format!("payload={PUSH}")), "{run:?}");
    // -v: the answer's headers.
    assert!(run.stdout.contains("content-type: text/plain"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_is_a_failure_with_a_clear_message() {
    let payload = file("push.json", PUSH);
    let url = tests::github_log::closed_url();
    let run = hookserver(
        &[
            "send",
            "push",
            payload.to_str().unwrap(),
            "--url",
            &url,
            "--timeout",
            "5",
        ],
        &[("GITHUB_WEBHOOKS_KEY", SECRET)],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with(&format!("error: cannot deliver to {url}: ")),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_and_missing_settings_exit_2_with_a_clear_message() {
    let payload = file("push.json", PUSH);
    let not_json = file("not.json", "{ nope");
    let path = payload.to_str().unwrap();
    let key = [("GITHUB_WEBHOOKS_KEY", SECRET)];
    /// The arguments, the environment, what the error says.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (
            &["send", "push"],
            &key,
            "the following required arguments were not provided",
        ),
        (
            &["send", "push", path, "--bogus"],
            &key,
            "unexpected argument '--bogus'",
        ),
        (
            &["send", "push", path, "--timeout", "0"],
            &key,
            "--timeout <SECS>",
        ),
        (&["sned"], &[], "unrecognized subcommand 'sned'"),
        (
            &["send", "push", path],
            &[],
            "error: GITHUB_WEBHOOKS_KEY is not set: set it to the hook's secret",
        ),
        (
            &["send", "push", path, "--secret-env", "OTHER"],
            &key,
            "error: OTHER is not set",
        ),
        (
            &["send", "push", not_json.to_str().unwrap()],
            &key,
            "is not JSON",
        ),
        (
            &["send", "push", "/nonexistent/p.json"],
            &key,
            "cannot read /nonexistent/p.json",
        ),
        (
            &["journal", "list", "--state", "nope"],
            &[("HOOKSERVER_JOURNAL", "sqlite:unused.db")],
            "expected one of queued, running, done, dead, unhandled",
        ),
        (
            &["journal", "list", "--since", "yesterday"],
            &[("HOOKSERVER_JOURNAL", "sqlite:unused.db")],
            "expected a time (2026-05-01",
        ),
        (
            &["journal", "replay"],
            &[],
            "required arguments were not provided",
        ),
        (
            &["journal", "stats"],
            &[],
            "error: HOOKSERVER_JOURNAL is not set: set it to the server's journal",
        ),
        (
            &["journal", "stats"],
            &[("HOOKSERVER_JOURNAL", "mysql://x")],
            "error: HOOKSERVER_JOURNAL: ",
        ),
        (
            &["deliveries"],
            &[],
            "error: HOOKSERVER_CATCHUP is not set: it names the hook",
        ),
        (
            &["deliveries"],
            &[("HOOKSERVER_CATCHUP", "repo:o/r/1")],
            "error: GITHUB_TOKEN is not set",
        ),
    ];
    for (args, env, message) in cases {
        let run = hookserver(args, env).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
    // --help is not an error.
    let run = hookserver(&["send", "--help"], &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("--secret-env <VAR>"), "{run:?}");
}
