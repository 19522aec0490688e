//! One delivery: its headers checked, its payload located, its routing key read.
//!
//! Pay for what you use: no `serde_json::Value` is built unless a handler asks for
//! one. The top-level `action` (all routing needs) is read only when the event has
//! action handlers, and the scan stops as soon as it is found (GitHub sends it
//! first). Whether the payload is one JSON object is checked once: by the handler's
//! own payload extractor when it has one, else by a scan that builds nothing.

use crate::rejection::Rejection;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, header};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::{
    fmt,
    net::IpAddr,
    sync::{Arc, OnceLock},
};

const EVENT: &str = "x-github-event";
const DELIVERY: &str = "x-github-delivery";
const HOOK_ID: &str = "x-github-hook-id";
const TARGET_TYPE: &str = "x-github-hook-installation-target-type";
const TARGET_ID: &str = "x-github-hook-installation-target-id";

/// A delivery that passed every check: its metadata, headers and payload.
///
/// Ask for it as a handler argument. Cloning is cheap (one reference count).
///
/// ```
/// use hookserver::{Config, Delivery, Hooks};
///
/// async fn audit(delivery: Delivery) -> String {
///     format!("{} {} from hook {:?}", delivery.event(), delivery.guid(), delivery.hook_id())
/// }
///
/// let hooks = Hooks::new(Config::new().secret("s")).on("*", audit);
/// # drop(hooks);
/// ```
#[derive(Clone)]
pub struct Delivery(Arc<Inner>);

