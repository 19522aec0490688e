//! [`LogWriter`]: where log lines wait to be written, a batch at a time.
//!
//! A logger that writes each line with its own system call (or hands each line to a
//! thread through a channel, which wakes that thread per line) spends more kernel
//! time per delivery than hookserver spends checking it. Here a line is appended to
//! a buffer under a mutex; the first line into an empty buffer wakes the writing
//! thread, which lets more lines gather for a moment and writes them with one call.
//! Under load that is a wake-up and a write per batch of hundreds of lines; when
//! idle, nothing runs. A full buffer makes the logging thread wait (backpressure),
//! so no line is ever dropped.

use std::{
    io::{self, Write},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread,
    time::Duration,
};

/// A log line destination for `tracing-subscriber` (or any logger that writes
/// whole lines) that batches lines and writes them from a thread of its own,
/// losing none.
///
/// A line appears at most [`LogWriter::LINGER`] after it is logged (sooner when
/// [`LogWriter::BATCH_BYTES`] have gathered). When [`LogWriter::MAX_BUFFERED`]
/// bytes are waiting (the output is slower than the logging), the thread that logs
/// waits for room instead of dropping its line. Dropping the [`LogFlushGuard`]
/// writes what is left and stops the thread; lines logged after that are written
/// directly, so none is lost at exit either.
///
/// Each `write` call is kept whole: `tracing-subscriber`'s formatter writes a line
/// with one call, so lines from different threads never interleave.
///
/// ```no_run
/// // One log line per delivery, batched; `_flush` writes the rest when main ends.
/// let (writer, _flush) = hookserver::LogWriter::stdout();
/// tracing_subscriber::fmt().with_writer(writer).init();
/// ```
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes a [`LogWriter`]'s remaining lines and stops its thread when dropped.
///
/// Keep it alive as long as the program logs, usually as a variable in `main`.
#[must_use = "dropping the guard stops the writer's thread: keep it until the program ends"]
pub struct LogFlushGuard {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the writing thread has work: a first line, a full batch, or
    /// the guard's drop.
    work: Condvar,
    /// Signalled when a batch has been taken, for loggers waiting for room.
    room: Condvar,
    /// The destination. Locked by the writing thread for each batch, and by
    /// loggers themselves once the thread has stopped.
    output: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// Loggers waiting in `write` for room.
    waiting: usize,
    /// The guard was dropped: the thread writes what is left and stops.
    closing: bool,
    /// The thread has stopped: loggers write directly.
    stopped: bool,
}

impl LogWriter {
    /// How long the writing thread lets lines gather after the first one.
    pub const LINGER: Duration = Duration::from_millis(10);
    /// A batch this large is written without waiting out the linger.
    pub const BATCH_BYTES: usize = 64 * 1024;
    /// With this many bytes waiting, loggers wait for room.
    pub const MAX_BUFFERED: usize = 4 * 1024 * 1024;

    /// A writer to standard output.
    pub fn stdout() -> (Arc<LogWriter>, LogFlushGuard) {
        Self::new(io::stdout())
    }

    /// A writer to `output`, which only the writer's thread writes to (and
    /// loggers, once the guard is dropped).
    ///
    /// `Arc<LogWriter>` is what `tracing_subscriber::fmt().with_writer` takes.
    pub fn new(output: impl Write + Send + 'static) -> (Arc<LogWriter>, LogFlushGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                lines: Vec::with_capacity(Self::BATCH_BYTES),
                ..State::default()
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            output: Mutex::new(Box::new(output)),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("hookserver-log".into())
                .spawn(move || shared.write_batches())
        };
        let thread = match thread {
            Ok(thread) => Some(thread),
            // Without a thread, every line is written directly: slower, never lost.
            Err(_) => {
                lock(&shared.state).stopped = true;
                None
            }
        };
        let writer = Arc::new(LogWriter {
            shared: Arc::clone(&shared),
        });
        (writer, LogFlushGuard { shared, thread })
    }
}

impl Write for &LogWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        while state.lines.len() >= LogWriter::MAX_BUFFERED && !state.stopped {
            state.waiting += 1;
            state = shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
        if state.stopped {
            drop(state);
            let mut output = lock(&shared.output);
            output.write_all(line)?;
            output.flush()?;
            return Ok(line.len());
        }
        let before = state.lines.len();
        state.lines.extend_from_slice(line);
        let after = state.lines.len();
        drop(state);
        // Only the first line of a batch, and the line that fills one, wake the
        // thread: every other line is a copy under the lock, no system call.
        if before == 0 || (before < LogWriter::BATCH_BYTES && after >= LogWriter::BATCH_BYTES) {
            shared.work.notify_one();
        }
        Ok(line.len())
    }

    /// Lines are written by the thread, within [`LogWriter::LINGER`]; a flush per
    /// line would be a system call per line, which is what this writer avoids.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for LogWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        (&*self).write(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    /// The writing thread: waits for a first line, lets a batch gather, writes it.
    fn write_batches(&self) {
        let mut batch = Vec::with_capacity(LogWriter::BATCH_BYTES);
        let mut failed = false;
        loop {
            let mut state = lock(&self.state);
            while state.lines.is_empty() && !state.closing {
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !state.closing && state.lines.len() < LogWriter::BATCH_BYTES {
                // One timed wait, not a loop: a spurious wake-up only makes this
                // batch a little smaller.
                state = self
                    .work
                    .wait_timeout(state, LogWriter::LINGER)
                    .map(|(state, _)| state)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            std::mem::swap(&mut batch, &mut state.lines);
            let closing = state.closing;
            if closing {
                // Set under the same lock that took the last batch, so that a
                // line is either in that batch or written directly.
                state.stopped = true;
            }
            if state.waiting > 0 {
                self.room.notify_all();
            }
            // Taken before the state is let go, so that the last batch goes out
            // before any line written directly after it.
            let mut output = lock(&self.output);
            drop(state);
            if !batch.is_empty() {
                let written = output.write_all(&batch).and_then(|()| output.flush());
                // Nowhere to log that logging failed but standard error, once.
                if let Err(error) = written
                    && !failed
                {
                    failed = true;
                    eprintln!("hookserver: cannot write log lines: {error}");
                }
                batch.clear();
                // A burst's buffer is not kept for ever.
                batch.shrink_to(LogWriter::MAX_BUFFERED / 4);
            }
            drop(output);
            if closing {
                return;
            }
        }
    }
}

impl Drop for LogFlushGuard {
    fn drop(&mut self) {
        lock(&self.shared.state).closing = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("LogWriter")
            .field("buffered_bytes", &state.lines.len())
            .field("stopped", &state.stopped)
            .finish()
    }
}

impl std::fmt::Debug for LogFlushGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFlushGuard").finish_non_exhaustive()
    }
}

