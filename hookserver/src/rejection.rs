//! Answers other than the handler's: small types that know their status and body.
//!
//! Two families, as in axum: the public [`PayloadRejection`] (what the payload
//! extractors and [`Delivery::json`](crate::Delivery::json) return, so a user's own
//! extractor can return it too), and the pipeline's own early answers
//! ([`Rejection`]), which only hookserver constructs. Bodies are short plain text that
//! tells the sender what to fix, and never carry a secret, an expected MAC or a stack
//! trace. None of these log anything: the delivery's one log line does, with the
//! reason (see `pipeline`).

use crate::outcome::Outcome;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use std::{borrow::Cow, fmt};

/// `Retry-After` on the journal's `503`s: a minute lets a full queue drain or a
/// database come back. (GitHub itself does not retry; a sender that does, should
/// wait.)
const JOURNAL_RETRY_AFTER_SECS: u64 = 60;

/// The reason behind an answer, put in the response's extensions so that the
/// delivery's log line can say why without parsing the body.
#[derive(Clone, Debug)]
pub(crate) struct Reason {
    /// Which row of the README's error table the answer is (`Wrong signature`,
    /// `Missing header`...): what the rejection warnings are counted by, so it
    /// holds no detail of one delivery.
    pub(crate) kind: &'static str,
    /// What the log line says: the body's text, or more where the operator needs
    /// more than the sender may see.
    pub(crate) text: Cow<'static, str>,
    /// The `outcome` label of the delivery's metrics: which kind of refusal this is,
    /// decided by the rejection itself (an exhaustive match, not a string).
    pub(crate) outcome: Outcome,
}

/// A plain-text answer that carries its reason for the log line.
fn plain(
    status: StatusCode,
    body: String,
    kind: &'static str,
    reason: Cow<'static, str>,
    outcome: Outcome,
) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.extensions_mut().insert(Reason {
        kind,
        text: reason,
        outcome,
    });
    response
}

/// `400`: the payload is not one JSON object (broken JSON, an array, two top-level
/// `action` keys, a number a `Value` cannot hold...). Every handler gets this
/// answer for such a payload, whatever it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidJson {
    why: String,
}

impl InvalidJson {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        Self { why: why.into() }
    }

    /// `400 Bad Request`.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    /// `Invalid JSON payload: <why>`.
    pub fn body_text(&self) -> String {
        format!("Invalid JSON payload: {}", self.why)
    }
}

impl fmt::Display for InvalidJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid JSON payload: {}", self.why)
    }
}

impl std::error::Error for InvalidJson {}

impl IntoResponse for InvalidJson {
    fn into_response(self) -> Response {
        let body = self.body_text();
        plain(
            self.status(),
            body.clone(),
            "Invalid JSON payload",
            body.into(),
            Outcome::BadPayload,
        )
    }
}

/// `400`: the payload is valid JSON but does not fit the type a handler asked for;
/// the message names the field (`pull_request.number: invalid type: ...`).
#[derive(Debug)]
pub struct PayloadMismatch {
    path: String,
    source: serde_json::Error,
}

impl PayloadMismatch {
    pub(crate) fn new(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = error.path().to_string();
        Self {
            path,
            source: error.into_inner(),
        }
    }

    /// `400 Bad Request`.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    /// Where in the payload it went wrong, e.g. `pull_request.number` (`.` for the
    /// payload itself).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `Payload does not match: <path>: <serde's message>`.
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for PayloadMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path == "." {
            write!(f, "Payload does not match: {}", self.source)
        } else {
            write!(f, "Payload does not match: {}: {}", self.path, self.source)
        }
    }
}

impl std::error::Error for PayloadMismatch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl IntoResponse for PayloadMismatch {
    fn into_response(self) -> Response {
        let body = self.body_text();
        plain(
            self.status(),
            body.clone(),
            "Payload does not match",
            body.into(),
            Outcome::BadPayload,
        )
    }
}

