//! Serving one accepted connection: requests are marked in flight for the
//! watchdog, the connection ends when hyper is done with it, when its watchdog
//! closes it, or when the graceful shutdown does.

use super::watchdog::{Activity, TrackedIo, watchdog};
use crate::log_limit::RateLimitedWarning;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::Watcher},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpStream;
use tower_service::Service;

/// One accepted connection and what serving it needs.
pub(super) struct Connection {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) activity: Arc<Activity>,
    pub(super) router: axum::Router,
    pub(super) builder: Arc<auto::Builder<TokioExecutor>>,
    pub(super) header_timeout: Duration,
    pub(super) write_timeout: Duration,
    pub(super) warnings: Arc<RateLimitedWarning>,
}

impl Connection {
    /// Serves the connection until it ends, its watchdog closes it, or the graceful
    /// shutdown does.
    pub(super) async fn run(self, watcher: Watcher) {
        let Connection {
            stream,
            peer,
            activity,
            router,
            builder,
            header_timeout,
            write_timeout,
            warnings,
        } = self;
        let io = TokioIo::new(TrackedIo::new(stream, Arc::clone(&activity)));
        let requests = Arc::clone(&activity);
        let service =
            hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                // In flight from here until the answer's body is handed over in full.
                let guard = requests.request_started();
                request.extensions_mut().insert(ConnectInfo(peer));
                let mut router = router.clone();
                let activity = Arc::clone(&requests);
                async move {
                    let response = router.call(request).await?;
                    // From here the client must take some of the answer every write
                    // timeout, even when the socket never blocks (HTTP/2 flow control).
                    let answering = activity.answer_started();
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        axum::body::Body::new(body.map_frame(move |frame| {
                            let _in_flight = (&guard, &answering);
                            frame
                        }))
                    }))
                }
            });
        let serving = watcher.watch(
            builder
                .serve_connection_with_upgrades(io, service)
                .into_owned(),
        );
        tokio::select! {
            result = serving => if let Err(e) = result {
                if is_rapid_reset(&*e) {
                    warnings.warn(
                        "HTTP/2 rapid reset",
                        format_args!("closed the connection from {peer}: too many streams reset"),
                    );
                } else {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            },
            closed = watchdog(&activity, header_timeout, write_timeout) => {
                tracing::debug!(%peer, reason = closed.as_str(), "closed a connection");
            }
        }
    }
}

/// Whether a connection ended because h2 caught the client resetting streams
/// faster than they were served (`GOAWAY` with `ENHANCE_YOUR_CALM`).
fn is_rapid_reset(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.is_go_away()
                && h2.is_library()
                && h2.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM);
        }
        source = e.source();
    }
    false
}
