//! `Hooks<S>`: the registry of handlers by event key, and `router(path)`.

use crate::{
    config::{Config, ConfigError},
    event_key::{self, Key},
    handler::{Handler, erase},
    journal::Journal,
    pipeline::{self, Parts, Pipeline},
    routes::Routes,
};
use std::{fmt, panic::Location};

/// What `#[hook("...")]` implements on the unit struct it makes of a function, for
/// [`Hooks::hook`]. Plumbing between the macro and the registry: reached through
/// `hookserver::__private`, never implemented by hand.
pub trait Hook<S> {
    /// The event keys this hook answers, as written in the attribute.
    fn events(&self) -> &'static [&'static str];

    /// Registers the handler under each of its keys.
    fn register(self, hooks: Hooks<S>) -> Hooks<S>;
}

/// The registry: which handler answers which event, plus the configuration that
/// guards them. Build it, then mount [`router`](Self::router) in an axum app.
///
/// ```
/// use hookserver::{Config, Hooks, hook};
///
/// #[hook("ping")]
/// async fn ping() -> &'static str { "pong" }
///
/// let hooks = Hooks::new(Config::new().secret("s").validate_ip(false))
///     .hook(ping)
///     .on("issues.opened", |issue: serde_json::Value| async move {
///         format!("issue #{}", issue["issue"]["number"])
///     });
/// let app: axum::Router = axum::Router::new().merge(hooks.router("/hooks"));
/// # drop(app);
/// ```
///
/// Keys are `"event"`, `"event.action"` or `"*"` (see [`Hooks::on`]). A delivery
/// goes to the most specific match: `event.action`, then `event`, then `*`. With
/// none, it is answered `200 Hook not used`.
pub struct Hooks<S = ()> {
    config: Config,
    parts: Parts,
    state: S,
    routes: Routes<S>,
}

impl<S> fmt::Debug for Hooks<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<String> = self.routes.keys().collect();
        keys.sort();
        f.debug_struct("Hooks")
            .field("config", &self.config)
            .field("keys", &keys)
            .finish()
    }
}

impl Hooks<()> {
    /// A registry without application state.
    ///
    /// # Panics
    /// When the configuration cannot work (see [`Config::check`]), most often
    /// signature checking with no secret, or the HTTP client for GitHub's `/meta`
    /// cannot be built. [`Hooks::try_new`] returns the same problems as an error.
    #[track_caller]
    pub fn new(config: Config) -> Self {
        Self::with_state(config, ())
    }

    /// [`Hooks::new`], returning a configuration that cannot work as an error.
    pub fn try_new(config: Config) -> Result<Self, ConfigError> {
        Self::try_with_state(config, ())
    }
}

