//! Processing the journal: a dispatcher claims due rows with a lease and runs each
//! in a task holding one of `workers` permits; the retry policy decides what an
//! attempt's answer makes of the row; a retention task deletes old finished rows;
//! shutdown stops claiming and waits for the handlers running.

use super::{
    JournalError, JournalSettings,
    store::{AttemptRecord, Claim, Claimed, EntryId, Finish, Store},
    time,
};
use crate::log_limit::RateLimitedWarning;
use std::{
    collections::HashSet,
    future::Future,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// A lease outlives the handler timeout by this much, so a slow commit of the
/// `done` mark does not let a second worker start the same delivery.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// The longest a retry waits, whatever the attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Idle workers look for due rows at least this often, for rows queued by another
/// process (a replay from the command line) or a wake-up that was missed.
const POLL: Duration = Duration::from_secs(2);
/// Rows claimed at most per call.
const CLAIM_BATCH: usize = 32;
/// Rows deleted per retention transaction: small enough never to hold up inserts.
const RETENTION_BATCH: usize = 500;
/// After a failed claim, wait this long before the next.
const CLAIM_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// First attempts held in memory, waiting for a worker, at most this many per worker.
const RESERVATIONS_PER_WORKER: usize = 16;
/// ...and with bodies of at most this many KiB together (64 MiB); past either, a
/// delivery waits in the journal instead and a worker reads it back.
const RESERVED_KIB: usize = 64 * 1024;

/// Ends of attempts waiting for their commit, per worker. A worker frees its slot
/// once its end is handed on, so ends pile up for one commit: enough room for the
/// attempts of a commit's time at full speed (a few ms), not for an unbounded pile.
pub(crate) const MARKS_PER_WORKER: usize = 8;

/// How long the end of an attempt is tried again when its write fails.
const FINISH_RETRY_FOR: Duration = Duration::from_secs(20);
/// The first pause between those tries; it doubles up to the next.
const FINISH_RETRY_FIRST: Duration = Duration::from_millis(200);
const FINISH_RETRY_MAX_PAUSE: Duration = Duration::from_secs(2);

/// What the pipeline and the workers share about one registry's journal.
pub(crate) struct Control {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: JournalSettings,
    pub(crate) lease: Duration,
    permits: Arc<Semaphore>,
    /// First attempts acknowledged and waiting in memory for a worker: counted, and
    /// their bodies' KiB, so that a burst cannot hold unbounded memory.
    reservations: Arc<Semaphore>,
    reserved_kib: Arc<Semaphore>,
    wake: Notify,
    stopping: AtomicBool,
    /// Turns true at shutdown, for the tasks beside the workers (the catch-up).
    stop: tokio::sync::watch::Sender<bool>,
    /// Rows claimed by this process, so a shutdown can give back the unfinished.
    running: Mutex<HashSet<Claim>>,
    /// Attempts whose handler is over and whose end is being written: a shutdown
    /// waits for these too, or a restart would run them again.
    finishing: AtomicUsize,
    finished: Notify,
    /// Ends handed on to the store and not yet committed, at most
    /// [`MARKS_PER_WORKER`] × `workers` at once: with the `workers` slots, this
    /// bounds what a kill can leave processed but not marked (so run again after a
    /// restart), and holds the workers back when the store cannot keep up.
    marking: Semaphore,
    pub(crate) warnings: RateLimitedWarning,
    /// Attempts scheduled again, and rows marked dead, by this process (for the
    /// metrics).
    retries: AtomicU64,
    dead: AtomicU64,
    /// When it was built, in [`generation`]'s count.
    born: u64,
}

/// Journals built so far in the process.
static BUILT: AtomicU64 = AtomicU64::new(0);

/// The count of journals built so far: a server notes it when it starts, and at its
/// end stops only the journals built before (see [`shutdown_runtime`]).
pub(crate) fn generation() -> u64 {
    BUILT.load(Ordering::Acquire)
}

impl Control {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        settings: JournalSettings,
        handler_timeout: Duration,
    ) -> Self {
        Self {
            store,
            permits: Arc::new(Semaphore::new(settings.workers)),
            marking: Semaphore::new(settings.workers.saturating_mul(MARKS_PER_WORKER)),
            reservations: Arc::new(Semaphore::new(
                settings.workers.saturating_mul(RESERVATIONS_PER_WORKER),
            )),
            reserved_kib: Arc::new(Semaphore::new(RESERVED_KIB)),
            settings,
            lease: handler_timeout + LEASE_MARGIN,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stop: tokio::sync::watch::Sender::new(false),
            running: Mutex::new(HashSet::new()),
            finishing: AtomicUsize::new(0),
            finished: Notify::new(),
            warnings: RateLimitedWarning::new(Duration::from_secs(60))
                .with_summaries(crate::log_limit::warn_count),
            retries: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            born: BUILT.fetch_add(1, Ordering::AcqRel),
        }
    }

    /// Attempts scheduled again and rows marked dead so far.
    pub(crate) fn attempt_counts(&self) -> AttemptCounts {
        AttemptCounts {
            retries: self.retries.load(Ordering::Relaxed),
            dead: self.dead.load(Ordering::Relaxed),
        }
    }

    /// Tells an idle dispatcher that a row may be due.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Turns true when the journal shuts down.
    pub(crate) fn stop_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Room to keep a first attempt of `body_len` bytes in memory until a worker
    /// takes it; `None` when the journal is shutting down or the room is taken.
    pub(crate) fn try_reserve(&self, body_len: usize) -> Option<Reservation> {
        if self.is_stopping() {
            return None;
        }
        let kib = u32::try_from(body_len.div_ceil(1024).max(1)).ok()?;
        let bytes = Arc::clone(&self.reserved_kib)
            .try_acquire_many_owned(kib)
            .ok()?;
        let count = Arc::clone(&self.reservations).try_acquire_owned().ok()?;
        Some(Reservation {
            _count: count,
            _bytes: bytes,
        })
    }

    /// A worker slot, waiting for one; `None` once the journal is shutting down.
    pub(crate) async fn worker_permit(&self) -> Option<OwnedSemaphorePermit> {
        if self.is_stopping() {
            return None;
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        (!self.is_stopping()).then_some(permit)
    }

    /// Gives a claimed row this process will not run back to the queue.
    pub(crate) async fn give_back(&self, claim: Claim) {
        let _finishing = Finishing::enter(self);
        self.running_set().remove(&claim);
        if let Err(e) = self.store.release(vec![claim], time::now()).await {
            self.warnings.warn("journal write failed", e);
        }
    }

    /// Notes that this process runs `id` now.
    pub(crate) fn started(&self, claim: Claim) {
        self.running_set().insert(claim);
    }

    fn running_set(&self) -> std::sync::MutexGuard<'_, HashSet<Claim>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What an attempt's answer makes of the row: a `5xx` (a panic, a timeout, or
    /// the handler's own) is retried after the backoff, until the attempts run out.
    pub(crate) fn decide(&self, status: u16, attempts: u32, now: i64) -> Finish {
        if status < 500 {
            Finish::Done
        } else if attempts >= self.settings.retry_attempts {
            Finish::Dead
        } else {
            Finish::Retry {
                at: time::after(now, backoff(self.settings.retry_backoff, attempts)),
            }
        }
    }

    /// Records an attempt's end, logging it. The worker slot, if any, is freed
    /// first: the handler is over, and the write may wait for a commit. (It is freed
    /// once a marking slot is free, so that at most [`MARKS_PER_WORKER`] × `workers`
    /// ends wait unwritten.) A write that fails is tried again for up to 20 s; after that the
    /// row stays claimed by its lease, and is tried again when the lease runs out.
    pub(crate) async fn finish(
        &self,
        claimed: &ClaimedRow<'_>,
        finish: Finish,
        attempt: AttemptRecord,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let _finishing = Finishing::enter(self);
        // Never closed, so this waits for a slot and never fails.
        let _marking = self.marking.acquire().await.ok();
        drop(permit);
        let now = time::now();
        log_attempt(claimed, &finish, &attempt, self.settings.retry_attempts);
        match finish {
            Finish::Retry { .. } => self.retries.fetch_add(1, Ordering::Relaxed),
            Finish::Dead => self.dead.fetch_add(1, Ordering::Relaxed),
            Finish::Done | Finish::Unhandled => 0,
        };
        let retry = matches!(finish, Finish::Retry { .. });
        let claim = claimed.claim();
        // A failed write is tried again for a while (the database restarting, a
        // connection lost): the handler has run, and a row left claimed would run it
        // again when its lease runs out. The lease has at least LEASE_MARGIN left here
        // (the handler ended within its timeout), so FINISH_RETRY_FOR stays inside it;
        // finishing twice is harmless (the second matches no running claim).
        let give_up = tokio::time::Instant::now() + FINISH_RETRY_FOR;
        let mut pause = FINISH_RETRY_FIRST;
        loop {
            match self
                .store
                .finish(claim, finish.clone(), attempt.clone(), now)
                .await
            {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() + pause < give_up => {
                    self.warnings.warn("journal write failed; retrying", e);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(FINISH_RETRY_MAX_PAUSE);
                }
                Err(e) => {
                    self.warnings.warn("journal write failed", e);
                    break;
                }
            }
        }
        self.running_set().remove(&claim);
        if retry {
            // The dispatcher may be asleep until a later row falls due.
            self.wake();
        }
    }

    /// Stops claiming, waits up to `grace` for the handlers running, and gives the
    /// rows of those still running back to the queue.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stop.send_replace(true);
        self.wake.notify_waiters();
        self.wake();
        let all = u32::try_from(self.settings.workers).unwrap_or(u32::MAX);
        // Held until the end, so that no waiting first attempt starts meanwhile.
        let deadline = tokio::time::Instant::now() + grace;
        let drained = tokio::time::timeout_at(deadline, self.permits.acquire_many(all)).await;
        // Then the ends of the attempts that just finished, still being written.
        while self.finishing.load(Ordering::Acquire) > 0 {
            let finished = self.finished.notified();
            if self.finishing.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                break;
            }
        }
        // With every slot drained, what is left claimed was acknowledged and waiting
        // for a worker; otherwise it also holds the handlers cut off.
        let unfinished: Vec<Claim> = self.running_set().drain().collect();
        if unfinished.is_empty() {
            return;
        }
        if drained.is_err() {
            tracing::warn!(
                count = unfinished.len(),
                "handlers still running after the shutdown grace period: their deliveries \
                 go back to the queue for the next start"
            );
        }
        if let Err(e) = self.store.release(unfinished, time::now()).await {
            tracing::warn!(error = %e, "could not give deliveries back to the queue; \
                 they are claimed again when their lease runs out");
        }
    }
}