/// Why a payload could not be extracted: what [`Payload<T>`](crate::Payload),
/// `serde_json::Value` and [`Delivery::json`](crate::Delivery::json) return.
///
/// Return it from your own [`FromDelivery`](crate::FromDelivery) with `?`:
///
/// ```
/// use hookserver::{Delivery, FromDelivery, PayloadRejection};
///
/// struct Sender(String);
///
/// impl<S> FromDelivery<S> for Sender {
///     type Rejection = PayloadRejection;
///     fn from_delivery(delivery: &Delivery, _: &S) -> Result<Self, PayloadRejection> {
///         #[derive(serde::Deserialize)]
///         struct User { login: String }
///         #[derive(serde::Deserialize)]
///         struct Event { sender: User }
///         Ok(Sender(delivery.json::<Event>()?.sender.login))
///     }
/// }
///
/// let hooks = hookserver::Hooks::new(hookserver::Config::new().secret("s"))
///     .on("issues", |Sender(login): Sender| async move { format!("from {login}") });
/// # drop(hooks);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PayloadRejection {
    /// The payload is not one JSON object.
    InvalidJson(InvalidJson),
    /// The payload is JSON of another shape.
    Mismatch(PayloadMismatch),
}

impl PayloadRejection {
    /// The status it answers with (`400` for every variant today).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(e) => e.status(),
            Self::Mismatch(e) => e.status(),
        }
    }

    /// The plain-text body it answers with.
    pub fn body_text(&self) -> String {
        match self {
            Self::InvalidJson(e) => e.body_text(),
            Self::Mismatch(e) => e.body_text(),
        }
    }
}

impl fmt::Display for PayloadRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidJson(e) => e.fmt(f),
            Self::Mismatch(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PayloadRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidJson(e) => Some(e),
            Self::Mismatch(e) => Some(e),
        }
    }
}

impl From<InvalidJson> for PayloadRejection {
    fn from(e: InvalidJson) -> Self {
        Self::InvalidJson(e)
    }
}

impl From<PayloadMismatch> for PayloadRejection {
    fn from(e: PayloadMismatch) -> Self {
        Self::Mismatch(e)
    }
}

impl IntoResponse for PayloadRejection {
    fn into_response(self) -> Response {
        match self {
            Self::InvalidJson(e) => e.into_response(),
            Self::Mismatch(e) => e.into_response(),
        }
    }
}

