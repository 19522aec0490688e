//! A delivery's headers and body as GitHub builds them: `X-GitHub-Event`,
//! `X-GitHub-Delivery`, the hook and installation target, `User-Agent`, JSON or a form
//! (the JSON in its `payload` field), and the signatures over the exact body bytes.
//!
//! The one way the crate builds a delivery: [`Sender`](crate::Sender) posts what
//! [`Outgoing::build`] returns, and the test kit (`test`) hands it to a test.

use crate::signature::{SIGNATURE_256_HEADER, SIGNATURE_SHA1_HEADER, sign_sha1, sign_sha256};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use std::fmt;

/// What a form body leaves unencoded: RFC 3986's unreserved characters.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How deliveries are built, apart from their event, GUID and payload.
#[derive(Clone)]
pub(crate) struct Outgoing {
    /// Signs with this secret; unsigned without one.
    pub(crate) secret: Option<Vec<u8>>,
    /// `X-Hub-Signature-256` when signed (off only to send the legacy header alone).
    pub(crate) sha256: bool,
    /// The legacy `X-Hub-Signature` (HMAC-SHA1) too, when signed.
    pub(crate) sha1: bool,
    /// `application/x-www-form-urlencoded`, the JSON in `payload`; else JSON.
    pub(crate) form: bool,
    pub(crate) hook_id: Option<u64>,
    /// `X-GitHub-Hook-Installation-Target-Type` and `-ID`.
    pub(crate) target: Option<(String, u64)>,
    pub(crate) user_agent: String,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("sha256", &self.sha256)
            .field("sha1", &self.sha1)
            .field("form", &self.form)
            .field("hook_id", &self.hook_id)
            .field("target", &self.target)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl Outgoing {
    /// Unsigned JSON with `user_agent`, no hook id or installation target.
    pub(crate) fn new(user_agent: &str) -> Self {
        Self {
            secret: None,
            sha256: true,
            sha1: false,
            form: false,
            hook_id: None,
            target: None,
            user_agent: user_agent.to_owned(),
        }
    }

    /// The headers and body of a delivery of `payload` (the JSON text), or which
    /// header value is not one.
    pub(crate) fn build(
        &self,
        event: &str,
        guid: &str,
        payload: Bytes,
    ) -> Result<(HeaderMap, Bytes), String> {
        let value = |name: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| format!("{name} {v:?} is not a header value"))
        };
        let body = if self.form {
            let mut form = b"payload=".to_vec();
            form.extend(percent_encoding::percent_encode(&payload, FORM).flat_map(str::bytes));
            Bytes::from(form)
        } else {
            payload
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", value("the event", event)?);
        headers.insert("x-github-delivery", value("the GUID", guid)?);
        if let Some(id) = self.hook_id {
            headers.insert("x-github-hook-id", HeaderValue::from(id));
        }
        if let Some((kind, id)) = &self.target {
            headers.insert(
                "x-github-hook-installation-target-type",
                value("the installation target type", kind)?,
            );
            headers.insert(
                "x-github-hook-installation-target-id",
                HeaderValue::from(*id),
            );
        }
        headers.insert(
            header::USER_AGENT,
            value("the User-Agent", &self.user_agent)?,
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if self.form {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            }),
        );
        if let Some(secret) = &self.secret {
            if self.sha256 {
                let sha256 = sign_sha256(secret, &body);
                headers.insert(SIGNATURE_256_HEADER, value("the signature", &sha256)?);
            }
            if self.sha1 {
                let sha1 = sign_sha1(secret, &body);
                headers.insert(SIGNATURE_SHA1_HEADER, value("the signature", &sha1)?);
            }
        }
        Ok((headers, body))
    }
}

/// A random version-4 UUID, as GitHub's delivery GUIDs are.
pub(crate) fn new_guid() -> String {
    let v = fastrand::u128(..) & !(0xF000 << 64) & !(0xC << 60) | (0x4000 << 64) | (0x8 << 60);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{Signatures, Verifier};

    fn signed() -> Outgoing {
        Outgoing {
            secret: Some(b"s3cret".to_vec()),
            ..Outgoing::new("GitHub-Hookshot/test")
        }
    }

    #[test]
    fn guids_are_version_4_uuids() {
        let a = new_guid();
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, new_guid());
    }

    #[test]
    fn deliveries_are_signed_like_githubs() {
        let outgoing = Outgoing {
            sha1: true,
            hook_id: Some(7),
            target: Some(("repository".to_owned(), 9)),
            ..signed()
        };
        let (headers, body) = outgoing
            .build("push", "g", Bytes::from_static(b"{\"a\": 1}"))
            .unwrap();
        assert_eq!(&body[..], b"{\"a\": 1}");
        assert_eq!(headers["x-github-event"], "push");
        assert_eq!(headers["x-github-delivery"], "g");
        assert_eq!(headers["x-github-hook-id"], "7");
        assert_eq!(
            headers["x-github-hook-installation-target-type"],
            "repository"
        );
        assert_eq!(headers["x-github-hook-installation-target-id"], "9");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["user-agent"], "GitHub-Hookshot/test");
        let verifier = Verifier::new(["s3cret"], true);
        let signatures = Signatures::from_headers(&headers).unwrap();
        assert!(verifier.verify(&body, signatures).is_ok());
        let sha1_only = Signatures {
            sha256: None,
            ..signatures
        };
        assert!(verifier.verify(&body, sha1_only).is_ok());
    }

    #[test]
    fn the_legacy_signature_can_be_sent_alone() {
        let outgoing = Outgoing {
            sha256: false,
            sha1: true,
            ..signed()
        };
        let (headers, body) = outgoing
            .build("ping", "g", Bytes::from_static(b"{}"))
            .unwrap();
        assert!(headers.get(SIGNATURE_256_HEADER).is_none());
        assert_eq!(
            headers[SIGNATURE_SHA1_HEADER],
            sign_sha1(b"s3cret", &body).as_str()
        );
    }

    #[test]
    fn unsigned_without_a_secret() {
        let (headers, _) = Outgoing::new("x")
            .build("ping", "g", Bytes::from_static(b"{}"))
            .unwrap();
        assert!(headers.get(SIGNATURE_256_HEADER).is_none());
        assert!(headers.get(SIGNATURE_SHA1_HEADER).is_none());
    }

    #[test]
    fn forms_carry_the_json_in_payload() {
        let outgoing = Outgoing {
            form: true,
            ..signed()
        };
        let (headers, body) = outgoing
            .build("ping", "g", Bytes::from_static(b"{\"z\": \"a+b&c=d\"}"))
            .unwrap();
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
        assert_eq!(
            &body[..],
            b"payload=%7B%22z%22%3A%20%22a%2Bb%26c%3Dd%22%7D".as_slice()
        );
        assert!(headers.get(SIGNATURE_SHA1_HEADER).is_none());
        // The signature is over the form body, as GitHub signs it.
        assert_eq!(
            headers[SIGNATURE_256_HEADER],
            sign_sha256(b"s3cret", &body).as_str()
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let debug = format!("{:?}", signed());
        assert!(
            !debug.contains("s3cret") && debug.contains("[redacted]"),
            "{debug}"
        );
    }

    #[test]
    fn bad_header_values_are_errors() {
        let err = Outgoing::new("x")
            .build("pu\nsh", "g", Bytes::new())
            .unwrap_err();
        assert!(err.contains("the event"), "{err}");
    }
}
