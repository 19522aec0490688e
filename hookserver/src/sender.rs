//! Sending deliveries the way GitHub does: [`Sender`] signs a payload with the hook's
//! secret, sets GitHub's headers, posts it with a timeout and optional retries, and
//! returns the answer ([`Sent`]). What `hookserver send` uses, and what a program
//! uses to notify another hook server (the role of Python's Barker).
//!
//! The delivery is built by `outgoing` (as the test kit's are); this module only
//! sends it.

use crate::outgoing::{Outgoing, new_guid};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use std::{
    fmt,
    time::{Duration, Instant},
};

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Sends signed deliveries to one URL, like GitHub.
///
/// Each delivery carries `X-GitHub-Event`, `X-GitHub-Delivery` (a fresh random
/// version-4 UUID unless given), `X-Hub-Signature-256` (HMAC-SHA256 of the exact body
/// bytes), `User-Agent: GitHub-Hookshot/...` and `Content-Type`, and optionally
/// `X-GitHub-Hook-ID`, the installation target headers and the legacy `X-Hub-Signature`
/// (SHA-1). A connection error, a timeout or a `5xx` is retried
/// [`retries`](Self::retries) times (none by default), after a pause that starts at
/// [`backoff`](Self::backoff) and doubles, with the same GUID (a receiver with a
/// journal deduplicates on it). `Debug` never shows the secret.
///
/// ```no_run
/// # #![allow(dead_code)]
/// # async fn run() -> Result<(), hookserver::SendError> {
/// use hookserver::Sender;
/// use std::time::Duration;
///
/// let sender = Sender::new("http://127.0.0.1:8000/hooks")
///     .secret("It's a Secret to Everybody")
///     .timeout(Duration::from_secs(10))
///     .retries(3);
/// let sent = sender.send("push", br#"{"ref":"refs/heads/main","commits":[]}"#.to_vec()).await?;
/// println!("{} {} in {:?}", sent.guid, sent.status, sent.duration);
/// assert!(sent.status.is_success());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sender {
    client: Result<reqwest::Client, String>,
    url: String,
    outgoing: Outgoing,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("url", &self.url)
            .field("delivery", &self.outgoing)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// The answer to a delivery.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Sent {
    /// The `X-GitHub-Delivery` sent.
    pub guid: String,
    /// The answer's status (of the last attempt).
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The answer's body.
    pub body: Bytes,
    /// How long the last attempt took, from sending to the end of the body.
    pub duration: Duration,
    /// Attempts made: 1 plus the retries used.
    pub attempts: u32,
}

/// A delivery that got no answer: the connection failed or timed out on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendError {
    /// The URL it was sent to.
    pub url: String,
    /// What went wrong on the last attempt.
    pub why: String,
    /// Attempts made.
    pub attempts: u32,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot deliver to {}: {}", self.url, self.why)?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

impl std::error::Error for SendError {}

impl Sender {
    /// The timeout of each attempt by default: 10 s, GitHub's own.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The `User-Agent` sent by default: GitHub's product name, hookserver's version.
    pub const USER_AGENT: &str = concat!("GitHub-Hookshot/hookserver-", env!("CARGO_PKG_VERSION"));
    /// The first pause before a retry by default: 1 s.
    pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

