//! Reading a request body, bounded three ways: in size (`413` beyond the body
//! limit, before reading when the length is declared), in time (`408` after the
//! body timeout), and in memory across every delivery in flight (the buffered-bytes
//! budget: `503` with `Retry-After` when it stays full).
//!
//! The budget exists because a body must be buffered before its signature can be
//! checked: without it, N stalled unsigned bodies cost N times the body limit. It
//! counts every byte received as it arrives, so the memory held by bodies stays
//! within it (plus the one copy that joins a body's chunks at its end).

use crate::{
    config::{ConfigError, Setting},
    rejection::Rejection,
};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::BodyExt;
use std::{sync::Arc, time::Duration};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `Config::body_limit` / `HOOKSERVER_BODY_LIMIT`.
pub(crate) const BODY_LIMIT: Setting = Setting::new("Config::body_limit", "HOOKSERVER_BODY_LIMIT");
/// `Config::body_timeout` / `HOOKSERVER_BODY_TIMEOUT_SECS`.
pub(crate) const BODY_TIMEOUT: Setting =
    Setting::new("Config::body_timeout", "HOOKSERVER_BODY_TIMEOUT_SECS");
/// `Config::max_buffered_bytes` / `HOOKSERVER_MAX_BUFFERED_BYTES`.
pub(crate) const MAX_BUFFERED: Setting = Setting::new(
    "Config::max_buffered_bytes",
    "HOOKSERVER_MAX_BUFFERED_BYTES",
);

/// The longest a delivery waits for room in the budget before it is answered `503`.
const BUDGET_WAIT: Duration = Duration::from_secs(2);
/// What `Retry-After` says when the budget is full.
const RETRY_AFTER_SECS: u64 = 5;

/// How bodies are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodySettings {
    /// The largest body accepted, in bytes.
    pub(crate) limit: usize,
    /// How long the whole body may take to arrive.
    pub(crate) timeout: Duration,
    /// How many bytes the bodies of all deliveries in flight may hold together.
    pub(crate) max_buffered: usize,
}

impl BodySettings {
    pub(crate) const DEFAULT_LIMIT: usize = 25 * 1024 * 1024;
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    pub(crate) const DEFAULT_MAX_BUFFERED: usize = 256 * 1024 * 1024;

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.limit == 0 {
            return Err(ConfigError::invalid(BODY_LIMIT, "0", "a size above 0"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(BODY_TIMEOUT, "0", "at least 1 second"));
        }
        // A body larger than the budget could never be read; permits are counted
        // in a u32 per request.
        if self.max_buffered < self.limit || u32::try_from(self.max_buffered).is_err() {
            return Err(ConfigError::invalid(
                MAX_BUFFERED,
                &self.max_buffered.to_string(),
                "at least the body limit and at most 4294967295 bytes",
            ));
        }
        Ok(())
    }
}

/// Reads bodies for one router, sharing one budget.
pub(crate) struct BodyReader {
    limit: usize,
    timeout: Duration,
    budget: Arc<Semaphore>,
}

/// A body read whole, with its share of the budget, returned when dropped.
pub(crate) struct Buffered {
    pub(crate) bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

impl BodyReader {
    pub(crate) fn new(settings: &BodySettings) -> Self {
        Self {
            limit: settings.limit,
            timeout: settings.timeout,
            budget: Arc::new(Semaphore::new(settings.max_buffered)),
        }
    }

