//! Host selectors for the ISMS scope and for exceptions: a selector is a set of label
//! conditions that must all hold (`{ env = "prod", role = "web*" }`); a list of selectors
//! matches when any of them does. Values may use `*` as a wildcard. Besides the labels a host
//! sends and the labels assigned on the collector, every host has the built-in labels
//! `hostname`, `machine_id`, `agent`, `os` (os-release `ID`) and `os_version`.

use std::collections::BTreeMap;

use serde::Serialize;

/// One selector: every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selector(pub BTreeMap<String, String>);

/// The labels of a host as selectors see them.
pub type HostLabels = BTreeMap<String, String>;

impl Selector {
    pub fn matches(&self, labels: &HostLabels) -> bool {
        self.0.iter().all(|(key, pattern)| {
            labels
                .get(key)
                .is_some_and(|value| glob_match(pattern, value))
        })
    }
}

/// True when any selector matches (an empty list matches nothing).
pub fn any_matches(selectors: &[Selector], labels: &HostLabels) -> bool {
    selectors.iter().any(|s| s.matches(labels))
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let mut rest = value;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(stripped) = rest.strip_prefix(part) else {
                return false;
            };
            rest = stripped;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HostLabels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn all_conditions_must_hold() {
        let s = Selector(labels(&[("env", "prod"), ("role", "web*")]));
        assert!(s.matches(&labels(&[("env", "prod"), ("role", "web-frontend")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("role", "db")])));
        assert!(!s.matches(&labels(&[("role", "web")])));
        assert!(Selector::default().matches(&labels(&[])));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("*.example.com", "db1.example.com"));
        assert!(!glob_match("*.example.com", "example.com"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXcYb"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }
}