struct Inner {
    event: String,
    /// Read on first use: most deliveries never need it.
    action: OnceLock<Option<String>>,
    guid: String,
    client_ip: Option<IpAddr>,
    headers: HeaderMap,
    body: Bytes,
    payload: Bytes,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &self.0.event)
            .field("action", &self.0.action.get())
            .field("guid", &self.0.guid)
            .field("client_ip", &self.0.client_ip)
            .field("body_len", &self.0.body.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// The event name from `X-GitHub-Event`, e.g. `push` or `pull_request`.
    pub fn event(&self) -> &str {
        &self.0.event
    }

    /// The payload's top-level `action` (e.g. `opened`), when it has a string one.
    pub fn action(&self) -> Option<&str> {
        self.0
            .action
            .get_or_init(|| find_action(&self.0.payload))
            .as_deref()
    }

    /// The action if it has been read already; never reads it.
    pub(crate) fn known_action(&self) -> Option<&str> {
        self.0.action.get().and_then(Option::as_deref)
    }

    /// The action for the log: the one already read, else the payload's first key
    /// when that is `action` (where GitHub writes it). Reads one key at most, so a
    /// delivery whose handler never needed the action does not pay a scan for it.
    pub(crate) fn action_for_log(&self) -> Option<&str> {
        if let Some(known) = self.0.action.get() {
            return known.as_deref();
        }
        // The first key being `action` makes it the first `action`, which is what
        // `action()` would find: storing it keeps the two in agreement.
        let leading = leading_action(&self.0.payload)?;
        self.0.action.get_or_init(|| Some(leading)).as_deref()
    }

    /// Checks that the payload is one JSON object, building nothing; reads the
    /// action on the way.
    pub(crate) fn validate_payload(&self) -> Result<(), Rejection> {
        let action = validate(&self.0.payload)?;
        let _ = self.0.action.set(action);
        Ok(())
    }

    /// The answer to a payload an extractor could not take: `400 Invalid JSON
    /// payload` with the scan's message when the payload is not one JSON object
    /// (the same answer whatever the handler asks for), else `mismatch()`.
    /// Extractors that set [`FromDelivery::VALIDATES_PAYLOAD`](crate::FromDelivery)
    /// call it on their failure path, so that the happy path parses once.
    pub(crate) fn payload_rejection(&self, mismatch: impl FnOnce() -> Rejection) -> Rejection {
        match self.validate_payload() {
            Err(invalid) => invalid,
            Ok(()) => mismatch(),
        }
    }

    /// The delivery's GUID from `X-GitHub-Delivery`. A redelivery keeps the same
    /// GUID, which makes it the key for de-duplication.
    pub fn guid(&self) -> &str {
        &self.0.guid
    }

    /// The hook's id from `X-GitHub-Hook-ID`.
    pub fn hook_id(&self) -> Option<u64> {
        self.header_number(HOOK_ID)
    }

    /// What the hook is installed on, from `X-GitHub-Hook-Installation-Target-Type`:
    /// `repository`, `organization`, `integration` (a GitHub App), ...
    pub fn installation_target_type(&self) -> Option<&str> {
        self.header_str(TARGET_TYPE)
    }

    /// The id of what the hook is installed on, from
    /// `X-GitHub-Hook-Installation-Target-ID`.
    pub fn installation_target_id(&self) -> Option<u64> {
        self.header_number(TARGET_ID)
    }

    /// The sender's `User-Agent` (GitHub's starts with `GitHub-Hookshot/`).
    pub fn user_agent(&self) -> Option<&str> {
        self.header_str(header::USER_AGENT.as_str())
    }

    /// The client address the source-IP check saw (after trusted proxies), when the
    /// server provides peer addresses.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.0.client_ip
    }

    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// The raw body exactly as received (what the signature covers).
    pub fn body(&self) -> &Bytes {
        &self.0.body
    }

    /// The payload's JSON text: the body for JSON deliveries, the decoded `payload`
    /// field for form deliveries.
    pub fn payload(&self) -> &Bytes {
        &self.0.payload
    }

    fn header_str(&self, name: &str) -> Option<&str> {
        self.0.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn header_number(&self, name: &str) -> Option<u64> {
        self.header_str(name).and_then(|v| v.trim().parse().ok())
    }

    /// Checks the GitHub headers and the payload, and reads the routing key.
    /// Runs after the signature check, so the body is already trusted to be GitHub's.
    pub(crate) fn parse(
        headers: HeaderMap,
        body: Bytes,
        client_ip: Option<IpAddr>,
    ) -> Result<Self, Rejection> {
        let event = required_header(&headers, EVENT, "X-GitHub-Event")?.to_owned();
        let guid = required_header(&headers, DELIVERY, "X-GitHub-Delivery")?.to_owned();
        let payload = match content_format(&headers)? {
            Format::Json => body.clone(),
            Format::Form => form_payload(&body)?,
        };
        Ok(Self(Arc::new(Inner {
            event,
            action: OnceLock::new(),
            guid,
            client_ip,
            headers,
            body,
            payload,
        })))
    }
}

/// A header that must be present, non-blank and visible ASCII.
fn required_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
    display: &'static str,
) -> Result<&'h str, Rejection> {
    let Some(value) = headers.get(HeaderName::from_static(name)) else {
        return Err(Rejection::MissingHeader(display));
    };
    let value = value
        .to_str()
        .map_err(|_| Rejection::InvalidHeader(display))?
        .trim();
    if value.is_empty() {
        return Err(Rejection::MissingHeader(display));
    }
    Ok(value)
}

enum Format {
    Json,
    Form,
}

/// `application/json`, any `application/*+json` and the form type, each with any
/// parameters (`charset=utf-8`); anything else, or no content type, is 415.
fn content_format(headers: &HeaderMap) -> Result<Format, Rejection> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .ok_or(Rejection::UnsupportedContentType)?;
    let (kind, subtype) = essence
        .split_once('/')
        .ok_or(Rejection::UnsupportedContentType)?;
    if !kind.eq_ignore_ascii_case("application") {
        return Err(Rejection::UnsupportedContentType);
    }
    let subtype_is = |s: &str| subtype.eq_ignore_ascii_case(s);
    let json_suffix = subtype.len() > 5
        && subtype.is_char_boundary(subtype.len() - 5)
        && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json");
    if subtype_is("json") || json_suffix {
        Ok(Format::Json)
    } else if subtype_is("x-www-form-urlencoded") {
        Ok(Format::Form)
    } else {
        Err(Rejection::UnsupportedContentType)
    }
}

