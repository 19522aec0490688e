//! Testing your handlers (the `test-util` feature): deliveries built and signed like
//! GitHub's, as an [`http::Request`] for `tower::ServiceExt::oneshot` or sent to a
//! server's URL, and their answers read back as a [`TestResponse`].
//!
//! ```
//! use hookserver::{Config, Hooks, Payload, hook, test};
//! use serde::Deserialize;
//! use serde_json::json;
//! use tower::ServiceExt; // oneshot
//!
//! #[derive(Deserialize)]
//! struct PullRequestEvent {
//!     number: u64,
//! }
//!
//! #[hook("pull_request.opened")]
//! async fn pr_opened(Payload(pr): Payload<PullRequestEvent>) -> String {
//!     format!("PR #{} opened", pr.number)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let config = Config::new().secret("test secret").validate_ip(false);
//! let router = Hooks::new(config).hook(pr_opened).router("/hooks");
//! let request = test::delivery("pull_request")
//!     .action("opened")
//!     .payload_json(&json!({"number": 42}))
//!     .secret("test secret")
//!     .request("/hooks");
//! let answer = test::read(router.oneshot(request).await.expect("infallible")).await;
//! assert_eq!(answer.status, 200);
//! assert_eq!(answer.text, "PR #42 opened");
//! # }
//! ```
//!
//! A [`TestDelivery`] is built by the same code as [`Sender`]'s deliveries: the same
//! headers, form encoding and signatures. It is unsigned until given a
//! [`secret`](TestDelivery::secret); the wrong deliveries a receiver must refuse are one
//! call away: a wrong secret, [`header`](TestDelivery::header) to send a malformed
//! header, [`remove_header`](TestDelivery::remove_header) to leave one out.
//!
//! The kit is for tests, and fails like an assertion: a delivery that cannot be built
//! (a header value with a newline, an unreadable payload file, an action on a payload
//! that is not a JSON object) or that gets no answer panics, saying why.

use crate::{
    Sender, Sent,
    outgoing::{Outgoing, new_guid},
};
use axum::body::{Body, HttpBody};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::Value;
use std::{fmt, path::Path};

/// A delivery of `event` (`X-GitHub-Event`): payload `{}`, a fresh GUID, unsigned
/// until given a [`secret`](TestDelivery::secret). The same as [`TestDelivery::new`].
pub fn delivery(event: &str) -> TestDelivery {
    TestDelivery::new(event)
}

/// A delivery for a test, built like GitHub's: see [the module](self).
///
/// By default: payload `{}`, a fresh random GUID, JSON, unsigned, no hook id or
/// installation target, `User-Agent` [`Sender::USER_AGENT`]. `Debug` never shows the
/// secret.
#[derive(Clone, Debug)]
pub struct TestDelivery {
    event: String,
    guid: String,
    action: Option<String>,
    payload: TestPayload,
    outgoing: Outgoing,
    /// Headers set (`Some`) or removed (`None`) after the delivery is built, in order.
    edits: Vec<(String, Option<String>)>,
}

/// A payload as the test gave it.
#[derive(Clone, Debug)]
enum TestPayload {
    Json(Value),
    Bytes(Bytes),
}

impl TestDelivery {
    /// A delivery of `event`, with the defaults above.
    pub fn new(event: &str) -> Self {
        Self {
            event: event.to_owned(),
            guid: new_guid(),
            action: None,
            payload: TestPayload::Json(Value::Object(Default::default())),
            outgoing: Outgoing::new(Sender::USER_AGENT),
            edits: Vec::new(),
        }
    }

    /// Sets the payload's top-level `action` (what routes `pull_request.opened`),
    /// adding it to the payload's JSON object or replacing the one it has, whichever
    /// payload method was called, before or after. A payload given as bytes is then
    /// sent re-serialized; it must be a JSON object.
    pub fn action(mut self, action: &str) -> Self {
        self.action = Some(action.to_owned());
        self
    }

    /// The payload: `value` serialized as JSON.
    ///
    /// # Panics
    ///
    /// If `value` cannot be JSON (a map with keys that are not strings).
    #[track_caller]
    pub fn payload_json(mut self, value: &impl Serialize) -> Self {
        let value = serde_json::to_value(value)
            .unwrap_or_else(|e| panic!("the payload cannot be serialized as JSON: {e}"));
        self.payload = TestPayload::Json(value);
        self
    }

    /// The payload: these exact bytes (JSON or not, for testing what is refused).
    pub fn payload_bytes(mut self, bytes: impl Into<Bytes>) -> Self {
        self.payload = TestPayload::Bytes(bytes.into());
        self
    }

