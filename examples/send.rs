//! Sending a delivery from your own program with `hookserver::Sender`, the way
//! GitHub does. Run with:
//!
//! ```text
//! GITHUB_WEBHOOKS_KEY=change-me cargo run -p examples --example send -- EVENT FILE [URL]
//! ```
//!
//! The `hookserver` command does the same with every option (`hookserver send --help`):
//! `cargo install --path hookserver-cli`.

use hookserver::Sender;
use std::{process::ExitCode, time::Duration};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (event, file, url) = match args.as_slice() {
        [event, file] => (event, file, "http://127.0.0.1:8000/hooks"),
        [event, file, url] => (event, file, url.as_str()),
        _ => {
            eprintln!("usage: send EVENT FILE [URL]   (secret in GITHUB_WEBHOOKS_KEY)");
            return ExitCode::from(2);
        }
    };
    let (Ok(secret), Ok(payload)) = (std::env::var("GITHUB_WEBHOOKS_KEY"), std::fs::read(file))
    else {
        eprintln!("error: set GITHUB_WEBHOOKS_KEY, and give a readable FILE");
        return ExitCode::from(2);
    };
    let sender = Sender::new(url)
        .secret(secret)
        .timeout(Duration::from_secs(10))
        .retries(2);
    match sender.send(event, payload).await {
        Ok(sent) => {
            println!("{event} {} -> {}", sent.guid, sent.status);
            println!("{}", String::from_utf8_lossy(&sent.body));
            if sent.status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
