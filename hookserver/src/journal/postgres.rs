//! The shared engine: one PostgreSQL database for any number of hookserver instances.
//!
//! Every instance writes and claims in the same table. Deduplication is the unique
//! key on (hook id, GUID) with `INSERT ... ON CONFLICT DO NOTHING`; a claim is an
//! `UPDATE` of rows picked `FOR UPDATE SKIP LOCKED`, so workers of all instances
//! claim side by side without waiting for each other, each row under a lease; an
//! instance that dies leaves leases that run out, and another instance claims those
//! rows. Inserts and the ends of attempts go through one writer task per instance
//! that takes every write queued while its last transaction committed and runs them
//! in one transaction (group commit), pipelined, the inserts in key order so that
//! two instances' batches never deadlock.
//! A delivery queued for the workers sends `NOTIFY hookserver_journal` in its
//! transaction; every instance `LISTEN`s on a connection of its own and wakes its
//! dispatcher (which also polls, for a notification lost with a connection).
//!
//! The engine runs on a small tokio runtime of its own ("hookserver-postgres"): its
//! connections do not depend on the runtime of the caller (tests start many), the
//! journal can be opened outside any runtime, and a request that gives up (the
//! pipeline's 5 s) never cancels a commit half-way. Every operation is bounded by a
//! timeout; a connection that timed out or broke is closed, not reused, and a new
//! one is made on the next use: when the database comes back, so does the journal.

use super::{
    DeliveryState, JournalEntry, JournalError, JournalStats, ListFilter, ReplayOutcome,
    StoredDelivery,
    settings::redact,
    store::{
        self, AttemptRecord, Claim, Claimed, Claims, Finish, GuidRecord, Inserted, NewEntry, Store,
    },
    stored, time,
};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::{
    fmt,
    future::Future,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_postgres::{
    AsyncMessage, Client, Config, GenericClient, NoTls, Row, Statement, Transaction,
};

/// The newest schema version this code knows.
const SCHEMA_VERSION: i32 = 2;
/// The advisory lock held (for its transaction) while migrating: "hookserv".
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7365_7276;
/// The class of the catch-up's advisory locks (`pg_try_advisory_lock(class, key)`), the
/// key being a hash of the schema and the target: "hook" "catc".
const CATCHUP_LOCK_CLASS: i32 = 0x686f_6f6b;
/// The channel a queued delivery is announced on.
const CHANNEL: &str = "hookserver_journal";
/// Writes (insert, claim, finish...) give up after this: under the 5 s the
/// pipeline gives a write, so the answer is our `503`, not its timeout's.
const WRITE_TIMEOUT: Duration = Duration::from_secs(4);
/// Reads (`list`, `show`, `stats`) give up after this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A new connection gives up after this (when the URL does not say).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Opening the journal (connecting and migrating) gives up after this.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// At most this many inserts share one transaction.
const MAX_BATCH: usize = 256;
/// The listening connection is made again this long after it was lost.
const LISTEN_RETRY: Duration = Duration::from_secs(1);
/// Connections beyond the workers' own: the writer, the dispatcher's claims.
const EXTRA_CONNECTIONS: usize = 2;
/// Set on every connection: the server's own bounds, for a client that vanished
/// mid-transaction (its row locks would otherwise be held until TCP noticed).
const SESSION: &str = "SET statement_timeout = '30s'; \
     SET idle_in_transaction_session_timeout = '30s'; SET lock_timeout = '10s'";

const MIGRATIONS: [(i32, &str); 2] = [
    (
        1,
        "
CREATE TABLE hookserver_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hook_id TEXT NOT NULL,
    guid TEXT NOT NULL,
    event TEXT NOT NULL,
    action TEXT,
    received_at BIGINT NOT NULL,
    client_ip TEXT,
    headers BYTEA NOT NULL,
    body BYTEA NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_status INTEGER,
    last_error TEXT,
    last_duration_ms BIGINT,
    finished_at BIGINT,
    UNIQUE (hook_id, guid)
);
CREATE INDEX hookserver_deliveries_due ON hookserver_deliveries (next_attempt_at)
    WHERE state = 'queued';
CREATE INDEX hookserver_deliveries_lease ON hookserver_deliveries (lease_until)
    WHERE state = 'running';
CREATE INDEX hookserver_deliveries_finished ON hookserver_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX hookserver_deliveries_received ON hookserver_deliveries (received_at);
CREATE INDEX hookserver_deliveries_guid ON hookserver_deliveries (guid);
",
    ),
    (
        2,
        "
CREATE TABLE hookserver_catchup_watermarks (
    target TEXT PRIMARY KEY,
    delivered_at BIGINT NOT NULL
);
CREATE TABLE hookserver_catchup_requests (
    target TEXT NOT NULL,
    guid TEXT NOT NULL,
    asked INTEGER NOT NULL,
    last_asked_at BIGINT NOT NULL,
    PRIMARY KEY (target, guid)
);
CREATE INDEX hookserver_catchup_requests_last ON hookserver_catchup_requests (last_asked_at);
",
    ),
];

/// A PostgreSQL journal URL, checked: `Debug` shows it with the password redacted.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PgUrl {
    /// As given, with `sslmode` normalized: holds the password.
    url: String,
    redacted: String,
    /// Every spelling of the password in the URL, scrubbed from messages.
    secrets: Vec<String>,
    tls: bool,
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl PgUrl {
    /// Checks `url` as tokio-postgres reads it. `sslmode=require` (and libpq's
    /// `verify-ca`, `verify-full`) is TLS with the server's certificate verified
    /// against the system's roots; `disable`, `allow`, `prefer` or none is without.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let redacted = redact(url);
        let secrets = secrets(url);
        let scrub = |text: String| scrub(text, &secrets);
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut tls = false;
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", mode)) => {
                    tls = match mode {
                        "disable" | "allow" | "prefer" => false,
                        "require" | "verify-ca" | "verify-full" => true,
                        _ => {
                            return Err(format!(
                                "{redacted:?}: PostgreSQL sslmode is disable, prefer, require, \
                                 verify-ca or verify-full"
                            ));
                        }
                    }
                }
                _ => params.push(pair),
            }
        }
        params.push(if tls {
            "sslmode=require"
        } else {
            "sslmode=disable"
        });
        let normalized = format!("{base}?{}", params.join("&"));
        Config::from_str(&normalized).map_err(|e| {
            scrub(format!(
                "{redacted:?}: not a PostgreSQL URL hookserver can use: {e}"
            ))
        })?;
        Ok(Self {
            url: normalized,
            redacted,
            secrets,
            tls,
        })
    }

    fn config(&self) -> Result<Config, JournalError> {
        let mut config = Config::from_str(&self.url).map_err(|e| self.error(e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("hookserver");
        }
        // A database host that vanished (no RST) is noticed in seconds, not hours.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.keepalives_interval(Duration::from_secs(2));
        config.keepalives_retries(3);
        config.tcp_user_timeout(Duration::from_secs(15));
        Ok(config)
    }

    /// A failure, as a journal error without the password.
    fn error(&self, e: impl fmt::Display) -> JournalError {
        JournalError::Unavailable(scrub(format!("PostgreSQL: {e}"), &self.secrets))
    }

    /// A failure of the driver's, with its causes ("error connecting to server:
    /// Connection refused").
    fn pg(&self, e: &tokio_postgres::Error) -> JournalError {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        self.error(text)
    }
}

