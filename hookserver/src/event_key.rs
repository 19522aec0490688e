//! Event keys: their grammar, and whether GitHub sends them.
//!
//! This file is compiled by both `hookserver` (for `Hooks::on`) and
//! `hookserver-macros` (for `#[hook]`), as `crate::event_key` beside
//! `crate::github_events`. The two copies are byte-identical:
//! `hookserver/src/event_key.rs` is the original, and
//! `scripts/gen-github-events.py` copies it (and the table) into the macro crate.
//! So it names nothing but `core`, `std` and `crate::github_events`.
//!
//! The grammar: `*`, `event`, or `event.action`, where `event` is made of
//! lowercase ASCII letters, digits and `_` (GitHub's `X-GitHub-Event` names) and
//! `action` is everything after the first `.`: any text GitHub could put in the
//! payload's `action`, since `repository_dispatch` carries the sender's free-form
//! `event_type` there (`deploy-prod`, `release.v2`). An action is not empty, not
//! `*`, has no control characters and at most [`MAX_ACTION_CHARS`] characters.

use crate::github_events::{Actions, EVENTS, SOURCE};
use std::fmt;

/// The longest action a key may name: GitHub caps a `repository_dispatch`
/// `event_type` at 100 characters, and its own actions are far shorter.
pub(crate) const MAX_ACTION_CHARS: usize = 100;

/// A well-formed event key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    /// `*`: every delivery no other key matches.
    Any,
    /// `event`: every delivery of that event.
    Event(&'a str),
    /// `event.action`: that event with that `action`.
    Action(&'a str, &'a str),
}

/// Why a key is malformed; its `Display` is the whole message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyError<'a> {
    key: &'a str,
    problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    Empty,
    /// The event part is not `[a-z0-9_]+`; the normalized spelling when it is a
    /// case or `-` away from one.
    Event(Option<String>),
    EmptyAction,
    StarAction,
    ControlInAction,
    LongAction(usize),
}

/// The expected forms, for messages.
const GRAMMAR: &str = "expected `event`, `event.action` or `*`, where `event` is lowercase \
                       letters, digits and `_`, and `action` is the text after the first `.`";

/// Parses `key` by the grammar alone (the table is [`check_known`]'s job).
pub(crate) fn parse(key: &str) -> Result<Key<'_>, KeyError<'_>> {
    let fail = |problem| Err(KeyError { key, problem });
    if key.is_empty() {
        return fail(Problem::Empty);
    }
    if key == "*" {
        return Ok(Key::Any);
    }
    let (event, action) = match key.split_once('.') {
        Some((event, action)) => (event, Some(action)),
        None => (key, None),
    };
    if !is_event_name(event) {
        let normalized: String = event
            .chars()
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        let hint = is_event_name(&normalized).then_some(normalized);
        return fail(Problem::Event(hint));
    }
    let Some(action) = action else {
        return Ok(Key::Event(event));
    };
    if action.is_empty() {
        return fail(Problem::EmptyAction);
    }
    if action == "*" {
        return fail(Problem::StarAction);
    }
    if action.chars().any(char::is_control) {
        return fail(Problem::ControlInAction);
    }
    let chars = action.chars().count();
    if chars > MAX_ACTION_CHARS {
        return fail(Problem::LongAction(chars));
    }
    Ok(Key::Action(event, action))
}

fn is_event_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl fmt::Display for KeyError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.escape_debug();
        let event = self
            .key
            .split_once('.')
            .map_or(self.key, |(event, _)| event);
        match &self.problem {
            Problem::Empty => write!(f, "empty event key: {GRAMMAR}"),
            Problem::Event(hint) => {
                write!(f, "invalid event key `{key}`: {GRAMMAR}")?;
                match hint {
                    Some(hint) => {
                        let rest = &self.key[event.len()..];
                        write!(f, "; did you mean `{hint}{}`?", rest.escape_debug())
                    }
                    None => Ok(()),
                }
            }
            Problem::EmptyAction => write!(
                f,
                "invalid event key `{key}`: the action after `.` is empty; \
                 write `{event}` for every action"
            ),
            Problem::StarAction => write!(
                f,
                "invalid event key `{key}`: write `{event}` for every action of `{event}`"
            ),
            Problem::ControlInAction => write!(
                f,
                "invalid event key `{key}`: the action contains a control character"
            ),
            Problem::LongAction(chars) => write!(
                f,
                "invalid event key `{key}`: the action is {chars} characters long, \
                 at most {MAX_ACTION_CHARS} are allowed"
            ),
        }
    }
}

