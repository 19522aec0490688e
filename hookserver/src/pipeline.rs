//! One delivery's way through, in the order that is part of the contract:
//! source IP → body (limit, timeout, budget) → signature → GitHub headers → payload
//! → dispatch. Each step either passes or answers with a [`Rejection`], and the
//! delivery's outcome is logged once, here, in one line that carries the reason.

use crate::{
    body::BodyReader,
    catchup::{self, Catchup},
    config::{Config, ConfigError},
    delivery::Delivery,
    journal::{
        Ack, Journal,
        store::{AttemptRecord, Claim, Claimed, EntryId, Finish, Inserted, NewEntry, Store},
        stored, time,
        workers::{self, ClaimedRow, Control},
    },
    log_limit::{Line, RateLimitedWarning},
    metrics::{DeliveryMetrics, EventLabel},
    outcome::{Answer, Outcome},
    rejection::{Reason, Rejection},
    routes::Routes,
    signature::{self, SignatureError, Signatures, Verifier},
    source::SourceCheck,
};
use axum::{
    extract::{ConnectInfo, Request, State},
    response::{IntoResponse, Response},
};
use futures_util::{FutureExt, future::BoxFuture};
use http::StatusCode;
use std::{
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

/// Everything a delivery needs, built once per registry.
pub(crate) struct Pipeline<S> {
    source: Option<SourceCheck>,
    body: BodyReader,
    /// `None` when signature checking is off.
    verifier: Option<Verifier>,
    handler_timeout: Duration,
    /// `None` without a journal.
    journal: Option<Arc<Control>>,
    /// `None` without a catch-up.
    catchup: Option<Arc<Catchup>>,
    /// The warnings about rejected deliveries: the first of each kind, then a count
    /// per interval.
    rejections: RateLimitedWarning,
    /// `None` unless the metrics route is mounted: then no delivery is counted.
    metrics: Option<Arc<DeliveryMetrics>>,
    workers_started: std::sync::Once,
    routes: Routes<S>,
    state: S,
}

/// The parts built from a configuration, before the routes are known. Building
/// them is where start-up errors (an HTTP client that cannot be built) surface.
pub(crate) struct Parts {
    source: Option<SourceCheck>,
    body: BodyReader,
    verifier: Option<Verifier>,
    handler_timeout: Duration,
    journal: Option<Journal>,
    journal_control: Option<Arc<Control>>,
    catchup: Option<Arc<Catchup>>,
    rejection_log_interval: Duration,
    /// Made by the first `Hooks::metrics_route`, before `router` builds the pipeline.
    metrics: OnceLock<Arc<DeliveryMetrics>>,
}

impl Parts {
    pub(crate) fn new(config: &Config) -> Result<Self, ConfigError> {
        config.check()?;
        let catchup = Catchup::new(
            &config.catchup,
            config.catchup_checked()?,
            &config.meta.api_url,
            config.meta.token.as_deref(),
        )?;
        let (journal, journal_control) = match config.journal.engine()? {
            None => (None, None),
            Some(engine) => {
                // Opening the journal (creating or migrating it) is the one blocking
                // step, and it happens here, once, at start-up.
                let store =
                    engine
                        .open(config.journal.workers)
                        .map_err(|e| ConfigError::Startup {
                            what: "the journal",
                            why: e.to_string(),
                        })?;
                let control = Arc::new(Control::new(
                    Arc::clone(&store),
                    config.journal.clone(),
                    config.handler_timeout,
                ));
                let url = config.journal.url.as_deref().unwrap_or_default();
                let journal =
                    Journal::with_control(store, Arc::clone(&control), catchup.clone(), url);
                (Some(journal), Some(control))
            }
        };
        Ok(Self {
            source: SourceCheck::new(&config.source, &config.meta)?,
            body: BodyReader::new(&config.body),
            verifier: config.signature.verifier(),
            handler_timeout: config.handler_timeout,
            journal,
            journal_control,
            catchup,
            rejection_log_interval: config.rejection_log_interval,
            metrics: OnceLock::new(),
        })
    }

    /// The journal this registry writes, when it has one.
    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// The source-IP check, `None` when it is off (for the readiness route).
    pub(crate) fn source(&self) -> Option<&SourceCheck> {
        self.source.as_ref()
    }

    /// The catch-up, when there is one (for the metrics route).
    pub(crate) fn catchup(&self) -> Option<Arc<Catchup>> {
        self.catchup.clone()
    }

    /// What the journal's pipeline and workers share, when there is a journal (for
    /// the metrics route).
    pub(crate) fn journal_control(&self) -> Option<Arc<Control>> {
        self.journal_control.clone()
    }

    /// The per-delivery metrics, made on first use: the metrics route asks, and the
    /// pipeline built after it counts into them.
    pub(crate) fn delivery_metrics(&self) -> Arc<DeliveryMetrics> {
        Arc::clone(
            self.metrics
                .get_or_init(|| Arc::new(DeliveryMetrics::new())),
        )
    }

    /// The journal's store, when there is one (for the readiness route).
    pub(crate) fn journal_store(&self) -> Option<Arc<dyn Store>> {
        self.journal_control
            .as_ref()
            .map(|control| Arc::clone(&control.store))
    }
}

impl<S> Pipeline<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// The pipeline, with the journal's workers started on the current runtime (or,
    /// when built outside one, on the runtime of the first delivery).
    pub(crate) fn start(parts: Parts, state: S, routes: Routes<S>) -> Arc<Self> {
        let pipeline = Arc::new(Self {
            source: parts.source,
            body: parts.body,
            verifier: parts.verifier,
            handler_timeout: parts.handler_timeout,
            journal: parts.journal_control,
            catchup: parts.catchup,
            rejections: RateLimitedWarning::new(parts.rejection_log_interval)
                .with_summaries(warn_rejected_count),
            metrics: parts.metrics.into_inner(),
            workers_started: std::sync::Once::new(),
            routes,
            state,
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            pipeline.start_workers();
        }
        pipeline
    }

    /// Starts the journal's workers once, on the current runtime.
    fn start_workers(self: &Arc<Self>) {
        let Some(journal) = &self.journal else {
            return;
        };
        self.workers_started.call_once(|| {
            let for_workers = Arc::clone(self);
            let control = Arc::clone(journal);
            workers::start(Arc::clone(journal), move |claimed, permit| {
                Arc::clone(&for_workers).run_claimed(Arc::clone(&control), claimed, permit)
            });
            // The catch-up starts with the workers, and stops with them.
            if let Some(catchup) = &self.catchup {
                catchup::start(
                    Arc::clone(catchup),
                    Arc::clone(&journal.store),
                    journal.stop_signal(),
                );
            }
        });
    }
}

fn as_str(value: &Option<http::HeaderValue>) -> Option<&str> {
    value.as_ref().and_then(|v| v.to_str().ok())
}

/// The axum handler behind `POST path`.
pub(crate) async fn deliver<S>(
    State(pipeline): State<Arc<Pipeline<S>>>,
    request: Request,
) -> Response
where
    S: Clone + Send + Sync + 'static,
{
    let started = Instant::now();
    if pipeline.journal.is_some() {
        pipeline.start_workers();
    }
    // The event and GUID as claimed by the headers, so that even a rejected delivery
    // can be found in the log (tracing escapes the values). Cloning a header value
    // is a reference count.
    let (event, guid) = {
        let claimed = |name: &str| request.headers().get(name).cloned();
        (claimed("x-github-event"), claimed("x-github-delivery"))
    };
    // The span puts the delivery around the handler's own log lines. It is at debug
    // level because it costs more than the rest of a small delivery's pipeline:
    // enable it with `RUST_LOG=info,hookserver=debug`. The one line per delivery
    // below carries the same fields at info.
    let span = tracing::debug_span!(
        "delivery",
        event = as_str(&event),
        action = tracing::field::Empty,
        guid = as_str(&guid),
    );
    // The event label is one of GitHub's events or `other`, never the header's text:
    // a stranger must not be able to make a series per request.
    let label = (pipeline.metrics.as_ref())
        .map(|_| EventLabel::of(event.as_ref().map(http::HeaderValue::as_bytes)));
    let (mut response, delivery, answer) =
        pipeline.run(request, label).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let elapsed_us = elapsed.as_micros() as u64;
    let action = delivery.as_ref().and_then(Delivery::known_action);
    let (event, guid) = (as_str(&event), as_str(&guid));
    // The reason is the answer's own text from hookserver, which may quote the
    // payload (serde's messages): Debug formatting escapes newlines and quotes.
    let (kind, reason, refusal) = match response.extensions_mut().remove::<Reason>() {
        Some(r) => (Some(r.kind), Some(r.text), Some(r.outcome)),
        None => (None, None, None),
    };
    let reason = reason.as_deref();
    // The delivery's outcome, decided here once: the metrics count it and the log
    // line below names it.
    let outcome = Outcome::decide(answer, status, refusal);
    if let (Some(metrics), Some(label)) = (&pipeline.metrics, label) {
        metrics.delivered(label, outcome, elapsed);
    }
    // Written bare (`outcome=queued`): one of a fixed set of words, nothing to escape.
    let outcome = tracing::field::display(outcome.as_str());
    span.in_scope(|| {
        // `None` fields are left out of the line, like `action` for push.
        macro_rules! answered {
            ($level:ident) => {
                tracing::$level!(
                    event,
                    action,
                    guid,
                    status,
                    outcome,
                    elapsed_us,
                    reason,
                    "delivery answered"
                )
            };
        }
        // One line per delivery, at the level its outcome deserves. A flood of bad
        // requests must not drown the log: 4xx at debug.
        match status {
            500 => answered!(error),
            501.. => answered!(warn),
            400..=499 => answered!(debug),
            _ => answered!(info),
        }
    });
    // A 4xx is at debug above, and some of them (a wrong secret) are what a person
    // must notice: the first of each kind at warn, then a count per interval. The
    // line is outside the span and names no GUID, so that each delivery's own line
    // stays the one that names it.
    if let (400..=499, Some(kind), Some(reason)) = (status, kind, reason) {
        warn_rejected(&pipeline.rejections, kind, reason, event, status);
    }
    response
}

/// The rejection warning for one rejected delivery, when its kind is due one.
fn warn_rejected(
    limit: &RateLimitedWarning,
    kind: &'static str,
    reason: &str,
    event: Option<&str>,
    status: u16,
) {
    match limit.record(kind, reason, Instant::now()) {
        Some(Line::First(reason)) => tracing::warn!(
            kind,
            event,
            status,
            "delivery rejected: {reason} (more of this kind in the next {} s become one \
             count; each is logged at debug)",
            limit.interval().as_secs()
        ),
        Some(Line::Summary { count, last }) => {
            warn_rejected_count(kind, count, &last, limit.interval());
        }
        None => {}
    }
}

/// The count of one kind's rejections in an interval, written by the next one of
/// the kind or by the interval's end.
fn warn_rejected_count(kind: &'static str, count: u64, last: &str, interval: Duration) {
    tracing::warn!(
        kind,
        count,
        interval_secs = interval.as_secs(),
        last_reason = last,
        "{count} more deliveries rejected: {kind}"
    );
}

impl<S> Pipeline<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// The answer, the delivery when it got that far, and who answered. `label` is
    /// the event's metrics label, `None` when deliveries are not counted.
    async fn run(
        &self,
        request: Request,
        label: Option<EventLabel>,
    ) -> (Response, Option<Delivery>, Answer) {
        let refused = |rejection: Rejection| (rejection.into_response(), None, Answer::Refused);
        let (parts, body) = request.into_parts();
        // Other methods are answered here rather than by axum's method router, so
        // that they get their log line like every other answer.
        if parts.method != http::Method::POST {
            return refused(Rejection::MethodNotAllowed);
        }
        let client_ip = match &self.source {
            Some(source) => {
                let peer = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                match source.check(peer, &parts.headers).await {
                    Ok(client) => Some(client),
                    Err(rejection) => return refused(rejection),
                }
            }
            None => None,
        };
        // The body's share of the buffered-bytes budget is held until the answer.
        let body = match self.body.read(&parts.headers, body).await {
            Ok(body) => body,
            Err(rejection) => return refused(rejection),
        };
        if let Some(verifier) = &self.verifier
            && let Err(rejection) = verify(verifier, &parts.headers, &body.bytes)
        {
            return refused(rejection);
        }
        match Delivery::parse(parts.headers, body.bytes.clone(), client_ip) {
            Ok(delivery) => {
                let (response, answer) = self.dispatch(&delivery, label).await;
                (response, Some(delivery), answer)
            }
            Err(rejection) => refused(rejection),
        }
    }

    async fn dispatch(&self, delivery: &Delivery, label: Option<EventLabel>) -> (Response, Answer) {
        let prepared = self.prepare(delivery);
        if let Some(journal) = &self.journal {
            return self.journal(journal, delivery, prepared, label).await;
        }
        match prepared {
            Prepared::Unhandled => (hook_not_used(), Answer::Unhandled),
            // Broken JSON (its reason says so), or the user's extractor's answer.
            Prepared::Refused(response) => (response, Answer::Handler),
            Prepared::Ready(future) => (self.run_handler(future, label).await, Answer::Handler),
        }
    }

    /// Finds the handler and runs its extractors: everything up to the handler's own
    /// code, which is what a delivery must pass before it is journaled.
    fn prepare(&self, delivery: &Delivery) -> Prepared {
        let handler = self.routes.find(delivery.event(), || delivery.action());
        let Some(handler) = handler else {
            // Broken JSON is a 400 whatever the handler takes, even none.
            if let Err(invalid) = delivery.check_payload() {
                return Prepared::Refused(invalid.into_response());
            }
            record_action(delivery);
            return Prepared::Unhandled;
        };
        // A panic in the handler (while extracting or while running) is the handler's
        // bug: answer 500 and keep the connection and the server alive.
        #[allow(clippy::result_large_err)]
        let call =
            std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(delivery, &self.state)));
        // The extractors have run and the handler's own code has not: refuse a
        // payload that is not valid JSON now. When an extractor parsed it, this
        // costs nothing; otherwise it is one scan that builds nothing.
        if let Err(invalid) = delivery.check_payload() {
            return Prepared::Refused(invalid.into_response());
        }
        record_action(delivery);
        match call {
            Ok(Ok(future)) => Prepared::Ready(future),
            Ok(Err(rejection)) => Prepared::Refused(rejection),
            Err(panic) => Prepared::Refused(
                Rejection::HandlerPanicked(panic_message(&*panic)).into_response(),
            ),
        }
    }

    /// The handler's answer, a panic's `500` or the timeout's `503`; its time
    /// counted under `label` when metrics are on.
    async fn run_handler(
        &self,
        future: BoxFuture<'static, Response>,
        label: Option<EventLabel>,
    ) -> Response {
        match (&self.metrics, label) {
            (Some(metrics), Some(label)) => {
                let started = Instant::now();
                let response = run_guarded(future, self.handler_timeout).await;
                metrics.handler_ran(label, started.elapsed());
                response
            }
            _ => run_guarded(future, self.handler_timeout).await,
        }
    }

    /// With a journal: record the delivery durably, then answer as the ACK mode says.
    async fn journal(
        &self,
        journal: &Arc<Control>,
        delivery: &Delivery,
        prepared: Prepared,
        label: Option<EventLabel>,
    ) -> (Response, Answer) {
        let future = match prepared {
            Prepared::Refused(response) => return (response, Answer::Handler),
            Prepared::Unhandled => None,
            Prepared::Ready(future) => Some(future),
        };
        let ack = journal.settings.ack;
        // In `journal` mode the first attempt runs in this process, on the future
        // already extracted (the payload parsed once), as soon as a worker is free,
        // when there is room to keep it in memory until then; otherwise the row
        // waits in the journal for a worker. In `handler` mode it runs in the request.
        let reservation = match (&future, ack) {
            (Some(_), Ack::Journal) => journal.try_reserve(delivery.body().len()),
            _ => None,
        };
        let claim = future.is_some() && (reservation.is_some() || ack == Ack::Handler);
        // The lease starts now (`new_entry` reads the clock for it).
        let claimed = Instant::now();
        let entry = new_entry(delivery, journal, future.is_some(), claim);
        let store = Arc::clone(&journal.store);
        let mut insert = Box::pin(async move { store.insert(entry).await });
        let inserted = tokio::select! {
            inserted = &mut insert => inserted,
            () = tokio::time::sleep(JOURNAL_WRITE_TIMEOUT) => {
                // The write may still land: a claim it makes would then be nobody's
                // until its lease ran out, so it goes back to the queue at once.
                let journal = Arc::clone(journal);
                tokio::spawn(async move {
                    if let Ok(
                        Inserted::New { id, claimed: true }
                        | Inserted::QueuedAgain { id, claimed: true },
                    ) = insert.await
                    {
                        journal.give_back(Claim { id, attempt: 1 }).await;
                    }
                });
                let rejection = Rejection::JournalUnavailable(format!(
                    "no answer from the journal within {} s",
                    JOURNAL_WRITE_TIMEOUT.as_secs()
                ));
                return (rejection.into_response(), Answer::Refused);
            }
        };
        let inserted = match inserted {
            Ok(inserted) => inserted,
            Err(e) => {
                let rejection = Rejection::JournalUnavailable(e.to_string());
                return (rejection.into_response(), Answer::Refused);
            }
        };
        let (id, again) = match inserted {
            Inserted::Unhandled => return (hook_not_used(), Answer::Unhandled),
            Inserted::Duplicate => {
                return (
                    receipt(StatusCode::OK, "Duplicate delivery"),
                    Answer::Duplicate,
                );
            }
            Inserted::AlreadyQueued => {
                return (
                    receipt(StatusCode::ACCEPTED, "Already queued"),
                    Answer::Duplicate,
                );
            }
            Inserted::TooManyPending => {
                let rejection = Rejection::TooManyPending {
                    max: journal.settings.max_pending,
                };
                return (rejection.into_response(), Answer::Refused);
            }
            Inserted::New { id, claimed } | Inserted::QueuedAgain { id, claimed } => {
                if !claimed {
                    journal.wake();
                }
                (
                    claimed.then_some(id),
                    matches!(inserted, Inserted::QueuedAgain { .. }),
                )
            }
        };
        let queued = || {
            let text = if again { "Queued again" } else { "Queued" };
            (receipt(StatusCode::ACCEPTED, text), Answer::Queued)
        };
        let (Some(id), Some(future)) = (id, future) else {
            return queued();
        };
        journal.started(Claim { id, attempt: 1 });
        let row = OwnedRow {
            id,
            guid: delivery.guid().to_owned(),
            event: delivery.event().to_owned(),
            attempts: 1,
        };
        match ack {
            Ack::Handler => {
                let started = Instant::now();
                let response = self.run_handler(future, label).await;
                let record = attempt_record(&response, None, started);
                let finish = journal.decide(response.status().as_u16(), 1, time::now());
                journal.finish(&row.borrow(), finish, record, None).await;
                (response, Answer::Handler)
            }
            Ack::Journal => {
                let journal = Arc::clone(journal);
                let timeout = self.handler_timeout;
                let metrics = self.metrics.clone();
                let span = tracing::Span::current();
                tokio::spawn(
                    async move {
                        let _reservation = reservation;
                        let Some(permit) = journal.worker_permit().await else {
                            // Shutting down: the next start runs it.
                            journal.give_back(row.borrow().claim()).await;
                            return;
                        };
                        // The claim's lease must outlast the handler: after a long
                        // wait for a worker, the row goes back to the queue (and is
                        // read back from the journal) rather than risk a second run
                        // by whoever claims it when the lease runs out.
                        if claimed.elapsed() + timeout + LEASE_SAFETY > journal.lease {
                            drop(permit);
                            journal.give_back(row.borrow().claim()).await;
                            journal.wake();
                            return;
                        }
                        let started = Instant::now();
                        let response = run_guarded(future, timeout).await;
                        if let (Some(metrics), Some(label)) = (metrics, label) {
                            metrics.handler_ran(label, started.elapsed());
                        }
                        let status = response.status().as_u16();
                        let record = attempt_record_read(response, started).await;
                        let finish = journal.decide(status, 1, time::now());
                        journal
                            .finish(&row.borrow(), finish, record, Some(permit))
                            .await;
                    }
                    .instrument(span),
                );
                queued()
            }
        }
    }

    /// One attempt of a row a worker claimed: the same extractors and handler as a
    /// request, from the stored headers and body.
    pub(crate) async fn run_claimed(
        self: Arc<Self>,
        journal: Arc<Control>,
        claimed: Claimed,
        permit: OwnedSemaphorePermit,
    ) {
        let started = Instant::now();
        let delivery = stored::decode_headers(&claimed.headers).and_then(|headers| {
            let ip = claimed.client_ip.as_deref().and_then(|ip| ip.parse().ok());
            Delivery::parse(headers, claimed.body.clone(), ip).map_err(|r| r.to_string())
        });
        let mut row = OwnedRow {
            id: claimed.id,
            guid: claimed.guid.clone(),
            event: String::new(),
            attempts: claimed.attempts,
        };
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(why) => {
                let record = AttemptRecord {
                    status: None,
                    error: Some(format!("stored delivery unreadable: {why}")),
                    duration_ms: 0,
                };
                journal
                    .finish(&row.borrow(), Finish::Dead, record, Some(permit))
                    .await;
                return;
            }
        };
        row.event = delivery.event().to_owned();
        let span = tracing::debug_span!(
            "delivery",
            event = delivery.event(),
            action = tracing::field::Empty,
            guid = delivery.guid(),
            attempt = claimed.attempts,
        );
        let response = match span.in_scope(|| self.prepare(&delivery)) {
            Prepared::Unhandled => {
                let record = AttemptRecord {
                    status: None,
                    error: None,
                    duration_ms: 0,
                };
                journal
                    .finish(&row.borrow(), Finish::Unhandled, record, Some(permit))
                    .await;
                return;
            }
            Prepared::Refused(response) => response,
            Prepared::Ready(future) => {
                let label = (self.metrics.as_ref())
                    .map(|_| EventLabel::of(Some(delivery.event().as_bytes())));
                self.run_handler(future, label)
                    .instrument(span.clone())
                    .await
            }
        };
        let status = response.status().as_u16();
        let record = attempt_record_read(response, started).await;
        let finish = journal.decide(status, claimed.attempts, time::now());
        journal
            .finish(&row.borrow(), finish, record, Some(permit))
            .instrument(span)
            .await;
    }
}

