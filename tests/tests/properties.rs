//! Property tests: the fuzz targets' invariants (see `fuzz/`), with few enough cases
//! to run in the normal test suite.

use bytes::Bytes;
use hookserver::{
    Config, Delivery, Hooks,
    ipnet::{IpNet, Ipv4Net, Ipv6Net},
    signature::{SignatureError, Signatures, Verifier, sign_sha1, sign_sha256},
};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tower::ServiceExt;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Signatures

/// The model of `Verifier::verify` for one header: `sha256=` / `sha1=` exactly, then
/// the expected hex digits in any letter case.
fn matches(header: &[u8], signed: &str) -> bool {
    let (prefix, digits) = signed.split_at(signed.find('=').expect("valid by construction") + 1);
    header
        .strip_prefix(prefix.as_bytes())
        .is_some_and(|rest| rest.eq_ignore_ascii_case(digits.as_bytes()))
}

/// A header made from the correct one (`good`), so that `Ok` is exercised as often
/// as every way of being wrong.
#[derive(Debug, Clone)]
enum HeaderKind {
    Absent,
    Raw(Vec<u8>),
    /// The correct header with letters uppercased where the mask says.
    Cased(u128),
    /// The correct header with bytes spliced after the prefix and at the end.
    Spliced(Vec<u8>, Vec<u8>),
    /// The correct header with one byte replaced.
    Replaced(usize, u8),
}

