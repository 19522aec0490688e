//! Catching up on missed deliveries from GitHub's delivery log.
//!
//! GitHub never redelivers by itself. At start and every interval, the leader (the one
//! process holding the journal's lock for it) reads the hook's delivery log newer than
//! the stored watermark (within the window), groups the attempts by GUID, and for each
//! GUID with no successful attempt and no row in the journal asks GitHub to redeliver
//! its latest attempt: a redelivery arrives as a delivery like any other, same GUID.
//!
//! - `settings`: `HOOKSERVER_CATCHUP*` and the App's credentials, checked;
//! - `api`: the list (pages, `Link` cursors) and the redelivery request over HTTP;
//! - `pass`: what a pass decides, without I/O;
//! - this file: the task (leadership, intervals, rate limits, back-off, shutdown), the
//!   watermark, and [`CatchupStatus`].
//!
//! It runs in a task of its own with its own HTTP client: it never delays or fails a
//! delivery. A rate limit stops every request until its reset; any other failure backs
//! off by `github`'s rules.

pub(crate) mod api;
mod pass;
pub(crate) mod settings;

use crate::{
    config::ConfigError,
    github::{self, Refusal},
    journal::{JournalError, store::Store, time},
};
use api::Api;
use pass::Decision;
use settings::{CatchupSettings, Checked, Target};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use tokio::sync::watch;

/// Pages read at most in one pass (100 attempts each).
const MAX_PAGES: usize = 1000;
/// GitHub lists an attempt once it has ended, up to its timeout (10 s; 30 s on GHES)
/// after its `delivered_at`: the watermark stays this far behind the pass's start,
/// so an attempt still in flight then is read by the next pass.
const LATE_ATTEMPTS_MS: i64 = 60_000;

/// What the catch-up has done, from [`Journal::catchup`](crate::Journal::catchup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatchupStatus {
    /// The hook whose log is read: `repo:OWNER/REPO/HOOK_ID`, `org:ORG/HOOK_ID` or `app`.
    pub target: String,
    /// Whether this process ran the last pass (with several instances on PostgreSQL,
    /// one leads; the others wait to take over).
    pub leader: bool,
    /// Passes completed by this process (listing and redeliveries done).
    pub passes: u64,
    /// When the last pass completed.
    pub last_pass_at: Option<SystemTime>,
    /// Deliveries the last completed pass found missing: no successful attempt on
    /// GitHub's side, no row in the journal.
    pub missing: usize,
    /// Redeliveries the last completed pass asked for.
    pub redelivered: usize,
    /// Redeliveries asked for by this process since it started.
    pub redelivered_total: u64,
    /// Deliveries found missing by this process's passes since it started, counted
    /// per pass (one still missing at the next pass is counted again).
    pub missing_total: u64,
    /// Deliveries delivered before this were settled by earlier passes.
    pub watermark: Option<SystemTime>,
    /// No request to GitHub before this time (a rate limit).
    pub rate_limited_until: Option<SystemTime>,
    /// What went wrong in the last pass, if it failed.
    pub last_error: Option<String>,
}

/// One target's catch-up: its client, its settings, what it has done.
pub(crate) struct Catchup {
    target: Target,
    key: String,
    api: Api,
    interval: Duration,
    window: Duration,
    max_redeliveries: usize,
    status: Mutex<CatchupStatus>,
}

/// Why a pass stopped early.
enum Stop {
    Github(Refusal),
    Journal(JournalError),
}

impl From<JournalError> for Stop {
    fn from(e: JournalError) -> Self {
        Self::Journal(e)
    }
}

impl Catchup {
    /// The catch-up the settings ask for, with its HTTP client built now (a start-up
    /// error otherwise); `None` when it is off.
    pub(crate) fn new(
        settings: &CatchupSettings,
        checked: Option<Checked>,
        api_url: &str,
        token: Option<&str>,
    ) -> Result<Option<Arc<Self>>, ConfigError> {
        let Some(checked) = checked else {
            return Ok(None);
        };
        let client = github::client(api::REQUEST_TIMEOUT, "the HTTP client for the catch-up")?;
        let target = checked.target.clone();
        let key = target.key();
        Ok(Some(Arc::new(Self {
            api: Api::for_target(client, api_url, checked, token),
            status: Mutex::new(CatchupStatus {
                target: key.clone(),
                ..CatchupStatus::default()
            }),
            key,
            target,
            interval: settings.interval,
            window: settings.window,
            max_redeliveries: settings.max_redeliveries,
        })))
    }