/// A delivery after routing and extraction.
enum Prepared {
    /// No handler answers it.
    Unhandled,
    /// Refused before the handler's code: broken JSON, an extractor's rejection.
    Refused(Response),
    /// The handler's future, not yet polled.
    Ready(BoxFuture<'static, Response>),
}

/// How long the pipeline waits for the journal to record a delivery before it
/// answers `503`: half of GitHub's 10 s delivery timeout.
const JOURNAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a lease must be left, beyond the handler timeout, for a first attempt
/// that waited for a worker to still run on its claim.
const LEASE_SAFETY: Duration = Duration::from_secs(5);

/// The longest error text kept from a failed attempt's body.
const ERROR_TEXT_LIMIT: usize = 1024;

fn hook_not_used() -> Response {
    (StatusCode::OK, "Hook not used").into_response()
}

fn receipt(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

fn new_entry(delivery: &Delivery, journal: &Control, handled: bool, claim: bool) -> NewEntry {
    let now = time::now();
    NewEntry {
        hook_id: delivery
            .hook_id()
            .map(|id| id.to_string())
            .unwrap_or_default(),
        guid: delivery.guid().to_owned(),
        event: delivery.event().to_owned(),
        action: delivery.known_action().map(str::to_owned),
        received_at: now,
        client_ip: delivery.client_ip().map(|ip| ip.to_string()),
        headers: stored::encode_headers(delivery.headers()),
        body: delivery.body().clone(),
        handled,
        claim_until: claim.then(|| time::after(now, journal.lease)),
        max_pending: journal.settings.max_pending,
    }
}

/// The row of an attempt, owned so that it can move into a task.
struct OwnedRow {
    id: EntryId,
    guid: String,
    event: String,
    attempts: u32,
}

impl OwnedRow {
    fn borrow(&self) -> ClaimedRow<'_> {
        ClaimedRow {
            id: self.id,
            guid: &self.guid,
            event: &self.event,
            attempts: self.attempts,
        }
    }
}

async fn run_guarded(future: BoxFuture<'static, Response>, timeout: Duration) -> Response {
    let guarded = AssertUnwindSafe(future).catch_unwind();
    match tokio::time::timeout(timeout, guarded).await {
        Ok(Ok(response)) => response,
        Ok(Err(panic)) => Rejection::HandlerPanicked(panic_message(&*panic)).into_response(),
        Err(_) => Rejection::HandlerTimedOut {
            after_ms: timeout.as_millis() as u64,
        }
        .into_response(),
    }
}

/// What the journal records of an answer that is going back to GitHub: its status
/// and hookserver's reason, when it has one (the body is GitHub's).
fn attempt_record(response: &Response, error: Option<String>, started: Instant) -> AttemptRecord {
    let status = response.status().as_u16();
    let error = error.or_else(|| {
        response
            .extensions()
            .get::<Reason>()
            .filter(|_| status >= 400)
            .map(|r| r.text.clone().into_owned())
    });
    AttemptRecord {
        status: Some(status),
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// What the journal records of an answer nobody else reads: for a failure, the
/// reason, or the start of the body the handler wrote.
async fn attempt_record_read(response: Response, started: Instant) -> AttemptRecord {
    let status = response.status().as_u16();
    if status < 400 || response.extensions().get::<Reason>().is_some() {
        return attempt_record(&response, None, started);
    }
    let body = axum::body::to_bytes(response.into_body(), ERROR_TEXT_LIMIT).await;
    let error = match body {
        Ok(bytes) if bytes.is_empty() => None,
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(_) => Some(format!("(answer longer than {ERROR_TEXT_LIMIT} bytes)")),
    };
    AttemptRecord {
        status: Some(status),
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Puts the action on the delivery's span, where the handler's log lines see it.
fn record_action(delivery: &Delivery) {
    if let Some(action) = delivery.action_for_log() {
        tracing::Span::current().record("action", action);
    }
}

fn verify(verifier: &Verifier, headers: &http::HeaderMap, body: &[u8]) -> Result<(), Rejection> {
    let rejection = |e| match e {
        SignatureError::Missing => Rejection::MissingSignature,
        SignatureError::Duplicate(name) => Rejection::DuplicateSignature(name),
        SignatureError::Wrong => Rejection::WrongSignature {
            header: "X-Hub-Signature-256",
            secrets: verifier.secret_count(),
            malformed: true,
        },
    };
    let signatures = Signatures::from_headers(headers).map_err(rejection)?;
    verifier.verify(body, signatures).map_err(|e| match e {
        SignatureError::Wrong => {
            // What the log line says of a wrong one: which header was checked, and
            // whether it even looked like a signature (the secrets' count is the
            // verifier's). Only on this failure path.
            let (header, value, sha1) = match signatures.sha256 {
                Some(value) => ("X-Hub-Signature-256", value, false),
                None => ("X-Hub-Signature", signatures.sha1.unwrap_or_default(), true),
            };
            Rejection::WrongSignature {
                header,
                secrets: verifier.secret_count(),
                malformed: !signature::well_formed(value, sha1),
            }
        }
        other => rejection(other),
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
        .to_owned()
}
