//! Talking to GitHub's REST API politely, for every client of it (`meta`, `catchup`):
//! one way to build the HTTP client (timeouts, `User-Agent`), one reading of a refusal
//! (primary and secondary rate limits, `retry-after`), one back-off.
//!
//! The rules (`../shared/GITHUB.md`, "REST rate limits"): a `403`/`429` with
//! `x-ratelimit-remaining: 0` means no request before `x-ratelimit-reset`; a
//! `retry-after` is honoured; a secondary limit without either waits at least a minute
//! and backs off exponentially; any other failure backs off from a second.

use crate::config::ConfigError;
use http::{HeaderMap, StatusCode};
use std::time::{Duration, SystemTime};

/// The first pause after a failed request; it doubles with each further failure.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The first pause after a `403`/`429` without rate-limit headers (or a `422`
/// "endpoint spammed"): GitHub's advice for secondary rate limits is to wait at least
/// a minute.
pub(crate) const SECONDARY_LIMIT_BASE: Duration = Duration::from_secs(60);
/// The longest pause between attempts.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);

/// The media type GitHub documents for its REST API.
pub(crate) const ACCEPT: &str = "application/vnd.github+json";
/// The API version requested.
pub(crate) const API_VERSION: (&str, &str) = ("x-github-api-version", "2022-11-28");

/// An HTTP client for GitHub's API: `User-Agent` set (GitHub refuses requests without
/// one), every request and connection bounded by `timeout`. A client that cannot be
/// built is a start-up error about `what`.
pub(crate) fn client(
    timeout: Duration,
    what: &'static str,
) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .user_agent(concat!("hookserver/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| ConfigError::Startup {
            what,
            why: e.to_string(),
        })
}

/// A request that failed before any answer, in words that never hold a token.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        // reqwest's messages name the URL, never the token.
        e.to_string()
    }
}

/// The body of `response`, at most `max` bytes; a larger one, or one cut short, is an
/// error in words for the log.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    max: usize,
) -> Result<bytes::Bytes, String> {
    let mut body = bytes::BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= max => body.extend_from_slice(&chunk),
            Ok(Some(_)) => return Err(format!("answer larger than {max} bytes")),
            Ok(None) => return Ok(body.freeze()),
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// An answer GitHub gave instead of what was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Rate limited: no request before `until`.
    RateLimited { until: SystemTime },
    /// Anything else; the next attempt waits at least `base` (doubling).
    Failed { why: String, base: Duration },
}

/// What an unsuccessful status means for the next request: a rate limit (`403`/`429`
/// with the headers, `503` with `retry-after`), a secondary limit (`403`/`429`
/// without them, `422`), or a plain failure.
pub(crate) fn refusal(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Refusal {
    let failed = |base| Refusal::Failed {
        why: format!("status {status}"),
        base,
    };
    match status {
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            match rate_limited_until(status, headers, now) {
                Some(until) => Refusal::RateLimited { until },
                None if status == StatusCode::SERVICE_UNAVAILABLE => failed(BACKOFF_BASE),
                None => failed(SECONDARY_LIMIT_BASE),
            }
        }
        StatusCode::UNPROCESSABLE_ENTITY => failed(SECONDARY_LIMIT_BASE),
        _ => failed(BACKOFF_BASE),
    }
}

/// When a `403`/`429`/`503` says to come back: `x-ratelimit-reset` when
/// `x-ratelimit-remaining` is 0 (403/429 only), `retry-after` in seconds or as an
/// HTTP date; if both are given, the later.
fn rate_limited_until(
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<SystemTime> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let reset = (status != StatusCode::SERVICE_UNAVAILABLE
        && text("x-ratelimit-remaining") == Some("0"))
    .then(|| text("x-ratelimit-reset")?.parse::<u64>().ok())
    .flatten()
    .map(|epoch| SystemTime::UNIX_EPOCH + Duration::from_secs(epoch));
    let retry_after = text("retry-after").and_then(|v| match v.parse::<u64>() {
        Ok(secs) => now.checked_add(Duration::from_secs(secs)),
        Err(_) => httpdate::parse_http_date(v).ok(),
    });
    match (reset, retry_after) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The pause after the failure that follows `failures` earlier ones in a row: `base`
/// doubled per earlier failure, at most [`BACKOFF_MAX`].
pub(crate) fn backoff(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1 << failures.min(16)).min(BACKOFF_MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::HeaderValue;

    /// A header map of `pairs`, for the tests of every module that reads headers.
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// `secs` after the Unix epoch.
    pub(crate) fn epoch(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn reads_rate_limits() {
        let now = epoch(1_445_929_000);
        let reset = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1445929478"),
        ]);
        for status in [StatusCode::FORBIDDEN, StatusCode::TOO_MANY_REQUESTS] {
            assert_eq!(
                refusal(status, &reset, now),
                Refusal::RateLimited {
                    until: epoch(1_445_929_478)
                }
            );
        }
        // Remaining above zero: not a primary rate limit.
        let left = headers(&[
            ("x-ratelimit-remaining", "5"),
            ("x-ratelimit-reset", "1445929478"),
        ]);
        assert!(
            matches!(refusal(StatusCode::FORBIDDEN, &left, now), Refusal::Failed { base, .. } if base == SECONDARY_LIMIT_BASE)
        );
        // retry-after, in seconds or as a date, on 403/429/503.
        let secs = headers(&[("retry-after", "120")]);
        for status in [
            StatusCode::FORBIDDEN,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert_eq!(
                refusal(status, &secs, now),
                Refusal::RateLimited {
                    until: now + Duration::from_secs(120)
                }
            );
        }
        let date = headers(&[("retry-after", "Tue, 27 Oct 2015 07:04:38 GMT")]);
        assert_eq!(
            refusal(StatusCode::TOO_MANY_REQUESTS, &date, now),
            Refusal::RateLimited {
                until: epoch(1_445_929_478)
            }
        );
        // Both: the later instant wins, either way round.
        let both = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1445929478"),
            ("retry-after", "60"),
        ]);
        assert_eq!(
            refusal(StatusCode::FORBIDDEN, &both, now),
            Refusal::RateLimited {
                until: epoch(1_445_929_478)
            }
        );
        let both = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1445929010"),
            ("retry-after", "60"),
        ]);
        assert_eq!(
            refusal(StatusCode::FORBIDDEN, &both, now),
            Refusal::RateLimited {
                until: now + Duration::from_secs(60)
            }
        );
        // 403 with nothing: a failure with the secondary-limit back-off; so is 422.
        for status in [StatusCode::FORBIDDEN, StatusCode::UNPROCESSABLE_ENTITY] {
            assert!(
                matches!(refusal(status, &HeaderMap::new(), now), Refusal::Failed { base, .. } if base == SECONDARY_LIMIT_BASE)
            );
        }
        assert!(
            matches!(refusal(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), now), Refusal::Failed { base, .. } if base == BACKOFF_BASE)
        );
        assert!(matches!(
            refusal(StatusCode::INTERNAL_SERVER_ERROR, &reset, now),
            Refusal::Failed { .. }
        ));
        let garbage = headers(&[("retry-after", "soon")]);
        assert!(matches!(
            refusal(StatusCode::TOO_MANY_REQUESTS, &garbage, now),
            Refusal::Failed { .. }
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (0..11)
            .map(|n| backoff(BACKOFF_BASE, n).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(SECONDARY_LIMIT_BASE, 0).as_secs(), 60);
        assert_eq!(backoff(BACKOFF_BASE, u32::MAX), BACKOFF_MAX);
    }
}
