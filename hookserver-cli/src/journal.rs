//! `hookserver journal ...`: the journal named by `HOOKSERVER_JOURNAL`, through
//! [`Journal::open`].

use crate::{Failure, JournalCommand, ListArgs, ReplayArgs, required_var, table::Table, time};
use hookserver::{Journal, JournalEntry, JournalError, ListFilter, StoredDelivery};
use serde_json::json;
use std::io::{IsTerminal, Write};

pub(crate) async fn run(command: JournalCommand) -> Result<(), Failure> {
    let url = required_var(
        "HOOKSERVER_JOURNAL",
        "set it to the server's journal (sqlite:PATH or postgres://...)",
    )?;
    let journal = match Journal::open(url.trim()) {
        Ok(journal) => journal,
        Err(e @ JournalError::BadUrl(_)) => {
            return Err(Failure::usage(format!("HOOKSERVER_JOURNAL: {e}")));
        }
        Err(e) => return Err(unavailable(e)),
    };
    match command {
        JournalCommand::List(args) => list(&journal, args).await,
        JournalCommand::Show { guid } => show(&journal, &guid).await,
        JournalCommand::Replay(args) => replay(&journal, args).await,
        JournalCommand::Stats => stats(&journal).await,
    }
}

fn unavailable(e: JournalError) -> Failure {
    Failure::failed(e.to_string())
}

async fn list(journal: &Journal, args: ListArgs) -> Result<(), Failure> {
    let mut filter = ListFilter::new();
    if let Some(state) = args.state {
        filter = filter.state(state);
    }
    if let Some(event) = args.event {
        filter = filter.event(event);
    }
    if let Some(since) = args.since {
        filter = filter.since(since);
    }
    if let Some(limit) = args.limit {
        filter = filter.limit(limit);
    }
    let entries = journal.list(filter).await.map_err(unavailable)?;
    if args.json {
        let all: Vec<serde_json::Value> = entries.iter().map(entry_json).collect();
        println!("{}", serde_json::Value::Array(all));
        return Ok(());
    }
    let mut table = Table::new(&[
        "RECEIVED", "GUID", "EVENT", "STATE", "ATTEMPTS", "STATUS", "ERROR",
    ]);
    for e in &entries {
        table.row(vec![
            time::format(e.received_at),
            e.guid.clone(),
            event_key(e),
            e.state.to_string(),
            e.attempts.to_string(),
            e.last_status.map(|s| s.to_string()).unwrap_or_default(),
            e.last_error.as_deref().map(first_line).unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    println!(
        "{} deliver{}",
        table.len(),
        if table.len() == 1 { "y" } else { "ies" }
    );
    Ok(())
}

fn event_key(e: &JournalEntry) -> String {
    match &e.action {
        Some(action) => format!("{}.{action}", e.event),
        None => e.event.clone(),
    }
}

/// The first line of an error, at most 60 characters, for a table cell.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

fn entry_json(e: &JournalEntry) -> serde_json::Value {
    json!({
        "id": e.id,
        "hook_id": e.hook_id,
        "guid": e.guid,
        "event": e.event,
        "action": e.action,
        "received_at": time::format(e.received_at),
        "state": e.state.as_str(),
        "attempts": e.attempts,
        "next_attempt_at": time::format(e.next_attempt_at),
        "last_status": e.last_status,
        "last_error": e.last_error,
        "last_duration_ms": e.last_duration.map(|d| d.as_millis() as u64),
        "finished_at": e.finished_at.map(time::format),
    })
}

async fn show(journal: &Journal, guid: &str) -> Result<(), Failure> {
    let deliveries = journal.show(guid).await.map_err(unavailable)?;
    if deliveries.is_empty() {
        return Err(Failure::failed(format!(
            "no delivery with GUID {guid} in the journal"
        )));
    }
    for (i, d) in deliveries.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_delivery(d);
    }
    Ok(())
}

fn print_delivery(d: &StoredDelivery) {
    let e = &d.entry;
    let mut fields = vec![
        ("guid", e.guid.clone()),
        ("event", event_key(e)),
        ("state", e.state.to_string()),
        ("attempts", e.attempts.to_string()),
        ("received", time::format(e.received_at)),
    ];
    if let Some(id) = e.hook_id {
        fields.push(("hook id", id.to_string()));
    }
    if let Some(ip) = d.client_ip {
        fields.push(("client", ip.to_string()));
    }
    if e.state == hookserver::DeliveryState::Queued {
        fields.push(("next attempt", time::format(e.next_attempt_at)));
    }
    if let Some(status) = e.last_status {
        fields.push(("last status", status.to_string()));
    }
    if let Some(d) = e.last_duration {
        fields.push(("last duration", time::duration(d)));
    }
    if let Some(error) = &e.last_error {
        fields.push(("last error", error.clone()));
    }
    if let Some(at) = e.finished_at {
        fields.push(("finished", time::format(at)));
    }
    for (name, value) in fields {
        println!("{:<14}{value}", format!("{name}:"));
    }
    println!();
    for (name, value) in &d.headers {
        println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    println!();
    match serde_json::from_slice::<serde_json::Value>(&d.body) {
        Ok(value) => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
        Err(_) => println!("{}", String::from_utf8_lossy(&d.body)),
    }
}

async fn replay(journal: &Journal, args: ReplayArgs) -> Result<(), Failure> {
    let mut guids = args.guids;
    if let Some(state) = args.state {
        let entries = journal
            .list(ListFilter::new().state(state))
            .await
            .map_err(unavailable)?;
        guids.extend(entries.into_iter().map(|e| e.guid));
    }
    let mut seen = std::collections::HashSet::new();
    guids.retain(|g| seen.insert(g.clone()));
    let total = guids.len();
    // A live count on a terminal, for replays of many.
    let live = total > 1 && std::io::stderr().is_terminal();
    let (mut queued, mut already, mut missing) = (0, 0, Vec::new());
    for (i, guid) in guids.iter().enumerate() {
        let outcome = journal.replay(guid).await.map_err(unavailable)?;
        queued += outcome.queued;
        already += outcome.already_queued;
        if outcome.queued == 0 && outcome.already_queued == 0 {
            missing.push(guid.clone());
        }
        if live {
            eprint!("\rreplaying: {}/{total}", i + 1);
            let _ = std::io::stderr().flush();
        }
    }
    if live {
        eprintln!();
    }
    println!("queued again: {queued}; already queued or running: {already}");
    if total == 0 {
        println!("nothing to replay");
    }
    match missing.as_slice() {
        [] => Ok(()),
        [guid] => Err(Failure::failed(format!(
            "no delivery with GUID {guid} in the journal"
        ))),
        many => Err(Failure::failed(format!(
            "{} GUIDs are not in the journal: {}",
            many.len(),
            many.join(", ")
        ))),
    }
}

async fn stats(journal: &Journal) -> Result<(), Failure> {
    let s = journal.stats().await.map_err(unavailable)?;
    let mut table = Table::new(&["STATE", "COUNT"]);
    for (name, count) in [
        ("queued", s.queued),
        ("  retrying", s.retrying),
        ("running", s.running),
        ("done", s.done),
        ("dead", s.dead),
        ("unhandled", s.unhandled),
    ] {
        table.row(vec![name.to_owned(), count.to_string()]);
    }
    print!("{}", table.render());
    match s.oldest_pending {
        Some(at) => println!("oldest pending: {}", time::format(at)),
        None => println!("oldest pending: none"),
    }
    Ok(())
}