fn header_kind() -> impl Strategy<Value = HeaderKind> {
    let splice = prop_oneof![
        Just(b"0x".to_vec()),
        Just(b"0X".to_vec()),
        Just(b" ".to_vec()),
        Just(b"=".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    prop_oneof![
        Just(HeaderKind::Absent),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(HeaderKind::Raw),
        any::<u128>().prop_map(HeaderKind::Cased),
        (splice, proptest::collection::vec(any::<u8>(), 0..3))
            .prop_map(|(a, b)| HeaderKind::Spliced(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| HeaderKind::Replaced(i, b)),
    ]
}

fn make_header(kind: &HeaderKind, good: &str) -> Option<Vec<u8>> {
    let good = good.as_bytes();
    let prefix_len = good
        .iter()
        .position(|&b| b == b'=')
        .expect("valid by construction")
        + 1;
    match kind {
        HeaderKind::Absent => None,
        HeaderKind::Raw(bytes) => Some(bytes.clone()),
        HeaderKind::Cased(mask) => Some(
            good.iter()
                .enumerate()
                .map(|(i, &b)| {
                    if mask >> (i % 128) & 1 == 1 {
                        b.to_ascii_uppercase()
                    } else {
                        b
                    }
                })
                .collect(),
        ),
        HeaderKind::Spliced(after_prefix, suffix) => {
            let mut v = good[..prefix_len].to_vec();
            v.extend_from_slice(after_prefix);
            v.extend_from_slice(&good[prefix_len..]);
            v.extend_from_slice(suffix);
            Some(v)
        }
        HeaderKind::Replaced(at, with) => {
            let mut v = good.to_vec();
            let i = at % v.len();
            v[i] = *with;
            Some(v)
        }
    }
}

fn expected_verdict(
    h256: Option<&[u8]>,
    h1: Option<&[u8]>,
    allow_sha1: bool,
    good256: &[String],
    good1: &[String],
) -> Result<(), SignatureError> {
    let check = |h: &[u8], good: &[String]| {
        if good.iter().any(|g| matches(h, g)) {
            Ok(())
        } else {
            Err(SignatureError::Wrong)
        }
    };
    match (h256, h1) {
        (Some(h), _) => check(h, good256),
        (None, Some(h)) if allow_sha1 => check(h, good1),
        (None, _) => Err(SignatureError::Missing),
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Header parsing never panics, and the verdict is exactly the model's: in
    /// particular `Ok` implies the header equals the computed signature
    /// (hex digits in any case).
    #[test]
    fn verify_agrees_with_the_signing_model(
        secrets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..3),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        allow_sha1 in any::<bool>(),
        sha256 in header_kind(),
        sha1 in header_kind(),
    ) {
        let verifier = Verifier::new(&secrets, allow_sha1);
        let good256: Vec<String> = secrets.iter().map(|s| sign_sha256(s, &body)).collect();
        let good1: Vec<String> = secrets.iter().map(|s| sign_sha1(s, &body)).collect();
        let h256 = make_header(&sha256, &good256[0]);
        let h1 = make_header(&sha1, &good1[0]);
        let got = verifier.verify(&body, Signatures { sha256: h256.as_deref(), sha1: h1.as_deref() });
        prop_assert_eq!(
            got,
            expected_verdict(h256.as_deref(), h1.as_deref(), allow_sha1, &good256, &good1)
        );
    }

    /// Whatever `sign_sha256` produces for a configured secret verifies; a signature
    /// over another body, or with a secret whose signature differs, does not.
    #[test]
    fn sign_then_verify_roundtrip(
        secrets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..4),
        stranger in proptest::collection::vec(any::<u8>(), 0..100),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        other_body in proptest::collection::vec(any::<u8>(), 0..300),
        which in any::<prop::sample::Index>(),
    ) {
        let verifier = Verifier::new(&secrets, false);
        let secret = which.get(&secrets);
        let sig = sign_sha256(secret, &body);
        prop_assert_eq!(verifier.verify(&body, Signatures { sha256: Some(sig.as_bytes()), sha1: None }), Ok(()));
        let upper = format!("sha256={}", sig[7..].to_ascii_uppercase());
        prop_assert_eq!(verifier.verify(&body, Signatures { sha256: Some(upper.as_bytes()), sha1: None }), Ok(()));
        if other_body != body {
            prop_assert_eq!(
                verifier.verify(&other_body, Signatures { sha256: Some(sig.as_bytes()), sha1: None }),
                Err(SignatureError::Wrong)
            );
        }
        // HMAC pads short keys with zeros, so "k" and "k\0" sign alike: compare signatures,
        // not keys.
        let forged = sign_sha256(&stranger, &body);
        if secrets.iter().all(|s| sign_sha256(s, &body) != forged) {
            prop_assert_eq!(
                verifier.verify(&body, Signatures { sha256: Some(forged.as_bytes()), sha1: None }),
                Err(SignatureError::Wrong)
            );
        }
    }
}

/// Found by fuzzing (fuzz/regressions/signature/): the hex decoder strips a leading
/// `0x`/`0X`, so `sha256=0x<64 hex>` was accepted although GitHub never sends it
/// and anything but `<prefix><2N hex digits>` is to be refused.
#[test]
fn regression_sha256_header_with_0x_prefix() {
    let verifier = Verifier::new([b"It's a Secret to Everybody"], true);
    let body = b"Hello, World!";
    for bad in [
        "sha256=0x757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=0X757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    ] {
        assert_eq!(
            verifier.verify(
                body,
                Signatures {
                    sha256: Some(bad.as_bytes()),
                    sha1: None
                }
            ),
            Err(SignatureError::Wrong),
            "{bad}"
        );
    }
    let sha1 = sign_sha1(b"It's a Secret to Everybody", body);
    let bad1 = format!("sha1=0x{}", &sha1[5..]);
    assert_eq!(
        verifier.verify(
            body,
            Signatures {
                sha256: None,
                sha1: Some(bad1.as_bytes())
            }
        ),
        Err(SignatureError::Wrong),
        "{bad1}"
    );
}

// ---------------------------------------------------------------------------
// The router

const SECRET: &[u8] = b"property-secret";
const LIMIT: usize = 4096;

fn router(allow_sha1: bool) -> axum::Router {
    Hooks::new(
        Config::new()
            .secret(SECRET)
            .validate_ip(false)
            .allow_sha1(allow_sha1)
            .body_limit(LIMIT),
    )
    .on("push", |_: serde_json::Value| async { "push" })
    .on("pull_request.opened", |_: serde_json::Value| async {
        "pull_request.opened"
    })
    .on("*", |d: Delivery| async move { format!("* {}", d.event()) })
    .router("/hooks")
}

#[derive(Debug, Clone)]
enum Sig {
    Absent,
    Correct,
    CorrectUpper,
    /// The correct one with one hex digit changed.
    Corrupted(usize),
    OtherSecret,
    Raw(Vec<u8>),
}

fn sig_strategy() -> impl Strategy<Value = Sig> {
    prop_oneof![
        1 => Just(Sig::Absent),
        3 => Just(Sig::Correct),
        1 => Just(Sig::CorrectUpper),
        1 => any::<usize>().prop_map(Sig::Corrupted),
        1 => Just(Sig::OtherSecret),
        1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Sig::Raw),
    ]
}

/// The header value, and whether it is a valid signature.
fn sig_header(kind: &Sig, good: &str, other: &str) -> (Option<Vec<u8>>, bool) {
    let start = good.find('=').expect("valid by construction") + 1;
    match kind {
        Sig::Absent => (None, false),
        Sig::Correct => (Some(good.as_bytes().to_vec()), true),
        Sig::CorrectUpper => (
            Some(format!("{}{}", &good[..start], good[start..].to_ascii_uppercase()).into_bytes()),
            true,
        ),
        Sig::Corrupted(at) => {
            let mut v = good.as_bytes().to_vec();
            let i = start + at % (v.len() - start);
            v[i] = if v[i] == b'0' { b'1' } else { b'0' };
            (Some(v), false)
        }
        Sig::OtherSecret => (Some(other.as_bytes().to_vec()), false),
        Sig::Raw(b) => (Some(b.clone()), matches(b, good)),
    }
}

fn opt_text(fixed: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        3 => proptest::sample::select(fixed).prop_map(|s| Some(s.as_bytes().to_vec())),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
enum BodyKind {
    Raw(Vec<u8>),
    /// A JSON object, with an `action` or not.
    Json(Option<&'static str>, String),
    /// A form with one (or two) `payload` fields.
    Form(Vec<u8>, bool),
}

fn body_strategy() -> impl Strategy<Value = BodyKind> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(BodyKind::Raw),
        2 => (
            proptest::option::of(proptest::sample::select(&["opened", "closed", "", "OPENED"][..])),
            ".{0,12}"
        )
            .prop_map(|(a, s)| BodyKind::Json(a, s)),
        1 => (proptest::collection::vec(any::<u8>(), 0..32), any::<bool>())
            .prop_map(|(p, twice)| BodyKind::Form(p, twice)),
    ]
}

#[derive(Debug, Clone)]
struct HttpCase {
    allow_sha1: bool,
    method: &'static str,
    path: &'static str,
    event: Option<Vec<u8>>,
    guid: Option<Vec<u8>>,
    content_type: Option<Vec<u8>>,
    content_length: Option<Vec<u8>>,
    sha256: Sig,
    sha1: Sig,
    body: BodyKind,
}

/// Requests of every kind. A third start from a well-formed, signed delivery and
/// change at most one thing about it, so that every documented answer (the `200`s
/// and the `415` in particular, which need everything else right) is reached in
/// every run, not only in most: with 512 cases the chance that one is missed is
/// about (8/9)^170, below 10^-8.
fn http_case() -> impl Strategy<Value = HttpCase> {
    prop_oneof![1 => near_valid_case(), 2 => arbitrary_case()]
}

/// One thing wrong with a well-formed delivery, or nothing.
#[derive(Debug, Clone, Copy)]
enum Flaw {
    None,
    ContentType,
    DeclaredTooLarge,
    Signature,
    NoEvent,
    Method,
    Path,
}

fn near_valid_case() -> impl Strategy<Value = HttpCase> {
    let flaw = proptest::sample::select(
        &[
            Flaw::None,
            Flaw::None,
            Flaw::None,
            Flaw::ContentType,
            Flaw::DeclaredTooLarge,
            Flaw::Signature,
            Flaw::NoEvent,
            Flaw::Method,
            Flaw::Path,
        ][..],
    );
    (
        any::<bool>(),
        proptest::sample::select(&["push", "pull_request", "ping", "issues"][..]),
        proptest::option::of(proptest::sample::select(&["opened", "closed"][..])),
        ".{0,12}",
        flaw,
    )
        .prop_map(|(allow_sha1, event, action, extra, flaw)| {
            let mut case = HttpCase {
                allow_sha1,
                method: "POST",
                path: "/hooks",
                event: Some(event.as_bytes().to_vec()),
                guid: Some(b"72d3162e-cc78-11e3-81ab-4c9367dc0958".to_vec()),
                content_type: Some(b"application/json".to_vec()),
                content_length: None,
                sha256: Sig::Correct,
                sha1: Sig::Absent,
                body: BodyKind::Json(action, extra),
            };
            match flaw {
                Flaw::None => {}
                Flaw::ContentType => case.content_type = Some(b"text/plain".to_vec()),
                Flaw::DeclaredTooLarge => case.content_length = Some(b"4097".to_vec()),
                Flaw::Signature => case.sha256 = Sig::OtherSecret,
                Flaw::NoEvent => case.event = None,
                Flaw::Method => case.method = "PUT",
                Flaw::Path => case.path = "/other",
            }
            case
        })
}

fn arbitrary_case() -> impl Strategy<Value = HttpCase> {
    (
        any::<bool>(),
        prop_oneof![
            4 => Just("POST"),
            1 => proptest::sample::select(&["GET", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"][..]),
        ],
        prop_oneof![
            4 => Just("/hooks"),
            1 => proptest::sample::select(&["/hooks?x=1", "/hooks/", "/", "/other", "/HOOKS"][..]),
        ],
        opt_text(&["push", "pull_request", "ping", "issues", "", " ", "Push"]),
        opt_text(&["72d3162e-cc78-11e3-81ab-4c9367dc0958", "", "  "]),
        opt_text(&[
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/vnd.github+json",
            "text/plain",
            "application/",
            "application/+json",
        ]),
        opt_text(&["0", "5", "4097", "99999999999999999999999"]),
        sig_strategy(),
        sig_strategy(),
        body_strategy(),
    )
        .prop_map(
            |(allow_sha1, method, path, event, guid, content_type, content_length, sha256, sha1, body)| {
                HttpCase {
                    allow_sha1,
                    method,
                    path,
                    event,
                    guid,
                    content_type,
                    content_length,
                    sha256,
                    sha1,
                    body,
                }
            },
        )
}

fn visible(v: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(v).ok()?;
    (s.bytes().all(|b| (0x20..0x7f).contains(&b)) && !s.trim().is_empty()).then_some(s.trim())
}

#[test]
fn router_answers_only_documented_statuses() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let routers = [router(false), router(true)];
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let mut runner = proptest::test_runner::TestRunner::new(config(512));
    runner
        .run(&http_case(), |case| {
            let mut json_action = None;
            let mut is_json_object = false;
            let body: Vec<u8> = match &case.body {
                BodyKind::Raw(b) => b.clone(),
                BodyKind::Json(action, extra) => {
                    is_json_object = true;
                    json_action = *action;
                    let mut obj = serde_json::Map::new();
                    if let Some(a) = action {
                        obj.insert("action".into(), (*a).into());
                    }
                    obj.insert("extra".into(), extra.clone().into());
                    serde_json::to_vec(&obj).unwrap()
                }
                BodyKind::Form(payload, twice) => {
                    let mut s = tests::form([("payload", payload.as_slice())]);
                    if *twice {
                        s.push_str("&payload=%7B%7D");
                    }
                    s.into_bytes()
                }
            };
            let good256 = sign_sha256(SECRET, &body);
            let good1 = sign_sha1(SECRET, &body);
            let (h256, ok256) = sig_header(&case.sha256, &good256, &sign_sha256(b"other", &body));
            let (h1, ok1) = sig_header(&case.sha1, &good1, &sign_sha1(b"other", &body));
            let signed = match &h256 {
                Some(_) => ok256,
                None => case.allow_sha1 && ok1,
            };

            let mut request = Request::builder().method(case.method).uri(case.path);
            for (name, value) in [
                ("x-github-event", &case.event),
                ("x-github-delivery", &case.guid),
                ("content-type", &case.content_type),
                ("content-length", &case.content_length),
                ("x-hub-signature-256", &h256),
                ("x-hub-signature", &h1),
            ] {
                if let Some(v) = value {
                    let Ok(v) = HeaderValue::from_bytes(v) else {
                        return Ok(()); // not sendable over HTTP either
                    };
                    request = request.header(name, v);
                }
            }
            let request = request.body(axum::body::Body::from(body.clone())).unwrap();
            let router = routers[usize::from(case.allow_sha1)].clone();
            let (status, allow, text) = runtime.block_on(async {
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let allow = response.headers().get(http::header::ALLOW).cloned();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (status, allow, String::from_utf8_lossy(&bytes).into_owned())
            });
            seen.borrow_mut().insert(status.as_u16());

            prop_assert!(
                matches!(status.as_u16(), 200 | 400 | 404 | 405 | 413 | 415),
                "undocumented status {} {:?}",
                status,
                text
            );
            let hook_path = case.path == "/hooks" || case.path.starts_with("/hooks?");
            if !hook_path {
                prop_assert_eq!(status, StatusCode::NOT_FOUND);
                return Ok(());
            }
            if case.method != "POST" {
                prop_assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
                prop_assert_eq!(
                    allow.as_ref().map(HeaderValue::as_bytes),
                    Some(&b"POST"[..])
                );
                return Ok(());
            }
            let declared_too_large = case
                .content_length
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > LIMIT as u64);
            if declared_too_large {
                prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
                return Ok(());
            }
            if status.is_success() {
                prop_assert!(signed, "2xx without a valid signature: {:?}", text);
            }
            if !signed {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                let missing = h256.is_none() && (h1.is_none() || !case.allow_sha1);
                let want = if missing {
                    "Missing signature"
                } else {
                    "Wrong signature"
                };
                prop_assert_eq!(text, want);
                return Ok(());
            }
            // Signed and well-formed JSON: the most specific handler answers.
            let json_type = case.content_type.as_deref().is_some_and(|c| {
                [
                    &b"application/json"[..],
                    b"application/json; charset=utf-8",
                    b"application/vnd.github+json",
                ]
                .contains(&c)
            });
            if let (Some(event), Some(_)) = (
                case.event.as_deref().and_then(visible),
                case.guid.as_deref().and_then(visible),
            ) && json_type
                && is_json_object
            {
                let want = match (event, json_action) {
                    ("push", _) => "push".to_owned(),
                    ("pull_request", Some("opened")) => "pull_request.opened".to_owned(),
                    _ => format!("* {event}"),
                };
                prop_assert_eq!((status, text), (StatusCode::OK, want));
            }
            Ok(())
        })
        .unwrap();
    // The generator is not vacuous: every documented status was reached.
    assert_eq!(
        seen.into_inner().into_iter().collect::<Vec<_>>(),
        [200, 400, 404, 405, 413, 415]
    );
}

// ---------------------------------------------------------------------------
// Allow-lists and /meta

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    // Few distinct high bits, so that nets and addresses overlap often.
    (0u32..8, any::<u32>()).prop_map(|(hi, lo)| Ipv4Addr::from((hi << 29) | (lo >> 3)))
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        (0u128..8, any::<u128>()).prop_map(|(hi, lo)| Ipv6Addr::from((hi << 125) | (lo >> 3))),
        // IPv4-mapped, and next to the mapped range.
        ipv4().prop_map(|v4| v4.to_ipv6_mapped()),
        (any::<u32>(), 0xfffeu128..=0x1_0000)
            .prop_map(|(lo, mid)| Ipv6Addr::from((mid << 32) | u128::from(lo))),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![ipv4().prop_map(IpAddr::V4), ipv6().prop_map(IpAddr::V6)]
}

fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (ipv4(), 0u8..=32)
            .prop_map(|(a, p)| IpNet::V4(Ipv4Net::new(a, p).expect("valid by construction"))),
        (ipv6(), 0u8..=128)
            .prop_map(|(a, p)| IpNet::V6(Ipv6Net::new(a, p).expect("valid by construction"))),
        // IPv6 nets inside the IPv4-mapped range (stored as IPv4).
        (ipv4(), 96u8..=128).prop_map(|(a, p)| IpNet::V6(
            Ipv6Net::new(a.to_ipv6_mapped(), p).expect("valid by construction")
        )),
    ]
}

/// The documented semantics of `AllowList`, naively: an IPv4-mapped IPv6 address is
/// its IPv4 address, and an IPv6 net contains an IPv4 address when it contains the
/// address's mapped form.
fn naive_contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| {
        n.contains(&ip)
            || match (n, ip) {
                (IpNet::V6(v6), IpAddr::V4(v4)) => v6.contains(&v4.to_ipv6_mapped()),
                _ => false,
            }
    })
}

proptest! {
    #![proptest_config(config(1024))]

    /// The merged, binary-searched list answers like a linear scan over the nets.
    #[test]
    fn allow_list_agrees_with_a_linear_scan(
        nets in proptest::collection::vec(net(), 0..8),
        ips in proptest::collection::vec(ip(), 1..16),
    ) {
        let list = hookserver::__private::allow_list(nets.to_vec());
        for ip in ips.into_iter().chain(nets.iter().flat_map(|n| [n.network(), n.broadcast()])) {
            prop_assert_eq!(list(ip), naive_contains(&nets, ip), "{}", ip);
        }
    }

    /// For addresses and nets outside the IPv4-mapped range, plainly
    /// `nets.iter().any(|n| n.contains(&ip))`.
    #[test]
    fn allow_list_is_plain_containment_outside_the_mapped_range(
        nets in proptest::collection::vec(
            prop_oneof![
                (ipv4(), 0u8..=32).prop_map(|(a, p)| IpNet::V4(Ipv4Net::new(a, p).unwrap())),
                (ipv6(), 0u8..=128).prop_map(|(a, p)| IpNet::V6(Ipv6Net::new(a, p).unwrap())),
            ].prop_filter("overlaps ::ffff:0:0/96", |n| match n {
                IpNet::V6(n) => {
                    let mapped: Ipv6Net = "::ffff:0:0/96".parse().unwrap();
                    !n.contains(&mapped.network()) && !mapped.contains(&n.network())
                }
                IpNet::V4(_) => true,
            }),
            0..8,
        ),
        ips in proptest::collection::vec(
            ip().prop_filter("mapped", |ip| ip.to_canonical() == *ip),
            1..16,
        ),
    ) {
        let list = hookserver::__private::allow_list(nets.to_vec());
        for ip in ips {
            prop_assert_eq!(list(ip), nets.iter().any(|n| n.contains(&ip)), "{}", ip);
        }
    }

    /// `parse_meta_hooks` never panics; `Ok` only when every `hooks` entry is a CIDR
    /// or an address, and then the list holds every entry's network address.
    #[test]
    fn parse_meta_hooks_never_panics_and_keeps_every_entry(
        raw in proptest::collection::vec(any::<u8>(), 0..64),
        entries in proptest::collection::vec(
            prop_oneof![
                net().prop_map(|n| n.to_string()),
                ip().prop_map(|a| format!(" {a} ")),
                "[0-9a-f:./ ]{0,20}",
            ],
            0..6,
        ),
        use_raw in any::<bool>(),
    ) {
        let data = if use_raw {
            raw
        } else {
            serde_json::to_vec(&serde_json::json!({ "hooks": entries, "web": [] })).unwrap()
        };
        let result = hookserver::__private::parse_meta_hooks(&data);
        if use_raw {
            return Ok(()); // arbitrary bytes: not panicking is the property
        }
        let parsed: Option<Vec<IpNet>> = entries
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .ok()
                    .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        match (result, parsed) {
            (Ok(list), Some(nets)) => {
                prop_assert!(!nets.is_empty());
                for n in &nets {
                    prop_assert!(list(n.network()), "{}", n);
                }
            }
            (Err(_), Some(nets)) => prop_assert!(nets.is_empty(), "rejected {:?}", entries),
            (Ok(_), None) => prop_assert!(false, "accepted {:?}", entries),
            (Err(_), None) => {}
        }
    }
}