/// What [`Control::attempt_counts`] reads.
pub(crate) struct AttemptCounts {
    pub(crate) retries: u64,
    pub(crate) dead: u64,
}

/// Counts an attempt's end being written, for the shutdown to wait on.
struct Finishing<'a>(&'a Control);

impl<'a> Finishing<'a> {
    fn enter(control: &'a Control) -> Self {
        control.finishing.fetch_add(1, Ordering::AcqRel);
        Self(control)
    }
}

impl Drop for Finishing<'_> {
    fn drop(&mut self) {
        if self.0.finishing.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.finished.notify_waiters();
        }
    }
}

/// Room held by a first attempt waiting in memory for a worker.
pub(crate) struct Reservation {
    _count: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// A row being attempted: what the log line and the finish need.
pub(crate) struct ClaimedRow<'a> {
    pub(crate) id: EntryId,
    pub(crate) guid: &'a str,
    pub(crate) event: &'a str,
    pub(crate) attempts: u32,
}

impl ClaimedRow<'_> {
    pub(crate) fn claim(&self) -> Claim {
        Claim {
            id: self.id,
            attempt: self.attempts,
        }
    }
}

fn log_attempt(row: &ClaimedRow<'_>, finish: &Finish, attempt: &AttemptRecord, max: u32) {
    let (guid, event, attempt_no) = (row.guid, row.event, row.attempts);
    let status = attempt.status;
    let duration_ms = attempt.duration_ms;
    let error = attempt.error.as_deref();
    match finish {
        // The delivery's own line ("delivery answered", 202) is at info already: a
        // first attempt that succeeds adds a line at debug only, so a journaled
        // delivery costs the log what an unjournaled one does. Recoveries, retries
        // and dead deliveries are what an operator looks for.
        Finish::Done if attempt_no == 1 => {
            tracing::debug!(
                event,
                guid,
                attempt = attempt_no,
                status,
                duration_ms,
                "delivery processed"
            )
        }
        Finish::Done => tracing::info!(
            event,
            guid,
            attempt = attempt_no,
            status,
            duration_ms,
            "delivery processed after {} failed attempts",
            attempt_no - 1
        ),
        Finish::Unhandled => tracing::info!(
            event,
            guid,
            attempt = attempt_no,
            "delivery not processed: no handler answers its event any more"
        ),
        Finish::Retry { at } => tracing::warn!(
            event,
            guid,
            attempt = attempt_no,
            status,
            duration_ms,
            error,
            retry_in_ms = at - time::now(),
            "delivery failed; will retry"
        ),
        Finish::Dead => tracing::warn!(
            event,
            guid,
            attempt = attempt_no,
            status,
            duration_ms,
            error,
            "delivery dead after {max} attempts: replay it once fixed"
        ),
    }
}

