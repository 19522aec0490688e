//! The test kit (`hookserver::test`) over real loopback HTTP: a kit-built delivery
//! reaches the handler its event and action route to, and the handler sees exactly
//! what was built.

use hookserver::{Delivery, Hooks, State, signature::sign_sha256, test};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tests::{SECRET, TestServer, config};

/// What a handler saw of a delivery, through `Delivery`'s accessors.
#[derive(Debug, PartialEq)]
struct Seen {
    handler: &'static str,
    event: String,
    action: Option<String>,
    guid: String,
    hook_id: Option<u64>,
    target: (Option<String>, Option<u64>),
    user_agent: Option<String>,
    content_type: Option<String>,
    /// The raw body and the payload's JSON text.
    body: Vec<u8>,
    payload: Vec<u8>,
    sha256: Option<String>,
    sha1: bool,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn seen(handler: &'static str, d: &Delivery) -> Seen {
    let header = |name: &str| {
        d.headers()
            .get(name)
            .map(|v| v.to_str().expect("text").to_owned())
    };
    Seen {
        handler,
        event: d.event().to_owned(),
        action: d.action().map(str::to_owned),
        guid: d.guid().to_owned(),
        hook_id: d.hook_id(),
        target: (
            d.installation_target_type().map(str::to_owned),
            d.installation_target_id(),
        ),
        user_agent: d.user_agent().map(str::to_owned),
        content_type: header("content-type"),
        body: d.body().to_vec(),
        payload: d.payload().to_vec(),
        sha256: header("x-hub-signature-256"),
        sha1: d.headers().contains_key("x-hub-signature"),
    }
}

/// A server (SHA-1 allowed or not) whose handlers log what they saw and answer their
/// key.
async fn server(allow_sha1: bool) -> (TestServer, Log) {
    let log = Log::default();
    let record = |handler: &'static str| {
        move |State(log): State<Log>, d: Delivery| async move {
            log.lock().expect("log").push(seen(handler, &d));
            handler
        }
    };
    let hooks = Hooks::with_state(config().allow_sha1(allow_sha1), Arc::clone(&log))
        .on("pull_request.opened", record("pull_request.opened"))
        .on("pull_request", record("pull_request"))
        .on("*", record("*"));
    (TestServer::hooks(hooks).await, log)
}

fn take(log: &Log) -> Vec<Seen> {
    std::mem::take(&mut *log.lock().expect("log"))
}

#[tokio::test]
async fn a_json_delivery_arrives_as_built() {
    let (s, log) = server(false).await;
    let built = test::delivery("pull_request")
        .action("opened")
        .payload_json(&json!({"number": 42, "action": "closed"}))
        .guid("d1")
        .hook_id(123)
        .installation_target("organization", 456)
        .secret(SECRET);
    let answer = built.send(&s.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (200, "pull_request.opened")
    );

    let (_, body) = built.headers_and_body();
    let payload: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(payload, json!({"number": 42, "action": "opened"}));
    assert_eq!(
        take(&log),
        [Seen {
            handler: "pull_request.opened",
            event: "pull_request".into(),
            action: Some("opened".into()),
            guid: "d1".into(),
            hook_id: Some(123),
            target: (Some("organization".into()), Some(456)),
            user_agent: Some(hookserver::Sender::USER_AGENT.into()),
            content_type: Some("application/json".into()),
            body: body.to_vec(),
            payload: body.to_vec(),
            sha256: Some(sign_sha256(SECRET.as_bytes(), &body)),
            sha1: false,
        }]
    );
}

#[tokio::test]
async fn a_form_delivery_with_both_signatures_arrives_as_built() {
    let (s, log) = server(false).await;
    let built = test::delivery("pull_request")
        .payload_json(&json!({"title": "a+b & c=d"}))
        .action("closed")
        .guid("d2")
        .form()
        .secret(SECRET)
        .sha1();
    let answer = built.send(&s.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (200, "pull_request")
    );

    let (_, body) = built.headers_and_body();
    let [seen] = &take(&log)[..] else {
        panic!("one delivery seen")
    };
    assert_eq!(
        (seen.handler, seen.action.as_deref(), seen.guid.as_str()),
        ("pull_request", Some("closed"), "d2")
    );
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen.body, body.to_vec());
    assert!(body.starts_with(b"payload="), "{body:?}");
    let payload: Value = serde_json::from_slice(&seen.payload).expect("the form's JSON");
    assert_eq!(payload, json!({"title": "a+b & c=d", "action": "closed"}));
    assert_eq!(seen.sha256, Some(sign_sha256(SECRET.as_bytes(), &body)));
    assert!(seen.sha1);
    // No hook id or installation target unless given.
    assert_eq!((seen.hook_id, &seen.target), (None, &(None, None)));
}

#[tokio::test]
async fn a_legacy_sha1_delivery_passes_only_where_allowed() {
    let built = test::delivery("push").secret(SECRET).sha1_only();
    let (strict, strict_log) = server(false).await;
    let answer = built.send(&strict.url()).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text.as_str()),
        (400, "Missing signature")
    );
    assert_eq!(take(&strict_log), []);

    let (legacy, legacy_log) = server(true).await;
    let answer = built.send(&legacy.url()).await;
    assert_eq!((answer.status.as_u16(), answer.text.as_str()), (200, "*"));
    let seen = take(&legacy_log);
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].sha256.as_deref(), seen[0].sha1), (None, true));
}

#[tokio::test]
async fn a_payload_file_arrives_byte_for_byte_and_routes_by_its_action() {
    let (s, log) = server(false).await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/payloads/pull_request.opened.json"
    );
    let answer = test::delivery("pull_request")
        .payload_file(path)
        .secret(SECRET)
        .send(&s.url())
        .await;
    assert_eq!(answer.text, "pull_request.opened");
    let seen = take(&log);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].payload, std::fs::read(path).expect("the file"));
}

#[tokio::test]
async fn the_same_delivery_sent_twice_keeps_its_guid_and_fresh_ones_differ() {
    let (s, log) = server(false).await;
    let built = test::delivery("ping").secret(SECRET);
    built.send(&s.url()).await;
    built.send(&s.url()).await;
    test::delivery("ping").secret(SECRET).send(&s.url()).await;
    let guids: Vec<String> = take(&log).into_iter().map(|seen| seen.guid).collect();
    assert_eq!(guids.len(), 3);
    assert_eq!(guids[0], guids[1]);
    assert_ne!(guids[0], guids[2]);
}
