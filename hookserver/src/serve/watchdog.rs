//! One connection's deadlines. hyper's own timers leave gaps (nothing runs while
//! the protocol is being detected, while an HTTP/2 connection idles or holds an
//! unfinished header block, or while a response cannot be written), so each
//! connection gets a watchdog fed by two facts: whether a request is being
//! served, and whether a write has been stuck.
//!
//! - No request in flight for the header timeout (since the connection opened or
//!   the last answer was handed to the socket): closed. This covers clients that
//!   send nothing, part of a preface, part of their headers, and idle keep-alive
//!   connections of both protocols.
//! - A write blocked with no byte accepted by the socket for the write timeout,
//!   or an answer pending with no byte written for as long: closed. This covers
//!   clients that never read their answers, and HTTP/2 clients that never reopen
//!   their flow-control window (the socket is then never blocked, hyper just
//!   stops writing).
//!
//! Requests in flight are bounded by the pipeline's body and handler timeouts.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::Notify,
    // tokio's clock, so that the unit tests can pause it.
    time::Instant,
};

/// What one connection is doing, shared by its IO, its service and its watchdog
/// (and read by the registry to pick a connection to evict).
///
/// Times are milliseconds since `opened`, in atomics, because the IO path
/// updates them on every blocked write and must not take a lock for it.
#[derive(Debug)]
pub(super) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened).
    idle_since_ms: AtomicU64,
    /// 0 when no write is blocked, else 1 + when the current block began.
    write_blocked_since_ms: AtomicU64,
    /// Answers produced whose bodies hyper has not finished with.
    answering: AtomicUsize,
    /// When a byte was last written, or an answer last became ready.
    progress_ms: AtomicU64,
    close: Notify,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            write_blocked_since_ms: AtomicU64::new(0),
            answering: AtomicUsize::new(0),
            progress_ms: AtomicU64::new(0),
            close: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// Since when no request has been in flight; `None` while one is.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.at(self.idle_since_ms.load(Ordering::Acquire)))
    }

    /// Marks a request as in flight until the guard is dropped.
    pub(super) fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(Arc::clone(self))
    }

    /// Marks an answer as pending until the guard is dropped (with its body): the
    /// client must take some of it every write timeout.
    pub(super) fn answer_started(self: &Arc<Self>) -> AnswerGuard {
        self.progress_ms.store(self.now_ms(), Ordering::Release);
        self.answering.fetch_add(1, Ordering::AcqRel);
        AnswerGuard(Arc::clone(self))
    }

    /// Since when a pending answer has had no byte written; `None` when none is
    /// pending.
    fn answer_stalled_since(&self) -> Option<Instant> {
        (self.answering.load(Ordering::Acquire) > 0)
            .then(|| self.at(self.progress_ms.load(Ordering::Acquire)))
    }

    /// Tells the watchdog to close the connection now (eviction at the cap).
    pub(super) fn close(&self) {
        // notify_one keeps a permit when the watchdog is not waiting at this instant.
        self.close.notify_one();
    }

    fn write_pending(&self) {
        let since = self.now_ms().saturating_add(1);
        // Only the first Pending of a block sets the time: a retry is no progress.
        let _ = self.write_blocked_since_ms.compare_exchange(
            0,
            since,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    fn write_progress(&self) {
        self.progress_ms.store(self.now_ms(), Ordering::Release);
        if self.write_blocked_since_ms.load(Ordering::Acquire) != 0 {
            self.write_blocked_since_ms.store(0, Ordering::Release);
        }
    }

    fn write_blocked_since(&self) -> Option<Instant> {
        match self.write_blocked_since_ms.load(Ordering::Acquire) {
            0 => None,
            since => Some(self.at(since - 1)),
        }
    }
}

/// A request being served: from the service call until its response body has
/// been handed to hyper in full (or dropped, when the client goes away).
#[derive(Debug)]
pub(super) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        // Store the time first, so a watchdog that sees zero in flight never reads
        // the idle time of a previous request.
        activity
            .idle_since_ms
            .store(activity.now_ms(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer being sent: from when the handler's response is ready until hyper
/// drops its body.
#[derive(Debug)]
pub(super) struct AnswerGuard(Arc<Activity>);

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closed {
    /// No request for the header timeout.
    Idle,
    /// A write, or a pending answer, made no progress for the write timeout.
    WriteStalled,
    /// Evicted to make room at the connection cap.
    Evicted,
}

impl Closed {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Closed::Idle => "no request within the header timeout",
            Closed::WriteStalled => "the client stopped reading (write timeout)",
            Closed::Evicted => "evicted: idle at the connection cap",
        }
    }
}

/// Completes when the connection must be closed; the caller drops it then.
pub(super) async fn watchdog(
    activity: &Activity,
    header_timeout: Duration,
    write_timeout: Duration,
) -> Closed {
    // While a request runs with no blocked write there is no deadline to sleep
    // until, so the watchdog looks again this often: a block is noticed at most a
    // quarter of the write timeout late.
    let tick = (header_timeout.min(write_timeout) / 4).max(Duration::from_millis(10));
    loop {
        let now = Instant::now();
        let mut wake = now + tick;
        if let Some(since) = activity.idle_since() {
            let deadline = since + header_timeout;
            if now >= deadline {
                return Closed::Idle;
            }
            wake = wake.min(deadline);
        }
        let stalled = [
            activity.write_blocked_since(),
            activity.answer_stalled_since(),
        ];
        if let Some(since) = stalled.into_iter().flatten().min() {
            let deadline = since + write_timeout;
            if now >= deadline {
                return Closed::WriteStalled;
            }
            wake = wake.min(deadline);
        }
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = activity.close.notified() => return Closed::Evicted,
        }
    }
}