    /// The payload: the bytes of the file at `path` (e.g. an example payload saved
    /// from GitHub's delivery log), read now.
    ///
    /// # Panics
    ///
    /// If the file cannot be read.
    #[track_caller]
    pub fn payload_file(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| panic!("cannot read the payload file {}: {e}", path.display()));
        self.payload_bytes(bytes)
    }

    /// `X-GitHub-Delivery: guid` instead of a fresh random one (the same GUID twice
    /// is what a journal deduplicates).
    pub fn guid(mut self, guid: &str) -> Self {
        self.guid = guid.to_owned();
        self
    }

    /// `X-GitHub-Hook-ID: id`.
    pub fn hook_id(mut self, id: u64) -> Self {
        self.outgoing.hook_id = Some(id);
        self
    }

    /// `X-GitHub-Hook-Installation-Target-Type: kind` and `-ID: id` (`repository`,
    /// `organization`, `integration`...).
    pub fn installation_target(mut self, kind: &str, id: u64) -> Self {
        self.outgoing.target = Some((kind.to_owned(), id));
        self
    }

    /// Replaces the `User-Agent`.
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        self.outgoing.user_agent = user_agent.to_owned();
        self
    }

    /// Signs the body with `secret`: `X-Hub-Signature-256`, as GitHub does. Another
    /// secret than the server's makes a wrong signature.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.outgoing.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Also signs with HMAC-SHA1: the legacy `X-Hub-Signature`, as GitHub sends it
    /// beside the SHA-256 one.
    pub fn sha1(mut self) -> Self {
        self.outgoing.sha1 = true;
        self
    }

    /// Signs with HMAC-SHA1 only (`X-Hub-Signature`, no `X-Hub-Signature-256`), as
    /// old GitHub Enterprise servers do.
    pub fn sha1_only(mut self) -> Self {
        self.outgoing.sha1 = true;
        self.outgoing.sha256 = false;
        self
    }

    /// Sends the payload as a form (`application/x-www-form-urlencoded`, the JSON in
    /// the `payload` field), as hooks with that content type get it; else JSON.
    pub fn form(mut self) -> Self {
        self.outgoing.form = true;
        self
    }

    /// Sets header `name` to `value` once the delivery is built and signed, replacing
    /// the value it had: a malformed signature, another content type.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.edits.push((name.to_owned(), Some(value.to_owned())));
        self
    }

    /// Leaves header `name` out (`X-GitHub-Event`, a signature...).
    pub fn remove_header(mut self, name: &str) -> Self {
        self.edits.push((name.to_owned(), None));
        self
    }

    /// The headers and the body as they would be sent: for a test's own HTTP client.
    ///
    /// # Panics
    ///
    /// If a header value is not one (a newline in the event, GUID, user agent or an
    /// edited header), or [`action`](Self::action) is set on a payload that is not a
    /// JSON object.
    #[track_caller]
    pub fn headers_and_body(&self) -> (HeaderMap, Bytes) {
        let built = self
            .outgoing
            .build(&self.event, &self.guid, self.payload_text())
            .and_then(|(mut headers, body)| {
                for (name, value) in &self.edits {
                    let name = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| format!("{name:?} is not a header name"))?;
                    match value {
                        Some(value) => {
                            let value = HeaderValue::from_str(value)
                                .map_err(|_| format!("{value:?} is not a header value"))?;
                            headers.insert(name, value);
                        }
                        None => {
                            headers.remove(name);
                        }
                    }
                }
                Ok((headers, body))
            });
        built.unwrap_or_else(|why| panic!("cannot build the test delivery: {why}"))
    }

    /// The delivery as a `POST` to `uri`, for `tower::ServiceExt::oneshot` on a
    /// router. It carries no peer address, so the router's source-IP check must be
    /// off (`Config::validate_ip(false)`).
    ///
    /// # Panics
    ///
    /// As [`headers_and_body`](Self::headers_and_body), and if `uri` is not a URI.
    #[track_caller]
    pub fn request(&self, uri: &str) -> Request<Body> {
        let (headers, body) = self.headers_and_body();
        let mut request = Request::post(uri)
            .body(Body::from(body))
            .unwrap_or_else(|e| panic!("cannot build a request to {uri:?}: {e}"));
        *request.headers_mut() = headers;
        request
    }

    /// Sends the delivery to `url` (a test's server: `http://127.0.0.1:8000/hooks`;
    /// plain HTTP, no proxy) with a [`Sender`] (no retries, its 10 s timeout) and
    /// reads the answer.
    ///
    /// # Panics
    ///
    /// As [`headers_and_body`](Self::headers_and_body), and if there is no answer
    /// (the connection fails or times out).
    pub async fn send(&self, url: &str) -> TestResponse {
        let (headers, body) = self.headers_and_body();
        // Plain HTTP to a test's server: no proxy from the environment, and no TLS
        // roots, whose loading took most of the time of a send.
        let client = reqwest::Client::builder().no_proxy().tls_certs_only([]);
        let sender = Sender::with_client(url, client);
        match sender.post(&self.guid, headers, body).await {
            Ok(sent) => sent.into(),
            Err(e) => panic!("the test delivery got no answer: {e}"),
        }
    }

    /// The payload's JSON text, `action` set.
    #[track_caller]
    fn payload_text(&self) -> Bytes {
        let Some(action) = &self.action else {
            return match &self.payload {
                TestPayload::Bytes(bytes) => bytes.clone(),
                TestPayload::Json(value) => Bytes::from(value.to_string()),
            };
        };
        let mut value = match &self.payload {
            TestPayload::Json(value) => value.clone(),
            TestPayload::Bytes(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        };
        let Some(object) = value.as_object_mut() else {
            panic!("TestDelivery::action needs a payload that is a JSON object");
        };
        object.insert("action".to_owned(), Value::from(action.as_str()));
        Bytes::from(value.to_string())
    }
}

