//! `Config`: the flat builder users see, and `Config::from_env()`.
//!
//! Behind the builder each concern owns its settings, next to the code that uses
//! them: `signature::SignatureSettings`, `source::SourceSettings`,
//! `meta::MetaSettings`, `body::BodySettings`, and the handler timeout. Each is
//! checked by its own module, naming the builder method at fault; only
//! [`Config::from_env`] turns those names into the environment variables.

use crate::{
    body::{self, BodySettings},
    catchup::settings::{self as catchup, AppKey, CatchupSettings},
    journal::{self, Ack, JournalSettings},
    meta::{self, MetaSettings},
    signature::{self, SignatureSettings},
    source::{self, SourceSettings},
};
use ipnet::IpNet;
use std::{fmt, time::Duration};

/// A setting's two names: the builder method and the environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Setting {
    pub(crate) method: &'static str,
    pub(crate) variable: &'static str,
}

impl Setting {
    pub(crate) const fn new(method: &'static str, variable: &'static str) -> Self {
        Self { method, variable }
    }
}

/// `HOOKSERVER_PREVIOUS_WEBHOOKS_KEY`: the second secret, while rotating.
const PREVIOUS_SECRET: Setting = Setting::new("Config::secret", "HOOKSERVER_PREVIOUS_WEBHOOKS_KEY");
/// `Config::handler_timeout` / `HOOKSERVER_HANDLER_TIMEOUT_SECS`.
const HANDLER_TIMEOUT: Setting =
    Setting::new("Config::handler_timeout", "HOOKSERVER_HANDLER_TIMEOUT_SECS");

/// Every setting `from_env` reads, so an error found by a module's check can be
/// renamed after the variable.
const SETTINGS: &[Setting] = &[
    signature::SECRET,
    signature::VALIDATE_SIGNATURE,
    signature::ALLOW_SHA1,
    source::VALIDATE_IP,
    source::TRUSTED_PROXIES,
    source::ALLOWED_IPS,
    meta::API_URL,
    meta::TOKEN,
    meta::TTL,
    meta::MAX_STALE,
    meta::TIMEOUT,
    meta::WARM,
    body::BODY_LIMIT,
    body::BODY_TIMEOUT,
    body::MAX_BUFFERED,
    HANDLER_TIMEOUT,
    journal::JOURNAL,
    journal::ACK,
    journal::WORKERS,
    journal::RETRY_ATTEMPTS,
    journal::RETRY_BACKOFF,
    journal::RETENTION_DAYS,
    journal::MAX_PENDING,
    catchup::CATCHUP,
    catchup::INTERVAL,
    catchup::WINDOW,
    catchup::MAX_REDELIVERIES,
    catchup::APP_ID,
    catchup::APP_KEY,
    catchup::APP_KEY_PATH,
];

/// Every setting of a [`Hooks`](crate::Hooks) registry.
///
/// Start from [`Config::new`] (secure defaults: signature and source-IP checks on)
/// or [`Config::from_env`], then adjust with the builder methods:
///
/// ```
/// use hookserver::Config;
///
/// let config = Config::new()
///     .secret("It's a Secret to Everybody")
///     .validate_ip(false);
/// assert!(config.check().is_ok());
/// ```
///
/// Secrets and the GitHub token never appear in `Debug` output.
#[derive(Clone)]
pub struct Config {
    pub(crate) signature: SignatureSettings,
    pub(crate) source: SourceSettings,
    pub(crate) meta: MetaSettings,
    pub(crate) body: BodySettings,
    pub(crate) handler_timeout: Duration,
    pub(crate) journal: JournalSettings,
    pub(crate) catchup: CatchupSettings,
    /// How often at most each kind of rejection is warned about (a minute; shorter
    /// only in tests, through `__private::rejection_log_interval`).
    pub(crate) rejection_log_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("signature", &self.signature)
            .field("source", &self.source)
            .field("meta", &self.meta)
            .field("body", &self.body)
            .field("handler_timeout", &self.handler_timeout)
            .field("journal", &self.journal)
            .field("catchup", &self.catchup)
            .field("rejection_log_interval", &self.rejection_log_interval)
            .finish()
    }
}

impl Config {
    /// The largest body accepted by default: 25 MiB, just above GitHub's 25 MB cap
    /// on payloads (GitHub does not deliver larger events at all).
    pub const DEFAULT_BODY_LIMIT: usize = BodySettings::DEFAULT_LIMIT;

    /// How many bytes the bodies of all deliveries being received may hold together
    /// by default: 256 MiB. Bodies are buffered before their signature can be
    /// checked, so this is what unsigned senders can make the server hold at most.
    pub const DEFAULT_MAX_BUFFERED_BYTES: usize = BodySettings::DEFAULT_MAX_BUFFERED;

    /// How long a client may take to send the request body: 10 s, GitHub's own
    /// delivery timeout (a delivery slower than that has failed on GitHub's side).
    pub const DEFAULT_BODY_TIMEOUT: Duration = BodySettings::DEFAULT_TIMEOUT;

    /// How long a handler may run before the delivery is answered `503`: 8 s, below
    /// GitHub's 10 s delivery timeout so GitHub records our answer, not its timeout.
    pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(8);

