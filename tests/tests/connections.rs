//! Every connection state has a deadline, and the number of connections is capped:
//! raw sockets and hand-built HTTP/2 frames play the clients that never finish.

use hookserver::{Config, Hooks, Server};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tests::{
    SECRET, TestServer, client, delivery,
    frames::{self, END_HEADERS, END_STREAM, PREFACE, kind, read_frame},
    send,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::Notify,
};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How late a close may come on a busy machine and still pass: generous, as a
/// connection that is never closed fails anyway.
const SLACK: Duration = Duration::from_secs(5);

fn hooks() -> Hooks {
    Hooks::new(Config::new().secret(SECRET).validate_ip(false)).on("ping", || async { "pong" })
}

/// The hooks at `/hooks`, a 1 MiB answer at `/big`, and the same streamed in
/// 16 KiB chunks at `/stream`.
fn app() -> axum::Router {
    let stream = || async {
        let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 16 * 1024]));
        axum::body::Body::from_stream(futures_util::stream::iter(chunks))
    };
    hooks()
        .router("/hooks")
        .route("/big", axum::routing::get(|| async { vec![b'x'; 1 << 20] }))
        .route("/stream", axum::routing::get(stream))
}

async fn short_timeouts() -> TestServer {
    let server = Server::new()
        .header_timeout(HEADER_TIMEOUT)
        .write_timeout(WRITE_TIMEOUT);
    TestServer::start_with(server, app()).await
}

/// Reads until the server ends the connection (EOF or reset); returns the bytes.
async fn read_until_closed(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut buf = vec![0; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_all)
        .await
        .expect("the server closed the connection");
    total
}

/// The server closes `stream` no sooner than `deadline` after `since`, and not
/// much later.
async fn assert_closed_at(stream: &mut TcpStream, since: Instant, deadline: Duration) {
    read_until_closed(stream).await;
    let took = since.elapsed();
    assert!(
        took >= deadline - Duration::from_millis(100),
        "closed after {took:?}, before the {deadline:?} deadline"
    );
    assert!(took <= deadline + SLACK, "closed only after {took:?}");
}

async fn connect(s: &TestServer) -> (TcpStream, Instant) {
    let stream = TcpStream::connect(s.addr()).await.expect("connect");
    (stream, Instant::now())
}

/// The HTTP/2 preface, SETTINGS, and a GET of `path` on stream 1.
async fn http2_get(stream: &mut TcpStream, path: &str) {
    stream.write_all(PREFACE).await.expect("preface");
    stream
        .write_all(&frames::settings())
        .await
        .expect("settings");
    let headers = frames::headers(1, END_HEADERS | END_STREAM, &frames::get(path));
    stream.write_all(&headers).await.expect("headers");
}

