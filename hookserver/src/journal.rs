//! The journal: every verified delivery written durably before it is acknowledged,
//! deduplicated on (hook id, GUID), then processed by bounded workers with retries.
//!
//! - `settings`: what [`Config::journal`](crate::Config::journal) and the
//!   `HOOKSERVER_JOURNAL*` variables hold, checked here;
//! - `store`: the storage trait both engines implement; `sqlite`: the embedded one;
//!   `postgres`: the shared one, for several instances;
//! - `stored`: what of a delivery is stored, and reading it back;
//! - `workers`: claiming rows, retry policy, retention, shutdown;
//! - this file: the public handle [`Journal`] and the records it returns.

#[cfg(test)]
mod catchup_tests;
mod postgres;
pub(crate) mod recent;
mod settings;
mod sqlite;
pub(crate) mod store;
pub(crate) mod stored;
#[cfg(test)]
mod tests;
pub(crate) mod workers;

pub use settings::Ack;
pub(crate) use settings::{
    ACK, JOURNAL, MAX_PENDING, RETENTION_DAYS, RETRY_ATTEMPTS, RETRY_BACKOFF, WORKERS,
};
pub(crate) use settings::{JournalSettings, parse_days};

use bytes::Bytes;
use http::HeaderMap;
use std::{fmt, net::IpAddr, path::Path, sync::Arc, time::SystemTime};
use store::Store;
use workers::Control;

/// A delivery's place in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryState {
    /// Waiting for a worker: new, or due for a retry at `next_attempt_at`.
    Queued,
    /// Claimed by a process: its handler is running, or about to as soon as a worker
    /// is free (or was, in a process that died: the lease tells).
    Running,
    /// Finished: the handler answered with anything but a `5xx`.
    Done,
    /// Out of attempts: every one failed. Redelivering it from GitHub, or
    /// [`Journal::replay`], queues it again.
    Dead,
    /// No handler answers its event: recorded, never run.
    Unhandled,
}

impl DeliveryState {
    /// Every state, in the order a delivery goes through them.
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Done,
        Self::Dead,
        Self::Unhandled,
    ];

    /// The name stored and shown: `queued`, `running`, `done`, `dead`, `unhandled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Unhandled => "unhandled",
        }
    }

    /// The state named `name`, as [`as_str`](Self::as_str) writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One delivery as the journal knows it, without its headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The journal's own row id (increasing in the order received).
    pub id: i64,
    /// `X-GitHub-Hook-ID`, when the delivery had one.
    pub hook_id: Option<u64>,
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's top-level `action`, when it has one.
    pub action: Option<String>,
    /// When it was received (or received again, for a redelivery that queued it anew).
    pub received_at: SystemTime,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When a queued delivery is due.
    pub next_attempt_at: SystemTime,
    /// The status of the last attempt's answer, when it got one.
    pub last_status: Option<u16>,
    /// What went wrong in the last attempt (a panic, a timeout, a `5xx` body).
    pub last_error: Option<String>,
    /// How long the last attempt took.
    pub last_duration: Option<std::time::Duration>,
    /// When it reached `done`, `dead` or `unhandled`.
    pub finished_at: Option<SystemTime>,
}

/// One delivery in full: its entry, and what a handler reads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredDelivery {
    /// Its journal entry.
    pub entry: JournalEntry,
    /// The headers kept: `X-GitHub-*`, `User-Agent`, `Content-Type` (never a
    /// signature or any other header).
    pub headers: HeaderMap,
    /// The body exactly as received.
    pub body: Bytes,
    /// The client address the source-IP check saw.
    pub client_ip: Option<IpAddr>,
}

/// Which deliveries [`Journal::list`] returns; every field left `None` matches all.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListFilter {
    /// Only deliveries in this state.
    pub state: Option<DeliveryState>,
    /// Only this event.
    pub event: Option<String>,
    /// Received at or after this time.
    pub since: Option<SystemTime>,
    /// Received before this time.
    pub until: Option<SystemTime>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

impl ListFilter {
    /// Matches every delivery.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only deliveries in `state`.
    pub fn state(mut self, state: DeliveryState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only deliveries of `event`.
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Only deliveries received at or after `since`.
    pub fn since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }

    /// Only deliveries received before `until`.
    pub fn until(mut self, until: SystemTime) -> Self {
        self.until = Some(until);
        self
    }

    /// At most `limit` deliveries, the newest.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// What [`Journal::replay`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayOutcome {
    /// Finished deliveries with the GUID put back in the queue, attempts reset.
    pub queued: usize,
    /// Deliveries with the GUID that were already queued or running, left alone.
    pub already_queued: usize,
}

/// How many deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalStats {
    /// Waiting for a worker (new or retrying).
    pub queued: u64,
    /// Of those queued, the ones that failed at least once.
    pub retrying: u64,
    /// Being processed.
    pub running: u64,
    /// Finished.
    pub done: u64,
    /// Out of attempts.
    pub dead: u64,
    /// No handler answers their event.
    pub unhandled: u64,
    /// When the oldest queued or running delivery was received.
    pub oldest_pending: Option<SystemTime>,
}