    /// At most one warning per kind of rejection per minute: the first at once,
    /// then a count.
    pub(crate) const REJECTION_LOG_INTERVAL: Duration = Duration::from_secs(60);

    /// Handlers running at once from the journal: 16.
    pub const DEFAULT_WORKERS: usize = JournalSettings::DEFAULT_WORKERS;

    /// Attempts before a journaled delivery is `dead`: 8.
    pub const DEFAULT_RETRY_ATTEMPTS: u32 = JournalSettings::DEFAULT_RETRY_ATTEMPTS;

    /// The first retry's delay: 5 s, doubled each attempt (±20% jitter, at most
    /// 1 h), so 8 attempts span about 10 minutes.
    pub const DEFAULT_RETRY_BACKOFF: Duration = JournalSettings::DEFAULT_RETRY_BACKOFF;

    /// How long finished deliveries stay in the journal: 7 days, beyond GitHub's 3
    /// days of delivery history.
    pub const DEFAULT_JOURNAL_RETENTION: Duration = JournalSettings::DEFAULT_RETENTION;

    /// Unfinished deliveries the journal holds before it answers `503`: 100,000.
    pub const DEFAULT_JOURNAL_MAX_PENDING: u64 = JournalSettings::DEFAULT_MAX_PENDING;

    /// How often the catch-up reads GitHub's delivery log: 10 minutes.
    pub const DEFAULT_CATCHUP_INTERVAL: Duration = CatchupSettings::DEFAULT_INTERVAL;

    /// How far back the catch-up looks: 72 hours, the 3 days GitHub keeps deliveries
    /// (GitHub Enterprise Server keeps 7).
    pub const DEFAULT_CATCHUP_WINDOW: Duration = CatchupSettings::DEFAULT_WINDOW;

    /// Redeliveries the catch-up asks for at most in one pass: 100.
    pub const DEFAULT_CATCHUP_MAX_REDELIVERIES: usize = CatchupSettings::DEFAULT_MAX_REDELIVERIES;

    /// GitHub's REST API on github.com.
    pub const DEFAULT_GITHUB_API_URL: &str = MetaSettings::DEFAULT_API_URL;

    /// How long a fetched `/meta` list is used before it is revalidated: 1 hour.
    ///
    /// Unauthenticated, GitHub allows 60 API requests an hour per source IP, and
    /// that budget is shared with everything else on the host that calls the API
    /// without a token. One conditional request an hour costs at most 1 of those 60
    /// (a `304` costs none), while GitHub changes its hook ranges a few times a year
    /// and announces changes ahead of time.
    pub const DEFAULT_META_TTL: Duration = MetaSettings::DEFAULT_TTL;

    /// How long past its freshness the last good `/meta` list is still used while
    /// refreshes fail: 24 hours.
    pub const DEFAULT_META_MAX_STALE: Duration = MetaSettings::DEFAULT_MAX_STALE;

    /// How long one request to GitHub's `/meta` may take before it counts as
    /// failed: 5 s, well under GitHub's 10 s delivery timeout, so a hanging API
    /// turns into a `503` that GitHub records, not a delivery that times out.
    pub const DEFAULT_META_TIMEOUT: Duration = MetaSettings::DEFAULT_TIMEOUT;

    /// The defaults: signature and source-IP checks on, SHA-1 signatures refused,
    /// 25 MiB body limit, github.com's API, no secret yet (add one with
    /// [`secret`](Self::secret) or turn signature checking off).
    pub fn new() -> Self {
        Self {
            signature: SignatureSettings::default(),
            source: SourceSettings::default(),
            meta: MetaSettings::default(),
            body: BodySettings {
                limit: Self::DEFAULT_BODY_LIMIT,
                timeout: Self::DEFAULT_BODY_TIMEOUT,
                max_buffered: Self::DEFAULT_MAX_BUFFERED_BYTES,
            },
            handler_timeout: Self::DEFAULT_HANDLER_TIMEOUT,
            journal: JournalSettings::new(),
            catchup: CatchupSettings::default(),
            rejection_log_interval: Self::REJECTION_LOG_INTERVAL,
        }
    }