/// A well-formed key that GitHub's published list does not have; its `Display`
/// says what is unknown and the nearest known key, if any is close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unknown<'a> {
    /// No such event.
    Event {
        /// The key's event.
        event: &'a str,
        /// The nearest known key.
        suggestion: Option<String>,
    },
    /// The event is known, the action is not.
    Action {
        /// The key's event.
        event: &'a str,
        /// The key's action.
        action: &'a str,
        /// The nearest known action of `event`.
        suggestion: Option<&'static str>,
        /// Every action of `event`.
        known: &'static [&'static str],
    },
    /// The event has no `action` field at all.
    NoActions {
        /// The key's event.
        event: &'a str,
    },
}

/// Whether GitHub sends `key`, according to the table in `github_events.rs`.
/// `*` and free-form actions (`repository_dispatch`) are always known.
pub(crate) fn check_known<'a>(key: &Key<'a>) -> Result<(), Unknown<'a>> {
    let (event, action) = match *key {
        Key::Any => return Ok(()),
        Key::Event(event) => (event, None),
        Key::Action(event, action) => (event, Some(action)),
    };
    let Some(actions) = actions_of(event) else {
        let nearest = nearest(event, EVENTS.iter().map(|(name, _)| *name));
        let suggestion = nearest.map(|name| match (action, actions_of(name)) {
            (Some(action), Some(Actions::FreeForm)) => format!("{name}.{action}"),
            (Some(action), Some(Actions::Listed(known))) if known.contains(&action) => {
                format!("{name}.{action}")
            }
            _ => name.to_owned(),
        });
        return Err(Unknown::Event { event, suggestion });
    };
    match (action, actions) {
        (None, _) | (Some(_), Actions::FreeForm) => Ok(()),
        (Some(_), Actions::None) => Err(Unknown::NoActions { event }),
        (Some(action), Actions::Listed(known)) if known.contains(&action) => Ok(()),
        (Some(action), Actions::Listed(known)) => Err(Unknown::Action {
            event,
            action,
            // `opened.again`: a known action with a tail is most likely that action.
            suggestion: nearest(action, known.iter().copied()).or_else(|| {
                let (head, _) = action.split_once('.')?;
                known.iter().copied().find(|known| *known == head)
            }),
            known,
        }),
    }
}

/// Where the table comes from, e.g. `@octokit/openapi-webhooks 12.1.0`.
pub(crate) const fn table_source() -> &'static str {
    SOURCE
}

fn actions_of(event: &str) -> Option<&'static Actions> {
    EVENTS
        .binary_search_by(|(name, _)| (*name).cmp(event))
        .ok()
        .map(|i| &EVENTS[i].1)
}

impl fmt::Display for Unknown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::Event { event, suggestion } => {
                write!(f, "unknown GitHub event `{event}`")?;
                match suggestion {
                    Some(key) => write!(f, "; did you mean `{key}`?"),
                    None => Ok(()),
                }
            }
            Unknown::Action {
                event,
                action,
                suggestion,
                known,
            } => {
                write!(
                    f,
                    "unknown action `{}` of GitHub event `{event}`",
                    action.escape_debug()
                )?;
                match suggestion {
                    Some(action) => write!(f, "; did you mean `{event}.{action}`?"),
                    None => write!(f, "; its actions are: {}", known.join(", ")),
                }
            }
            Unknown::NoActions { event } => {
                write!(f, "`{event}` has no actions: write `{event}`")
            }
        }
    }
}

