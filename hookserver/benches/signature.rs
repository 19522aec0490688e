//! Signature verification against raw `hmac`: the verifier should cost what the
//! HMAC costs (pre-keyed state cloned per delivery, hex decoded on the stack).
//!
//! Run with: `cargo bench -p hookserver --bench signature`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use hookserver::signature::{Signatures, Verifier, sign_sha256};
use sha2::Sha256;
use std::hint::black_box;

mod payloads;

fn signature(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature");
    let keyed = Hmac::<Sha256>::new_from_slice(payloads::SECRET).expect("any key");
    let verifier = Verifier::new([payloads::SECRET], false);
    for (name, body) in payloads::sizes() {
        let header = sign_sha256(payloads::SECRET, &body);
        let mut expected = [0u8; 32];
        const_hex::decode_to_slice(&header[7..], &mut expected).expect("hex");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("raw hmac/{name}"), |b| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(black_box(&body));
                mac.verify_slice(black_box(&expected)).expect("valid")
            })
        });
        group.bench_function(format!("verifier/{name}"), |b| {
            b.iter(|| {
                verifier
                    .verify(
                        black_box(&body),
                        Signatures {
                            sha256: Some(black_box(header.as_bytes())),
                            sha1: None,
                        },
                    )
                    .expect("valid")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, signature);
criterion_main!(benches);