/// The decoded `payload` field of a form body. Exactly one must be present: two
/// would leave it ambiguous which one a handler sees.
fn form_payload(body: &[u8]) -> Result<Bytes, Rejection> {
    let mut found = None;
    for (key, value) in form_urlencoded::parse(body) {
        if key == "payload" {
            if found.is_some() {
                return Err(Rejection::FormPayloadField);
            }
            found = Some(value.into_owned());
        }
    }
    found.map(Bytes::from).ok_or(Rejection::FormPayloadField)
}

/// The top-level `action` when it is a string, reading no further than it; `None`
/// when there is none or the JSON breaks before it.
fn find_action(payload: &[u8]) -> Option<String> {
    let mut found = None;
    // The scan stops at the action by failing on purpose; what it found stands.
    let _ = scan(payload, Scan::UntilAction, &mut found);
    found.flatten()
}

/// The action when the payload opens with `{"action": <string>`, as GitHub writes
/// it; `None` otherwise, without reading further. Only the log uses this, so it
/// does not look for the key spelled with escapes (routing does).
fn leading_action(payload: &[u8]) -> Option<String> {
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

/// Checks that `payload` is one JSON object without building it, and returns its
/// first top-level string `action`.
fn validate(payload: &[u8]) -> Result<Option<String>, Rejection> {
    let mut found = None;
    scan(payload, Scan::Whole, &mut found)
        .map(|()| found.flatten())
        .map_err(|e| Rejection::InvalidJson(e.to_string()))
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
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn github(content_type: &str) -> HeaderMap {
        headers(&[
            ("x-github-event", "pull_request"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("content-type", content_type),
            ("x-github-hook-id", "292430182"),
            ("x-github-hook-installation-target-type", "repository"),
            ("x-github-hook-installation-target-id", "79929171"),
            ("user-agent", "GitHub-Hookshot/044aadd"),
        ])
    }

    #[test]
    fn reads_metadata_and_action() {
        let body = Bytes::from_static(
            br#"{"action":"opened","number":1,"pull_request":{"action":"nested"}}"#,
        );
        let d = Delivery::parse(github("application/json"), body.clone(), None).unwrap();
        assert_eq!(d.0.action.get(), None, "not read until asked");
        assert_eq!(d.event(), "pull_request");
        assert_eq!(d.action(), Some("opened"));
        assert_eq!(d.guid(), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(d.hook_id(), Some(292430182));
        assert_eq!(d.installation_target_type(), Some("repository"));
        assert_eq!(d.installation_target_id(), Some(79929171));
        assert_eq!(d.user_agent(), Some("GitHub-Hookshot/044aadd"));
        assert_eq!(d.payload(), &body);
        assert_eq!(d.body(), &body);
    }

    fn routing_action(payload: &[u8]) -> Result<Option<String>, Rejection> {
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
        // Only the first `action` counts, in both modes.
        assert_eq!(
            routing_action(br#"{"action":"a","action":"b"}"#).unwrap(),
            Some("a".into())
        );
    }

    #[test]
    fn the_log_reads_the_action_only_where_github_writes_it() {
        let parse = |body: &'static [u8]| {
            Delivery::parse(github("application/json"), Bytes::from_static(body), None).unwrap()
        };
        let first = parse(br#"{"action":"opened","number":1,"rest":[1,2,"#);
        assert_eq!(first.action_for_log(), Some("opened"));
        assert_eq!(
            first.known_action(),
            Some("opened"),
            "kept for the log line"
        );
        assert_eq!(first.action(), Some("opened"));
        // Not the first key: the log does not scan for it, routing still finds it.
        let later = parse(br#"{"number":1,"action":"closed"}"#);
        assert_eq!(later.action_for_log(), None);
        assert_eq!(later.known_action(), None, "nothing claimed");
        assert_eq!(later.action(), Some("closed"));
        assert_eq!(later.action_for_log(), Some("closed"), "once read, logged");
        assert_eq!(parse(br#"{"action":7}"#).action_for_log(), None);
        assert_eq!(parse(b"[]").action_for_log(), None);
        assert_eq!(
            parse(b" \n{ \"action\" :\t\"synchronize\" ,\"number\":1}").action_for_log(),
            Some("synchronize")
        );
        assert_eq!(
            parse(br#"{"action":"a\"b","x":1}"#).action_for_log(),
            Some("a\"b")
        );
        // The log does not look for escaped spellings; routing does.
        let escaped = parse(br#"{"act\u0069on":"opened"}"#);
        assert_eq!(escaped.action_for_log(), None);
        assert_eq!(escaped.action(), Some("opened"));
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
            let err = routing_action(bad).unwrap_err();
            assert!(matches!(err, Rejection::InvalidJson(_)), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn content_types() {
        let body = Bytes::from_static(b"{}");
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.github+json",
            "application/json ;charset=UTF-8",
        ] {
            assert!(
                Delivery::parse(github(ok), body.clone(), None).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "text/plain",
            "application/xml",
            "json",
            "",
            "application/+json",
            "text/json",
            "multipart/form-data; boundary=x",
        ] {
            let err = Delivery::parse(github(bad), body.clone(), None).unwrap_err();
            assert_eq!(err, Rejection::UnsupportedContentType, "{bad}");
        }
        let mut none = github("x");
        none.remove("content-type");
        assert_eq!(
            Delivery::parse(none, body, None).unwrap_err(),
            Rejection::UnsupportedContentType
        );
    }

    #[test]
    fn form_payload_is_decoded_and_signature_body_kept() {
        let body =
            Bytes::from_static(b"payload=%7B%22action%22%3A%22closed%22%2C%22n%22%3A%22a+b%22%7D");
        let d = Delivery::parse(
            github("application/x-www-form-urlencoded"),
            body.clone(),
            None,
        )
        .unwrap();
        assert_eq!(d.action(), Some("closed"));
        assert_eq!(&d.payload()[..], br#"{"action":"closed","n":"a b"}"#);
        assert_eq!(d.body(), &body);
        for bad in [&b"other=1"[..], b"", b"payload=%7B%7D&payload=%7B%7D"] {
            let err = Delivery::parse(
                github("application/x-www-form-urlencoded"),
                Bytes::from(bad),
                None,
            )
            .unwrap_err();
            assert_eq!(err, Rejection::FormPayloadField, "{bad:?}");
        }
        let d = Delivery::parse(
            github("application/x-www-form-urlencoded"),
            Bytes::from_static(b"payload=nope"),
            None,
        )
        .unwrap();
        assert!(matches!(
            d.validate_payload(),
            Err(Rejection::InvalidJson(_))
        ));
    }

    #[test]
    fn required_headers() {
        let body = Bytes::from_static(b"{}");
        for (name, display) in [
            ("x-github-event", "X-GitHub-Event"),
            ("x-github-delivery", "X-GitHub-Delivery"),
        ] {
            let mut h = github("application/json");
            h.remove(name);
            assert_eq!(
                Delivery::parse(h.clone(), body.clone(), None).unwrap_err(),
                Rejection::MissingHeader(display)
            );
            h.insert(name, HeaderValue::from_static(""));
            assert_eq!(
                Delivery::parse(h.clone(), body.clone(), None).unwrap_err(),
                Rejection::MissingHeader(display)
            );
            h.insert(name, HeaderValue::from_static("  "));
            assert_eq!(
                Delivery::parse(h.clone(), body.clone(), None).unwrap_err(),
                Rejection::MissingHeader(display)
            );
            h.insert(name, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
            assert_eq!(
                Delivery::parse(h, body.clone(), None).unwrap_err(),
                Rejection::InvalidHeader(display)
            );
        }
    }
}
