//! Every early answer of the pipeline, over real loopback HTTP.

use hookserver::{Config, Hooks, signature::sign_sha256, test};
use serde_json::Value;
use tests::{
    EditHeaders, SECRET, TestServer, client, config, delivery, form, github_delivery, send,
};

const PING: &str = r#"{"zen":"Keep it logically awesome.","hook_id":1}"#;

async fn server(config: Config) -> TestServer {
    TestServer::hooks(Hooks::new(config).on("ping", |_: Value| async { "pong" })).await
}

#[tokio::test]
async fn a_signed_delivery_reaches_its_handler() {
    let s = server(config()).await;
    let answer = github_delivery("ping", PING).send(&s.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (200, "pong")
    );
}

#[tokio::test]
async fn only_post_is_served() {
    let s = server(config()).await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::HEAD,
    ] {
        let response = client()
            .request(method.clone(), s.url())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST", "{method}");
    }
    let response = client()
        .post(format!("{}/other", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn missing_signature_is_400() {
    let s = server(config()).await;
    let answer = github_delivery("ping", PING)
        .remove_header("x-hub-signature-256")
        .send(&s.url())
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (400, "Missing signature")
    );
}

#[tokio::test]
async fn wrong_or_malformed_signature_is_400() {
    let s = server(config()).await;
    let other_secret = github_delivery("ping", PING).secret("not the secret");
    let good = sign_sha256(SECRET.as_bytes(), PING.as_bytes());
    let tampered_body = sign_sha256(SECRET.as_bytes(), b"{}");
    let mut wrong = vec![other_secret];
    for bad in [
        tampered_body.as_str(),
        &good[7..], // no prefix
        "sha256=",
        "sha256=xyz",
        "sha1=0123456789012345678901234567890123456789",
        &good[..good.len() - 1],
    ] {
        wrong.push(github_delivery("ping", PING).header("x-hub-signature-256", bad));
    }
    for delivery in wrong {
        let answer = delivery.send(&s.url()).await;
        assert_eq!(
            (answer.status.as_u16(), answer.text.as_str()),
            (400, "Wrong signature"),
            "{delivery:?}"
        );
    }
}

#[tokio::test]
async fn legacy_sha1_only_when_allowed() {
    let sha1_only = github_delivery("ping", PING).sha1_only();
    let strict = server(config()).await;
    let answer = sha1_only.send(&strict.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (400, "Missing signature")
    );

    let legacy = server(config().allow_sha1(true)).await;
    let answer = sha1_only.send(&legacy.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (200, "pong")
    );
}

#[tokio::test]
async fn any_configured_secret_is_accepted_during_rotation() {
    let s = server(
        Config::new()
            .secret("new secret")
            .secret(SECRET)
            .validate_ip(false),
    )
    .await;
    for secret in [SECRET, "new secret"] {
        let answer = github_delivery("ping", PING)
            .secret(secret)
            .send(&s.url())
            .await;
        assert_eq!(answer.status, 200, "{secret}");
    }
}

#[tokio::test]
async fn unsigned_deliveries_pass_only_with_checking_off() {
    let unsigned = test::delivery("ping").payload_bytes(PING);
    let s = server(Config::new().validate_signature(false).validate_ip(false)).await;
    let answer = unsigned.send(&s.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (200, "pong")
    );
    let checking = server(config()).await;
    let answer = unsigned.send(&checking.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (400, "Missing signature")
    );
}

#[tokio::test]
async fn missing_github_headers_are_400() {
    let s = server(config()).await;
    for (header, message) in [
        ("x-github-event", "Missing header: X-GitHub-Event"),
        ("x-github-delivery", "Missing header: X-GitHub-Delivery"),
    ] {
        let missing = github_delivery("ping", PING).remove_header(header);
        let answer = missing.send(&s.url()).await;
        assert_eq!(
            (answer.status.as_u16(), answer.text.as_str()),
            (400, message),
            "{header}"
        );

        let empty = github_delivery("ping", PING).header(header, "");
        let answer = empty.send(&s.url()).await;
        assert_eq!(
            (answer.status.as_u16(), answer.text.as_str()),
            (400, message),
            "{header} empty"
        );
    }
}

#[tokio::test]
async fn the_signature_is_checked_before_the_headers() {
    // An unsigned request learns nothing about which headers we expect.
    let s = server(config()).await;
    let request = client()
        .post(s.url())
        .set_header("content-type", "application/json")
        .body(PING);
    assert_eq!(send(request).await, (400, "Missing signature".into()));
}

#[tokio::test]
async fn content_types() {
    let s = server(config()).await;
    for ok in [
        "application/json",
        "application/json; charset=utf-8",
        "application/vnd.github+json",
    ] {
        let answer = github_delivery("ping", PING)
            .header("content-type", ok)
            .send(&s.url())
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.text.as_str()),
            (200, "pong"),
            "{ok}"
        );
    }
    for bad in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let answer = github_delivery("ping", PING)
            .header("content-type", bad)
            .send(&s.url())
            .await;
        assert_eq!(answer.status, 415, "{bad}");
        assert!(
            answer.text.starts_with("Unsupported Content-Type"),
            "{}",
            answer.text
        );
    }
}

