//! Decoding the headers stored in a journal row, which a worker reads back before
//! it runs a stored delivery: a damaged row must be an error, never a panic.
//!
//! Invariants:
//! - never panics;
//! - what decodes, once re-encoded, decodes to the same kept headers (encoding
//!   keeps only `X-GitHub-*`, `User-Agent` and `Content-Type`), and re-encoding
//!   that is stable byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|stored: &[u8]| {
    let Ok(headers) = hookserver::__private::decode_stored_headers(stored) else {
        return;
    };
    let encoded = hookserver::__private::encode_stored_headers(&headers);
    let again = hookserver::__private::decode_stored_headers(&encoded)
        .expect("what hookserver encodes, it decodes");
    for (name, value) in &again {
        assert!(headers.get_all(name).iter().any(|v| v == value), "{name}");
    }
    assert_eq!(hookserver::__private::encode_stored_headers(&again), encoded);
});
