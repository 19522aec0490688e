//! GitHub's `GET /meta` hook ranges: the client and its cache.
//!
//! The rules, each learned from a way Flask-Hookserver failed:
//! - one list per router, parsed once into an [`AllowList`], read without a lock;
//! - fresh for the TTL, then revalidated with `If-None-Match` (a `304` costs no rate
//!   limit);
//! - **single flight**: at most one request to GitHub at a time, however many
//!   deliveries arrive; while it runs, deliveries use the current list if there is
//!   one, and wait for it if there is none;
//! - **stale-if-error**: when a refresh fails, the last good list is used for up to
//!   `max_stale` past its freshness, with a warning;
//! - failures are remembered: a rate limit blocks every request to GitHub until
//!   `x-ratelimit-reset`/`retry-after`; any other failure backs off exponentially,
//!   so an outage costs GitHub one request per back-off step, not one per delivery;
//! - every request has a timeout, and an unusable answer is never cached.

use crate::{
    allow_list::AllowList,
    config::{ConfigError, Setting},
    github::{self, BACKOFF_BASE, Refusal},
    rejection::Rejection,
};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};
use tokio::{sync::Mutex, time::Instant};

/// The largest `/meta` answer read (github.com's is a few hundred KB).
const MAX_META_BYTES: usize = 8 * 1024 * 1024;

/// `Config::github_api_url` / `GITHUB_API_URL`.
pub(crate) const API_URL: Setting = Setting::new("Config::github_api_url", "GITHUB_API_URL");
/// `Config::github_token` / `GITHUB_TOKEN`.
pub(crate) const TOKEN: Setting = Setting::new("Config::github_token", "GITHUB_TOKEN");
/// `Config::meta_ttl` / `HOOKSERVER_META_TTL_SECS`.
pub(crate) const TTL: Setting = Setting::new("Config::meta_ttl", "HOOKSERVER_META_TTL_SECS");
/// `Config::meta_max_stale` / `HOOKSERVER_META_MAX_STALE_SECS`.
pub(crate) const MAX_STALE: Setting =
    Setting::new("Config::meta_max_stale", "HOOKSERVER_META_MAX_STALE_SECS");
/// `Config::meta_timeout` / `HOOKSERVER_META_TIMEOUT_SECS`.
pub(crate) const TIMEOUT: Setting =
    Setting::new("Config::meta_timeout", "HOOKSERVER_META_TIMEOUT_SECS");
/// `Config::meta_warm` / `HOOKSERVER_META_WARM`.
pub(crate) const WARM: Setting = Setting::new("Config::meta_warm", "HOOKSERVER_META_WARM");

/// Where `/meta` is and how it is cached.
#[derive(Clone)]
pub(crate) struct MetaSettings {
    pub(crate) api_url: String,
    pub(crate) token: Option<String>,
    pub(crate) ttl: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) timeout: Duration,
    pub(crate) warm: bool,
}

impl MetaSettings {
    pub(crate) const DEFAULT_API_URL: &str = "https://api.github.com";
    pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);
    pub(crate) const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let url = &self.api_url;
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok || reqwest::Url::parse(url).is_err() {
            return Err(ConfigError::invalid(
                API_URL,
                url,
                "an http:// or https:// URL such as https://api.github.com",
            ));
        }
        for (setting, value) in [(TTL, self.ttl), (TIMEOUT, self.timeout)] {
            if value.is_zero() {
                return Err(ConfigError::invalid(setting, "0", "at least 1 second"));
            }
        }
        Ok(())
    }
}

impl Default for MetaSettings {
    fn default() -> Self {
        Self {
            api_url: Self::DEFAULT_API_URL.to_owned(),
            token: None,
            ttl: Self::DEFAULT_TTL,
            max_stale: Self::DEFAULT_MAX_STALE,
            timeout: Self::DEFAULT_TIMEOUT,
            warm: false,
        }
    }
}

