//! Human-written durations such as `500ms`, `5s`, `2m`, `1h`.
//!
//! A bare number is refused on purpose: `timeout: 10` could mean seconds or milliseconds,
//! and guessing wrong by a factor of 1000 is the kind of mistake a config checker exists to
//! catch.

use std::time::Duration;

/// What the error message tells the user to write.
pub const ACCEPTED_FORMS: &str =
    "expected a whole number followed by a unit: ms, s, m or h (e.g. 500ms, 5s, 2m, 1h)";

/// The longest duration any setting takes. Nothing pullkeeper times is longer than a
/// week, and a bound keeps `now + duration` from overflowing the clock at start-up.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses `<digits><unit>`; the error says which forms are accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let bad = || format!("invalid duration {text:?}: {ACCEPTED_FORMS}");
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("duration {text:?} is too large: at most 168h (a week)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejected_forms_name_the_accepted_ones() {
        for bad in ["10", "s", "1.5s", "-1s", "5 sec", "5S", "", "1d"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("500ms, 5s, 2m, 1h"), "{bad}: {e}");
        }
        assert!(parse_duration("99999999999999999999h").is_err());
        assert_eq!(parse_duration("168h"), Ok(MAX_DURATION));
        assert!(parse_duration("169h").unwrap_err().contains("at most 168h"));
        assert!(
            parse_duration("18446744073709551615h")
                .unwrap_err()
                .contains("too large")
        );
    }
}
