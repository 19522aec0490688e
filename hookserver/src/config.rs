//! `Config`: every setting, its default, and `Config::from_env()`.

use ipnet::IpNet;
use std::{fmt, time::Duration};

/// The largest body accepted by default: 25 MiB, just above GitHub's 25 MB cap on
/// payloads (GitHub does not deliver larger events at all).
pub const DEFAULT_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// GitHub's REST API on github.com.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

/// How long a fetched `/meta` list is used before it is revalidated: 1 hour.
///
/// Unauthenticated, GitHub allows 60 API requests an hour per source IP, and that
/// budget is shared with everything else on the host that calls the API without a
/// token. One conditional request an hour costs at most 1 of those 60 (a `304` costs
/// none), while GitHub changes its hook ranges a few times a year and announces
/// changes ahead of time.
pub const DEFAULT_META_TTL: Duration = Duration::from_secs(60 * 60);

/// How long past its freshness the last good `/meta` list is still used while
/// refreshes fail: 24 hours.
pub const DEFAULT_META_MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);

/// How long one request to GitHub's `/meta` may take before it counts as failed.
/// Well under GitHub's 10 s delivery timeout, so a hanging API turns into a 503 that
/// GitHub records, not a delivery that times out.
pub const DEFAULT_META_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client may take to send the request body: 10 s, GitHub's own
/// delivery timeout (a delivery slower than that has failed on GitHub's side anyway).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a handler may run before the delivery is answered `503`: 8 s, below
/// GitHub's 10 s delivery timeout so GitHub records our answer, not its timeout.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(8);

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
    pub(crate) secrets: Vec<Vec<u8>>,
    pub(crate) validate_signature: bool,
    pub(crate) validate_ip: bool,
    pub(crate) allow_sha1: bool,
    pub(crate) body_limit: usize,
    pub(crate) github_api_url: String,
    pub(crate) github_token: Option<String>,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) allowed_ips: Option<Vec<IpNet>>,
    pub(crate) meta_ttl: Duration,
    pub(crate) meta_max_stale: Duration,
    pub(crate) meta_timeout: Duration,
    pub(crate) meta_warm: bool,
    pub(crate) body_timeout: Duration,
    pub(crate) handler_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("validate_signature", &self.validate_signature)
            .field("validate_ip", &self.validate_ip)
            .field("allow_sha1", &self.allow_sha1)
            .field("body_limit", &self.body_limit)
            .field("github_api_url", &self.github_api_url)
            .field(
                "github_token",
                &self
                    .github_token
                    .as_ref()
                    .map(|_| format_args!("[redacted]")),
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("allowed_ips", &self.allowed_ips)
            .field("meta_ttl", &self.meta_ttl)
            .field("meta_max_stale", &self.meta_max_stale)
            .field("meta_timeout", &self.meta_timeout)
            .field("meta_warm", &self.meta_warm)
            .field("body_timeout", &self.body_timeout)
            .field("handler_timeout", &self.handler_timeout)
            .finish()
    }
}

impl Config {
    /// The defaults: signature and source-IP checks on, SHA-1 signatures refused,
    /// 25 MiB body limit, github.com's API, no secret yet (add one with
    /// [`secret`](Self::secret) or turn signature checking off).
    pub fn new() -> Self {
        Self {
            secrets: Vec::new(),
            validate_signature: true,
            validate_ip: true,
            allow_sha1: false,
            body_limit: DEFAULT_BODY_LIMIT,
            github_api_url: DEFAULT_GITHUB_API_URL.to_owned(),
            github_token: None,
            trusted_proxies: Vec::new(),
            allowed_ips: None,
            meta_ttl: DEFAULT_META_TTL,
            meta_max_stale: DEFAULT_META_MAX_STALE,
            meta_timeout: DEFAULT_META_TIMEOUT,
            meta_warm: false,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
        }
    }

