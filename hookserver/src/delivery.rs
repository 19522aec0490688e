//! One delivery: its headers checked, its payload located, its routing key read,
//! and whether its payload is one JSON object, decided once.
//!
//! Pay for what you use: no `serde_json::Value` is built unless a handler asks for
//! one. The top-level `action` (all routing needs) is read only when the event has
//! action handlers, and the scan stops as soon as it is found (GitHub sends it
//! first). Whether the payload is valid is remembered here, not promised by
//! extractors: a parse made through [`Delivery::json`] settles it on the way, and
//! the pipeline scans (building nothing) only when no parse did, so the payload is
//! read once and no extractor can let broken JSON through.

use crate::{
    rejection::{InvalidJson, PayloadMismatch, PayloadRejection, Rejection},
    scan,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, header};
use serde::de::DeserializeOwned;
use std::{
    borrow::Cow,
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
    /// Whether the payload is one JSON object; settled by the first parse or scan.
    validity: OnceLock<Result<(), InvalidJson>>,
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
            .get_or_init(|| scan::find_action(&self.0.payload))
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
        let leading = scan::leading_action(&self.0.payload)?;
        self.0.action.get_or_init(|| Some(leading)).as_deref()
    }

    /// Whether the payload is one JSON object with at most one top-level `action`.
    /// Free when a parse already settled it; otherwise one scan that builds nothing
    /// (and reads the action on the way).
    pub(crate) fn check_payload(&self) -> Result<(), InvalidJson> {
        self.0
            .validity
            .get_or_init(|| match scan::validate(&self.0.payload) {
                Ok(action) => {
                    let _ = self.0.action.set(action);
                    Ok(())
                }
                Err(why) => Err(InvalidJson::new(why)),
            })
            .clone()
    }

    /// The answer to a parse that failed: `Invalid JSON payload` when the payload
    /// is not one JSON object (the same answer whatever the handler asks for), else
    /// `otherwise`.
    fn invalid_or(&self, otherwise: impl FnOnce() -> PayloadRejection) -> PayloadRejection {
        match self.check_payload() {
            Err(invalid) => invalid.into(),
            Ok(()) => otherwise(),
        }
    }

    /// The payload deserialized into `T`, straight from its bytes: declare only the
    /// fields you read, and the rest is skipped, not built.
    ///
    /// The payload must be one JSON object: anything else is
    /// [`PayloadRejection::InvalidJson`]; JSON of another shape is
    /// [`PayloadRejection::Mismatch`], naming the field. This is what
    /// [`Payload<T>`](crate::Payload) does; call it from your own extractors.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PayloadRejection> {
        let payload = &self.0.payload;
        let mut de = serde_json::Deserializer::from_slice(payload);
        match serde_path_to_error::deserialize(&mut de) {
            // serde_json builds structs from arrays too, and stops after one value:
            // only one object, and nothing after it, is a payload. A parse that got
            // this far read every byte, so it settles validity without a scan.
            Ok(value) if de.end().is_ok() && starts_an_object(payload) => {
                let _ = self.0.validity.set(Ok(()));
                Ok(value)
            }
            Ok(_) => Err(self.invalid_or(|| InvalidJson::new("expected one JSON object").into())),
            Err(e) => Err(self.invalid_or(|| PayloadMismatch::new(e).into())),
        }
    }

    /// The whole payload as a `serde_json::Value` object, in agreement with the
    /// action that routed it: a `Value` keeps the last of two `action` keys, routing
    /// reads the first, so a payload where they differ is refused.
    pub(crate) fn value(&self) -> Result<serde_json::Value, PayloadRejection> {
        match serde_json::from_slice::<serde_json::Value>(&self.0.payload) {
            Ok(serde_json::Value::Object(map)) => {
                if let Some(action) = map.get("action")
                    && action.as_str() != self.action()
                {
                    return Err(InvalidJson::new(scan::DUPLICATE_ACTION).into());
                }
                let _ = self.0.validity.set(Ok(()));
                Ok(serde_json::Value::Object(map))
            }
            Ok(_) => Err(self.invalid_or(|| InvalidJson::new("expected a JSON object").into())),
            // Valid JSON that a `Value` cannot hold (a number beyond f64, say).
            Err(e) => Err(self.invalid_or(|| InvalidJson::new(e.to_string()).into())),
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

    /// Checks the GitHub headers and locates the payload. Runs after the signature
    /// check, so the body is already trusted to be GitHub's.
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
            validity: OnceLock::new(),
            guid,
            client_ip,
            headers,
            body,
            payload,
        })))
    }
}

