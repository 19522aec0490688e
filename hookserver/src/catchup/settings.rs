//! The catch-up's settings: which hook's delivery log, how often, how far back, how
//! many redeliveries a pass, and the GitHub App's credentials (the token is `meta`'s
//! `GITHUB_TOKEN`). Checked here; `Debug` never shows the private key.

use crate::config::{ConfigError, Expected, Setting};
use std::{fmt, path::PathBuf, time::Duration};

pub(crate) const CATCHUP: Setting = Setting::new("Config::catchup", "HOOKSERVER_CATCHUP");
pub(crate) const INTERVAL: Setting = Setting::new(
    "Config::catchup_interval",
    "HOOKSERVER_CATCHUP_INTERVAL_SECS",
);
pub(crate) const WINDOW: Setting =
    Setting::new("Config::catchup_window", "HOOKSERVER_CATCHUP_WINDOW_HOURS");
pub(crate) const MAX_REDELIVERIES: Setting = Setting::new(
    "Config::catchup_max_redeliveries",
    "HOOKSERVER_CATCHUP_MAX_REDELIVERIES",
);
pub(crate) const APP_ID: Setting = Setting::new("Config::github_app_id", "GITHUB_APP_ID");
pub(crate) const APP_KEY: Setting =
    Setting::new("Config::github_app_private_key", "GITHUB_APP_PRIVATE_KEY");
pub(crate) const APP_KEY_PATH: Setting = Setting::new(
    "Config::github_app_private_key_path",
    "GITHUB_APP_PRIVATE_KEY_PATH",
);

/// What `HOOKSERVER_CATCHUP` accepts, for the error.
const TARGET_FORMS: &str = "repo:OWNER/REPO/HOOK_ID, org:ORG/HOOK_ID, app, or off";

/// Whose delivery log the catch-up reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A repository's hook.
    Repo {
        owner: String,
        repo: String,
        hook_id: u64,
    },
    /// An organisation's hook.
    Org { org: String, hook_id: u64 },
    /// The GitHub App's hook.
    App,
}

impl Target {
    /// `repo:OWNER/REPO/HOOK_ID`, `org:ORG/HOOK_ID` or `app` (names as GitHub allows
    /// them: letters, digits, `-`, `_`, `.`).
    pub(crate) fn parse(value: &str) -> Result<Self, Expected> {
        let value = value.trim();
        let bad = Expected(TARGET_FORMS);
        if value.eq_ignore_ascii_case("app") {
            return Ok(Self::App);
        }
        let name = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        let hook = |s: &str| s.parse::<u64>().ok().filter(|&id| id > 0);
        if let Some(rest) = value.strip_prefix("repo:") {
            let parts: Vec<&str> = rest.split('/').collect();
            if let [owner, repo, id] = parts[..]
                && name(owner)
                && name(repo)
                && let Some(hook_id) = hook(id)
            {
                return Ok(Self::Repo {
                    owner: owner.to_owned(),
                    repo: repo.to_owned(),
                    hook_id,
                });
            }
            return Err(bad);
        }
        if let Some(rest) = value.strip_prefix("org:") {
            if let Some((org, id)) = rest.split_once('/')
                && name(org)
                && let Some(hook_id) = hook(id)
            {
                return Ok(Self::Org {
                    org: org.to_owned(),
                    hook_id,
                });
            }
            return Err(bad);
        }
        Err(bad)
    }

    /// The path of the deliveries list below the API's base URL.
    pub(crate) fn deliveries_path(&self) -> String {
        match self {
            Self::Repo {
                owner,
                repo,
                hook_id,
            } => format!("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries"),
            Self::Org { org, hook_id } => format!("/orgs/{org}/hooks/{hook_id}/deliveries"),
            Self::App => "/app/hook/deliveries".to_owned(),
        }
    }

    /// The key its watermark and requests are stored under.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Repo {
                owner,
                repo,
                hook_id,
            } => format!("repo:{owner}/{repo}/{hook_id}"),
            Self::Org { org, hook_id } => format!("org:{org}/{hook_id}"),
            Self::App => "app".to_owned(),
        }
    }

    /// The `X-GitHub-Hook-ID` its deliveries carry, when the target says.
    pub(crate) fn hook_id(&self) -> Option<u64> {
        match self {
            Self::Repo { hook_id, .. } | Self::Org { hook_id, .. } => Some(*hook_id),
            Self::App => None,
        }
    }
}

/// The App's private key, as given.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum AppKey {
    /// PEM text.
    Pem(String),
    /// A file holding the PEM text.
    Path(PathBuf),
}

