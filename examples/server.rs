//! Run with:
//!
//! ```text
//! GITHUB_WEBHOOKS_KEY=change-me VALIDATE_IP=false cargo run --release -p examples --example server
//! ```
//!
//! then, from a second terminal, send it a signed delivery:
//!
//! ```text
//! GITHUB_WEBHOOKS_KEY=change-me cargo run -p hookserver-cli -- send push examples/payloads/push.json
//! ```
//!
//! Serves `POST /hooks`, `GET /health`, `GET /ready` and `GET /metrics` on `--addr ADDR` or
//! `HOOKSERVER_ADDR` (default `127.0.0.1:8000`; `--port PORT` changes only the port,
//! `--port 0` picks a free one) and reads every
//! other setting with `Config::from_env()` and `Server::from_env()` (see the README's
//! configuration table). Deliveries are journaled in `hookserver.db` in the working
//! directory (`HOOKSERVER_JOURNAL=off` turns the journal off), answered `202 Queued`
//! once durable, and processed right after.
//! `ping` answers `pong`; `push` answers with the delivery's GUID, its ref and commit
//! count; `pull_request.opened` answers with the pull request's number; every other
//! event gets `Hook not used`. Logs one line per delivery (`RUST_LOG` tunes it).

use hookserver::{Config, Delivery, Hooks, Payload, hook};
use serde::{Deserialize, de::IgnoredAny};
use std::{net::SocketAddr, process::ExitCode};

#[path = "support/logging.rs"]
mod logging;

/// Only what the handler reads: the rest of the payload is skipped, not parsed into
/// a tree, which is what makes every delivery cheap and big pushes cheaper still.
#[derive(Deserialize)]
struct PingEvent {
    zen: String,
}

#[hook("ping")]
async fn ping(Payload(ping): Payload<PingEvent>) -> &'static str {
    tracing::debug!(zen = ping.zen.as_str(), "pinged");
    "pong"
}

#[derive(Deserialize)]
struct PushEvent {
    r#ref: String,
    commits: Vec<IgnoredAny>,
}

#[hook("push")]
async fn push(Payload(push): Payload<PushEvent>, delivery: Delivery) -> String {
    format!(
        "GUID: {} ref {} with {} commits",
        delivery.guid(),
        push.r#ref,
        push.commits.len()
    )
}

#[derive(Deserialize)]
struct PullRequestEvent {
    number: u64,
    pull_request: PullRequest,
}

#[derive(Deserialize)]
struct PullRequest {
    title: String,
}

#[hook("pull_request.opened")]
async fn pull_request_opened(Payload(event): Payload<PullRequestEvent>) -> String {
    format!(
        "pull request #{} opened: {}",
        event.number, event.pull_request.title
    )
}

/// Where the example keeps its journal when `HOOKSERVER_JOURNAL` is unset.
const DEFAULT_JOURNAL: &str = "sqlite:hookserver.db";

#[tokio::main]
async fn main() -> ExitCode {
    // h2 warns once per HTTP/2 connection it closes for abuse (rapid reset), which
    // an attacker can repeat at will; hookserver reports those connections itself,
    // rate limited.
    let _flush_on_exit = logging::init("info,h2=error");
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    // The journal is on unless HOOKSERVER_JOURNAL says otherwise (`off` disables it):
    // every delivery is durable before it is acknowledged, and retried on failure.
    if std::env::var_os("HOOKSERVER_JOURNAL").is_none() {
        config = config.journal(DEFAULT_JOURNAL);
    }
    let server = hookserver::Server::from_env().map_err(|e| e.to_string())?;
    let addr = listen_addr(
        std::env::args().skip(1),
        std::env::var("HOOKSERVER_ADDR").ok(),
    )?;
    let hooks = Hooks::try_new(config)
        .map_err(|e| e.to_string())?
        .hook(ping)
        .hook(push)
        .hook(pull_request_opened);
    // Liveness and readiness for a load balancer, beside the deliveries.
    let health = hooks.health_routes("/health", "/ready");
    // Prometheus metrics; in production, serve them where only monitoring reaches.
    let metrics = hooks.metrics_route("/metrics");
    let app = axum::Router::new()
        .merge(hooks.router("/hooks"))
        .merge(health)
        .merge(metrics);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!("listening on http://{addr}/hooks");
    server
        .serve(listener, app)
        .await
        .map_err(|e| format!("server failed: {e}"))
}

const USAGE: &str = "usage: server [--addr HOST:PORT] [--port PORT]";

/// Where to listen: `--addr`, else `HOOKSERVER_ADDR`, else `127.0.0.1:8000`, with the
/// port replaced by `--port` when given. Two flags are parsed by hand (`--flag value` or
/// `--flag=value`), to keep the example free of an argument parser.
fn listen_addr(
    args: impl Iterator<Item = String>,
    env: Option<String>,
) -> Result<SocketAddr, String> {
    let (mut addr, mut port) = (None, None);
    let mut args = args;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--addr" => &mut addr,
            "--port" => &mut port,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        *slot = Some(value);
    }
    let mut listen = match (addr, env.filter(|v| !v.trim().is_empty())) {
        (Some(v), _) => v.trim().parse().map_err(|_| {
            format!("--addr: expected an address such as 127.0.0.1:8000, got {v:?}")
        })?,
        (None, Some(v)) => v.trim().parse().map_err(|_| {
            format!("HOOKSERVER_ADDR: expected an address such as 127.0.0.1:8000, got {v:?}")
        })?,
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 8000)),
    };
    if let Some(p) = port {
        listen.set_port(
            p.trim()
                .parse()
                .map_err(|_| format!("--port: expected a port number (0-65535), got {p:?}"))?,
        );
    }
    Ok(listen)
}
