//! The storage trait every journal engine implements, and the records it trades in.
//!
//! Shaped for both engines: SQLite (one writer thread, group commit) and PostgreSQL
//! (a pool, `ON CONFLICT DO NOTHING`, `FOR UPDATE SKIP LOCKED`). Every operation is
//! one call that an engine can batch with its neighbours, times are Unix
//! milliseconds chosen by the caller (so a test and the engine agree on "now"),
//! and the answers say what happened, not how.

use super::{JournalEntry, JournalError, JournalStats, ListFilter, ReplayOutcome, StoredDelivery};
use bytes::Bytes;
use futures_util::future::BoxFuture;

/// The row id an engine gives a delivery.
pub(crate) type EntryId = i64;

/// One claim on a row: the row and the attempt it was claimed for. A finish or a
/// release names its claim, so the end of an attempt whose lease ran out (and whose
/// row another worker claimed again, with the next attempt number) changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Claim {
    pub(crate) id: EntryId,
    pub(crate) attempt: u32,
}

/// What the pipeline asks to record: a delivery that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct NewEntry {
    /// The deduplication key: `X-GitHub-Hook-ID`, `""` when the delivery had none.
    pub(crate) hook_id: String,
    pub(crate) guid: String,
    pub(crate) event: String,
    pub(crate) action: Option<String>,
    pub(crate) received_at: i64,
    pub(crate) client_ip: Option<String>,
    /// The headers a handler can read, encoded by `stored::encode_headers`.
    pub(crate) headers: Vec<u8>,
    pub(crate) body: Bytes,
    /// Whether a handler answers this event: `false` records it as `unhandled`.
    pub(crate) handled: bool,
    /// Claim the row for this process at once (the first attempt runs here, now)
    /// until this time, instead of queueing it for the workers.
    pub(crate) claim_until: Option<i64>,
    /// Refuse a new pending row when this many are pending already.
    pub(crate) max_pending: u64,
}

/// What recording a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// A new row, queued (or claimed, when asked).
    New { id: EntryId, claimed: bool },
    /// A new or known delivery that no handler answers.
    Unhandled,
    /// Already `done`: nothing to do again.
    Duplicate,
    /// Already queued or running: not queued twice.
    AlreadyQueued,
    /// Known, and finished without success (`dead`) or unhandled when a handler
    /// now exists: queued again with its attempts reset (or claimed, when asked).
    QueuedAgain { id: EntryId, claimed: bool },
    /// As many deliveries as allowed are pending: nothing written.
    TooManyPending,
}

/// A row a worker has claimed: everything needed to run its handler again.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub(crate) id: EntryId,
    pub(crate) guid: String,
    pub(crate) client_ip: Option<String>,
    pub(crate) headers: Vec<u8>,
    pub(crate) body: Bytes,
    /// Attempts so far, this one included.
    pub(crate) attempts: u32,
}

/// The claims of one call, and when the next row falls due (a queued row's next
/// attempt or a running row's lease), so the caller knows how long to sleep.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    pub(crate) claimed: Vec<Claimed>,
    pub(crate) next_due: Option<i64>,
}

/// How an attempt ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttemptRecord {
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) duration_ms: u64,
}

/// What becomes of a row after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finish {
    /// A final answer (any status but a `5xx`).
    Done,
    /// No handler answers it any more.
    Unhandled,
    /// Try again at this time.
    Retry { at: i64 },
    /// Out of attempts, or unreadable.
    Dead,
}

/// What the journal knows of a GUID the catch-up found missing in GitHub's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GuidRecord {
    /// A row with this GUID exists (for the hook asked about, or with no hook id).
    pub(crate) journaled: bool,
    /// Redeliveries asked for so far.
    pub(crate) asked: u32,
    /// When the last was asked for.
    pub(crate) last_asked: Option<i64>,
}

