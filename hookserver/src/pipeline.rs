//! One delivery's way through, in the order that is part of the contract:
//! source IP → body (limit, timeout, budget) → signature → GitHub headers → payload
//! → dispatch. Each step either passes or answers with a [`Rejection`], and the
//! delivery's outcome is logged once, here, in one line that carries the reason.

use crate::{
    body::BodyReader,
    config::{Config, ConfigError},
    delivery::Delivery,
    rejection::{Reason, Rejection},
    routes::Routes,
    signature::{SignatureError, Signatures, Verifier},
    source::SourceCheck,
};
use axum::{
    extract::{ConnectInfo, Request, State},
    response::{IntoResponse, Response},
};
use futures_util::FutureExt;
use http::StatusCode;
use std::{
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};
use tracing::Instrument;

/// Everything a delivery needs, built once per registry.
pub(crate) struct Pipeline<S> {
    source: Option<SourceCheck>,
    body: BodyReader,
    /// `None` when signature checking is off.
    verifier: Option<Verifier>,
    handler_timeout: Duration,
    routes: Routes<S>,
    state: S,
}

/// The parts built from a configuration, before the routes are known. Building
/// them is where start-up errors (an HTTP client that cannot be built) surface.
pub(crate) struct Parts {
    source: Option<SourceCheck>,
    body: BodyReader,
    verifier: Option<Verifier>,
    handler_timeout: Duration,
}

impl Parts {
    pub(crate) fn new(config: &Config) -> Result<Self, ConfigError> {
        config.check()?;
        Ok(Self {
            source: SourceCheck::new(&config.source, &config.meta)?,
            body: BodyReader::new(&config.body),
            verifier: config.signature.verifier(),
            handler_timeout: config.handler_timeout,
        })
    }
}

impl<S> Pipeline<S> {
    pub(crate) fn new(parts: Parts, state: S, routes: Routes<S>) -> Self {
        Self {
            source: parts.source,
            body: parts.body,
            verifier: parts.verifier,
            handler_timeout: parts.handler_timeout,
            routes,
            state,
        }
    }
}

fn as_str(value: &Option<http::HeaderValue>) -> Option<&str> {
    value.as_ref().and_then(|v| v.to_str().ok())
}

/// The axum handler behind `POST path`.
pub(crate) async fn deliver<S>(
    State(pipeline): State<Arc<Pipeline<S>>>,
    request: Request,
) -> Response
where
    S: Clone + Send + Sync + 'static,
{
    let started = Instant::now();
    // The event and GUID as claimed by the headers, so that even a rejected delivery
    // can be found in the log (tracing escapes the values). Cloning a header value
    // is a reference count.
    let (event, guid) = {
        let claimed = |name: &str| request.headers().get(name).cloned();
        (claimed("x-github-event"), claimed("x-github-delivery"))
    };
    // The span puts the delivery around the handler's own log lines. It is at debug
    // level because it costs more than the rest of a small delivery's pipeline:
    // enable it with `RUST_LOG=info,hookserver=debug`. The one line per delivery
    // below carries the same fields at info.
    let span = tracing::debug_span!(
        "delivery",
        event = as_str(&event),
        action = tracing::field::Empty,
        guid = as_str(&guid),
    );
    let (mut response, delivery) = pipeline.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_us = started.elapsed().as_micros() as u64;
    let action = delivery.as_ref().and_then(Delivery::known_action);
    let (event, guid) = (as_str(&event), as_str(&guid));
    // The reason is the answer's own text from hookserver, which may quote the
    // payload (serde's messages): Debug formatting escapes newlines and quotes.
    let reason = response.extensions_mut().remove::<Reason>().map(|r| r.0);
    let reason = reason.as_deref();
    span.in_scope(|| {
        // `None` fields are left out of the line, like `action` for push.
        macro_rules! answered {
            ($level:ident) => {
                tracing::$level!(
                    event,
                    action,
                    guid,
                    status,
                    elapsed_us,
                    reason,
                    "delivery answered"
                )
            };
        }
        // One line per delivery, at the level its outcome deserves. A flood of bad
        // requests must not drown the log: 4xx at debug.
        match status {
            500 => answered!(error),
            501.. => answered!(warn),
            400..=499 => answered!(debug),
            _ => answered!(info),
        }
    });
    response
}

