//! One delivery through the router in-process (`tower::ServiceExt::oneshot`), with
//! its cost split so a regression shows where it is:
//!
//! - `parse`: header checks, content type and the payload scan, no signature;
//! - `router, unsigned`: the whole router with signature checking off;
//! - `router, signed`: the whole pipeline, as in production (IP check aside);
//!
//! each with a handler that takes a typed payload (only what it reads) and one
//! that takes the whole `serde_json::Value`; and `floor`: a bare axum handler doing
//! only HMAC + `serde_json::Value` (the load kit's axum floor), through the same
//! `oneshot`, so the difference is hookserver's own cost.
//!
//! Run with: `cargo bench -p hookserver --bench delivery`

use axum::body::Body;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookserver::{Config, Delivery, Hooks, Payload, signature::sign_sha256};
use http::{HeaderMap, HeaderValue, Request};
use serde::{Deserialize, de::IgnoredAny};
use std::hint::black_box;
use tower::ServiceExt;

mod payloads;

#[derive(Deserialize)]
struct PushEvent {
    r#ref: String,
    commits: Vec<IgnoredAny>,
}

fn router(signed: bool) -> axum::Router {
    let config = Config::new()
        .secret(payloads::SECRET)
        .validate_signature(signed)
        .validate_ip(false);
    Hooks::new(config)
        .on("ping", |_: serde_json::Value| async { "pong" })
        .on(
            "push",
            |Payload(p): Payload<PushEvent>, d: Delivery| async move {
                format!("{} {} {}", d.guid(), p.r#ref, p.commits.len())
            },
        )
        .on("value", |v: serde_json::Value| async move {
            v["commits"].as_array().map_or(0, Vec::len).to_string()
        })
        .router("/hooks")
}

/// The load kit's minimal receiver: HMAC-SHA256 + `serde_json::Value`, nothing else.
fn floor() -> axum::Router {
    use hmac::{Hmac, KeyInit, Mac};
    let keyed =
        std::sync::Arc::new(Hmac::<sha2::Sha256>::new_from_slice(payloads::SECRET).expect("key"));
    let handler = move |headers: HeaderMap, body: bytes::Bytes| {
        let keyed = keyed.clone();
        async move {
            let sig = headers
                .get("x-hub-signature-256")
                .expect("signed")
                .as_bytes();
            let mut expected = [0u8; 32];
            const_hex::decode_to_slice(&sig[7..], &mut expected).expect("hex");
            let mut mac = (*keyed).clone();
            mac.update(&body);
            mac.verify_slice(&expected).expect("valid");
            let payload: serde_json::Value = serde_json::from_slice(&body).expect("json");
            black_box(payload.get("zen"));
            "pong"
        }
    };
    axum::Router::new().route("/hooks", axum::routing::post(handler))
}

fn request(event: &str, body: &[u8]) -> Request<Body> {
    Request::post("/hooks")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("x-hub-signature-256", sign_sha256(payloads::SECRET, body))
        .body(Body::from(body.to_vec()))
        .expect("request")
}

fn delivery(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("delivery");
    for (name, body) in payloads::sizes() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-github-event", HeaderValue::from_static("push"));
        headers.insert("x-github-delivery", HeaderValue::from_static("72d3162e"));
        let bytes = bytes::Bytes::from(body.clone());
        group.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| {
                hookserver::__private::parse_delivery(headers.clone(), black_box(bytes.clone()))
                    .expect("valid")
            })
        });
        let floor = floor();
        group.bench_function(format!("floor/{name}"), |b| {
            b.to_async(&runtime).iter_batched(
                || request("ping", &body),
                |request| {
                    let app = floor.clone();
                    async move { app.oneshot(request).await.expect("infallible") }
                },
                criterion::BatchSize::SmallInput,
            )
        });
        let events: &[&str] = if name.starts_with("ping") {
            &["ping"]
        } else {
            &["push", "value"]
        };
        for &event in events {
            for (label, signed) in [("unsigned", false), ("signed", true)] {
                let app = router(signed);
                group.bench_function(format!("router {label}/{event}/{name}"), |b| {
                    b.to_async(&runtime).iter_batched(
                        || request(event, &body),
                        |request| {
                            let app = app.clone();
                            async move {
                                let response = app.oneshot(request).await.expect("infallible");
                                assert_eq!(response.status(), 200);
                                response
                            }
                        },
                        criterion::BatchSize::SmallInput,
                    )
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, delivery);
criterion_main!(benches);
