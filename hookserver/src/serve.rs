//! Serving a router with what a public webhook endpoint needs: peer addresses for the
//! source-IP check, a deadline in every state of a connection, a cap on open
//! connections, log lines an attacker cannot multiply, and a graceful, bounded
//! shutdown.

mod connection;
mod registry;
mod watchdog;

use crate::{
    config::{ConfigError, Setting, Vars, parse_count, parse_secs},
    log_limit::RateLimitedWarning,
};
use connection::Connection;
use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use registry::{Admission, Registry};
use std::{future::Future, io, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// HTTP/2 keep-alive: a PING after this long without a frame from the client...
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// ...which must be acknowledged within this long, else the connection is closed.
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Streams one HTTP/2 connection may have open at once. GitHub sends one delivery
/// per connection; a proxy multiplexing deliveries needs a few dozen at most.
const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams a client may reset before the server accepted them (the rapid-reset
/// attack, CVE-2023-44487): h2's default, stated because the log depends on it.
/// Past it h2 logs one warning and closes the connection with `GOAWAY`.
const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server may reset for protocol errors before closing the connection
/// (the "MadeYouReset" variant): a quarter of h2's 1,024, as no honest webhook
/// client comes close to either.
const H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;
/// At most one warning line per kind (accept failures, refused connections,
/// rapid-reset connections) per this interval; the rest are counted.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` with [`Server`]'s defaults until ctrl-c or SIGTERM,
/// then stops accepting and lets deliveries in flight finish (for up to 30 s). The
/// journal's workers on this runtime stop too: no new attempt starts, running
/// handlers get the same 30 s, and the rest waits in the journal for the next start.
///
/// ```no_run
/// # #![allow(dead_code)]
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// hookserver::serve(listener, app).await
/// # }
/// ```
pub async fn serve(listener: TcpListener, app: axum::Router) -> io::Result<()> {
    Server::new().serve(listener, app).await
}

/// [`serve`] with your own shutdown signal.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    app: axum::Router,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    Server::new()
        .serve_with_shutdown(listener, app, signal)
        .await
}

/// The HTTP server settings, for when [`serve`]'s defaults do not fit.
///
/// Every connection has a deadline in every state, and their number is capped:
///
/// - no request in flight (nothing sent yet, part of a preface or of the headers,
///   an idle keep-alive or HTTP/2 connection) for [`header_timeout`](Self::header_timeout):
///   closed;
/// - an answer the client does not take (a write with no progress, or an HTTP/2
///   answer with nothing written) for [`write_timeout`](Self::write_timeout): closed;
/// - HTTP/2: a `PING` after 20 s without a frame, closed when it is not
///   acknowledged within 20 s; at most 100 concurrent streams; a client that
///   resets more than 20 streams before they were served is closed with `GOAWAY`;
/// - a request in flight: bounded by the body and handler timeouts of
///   [`Config`](crate::Config);
/// - past [`max_connections`](Self::max_connections), a new connection evicts the one
///   idle the longest, or is closed at once when every connection is serving a request.
///
/// ```no_run
/// # #![allow(dead_code)]
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// use std::time::Duration;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8000").await?;
/// hookserver::Server::new()
///     .header_timeout(Duration::from_secs(10))
///     .max_connections(256)
///     .shutdown_grace(Duration::from_secs(20))
///     .serve(listener, app)
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    header_timeout: Duration,
    write_timeout: Duration,
    max_connections: usize,
    shutdown_grace: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// How long a connection may go without a request in flight: 30 s.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
    /// How long a write to a client that does not read may make no progress: 10 s.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
    /// How many connections may be open at once: 512, half the common soft limit of
    /// 1,024 file descriptors, leaving room for the rest of the process (the
    /// listener, connections to GitHub's API, logs, your handlers' files).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
    /// How long deliveries in flight may take to finish after a shutdown signal: 30 s.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

    /// The defaults: 30 s header timeout, 10 s write timeout, 512 connections, 30 s
    /// of grace at shutdown.
    pub fn new() -> Self {
        Self {
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Reads the settings from the environment; see [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads `HOOKSERVER_HEADER_TIMEOUT_SECS`, `HOOKSERVER_WRITE_TIMEOUT_SECS`,
    /// `HOOKSERVER_SHUTDOWN_GRACE_SECS` (whole seconds, at least 1) and
    /// `HOOKSERVER_MAX_CONNECTIONS` (at least 1) from `lookup`, falling back to the
    /// defaults. An empty value counts as unset; a value that does not parse is an
    /// error naming the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        const HEADER_TIMEOUT: Setting =
            Setting::new("Server::header_timeout", "HOOKSERVER_HEADER_TIMEOUT_SECS");
        const WRITE_TIMEOUT: Setting =
            Setting::new("Server::write_timeout", "HOOKSERVER_WRITE_TIMEOUT_SECS");
        const SHUTDOWN_GRACE: Setting =
            Setting::new("Server::shutdown_grace", "HOOKSERVER_SHUTDOWN_GRACE_SECS");
        const MAX_CONNECTIONS: Setting =
            Setting::new("Server::max_connections", "HOOKSERVER_MAX_CONNECTIONS");
        let vars = Vars::new(lookup);
        let mut server = Self::new();
        vars.read(HEADER_TIMEOUT, &mut server.header_timeout, parse_secs)?;
        vars.read(WRITE_TIMEOUT, &mut server.write_timeout, parse_secs)?;
        vars.read(SHUTDOWN_GRACE, &mut server.shutdown_grace, parse_secs)?;
        vars.read(MAX_CONNECTIONS, &mut server.max_connections, parse_count)?;
        Ok(server)
    }

    /// How long a connection may go without a request in flight before it is
    /// closed: from when it opens (a client that sends nothing, or trickles in its
    /// headers or HTTP/2 preface) and from the end of each answer (idle keep-alive
    /// and HTTP/2 connections).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How long a write, or an answer ready to be sent, may make no progress (the
    /// client does not read its answers, or an HTTP/2 client never reopens its
    /// flow-control window) before the connection is closed.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How many connections may be open at once (at least 1). A new connection past
    /// it evicts the one idle the longest; when every connection is serving a
    /// request, the new one is closed at once.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long deliveries in flight may take to finish after the shutdown signal;
    /// connections still busy after that are closed.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Serves until ctrl-c or SIGTERM.
    pub async fn serve(self, listener: TcpListener, app: axum::Router) -> io::Result<()> {
        self.serve_with_shutdown(listener, app, shutdown_signal())
            .await
    }

    /// Serves until `signal` completes, then stops accepting, waits up to the grace
    /// period for the deliveries in flight, and returns.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        app: axum::Router,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        // The journals this server stops at its end: those built before it started
        // (a journal built later belongs to another server of the runtime).
        let journals_before = crate::journal::workers::generation();
        let builder = Arc::new(self.builder());
        let registry = Registry::new(self.max_connections);
        let warnings = Arc::new(
            RateLimitedWarning::new(WARNING_INTERVAL).with_summaries(crate::log_limit::warn_count),
        );
        let graceful = GracefulShutdown::new();
        let mut signal = std::pin::pin!(signal);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        warnings.warn("accept failed", e);
                        // Out of file descriptors and the like: pause instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            let registered = match registry.admit() {
                Admission::Admitted(registered) => registered,
                Admission::Refused => {
                    drop(stream);
                    warnings.warn(
                        "connection refused",
                        format_args!(
                            "{} connections open, all serving a request \
                             (HOOKSERVER_MAX_CONNECTIONS)",
                            self.max_connections
                        ),
                    );
                    continue;
                }
            };
            let connection = Connection {
                stream,
                peer,
                activity: Arc::clone(&registered.activity),
                router: app.clone(),
                builder: Arc::clone(&builder),
                header_timeout: self.header_timeout,
                write_timeout: self.write_timeout,
                warnings: Arc::clone(&warnings),
            };
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                // Holds the slot for as long as the connection lives.
                let _registered = registered;
                connection.run(watcher).await;
            });
        }
        drop(listener);
        tracing::info!("no longer accepting; waiting for deliveries in flight");
        // The journal's workers stop claiming at once and get the same grace for
        // the handlers they are running; what is left stays queued for the next start.
        let connections = async {
            tokio::select! {
                () = graceful.shutdown() => tracing::info!("all deliveries answered; stopped"),
                () = tokio::time::sleep(self.shutdown_grace) => tracing::warn!(
                    grace_secs = self.shutdown_grace.as_secs(),
                    "deliveries still running after the grace period were cut off"
                ),
            }
        };
        tokio::join!(
            connections,
            crate::journal::workers::shutdown_runtime(self.shutdown_grace, journals_before)
        );
        Ok(())
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's own timer stays as a second line: it answers a slow header block
        // with 408 where the watchdog can only close.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
            .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESET_STREAMS)
            .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESET_STREAMS);
        builder
    }
}