    /// Adds a webhook secret. Call it again to accept a second secret while you
    /// rotate: a delivery signed with any of them is accepted.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.signature.secrets.push(secret.as_ref().to_vec());
        self
    }

    /// Whether deliveries must carry a valid signature (default `true`).
    /// Turning it off accepts unsigned deliveries from anyone who can reach you.
    pub fn validate_signature(mut self, on: bool) -> Self {
        self.signature.validate = on;
        self
    }

    /// Whether deliveries must come from GitHub's published hook addresses
    /// (default `true`).
    pub fn validate_ip(mut self, on: bool) -> Self {
        self.source.validate = on;
        self
    }

    /// Whether the legacy `X-Hub-Signature` (HMAC-SHA1) header is accepted when
    /// `X-Hub-Signature-256` is absent (default `false`).
    pub fn allow_sha1(mut self, on: bool) -> Self {
        self.signature.allow_sha1 = on;
        self
    }

    /// The largest request body accepted, in bytes (default
    /// [`DEFAULT_BODY_LIMIT`](Self::DEFAULT_BODY_LIMIT)); larger ones get `413`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body.limit = bytes;
        self
    }

    /// How many bytes the bodies of all deliveries being received may hold together
    /// (default [`DEFAULT_MAX_BUFFERED_BYTES`](Self::DEFAULT_MAX_BUFFERED_BYTES)). A
    /// delivery that finds the budget full waits up to 2 s for room, then gets
    /// `503` with `Retry-After`. At least the body limit.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.body.max_buffered = bytes;
        self
    }

    /// The base URL of GitHub's REST API (default `https://api.github.com`; on
    /// GitHub Enterprise Server `https://HOST/api/v3`). `/meta` is fetched below it.
    pub fn github_api_url(mut self, url: impl Into<String>) -> Self {
        self.meta.api_url = url.into();
        self
    }

    /// A token sent as `Authorization: Bearer` when fetching `/meta`, which raises
    /// GitHub's rate limit from 60 to 5,000 requests an hour.
    pub fn github_token(mut self, token: impl Into<String>) -> Self {
        self.meta.token = Some(token.into());
        self
    }

    /// Proxies whose `X-Forwarded-For` header is believed (default: none, so the
    /// header is ignored and the socket peer is the client).
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpNet>) -> Self {
        self.source.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// A fixed allow-list that replaces fetching GitHub's `/meta` (for GitHub
    /// Enterprise Server installs that do not publish hook ranges, and hosts that
    /// cannot reach the API).
    pub fn allowed_ips(mut self, ranges: impl IntoIterator<Item = IpNet>) -> Self {
        self.source.allowed_ips = Some(ranges.into_iter().collect());
        self
    }

    /// How long a fetched `/meta` list is used before it is revalidated
    /// (default [`DEFAULT_META_TTL`](Self::DEFAULT_META_TTL)).
    pub fn meta_ttl(mut self, ttl: Duration) -> Self {
        self.meta.ttl = ttl;
        self
    }

    /// How long past its freshness the last good `/meta` list keeps being used while
    /// refreshes fail (default [`DEFAULT_META_MAX_STALE`](Self::DEFAULT_META_MAX_STALE)).
    pub fn meta_max_stale(mut self, max_stale: Duration) -> Self {
        self.meta.max_stale = max_stale;
        self
    }

    /// How long one `/meta` request may take (default
    /// [`DEFAULT_META_TIMEOUT`](Self::DEFAULT_META_TIMEOUT)).
    pub fn meta_timeout(mut self, timeout: Duration) -> Self {
        self.meta.timeout = timeout;
        self
    }

    /// Whether building the [`Hooks`](crate::Hooks) starts fetching `/meta` in the
    /// background right away, so the first delivery does not wait for GitHub
    /// (default `false`: no request to GitHub until a delivery needs one).
    pub fn meta_warm(mut self, on: bool) -> Self {
        self.meta.warm = on;
        self
    }

    /// How long a client may take to send the whole body before it is answered
    /// `408` (default [`DEFAULT_BODY_TIMEOUT`](Self::DEFAULT_BODY_TIMEOUT)).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body.timeout = timeout;
        self
    }

    /// How long a handler may run before the delivery is answered `503` and the
    /// handler is dropped (default
    /// [`DEFAULT_HANDLER_TIMEOUT`](Self::DEFAULT_HANDLER_TIMEOUT)). For longer work,
    /// spawn a task and answer at once.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// Journals every verified delivery at `url` before acknowledging it, and
    /// processes it with retries: `sqlite:PATH` (the file is created if missing).
    /// `off` or an empty string is no journal (the default). See the README's
    /// "Durable deliveries".
    pub fn journal(mut self, url: impl AsRef<str>) -> Self {
        self.journal.set_url(url.as_ref());
        self
    }

    /// When a journaled delivery is acknowledged (default [`Ack::Journal`]:
    /// `202 Queued` once it is durable).
    pub fn ack(mut self, ack: Ack) -> Self {
        self.journal.ack = ack;
        self
    }

    /// How many journaled deliveries' handlers run at once (default
    /// [`DEFAULT_WORKERS`](Self::DEFAULT_WORKERS)).
    pub fn workers(mut self, workers: usize) -> Self {
        self.journal.workers = workers;
        self
    }

    /// Attempts before a journaled delivery is `dead` (default
    /// [`DEFAULT_RETRY_ATTEMPTS`](Self::DEFAULT_RETRY_ATTEMPTS)).
    pub fn retry_attempts(mut self, attempts: u32) -> Self {
        self.journal.retry_attempts = attempts;
        self
    }

    /// The delay before the first retry, doubled for each one after (default
    /// [`DEFAULT_RETRY_BACKOFF`](Self::DEFAULT_RETRY_BACKOFF)).
    pub fn retry_backoff(mut self, first_delay: Duration) -> Self {
        self.journal.retry_backoff = first_delay;
        self
    }

    /// How long finished deliveries are kept (default
    /// [`DEFAULT_JOURNAL_RETENTION`](Self::DEFAULT_JOURNAL_RETENTION)).
    pub fn journal_retention(mut self, retention: Duration) -> Self {
        self.journal.retention = retention;
        self
    }

    /// How many unfinished deliveries the journal may hold before new ones are
    /// answered `503 Too many pending deliveries` (default
    /// [`DEFAULT_JOURNAL_MAX_PENDING`](Self::DEFAULT_JOURNAL_MAX_PENDING)).
    pub fn journal_max_pending(mut self, max: u64) -> Self {
        self.journal.max_pending = max;
        self
    }

    /// Catches up on missed deliveries from GitHub's delivery log for `target`:
    /// `repo:OWNER/REPO/HOOK_ID`, `org:ORG/HOOK_ID` or `app` (`off` or an empty string:
    /// no catch-up, the default). Needs a [`journal`](Self::journal), and a
    /// [`github_token`](Self::github_token) with admin rights on the hook (repository,
    /// organisation), or the App's [id](Self::github_app_id) and
    /// [private key](Self::github_app_private_key). See the README's "Missed deliveries".
    pub fn catchup(mut self, target: impl AsRef<str>) -> Self {
        self.catchup.set_target(target.as_ref());
        self
    }

    /// How often the catch-up looks (default
    /// [`DEFAULT_CATCHUP_INTERVAL`](Self::DEFAULT_CATCHUP_INTERVAL)).
    pub fn catchup_interval(mut self, interval: Duration) -> Self {
        self.catchup.interval = interval;
        self
    }

    /// How far back the catch-up looks (default
    /// [`DEFAULT_CATCHUP_WINDOW`](Self::DEFAULT_CATCHUP_WINDOW)); at least an hour.
    pub fn catchup_window(mut self, window: Duration) -> Self {
        self.catchup.window = window;
        self
    }

    /// Redeliveries asked for at most in one pass (default
    /// [`DEFAULT_CATCHUP_MAX_REDELIVERIES`](Self::DEFAULT_CATCHUP_MAX_REDELIVERIES)).
    pub fn catchup_max_redeliveries(mut self, max: usize) -> Self {
        self.catchup.max_redeliveries = max;
        self
    }

    /// The GitHub App's id, for the catch-up of the App's hook (`catchup("app")`).
    pub fn github_app_id(mut self, id: u64) -> Self {
        self.catchup.app_id = Some(id);
        self
    }

    /// The GitHub App's private key (the PEM text GitHub gives), for the catch-up of
    /// the App's hook. Never shown by `Debug`.
    pub fn github_app_private_key(mut self, pem: impl Into<String>) -> Self {
        self.catchup.app_key = Some(AppKey::Pem(pem.into()));
        self
    }

    /// A file holding the GitHub App's private key (PEM), read at start-up.
    pub fn github_app_private_key_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.catchup.app_key = Some(AppKey::Path(path.into()));
        self
    }

    /// Reads the configuration from the environment, starting from
    /// [`Config::new`]'s defaults.
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `GITHUB_WEBHOOKS_KEY` | the webhook secret |
    /// | `HOOKSERVER_PREVIOUS_WEBHOOKS_KEY` | a second accepted secret, while rotating |
    /// | `VALIDATE_SIGNATURE` | `true`/`false`/`1`/`0`, default `true` |
    /// | `VALIDATE_IP` | `true`/`false`/`1`/`0`, default `true` |
    /// | `HOOKSERVER_ALLOW_SHA1` | accept `X-Hub-Signature` (SHA-1), default `false` |
    /// | `HOOKSERVER_BODY_LIMIT` | bytes, default 26214400 (25 MiB) |
    /// | `HOOKSERVER_MAX_BUFFERED_BYTES` | bytes, default 268435456 (256 MiB) |
    /// | `GITHUB_API_URL` | default `https://api.github.com` |
    /// | `GITHUB_TOKEN` | sent when fetching `/meta` |
    /// | `HOOKSERVER_TRUSTED_PROXIES` | comma-separated CIDRs or addresses |
    /// | `HOOKSERVER_ALLOWED_IPS` | comma-separated CIDRs; replaces `/meta` |
    /// | `HOOKSERVER_META_TTL_SECS` | default 3600 |
    /// | `HOOKSERVER_META_MAX_STALE_SECS` | default 86400 |
    /// | `HOOKSERVER_META_TIMEOUT_SECS` | default 5 |
    /// | `HOOKSERVER_META_WARM` | fetch `/meta` at start-up, default `false` |
    /// | `HOOKSERVER_BODY_TIMEOUT_SECS` | default 10 |
    /// | `HOOKSERVER_HANDLER_TIMEOUT_SECS` | default 8 |
    /// | `HOOKSERVER_JOURNAL` | `sqlite:PATH`, or `off` (the default) |
    /// | `HOOKSERVER_ACK` | `journal` (default) or `handler` |
    /// | `HOOKSERVER_WORKERS` | default 16 |
    /// | `HOOKSERVER_RETRY_ATTEMPTS` | default 8 |
    /// | `HOOKSERVER_RETRY_BACKOFF_SECS` | default 5 |
    /// | `HOOKSERVER_JOURNAL_RETENTION_DAYS` | default 7 |
    /// | `HOOKSERVER_JOURNAL_MAX_PENDING` | default 100000 |
    /// | `HOOKSERVER_CATCHUP` | `repo:OWNER/REPO/HOOK_ID`, `org:ORG/HOOK_ID`, `app`, or `off` (the default) |
    /// | `HOOKSERVER_CATCHUP_INTERVAL_SECS` | default 600 |
    /// | `HOOKSERVER_CATCHUP_WINDOW_HOURS` | default 72 |
    /// | `HOOKSERVER_CATCHUP_MAX_REDELIVERIES` | default 100 |
    /// | `GITHUB_APP_ID` | the App's id, for `HOOKSERVER_CATCHUP=app` |
    /// | `GITHUB_APP_PRIVATE_KEY` | the App's private key (PEM text) |
    /// | `GITHUB_APP_PRIVATE_KEY_PATH` | a file holding it |
    ///
    /// An empty variable counts as unset. A value that does not parse, or signature
    /// checking with no secret, is an error that names the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables (a map in tests,
    /// a secrets manager in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Vars::new(lookup)).map_err(ConfigError::named_by_variable)
    }

    fn read(vars: &Vars<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let mut config = Self::new();
        // A secret is taken as given (no trimming): spaces may be part of it.
        for setting in [signature::SECRET, PREVIOUS_SECRET] {
            if let Some(secret) = (vars.lookup)(setting.variable).filter(|v| !v.is_empty()) {
                config = config.secret(secret);
            }
        }
        let signature = &mut config.signature;
        vars.read(
            signature::VALIDATE_SIGNATURE,
            &mut signature.validate,
            parse_bool,
        )?;
        vars.read(signature::ALLOW_SHA1, &mut signature.allow_sha1, parse_bool)?;
        let source = &mut config.source;
        vars.read(source::VALIDATE_IP, &mut source.validate, parse_bool)?;
        vars.read(
            source::TRUSTED_PROXIES,
            &mut source.trusted_proxies,
            parse_nets,
        )?;
        vars.read(source::ALLOWED_IPS, &mut source.allowed_ips, |v| {
            parse_nets(v).map(Some)
        })?;
        let meta = &mut config.meta;
        if let Some(v) = vars.get(meta::API_URL) {
            meta.api_url = v.trim().to_owned();
        }
        if let Some(v) = vars.get(meta::TOKEN) {
            meta.token = Some(v.trim().to_owned());
        }
        vars.read(meta::TTL, &mut meta.ttl, parse_secs)?;
        vars.read(meta::MAX_STALE, &mut meta.max_stale, parse_secs_or_zero)?;
        vars.read(meta::TIMEOUT, &mut meta.timeout, parse_secs)?;
        vars.read(meta::WARM, &mut meta.warm, parse_bool)?;
        let body = &mut config.body;
        vars.read(body::BODY_LIMIT, &mut body.limit, parse_size)?;
        vars.read(body::MAX_BUFFERED, &mut body.max_buffered, parse_size)?;
        vars.read(body::BODY_TIMEOUT, &mut body.timeout, parse_secs)?;
        vars.read(HANDLER_TIMEOUT, &mut config.handler_timeout, parse_secs)?;
        let journal = &mut config.journal;
        if let Some(url) = vars.get(journal::JOURNAL) {
            journal.set_url(&url);
        }
        vars.read(journal::ACK, &mut journal.ack, Ack::parse)?;
        vars.read(journal::WORKERS, &mut journal.workers, parse_count)?;
        vars.read(journal::RETRY_ATTEMPTS, &mut journal.retry_attempts, |v| {
            parse_count(v)
                .and_then(|n| u32::try_from(n).map_err(|_| Expected("at most 4294967295")))
        })?;
        vars.read(
            journal::RETRY_BACKOFF,
            &mut journal.retry_backoff,
            parse_secs,
        )?;
        vars.read(
            journal::RETENTION_DAYS,
            &mut journal.retention,
            journal::parse_days,
        )?;
        vars.read(journal::MAX_PENDING, &mut journal.max_pending, |v| {
            parse_count(v).map(|n| n as u64)
        })?;
        read_catchup(vars, &mut config.catchup)?;
        config.check()?;
        Ok(config)
    }

    /// Checks the settings for combinations that cannot work: signature checking
    /// with no secret, an empty secret, a zero body limit, a budget below it, a zero
    /// TTL or timeout, an API URL that is not `http(s)://`, an empty allow-list. The
    /// error names the builder method at fault. [`Hooks::new`](crate::Hooks::new)
    /// panics with this error's message; [`Hooks::try_new`](crate::Hooks::try_new)
    /// returns it.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.signature.check()?;
        self.source.check(&self.meta)?;
        self.body.check()?;
        if self.handler_timeout.is_zero() {
            return Err(ConfigError::invalid(
                HANDLER_TIMEOUT,
                "0",
                "at least 1 second",
            ));
        }
        self.journal.check()?;
        self.catchup_checked().map(drop)
    }

    /// The catch-up's checked settings, when it is on.
    pub(crate) fn catchup_checked(&self) -> Result<Option<catchup::Checked>, ConfigError> {
        self.catchup.check(
            self.meta.token.as_deref(),
            self.journal.url.is_some(),
            journal::JOURNAL,
        )
    }
}