impl std::fmt::Debug for MetaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaSettings")
            .field("api_url", &self.api_url)
            .field(
                "token",
                &self.token.as_ref().map(|_| format_args!("[redacted]")),
            )
            .field("ttl", &self.ttl)
            .field("max_stale", &self.max_stale)
            .field("timeout", &self.timeout)
            .field("warm", &self.warm)
            .finish()
    }
}

/// The cached hook ranges of one router.
pub(crate) struct MetaCache {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    ttl: Duration,
    max_stale: Duration,
    snapshot: ArcSwap<Snapshot>,
    /// Held by the one refresh in flight.
    refresh: Arc<Mutex<()>>,
    /// Requests to `/meta` so far, by [`RefreshResult`] (for the metrics).
    refreshes: [AtomicU64; RefreshResult::ALL.len()],
}

/// How one request to `/meta` went: the `result` label of
/// `hookserver_meta_refreshes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshResult {
    /// `200` with a usable list.
    Fetched,
    /// `304`: the cached list confirmed.
    NotModified,
    /// A rate limit: no request until GitHub's instant.
    RateLimited,
    /// Anything else: unreachable, a timeout, a `5xx`, garbage.
    Failed,
}

impl RefreshResult {
    pub(crate) const ALL: [Self; 4] = [
        Self::Fetched,
        Self::NotModified,
        Self::RateLimited,
        Self::Failed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Fetched => "fetched",
            Self::NotModified => "not_modified",
            Self::RateLimited => "rate_limited",
            Self::Failed => "failed",
        }
    }
}

/// The count of requests to `/meta` by result, read at once.
pub(crate) struct RefreshCounts([u64; RefreshResult::ALL.len()]);

impl RefreshCounts {
    pub(crate) fn get(&self, result: RefreshResult) -> u64 {
        self.0.get(result as usize).copied().unwrap_or_default()
    }
}

/// What is known at one moment; replaced whole, never mutated.
#[derive(Clone, Debug)]
struct Snapshot {
    list: Option<Arc<AllowList>>,
    etag: Option<String>,
    fresh_until: Instant,
    /// The list may be used until then while refreshes fail.
    stale_until: Instant,
    /// No request to GitHub before this instant (rate limit or back-off).
    retry_at: Option<Instant>,
    /// The answer while no usable list exists.
    failure: Rejection,
    failures: u32,
    /// When GitHub last gave (or confirmed, `304`) the list: its age on `/ready`.
    fetched_at: Option<SystemTime>,
    /// When the last request to `/meta` ended, and how (`Err` with why).
    last_refresh: Option<(SystemTime, Result<(), String>)>,
}

/// What the readiness route says of the list, read from the snapshot without
/// waiting for anything.
#[derive(Debug, Clone)]
pub(crate) struct MetaStatus {
    /// `Err` with what a delivery would be answered, while no list is usable.
    pub(crate) usable: Result<(), String>,
    /// Whether a list was ever fetched (to tell "no list yet" from "expired").
    pub(crate) ever_fetched: bool,
    pub(crate) fetched_at: Option<SystemTime>,
    pub(crate) last_refresh: Option<(SystemTime, Result<(), String>)>,
}

impl Snapshot {
    fn cold(now: Instant) -> Self {
        Self {
            list: None,
            etag: None,
            fresh_until: now,
            stale_until: now,
            retry_at: None,
            failure: Rejection::GithubUnreachable,
            failures: 0,
            fetched_at: None,
            last_refresh: None,
        }
    }

    fn fresh(&self, now: Instant) -> Option<&Arc<AllowList>> {
        self.list.as_ref().filter(|_| now < self.fresh_until)
    }

    fn usable(&self, now: Instant) -> Option<&Arc<AllowList>> {
        self.list.as_ref().filter(|_| now < self.stale_until)
    }