/// The password as it may appear in the URL: after `user:`, or as `password=`.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let before_query = rest.split('?').next().unwrap_or(rest);
        if let Some((userinfo, _)) = before_query.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push(password.to_owned());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && key.eq_ignore_ascii_case("password")
            {
                found.push(value.to_owned());
            }
        }
    }
    let decoded: Vec<String> = found
        .iter()
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found
}

fn scrub(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

/// The PostgreSQL engine's handle.
pub(crate) struct PostgresStore {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Write>,
    handle: tokio::runtime::Handle,
    _runtime: EngineRuntime,
}

/// The engine's runtime, shut down in the background when dropped, so that dropping
/// the store (or failing to open it) is fine anywhere, in async code too.
struct EngineRuntime(Option<tokio::runtime::Runtime>);

impl Drop for EngineRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shared.url)
            .finish()
    }
}

/// What the engine's tasks share.
struct Shared {
    url: PgUrl,
    config: Config,
    tls: Option<tls::MakeRustls>,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    /// The connections holding the catch-up's advisory locks, by target, while this
    /// instance leads.
    leader: tokio::sync::Mutex<std::collections::HashMap<String, Client>>,
}

/// A write waiting for the writer.
enum Write {
    Insert(Insert),
    Finish(FinishWrite),
}

/// An insert waiting for the writer.
struct Insert {
    entry: NewEntry,
    reply: oneshot::Sender<Result<Inserted, JournalError>>,
}

/// The end of an attempt, waiting for the writer.
struct FinishWrite {
    claim: Claim,
    finish: Finish,
    attempt: AttemptRecord,
    now: i64,
    reply: oneshot::Sender<Result<(), JournalError>>,
}

impl Write {
    /// Whether its caller gave up (the pipeline answered 503 after 5 s): an insert
    /// nobody acknowledged need not be written. An end is written regardless.
    fn abandoned(&self) -> bool {
        match self {
            Self::Insert(insert) => insert.reply.is_closed(),
            Self::Finish(_) => false,
        }
    }
}

impl PostgresStore {
    /// Connects to the database at `url`, migrates its schema under an advisory lock
    /// (several instances may start at once), and starts the engine's runtime, with
    /// a pool of connections sized for `workers`. Blocking: called at start-up.
    pub(crate) fn open(url: &PgUrl, workers: usize) -> Result<Self, JournalError> {
        let config = url.config()?;
        let tls = if url.tls {
            Some(tls::MakeRustls::new().map_err(|e| url.error(format!("TLS: {e}")))?)
        } else {
            None
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hookserver-postgres")
            .enable_all()
            .build()
            .map_err(|e| url.error(format!("cannot start the engine's runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let runtime = EngineRuntime(Some(runtime));
        let shared = Arc::new(Shared {
            url: url.clone(),
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(workers.max(1) + EXTRA_CONNECTIONS)),
            leader: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        });
        // Waiting with a std channel rather than `block_on` works inside a runtime
        // too (`Parts::new` may run in one): the engine's own thread does the work.
        let (done, opened) = std::sync::mpsc::channel();
        let migrating = Arc::clone(&shared);
        handle.spawn(async move {
            let result = match tokio::time::timeout(OPEN_TIMEOUT, migrating.migrate()).await {
                Ok(result) => result,
                Err(_) => Err(migrating
                    .url
                    .error(format!("no answer within {} s", OPEN_TIMEOUT.as_secs()))),
            };
            drop(done.send(result));
        });
        let fail = |e: JournalError| match e {
            JournalError::Unavailable(why) => {
                JournalError::Unavailable(format!("cannot open {}: {why}", url.redacted))
            }
            other => other,
        };
        opened
            .recv()
            .map_err(|_| url.error("the engine stopped while opening"))
            .and_then(|r| r)
            .map_err(fail)?;
        let (writer, inserts) = mpsc::unbounded_channel();
        handle.spawn(write(Arc::clone(&shared), inserts));
        Ok(Self {
            shared,
            writer,
            handle,
            _runtime: runtime,
        })
    }

    /// Queues a write for the writer task and waits for its answer.
    fn send<T: Send + 'static>(
        &self,
        write: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> Write,
    ) -> BoxFuture<'static, Result<T, JournalError>> {
        let (reply, answer) = oneshot::channel();
        let queued = self.writer.send(write(reply)).is_ok();
        store::writer_answer(queued, answer)
    }

    /// Runs `op` on the engine's runtime within `limit`.
    fn run<T, F>(&self, limit: Duration, op: F) -> BoxFuture<'static, Result<T, JournalError>>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, JournalError>> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let task = self.handle.spawn(async move {
            match tokio::time::timeout(limit, op).await {
                Ok(result) => result,
                Err(_) => Err(shared
                    .url
                    .error(format!("no answer within {} s", limit.as_secs()))),
            }
        });
        Box::pin(async move {
            task.await
                .map_err(|e| JournalError::Unavailable(format!("journal task failed: {e}")))?
        })
    }
}

