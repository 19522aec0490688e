//! Serving a router with what a public webhook endpoint needs: peer addresses for the
//! source-IP check, a deadline for request headers (slowloris), and a graceful,
//! bounded shutdown.

use crate::config::{ConfigError, Setting, Vars, parse_secs};
use axum::extract::ConnectInfo;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use std::{future::Future, io, time::Duration};
use tokio::net::TcpListener;
use tower_service::Service;

/// How long a client may take to send its request headers: 30 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long deliveries in flight may take to finish after a shutdown signal: 30 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` with [`Server`]'s defaults until ctrl-c or SIGTERM,
/// then stops accepting and lets deliveries in flight finish (for up to 30 s).
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
/// ```no_run
/// # #![allow(dead_code)]
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// use std::time::Duration;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8000").await?;
/// hookserver::Server::new()
///     .header_timeout(Duration::from_secs(10))
///     .shutdown_grace(Duration::from_secs(20))
///     .serve(listener, app)
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    header_timeout: Duration,
    shutdown_grace: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// 30 s for request headers, 30 s of grace at shutdown.
    pub fn new() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Reads `HOOKSERVER_HEADER_TIMEOUT_SECS` and `HOOKSERVER_SHUTDOWN_GRACE_SECS`
    /// (whole seconds, at least 1), falling back to the defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables, read as
    /// [`Config::from_lookup`](crate::Config::from_lookup) reads them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        const HEADER_TIMEOUT: Setting =
            Setting::new("Server::header_timeout", "HOOKSERVER_HEADER_TIMEOUT_SECS");
        const SHUTDOWN_GRACE: Setting =
            Setting::new("Server::shutdown_grace", "HOOKSERVER_SHUTDOWN_GRACE_SECS");
        let vars = Vars::new(lookup);
        let mut server = Self::new();
        vars.read(HEADER_TIMEOUT, &mut server.header_timeout, parse_secs)?;
        vars.read(SHUTDOWN_GRACE, &mut server.shutdown_grace, parse_secs)?;
        Ok(server)
    }

    /// How long a client may take to send its request headers before the
    /// connection is closed (a client that trickles them in cannot hold it open).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
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
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        builder.http2().timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();
        let mut signal = std::pin::pin!(signal);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            let router = app.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let header_timeout = self.header_timeout;
            tokio::spawn(async move {
                // hyper's header timeout starts with the first byte; a client that
                // connects and sends nothing must not hold the connection either.
                let first_byte =
                    tokio::time::timeout(header_timeout, stream.peek(&mut [0u8; 1])).await;
                if !matches!(first_byte, Ok(Ok(1..))) {
                    tracing::debug!(%peer, "closed a connection that sent nothing in time");
                    return;
                }
                let service = hyper::service::service_fn(
                    move |mut request: http::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        let mut router = router.clone();
                        async move { router.call(request).await }
                    },
                );
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!("no longer accepting; waiting for deliveries in flight");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all deliveries answered; stopped"),
            () = tokio::time::sleep(self.shutdown_grace) => tracing::warn!(
                grace_secs = self.shutdown_grace.as_secs(),
                "deliveries still running after the grace period were cut off"
            ),
        }
        Ok(())
    }
}

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
