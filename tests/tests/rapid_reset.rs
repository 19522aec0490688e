//! An HTTP/2 rapid-reset flood (HEADERS then RST_STREAM, thousands of times) costs
//! a bounded number of log lines, and the server keeps answering. Its own file:
//! it installs the process's log subscriber.

use hookserver::{Config, Hooks, Server};
use std::time::Duration;
use tests::{
    SECRET, TestServer, capture_logs, client, delivery,
    frames::{self, END_HEADERS, END_STREAM, PREFACE},
    send,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const CONNECTIONS: usize = 8;
const RESETS_PER_CONNECTION: u32 = 2000;

/// Opens a connection and resets `RESETS_PER_CONNECTION` streams on it as fast as
/// it can write, then reads until the server closes it.
async fn flood(addr: String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let block = frames::get("/hooks");
    let mut burst = Vec::new();
    burst.extend_from_slice(PREFACE);
    burst.extend_from_slice(&frames::settings());
    for i in 0..RESETS_PER_CONNECTION {
        let id = 2 * i + 1;
        burst.extend(frames::headers(id, END_HEADERS | END_STREAM, &block));
        burst.extend(frames::rst_stream(id));
    }
    // The server may close the connection before the burst is written.
    let _ = stream.write_all(&burst).await;
    let mut sink = vec![0; 64 * 1024];
    let read_all = async { while let Ok(1..) = stream.read(&mut sink).await {} };
    tokio::time::timeout(Duration::from_secs(60), read_all)
        .await
        .expect("the server closed the flooding connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_logs_a_bounded_number_of_lines_and_the_server_keeps_answering() {
    let logs = capture_logs(tracing::Level::WARN);
    let hooks =
        Hooks::new(Config::new().secret(SECRET).validate_ip(false)).on("ping", || async { "pong" });
    let server = Server::new().header_timeout(Duration::from_secs(5));
    let s = TestServer::start_with(server, hooks.router("/hooks")).await;
    let floods: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(flood(s.addr())))
        .collect();
    for task in floods {
        task.await.unwrap();
    }
    assert_eq!(
        send(delivery(&client(), &s.url(), "ping", "{}")).await,
        (200, "pong".into())
    );
    drop(s);
    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    // h2 logs once per connection it closes with GOAWAY, hookserver once per
    // interval: nothing grows with the 16,000 resets.
    assert!(
        warnings.len() <= 2 * CONNECTIONS,
        "{} lines for {CONNECTIONS} connections:\n{text}",
        warnings.len()
    );
    let ours: Vec<&&str> = warnings
        .iter()
        .filter(|l| l.contains("too many streams reset"))
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one hookserver line, the rest counted:\n{text}"
    );
}
