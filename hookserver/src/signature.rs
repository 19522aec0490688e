//! Signing and verifying deliveries: pure functions over bytes, no I/O.
//!
//! GitHub signs the raw request body with HMAC, keyed by the hook's secret, and sends
//! the hex digest in `X-Hub-Signature-256: sha256=<64 hex>` (and, for old
//! integrations, `X-Hub-Signature: sha1=<40 hex>`). Verification here:
//!
//! - keys every secret once, up front, and clones the keyed state per delivery
//!   (the key pads are hashed once per secret, not once per request);
//! - decodes the hex into a stack array (no allocation);
//! - compares in constant time (`Mac::verify_slice`), against every configured secret,
//!   so a secret can be rotated without dropping deliveries.

use crate::config::{ConfigError, Setting};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

/// The header GitHub puts the SHA-256 signature in.
pub const SIGNATURE_256_HEADER: &str = "x-hub-signature-256";
/// The legacy header GitHub puts the SHA-1 signature in.
pub const SIGNATURE_SHA1_HEADER: &str = "x-hub-signature";

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// No signature header the configuration accepts was sent.
    Missing,
    /// A signature was sent but is malformed or does not match any secret.
    Wrong,
    /// The named header was sent more than once: which one counts would be a guess.
    Duplicate(&'static str),
}

/// The signature headers of one delivery, each named by its algorithm so that the
/// two cannot be swapped by accident.
///
/// ```
/// use hookserver::signature::{Signatures, Verifier, sign_sha256};
///
/// let body = b"Hello, World!";
/// let header = sign_sha256(b"It's a Secret to Everybody", body);
/// let verifier = Verifier::new(["It's a Secret to Everybody"], false);
/// let signatures = Signatures { sha256: Some(header.as_bytes()), sha1: None };
/// assert!(verifier.verify(body, signatures).is_ok());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signatures<'a> {
    /// The `X-Hub-Signature-256` value (`sha256=<64 hex>`), as raw header bytes.
    pub sha256: Option<&'a [u8]>,
    /// The legacy `X-Hub-Signature` value (`sha1=<40 hex>`), as raw header bytes.
    pub sha1: Option<&'a [u8]>,
}

impl<'a> Signatures<'a> {
    /// The signature headers of a request. A header sent twice is
    /// [`SignatureError::Duplicate`]: GitHub sends each once, and believing the
    /// first (or the last) would let a proxy and hookserver disagree on which.
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Self, SignatureError> {
        fn one<'h>(
            headers: &'h HeaderMap,
            name: &'static str,
            display: &'static str,
        ) -> Result<Option<&'h [u8]>, SignatureError> {
            let mut values = headers.get_all(name).iter();
            let first = values.next().map(|v| v.as_bytes());
            match values.next() {
                Some(_) => Err(SignatureError::Duplicate(display)),
                None => Ok(first),
            }
        }
        Ok(Self {
            sha256: one(headers, SIGNATURE_256_HEADER, "X-Hub-Signature-256")?,
            sha1: one(headers, SIGNATURE_SHA1_HEADER, "X-Hub-Signature")?,
        })
    }
}

/// Computes the `X-Hub-Signature-256` header value GitHub would send for `body`
/// signed with `secret`: `sha256=` followed by 64 lowercase hex digits.
///
/// ```
/// let sig = hookserver::signature::sign_sha256(b"It's a Secret to Everybody", b"Hello, World!");
/// assert_eq!(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn sign_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", const_hex::encode(mac.finalize().into_bytes()))
}

/// Computes the legacy `X-Hub-Signature` header value: `sha1=` followed by 40 hex digits.
pub fn sign_sha1(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha1::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha1={}", const_hex::encode(mac.finalize().into_bytes()))
}

/// Verifies signature headers against a set of secrets.
///
/// Built once from the configuration; cheap to share between tasks. Its `Debug`
/// output names how many secrets it holds, never the secrets.
#[derive(Clone)]
pub struct Verifier {
    sha256: Vec<HmacSha256>,
    /// Keyed SHA-1 states; empty unless the legacy header is allowed.
    sha1: Vec<HmacSha1>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.sha256.len())
            .field("allow_sha1", &!self.sha1.is_empty())
            .finish()
    }
}