/// A TCP stream that reports write progress to its connection's [`Activity`].
#[derive(Debug)]
pub(super) struct TrackedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl TrackedIo {
    pub(super) fn new(inner: TcpStream, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }

    fn track<T>(
        &self,
        poll: Poll<io::Result<T>>,
        progress: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match &poll {
            Poll::Pending => self.activity.write_pending(),
            Poll::Ready(Ok(value)) if progress(value) => self.activity.write_progress(),
            // An error ends the connection anyway; a zero-length write is no progress.
            Poll::Ready(_) => {}
        }
        poll
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(poll, |n| *n > 0)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(poll, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        // A flush that completes wrote nothing itself: only written bytes count.
        self.track(poll, |()| false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.track(poll, |()| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_is_idle_since_it_opened() {
        let activity = Activity::new();
        let since = activity.idle_since().map(|s| s.elapsed());
        assert!(
            since.is_some_and(|s| s < Duration::from_secs(5)),
            "{since:?}"
        );
    }

    #[test]
    fn a_request_in_flight_is_not_idle_until_its_guard_drops() {
        let activity = Arc::new(Activity::new());
        let first = activity.request_started();
        let second = activity.request_started();
        assert_eq!(activity.idle_since(), None);
        drop(first);
        assert_eq!(activity.idle_since(), None, "one is still in flight");
        drop(second);
        assert!(activity.idle_since().is_some());
    }

    #[test]
    fn a_block_starts_at_the_first_pending_and_ends_with_progress() {
        let activity = Activity::new();
        assert_eq!(activity.write_blocked_since(), None);
        activity.write_pending();
        let since = activity.write_blocked_since();
        assert!(since.is_some());
        std::thread::sleep(Duration::from_millis(5));
        activity.write_pending();
        assert_eq!(
            activity.write_blocked_since(),
            since,
            "a retry is no progress"
        );
        activity.write_progress();
        assert_eq!(activity.write_blocked_since(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_closes_an_idle_connection_at_the_header_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        let closed = watchdog(&activity, Duration::from_secs(30), Duration::from_secs(10)).await;
        assert_eq!(closed, Closed::Idle);
        let took = started.elapsed();
        assert!(
            (Duration::from_secs(30)..Duration::from_secs(31)).contains(&took),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_leaves_a_request_in_flight_alone_until_a_write_stalls() {
        let activity = Arc::new(Activity::new());
        let _guard = activity.request_started();
        let watch = watchdog(&activity, Duration::from_secs(1), Duration::from_secs(2));
        tokio::pin!(watch);
        // A request far past the header timeout, writing fine.
        assert!(
            tokio::time::timeout(Duration::from_secs(60), &mut watch)
                .await
                .is_err()
        );
        activity.write_pending();
        let blocked = Instant::now();
        assert_eq!(watch.await, Closed::WriteStalled);
        let took = blocked.elapsed();
        assert!(
            (Duration::from_secs(2)..Duration::from_secs(3)).contains(&took),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_closes_an_answer_that_nothing_is_written_of() {
        let activity = Arc::new(Activity::new());
        let _request = activity.request_started();
        let _answer = activity.answer_started();
        let ready = Instant::now();
        let closed = watchdog(&activity, Duration::from_secs(30), Duration::from_secs(2)).await;
        assert_eq!(closed, Closed::WriteStalled);
        let took = ready.elapsed();
        assert!(
            (Duration::from_secs(2)..Duration::from_secs(3)).contains(&took),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn written_bytes_keep_a_pending_answer_alive() {
        let activity = Arc::new(Activity::new());
        let _request = activity.request_started();
        let answer = activity.answer_started();
        let watch = watchdog(&activity, Duration::from_secs(30), Duration::from_secs(2));
        tokio::pin!(watch);
        for _ in 0..10 {
            assert!(
                tokio::time::timeout(Duration::from_secs(1), &mut watch)
                    .await
                    .is_err()
            );
            activity.write_progress();
        }
        drop(answer);
        // Answered in full: only the header timeout is left.
        assert!(
            tokio::time::timeout(Duration::from_secs(20), &mut watch)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_watchdog_closes_at_once_when_told_to() {
        let activity = Activity::new();
        // Told before it waits: the permit must not be lost.
        activity.close();
        let closed = tokio::time::timeout(
            Duration::from_secs(20),
            watchdog(&activity, Duration::from_secs(30), Duration::from_secs(30)),
        )
        .await;
        assert_eq!(closed, Ok(Closed::Evicted));
    }
}
