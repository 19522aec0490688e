//! Warnings that an attacker can trigger at will (accept failures, refused or
//! abusive connections, later rejected deliveries) must not flood the log: the
//! first of a kind is logged at once, the rest of its interval become one summary
//! line with a count.

use std::{
    collections::HashMap,
    fmt::Display,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// What to log for one event, decided by [`RateLimitedWarning::record`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The first of its kind in a while: log it as it is.
    First(String),
    /// `count` events of this kind since the last line, the latest of which said
    /// `last`.
    Summary {
        /// How many, the current one included.
        count: u64,
        /// The current event's message.
        last: String,
    },
}

/// Writes the summary of a kind whose interval ended with events still counted:
/// `(kind, count, last message, interval)`.
pub(crate) type WriteSummary = fn(&'static str, u64, &str, Duration);

/// [`RateLimitedWarning::warn`]'s summary line: `N more: KIND: LAST`.
pub(crate) fn warn_count(kind: &'static str, count: u64, last: &str, interval: Duration) {
    tracing::warn!(
        kind,
        count,
        interval_secs = interval.as_secs(),
        "{count} more: {kind}: {last}"
    );
}

/// One warning line per kind per interval.
///
/// A summary is written when the next event of its kind arrives after the
/// interval, or, with [`with_summaries`](Self::with_summaries) on a Tokio runtime,
/// when the interval ends: so a flood that stops still has its count reported.
#[derive(Debug)]
pub(crate) struct RateLimitedWarning {
    interval: Duration,
    kinds: Arc<Mutex<HashMap<&'static str, Window>>>,
    write_summary: Option<WriteSummary>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    suppressed: u64,
    /// The last suppressed event's message, for a summary written by the timer.
    last: Option<String>,
    /// A timer will write this window's summary at its end.
    timed: bool,
}

impl Window {
    fn new(started: Instant) -> Self {
        Self {
            started,
            suppressed: 0,
            last: None,
            timed: false,
        }
    }
}

impl RateLimitedWarning {
    /// At most one line per kind per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            kinds: Arc::new(Mutex::new(HashMap::new())),
            write_summary: None,
        }
    }

    /// Also writes, with `write_summary`, the count of an interval that ended with
    /// events counted and no event after it to carry the count.
    pub(crate) fn with_summaries(mut self, write_summary: WriteSummary) -> Self {
        self.write_summary = Some(write_summary);
        self
    }

    /// How long a kind stays quiet after its line.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Logs `message` under `kind` at warn level, or counts it for the next summary.
    pub(crate) fn warn(&self, kind: &'static str, message: impl Display) {
        match self.record(kind, message, Instant::now()) {
            Some(Line::First(message)) => tracing::warn!(kind, "{kind}: {message}"),
            Some(Line::Summary { count, last }) => {
                warn_count(kind, count, &last, self.interval);
            }
            None => {}
        }
    }

    /// The decision behind [`warn`](Self::warn), at an explicit time (for tests).
    pub(crate) fn record(
        &self,
        kind: &'static str,
        message: impl Display,
        now: Instant,
    ) -> Option<Line> {
        // A poisoned lock only means another thread panicked mid-update of a
        // counter; the counts are still good enough for a log line.
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        match kinds.get_mut(kind) {
            Some(window) if now.saturating_duration_since(window.started) < self.interval => {
                window.suppressed = window.suppressed.saturating_add(1);
                if let Some(write_summary) = self.write_summary {
                    window.last = Some(message.to_string());
                    if !window.timed {
                        window.timed = self.summary_at_end(kind, window.started, write_summary);
                    }
                }
                None
            }
            Some(window) => {
                let suppressed = window.suppressed;
                *window = Window::new(now);
                Some(if suppressed == 0 {
                    Line::First(message.to_string())
                } else {
                    Line::Summary {
                        count: suppressed.saturating_add(1),
                        last: message.to_string(),
                    }
                })
            }
            None => {
                kinds.insert(kind, Window::new(now));
                Some(Line::First(message.to_string()))
            }
        }
    }

    /// Starts the timer that writes the summary of `kind`'s window started at
    /// `started`, unless an event after the window writes it first. `false`
    /// without a runtime to run it on.
    fn summary_at_end(
        &self,
        kind: &'static str,
        started: Instant,
        write_summary: WriteSummary,
    ) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let kinds = Arc::downgrade(&self.kinds);
        let interval = self.interval;
        runtime.spawn(async move {
            tokio::time::sleep_until((started + interval).into()).await;
            // The warning is gone with its server: so is its count.
            let Some(kinds) = kinds.upgrade() else { return };
            let mut kinds = kinds.lock().unwrap_or_else(|e| e.into_inner());
            let Some(window) = kinds.get_mut(kind) else {
                return;
            };
            // An event after the window already wrote the count and began another.
            if window.started != started || window.suppressed == 0 {
                return;
            }
            let (count, last) = (window.suppressed, window.last.take().unwrap_or_default());
            // The line counts as this kind's line of a new interval.
            *window = Window::new(Instant::now());
            drop(kinds);
            write_summary(kind, count, &last, interval);
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_event_is_logged_as_it_is() {
        let limit = RateLimitedWarning::new(10 * SEC);
        let t = Instant::now();
        assert_eq!(
            limit.record("accept", "accept failed: too many open files", t),
            Some(Line::First("accept failed: too many open files".into()))
        );
    }

    #[test]
    fn a_flood_is_one_line_then_one_summary_per_interval_with_its_count() {
        let limit = RateLimitedWarning::new(10 * SEC);
        let t = Instant::now();
        let mut lines = Vec::new();
        // 1,000 events over 25 s, one every 25 ms.
        for i in 0..1000u32 {
            let now = t + Duration::from_millis(25 * u64::from(i));
            lines.extend(limit.record("accept", format!("failure {i}"), now));
        }
        assert_eq!(
            lines,
            vec![
                Line::First("failure 0".into()),
                // 1..=399 suppressed, the 400th (at 10 s) carries the count.
                Line::Summary {
                    count: 400,
                    last: "failure 400".into()
                },
                Line::Summary {
                    count: 400,
                    last: "failure 800".into()
                },
            ]
        );
    }

    #[test]
    fn after_a_quiet_interval_the_next_event_is_a_first_again() {
        let limit = RateLimitedWarning::new(10 * SEC);
        let t = Instant::now();
        assert!(limit.record("accept", "a", t).is_some());
        assert_eq!(
            limit.record("accept", "b", t + 11 * SEC),
            Some(Line::First("b".into()))
        );
    }

    #[test]
    fn kinds_are_limited_separately() {
        let limit = RateLimitedWarning::new(10 * SEC);
        let t = Instant::now();
        assert!(limit.record("accept", "a", t).is_some());
        assert!(limit.record("accept", "a", t + SEC).is_none());
        assert_eq!(
            limit.record("refused", "r", t + SEC),
            Some(Line::First("r".into()))
        );
    }

    /// What `write` was given (one test uses it).
    static WRITTEN: Mutex<Vec<(&'static str, u64, String)>> = Mutex::new(Vec::new());

    fn write(kind: &'static str, count: u64, last: &str, _: Duration) {
        WRITTEN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((kind, count, last.to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_that_stops_has_its_count_written_when_the_interval_ends() {
        let limit = RateLimitedWarning::new(10 * SEC).with_summaries(write);
        let t = Instant::now();
        assert!(limit.record("flood", "first", t).is_some());
        for i in 0..5 {
            assert!(limit.record("flood", format!("more {i}"), t).is_none());
        }
        let written = || WRITTEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
        tokio::time::sleep(9 * SEC).await;
        assert!(written().is_empty(), "the interval is not over");
        tokio::time::sleep(2 * SEC).await;
        assert_eq!(written(), vec![("flood", 5, "more 4".to_owned())]);
        // The count began a new interval: the next event inside it is counted, not
        // a first, and written at that interval's end in turn.
        assert!(limit.record("flood", "late", Instant::now()).is_none());
        tokio::time::sleep(11 * SEC).await;
        assert_eq!(written().len(), 2);
        assert_eq!(written()[1], ("flood", 1, "late".to_owned()));
        // Nothing more: no timer without counted events.
        tokio::time::sleep(60 * SEC).await;
        assert_eq!(written().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_after_the_interval_carries_the_count_and_the_timer_stays_quiet() {
        static TIMED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let limit = RateLimitedWarning::new(10 * SEC).with_summaries(|_, _, _, _| {
            TIMED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let t = Instant::now();
        assert!(limit.record("k", "a", t).is_some());
        assert!(limit.record("k", "b", t).is_none());
        assert_eq!(
            limit.record("k", "c", t + 10 * SEC),
            Some(Line::Summary {
                count: 2,
                last: "c".into()
            })
        );
        tokio::time::sleep(20 * SEC).await;
        assert_eq!(
            TIMED.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "the timer wrote a count an event already carried"
        );
    }

    #[test]
    fn time_going_backwards_counts_as_inside_the_interval() {
        let limit = RateLimitedWarning::new(10 * SEC);
        let t = Instant::now() + 100 * SEC;
        assert!(limit.record("accept", "a", t).is_some());
        assert!(limit.record("accept", "a", t - 50 * SEC).is_none());
    }
}