/// A pooled connection: back to the pool when dropped after a success or an
/// error of the database's (the connection is fine), closed otherwise.
struct Conn<'a> {
    client: Option<Client>,
    shared: &'a Shared,
    keep: bool,
    _permit: OwnedSemaphorePermit,
}

impl Conn<'_> {
    fn client(&mut self) -> Result<&mut Client, JournalError> {
        self.client
            .as_mut()
            .ok_or_else(|| JournalError::Unavailable("connection already closed".into()))
    }

    /// The result of using the connection, which decides whether it is kept.
    fn done<T>(&mut self, result: Result<T, tokio_postgres::Error>) -> Result<T, JournalError> {
        match result {
            Ok(value) => {
                self.keep = true;
                Ok(value)
            }
            Err(e) => {
                self.keep = e.as_db_error().is_some();
                Err(self.shared.url.pg(&e))
            }
        }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && self.keep
            && !client.is_closed()
        {
            self.shared.idle_clients().push(client);
        }
    }
}

impl Shared {
    fn idle_clients(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection from the pool, or a new one when none is idle.
    async fn conn(&self) -> Result<Conn<'_>, JournalError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| JournalError::Unavailable("the pool is closed".into()))?;
        let idle = loop {
            let Some(client) = self.idle_clients().pop() else {
                break None;
            };
            if !client.is_closed() {
                break Some(client);
            }
        };
        let client = match idle {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(Conn {
            client: Some(client),
            shared: self,
            keep: false,
            _permit: permit,
        })
    }

    /// A new connection, driven by a task of the engine's runtime.
    async fn connect(&self) -> Result<Client, JournalError> {
        let client = self
            .connect_polled(|mut connection| async move {
                // Notices and the like are not ours; the end (or an error) is the
                // end of the connection, which the client then sees as closed.
                while let Some(Ok(_)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                }
            })
            .await?;
        client
            .batch_execute(SESSION)
            .await
            .map_err(|e| self.url.pg(&e))?;
        Ok(client)
    }

    /// Connects, handing the raw message stream to `drive`.
    async fn connect_polled<D, F>(&self, drive: D) -> Result<Client, JournalError>
    where
        D: FnOnce(Box<dyn Polled>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let (client, driver) = match &self.tls {
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| self.url.pg(&e))?;
                (client, drive(Box::new(connection)))
            }
            None => {
                let (client, connection) = self
                    .config
                    .connect(NoTls)
                    .await
                    .map_err(|e| self.url.pg(&e))?;
                (client, drive(Box::new(connection)))
            }
        };
        tokio::spawn(driver);
        Ok(client)
    }

    /// Brings the schema to [`SCHEMA_VERSION`], under a transaction-scoped advisory
    /// lock: of N instances starting at once, one migrates and the others wait, then
    /// find the schema current.
    async fn migrate(&self) -> Result<(), JournalError> {
        let mut conn = self.conn().await?;
        let result = migrate(conn.client()?).await;
        match result {
            Ok(Ok(())) => conn.done(Ok(())),
            Ok(Err(newer)) => Err(newer),
            Err(e) => conn.done(Err(e)),
        }
    }
}

/// A connection's message stream, whatever its TLS.
trait Polled: Send {
    fn poll_message(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<AsyncMessage, tokio_postgres::Error>>>;
}

impl<S, T> Polled for tokio_postgres::Connection<S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    fn poll_message(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<AsyncMessage, tokio_postgres::Error>>> {
        tokio_postgres::Connection::poll_message(self, cx)
    }
}

async fn migrate(client: &mut Client) -> Result<Result<(), JournalError>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS hookserver_schema (\
             version INTEGER PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let version: i32 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM hookserver_schema",
            &[],
        )
        .await?
        .try_get(0)?;
    if version > SCHEMA_VERSION {
        return Ok(Err(JournalError::Unavailable(format!(
            "the journal's schema is version {version}, newer than this hookserver's \
             {SCHEMA_VERSION}: upgrade hookserver"
        ))));
    }
    for (number, sql) in MIGRATIONS {
        if number > version {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO hookserver_schema (version) VALUES ($1)",
                &[&number],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Text PostgreSQL can store: it refuses NUL in `TEXT` (a payload's `action` or a
/// handler's error text can hold one).
fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}").into()
    } else {
        s.into()
    }
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The writer task: group commit of the inserts and of the attempts' ends.
async fn write(shared: Arc<Shared>, mut writes: mpsc::UnboundedReceiver<Write>) {
    let mut pending = Pending::default();
    while let Some(first) = writes.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        batch.retain(|write| !write.abandoned());
        let (mut inserts, mut finishes) = (Vec::new(), Vec::new());
        for write in batch {
            match write {
                Write::Insert(insert) => inserts.push(insert),
                Write::Finish(finish) => finishes.push(finish),
            }
        }
        // One order for every instance's batches: their row locks never cross.
        inserts.sort_by(|a, b| {
            (&a.entry.hook_id, &a.entry.guid).cmp(&(&b.entry.hook_id, &b.entry.guid))
        });
        finishes.sort_by_key(|finish| finish.claim.id);
        let entries: Vec<&NewEntry> = inserts.iter().map(|i| &i.entry).collect();
        let ends: Vec<&FinishWrite> = finishes.iter().collect();
        let written = bounded(&shared, write_batch(&shared, &mut pending, &entries, &ends)).await;
        match written {
            Ok(results) => {
                for (insert, result) in inserts.into_iter().zip(results) {
                    drop(insert.reply.send(Ok(result)));
                }
                for finish in finishes {
                    drop(finish.reply.send(Ok(())));
                }
            }
            Err(e) if entries.len() + ends.len() > 1 => {
                // One bad write fails its whole transaction: do them one by one, so
                // that it fails alone.
                drop(e);
                for insert in inserts {
                    let one = bounded(
                        &shared,
                        write_batch(&shared, &mut pending, &[&insert.entry], &[]),
                    )
                    .await;
                    drop(insert.reply.send(one.and_then(|mut r| {
                        r.pop()
                            .ok_or_else(|| JournalError::Unavailable("no result".into()))
                    })));
                }
                for finish in finishes {
                    let one =
                        bounded(&shared, write_batch(&shared, &mut pending, &[], &[&finish])).await;
                    drop(finish.reply.send(one.map(drop)));
                }
            }
            Err(e) => {
                for insert in inserts {
                    drop(insert.reply.send(Err(e.clone())));
                }
                for finish in finishes {
                    drop(finish.reply.send(Err(e.clone())));
                }
            }
        }
    }
}

async fn bounded<T>(
    shared: &Shared,
    op: impl Future<Output = Result<T, JournalError>>,
) -> Result<T, JournalError> {
    match tokio::time::timeout(WRITE_TIMEOUT, op).await {
        Ok(result) => result,
        Err(_) => Err(shared
            .url
            .error(format!("no answer within {} s", WRITE_TIMEOUT.as_secs()))),
    }
}

/// One transaction: `entries` inserted (their answers, in order), then `ends`
/// written.
async fn write_batch(
    shared: &Shared,
    pending: &mut Pending,
    entries: &[&NewEntry],
    ends: &[&FinishWrite],
) -> Result<Vec<Inserted>, JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let max_pending = entries.first().map_or(u64::MAX, |entry| entry.max_pending);
    let result = async {
        let tx = client.transaction().await?;
        let mut batch = Batch {
            pending: pending.estimate(max_pending),
            counted: false,
            notify: false,
        };
        // The common case in one round trip: the leading deliveries that fit under
        // the limit even if every one is new are inserted pipelined, in the batch's
        // order. Those that were known, and the rest, take the one-by-one path, in
        // order too (deadlock-free: a row it locks was committed before this
        // transaction's inserts waited for anything).
        let fitting = batch.fitting(&tx, entries).await?;
        let (insert, finish) =
            futures_util::future::try_join(tx.prepare(INSERT), tx.prepare(FINISH)).await?;
        let ids = futures_util::future::try_join_all(
            entries[..fitting]
                .iter()
                .map(|entry| insert_new(&tx, &insert, entry)),
        )
        .await?;
        let mut out = Vec::with_capacity(entries.len());
        for (entry, id) in entries[..fitting].iter().zip(ids) {
            out.push(match id {
                Some(id) => batch.inserted(entry, id),
                None => batch.insert(&tx, &insert, entry).await?,
            });
        }
        for entry in &entries[fitting..] {
            out.push(batch.insert(&tx, &insert, entry).await?);
        }
        futures_util::future::try_join_all(ends.iter().map(|end| finish_row(&tx, &finish, end)))
            .await?;
        if batch.notify {
            tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
        }
        tx.commit().await?;
        pending.committed(&batch);
        Ok(out)
    }
    .await;
    conn.done(result)
}