    /// Reads the whole body within the limit, the timeout and the budget.
    pub(crate) async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Buffered, Rejection> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.limit as u64) {
            return Err(Rejection::PayloadTooLarge { limit: self.limit });
        }
        // Nothing is taken from the budget before the bytes arrive: a sender that
        // declares 25 MB and stalls holds only what it sent.
        tokio::time::timeout(self.timeout, self.collect(body))
            .await
            .map_err(|_| Rejection::BodyTimeout)?
    }

    async fn collect(&self, mut body: Body) -> Result<Buffered, Rejection> {
        let mut held: Option<OwnedSemaphorePermit> = None;
        // The chunks as they came, each counted against the budget as it arrives,
        // then one copy into a buffer of the exact size: the allocation pattern of
        // `http_body_util::Collected`, which keeps peak memory at one body plus its
        // chunks. (Growing a buffer by doubling doubled the peak RSS of 64
        // concurrent 1 MB deliveries, through fragmentation.)
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut received = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Rejection::BodyUnreadable(e.to_string()))?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers: not part of the payload
            };
            received += chunk.len();
            if received > self.limit {
                return Err(Rejection::PayloadTooLarge { limit: self.limit });
            }
            self.take(&mut held, chunk.len()).await?;
            chunks.push(chunk);
        }
        // Most bodies arrive in one chunk: keep it as it came, copy nothing.
        let bytes = if chunks.len() == 1 {
            chunks.swap_remove(0)
        } else {
            let mut buffer = Vec::with_capacity(received);
            for chunk in &chunks {
                buffer.extend_from_slice(chunk);
            }
            Bytes::from(buffer)
        };
        Ok(Buffered {
            bytes,
            _budget: held,
        })
    }

    /// Adds `bytes` to what this body holds of the budget, waiting briefly for room.
    async fn take(
        &self,
        held: &mut Option<OwnedSemaphorePermit>,
        bytes: usize,
    ) -> Result<(), Rejection> {
        if bytes == 0 {
            return Ok(());
        }
        let full = || Rejection::BodyBudgetExhausted {
            retry_after_secs: RETRY_AFTER_SECS,
        };
        let n = u32::try_from(bytes).map_err(|_| full())?;
        let budget = Arc::clone(&self.budget);
        let permit = match budget.clone().try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(BUDGET_WAIT, budget.acquire_many_owned(n))
                .await
                .map_err(|_| full())?
                .map_err(|_| full())?,
        };
        match held {
            Some(held) => held.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http::HeaderValue;

    fn reader(limit: usize, max_buffered: usize) -> BodyReader {
        BodyReader::new(&BodySettings {
            limit,
            timeout: Duration::from_secs(5),
            max_buffered,
        })
    }

    fn chunked(chunks: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Body::from_stream(stream::iter(chunks))
    }

    #[tokio::test]
    async fn reads_one_chunk_without_copying_and_many_into_one_buffer() {
        let r = reader(100, 1000);
        let one = r
            .read(&HeaderMap::new(), Body::from("abc"))
            .await
            .ok()
            .unwrap();
        assert_eq!(&one.bytes[..], b"abc");
        assert_eq!(
            r.budget.available_permits(),
            997,
            "held while the body lives"
        );
        drop(one);
        assert_eq!(r.budget.available_permits(), 1000, "returned when dropped");
        let many = r
            .read(&HeaderMap::new(), chunked(&[b"ab", b"cd", b"efg"]))
            .await
            .ok()
            .unwrap();
        assert_eq!(&many.bytes[..], b"abcdefg");
        assert_eq!(
            r.budget.available_permits(),
            993,
            "holds what it received, not more"
        );
    }

    #[tokio::test]
    async fn refuses_what_is_over_the_limit_declared_or_streamed() {
        let r = reader(4, 1000);
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        let err = r.read(&declared, Body::empty()).await.err().unwrap();
        assert_eq!(err, Rejection::PayloadTooLarge { limit: 4 });
        let err = r
            .read(&HeaderMap::new(), chunked(&[b"abc", b"de"]))
            .await
            .err()
            .unwrap();
        assert_eq!(err, Rejection::PayloadTooLarge { limit: 4 });
        assert_eq!(
            r.budget.available_permits(),
            1000,
            "nothing kept on failure"
        );
    }

    #[tokio::test]
    async fn a_full_budget_is_a_503_after_a_brief_wait() {
        let r = reader(10, 10);
        let kept = r
            .read(&HeaderMap::new(), Body::from("0123456789"))
            .await
            .ok();
        let started = tokio::time::Instant::now();
        let err = r
            .read(&HeaderMap::new(), Body::from("x"))
            .await
            .err()
            .unwrap();
        assert_eq!(
            err,
            Rejection::BodyBudgetExhausted {
                retry_after_secs: RETRY_AFTER_SECS
            }
        );
        assert!(started.elapsed() >= BUDGET_WAIT, "waited for room first");
        drop(kept);
        assert!(r.read(&HeaderMap::new(), Body::from("x")).await.is_ok());
    }

    #[tokio::test]
    async fn a_body_waiting_for_room_gets_it_when_another_finishes() {
        let r = Arc::new(reader(10, 10));
        let kept = r
            .read(&HeaderMap::new(), Body::from("0123456789"))
            .await
            .ok();
        let waiting = {
            let r = Arc::clone(&r);
            tokio::spawn(async move { r.read(&HeaderMap::new(), Body::from("abc")).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(kept);
        assert!(waiting.await.unwrap());
    }

    #[test]
    fn settings_name_the_setting_at_fault() {
        let ok = BodySettings {
            limit: 10,
            timeout: Duration::from_secs(1),
            max_buffered: 10,
        };
        assert!(ok.check().is_ok());
        let small_budget = BodySettings {
            max_buffered: 9,
            ..ok.clone()
        };
        assert!(
            small_budget
                .check()
                .unwrap_err()
                .to_string()
                .starts_with("Config::max_buffered_bytes: expected at least the body limit")
        );
        let zero = BodySettings { limit: 0, ..ok };
        assert!(
            zero.check()
                .unwrap_err()
                .to_string()
                .starts_with("Config::body_limit: expected a size above 0")
        );
    }
}
