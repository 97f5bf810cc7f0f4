//! Durations ("1m30s") and memory sizes ("128Mi") as written in kiln.toml.

use std::time::Duration;

/// Why a quantity was refused: `reason` follows "invalid ... `VALUE`: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub reason: &'static str,
    pub hint: Option<String>,
}

impl Problem {
    fn new(reason: &'static str) -> Self {
        Problem { reason, hint: None }
    }

    fn hint(mut self, hint: String) -> Self {
        self.hint = Some(hint);
        self
    }
}

/// Duration units, largest first, with their length in nanoseconds.
const TIME_UNITS: &[(&str, u128)] = &[
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// Other ways to write the units, for hints.
const TIME_ALIASES: &[(&str, &str)] = &[
    ("hr", "h"),
    ("hrs", "h"),
    ("hour", "h"),
    ("hours", "h"),
    ("min", "m"),
    ("mins", "m"),
    ("minute", "m"),
    ("minutes", "m"),
    ("sec", "s"),
    ("secs", "s"),
    ("second", "s"),
    ("seconds", "s"),
    ("msec", "ms"),
    ("millis", "ms"),
];

/// A number followed by a unit, repeated from the largest unit to the
/// smallest: "500ms", "1.5s", "1m30s". Units are `h`, `m`, `s` and `ms`.
pub(crate) fn duration(text: &str) -> Result<Duration, Problem> {
    if text.is_empty() {
        return Err(Problem::new("it is empty"));
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let (number, after) = number(rest).ok_or_else(|| {
            Problem::new("expected a number and a unit")
                .hint("for example: \"500ms\", \"10s\", \"1m30s\"".to_owned())
        })?;
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() && next.is_empty() {
            return Err(Problem::new("it has no unit").hint(format!("write a unit: \"{text}s\"")));
        }
        let Some(index) = TIME_UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(unknown_time_unit(&rest[..rest.len() - after.len()], unit));
        };
        if previous.is_some_and(|previous| index <= previous) {
            return Err(Problem::new(
                "units must go from the largest to the smallest, each at most once",
            ));
        }
        previous = Some(index);
        let scaled = number
            .scale(TIME_UNITS[index].1)
            .ok_or(Problem::new("it is more precise than a nanosecond"))?;
        nanos = nanos.saturating_add(scaled);
        rest = next;
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| Problem::new("it is too long"))
}

/// `unit` after `number` is not one of [`TIME_UNITS`]; hints at the one meant.
fn unknown_time_unit(number: &str, unit: &str) -> Problem {
    let problem = Problem::new("units are ms, s, m and h");
    let lower = unit.to_ascii_lowercase();
    let meant = TIME_UNITS
        .iter()
        .map(|(u, _)| (*u, *u))
        .chain(TIME_ALIASES.iter().copied())
        .find(|(wrong, _)| *wrong == lower);
    match meant {
        Some((_, right)) if !unit.is_empty() => problem.hint(format!("write \"{number}{right}\"")),
        _ => problem,
    }
}

/// Memory size units, with their size in bytes.
const SIZE_UNITS: &[(&str, u128)] = &[
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("k", 1_000),
    ("K", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
];

const SIZE_UNITS_HINT: &str =
    "units are Ki, Mi, Gi, Ti (powers of 1024) and k, M, G, T (powers of 1000); no unit is bytes";

/// Bytes: "128Mi", "1Gi" (binary), "100M", "500k" (decimal), "1048576".
pub(crate) fn size(text: &str) -> Result<u64, Problem> {
    if text.is_empty() {
        return Err(Problem::new("it is empty"));
    }
    let (number, unit) = number(text).ok_or_else(|| {
        Problem::new("expected a number and a unit")
            .hint("for example: \"128Mi\" or \"1Gi\"".to_owned())
    })?;
    let digits = &text[..text.len() - unit.len()];
    let scale = match SIZE_UNITS.iter().find(|(u, _)| *u == unit) {
        Some((_, scale)) => *scale,
        None if unit.is_empty() => 1,
        None => {
            let problem = Problem::new("unknown unit");
            // "128MiB", "1GB": the byte suffix is implied.
            let without_b = unit.strip_suffix(['B', 'b']).unwrap_or(unit);
            let known = SIZE_UNITS.iter().find(|(u, _)| *u == without_b);
            return Err(match known {
                Some((known, _)) => problem.hint(format!("write \"{digits}{known}\"")),
                None => problem.hint(SIZE_UNITS_HINT.to_owned()),
            });
        }
    };
    let bytes = number
        .scale(scale)
        .ok_or(Problem::new("it is not a whole number of bytes"))?;
    u64::try_from(bytes).map_err(|_| Problem::new("it is too large"))
}

/// A decimal number as written: whole part, fraction digits.
struct Number<'a> {
    whole: &'a str,
    fraction: &'a str,
}

