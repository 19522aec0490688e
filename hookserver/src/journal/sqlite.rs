//! The embedded engine: one SQLite file in WAL mode, `synchronous = FULL`.
//!
//! Every write goes through one thread of its own ("hookserver-journal"), which
//! takes every command that arrived while the last commit was syncing and runs them
//! in one transaction with one sync: group commit, so the number of `fsync`s tracks
//! the number of bursts, not of deliveries. Reads (`list`, `show`, `stats`) use a
//! second connection on tokio's blocking pool, so a long listing never holds up an
//! insert. No SQLite call runs on the async runtime's worker threads.

use super::{
    DeliveryState, JournalEntry, JournalError, JournalStats, ListFilter, ReplayOutcome,
    StoredDelivery,
    store::{
        self, AttemptRecord, Claim, Claimed, Claims, EntryId, Finish, GuidRecord, Inserted,
        NewEntry, Store,
    },
    stored, time,
};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, params};
use std::{
    fs::{File, OpenOptions},
    io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};
use tokio::sync::oneshot;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;
/// How long a statement waits for another connection's lock (the command line
/// reading the file, say) before it fails: under the 5 s the pipeline gives a write.
const BUSY_TIMEOUT: Duration = Duration::from_secs(4);
/// At most this many commands share one transaction.
const MAX_BATCH: usize = 1024;

/// Two tables: `deliveries`, the small row that changes (state, attempts, lease,
/// outcome), many to a page, so the updates of a batch share their pages; and
/// `delivery_bodies`, written once and never updated, so a finish rewrites a few
/// hundred bytes, not the body's page.
const MIGRATION_1: &str = "
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    hook_id TEXT NOT NULL,
    guid TEXT NOT NULL,
    event TEXT NOT NULL,
    action TEXT,
    received_at INTEGER NOT NULL,
    client_ip TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_status INTEGER,
    last_error TEXT,
    last_duration_ms INTEGER,
    finished_at INTEGER
);
CREATE UNIQUE INDEX deliveries_key ON deliveries (guid, hook_id);
CREATE INDEX deliveries_queued ON deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_running ON deliveries (lease_until) WHERE state = 'running';
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE delivery_bodies (
    id INTEGER PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
    headers BLOB NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The catch-up's state: a watermark per target, and the redeliveries asked for per
/// GUID (forgotten once GitHub no longer keeps the GUID).
const MIGRATION_2: &str = "
CREATE TABLE catchup_watermarks (
    target TEXT PRIMARY KEY,
    delivered_at INTEGER NOT NULL
);
CREATE TABLE catchup_requests (
    target TEXT NOT NULL,
    guid TEXT NOT NULL,
    asked INTEGER NOT NULL,
    last_asked_at INTEGER NOT NULL,
    PRIMARY KEY (target, guid)
);
CREATE INDEX catchup_requests_last ON catchup_requests (last_asked_at);
";

/// Rows queued or running: what `MAX_PENDING` counts (each half served by its
/// partial index).
const COUNT_PENDING: &str = "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'queued') \
     + (SELECT COUNT(*) FROM deliveries WHERE state = 'running')";

/// How long the WAL may grow. Under steady writes the checkpointer never catches up
/// with the writer's end of the log, and SQLite only rewinds a log that is wholly
/// copied: without a rewind the WAL would grow for as long as the load lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalBounds {
    /// How often the checkpointer copies the WAL back into the database file.
    pub(crate) checkpoint_every: Duration,
    /// A WAL longer than this many frames (a page each) after a checkpoint is
    /// rewound by the writer.
    pub(crate) rewind_frames: i64,
    /// What SQLite truncates a rewound WAL to, so that a burst's log does not keep
    /// its disk space.
    pub(crate) size_limit: i64,
}

impl WalBounds {
    /// A pass every 100 ms; a rewind past 64 MiB of 4 KiB pages, the file kept at
    /// 64 MiB.
    ///
    /// A rewind makes deliveries wait for the writer's last copy and sync of the
    /// database file: 1 to 3 ms here, about once a second under full load. Short
    /// passes keep each of the checkpointer's own syncs small. A log kept near one
    /// size is written over in place, so syncing it changes no file metadata; a log
    /// grown to a gigabyte and truncated far below made the rewind and the commit
    /// after it stall for 300 ms each.
    pub(crate) const DEFAULT: Self = Self {
        checkpoint_every: Duration::from_millis(100),
        rewind_frames: 16 * 1024,
        size_limit: 64 * 1024 * 1024,
    };
}

/// At most this many passes back to back before the writer is asked to rewind.
const CATCH_UP_PASSES: u32 = 8;
/// A pass that leaves at most this many frames (4 MiB of 4 KiB pages) ends the
/// catching up: the writer's share of the rewind is then a millisecond or two.
const SMALL_LEFTOVER: i64 = 1024;

type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

enum Command {
    Insert(NewEntry, Reply<Inserted>),
    Claim {
        limit: usize,
        now: i64,
        lease_until: i64,
        reply: Reply<Claims>,
    },
    Finish {
        claim: Claim,
        finish: Finish,
        attempt: AttemptRecord,
        now: i64,
        reply: Reply<()>,
    },
    Release(Vec<Claim>, i64, Reply<()>),
    DeleteFinished(i64, usize, Reply<usize>),
    Replay(String, i64, Reply<ReplayOutcome>),
    /// Nothing to write: answered once its batch's transaction (and so the write
    /// lock) is taken and committed, or with why not.
    Probe(Reply<()>),
    CatchupAsked {
        target: String,
        guid: String,
        now: i64,
        reply: Reply<()>,
    },
    CatchupAdvance {
        target: String,
        watermark: i64,
        forget_before: i64,
        reply: Reply<()>,
    },
}