/// The writer's idea of how many rows are queued or running, so that a batch need
/// not count them: counting costs a scan of two indexes, a batch's largest cost.
#[derive(Default)]
struct Pending {
    /// The last count, plus this instance's new rows since (never less its ends,
    /// so it only errs high), and when it was counted.
    known: Option<(u64, std::time::Instant)>,
}

impl Pending {
    /// How long a count stands in for one. Only when it is under half the limit:
    /// a refusal always follows a fresh count, and for other instances' rows to pass
    /// the limit unseen they would have to add half of it within this time.
    const FRESH_FOR: Duration = Duration::from_secs(1);

    fn estimate(&self, max_pending: u64) -> Option<u64> {
        self.known
            .filter(|(count, at)| *count < max_pending / 2 && at.elapsed() < Self::FRESH_FOR)
            .map(|(count, _)| count)
    }

    fn committed(&mut self, batch: &Batch) {
        self.known = match (batch.pending, batch.counted, self.known) {
            (Some(count), true, _) => Some((count, std::time::Instant::now())),
            (Some(count), false, Some((_, at))) => Some((count, at)),
            _ => self.known,
        };
    }
}

/// A new delivery's row; `RETURNING` nothing when its key is known.
const INSERT: &str = "INSERT INTO hookserver_deliveries (hook_id, guid, event, action, \
     received_at, client_ip, headers, body, state, attempts, next_attempt_at, lease_until, \
     finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $5, $11, $12) \
     ON CONFLICT (hook_id, guid) DO NOTHING RETURNING id";

/// The state a new row starts in.
fn new_state(entry: &NewEntry) -> DeliveryState {
    match (entry.handled, entry.claim_until.is_some()) {
        (false, _) => DeliveryState::Unhandled,
        (true, true) => DeliveryState::Running,
        (true, false) => DeliveryState::Queued,
    }
}

/// Inserts `entry` with the prepared [`INSERT`]: its row's id, or `None` when the
/// key is known.
async fn insert_new(
    tx: &Transaction<'_>,
    insert: &Statement,
    entry: &NewEntry,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let claimed = entry.claim_until.is_some();
    let attempts = i32::from(claimed && entry.handled);
    let finished_at = (!entry.handled).then_some(entry.received_at);
    let action = entry.action.as_deref().map(text);
    let row = tx
        .query_opt(
            insert,
            &[
                &text(&entry.hook_id),
                &text(&entry.guid),
                &text(&entry.event),
                &action,
                &entry.received_at,
                &entry.client_ip,
                &entry.headers,
                &&entry.body[..],
                &new_state(entry).as_str(),
                &attempts,
                &entry.claim_until,
                &finished_at,
            ],
        )
        .await?;
    row.map(|row| row.try_get(0)).transpose()
}

/// What one insert transaction knows beyond its rows.
struct Batch {
    /// Rows queued or running, counted once per transaction when first needed
    /// (at most up to the limit), then kept up to date by this transaction's rows.
    /// Other instances' concurrent transactions are not seen: with N instances the
    /// limit may be passed by what their batches add at the same moment.
    pending: Option<u64>,
    /// Whether this transaction counted them.
    counted: bool,
    /// Whether a row was queued for the workers: notify them at commit.
    notify: bool,
}