    /// A sender to `url`, unsigned until [`secret`](Self::secret) is given, JSON, no
    /// retries, a 10 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_client(url, reqwest::Client::builder())
    }

    /// A sender to `url` over a client built by `client` (the test kit's: no proxy,
    /// no TLS roots to load).
    pub(crate) fn with_client(url: impl Into<String>, client: reqwest::ClientBuilder) -> Self {
        let client = client
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"));
        Self {
            client,
            url: url.into(),
            outgoing: Outgoing::new(Self::USER_AGENT),
            timeout: Self::DEFAULT_TIMEOUT,
            retries: 0,
            backoff: Self::DEFAULT_BACKOFF,
        }
    }

    /// Signs every delivery with `secret` (`X-Hub-Signature-256`).
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.outgoing.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Also sends the legacy `X-Hub-Signature` (HMAC-SHA1), as GitHub does.
    pub fn sha1(mut self, on: bool) -> Self {
        self.outgoing.sha1 = on;
        self
    }

    /// Sends the payload as a form (`application/x-www-form-urlencoded`, the JSON in
    /// the `payload` field), as hooks with that content type get it; else JSON.
    pub fn form(mut self, on: bool) -> Self {
        self.outgoing.form = on;
        self
    }

    /// Sends `X-GitHub-Hook-ID: id`.
    pub fn hook_id(mut self, id: u64) -> Self {
        self.outgoing.hook_id = Some(id);
        self
    }

    /// Sends `X-GitHub-Hook-Installation-Target-Type` and `-ID` (`repository`,
    /// `organization`, `integration`...).
    pub fn installation_target(mut self, kind: impl Into<String>, id: u64) -> Self {
        self.outgoing.target = Some((kind.into(), id));
        self
    }

    /// Replaces the `User-Agent` ([`Sender::USER_AGENT`] by default).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.outgoing.user_agent = user_agent.into();
        self
    }

    /// How long each attempt may take, connecting to reading the whole answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a connection error, a timeout or a `5xx` is retried.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The pause before the first retry; it doubles before each further one (a minute
    /// at most).
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The URL deliveries go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `payload` (the JSON text) as event `event`, with a fresh GUID.
    pub async fn send(&self, event: &str, payload: impl Into<Bytes>) -> Result<Sent, SendError> {
        self.send_as(event, &new_guid(), payload).await
    }

    /// Sends `payload` as event `event` with `X-GitHub-Delivery: guid` (a redelivery
    /// keeps its GUID).
    pub async fn send_as(
        &self,
        event: &str,
        guid: &str,
        payload: impl Into<Bytes>,
    ) -> Result<Sent, SendError> {
        let (headers, body) = self
            .outgoing
            .build(event, guid, payload.into())
            .map_err(|why| self.failed(why, 0))?;
        self.post(guid, headers, body).await
    }

    /// Posts a built delivery (`guid` its `X-GitHub-Delivery`), retrying as configured.
    pub(crate) async fn post(
        &self,
        guid: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Sent, SendError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| self.failed(why.clone(), 0))?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = attempts > self.retries;
            let started = Instant::now();
            let outcome = self.attempt(client, headers.clone(), body.clone()).await;
            match outcome {
                Ok((status, _, _)) if status.is_server_error() && !last => {}
                Ok((status, headers, body)) => {
                    return Ok(Sent {
                        guid: guid.to_owned(),
                        status,
                        headers,
                        body,
                        duration: started.elapsed(),
                        attempts,
                    });
                }
                Err(why) if last => return Err(self.failed(why, attempts)),
                Err(_) => {}
            }
            let pause = self
                .backoff
                .saturating_mul(1 << (attempts - 1).min(16))
                .min(MAX_BACKOFF);
            tokio::time::sleep(pause).await;
        }
    }

    fn failed(&self, why: String, attempts: u32) -> SendError {
        SendError {
            url: self.url.clone(),
            why,
            attempts,
        }
    }

    /// One attempt: the answer, or why there was none.
    async fn attempt(
        &self,
        client: &reqwest::Client,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let exchange = async {
            let response = client
                .post(&self.url)
                .headers(headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(describe(&e)),
        }
    }
}

/// A request error in words, with its causes (reqwest's own message is often just
/// "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !why.contains(&text) {
            why.push_str(": ");
            why.push_str(&text);
        }
        source = cause.source();
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_reach_the_delivery() {
        let sender = Sender::new("http://127.0.0.1:9/hooks")
            .secret("s3cret")
            .sha1(true)
            .form(true)
            .hook_id(7)
            .installation_target("repository", 9)
            .user_agent("GitHub-Hookshot/x");
        let (headers, body) = sender
            .outgoing
            .build("push", "g", Bytes::from_static(b"{}"))
            .unwrap();
        assert_eq!(&body[..], b"payload=%7B%7D");
        for (name, value) in [
            ("x-github-hook-id", "7"),
            ("x-github-hook-installation-target-type", "repository"),
            ("x-github-hook-installation-target-id", "9"),
            ("user-agent", "GitHub-Hookshot/x"),
            ("content-type", "application/x-www-form-urlencoded"),
        ] {
            assert_eq!(headers[name], value, "{name}");
        }
        assert!(headers.contains_key("x-hub-signature-256"));
        assert!(headers.contains_key("x-hub-signature"));
    }

    #[test]
    fn debug_redacts_the_secret() {
        let debug = format!("{:?}", Sender::new("http://x/").secret("hunter2"));
        assert!(
            !debug.contains("hunter2") && debug.contains("[redacted]"),
            "{debug}"
        );
    }
}