/// Every catch-up setting; `target: None` is off.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct CatchupSettings {
    /// As given; parsed by [`target`](Self::target).
    pub(crate) target: Option<String>,
    pub(crate) interval: Duration,
    pub(crate) window: Duration,
    pub(crate) max_redeliveries: usize,
    pub(crate) app_id: Option<u64>,
    pub(crate) app_key: Option<AppKey>,
}

impl fmt::Debug for CatchupSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.app_key.as_ref().map(|key| match key {
            AppKey::Pem(_) => "[redacted]".to_owned(),
            AppKey::Path(path) => path.display().to_string(),
        });
        f.debug_struct("CatchupSettings")
            .field("target", &self.target)
            .field("interval", &self.interval)
            .field("window", &self.window)
            .field("max_redeliveries", &self.max_redeliveries)
            .field("app_id", &self.app_id)
            .field("app_key", &key)
            .finish()
    }
}

impl Default for CatchupSettings {
    fn default() -> Self {
        Self {
            target: None,
            interval: Self::DEFAULT_INTERVAL,
            window: Self::DEFAULT_WINDOW,
            max_redeliveries: Self::DEFAULT_MAX_REDELIVERIES,
            app_id: None,
            app_key: None,
        }
    }
}

/// What the catch-up needs, checked: the target and its credentials.
#[derive(Clone)]
pub(crate) struct Checked {
    pub(crate) target: Target,
    pub(crate) app: Option<(u64, jsonwebtoken::EncodingKey)>,
}

impl CatchupSettings {
    pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
    pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(72 * 3600);
    pub(crate) const DEFAULT_MAX_REDELIVERIES: usize = 100;

    /// `off` (any case) and the empty string are no catch-up.
    pub(crate) fn set_target(&mut self, target: &str) {
        let target = target.trim();
        self.target =
            (!target.is_empty() && !target.eq_ignore_ascii_case("off")).then(|| target.to_owned());
    }

    /// The checked settings when the catch-up is on: the target parsed, the
    /// credentials it needs present (a token for a repository or organisation hook,
    /// the App's id and key for the App's), a journal configured.
    pub(crate) fn check(
        &self,
        token: Option<&str>,
        journal: bool,
        journal_setting: Setting,
    ) -> Result<Option<Checked>, ConfigError> {
        let Some(value) = &self.target else {
            return Ok(None);
        };
        let target = Target::parse(value).map_err(|Expected(expected)| ConfigError::Invalid {
            setting: CATCHUP.method,
            value: value.clone(),
            expected,
        })?;
        if self.interval.is_zero() {
            return Err(ConfigError::invalid(INTERVAL, "0", "at least 1 second"));
        }
        if self.window < Duration::from_secs(3600) {
            return Err(ConfigError::invalid(
                WINDOW,
                &format!("{}s", self.window.as_secs()),
                "at least 1 hour",
            ));
        }
        if self.max_redeliveries == 0 {
            return Err(ConfigError::invalid(MAX_REDELIVERIES, "0", "at least 1"));
        }
        if !journal {
            return Err(ConfigError::Missing {
                setting: journal_setting.method,
                why: "catching up on missed deliveries needs a journal, to know which \
                      deliveries arrived",
            });
        }
        let app = match target {
            Target::App => {
                let id = self.app_id.ok_or(ConfigError::Missing {
                    setting: APP_ID.method,
                    why: "the catch-up of a GitHub App's hook signs its requests as the App",
                })?;
                Some((id, self.app_key()?))
            }
            _ if token.is_none_or(|t| t.trim().is_empty()) => {
                return Err(ConfigError::Missing {
                    setting: crate::meta::TOKEN.method,
                    why: "the catch-up of a repository or organisation hook needs a token \
                          with admin rights on the hook",
                });
            }
            _ => None,
        };
        Ok(Some(Checked { target, app }))
    }

    fn app_key(&self) -> Result<jsonwebtoken::EncodingKey, ConfigError> {
        let (pem, setting, shown) = match &self.app_key {
            None => {
                return Err(ConfigError::Missing {
                    setting: APP_KEY.method,
                    why: "the catch-up of a GitHub App's hook signs its requests with the \
                          App's private key (PEM text, or a file named by the _PATH variant)",
                });
            }
            Some(AppKey::Pem(pem)) => (pem.clone(), APP_KEY, "[redacted]".to_owned()),
            Some(AppKey::Path(path)) => {
                let shown = path.display().to_string();
                let pem = std::fs::read_to_string(path).map_err(|_| ConfigError::Invalid {
                    setting: APP_KEY_PATH.method,
                    value: shown.clone(),
                    expected: "a readable file holding the App's private key (PEM)",
                })?;
                (pem, APP_KEY_PATH, shown)
            }
        };
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| ConfigError::Invalid {
            setting: setting.method,
            value: shown,
            expected: "an RSA private key in PEM (the .pem file GitHub gives an App)",
        })
    }
}

