//! [`DeliveryLog`]: GitHub's own log of a hook's deliveries, page by page, for a
//! person or a tool (`hookserver deliveries`). The hook is the catch-up's
//! (`HOOKSERVER_CATCHUP`) and so are the client and credentials (`catchup::api`); this
//! module only turns its pages into public records.

use crate::{
    catchup::{
        api::{self, Api, Attempt},
        settings::{CATCHUP, CatchupSettings},
    },
    config::{self, ConfigError, Vars},
    github::{self, Refusal},
    journal::{JOURNAL, time},
    meta::{self, MetaSettings},
};
use std::{fmt, time::Duration, time::SystemTime};

/// GitHub's delivery log of the hook named by `HOOKSERVER_CATCHUP`
/// ([`Config::catchup`](crate::Config::catchup)), newest first, a page (100 attempts)
/// at a time.
///
/// It reads what the catch-up reads: the target, `GITHUB_TOKEN` for a repository or
/// organisation hook (admin rights on the hook), `GITHUB_APP_ID` and the App's key for
/// the App's hook, `GITHUB_API_URL`; it needs no secret and no journal.
///
/// ```no_run
/// # #![allow(dead_code)]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut log = hookserver::DeliveryLog::from_env()?;
/// while let Some(page) = log.next_page().await? {
///     for attempt in page.iter().filter(|a| !a.ok) {
///         println!("{} {} {}: {}", attempt.guid, attempt.event, attempt.status_code, attempt.status);
///     }
/// }
/// # Ok(()) }
/// ```
pub struct DeliveryLog {
    api: Api,
    target: String,
    /// The next page's URL; `None` once the last was read.
    next: Option<String>,
}

impl fmt::Debug for DeliveryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryLog")
            .field("target", &self.target)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// One attempt at a delivery, as GitHub's log lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedDelivery {
    /// The attempt's id (what a redelivery names).
    pub id: u64,
    /// The delivery's GUID (`X-GitHub-Delivery`), the same for every attempt at it.
    pub guid: String,
    /// When GitHub made the attempt.
    pub delivered_at: SystemTime,
    /// GitHub counted it a success (`status` is `OK`).
    pub ok: bool,
    /// GitHub's words for the outcome: `OK`, `Invalid HTTP Response: 503`, a timeout...
    pub status: String,
    /// The hook's answer; 0 when there was none.
    pub status_code: u16,
    /// The event.
    pub event: String,
    /// The payload's action, when it has one.
    pub action: Option<String>,
    /// A redelivery rather than the first attempt.
    pub redelivery: bool,
    /// How long the attempt took.
    pub duration: Option<Duration>,
}

/// The log could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryLogError {
    /// GitHub is rate limiting these credentials: no request before `until`.
    RateLimited {
        /// When requests may start again.
        until: SystemTime,
    },
    /// Anything else: credentials refused, GitHub unreachable, an answer not understood.
    Failed(String),
}

impl fmt::Display for DeliveryLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RateLimited { until } => write!(
                f,
                "rate limited by GitHub until {}",
                httpdate::fmt_http_date(*until)
            ),
            Self::Failed(why) => write!(f, "cannot read GitHub's delivery log: {why}"),
        }
    }
}

impl std::error::Error for DeliveryLogError {}

impl DeliveryLog {
    /// The log of the hook the environment names (`HOOKSERVER_CATCHUP` and the
    /// variables above). An error names the variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(lookup);
        let read = || {
            let mut meta = MetaSettings::default();
            if let Some(url) = vars.get(meta::API_URL) {
                meta.api_url = url.trim().to_owned();
            }
            meta.token = vars.get(meta::TOKEN).map(|t| t.trim().to_owned());
            let mut catchup = CatchupSettings::default();
            config::read_catchup(&vars, &mut catchup)?;
            Self::new(&meta, &catchup)
        };
        read().map_err(ConfigError::named_by_variable)
    }

    /// The log of the hook `config`'s catch-up reads ([`Config::catchup`](crate::Config::catchup)).
    pub fn from_config(config: &crate::Config) -> Result<Self, ConfigError> {
        Self::new(&config.meta, &config.catchup)
    }

    fn new(meta: &MetaSettings, catchup: &CatchupSettings) -> Result<Self, ConfigError> {
        meta.check()?;
        let missing = ConfigError::Missing {
            setting: CATCHUP.method,
            why: "it names the hook whose delivery log to read \
                  (repo:OWNER/REPO/HOOK_ID, org:ORG/HOOK_ID or app)",
        };
        // The log needs no journal: only the catch-up does.
        let checked = catchup
            .check(meta.token.as_deref(), true, JOURNAL)?
            .ok_or(missing)?;
        let target = checked.target.key();
        let client = github::client(api::REQUEST_TIMEOUT, "the HTTP client for the delivery log")?;
        let api = Api::for_target(client, &meta.api_url, checked, meta.token.as_deref());
        let next = Some(api.first_page());
        Ok(Self { api, target, next })
    }

    /// The hook: `repo:OWNER/REPO/HOOK_ID`, `org:ORG/HOOK_ID` or `app`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The next page of attempts, newest first (the first page on the first call);
    /// `None` after the last. A failed page can be asked for again.
    pub async fn next_page(&mut self) -> Result<Option<Vec<LoggedDelivery>>, DeliveryLogError> {
        let Some(url) = &self.next else {
            return Ok(None);
        };
        let page = self.api.list(url).await.map_err(|refusal| match refusal {
            Refusal::RateLimited { until } => DeliveryLogError::RateLimited { until },
            Refusal::Failed { why, .. } => DeliveryLogError::Failed(why),
        })?;
        self.next = page.next;
        Ok(Some(page.attempts.into_iter().map(logged).collect()))
    }
}

fn logged(a: Attempt) -> LoggedDelivery {
    LoggedDelivery {
        id: a.id,
        guid: a.guid,
        delivered_at: time::from_millis(a.delivered_at),
        ok: a.ok,
        status: a.status,
        status_code: a.status_code,
        event: a.event,
        action: a.action,
        redelivery: a.redelivery,
        duration: a.duration_ms.map(Duration::from_millis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<DeliveryLog, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DeliveryLog::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn needs_only_the_target_and_its_credentials() {
        let log = from(&[
            ("HOOKSERVER_CATCHUP", "repo:o/r/5"),
            ("GITHUB_TOKEN", "ghp_x"),
        ])
        .unwrap();
        assert_eq!(log.target(), "repo:o/r/5");
        assert!(!format!("{log:?}").contains("ghp_x"));
        let err = from(&[]).unwrap_err().to_string();
        assert!(
            err.starts_with("HOOKSERVER_CATCHUP is not set: it names the hook"),
            "{err}"
        );
        let err = from(&[("HOOKSERVER_CATCHUP", "repo:o/r/5")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("GITHUB_TOKEN is not set"), "{err}");
        let err = from(&[("HOOKSERVER_CATCHUP", "app")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("GITHUB_APP_ID is not set"), "{err}");
        let err = from(&[
            ("HOOKSERVER_CATCHUP", "repo:o/r/5"),
            ("GITHUB_TOKEN", "t"),
            ("GITHUB_API_URL", "ftp://x"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("GITHUB_API_URL: expected"), "{err}");
    }
}
