//! The server the journal's crash test (`tests/tests/journal_crash.rs`) starts and
//! kills: the real pipeline with a SQLite journal, served by `hookserver::serve`, and
//! one `*` handler that appends each GUID it processes to a file.
//!
//! Settings come from the environment: everything `Config::from_env()` reads (the
//! test sets the secret, `VALIDATE_IP=false`, `HOOKSERVER_JOURNAL`, a 1 s handler
//! timeout, ...), and
//!
//! - `CRASH_GUID_FILE` (required): the file each processed delivery is appended to,
//!   one `GUID GENERATION\n` line each, by one `write(2)` on a file opened with
//!   `O_APPEND` (so lines from concurrent handlers never interleave), then
//!   `fdatasync(2)`: a line in the file is a handler that really ran;
//! - `CRASH_GENERATION`: this start's number, written beside each GUID, so the test
//!   can tell a delivery processed again after a kill from one processed twice by
//!   one process;
//! - `CRASH_ADDR`: where to listen, `127.0.0.1:0` (a free port) by default.
//!
//! Once it listens it prints `listening on http://ADDR` on stdout. It logs at `warn`
//! (`RUST_LOG` changes it) on stderr: a failed attempt's line names its GUID.

use axum::http::StatusCode;
use hookserver::{Config, Delivery, Hooks};
use std::{
    fs::{File, OpenOptions},
    hash::BuildHasher,
    io::Write,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

/// The handler waits up to this long before appending, so that kills land while
/// handlers run.
const MAX_SLEEP_MS: u64 = 20;

/// Where processed GUIDs go, and what is written beside them.
struct Processed {
    file: File,
    generation: String,
    /// Past this much time in the handler, it appends nothing and fails instead (a
    /// retry, not a line): a line written after the handler timed out would be a
    /// second processing that no kill explains.
    deadline: Duration,
}

impl Processed {
    /// Appends `guid`'s line in one `write` and syncs it. Blocking.
    fn append(&self, guid: &str, started: Instant) -> Result<(), String> {
        if started.elapsed() > self.deadline {
            return Err(format!(
                "not appended: {:?} in the handler, past {:?}",
                started.elapsed(),
                self.deadline
            ));
        }
        let line = format!("{guid} {}\n", self.generation);
        let written = (&self.file)
            .write(line.as_bytes())
            .map_err(|e| format!("append failed: {e}"))?;
        if written != line.len() {
            // A partial line is in the file: the test reports it as malformed.
            return Err(format!("short append: {written} of {} bytes", line.len()));
        }
        self.file
            .sync_data()
            .map_err(|e| format!("fdatasync failed: {e}"))
    }
}

/// Sleeps a random 0 to [`MAX_SLEEP_MS`] ms, then appends the GUID off the runtime.
async fn process(processed: Arc<Processed>, delivery: Delivery) -> (StatusCode, String) {
    let started = Instant::now();
    let guid = delivery.guid().to_owned();
    let random = std::collections::hash_map::RandomState::new().hash_one(&guid);
    tokio::time::sleep(Duration::from_millis(random % (MAX_SLEEP_MS + 1))).await;
    let appended = tokio::task::spawn_blocking(move || processed.append(&guid, started)).await;
    match appended {
        Ok(Ok(())) => (StatusCode::OK, "processed".to_owned()),
        Ok(Err(why)) => (StatusCode::INTERNAL_SERVER_ERROR, why),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A required variable, or the message saying it is missing.
fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// Half the handler timeout that `Config::from_env()` reads (8 s when unset).
fn append_deadline() -> Result<Duration, String> {
    let name = "HOOKSERVER_HANDLER_TIMEOUT_SECS";
    let secs = match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{name}={v:?} is not a number of seconds"))?,
        _ => 8,
    };
    Ok(Duration::from_secs(secs) / 2)
}

async fn run() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let path = var("CRASH_GUID_FILE")?;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    let processed = Arc::new(Processed {
        file,
        generation: std::env::var("CRASH_GENERATION").unwrap_or_else(|_| "0".into()),
        deadline: append_deadline()?,
    });
    let hooks = Hooks::try_new(config)
        .map_err(|e| e.to_string())?
        .on("*", move |delivery: Delivery| {
            process(Arc::clone(&processed), delivery)
        });
    let app = axum::Router::new().merge(hooks.router("/hooks"));
    let addr = std::env::var("CRASH_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{bound}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write the address: {e}"))?;
    }
    hookserver::serve(listener, app)
        .await
        .map_err(|e| format!("serve failed: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("journal-crash-server: {why}");
            ExitCode::FAILURE
        }
    }
}
