//! The journal's settings: which engine, when to acknowledge, how many workers, how
//! to retry, how long to keep finished deliveries, how many may wait.

use super::{
    JournalError,
    postgres::{PgUrl, PostgresStore},
    sqlite::SqliteStore,
    store::Store,
};
use crate::config::{ConfigError, Expected, Setting};
use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

pub(crate) const JOURNAL: Setting = Setting::new("Config::journal", "HOOKSERVER_JOURNAL");
pub(crate) const ACK: Setting = Setting::new("Config::ack", "HOOKSERVER_ACK");
pub(crate) const WORKERS: Setting = Setting::new("Config::workers", "HOOKSERVER_WORKERS");
pub(crate) const RETRY_ATTEMPTS: Setting =
    Setting::new("Config::retry_attempts", "HOOKSERVER_RETRY_ATTEMPTS");
pub(crate) const RETRY_BACKOFF: Setting =
    Setting::new("Config::retry_backoff", "HOOKSERVER_RETRY_BACKOFF_SECS");
pub(crate) const RETENTION_DAYS: Setting = Setting::new(
    "Config::journal_retention",
    "HOOKSERVER_JOURNAL_RETENTION_DAYS",
);
pub(crate) const MAX_PENDING: Setting = Setting::new(
    "Config::journal_max_pending",
    "HOOKSERVER_JOURNAL_MAX_PENDING",
);

/// When a journaled delivery is acknowledged to GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ack {
    /// `202 Queued` as soon as the delivery is durable; its handler runs after, in a
    /// worker (the default: GitHub gets its answer in milliseconds, whatever the
    /// handler does).
    #[default]
    Journal,
    /// The handler runs in the request, as without a journal, and its answer goes
    /// back to GitHub; a failure (`5xx`, panic, timeout) is retried by the workers.
    Handler,
}

impl Ack {
    pub(crate) fn parse(value: &str) -> Result<Self, Expected> {
        match value.trim().to_ascii_lowercase().as_str() {
            "journal" => Ok(Self::Journal),
            "handler" => Ok(Self::Handler),
            _ => Err(Expected("journal or handler")),
        }
    }
}

/// An engine named by a journal URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite(PathBuf),
    /// Debug shows the URL with its password redacted.
    Postgres(PgUrl),
}

impl Engine {
    /// `sqlite:PATH`, `sqlite://PATH`, `postgres://...` or `postgresql://...`; the
    /// error says what is accepted, and never holds a password.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!(
                    "{url:?}: the journal URL has no path (sqlite:PATH)"
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return PgUrl::parse(url).map(Self::Postgres);
        }
        Err(format!(
            "{:?}: a journal URL is sqlite:PATH or postgres://USER:PASSWORD@HOST/DATABASE",
            redact(url)
        ))
    }

    /// Opens the engine (blocking: at start-up). `workers` sizes PostgreSQL's pool.
    pub(crate) fn open(&self, workers: usize) -> Result<Arc<dyn Store>, JournalError> {
        match self {
            Self::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path)?)),
            Self::Postgres(url) => Ok(Arc::new(PostgresStore::open(url, workers)?)),
        }
    }
}

/// The URL with any password replaced, for messages: the password of the
/// `user:password@` part, and the value of a `password=` parameter.
pub(crate) fn redact(url: &str) -> String {
    let url = redact_userinfo(url);
    match url.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => url,
    }
}

fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The last `@` before the query ends the user info, even when an unencoded `@`
    // is in the password.
    let before_query = rest.split('?').next().unwrap_or(rest);
    match before_query.rsplit_once('@') {
        Some((userinfo, _)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[userinfo.len()..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Every journal setting; `url: None` is no journal.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct JournalSettings {
    pub(crate) url: Option<String>,
    pub(crate) ack: Ack,
    pub(crate) workers: usize,
    pub(crate) retry_attempts: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) retention: Duration,
    pub(crate) max_pending: u64,
}

impl fmt::Debug for JournalSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalSettings")
            .field("url", &self.url.as_deref().map(redact))
            .field("ack", &self.ack)
            .field("workers", &self.workers)
            .field("retry_attempts", &self.retry_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .field("retention", &self.retention)
            .field("max_pending", &self.max_pending)
            .finish()
    }
}

impl JournalSettings {
    pub(crate) const DEFAULT_WORKERS: usize = 16;
    pub(crate) const DEFAULT_RETRY_ATTEMPTS: u32 = 8;
    pub(crate) const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(5);
    pub(crate) const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
    pub(crate) const DEFAULT_MAX_PENDING: u64 = 100_000;

    pub(crate) fn new() -> Self {
        Self {
            url: None,
            ack: Ack::Journal,
            workers: Self::DEFAULT_WORKERS,
            retry_attempts: Self::DEFAULT_RETRY_ATTEMPTS,
            retry_backoff: Self::DEFAULT_RETRY_BACKOFF,
            retention: Self::DEFAULT_RETENTION,
            max_pending: Self::DEFAULT_MAX_PENDING,
        }
    }

    /// `off` (any case) and the empty string are no journal.
    pub(crate) fn set_url(&mut self, url: &str) {
        let url = url.trim();
        self.url = (!url.is_empty() && !url.eq_ignore_ascii_case("off")).then(|| url.to_owned());
    }

    pub(crate) fn engine(&self) -> Result<Option<Engine>, ConfigError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        Engine::parse(url)
            .map(Some)
            .map_err(|why| ConfigError::Invalid {
                setting: JOURNAL.method,
                value: redact(url),
                expected: if why.contains("PostgreSQL") {
                    "postgres://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=require]"
                } else {
                    "sqlite:PATH, postgres://USER:PASSWORD@HOST/DATABASE, or off"
                },
            })
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.engine()?;
        let zero = |setting: Setting, expected| Err(ConfigError::invalid(setting, "0", expected));
        if self.workers == 0 {
            return zero(WORKERS, "at least 1");
        }
        if self.retry_attempts == 0 {
            return zero(RETRY_ATTEMPTS, "at least 1");
        }
        if self.retry_backoff.is_zero() {
            return zero(RETRY_BACKOFF, "at least 1 second");
        }
        if self.retention.is_zero() {
            return zero(RETENTION_DAYS, "at least 1 day");
        }
        if self.max_pending == 0 {
            return zero(MAX_PENDING, "at least 1");
        }
        Ok(())
    }
}

/// Whole days, at least 1.
pub(crate) fn parse_days(value: &str) -> Result<Duration, Expected> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err(Expected("at least 1 day")),
        Ok(days) if days <= 36_500 => Ok(Duration::from_secs(days * 24 * 3600)),
        _ => Err(Expected("a whole number of days")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Engine::parse("sqlite:hookserver.db"),
            Ok(Engine::Sqlite("hookserver.db".into()))
        );
        assert_eq!(
            Engine::parse("sqlite:///var/lib/h.db"),
            Ok(Engine::Sqlite("/var/lib/h.db".into()))
        );
        assert!(Engine::parse("sqlite:").is_err());
        assert!(Engine::parse("hookserver.db").is_err());
        for url in [
            "postgres://u:hunter2@db/x",
            "postgresql://u:hunter2@db:5433/x?sslmode=require",
        ] {
            let engine = Engine::parse(url).unwrap();
            assert!(matches!(engine, Engine::Postgres(_)), "{url}");
            let debug = format!("{engine:?}");
            assert!(
                !debug.contains("hunter2") && debug.contains("u:***@db"),
                "{debug}"
            );
        }
        for bad in [
            "postgres://u:hunter2@db/x?sslmode=sometimes",
            "postgres://u:hunter2@db:notaport/x",
            "postgres://u:hunter2@db/x?nonsense=1",
        ] {
            let err = Engine::parse(bad).unwrap_err();
            assert!(
                !err.contains("hunter2") && err.contains("PostgreSQL"),
                "{err}"
            );
        }
        assert_eq!(redact("postgres://u:a@b:c@db/x"), "postgres://u:***@db/x");
        assert_eq!(
            redact("postgres://db/x?user=u&password=hunter2"),
            "postgres://db/x?user=u&password=***"
        );
        let other = Engine::parse("mysql://u:hunter2@db/x").unwrap_err();
        assert!(
            !other.contains("hunter2") && other.contains("u:***@db"),
            "{other}"
        );
    }

    #[test]
    fn off_is_no_journal() {
        let mut s = JournalSettings::new();
        s.set_url("sqlite:a.db");
        assert!(s.url.is_some());
        s.set_url("OFF");
        assert!(s.url.is_none());
    }

    #[test]
    fn debug_redacts_the_password() {
        let mut s = JournalSettings::new();
        s.set_url("postgres://u:hunter2@db/x");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(s.check().is_ok());
        s.set_url("postgres://u:hunter2@db/x?password=hunter2&sslmode=bogus");
        assert!(!format!("{s:?}").contains("hunter2"));
        let err = s.check().unwrap_err().to_string();
        assert!(
            !err.contains("hunter2") && err.contains("Config::journal"),
            "{err}"
        );
    }

    #[test]
    fn days() {
        assert_eq!(parse_days("7").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_days("0").is_err());
        assert!(parse_days("a week").is_err());
    }
}
