//! The route table: which handler answers which event key, looked up per delivery
//! without allocating. Key parsing lives here too, so the registry and the pipeline
//! both depend on this module and not on each other.

use crate::handler::BoxedHandler;
use std::collections::{HashMap, hash_map::Entry};

/// `event`, `event.action` (each `[a-z0-9_]+`) or `*`.
pub(crate) fn is_valid_key(key: &str) -> bool {
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    key == "*"
        || match key.split_once('.') {
            Some((event, action)) => word(event) && word(action),
            None => word(key),
        }
}

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
    /// Adds a handler; false when the key is taken.
    pub(crate) fn insert(&mut self, key: &str, handler: BoxedHandler<S>) -> bool {
        let slot = if key == "*" {
            &mut self.any_event
        } else {
            let (event, action) = match key.split_once('.') {
                Some((event, action)) => (event, Some(action)),
                None => (key, None),
            };
            let routes = self
                .events
                .entry(event.into())
                .or_insert_with(|| EventRoutes {
                    any_action: None,
                    actions: HashMap::new(),
                });
            match action {
                Some(action) => {
                    return match routes.actions.entry(action.into()) {
                        Entry::Occupied(_) => false,
                        Entry::Vacant(slot) => {
                            slot.insert(handler);
                            true
                        }
                    };
                }
                None => &mut routes.any_action,
            }
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(handler);
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_grammar() {
        for ok in [
            "push",
            "pull_request",
            "pull_request.opened",
            "*",
            "a_1.b_2",
            "check_run.completed",
        ] {
            assert!(is_valid_key(ok), "{ok}");
        }
        for bad in [
            "",
            "Push",
            "push.",
            ".opened",
            "a.b.c",
            "pull-request",
            "* ",
            "push.*",
            "*.opened",
            "pu sh",
        ] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
    }
}