impl<S> Pipeline<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// The answer, and the delivery when it got that far.
    async fn run(&self, request: Request) -> (Response, Option<Delivery>) {
        let (parts, body) = request.into_parts();
        // Other methods are answered here rather than by axum's method router, so
        // that they get their log line like every other answer.
        if parts.method != http::Method::POST {
            return (Rejection::MethodNotAllowed.into_response(), None);
        }
        let client_ip = match &self.source {
            Some(source) => {
                let peer = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                match source.check(peer, &parts.headers).await {
                    Ok(client) => Some(client),
                    Err(rejection) => return (rejection.into_response(), None),
                }
            }
            None => None,
        };
        // The body's share of the buffered-bytes budget is held until the answer.
        let body = match self.body.read(&parts.headers, body).await {
            Ok(body) => body,
            Err(rejection) => return (rejection.into_response(), None),
        };
        if let Some(verifier) = &self.verifier
            && let Err(rejection) = verify(verifier, &parts.headers, &body.bytes)
        {
            return (rejection.into_response(), None);
        }
        match Delivery::parse(parts.headers, body.bytes.clone(), client_ip) {
            Ok(delivery) => (self.dispatch(&delivery).await, Some(delivery)),
            Err(rejection) => (rejection.into_response(), None),
        }
    }

    async fn dispatch(&self, delivery: &Delivery) -> Response {
        let handler = self.routes.find(delivery.event(), || delivery.action());
        let Some(handler) = handler else {
            // Broken JSON is a 400 whatever the handler takes, even none.
            if let Err(invalid) = delivery.check_payload() {
                return invalid.into_response();
            }
            record_action(delivery);
            return (StatusCode::OK, "Hook not used").into_response();
        };
        // A panic in the handler (while extracting or while running) is the handler's
        // bug: answer 500 and keep the connection and the server alive.
        let call =
            std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(delivery, &self.state)));
        // The extractors have run and the handler's own code has not: refuse a
        // payload that is not valid JSON now. When an extractor parsed it, this
        // costs nothing; otherwise it is one scan that builds nothing.
        if let Err(invalid) = delivery.check_payload() {
            return invalid.into_response();
        }
        record_action(delivery);
        let future = match call {
            Ok(future) => future,
            Err(panic) => {
                return Rejection::HandlerPanicked(panic_message(&*panic)).into_response();
            }
        };
        let guarded = AssertUnwindSafe(future).catch_unwind();
        match tokio::time::timeout(self.handler_timeout, guarded).await {
            Ok(Ok(response)) => response,
            Ok(Err(panic)) => Rejection::HandlerPanicked(panic_message(&*panic)).into_response(),
            Err(_) => Rejection::HandlerTimedOut {
                after_ms: self.handler_timeout.as_millis() as u64,
            }
            .into_response(),
        }
    }
}

/// Puts the action on the delivery's span, where the handler's log lines see it.
fn record_action(delivery: &Delivery) {
    if let Some(action) = delivery.action_for_log() {
        tracing::Span::current().record("action", action);
    }
}

fn verify(verifier: &Verifier, headers: &http::HeaderMap, body: &[u8]) -> Result<(), Rejection> {
    let signatures = Signatures::from_headers(headers);
    signatures
        .and_then(|signatures| verifier.verify(body, signatures))
        .map_err(|e| match e {
            SignatureError::Missing => Rejection::MissingSignature,
            SignatureError::Duplicate(name) => Rejection::DuplicateSignature(name),
            _ => Rejection::WrongSignature,
        })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
        .to_owned()
}
