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
//! 3. Body up to the limit (25 MiB) → `413` beyond it.
//! 4. Signature (when `validate_signature`): absent → `400 Missing signature`, wrong
//!    → `400 Wrong signature`.
//! 5. `X-GitHub-Event` and `X-GitHub-Delivery` present → else `400 Missing header: ...`.
//! 6. Payload: JSON or form (`payload=`) → `415` for other types, `400` when not JSON.
//! 7. The most specific handler: `event.action`, then `event`, then `*`; none →
//!    `200 Hook not used`. A handler that panics → `500`, and the server keeps serving.
//!
//! [axum]: https://docs.rs/axum
#![doc(test(attr(deny(warnings))))]

mod config;
mod delivery;
mod extract;
mod handler;
mod hooks;
mod ip;
mod log_limit;
mod meta;
mod pipeline;
mod rejection;
mod routes;
mod serve;
pub mod signature;

pub use config::{
    Config, ConfigError, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_GITHUB_API_URL,
    DEFAULT_HANDLER_TIMEOUT, DEFAULT_META_MAX_STALE, DEFAULT_META_TIMEOUT, DEFAULT_META_TTL,
};
pub use delivery::Delivery;
pub use extract::{FromDelivery, Payload, State};
pub use handler::Handler;
pub use hooks::{Hook, Hooks};
pub use ip::AllowList;
pub use rejection::Rejection;
pub use serve::{Server, serve, serve_with_shutdown, shutdown_signal};

/// Turns an `async fn` into a handler for the given event keys.
///
/// See [`hookserver_macros::hook`] for the full reference.
pub use hookserver_macros::hook;

/// Entry points for the fuzz targets and benchmarks; not part of the public API.
#[doc(hidden)]
pub mod __private {
    /// Parses the `hooks` list of a GitHub `/meta` answer, as the cache does.
    pub fn parse_meta_hooks(body: &[u8]) -> Result<crate::AllowList, String> {
        crate::meta::parse_hooks(body)
    }

    /// Checks a delivery's headers and payload as the pipeline does after the
    /// signature: the routing action, or the rejection.
    pub fn parse_delivery(
        headers: http::HeaderMap,
        body: bytes::Bytes,
    ) -> Result<Option<String>, crate::Rejection> {
        crate::Delivery::parse(headers, body, None).map(|d| d.action().map(str::to_owned))
    }
}

/// Re-exported so users and generated code name the same `ipnet` version.
pub use ipnet;