#[tokio::test]
async fn form_deliveries_are_signed_over_the_raw_body() {
    let s = TestServer::hooks(
        Hooks::new(config()).on("issues.opened", |p: Value| async move {
            format!("issue {}", p["issue"]["number"])
        }),
    )
    .await;
    let json = r#"{"action":"opened","issue":{"number":7,"title":"a+b & c=d"}}"#;
    let body = form([("payload", json.as_bytes())]);
    let request = delivery(&client(), &s.url(), "issues", body.clone())
        .set_header("content-type", "application/x-www-form-urlencoded");
    assert_eq!(send(request).await, (200, "issue 7".into()));

    // A signature over the decoded JSON instead of the raw body does not verify.
    let request = delivery(&client(), &s.url(), "issues", body)
        .set_header("content-type", "application/x-www-form-urlencoded")
        .set_header(
            "x-hub-signature-256",
            sign_sha256(SECRET.as_bytes(), json.as_bytes()),
        );
    assert_eq!(send(request).await, (400, "Wrong signature".into()));

    // No payload field, or two (which one would the handler see?).
    let two = form([("payload", json.as_bytes()), ("payload", b"{}")]);
    for body in ["other=1".to_owned(), two] {
        let request = delivery(&client(), &s.url(), "issues", body.clone())
            .set_header("content-type", "application/x-www-form-urlencoded");
        assert_eq!(
            send(request).await,
            (400, "Form body must carry exactly one payload field".into()),
            "{body}"
        );
    }
}

#[derive(serde::Deserialize)]
struct Zen {
    #[allow(dead_code)]
    zen: Option<String>,
}

