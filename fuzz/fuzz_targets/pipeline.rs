//! The whole request pipeline in-process: one router, built once, called with
//! `tower::ServiceExt::oneshot` on requests assembled from the fuzz data.
//!
//! Invariants:
//! - never panics;
//! - the status is one of 200, 400, 404, 405, 413, 415 (no 500: the handlers do not
//!   panic; no 503/403: the IP check is off; no 408: the body is in memory);
//! - a non-POST to the hook path is 405 with `Allow: POST`; another path is 404;
//! - a declared `Content-Length` above the limit is 413 (before the signature);
//! - 2xx only when the request carried a valid signature for the exact body;
//! - a correctly signed, well-formed JSON delivery reaches the expected handler.
#![no_main]

use arbitrary::Arbitrary;
use axum::body::Body;
use hookserver::{Config, Delivery, Hooks, signature};
use http::{HeaderValue, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tower::ServiceExt;

const SECRET: &[u8] = b"fuzz-secret";
const LIMIT: usize = 64 * 1024;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hooks = Hooks::new(
            Config::new()
                .secret("fuzz-secret")
                .validate_ip(false)
                .allow_sha1(true)
                .body_limit(LIMIT),
        )
        .on("push", |_: serde_json::Value| async { "push" })
        .on("pull_request.opened", |_: serde_json::Value| async {
            "pull_request.opened"
        })
        .on("*", |d: Delivery| async move { format!("* {}", d.event()) });
        Fixture {
            runtime,
            router: hooks.router("/hooks"),
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Sig<'a> {
    Absent,
    Correct,
    CorrectUpper,
    /// The correct one with one hex digit changed.
    Corrupted(u8),
    /// Signed with another secret.
    OtherSecret,
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum Text<'a> {
    Absent,
    Fixed(u8),
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum BodyKind<'a> {
    Raw(&'a [u8]),
    /// A JSON object with the given event-ish fields.
    Json {
        action: Option<u8>,
        extra: &'a str,
    },
    /// `payload=<raw>` form encoding of the bytes.
    Form {
        payload: &'a [u8],
        twice: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    path: u8,
    event: Text<'a>,
    guid: Text<'a>,
    content_type: Text<'a>,
    content_length: Text<'a>,
    sha256: Sig<'a>,
    sha1: Sig<'a>,
    extra_header: Option<(u8, &'a [u8])>,
    body: BodyKind<'a>,
}

const METHODS: &[&str] = &["POST", "GET", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"];
const PATHS: &[&str] = &["/hooks", "/hooks?x=1", "/hooks/", "/", "/other", "/HOOKS"];
const EVENTS: &[&str] = &["push", "pull_request", "ping", "issues", "", " ", "Push"];
const GUIDS: &[&str] = &["72d3162e-cc78-11e3-81ab-4c9367dc0958", "", "  ", "x"];
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/vnd.github+json",
    "APPLICATION/JSON",
    "text/plain",
    "application/",
    "/json",
    "application/+json",
    "application/é+json",
];
const ACTIONS: &[&str] = &["opened", "closed", "", "OPENED"];
const EXTRA_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "user-agent",
    "x-github-hook-id",
    "x-github-hook-installation-target-type",
    "transfer-encoding",
];

fn pick<'s>(list: &[&'s str], i: u8) -> &'s str {
    list[usize::from(i) % list.len()]
}

fn text<'a>(t: &Text<'a>, list: &[&'a str]) -> Option<Vec<u8>> {
    match t {
        Text::Absent => None,
        Text::Fixed(i) => Some(pick(list, *i).as_bytes().to_vec()),
        Text::Raw(b) => Some(b.to_vec()),
    }
}