    fn blocked(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    fn answer(&self, now: Instant) -> Result<Arc<AllowList>, Rejection> {
        self.usable(now)
            .cloned()
            .ok_or_else(|| self.failure.clone())
    }
}

/// How one request to `/meta` went.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// A usable list.
    Fetched {
        list: AllowList,
        etag: Option<String>,
    },
    /// `304`: the cached list is still current.
    NotModified,
    /// Rate limited: no request before `until`.
    RateLimited { until: SystemTime },
    /// Anything else; the next attempt waits at least `base` (doubling).
    Failed { why: String, base: Duration },
}

impl MetaCache {
    /// The cache, with its HTTP client built now: a client that cannot be built
    /// is a start-up error, not a `503` on every delivery.
    pub(crate) fn new(settings: &MetaSettings) -> Result<Self, ConfigError> {
        let client = github::client(settings.timeout, "the HTTP client for GitHub's /meta")?;
        Ok(Self {
            client,
            url: format!("{}/meta", settings.api_url.trim_end_matches('/')),
            token: settings.token.clone(),
            ttl: settings.ttl,
            max_stale: settings.max_stale,
            snapshot: ArcSwap::from_pointee(Snapshot::cold(Instant::now())),
            refresh: Arc::new(Mutex::new(())),
            refreshes: std::array::from_fn(|_| AtomicU64::new(0)),
        })
    }

    /// When GitHub last gave (or confirmed) the list, read from the snapshot: unlike
    /// [`status`](Self::status), it never starts a refresh.
    pub(crate) fn fetched_at(&self) -> Option<SystemTime> {
        self.snapshot.load().fetched_at
    }

    /// Requests to `/meta` so far, by result.
    pub(crate) fn refresh_counts(&self) -> RefreshCounts {
        RefreshCounts(std::array::from_fn(|i| {
            self.refreshes
                .get(i)
                .map_or(0, |count| count.load(Ordering::Relaxed))
        }))
    }

    /// Starts fetching the list in the background, so the first delivery does not
    /// wait for it. Needs a running tokio runtime; without one it does nothing.
    pub(crate) fn warm(self: &Arc<Self>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let this = Arc::clone(self);
            runtime.spawn(async move {
                let _ = this.allow_list().await;
            });
        }
    }

    /// The list's state for the readiness route, and a refresh started in the
    /// background when one is due and none is in flight (so a probe never waits for
    /// GitHub, and probes do not pile up behind a hanging request).
    pub(crate) fn status(self: &Arc<Self>) -> MetaStatus {
        let now = Instant::now();
        let snapshot = self.snapshot.load();
        if snapshot.fresh(now).is_none()
            && !snapshot.blocked(now)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && let Ok(guard) = Arc::clone(&self.refresh).try_lock_owned()
        {
            let this = Arc::clone(self);
            runtime.spawn(async move { this.refresh(guard).await });
        }
        MetaStatus {
            usable: snapshot
                .usable(now)
                .map(|_| ())
                .ok_or_else(|| snapshot.failure.message().into_owned()),
            ever_fetched: snapshot.list.is_some(),
            fetched_at: snapshot.fetched_at,
            last_refresh: snapshot.last_refresh.clone(),
        }
    }

    /// The current allow-list, fetching or revalidating it when due.
    pub(crate) async fn allow_list(self: &Arc<Self>) -> Result<Arc<AllowList>, Rejection> {
        let now = Instant::now();
        let snapshot = self.snapshot.load();
        if let Some(list) = snapshot.fresh(now) {
            return Ok(Arc::clone(list));
        }
        if snapshot.blocked(now) {
            return snapshot.answer(now);
        }
        if let Ok(guard) = Arc::clone(&self.refresh).try_lock_owned() {
            // The refresh runs in its own task so that a delivery whose client hangs
            // up cannot cancel it half-way.
            let this = Arc::clone(self);
            let _ = tokio::spawn(async move { this.refresh(guard).await }).await;
            return self.snapshot.load().answer(Instant::now());
        }
        // Another delivery is refreshing: keep serving the current list, or wait
        // for the refresh when there is none.
        if let Some(list) = snapshot.usable(now) {
            return Ok(Arc::clone(list));
        }
        drop(self.refresh.lock().await);
        self.snapshot.load().answer(Instant::now())
    }

    async fn refresh(&self, _in_flight: tokio::sync::OwnedMutexGuard<()>) {
        let previous = self.snapshot.load_full();
        let now = Instant::now();
        if previous.fresh(now).is_some() || previous.blocked(now) {
            return; // a refresh that finished just before ours took the lock
        }
        let etag = previous.list.as_ref().and(previous.etag.as_deref());
        let outcome = self.fetch(etag).await;
        let result = match &outcome {
            Outcome::Fetched { .. } => RefreshResult::Fetched,
            // A 304 with nothing cached is a failure (see `apply`).
            Outcome::NotModified if previous.list.is_some() => RefreshResult::NotModified,
            Outcome::RateLimited { .. } => RefreshResult::RateLimited,
            Outcome::NotModified | Outcome::Failed { .. } => RefreshResult::Failed,
        };
        if let Some(count) = self.refreshes.get(result as usize) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let next = apply(
            &previous,
            outcome,
            Instant::now(),
            SystemTime::now(),
            self.ttl,
            self.max_stale,
        );
        self.snapshot.store(Arc::new(next));
    }

    async fn fetch(&self, etag: Option<&str>) -> Outcome {
        let mut request = self
            .client
            .get(&self.url)
            .header(header::ACCEPT, github::ACCEPT)
            .header(github::API_VERSION.0, github::API_VERSION.1);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Outcome::Failed {
                    why: github::describe(&e),
                    base: BACKOFF_BASE,
                };
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Bytes::new();
        if status == StatusCode::OK {
            body = match github::read_body(response, MAX_META_BYTES).await {
                Ok(body) => body,
                Err(why) => {
                    return Outcome::Failed {
                        why,
                        base: BACKOFF_BASE,
                    };
                }
            };
        }
        classify(status, &headers, &body, SystemTime::now())
    }
}