/// Whether the first byte that is not white space opens an object.
fn starts_an_object(json: &[u8]) -> bool {
    json.trim_ascii_start().starts_with(b"{")
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
/// would leave it ambiguous which one a handler sees. Its decoded bytes must be
/// UTF-8: decoding `%FF` into U+FFFD would hand a handler text the sender never
/// wrote.
fn form_payload(body: &[u8]) -> Result<Bytes, Rejection> {
    let mut found = None;
    for pair in body.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        if form_decode(key) != b"payload".as_slice() {
            continue;
        }
        if found.is_some() {
            return Err(Rejection::FormPayloadField);
        }
        found = Some(form_decode(value).into_owned());
    }
    let payload = found.ok_or(Rejection::FormPayloadField)?;
    if std::str::from_utf8(&payload).is_err() {
        return Err(InvalidJson::new("the form's payload field is not UTF-8 text").into());
    }
    Ok(Bytes::from(payload))
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a
/// space, `%XX` a byte.
fn form_decode(raw: &[u8]) -> Cow<'_, [u8]> {
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        raw.iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect::<Vec<u8>>()
            .into()
    } else {
        raw.into()
    };
    match percent_encoding::percent_decode(&spaced).into() {
        Cow::Borrowed(_) => spaced,
        Cow::Owned(decoded) => decoded.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::tests::headers;
    use http::HeaderValue;

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
        assert!(d.check_payload().is_err());
    }

    #[test]
    fn form_payload_must_decode_to_utf8() {
        let form = |body: &'static [u8]| {
            Delivery::parse(
                github("application/x-www-form-urlencoded"),
                Bytes::from_static(body),
                None,
            )
        };
        for bad in [&b"payload=%7B%22a%22%3A%22%FF%22%7D"[..], b"payload=%C3"] {
            let err = form(bad).unwrap_err();
            assert_eq!(
                err.message(),
                "Invalid JSON payload: the form's payload field is not UTF-8 text"
            );
        }
        // Percent-encoded UTF-8, and a percent-encoded field name, are fine.
        let d = form(b"pay%6Coad=%7B%22a%22%3A%22caf%C3%A9%22%7D&other=%FF").unwrap();
        assert_eq!(&d.payload()[..], "{\"a\":\"caf\u{e9}\"}".as_bytes());
        assert!(d.check_payload().is_ok());
    }

    #[test]
    fn validity_is_settled_once_by_a_parse_or_the_scan() {
        let parse = |body: &'static [u8]| {
            Delivery::parse(github("application/json"), Bytes::from_static(body), None).unwrap()
        };
        #[derive(Debug, serde::Deserialize)]
        struct Number {
            number: u64,
        }
        let d = parse(br#"{"action":"opened","number":1}"#);
        assert_eq!(d.json::<Number>().unwrap().number, 1);
        assert_eq!(d.0.validity.get(), Some(&Ok(())), "the parse settled it");
        // Broken JSON is the same answer whatever the type.
        let d = parse(br#"{"number":1"#);
        let err = d.json::<Number>().unwrap_err();
        assert!(matches!(err, PayloadRejection::InvalidJson(_)), "{err}");
        assert!(d.check_payload().is_err());
        // Valid JSON of another shape names the field.
        let d = parse(br#"{"number":"one"}"#);
        let err = d.json::<Number>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Payload does not match: number: invalid type"),
            "{err}"
        );
        assert!(d.check_payload().is_ok());
        // Arrays fit structs in serde_json; they are not payloads.
        let d = parse(b"[1]");
        assert!(matches!(
            d.json::<Number>().unwrap_err(),
            PayloadRejection::InvalidJson(_)
        ));
    }

    #[test]
    fn a_value_agrees_with_the_routing_action_or_is_refused() {
        let parse = |body: &'static [u8]| {
            Delivery::parse(github("application/json"), Bytes::from_static(body), None).unwrap()
        };
        for twice in [
            &br#"{"action":"opened","action":"closed"}"#[..],
            br#"{"action":"opened","action":1}"#,
            br#"{"action":1,"action":"closed"}"#,
        ] {
            let err = parse(twice).value().unwrap_err();
            assert_eq!(
                err.body_text(),
                "Invalid JSON payload: duplicate top-level key `action`"
            );
        }
        let d = parse(br#"{"action":"opened","n":{"action":"x"}}"#);
        assert_eq!(d.value().unwrap()["action"], "opened");
        assert_eq!(parse(br#"{"zen":"x"}"#).value().unwrap()["zen"], "x");
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