impl Verifier {
    /// A verifier accepting a signature made with any of `secrets`. The legacy SHA-1
    /// header is accepted only when `allow_sha1` is true.
    pub fn new<I, K>(secrets: I, allow_sha1: bool) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let keys: Vec<K> = secrets.into_iter().collect();
        let sha256 = keys
            .iter()
            .map(|k| HmacSha256::new_from_slice(k.as_ref()).expect("HMAC takes keys of any length"))
            .collect();
        let sha1 = if allow_sha1 {
            keys.iter()
                .map(|k| {
                    HmacSha1::new_from_slice(k.as_ref()).expect("HMAC takes keys of any length")
                })
                .collect()
        } else {
            Vec::new()
        };
        Self { sha256, sha1 }
    }

    /// How many secrets a signature is checked against.
    pub(crate) fn secret_count(&self) -> usize {
        self.sha256.len()
    }

    /// Checks a delivery's signature headers against `body`.
    ///
    /// The SHA-256 header is used when present; the SHA-1 header is consulted only
    /// when SHA-256 is absent and SHA-1 is allowed.
    pub fn verify(&self, body: &[u8], signatures: Signatures<'_>) -> Result<(), SignatureError> {
        if let Some(header) = signatures.sha256 {
            let expected = parse_hex::<32>(header, b"sha256=").ok_or(SignatureError::Wrong)?;
            return verify_any(&self.sha256, &expected, body);
        }
        match signatures.sha1 {
            Some(header) if !self.sha1.is_empty() => {
                let expected = parse_hex::<20>(header, b"sha1=").ok_or(SignatureError::Wrong)?;
                verify_any(&self.sha1, &expected, body)
            }
            _ => Err(SignatureError::Missing),
        }
    }
}

/// `Config::secret` / `GITHUB_WEBHOOKS_KEY` (and `HOOKSERVER_PREVIOUS_WEBHOOKS_KEY`).
pub(crate) const SECRET: Setting = Setting::new("Config::secret", "GITHUB_WEBHOOKS_KEY");
/// `Config::validate_signature` / `VALIDATE_SIGNATURE`.
pub(crate) const VALIDATE_SIGNATURE: Setting =
    Setting::new("Config::validate_signature", "VALIDATE_SIGNATURE");
/// `Config::allow_sha1` / `HOOKSERVER_ALLOW_SHA1`.
pub(crate) const ALLOW_SHA1: Setting = Setting::new("Config::allow_sha1", "HOOKSERVER_ALLOW_SHA1");

/// What the signature check needs: whether it runs, and with which secrets.
#[derive(Clone)]
pub(crate) struct SignatureSettings {
    pub(crate) validate: bool,
    pub(crate) secrets: Vec<Vec<u8>>,
    pub(crate) allow_sha1: bool,
}

impl fmt::Debug for SignatureSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureSettings")
            .field("validate", &self.validate)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("allow_sha1", &self.allow_sha1)
            .finish()
    }
}

impl Default for SignatureSettings {
    fn default() -> Self {
        Self {
            validate: true,
            secrets: Vec::new(),
            allow_sha1: false,
        }
    }
}

impl SignatureSettings {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.validate && self.secrets.is_empty() {
            return Err(ConfigError::NoSecret {
                setting: SECRET.method,
            });
        }
        if self.secrets.iter().any(Vec::is_empty) {
            return Err(ConfigError::invalid(SECRET, "", "a non-empty secret"));
        }
        Ok(())
    }

    /// The verifier, or `None` when signature checking is off.
    pub(crate) fn verifier(&self) -> Option<Verifier> {
        self.validate
            .then(|| Verifier::new(&self.secrets, self.allow_sha1))
    }
}

/// True when one of the keyed states signs `body` to `expected`. Each comparison is
/// constant-time; the loop stops early only on a match, so a forger learns nothing
/// from the timing of a failure.
fn verify_any<M: Mac + Clone>(
    keyed: &[M],
    expected: &[u8],
    body: &[u8],
) -> Result<(), SignatureError> {
    for mac in keyed {
        let mut mac = mac.clone();
        mac.update(body);
        if mac.verify_slice(expected).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Wrong)
}

/// True when `header` has the form of a signature (`sha256=` and 64 hex digits,
/// or `sha1=` and 40), whether or not it matches: for the log line of a wrong one.
pub(crate) fn well_formed(header: &[u8], sha1: bool) -> bool {
    if sha1 {
        parse_hex::<20>(header, b"sha1=").is_some()
    } else {
        parse_hex::<32>(header, b"sha256=").is_some()
    }
}

