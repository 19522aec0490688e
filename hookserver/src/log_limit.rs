//! Warnings that an attacker can trigger at will (accept failures, refused or
//! abusive connections, later rejected deliveries) must not flood the log: the
//! first of a kind is logged at once, the rest of its interval become one summary
//! line with a count.

use std::{
    collections::HashMap,
    fmt::Display,
    sync::Mutex,
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

/// One warning line per kind per interval.
///
/// A summary is written when the next event of its kind arrives after the
/// interval: a flood that stops leaves its last count unreported until the kind
/// recurs, which keeps this free of timers and tasks.
#[derive(Debug)]
pub(crate) struct RateLimitedWarning {
    interval: Duration,
    kinds: Mutex<HashMap<&'static str, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    suppressed: u64,
}

impl RateLimitedWarning {
    /// At most one line per kind per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// How long a kind stays quiet after its line.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Logs `message` under `kind` at warn level, or counts it for the next summary.
    pub(crate) fn warn(&self, kind: &'static str, message: impl Display) {
        match self.record(kind, message, Instant::now()) {
            Some(Line::First(message)) => tracing::warn!(kind, "{kind}: {message}"),
            Some(Line::Summary { count, last }) => tracing::warn!(
                kind,
                count,
                interval_secs = self.interval.as_secs(),
                "{count} more: {kind}: {last}"
            ),
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
                None
            }
            Some(window) => {
                let suppressed = window.suppressed;
                *window = Window {
                    started: now,
                    suppressed: 0,
                };
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
                kinds.insert(
                    kind,
                    Window {
                        started: now,
                        suppressed: 0,
                    },
                );
                Some(Line::First(message.to_string()))
            }
        }
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

    #[test]
    fn time_going_backwards_counts_as_inside_the_interval() {
        let limit = RateLimitedWarning::new(10 * SEC);
        let t = Instant::now() + 100 * SEC;
        assert!(limit.record("accept", "a", t).is_some());
        assert!(limit.record("accept", "a", t - 50 * SEC).is_none());
    }
}
