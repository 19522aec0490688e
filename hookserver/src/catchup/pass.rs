//! What a pass decides, without I/O: attempts grouped by GUID, which GUIDs to ask a
//! redelivery for, and how far the watermark may move. Times are Unix milliseconds.

use super::api::Attempt;
use crate::journal::store::GuidRecord;
use std::collections::HashMap;

/// A GUID asked for is asked again only when it still has no row this long after.
pub(crate) const REASK_AFTER_MS: i64 = 3600 * 1000;
/// A GUID is asked for at most this many times.
pub(crate) const MAX_ASKS: u32 = 3;

/// Every attempt GitHub listed for one GUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) guid: String,
    pub(crate) event: String,
    /// The latest attempt: the one a redelivery names.
    pub(crate) latest_id: u64,
    pub(crate) latest_at: i64,
    /// Some attempt succeeded.
    pub(crate) ok: bool,
}

/// The GUIDs with an attempt at or after `floor`, oldest latest attempt first.
pub(crate) fn group(attempts: &[Attempt], floor: i64) -> Vec<Group> {
    let mut by_guid: HashMap<&str, Group> = HashMap::new();
    for a in attempts {
        let g = by_guid.entry(&a.guid).or_insert_with(|| Group {
            guid: a.guid.clone(),
            event: a.event.clone(),
            latest_id: a.id,
            latest_at: a.delivered_at,
            ok: false,
        });
        g.ok |= a.ok;
        if (a.delivered_at, a.id) > (g.latest_at, g.latest_id) {
            g.latest_at = a.delivered_at;
            g.latest_id = a.id;
            g.event.clone_from(&a.event);
        }
    }
    let mut groups: Vec<Group> = by_guid
        .into_values()
        .filter(|g| g.latest_at >= floor)
        .collect();
    groups.sort_by(|a, b| (a.latest_at, &a.guid).cmp(&(b.latest_at, &b.guid)));
    groups
}

/// What to do about one GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Received (a row), or delivered (an `OK` attempt): nothing to do.
    Settled,
    /// Missing: ask GitHub to redeliver it.
    Ask,
    /// Asked for less than an hour ago: wait for it.
    Wait,
    /// Asked for [`MAX_ASKS`] times and still missing: no more.
    GiveUp,
}

/// The decision for `group`, given what the journal knows of it at `now`.
pub(crate) fn decide(group: &Group, record: &GuidRecord, now: i64) -> Decision {
    if group.ok || record.journaled {
        return Decision::Settled;
    }
    match record.last_asked {
        _ if record.asked >= MAX_ASKS => Decision::GiveUp,
        Some(at) if now - at < REASK_AFTER_MS => Decision::Wait,
        _ => Decision::Ask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(id: u64, guid: &str, at: i64, ok: bool) -> Attempt {
        Attempt {
            id,
            guid: guid.into(),
            delivered_at: at,
            ok,
            event: "push".into(),
            status: if ok { "OK" } else { "failed" }.into(),
            status_code: if ok { 200 } else { 0 },
            action: None,
            redelivery: false,
            duration_ms: None,
        }
    }

    #[test]
    fn groups_by_guid_with_the_latest_attempt() {
        let attempts = [
            attempt(5, "b", 500, false),
            attempt(4, "a", 400, false),
            attempt(3, "b", 300, true),
            attempt(2, "a", 200, false),
            attempt(1, "old", 100, false),
        ];
        let groups = group(&attempts, 150);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(
            (groups[0].guid.as_str(), groups[0].latest_id, groups[0].ok),
            ("a", 4, false)
        );
        assert_eq!(
            (groups[1].guid.as_str(), groups[1].latest_id, groups[1].ok),
            ("b", 5, true)
        );
    }

    #[test]
    fn decisions() {
        let missing = group(&[attempt(1, "g", 0, false)], 0).remove(0);
        let delivered = group(&[attempt(1, "g", 0, true)], 0).remove(0);
        let none = GuidRecord::default();
        let now = 10 * REASK_AFTER_MS;
        assert_eq!(decide(&missing, &none, now), Decision::Ask);
        assert_eq!(decide(&delivered, &none, now), Decision::Settled);
        let journaled = GuidRecord {
            journaled: true,
            ..GuidRecord::default()
        };
        assert_eq!(decide(&missing, &journaled, now), Decision::Settled);
        let asked = |asked, ago| GuidRecord {
            journaled: false,
            asked,
            last_asked: Some(now - ago),
        };
        assert_eq!(decide(&missing, &asked(1, 1000), now), Decision::Wait);
        assert_eq!(
            decide(&missing, &asked(1, REASK_AFTER_MS - 1), now),
            Decision::Wait
        );
        assert_eq!(
            decide(&missing, &asked(1, REASK_AFTER_MS), now),
            Decision::Ask
        );
        assert_eq!(
            decide(&missing, &asked(2, REASK_AFTER_MS * 2), now),
            Decision::Ask
        );
        assert_eq!(
            decide(&missing, &asked(MAX_ASKS, REASK_AFTER_MS * 2), now),
            Decision::GiveUp
        );
        // A row after a redelivery settles it, whatever was asked.
        let received = GuidRecord {
            journaled: true,
            ..asked(MAX_ASKS, 0)
        };
        assert_eq!(decide(&missing, &received, now), Decision::Settled);
    }
}