/// The catch-up's variables into `catchup` (also what [`DeliveryLog`](crate::DeliveryLog)
/// reads).
pub(crate) fn read_catchup(
    vars: &Vars<impl Fn(&str) -> Option<String>>,
    catchup: &mut CatchupSettings,
) -> Result<(), ConfigError> {
    if let Some(target) = vars.get(catchup::CATCHUP) {
        catchup.set_target(&target);
    }
    vars.read(catchup::INTERVAL, &mut catchup.interval, parse_secs)?;
    vars.read(catchup::WINDOW, &mut catchup.window, catchup::parse_hours)?;
    vars.read(
        catchup::MAX_REDELIVERIES,
        &mut catchup.max_redeliveries,
        parse_count,
    )?;
    vars.read(catchup::APP_ID, &mut catchup.app_id, |v| {
        match v.trim().parse::<u64>() {
            Ok(id) if id > 0 => Ok(Some(id)),
            _ => Err(Expected("the App's numeric id")),
        }
    })?;
    // A key is taken as given (PEM text spans lines).
    if let Some(path) = vars.get(catchup::APP_KEY_PATH) {
        catchup.app_key = Some(AppKey::Path(path.trim().into()));
    }
    if let Some(pem) = vars.get(catchup::APP_KEY) {
        catchup.app_key = Some(AppKey::Pem(pem));
    }
    Ok(())
}

