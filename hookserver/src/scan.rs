//! Reading a payload without building it: its top-level `action` (all routing
//! needs), and whether it is one JSON object, in one pass that allocates nothing
//! but the action. GitHub writes `action` first, so routing usually reads one key.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// Why a payload with two top-level `action` keys is refused.
pub(crate) const DUPLICATE_ACTION: &str = "duplicate top-level key `action`";

/// The top-level `action` when it is a string, reading no further than it; `None`
/// when there is none or the JSON breaks before it.
pub(crate) fn find_action(payload: &[u8]) -> Option<String> {
    let mut found = None;
    // The scan stops at the action by failing on purpose; what it found stands.
    let _ = scan(payload, Scan::UntilAction, &mut found);
    found.flatten()
}

/// The action when the payload opens with `{"action": <string>`, as GitHub writes
/// it; `None` otherwise, without reading further. Only the log uses this, so it
/// does not look for the key spelled with escapes (routing does).
pub(crate) fn leading_action(payload: &[u8]) -> Option<String> {
    fn after<'a>(json: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
        json.trim_ascii_start().strip_prefix(token)
    }
    let value = after(after(after(payload, b"{")?, br#""action""#)?, b":")?;
    <MaybeString as de::Deserialize>::deserialize(&mut serde_json::Deserializer::from_slice(value))
        .ok()?
        .0
}

/// How far a scan reads.
#[derive(Clone, Copy, PartialEq)]
enum Scan {
    /// The whole payload, validating it.
    Whole,
    /// Up to the top-level `action`; what follows is not read.
    UntilAction,
}

/// Checks that `payload` is one JSON object with at most one top-level `action`,
/// without building it, and returns that action when it is a string. The error is
/// the reason, for `400 Invalid JSON payload: <reason>`.
pub(crate) fn validate(payload: &[u8]) -> Result<Option<String>, String> {
    let mut found = None;
    scan(payload, Scan::Whole, &mut found)
        .map(|()| found.flatten())
        .map_err(|e| e.to_string())
}

/// Scans `payload` as one JSON object without building it; `found` becomes
/// `Some(action)` when the first top-level `action` key is read.
fn scan(
    payload: &[u8],
    mode: Scan,
    found: &mut Option<Option<String>>,
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let visitor = ObjectVisitor { mode, found };
    de.deserialize_map(visitor).and_then(|()| de.end())
}

/// Walks a JSON object; `found` is `Some(action)` once the `action` key was read.
struct ObjectVisitor<'a> {
    mode: Scan,
    found: &'a mut Option<Option<String>>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<TopLevelKey>()? {
            match key {
                TopLevelKey::Action if self.found.is_none() => {
                    *self.found = Some(map.next_value::<MaybeString>()?.0);
                    if self.mode == Scan::UntilAction {
                        return Err(de::Error::custom("stopped at the action"));
                    }
                }
                // Routing reads the first `action`, a `Value` keeps the last: with
                // two, a handler could act on another action than the one that
                // routed it.
                TopLevelKey::Action => return Err(de::Error::custom(DUPLICATE_ACTION)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A top-level key, compared with `action` without allocating.
enum TopLevelKey {
    Action,
    Other,
}

impl<'de> de::Deserialize<'de> for TopLevelKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = TopLevelKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<TopLevelKey, E> {
                Ok(if key == "action" {
                    TopLevelKey::Action
                } else {
                    TopLevelKey::Other
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A string value, or `None` for any other JSON value (which is still validated).
struct MaybeString(Option<String>);

impl<'de> de::Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v.to_owned())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(StrVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing_action(payload: &[u8]) -> Result<Option<String>, String> {
        let whole = validate(payload);
        if let Ok(action) = &whole {
            assert_eq!(&find_action(payload), action, "early exit agrees");
        }
        whole
    }

    #[test]
    fn the_action_scan_stops_at_the_action() {
        // What follows the action is not read: routing does not pay for it.
        assert_eq!(
            find_action(br#"{"action":"opened","rest":[1,2,"#),
            Some("opened".into())
        );
        assert_eq!(
            find_action(br#"{"a":1,"action":"closed"} junk"#),
            Some("closed".into())
        );
        assert_eq!(find_action(br#"{"a":[,"action":"x"}"#), None);
        assert_eq!(find_action(b"[]"), None);
    }

    #[test]
    fn a_second_action_is_refused() {
        for twice in [
            &br#"{"action":"a","action":"b"}"#[..],
            br#"{"action":"a","n":1,"action":"a"}"#,
            br#"{"action":1,"action":"b"}"#,
            br#"{"action":"a","act\u0069on":"b"}"#,
        ] {
            assert_eq!(
                validate(twice).unwrap_err().split(" at line").next(),
                Some(DUPLICATE_ACTION),
                "{}",
                String::from_utf8_lossy(twice)
            );
        }
        // Nested objects have actions of their own.
        assert_eq!(
            validate(br#"{"action":"a","pull_request":{"action":"b"}}"#).unwrap(),
            Some("a".into())
        );
    }

    #[test]
    fn action_must_be_a_top_level_string() {
        assert_eq!(
            routing_action(br#"{"zen":"x","hook":{"action":"a"}}"#).unwrap(),
            None
        );
        assert_eq!(routing_action(br#"{"action":{"type":"x"}}"#).unwrap(), None);
        assert_eq!(routing_action(br#"{"action":null}"#).unwrap(), None);
        assert_eq!(routing_action(br#"{"action":[1,"a"]}"#).unwrap(), None);
        assert_eq!(
            routing_action(br#"{"act\u0069on":"escaped"}"#).unwrap(),
            Some("escaped".into())
        );
        assert_eq!(
            routing_action(b" {\"action\" : \"synchronize\"} \n").unwrap(),
            Some("synchronize".into())
        );
    }

    #[test]
    fn rejects_what_is_not_one_json_object() {
        for bad in [
            &b""[..],
            b"[]",
            b"\"s\"",
            b"1",
            b"{",
            b"{} {}",
            b"{\"a\":}",
            b"null",
            b"{\"action\":\"x\"}x",
            b"\xff",
        ] {
            assert!(routing_action(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_leading_action_is_read_only_where_github_writes_it() {
        assert_eq!(
            leading_action(br#"{"action":"opened","number":1,"rest":[1,2,"#),
            Some("opened".into())
        );
        assert_eq!(leading_action(br#"{"number":1,"action":"closed"}"#), None);
        assert_eq!(leading_action(br#"{"action":7}"#), None);
        assert_eq!(leading_action(b"[]"), None);
        assert_eq!(
            leading_action(b" \n{ \"action\" :\t\"synchronize\" ,\"number\":1}"),
            Some("synchronize".into())
        );
        assert_eq!(
            leading_action(br#"{"action":"a\"b","x":1}"#),
            Some("a\"b".into())
        );
        assert_eq!(leading_action(br#"{"act\u0069on":"opened"}"#), None);
    }
}
