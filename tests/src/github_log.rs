//! A stand-in for GitHub's delivery log on `127.0.0.1:0`, for the catch-up tests.
//!
//! Like GitHub, it delivers (a signed `POST` to the hook's URL, recording the attempt
//! as `OK` or failed), lists the attempts newest first over pages linked by `Link`
//! cursors, takes redelivery requests (`202`) and then really delivers again, same
//! GUID. It checks every API request's credentials (a token, or an App's RS256 JWT
//! verified with the test key and GitHub's `iat`/`exp` bounds), and answers rate
//! limits, `422` or anything else when told to. Everything it is asked is recorded.

use crate::SECRET;
use axum::{
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::net::TcpListener;

/// The App id the App stand-in expects.
pub const APP_ID: u64 = 4242;
/// The private key of the test App (the stand-in holds its public half).
pub const APP_PRIVATE_KEY: &str = include_str!("../keys/github-app-test.pem");
const APP_PUBLIC_KEY: &str = include_str!("../keys/github-app-test.pub.pem");

/// Who may call the API.
#[derive(Clone)]
enum Credentials {
    /// Any of these tokens.
    Tokens(Vec<String>),
    /// A JWT of [`APP_ID`] signed with the test key.
    App,
}

/// One attempt at a delivery, as the log lists it.
#[derive(Clone, Debug)]
pub struct LoggedAttempt {
    /// The attempt's id.
    pub id: u64,
    /// The delivery's GUID.
    pub guid: String,
    /// When it was made.
    pub delivered_at: SystemTime,
    /// A redelivery (not the first attempt).
    pub redelivery: bool,
    /// `OK`, or why it failed.
    pub status: String,
    /// The hook's answer, 0 without one.
    pub status_code: u16,
}

/// One request to the API.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path and query.
    pub uri: String,
    /// The token it carried (`app` for a valid JWT, empty for none).
    pub who: String,
    /// When it arrived.
    pub at: SystemTime,
    /// The status it got.
    pub status: u16,
}

/// The stand-in's answer to every API request while it is rate limited.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// `403` with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`.
    Primary,
    /// `429` with `retry-after` (seconds).
    RetryAfter,
}

struct Inner {
    credentials: Credentials,
    path: String,
    hook_id: u64,
    hook_url: String,
    attempts: Vec<LoggedAttempt>,
    bodies: HashMap<String, (String, Vec<u8>)>,
    next_id: u64,
    page_size: usize,
    behind: Duration,
    last_at: SystemTime,
    scripted: VecDeque<(u16, String)>,
    limited: Option<(Limit, SystemTime)>,
    limit_after: Option<(usize, Limit, Duration)>,
    calls: Vec<ApiCall>,
    redeliveries: Vec<String>,
    jwts_verified: usize,
    refused: usize,
}

/// The stand-in. Clones share it.
#[derive(Clone)]
pub struct GithubLog {
    /// `http://127.0.0.1:<port>`: the API URL to configure.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    client: reqwest::Client,
}

impl GithubLog {
    /// The log of repository hook `repo:o/r/HOOK_ID`, taking any of `tokens`.
    pub async fn repo(hook_id: u64, tokens: &[&str]) -> Self {
        let tokens = tokens.iter().map(|t| t.to_string()).collect();
        Self::start(
            format!("/repos/o/r/hooks/{hook_id}/deliveries"),
            hook_id,
            Credentials::Tokens(tokens),
        )
        .await
    }

    /// The log of the App's hook, taking JWTs of [`APP_ID`].
    pub async fn app(hook_id: u64) -> Self {
        Self::start("/app/hook/deliveries".into(), hook_id, Credentials::App).await
    }

    async fn start(path: String, hook_id: u64, credentials: Credentials) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            credentials,
            path: path.clone(),
            hook_id,
            hook_url: closed_url(),
            attempts: Vec::new(),
            bodies: HashMap::new(),
            next_id: 1_000,
            page_size: 100,
            behind: Duration::ZERO,
            last_at: UNIX_EPOCH,
            scripted: VecDeque::new(),
            limited: None,
            limit_after: None,
            calls: Vec::new(),
            redeliveries: Vec::new(),
            jwts_verified: 0,
            refused: 0,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let log = Self {
            url,
            inner,
            client: crate::client(),
        };
        let app = axum::Router::new()
            .route(&path, axum::routing::get(list))
            .route(
                &format!("{path}/{{id}}/attempts"),
                axum::routing::post(redeliver),
            )
            .with_state(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        log
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("stand-in lock")
    }

