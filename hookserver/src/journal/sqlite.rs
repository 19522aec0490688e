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
    store::{AttemptRecord, ClaimId, Claimed, Claims, EntryId, Finish, Inserted, NewEntry, Store},
    stored, time,
};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, params};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};
use tokio::sync::oneshot;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;
/// How long a statement waits for another connection's lock (the command line
/// reading the file, say) before it fails: under the 5 s the pipeline gives a write.
const BUSY_TIMEOUT: Duration = Duration::from_secs(4);
/// At most this many commands share one transaction.
const MAX_BATCH: usize = 1024;

const MIGRATION_1: &str = "
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    hook_id TEXT NOT NULL,
    guid TEXT NOT NULL,
    event TEXT NOT NULL,
    action TEXT,
    received_at INTEGER NOT NULL,
    client_ip TEXT,
    headers BLOB NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_status INTEGER,
    last_error TEXT,
    last_duration_ms INTEGER,
    finished_at INTEGER,
    UNIQUE (hook_id, guid)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX deliveries_received ON deliveries (received_at);
CREATE TABLE journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Pending states: what `MAX_PENDING` counts.
const PENDING: &str = "state IN ('queued', 'running')";

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
        claim: ClaimId,
        finish: Finish,
        attempt: AttemptRecord,
        now: i64,
        reply: Reply<()>,
    },
    Release(Vec<ClaimId>, i64, Reply<()>),
    DeleteFinished(i64, usize, Reply<usize>),
    Replay(String, i64, Reply<ReplayOutcome>),
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
        let unavailable = |e: rusqlite::Error| JournalError::open(path, e);
        let mut conn = Connection::open(path).map_err(unavailable)?;
        configure(&conn).map_err(unavailable)?;
        migrate(&mut conn).map_err(unavailable)?;
        let pending: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM deliveries WHERE {PENDING}"),
                [],
                |r| r.get(0),
            )
            .map_err(unavailable)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(unavailable)?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
        let (writer, commands) = mpsc::channel();
        let mut thread = Writer {
            conn,
            pending: pending as u64,
        };
        std::thread::Builder::new()
            .name("hookserver-journal".into())
            .spawn(move || thread.run(commands))
            .map_err(|e| JournalError::Unavailable(format!("cannot start the writer: {e}")))?;
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
        let sent = self.writer.send(command(reply));
        Box::pin(async move {
            sent.map_err(|_| JournalError::Unavailable("the journal writer has stopped".into()))?;
            answer.await.unwrap_or_else(|_| {
                Err(JournalError::Unavailable(
                    "the journal writer has stopped".into(),
                ))
            })
        })
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

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer. FULL: the WAL is synced at every commit,
    // so a delivery answered 2xx survives a power cut, not just a crash.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the file refuses WAL mode (journal_mode is {mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
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
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// Rows queued or running: kept here, where every change to it is made.
    pending: u64,
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
            Command::Finish { reply, .. } | Command::Release(_, _, reply) => {
                drop(reply.send(Err(error.clone())))
            }
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
        Command::Release(ids, now, reply) => Answer::Unit(reply, release(tx, &ids, now)),
        Command::DeleteFinished(before, limit, reply) => {
            Answer::Count(reply, delete_finished(tx, before, limit))
        }
        Command::Replay(guid, now, reply) => Answer::Replay(reply, replay(tx, pending, &guid, now)),
    }
}

