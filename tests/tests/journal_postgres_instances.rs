//! Three server processes on one PostgreSQL journal: deliveries sent round-robin,
//! a tenth sent again to a *different* instance, one instance killed with `kill -9`
//! mid-run and started again. Every acknowledged delivery is processed, duplicates
//! are not processed again (but for the crash window: a handler that ran in the
//! killed process before its `done` mark), no row is left claimed, and every
//! instance processed some.

use hookserver::{DeliveryState, Journal, ListFilter};
use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};
use tests::journal::{delivery_with, postgres, temp_dir};

const DELIVERIES: usize = 1500;
const SENDERS: usize = 12;

struct Instance {
    child: Child,
    url: String,
    log: PathBuf,
}

/// A test that fails leaves no server behind.
impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(journal: &str, log: &Path) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal-pg-server"))
        .env("HOOKSERVER_JOURNAL", journal)
        .env("PROCESSED_LOG", log)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start journal-pg-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read port");
    let port = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Instance {
        child,
        url: format!("http://127.0.0.1:{port}/hooks"),
        log: log.to_owned(),
    }
}

fn runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One send: `Some((status, text))`, or `None` when the instance was not there.
async fn send(url: &str, guid: &str) -> Option<(u16, String)> {
    let response = delivery_with(url, "push", guid, Some("42"), b"{\"ref\":\"x\"}")
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_journal_kill_9_and_duplicates_to_another_instance() {
    let Some(journal) = postgres() else {
        return;
    };
    let dir = temp_dir("instances");
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| start(&journal.url, &dir.join(format!("instance-{i}.log"))))
        .collect();
    let urls = Arc::new(RwLock::new(
        instances.iter().map(|i| i.url.clone()).collect::<Vec<_>>(),
    ));
    // guid → (first answer, the duplicate's answer if sent).
    type Answers = HashMap<String, (Option<(u16, String)>, Option<(u16, String)>)>;
    let answers: Arc<Mutex<Answers>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (urls, answers, next) = (Arc::clone(&urls), Arc::clone(&answers), Arc::clone(&next));
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= DELIVERIES {
                    return;
                }
                let guid = format!("multi-{n:05}");
                let url = urls.read().unwrap()[n % 3].clone();
                let first = send(&url, &guid).await;
                // A tenth again, to the next instance.
                let again = if n % 10 == 0 {
                    let url = urls.read().unwrap()[(n + 1) % 3].clone();
                    send(&url, &guid).await
                } else {
                    None
                };
                answers.lock().unwrap().insert(guid, (first, again));
            }
        }));
    }
    // A third of the way: kill -9 instance 1, and start it again a moment later.
    while next.load(std::sync::atomic::Ordering::Relaxed) < DELIVERIES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    instances[1].child.kill().expect("kill -9");
    instances[1].child.wait().expect("reap");
    let killed_runs: HashSet<String> = runs(&instances[1].log).into_iter().collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restarted = start(&journal.url, &dir.join("instance-1-again.log"));
    urls.write().unwrap()[1] = restarted.url.clone();
    instances.push(restarted);
    for sender in senders {
        sender.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();

    // Every answer is one of the journal's; duplicates of acknowledged deliveries
    // were not queued again.
    let acknowledged: HashSet<&String> = answers
        .iter()
        .filter(|(_, (first, again))| {
            let ok = |a: &Option<(u16, String)>| a.as_ref().is_some_and(|(s, _)| *s / 100 == 2);
            ok(first) || ok(again)
        })
        .map(|(g, _)| g)
        .collect();
    for (guid, (first, again)) in &answers {
        if let Some((status, text)) = first {
            assert_eq!((*status, text.as_str()), (202, "Queued"), "{guid}");
        }
        if let (Some(_), Some((status, text))) = (first, again) {
            assert!(
                matches!(
                    (*status, text.as_str()),
                    (200, "Duplicate delivery") | (202, "Already queued")
                ),
                "{guid}: the duplicate got {status} {text}"
            );
        }
    }
    let refused = answers.len() - acknowledged.len();
    assert!(
        acknowledged.len() > DELIVERIES * 9 / 10,
        "{refused} never acknowledged"
    );

    // Settle: every acknowledged delivery done, and nothing pending (the killed
    // instance's claims come back when their leases, 2 s + 30 s, run out).
    let handle = Journal::open(&journal.url).expect("open the journal");
    let deadline = Instant::now() + Duration::from_secs(120);
    let rows = loop {
        let rows = handle.list(ListFilter::new()).await.expect("list");
        let done: HashSet<&str> = rows
            .iter()
            .filter(|e| e.state == DeliveryState::Done)
            .map(|e| e.guid.as_str())
            .collect();
        let missing = acknowledged
            .iter()
            .filter(|g| !done.contains(g.as_str()))
            .count();
        // Rows never acknowledged settle too: a delivery committed by the killed
        // instance just before it died (its answer lost) runs once its lease is out.
        let pending = rows.len() - done.len();
        if missing == 0 && pending == 0 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged deliveries never done, {pending} rows pending"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let stats = handle.stats().await.expect("stats");
    assert_eq!(
        (stats.queued, stats.running),
        (0, 0),
        "no row left claimed: {stats:?}"
    );
    assert!(rows.iter().all(|e| e.state == DeliveryState::Done));

    // Processed: every acknowledged one at least once; twice only in the crash window.
    let mut per_guid: HashMap<String, usize> = HashMap::new();
    let mut per_instance = Vec::new();
    for instance in &instances {
        let lines = runs(&instance.log);
        per_instance.push(lines.len());
        for guid in lines {
            *per_guid.entry(guid).or_default() += 1;
        }
    }
    for guid in &acknowledged {
        assert!(
            per_guid.contains_key(guid.as_str()),
            "{guid} acknowledged, never run"
        );
    }
    let twice: Vec<_> = per_guid.iter().filter(|(_, n)| **n > 1).collect();
    for (guid, n) in &twice {
        assert!(
            **n == 2 && killed_runs.contains(guid.as_str()),
            "{guid} ran {n} times, not in the crash window"
        );
    }
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "every instance processed some: {per_instance:?}"
    );
    eprintln!(
        "{} acknowledged ({refused} not: sent to the killed instance), runs per instance \
         {per_instance:?}, {} run twice (crash window)",
        acknowledged.len(),
        twice.len()
    );
    drop(instances);
    let _ = std::fs::remove_dir_all(dir);
}
