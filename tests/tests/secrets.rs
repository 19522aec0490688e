//! Secrets never leak: every log line (at TRACE) and every answer produced by a run
//! of bad inputs is searched for the secret, the token and the MACs the server
//! computed. A MAC in an error body would let an attacker forge signatures.

use hookserver::{
    Config, Hooks,
    signature::{sign_sha1, sign_sha256},
};
use serde_json::Value;
use tests::{EditHeaders, GithubStandIn, Reply, TestServer, capture_logs, client};

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
    let c = client();
    for body in &bodies {
        let good256 = sign_sha256(SECRET.as_bytes(), body.as_bytes());
        let good1 = sign_sha1(SECRET.as_bytes(), body.as_bytes());
        macs.push(good256[7..].to_owned());
        macs.push(good1[5..].to_owned());
        let base = || {
            c.post(s.url())
                .header("x-github-event", "ping")
                .header("x-github-delivery", "guid-1")
                .header("content-type", "application/json")
                .body(body.clone())
        };
        let requests = vec![
            base(),                                                  // missing signature
            base().set_header("x-hub-signature-256", "sha256=0000"), // malformed
            base().set_header(
                "x-hub-signature-256",
                sign_sha256(b"other", body.as_bytes()),
            ), // wrong secret
            base().set_header("x-hub-signature", sign_sha1(b"other", body.as_bytes())), // wrong sha1
            base()
                .set_header("x-hub-signature-256", &good256)
                .set_header("content-type", "text/plain"),
            base()
                .set_header("x-hub-signature-256", &good256)
                .set_header("content-type", "application/x-www-form-urlencoded"),
            base()
                .set_header("x-hub-signature-256", &good256)
                .remove_header("x-github-event"),
            base()
                .set_header("x-hub-signature-256", &good256)
                .set_header("x-github-event", "push"),
            base()
                .set_header("x-hub-signature-256", &good256)
                .set_header("x-forwarded-for", "garbage"),
            base().set_header("x-hub-signature-256", &good256),
        ];
        for request in requests {
            let response = request.send().await.unwrap();
            let head = format!("{} {:?}", response.status(), response.headers());
            answers.push(format!("{head} {}", response.text().await.unwrap()));
        }
        // Through the /meta-checked router, whose GitHub is failing.
        let response = c
            .post(meta_checked.url())
            .header("x-hub-signature-256", &good256)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        answers.push(format!(
            "{} {}",
            response.status(),
            response.text().await.unwrap()
        ));
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