    /// Adds a webhook secret. Call it again to accept a second secret while you
    /// rotate: a delivery signed with any of them is accepted.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secrets.push(secret.as_ref().to_vec());
        self
    }

    /// Whether deliveries must carry a valid signature (default `true`).
    /// Turning it off accepts unsigned deliveries from anyone who can reach you.
    pub fn validate_signature(mut self, on: bool) -> Self {
        self.validate_signature = on;
        self
    }

    /// Whether deliveries must come from GitHub's published hook addresses
    /// (default `true`).
    pub fn validate_ip(mut self, on: bool) -> Self {
        self.validate_ip = on;
        self
    }

    /// Whether the legacy `X-Hub-Signature` (HMAC-SHA1) header is accepted when
    /// `X-Hub-Signature-256` is absent (default `false`).
    pub fn allow_sha1(mut self, on: bool) -> Self {
        self.allow_sha1 = on;
        self
    }

    /// The largest request body accepted, in bytes (default 25 MiB); larger ones
    /// get `413`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The base URL of GitHub's REST API (default `https://api.github.com`; on
    /// GitHub Enterprise Server `https://HOST/api/v3`). `/meta` is fetched below it.
    pub fn github_api_url(mut self, url: impl Into<String>) -> Self {
        self.github_api_url = url.into();
        self
    }

    /// A token sent as `Authorization: Bearer` when fetching `/meta`, which raises
    /// GitHub's rate limit from 60 to 5,000 requests an hour.
    pub fn github_token(mut self, token: impl Into<String>) -> Self {
        self.github_token = Some(token.into());
        self
    }

    /// Proxies whose `X-Forwarded-For` header is believed (default: none, so the
    /// header is ignored and the socket peer is the client).
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpNet>) -> Self {
        self.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// A fixed allow-list that replaces fetching GitHub's `/meta` (for GitHub
    /// Enterprise Server installs that do not publish hook ranges, and hosts that
    /// cannot reach the API).
    pub fn allowed_ips(mut self, ranges: impl IntoIterator<Item = IpNet>) -> Self {
        self.allowed_ips = Some(ranges.into_iter().collect());
        self
    }

    /// How long a fetched `/meta` list is used before it is revalidated
    /// (default [`DEFAULT_META_TTL`]).
    pub fn meta_ttl(mut self, ttl: Duration) -> Self {
        self.meta_ttl = ttl;
        self
    }

    /// How long past its freshness the last good `/meta` list keeps being used while
    /// refreshes fail (default [`DEFAULT_META_MAX_STALE`]).
    pub fn meta_max_stale(mut self, max_stale: Duration) -> Self {
        self.meta_max_stale = max_stale;
        self
    }

    /// How long one `/meta` request may take (default [`DEFAULT_META_TIMEOUT`]).
    pub fn meta_timeout(mut self, timeout: Duration) -> Self {
        self.meta_timeout = timeout;
        self
    }

    /// Whether [`Hooks::router`](crate::Hooks::router) starts fetching `/meta` in the
    /// background right away, so the first delivery does not wait for GitHub
    /// (default `false`: no request to GitHub until a delivery needs one).
    pub fn meta_warm(mut self, on: bool) -> Self {
        self.meta_warm = on;
        self
    }

    /// How long a client may take to send the whole body before it is answered
    /// `408` (default [`DEFAULT_BODY_TIMEOUT`]).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How long a handler may run before the delivery is answered `503` and the
    /// handler is dropped (default [`DEFAULT_HANDLER_TIMEOUT`]). For longer work,
    /// spawn a task and answer at once.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
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
    ///
    /// An empty variable counts as unset. A value that does not parse, or signature
    /// checking with no secret, is an error that names the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables (a map in tests,
    /// a secrets manager in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::new();
        for name in ["GITHUB_WEBHOOKS_KEY", "HOOKSERVER_PREVIOUS_WEBHOOKS_KEY"] {
            if let Some(secret) = lookup(name).filter(|v| !v.is_empty()) {
                config = config.secret(secret);
            }
        }
        if let Some(v) = get("VALIDATE_SIGNATURE") {
            config.validate_signature = parse_bool("VALIDATE_SIGNATURE", &v)?;
        }
        if let Some(v) = get("VALIDATE_IP") {
            config.validate_ip = parse_bool("VALIDATE_IP", &v)?;
        }
        if let Some(v) = get("HOOKSERVER_ALLOW_SHA1") {
            config.allow_sha1 = parse_bool("HOOKSERVER_ALLOW_SHA1", &v)?;
        }
        if let Some(v) = get("HOOKSERVER_BODY_LIMIT") {
            config.body_limit = parse_number("HOOKSERVER_BODY_LIMIT", &v, "a size in bytes")?;
            if config.body_limit == 0 {
                return Err(ConfigError::invalid(
                    "HOOKSERVER_BODY_LIMIT",
                    &v,
                    "a size above 0",
                ));
            }
        }
        if let Some(v) = get("HOOKSERVER_META_WARM") {
            config.meta_warm = parse_bool("HOOKSERVER_META_WARM", &v)?;
        }
        if let Some(v) = get("GITHUB_API_URL") {
            config.github_api_url = v;
        }
        if let Some(v) = get("GITHUB_TOKEN") {
            config.github_token = Some(v.trim().to_owned());
        }
        if let Some(v) = get("HOOKSERVER_TRUSTED_PROXIES") {
            config.trusted_proxies = parse_nets("HOOKSERVER_TRUSTED_PROXIES", &v)?;
        }
        if let Some(v) = get("HOOKSERVER_ALLOWED_IPS") {
            config.allowed_ips = Some(parse_nets("HOOKSERVER_ALLOWED_IPS", &v)?);
        }
        for (name, field) in [
            ("HOOKSERVER_META_TTL_SECS", &mut config.meta_ttl),
            ("HOOKSERVER_META_MAX_STALE_SECS", &mut config.meta_max_stale),
            ("HOOKSERVER_META_TIMEOUT_SECS", &mut config.meta_timeout),
        ] {
            if let Some(v) = get(name) {
                *field = Duration::from_secs(parse_number(name, &v, "a number of seconds")?);
            }
        }
        if let Some(v) = get("HOOKSERVER_BODY_TIMEOUT_SECS") {
            config.body_timeout = parse_secs("HOOKSERVER_BODY_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("HOOKSERVER_HANDLER_TIMEOUT_SECS") {
            config.handler_timeout = parse_secs("HOOKSERVER_HANDLER_TIMEOUT_SECS", &v)?;
        }
        config.check()?;
        Ok(config)
    }

    /// Checks the settings for combinations that cannot work: signature checking
    /// with no secret, an empty secret, a zero body limit, a zero TTL or timeout,
    /// an API URL that is not `http(s)://`, an empty allow-list.
    /// [`Hooks::new`](crate::Hooks::new) panics with this error's message.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.validate_signature && self.secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        if self.secrets.iter().any(Vec::is_empty) {
            return Err(ConfigError::invalid(
                "GITHUB_WEBHOOKS_KEY",
                "",
                "a non-empty secret",
            ));
        }
        for (name, value) in [
            ("HOOKSERVER_BODY_TIMEOUT_SECS", self.body_timeout),
            ("HOOKSERVER_HANDLER_TIMEOUT_SECS", self.handler_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(name, "0", "at least 1 second"));
            }
        }
        if self.body_limit == 0 {
            return Err(ConfigError::invalid(
                "HOOKSERVER_BODY_LIMIT",
                "0",
                "a size above 0",
            ));
        }
        if self.validate_ip {
            match &self.allowed_ips {
                Some(list) if list.is_empty() => {
                    return Err(ConfigError::invalid(
                        "HOOKSERVER_ALLOWED_IPS",
                        "",
                        "at least one CIDR (or turn VALIDATE_IP off)",
                    ));
                }
                Some(_) => {}
                None => {
                    let url = &self.github_api_url;
                    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
                    if !scheme_ok || reqwest::Url::parse(url).is_err() {
                        return Err(ConfigError::invalid(
                            "GITHUB_API_URL",
                            url,
                            "an http:// or https:// URL such as https://api.github.com",
                        ));
                    }
                    for (name, value) in [
                        ("HOOKSERVER_META_TTL_SECS", self.meta_ttl),
                        ("HOOKSERVER_META_TIMEOUT_SECS", self.meta_timeout),
                    ] {
                        if value.is_zero() {
                            return Err(ConfigError::invalid(name, "0", "at least 1 second"));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A configuration that cannot be used. Its message names the variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Signature checking is on and no secret is set.
    #[error(
        "GITHUB_WEBHOOKS_KEY is not set: signature checking is on, so a secret is required \
         (set it to the hook's secret, or set VALIDATE_SIGNATURE=false to accept unsigned deliveries)"
    )]
    NoSecret,
    /// A variable's value does not parse.
    #[error("{variable}: expected {expected}, got {value:?}")]
    Invalid {
        /// The variable (or the setting it stands for).
        variable: &'static str,
        /// The value as given (never a secret).
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

impl ConfigError {
    fn invalid(variable: &'static str, value: &str, expected: &'static str) -> Self {
        Self::Invalid {
            variable,
            value: value.to_owned(),
            expected,
        }
    }
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::invalid(variable, value, "true, false, 1 or 0")),
    }
}

/// Whole seconds, at least 1.
pub(crate) fn parse_secs(variable: &'static str, value: &str) -> Result<Duration, ConfigError> {
    match parse_number::<u64>(variable, value, "a number of seconds")? {
        0 => Err(ConfigError::invalid(variable, value, "at least 1 second")),
        secs => Ok(Duration::from_secs(secs)),
    }
}

/// A count, at least 1.
pub(crate) fn parse_count(variable: &'static str, value: &str) -> Result<usize, ConfigError> {
    match parse_number::<usize>(variable, value, "a whole number")? {
        0 => Err(ConfigError::invalid(variable, value, "at least 1")),
        n => Ok(n),
    }
}

fn parse_number<T: std::str::FromStr>(
    variable: &'static str,
    value: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(variable, value, expected))
}

/// Parses a comma-separated list of CIDRs; a bare address is its own /32 or /128.
pub(crate) fn parse_nets(variable: &'static str, value: &str) -> Result<Vec<IpNet>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_net(s).ok_or_else(|| {
                ConfigError::invalid(variable, s, "comma-separated CIDRs such as 192.30.252.0/22")
            })
        })
        .collect()
}