/// The delay before retry number `attempts`: the base doubled per attempt made,
/// ±20% jitter (so deliveries failed together do not retry together), at most 1 h.
pub(crate) fn backoff(base: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    let delay = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    delay.mul_f64(0.8 + 0.4 * fastrand::f64())
}

/// The processes' journals, by runtime, for [`shutdown_runtime`].
static ACTIVE: Mutex<Vec<(tokio::runtime::Id, Weak<Control>)>> = Mutex::new(Vec::new());

fn register(control: &Arc<Control>) {
    let runtime = tokio::runtime::Handle::current().id();
    let mut active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
    active.retain(|(_, c)| c.strong_count() > 0);
    active.push((runtime, Arc::downgrade(control)));
}

/// Shuts down every journal whose workers run on the current runtime and that was
/// built before `built_before` (a [`generation`]): what `hookserver::serve` does
/// after its signal. Scoped to the runtime so that servers in other runtimes of the
/// process (tests) keep theirs, and to the journals that existed when the server
/// started, so that a server built after it on the same runtime (the next engine of
/// a test) keeps its own.
pub(crate) async fn shutdown_runtime(grace: Duration, built_before: u64) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let runtime = handle.id();
    let controls: Vec<Arc<Control>> = ACTIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(id, _)| *id == runtime)
        .filter_map(|(_, c)| c.upgrade())
        .filter(|c| c.born < built_before)
        .collect();
    futures_util::future::join_all(controls.iter().map(|c| c.shutdown(grace))).await;
}