impl<S> Hooks<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// A registry whose handlers can take [`State<T>`](crate::State), for `S` or any
    /// part of it (`T: FromRef<S>`).
    ///
    /// # Panics
    /// Like [`Hooks::new`], on a configuration that cannot work.
    #[track_caller]
    pub fn with_state(config: Config, state: S) -> Self {
        match Self::try_with_state(config, state) {
            Ok(hooks) => hooks,
            Err(e) => panic!("invalid hookserver configuration: {e}"),
        }
    }

    /// [`Hooks::with_state`], returning a configuration that cannot work as an
    /// error. Everything the registry needs is built here (the `/meta` client, the
    /// signature keys), so a problem shows at start-up, not on the first delivery.
    pub fn try_with_state(config: Config, state: S) -> Result<Self, ConfigError> {
        Ok(Self {
            parts: Parts::new(&config)?,
            config,
            state,
            routes: Routes::default(),
        })
    }

    /// Registers a function annotated with [`#[hook("...")]`](crate::hook) under
    /// the attribute's keys.
    ///
    /// # Panics
    /// When one of its keys already has a handler.
    #[track_caller]
    pub fn hook(self, hook: impl Hook<S>) -> Self {
        hook.register(self)
    }

    /// Registers `handler` under `key`.
    ///
    /// A key is one of
    /// - `"event"`, e.g. `"push"`: every delivery of that event not claimed by a
    ///   more specific key. The event is the `X-GitHub-Event` name: lowercase
    ///   ASCII letters, digits and `_`;
    /// - `"event.action"`, e.g. `"pull_request.opened"`: that event with that
    ///   payload `action`. The action is everything after the first `.`, as GitHub
    ///   sends it: `"repository_dispatch.release.v2"` is event
    ///   `repository_dispatch`, action `release.v2` (the sender's free-form
    ///   `event_type`). It may not be empty or `*`, contain control characters or
    ///   exceed 100 characters;
    /// - `"*"`: every delivery no other key matches.
    ///
    /// A key that GitHub's published list of webhook events does not have (a
    /// typo such as `pul_request`, or an event newer than hookserver) is
    /// registered all the same, and logged as a warning with the nearest known
    /// key.
    ///
    /// # Panics
    /// When `key` is malformed (`invalid event key ...`, saying why), or already
    /// has a handler (`ping hook already registered`).
    #[track_caller]
    pub fn on<H, T>(self, key: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.insert(key, handler, true)
    }

    /// [`on`](Self::on) without the check against GitHub's list, for
    /// `#[hook(..., unchecked)]`.
    #[track_caller]
    pub(crate) fn on_unchecked<H, T>(self, key: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.insert(key, handler, false)
    }

    #[track_caller]
    fn insert<H, T>(mut self, key: &str, handler: H, check: bool) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let parsed = match event_key::parse(key) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{e}"),
        };
        if check {
            warn_if_unknown(key, &parsed);
        }
        if !self.routes.insert(parsed, erase(handler)) {
            panic!("{key} hook already registered");
        }
        self
    }

    /// The journal this registry writes to, when the configuration has one
    /// ([`Config::journal`]): list, show and replay its deliveries from your code.
    pub fn journal(&self) -> Option<Journal> {
        self.parts.journal().cloned()
    }

    /// An axum router serving `GET health` and `GET ready`, for a load balancer or
    /// an orchestrator; merge it beside [`router`](Self::router) (call this first:
    /// `router` takes the registry).
    ///
    /// `health` answers `200 {"status":"ok"}` while the process serves. `ready`
    /// answers `200` when deliveries can be accepted (the allow-list is loaded, or
    /// fixed, or source-IP checking is off; the journal, when there is one, can be
    /// written), else `503`; its JSON body names what is not ready and since when,
    /// with the allow-list's age and how its last refresh went. A probe of `ready`
    /// starts a refresh of GitHub's `/meta` when one is due, without waiting for it,
    /// and asks the journal at most once a second.
    ///
    /// ```
    /// let hooks = hookserver::Hooks::new(hookserver::Config::new().secret("s"))
    ///     .on("push", || async { "ok" });
    /// let health = hooks.health_routes("/health", "/ready");
    /// let app = hooks.router("/hooks").merge(health);
    /// # drop(app);
    /// ```
    pub fn health_routes(&self, health: &str, ready: &str) -> axum::Router {
        crate::health::router(crate::health::Readiness::new(&self.parts), health, ready)
    }

    /// An axum router serving `GET path` with the registry's metrics in
    /// Prometheus's text format (OpenMetrics when the scraper asks for it); merge it
    /// beside [`router`](Self::router) (call this first: `router` takes the
    /// registry).
    ///
    /// Every delivery is counted by event and outcome
    /// (`hookserver_deliveries_total{event, outcome}`) and timed
    /// (`hookserver_delivery_duration_seconds`, and
    /// `hookserver_handler_duration_seconds` for the handler alone, in the request
    /// or in a journal worker). The `event` label is one of GitHub's known events,
    /// else `other`, so a stranger cannot add series. With a journal, the
    /// deliveries by state and the oldest pending one's age are read from it at
    /// scrape time (at most once a second), beside the retries and dead counters;
    /// with a catch-up, what it found missing and redelivered; with GitHub's
    /// `/meta`, the list's age and the refreshes by result. The README's "Metrics"
    /// section lists them all.
    ///
    /// Opt-in: without this route no delivery is counted. Counting one is a few
    /// atomic additions (no lock, no allocation). The route is not a delivery: no
    /// log line, no check; serve it where only your monitoring reaches it.
    ///
    /// ```
    /// let hooks = hookserver::Hooks::new(hookserver::Config::new().secret("s"))
    ///     .on("push", || async { "ok" });
    /// let metrics = hooks.metrics_route("/metrics");
    /// let app = hooks.router("/hooks").merge(metrics);
    /// # drop(app);
    /// ```
    pub fn metrics_route(&self, path: &str) -> axum::Router {
        crate::metrics::router(&self.parts, path)
    }

    /// An axum router serving `POST path` (other methods: `405` with `Allow: POST`).
    /// Merge or nest it in your app; wrap it in tower layers as you like.
    ///
    /// With a journal, this starts its workers on the current tokio runtime (so call
    /// it inside one), and they stop when [`serve`](crate::serve) shuts down; with
    /// another server, call [`Journal::shutdown`] after it.
    ///
    /// Source-IP checking needs the peer address: serve the app with
    /// [`serve`](crate::serve), or with axum's
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(self, path: &str) -> axum::Router {
        let pipeline = Pipeline::start(self.parts, self.state, self.routes);
        axum::Router::new()
            .route(path, axum::routing::any(pipeline::deliver::<S>))
            .with_state(pipeline)
    }
}

/// Logs, once at registration, a key GitHub's list does not have: most likely a
/// typo, possibly an event newer than the list. It stays registered either way.
#[track_caller]
fn warn_if_unknown(key: &str, parsed: &Key<'_>) {
    if let Err(unknown) = event_key::check_known(parsed) {
        tracing::warn!(
            key,
            location = %Location::caller(),
            "event key `{}` may never match: {unknown}. It is registered anyway, \
             in case GitHub added it after hookserver's list ({})",
            key.escape_debug(),
            event_key::table_source(),
        );
    }
}
