//! `hookserver::Sender` over real loopback HTTP: what reaches a hookserver, retries
//! on `5xx` and connection errors with one GUID, giving up, timeouts.

use axum::{http::HeaderMap, http::StatusCode, routing::post};
use hookserver::{Hooks, Sender};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tests::{SECRET, TestServer, config, github_log::closed_url};

/// A server that answers `500` to the first `fail` requests, then `200 ok`, and keeps
/// each request's GUID.
async fn flaky(fail: usize, status: StatusCode) -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hooks",
        post(move |headers: HeaderMap| {
            let record = Arc::clone(&record);
            async move {
                let guid = headers["x-github-delivery"]
                    .to_str()
                    .expect("a GUID")
                    .to_owned();
                let mut seen = record.lock().expect("lock");
                seen.push(guid);
                if seen.len() <= fail {
                    (status, "not yet")
                } else {
                    (StatusCode::OK, "ok")
                }
            }
        }),
    );
    (TestServer::start(app).await, seen)
}

#[tokio::test]
async fn a_hookserver_accepts_what_it_sends() {
    let hooks =
        Hooks::new(config().allow_sha1(true)).on("ping", |_: serde_json::Value| async { "pong" });
    let server = TestServer::hooks(hooks).await;
    for (form, sha1) in [(false, false), (true, false), (false, true), (true, true)] {
        let sent = Sender::new(server.url())
            .secret(SECRET)
            .form(form)
            .sha1(sha1)
            .hook_id(42)
            .send("ping", br#"{"zen":"Keep it logically awesome."}"#.to_vec())
            .await
            .expect("an answer");
        assert_eq!(sent.status, StatusCode::OK, "form {form} sha1 {sha1}");
        assert_eq!(&sent.body[..], b"pong");
        assert_eq!(sent.attempts, 1);
        assert!(sent.duration > Duration::ZERO);
        assert!(sent.headers.contains_key("content-type"));
    }
    let refused = Sender::new(server.url())
        .secret("wrong")
        .send("ping", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    // A 4xx is not retried.
    assert_eq!(refused.attempts, 1);
}

#[tokio::test]
async fn retries_5xx_with_the_same_guid_then_succeeds() {
    let (server, seen) = flaky(2, StatusCode::INTERNAL_SERVER_ERROR).await;
    let sent = Sender::new(server.url())
        .secret(SECRET)
        .retries(3)
        .backoff(Duration::from_millis(20))
        .send_as("push", "guid-1", b"{}".to_vec())
        .await
        .expect("an answer");
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.attempts, 3);
    assert_eq!(&sent.body[..], b"ok");
    assert_eq!(*seen.lock().unwrap(), ["guid-1", "guid-1", "guid-1"]);
}

#[tokio::test]
async fn gives_up_after_its_retries() {
    let (server, seen) = flaky(usize::MAX, StatusCode::SERVICE_UNAVAILABLE).await;
    let sent = Sender::new(server.url())
        .retries(2)
        .backoff(Duration::from_millis(10))
        .send("push", b"{}".to_vec())
        .await
        .expect("an answer");
    assert_eq!(sent.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sent.attempts, 3);
    assert_eq!(seen.lock().unwrap().len(), 3);
    // Without retries: one attempt.
    let sent = Sender::new(server.url())
        .send("push", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(sent.attempts, 1);
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    let url = closed_url();
    let err = Sender::new(&url)
        .retries(2)
        .backoff(Duration::from_millis(10))
        .send("push", b"{}".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 3);
    assert_eq!(err.url, url);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot deliver to {url}: ")),
        "{text}"
    );
    assert!(text.ends_with("(after 3 attempts)"), "{text}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let app = axum::Router::new().route(
        "/hooks",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let server = TestServer::start(app).await;
    let started = std::time::Instant::now();
    let err = Sender::new(server.url())
        .timeout(Duration::from_millis(300))
        .send("push", b"{}".to_vec())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.attempts, 1);
    assert!(err.why.contains("no answer within 300ms"), "{err}");
}
