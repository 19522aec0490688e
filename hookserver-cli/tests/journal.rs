//! `hookserver journal list/show/replay/stats` on journals written by a real server,
//! on every engine of `tests::journal::journals()` (PostgreSQL with
//! `HOOKSERVER_TEST_POSTGRES`; under `CI=true` its absence fails).

mod support;

use hookserver::{DeliveryState, Hooks, Journal};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use support::hookserver;
use tests::{
    TestServer, config,
    journal::{all_in, entry, journals, post, wait_for},
};

const SETTLE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn list_show_replay_and_stats_on_a_journal_a_server_wrote() {
    for journal in journals() {
        let engine = journal.engine;
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let hooks = Hooks::new(
            config()
                .journal(&journal.url)
                .retry_attempts(1)
                .retry_backoff(Duration::from_millis(10)),
        )
        .on("push", move |_: serde_json::Value| {
            let runs = Arc::clone(&counted);
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                "pushed"
            }
        })
        .on("issues", |_: serde_json::Value| async {
            (http::StatusCode::INTERNAL_SERVER_ERROR, "database down")
        });
        let handle: Journal = hooks.journal().expect("a journal");
        let server = TestServer::hooks(hooks).await;
        let url = server.url();
        for (guid, event, body) in [
            ("aaaa-1", "push", r#"{"ref":"refs/heads/main"}"#),
            ("aaaa-2", "push", r#"{"ref":"refs/heads/dev"}"#),
            ("bbbb-1", "issues", r#"{"action":"opened"}"#),
        ] {
            let (status, _, answer) = post(&url, event, guid, Some("7"), body.as_bytes()).await;
            assert_eq!(status, 202, "{engine}: {answer}");
        }
        wait_for(&handle, SETTLE, "two done, one dead", |e| {
            e.len() == 3
                && entry(e, "bbbb-1", Some(7)).is_some_and(|x| x.state == DeliveryState::Dead)
                && e.iter().filter(|x| x.state == DeliveryState::Done).count() == 2
        })
        .await;
        let env = [("HOOKSERVER_JOURNAL", journal.url.as_str())];

        let run = hookserver(&["journal", "list"], &env).await;
        assert_eq!(run.code, 0, "{engine}: {run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert!(lines[0].starts_with("RECEIVED"), "{engine}: {run:?}");
        assert!(
            lines.iter().any(|l| l.contains("bbbb-1")
                && l.contains("issues.opened")
                && l.contains("dead")
                && l.contains("500")),
            "{engine}: {run:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("aaaa-1") && l.contains("done")),
            "{engine}: {run:?}"
        );
        assert_eq!(lines.last(), Some(&"3 deliveries"), "{engine}: {run:?}");

        let run = hookserver(&["journal", "list", "--json", "--state", "done"], &env).await;
        assert_eq!(run.code, 0, "{engine}: {run:?}");
        let listed: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        let mut guids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["guid"].as_str().unwrap())
            .collect();
        guids.sort();
        assert_eq!(guids, ["aaaa-1", "aaaa-2"], "{engine}: {run:?}");
        assert_eq!(listed[0]["hook_id"], 7, "{engine}");
        assert_eq!(listed[0]["state"], "done", "{engine}");

        let run = hookserver(
            &[
                "journal", "list", "--json", "--event", "issues", "--since", "1h",
            ],
            &env,
        )
        .await;
        let listed: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        assert_eq!(listed.as_array().unwrap().len(), 1, "{engine}: {run:?}");
        assert_eq!(listed[0]["last_status"], 500, "{engine}: {run:?}");
        let run = hookserver(&["journal", "list", "--since", "2099-01-01"], &env).await;
        assert_eq!(
            run.stdout.lines().last(),
            Some("0 deliveries"),
            "{engine}: {run:?}"
        );

        let run = hookserver(&["journal", "show", "bbbb-1"], &env).await;
        assert_eq!(run.code, 0, "{engine}: {run:?}");
        for wanted in [
            "guid:         bbbb-1",
            "state:        dead",
            "hook id:      7",
            "last status:  500",
            "x-github-event: issues",
            "\"action\": \"opened\"",
        ] {
            assert!(run.stdout.contains(wanted), "{engine}: {wanted}: {run:?}");
        }
        assert!(!run.stdout.contains("x-hub-signature"), "{engine}: {run:?}");
        let run = hookserver(&["journal", "show", "nope"], &env).await;
        assert_eq!(run.code, 1, "{engine}: {run:?}");
        assert!(
            run.stderr
                .contains("no delivery with GUID nope in the journal"),
            "{engine}: {run:?}"
        );

        let run = hookserver(&["journal", "stats"], &env).await;
        assert_eq!(run.code, 0, "{engine}: {run:?}");
        let count = |state: &str| -> String {
            run.stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(state))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            (count("done"), count("dead"), count("queued")),
            ("2".into(), "1".into(), "0".into()),
            "{engine}: {run:?}"
        );
        assert!(
            run.stdout.contains("oldest pending: none"),
            "{engine}: {run:?}"
        );

        // Replay by GUID: the server runs the handler again.
        let before = runs.load(Ordering::SeqCst);
        let run = hookserver(&["journal", "replay", "aaaa-1"], &env).await;
        assert_eq!(run.code, 0, "{engine}: {run:?}");
        assert!(run.stdout.contains("queued again: 1;"), "{engine}: {run:?}");
        tests::github_log::eventually(SETTLE, "the replay run", || {
            runs.load(Ordering::SeqCst) == before + 1
        })
        .await;
        // By state: every dead one.
        let run = hookserver(&["journal", "replay", "--state", "dead", "nope"], &env).await;
        assert_eq!(run.code, 1, "{engine}: {run:?}");
        assert!(run.stdout.contains("queued again: 1;"), "{engine}: {run:?}");
        assert!(
            run.stderr.contains("no delivery with GUID nope"),
            "{engine}: {run:?}"
        );
        wait_for(&handle, SETTLE, "the dead one dead again", |e| {
            entry(e, "bbbb-1", Some(7))
                .is_some_and(|x| x.state == DeliveryState::Dead && x.attempts == 1)
        })
        .await;
        wait_for(&handle, SETTLE, "the replayed push done", |e| {
            let pushes: Vec<_> = e.iter().filter(|x| x.event == "push").cloned().collect();
            all_in(&pushes, DeliveryState::Done)
        })
        .await;
        server.shut_down().await.expect("shut down");
    }
}
