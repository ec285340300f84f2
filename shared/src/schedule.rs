//! Cron schedules (the `cron` crate) for agent checks and ISMS measurements, accepting the
//! classic five-field form (`*/15 * * * *`) as well as six and seven fields with seconds first.

use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    inner: cron::Schedule,
    text: String,
}

/// Parses a cron expression; five fields mean "at second 0".
pub fn parse(text: &str) -> Result<Schedule, String> {
    let fields = text.split_whitespace().count();
    let expanded = match fields {
        5 => format!("0 {text}"),
        6 | 7 => text.to_string(),
        _ => {
            return Err(format!(
                "{text:?} has {fields} fields; use five (min hour day month weekday) or six with seconds first"
            ));
        }
    };
    let inner = cron::Schedule::from_str(&expanded).map_err(|e| {
        // The crate's message repeats the expression with a caret on separate lines; keep the
        // explanation, which is the last line.
        let message = e.to_string();
        let reason = message
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && l.trim() != "^")
            .unwrap_or("invalid")
            .trim()
            .to_string();
        format!("{text:?}: {reason}")
    })?;
    Ok(Schedule {
        inner,
        text: text.to_string(),
    })
}

impl Schedule {
    /// The first time strictly after `after` the schedule fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.inner.after(&after).next()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_field_forms_parse() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:07:30Z")
            .unwrap()
            .to_utc();
        let five = parse("*/15 * * * *").unwrap();
        assert_eq!(
            five.next_after(at).unwrap().to_rfc3339(),
            "2026-01-01T10:15:00+00:00"
        );
        let six = parse("30 0 * * * *").unwrap();
        assert_eq!(
            six.next_after(at).unwrap().to_rfc3339(),
            "2026-01-01T11:00:30+00:00"
        );
    }

    #[test]
    fn nonsense_is_refused_with_the_expression() {
        let err = parse("every minute").unwrap_err();
        assert!(err.contains("\"every minute\""), "{err}");
        assert!(parse("61 * * * *").is_err());
    }
}
