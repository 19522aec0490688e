//! The route table: which handler answers which event key, looked up per delivery
//! without allocating. Keys arrive parsed (`event_key::parse`), so the registry and
//! the pipeline both depend on this module and not on each other.

use crate::event_key::Key;
use crate::handler::BoxedHandler;
use std::collections::{HashMap, hash_map::Entry};

/// Handlers by event, then action; looked up without allocating.
pub(crate) struct Routes<S> {
    events: HashMap<Box<str>, EventRoutes<S>>,
    any_event: Option<BoxedHandler<S>>,
}

struct EventRoutes<S> {
    any_action: Option<BoxedHandler<S>>,
    actions: HashMap<Box<str>, BoxedHandler<S>>,
}

impl<S> Default for Routes<S> {
    fn default() -> Self {
        Self {
            events: HashMap::new(),
            any_event: None,
        }
    }
}

impl<S> Routes<S> {
    /// Adds a handler; false when the key is taken. `repository_dispatch.release.v2`
    /// is event `repository_dispatch`, action `release.v2`.
    pub(crate) fn insert(&mut self, key: Key<'_>, handler: BoxedHandler<S>) -> bool {
        let (event, action) = match key {
            Key::Any => return fill(&mut self.any_event, handler),
            Key::Event(event) => (event, None),
            Key::Action(event, action) => (event, Some(action)),
        };
        let routes = self
            .events
            .entry(event.into())
            .or_insert_with(|| EventRoutes {
                any_action: None,
                actions: HashMap::new(),
            });
        match action {
            None => fill(&mut routes.any_action, handler),
            Some(action) => match routes.actions.entry(action.into()) {
                Entry::Occupied(_) => false,
                Entry::Vacant(slot) => {
                    slot.insert(handler);
                    true
                }
            },
        }
    }

    /// The most specific handler: `event.action`, then `event`, then `*`. The
    /// action is asked for only when the event has action handlers.
    pub(crate) fn find<'a>(
        &self,
        event: &str,
        action: impl FnOnce() -> Option<&'a str>,
    ) -> Option<&BoxedHandler<S>> {
        self.events
            .get(event)
            .and_then(|routes| {
                let by_action = if routes.actions.is_empty() {
                    None
                } else {
                    action().and_then(|action| routes.actions.get(action))
                };
                by_action.or(routes.any_action.as_ref())
            })
            .or(self.any_event.as_ref())
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = String> + '_ {
        let events = self.events.iter().flat_map(|(event, routes)| {
            let any = routes.any_action.as_ref().map(|_| event.to_string());
            let actions = routes
                .actions
                .keys()
                .map(move |action| format!("{event}.{action}"));
            any.into_iter().chain(actions)
        });
        events.chain(self.any_event.as_ref().map(|_| "*".to_owned()))
    }
}

/// Puts `handler` in an empty slot; false when it is taken.
fn fill<S>(slot: &mut Option<BoxedHandler<S>>, handler: BoxedHandler<S>) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(handler);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event_key::parse, handler::erase};

    fn routes(keys: &[&str]) -> Routes<()> {
        let mut routes = Routes::default();
        for key in keys {
            let handler = erase(|| async {});
            assert!(
                routes.insert(parse(key).expect("valid key"), handler),
                "{key}"
            );
        }
        routes
    }

    fn sorted_keys(routes: &Routes<()>) -> Vec<String> {
        let mut keys: Vec<String> = routes.keys().collect();
        keys.sort();
        keys
    }

    #[test]
    fn an_action_after_the_first_dot_is_routed_as_written() {
        let routes = routes(&[
            "repository_dispatch.release.v2",
            "repository_dispatch.deploy-prod",
        ]);
        assert_eq!(
            sorted_keys(&routes),
            [
                "repository_dispatch.deploy-prod",
                "repository_dispatch.release.v2"
            ]
        );
        assert!(
            routes
                .find("repository_dispatch", || Some("release.v2"))
                .is_some()
        );
        assert!(
            routes
                .find("repository_dispatch", || Some("deploy-prod"))
                .is_some()
        );
        assert!(
            routes
                .find("repository_dispatch", || Some("release"))
                .is_none()
        );
        assert!(
            routes
                .find("repository_dispatch.release", || Some("v2"))
                .is_none()
        );
    }

    #[test]
    fn a_key_is_taken_once() {
        let mut routes = routes(&["*", "push", "pull_request.opened"]);
        for key in ["*", "push", "pull_request.opened"] {
            let key = parse(key).expect("valid key");
            assert!(!routes.insert(key, erase(|| async {})));
        }
        assert_eq!(sorted_keys(&routes), ["*", "pull_request.opened", "push"]);
    }
}
