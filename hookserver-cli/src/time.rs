//! Times as the commands read them (`--since`) and print them (UTC, ISO 8601).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    let millis = parse_time(&full).ok_or_else(bad)?;
    Ok(UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).map_err(|_| bad())?))
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` as Unix milliseconds.
fn parse_time(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        millis = format!("{:0<3}", &fraction[..digits.min(3)]).parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (num(20..22)? * 3600 + num(23..25)? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset) * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `t` in UTC to the second: `2026-05-01T12:00:00Z`.
pub(crate) fn format(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