// The default must stay below the common soft limit of 1,024 file descriptors.
const _: () = assert!(Server::DEFAULT_MAX_CONNECTIONS < 1024);

/// Completes on ctrl-c, or on SIGTERM on Unix.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Server, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Server::from_lookup(|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn nothing_set_is_the_defaults() {
        let s = from(&[]).unwrap();
        assert_eq!(s.header_timeout, Server::DEFAULT_HEADER_TIMEOUT);
        assert_eq!(s.write_timeout, Server::DEFAULT_WRITE_TIMEOUT);
        assert_eq!(s.max_connections, Server::DEFAULT_MAX_CONNECTIONS);
        assert_eq!(s.shutdown_grace, Server::DEFAULT_SHUTDOWN_GRACE);
    }

    #[test]
    fn every_variable_is_read() {
        let s = from(&[
            ("HOOKSERVER_HEADER_TIMEOUT_SECS", "5"),
            ("HOOKSERVER_WRITE_TIMEOUT_SECS", " 7 "),
            ("HOOKSERVER_SHUTDOWN_GRACE_SECS", "9"),
            ("HOOKSERVER_MAX_CONNECTIONS", "64"),
        ])
        .unwrap();
        assert_eq!(s.header_timeout, Duration::from_secs(5));
        assert_eq!(s.write_timeout, Duration::from_secs(7));
        assert_eq!(s.shutdown_grace, Duration::from_secs(9));
        assert_eq!(s.max_connections, 64);
    }

    #[test]
    fn an_empty_variable_is_unset() {
        let s = from(&[
            ("HOOKSERVER_WRITE_TIMEOUT_SECS", ""),
            ("HOOKSERVER_MAX_CONNECTIONS", "  "),
        ])
        .unwrap();
        assert_eq!(s.write_timeout, Server::DEFAULT_WRITE_TIMEOUT);
        assert_eq!(s.max_connections, Server::DEFAULT_MAX_CONNECTIONS);
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_variable() {
        for (name, value) in [
            ("HOOKSERVER_HEADER_TIMEOUT_SECS", "soon"),
            ("HOOKSERVER_WRITE_TIMEOUT_SECS", "0"),
            ("HOOKSERVER_SHUTDOWN_GRACE_SECS", "-1"),
            ("HOOKSERVER_MAX_CONNECTIONS", "0"),
            ("HOOKSERVER_MAX_CONNECTIONS", "lots"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { setting, .. } if *setting == name),
                "{name}={value}: {err}"
            );
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
