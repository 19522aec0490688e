//! The journal's crash test: a server (`journal-crash-server`) with a SQLite
//! journal takes signed deliveries from several senders while it is killed with
//! SIGKILL at random moments and restarted on the same journal each time. Its
//! handler appends `GUID GENERATION` to a file for every delivery it processes.
//!
//! At the end, after a last start left running until the journal is drained:
//! - every delivery answered `2xx` was processed at least once;
//! - a delivery processed more than once was processed by a killed start and again
//!   by a later one (a kill between its handler's append and the `done` mark), or had
//!   an attempt that failed (logged by the server); never twice by one start for no
//!   reason; and no kill left more such deliveries than 9 × the workers (those
//!   running, and up to 8 per worker whose end was handed on but not committed);
//! - the journal holds nothing queued, running or dead, and every delivery in it is
//!   `done` and in the file (and every one in the file is in the journal); so a
//!   delivery whose answer was lost in a kill (a connection error) is processed when
//!   it was journaled and not at all otherwise: it is not required either way.
//!
//! Cargo builds the server with the tests. Set `CRASH_SEED` to replay a run's kill
//! schedule (the seed is printed).

use hookserver::{DeliveryState, Journal, ListFilter};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs,
    hash::BuildHasher,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};
use tests::{EditHeaders, SECRET, client, delivery};

/// Kills in one run (the issue asks for at least 20).
const KILLS: usize = 22;
/// Concurrent senders, each sending one delivery after another.
const SENDERS: usize = 4;
/// Deliveries sent at once just before each kill, so that some are in flight.
const BURST: usize = 4;
/// `HOOKSERVER_WORKERS`: handlers running at once. A worker frees its slot once its
/// end is handed on, and at most [`MARKS_PER_WORKER`] times this many ends wait for
/// their commit, so at most `(1 + MARKS_PER_WORKER) × WORKERS` deliveries can be
/// between their handler's append and their `done` mark when a kill lands.
const WORKERS: usize = 8;
/// The journal's bound on ends waiting for their commit, per worker.
const MARKS_PER_WORKER: usize = 8;
/// A start lives this long (uniformly random, in ms) before it is killed.
const UPTIME_MS: (u64, u64) = (100, 700);
/// How long a start may take to print its address (a loaded machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the last start may take to process everything. A delivery a kill left
/// running is claimed again when its lease runs out: the 1 s handler timeout + 30 s.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);

/// A small xorshift generator, seeded from `CRASH_SEED` or at random: enough for a
/// kill schedule, and no dependency.
struct Rng(u64);

