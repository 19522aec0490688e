//! `parse_delivery` (header checks, content type, form decoding, action scan) over
//! arbitrary headers and bodies.
//!
//! Invariants:
//! - never panics;
//! - `Ok` only with a non-blank `X-GitHub-Event` and `X-GitHub-Delivery` and a JSON
//!   or form content type; a missing event header is always the first error;
//! - for a JSON body that is one object with a top-level string `action`, the
//!   action returned is that string.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "x-github-event",
    "x-github-delivery",
    "content-type",
    "x-github-hook-id",
    "user-agent",
];
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "application/vnd.github+json",
    "text/plain",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    headers: Vec<(u8, Result<u8, &'a [u8]>)>,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let name = NAMES[usize::from(*name) % NAMES.len()];
        let value = match value {
            Ok(i) if name == "content-type" => {
                CONTENT_TYPES[usize::from(*i) % CONTENT_TYPES.len()].as_bytes()
            }
            Ok(_) => b"push",
            Err(raw) => raw,
        };
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        headers.append(HeaderName::from_static(name), value);
    }
    let event = headers.get("x-github-event").cloned();
    let is_json = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));

    let result = hookserver::__private::parse_delivery(headers, Bytes::copy_from_slice(input.body));

    let present = |v: Option<&HeaderValue>| {
        v.and_then(|v| v.to_str().ok())
            .is_some_and(|s| !s.trim().is_empty())
    };
    if event.is_none() {
        assert_eq!(
            result,
            Err((400, "Missing header: X-GitHub-Event".to_owned())),
            "no event header"
        );
    }
    if let Ok(action) = &result {
        assert!(present(event.as_ref()));
        if is_json
            && let Ok(serde_json::Value::Object(map)) =
                serde_json::from_slice::<serde_json::Value>(input.body)
            && let Some(serde_json::Value::String(want)) = map.get("action")
            // With duplicate `action` keys, Value keeps the last and routing the first.
            && input.body.windows(8).filter(|w| w == b"\"action\"").count() == 1
        {
            assert_eq!(action.as_deref(), Some(want.as_str()));
        }
    }
});