/// The SQLite engine's handle: a queue to the writer thread and the read connection.
pub(crate) struct SqliteStore {
    writer: mpsc::Sender<Command>,
    reader: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the journal at `path`, migrating its schema, and
    /// starts the writer thread. Blocking: called once, at start-up.
    pub(crate) fn open(path: &Path) -> Result<Self, JournalError> {
        Self::open_with(path, WalBounds::DEFAULT)
    }

    /// [`SqliteStore::open`] with other bounds on the WAL (tests make them small).
    pub(crate) fn open_with(path: &Path, wal: WalBounds) -> Result<Self, JournalError> {
        let unavailable = |e: rusqlite::Error| JournalError::open(path, e);
        let mut conn = Connection::open(path).map_err(unavailable)?;
        configure(&conn, wal.size_limit).map_err(unavailable)?;
        migrate(&mut conn).map_err(unavailable)?;
        let pending: i64 = conn
            .query_row(COUNT_PENDING, [], |r| r.get(0))
            .map_err(unavailable)?;
        // The writer never checkpoints (that would stall the deliveries of its
        // batch); a thread of its own does, passively, beside it.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(unavailable)?;
        let checkpointer = Connection::open(path).map_err(unavailable)?;
        let db_file = db_sync_handle(path).map_err(|e| JournalError::open(path, e))?;
        checkpointer
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(unavailable)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(unavailable)?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
        let (writer, commands) = mpsc::channel();
        let rewind = Arc::new(AtomicBool::new(false));
        let mut thread = Writer {
            conn,
            pending: pending as u64,
            rewind: Arc::clone(&rewind),
        };
        let (stop_checkpoints, checkpoint_stop) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("hookserver-journal".into())
            .spawn(move || {
                thread.run(commands);
                // Every handle is gone: so is the checkpointer, after a last pass.
                drop(stop_checkpoints);
            })
            .map_err(|e| JournalError::Unavailable(format!("cannot start the writer: {e}")))?;
        std::thread::Builder::new()
            .name("hookserver-checkpoint".into())
            .spawn(move || checkpoints(&checkpointer, &db_file, &checkpoint_stop, &rewind, wal))
            .map_err(|e| {
                JournalError::Unavailable(format!("cannot start the checkpointer: {e}"))
            })?;
        Ok(Self {
            writer,
            reader: Arc::new(Mutex::new(reader)),
            path: path.to_owned(),
        })
    }

    fn send<T: Send + 'static>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> BoxFuture<'_, Result<T, JournalError>> {
        let (reply, answer) = oneshot::channel();
        let queued = self.writer.send(command(reply)).is_ok();
        store::writer_answer(queued, answer)
    }

    fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, JournalError>> {
        let reader = Arc::clone(&self.reader);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = reader
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                query(&conn).map_err(JournalError::from)
            })
            .await
            .map_err(|e| JournalError::Unavailable(format!("journal read failed: {e}")))?
        })
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The checkpointer's handle on the database file at `path`, to sync what a pass
/// copied.
///
/// On Unix, closing any descriptor of a file drops every POSIX lock the process
/// holds on it, SQLite's included: another process could then take the file as its
/// own and delete the WAL in use. So such a handle is never closed: there is one
/// per file for the life of the process, shared by every store opened on it.
fn db_sync_handle(path: &Path) -> io::Result<Arc<File>> {
    let open = || OpenOptions::new().write(true).open(path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        static HANDLES: Mutex<Vec<Arc<File>>> = Mutex::new(Vec::new());
        let wanted = std::fs::metadata(path)?;
        // An open handle keeps its file's inode, so (device, inode) names one file.
        let same = |m: &std::fs::Metadata| m.dev() == wanted.dev() && m.ino() == wanted.ino();
        let mut handles = HANDLES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = handles
            .iter()
            .find(|h| h.metadata().is_ok_and(|m| same(&m)))
        {
            return Ok(Arc::clone(handle));
        }
        let handle = Arc::new(open()?);
        handles.push(Arc::clone(&handle));
        Ok(handle)
    }
    #[cfg(not(unix))]
    Ok(Arc::new(open()?))
}

fn configure(conn: &Connection, wal_size_limit: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer. FULL: the WAL is synced at every commit,
    // so a delivery answered 2xx survives a power cut, not just a crash.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the file refuses WAL mode (journal_mode is {mode})"
        )));
    }
    // 16 MiB of page cache (SQLite's default is 2 MiB): the dedupe index is keyed by
    // random GUIDs, so each insert touches a random leaf, and a week of deliveries
    // keeps most of them here rather than in a read per insert.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384; \
             PRAGMA journal_size_limit = {wal_size_limit};"
    ))
}