impl Batch {
    async fn room<C: GenericClient>(
        &mut self,
        tx: &C,
        entry: &NewEntry,
    ) -> Result<bool, tokio_postgres::Error> {
        let pending = match self.pending {
            Some(pending) => pending,
            None => {
                let limit = i64::try_from(entry.max_pending).unwrap_or(i64::MAX);
                // One scan per partial index (`state IN (...)` would scan the table).
                let counted: i64 = tx
                    .query_one(
                        "SELECT (SELECT count(*) FROM (SELECT 1 FROM hookserver_deliveries \
                         WHERE state = 'queued' LIMIT $1) AS queued) \
                         + (SELECT count(*) FROM (SELECT 1 FROM hookserver_deliveries \
                         WHERE state = 'running' LIMIT $1) AS running)",
                        &[&limit],
                    )
                    .await?
                    .try_get(0)?;
                let counted = u64::try_from(counted).unwrap_or(0);
                self.pending = Some(counted);
                self.counted = true;
                counted
            }
        };
        Ok(pending < entry.max_pending)
    }

    /// How many of `entries`, from the first, fit under the limit even if every
    /// one is new (an unhandled delivery takes no room).
    async fn fitting<C: GenericClient>(
        &mut self,
        tx: &C,
        entries: &[&NewEntry],
    ) -> Result<usize, tokio_postgres::Error> {
        let Some(handled) = entries.iter().find(|entry| entry.handled) else {
            return Ok(entries.len());
        };
        self.room(tx, handled).await?;
        let mut pending = self.pending.unwrap_or(0);
        let mut fitting = 0;
        for entry in entries {
            if entry.handled {
                if pending >= entry.max_pending {
                    break;
                }
                pending += 1;
            }
            fitting += 1;
        }
        Ok(fitting)
    }

    /// The answer for a delivery [`insert_new`] wrote as row `id`.
    fn inserted(&mut self, entry: &NewEntry, id: i64) -> Inserted {
        if !entry.handled {
            return Inserted::Unhandled;
        }
        let claimed = entry.claim_until.is_some();
        self.queued(claimed);
        Inserted::New { id, claimed }
    }

    fn queued(&mut self, claimed: bool) {
        self.pending = self.pending.map(|p| p + 1);
        if !claimed {
            self.notify = true;
        }
    }

    /// The same decisions as the SQLite engine's `insert`.
    async fn insert(
        &mut self,
        tx: &Transaction<'_>,
        insert: &Statement,
        entry: &NewEntry,
    ) -> Result<Inserted, tokio_postgres::Error> {
        let claimed = entry.claim_until.is_some();
        let state = new_state(entry);
        let attempts = i32::from(claimed && entry.handled);
        let room = !entry.handled || self.room(tx, entry).await?;
        // Twice at most: a row deleted by retention between the two statements is
        // inserted anew the second time.
        for _ in 0..2 {
            if room && let Some(id) = insert_new(tx, insert, entry).await? {
                return Ok(self.inserted(entry, id));
            }
            let known = tx
                .query_opt(
                    "SELECT id, state FROM hookserver_deliveries \
                     WHERE hook_id = $1 AND guid = $2 FOR UPDATE",
                    &[&text(&entry.hook_id), &text(&entry.guid)],
                )
                .await?;
            let Some(known) = known else {
                if room {
                    continue;
                }
                return Ok(Inserted::TooManyPending);
            };
            let id: i64 = known.try_get(0)?;
            let known: String = known.try_get(1)?;
            return match DeliveryState::parse(&known) {
                Some(DeliveryState::Done) => Ok(Inserted::Duplicate),
                Some(DeliveryState::Queued | DeliveryState::Running) => Ok(Inserted::AlreadyQueued),
                // Dead, or unhandled when it had no handler: queued again, from scratch.
                _ if !entry.handled => Ok(Inserted::Unhandled),
                _ if !room => Ok(Inserted::TooManyPending),
                _ => {
                    tx.execute(
                        "UPDATE hookserver_deliveries SET state = $2, attempts = $3, \
                         next_attempt_at = $4, lease_until = $5, finished_at = NULL \
                         WHERE id = $1",
                        &[
                            &id,
                            &state.as_str(),
                            &attempts,
                            &entry.received_at,
                            &entry.claim_until,
                        ],
                    )
                    .await?;
                    self.queued(claimed);
                    Ok(Inserted::QueuedAgain { id, claimed })
                }
            };
        }
        // Inserted, deleted, inserted: a row cannot keep vanishing; say "busy".
        Ok(Inserted::TooManyPending)
    }
}

const SUMMARY_COLUMNS: &str = "id, hook_id, guid, event, action, received_at, state, attempts, \
     next_attempt_at, last_status, last_error, last_duration_ms, finished_at";

fn entry_from_row(r: &Row) -> Result<JournalEntry, tokio_postgres::Error> {
    let hook_id: String = r.try_get(1)?;
    let state: String = r.try_get(6)?;
    let attempts: i32 = r.try_get(7)?;
    let last_status: Option<i32> = r.try_get(9)?;
    Ok(JournalEntry {
        id: r.try_get(0)?,
        hook_id: hook_id.parse().ok(),
        guid: r.try_get(2)?,
        event: r.try_get(3)?,
        action: r.try_get(4)?,
        received_at: time::from_millis(r.try_get(5)?),
        // An unknown state (a newer schema's) reads as dead: shown, never run.
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Dead),
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: time::from_millis(r.try_get(8)?),
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: r.try_get(10)?,
        last_duration: r
            .try_get::<_, Option<i64>>(11)?
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        finished_at: r.try_get::<_, Option<i64>>(12)?.map(time::from_millis),
    })
}

fn claimed_from_row(r: &Row) -> Result<Claimed, tokio_postgres::Error> {
    let attempts: i32 = r.try_get(5)?;
    Ok(Claimed {
        id: r.try_get(0)?,
        guid: r.try_get(1)?,
        client_ip: r.try_get(2)?,
        headers: r.try_get(3)?,
        body: Bytes::from(r.try_get::<_, Vec<u8>>(4)?),
        attempts: u32::try_from(attempts).unwrap_or(0),
    })
}