async fn assert_still_serving(s: &TestServer) {
    assert_eq!(
        send(delivery(&client(), &s.url(), "ping", "{}")).await,
        (200, "pong".into())
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let s = short_timeouts().await;
    let (mut stream, since) = connect(&s).await;
    assert_closed_at(&mut stream, since, HEADER_TIMEOUT).await;
}

#[tokio::test]
async fn a_connection_that_sends_one_byte_is_closed_at_the_header_timeout() {
    let s = short_timeouts().await;
    let (mut stream, since) = connect(&s).await;
    // One byte ends a wait for the first byte, but not the protocol detection.
    stream.write_all(b"P").await.unwrap();
    assert_closed_at(&mut stream, since, HEADER_TIMEOUT).await;
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn half_an_http2_preface_is_closed_at_the_header_timeout() {
    let s = short_timeouts().await;
    let (mut stream, since) = connect(&s).await;
    stream.write_all(&PREFACE[..12]).await.unwrap();
    assert_closed_at(&mut stream, since, HEADER_TIMEOUT).await;
}

#[tokio::test]
async fn an_http2_connection_that_only_says_hello_is_closed_at_the_header_timeout() {
    let s = short_timeouts().await;
    let (mut stream, since) = connect(&s).await;
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(&frames::settings()).await.unwrap();
    // The server speaks HTTP/2 back (its SETTINGS first), then closes.
    let first = read_frame(&mut stream)
        .await
        .expect("a frame from the server");
    assert_eq!(first.kind, kind::SETTINGS);
    assert_closed_at(&mut stream, since, HEADER_TIMEOUT).await;
}

#[tokio::test]
async fn an_http2_header_block_never_finished_is_closed_at_the_header_timeout() {
    let s = short_timeouts().await;
    let (mut stream, since) = connect(&s).await;
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(&frames::settings()).await.unwrap();
    // No END_HEADERS, and no CONTINUATION will ever come.
    let block = frames::get("/hooks");
    stream
        .write_all(&frames::headers(1, END_STREAM, &block[..block.len() / 2]))
        .await
        .unwrap();
    assert_closed_at(&mut stream, since, HEADER_TIMEOUT).await;
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_at_the_header_timeout_after_its_answer() {
    let s = short_timeouts().await;
    let (mut stream, _) = connect(&s).await;
    http2_get(&mut stream, "/hooks").await;
    // Wait for the end of the answer (405: /hooks takes POST only).
    loop {
        let frame = read_frame(&mut stream).await.expect("the answer");
        if frame.stream == 1
            && matches!(frame.kind, kind::HEADERS | kind::DATA)
            && frame.flags & END_STREAM != 0
        {
            break;
        }
    }
    let answered = Instant::now();
    assert_closed_at(&mut stream, answered, HEADER_TIMEOUT).await;
}

#[tokio::test]
async fn http1_headers_never_finished_are_closed_at_the_header_timeout() {
    let s = short_timeouts().await;
    let (mut stream, since) = connect(&s).await;
    stream
        .write_all(b"POST /hooks HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: pi")
        .await
        .unwrap();
    assert_closed_at(&mut stream, since, HEADER_TIMEOUT).await;
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_at_the_header_timeout() {
    let s = short_timeouts().await;
    let (mut stream, _) = connect(&s).await;
    stream
        .write_all(b"GET /hooks HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 405"));
    let answered = Instant::now();
    assert_closed_at(&mut stream, answered, HEADER_TIMEOUT).await;
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_closed_at_the_write_timeout() {
    // A long header timeout, so that only the write timeout can close it.
    let server = Server::new()
        .header_timeout(Duration::from_secs(3600))
        .write_timeout(WRITE_TIMEOUT);
    let s = TestServer::start_with(server, app()).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(s.addr().parse().unwrap()).await.unwrap();
    const REQUESTS: usize = 32;
    let pipelined = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n".repeat(REQUESTS);
    stream.write_all(&pipelined).await.unwrap();
    // Read nothing until well past the deadline: the server's writes are stuck.
    tokio::time::sleep(WRITE_TIMEOUT + SLACK).await;
    let received = read_until_closed(&mut stream).await;
    // Had the server kept the connection, reading would have unblocked it and all
    // 32 MiB would have come; what arrives is what the kernel buffers held.
    assert!(
        received < REQUESTS * (1 << 20) / 2,
        "{received} bytes: the stuck connection was not closed"
    );
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn an_http2_client_that_never_reopens_its_window_is_closed_at_the_write_timeout() {
    let server = Server::new()
        .header_timeout(Duration::from_secs(3600))
        .write_timeout(WRITE_TIMEOUT);
    let s = TestServer::start_with(server, app()).await;
    let (mut stream, _) = connect(&s).await;
    http2_get(&mut stream, "/stream").await;
    let asked = Instant::now();
    // Read all the server sends, so its socket never blocks, and never send a
    // WINDOW_UPDATE: the streamed answer stops at the initial 64 KiB window. (An
    // answer in one chunk is handed to h2 at once: it is then idle, and closed at
    // the header timeout.)
    let mut data = 0;
    let read_all = async {
        while let Some(frame) = read_frame(&mut stream).await {
            if frame.kind == kind::DATA {
                data += frame.payload.len();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_all)
        .await
        .expect("the server closed the connection");
    let took = asked.elapsed();
    assert!(
        (WRITE_TIMEOUT - Duration::from_millis(100)..WRITE_TIMEOUT + SLACK).contains(&took),
        "closed after {took:?}"
    );
    assert!((1..=65_535).contains(&data), "{data} bytes of the answer");
}

/// The soft limit on open files, from `/proc` (Linux); `None` elsewhere.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_cap_are_evicted_and_deliveries_still_served() {
    const CAP: usize = 50;
    // Both ends of every connection live in this process: keep well inside its limit.
    let attackers = open_files_limit()
        .map_or(1000, |limit| limit.saturating_sub(300) / 2)
        .min(1000);
    assert!(attackers > 2 * CAP, "raise `ulimit -n` to run this test");
    // A long header timeout, so that only the cap can close the attackers.
    let server = Server::new()
        .header_timeout(Duration::from_secs(3600))
        .max_connections(CAP);
    let s = TestServer::start_with(server, app()).await;
    let mut idle = Vec::with_capacity(attackers);
    for _ in 0..attackers {
        idle.push(TcpStream::connect(s.addr()).await.expect("connect"));
    }
    let deliveries: Vec<_> = (0..20)
        .map(|_| {
            let url = s.url();
            tokio::spawn(async move { send(delivery(&client(), &url, "ping", "{}")).await })
        })
        .collect();
    for task in deliveries {
        assert_eq!(task.await.unwrap(), (200, "pong".into()));
    }
    // The attackers the server still holds do not answer a read: at most the cap.
    let still_open = futures_util::future::join_all(idle.iter_mut().map(|stream| async move {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut byte)).await;
        read.is_err() // timed out: still open
    }))
    .await
    .into_iter()
    .filter(|open| *open)
    .count();
    assert!(
        (1..=CAP).contains(&still_open),
        "{still_open} of {attackers} idle connections still open with a cap of {CAP}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_with_every_connection_busy_a_new_one_is_refused_at_once() {
    const CAP: usize = 2;
    let entered = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let hooks = {
        let (entered, all_in, release) = (entered.clone(), all_in.clone(), release.clone());
        Hooks::new(Config::new().secret(SECRET).validate_ip(false)).on("push", move || {
            let (entered, all_in, release) = (entered.clone(), all_in.clone(), release.clone());
            async move {
                let notified = release.notified();
                if entered.fetch_add(1, Ordering::SeqCst) + 1 == CAP {
                    all_in.notify_one();
                }
                notified.await;
                "done"
            }
        })
    };
    let server = Server::new()
        .header_timeout(Duration::from_secs(3600))
        .max_connections(CAP);
    let s = TestServer::start_with(server, hooks.router("/hooks")).await;
    let busy: Vec<_> = (0..CAP)
        .map(|_| {
            let url = s.url();
            tokio::spawn(async move { send(delivery(&client(), &url, "push", "{}")).await })
        })
        .collect();
    all_in.notified().await;
    let (mut refused, since) = connect(&s).await;
    read_until_closed(&mut refused).await;
    assert!(
        since.elapsed() < SLACK,
        "refused after {:?}",
        since.elapsed()
    );
    // The busy connections were not the ones to go.
    release.notify_waiters();
    for task in busy {
        assert_eq!(task.await.unwrap(), (200, "done".into()));
    }
}