/// A lock that a panic elsewhere does not poison for the logger: the buffer is
/// bytes, consistent at every point a panic could happen.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination the test can read while the writer holds it, counting the
    /// writes it gets.
    #[derive(Clone, Default)]
    struct Recorder {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            lock(&self.bytes).extend_from_slice(buf);
            *lock(&self.writes) += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Recorder {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.bytes).clone()).expect("utf-8")
        }
        fn writes(&self) -> usize {
            *lock(&self.writes)
        }
    }

    fn line(thread: usize, n: usize) -> String {
        format!("thread {thread} line {n} {}\n", "x".repeat(n % 200))
    }

    #[test]
    fn every_line_arrives_whole_and_in_each_threads_order() {
        let recorder = Recorder::default();
        let (writer, guard) = LogWriter::new(recorder.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = Arc::clone(&writer);
                thread::spawn(move || {
                    for n in 0..5_000 {
                        (&*writer).write_all(line(t, n).as_bytes()).expect("write");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("logging thread");
        }
        drop(guard);
        let text = recorder.text();
        let mut next = [0usize; 4];
        let mut count = 0;
        for got in text.lines() {
            let t: usize = got.split(' ').nth(1).expect("thread").parse().expect("n");
            assert_eq!(
                format!("{got}\n"),
                line(t, next[t]),
                "a line cut or out of order"
            );
            next[t] += 1;
            count += 1;
        }
        assert_eq!(count, 20_000, "every line written once");
        // 20,000 lines of ~100 bytes are ~2 MB: batches of 64 KB or a linger's
        // worth, far fewer writes than lines.
        assert!(
            recorder.writes() < 2_000,
            "lines were not batched: {} writes",
            recorder.writes()
        );
    }

    #[test]
    fn a_single_line_is_written_without_more_lines_or_a_flush() {
        let recorder = Recorder::default();
        let (writer, _guard) = LogWriter::new(recorder.clone());
        (&*writer).write_all(b"alone\n").expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while recorder.text() != "alone\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "the line never left the buffer"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// An output that blocks until released, to fill the buffer.
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        inner: Recorder,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (open, changed) = &*self.open;
            let mut open = lock(open);
            while !*open {
                open = changed.wait(open).unwrap_or_else(PoisonError::into_inner);
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_buffer_makes_loggers_wait_and_loses_nothing() {
        let recorder = Recorder::default();
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let (writer, guard) = LogWriter::new(Gate {
            open: Arc::clone(&open),
            inner: recorder.clone(),
        });
        let chunk = vec![b'y'; 1024];
        // Twice the buffer's bound while the output is stuck: the logger must
        // block, not drop.
        let total = 2 * LogWriter::MAX_BUFFERED / chunk.len() + 3;
        let logger = {
            let writer = Arc::clone(&writer);
            let chunk = chunk.clone();
            thread::spawn(move || {
                for _ in 0..total {
                    (&*writer).write_all(&chunk).expect("write");
                }
            })
        };
        // The logger cannot finish while the output is closed.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let state = lock(&writer.shared.state);
            if state.waiting > 0 {
                assert!(state.lines.len() >= LogWriter::MAX_BUFFERED);
                break;
            }
            drop(state);
            assert!(
                std::time::Instant::now() < deadline,
                "the logger never waited"
            );
            thread::sleep(Duration::from_millis(1));
        }
        assert!(!logger.is_finished());
        *lock(&open.0) = true;
        open.1.notify_all();
        logger.join().expect("logger");
        drop(guard);
        assert_eq!(lock(&recorder.bytes).len(), total * chunk.len());
    }

    #[test]
    fn lines_after_the_guard_is_dropped_are_written_directly() {
        let recorder = Recorder::default();
        let (writer, guard) = LogWriter::new(recorder.clone());
        (&*writer).write_all(b"before\n").expect("write");
        drop(guard);
        assert_eq!(recorder.text(), "before\n", "the guard wrote what was left");
        (&*writer).write_all(b"after\n").expect("write");
        assert_eq!(recorder.text(), "before\nafter\n");
    }
}