/// Copies the WAL back into the database file every `checkpoint_every`, without
/// blocking the writer (`PASSIVE`), until the writer stops; and rewinds a log that
/// has grown past its bounds, with the writer's help.
///
/// A rewind needs the whole log copied, and the database file synced, with nothing
/// written after it: so the writer does the last copy and the sync while deliveries
/// wait. To keep that short:
/// - SQLite syncs the database file only after a pass that copied the whole log,
///   so every page a pass leaves dirty would wait for that one sync: this thread
///   syncs the file after each pass instead, beside the writer;
/// - a long log gets passes back to back, each copying what was written during the
///   one before, until what one leaves is small (or [`CATCH_UP_PASSES`] have run);
///   then the writer is asked.
fn checkpoints(
    conn: &Connection,
    db_file: &File,
    stop: &mpsc::Receiver<()>,
    rewind: &AtomicBool,
    bounds: WalBounds,
) {
    let small_leftover = (bounds.rewind_frames / 16).clamp(64, SMALL_LEFTOVER);
    let mut wait = bounds.checkpoint_every;
    // While catching up: the log's length at the previous pass, and passes so far.
    let mut catching_up: Option<(i64, u32)> = None;
    let mut copied_before = 0;
    loop {
        let stopped = matches!(
            stop.recv_timeout(wait),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        // A failed pass (a reader holding an old snapshot) is retried next time.
        // The answer is (busy, frames in the log, frames copied).
        let (frames, copied) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            })
            .unwrap_or((0, 0));
        // The count of frames copied is the log's, across passes: it moved (or the
        // log was rewound) when this pass copied some.
        if copied > 0 && copied != copied_before {
            // A failure is not this thread's to report: SQLite's own sync of the
            // file sees it too, and rewinds nothing until one succeeds.
            let _ = db_file.sync_data();
        }
        copied_before = copied;
        wait = bounds.checkpoint_every;
        catching_up = match catching_up {
            _ if frames <= bounds.rewind_frames => None,
            // What was written during the last pass is what the writer would copy.
            Some((before, passes))
                if frames >= before
                    && (frames - before <= small_leftover || passes >= CATCH_UP_PASSES) =>
            {
                rewind.store(true, Ordering::Relaxed);
                None
            }
            Some((before, passes)) if frames >= before => {
                wait = Duration::ZERO;
                Some((frames, passes + 1))
            }
            // Rewound since (by the writer), or first seen long.
            _ => {
                wait = Duration::ZERO;
                Some((frames, 1))
            }
        };
        if stopped {
            return;
        }
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], one version per transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the journal's schema is version {version}, newer than this hookserver's \
             {SCHEMA_VERSION}: upgrade hookserver"
        )));
    }
    if version < 1 {
        tx.execute_batch(MIGRATION_1)?;
    }
    if version < 2 {
        tx.execute_batch(MIGRATION_2)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// Rows queued or running: kept here, where every change to it is made.
    pending: u64,
    /// Set by the checkpointer when the WAL has grown long: the writer finishes the
    /// checkpoint between two batches, so that its next commit rewinds the log.
    rewind: Arc<AtomicBool>,
}

/// A command's answer, held until its transaction commits.
enum Answer {
    Insert(Reply<Inserted>, rusqlite::Result<Inserted>),
    Claim(Reply<Claims>, rusqlite::Result<Claims>),
    Unit(Reply<()>, rusqlite::Result<()>),
    Count(Reply<usize>, rusqlite::Result<usize>),
    Replay(Reply<ReplayOutcome>, rusqlite::Result<ReplayOutcome>),
}

impl Writer {
    fn run(&mut self, commands: mpsc::Receiver<Command>) {
        // Ends when every handle to the store is gone.
        while let Ok(first) = commands.recv() {
            if self.rewind.swap(false, Ordering::Relaxed) {
                // Only the frames written since the checkpointer's last pass are
                // left to copy. Nothing writes meanwhile, so the checkpoint ends
                // complete (unless a reader holds an old snapshot: then the next
                // long log asks again), and SQLite rewinds the log at the next
                // commit.
                let _ = self
                    .conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match commands.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.run_batch(batch);
        }
    }

    fn run_batch(&mut self, batch: Vec<Command>) {
        let pending_before = self.pending;
        // IMMEDIATE takes the write lock now, waiting for it once (up to the busy
        // timeout) rather than once per statement.
        let tx = match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => return fail_all(batch, &e),
        };
        let mut pending = self.pending;
        let answers: Vec<Answer> = batch
            .into_iter()
            .map(|command| execute(&tx, &mut pending, command))
            .collect();
        match tx.commit() {
            Ok(()) => {
                self.pending = pending;
                answers.into_iter().for_each(Answer::send);
            }
            Err(e) => {
                self.pending = pending_before;
                let error = JournalError::from(e);
                answers.into_iter().for_each(|a| a.fail(&error));
            }
        }
    }
}

fn fail_all(batch: Vec<Command>, e: &rusqlite::Error) {
    let error = JournalError::Unavailable(e.to_string());
    for command in batch {
        match command {
            Command::Insert(_, reply) => drop(reply.send(Err(error.clone()))),
            Command::Claim { reply, .. } => drop(reply.send(Err(error.clone()))),
            Command::Finish { reply, .. }
            | Command::Release(_, _, reply)
            | Command::Probe(reply)
            | Command::CatchupAsked { reply, .. }
            | Command::CatchupAdvance { reply, .. } => drop(reply.send(Err(error.clone()))),
            Command::DeleteFinished(_, _, reply) => drop(reply.send(Err(error.clone()))),
            Command::Replay(_, _, reply) => drop(reply.send(Err(error.clone()))),
        }
    }
}

