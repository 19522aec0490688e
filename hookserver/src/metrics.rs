//! Prometheus metrics ([`Hooks::metrics_route`](crate::Hooks::metrics_route)): the
//! per-delivery counters and histograms, what is read at scrape time from the
//! journal, the catch-up and `/meta`, and their encoding.
//!
//! A delivery is counted with a few relaxed atomic additions into arrays made once,
//! indexed by event and outcome: no lock, no hashing, no allocation. That is why the
//! event label is one of GitHub's known events or `other`: a stranger who sends
//! `X-GitHub-Event: <random>` must not be able to make a series per request.
//! prometheus-client's `Family` would take a lock and hash the labels per delivery;
//! its registry and encoders are used at scrape time only. Unless the route is
//! mounted, these arrays are not made and no delivery is counted (the journal's, the
//! catch-up's and `/meta`'s own counters are plain atomics their modules keep anyway).

use crate::{
    catchup::Catchup,
    github_events::EVENTS,
    journal::{JournalStats, recent::Recent, workers::Control},
    meta::{MetaCache, RefreshResult},
    outcome::Outcome,
    pipeline::Parts,
};
use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

/// The histograms' upper bounds, in nanoseconds: 100 µs (a small delivery's whole
/// pipeline) to 10 s (GitHub's timeout). Above the last is `+Inf`.
const BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The OpenMetrics text format, for a scraper that asks for it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `event` label: one of GitHub's events (an index into its table), or `other`
/// for anything else a client put in `X-GitHub-Event`, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventLabel(usize);

impl EventLabel {
    const OTHER: Self = Self(EVENTS.len());
    const COUNT: usize = EVENTS.len() + 1;

    /// The label of a claimed event name: a binary search of GitHub's sorted list.
    pub(crate) fn of(name: Option<&[u8]>) -> Self {
        let Some(name) = name else {
            return Self::OTHER;
        };
        EVENTS
            .binary_search_by(|(event, _)| event.as_bytes().cmp(name))
            .map_or(Self::OTHER, Self)
    }

    fn name(self) -> &'static str {
        EVENTS.get(self.0).map_or("other", |(event, _)| event)
    }
}

/// A histogram of durations that records with two atomic additions: the bucket's
/// count (not cumulated: the encoder cumulates) and the sum in nanoseconds.
struct Histogram {
    /// One per bound, then `+Inf`.
    buckets: [AtomicU64; BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // The first bound at or above the value: `le` is inclusive.
        let bucket = BOUNDS_NS.partition_point(|&bound| bound < ns);
        if let Some(count) = self.buckets.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// `(sum in seconds, count, per-bucket counts with their bounds)`.
    fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let bounds = BOUNDS_NS
            .iter()
            .map(|&ns| ns as f64 / 1e9)
            .chain([f64::INFINITY]);
        let buckets = bounds.zip(counts.iter().copied()).collect();
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (sum, counts.iter().sum(), buckets)
    }
}

/// What every delivery adds to: made when the route is mounted, shared by the
/// pipeline (which counts) and the route (which reads).
pub(crate) struct DeliveryMetrics {
    /// `hookserver_deliveries_total`, by event then outcome.
    deliveries: Box<[AtomicU64]>,
    /// `hookserver_delivery_duration_seconds`, by event.
    delivery_duration: Box<[Histogram]>,
    /// `hookserver_handler_duration_seconds`, by event.
    handler_duration: Box<[Histogram]>,
}

impl DeliveryMetrics {
    pub(crate) fn new() -> Self {
        let histograms = || (0..EventLabel::COUNT).map(|_| Histogram::new()).collect();
        Self {
            deliveries: (0..EventLabel::COUNT * Outcome::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            delivery_duration: histograms(),
            handler_duration: histograms(),
        }
    }

    /// One delivery answered, after `elapsed` in the pipeline.
    pub(crate) fn delivered(&self, event: EventLabel, outcome: Outcome, elapsed: Duration) {
        let slot = event.0 * Outcome::ALL.len() + outcome.index();
        if let Some(count) = self.deliveries.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(histogram) = self.delivery_duration.get(event.0) {
            histogram.observe(elapsed);
        }
    }

    /// One run of a handler (in the request or in a journal worker) that took
    /// `elapsed`, whatever it answered.
    pub(crate) fn handler_ran(&self, event: EventLabel, elapsed: Duration) {
        if let Some(histogram) = self.handler_duration.get(event.0) {
            histogram.observe(elapsed);
        }
    }
}

/// What the route reads, taken from a registry's parts.
struct Sources {
    deliveries: Arc<DeliveryMetrics>,
    journal: Option<Arc<Control>>,
    meta: Option<Arc<MetaCache>>,
    catchup: Option<Arc<Catchup>>,
    last_stats: Recent<JournalStats>,
}

impl Sources {
    fn new(parts: &Parts) -> Self {
        Self {
            deliveries: parts.delivery_metrics(),
            journal: parts.journal_control(),
            meta: parts.source().and_then(|source| source.meta()),
            catchup: parts.catchup(),
            last_stats: Recent::new(),
        }
    }