impl Number<'_> {
    /// The number times `unit`, if that is whole and not absurdly large.
    fn scale(&self, unit: u128) -> Option<u128> {
        let whole: u128 = self.whole.parse().ok()?;
        let mut value = whole.checked_mul(unit)?;
        if !self.fraction.is_empty() {
            let digits = u32::try_from(self.fraction.len()).ok()?;
            let denominator = 10u128.checked_pow(digits)?;
            let fraction: u128 = self.fraction.parse().ok()?;
            let scaled = fraction.checked_mul(unit)?;
            if scaled % denominator != 0 {
                return None;
            }
            value = value.checked_add(scaled / denominator)?;
        }
        Some(value)
    }
}

/// Splits a leading `DIGITS[.DIGITS]` off `text`.
fn number(text: &str) -> Option<(Number<'_>, &str)> {
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let whole_len = digits(text);
    if whole_len == 0 {
        return None;
    }
    let (whole, rest) = text.split_at(whole_len);
    let Some(after_dot) = rest.strip_prefix('.') else {
        return Some((
            Number {
                whole,
                fraction: "",
            },
            rest,
        ));
    };
    let fraction_len = digits(after_dot);
    if fraction_len == 0 {
        return None;
    }
    let (fraction, rest) = after_dot.split_at(fraction_len);
    Some((Number { whole, fraction }, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(ms(500)));
        assert_eq!(duration("1s"), Ok(ms(1000)));
        assert_eq!(duration("1.5s"), Ok(ms(1500)));
        assert_eq!(duration("10m"), Ok(ms(600_000)));
        assert_eq!(duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(duration("1h2m3s4ms"), Ok(ms(3_723_004)));
        assert_eq!(duration("0s"), Ok(ms(0)));
        assert_eq!(duration("0.25ms"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn durations_refused() {
        for bad in [
            "",
            "s",
            "1.s",
            ".5s",
            "-1s",
            "1 s",
            " 1s",
            "1s ",
            "1.5",
            "30s1m",
            "1s1s",
            "1d",
            "1S",
            "1e3s",
            "0.0000000001s",
        ] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
        let problem = duration("99999999999999999h").unwrap_err();
        assert_eq!(problem.reason, "it is too long");
    }

    #[test]
    fn duration_hints() {
        let no_unit = duration("10").unwrap_err();
        assert_eq!(no_unit.reason, "it has no unit");
        assert_eq!(no_unit.hint.as_deref(), Some("write a unit: \"10s\""));
        let spelled = duration("10sec").unwrap_err();
        assert_eq!(spelled.hint.as_deref(), Some("write \"10s\""));
        assert_eq!(
            duration("2min").unwrap_err().hint.as_deref(),
            Some("write \"2m\"")
        );
        assert_eq!(
            duration("5S").unwrap_err().hint.as_deref(),
            Some("write \"5s\"")
        );
        assert_eq!(duration("1 s").unwrap_err().hint, None);
    }

    #[test]
    fn sizes() {
        assert_eq!(size("128Mi"), Ok(128 << 20));
        assert_eq!(size("1Gi"), Ok(1 << 30));
        assert_eq!(size("512Ki"), Ok(512 << 10));
        assert_eq!(size("1Ti"), Ok(1 << 40));
        assert_eq!(size("100M"), Ok(100_000_000));
        assert_eq!(size("1G"), Ok(1_000_000_000));
        assert_eq!(size("500k"), Ok(500_000));
        assert_eq!(size("500K"), Ok(500_000));
        assert_eq!(size("2T"), Ok(2_000_000_000_000));
        assert_eq!(size("1048576"), Ok(1_048_576));
        assert_eq!(size("1.5Gi"), Ok(3 << 29));
    }

    #[test]
    fn sizes_refused() {
        for bad in [
            "",
            "Mi",
            "-1Mi",
            "1 Mi",
            "1mi",
            "1m",
            "1.5",
            "0.1",
            "99999999999Ti",
            "1.Mi",
        ] {
            assert!(size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            size("128MB").unwrap_err().hint.as_deref(),
            Some("write \"128M\"")
        );
        assert_eq!(
            size("128MiB").unwrap_err().hint.as_deref(),
            Some("write \"128Mi\"")
        );
        assert_eq!(
            size("1gb").unwrap_err().hint.as_deref(),
            Some(SIZE_UNITS_HINT)
        );
    }
}