/// The candidate closest to `word`, when it is close enough to be a typo.
pub(crate) fn nearest<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let len = word.chars().count();
    // About one edit per three characters, like rustc's suggestions.
    let limit = len.max(3).div_ceil(3);
    candidates
        .map(|candidate| (distance(word, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Damerau–Levenshtein distance (optimal string alignment): insertions,
/// deletions, substitutions and swaps of two neighbours each cost 1.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the matrix: two back, one back, current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(parse("*"), Ok(Key::Any));
        assert_eq!(parse("push"), Ok(Key::Event("push")));
        assert_eq!(
            parse("pull_request.opened"),
            Ok(Key::Action("pull_request", "opened"))
        );
        for action in ["on-demand-test", "deployTrigger", "release.v2", "a b", "é"] {
            let key = format!("repository_dispatch.{action}");
            assert_eq!(
                parse(&key),
                Ok(Key::Action("repository_dispatch", action)),
                "{key}"
            );
        }
        let longest = format!("e.{}", "x".repeat(MAX_ACTION_CHARS));
        assert!(parse(&longest).is_ok());
    }

    fn message(key: &str) -> String {
        match parse(key) {
            Ok(parsed) => panic!("{key:?} parsed as {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rejects_malformed_keys_with_a_precise_message() {
        assert_eq!(message(""), format!("empty event key: {GRAMMAR}"));
        for key in [".opened", "* ", "**", "*.opened", "pu sh", "push!"] {
            let want = format!("invalid event key `{key}`: {GRAMMAR}");
            assert_eq!(message(key), want, "{key:?}");
        }
        assert_eq!(
            message("Pull-Request.opened"),
            format!(
                "invalid event key `Pull-Request.opened`: {GRAMMAR}; \
                 did you mean `pull_request.opened`?"
            )
        );
        assert_eq!(
            message("push."),
            "invalid event key `push.`: the action after `.` is empty; write `push` for every action"
        );
        assert_eq!(
            message("issues.*"),
            "invalid event key `issues.*`: write `issues` for every action of `issues`"
        );
        assert_eq!(
            message("a.b\nc"),
            "invalid event key `a.b\\nc`: the action contains a control character"
        );
        let long = format!("a.{}", "é".repeat(MAX_ACTION_CHARS + 1));
        assert!(
            message(&long).ends_with("the action is 101 characters long, at most 100 are allowed")
        );
    }

    #[test]
    fn the_table_is_sorted_and_well_formed() {
        assert!(EVENTS.windows(2).all(|w| w[0].0 < w[1].0));
        for (event, actions) in EVENTS {
            assert_eq!(parse(event), Ok(Key::Event(event)));
            if let Actions::Listed(actions) = actions {
                assert!(!actions.is_empty(), "{event}");
                for action in *actions {
                    let key = format!("{event}.{action}");
                    assert_eq!(parse(&key), Ok(Key::Action(event, action)));
                    assert_eq!(check_known(&Key::Action(event, action)), Ok(()));
                }
            }
        }
    }

    fn unknown(key: &str) -> String {
        let parsed = parse(key).unwrap_or_else(|e| panic!("{e}"));
        match check_known(&parsed) {
            Ok(()) => panic!("{key} is known"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn knows_github_events_and_actions() {
        for key in [
            "*",
            "push",
            "ping",
            "pull_request",
            "pull_request.opened",
            "check_run.requested_action",
            "repository_dispatch",
            "repository_dispatch.on-demand-test",
            "repository_dispatch.release.v2",
        ] {
            let parsed = parse(key).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(check_known(&parsed), Ok(()), "{key}");
        }
    }

    #[test]
    fn suggests_the_nearest_key() {
        assert_eq!(
            unknown("pul_request"),
            "unknown GitHub event `pul_request`; did you mean `pull_request`?"
        );
        assert_eq!(
            unknown("pul_request.opened"),
            "unknown GitHub event `pul_request`; did you mean `pull_request.opened`?"
        );
        assert_eq!(
            unknown("pul_request.openned"),
            "unknown GitHub event `pul_request`; did you mean `pull_request`?"
        );
        assert_eq!(
            unknown("pull_request.openned"),
            "unknown action `openned` of GitHub event `pull_request`; \
             did you mean `pull_request.opened`?"
        );
        assert_eq!(
            unknown("check_run.compelted"),
            "unknown action `compelted` of GitHub event `check_run`; \
             did you mean `check_run.completed`?"
        );
        assert_eq!(
            unknown("brand_new_event"),
            "unknown GitHub event `brand_new_event`"
        );
        assert!(
            unknown("star.zzzzzzzz")
                .ends_with("of GitHub event `star`; its actions are: created, deleted")
        );
        assert_eq!(
            unknown("pull_request.opened.again"),
            "unknown action `opened.again` of GitHub event `pull_request`; \
             did you mean `pull_request.opened`?"
        );
        assert_eq!(
            unknown("push.created"),
            "`push` has no actions: write `push`"
        );
    }

    #[test]
    fn distance_counts_edits_and_swaps() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("opened", "opened"), 0);
        assert_eq!(distance("openned", "opened"), 1);
        assert_eq!(distance("oppened", "opened"), 1);
        assert_eq!(distance("opend", "opened"), 1);
        assert_eq!(distance("poened", "opened"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