async fn claim(
    shared: &Shared,
    limit: usize,
    now: i64,
    lease_until: i64,
) -> Result<Claims, JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let result = async {
        let rows = client
            .query(
                "WITH due AS (\
                     SELECT id FROM hookserver_deliveries \
                     WHERE (state = 'queued' AND next_attempt_at <= $1) \
                        OR (state = 'running' AND lease_until <= $1) \
                     LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE hookserver_deliveries AS d \
                 SET state = 'running', attempts = d.attempts + 1, lease_until = $3 \
                 FROM due WHERE d.id = due.id \
                 RETURNING d.id, d.guid, d.client_ip, d.headers, d.body, d.attempts",
                &[&now, &limit, &lease_until],
            )
            .await?;
        let claimed = rows
            .iter()
            .map(claimed_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_due: Option<i64> = client
            .query_one(
                "SELECT LEAST(\
                     (SELECT min(next_attempt_at) FROM hookserver_deliveries \
                      WHERE state = 'queued'), \
                     (SELECT min(lease_until) FROM hookserver_deliveries \
                      WHERE state = 'running'))",
                &[],
            )
            .await?
            .try_get(0)?;
        Ok(Claims { claimed, next_due })
    }
    .await;
    conn.done(result)
}

/// The end of an attempt. Only a row still running under its claim is finished:
/// one given back by a shutdown, or claimed again after its lease ran out, belongs
/// to someone else.
const FINISH: &str = "UPDATE hookserver_deliveries SET state = $2, \
     next_attempt_at = COALESCE($3, next_attempt_at), lease_until = NULL, \
     finished_at = $4, last_status = $5, last_error = $6, last_duration_ms = $7 \
     WHERE id = $1 AND state = 'running' AND attempts = $8";

/// Writes `end` with the prepared [`FINISH`].
async fn finish_row(
    tx: &Transaction<'_>,
    finish: &Statement,
    end: &FinishWrite,
) -> Result<u64, tokio_postgres::Error> {
    let (state, next_attempt_at, finished_at) = match end.finish {
        Finish::Done => (DeliveryState::Done, None, Some(end.now)),
        Finish::Unhandled => (DeliveryState::Unhandled, None, Some(end.now)),
        Finish::Dead => (DeliveryState::Dead, None, Some(end.now)),
        Finish::Retry { at } => (DeliveryState::Queued, Some(at), None),
    };
    let error = end.attempt.error.as_deref().map(text);
    let duration = i64::try_from(end.attempt.duration_ms).unwrap_or(i64::MAX);
    tx.execute(
        finish,
        &[
            &end.claim.id,
            &state.as_str(),
            &next_attempt_at,
            &finished_at,
            &end.attempt.status.map(i32::from),
            &error,
            &duration,
            &int(end.claim.attempt),
        ],
    )
    .await
}

async fn release(shared: &Shared, claims: Vec<Claim>, now: i64) -> Result<(), JournalError> {
    let ids: Vec<i64> = claims.iter().map(|c| c.id).collect();
    let attempts: Vec<i32> = claims.iter().map(|c| int(c.attempt)).collect();
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let result = async {
        let released = client
            .execute(
                "UPDATE hookserver_deliveries AS d \
                 SET state = 'queued', next_attempt_at = $3, lease_until = NULL \
                 FROM unnest($1::BIGINT[], $2::INTEGER[]) AS r(id, attempts) \
                 WHERE d.id = r.id AND d.attempts = r.attempts AND d.state = 'running'",
                &[&ids, &attempts, &now],
            )
            .await?;
        if released > 0 {
            client
                .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
                .await?;
        }
        Ok(())
    }
    .await;
    conn.done(result)
}

async fn delete_finished(
    shared: &Shared,
    before: i64,
    limit: usize,
) -> Result<usize, JournalError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    // Row locks only, and SKIP LOCKED: a row that a redelivery is queueing again
    // right now is left for the next round, and no insert waits for the delete.
    let result = client
        .execute(
            "DELETE FROM hookserver_deliveries WHERE id IN (\
                 SELECT id FROM hookserver_deliveries \
                 WHERE finished_at IS NOT NULL AND finished_at < $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&before, &limit],
        )
        .await;
    conn.done(result)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

async fn list(shared: &Shared, filter: ListFilter) -> Result<Vec<JournalEntry>, JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let limit = filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let event = filter.event.as_deref().map(text);
    let result = async {
        let rows = client
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM hookserver_deliveries \
                     WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::TEXT IS NULL OR event = $2) \
                     AND ($3::BIGINT IS NULL OR received_at >= $3) \
                     AND ($4::BIGINT IS NULL OR received_at < $4) \
                     ORDER BY received_at DESC, id DESC LIMIT $5"
                ),
                &[
                    &filter.state.map(DeliveryState::as_str),
                    &event,
                    &filter.since.map(time::to_millis),
                    &filter.until.map(time::to_millis),
                    &limit,
                ],
            )
            .await?;
        rows.iter().map(entry_from_row).collect()
    }
    .await;
    conn.done(result)
}

async fn show(shared: &Shared, guid: String) -> Result<Vec<StoredDelivery>, JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let rows = client
        .query(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, headers, body, client_ip FROM hookserver_deliveries \
                 WHERE guid = $1 ORDER BY id"
            ),
            &[&text(&guid)],
        )
        .await;
    let rows = conn.done(rows)?;
    let read = |r: &Row| -> Result<StoredDelivery, JournalError> {
        let entry = entry_from_row(r).map_err(|e| shared.url.pg(&e))?;
        let headers: Vec<u8> = r.try_get(13).map_err(|e| shared.url.pg(&e))?;
        let body: Vec<u8> = r.try_get(14).map_err(|e| shared.url.pg(&e))?;
        let client_ip: Option<String> = r.try_get(15).map_err(|e| shared.url.pg(&e))?;
        Ok(StoredDelivery {
            entry,
            headers: stored::decode_headers(&headers).map_err(JournalError::Unavailable)?,
            body: Bytes::from(body),
            client_ip: client_ip.and_then(|ip| ip.parse().ok()),
        })
    };
    rows.iter().map(read).collect()
}

async fn replay(shared: &Shared, guid: String, now: i64) -> Result<ReplayOutcome, JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let guid = text(&guid).into_owned();
    let result = async {
        let tx = client.transaction().await?;
        let queued = tx
            .execute(
                "UPDATE hookserver_deliveries SET state = 'queued', attempts = 0, \
                 next_attempt_at = $2, lease_until = NULL, finished_at = NULL \
                 WHERE guid = $1 AND state IN ('done', 'dead', 'unhandled')",
                &[&guid, &now],
            )
            .await?;
        let already_queued: i64 = tx
            .query_one(
                "SELECT count(*) FROM hookserver_deliveries \
                 WHERE guid = $1 AND state IN ('queued', 'running')",
                &[&guid],
            )
            .await?
            .try_get(0)?;
        if queued > 0 {
            tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
        }
        tx.commit().await?;
        let queued = usize::try_from(queued).unwrap_or(usize::MAX);
        Ok(ReplayOutcome {
            queued,
            already_queued: usize::try_from(already_queued)
                .unwrap_or(0)
                .saturating_sub(queued),
        })
    }
    .await;
    conn.done(result)
}

