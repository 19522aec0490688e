//! Times as the commands read them (`--since`) and print them (UTC, ISO 8601).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// What `--since` accepts, for its error.
const SINCE_FORMS: &str = "a time (2026-05-01, 2026-05-01T12:00:00Z, 2026-05-01T14:00:00+02:00) \
     or an age (90s, 30m, 2h, 7d)";

/// `--since`: an age before `now` (`90s`, `30m`, `2h`, `7d`), a date (midnight UTC),
/// or a time with `Z` or an offset.
pub(crate) fn parse_since(value: &str, now: SystemTime) -> Result<SystemTime, String> {
    let value = value.trim();
    let bad = || format!("expected {SINCE_FORMS}");
    if let Some(unit) = value.chars().last().filter(char::is_ascii_alphabetic)
        && value.len() > 1
        && value[..value.len() - 1].bytes().all(|b| b.is_ascii_digit())
    {
        let n: u64 = value[..value.len() - 1].parse().map_err(|_| bad())?;
        let secs = match unit {
            's' => Some(n),
            'm' => n.checked_mul(60),
            'h' => n.checked_mul(3600),
            'd' => n.checked_mul(86_400),
            _ => None,
        }
        .ok_or_else(bad)?;
        return now.checked_sub(Duration::from_secs(secs)).ok_or_else(bad);
    }
    let full = if value.len() == 10 {
        format!("{value}T00:00:00Z")
    } else {
        value.to_owned()
    };
    let t = OffsetDateTime::parse(&full, &Rfc3339).map_err(|_| bad())?;
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::new(secs, t.nanosecond()))
}

/// `t` in UTC to the second: `2026-05-01T12:00:00Z`.
pub(crate) fn format(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        // Beyond year 9999, which no journal or delivery log holds.
        .unwrap_or_else(|| format!("{secs} s after 1970-01-01T00:00:00Z"))
}

/// `d` for a person: `850 ms`, `2.3 s`.
pub(crate) fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn since() {
        let now = at(1_800_000_000);
        assert_eq!(parse_since("90s", now), Ok(at(1_800_000_000 - 90)));
        assert_eq!(parse_since("30m", now), Ok(at(1_800_000_000 - 1800)));
        assert_eq!(parse_since("2h", now), Ok(at(1_800_000_000 - 7200)));
        assert_eq!(parse_since("7d", now), Ok(at(1_800_000_000 - 7 * 86_400)));
        assert_eq!(parse_since("2019-06-03", now), Ok(at(1_559_520_000)));
        assert_eq!(
            parse_since("2019-06-03T00:57:16Z", now),
            Ok(at(1_559_523_436))
        );
        assert_eq!(
            parse_since("2019-06-03T02:57:16+02:00", now),
            Ok(at(1_559_523_436))
        );
        for bad in [
            "",
            "yesterday",
            "7w",
            "d",
            "-2h",
            "2019-13-01",
            "2019-06-03T00:57:16",
        ] {
            let err = parse_since(bad, now).unwrap_err();
            assert!(err.contains("an age (90s, 30m, 2h, 7d)"), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(format(at(1_559_523_436)), "2019-06-03T00:57:16Z");
        assert_eq!(format(at(951_782_400)), "2000-02-29T00:00:00Z");
        let t = parse_since("2024-12-31T23:59:59Z", at(0)).unwrap();
        assert_eq!(format(t), "2024-12-31T23:59:59Z");
    }
}
