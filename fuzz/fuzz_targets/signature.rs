//! `Verifier::verify` over arbitrary headers, bodies and secrets.
//!
//! Invariants:
//! - never panics;
//! - the result is exactly what a model built on `sign_sha256` / `sign_sha1` says:
//!   `Ok` iff the header is `sha256=` (case-sensitive prefix) followed by the expected
//!   hex digits in any letter case; a present SHA-256 header decides alone; the SHA-1
//!   header counts only when SHA-256 is absent and SHA-1 is allowed; no usable header
//!   is `Missing`. In particular `Ok` implies the header equals the computed
//!   signature case-insensitively;
//! - a header produced by `sign_sha256(secret, body)` always verifies.
#![no_main]

use arbitrary::Arbitrary;
use hookserver::signature::{SignatureError, Signatures, Verifier, sign_sha1, sign_sha256};
use libfuzzer_sys::fuzz_target;

/// How a signature header is made from the fuzz data.
#[derive(Arbitrary, Debug)]
enum HeaderKind<'a> {
    Absent,
    /// Raw bytes.
    Raw(&'a [u8]),
    /// The correct signature, letters flipped to uppercase where the mask says
    /// (the prefix included).
    Correct {
        case_mask: u128,
    },
    /// The correct signature with bytes spliced in after the prefix and at the end.
    Spliced {
        after_prefix: &'a [u8],
        suffix: &'a [u8],
    },
    /// The correct signature with one byte replaced.
    Replaced {
        at: u8,
        with: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a [u8],
    other_secret: Option<&'a [u8]>,
    allow_sha1: bool,
    sha256: HeaderKind<'a>,
    sha1: HeaderKind<'a>,
    body: &'a [u8],
}

fn make(kind: &HeaderKind<'_>, correct: &str) -> Option<Vec<u8>> {
    let correct = correct.as_bytes();
    let prefix_len = correct.iter().position(|&b| b == b'=').map_or(0, |i| i + 1);
    match kind {
        HeaderKind::Absent => None,
        HeaderKind::Raw(bytes) => Some(bytes.to_vec()),
        HeaderKind::Correct { case_mask } => Some(
            correct
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    if case_mask >> (i % 128) & 1 == 1 {
                        b.to_ascii_uppercase()
                    } else {
                        b
                    }
                })
                .collect(),
        ),
        HeaderKind::Spliced {
            after_prefix,
            suffix,
        } => {
            let mut v = correct[..prefix_len].to_vec();
            v.extend_from_slice(after_prefix);
            v.extend_from_slice(&correct[prefix_len..]);
            v.extend_from_slice(suffix);
            Some(v)
        }
        HeaderKind::Replaced { at, with } => {
            let mut v = correct.to_vec();
            let i = usize::from(*at) % v.len();
            v[i] = *with;
            Some(v)
        }
    }
}

/// The model: `prefix` exactly, then the expected digits in any case.
fn matches(header: &[u8], signed: &str) -> bool {
    let (prefix, digits) = signed.split_at(signed.find('=').unwrap() + 1);
    header
        .strip_prefix(prefix.as_bytes())
        .is_some_and(|rest| rest.eq_ignore_ascii_case(digits.as_bytes()))
}

fuzz_target!(|input: Input<'_>| {
    let mut secrets = vec![input.secret];
    secrets.extend(input.other_secret);
    let verifier = Verifier::new(&secrets, input.allow_sha1);

    let good256: Vec<String> = secrets.iter().map(|s| sign_sha256(s, input.body)).collect();
    let good1: Vec<String> = secrets.iter().map(|s| sign_sha1(s, input.body)).collect();
    let h256 = make(&input.sha256, &good256[0]);
    let h1 = make(&input.sha1, &good1[0]);

    let got = verifier.verify(
        input.body,
        Signatures {
            sha256: h256.as_deref(),
            sha1: h1.as_deref(),
        },
    );

    let expected = match (&h256, &h1) {
        (Some(h), _) => {
            if good256.iter().any(|g| matches(h, g)) {
                Ok(())
            } else {
                Err(SignatureError::Wrong)
            }
        }
        (None, Some(h)) if input.allow_sha1 => {
            if good1.iter().any(|g| matches(h, g)) {
                Ok(())
            } else {
                Err(SignatureError::Wrong)
            }
        }
        (None, _) => Err(SignatureError::Missing),
    };
    assert_eq!(
        got,
        expected,
        "sha256 header {:?}, sha1 header {:?}",
        h256.as_deref().map(String::from_utf8_lossy),
        h1.as_deref().map(String::from_utf8_lossy),
    );

    // Roundtrip: what we sign always verifies, with and without the SHA-1 header.
    for g in &good256 {
        assert_eq!(
            verifier.verify(
                input.body,
                Signatures {
                    sha256: Some(g.as_bytes()),
                    sha1: None
                }
            ),
            Ok(())
        );
        assert_eq!(
            verifier.verify(
                input.body,
                Signatures {
                    sha256: Some(g.as_bytes()),
                    sha1: h1.as_deref()
                }
            ),
            Ok(())
        );
    }
});