/// The journal could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalError {
    /// The engine failed (disk full, file locked or damaged, database gone...).
    Unavailable(String),
    /// The journal URL is not one hookserver knows.
    BadUrl(String),
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "journal unavailable: {why}"),
            Self::BadUrl(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for JournalError {}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl JournalError {
    fn open(path: &Path, e: impl fmt::Display) -> Self {
        Self::Unavailable(format!("cannot open {}: {e}", path.display()))
    }
}

/// The workers a journal opened on its own (a tool's) sizes its connections for.
const OPEN_WORKERS: usize = 2;

/// A handle on a journal: list, show and replay deliveries, and count them.
///
/// Get the one a registry writes to with [`Hooks::journal`](crate::Hooks::journal),
/// or open one on its own (from a tool, another process) with [`Journal::open`].
///
/// ```no_run
/// # #![allow(dead_code)]
/// # async fn run() -> Result<(), hookserver::JournalError> {
/// use hookserver::{DeliveryState, Journal, ListFilter};
///
/// let journal = Journal::open("sqlite:hookserver.db")?;
/// for entry in journal.list(ListFilter::new().state(DeliveryState::Dead)).await? {
///     println!("{} {} after {} attempts: {:?}", entry.guid, entry.event, entry.attempts, entry.last_error);
///     journal.replay(&entry.guid).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Journal {
    store: Arc<dyn Store>,
    /// The workers of the registry that writes it, when there is one here.
    control: Option<Arc<Control>>,
    /// The registry's catch-up, when it has one.
    catchup: Option<Arc<crate::catchup::Catchup>>,
    url: Arc<str>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal").field("url", &self.url).finish()
    }
}

impl Journal {
    /// Opens the journal at `url` (`sqlite:PATH` or `postgres://...`), creating or
    /// migrating it if needed. Blocking (for PostgreSQL, until the database answers,
    /// 20 s at most): call it at start-up. Deliveries replayed through it are picked up by the
    /// server writing the journal within its poll interval (a second or two).
    pub fn open(url: &str) -> Result<Self, JournalError> {
        let store = settings::Engine::parse(url)
            .map_err(JournalError::BadUrl)?
            .open(OPEN_WORKERS)?;
        Ok(Self {
            store,
            control: None,
            catchup: None,
            url: settings::redact(url).into(),
        })
    }

    pub(crate) fn with_control(
        store: Arc<dyn Store>,
        control: Arc<Control>,
        catchup: Option<Arc<crate::catchup::Catchup>>,
        url: &str,
    ) -> Self {
        Self {
            store,
            control: Some(control),
            catchup,
            url: settings::redact(url).into(),
        }
    }

    /// What the catch-up on missed deliveries has done (see
    /// [`Config::catchup`](crate::Config::catchup)), when this registry runs one.
    pub fn catchup(&self) -> Option<crate::CatchupStatus> {
        self.catchup.as_ref().map(|c| c.status())
    }

    /// Deliveries matching `filter`, newest first.
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<JournalEntry>, JournalError> {
        self.store.list(filter).await
    }

    /// Every delivery with this GUID (one per hook that received it), in full.
    pub async fn show(&self, guid: &str) -> Result<Vec<StoredDelivery>, JournalError> {
        self.store.show(guid.to_owned()).await
    }

    /// Puts the finished deliveries with this GUID (`done`, `dead`, `unhandled`)
    /// back in the queue with their attempts reset, to run their handler again.
    pub async fn replay(&self, guid: &str) -> Result<ReplayOutcome, JournalError> {
        let outcome = self.store.replay(guid.to_owned(), time::now()).await?;
        if let Some(control) = &self.control {
            control.wake();
        }
        Ok(outcome)
    }

    /// How many deliveries are in each state.
    pub async fn stats(&self) -> Result<JournalStats, JournalError> {
        self.store.stats().await
    }

    /// Deletes deliveries finished before `before`, in batches, as the retention
    /// task does; returns how many went.
    pub async fn delete_finished_before(&self, before: SystemTime) -> Result<u64, JournalError> {
        workers::delete_finished(&*self.store, time::to_millis(before)).await
    }

    /// Stops the workers for a server other than [`hookserver::serve`](crate::serve)
    /// (which does this itself): no new attempt starts, running handlers get up to
    /// `grace` to finish, and the deliveries of those still running after it go back
    /// to the queue for the next start.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        if let Some(control) = &self.control {
            control.shutdown(grace).await;
        }
    }
}

/// Times as the engines store them: Unix milliseconds.
pub(crate) mod time {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub(crate) fn now() -> i64 {
        to_millis(SystemTime::now())
    }

    pub(crate) fn to_millis(t: SystemTime) -> i64 {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    pub(crate) fn from_millis(ms: i64) -> SystemTime {
        if ms >= 0 {
            UNIX_EPOCH + Duration::from_millis(ms as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
        }
    }

    pub(crate) fn after(now: i64, d: Duration) -> i64 {
        now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