impl Answer {
    fn send(self) {
        match self {
            Self::Insert(reply, result) => drop(reply.send(result.map_err(Into::into))),
            Self::Claim(reply, result) => drop(reply.send(result.map_err(Into::into))),
            Self::Unit(reply, result) => drop(reply.send(result.map_err(Into::into))),
            Self::Count(reply, result) => drop(reply.send(result.map_err(Into::into))),
            Self::Replay(reply, result) => drop(reply.send(result.map_err(Into::into))),
        }
    }

    /// The transaction did not commit: whatever each command did is undone.
    fn fail(self, error: &JournalError) {
        match self {
            Self::Insert(reply, _) => drop(reply.send(Err(error.clone()))),
            Self::Claim(reply, _) => drop(reply.send(Err(error.clone()))),
            Self::Unit(reply, _) => drop(reply.send(Err(error.clone()))),
            Self::Count(reply, _) => drop(reply.send(Err(error.clone()))),
            Self::Replay(reply, _) => drop(reply.send(Err(error.clone()))),
        }
    }
}

fn execute(tx: &Transaction<'_>, pending: &mut u64, command: Command) -> Answer {
    match command {
        // The caller gave up while this waited for the lock (the pipeline answered
        // 503 after 5 s): nobody acknowledged it, so it is not written. A row written
        // anyway would be processed, and GitHub's redelivery would then be a duplicate.
        Command::Insert(_, reply) if reply.is_closed() => Answer::Insert(
            reply,
            Err(rusqlite::Error::InvalidParameterName(
                "the caller gave up".into(),
            )),
        ),
        Command::Insert(entry, reply) => Answer::Insert(reply, insert(tx, pending, &entry)),
        Command::Probe(reply) => Answer::Unit(reply, Ok(())),
        Command::Claim {
            limit,
            now,
            lease_until,
            reply,
        } => {
            let claims = claim(tx, limit, now, lease_until);
            // An idle moment: recount, so that rows another process queued (a
            // replay from the command line) count against the limit too.
            if matches!(&claims, Ok(c) if c.claimed.is_empty())
                && let Ok(count) = count_pending(tx)
            {
                *pending = count;
            }
            Answer::Claim(reply, claims)
        }
        Command::Finish {
            claim,
            finish,
            attempt,
            now,
            reply,
        } => Answer::Unit(
            reply,
            finish_row(tx, pending, claim, &finish, &attempt, now),
        ),
        Command::Release(claims, now, reply) => Answer::Unit(reply, release(tx, &claims, now)),
        Command::DeleteFinished(before, limit, reply) => {
            Answer::Count(reply, delete_finished(tx, before, limit))
        }
        Command::Replay(guid, now, reply) => Answer::Replay(reply, replay(tx, pending, &guid, now)),
        Command::CatchupAsked {
            target,
            guid,
            now,
            reply,
        } => Answer::Unit(
            reply,
            tx.prepare_cached(
                "INSERT INTO catchup_requests (target, guid, asked, last_asked_at) \
                 VALUES (?1, ?2, 1, ?3) ON CONFLICT (target, guid) \
                 DO UPDATE SET asked = asked + 1, last_asked_at = ?3",
            )
            .and_then(|mut s| s.execute(params![target, guid, now]))
            .map(drop),
        ),
        Command::CatchupAdvance {
            target,
            watermark,
            forget_before,
            reply,
        } => Answer::Unit(
            reply,
            catchup_advance(tx, &target, watermark, forget_before),
        ),
    }
}

fn catchup_advance(
    tx: &Transaction<'_>,
    target: &str,
    watermark: i64,
    forget_before: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO catchup_watermarks (target, delivered_at) VALUES (?1, ?2) \
         ON CONFLICT (target) DO UPDATE SET delivered_at = MAX(delivered_at, ?2)",
    )?
    .execute(params![target, watermark])?;
    tx.prepare_cached("DELETE FROM catchup_requests WHERE last_asked_at < ?1")?
        .execute([forget_before])?;
    Ok(())
}

fn insert(tx: &Transaction<'_>, pending: &mut u64, entry: &NewEntry) -> rusqlite::Result<Inserted> {
    let claimed = entry.claim_until.is_some();
    let state = match (entry.handled, claimed) {
        (false, _) => DeliveryState::Unhandled,
        (true, true) => DeliveryState::Running,
        (true, false) => DeliveryState::Queued,
    };
    let attempts = u32::from(claimed && entry.handled);
    let room = *pending < entry.max_pending;
    if entry.handled && !room {
        // A known delivery is answered as usual (a duplicate costs no room).
        return Ok(match known_state(tx, entry)? {
            None => Inserted::TooManyPending,
            Some((_, known)) => known_outcome(known, entry, false),
        });
    }
    // The common case first: a new delivery, one statement per table.
    let finished_at = (!entry.handled).then_some(entry.received_at);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO deliveries (hook_id, guid, event, action, received_at, client_ip, \
             state, attempts, next_attempt_at, lease_until, finished_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?5, ?9, ?10) \
             ON CONFLICT (guid, hook_id) DO NOTHING",
        )?
        .execute(params![
            entry.hook_id,
            entry.guid,
            entry.event,
            entry.action,
            entry.received_at,
            entry.client_ip,
            state.as_str(),
            attempts,
            entry.claim_until,
            finished_at,
        ])?;
    if inserted == 1 {
        let id = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO delivery_bodies (id, headers, body) VALUES (?1, ?2, ?3)")?
            .execute(params![id, entry.headers, &entry.body[..]])?;
        if !entry.handled {
            return Ok(Inserted::Unhandled);
        }
        *pending += 1;
        return Ok(Inserted::New { id, claimed });
    }
    let Some((id, known)) = known_state(tx, entry)? else {
        // The conflict was on this very key, in this transaction: it exists.
        return Ok(Inserted::AlreadyQueued);
    };
    let outcome = known_outcome(known, entry, true);
    if !matches!(outcome, Inserted::QueuedAgain { .. }) {
        return Ok(outcome);
    }
    // Dead, or unhandled when it had no handler: a person asked GitHub to redeliver
    // it, so it is queued again, from scratch.
    tx.prepare_cached(
        "UPDATE deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4, \
         lease_until = ?5, finished_at = NULL WHERE id = ?1",
    )?
    .execute(params![
        id,
        state.as_str(),
        attempts,
        entry.received_at,
        entry.claim_until
    ])?;
    *pending += 1;
    Ok(Inserted::QueuedAgain { id, claimed })
}

