//! The buffered-bytes budget holds under the attack it exists for: many unsigned
//! bodies, each almost at the body limit, sent and then stalled so that none is
//! ever complete. Memory is measured as this process's peak RSS, so this file
//! holds one test and nothing else runs beside it.

use hookserver::Hooks;
use std::time::Duration;
use tests::{TestServer, config};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const MIB: usize = 1024 * 1024;
const BODY: usize = 8 * MIB;
const BUDGET: usize = 32 * MIB;
const CONNECTIONS: usize = 20;

/// `VmRSS` or `VmHWM` (peak) of this process, in bytes.
fn memory(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// Sends the head and all but the last byte of an unsigned body, then stalls;
/// returns the stream and whatever the server answered in the meantime.
async fn stalled_body(addr: String, chunk: &'static [u8]) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /hooks HTTP/1.1\r\nhost: x\r\nx-github-event: push\r\n\
         x-github-delivery: flood\r\ncontent-type: application/json\r\n\
         content-length: {BODY}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut left = BODY - 1;
    let writing = async {
        while left > 0 {
            let n = left.min(chunk.len());
            if stream.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            left -= n;
        }
    };
    // A server that refuses stops reading: the write then waits, and that is fine.
    let _ = tokio::time::timeout(Duration::from_secs(10), writing).await;
    let mut answer = vec![0u8; 512];
    let answer =
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut answer)).await {
            Ok(Ok(n)) => String::from_utf8_lossy(&answer[..n]).into_owned(),
            _ => String::new(),
        };
    (stream, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_unsigned_bodies_stay_within_the_budget() {
    let hooks = Hooks::new(
        config()
            .body_limit(BODY)
            .max_buffered_bytes(BUDGET)
            .body_timeout(Duration::from_secs(60)),
    )
    .on("push", || async { "never reached" });
    let server = TestServer::hooks(hooks).await;
    static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
    let before = memory("VmRSS:");
    let attackers: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(stalled_body(server.addr(), &CHUNK)))
        .collect();
    let mut streams = Vec::new();
    for attacker in attackers {
        streams.push(attacker.await.expect("attacker task"));
    }
    let grown = memory("VmHWM:").saturating_sub(before);
    eprintln!("peak RSS grew by {:.1} MiB", grown as f64 / MIB as f64);
    // Those still waiting for room are refused within the 2 s wait (a refusal frees
    // room that another may take and wait on again, hence the longer deadline).
    let mut refused = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for (stream, answer) in &mut streams {
        if answer.is_empty() {
            let mut buf = vec![0u8; 512];
            if let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                *answer = String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("retry-after: 5"), "{answer}");
            refused += 1;
        }
    }
    // Without the budget the server holds every body: 20 × 8 MiB = 160 MiB. With
    // it, the budget plus per-connection buffers and the chunk being copied.
    assert!(
        grown < BUDGET + 48 * MIB,
        "peak RSS grew by {} MiB with a {} MiB budget",
        grown / MIB,
        BUDGET / MIB
    );
    // The budget fits 4 whole bodies, and a fifth can hold what is left of it:
    // the rest were refused, not queued forever.
    assert!(
        refused >= CONNECTIONS - BUDGET / BODY - 1,
        "{refused} of {CONNECTIONS} refused"
    );
    drop(streams);
}