    pub(crate) fn status(&self) -> CatchupStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut CatchupStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Starts the catch-up's task on the current runtime; it ends when `stop` turns true
/// (the journal's shutdown) or its sender is gone.
pub(crate) fn start(catchup: Arc<Catchup>, store: Arc<dyn Store>, stop: watch::Receiver<bool>) {
    tokio::spawn(run(catchup, store, stop));
}

async fn run(catchup: Arc<Catchup>, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    let mut blocked_until: Option<SystemTime> = None;
    loop {
        let wait = tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            wait = turn(&catchup, &*store, &mut failures, &mut blocked_until) => wait,
        };
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    store.catchup_resign().await;
}

/// One turn: a pass if this process leads and GitHub is not blocking us; returns how
/// long to wait before the next.
async fn turn(
    catchup: &Catchup,
    store: &dyn Store,
    failures: &mut u32,
    blocked_until: &mut Option<SystemTime>,
) -> Duration {
    let interval = catchup.interval;
    if let Some(until) = *blocked_until {
        match until.duration_since(SystemTime::now()) {
            Ok(left) if !left.is_zero() => return left,
            _ => *blocked_until = None,
        }
    }
    match store.catchup_lead(catchup.key.clone()).await {
        Ok(true) => catchup.update(|s| s.leader = true),
        Ok(false) => {
            catchup.update(|s| s.leader = false);
            return interval;
        }
        Err(e) => {
            tracing::warn!(catchup = %catchup.key, error = %e, "catch-up: the journal is unavailable; next pass in {}s", interval.as_secs());
            catchup.update(|s| s.last_error = Some(e.to_string()));
            return interval;
        }
    }
    match pass(catchup, store).await {
        Ok(()) => {
            *failures = 0;
            catchup.update(|s| {
                s.last_error = None;
                s.rate_limited_until = None;
            });
            interval
        }
        Err(Stop::Journal(e)) => {
            tracing::warn!(catchup = %catchup.key, error = %e, "catch-up pass stopped: the journal is unavailable");
            catchup.update(|s| s.last_error = Some(e.to_string()));
            interval
        }
        Err(Stop::Github(Refusal::RateLimited { until })) => {
            let date = httpdate::fmt_http_date(until);
            tracing::warn!(catchup = %catchup.key, "catch-up: rate limited by GitHub until {date}; no request before then");
            *blocked_until = Some(until);
            catchup.update(|s| {
                s.rate_limited_until = Some(until);
                s.last_error = Some(format!("rate limited until {date}"));
            });
            until
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .max(Duration::from_millis(1))
        }
        Err(Stop::Github(Refusal::Failed { why, base })) => {
            let backoff = github::backoff(base, *failures);
            *failures = failures.saturating_add(1);
            let wait = interval.max(backoff);
            tracing::warn!(catchup = %catchup.key, "catch-up pass failed ({why}); next attempt in {}s", wait.as_secs());
            // The back-off holds every request, the next pass's too.
            *blocked_until = Some(SystemTime::now() + backoff);
            catchup.update(|s| s.last_error = Some(why));
            wait
        }
    }
}

/// One pass: list, decide, redeliver, advance the watermark past what is settled.
async fn pass(catchup: &Catchup, store: &dyn Store) -> Result<(), Stop> {
    let key = &catchup.key;
    let now = time::now();
    let window = i64::try_from(catchup.window.as_millis()).unwrap_or(i64::MAX);
    let watermark = store.catchup_watermark(key.clone()).await?;
    let floor = watermark
        .unwrap_or(i64::MIN)
        .max(now.saturating_sub(window));
    // Newest first: read until a page reaches below the floor.
    let mut attempts = Vec::new();
    let mut url = catchup.api.first_page();
    for _ in 0..MAX_PAGES {
        let page = catchup.api.list(&url).await.map_err(Stop::Github)?;
        let reached_floor = page.attempts.iter().any(|a| a.delivered_at < floor);
        attempts.extend(page.attempts);
        match page.next {
            Some(next) if !reached_floor => url = next,
            _ => break,
        }
    }
    let newest = attempts.iter().map(|a| a.delivered_at).max();
    let groups = pass::group(&attempts, floor);
    let unsettled_candidates: Vec<String> = groups
        .iter()
        .filter(|g| !g.ok)
        .map(|g| g.guid.clone())
        .collect();
    let hook_id = catchup.target.hook_id().map(|id| id.to_string());
    let records = store
        .catchup_lookup(key.clone(), hook_id, unsettled_candidates.clone())
        .await?;
    let records: std::collections::HashMap<String, _> =
        unsettled_candidates.into_iter().zip(records).collect();
    let mut missing = 0;
    let mut redelivered = 0;
    // The oldest GUID not settled: the watermark stays at or below it.
    let mut hold: Option<i64> = None;
    let mut stopped = None;
    for g in &groups {
        let record = records.get(&g.guid).cloned().unwrap_or_default();
        let decision = match stopped {
            // After a refusal nothing more is asked; what is left stays unsettled.
            Some(_) => Decision::Wait,
            None => pass::decide(g, &record, now),
        };
        if decision == Decision::Settled {
            continue;
        }
        missing += 1;
        match decision {
            Decision::Ask if redelivered < catchup.max_redeliveries => {
                match catchup.api.redeliver(g.latest_id).await {
                    Ok(()) => {
                        store
                            .catchup_asked(key.clone(), g.guid.clone(), time::now())
                            .await?;
                        redelivered += 1;
                        tracing::info!(
                            catchup = %key,
                            guid = %g.guid,
                            event = %g.event,
                            delivery_id = g.latest_id,
                            attempt = record.asked + 1,
                            "catch-up: asked GitHub to redeliver a missed delivery"
                        );
                    }
                    Err(refusal) => stopped = Some(refusal),
                }
                hold.get_or_insert(g.latest_at);
            }
            Decision::GiveUp => {
                if record.asked == pass::MAX_ASKS {
                    tracing::warn!(
                        catchup = %key,
                        guid = %g.guid,
                        event = %g.event,
                        "catch-up: still missing after {} redeliveries; not asking again",
                        pass::MAX_ASKS
                    );
                    // Counted past the limit, so this is said once.
                    store
                        .catchup_asked(key.clone(), g.guid.clone(), time::now())
                        .await?;
                }
            }
            _ => {
                hold.get_or_insert(g.latest_at);
            }
        }
    }
    let advance_to = match (hold, newest) {
        (Some(hold), _) => Some(hold),
        (None, Some(newest)) => Some(newest),
        (None, None) => None,
    }
    .map(|to| to.min(now - LATE_ATTEMPTS_MS));
    if let Some(to) = advance_to {
        store
            .catchup_advance(key.clone(), to, now.saturating_sub(window))
            .await?;
    }
    if let Some(refusal) = stopped {
        tracing::info!(catchup = %key, missing, redelivered, "catch-up pass cut short by GitHub");
        catchup.update(|s| {
            s.redelivered_total += redelivered as u64;
            s.missing_total += missing as u64;
        });
        return Err(Stop::Github(refusal));
    }
    let level_info = missing > 0 || redelivered > 0;
    if level_info {
        tracing::info!(
            catchup = %key,
            attempts = attempts.len(),
            missing,
            redelivered,
            "catch-up pass: deliveries GitHub could not make and the journal lacks: \
             {missing}; redeliveries asked for: {redelivered}"
        );
    } else {
        tracing::debug!(catchup = %key, attempts = attempts.len(), "catch-up pass: nothing missing");
    }
    let watermark = store.catchup_watermark(key.clone()).await?;
    catchup.update(|s| {
        s.passes += 1;
        s.last_pass_at = Some(SystemTime::now());
        s.missing = missing;
        s.redelivered = redelivered;
        s.redelivered_total += redelivered as u64;
        s.missing_total += missing as u64;
        s.watermark = watermark.map(time::from_millis);
    });
    Ok(())
}