/// Reads an answer from `/meta`.
pub(crate) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
    now: SystemTime,
) -> Outcome {
    match status {
        StatusCode::OK => match parse_hooks(body) {
            Ok(list) => {
                let etag = headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Outcome::Fetched { list, etag }
            }
            Err(why) => Outcome::Failed {
                why,
                base: BACKOFF_BASE,
            },
        },
        StatusCode::NOT_MODIFIED => Outcome::NotModified,
        status => match github::refusal(status, headers, now) {
            Refusal::RateLimited { until } => Outcome::RateLimited { until },
            Refusal::Failed { why, base } => Outcome::Failed { why, base },
        },
    }
}

/// The `hooks` list of a `/meta` answer. Every entry must be a valid CIDR and the
/// list must not be empty; otherwise the answer is unusable as a whole.
pub(crate) fn parse_hooks(body: &[u8]) -> Result<AllowList, String> {
    #[derive(serde::Deserialize)]
    struct Meta {
        hooks: Option<Vec<String>>,
    }
    let meta: Meta =
        serde_json::from_slice(body).map_err(|e| format!("not the expected JSON: {e}"))?;
    let hooks = meta.hooks.ok_or("the answer has no `hooks` list")?;
    if hooks.is_empty() {
        return Err("the `hooks` list is empty".to_owned());
    }
    let nets = hooks
        .iter()
        .map(|s| {
            crate::allow_list::parse_net(s.trim())
                .ok_or_else(|| format!("`hooks` holds {s:?}, not a CIDR"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AllowList::new(nets))
}

/// The snapshot after `outcome`. Pure, so the policy is tested without a clock.
fn apply(
    previous: &Snapshot,
    outcome: Outcome,
    now: Instant,
    wall_now: SystemTime,
    ttl: Duration,
    max_stale: Duration,
) -> Snapshot {
    let fresh = |list: Arc<AllowList>, etag: Option<String>| Snapshot {
        list: Some(list),
        etag,
        fresh_until: now + ttl,
        stale_until: now + ttl + max_stale,
        retry_at: None,
        failure: Rejection::GithubUnreachable,
        failures: 0,
        fetched_at: Some(wall_now),
        last_refresh: Some((wall_now, Ok(()))),
    };
    let outcome = match (outcome, &previous.list) {
        (Outcome::NotModified, None) => Outcome::Failed {
            why: "304 Not Modified with no list cached".into(),
            base: BACKOFF_BASE,
        },
        (outcome, _) => outcome,
    };
    let (failure, wait, why) = match outcome {
        Outcome::Fetched { list, etag } => {
            tracing::debug!(ranges = list.len(), "fetched GitHub's hook ranges");
            return fresh(Arc::new(list), etag);
        }
        Outcome::NotModified => {
            let list = previous.list.clone().unwrap_or_default();
            return fresh(list, previous.etag.clone());
        }
        Outcome::RateLimited { until } => {
            let wait = until.duration_since(wall_now).unwrap_or_default();
            let until = httpdate::fmt_http_date(until);
            let why = format!("rate limited until {until}");
            (Rejection::GithubRateLimited { until }, wait, why)
        }
        Outcome::Failed { why, base } => {
            let wait = github::backoff(base, previous.failures);
            (Rejection::GithubUnreachable, wait, why)
        }
    };
    let next = Snapshot {
        retry_at: Some(now + wait),
        failure,
        failures: previous.failures.saturating_add(1),
        last_refresh: Some((wall_now, Err(why.clone()))),
        ..previous.clone()
    };
    if next.usable(now).is_some() {
        tracing::warn!(
            "could not refresh GitHub's hook ranges from /meta ({why}); using the last good list, \
             next attempt in {}s",
            wait.as_secs()
        );
    } else {
        tracing::warn!(
            "could not fetch GitHub's hook ranges from /meta ({why}); deliveries get 503, \
             next attempt in {}s",
            wait.as_secs()
        );
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::tests::{epoch, headers};

    const HOOKS: &[u8] = br#"{"verifiable_password_authentication":false,"hooks":["192.30.252.0/22","185.199.108.0/22","140.82.112.0/20","143.55.64.0/20","2a0a:a440::/29","2606:50c0::/32"],"web":["1.2.3.4/32"]}"#;

    #[test]
    fn parses_githubs_answer() {
        let list = parse_hooks(HOOKS).unwrap();
        assert!(list.contains("192.30.252.1".parse().unwrap()));
        assert!(list.contains("2606:50c0::1".parse().unwrap()));
        assert!(
            !list.contains("1.2.3.4".parse().unwrap()),
            "only `hooks` counts"
        );
    }

    #[test]
    fn unusable_answers_are_errors() {
        for (body, why) in [
            (
                &br#"{"hooks":["192.30.252.0/22","not a cidr"]}"#[..],
                "not a CIDR",
            ),
            (br#"{"hooks":[]}"#, "empty"),
            (br#"{"web":[]}"#, "no `hooks`"),
            (br#"{"hooks":"192.30.252.0/22"}"#, "expected JSON"),
            (br#"{"hooks":[1]}"#, "expected JSON"),
            (b"<html>", "expected JSON"),
            (b"", "expected JSON"),
        ] {
            let err = parse_hooks(body).unwrap_err();
            assert!(
                err.contains(why),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn refusals_are_githubs_rules() {
        // The rules themselves are `github`'s (tested there); `classify` passes them on.
        let now = epoch(1_445_929_000);
        let reset = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1445929478"),
        ]);
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &reset, &Bytes::new(), now),
            Outcome::RateLimited {
                until: epoch(1_445_929_478)
            }
        );
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, &HeaderMap::new(), &Bytes::new(), now),
            Outcome::Failed { base, .. } if base == github::SECONDARY_LIMIT_BASE
        ));
    }

    #[test]
    fn classifies_success_and_not_modified() {
        let h = headers(&[("etag", "W/\"abc\"")]);
        match classify(
            StatusCode::OK,
            &h,
            &Bytes::from_static(HOOKS),
            SystemTime::now(),
        ) {
            Outcome::Fetched { list, etag } => {
                assert_eq!(etag.as_deref(), Some("W/\"abc\""));
                assert_eq!(list.len(), 6);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify(
                StatusCode::NOT_MODIFIED,
                &h,
                &Bytes::new(),
                SystemTime::now()
            ),
            Outcome::NotModified
        );
        assert!(matches!(
            classify(
                StatusCode::OK,
                &h,
                &Bytes::from_static(b"{}"),
                SystemTime::now()
            ),
            Outcome::Failed { .. }
        ));
    }

    const TTL: Duration = Duration::from_secs(60);
    const STALE: Duration = Duration::from_secs(600);

    fn fetched(now: Instant) -> Snapshot {
        let outcome = Outcome::Fetched {
            list: parse_hooks(HOOKS).unwrap(),
            etag: Some("\"e1\"".into()),
        };
        apply(
            &Snapshot::cold(now),
            outcome,
            now,
            SystemTime::now(),
            TTL,
            STALE,
        )
    }

    #[test]
    fn fresh_then_stale_then_unusable() {
        let t0 = Instant::now();
        let s = fetched(t0);
        assert!(s.fresh(t0).is_some() && s.fresh(t0 + TTL).is_none());
        assert!(
            s.usable(t0 + TTL + STALE - Duration::from_millis(1))
                .is_some()
        );
        assert_eq!(
            s.answer(t0 + TTL + STALE).unwrap_err(),
            Rejection::GithubUnreachable
        );
    }

    #[test]
    fn not_modified_extends_freshness_and_keeps_the_etag() {
        let t0 = Instant::now();
        let s = fetched(t0);
        let t1 = t0 + TTL * 2;
        let s2 = apply(&s, Outcome::NotModified, t1, SystemTime::now(), TTL, STALE);
        assert!(s2.fresh(t1 + TTL - Duration::from_millis(1)).is_some());
        assert_eq!(s2.etag.as_deref(), Some("\"e1\""));
        assert!(Arc::ptr_eq(
            s2.list.as_ref().unwrap(),
            s.list.as_ref().unwrap()
        ));
        // A 304 with nothing cached is a failure, not an empty list.
        let cold = apply(
            &Snapshot::cold(t0),
            Outcome::NotModified,
            t0,
            SystemTime::now(),
            TTL,
            STALE,
        );
        assert!(cold.list.is_none() && cold.blocked(t0));
    }

    #[test]
    fn failures_keep_the_old_list_and_back_off_exponentially() {
        let t0 = Instant::now();
        let mut s = fetched(t0);
        let mut now = t0 + TTL;
        let mut waits = Vec::new();
        for _ in 0..11 {
            s = apply(
                &s,
                Outcome::Failed {
                    why: "500".into(),
                    base: BACKOFF_BASE,
                },
                now,
                SystemTime::now(),
                TTL,
                STALE,
            );
            let wait = s.retry_at.unwrap() - now;
            waits.push(wait.as_secs());
            assert!(s.blocked(now) && !s.blocked(now + wait));
            now += wait;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert!(s.list.is_some(), "the last good list is kept");
        // A success resets the count.
        let s = apply(&s, Outcome::NotModified, now, SystemTime::now(), TTL, STALE);
        assert_eq!(s.failures, 0);
        assert!(s.retry_at.is_none());
    }

    #[test]
    fn rate_limit_blocks_until_reset_and_names_it() {
        let t0 = Instant::now();
        let wall = epoch(1_445_929_000);
        let s = apply(
            &Snapshot::cold(t0),
            Outcome::RateLimited {
                until: epoch(1_445_929_478),
            },
            t0,
            wall,
            TTL,
            STALE,
        );
        assert!(s.blocked(t0 + Duration::from_secs(477)));
        assert!(!s.blocked(t0 + Duration::from_secs(478)));
        assert_eq!(
            s.answer(t0).unwrap_err(),
            Rejection::GithubRateLimited {
                until: "Tue, 27 Oct 2015 07:04:38 GMT".into()
            }
        );
    }
}