    /// Where deliveries go from now on (until set, a port nobody listens on).
    pub fn set_hook_url(&self, url: &str) {
        self.lock().hook_url = url.to_owned();
    }

    /// Items per page at most, whatever `per_page` asks (to make several pages).
    pub fn set_page_size(&self, size: usize) {
        self.lock().page_size = size.max(1);
    }

    /// Logs attempts this long before they happen (a log of the past, for a watermark
    /// that is not held back by the attempts of the last minute).
    pub fn set_clock_behind(&self, behind: Duration) {
        self.lock().behind = behind;
    }

    /// Answers every API request as rate limited until `until`.
    pub fn rate_limit(&self, limit: Limit, until: SystemTime) {
        self.lock().limited = Some((limit, until));
    }

    /// Answers every API request as rate limited for `lasting`, from the one after the
    /// first `calls` requests on.
    pub fn rate_limit_after(&self, calls: usize, limit: Limit, lasting: Duration) {
        self.lock().limit_after = Some((calls, limit, lasting));
    }

    /// Answers the next API request with `status` and `body` instead.
    pub fn answer_next(&self, status: u16, body: &str) {
        self.lock().scripted.push_back((status, body.to_owned()));
    }

    /// Delivers a new delivery of `event` with `body` to the hook's URL, as GitHub
    /// does, and logs the attempt; returns its GUID.
    pub async fn send(&self, event: &str, body: &[u8]) -> String {
        let guid = new_guid();
        self.lock()
            .bodies
            .insert(guid.clone(), (event.to_owned(), body.to_vec()));
        let (status, code) = self.deliver(&guid).await;
        self.log(&guid, false, status, code);
        guid
    }

    /// Delivers like [`send`](Self::send), but logs the attempt as timed out
    /// whatever the hook answered (GitHub may, for a delivery that was processed).
    pub async fn send_but_log_a_timeout(&self, event: &str, body: &[u8]) -> String {
        let guid = new_guid();
        self.lock()
            .bodies
            .insert(guid.clone(), (event.to_owned(), body.to_vec()));
        self.deliver(&guid).await;
        self.log(&guid, false, "timed out".into(), 0);
        guid
    }

    /// Logs an attempt without delivering anything: `ok` as if the hook had answered
    /// `200`, else as a failure to connect. The delivery is `event` with `body`, for
    /// a later redelivery.
    pub fn log_attempt(&self, guid: &str, event: &str, body: &[u8], ok: bool) {
        self.lock()
            .bodies
            .entry(guid.to_owned())
            .or_insert_with(|| (event.to_owned(), body.to_vec()));
        let redelivery = self.lock().attempts.iter().any(|a| a.guid == guid);
        let (status, code) = if ok {
            ("OK".to_owned(), 200)
        } else {
            ("failed to connect to host".to_owned(), 0)
        };
        self.log(guid, redelivery, status, code);
    }

