//! The backend-independent view of an input filter: chains of rules with what each rule
//! matches and decides, and the evaluation of an input chain into "default deny?" and "which
//! ports does it accept from anywhere?".

use std::collections::BTreeMap;

/// What a rule does with a matching packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// Continue in another chain, coming back unless it is a `goto`.
    Jump(String),
    Goto(String),
    Return,
    /// Logging, counting, marking: the packet goes on to the next rule.
    None,
}

/// Address families a rule or chain applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
    Both,
}

impl Family {
    pub fn covers(self, other: Family) -> bool {
        self == Family::Both || self == other
    }
}

/// One rule, reduced to what the judgement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub verdict: Verdict,
    /// Only packets from the loopback interface match.
    pub loopback_only: bool,
    /// A source address, set or interface restriction narrows who matches.
    pub source_restricted: bool,
    /// Only packets of established/related connections match (no new connection is let in).
    pub established_only: bool,
    /// `tcp`, `udp`, `icmp`…; `None` for any protocol.
    pub protocol: Option<String>,
    /// Destination ports as written (`22`, `8000-8100`); `None` for every port.
    pub ports: Option<Vec<String>>,
    /// Conditions the model does not understand (marks, negations…): the rule is narrower than
    /// it looks, so it is neither an opening nor a default.
    pub unknown: Vec<String>,
    pub family: Family,
    /// `file:line` or a description of where the rule is.
    pub location: String,
}

impl Rule {
    pub fn new(location: impl Into<String>) -> Self {
        Rule {
            verdict: Verdict::None,
            loopback_only: false,
            source_restricted: false,
            established_only: false,
            protocol: None,
            ports: None,
            unknown: Vec::new(),
            family: Family::Both,
            location: location.into(),
        }
    }

    /// True when the rule matches every packet (of its family).
    fn unconditional(&self) -> bool {
        !self.loopback_only
            && !self.source_restricted
            && !self.established_only
            && self.protocol.is_none()
            && self.ports.is_none()
            && self.unknown.is_empty()
    }
}

/// A chain; base chains hooked on input carry a policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// `Some(true)` for policy drop/reject, `Some(false)` accept, `None` for regular chains.
    pub policy_drop: Option<bool>,
    pub family: Option<Family>,
    pub rules: Vec<Rule>,
    /// Where the chain (or its policy) is defined.
    pub location: String,
}

/// A whole ruleset: chain name → chain; `input` names the base chains on the input hook.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub chains: BTreeMap<String, Chain>,
    pub input: Vec<String>,
}

/// A port accepted from any source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Open {
    pub protocol: String,
    pub port: String,
    pub location: String,
}

impl Open {
    /// `22/tcp`, `*/any`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.port, self.protocol)
    }
}

/// How one family's input path is filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyVerdict {
    /// Where the default deny comes from, if there is one.
    pub deny: Option<String>,
    /// A rule that accepts everything before any default deny.
    pub accept_all: Option<String>,
    pub open: Vec<Open>,
}

const MAX_JUMPS: usize = 16;

/// Evaluates the input path for one family.
pub fn evaluate(ruleset: &Ruleset, family: Family) -> FamilyVerdict {
    let mut result = FamilyVerdict {
        deny: None,
        accept_all: None,
        open: Vec::new(),
    };
    for name in &ruleset.input {
        let Some(chain) = ruleset.chains.get(name) else {
            continue;
        };
        if !chain.family.unwrap_or(Family::Both).covers(family) {
            continue;
        }
        let mut walk = Walk::default();
        walk_chain(ruleset, chain, family, &mut walk, 0, false);
        // Several input chains: a packet must pass all, so a deny anywhere counts.
        let deny = if walk.ended_by.is_some() {
            walk.ended_by.clone()
        } else if chain.policy_drop == Some(true) {
            Some(format!("policy drop ({})", chain.location))
        } else {
            None
        };
        if let Some(d) = deny {
            result.deny.get_or_insert(d);
            // Accepts of chains that end in a deny are the real openings.
            result.open.extend(walk.open);
            if result.accept_all.is_none() {
                result.accept_all = walk.accept_all;
            }
        } else if result.accept_all.is_none() {
            result.accept_all = walk.accept_all;
        }
    }
    result.open.sort();
    result
        .open
        .dedup_by(|a, b| a.protocol == b.protocol && a.port == b.port);
    result
}

#[derive(Default)]
struct Walk {
    open: Vec<Open>,
    accept_all: Option<String>,
    /// An unconditional drop or reject: nothing after it is reached.
    ended_by: Option<String>,
}

