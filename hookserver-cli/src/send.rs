//! `hookserver send`: one delivery through [`hookserver::Sender`], the answer printed.

use crate::{Failure, SendArgs, required_var};
use hookserver::Sender;
use std::time::Duration;

pub(crate) async fn run(args: SendArgs) -> Result<(), Failure> {
    let secret = required_var(
        &args.secret_env,
        "set it to the hook's secret (or name another variable with --secret-env)",
    )?;
    let file = args.file.display();
    let payload = std::fs::read(&args.file)
        .map_err(|e| Failure::usage(format!("cannot read {file}: {e}")))?;
    match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => return Err(Failure::usage(format!("{file} is JSON but not an object"))),
        Err(e) => return Err(Failure::usage(format!("{file} is not JSON: {e}"))),
    }
    let mut sender = Sender::new(&args.url)
        .secret(secret)
        .sha1(args.sha1)
        .form(args.form)
        .timeout(Duration::from_secs(args.timeout))
        .retries(args.retries);
    if let Some(id) = args.hook_id {
        sender = sender.hook_id(id);
    }
    let sent = match &args.guid {
        Some(guid) => sender.send_as(&args.event, guid, payload).await,
        None => sender.send(&args.event, payload).await,
    }
    .map_err(|e| Failure::failed(e.to_string()))?;
    println!(
        "{} {} -> {} ({} ms{})",
        args.event,
        sent.guid,
        sent.status,
        sent.duration.as_millis(),
        match sent.attempts {
            1 => String::new(),
            n => format!(", {n} attempts"),
        }
    );
    if args.verbose {
        for (name, value) in &sent.headers {
            println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
        }
        println!();
    }
    let body = String::from_utf8_lossy(&sent.body);
    if !body.is_empty() {
        println!("{}", body.trim_end());
    }
    if sent.status.is_success() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "{} answered {}",
            args.url, sent.status
        )))
    }
}
