//! One delivery's way through, in the order that is part of the contract:
//! source IP → body (with its limit) → signature → GitHub headers → payload →
//! dispatch. Each step either passes or answers with a [`Rejection`].

use crate::{
    config::Config,
    delivery::Delivery,
    ip::SourceCheck,
    rejection::Rejection,
    routes::Routes,
    signature::{SIGNATURE_256_HEADER, SIGNATURE_SHA1_HEADER, Verifier},
};
use axum::{
    extract::{ConnectInfo, Request, State},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::{
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};
use tracing::Instrument;

/// Everything a delivery needs, built once per router.
pub(crate) struct Pipeline<S> {
    source: Option<SourceCheck>,
    body_limit: usize,
    body_timeout: Duration,
    handler_timeout: Duration,
    /// `None` when signature checking is off.
    verifier: Option<Verifier>,
    routes: Routes<S>,
    state: S,
}

impl<S> Pipeline<S> {
    pub(crate) fn new(config: Config, state: S, routes: Routes<S>) -> Self {
        let verifier = config
            .validate_signature
            .then(|| Verifier::new(&config.secrets, config.allow_sha1));
        let source = config.validate_ip.then(|| SourceCheck::new(&config));
        if let Some(meta) = source.as_ref().and_then(SourceCheck::meta)
            && config.meta_warm
        {
            meta.warm();
        }
        Self {
            source,
            body_limit: config.body_limit,
            body_timeout: config.body_timeout,
            handler_timeout: config.handler_timeout,
            verifier,
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
    let (response, delivery) = pipeline.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_us = started.elapsed().as_micros() as u64;
    let action = delivery.as_ref().and_then(Delivery::known_action);
    let (event, guid) = (as_str(&event), as_str(&guid));
    span.in_scope(|| {
        // A flood of bad requests must not drown the log: 4xx at debug.
        macro_rules! answered {
            ($level:ident) => {
                tracing::$level!(event, action, guid, status, elapsed_us, "delivery answered")
            };
        }
        match status {
            500.. => answered!(warn),
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
        match self.accept(request).await {
            Ok(delivery) => (self.dispatch(&delivery).await, Some(delivery)),
            Err(rejection) => (rejection.into_response(), None),
        }
    }

    /// Every check before a handler runs.
    async fn accept(&self, request: Request) -> Result<Delivery, Rejection> {
        let (parts, body) = request.into_parts();
        let client_ip = match &self.source {
            Some(source) => {
                let peer = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                Some(source.check(peer, &parts.headers).await?)
            }
            None => None,
        };
        let body = tokio::time::timeout(
            self.body_timeout,
            read_body(&parts.headers, body, self.body_limit),
        )
        .await
        .map_err(|_| Rejection::BodyTimeout)??;
        if let Some(verifier) = &self.verifier {
            verify(verifier, &parts.headers, &body)?;
        }
        Delivery::parse(parts.headers, body, client_ip)
    }

    async fn dispatch(&self, delivery: &Delivery) -> Response {
        let handler = self.routes.find(delivery.event(), || delivery.action());
        // A payload extractor checks the JSON as it parses it; otherwise scan it here
        // (building nothing), so that broken JSON is a 400 whatever the handler takes.
        if !handler.is_some_and(|h| h.validates_payload())
            && let Err(rejection) = delivery.validate_payload()
        {
            return rejection.into_response();
        }
        if let Some(action) = delivery.action_for_log() {
            tracing::Span::current().record("action", action);
        }
        let Some(handler) = handler else {
            tracing::debug!("no handler for this event");
            return (StatusCode::OK, "Hook not used").into_response();
        };
        // A panic in the handler (while extracting or while running) is the handler's
        // bug: answer 500, log it, and keep the connection and the server alive.
        let call =
            std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(delivery, &self.state)));
        let outcome = match call {
            Ok(future) => {
                let guarded = AssertUnwindSafe(future).catch_unwind();
                match tokio::time::timeout(self.handler_timeout, guarded).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::error!(
                            event = delivery.event(),
                            guid = delivery.guid(),
                            timeout_ms = self.handler_timeout.as_millis() as u64,
                            "hook handler timed out and was stopped; spawn long work and answer at once"
                        );
                        return Rejection::HandlerTimedOut.into_response();
                    }
                }
            }
            Err(panic) => Err(panic),
        };
        outcome.unwrap_or_else(|panic| {
            tracing::error!(
                event = delivery.event(),
                guid = delivery.guid(),
                panic = panic_message(&panic),
                "hook handler panicked"
            );
            Rejection::HandlerPanicked.into_response()
        })
    }
}

/// Reads the body, refusing anything beyond `limit` before reading it when the
/// sender declares its length, and while streaming otherwise.
async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Rejection::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Rejection::PayloadTooLarge { limit }),
        Err(e) => {
            tracing::debug!(error = %e, "could not read the request body");
            Err(Rejection::BodyUnreadable)
        }
    }
}

fn verify(verifier: &Verifier, headers: &HeaderMap, body: &[u8]) -> Result<(), Rejection> {
    let sha256 = headers.get(SIGNATURE_256_HEADER).map(|v| v.as_bytes());
    let sha1 = headers.get(SIGNATURE_SHA1_HEADER).map(|v| v.as_bytes());
    verifier.verify(sha256, sha1, body).map_err(|e| match e {
        crate::signature::SignatureError::Missing => Rejection::MissingSignature,
        crate::signature::SignatureError::Wrong => Rejection::WrongSignature,
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