    /// The journal's counts, or the last ones when they are recent (and the query
    /// in flight, for scrapes that arrive while it runs). Never on the delivery path.
    async fn journal_stats(&self) -> Option<Result<JournalStats, String>> {
        let control = self.journal.as_ref()?;
        Some(self.last_stats.get(|| control.store.stats()).await)
    }
}

/// One scrape's view: the shared sources and what was read for this scrape.
struct Exposition {
    sources: Arc<Sources>,
    journal_stats: Option<Result<JournalStats, String>>,
    now: SystemTime,
}

impl fmt::Debug for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exposition").finish_non_exhaustive()
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        self.encode_deliveries(&mut encoder)?;
        if let Some(journal) = &self.sources.journal {
            self.encode_journal(&mut encoder, journal)?;
        }
        if let Some(catchup) = &self.sources.catchup {
            let status = catchup.status();
            counter(
                &mut encoder,
                "hookserver_catchup_missing",
                "Deliveries the catch-up found missing (no OK attempt on GitHub, no journal row), counted per pass.",
                status.missing_total,
            )?;
            counter(
                &mut encoder,
                "hookserver_catchup_redeliveries",
                "Redeliveries the catch-up asked GitHub for.",
                status.redelivered_total,
            )?;
        }
        if let Some(meta) = &self.sources.meta {
            self.encode_meta(&mut encoder, meta)?;
        }
        Ok(())
    }
}