fn insert(tx: &Transaction<'_>, pending: &mut u64, entry: &NewEntry) -> rusqlite::Result<Inserted> {
    let known: Option<(EntryId, String)> = tx
        .query_row(
            "SELECT id, state FROM deliveries WHERE hook_id = ?1 AND guid = ?2",
            params![entry.hook_id, entry.guid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let claimed = entry.claim_until.is_some();
    let state = match (entry.handled, claimed) {
        (false, _) => DeliveryState::Unhandled,
        (true, true) => DeliveryState::Running,
        (true, false) => DeliveryState::Queued,
    };
    let attempts = u32::from(claimed && entry.handled);
    let room = *pending < entry.max_pending;
    match known {
        None => {
            if entry.handled && !room {
                return Ok(Inserted::TooManyPending);
            }
            let finished_at = (!entry.handled).then_some(entry.received_at);
            tx.prepare_cached(
                "INSERT INTO deliveries (hook_id, guid, event, action, received_at, client_ip, \
                 headers, body, state, attempts, next_attempt_at, lease_until, finished_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?5, ?11, ?12)",
            )?
            .execute(params![
                entry.hook_id,
                entry.guid,
                entry.event,
                entry.action,
                entry.received_at,
                entry.client_ip,
                entry.headers,
                &entry.body[..],
                state.as_str(),
                attempts,
                entry.claim_until,
                finished_at,
            ])?;
            if !entry.handled {
                return Ok(Inserted::Unhandled);
            }
            *pending += 1;
            Ok(Inserted::New {
                id: tx.last_insert_rowid(),
                claimed,
            })
        }
        Some((_, known)) => match DeliveryState::parse(&known) {
            Some(DeliveryState::Done) => Ok(Inserted::Duplicate),
            Some(DeliveryState::Queued | DeliveryState::Running) => Ok(Inserted::AlreadyQueued),
            // Dead, or unhandled when it had no handler: a person asked GitHub to
            // redeliver it, so it is queued again, from scratch.
            _ if !entry.handled => Ok(Inserted::Unhandled),
            _ if !room => Ok(Inserted::TooManyPending),
            _ => {
                let id = known_id(tx, entry)?;
                tx.execute(
                    "UPDATE deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4, \
                     lease_until = ?5, finished_at = NULL WHERE id = ?1",
                    params![
                        id,
                        state.as_str(),
                        attempts,
                        entry.received_at,
                        entry.claim_until
                    ],
                )?;
                *pending += 1;
                Ok(Inserted::QueuedAgain { id, claimed })
            }
        },
    }
}

fn known_id(tx: &Transaction<'_>, entry: &NewEntry) -> rusqlite::Result<EntryId> {
    tx.query_row(
        "SELECT id FROM deliveries WHERE hook_id = ?1 AND guid = ?2",
        params![entry.hook_id, entry.guid],
        |r| r.get(0),
    )
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
             RETURNING id, guid, client_ip, headers, body, attempts",
        )?
        .query_map(params![now, limit as i64, lease_until], |r| {
            Ok(Claimed {
                id: r.get(0)?,
                guid: r.get(1)?,
                client_ip: r.get(2)?,
                headers: r.get(3)?,
                body: Bytes::from(r.get::<_, Vec<u8>>(4)?),
                attempts: r.get(5)?,
            })
        })?
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
    tx.prepare_cached(&format!("SELECT COUNT(*) FROM deliveries WHERE {PENDING}"))?
        .query_row([], |r| r.get(0))
}

fn finish_row(
    tx: &Transaction<'_>,
    pending: &mut u64,
    claim: ClaimId,
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
    // Only a row still running under this claim is finished: one given back by a
    // shutdown, or claimed again after its lease ran out, belongs to someone else.
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
            claim.attempts,
        ])?;
    if changed == 1 && finished_at.is_some() {
        *pending = pending.saturating_sub(1);
    }
    Ok(())
}

fn release(tx: &Transaction<'_>, claims: &[ClaimId], now: i64) -> rusqlite::Result<()> {
    let mut statement = tx.prepare_cached(
        "UPDATE deliveries SET state = 'queued', next_attempt_at = ?2, lease_until = NULL \
         WHERE id = ?1 AND state = 'running' AND attempts = ?3",
    )?;
    for claim in claims {
        statement.execute(params![claim.id, now, claim.attempts])?;
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
        &format!("SELECT COUNT(*) FROM deliveries WHERE guid = ?1 AND {PENDING}"),
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
        claim: ClaimId,
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

    fn release(&self, claims: Vec<ClaimId>, now: i64) -> BoxFuture<'_, Result<(), JournalError>> {
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
                 AND (?4 IS NULL OR received_at < ?4) ORDER BY received_at DESC, id DESC"
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
                "SELECT {SUMMARY_COLUMNS}, headers, body, client_ip FROM deliveries \
                 WHERE guid = ?1 ORDER BY id"
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
                    &format!("SELECT MIN(received_at) FROM deliveries WHERE {PENDING}"),
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