/// An answer, read whole: what a test asserts on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body's bytes.
    pub body: Bytes,
    /// The body as text (invalid UTF-8 replaced by `U+FFFD`): hookserver's own
    /// answers are short plain text.
    pub text: String,
}

impl TestResponse {
    fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        let text = String::from_utf8_lossy(&body).into_owned();
        Self {
            status,
            headers,
            body,
            text,
        }
    }
}

impl From<Sent> for TestResponse {
    fn from(sent: Sent) -> Self {
        Self::new(sent.status, sent.headers, sent.body)
    }
}

/// Reads `response` (e.g. what `oneshot` returned) whole.
///
/// # Panics
///
/// If its body fails while being read.
pub async fn read<B>(response: http::Response<B>) -> TestResponse
where
    B: HttpBody,
    B::Error: fmt::Display,
{
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => panic!("cannot read the response body: {e}"),
    };
    TestResponse::new(parts.status, parts.headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Config, Delivery, Hooks,
        signature::{SIGNATURE_256_HEADER, SIGNATURE_SHA1_HEADER, sign_sha1, sign_sha256},
    };
    use serde_json::json;
    use tower::ServiceExt;

    const SECRET: &str = "s3cret";

    fn json_of(body: &Bytes) -> Value {
        serde_json::from_slice(body).expect("the body is JSON")
    }

    /// A router whose handlers answer what they saw of the delivery.
    fn router(config: Config) -> axum::Router {
        Hooks::new(config)
            .on("pull_request.opened", |d: Delivery| async move {
                format!("opened {}", String::from_utf8_lossy(d.payload()))
            })
            .on("pull_request", |d: Delivery| async move {
                format!("pull_request {:?}", d.action())
            })
            .on("push", || async { ([("x-seen", "push")], "pushed") })
            .router("/hooks")
    }

    async fn answer(config: Config, delivery: &TestDelivery) -> TestResponse {
        let response = router(config)
            .oneshot(delivery.request("/hooks"))
            .await
            .expect("the router answers");
        read(response).await
    }

    async fn answer_text(config: Config, delivery: &TestDelivery) -> String {
        answer(config, delivery).await.text
    }

    fn signed() -> Config {
        Config::new().secret(SECRET).validate_ip(false)
    }

    #[test]
    fn the_defaults_are_an_unsigned_json_delivery_with_a_fresh_guid() {
        let (headers, body) = delivery("push").headers_and_body();
        assert_eq!(&body[..], b"{}");
        assert_eq!(headers["x-github-event"], "push");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["user-agent"], Sender::USER_AGENT);
        assert!(!headers.contains_key(SIGNATURE_256_HEADER));
        assert!(!headers.contains_key(SIGNATURE_SHA1_HEADER));
        assert!(!headers.contains_key("x-github-hook-id"));
        let guid = headers["x-github-delivery"].to_str().unwrap().to_owned();
        assert_eq!(guid.len(), 36, "{guid}");
        let (again, _) = delivery("push").headers_and_body();
        assert_ne!(again["x-github-delivery"], guid.as_str());
    }

    #[test]
    fn every_setting_reaches_the_headers() {
        let (headers, body) = delivery("issues")
            .guid("g-1")
            .hook_id(7)
            .installation_target("organization", 9)
            .user_agent("GitHub-Hookshot/t")
            .secret(SECRET)
            .sha1()
            .headers_and_body();
        for (name, value) in [
            ("x-github-delivery", "g-1"),
            ("x-github-hook-id", "7"),
            ("x-github-hook-installation-target-type", "organization"),
            ("x-github-hook-installation-target-id", "9"),
            ("user-agent", "GitHub-Hookshot/t"),
        ] {
            assert_eq!(headers[name], value, "{name}");
        }
        assert_eq!(
            headers[SIGNATURE_256_HEADER],
            sign_sha256(SECRET.as_bytes(), &body).as_str()
        );
        assert_eq!(
            headers[SIGNATURE_SHA1_HEADER],
            sign_sha1(SECRET.as_bytes(), &body).as_str()
        );
    }

    #[test]
    fn bytes_are_sent_exactly_and_a_file_as_it_is() {
        let text = b"{ \"zen\" :1 }".as_slice();
        let (_, body) = delivery("ping").payload_bytes(text).headers_and_body();
        assert_eq!(&body[..], text);
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/payloads/ping.json"
        );
        let (_, body) = delivery("ping").payload_file(path).headers_and_body();
        assert_eq!(&body[..], std::fs::read(path).unwrap());
    }

    #[test]
    fn action_is_set_in_the_payload_object_or_replaces_its_own() {
        let given = json!({"action": "closed", "number": 1});
        for built in [
            delivery("pull_request")
                .action("opened")
                .payload_json(&given),
            delivery("pull_request")
                .payload_bytes(given.to_string())
                .action("opened"),
        ] {
            let (_, body) = built.headers_and_body();
            assert_eq!(json_of(&body), json!({"action": "opened", "number": 1}));
        }
        let (_, body) = delivery("issues").action("labeled").headers_and_body();
        assert_eq!(json_of(&body), json!({"action": "labeled"}));
    }

    #[test]
    #[should_panic(expected = "TestDelivery::action needs a payload that is a JSON object")]
    fn action_on_a_payload_that_is_not_an_object_panics() {
        let _ = delivery("push")
            .payload_json(&[1, 2])
            .action("opened")
            .headers_and_body();
    }

    #[test]
    #[should_panic(
        expected = "cannot build the test delivery: the event \"pu\\nsh\" is not a header value"
    )]
    fn a_header_that_cannot_be_sent_panics_naming_it() {
        let _ = delivery("pu\nsh").headers_and_body();
    }

    #[test]
    fn edited_headers_replace_or_leave_out_the_built_ones() {
        let (headers, _) = delivery("push")
            .secret(SECRET)
            .header(SIGNATURE_256_HEADER, "sha256=00")
            .header("x-extra", "1")
            .remove_header("x-github-event")
            .headers_and_body();
        assert_eq!(headers[SIGNATURE_256_HEADER], "sha256=00");
        assert_eq!(headers["x-extra"], "1");
        assert!(!headers.contains_key("x-github-event"));
    }

    #[tokio::test]
    async fn a_signed_delivery_reaches_the_handler_of_its_action() {
        let payload = json!({"number": 42});
        let built = delivery("pull_request")
            .action("opened")
            .payload_json(&payload)
            .secret(SECRET);
        let answer = answer(signed(), &built).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text, r#"opened {"action":"opened","number":42}"#);

        let closed = delivery("pull_request").action("closed").secret(SECRET);
        assert_eq!(
            answer_text(signed(), &closed).await,
            "pull_request Some(\"closed\")"
        );
    }

    #[tokio::test]
    async fn read_returns_the_handlers_status_headers_and_body() {
        let answer = answer(signed(), &delivery("push").secret(SECRET)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers["x-seen"], "push");
        assert_eq!(&answer.body[..], b"pushed");
        assert_eq!(answer.text, "pushed");
    }

    #[tokio::test]
    async fn forms_and_the_legacy_signature_are_accepted_like_githubs() {
        let form = delivery("pull_request")
            .action("opened")
            .form()
            .secret(SECRET);
        assert_eq!(
            answer_text(signed(), &form).await,
            r#"opened {"action":"opened"}"#
        );
        let sha1 = delivery("push").secret(SECRET).sha1_only();
        assert_eq!(
            answer_text(signed().allow_sha1(true), &sha1).await,
            "pushed"
        );
        let refused = answer(signed(), &sha1).await;
        assert_eq!(
            (refused.status, refused.text.as_str()),
            (StatusCode::BAD_REQUEST, "Missing signature")
        );
    }

    #[tokio::test]
    async fn the_wrong_deliveries_are_refused() {
        for (built, want) in [
            (delivery("push"), "Missing signature"),
            (delivery("push").secret("not the secret"), "Wrong signature"),
            (
                delivery("push")
                    .secret(SECRET)
                    .header(SIGNATURE_256_HEADER, "sha256="),
                "Wrong signature",
            ),
            (
                delivery("push")
                    .secret(SECRET)
                    .remove_header("x-github-event"),
                "Missing header: X-GitHub-Event",
            ),
        ] {
            let answer = answer(signed(), &built).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{built:?}");
            assert_eq!(answer.text, want, "{built:?}");
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let debug = format!("{:?}", delivery("push").secret("hunter2"));
        assert!(
            !debug.contains("hunter2") && debug.contains("[redacted]"),
            "{debug}"
        );
    }
}
