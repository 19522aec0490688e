//! Receive GitHub webhooks in an [axum] app, safely by default.
//!
//! Write handlers, annotate each with the event it answers, register them on a
//! [`Hooks`] registry and mount [`Hooks::router`]. hookserver checks that the caller
//! is GitHub (source IP against GitHub's published hook ranges, HMAC signature
//! against your secret), parses the delivery, calls the most specific handler, and
//! answers every failure with the right status and a short message.
//!
//! # Quick start
//!
//! ```no_run
//! use hookserver::{Config, Delivery, Hooks, Payload, hook};
//! use serde::Deserialize;
//! use serde_json::Value;
//!
//! #[hook("ping")]
//! async fn ping(_payload: Value) -> &'static str {
//!     "pong"
//! }
//!
//! #[hook("push")]
//! async fn push(payload: Value, delivery: Delivery) -> String {
//!     format!("GUID: {} ref {}", delivery.guid(), payload["ref"])
//! }
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
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // GITHUB_WEBHOOKS_KEY holds the secret; VALIDATE_IP / VALIDATE_SIGNATURE toggle the checks.
//!     let hooks = Hooks::new(Config::from_env()?).hook(ping).hook(push).hook(pr_opened);
//!     let app = axum::Router::new().merge(hooks.router("/hooks"));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//!     hookserver::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! # What a delivery goes through
//!
//! 1. `POST` only; other methods get `405` with `Allow: POST`.
//! 2. Source IP (when `validate_ip`): outside GitHub's ranges → `403`; ranges
//!    unavailable → `503`.
//! 3. Body up to the limit (25 MiB) → `413` beyond it; all bodies being received
//!    share one memory budget → `503` with `Retry-After` when it stays full.
//! 4. Signature (when `validate_signature`): absent → `400 Missing signature`, wrong
//!    → `400 Wrong signature`.
//! 5. `X-GitHub-Event` and `X-GitHub-Delivery` present → else `400 Missing header: ...`.
//! 6. Payload: JSON or form (`payload=`) → `415` for other types, `400` when not JSON.
//! 7. The most specific handler: `event.action`, then `event`, then `*`; none →
//!    `200 Hook not used`. A handler that panics → `500`, and the server keeps serving.
//!
//! # Features
//!
//! - `test-util` (off by default; for your `[dev-dependencies]`, as tokio's): the `test`
//!   module, deliveries built and signed like GitHub's for `tower::ServiceExt::oneshot` on
//!   the router or for a running server, and helpers to read the answer.
//!
//! [axum]: https://docs.rs/axum
#![doc(test(attr(deny(warnings))))]

mod allow_list;
mod body;
mod catchup;
mod client_addr;
mod config;
mod delivery;
mod delivery_log;
mod event_key;
mod extract;
mod github;
mod github_events;
mod handler;
mod health;
mod hooks;
mod journal;
mod log_limit;
mod log_writer;
mod meta;
mod metrics;
mod outcome;
mod outgoing;
mod pipeline;
mod rejection;
mod routes;
mod scan;
mod sender;
mod serve;
pub mod signature;
mod source;
#[cfg(feature = "test-util")]
pub mod test;

/// axum's own extractor of the registry's state (or a part of it, with
/// [`FromRef`]): the same `State` you use in your routes.
pub use axum::extract::{FromRef, State};
pub use catchup::CatchupStatus;
pub use config::{Config, ConfigError};
pub use delivery::Delivery;
pub use delivery_log::{DeliveryLog, DeliveryLogError, LoggedDelivery};
pub use extract::{FromDelivery, Payload};
pub use handler::Handler;
pub use hooks::Hooks;
pub use journal::{
    Ack, DeliveryState, Journal, JournalEntry, JournalError, JournalStats, ListFilter,
    ReplayOutcome, StoredDelivery,
};
pub use log_writer::{LogFlushGuard, LogWriter};
pub use rejection::{InvalidJson, PayloadMismatch, PayloadRejection};
pub use sender::{SendError, Sender, Sent};
pub use serve::{Server, serve, serve_with_shutdown, shutdown_signal};

