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
//! [axum]: https://docs.rs/axum
#![doc(test(attr(deny(warnings))))]

mod allow_list;
mod body;
mod client_addr;
mod config;
mod delivery;
mod extract;
mod handler;
mod hooks;
mod meta;
mod pipeline;
mod rejection;
mod routes;
mod scan;
mod serve;
pub mod signature;
mod source;

/// axum's own extractor of the registry's state (or a part of it, with
/// [`FromRef`]): the same `State` you use in your routes.
pub use axum::extract::{FromRef, State};
pub use config::{Config, ConfigError};
pub use delivery::Delivery;
pub use extract::{FromDelivery, Payload};
pub use handler::Handler;
pub use hooks::{Hook, Hooks};
pub use rejection::{InvalidJson, PayloadMismatch, PayloadRejection};
pub use serve::{
    DEFAULT_HEADER_TIMEOUT, DEFAULT_SHUTDOWN_GRACE, Server, serve, serve_with_shutdown,
    shutdown_signal,
};

/// Turns an `async fn` into a handler for the given event keys.
///
/// See [`hookserver_macros::hook`] for the full reference.
pub use hookserver_macros::hook;

/// Entry points for the fuzz targets, benchmarks and tests; not part of the public
/// API.
#[doc(hidden)]
pub mod __private {
    use std::net::IpAddr;

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