    async fn deliver(&self, guid: &str) -> (String, u16) {
        let (url, hook_id, event, body) = {
            let inner = self.lock();
            let (event, body) = inner.bodies.get(guid).cloned().unwrap_or_default();
            (inner.hook_url.clone(), inner.hook_id, event, body)
        };
        let (headers, body) = hookserver::test::delivery(&event)
            .guid(guid)
            .hook_id(hook_id)
            .user_agent("GitHub-Hookshot/044aadd")
            .payload_bytes(body)
            .secret(SECRET)
            .headers_and_body();
        // Not `TestDelivery::send`: a delivery that gets no answer is logged as one.
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                ("OK".into(), response.status().as_u16())
            }
            Ok(response) => (
                format!("Invalid HTTP Response: {}", response.status().as_u16()),
                response.status().as_u16(),
            ),
            Err(_) => ("failed to connect to host".into(), 0),
        }
    }

    fn log(&self, guid: &str, redelivery: bool, status: String, status_code: u16) {
        let mut inner = self.lock();
        // Strictly increasing times, as a log's order needs.
        let at = (SystemTime::now() - inner.behind).max(inner.last_at + Duration::from_millis(1));
        inner.last_at = at;
        inner.next_id += 1;
        let id = inner.next_id;
        inner.attempts.push(LoggedAttempt {
            id,
            guid: guid.to_owned(),
            delivered_at: at,
            redelivery,
            status,
            status_code,
        });
    }

    /// Every attempt logged, oldest first.
    pub fn attempts(&self) -> Vec<LoggedAttempt> {
        self.lock().attempts.clone()
    }

    /// The GUIDs whose redelivery was asked for, in order, once per request.
    pub fn redeliveries(&self) -> Vec<String> {
        self.lock().redeliveries.clone()
    }

    /// Every API request so far.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.lock().calls.clone()
    }

    /// The list requests so far.
    pub fn list_calls(&self) -> Vec<ApiCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "GET")
            .collect()
    }

    /// App JWTs that passed verification.
    pub fn jwts_verified(&self) -> usize {
        self.lock().jwts_verified
    }

    /// Requests refused for their credentials.
    pub fn refused(&self) -> usize {
        self.lock().refused
    }

    /// The answer for a request, before its own: credentials, then a rate limit or a
    /// scripted answer; `Some` is the response to send instead of the request's own.
    /// Records the call either way.
    fn gate(&self, method: &'static str, uri: String, headers: &HeaderMap) -> Option<Response> {
        let mut inner = self.lock();
        let now = SystemTime::now();
        let mut call = ApiCall {
            method,
            uri,
            who: String::new(),
            at: now,
            status: 200,
        };
        if let Some((after, limit, lasting)) = inner.limit_after
            && inner.calls.len() == after
        {
            inner.limited = Some((limit, now + lasting));
        }
        let refusal = check_request(&mut inner, headers, &mut call);
        let answer = match refusal {
            Some(response) => Some(response),
            None => match inner.limited {
                Some((limit, until)) if now < until => Some(limited(limit, until, now)),
                _ => inner
                    .scripted
                    .pop_front()
                    .map(|(status, body)| (status_code(status), body).into_response()),
            },
        };
        call.status = answer.as_ref().map_or(200, |r| r.status().as_u16());
        inner.calls.push(call);
        answer
    }
}

/// Checks the headers GitHub requires and the credentials; a refusal to send, if any.
fn check_request(inner: &mut Inner, headers: &HeaderMap, call: &mut ApiCall) -> Option<Response> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if !text("user-agent").starts_with("hookserver/") {
        inner.refused += 1;
        return Some(
            (
                StatusCode::FORBIDDEN,
                "Request forbidden by administrative rules",
            )
                .into_response(),
        );
    }
    let bearer = text("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or("")
        .to_owned();
    let ok = match &inner.credentials {
        Credentials::Tokens(tokens) => {
            call.who = bearer.clone();
            tokens.contains(&bearer)
        }
        Credentials::App => match verify_jwt(&bearer) {
            Ok(()) => {
                call.who = "app".into();
                inner.jwts_verified += 1;
                true
            }
            Err(why) => {
                call.who = format!("bad JWT: {why}");
                false
            }
        },
    };
    if ok {
        None
    } else {
        inner.refused += 1;
        Some(
            (
                StatusCode::UNAUTHORIZED,
                r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#,
            )
                .into_response(),
        )
    }
}

