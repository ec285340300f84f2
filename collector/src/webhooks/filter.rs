//! Per-webhook filters: event kinds, lowest severity, controls or themes, host selectors.

use super::event::{Event, EventKind, Severity};
use crate::isms::selector::{self, Selector};

/// Every set condition must hold; an empty list means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub kinds: Vec<EventKind>,
    pub min_severity: Option<Severity>,
    /// Control ids (`A.8.8`) or themes (`A.8`).
    pub controls: Vec<String>,
    pub hosts: Vec<Selector>,
}

impl Filter {
    pub fn accepts(&self, event: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&event.kind) {
            return false;
        }
        if self.min_severity.is_some_and(|min| event.severity < min) {
            return false;
        }
        if !self.controls.is_empty()
            && !event.controls.iter().any(|c| {
                self.controls.iter().any(|wanted| {
                    c == wanted
                        || c.strip_prefix(wanted.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                })
            })
        {
            return false;
        }
        if !self.hosts.is_empty() {
            let Some(host) = &event.host else {
                return false;
            };
            if !selector::any_matches(&self.hosts, &host.labels) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::webhooks::event::EventHost;
    use crate::webhooks::testdata::sample_events;

    fn host_event(env: &str) -> Event {
        let mut e = sample_events()[0].clone();
        e.host = Some(EventHost {
            machine_id: "m1".into(),
            hostname: "web-01".into(),
            labels: BTreeMap::from([("env".to_string(), env.to_string())]),
            last_seen: None,
        });
        e
    }

    #[test]
    fn an_empty_filter_accepts_everything() {
        for e in sample_events() {
            assert!(Filter::default().accepts(&e), "{}", e.id);
        }
    }

    #[test]
    fn kinds_severity_controls_and_hosts_each_narrow() {
        let events = sample_events();
        let opened = &events[0]; // nonconformity.opened, critical, A.8.8 / A.5.15, host web-01
        let kinds = Filter {
            kinds: vec![EventKind::NcClosed],
            ..Filter::default()
        };
        assert!(!kinds.accepts(opened));
        let sev = Filter {
            min_severity: Some(Severity::Critical),
            ..Filter::default()
        };
        assert!(sev.accepts(opened));
        let kpi = events
            .iter()
            .find(|e| e.kind == EventKind::KpiBreached)
            .unwrap();
        assert!(!sev.accepts(kpi), "a warning is below critical");
        for (wanted, accepted) in [
            ("A.8.8", true),
            ("A.8", true),
            ("A.8.88", false),
            ("A.8.1", false),
            ("A.5", true),
            ("A.6", false),
        ] {
            let f = Filter {
                controls: vec![wanted.into()],
                ..Filter::default()
            };
            assert_eq!(f.accepts(opened), accepted, "{wanted}");
        }
        let prod = Filter {
            hosts: vec![Selector(BTreeMap::from([(
                "env".to_string(),
                "pr*".to_string(),
            )]))],
            ..Filter::default()
        };
        assert!(prod.accepts(&host_event("prod")));
        assert!(!prod.accepts(&host_event("dev")));
        assert!(
            !prod.accepts(kpi),
            "an event about no host fails a host filter"
        );
    }
}