#[tokio::test]
async fn bodies_that_are_not_a_json_object_are_400_whatever_the_handler_takes() {
    // The payload is validated once: by the handler's payload extractor when it has
    // one, by a scan otherwise. Each path must refuse broken JSON.
    let hooks = Hooks::new(config())
        .on("value", |_: Value| async { "ok" })
        .on("typed", |_: hookserver::Payload<Zen>| async { "ok" })
        .on("nothing", || async { "ok" })
        .on("bytes", |_: bytes::Bytes| async { "ok" })
        .on("optional", |_: Option<Value>| async { "ok" });
    let s = TestServer::hooks(hooks).await;
    for event in [
        "value",
        "typed",
        "nothing",
        "bytes",
        "optional",
        "unhandled",
    ] {
        for bad in ["", "not json", "{\"zen\":", "{} trailing", "{\"a\":1,}"] {
            let (status, body) = send(delivery(&client(), &s.url(), event, bad)).await;
            assert_eq!(status, 400, "{event} {bad:?}");
            assert!(
                body.starts_with("Invalid JSON payload"),
                "{event} {bad:?}: {body}"
            );
        }
        // Valid JSON that is not an object; `["x"]` would build a `Zen` (serde_json
        // makes structs from arrays too).
        for not_object in ["[1,2]", r#"["x"]"#, "\"zen\"", "null"] {
            let (status, body) = send(delivery(&client(), &s.url(), event, not_object)).await;
            assert_eq!(status, 400, "{event} {not_object}");
            assert!(
                body.starts_with("Invalid JSON payload"),
                "{event} {not_object}: {body}"
            );
        }
        let (status, _) = send(delivery(&client(), &s.url(), event, r#"{"zen":"x"}"#)).await;
        assert_eq!(status, 200, "{event} valid");
        let (status, _) = send(delivery(&client(), &s.url(), event, " {\"zen\":\"x\"}\n")).await;
        assert_eq!(status, 200, "{event} valid, with white space around");
    }
    // Well-formed JSON whose number a `Value` cannot hold: only the `Value` handler
    // refuses it, and says why.
    let huge = r#"{"zen":"x","n":1e400}"#;
    let (status, body) = send(delivery(&client(), &s.url(), "value", huge)).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Invalid JSON payload: number out of range"),
        "{body}"
    );
    let (status, _) = send(delivery(&client(), &s.url(), "typed", huge)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let s = server(config().body_limit(1024)).await;
    let big = format!(r#"{{"zen":"{}"}}"#, "x".repeat(2000));
    let (status, body) = send(delivery(&client(), &s.url(), "ping", big)).await;
    assert_eq!(
        (status, body.as_str()),
        (413, "Payload too large: the limit is 1024 bytes")
    );

    // Without a Content-Length (chunked), the limit holds while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 800]), Ok(vec![b' '; 800])];
    let stream = futures_util::stream::iter(chunks);
    let request =
        delivery(&client(), &s.url(), "ping", "").body(reqwest::Body::wrap_stream(stream));
    let (status, _) = send(request).await;
    assert_eq!(status, 413);

    // Exactly at the limit is fine.
    let at_limit = format!(r#"{{"zen":"{}"}}"#, "x".repeat(1024 - 10));
    assert_eq!(at_limit.len(), 1024);
    assert_eq!(
        send(delivery(&client(), &s.url(), "ping", at_limit))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn error_bodies_are_plain_text() {
    let s = server(config()).await;
    let answer = github_delivery("ping", PING)
        .header("x-hub-signature-256", "sha256=00")
        .send(&s.url())
        .await;
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn ambiguous_deliveries_are_refused() {
    let s = server(config()).await;
    let c = client();
    // Two signature headers: which one counts would be a guess.
    let signed = delivery(&c, &s.url(), "ping", r#"{"zen":"x"}"#)
        .build()
        .expect("request");
    let good = signed.headers()["x-hub-signature-256"].clone();
    let twice =
        delivery(&c, &s.url(), "ping", r#"{"zen":"x"}"#).header("x-hub-signature-256", good);
    assert_eq!(
        send(twice).await,
        (
            400,
            "Wrong signature: more than one X-Hub-Signature-256 header".into()
        )
    );
    // Two top-level actions: routing reads the first, a Value the last.
    let hooks = Hooks::new(config())
        .on("issues.opened", |v: Value| async move {
            format!("opened, sees {}", v["action"])
        })
        .on("issues", || async { "no payload asked" });
    let s = TestServer::hooks(hooks).await;
    for (body, event) in [
        (r#"{"action":"opened","action":"closed"}"#, "issues"),
        (r#"{"action":"labeled","x":1,"action":"opened"}"#, "issues"),
    ] {
        let (status, text) = send(delivery(&c, &s.url(), event, body)).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(
            text.starts_with("Invalid JSON payload: duplicate top-level key `action`"),
            "{body}: {text}"
        );
    }
    // A form payload whose bytes are not UTF-8 is not quietly mended.
    let request = delivery(&c, &s.url(), "issues", "payload=%7B%22a%22%3A%22%FF%22%7D")
        .set_header("content-type", "application/x-www-form-urlencoded");
    assert_eq!(
        send(request).await,
        (
            400,
            "Invalid JSON payload: the form's payload field is not UTF-8 text".into()
        )
    );
}