/// The environment as `from_env` reads it: an empty value counts as unset.
pub(crate) struct Vars<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub(crate) fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The variable's value, unless unset or blank.
    pub(crate) fn get(&self, setting: Setting) -> Option<String> {
        (self.lookup)(setting.variable).filter(|v| !v.trim().is_empty())
    }

    /// Parses the variable into `field` when it is set; a value that does not parse
    /// is an error naming the variable.
    pub(crate) fn read<T>(
        &self,
        setting: Setting,
        field: &mut T,
        parse: impl FnOnce(&str) -> Result<T, Expected>,
    ) -> Result<(), ConfigError> {
        if let Some(value) = self.get(setting) {
            *field = parse(&value).map_err(|Expected(expected)| ConfigError::Invalid {
                setting: setting.variable,
                value,
                expected,
            })?;
        }
        Ok(())
    }
}

/// What a value should have looked like, for the error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Expected(pub(crate) &'static str);

/// A configuration that cannot be used. Its message names the setting to fix: the
/// builder method (`Config::secret`) for a `Config` built in code, the environment
/// variable (`GITHUB_WEBHOOKS_KEY`) for one read by [`Config::from_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Signature checking is on and no secret is set.
    NoSecret {
        /// `Config::secret` or `GITHUB_WEBHOOKS_KEY`.
        setting: &'static str,
    },
    /// A value that cannot be used.
    Invalid {
        /// The builder method or the variable.
        setting: &'static str,
        /// The value as given (never a secret).
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A setting that must be given, with what needs it.
    Missing {
        /// The builder method or the variable.
        setting: &'static str,
        /// What needs it.
        why: &'static str,
    },
    /// A part could not be built at start-up (the HTTP client for `/meta`).
    Startup {
        /// What could not be built.
        what: &'static str,
        /// Why.
        why: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecret { setting } if *setting == signature::SECRET.variable => f.write_str(
                "GITHUB_WEBHOOKS_KEY is not set: signature checking is on, so a secret is \
                 required (set it to the hook's secret, or set VALIDATE_SIGNATURE=false to \
                 accept unsigned deliveries)",
            ),
            Self::NoSecret { setting } => write!(
                f,
                "no secret: signature checking is on, so {setting} is required (or call \
                 Config::validate_signature(false) to accept unsigned deliveries)"
            ),
            Self::Invalid {
                setting,
                value,
                expected,
            } => write!(f, "{setting}: expected {expected}, got {value:?}"),
            Self::Missing { setting, why } => write!(f, "{setting} is not set: {why}"),
            Self::Startup { what, why } => write!(f, "cannot build {what}: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(crate) fn invalid(setting: Setting, value: &str, expected: &'static str) -> Self {
        Self::Invalid {
            setting: setting.method,
            value: value.to_owned(),
            expected,
        }
    }

    /// The setting it names (`Config::body_limit` or `HOOKSERVER_BODY_LIMIT`).
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::NoSecret { setting }
            | Self::Invalid { setting, .. }
            | Self::Missing { setting, .. } => Some(setting),
            Self::Startup { .. } => None,
        }
    }

    /// The same error naming the environment variable instead of the builder method.
    pub(crate) fn named_by_variable(self) -> Self {
        let rename = |setting: &'static str| {
            SETTINGS
                .iter()
                .find(|s| s.method == setting)
                .map_or(setting, |s| s.variable)
        };
        match self {
            Self::NoSecret { setting } => Self::NoSecret {
                setting: rename(setting),
            },
            Self::Invalid {
                setting,
                value,
                expected,
            } => Self::Invalid {
                setting: rename(setting),
                value,
                expected,
            },
            Self::Missing { setting, why } => Self::Missing {
                setting: rename(setting),
                why,
            },
            other => other,
        }
    }
}

