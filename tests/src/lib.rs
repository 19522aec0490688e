//! Helpers for hookserver's integration tests: a server on a real loopback port,
//! deliveries as GitHub sends them (built by `hookserver::test`), and a stand-in for
//! GitHub's API.
//!
//! The tests themselves live in `tests/*.rs`, one file per area.

use axum::{
    extract::State as AxumState,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use hookserver::test::TestDelivery;
use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub mod frames;
pub mod github_log;
pub mod journal;

/// The secret every test signs with.
pub const SECRET: &str = "It's a Secret to Everybody";

/// The configuration most tests use: signed with [`SECRET`], source-IP check off
/// (loopback is not GitHub).
pub fn config() -> hookserver::Config {
    hookserver::Config::new().secret(SECRET).validate_ip(false)
}

/// An `application/x-www-form-urlencoded` body of `pairs`, every byte that needs it
/// percent-encoded (so any bytes round-trip), as GitHub's form deliveries are.
pub fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    pairs
        .into_iter()
        .map(|(key, value)| {
            let key: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
            let value: String = form_urlencoded::byte_serialize(value).collect();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A router served on `127.0.0.1:<free port>` with `hookserver::serve_with_shutdown`
/// (so peer addresses reach the source-IP check). Dropping it shuts the server down.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Serves `app` with the default [`hookserver::Server`].
    pub async fn start(app: axum::Router) -> Self {
        Self::start_with(hookserver::Server::new(), app).await
    }

    /// Serves `app` with `server`'s settings.
    pub async fn start_with(server: hookserver::Server, app: axum::Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Self::start_on(listener, server, app)
    }

    /// Serves `app` on `listener`, bound beforehand (so its address can be known
    /// before the app is built; connections made meanwhile wait in its backlog).
    pub fn start_on(listener: TcpListener, server: hookserver::Server, app: axum::Router) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_shutdown(listener, app, async {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Serves `hooks.router("/hooks")`.
    pub async fn hooks<S: Clone + Send + Sync + 'static>(hooks: hookserver::Hooks<S>) -> Self {
        Self::start(hooks.router("/hooks")).await
    }

    /// The `host:port` the server listens on.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// `base` + `/hooks`.
    pub fn url(&self) -> String {
        format!("{}/hooks", self.base)
    }

    /// Asks the server to stop accepting and waits until the requests in flight are
    /// answered and it has returned.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A reqwest client for tests (no proxies, short timeout).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The GUID of [`github_delivery`]'s deliveries.
pub const GUID: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

/// A delivery of `payload` as GitHub sends it: signed with [`SECRET`], with all of
/// GitHub's headers (the GUID [`GUID`], hook 292430182, repository 79929171).
pub fn github_delivery(event: &str, payload: impl Into<bytes::Bytes>) -> TestDelivery {
    hookserver::test::delivery(event)
        .payload_bytes(payload)
        .guid(GUID)
        .hook_id(292_430_182)
        .installation_target("repository", 79_929_171)
        .user_agent("GitHub-Hookshot/044aadd")
        .secret(SECRET)
}

/// [`github_delivery`] as a reqwest request, for tests that edit it, stream its body
/// or send it concurrently.
pub fn delivery(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    body: impl Into<Vec<u8>>,
) -> reqwest::RequestBuilder {
    let (headers, body) = github_delivery(event, body.into()).headers_and_body();
    client.post(url).headers(headers).body(body)
}

/// Sends `request` and returns the status and body text.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body read"))
}

/// What the GitHub stand-in answers to `GET /meta`.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `200` with `{"hooks": [...]}` and this ETag; a request whose
    /// `If-None-Match` equals the ETag gets `304`.
    Ranges {
        /// The `hooks` CIDRs.
        hooks: Vec<String>,
        /// The ETag, with its quotes.
        etag: Option<String>,
    },
    /// Any status, headers and body.
    Raw {
        /// The status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: String,
    },
    /// Never answers.
    Hang,
    /// Waits, then answers.
    Slow(Duration, Box<Reply>),
}

impl Reply {
    /// `200` with these ranges and ETag `"v1"`.
    pub fn ranges(hooks: &[&str]) -> Self {
        Self::ranges_tagged(hooks, "\"v1\"")
    }

    /// `200` with these ranges and this ETag.
    pub fn ranges_tagged(hooks: &[&str], etag: &str) -> Self {
        Reply::Ranges {
            hooks: hooks.iter().map(|s| s.to_string()).collect(),
            etag: Some(etag.to_owned()),
        }
    }

    /// A status with headers and a body.
    pub fn raw(status: u16, headers: &[(&str, &str)], body: &str) -> Self {
        Reply::Raw {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_owned(),
        }
    }
}

/// A real HTTP server on `127.0.0.1:0` playing GitHub's REST API: it answers
/// `GET /meta` as scripted and counts (and records) every request.
#[derive(Clone)]
pub struct GithubStandIn {
    /// `http://127.0.0.1:<port>`: pass it as the API URL.
    pub url: String,
    shared: Arc<StandInState>,
}

struct StandInState {
    reply: Mutex<Reply>,
    hits: AtomicUsize,
    requests: Mutex<Vec<HeaderMap>>,
}

impl GithubStandIn {
    /// Starts the stand-in answering with `reply`.
    pub async fn start(reply: Reply) -> Self {
        let shared = Arc::new(StandInState {
            reply: Mutex::new(reply),
            hits: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/meta", axum::routing::get(meta))
            .route("/api/v3/meta", axum::routing::get(meta))
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}"),
            shared,
        }
    }

    /// Changes what later requests get.
    pub fn set(&self, reply: Reply) {
        *self.shared.reply.lock().expect("lock") = reply;
    }

    /// How many requests reached `/meta`.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The headers of every request so far.
    pub fn requests(&self) -> Vec<HeaderMap> {
        self.shared.requests.lock().expect("lock").clone()
    }
}

async fn meta(AxumState(shared): AxumState<Arc<StandInState>>, headers: HeaderMap) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    shared.requests.lock().expect("lock").push(headers.clone());
    let reply = shared.reply.lock().expect("lock").clone();
    answer(reply, &headers).await
}

async fn answer(mut reply: Reply, request: &HeaderMap) -> Response {
    loop {
        match reply {
            Reply::Slow(delay, inner) => {
                tokio::time::sleep(delay).await;
                reply = *inner;
            }
            Reply::Hang => std::future::pending::<()>().await,
            Reply::Ranges { hooks, etag } => {
                if let Some(etag) = &etag
                    && request
                        .get("if-none-match")
                        .is_some_and(|v| v == etag.as_str())
                {
                    return (StatusCode::NOT_MODIFIED, [("etag", etag.clone())]).into_response();
                }
                let body = serde_json::json!({
                    "verifiable_password_authentication": false,
                    "hooks": hooks,
                    "web": ["192.0.2.0/24"],
                });
                let mut response = (
                    [("content-type", "application/json; charset=utf-8")],
                    body.to_string(),
                )
                    .into_response();
                if let Some(etag) = etag {
                    response
                        .headers_mut()
                        .insert("etag", HeaderValue::from_str(&etag).expect("etag"));
                }
                return response;
            }
            Reply::Raw {
                status,
                headers,
                body,
            } => {
                let mut response =
                    (StatusCode::from_u16(status).expect("status"), body).into_response();
                for (k, v) in headers {
                    response.headers_mut().insert(
                        axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                        HeaderValue::from_str(&v).expect("value"),
                    );
                }
                return response;
            }
        }
    }
}

/// Header edits on a request being built, replacing instead of appending.
pub trait EditHeaders: Sized {
    /// Sets `name` to `value`, replacing any value it had.
    fn set_header(self, name: &str, value: impl AsRef<str>) -> Self;
    /// Removes `name`.
    fn remove_header(self, name: &str) -> Self;
}

impl EditHeaders for reqwest::RequestBuilder {
    fn set_header(self, name: &str, value: impl AsRef<str>) -> Self {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name");
        let value = reqwest::header::HeaderValue::from_str(value.as_ref()).expect("header value");
        edit(self, |h| {
            h.insert(name, value);
        })
    }

    fn remove_header(self, name: &str) -> Self {
        edit(self, |h| {
            h.remove(name);
        })
    }
}

fn edit(
    builder: reqwest::RequestBuilder,
    f: impl FnOnce(&mut reqwest::header::HeaderMap),
) -> reqwest::RequestBuilder {
    let (client, request) = builder.build_split();
    let mut request = request.expect("request builds");
    f(request.headers_mut());
    reqwest::RequestBuilder::from_parts(client, request)
}

/// Asserts that the stand-in was called `expected` times, allowing one more call per
/// `window` (a TTL or back-off step) that elapsed since `since`: a loaded machine may
/// stretch a test past a window, while a bug that calls GitHub once per delivery
/// still fails.
#[track_caller]
pub fn assert_hits(
    github: &GithubStandIn,
    expected: usize,
    since: std::time::Instant,
    window: Duration,
) {
    let hits = github.hits();
    let windows = (since.elapsed().as_secs_f64() / window.as_secs_f64()).floor() as usize;
    assert!(
        (expected..=expected + windows).contains(&hits),
        "{hits} requests to GitHub, expected {expected} (+{windows} for the time that passed)"
    );
}

/// Every line the process logs from now on, from the global `tracing` subscriber this
/// installs (`level` and up, no colours). One per test binary: a second call panics.
pub fn capture_logs(level: tracing::Level) -> CapturedLogs {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    logs
}

/// The sink behind [`capture_logs`].
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// What has been logged so far. Panics if it is not UTF-8: a log line that is
    /// not text is itself a finding.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("log buffer").clone()).expect("logs are UTF-8")
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