/// A CIDR (`10.0.0.0/8`) or a bare address (`10.0.0.1`, `::1`).
pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
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
        assert!(c.validate_signature && c.validate_ip && !c.allow_sha1);
        assert_eq!(c.body_limit, 25 * 1024 * 1024);
        assert_eq!(c.check(), Err(ConfigError::NoSecret));
    }

    #[test]
    fn no_secret_with_signature_checking_is_an_error_naming_the_variable() {
        let err = from(&[]).unwrap_err();
        assert_eq!(err, ConfigError::NoSecret);
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
        assert_eq!(c.secrets, vec![b"s1".to_vec(), b"s0".to_vec()]);
        assert!(!c.validate_ip && c.validate_signature && c.allow_sha1);
        assert_eq!(c.body_limit, 1024);
        assert_eq!(c.github_api_url, "http://127.0.0.1:9/api/v3");
        assert_eq!(c.github_token.as_deref(), Some("ghp_x"));
        assert_eq!(
            c.trusted_proxies,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        assert_eq!(
            c.allowed_ips,
            Some(vec!["192.30.252.0/22".parse().unwrap()])
        );
        assert_eq!(c.meta_ttl, Duration::from_secs(1));
        assert_eq!(c.meta_max_stale, Duration::from_secs(2));
        assert_eq!(c.meta_timeout, Duration::from_secs(3));
        assert!(c.meta_warm);
        assert_eq!(c.body_timeout, Duration::from_secs(4));
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
        assert!(c.validate_ip);
        assert_eq!(c.github_token, None);
        assert_eq!(
            from(&[("GITHUB_WEBHOOKS_KEY", "")]).unwrap_err(),
            ConfigError::NoSecret
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
}