/// Starts the dispatcher and the retention task of `control` on the current runtime;
/// `run` attempts one claimed row.
pub(crate) fn start<R, F>(control: Arc<Control>, run: R)
where
    R: Fn(Claimed, OwnedSemaphorePermit) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    register(&control);
    let weak = Arc::downgrade(&control);
    control.store.watch(Box::new(move || {
        if let Some(control) = weak.upgrade() {
            control.wake();
        }
    }));
    tokio::spawn(retention(Arc::downgrade(&control)));
    tokio::spawn(dispatch(control, run));
}

async fn dispatch<R, F>(control: Arc<Control>, run: R)
where
    R: Fn(Claimed, OwnedSemaphorePermit) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    while !control.is_stopping() {
        // A free slot first: a claimed row starts at once, its lease running.
        let first = tokio::select! {
            permit = Arc::clone(&control.permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = control.wake.notified() => continue,
        };
        if control.is_stopping() {
            return;
        }
        let mut permits = vec![first];
        while permits.len() < CLAIM_BATCH {
            match Arc::clone(&control.permits).try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let now = time::now();
        let claims = control
            .store
            .claim(permits.len(), now, time::after(now, control.lease))
            .await;
        let claims = match claims {
            Ok(claims) => claims,
            Err(e) => {
                control.warnings.warn("journal claim failed", e);
                drop(permits);
                tokio::time::sleep(CLAIM_ERROR_PAUSE).await;
                continue;
            }
        };
        let full = claims.claimed.len() == permits.len();
        for (row, permit) in claims.claimed.into_iter().zip(permits.drain(..)) {
            control.started(Claim {
                id: row.id,
                attempt: row.attempts,
            });
            tokio::spawn(run(row, permit));
        }
        drop(permits);
        if full {
            continue;
        }
        // Nothing more is due: sleep until the next row is, a wake-up, or the poll.
        let until_due = claims.next_due.map_or(POLL, |due| {
            Duration::from_millis(u64::try_from(due - time::now()).unwrap_or(0))
        });
        let nap = until_due.min(POLL);
        if !nap.is_zero() {
            tokio::select! {
                () = control.wake.notified() => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }
}

/// Deletes finished rows past the retention, in batches, while the journal lives.
async fn retention(control: Weak<Control>) {
    loop {
        let Some(strong) = control.upgrade() else {
            return;
        };
        if strong.is_stopping() {
            return;
        }
        let retention = strong.settings.retention;
        let cutoff = time::now() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match delete_finished(&*strong.store, cutoff).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "journal retention: old deliveries deleted"),
            Err(e) => strong.warnings.warn("journal retention failed", e),
        }
        drop(strong);
        // Hourly, or sooner for a retention shorter than a few hours.
        let every = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        tokio::time::sleep(every).await;
    }
}

/// Deletes finished rows older than `before`, a batch per transaction.
pub(crate) async fn delete_finished(store: &dyn Store, before: i64) -> Result<u64, JournalError> {
    let mut total = 0;
    loop {
        let deleted = store.delete_finished(before, RETENTION_BATCH).await?;
        total += deleted as u64;
        if deleted < RETENTION_BATCH {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(5);
        for attempts in 1..=12u32 {
            let nominal = (base * 2u32.pow(attempts - 1)).min(MAX_BACKOFF);
            for _ in 0..50 {
                let d = backoff(base, attempts);
                assert!(
                    d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                    "{attempts}: {d:?}"
                );
            }
        }
        assert!(backoff(base, u32::MAX) <= MAX_BACKOFF.mul_f64(1.2));
    }
}