impl Rng {
    fn new() -> (Self, u64) {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::collections::hash_map::RandomState::new().hash_one(std::process::id())
            })
            | 1;
        (Self(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A directory of its own under the system's temp dir, removed when the test passes
/// (kept, and named, when it fails: the journal, the GUID file and the logs are there).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        Self(tests::journal::temp_dir("journal-crash"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "crash test failed: its files are kept in {}",
                self.0.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// One start of the server. Dropping it kills it.
struct Server {
    child: Child,
    url: String,
    generation: usize,
}

impl Server {
    /// Kills the process with SIGKILL and reaps it.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where one run's files are.
struct Files {
    binary: PathBuf,
    dir: PathBuf,
    db: PathBuf,
    guids: PathBuf,
}

impl Files {
    fn log(&self, generation: usize) -> PathBuf {
        self.dir.join(format!("server-{generation:02}.log"))
    }

    /// Starts generation `generation` on the journal and waits for its address.
    fn start(&self, generation: usize) -> Server {
        let log = fs::File::create(self.log(generation)).expect("create the server log");
        let mut child = Command::new(&self.binary)
            .env_clear()
            .env("GITHUB_WEBHOOKS_KEY", SECRET)
            .env("VALIDATE_IP", "false")
            .env(
                "HOOKSERVER_JOURNAL",
                format!("sqlite:{}", self.db.display()),
            )
            .env("HOOKSERVER_HANDLER_TIMEOUT_SECS", "1")
            .env("HOOKSERVER_RETRY_BACKOFF_SECS", "1")
            .env("HOOKSERVER_WORKERS", WORKERS.to_string())
            .env("CRASH_GUID_FILE", &self.guids)
            .env("CRASH_GENERATION", generation.to_string())
            .env("CRASH_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let stdout = child.stdout.take().expect("the server's stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let mut server = Server {
            child,
            url: String::new(),
            generation,
        };
        match line.trim().strip_prefix("listening on ") {
            Some(base) => {
                server.url = format!("{base}/hooks");
                server
            }
            None => {
                drop(server);
                panic!(
                    "start {generation} printed no address within {START_TIMEOUT:?} \
                     (got {line:?}); its log:\n{}",
                    fs::read_to_string(self.log(generation)).unwrap_or_default()
                );
            }
        }
    }
}

/// What a sender got for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A status, and the body when it could be read.
    Answered(u16, Option<String>),
    /// No answer: refused, reset, or cut off by a kill.
    NoAnswer(String),
}

impl Outcome {
    fn is_2xx(&self) -> bool {
        matches!(self, Self::Answered(200..=299, _))
    }
}

/// One delivery sent: its GUID, what came back, how long it took, and where it went.
#[derive(Debug)]
struct Sent {
    guid: String,
    outcome: Outcome,
    took: Duration,
    url: String,
}

/// The innermost cause of an error: "Connection refused", "connection reset", ...
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// What the senders and the kill loop share.
struct Shared {
    run: String,
    /// The live start's URL; `None` from just before a kill until the next start
    /// listens, so that no delivery goes to a port another process may now hold.
    url: Mutex<Option<String>>,
    next: AtomicU64,
    stop: AtomicBool,
    outcomes: Mutex<Vec<Sent>>,
}

impl Shared {
    fn url(&self) -> Option<String> {
        self.url.lock().expect("url").clone()
    }

    fn set_url(&self, url: Option<String>) {
        *self.url.lock().expect("url") = url;
    }
}

/// Sends one signed `push` with a GUID of its own and records what came back.
async fn send_one(shared: &Shared, client: &reqwest::Client, url: &str) {
    let n = shared.next.fetch_add(1, Ordering::Relaxed);
    let guid = format!("{}-{n:07}", shared.run);
    let body = format!(r#"{{"ref":"refs/heads/main","n":{n},"commits":[]}}"#);
    let started = Instant::now();
    let outcome = match delivery(client, url, "push", body)
        .set_header("x-github-delivery", &guid)
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            Outcome::Answered(status, response.text().await.ok())
        }
        Err(e) => Outcome::NoAnswer(root_cause(&e)),
    };
    let sent = Sent {
        guid,
        outcome,
        took: started.elapsed(),
        url: url.to_owned(),
    };
    shared.outcomes.lock().expect("outcomes").push(sent);
}

/// One delivery after another until told to stop, waiting while no start listens.
async fn sender(shared: Arc<Shared>, client: reqwest::Client) {
    while !shared.stop.load(Ordering::Relaxed) {
        match shared.url() {
            Some(url) => send_one(&shared, &client, &url).await,
            None => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// The processed file, parsed: GUID → the generation of each line, in file order.
fn read_processed(path: &Path) -> BTreeMap<String, Vec<usize>> {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).expect("the GUID file is UTF-8"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    let mut processed: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for line in text.split_inclusive('\n') {
        let parsed = line
            .strip_suffix('\n')
            .and_then(|l| l.split_once(' '))
            .and_then(|(guid, generation)| Some((guid, generation.parse::<usize>().ok()?)));
        let Some((guid, generation)) = parsed else {
            panic!("malformed line in the GUID file: {line:?}");
        };
        processed
            .entry(guid.to_owned())
            .or_default()
            .push(generation);
    }
    processed
}

/// What the starts logged: the GUIDs of the attempts logged as failed, and every
/// other warning or error line (there should be none).
fn read_logs(files: &Files, generations: usize) -> (HashSet<String>, Vec<String>) {
    let mut failed = HashSet::new();
    let mut other = Vec::new();
    for generation in 0..generations {
        let log = fs::read_to_string(files.log(generation)).unwrap_or_default();
        for line in log.lines() {
            if (line.contains("delivery failed") || line.contains("delivery dead"))
                && let Some(rest) = line.split("guid=").nth(1)
            {
                let guid = rest
                    .trim_start_matches('"')
                    .split(['"', ' '])
                    .next()
                    .unwrap_or_default();
                failed.insert(guid.to_owned());
            } else if !line.trim().is_empty() {
                other.push(format!("start {generation}: {line}"));
            }
        }
    }
    (failed, other)
}

/// The crash test itself: see the file's documentation.
#[test]
fn every_acknowledged_delivery_survives_repeated_kill_9() {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_journal-crash-server"));
    let tmp = TempDir::new();
    let files = Files {
        binary,
        db: tmp.0.join("j.db"),
        guids: tmp.0.join("processed.txt"),
        dir: tmp.0.clone(),
    };
    let (mut rng, seed) = Rng::new();
    eprintln!("crash test: seed {seed} (CRASH_SEED={seed} replays the kill schedule)");
    let began = Instant::now();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the senders");
    let shared = Arc::new(Shared {
        run: format!("crash-{seed:x}"),
        url: Mutex::new(None),
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        outcomes: Mutex::new(Vec::new()),
    });
    let http = client();

    let mut server = files.start(0);
    shared.set_url(Some(server.url.clone()));
    let mut urls = vec![server.url.clone()];
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| runtime.spawn(sender(Arc::clone(&shared), http.clone())))
        .collect();
    let mut bursts = Vec::new();
    let mut uptimes = Vec::new();

    // The kills: each after a random uptime, with a burst of deliveries in flight.
    for kill in 0..KILLS {
        let uptime = Duration::from_millis(rng.between(UPTIME_MS.0, UPTIME_MS.1));
        uptimes.push(uptime);
        std::thread::sleep(uptime);
        for _ in 0..BURST {
            let (shared, http, url) = (Arc::clone(&shared), http.clone(), server.url.clone());
            bursts.push(runtime.spawn(async move { send_one(&shared, &http, &url).await }));
        }
        std::thread::sleep(Duration::from_millis(rng.between(0, 5)));
        shared.set_url(None);
        server.kill();
        server = files.start(kill + 1);
        shared.set_url(Some(server.url.clone()));
        urls.push(server.url.clone());
    }
    let kill_phase = began.elapsed();
    let final_start = Instant::now();

    // The last start is never killed: a little more load, then it drains.
    std::thread::sleep(Duration::from_millis(500));
    shared.stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for task in senders.into_iter().chain(bursts) {
            task.await.expect("a sender panicked");
        }
    });
    let joined = final_start.elapsed();
    let outcomes = std::mem::take(&mut *shared.outcomes.lock().expect("outcomes"));
    let sent: HashSet<&str> = outcomes.iter().map(|s| s.guid.as_str()).collect();
    assert_eq!(sent.len(), outcomes.len(), "every GUID is sent once");
    let acknowledged: Vec<&str> = outcomes
        .iter()
        .filter(|s| s.outcome.is_2xx())
        .map(|s| s.guid.as_str())
        .collect();
    for Sent { guid, outcome, .. } in &outcomes {
        if let Outcome::Answered(status @ 200..=299, body) = outcome {
            // A GUID seen for the first time is queued, nothing else.
            assert!(
                *status == 202 && body.as_deref().is_none_or(|b| b == "Queued"),
                "{guid}: {status} {body:?}"
            );
        }
    }
    let unanswered: Vec<&Sent> = outcomes.iter().filter(|s| !s.outcome.is_2xx()).collect();

    // Every acknowledged delivery is processed, and the journal drains (deliveries
    // journaled whose answer a kill cut off, too), bounded in time. Stats first, then
    // the file: a handler appends before its `done` mark, so once nothing is pending,
    // a delivery missing from the file will never be processed.
    let url = format!("sqlite:{}", files.db.display());
    let journal = Journal::open(&url).expect("open the journal");
    let mut recovered = None;
    let stats = loop {
        let stats = runtime.block_on(journal.stats()).expect("journal stats");
        let seen = read_processed(&files.guids);
        let missing: Vec<&str> = acknowledged
            .iter()
            .copied()
            .filter(|guid| !seen.contains_key(*guid))
            .collect();
        if missing.is_empty() && recovered.is_none() {
            recovered = Some(final_start.elapsed());
        }
        let pending = stats.queued + stats.running;
        if pending == 0 && missing.is_empty() {
            break stats;
        }
        if pending == 0 {
            let rows: Vec<String> = missing
                .iter()
                .take(5)
                .map(|guid| {
                    let rows = runtime.block_on(journal.show(guid)).expect("show");
                    let states: Vec<String> = rows
                        .iter()
                        .map(|row| {
                            format!("{} after {} attempts", row.entry.state, row.entry.attempts)
                        })
                        .collect();
                    format!("{guid}: {states:?}")
                })
                .collect();
            panic!(
                "{} of {} acknowledged deliveries lost: never processed, and nothing is \
                 pending in the journal ({stats:?}); e.g. {rows:?}",
                missing.len(),
                acknowledged.len()
            );
        }
        assert!(
            final_start.elapsed() < DRAIN_TIMEOUT,
            "{DRAIN_TIMEOUT:?} after the last start, {} of {} acknowledged deliveries are \
             not processed (e.g. {:?}) and the journal has {pending} pending: {stats:?}",
            missing.len(),
            acknowledged.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let recovered = recovered.unwrap_or_default();
    let drained = final_start.elapsed();
    let generations = server.generation + 1;
    server.kill();
    // Read once the last start is gone, so that no line is still being written.
    let processed = read_processed(&files.guids);
    let entries = runtime
        .block_on(journal.list(ListFilter::new()))
        .expect("list the journal");
    let stats_after = runtime.block_on(journal.stats()).expect("journal stats");

    // The journal: nothing pending or dead, every row done and processed.
    assert_eq!(stats_after, stats, "nothing changed after the drain");
    assert_eq!(
        (stats.queued, stats.running, stats.dead, stats.unhandled),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    let journaled: HashMap<&str, DeliveryState> = entries
        .iter()
        .map(|entry| (entry.guid.as_str(), entry.state))
        .collect();
    assert_eq!(journaled.len(), entries.len(), "one row per GUID");
    for entry in &entries {
        assert!(
            sent.contains(entry.guid.as_str()),
            "{entry:?} was never sent"
        );
        assert_eq!(entry.state, DeliveryState::Done, "{entry:?}");
        let copies = processed.get(&entry.guid).map_or(0, Vec::len);
        assert!(copies > 0, "{entry:?} is done but its handler never ran");
        // Every run of a handler is an attempt: claimed at the door or by a worker.
        assert!(
            entry.attempts as usize >= copies,
            "{entry:?}: processed {copies} times in {} attempts",
            entry.attempts
        );
    }
    let claimed_again = entries.iter().filter(|e| e.attempts > 1).count();
    for guid in &acknowledged {
        assert_eq!(
            journaled.get(guid),
            Some(&DeliveryState::Done),
            "{guid} was acknowledged"
        );
    }
    for guid in processed.keys() {
        assert!(
            journaled.contains_key(guid.as_str()),
            "{guid} was processed but is not in the journal"
        );
    }

    // Processed more than once: by a killed start and again later, or retried.
    let (retried, log_lines) = read_logs(&files, generations);
    assert!(
        !log_lines.iter().any(|line| line.contains("panicked")),
        "a start panicked:\n{}",
        log_lines.join("\n")
    );
    let mut after_kill = vec![0usize; generations];
    let mut duplicates_killed = 0;
    let mut duplicates_retried = 0;
    for (guid, copies) in &processed {
        if copies.len() < 2 {
            continue;
        }
        if retried.contains(guid) {
            duplicates_retried += 1;
            continue;
        }
        let distinct: HashSet<&usize> = copies.iter().collect();
        assert!(
            distinct.len() == copies.len() && copies.windows(2).all(|w| w[0] < w[1]),
            "{guid} was processed {} times by starts {copies:?}: more than once by one \
             start, with no failed attempt logged",
            copies.len()
        );
        duplicates_killed += 1;
        for &generation in &copies[..copies.len() - 1] {
            after_kill[generation] += 1;
        }
    }
    for (generation, count) in after_kill.iter().enumerate() {
        assert!(
            *count <= (1 + MARKS_PER_WORKER) * WORKERS,
            "the kill of start {generation} left {count} deliveries processed but not \
             marked done; at most {WORKERS} handlers run at once and at most \
             {MARKS_PER_WORKER} × {WORKERS} ends wait for their commit (unless the write \
             failed: see the logs {log_lines:?})"
        );
    }
    assert_eq!(
        after_kill[generations - 1],
        0,
        "the last start is not killed"
    );
    assert!(duplicates_killed <= KILLS * WORKERS);

    // Deliveries sent into a kill: not required, processed exactly when journaled.
    let unanswered_processed = unanswered
        .iter()
        .filter(|s| processed.contains_key(&s.guid))
        .count();
    assert!(
        !unanswered.is_empty(),
        "no delivery was caught by a kill: the kill windows were not exercised"
    );

    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for s in &unanswered {
        let kind = match &s.outcome {
            Outcome::Answered(status, body) => {
                format!("{status} {}", body.as_deref().unwrap_or(""))
            }
            Outcome::NoAnswer(cause) => cause.clone(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let mut slowest: Vec<&Sent> = outcomes.iter().collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.took));
    let slowest: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|s| {
            let start = urls.iter().position(|u| *u == s.url).unwrap_or(usize::MAX);
            format!("{:.1?} to start {start}: {:?}", s.took, s.outcome)
        })
        .collect();
    let total = began.elapsed();
    let per_kill: Vec<String> = after_kill[..generations - 1]
        .iter()
        .map(usize::to_string)
        .collect();
    eprintln!(
        "crash test: {KILLS} kills in {kill_phase:.1?} (uptimes {:?}..{:?}); {} deliveries \
         sent, {} acknowledged, {} without a 2xx ({kinds:?}; {} of them journaled and \
         processed anyway); slowest answers {slowest:?}; senders stopped {joined:.1?} after \
         the last start; {} distinct processed, {claimed_again} claimed more than once; duplicates: {duplicates_killed} after a kill \
         (per kill: {}), {duplicates_retried} after a failed attempt; all acknowledged \
         processed {recovered:.1?} after the last start, journal drained at {drained:.1?}; \
         {} done in the journal; {} other log lines {:?}; total {total:.1?}",
        uptimes.iter().min().copied().unwrap_or_default(),
        uptimes.iter().max().copied().unwrap_or_default(),
        outcomes.len(),
        acknowledged.len(),
        unanswered.len(),
        unanswered_processed,
        processed.len(),
        per_kill.join(" "),
        stats.done,
        log_lines.len(),
        &log_lines[..log_lines.len().min(3)],
    );
}
