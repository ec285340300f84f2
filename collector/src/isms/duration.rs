//! Durations in the ISMS files: `90s`, `30m`, `12h`, `14d`, `2w`, or combinations (`1d12h`).

use chrono::Duration;

/// Parses a duration; the error says what was expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. \"14d\", \"12h\", \"30m\"".into());
    }
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if number.is_empty() {
            return Err(format!("{text:?}: expected a number before {c:?}"));
        }
        let n: i64 = number
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        number.clear();
        let part = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?}; use s, m, h, d or w"
                ));
            }
        }
        .ok_or_else(|| format!("{text:?}: too large"))?;
        total = total
            .checked_add(&part)
            .ok_or_else(|| format!("{text:?}: too large"))?;
    }
    if !number.is_empty() {
        return Err(format!(
            "{text:?}: missing unit after {number}; use s, m, h, d or w (e.g. \"{number}d\")"
        ));
    }
    Ok(total)
}

/// Renders a duration in the same notation, largest units first.
pub fn render(duration: Duration) -> String {
    let mut secs = duration.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ('w', 604_800),
        ('d', 86_400),
        ('h', 3_600),
        ('m', 60),
        ('s', 1),
    ] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations() {
        assert_eq!(parse("14d").unwrap(), Duration::days(14));
        assert_eq!(parse("1d12h").unwrap(), Duration::hours(36));
        assert_eq!(parse("2w").unwrap(), Duration::days(14));
        assert_eq!(parse(" 90s ").unwrap(), Duration::seconds(90));
        assert_eq!(render(Duration::hours(36)), "1d12h");
        assert_eq!(render(Duration::days(14)), "2w");
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(parse("14").unwrap_err().contains("missing unit"));
        assert!(parse("14y").unwrap_err().contains("unknown unit"));
        assert!(parse("d").unwrap_err().contains("expected a number"));
        assert!(parse("").is_err());
        assert!(parse("99999999999999999999d").is_err());
    }
}
