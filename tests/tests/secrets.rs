//! Secrets never leak: every log line (at TRACE) and every answer produced by a run
//! of bad inputs is searched for the secret, the token and the MACs the server
//! computed. A MAC in an error body would let an attacker forge signatures.

use hookserver::{
    Config, Hooks,
    signature::{sign_sha1, sign_sha256},
    test,
};
use serde_json::Value;
use tests::{GithubStandIn, Reply, TestServer, capture_logs};

const SECRET: &str = "hunter2-SUPER-secret-value";
const TOKEN: &str = "ghp_T0KENvalue0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_token_or_mac_in_logs_or_answers() {
    let logs = capture_logs(tracing::Level::TRACE);

    let github = GithubStandIn::start(Reply::raw(500, &[], "down")).await;
    let config = Config::new()
        .secret(SECRET)
        .secret("second-secret-also-hidden")
        .allow_sha1(true)
        .github_api_url(&github.url)
        .github_token(TOKEN)
        .trusted_proxies(["127.0.0.1/32".parse().unwrap()]);
    let fixed = config
        .clone()
        .allowed_ips(["127.0.0.1/32".parse().unwrap()])
        .body_limit(4096);
    let debug = format!("{config:?} {fixed:?}");
    let meta_checked =
        TestServer::hooks(Hooks::new(config).on("ping", |_: Value| async { "pong" })).await;
    let s = TestServer::hooks(
        Hooks::new(fixed)
            .on("ping", |_: Value| async { "pong" })
            .on("push", |_: Value| async {
                panic!("handler bug") as &'static str
            }),
    )
    .await;

    let bodies: Vec<String> = vec![
        r#"{"zen":"x"}"#.into(),
        "not json".into(),
        "payload=%7B".into(),
        "x".repeat(5000),
        String::new(),
    ];
    let mut macs = Vec::new();
    let mut answers = Vec::new();
    for body in &bodies {
        macs.push(sign_sha256(SECRET.as_bytes(), body.as_bytes())[7..].to_owned());
        macs.push(sign_sha1(SECRET.as_bytes(), body.as_bytes())[5..].to_owned());
        let of = |event: &str| {
            test::delivery(event)
                .guid("guid-1")
                .payload_bytes(body.clone())
        };
        let signed = of("ping").secret(SECRET);
        let deliveries = [
            of("ping"),                                              // missing signature
            of("ping").header("x-hub-signature-256", "sha256=0000"), // malformed
            of("ping").secret("other"),                              // wrong secret
            of("ping").secret("other").sha1_only(),                  // wrong sha1
            signed.clone().header("content-type", "text/plain"),
            signed
                .clone()
                .header("content-type", "application/x-www-form-urlencoded"),
            signed.clone().remove_header("x-github-event"),
            of("push").secret(SECRET),
            signed.clone().header("x-forwarded-for", "garbage"),
            signed.clone(),
        ];
        for delivery in deliveries {
            let answer = delivery.send(&s.url()).await;
            let head = format!("{} {:?}", answer.status, answer.headers);
            answers.push(format!("{head} {}", answer.text));
        }
        // Through the /meta-checked router, whose GitHub is failing.
        let answer = signed.send(&meta_checked.url()).await;
        answers.push(format!("{} {}", answer.status, answer.text));
    }

    let logs = logs.text();
    // The capture works, and saw the failures we caused.
    assert!(
        logs.contains("delivery answered"),
        "no delivery logged:\n{logs}"
    );
    assert!(logs.contains("hook handler panicked"), "{logs}");
    assert!(
        logs.contains("could not fetch GitHub's hook ranges"),
        "{logs}"
    );
    assert!(answers.iter().any(|a| a.contains("Wrong signature")));
    assert!(answers.iter().any(|a| a.starts_with("503")));
    let haystacks = [
        ("logs", logs.as_str()),
        ("answers", &answers.join("\n")),
        ("Debug", &debug),
    ];
    let needles = [SECRET, "second-secret-also-hidden", TOKEN]
        .into_iter()
        .map(str::to_owned)
        .chain(macs);
    for needle in needles {
        for (name, haystack) in haystacks {
            assert!(!haystack.contains(&needle), "{needle:?} found in {name}");
            assert!(
                !haystack.to_lowercase().contains(&needle.to_lowercase()),
                "{needle:?} (any case) found in {name}"
            );
        }
    }
    assert!(!github.requests().is_empty());
}
