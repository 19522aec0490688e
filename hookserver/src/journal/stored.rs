//! What of a delivery is stored, and reading it back: the headers a handler can
//! read, as `name: value` lines (HTTP header values cannot hold a line break, so
//! the encoding needs no escaping), and nothing secret.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// Whether a header is kept: GitHub's own (`X-GitHub-*`), `User-Agent` and
/// `Content-Type`. Signatures are not: they are not needed once verified, and a
/// journal is no place for MACs.
pub(crate) fn is_kept(name: &HeaderName) -> bool {
    name == header::USER_AGENT
        || name == header::CONTENT_TYPE
        || name.as_str().starts_with("x-github-")
}

/// The kept headers as `name: value\n` lines, in the order received.
pub(crate) fn encode_headers(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for (name, value) in headers {
        if is_kept(name) {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// Reads back what [`encode_headers`] wrote. Anything else (a damaged row) is an
/// error saying where, never a panic.
pub(crate) fn decode_headers(stored: &[u8]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (number, line) in stored.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let at = line
            .windows(2)
            .position(|w| w == b": ")
            .ok_or_else(|| format!("stored header line {} has no `: `", number + 1))?;
        let name = HeaderName::from_bytes(&line[..at])
            .map_err(|_| format!("stored header line {} has an invalid name", number + 1))?;
        let value = HeaderValue::from_bytes(&line[at + 2..])
            .map_err(|_| format!("stored header line {} has an invalid value", number + 1))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_headers_round_trip_and_the_rest_are_left_out() {
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", HeaderValue::from_static("push"));
        headers.insert("x-github-delivery", HeaderValue::from_static("g-1"));
        headers.insert("x-github-hook-id", HeaderValue::from_static("42"));
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(
            "user-agent",
            HeaderValue::from_static("GitHub-Hookshot/abc"),
        );
        headers.insert("x-hub-signature-256", HeaderValue::from_static("sha256=00"));
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        headers.insert("cookie", HeaderValue::from_static("a: b"));
        let decoded = decode_headers(&encode_headers(&headers)).unwrap();
        assert_eq!(decoded.len(), 5);
        for name in [
            "x-github-event",
            "x-github-delivery",
            "x-github-hook-id",
            "content-type",
            "user-agent",
        ] {
            assert_eq!(decoded[name], headers[name], "{name}");
        }
        assert!(!decoded.contains_key("x-hub-signature-256"));
        assert!(!decoded.contains_key("authorization"));
    }

    #[test]
    fn a_value_with_colons_and_opaque_bytes_round_trips() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-github-note",
            HeaderValue::from_bytes(b"a: b: \xff c").unwrap(),
        );
        let decoded = decode_headers(&encode_headers(&headers)).unwrap();
        assert_eq!(decoded["x-github-note"].as_bytes(), b"a: b: \xff c");
    }

    #[test]
    fn damaged_rows_are_errors() {
        for damaged in [
            &b"no separator\n"[..],
            b"bad name: x\n",
            b"x-github-event: a\rb\n",
            b": empty name\n",
        ] {
            assert!(decode_headers(damaged).is_err(), "{damaged:?}");
        }
        assert!(decode_headers(b"").unwrap().is_empty());
    }
}
