//! `parse_meta_hooks` over arbitrary bytes (the body of a GitHub `/meta` answer).
//!
//! Invariants:
//! - never panics;
//! - `Ok` only if the `hooks` entries (read separately) are a non-empty list of
//!   strings that each parse, trimmed, as a CIDR or a bare address;
//! - when `Ok`, the list is non-empty and contains the network address of every entry;
//! - when serde_json's `Value` also reads the input, its `hooks` are the same list.
//!
//! The typed parse skips ignored fields without checking them as strictly as `Value`
//! does (invalid UTF-8, lone surrogate escapes such as `"\uD8AA"`): both were found
//! by this target (`regressions/meta/harness-*`) and are harmless, so `Value` is only
//! consulted when it parses.
#![no_main]

use hookserver::ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

#[derive(serde::Deserialize)]
struct Hooks {
    hooks: Vec<String>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(list) = hookserver::__private::parse_meta_hooks(data) else {
        return;
    };
    let hooks = serde_json::from_slice::<Hooks>(data)
        .expect("accepted, but the hooks list does not read")
        .hooks;
    assert!(!hooks.is_empty(), "accepted an empty hooks list");
    for entry in &hooks {
        let net = parse_net(entry).unwrap_or_else(|| panic!("accepted {entry:?}"));
        assert!(list(net.network()), "{net} not contained");
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        assert_eq!(value["hooks"], serde_json::json!(hooks));
    }
});
