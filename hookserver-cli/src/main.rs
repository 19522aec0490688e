//! `hookserver`: send signed deliveries like GitHub, inspect and replay a hookserver
//! journal, read GitHub's own delivery log.
//!
//! - this file: the commands and their arguments (clap), exit codes;
//! - `send`: `hookserver send`, a caller of [`hookserver::Sender`];
//! - `journal`: `hookserver journal ...`, over [`hookserver::Journal::open`];
//! - `deliveries`: `hookserver deliveries`, over [`hookserver::DeliveryLog`];
//! - `table`, `time`: what the commands print, and the times they read and write.
//!
//! Exit codes: 0 done; 1 a failure (a non-2xx answer, no answer, the journal or GitHub
//! unavailable); 2 a bad command line or a missing variable.

mod deliveries;
mod journal;
mod send;
mod table;
mod time;

use clap::{Args, Parser, Subcommand};
use hookserver::DeliveryState;
use std::{path::PathBuf, process::ExitCode, time::SystemTime};

#[derive(Parser)]
#[command(
    name = "hookserver",
    version,
    about = "Drive a hookserver: send deliveries, inspect and replay its journal, read GitHub's delivery log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a payload like GitHub and POST it to a hook server; exits 1 unless the answer is 2xx.
    Send(SendArgs),
    /// Inspect and replay the journal named by HOOKSERVER_JOURNAL (sqlite:PATH or postgres://...).
    #[command(subcommand)]
    Journal(JournalCommand),
    /// GitHub's own delivery log for the hook named by HOOKSERVER_CATCHUP (with GITHUB_TOKEN, or the App's GITHUB_APP_ID and key; GITHUB_API_URL).
    Deliveries(DeliveriesArgs),
}

#[derive(Args)]
struct SendArgs {
    /// The event (`X-GitHub-Event`): push, ping, pull_request...
    event: String,
    /// The payload: a file holding one JSON object.
    file: PathBuf,
    /// Where to send it.
    #[arg(long, default_value = "http://127.0.0.1:8000/hooks")]
    url: String,
    /// The variable holding the hook's secret.
    #[arg(long, value_name = "VAR", default_value = "GITHUB_WEBHOOKS_KEY")]
    secret_env: String,
    /// Send it as a form (`payload=<JSON>`), as hooks with that content type get it.
    #[arg(long)]
    form: bool,
    /// Also send the legacy `X-Hub-Signature` (SHA-1).
    #[arg(long)]
    sha1: bool,
    /// The delivery's GUID (`X-GitHub-Delivery`); a fresh UUID otherwise.
    #[arg(long, value_name = "G")]
    guid: Option<String>,
    /// `X-GitHub-Hook-ID`.
    #[arg(long, value_name = "ID")]
    hook_id: Option<u64>,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Retries on a connection error, a timeout or a 5xx, with back-off.
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,
    /// Print the answer's headers too.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Deliveries, newest first.
    List(ListArgs),
    /// One delivery in full: its record, headers and body.
    Show {
        /// The delivery's GUID.
        guid: String,
    },
    /// Queue finished deliveries again (by GUID, or every one in a state), for the server to run.
    Replay(ReplayArgs),
    /// How many deliveries are in each state.
    Stats,
}

#[derive(Args)]
struct ListArgs {
    /// Only deliveries in this state.
    #[arg(long, value_name = "S", value_parser = parse_state)]
    state: Option<DeliveryState>,
    /// Only this event.
    #[arg(long, value_name = "E")]
    event: Option<String>,
    /// Only deliveries received since T: a time (2026-05-01, 2026-05-01T12:00:00Z) or an age (30m, 2h, 7d).
    #[arg(long, value_name = "T", value_parser = parse_since)]
    since: Option<SystemTime>,
    /// At most this many, the newest.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["guids", "state"])))]
struct ReplayArgs {
    /// The GUIDs of the deliveries to replay.
    #[arg(value_name = "GUID")]
    guids: Vec<String>,
    /// Every delivery in this state (dead, done, unhandled).
    #[arg(long, value_name = "S", value_parser = parse_state)]
    state: Option<DeliveryState>,
}

#[derive(Args)]
struct DeliveriesArgs {
    /// Only the attempts that failed (not OK).
    #[arg(long)]
    failed: bool,
    /// Stop after this many attempts.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// A state by name; the error lists every name.
fn parse_state(name: &str) -> Result<DeliveryState, String> {
    DeliveryState::parse(name.trim()).ok_or_else(|| {
        let names: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

fn parse_since(value: &str) -> Result<SystemTime, String> {
    time::parse_since(value, SystemTime::now())
}

/// A command's failure: what to print, and the exit code.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    /// A failure of what was asked (exit 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    /// Something the command line or the environment must give (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }
}

/// A variable's value, unless unset or blank; `why` says what it is for.
pub(crate) fn required_var(name: &str, why: &str) -> Result<String, Failure> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            Err(Failure::usage(format!("{name} is not set: {why}")))
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Failure::usage(format!("{name} is not valid UTF-8")))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Send(args) => send::run(args).await,
            Command::Journal(command) => journal::run(command).await,
            Command::Deliveries(args) => deliveries::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