/// A connection from the pool to a server that takes writes: not a standby, and
/// not a session made read-only (`default_transaction_read_only`).
async fn probe(shared: &Shared) -> Result<(), JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let result = client
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
            &[],
        )
        .await
        .map(|row| (row.get::<_, bool>(0), row.get::<_, bool>(1)));
    match conn.done(result)? {
        (true, _) => Err(JournalError::Unavailable(
            "the database is a standby in recovery: it takes no writes".into(),
        )),
        (_, true) => Err(JournalError::Unavailable(
            "the database session is read-only (default_transaction_read_only)".into(),
        )),
        (false, false) => Ok(()),
    }
}

async fn stats(shared: &Shared) -> Result<JournalStats, JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let result = async {
        let row = client
            .query_one(
                "SELECT \
                     count(*) FILTER (WHERE state = 'queued'), \
                     count(*) FILTER (WHERE state = 'queued' AND attempts > 0), \
                     count(*) FILTER (WHERE state = 'running'), \
                     count(*) FILTER (WHERE state = 'done'), \
                     count(*) FILTER (WHERE state = 'dead'), \
                     count(*) FILTER (WHERE state = 'unhandled'), \
                     min(received_at) FILTER (WHERE state IN ('queued', 'running')) \
                 FROM hookserver_deliveries",
                &[],
            )
            .await?;
        let count = |i: usize| -> Result<u64, tokio_postgres::Error> {
            Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
        };
        Ok(JournalStats {
            queued: count(0)?,
            retrying: count(1)?,
            running: count(2)?,
            done: count(3)?,
            dead: count(4)?,
            unhandled: count(5)?,
            oldest_pending: row.try_get::<_, Option<i64>>(6)?.map(time::from_millis),
        })
    }
    .await;
    conn.done(result)
}

async fn catchup_watermark(shared: &Shared, target: String) -> Result<Option<i64>, JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let row = client
        .query_opt(
            "SELECT delivered_at FROM hookserver_catchup_watermarks WHERE target = $1",
            &[&text(&target)],
        )
        .await;
    let row = conn.done(row)?;
    row.map(|r| r.try_get(0).map_err(|e| shared.url.pg(&e)))
        .transpose()
}

async fn catchup_lookup(
    shared: &Shared,
    target: String,
    hook_id: Option<String>,
    guids: Vec<String>,
) -> Result<Vec<GuidRecord>, JournalError> {
    let guids: Vec<String> = guids.iter().map(|g| text(g).into_owned()).collect();
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let rows = client
        .query(
            "SELECT g.guid, \
                 EXISTS (SELECT 1 FROM hookserver_deliveries d WHERE d.guid = g.guid \
                         AND ($2::TEXT IS NULL OR d.hook_id = $2 OR d.hook_id = '')), \
                 r.asked, r.last_asked_at \
             FROM unnest($1::TEXT[]) AS g(guid) \
             LEFT JOIN hookserver_catchup_requests r ON r.target = $3 AND r.guid = g.guid",
            &[&guids, &hook_id, &text(&target)],
        )
        .await;
    let rows = conn.done(rows)?;
    let mut found = std::collections::HashMap::new();
    for row in &rows {
        let read = || -> Result<(String, GuidRecord), tokio_postgres::Error> {
            let asked: Option<i32> = row.try_get(2)?;
            Ok((
                row.try_get(0)?,
                GuidRecord {
                    journaled: row.try_get(1)?,
                    asked: asked.map_or(0, |n| u32::try_from(n).unwrap_or(0)),
                    last_asked: row.try_get(3)?,
                },
            ))
        };
        let (guid, record) = read().map_err(|e| shared.url.pg(&e))?;
        found.insert(guid, record);
    }
    Ok(guids
        .iter()
        .map(|g| found.get(g).cloned().unwrap_or_default())
        .collect())
}

async fn catchup_asked(
    shared: &Shared,
    target: String,
    guid: String,
    now: i64,
) -> Result<(), JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let result = client
        .execute(
            "INSERT INTO hookserver_catchup_requests (target, guid, asked, last_asked_at) \
             VALUES ($1, $2, 1, $3) ON CONFLICT (target, guid) \
             DO UPDATE SET asked = hookserver_catchup_requests.asked + 1, last_asked_at = $3",
            &[&text(&target), &text(&guid), &now],
        )
        .await;
    conn.done(result).map(drop)
}

async fn catchup_advance(
    shared: &Shared,
    target: String,
    watermark: i64,
    forget_before: i64,
) -> Result<(), JournalError> {
    let mut conn = shared.conn().await?;
    let client = conn.client()?;
    let result = async {
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO hookserver_catchup_watermarks (target, delivered_at) VALUES ($1, $2) \
             ON CONFLICT (target) DO UPDATE SET delivered_at = \
                 GREATEST(hookserver_catchup_watermarks.delivered_at, $2)",
            &[&text(&target), &watermark],
        )
        .await?;
        tx.execute(
            "DELETE FROM hookserver_catchup_requests WHERE last_asked_at < $1",
            &[&forget_before],
        )
        .await?;
        tx.commit().await
    }
    .await;
    conn.done(result)
}

/// Holds (or takes) the catch-up's advisory lock for `target` on a connection of its
/// own, outside the pool: the lock lasts as long as that connection, so an instance
/// that dies lets another take over.
async fn catchup_lead(shared: &Shared, target: String) -> Result<bool, JournalError> {
    let mut leader = shared.leader.lock().await;
    if leader.get(&target).is_some_and(|c| !c.is_closed()) {
        return Ok(true);
    }
    leader.remove(&target);
    let client = shared.connect().await?;
    let locked: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext(current_schema() || '/' || $2))",
            &[&CATCHUP_LOCK_CLASS, &text(&target)],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| shared.url.pg(&e))?;
    if locked {
        leader.insert(target, client);
    }
    Ok(locked)
}