/// Parses `<prefix><2N hex digits>` into N bytes on the stack. Upper- and lowercase hex
/// are both accepted; anything else (wrong prefix, length, characters) is `None`.
fn parse_hex<const N: usize>(header: &[u8], prefix: &[u8]) -> Option<[u8; N]> {
    let digits = header.strip_prefix(prefix)?;
    // Exactly 2N digits: the decoder would also accept a `0x` in front of them
    // (found by fuzzing), which is not what GitHub sends.
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    const_hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn sigs<'a>(sha256: Option<&'a [u8]>, sha1: Option<&'a [u8]>) -> Signatures<'a> {
        Signatures { sha256, sha1 }
    }

    #[test]
    fn a_header_sent_twice_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(SIGNATURE_256_HEADER, GITHUB_SIG.parse().unwrap());
        assert_eq!(
            Signatures::from_headers(&headers).unwrap().sha256,
            Some(GITHUB_SIG.as_bytes())
        );
        headers.append(SIGNATURE_256_HEADER, "sha256=00".parse().unwrap());
        assert_eq!(
            Signatures::from_headers(&headers),
            Err(SignatureError::Duplicate("X-Hub-Signature-256"))
        );
        let mut legacy = HeaderMap::new();
        legacy.append(SIGNATURE_SHA1_HEADER, "sha1=00".parse().unwrap());
        legacy.append(SIGNATURE_SHA1_HEADER, "sha1=00".parse().unwrap());
        assert_eq!(
            Signatures::from_headers(&legacy),
            Err(SignatureError::Duplicate("X-Hub-Signature"))
        );
        assert_eq!(
            Signatures::from_headers(&HeaderMap::new()),
            Ok(Signatures::default())
        );
    }

    #[test]
    fn signs_githubs_documented_vector() {
        assert_eq!(sign_sha256(GITHUB_SECRET, GITHUB_BODY), GITHUB_SIG);
    }

    #[test]
    fn signs_rfc_4231_case_2() {
        // RFC 4231 test case 2 (key "Jefe"), SHA-256 and RFC 2202 case 2, SHA-1.
        let body = b"what do ya want for nothing?";
        assert_eq!(
            sign_sha256(b"Jefe", body),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign_sha1(b"Jefe", body),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn verifies_githubs_documented_vector() {
        let v = Verifier::new([GITHUB_SECRET], false);
        assert_eq!(
            v.verify(GITHUB_BODY, sigs(Some(GITHUB_SIG.as_bytes()), None)),
            Ok(())
        );
    }

    #[test]
    fn accepts_uppercase_hex() {
        let v = Verifier::new([GITHUB_SECRET], false);
        let upper = format!("sha256={}", GITHUB_SIG[7..].to_uppercase());
        assert_eq!(
            v.verify(GITHUB_BODY, sigs(Some(upper.as_bytes()), None)),
            Ok(())
        );
    }

    #[test]
    fn rejects_a_tampered_body_or_signature() {
        let v = Verifier::new([GITHUB_SECRET], false);
        let sig = GITHUB_SIG.as_bytes();
        assert_eq!(
            v.verify(b"Hello, World?", sigs(Some(sig), None)),
            Err(SignatureError::Wrong)
        );
        let mut flipped = GITHUB_SIG.to_owned().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = b'6';
        assert_eq!(
            v.verify(GITHUB_BODY, sigs(Some(&flipped), None)),
            Err(SignatureError::Wrong)
        );
    }

    #[test]
    fn rejects_malformed_headers_as_wrong() {
        let v = Verifier::new([GITHUB_SECRET], false);
        let hex = &GITHUB_SIG[7..];
        for bad in [
            String::new(),
            "sha256=".into(),
            hex.to_owned(),                     // no prefix
            format!("sha1={hex}"),              // wrong algorithm
            format!("SHA256={hex}"),            // prefix is case-sensitive
            format!("sha256={}", &hex[..63]),   // odd length
            format!("sha256={hex}00"),          // too long
            format!("sha256= {}", &hex[1..]),   // space
            format!("sha256={}zz", &hex[..62]), // not hex
            format!("sha256={hex} "),           // trailing space
        ] {
            assert_eq!(
                v.verify(GITHUB_BODY, sigs(Some(bad.as_bytes()), None)),
                Err(SignatureError::Wrong),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_when_no_header_is_sent() {
        let v = Verifier::new([GITHUB_SECRET], true);
        assert_eq!(
            v.verify(GITHUB_BODY, sigs(None, None)),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn any_configured_secret_verifies() {
        let v = Verifier::new(["old secret", "new secret"], false);
        for secret in ["old secret", "new secret"] {
            let sig = sign_sha256(secret.as_bytes(), GITHUB_BODY);
            assert_eq!(
                v.verify(GITHUB_BODY, sigs(Some(sig.as_bytes()), None)),
                Ok(()),
                "{secret}"
            );
        }
        let other = sign_sha256(b"another secret", GITHUB_BODY);
        assert_eq!(
            v.verify(GITHUB_BODY, sigs(Some(other.as_bytes()), None)),
            Err(SignatureError::Wrong)
        );
    }

    #[test]
    fn sha1_only_when_allowed_and_sha256_absent() {
        let sha1 = sign_sha1(GITHUB_SECRET, GITHUB_BODY);
        let strict = Verifier::new([GITHUB_SECRET], false);
        assert_eq!(
            strict.verify(GITHUB_BODY, sigs(None, Some(sha1.as_bytes()))),
            Err(SignatureError::Missing)
        );
        let legacy = Verifier::new([GITHUB_SECRET], true);
        assert_eq!(
            legacy.verify(GITHUB_BODY, sigs(None, Some(sha1.as_bytes()))),
            Ok(())
        );
        // A good SHA-1 does not rescue a wrong SHA-256: the stronger header decides.
        assert_eq!(
            legacy.verify(GITHUB_BODY, sigs(Some(b"sha256=00"), Some(sha1.as_bytes()))),
            Err(SignatureError::Wrong)
        );
        let wrong_sha1 = sign_sha1(b"nope", GITHUB_BODY);
        assert_eq!(
            legacy.verify(GITHUB_BODY, sigs(None, Some(wrong_sha1.as_bytes()))),
            Err(SignatureError::Wrong)
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let v = Verifier::new(["hunter2-very-secret"], true);
        let debug = format!("{v:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(debug, "Verifier { secrets: 1, allow_sha1: true }");
    }
}
