//! Run with:
//!
//! ```text
//! GITHUB_WEBHOOKS_KEY=change-me cargo run -p examples --example send -- EVENT FILE [URL] [--form]
//! ```
//!
//! Signs the JSON in FILE with the secret in `GITHUB_WEBHOOKS_KEY`, as GitHub does
//! (`X-Hub-Signature-256` over the raw body), and POSTs it to URL (default
//! `http://127.0.0.1:8000/hooks`) as event EVENT, with a fresh delivery GUID.
//! `--form` sends it the way form-type hooks do (`payload=<url-encoded JSON>`).
//! Prints the answer's status and body; exits non-zero unless it is a 2xx.
//!
//! Sample payloads live in `examples/payloads/`:
//!
//! ```text
//! cargo run -p examples --example send -- ping examples/payloads/ping.json
//! cargo run -p examples --example send -- push examples/payloads/push.json
//! cargo run -p examples --example send -- pull_request examples/payloads/pull_request.opened.json
//! ```

use std::{
    hash::{BuildHasher, RandomState},
    process::ExitCode,
    time::SystemTime,
};

const USAGE: &str = "usage: send EVENT FILE [URL] [--form]   (secret in GITHUB_WEBHOOKS_KEY)";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let form = args.iter().any(|a| a == "--form");
    args.retain(|a| a != "--form");
    let (event, file, url) = match args.as_slice() {
        [event, file] => (event, file, "http://127.0.0.1:8000/hooks"),
        [event, file, url] => (event, file, url.as_str()),
        _ => return Err(USAGE.to_owned()),
    };
    let secret = std::env::var("GITHUB_WEBHOOKS_KEY")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or("GITHUB_WEBHOOKS_KEY is not set: set it to the server's secret")?;
    let json = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&json)
        .map_err(|e| format!("{file} is not JSON: {e}"))?;
    let (body, content_type) = if form {
        let encoded: String = form_encode(&json);
        (encoded.into_bytes(), "application/x-www-form-urlencoded")
    } else {
        (json, "application/json")
    };
    let signature = hookserver::signature::sign_sha256(secret.as_bytes(), &body);
    let guid = new_guid();
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("user-agent", "GitHub-Hookshot/hookserver-send")
        .header("x-github-event", event.as_str())
        .header("x-github-delivery", &guid)
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    println!("{event} {guid} -> {status}");
    println!("{text}");
    Ok(status.is_success())
}

/// `payload=` followed by the JSON, percent-encoded as a form field.
fn form_encode(json: &[u8]) -> String {
    let mut out = String::from("payload=");
    for &b in json {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A random GUID in GitHub's format (a version-4 UUID), without a UUID crate:
/// std's `RandomState` is seeded from the OS's randomness.
fn new_guid() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let hi = RandomState::new().hash_one(nanos);
    let lo = RandomState::new().hash_one(hi);
    let v = (u128::from(hi) << 64 | u128::from(lo)) & !(0xF000 << 64) & !(0xC << 60)
        | (0x4000 << 64)
        | (0x8 << 60);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