/// Found while writing the properties above: an IPv6 net wider than the
/// IPv4-mapped range (`::ffff:0:0/95`, `::/0`) contained no mapped address, while
/// its subnet `::ffff:0:0/96` contained them all: widening an allow-list removed
/// addresses from it.
#[test]
fn regression_wider_net_contains_what_the_narrower_does() {
    let mapped = "::ffff:1.2.3.4".parse::<IpAddr>().unwrap();
    let narrow =
        hookserver::__private::allow_list(["::ffff:0:0/96".parse::<IpNet>().unwrap()].to_vec());
    assert!(narrow(mapped));
    for wide in ["::ffff:0:0/95", "::/0"] {
        let list = hookserver::__private::allow_list([wide.parse::<IpNet>().unwrap()].to_vec());
        assert!(list(mapped), "{wide} does not contain {mapped}");
    }
}

// ---------------------------------------------------------------------------
// Delivery parsing

fn header_list() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(
                &[
                    "x-github-event",
                    "x-github-delivery",
                    "content-type",
                    "x-github-hook-id",
                    "user-agent",
                ][..],
            ),
            prop_oneof![
                proptest::sample::select(
                    &[
                        "push",
                        "application/json",
                        "application/x-www-form-urlencoded",
                        "application/vnd.github+json",
                        "text/plain",
                        " ",
                    ][..]
                )
                .prop_map(|s| s.as_bytes().to_vec()),
                proptest::collection::vec(any::<u8>(), 0..12),
            ],
        ),
        0..6,
    )
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        (proptest::option::of(".{0,8}"), ".{0,8}").prop_map(|(action, other)| {
            let mut obj = serde_json::Map::new();
            obj.insert("zen".into(), other.into());
            if let Some(a) = action {
                obj.insert("action".into(), a.into());
            }
            serde_json::to_vec(&obj).expect("valid by construction")
        }),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// `parse_delivery` never panics; a missing event header is the first error;
    /// `Ok` only with both GitHub headers and a JSON or form type; the action is the
    /// top-level string `action` of a JSON object.
    #[test]
    fn parse_delivery_never_panics(headers in header_list(), body in json_body()) {
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            let Ok(value) = HeaderValue::from_bytes(value) else {
                return Ok(());
            };
            map.append(HeaderName::from_static(name), value);
        }
        let event = map.get("x-github-event").cloned();
        let guid = map.get("x-github-delivery").cloned();
        let content_type = map.get("content-type").cloned();
        let result = hookserver::__private::parse_delivery(map, Bytes::from(body.clone()));

        if event.is_none() {
            prop_assert_eq!(
                &result,
                &Err((400, "Missing header: X-GitHub-Event".to_owned()))
            );
        }
        if let Ok(action) = &result {
            let present = |v: &Option<HeaderValue>| {
                v.as_ref()
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|s| !s.trim().is_empty())
            };
            prop_assert!(present(&event) && present(&guid));
            let ct = content_type.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
            prop_assert!(ct.starts_with("application/"), "{}", ct);
            if ct.starts_with("application/json")
                && let Ok(serde_json::Value::Object(obj)) =
                    serde_json::from_slice::<serde_json::Value>(&body)
            {
                prop_assert_eq!(
                    action.as_deref(),
                    obj.get("action").and_then(serde_json::Value::as_str)
                );
            }
        }
    }
}
