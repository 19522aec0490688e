//! Slow bodies, slow handlers and shutdown: the server stays healthy and loses
//! nothing it acknowledged.

use hookserver::{Hooks, Server};
use serde_json::Value;
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tests::{TestServer, client, config, delivery, send};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
};

// Connection deadlines (nothing sent, headers never finished, idle keep-alive) are
// tested in `connections.rs`.

#[tokio::test]
async fn a_client_that_trickles_its_body_gets_408() {
    let hooks =
        Hooks::new(config().body_timeout(Duration::from_secs(1))).on("ping", || async { "pong" });
    let s = TestServer::hooks(hooks).await;
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    stream
        .write_all(b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"zen\":")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.ends_with("Request body not received in time"),
        "{text}"
    );
}

#[tokio::test]
async fn a_handler_past_its_deadline_gets_503_and_the_server_stays_healthy() {
    let hooks = Hooks::new(config().handler_timeout(Duration::from_secs(1)))
        .on("push", || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        })
        .on("ping", || async { "pong" });
    let s = TestServer::hooks(hooks).await;
    let c = client();
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let (c, url) = (c.clone(), s.url());
            tokio::spawn(async move { send(delivery(&c, &url, "push", "{}")).await })
        })
        .collect();
    assert_eq!(
        send(delivery(&c, &s.url(), "ping", "{}")).await,
        (200, "pong".into()),
        "healthy while handlers hang"
    );
    for task in slow {
        assert_eq!(task.await.unwrap(), (503, "Hook handler timed out".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_every_delivery_in_flight() {
    let entered = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(Notify::new());
    let hooks = {
        let (entered, all_in) = (Arc::clone(&entered), Arc::clone(&all_in));
        Hooks::new(config()).on("push", move |_: Value| {
            let (entered, all_in) = (Arc::clone(&entered), Arc::clone(&all_in));
            async move {
                if entered.fetch_add(1, Ordering::SeqCst) + 1 == 10 {
                    all_in.notify_one();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }
        })
    };
    let s = TestServer::hooks(hooks).await;
    let url = s.url();
    let c = client();
    let in_flight: Vec<_> = (0..10)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { send(delivery(&c, &url, "push", "{}")).await })
        })
        .collect();
    all_in.notified().await; // every delivery is inside its handler
    // Bounded, so that a shutdown that waits forever fails instead of hanging CI.
    tokio::time::timeout(Duration::from_secs(30), s.shut_down())
        .await
        .expect("shutdown finished once the deliveries in flight were answered")
        .unwrap();
    for task in in_flight {
        assert_eq!(task.await.unwrap(), (200, "done".into()));
    }
    // And nothing is accepted any more.
    assert!(client().post(&url).send().await.is_err());
}

#[tokio::test]
async fn shutdown_is_bounded_by_the_grace_period() {
    let started = Arc::new(Notify::new());
    let hooks = {
        let started = Arc::clone(&started);
        Hooks::new(config().handler_timeout(Duration::from_secs(3600))).on("push", move || {
            let started = Arc::clone(&started);
            async move {
                started.notify_one();
                std::future::pending::<()>().await;
                "never"
            }
        })
    };
    let s = TestServer::start_with(
        Server::new().shutdown_grace(Duration::from_secs(1)),
        hooks.router("/hooks"),
    )
    .await;
    let c = client();
    let hung = tokio::spawn(send(delivery(&c, &s.url(), "push", "{}")));
    started.notified().await;
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), s.shut_down())
        .await
        .expect("shutdown gave up after the grace period")
        .unwrap();
    // Returns after the 1 s grace although the handler never ends (a loose bound).
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    hung.abort();
}