fn known_state(
    tx: &Transaction<'_>,
    entry: &NewEntry,
) -> rusqlite::Result<Option<(EntryId, Option<DeliveryState>)>> {
    tx.prepare_cached("SELECT id, state FROM deliveries WHERE guid = ?1 AND hook_id = ?2")?
        .query_row(params![entry.guid, entry.hook_id], |r| {
            let state: String = r.get(1)?;
            Ok((r.get(0)?, DeliveryState::parse(&state)))
        })
        .optional()
}

/// What a delivery already known gets; `QueuedAgain` (its id a placeholder the
/// caller replaces) when it is to be queued again.
fn known_outcome(known: Option<DeliveryState>, entry: &NewEntry, room: bool) -> Inserted {
    match known {
        Some(DeliveryState::Done) => Inserted::Duplicate,
        Some(DeliveryState::Queued | DeliveryState::Running) => Inserted::AlreadyQueued,
        _ if !entry.handled => Inserted::Unhandled,
        _ if !room => Inserted::TooManyPending,
        _ => Inserted::QueuedAgain {
            id: 0,
            claimed: entry.claim_until.is_some(),
        },
    }
}

fn claim(
    tx: &Transaction<'_>,
    limit: usize,
    now: i64,
    lease_until: i64,
) -> rusqlite::Result<Claims> {
    let claimed = tx
        .prepare_cached(
            "UPDATE deliveries SET state = 'running', attempts = attempts + 1, lease_until = ?3 \
             WHERE id IN (\
                 SELECT id FROM deliveries WHERE state = 'queued' AND next_attempt_at <= ?1 \
                 UNION ALL \
                 SELECT id FROM deliveries WHERE state = 'running' AND lease_until <= ?1 \
                 LIMIT ?2) \
             RETURNING id, guid, client_ip, attempts",
        )?
        .query_map(params![now, limit as i64, lease_until], |r| {
            Ok((r.get::<_, EntryId>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<(EntryId, String, Option<String>, u32)>>>()?;
    let mut body = tx.prepare_cached("SELECT headers, body FROM delivery_bodies WHERE id = ?1")?;
    let claimed = claimed
        .into_iter()
        .map(|(id, guid, client_ip, attempts)| {
            let (headers, body) = body
                .query_row([id], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()?
                .unwrap_or_default();
            Ok(Claimed {
                id,
                guid,
                client_ip,
                headers,
                body: Bytes::from(body),
                attempts,
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next_due: Option<i64> = tx
        .prepare_cached(
            "SELECT MIN(due) FROM (\
                 SELECT MIN(next_attempt_at) AS due FROM deliveries WHERE state = 'queued' \
                 UNION ALL \
                 SELECT MIN(lease_until) FROM deliveries WHERE state = 'running')",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(Claims { claimed, next_due })
}

fn count_pending(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    tx.prepare_cached(COUNT_PENDING)?
        .query_row([], |r| r.get(0))
}

fn finish_row(
    tx: &Transaction<'_>,
    pending: &mut u64,
    claim: Claim,
    finish: &Finish,
    attempt: &AttemptRecord,
    now: i64,
) -> rusqlite::Result<()> {
    let (state, next_attempt_at, finished_at) = match finish {
        Finish::Done => (DeliveryState::Done, None, Some(now)),
        Finish::Unhandled => (DeliveryState::Unhandled, None, Some(now)),
        Finish::Dead => (DeliveryState::Dead, None, Some(now)),
        Finish::Retry { at } => (DeliveryState::Queued, Some(*at), None),
    };
    // Only a row still running is finished: one given back by a shutdown, or
    // claimed again after its lease ran out, belongs to someone else now.
    let changed = tx
        .prepare_cached(
            "UPDATE deliveries SET state = ?2, next_attempt_at = COALESCE(?3, next_attempt_at), \
             lease_until = NULL, finished_at = ?4, last_status = ?5, last_error = ?6, \
             last_duration_ms = ?7 WHERE id = ?1 AND state = 'running' AND attempts = ?8",
        )?
        .execute(params![
            claim.id,
            state.as_str(),
            next_attempt_at,
            finished_at,
            attempt.status,
            attempt.error,
            attempt.duration_ms as i64,
            claim.attempt,
        ])?;
    if changed == 1 && finished_at.is_some() {
        *pending = pending.saturating_sub(1);
    }
    Ok(())
}

fn release(tx: &Transaction<'_>, claims: &[Claim], now: i64) -> rusqlite::Result<()> {
    let mut statement = tx.prepare_cached(
        "UPDATE deliveries SET state = 'queued', next_attempt_at = ?2, lease_until = NULL \
         WHERE id = ?1 AND state = 'running' AND attempts = ?3",
    )?;
    for claim in claims {
        statement.execute(params![claim.id, now, claim.attempt])?;
    }
    Ok(())
}

fn delete_finished(tx: &Transaction<'_>, before: i64, limit: usize) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "DELETE FROM deliveries WHERE id IN (\
             SELECT id FROM deliveries WHERE finished_at IS NOT NULL AND finished_at < ?1 \
             LIMIT ?2)",
    )?
    .execute(params![before, limit as i64])
}

fn replay(
    tx: &Transaction<'_>,
    pending: &mut u64,
    guid: &str,
    now: i64,
) -> rusqlite::Result<ReplayOutcome> {
    let already_queued: usize = tx.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE guid = ?1 AND state IN ('queued', 'running')",
        [guid],
        |r| r.get(0),
    )?;
    let queued = tx.execute(
        "UPDATE deliveries SET state = 'queued', attempts = 0, next_attempt_at = ?2, \
         lease_until = NULL, finished_at = NULL \
         WHERE guid = ?1 AND state IN ('done', 'dead', 'unhandled')",
        params![guid, now],
    )?;
    *pending += queued as u64;
    Ok(ReplayOutcome {
        queued,
        already_queued,
    })
}

const SUMMARY_COLUMNS: &str = "id, hook_id, guid, event, action, received_at, state, attempts, \
     next_attempt_at, last_status, last_error, last_duration_ms, finished_at";

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    let hook_id: String = r.get(1)?;
    let state: String = r.get(6)?;
    Ok(JournalEntry {
        id: r.get(0)?,
        hook_id: hook_id.parse().ok(),
        guid: r.get(2)?,
        event: r.get(3)?,
        action: r.get(4)?,
        received_at: time::from_millis(r.get(5)?),
        state: DeliveryState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                rusqlite::types::Type::Text,
                format!("unknown state {state:?}").into(),
            )
        })?,
        attempts: r.get(7)?,
        next_attempt_at: time::from_millis(r.get(8)?),
        last_status: r.get(9)?,
        last_error: r.get(10)?,
        last_duration: r
            .get::<_, Option<i64>>(11)?
            .map(|ms| Duration::from_millis(ms.max(0) as u64)),
        finished_at: r.get::<_, Option<i64>>(12)?.map(time::from_millis),
    })
}

impl Store for SqliteStore {
    fn insert(&self, entry: NewEntry) -> BoxFuture<'_, Result<Inserted, JournalError>> {
        self.send(|reply| Command::Insert(entry, reply))
    }

    fn claim(
        &self,
        limit: usize,
        now: i64,
        lease_until: i64,
    ) -> BoxFuture<'_, Result<Claims, JournalError>> {
        self.send(|reply| Command::Claim {
            limit,
            now,
            lease_until,
            reply,
        })
    }

    fn finish(
        &self,
        claim: Claim,
        finish: Finish,
        attempt: AttemptRecord,
        now: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        self.send(|reply| Command::Finish {
            claim,
            finish,
            attempt,
            now,
            reply,
        })
    }

    fn release(&self, claims: Vec<Claim>, now: i64) -> BoxFuture<'_, Result<(), JournalError>> {
        self.send(|reply| Command::Release(claims, now, reply))
    }

    fn delete_finished(
        &self,
        before: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, JournalError>> {
        self.send(|reply| Command::DeleteFinished(before, limit, reply))
    }

    fn list(&self, filter: ListFilter) -> BoxFuture<'_, Result<Vec<JournalEntry>, JournalError>> {
        self.read(move |conn| {
            let mut sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM deliveries WHERE (?1 IS NULL OR state = ?1) \
                 AND (?2 IS NULL OR event = ?2) AND (?3 IS NULL OR received_at >= ?3) \
                 AND (?4 IS NULL OR received_at < ?4) ORDER BY id DESC"
            );
            sql.push_str(" LIMIT ?5");
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(
                params![
                    filter.state.map(DeliveryState::as_str),
                    filter.event,
                    filter.since.map(time::to_millis),
                    filter.until.map(time::to_millis),
                    filter.limit.map_or(-1, |n| n as i64),
                ],
                entry_from_row,
            )?;
            rows.collect()
        })
    }

    fn show(&self, guid: String) -> BoxFuture<'_, Result<Vec<StoredDelivery>, JournalError>> {
        self.read(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {SUMMARY_COLUMNS}, b.headers, b.body, d.client_ip \
                 FROM deliveries d JOIN delivery_bodies b USING (id) \
                 WHERE d.guid = ?1 ORDER BY id"
            ))?;
            let rows = statement.query_map([guid], |r| {
                let headers: Vec<u8> = r.get(13)?;
                Ok(StoredDelivery {
                    entry: entry_from_row(r)?,
                    headers: stored::decode_headers(&headers).map_err(|why| {
                        rusqlite::Error::FromSqlConversionFailure(
                            13,
                            rusqlite::types::Type::Blob,
                            why.into(),
                        )
                    })?,
                    body: Bytes::from(r.get::<_, Vec<u8>>(14)?),
                    client_ip: r
                        .get::<_, Option<String>>(15)?
                        .and_then(|ip| ip.parse().ok()),
                })
            })?;
            rows.collect()
        })
    }

    fn replay(&self, guid: String, now: i64) -> BoxFuture<'_, Result<ReplayOutcome, JournalError>> {
        self.send(|reply| Command::Replay(guid, now, reply))
    }

    fn catchup_watermark(
        &self,
        target: String,
    ) -> BoxFuture<'_, Result<Option<i64>, JournalError>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT delivered_at FROM catchup_watermarks WHERE target = ?1",
                [target],
                |r| r.get(0),
            )
            .optional()
        })
    }

    fn catchup_lookup(
        &self,
        target: String,
        hook_id: Option<String>,
        guids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<GuidRecord>, JournalError>> {
        self.read(move |conn| {
            let mut journaled = conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE guid = ?1 \
                 AND (?2 IS NULL OR hook_id = ?2 OR hook_id = ''))",
            )?;
            let mut asked = conn.prepare_cached(
                "SELECT asked, last_asked_at FROM catchup_requests \
                 WHERE target = ?1 AND guid = ?2",
            )?;
            guids
                .iter()
                .map(|guid| {
                    let (asked, last_asked) = asked
                        .query_row(params![target, guid], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                        .map_or((0, None), |(n, at)| (n, Some(at)));
                    Ok(GuidRecord {
                        journaled: journaled.query_row(params![guid, hook_id], |r| r.get(0))?,
                        asked,
                        last_asked,
                    })
                })
                .collect()
        })
    }

    fn catchup_asked(
        &self,
        target: String,
        guid: String,
        now: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        self.send(|reply| Command::CatchupAsked {
            target,
            guid,
            now,
            reply,
        })
    }

    fn catchup_advance(
        &self,
        target: String,
        watermark: i64,
        forget_before: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        self.send(|reply| Command::CatchupAdvance {
            target,
            watermark,
            forget_before,
            reply,
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), JournalError>> {
        self.send(Command::Probe)
    }

    fn stats(&self) -> BoxFuture<'_, Result<JournalStats, JournalError>> {
        self.read(|conn| {
            let mut stats = JournalStats::default();
            let mut statement =
                conn.prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let state: String = row.get(0)?;
                let count: u64 = row.get(1)?;
                match DeliveryState::parse(&state) {
                    Some(DeliveryState::Queued) => stats.queued = count,
                    Some(DeliveryState::Running) => stats.running = count,
                    Some(DeliveryState::Done) => stats.done = count,
                    Some(DeliveryState::Dead) => stats.dead = count,
                    Some(DeliveryState::Unhandled) => stats.unhandled = count,
                    None => {}
                }
            }
            stats.oldest_pending = conn
                .query_row(
                    "SELECT MIN(received_at) FROM deliveries WHERE state IN ('queued', 'running')",
                    [],
                    |r| r.get::<_, Option<i64>>(0),
                )?
                .map(time::from_millis);
            stats.retrying = conn.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'queued' AND attempts > 0",
                [],
                |r| r.get(0),
            )?;
            Ok(stats)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(tag: &str) -> (SqliteStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "hookserver-sqlite-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        (SqliteStore::open(&dir.join("j.db")).unwrap(), dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_under_steady_writes_is_rewound_and_kept_near_its_limit() {
        use std::sync::atomic::AtomicUsize;
        let dir = std::env::temp_dir().join(format!(
            "hookserver-sqlite-wal-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let bounds = WalBounds {
            checkpoint_every: Duration::from_millis(50),
            rewind_frames: 128,
            size_limit: 1024 * 1024,
        };
        let store = Arc::new(SqliteStore::open_with(&dir.join("j.db"), bounds).unwrap());
        let wal = dir.join("j.db-wal");
        let written = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // A body of 3 KB fills a page of its own: each insert is at least a page of
        // log. 32 inserters keep the writer busy, so the checkpointer never finds
        // the log idle and wholly copied, which is when SQLite rewinds it unasked.
        let body = Bytes::from(vec![b' '; 3 * 1024]);
        let inserters: Vec<_> = (0..32)
            .map(|task| {
                let (store, written, stop, body) = (
                    Arc::clone(&store),
                    Arc::clone(&written),
                    Arc::clone(&stop),
                    body.clone(),
                );
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let mut new = entry(&format!("g{task}-{n}"), None);
                        new.body = body.clone();
                        new.handled = false;
                        store.insert(new).await.unwrap();
                        written.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let count = || written.load(Ordering::Relaxed);
        // Past the first checkpoints and rewinds, watch the log while 40,000 more
        // pages of bodies (160 MB) go through it.
        let warm_up = std::time::Instant::now() + 10 * bounds.checkpoint_every;
        while count() < 2_000 || std::time::Instant::now() < warm_up {
            assert!(std::time::Instant::now() < deadline, "inserts too slow");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let start = count();
        let mut largest = 0;
        while count() - start < 40_000 {
            assert!(std::time::Instant::now() < deadline, "inserts too slow");
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for inserter in inserters {
            inserter.await.unwrap();
        }
        // Rewound every few thousand frames, it stays within tens of MiB (10 to
        // 23 seen here); never rewound, it would hold all 160 MB.
        assert!(
            largest < 64 * 1024 * 1024,
            "the WAL grew to {largest} bytes: it was not rewound under load"
        );
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    // Elsewhere there are no POSIX locks to keep, and each store has its own.
    #[cfg(unix)]
    #[test]
    fn stores_on_one_file_share_the_one_handle_that_syncs_it() {
        let (first, dir) = temp_store("handle");
        let path = dir.join("j.db");
        let second = SqliteStore::open(&path).unwrap();
        let handle = db_sync_handle(&path).unwrap();
        // The two checkpointers and this call: one descriptor, never closed, so
        // that dropping a store cannot drop the locks SQLite holds on the file.
        assert!(
            Arc::strong_count(&handle) >= 3,
            "{}",
            Arc::strong_count(&handle)
        );
        drop((first, second));
        assert!(Arc::ptr_eq(&handle, &db_sync_handle(&path).unwrap()));
        // Another file has a handle of its own.
        let (other, other_dir) = temp_store("handle-other");
        let other_handle = db_sync_handle(&other_dir.join("j.db")).unwrap();
        assert!(!Arc::ptr_eq(&handle, &other_handle));
        drop(other);
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(other_dir).unwrap();
    }

    fn entry(guid: &str, claim_until: Option<i64>) -> NewEntry {
        NewEntry {
            hook_id: "1".into(),
            guid: guid.into(),
            event: "push".into(),
            action: None,
            received_at: 1_000,
            client_ip: None,
            headers: b"x-github-event: push\n".to_vec(),
            body: Bytes::from_static(b"{}"),
            handled: true,
            claim_until,
            max_pending: 10,
        }
    }

    fn record() -> AttemptRecord {
        AttemptRecord {
            status: Some(200),
            error: None,
            duration_ms: 1,
        }
    }

    #[tokio::test]
    async fn the_end_of_an_attempt_whose_lease_ran_out_changes_nothing() {
        let (store, dir) = temp_store("lease");
        // Claimed by a first attempt whose lease ends at 2,000...
        let Inserted::New { id, claimed: true } =
            store.insert(entry("g", Some(2_000))).await.unwrap()
        else {
            panic!("not claimed");
        };
        // ...not due before then...
        assert!(
            store
                .claim(10, 1_999, 9_000)
                .await
                .unwrap()
                .claimed
                .is_empty()
        );
        // ...then claimed again, as attempt 2, by another worker.
        let claims = store.claim(10, 2_000, 9_000).await.unwrap();
        assert_eq!(claims.claimed.len(), 1);
        assert_eq!((claims.claimed[0].id, claims.claimed[0].attempts), (id, 2));
        assert_eq!(&claims.claimed[0].body[..], b"{}");
        // The first attempt ends late: its claim is gone, so is its say.
        let stale = Claim { id, attempt: 1 };
        store
            .finish(stale, Finish::Done, record(), 3_000)
            .await
            .unwrap();
        store.release(vec![stale], 3_000).await.unwrap();
        let rows = store.list(ListFilter::new()).await.unwrap();
        assert_eq!(
            (rows[0].state, rows[0].attempts),
            (DeliveryState::Running, 2)
        );
        // The second attempt's end counts.
        let current = Claim { id, attempt: 2 };
        store
            .finish(current, Finish::Done, record(), 3_000)
            .await
            .unwrap();
        let rows = store.list(ListFilter::new()).await.unwrap();
        assert_eq!(rows[0].state, DeliveryState::Done);
        assert_eq!(store.stats().await.unwrap().done, 1);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn pending_rows_are_counted_against_the_limit_and_freed_by_their_end() {
        let (store, dir) = temp_store("pending");
        let mut entries = Vec::new();
        for n in 0..10 {
            let inserted = store.insert(entry(&format!("g{n}"), None)).await.unwrap();
            assert!(
                matches!(inserted, Inserted::New { claimed: false, .. }),
                "{inserted:?}"
            );
            entries.push(inserted);
        }
        assert_eq!(
            store.insert(entry("g10", None)).await.unwrap(),
            Inserted::TooManyPending
        );
        // A known one is still answered as such when the queue is full.
        assert_eq!(
            store.insert(entry("g3", None)).await.unwrap(),
            Inserted::AlreadyQueued
        );
        let claims = store.claim(1, 5_000, 9_000).await.unwrap();
        let claim = Claim {
            id: claims.claimed[0].id,
            attempt: 1,
        };
        store
            .finish(claim, Finish::Done, record(), 5_000)
            .await
            .unwrap();
        assert!(matches!(
            store.insert(entry("g10", None)).await.unwrap(),
            Inserted::New { .. }
        ));
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn retention_deletes_only_finished_rows_older_than_the_cutoff_and_their_bodies() {
        let (store, dir) = temp_store("retention");
        let Inserted::New { id, .. } = store.insert(entry("old", Some(9_000))).await.unwrap()
        else {
            panic!()
        };
        store
            .finish(Claim { id, attempt: 1 }, Finish::Done, record(), 2_000)
            .await
            .unwrap();
        store.insert(entry("pending", None)).await.unwrap();
        let mut unhandled = entry("unhandled", None);
        unhandled.handled = false;
        unhandled.received_at = 5_000;
        store.insert(unhandled).await.unwrap();
        assert_eq!(store.delete_finished(3_000, 10).await.unwrap(), 1);
        let left: Vec<String> = store
            .list(ListFilter::new())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.guid)
            .collect();
        assert_eq!(left, ["unhandled", "pending"]);
        assert!(store.show("old".into()).await.unwrap().is_empty());
        let bodies: i64 = store
            .read(|c| c.query_row("SELECT COUNT(*) FROM delivery_bodies", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(bodies, 2, "the body went with its row");
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