pub(crate) fn parse_bool(value: &str) -> Result<bool, Expected> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Expected("true, false, 1 or 0")),
    }
}

/// Whole seconds, at least 1.
pub(crate) fn parse_secs(value: &str) -> Result<Duration, Expected> {
    match parse_secs_or_zero(value)? {
        zero if zero.is_zero() => Err(Expected("at least 1 second")),
        secs => Ok(secs),
    }
}

/// A count, at least 1.
pub(crate) fn parse_count(value: &str) -> Result<usize, Expected> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err(Expected("at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(Expected("a whole number")),
    }
}

/// Whole seconds, 0 allowed.
fn parse_secs_or_zero(value: &str) -> Result<Duration, Expected> {
    value
        .trim()
        .parse()
        .map(Duration::from_secs)
        .map_err(|_| Expected("a number of seconds"))
}

/// A size in bytes, above 0.
fn parse_size(value: &str) -> Result<usize, Expected> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err(Expected("a size above 0")),
        Ok(n) => Ok(n),
        Err(_) => Err(Expected("a size in bytes")),
    }
}

/// A comma-separated list of CIDRs; a bare address is its own /32 or /128.
fn parse_nets(value: &str) -> Result<Vec<IpNet>, Expected> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            crate::allow_list::parse_net(s)
                .ok_or(Expected("comma-separated CIDRs such as 192.30.252.0/22"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_secure() {
        let c = Config::new();
        assert!(c.signature.validate && c.source.validate && !c.signature.allow_sha1);
        assert_eq!(c.body.limit, 25 * 1024 * 1024);
        assert_eq!(c.body.max_buffered, 256 * 1024 * 1024);
        assert_eq!(
            c.check(),
            Err(ConfigError::NoSecret {
                setting: "Config::secret"
            })
        );
    }

    #[test]
    fn no_secret_with_signature_checking_is_an_error_naming_the_variable() {
        let err = from(&[]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::NoSecret {
                setting: "GITHUB_WEBHOOKS_KEY"
            }
        );
        assert!(
            err.to_string()
                .starts_with("GITHUB_WEBHOOKS_KEY is not set"),
            "{err}"
        );
        assert!(from(&[("VALIDATE_SIGNATURE", "false"), ("VALIDATE_IP", "0")]).is_ok());
    }

    #[test]
    fn reads_every_variable() {
        let c = from(&[
            ("GITHUB_WEBHOOKS_KEY", "s1"),
            ("HOOKSERVER_PREVIOUS_WEBHOOKS_KEY", "s0"),
            ("VALIDATE_IP", "FALSE"),
            ("VALIDATE_SIGNATURE", "1"),
            ("HOOKSERVER_ALLOW_SHA1", "true"),
            ("HOOKSERVER_BODY_LIMIT", "1024"),
            ("HOOKSERVER_MAX_BUFFERED_BYTES", "4096"),
            ("GITHUB_API_URL", "http://127.0.0.1:9/api/v3"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("HOOKSERVER_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("HOOKSERVER_ALLOWED_IPS", "192.30.252.0/22"),
            ("HOOKSERVER_META_TTL_SECS", "1"),
            ("HOOKSERVER_META_MAX_STALE_SECS", "2"),
            ("HOOKSERVER_META_TIMEOUT_SECS", "3"),
            ("HOOKSERVER_META_WARM", "true"),
            ("HOOKSERVER_BODY_TIMEOUT_SECS", "4"),
            ("HOOKSERVER_HANDLER_TIMEOUT_SECS", "5"),
        ])
        .unwrap();
        assert_eq!(c.signature.secrets, vec![b"s1".to_vec(), b"s0".to_vec()]);
        assert!(!c.source.validate && c.signature.validate && c.signature.allow_sha1);
        assert_eq!(c.body.limit, 1024);
        assert_eq!(c.body.max_buffered, 4096);
        assert_eq!(c.meta.api_url, "http://127.0.0.1:9/api/v3");
        assert_eq!(c.meta.token.as_deref(), Some("ghp_x"));
        assert_eq!(
            c.source.trusted_proxies,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        assert_eq!(
            c.source.allowed_ips,
            Some(vec!["192.30.252.0/22".parse().unwrap()])
        );
        assert_eq!(c.meta.ttl, Duration::from_secs(1));
        assert_eq!(c.meta.max_stale, Duration::from_secs(2));
        assert_eq!(c.meta.timeout, Duration::from_secs(3));
        assert!(c.meta.warm);
        assert_eq!(c.body.timeout, Duration::from_secs(4));
        assert_eq!(c.handler_timeout, Duration::from_secs(5));
    }

    #[test]
    fn unparsable_values_name_the_variable() {
        let cases = [
            (
                "VALIDATE_IP",
                "maybe",
                "VALIDATE_IP: expected true, false, 1 or 0, got \"maybe\"",
            ),
            (
                "VALIDATE_SIGNATURE",
                "yes",
                "VALIDATE_SIGNATURE: expected true, false, 1 or 0",
            ),
            (
                "HOOKSERVER_ALLOW_SHA1",
                "2",
                "HOOKSERVER_ALLOW_SHA1: expected",
            ),
            (
                "HOOKSERVER_BODY_LIMIT",
                "25MB",
                "HOOKSERVER_BODY_LIMIT: expected a size in bytes",
            ),
            (
                "HOOKSERVER_BODY_LIMIT",
                "0",
                "HOOKSERVER_BODY_LIMIT: expected a size above 0",
            ),
            (
                "HOOKSERVER_TRUSTED_PROXIES",
                "10.0.0.0/33",
                "HOOKSERVER_TRUSTED_PROXIES: expected",
            ),
            (
                "HOOKSERVER_ALLOWED_IPS",
                "github",
                "HOOKSERVER_ALLOWED_IPS: expected",
            ),
            (
                "HOOKSERVER_META_TTL_SECS",
                "-1",
                "HOOKSERVER_META_TTL_SECS: expected a number",
            ),
            (
                "HOOKSERVER_META_TTL_SECS",
                "0",
                "HOOKSERVER_META_TTL_SECS: expected at least 1",
            ),
            (
                "HOOKSERVER_META_TIMEOUT_SECS",
                "x",
                "HOOKSERVER_META_TIMEOUT_SECS: expected",
            ),
            (
                "GITHUB_API_URL",
                "api.github.com",
                "GITHUB_API_URL: expected an http",
            ),
            (
                "HOOKSERVER_BODY_TIMEOUT_SECS",
                "0",
                "HOOKSERVER_BODY_TIMEOUT_SECS: expected at least 1",
            ),
            (
                "HOOKSERVER_HANDLER_TIMEOUT_SECS",
                "1.5",
                "HOOKSERVER_HANDLER_TIMEOUT_SECS: expected a number",
            ),
            (
                "HOOKSERVER_MAX_BUFFERED_BYTES",
                "1000",
                "HOOKSERVER_MAX_BUFFERED_BYTES: expected at least the body limit",
            ),
            (
                "HOOKSERVER_MAX_BUFFERED_BYTES",
                "lots",
                "HOOKSERVER_MAX_BUFFERED_BYTES: expected a size in bytes",
            ),
        ];
        for (name, value, message) in cases {
            let err = from(&[("GITHUB_WEBHOOKS_KEY", "s"), (name, value)]).unwrap_err();
            assert!(
                err.to_string().starts_with(message),
                "{name}={value}: {err}"
            );
        }
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let c = from(&[
            ("GITHUB_WEBHOOKS_KEY", "s"),
            ("VALIDATE_IP", ""),
            ("GITHUB_TOKEN", " "),
        ])
        .unwrap();
        assert!(c.source.validate);
        assert_eq!(c.meta.token, None);
        assert_eq!(
            from(&[("GITHUB_WEBHOOKS_KEY", "")]).unwrap_err(),
            ConfigError::NoSecret {
                setting: "GITHUB_WEBHOOKS_KEY"
            }
        );
    }

    #[test]
    fn debug_redacts_secrets_and_token() {
        let c = Config::new()
            .secret("hunter2-secret")
            .github_token("ghp_supersecret");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("ghp_"),
            "{debug}"
        );
        assert!(
            debug.contains("[1 redacted]") && debug.contains("[redacted]"),
            "{debug}"
        );
    }

    #[test]
    fn builder_errors_name_the_builder_method() {
        let cases = [
            (
                Config::new().secret(""),
                "Config::secret: expected a non-empty secret",
            ),
            (
                Config::new().secret("s").body_limit(0),
                "Config::body_limit: expected a size above 0",
            ),
            (
                Config::new()
                    .secret("s")
                    .body_limit(10)
                    .max_buffered_bytes(9),
                "Config::max_buffered_bytes: expected at least the body limit",
            ),
            (
                Config::new().secret("s").github_api_url("api.github.com"),
                "Config::github_api_url: expected an http",
            ),
            (
                Config::new().secret("s").meta_ttl(Duration::ZERO),
                "Config::meta_ttl: expected at least 1 second",
            ),
            (
                Config::new().secret("s").validate_ip(true).allowed_ips([]),
                "Config::allowed_ips: expected at least one CIDR",
            ),
            (
                Config::new().secret("s").handler_timeout(Duration::ZERO),
                "Config::handler_timeout: expected at least 1 second",
            ),
            (
                Config::new(),
                "no secret: signature checking is on, so Config::secret is required",
            ),
        ];
        for (config, message) in cases {
            let err = config.check().unwrap_err();
            assert!(err.to_string().starts_with(message), "{err}");
            assert!(
                !err.to_string().contains("GITHUB_") && !err.to_string().contains("HOOKSERVER_"),
                "{err}"
            );
        }
        // The same problems read from the environment name the variable.
        let err = from(&[("GITHUB_WEBHOOKS_KEY", "s"), ("GITHUB_API_URL", "x")]).unwrap_err();
        assert_eq!(err.setting(), Some("GITHUB_API_URL"));
        // Checks of settings not in use do not fire: no URL needed without /meta.
        assert!(
            Config::new()
                .secret("s")
                .github_api_url("nope")
                .allowed_ips(["192.30.252.0/22".parse().unwrap()])
                .check()
                .is_ok()
        );
    }
}