/// The header value, and whether it is a valid signature of `body`.
fn sig(kind: &Sig<'_>, good: &str, other: &str) -> (Option<Vec<u8>>, bool) {
    match kind {
        Sig::Absent => (None, false),
        Sig::Correct => (Some(good.as_bytes().to_vec()), true),
        Sig::CorrectUpper => {
            let (prefix, hex) = good.split_at(good.find('=').unwrap() + 1);
            (
                Some(format!("{prefix}{}", hex.to_ascii_uppercase()).into_bytes()),
                true,
            )
        }
        Sig::Corrupted(at) => {
            let mut v = good.as_bytes().to_vec();
            let start = good.find('=').unwrap() + 1;
            let i = start + usize::from(*at) % (v.len() - start);
            v[i] = if v[i] == b'0' { b'1' } else { b'0' };
            (Some(v), false)
        }
        Sig::OtherSecret => (Some(other.as_bytes().to_vec()), other == good),
        // Raw bytes verify only if they happen to equal the signature (any case).
        Sig::Raw(b) => {
            let (prefix, hex) = good.split_at(good.find('=').unwrap() + 1);
            let ok = b
                .strip_prefix(prefix.as_bytes())
                .is_some_and(|rest| rest.eq_ignore_ascii_case(hex.as_bytes()));
            (Some(b.to_vec()), ok)
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let fx = fixture();

    let mut known_json = false;
    let mut action = None;
    let body: Vec<u8> = match &input.body {
        BodyKind::Raw(b) => b.to_vec(),
        BodyKind::Json { action: a, extra } => {
            known_json = true;
            let mut obj = serde_json::Map::new();
            if let Some(a) = a {
                action = Some(pick(ACTIONS, *a));
                obj.insert("action".into(), pick(ACTIONS, *a).into());
            }
            obj.insert("extra".into(), (*extra).into());
            serde_json::to_vec(&obj).unwrap()
        }
        BodyKind::Form { payload, twice } => {
            let mut s = form_urlencoded::Serializer::new(String::new());
            s.append_pair("payload", &String::from_utf8_lossy(payload));
            if *twice {
                s.append_pair("payload", "{}");
            }
            s.finish().into_bytes()
        }
    };

    let method = pick(METHODS, input.method);
    let path = pick(PATHS, input.path);
    let mut builder = Request::builder().method(method).uri(path);
    let mut valid_headers = true;
    let mut add = |name: &str, value: Option<Vec<u8>>| {
        if let Some(v) = value {
            match HeaderValue::from_bytes(&v) {
                Ok(v) => builder = std::mem::take(&mut builder).header(name, v),
                Err(_) => valid_headers = false,
            }
        }
    };
    let event = text(&input.event, EVENTS);
    let guid = text(&input.guid, GUIDS);
    let content_type = text(&input.content_type, CONTENT_TYPES);
    let content_length = match &input.content_length {
        Text::Absent => None,
        Text::Fixed(0) => Some(body.len().to_string().into_bytes()),
        Text::Fixed(1) => Some((LIMIT + 1).to_string().into_bytes()),
        Text::Fixed(2) => Some(b"99999999999999999999999".to_vec()),
        Text::Fixed(i) => Some(i.to_string().into_bytes()),
        Text::Raw(b) => Some(b.to_vec()),
    };
    let good256 = signature::sign_sha256(SECRET, &body);
    let good1 = signature::sign_sha1(SECRET, &body);
    let (h256, ok256) = sig(
        &input.sha256,
        &good256,
        &signature::sign_sha256(b"other", &body),
    );
    let (h1, ok1) = sig(&input.sha1, &good1, &signature::sign_sha1(b"other", &body));
    let signed = match &h256 {
        Some(_) => ok256,
        None => ok1, // allow_sha1 is on
    };

    add("x-github-event", event.clone());
    add("x-github-delivery", guid.clone());
    add("content-type", content_type.clone());
    add("content-length", content_length.clone());
    add("x-hub-signature-256", h256);
    add("x-hub-signature", h1);
    if let Some((i, v)) = input.extra_header {
        add(pick(EXTRA_HEADERS, i), Some(v.to_vec()));
    }
    if !valid_headers {
        return;
    }
    let Ok(request) = builder.body(Body::from(body.clone())) else {
        return;
    };

    let response = fx
        .runtime
        .block_on(fx.router.clone().oneshot(request))
        .unwrap();
    let status = response.status();
    let bytes = fx
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .unwrap();
    let text_body = String::from_utf8_lossy(&bytes);
    let ctx = || format!("{method} {path} -> {status} {text_body:?}");

    assert!(
        matches!(status.as_u16(), 200 | 400 | 404 | 405 | 413 | 415),
        "undocumented status: {}",
        ctx()
    );
    let hook_path = path == "/hooks" || path.starts_with("/hooks?");
    if !hook_path {
        assert_eq!(status, StatusCode::NOT_FOUND, "{}", ctx());
        return;
    }
    if method != "POST" {
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{}", ctx());
        return;
    }
    let declared_too_large = content_length
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > LIMIT as u64);
    if declared_too_large || body.len() > LIMIT {
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", ctx());
        return;
    }
    if status.is_success() {
        assert!(signed, "2xx without a valid signature: {}", ctx());
    }
    if !signed {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", ctx());
        return;
    }
    // Signed and well-formed: must reach the expected handler.
    let event = event.and_then(|e| String::from_utf8(e).ok());
    let guid_ok = guid
        .and_then(|g| String::from_utf8(g).ok())
        .is_some_and(|g| !g.trim().is_empty() && g.bytes().all(|b| (0x20..0x7f).contains(&b)));
    let json_type = content_type.as_deref().is_some_and(|c| {
        [
            &b"application/json"[..],
            b"application/json; charset=utf-8",
            b"application/vnd.github+json",
            b"APPLICATION/JSON",
        ]
        .contains(&c)
    });
    if let Some(event) =
        event.filter(|e| !e.trim().is_empty() && e.bytes().all(|b| (0x20..0x7f).contains(&b)))
        && guid_ok
        && json_type
        && known_json
    {
        let event = event.trim();
        let want = match (event, action) {
            ("push", _) => "push".to_owned(),
            ("pull_request", Some("opened")) => "pull_request.opened".to_owned(),
            _ => format!("* {event}"),
        };
        assert_eq!((status, &*text_body), (StatusCode::OK, &*want), "{}", ctx());
    }
});