/// Turns an `async fn` into a handler for the given event keys.
///
/// See [`hookserver_macros::hook`] for the full reference.
pub use hookserver_macros::hook;

/// What the `#[hook]` expansion names, and entry points for the tests, fuzz
/// targets and benchmarks; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use crate::{Handler, Hooks};
    use std::net::IpAddr;

    pub use crate::hooks::Hook;

    /// `hooks.on(key, handler)` without the check against GitHub's list of events:
    /// what `#[hook("...", unchecked)]` registers with.
    #[track_caller]
    pub fn on_unchecked<S, H, T>(hooks: Hooks<S>, key: &str, handler: H) -> Hooks<S>
    where
        S: Clone + Send + Sync + 'static,
        H: Handler<T, S>,
        T: 'static,
    {
        hooks.on_unchecked(key, handler)
    }

    /// `config` with the rejection warnings' interval set to `interval` instead of
    /// a minute, so that a test sees the summary line without waiting a minute.
    pub fn rejection_log_interval(
        mut config: crate::Config,
        interval: std::time::Duration,
    ) -> crate::Config {
        config.rejection_log_interval = interval;
        config
    }

    /// What [`Hooks::on`] makes of `key`: `Err` with the panic message when it is
    /// malformed, `Ok(Some(..))` with the reason for the warning when GitHub's list
    /// does not have it, `Ok(None)` when all is well.
    pub fn check_event_key(key: &str) -> Result<Option<String>, String> {
        let parsed = crate::event_key::parse(key).map_err(|e| e.to_string())?;
        Ok(crate::event_key::check_known(&parsed)
            .err()
            .map(|unknown| unknown.to_string()))
    }

    /// Every key GitHub's list has: each event, and each `event.action` of the
    /// events whose actions are listed.
    pub fn github_event_keys() -> Vec<String> {
        use crate::github_events::{Actions, EVENTS};
        let mut keys = Vec::new();
        for (event, actions) in EVENTS {
            keys.push((*event).to_owned());
            if let Actions::Listed(actions) = actions {
                keys.extend(actions.iter().map(|action| format!("{event}.{action}")));
            }
        }
        keys
    }

    /// The events whose action is free-form text (`repository_dispatch`).
    pub fn free_form_events() -> Vec<&'static str> {
        use crate::github_events::{Actions, EVENTS};
        EVENTS
            .iter()
            .filter(|(_, actions)| *actions == Actions::FreeForm)
            .map(|(event, _)| *event)
            .collect()
    }

    /// Parses the `hooks` list of a GitHub `/meta` answer, as the cache does, and
    /// returns a lookup over it.
    pub fn parse_meta_hooks(body: &[u8]) -> Result<impl Fn(IpAddr) -> bool, String> {
        let list = crate::meta::parse_hooks(body)?;
        Ok(move |ip| list.contains(ip))
    }

    /// The allow-list of `nets` as a lookup, as the source check builds it.
    pub fn allow_list(nets: Vec<ipnet::IpNet>) -> impl Fn(IpAddr) -> bool {
        let list = crate::allow_list::AllowList::new(nets);
        move |ip| list.contains(ip)
    }

    /// Reads back the headers of a journal row, as a worker does before it runs a
    /// stored delivery.
    pub fn decode_stored_headers(stored: &[u8]) -> Result<http::HeaderMap, String> {
        crate::journal::stored::decode_headers(stored)
    }

    /// The headers a journal row keeps of `headers`, encoded as stored.
    pub fn encode_stored_headers(headers: &http::HeaderMap) -> Vec<u8> {
        crate::journal::stored::encode_headers(headers)
    }

    /// Checks a delivery's headers and locates its payload as the pipeline does
    /// after the signature: the routing action, or the answer's status and body.
    pub fn parse_delivery(
        headers: http::HeaderMap,
        body: bytes::Bytes,
    ) -> Result<Option<String>, (u16, String)> {
        let refused =
            |r: crate::rejection::Rejection| (r.status().as_u16(), r.message().into_owned());
        let delivery = crate::Delivery::parse(headers, body, None).map_err(refused)?;
        Ok(delivery.action().map(str::to_owned))
    }
}

/// Re-exported so users and generated code name the same `ipnet` version.
pub use ipnet;