/// Whole hours, at least 1.
pub(crate) fn parse_hours(value: &str) -> Result<Duration, Expected> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err(Expected("at least 1 hour")),
        Ok(hours) if hours <= 24 * 365 => Ok(Duration::from_secs(hours * 3600)),
        _ => Err(Expected("a whole number of hours")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("repo:octo-org/hello.world/12345"),
            Ok(Target::Repo {
                owner: "octo-org".into(),
                repo: "hello.world".into(),
                hook_id: 12345
            })
        );
        assert_eq!(
            Target::parse(" org:octo_org/7 "),
            Ok(Target::Org {
                org: "octo_org".into(),
                hook_id: 7
            })
        );
        assert_eq!(Target::parse("APP"), Ok(Target::App));
        for bad in [
            "repo:o/r",
            "repo:o/r/x",
            "repo:o/r/0",
            "repo:o/r/1/2",
            "repo:o/../1",
            "repo:o/r?x/1",
            "repo:/r/1",
            "org:o",
            "org:o/-1",
            "org:o/p/1",
            "hook:1",
            "application",
            "",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        let t = Target::parse("repo:o/r/9").unwrap();
        assert_eq!(t.deliveries_path(), "/repos/o/r/hooks/9/deliveries");
        assert_eq!(t.key(), "repo:o/r/9");
        assert_eq!(t.hook_id(), Some(9));
        assert_eq!(
            Target::parse("org:o/9").unwrap().deliveries_path(),
            "/orgs/o/hooks/9/deliveries"
        );
        assert_eq!(Target::App.deliveries_path(), "/app/hook/deliveries");
        assert_eq!(Target::App.hook_id(), None);
    }

    #[test]
    fn hours() {
        assert_eq!(parse_hours("72").unwrap(), Duration::from_secs(72 * 3600));
        assert!(parse_hours("0").is_err());
        assert!(parse_hours("3d").is_err());
    }

    #[test]
    fn debug_redacts_the_key() {
        let s = CatchupSettings {
            app_key: Some(AppKey::Pem("-----BEGIN PRIVATE KEY----- hunter2".into())),
            ..CatchupSettings::default()
        };
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("[redacted]"),
            "{debug}"
        );
    }

    const TEST_KEY: &str = include_str!("../../../tests/keys/github-app-test.pem");

    fn from(vars: &[(&str, &str)]) -> Result<crate::Config, ConfigError> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("GITHUB_WEBHOOKS_KEY", "s"),
        ("HOOKSERVER_JOURNAL", "sqlite:unused.db"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        BASE.iter().chain(extra).copied().collect()
    }

    #[test]
    fn reads_the_variables() {
        let c = from(&with(&[
            ("HOOKSERVER_CATCHUP", "repo:o/r/5"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("HOOKSERVER_CATCHUP_INTERVAL_SECS", "30"),
            ("HOOKSERVER_CATCHUP_WINDOW_HOURS", "168"),
            ("HOOKSERVER_CATCHUP_MAX_REDELIVERIES", "7"),
        ]))
        .unwrap();
        assert_eq!(c.catchup.target.as_deref(), Some("repo:o/r/5"));
        assert_eq!(c.catchup.interval, Duration::from_secs(30));
        assert_eq!(c.catchup.window, Duration::from_secs(168 * 3600));
        assert_eq!(c.catchup.max_redeliveries, 7);
        // Defaults, and off.
        let c = from(&with(&[])).unwrap();
        assert_eq!(c.catchup, CatchupSettings::default());
        assert_eq!(c.catchup.interval, Duration::from_secs(600));
        assert_eq!(c.catchup.window, Duration::from_secs(72 * 3600));
        assert_eq!(c.catchup.max_redeliveries, 100);
        assert!(from(&with(&[("HOOKSERVER_CATCHUP", "off")])).is_ok());
        // The App, by key text or by file.
        let c = from(&with(&[
            ("HOOKSERVER_CATCHUP", "app"),
            ("GITHUB_APP_ID", "42"),
            ("GITHUB_APP_PRIVATE_KEY", TEST_KEY),
        ]))
        .unwrap();
        let checked = c.catchup_checked().unwrap().unwrap();
        assert_eq!(checked.target, Target::App);
        assert_eq!(checked.app.map(|(id, _)| id), Some(42));
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/keys/github-app-test.pem"
        );
        assert!(
            from(&with(&[
                ("HOOKSERVER_CATCHUP", "app"),
                ("GITHUB_APP_ID", "42"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", path),
            ]))
            .is_ok()
        );
    }

    #[test]
    fn start_up_errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("HOOKSERVER_CATCHUP", "repo:o/r")],
                "HOOKSERVER_CATCHUP: expected repo:OWNER/REPO/HOOK_ID, org:ORG/HOOK_ID, app, or off, got \"repo:o/r\"",
            ),
            (
                &[("HOOKSERVER_CATCHUP", "repo:o/r/1")],
                "GITHUB_TOKEN is not set: the catch-up of a repository or organisation hook needs a token",
            ),
            (
                &[("HOOKSERVER_CATCHUP", "org:o/1")],
                "GITHUB_TOKEN is not set",
            ),
            (&[("HOOKSERVER_CATCHUP", "app")], "GITHUB_APP_ID is not set"),
            (
                &[("HOOKSERVER_CATCHUP", "app"), ("GITHUB_APP_ID", "42")],
                "GITHUB_APP_PRIVATE_KEY is not set",
            ),
            (
                &[
                    ("HOOKSERVER_CATCHUP", "app"),
                    ("GITHUB_APP_ID", "forty-two"),
                ],
                "GITHUB_APP_ID: expected the App's numeric id",
            ),
            (
                &[
                    ("HOOKSERVER_CATCHUP", "app"),
                    ("GITHUB_APP_ID", "42"),
                    (
                        "GITHUB_APP_PRIVATE_KEY",
                        "-----BEGIN RSA PRIVATE KEY-----\nhunter2\n",
                    ),
                ],
                "GITHUB_APP_PRIVATE_KEY: expected an RSA private key in PEM",
            ),
            (
                &[
                    ("HOOKSERVER_CATCHUP", "app"),
                    ("GITHUB_APP_ID", "42"),
                    ("GITHUB_APP_PRIVATE_KEY_PATH", "/nonexistent/key.pem"),
                ],
                "GITHUB_APP_PRIVATE_KEY_PATH: expected a readable file",
            ),
            (
                &[("HOOKSERVER_CATCHUP_INTERVAL_SECS", "0")],
                "HOOKSERVER_CATCHUP_INTERVAL_SECS: expected at least 1 second",
            ),
            (
                &[("HOOKSERVER_CATCHUP_WINDOW_HOURS", "3 days")],
                "HOOKSERVER_CATCHUP_WINDOW_HOURS: expected a whole number of hours",
            ),
            (
                &[("HOOKSERVER_CATCHUP_MAX_REDELIVERIES", "none")],
                "HOOKSERVER_CATCHUP_MAX_REDELIVERIES: expected a whole number",
            ),
        ];
        for (vars, message) in cases {
            let err = from(&with(vars)).unwrap_err().to_string();
            assert!(err.starts_with(message), "{vars:?}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        // Without a journal.
        let err = from(&[
            ("GITHUB_WEBHOOKS_KEY", "s"),
            ("HOOKSERVER_CATCHUP", "repo:o/r/1"),
            ("GITHUB_TOKEN", "t"),
        ])
        .unwrap_err();
        assert_eq!(err.setting(), Some("HOOKSERVER_JOURNAL"));
        assert!(
            err.to_string().starts_with(
                "HOOKSERVER_JOURNAL is not set: catching up on missed deliveries needs a journal"
            ),
            "{err}"
        );
        // Built in code, the errors name the builder methods.
        let err = crate::Config::new()
            .secret("s")
            .journal("sqlite:unused.db")
            .catchup("app")
            .github_app_id(1)
            .check()
            .unwrap_err();
        assert_eq!(err.setting(), Some("Config::github_app_private_key"));
        let err = crate::Config::new()
            .secret("s")
            .catchup("repo:o/r/1")
            .github_token("t")
            .check()
            .unwrap_err();
        assert_eq!(err.setting(), Some("Config::journal"));
        let err = crate::Config::new()
            .secret("s")
            .journal("sqlite:unused.db")
            .catchup("repo:o/r/1")
            .github_token("t")
            .catchup_window(Duration::from_secs(60))
            .check()
            .unwrap_err();
        assert_eq!(err.setting(), Some("Config::catchup_window"));
    }
}