/// The storage behind a journal. Every method is one round trip that the engine may
/// batch with concurrent ones; none blocks the async runtime's worker threads.
pub(crate) trait Store: Send + Sync + 'static {
    /// Records a delivery, durably (synced to disk, or committed by the server)
    /// before the future completes, deduplicating on (hook id, GUID).
    fn insert(&self, entry: NewEntry) -> BoxFuture<'_, Result<Inserted, JournalError>>;

    /// Claims up to `limit` rows that are due at `now` (queued and due, or running
    /// with an expired lease), leasing each until `lease_until`.
    fn claim(
        &self,
        limit: usize,
        now: i64,
        lease_until: i64,
    ) -> BoxFuture<'_, Result<Claims, JournalError>>;

    /// Records the end of an attempt on a row this process claimed, if the claim
    /// still holds.
    fn finish(
        &self,
        claim: Claim,
        finish: Finish,
        attempt: AttemptRecord,
        now: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>>;

    /// Gives claimed rows back to the queue, due at `now` (a shutdown that could not
    /// wait for their handlers), where the claims still hold.
    fn release(&self, claims: Vec<Claim>, now: i64) -> BoxFuture<'_, Result<(), JournalError>>;

    /// Deletes at most `limit` finished rows (done, dead, unhandled) finished before
    /// `before`; returns how many went.
    fn delete_finished(
        &self,
        before: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, JournalError>>;

    /// Rows matching `filter`, newest first, without their headers and bodies.
    fn list(&self, filter: ListFilter) -> BoxFuture<'_, Result<Vec<JournalEntry>, JournalError>>;

    /// Every row with this GUID (one per hook that received it), in full.
    fn show(&self, guid: String) -> BoxFuture<'_, Result<Vec<StoredDelivery>, JournalError>>;

    /// Puts every finished row with this GUID back in the queue, attempts reset.
    fn replay(&self, guid: String, now: i64) -> BoxFuture<'_, Result<ReplayOutcome, JournalError>>;

    /// Counts by state, and the oldest pending delivery.
    fn stats(&self) -> BoxFuture<'_, Result<JournalStats, JournalError>>;

    /// `Ok` when a write could be made now (the readiness route's check): takes
    /// what a write takes (SQLite's write lock; PostgreSQL's primary, not a
    /// read-only session) and writes nothing.
    fn probe(&self) -> BoxFuture<'_, Result<(), JournalError>>;

    /// Calls `wake` whenever a row may have become due through another process (a
    /// delivery queued by another instance, a replay from the command line), for as
    /// long as the store lives. Engines without such news (SQLite: one writer
    /// process) leave it to the dispatcher's poll.
    fn watch(&self, wake: Box<dyn Fn() + Send + Sync>) {
        drop(wake);
    }

    /// The catch-up's watermark for `target`: the `delivered_at` (Unix ms) before
    /// which its last passes left nothing to do.
    fn catchup_watermark(&self, target: String)
    -> BoxFuture<'_, Result<Option<i64>, JournalError>>;

    /// For each of `guids`: whether a row has it (with `hook_id`, or no hook id; any
    /// hook when `None`), and the redeliveries asked for it under `target`.
    fn catchup_lookup(
        &self,
        target: String,
        hook_id: Option<String>,
        guids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<GuidRecord>, JournalError>>;

    /// Notes that a redelivery of `guid` was asked for at `now`.
    fn catchup_asked(
        &self,
        target: String,
        guid: String,
        now: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>>;

    /// Moves the watermark of `target` to `watermark` (never back), and forgets the
    /// requests last made before `forget_before` (GitHub no longer keeps those).
    fn catchup_advance(
        &self,
        target: String,
        watermark: i64,
        forget_before: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>>;

    /// Whether this process may run `target`'s catch-up pass now: it holds, or just
    /// took, the engine's lock for it. One process is the only writer of a SQLite
    /// journal, so it always may.
    fn catchup_lead(&self, target: String) -> BoxFuture<'_, Result<bool, JournalError>> {
        drop(target);
        Box::pin(async { Ok(true) })
    }

    /// Lets another process take the catch-up over (at shutdown).
    fn catchup_resign(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The answer of an engine's writer (SQLite's thread, PostgreSQL's task) to a
/// command: `queued` says whether the command reached it.
pub(crate) fn writer_answer<T: Send + 'static>(
    queued: bool,
    answer: tokio::sync::oneshot::Receiver<Result<T, JournalError>>,
) -> BoxFuture<'static, Result<T, JournalError>> {
    Box::pin(async move {
        let stopped = || JournalError::Unavailable("the journal writer has stopped".into());
        if !queued {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    })
}