/// Listens for queued deliveries on a connection of its own, made again whenever it
/// is lost; every notification, and every new connection (something may have been
/// queued while there was none), calls `wake`.
async fn listen(shared: Arc<Shared>, wake: Arc<dyn Fn() + Send + Sync>) {
    loop {
        let (ended, end) = oneshot::channel::<()>();
        let notified = Arc::clone(&wake);
        let connected = shared
            .connect_polled(move |mut connection| async move {
                loop {
                    let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                    match message {
                        Some(Ok(AsyncMessage::Notification(_))) => notified(),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
                ended.send(()).ok();
            })
            .await;
        if let Ok(client) = connected {
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                wake();
                // Held until the connection ends: dropping the client would end it.
                drop(end.await);
            }
            drop(client);
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

impl Store for PostgresStore {
    fn insert(&self, entry: NewEntry) -> BoxFuture<'_, Result<Inserted, JournalError>> {
        self.send(|reply| Write::Insert(Insert { entry, reply }))
    }

    fn claim(
        &self,
        limit: usize,
        now: i64,
        lease_until: i64,
    ) -> BoxFuture<'_, Result<Claims, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(WRITE_TIMEOUT, async move {
            claim(&shared, limit, now, lease_until).await
        })
    }

    fn finish(
        &self,
        claim: Claim,
        finish_as: Finish,
        attempt: AttemptRecord,
        now: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        self.send(|reply| {
            Write::Finish(FinishWrite {
                claim,
                finish: finish_as,
                attempt,
                now,
                reply,
            })
        })
    }

    fn release(&self, claims: Vec<Claim>, now: i64) -> BoxFuture<'_, Result<(), JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(
            WRITE_TIMEOUT,
            async move { release(&shared, claims, now).await },
        )
    }

    fn delete_finished(
        &self,
        before: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(WRITE_TIMEOUT, async move {
            delete_finished(&shared, before, limit).await
        })
    }

    fn list(&self, filter: ListFilter) -> BoxFuture<'_, Result<Vec<JournalEntry>, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(READ_TIMEOUT, async move { list(&shared, filter).await })
    }

    fn show(&self, guid: String) -> BoxFuture<'_, Result<Vec<StoredDelivery>, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(READ_TIMEOUT, async move { show(&shared, guid).await })
    }

    fn replay(&self, guid: String, now: i64) -> BoxFuture<'_, Result<ReplayOutcome, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(
            WRITE_TIMEOUT,
            async move { replay(&shared, guid, now).await },
        )
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(READ_TIMEOUT, async move { probe(&shared).await })
    }

    fn stats(&self) -> BoxFuture<'_, Result<JournalStats, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(READ_TIMEOUT, async move { stats(&shared).await })
    }

    fn catchup_watermark(
        &self,
        target: String,
    ) -> BoxFuture<'_, Result<Option<i64>, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(READ_TIMEOUT, async move {
            catchup_watermark(&shared, target).await
        })
    }

    fn catchup_lookup(
        &self,
        target: String,
        hook_id: Option<String>,
        guids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<GuidRecord>, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(READ_TIMEOUT, async move {
            catchup_lookup(&shared, target, hook_id, guids).await
        })
    }

    fn catchup_asked(
        &self,
        target: String,
        guid: String,
        now: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(WRITE_TIMEOUT, async move {
            catchup_asked(&shared, target, guid, now).await
        })
    }

    fn catchup_advance(
        &self,
        target: String,
        watermark: i64,
        forget_before: i64,
    ) -> BoxFuture<'_, Result<(), JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(WRITE_TIMEOUT, async move {
            catchup_advance(&shared, target, watermark, forget_before).await
        })
    }

    fn catchup_lead(&self, target: String) -> BoxFuture<'_, Result<bool, JournalError>> {
        let shared = Arc::clone(&self.shared);
        self.run(
            WRITE_TIMEOUT,
            async move { catchup_lead(&shared, target).await },
        )
    }

    fn catchup_resign(&self) -> BoxFuture<'_, ()> {
        let shared = Arc::clone(&self.shared);
        let task = self.handle.spawn(async move {
            // Closing the connections releases the locks.
            shared.leader.lock().await.clear();
        });
        Box::pin(async move {
            let _ = task.await;
        })
    }

    fn watch(&self, wake: Box<dyn Fn() + Send + Sync>) {
        self.handle
            .spawn(listen(Arc::clone(&self.shared), Arc::from(wake)));
    }
}

/// TLS for the connections, with rustls and the crypto provider reqwest uses
/// (aws-lc-rs), the server's certificate verified against the system's roots.
mod tls {
    use futures_util::future::BoxFuture;
    use rustls::pki_types::ServerName;
    use std::{
        io,
        pin::Pin,
        sync::Arc,
        task::{Context, Poll},
    };
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_postgres::{
        Socket,
        tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream},
    };

    #[derive(Clone)]
    pub(super) struct MakeRustls(Arc<rustls::ClientConfig>);

    impl MakeRustls {
        pub(super) fn new() -> Result<Self, rustls::Error> {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))?;
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            Ok(Self(Arc::new(config)))
        }
    }

    impl MakeTlsConnect<Socket> for MakeRustls {
        type Stream = Stream;
        type TlsConnect = Connect;
        type Error = io::Error;

        fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, io::Error> {
            let name = ServerName::try_from(domain.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Ok(Connect {
                config: Arc::clone(&self.0),
                name,
            })
        }
    }

    pub(super) struct Connect {
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    }

    impl TlsConnect<Socket> for Connect {
        type Stream = Stream;
        type Error = io::Error;
        type Future = BoxFuture<'static, io::Result<Stream>>;

        fn connect(self, socket: Socket) -> Self::Future {
            Box::pin(async move {
                let connector = tokio_rustls::TlsConnector::from(self.config);
                Ok(Stream(connector.connect(self.name, socket).await?))
            })
        }
    }

    pub(super) struct Stream(tokio_rustls::client::TlsStream<Socket>);

    impl TlsStream for Stream {
        fn channel_binding(&self) -> ChannelBinding {
            ChannelBinding::none()
        }
    }

    impl AsyncRead for Stream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Stream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }
}