fn walk_chain(
    ruleset: &Ruleset,
    chain: &Chain,
    family: Family,
    walk: &mut Walk,
    depth: usize,
    restricted: bool,
) {
    for rule in &chain.rules {
        if walk.ended_by.is_some() || walk.accept_all.is_some() {
            return;
        }
        if !rule.family.covers(family) {
            continue;
        }
        let narrowed = restricted || !rule.unconditional();
        match &rule.verdict {
            Verdict::Accept => {
                if rule.loopback_only
                    || rule.source_restricted
                    || rule.established_only
                    || !rule.unknown.is_empty()
                    || restricted
                {
                    continue;
                }
                let protocol = rule.protocol.clone().unwrap_or_else(|| "any".into());
                if is_icmp(&protocol) {
                    continue;
                }
                match &rule.ports {
                    Some(ports) => walk.open.extend(ports.iter().map(|p| Open {
                        protocol: protocol.clone(),
                        port: p.clone(),
                        location: rule.location.clone(),
                    })),
                    None if rule.protocol.is_none() => {
                        walk.accept_all = Some(rule.location.clone());
                    }
                    None => walk.open.push(Open {
                        protocol,
                        port: "*".into(),
                        location: rule.location.clone(),
                    }),
                }
            }
            Verdict::Drop if !narrowed => {
                walk.ended_by = Some(format!("final drop rule ({})", rule.location));
            }
            Verdict::Jump(target) | Verdict::Goto(target) => {
                if depth < MAX_JUMPS
                    && let Some(next) = ruleset.chains.get(target)
                {
                    walk_chain(ruleset, next, family, walk, depth + 1, narrowed);
                }
                if matches!(rule.verdict, Verdict::Goto(_)) && !narrowed {
                    return;
                }
            }
            Verdict::Return if !narrowed => return,
            _ => {}
        }
    }
}

fn is_icmp(protocol: &str) -> bool {
    protocol.split(',').all(|p| {
        matches!(
            p.trim(),
            "icmp" | "icmpv6" | "ipv6-icmp" | "ipv6-icmpv6" | "1" | "58"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verdict: Verdict, f: impl FnOnce(&mut Rule)) -> Rule {
        let mut r = Rule::new("x");
        r.verdict = verdict;
        f(&mut r);
        r
    }

    #[test]
    fn policy_and_final_rules_make_a_default_deny() {
        let mut ruleset = Ruleset::default();
        ruleset.input.push("input".into());
        ruleset.chains.insert(
            "input".into(),
            Chain {
                policy_drop: Some(false),
                family: Some(Family::Both),
                rules: vec![
                    rule(Verdict::Accept, |r| r.loopback_only = true),
                    rule(Verdict::Accept, |r| r.established_only = true),
                    rule(Verdict::Jump("services".into()), |_| {}),
                    rule(Verdict::Accept, |r| r.protocol = Some("icmp".into())),
                    rule(Verdict::Drop, |_| {}),
                    rule(Verdict::Accept, |r| {
                        r.protocol = Some("tcp".into());
                        r.ports = Some(vec!["23".into()]);
                    }),
                ],
                location: "input".into(),
            },
        );
        ruleset.chains.insert(
            "services".into(),
            Chain {
                rules: vec![
                    rule(Verdict::Accept, |r| {
                        r.protocol = Some("tcp".into());
                        r.ports = Some(vec!["22".into(), "443".into()]);
                    }),
                    rule(Verdict::Accept, |r| {
                        r.protocol = Some("tcp".into());
                        r.ports = Some(vec!["5432".into()]);
                        r.source_restricted = true;
                    }),
                ],
                ..Chain::default()
            },
        );
        let v = evaluate(&ruleset, Family::V4);
        assert_eq!(v.deny.as_deref(), Some("final drop rule (x)"));
        let ids: Vec<String> = v.open.iter().map(Open::id).collect();
        // Port 23 comes after the final drop: unreachable.
        assert_eq!(ids, ["22/tcp", "443/tcp"]);
        assert!(v.accept_all.is_none());
    }

    #[test]
    fn an_unconditional_accept_opens_everything() {
        let mut ruleset = Ruleset::default();
        ruleset.input.push("INPUT".into());
        ruleset.chains.insert(
            "INPUT".into(),
            Chain {
                policy_drop: Some(true),
                family: Some(Family::V4),
                rules: vec![rule(Verdict::Accept, |_| {})],
                location: "rules.v4".into(),
            },
        );
        let v = evaluate(&ruleset, Family::V4);
        assert_eq!(v.accept_all.as_deref(), Some("x"));
        assert_eq!(v.deny.as_deref(), Some("policy drop (rules.v4)"));
        // The v4 chain says nothing about IPv6.
        let v6 = evaluate(&ruleset, Family::V6);
        assert!(v6.deny.is_none());
    }
}
