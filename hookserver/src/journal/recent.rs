//! [`Recent`]: a journal answer that routes anyone may call (`/ready`, `/metrics`)
//! read at most once per [`Recent::REUSE`], single flight.

use super::JournalError;
use std::{future::Future, time::Duration};
use tokio::time::Instant;

/// The last answer of one kind of journal read, reused while it is recent, so
/// that a load balancer, a scraper or a stranger hammering a route costs the
/// journal one read per [`REUSE`](Self::REUSE) at most. Callers that arrive while
/// a read runs wait for it rather than start another.
pub(crate) struct Recent<T> {
    last: tokio::sync::Mutex<Option<(Instant, Result<T, String>)>>,
}

impl<T: Clone> Recent<T> {
    /// How long an answer is reused.
    pub(crate) const REUSE: Duration = Duration::from_secs(1);
    /// How long a read may take. Longer than SQLite's busy timeout (4 s), so a
    /// locked file is reported as the database's own error, not as a timeout.
    pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Self {
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The last answer while it is recent, else `read()`'s, with the error as
    /// text (`journal unavailable: ...`).
    pub(crate) async fn get<F>(&self, read: impl FnOnce() -> F) -> Result<T, String>
    where
        F: Future<Output = Result<T, JournalError>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last
            && at.elapsed() < Self::REUSE
        {
            return answer.clone();
        }
        let answer = match tokio::time::timeout(Self::TIMEOUT, read()).await {
            Ok(answer) => answer,
            Err(_) => Err(JournalError::Unavailable(format!(
                "no answer within {} s",
                Self::TIMEOUT.as_secs()
            ))),
        }
        .map_err(|e| e.to_string());
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_reused_for_a_second_then_read_again() {
        let recent = Recent::new();
        let reads = AtomicUsize::new(0);
        let read = || async { Ok::<_, JournalError>(reads.fetch_add(1, Ordering::Relaxed)) };
        assert_eq!(recent.get(read).await, Ok(0));
        assert_eq!(recent.get(read).await, Ok(0), "reused");
        tokio::time::sleep(Recent::<usize>::REUSE).await;
        assert_eq!(recent.get(read).await, Ok(1), "read again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_past_the_timeout_is_an_unavailable_journal() {
        let recent = Recent::<()>::new();
        let answer = recent
            .get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            })
            .await;
        assert_eq!(
            answer,
            Err("journal unavailable: no answer within 5 s".to_owned())
        );
    }
}
