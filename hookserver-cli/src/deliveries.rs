//! `hookserver deliveries`: GitHub's delivery log of the configured hook, through
//! [`hookserver::DeliveryLog`], with a live count of the attempts read on a terminal.

use crate::{DeliveriesArgs, Failure, table::Table, time};
use hookserver::{DeliveryLog, LoggedDelivery};
use serde_json::json;
use std::io::{IsTerminal, Write};

pub(crate) async fn run(args: DeliveriesArgs) -> Result<(), Failure> {
    let mut log = DeliveryLog::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let live = std::io::stderr().is_terminal();
    let mut read = 0usize;
    let mut shown: Vec<LoggedDelivery> = Vec::new();
    while shown.len() < args.limit {
        let Some(page) = log
            .next_page()
            .await
            .map_err(|e| Failure::failed(e.to_string()))?
        else {
            break;
        };
        read += page.len();
        shown.extend(page.into_iter().filter(|a| !args.failed || !a.ok));
        if live {
            eprint!("\rread {read} attempts from {}", log.target());
            let _ = std::io::stderr().flush();
        }
    }
    if live {
        eprintln!();
    }
    shown.truncate(args.limit);
    if args.json {
        let all: Vec<serde_json::Value> = shown.iter().map(attempt_json).collect();
        println!("{}", serde_json::Value::Array(all));
        return Ok(());
    }
    let mut table = Table::new(&[
        "DELIVERED",
        "GUID",
        "EVENT",
        "CODE",
        "STATUS",
        "DURATION",
        "ID",
    ]);
    for a in &shown {
        let event = match &a.action {
            Some(action) => format!("{}.{action}", a.event),
            None => a.event.clone(),
        };
        table.row(vec![
            time::format(a.delivered_at),
            a.guid.clone(),
            event,
            match a.status_code {
                0 => "-".to_owned(),
                code => code.to_string(),
            },
            if a.redelivery {
                format!("{} (redelivery)", a.status)
            } else {
                a.status.clone()
            },
            a.duration.map(time::duration).unwrap_or_default(),
            a.id.to_string(),
        ]);
    }
    print!("{}", table.render());
    println!(
        "{} of {read} attempts read from {}{}",
        table.len(),
        log.target(),
        if args.failed { " (failed only)" } else { "" }
    );
    Ok(())
}

fn attempt_json(a: &LoggedDelivery) -> serde_json::Value {
    json!({
        "id": a.id,
        "guid": a.guid,
        "delivered_at": time::format(a.delivered_at),
        "ok": a.ok,
        "status": a.status,
        "status_code": a.status_code,
        "event": a.event,
        "action": a.action,
        "redelivery": a.redelivery,
        "duration_ms": a.duration.map(|d| d.as_millis() as u64),
    })
}