impl Exposition {
    fn encode_deliveries(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let metrics = &self.sources.deliveries;
        let mut family = encoder.encode_descriptor(
            "hookserver_deliveries",
            "Deliveries answered, by event (GitHub's known events, else other) and outcome.",
            None,
            MetricType::Counter,
        )?;
        // Only the series that happened: the full grid is every event by every outcome.
        for (slot, count) in metrics.deliveries.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let event = EventLabel(slot / Outcome::ALL.len()).name();
            let outcome = Outcome::ALL
                .get(slot % Outcome::ALL.len())
                .map_or("", |o| o.as_str());
            let labels = [("event", event), ("outcome", outcome)];
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
        }
        histograms(
            encoder,
            "hookserver_delivery_duration_seconds",
            "Time from a delivery's request to its answer, by event.",
            &metrics.delivery_duration,
        )?;
        histograms(
            encoder,
            "hookserver_handler_duration_seconds",
            "Time a handler ran (in the request or in a journal worker), by event.",
            &metrics.handler_duration,
        )
    }

    fn encode_journal(
        &self,
        encoder: &mut DescriptorEncoder,
        journal: &Control,
    ) -> Result<(), fmt::Error> {
        let stats = self.journal_stats.as_ref().and_then(|s| s.as_ref().ok());
        gauge(
            encoder,
            "hookserver_journal_up",
            "1 when the journal's counts could be read at this scrape, else 0.",
            u64::from(stats.is_some()),
        )?;
        if let Some(stats) = stats {
            let mut family = encoder.encode_descriptor(
                "hookserver_journal_deliveries",
                "Deliveries in the journal, by state (read at most once a second).",
                None,
                MetricType::Gauge,
            )?;
            for (state, count) in [
                ("queued", stats.queued),
                ("running", stats.running),
                ("done", stats.done),
                ("dead", stats.dead),
                ("unhandled", stats.unhandled),
            ] {
                family
                    .encode_family(&[("state", state)])?
                    .encode_gauge(&count)?;
            }
            let age = stats.oldest_pending.map_or(0.0, |at| {
                self.now
                    .duration_since(at)
                    .unwrap_or_default()
                    .as_secs_f64()
            });
            encoder
                .encode_descriptor(
                    "hookserver_journal_oldest_pending_age_seconds",
                    "Age of the oldest queued or running delivery; 0 when none is pending.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&age)?;
        }
        let counts = journal.attempt_counts();
        counter(
            encoder,
            "hookserver_journal_retries",
            "Attempts that failed and were scheduled again.",
            counts.retries,
        )?;
        counter(
            encoder,
            "hookserver_journal_dead",
            "Deliveries marked dead: out of attempts, or unreadable.",
            counts.dead,
        )
    }

    fn encode_meta(
        &self,
        encoder: &mut DescriptorEncoder,
        meta: &MetaCache,
    ) -> Result<(), fmt::Error> {
        if let Some(at) = meta.fetched_at() {
            let age = self
                .now
                .duration_since(at)
                .unwrap_or_default()
                .as_secs_f64();
            encoder
                .encode_descriptor(
                    "hookserver_meta_list_age_seconds",
                    "Time since GitHub last gave or confirmed the hook ranges.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&age)?;
        }
        let mut family = encoder.encode_descriptor(
            "hookserver_meta_refreshes",
            "Requests to GitHub's /meta, by result.",
            None,
            MetricType::Counter,
        )?;
        let refreshes = meta.refresh_counts();
        for result in RefreshResult::ALL {
            let count = refreshes.get(result);
            family
                .encode_family(&[("result", result.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
        }
        Ok(())
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// A histogram family by event, with the events that have observations.
fn histograms(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    by_event: &[Histogram],
) -> Result<(), fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (i, histogram) in by_event.iter().enumerate() {
        let (sum, count, buckets) = histogram.read();
        if count == 0 {
            continue;
        }
        family
            .encode_family(&[("event", EventLabel(i).name())])?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    Ok(())
}

/// The route, on the path the user chose.
pub(crate) fn router(parts: &Parts, path: &str) -> Router {
    Router::new()
        .route(path, get(scrape))
        .with_state(Arc::new(Sources::new(parts)))
}

async fn scrape(State(sources): State<Arc<Sources>>, headers: HeaderMap) -> Response {
    let journal_stats = sources.journal_stats().await;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition {
        sources,
        journal_stats,
        now: SystemTime::now(),
    }));
    // Prometheus asks for OpenMetrics; a person with curl gets the classic format.
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    let mut body = String::new();
    let (encoded, content_type) = if openmetrics {
        (
            prometheus_client::encoding::text::encode(&mut body, &registry),
            OPENMETRICS,
        )
    } else {
        (
            prometheus_client::encoding::prometheus_text::encode(&mut body, &registry),
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )
    };
    if encoded.is_err() {
        // Writing to a String does not fail; a label the encoder refuses would.
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded",
        )
            .into_response();
    }
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_sorted_for_the_binary_search() {
        assert!(
            EVENTS
                .windows(2)
                .all(|w| w[0].0.as_bytes() < w[1].0.as_bytes())
        );
    }

    #[test]
    fn known_events_are_their_own_label_and_the_rest_other() {
        assert_eq!(EventLabel::of(Some(b"push")).name(), "push");
        assert_eq!(EventLabel::of(Some(b"pull_request")).name(), "pull_request");
        let first = EVENTS.first().map(|(e, _)| *e).unwrap_or_default();
        let last = EVENTS.last().map(|(e, _)| *e).unwrap_or_default();
        assert_eq!(EventLabel::of(Some(first.as_bytes())).name(), first);
        assert_eq!(EventLabel::of(Some(last.as_bytes())).name(), last);
        for stranger in [&b"pushh"[..], b"", b"PUSH", b"push\n", b"zzz", b"a"] {
            assert_eq!(EventLabel::of(Some(stranger)), EventLabel::OTHER);
        }
        assert_eq!(EventLabel::of(None).name(), "other");
    }

    #[test]
    fn a_histogram_puts_a_bound_in_its_own_bucket() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(100)); // on the first bound: le="0.0001"
        histogram.observe(Duration::from_micros(101));
        histogram.observe(Duration::from_secs(11)); // +Inf
        let (sum, count, buckets) = histogram.read();
        assert_eq!(count, 3);
        assert!((sum - 11.000_201).abs() < 1e-9, "{sum}");
        assert_eq!(buckets.first(), Some(&(0.0001, 1)));
        assert_eq!(buckets.get(1), Some(&(0.00025, 1)));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(buckets.len(), BOUNDS_NS.len() + 1);
    }
}