/// GitHub's rules for an App JWT: RS256 by the App's key, `iss` the App id, `iat` in
/// the past (60 s back is the advice), `exp` in the future and at most 10 minutes
/// after `iat`.
fn verify_jwt(token: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Claims {
        iat: u64,
        exp: u64,
        iss: serde_json::Value,
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(APP_PUBLIC_KEY.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let iss = match &claims.iss {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if iss != APP_ID.to_string() {
        return Err(format!("iss {iss}"));
    }
    if claims.iat > now {
        return Err("iat in the future".into());
    }
    if claims.iat + 120 < now {
        return Err("iat too old".into());
    }
    if claims.exp <= now || claims.exp > claims.iat + 600 {
        return Err(format!("exp {} for iat {}", claims.exp, claims.iat));
    }
    Ok(())
}

fn limited(limit: Limit, until: SystemTime, now: SystemTime) -> Response {
    let left = until.duration_since(now).unwrap_or_default();
    let body = r#"{"message":"API rate limit exceeded"}"#;
    match limit {
        Limit::Primary => {
            let reset = until
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
                .unwrap_or(0);
            (
                StatusCode::FORBIDDEN,
                [
                    ("x-ratelimit-limit", "5000".to_owned()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", reset.to_string()),
                ],
                body,
            )
                .into_response()
        }
        Limit::RetryAfter => {
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                body,
            )
                .into_response()
        }
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).expect("a status")
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// RFC 3339 in UTC, as GitHub writes `delivered_at`, to the millisecond (so that the
/// attempts of one second keep their order).
fn iso(t: SystemTime) -> String {
    let nanos = i128::try_from(millis(t)).expect("a time") * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .expect("a time within years 0 to 9999")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time")
}

async fn list(
    State(log): State<GithubLog>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    let path = log.lock().path.clone();
    if let Some(response) = log.gate("GET", format!("{path}?{query}"), &headers) {
        return response;
    }
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let per_page: usize = param("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .min(100);
    // A cursor names the first item of its page: `v1_<ms>_<id>`.
    let cursor: Option<(u128, u64)> = param("cursor").and_then(|c| {
        let rest = c.strip_prefix("v1_")?;
        let (ms, id) = rest.split_once('_')?;
        Some((ms.parse().ok()?, id.parse().ok()?))
    });
    let inner = log.lock();
    let size = per_page.min(inner.page_size);
    let mut newest_first: Vec<&LoggedAttempt> = inner.attempts.iter().collect();
    newest_first.sort_by_key(|a| std::cmp::Reverse((millis(a.delivered_at), a.id)));
    let from: Vec<&LoggedAttempt> = newest_first
        .into_iter()
        .filter(|a| cursor.is_none_or(|c| (millis(a.delivered_at), a.id) <= c))
        .collect();
    let page = &from[..size.min(from.len())];
    let items: Vec<serde_json::Value> = page
        .iter()
        .map(|a| {
            let event = inner
                .bodies
                .get(&a.guid)
                .map(|(e, _)| e.clone())
                .unwrap_or_default();
            serde_json::json!({
                "id": a.id,
                "guid": a.guid,
                "delivered_at": iso(a.delivered_at),
                "redelivery": a.redelivery,
                "duration": 0.03,
                "status": a.status,
                "status_code": a.status_code,
                "event": event,
                "action": null,
                "installation_id": null,
                "repository_id": 79_929_171,
                "throttled_at": null,
            })
        })
        .collect();
    let mut response = (
        [("content-type", "application/json; charset=utf-8")],
        serde_json::Value::Array(items).to_string(),
    )
        .into_response();
    if let Some(next) = from.get(size) {
        let link = format!(
            "<{}{}?per_page={per_page}&cursor=v1_{}_{}>; rel=\"next\"",
            log.url,
            inner.path,
            millis(next.delivered_at),
            next.id
        );
        response
            .headers_mut()
            .insert("link", HeaderValue::from_str(&link).expect("link"));
    }
    response
}

async fn redeliver(
    State(log): State<GithubLog>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let path = log.lock().path.clone();
    if let Some(response) = log.gate("POST", format!("{path}/{id}/attempts"), &headers) {
        return response;
    }
    let guid = log
        .lock()
        .attempts
        .iter()
        .find(|a| a.id == id)
        .map(|a| a.guid.clone());
    let Some(guid) = guid else {
        return (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response();
    };
    log.lock().redeliveries.push(guid.clone());
    // Like GitHub: accepted now, delivered soon after, and logged.
    let again = log.clone();
    tokio::spawn(async move {
        let (status, code) = again.deliver(&guid).await;
        again.log(&guid, true, status, code);
    });
    (StatusCode::ACCEPTED, "{}").into_response()
}

/// A GUID of GitHub's shape, unique in the process.
pub fn new_guid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{n:08x}-{:04x}-11e3-81ab-{:012x}",
        std::process::id() & 0xffff,
        nanos
    )
}

/// A URL on which nothing listens (the port of a listener just closed).
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hooks")
}

/// Polls `check` every 20 ms until it holds, for at most `within`; panics saying
/// `what` otherwise.
pub async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
