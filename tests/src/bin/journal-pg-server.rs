//! A server for the multi-instance test: the real pipeline with the journal at
//! `HOOKSERVER_JOURNAL` (PostgreSQL), on `127.0.0.1` at a free port it prints as
//! `listening PORT`, and a handler that appends each GUID it runs to
//! `PROCESSED_LOG`, one line per run.

use hookserver::{Delivery, Hooks};
use std::{io::Write, time::Duration};

fn log_path() -> String {
    std::env::var("PROCESSED_LOG").unwrap_or_else(|_| "processed.log".into())
}

async fn record(delivery: Delivery) -> &'static str {
    // A little work, so that handlers overlap and a kill finds some running.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let line = format!("{}\n", delivery.guid());
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path())
        .and_then(|mut f| f.write_all(line.as_bytes()));
    match appended {
        Ok(()) => "ok",
        Err(_) => panic!("cannot append to the processed log"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("HOOKSERVER_JOURNAL")?;
    let config = tests::config()
        .journal(url)
        .handler_timeout(Duration::from_secs(2))
        .workers(8);
    let hooks = Hooks::try_new(config)?.on("push", record);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    hookserver::serve(listener, hooks.router("/hooks")).await?;
    Ok(())
}
