//! The cap on open connections. Past it a new connection evicts the one that has
//! been idle (no request in flight) the longest, which loses nothing: an idle
//! connection holds no delivery. When every connection is serving a request the
//! new one is refused, so the file descriptors of the process never run out and
//! the deliveries being served finish.

use super::watchdog::Activity;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

/// The open connections of one server.
#[derive(Debug)]
pub(super) struct Registry {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Arc<Activity>>,
}

/// What happened to a new connection at the door.
#[derive(Debug)]
pub(super) enum Admission {
    /// Serve it; dropping the entry unregisters it.
    Admitted(Registered),
    /// Every slot is serving a request: close it.
    Refused,
}

impl Registry {
    /// At most `max` connections (at least 1).
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if something did, the map is
        // still a valid map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many connections are registered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Registers a new connection, evicting the longest-idle one at the cap.
    pub(super) fn admit(self: &Arc<Self>) -> Admission {
        let mut inner = self.lock();
        if inner.open.len() >= self.max {
            let longest_idle = inner
                .open
                .iter()
                .filter_map(|(id, activity)| activity.idle_since().map(|since| (since, *id)))
                .min();
            match longest_idle.and_then(|(_, id)| inner.open.remove(&id)) {
                // Unregistered now, so the count stays at the cap while it closes.
                Some(evicted) => evicted.close(),
                None => return Admission::Refused,
            }
        }
        let id = inner.next_id;
        inner.next_id = inner.next_id.wrapping_add(1);
        let activity = Arc::new(Activity::new());
        inner.open.insert(id, Arc::clone(&activity));
        Admission::Admitted(Registered {
            registry: Arc::clone(self),
            id,
            activity,
        })
    }
}

/// A connection's place in the [`Registry`], freed on drop.
#[derive(Debug)]
pub(super) struct Registered {
    registry: Arc<Registry>,
    id: u64,
    /// The connection's shared state.
    pub(super) activity: Arc<Activity>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        // Already gone when it was evicted; removing is idempotent.
        self.registry.lock().open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn admitted(admission: Admission) -> Registered {
        match admission {
            Admission::Admitted(entry) => entry,
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn below_the_cap_every_connection_is_admitted_and_dropping_frees_its_slot() {
        let registry = Registry::new(2);
        let a = admitted(registry.admit());
        let _b = admitted(registry.admit());
        assert_eq!(registry.len(), 2);
        drop(a);
        assert_eq!(registry.len(), 1);
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_is_evicted() {
        let registry = Registry::new(3);
        let oldest = admitted(registry.admit());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let busy = admitted(registry.admit());
        let _request = busy.activity.request_started();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newer = admitted(registry.admit());
        let _fourth = admitted(registry.admit());
        assert_eq!(registry.len(), 3, "the cap holds");
        // The oldest idle one was told to close, the others were not.
        let told = |entry: &Registered| {
            let watch = super::super::watchdog::watchdog(
                &entry.activity,
                Duration::from_secs(3600),
                Duration::from_secs(3600),
            );
            futures_util::FutureExt::now_or_never(watch).is_some()
        };
        assert!(told(&oldest));
        assert!(
            !told(&busy),
            "a connection serving a request is never evicted"
        );
        assert!(!told(&newer));
    }

    #[test]
    fn at_the_cap_with_every_connection_busy_a_new_one_is_refused() {
        let registry = Registry::new(2);
        let a = admitted(registry.admit());
        let b = admitted(registry.admit());
        let _ra = a.activity.request_started();
        let _rb = b.activity.request_started();
        assert!(matches!(registry.admit(), Admission::Refused));
        assert_eq!(registry.len(), 2);
    }
}