/// The pipeline's own early answers: why a delivery was answered before (or instead
/// of) reaching a handler. Only hookserver constructs these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 405 with `Allow: POST`: GitHub only ever POSTs.
    MethodNotAllowed,
    /// 403: the client address is not in GitHub's hook ranges.
    ForbiddenSource(std::net::IpAddr),
    /// 400: `X-Forwarded-For` from a trusted proxy does not hold an IP address.
    BadForwardedFor,
    /// 503: GitHub's `/meta` could not be fetched and no usable list is cached.
    GithubUnreachable,
    /// 503: GitHub rate-limits us until the given instant (an HTTP date).
    GithubRateLimited { until: String },
    /// 500: source-IP checking is on but the server does not provide peer addresses.
    NoPeerAddress,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge { limit: usize },
    /// 400: the body could not be read.
    BodyUnreadable(String),
    /// 408: the body did not arrive within the body timeout.
    BodyTimeout,
    /// 503: the bodies being received already fill the buffered-bytes budget.
    BodyBudgetExhausted { retry_after_secs: u64 },
    /// 400: no signature header the configuration accepts.
    MissingSignature,
    /// 400: the signature is malformed or matches no secret.
    WrongSignature {
        /// The header that was checked (`X-Hub-Signature-256`, or the SHA-1 one).
        header: &'static str,
        /// How many secrets it was checked against.
        secrets: usize,
        /// Not `sha256=` (or `sha1=`) and the digest's hex digits at all.
        malformed: bool,
    },
    /// 400: more than one signature header of the same kind.
    DuplicateSignature(&'static str),
    /// 400: a required header is absent or empty.
    MissingHeader(&'static str),
    /// 400: a header holds something other than visible ASCII.
    InvalidHeader(&'static str),
    /// 415: the content type is neither JSON nor a form.
    UnsupportedContentType,
    /// 400: a form delivery without its `payload` field, or with more than one.
    FormPayloadField,
    /// 400: the payload is not one JSON object.
    InvalidJson(InvalidJson),
    /// 500: the handler panicked.
    HandlerPanicked(String),
    /// 503: the handler ran past the handler timeout and was stopped.
    HandlerTimedOut { after_ms: u64 },
    /// 503: the journal could not record the delivery in time (nothing acknowledged).
    JournalUnavailable(String),
    /// 503: the journal holds as many unfinished deliveries as it may.
    TooManyPending { max: u64 },
}

impl Rejection {
    /// The HTTP status this rejection answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ForbiddenSource(_) => StatusCode::FORBIDDEN,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::GithubUnreachable
            | Self::GithubRateLimited { .. }
            | Self::BodyBudgetExhausted { .. }
            | Self::HandlerTimedOut { .. }
            | Self::JournalUnavailable(_)
            | Self::TooManyPending { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoPeerAddress | Self::HandlerPanicked(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadForwardedFor
            | Self::BodyUnreadable(_)
            | Self::MissingSignature
            | Self::WrongSignature { .. }
            | Self::DuplicateSignature(_)
            | Self::MissingHeader(_)
            | Self::InvalidHeader(_)
            | Self::FormPayloadField
            | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The plain-text message sent as the body.
    pub(crate) fn message(&self) -> Cow<'static, str> {
        match self {
            Self::MethodNotAllowed => "Method not allowed: deliveries are POSTed".into(),
            Self::ForbiddenSource(_) => "Requests must originate from GitHub".into(),
            Self::BadForwardedFor => "Invalid X-Forwarded-For header".into(),
            Self::GithubUnreachable => "Error reaching GitHub".into(),
            Self::GithubRateLimited { until } => {
                format!("Rate limited from GitHub until {until}").into()
            }
            Self::NoPeerAddress => "Server misconfigured: client address unavailable".into(),
            Self::PayloadTooLarge { limit } => {
                format!("Payload too large: the limit is {limit} bytes").into()
            }
            Self::BodyUnreadable(_) => "Could not read the request body".into(),
            Self::BodyTimeout => "Request body not received in time".into(),
            Self::BodyBudgetExhausted { .. } => {
                "Server busy: too many request bodies in memory, try again later".into()
            }
            Self::MissingSignature => "Missing signature".into(),
            Self::WrongSignature { .. } => "Wrong signature".into(),
            Self::DuplicateSignature(name) => {
                format!("Wrong signature: more than one {name} header").into()
            }
            Self::MissingHeader(name) => format!("Missing header: {name}").into(),
            Self::InvalidHeader(name) => format!("Invalid header: {name}").into(),
            Self::UnsupportedContentType => "Unsupported Content-Type: expected \
                 application/json or application/x-www-form-urlencoded"
                .into(),
            Self::FormPayloadField => "Form body must carry exactly one payload field".into(),
            Self::InvalidJson(e) => e.body_text().into(),
            Self::HandlerPanicked(_) => "Internal server error".into(),
            Self::HandlerTimedOut { .. } => "Hook handler timed out".into(),
            Self::JournalUnavailable(_) => "Journal unavailable".into(),
            Self::TooManyPending { .. } => "Too many pending deliveries".into(),
        }
    }

    /// Which row of the README's error table this is: the message without the
    /// details of one delivery (a header's name, a limit, the panic).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "Method not allowed",
            Self::ForbiddenSource(_) => "Requests must originate from GitHub",
            Self::BadForwardedFor => "Invalid X-Forwarded-For header",
            Self::GithubUnreachable => "Error reaching GitHub",
            Self::GithubRateLimited { .. } => "Rate limited from GitHub",
            Self::NoPeerAddress => "Server misconfigured: client address unavailable",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::BodyUnreadable(_) => "Could not read the request body",
            Self::BodyTimeout => "Request body not received in time",
            Self::BodyBudgetExhausted { .. } => "Server busy",
            Self::MissingSignature => "Missing signature",
            Self::WrongSignature { .. } => "Wrong signature",
            Self::DuplicateSignature(_) => "Wrong signature: a signature header sent twice",
            Self::MissingHeader(_) => "Missing header",
            Self::InvalidHeader(_) => "Invalid header",
            Self::UnsupportedContentType => "Unsupported Content-Type",
            Self::FormPayloadField => "Form body must carry exactly one payload field",
            Self::InvalidJson(_) => "Invalid JSON payload",
            Self::HandlerPanicked(_) => "Internal server error",
            Self::HandlerTimedOut { .. } => "Hook handler timed out",
            Self::JournalUnavailable(_) => "Journal unavailable",
            Self::TooManyPending { .. } => "Too many pending deliveries",
        }
    }

    /// The delivery's outcome for the metrics: the README's error table names it
    /// beside each row.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::MethodNotAllowed => Outcome::MethodNotAllowed,
            Self::ForbiddenSource(_) | Self::BadForwardedFor => Outcome::IpDenied,
            Self::GithubUnreachable | Self::GithubRateLimited { .. } => {
                Outcome::AllowListUnavailable
            }
            Self::NoPeerAddress => Outcome::Misconfigured,
            Self::PayloadTooLarge { .. } => Outcome::TooLarge,
            Self::BodyUnreadable(_) => Outcome::BodyUnreadable,
            Self::BodyTimeout => Outcome::BodyTimeout,
            Self::BodyBudgetExhausted { .. } => Outcome::Busy,
            Self::MissingSignature => Outcome::MissingSignature,
            Self::WrongSignature { .. } | Self::DuplicateSignature(_) => Outcome::BadSignature,
            Self::MissingHeader(_) | Self::InvalidHeader(_) => Outcome::MissingHeader,
            Self::UnsupportedContentType => Outcome::UnsupportedType,
            Self::FormPayloadField | Self::InvalidJson(_) => Outcome::BadPayload,
            Self::HandlerPanicked(_) => Outcome::HandlerError,
            Self::HandlerTimedOut { .. } => Outcome::HandlerTimeout,
            Self::JournalUnavailable(_) => Outcome::Unavailable,
            Self::TooManyPending { .. } => Outcome::TooManyPending,
        }
    }

    /// What the log line says: the message, or more where the operator needs more
    /// than the sender may see.
    fn reason(&self) -> Cow<'static, str> {
        match self {
            // Which header and how many secrets: what tells a wrong secret from a
            // proxy that rewrites bodies. Never the MAC sent or expected.
            Self::WrongSignature {
                header,
                secrets,
                malformed: true,
            } => format!(
                "Wrong signature: {header} is malformed (checked against {secrets} {})",
                plural(*secrets, "secret", "secrets")
            )
            .into(),
            Self::WrongSignature {
                header,
                secrets,
                malformed: false,
            } => format!(
                "Wrong signature: {header} matches none of the {secrets} {} tried",
                plural(*secrets, "secret", "secrets")
            )
            .into(),
            Self::NoPeerAddress => "source-IP checking is on but the server gives no peer \
                 address: serve the app with hookserver::serve, or with \
                 into_make_service_with_connect_info::<SocketAddr>()"
                .into(),
            Self::ForbiddenSource(client) => {
                format!("Requests must originate from GitHub: {client} is not in the allow-list")
                    .into()
            }
            Self::BodyUnreadable(why) => format!("Could not read the request body: {why}").into(),
            Self::HandlerPanicked(why) => format!("hook handler panicked: {why}").into(),
            Self::HandlerTimedOut { after_ms } => format!(
                "hook handler timed out after {after_ms} ms and was stopped; \
                 spawn long work and answer at once"
            )
            .into(),
            Self::JournalUnavailable(why) => format!("Journal unavailable: {why}").into(),
            Self::TooManyPending { max } => format!(
                "Too many pending deliveries: {max} are queued or running \
                 (HOOKSERVER_JOURNAL_MAX_PENDING)"
            )
            .into(),
            other => other.message(),
        }
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl From<InvalidJson> for Rejection {
    fn from(e: InvalidJson) -> Self {
        Self::InvalidJson(e)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = plain(
            self.status(),
            self.message().into_owned(),
            self.kind(),
            self.reason(),
            self.outcome(),
        );
        match self {
            Self::BodyBudgetExhausted { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            Self::JournalUnavailable(_) | Self::TooManyPending { .. } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(JOURNAL_RETRY_AFTER_SECS),
                );
            }
            Self::MethodNotAllowed => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flask_hookserver_messages_and_statuses() {
        let cases = [
            (
                Rejection::ForbiddenSource([203, 0, 113, 9].into()),
                403,
                "Requests must originate from GitHub",
            ),
            (Rejection::GithubUnreachable, 503, "Error reaching GitHub"),
            (
                Rejection::GithubRateLimited {
                    until: "Tue, 27 Oct 2015 07:04:38 GMT".into(),
                },
                503,
                "Rate limited from GitHub until Tue, 27 Oct 2015 07:04:38 GMT",
            ),
            (Rejection::MissingSignature, 400, "Missing signature"),
            (
                Rejection::WrongSignature {
                    header: "X-Hub-Signature-256",
                    secrets: 2,
                    malformed: false,
                },
                400,
                "Wrong signature",
            ),
            (
                Rejection::DuplicateSignature("X-Hub-Signature-256"),
                400,
                "Wrong signature: more than one X-Hub-Signature-256 header",
            ),
            (
                Rejection::MissingHeader("X-GitHub-Event"),
                400,
                "Missing header: X-GitHub-Event",
            ),
            (
                Rejection::PayloadTooLarge { limit: 10 },
                413,
                "Payload too large: the limit is 10 bytes",
            ),
            (
                Rejection::UnsupportedContentType,
                415,
                "Unsupported Content-Type: expected application/json or application/x-www-form-urlencoded",
            ),
            (
                Rejection::HandlerPanicked("boom".into()),
                500,
                "Internal server error",
            ),
        ];
        for (rejection, status, message) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection:?}");
            assert_eq!(rejection.message(), message);
            assert_eq!(rejection.to_string(), message);
        }
    }

    #[test]
    fn answers_carry_their_reason_and_never_the_panic_in_the_body() {
        let response = Rejection::HandlerPanicked("secret detail".into()).into_response();
        let reason = response
            .extensions()
            .get::<Reason>()
            .expect("reason")
            .clone();
        assert_eq!(reason.kind, "Internal server error");
        assert_eq!(reason.text, "hook handler panicked: secret detail");
        let response = Rejection::BodyBudgetExhausted {
            retry_after_secs: 2,
        }
        .into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn a_wrong_signature_logs_its_header_and_secret_count_and_the_body_says_no_more() {
        for (malformed, secrets, reason) in [
            (
                false,
                2,
                "Wrong signature: X-Hub-Signature matches none of the 2 secrets tried",
            ),
            (
                true,
                1,
                "Wrong signature: X-Hub-Signature is malformed (checked against 1 secret)",
            ),
        ] {
            let rejection = Rejection::WrongSignature {
                header: "X-Hub-Signature",
                secrets,
                malformed,
            };
            assert_eq!(rejection.kind(), "Wrong signature");
            assert_eq!(rejection.message(), "Wrong signature");
            let response = rejection.into_response();
            let logged = response.extensions().get::<Reason>().expect("reason");
            assert_eq!(logged.text, reason);
        }
    }

    #[test]
    fn payload_rejections_know_their_status_body_and_source() {
        let invalid = PayloadRejection::from(InvalidJson::new("EOF while parsing"));
        assert_eq!(invalid.status(), 400);
        assert_eq!(
            invalid.body_text(),
            "Invalid JSON payload: EOF while parsing"
        );
        let error = serde_path_to_error::deserialize::<_, u8>(
            &mut serde_json::Deserializer::from_str("\"x\""),
        )
        .unwrap_err();
        let mismatch = PayloadRejection::from(PayloadMismatch::new(error));
        assert_eq!(mismatch.status(), 400);
        assert!(
            mismatch
                .body_text()
                .starts_with("Payload does not match: invalid type: string"),
            "{mismatch}"
        );
        let source = std::error::Error::source(&mismatch).expect("source");
        assert!(std::error::Error::source(source).is_some(), "serde's error");
    }
}
