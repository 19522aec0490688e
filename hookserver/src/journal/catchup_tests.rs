//! The catch-up's state in both engines: the watermark, the journal lookup by GUID,
//! the redelivery requests, and the leadership.

#![allow(clippy::unwrap_used)]

use super::{
    store::GuidRecord,
    tests::{T0, each_backend, entry},
};
use std::time::{Duration, Instant};

fn guids(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn watermarks_only_move_forward_per_target() {
    each_backend("catchup_watermark", async |backend| {
        let store = backend.open();
        let (a, b) = ("repo:o/r/1".to_string(), "app".to_string());
        assert_eq!(store.catchup_watermark(a.clone()).await.unwrap(), None);
        store.catchup_advance(a.clone(), T0, 0).await.unwrap();
        store.catchup_advance(a.clone(), T0 - 5, 0).await.unwrap();
        assert_eq!(store.catchup_watermark(a.clone()).await.unwrap(), Some(T0));
        assert_eq!(store.catchup_watermark(b.clone()).await.unwrap(), None);
        store.catchup_advance(a.clone(), T0 + 7, 0).await.unwrap();
        // Another handle (a restart) reads the same.
        drop(store);
        let store = backend.open();
        assert_eq!(store.catchup_watermark(a).await.unwrap(), Some(T0 + 7));
    })
    .await;
}

#[tokio::test]
async fn lookups_see_rows_and_requests() {
    each_backend("catchup_lookup", async |backend| {
        let store = backend.open();
        let target = "repo:o/r/7".to_string();
        for (hook, guid) in [("7", "a"), ("", "b"), ("8", "c")] {
            store.insert(entry(hook, guid, T0)).await.unwrap();
        }
        let all = guids(&["a", "b", "c", "d"]);
        let seen = |records: Vec<GuidRecord>| -> Vec<bool> {
            records.iter().map(|r| r.journaled).collect()
        };
        let for_hook = store
            .catchup_lookup(target.clone(), Some("7".into()), all.clone())
            .await
            .unwrap();
        assert_eq!(
            seen(for_hook),
            [true, true, false, false],
            "{}",
            backend.name
        );
        let any = store
            .catchup_lookup(target.clone(), None, all.clone())
            .await
            .unwrap();
        assert_eq!(seen(any), [true, true, true, false], "{}", backend.name);
        // Requests counted per target and GUID.
        store
            .catchup_asked(target.clone(), "d".into(), T0)
            .await
            .unwrap();
        store
            .catchup_asked(target.clone(), "d".into(), T0 + 5)
            .await
            .unwrap();
        let records = store
            .catchup_lookup(target.clone(), Some("7".into()), guids(&["d", "c"]))
            .await
            .unwrap();
        assert_eq!(
            records,
            [
                GuidRecord {
                    journaled: false,
                    asked: 2,
                    last_asked: Some(T0 + 5)
                },
                GuidRecord::default()
            ]
        );
        let other = store
            .catchup_lookup("app".into(), None, guids(&["d"]))
            .await
            .unwrap();
        assert_eq!(other[0].asked, 0);
        // Requests older than the window are forgotten when the watermark moves.
        store
            .catchup_advance(target.clone(), T0, T0 + 1)
            .await
            .unwrap();
        let kept = store
            .catchup_lookup(target.clone(), None, guids(&["d"]))
            .await
            .unwrap();
        assert_eq!(kept[0].asked, 2);
        store
            .catchup_advance(target.clone(), T0, T0 + 6)
            .await
            .unwrap();
        let gone = store
            .catchup_lookup(target, None, guids(&["d"]))
            .await
            .unwrap();
        assert_eq!(gone[0], GuidRecord::default());
        assert!(
            store
                .catchup_lookup("app".into(), None, Vec::new())
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn one_instance_leads_until_it_resigns() {
    each_backend("catchup_lead", async |backend| {
        let (one, two) = (backend.open(), backend.open());
        let target = "org:o/1".to_string();
        assert!(one.catchup_lead(target.clone()).await.unwrap());
        assert!(one.catchup_lead(target.clone()).await.unwrap(), "still");
        if backend.name == "sqlite" {
            // One process writes a SQLite journal: it always leads.
            assert!(two.catchup_lead(target).await.unwrap());
            return;
        }
        assert!(!two.catchup_lead(target.clone()).await.unwrap());
        assert!(
            two.catchup_lead("app".into()).await.unwrap(),
            "another target is another lock"
        );
        one.catchup_resign().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !two.catchup_lead(target.clone()).await.unwrap() {
            assert!(Instant::now() < deadline, "the lock was never released");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!one.catchup_lead(target).await.unwrap());
    })
    .await;
}
