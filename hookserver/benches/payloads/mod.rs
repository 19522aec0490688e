#![allow(dead_code)] // each bench uses a part
//! The payloads the benchmarks use: the repository's real samples, and a 1 MB push
//! built from the real one by repeating its commits (the shape of a big GitHub push).

pub(crate) const SECRET: &[u8] = b"bench-secret";

pub(crate) fn ping() -> Vec<u8> {
    include_bytes!("../../../examples/payloads/ping.json").to_vec()
}

pub(crate) fn push() -> Vec<u8> {
    include_bytes!("../../../examples/payloads/push.json").to_vec()
}

/// A push-shaped payload of about 1 MB.
pub(crate) fn push_1mb() -> Vec<u8> {
    let mut push: serde_json::Value = serde_json::from_slice(&push()).expect("sample is JSON");
    let commits = push["commits"].as_array().expect("commits").clone();
    let mut all = Vec::new();
    while serde_json::to_vec(&all).expect("json").len() < 1_000_000 {
        all.extend(commits.iter().cloned());
    }
    push["commits"] = serde_json::Value::Array(all);
    serde_json::to_vec(&push).expect("json")
}

pub(crate) fn sizes() -> [(&'static str, Vec<u8>); 3] {
    [
        ("ping 2KB", ping()),
        ("push 20KB", push()),
        ("push 1MB", push_1mb()),
    ]
}
