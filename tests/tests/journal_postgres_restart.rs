//! PostgreSQL stopped and started again under load: deliveries during the gap are
//! `503 Journal unavailable`, none gets a `2xx` without a row, and the server
//! recovers by itself. Alone in its binary: it stops the server the other
//! PostgreSQL tests use (cargo runs test binaries one at a time).

use hookserver::{Delivery, DeliveryState, Hooks, ListFilter};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tests::{
    TestServer, config,
    journal::{post, postgres, postgres_ctl},
};

async fn ok(_: Delivery) -> &'static str {
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_503_during_the_gap_then_recovers_by_itself() {
    let Some(journal) = postgres() else {
        return;
    };
    if std::env::var("HOOKSERVER_TEST_POSTGRES_CTL").is_err() {
        eprintln!("NOTICE: restart test skipped: HOOKSERVER_TEST_POSTGRES_CTL is not set");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true needs scripts/postgres.sh's server"
        );
        return;
    }
    let hooks = Hooks::new(
        config()
            .journal(&journal.url)
            .handler_timeout(Duration::from_secs(1)),
    )
    .on("push", ok);
    let handle = hooks.journal().expect("journal");
    let server = TestServer::hooks(hooks).await;
    let url = server.url();

    // Four senders, each delivery a GUID of its own, until told to stop.
    let answers: Arc<Mutex<HashMap<String, (u16, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (url, answers, stop) = (url.clone(), Arc::clone(&answers), Arc::clone(&stop));
        senders.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let guid = format!("restart-{sender}-{n}");
                n += 1;
                let (status, _, text) = post(&url, "push", &guid, Some("1"), b"{}").await;
                answers.lock().unwrap().insert(guid, (status, text));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let count = |f: &dyn Fn(u16, &str) -> bool| {
        answers
            .lock()
            .unwrap()
            .values()
            .filter(|(s, t)| f(*s, t))
            .count()
    };
    let wait = async |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "never got: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    wait("deliveries queued before the stop", &|| {
        count(&|s, _| s == 202) >= 50
    })
    .await;
    postgres_ctl("-m fast stop").expect("pg_ctl");
    let queued_before_gap = count(&|s, _| s == 202);
    wait("503 Journal unavailable during the gap", &|| {
        count(&|s, t| s == 503 && t == "Journal unavailable") >= 20
    })
    .await;
    // Nothing but 503 while the database is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued_in_gap = count(&|s, _| s == 202) - queued_before_gap;
    assert!(
        queued_in_gap <= 4,
        "{queued_in_gap} acknowledged with no database"
    );
    postgres_ctl("start").expect("pg_ctl");
    let restarted = Instant::now();
    let queued_at_restart = count(&|s, _| s == 202);
    wait("202 again after the restart", &|| {
        count(&|s, _| s == 202) >= queued_at_restart + 50
    })
    .await;
    eprintln!("recovered in {:?}", restarted.elapsed());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }

    // Every answer was a 202 or the 503; every 202 has its row, and all are done.
    let answers = answers.lock().unwrap().clone();
    let other: Vec<_> = answers
        .iter()
        .filter(|(_, (s, t))| *s != 202 && !(*s == 503 && t == "Journal unavailable"))
        .collect();
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    // An attempt whose `done` could not be written during the gap is written once the
    // database is back (the write is retried), or at worst run again when its lease
    // (1 s + 30 s) runs out: within a minute either way.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = handle.list(ListFilter::new()).await.expect("list");
        let done: HashMap<_, _> = rows.iter().map(|e| (e.guid.clone(), e.state)).collect();
        let missing = answers
            .iter()
            .filter(|(_, (s, _))| *s == 202)
            .filter(|(g, _)| done.get(*g) != Some(&DeliveryState::Done))
            .count();
        if missing == 0 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged deliveries not done"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        rows.iter().all(|e| e.state == DeliveryState::Done),
        "no row left claimed"
    );
    let acknowledged = answers.values().filter(|(s, _)| *s == 202).count();
    let refused = answers.len() - acknowledged;
    eprintln!(
        "{acknowledged} acknowledged, {refused} answered 503, {} rows",
        rows.len()
    );
}
