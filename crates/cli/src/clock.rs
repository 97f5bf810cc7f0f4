//! Durations and timestamps as the CLI reads and prints them: `1h30m`, ages like `3m12s`,
//! RFC 3339 UTC times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `500ms`, `30s`, `10m`, `2h`, `1d` and sums of them (`1h30m`).
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let bad = || {
        anyhow::anyhow!(
            "invalid duration `{text}`: use a number and a unit, like 30s, 10m, 1h30m or 500ms"
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// For clap's `value_parser`.
pub fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// A short, human span: `120ms`, `45s`, `3m12s`, `5m`, `2h5m`, `3d4h`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let (days, hours, mins, secs) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    let (big, small) = if days > 0 {
        ((days, 'd'), (hours, 'h'))
    } else if hours > 0 {
        ((hours, 'h'), (mins, 'm'))
    } else if mins > 0 {
        ((mins, 'm'), (secs, 's'))
    } else {
        return format!("{secs}s");
    };
    if small.0 == 0 {
        format!("{}{}", big.0, big.1)
    } else {
        format!("{}{}{}{}", big.0, big.1, small.0, small.1)
    }
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `now - d` in unix milliseconds.
pub fn ms_ago(d: Duration) -> i64 {
    now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The age of something that happened at `ms` (unix milliseconds), e.g. `3m12s`.
pub fn age(ms: i64) -> String {
    let elapsed = u64::try_from(now_ms().saturating_sub(ms)).unwrap_or(0);
    format_duration(Duration::from_millis(if elapsed < 1_000 {
        elapsed
    } else {
        elapsed / 1_000 * 1_000
    }))
}

/// Parses an RFC 3339 time (`2026-11-26T14:00:00.123Z`, or with an offset) into unix
/// milliseconds. `None` when it is not one.
pub fn parse_rfc3339_ms(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = ts.get(range)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &ts[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
    }
    let offset_s = match ts.get(i..)? {
        "Z" | "z" => 0,
        off if off.len() == 6 && off.as_bytes()[3] == b':' => {
            let sign = match off.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (num(i + 1..i + 3)? * 3_600 + num(i + 4..i + 6)? * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + min * 60 + sec;
    Some((secs - offset_s) * 1_000 + millis)
}

// Howard Hinnant's days_from_civil (http://howardhinnant.github.io/date_algorithms.html).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_sums() {
        let ms = |t| parse_duration(t).map(|d| d.as_millis()).ok();
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("30s"), Some(30_000));
        assert_eq!(ms("10m"), Some(600_000));
        assert_eq!(ms("2h"), Some(7_200_000));
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("1d"), Some(86_400_000));
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "1.5h",
            "-1s",
            "1h 30m",
            "99999999999999999999d",
        ] {
            assert_eq!(ms(bad), None, "{bad}");
        }
        let err = parse_duration("10x").unwrap_err().to_string();
        assert!(err.contains("`10x`") && err.contains("1h30m"), "{err}");
    }

    #[test]
    fn durations_format_as_short_ages() {
        let f = |ms| format_duration(Duration::from_millis(ms));
        assert_eq!(f(120), "120ms");
        assert_eq!(f(45_000), "45s");
        assert_eq!(f(192_000), "3m12s");
        assert_eq!(f(300_000), "5m");
        assert_eq!(f(7_500_000), "2h5m");
        assert_eq!(f(3 * 86_400_000 + 4 * 3_600_000), "3d4h");
    }

    #[test]
    fn rfc3339_parses_like_the_daemon_writes() {
        let ms = parse_rfc3339_ms("2026-11-26T14:00:00.123Z").unwrap();
        assert_eq!(kiln_daemon::rfc3339_ms(ms), "2026-11-26T14:00:00.123Z");
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:00Z"),
            Some(951_868_800_000)
        );
        for bad in [
            "",
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "2026-11-26T14:00:00",
            "x026-11-26T14:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}
