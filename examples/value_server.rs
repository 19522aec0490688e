//! Run with:
//!
//! ```text
//! GITHUB_WEBHOOKS_KEY=change-me VALIDATE_IP=false cargo run --release -p examples --example value_server
//! ```
//!
//! The example server's `ping` and `push`, with handlers that take the whole payload as a
//! `serde_json::Value` instead of the typed payload the `server` example declares. It exists
//! to measure that path side by side (README, "Performance"): a `Value` is a tree of every
//! field of the delivery, which is what dominates the cost of large payloads.

use hookserver::{Config, Delivery, Hooks, hook};
use serde_json::Value;
use std::{net::SocketAddr, process::ExitCode};

#[path = "support/logging.rs"]
mod logging;

#[hook("ping")]
async fn ping(_payload: Value) -> &'static str {
    "pong"
}

#[hook("push")]
async fn push(payload: Value, delivery: Delivery) -> String {
    let commits = payload["commits"].as_array().map_or(0, Vec::len);
    format!(
        "GUID: {} ref {} with {commits} commits",
        delivery.guid(),
        payload["ref"]
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    // The same per-delivery logging as the `server` example, so the two compare.
    let _flush_on_exit = logging::init("info");
    let run = async {
        let config = Config::from_env().map_err(|e| e.to_string())?;
        let addr: SocketAddr = std::env::var("HOOKSERVER_ADDR")
            .unwrap_or_else(|_| "127.0.0.1:8000".to_owned())
            .parse()
            .map_err(|_| {
                "HOOKSERVER_ADDR: expected an address such as 127.0.0.1:8000".to_owned()
            })?;
        let app = Hooks::new(config).hook(ping).hook(push).router("/hooks");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        hookserver::serve(listener, app)
            .await
            .map_err(|e| format!("server failed: {e}"))
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
