//! `iptables-save` format (`/etc/iptables/rules.v4`, RHEL `/etc/sysconfig/iptables`, ufw's
//! `user.rules`) reduced to the [`Ruleset`] model: the `filter` table's `INPUT` chain and the
//! chains it jumps to.

use super::model::{Chain, Family, Rule, Ruleset, Verdict};

/// `-A CHAIN …` words, with `"…"` quoting as iptables-save writes comments.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if any || !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => current.push(c),
        }
    }
    if any || !current.is_empty() {
        words.push(current);
    }
    words
}

/// Parses a saved ruleset for one family.
pub fn parse_iptables_save(text: &str, file: &str, family: Family) -> Ruleset {
    let mut ruleset = Ruleset::default();
    let mut in_filter = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let location = format!("{file}:{}", index + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(table) = line.strip_prefix('*') {
            in_filter = table.trim() == "filter";
            continue;
        }
        if line == "COMMIT" {
            in_filter = false;
            continue;
        }
        if !in_filter {
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut parts = decl.split_whitespace();
            let (Some(name), Some(policy)) = (parts.next(), parts.next()) else {
                continue;
            };
            let chain = ruleset.chains.entry(name.to_string()).or_default();
            chain.family = Some(family);
            chain.location = location.clone();
            if name == "INPUT" {
                chain.policy_drop = Some(policy != "ACCEPT");
                if !ruleset.input.iter().any(|c| c == "INPUT") {
                    ruleset.input.push("INPUT".into());
                }
            }
            continue;
        }
        let words = split_words(line);
        let (Some(op), Some(chain)) = (words.first(), words.get(1)) else {
            continue;
        };
        if op != "-A" && op != "-I" && op != "--append" && op != "--insert" {
            continue;
        }
        let rule = parse_rule(&words[2..], &location, family);
        let entry = ruleset
            .chains
            .entry(chain.clone())
            .or_insert_with(|| Chain {
                family: Some(family),
                ..Chain::default()
            });
        if op.starts_with("-I") || op == "--insert" {
            entry.rules.insert(0, rule);
        } else {
            entry.rules.push(rule);
        }
    }
    ruleset
}

fn parse_rule(words: &[String], location: &str, family: Family) -> Rule {
    let mut rule = Rule::new(location);
    rule.family = family;
    let mut i = 0;
    let mut negate = false;
    while i < words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        if w == "!" {
            negate = true;
            i += 1;
            continue;
        }
        let was_negated = std::mem::take(&mut negate);
        match w {
            "-i" | "--in-interface" => {
                if was_negated {
                    rule.unknown.push(format!("! -i {}", next.unwrap_or("")));
                } else if next == Some("lo") {
                    rule.loopback_only = true;
                } else {
                    rule.source_restricted = true;
                }
                i += 2;
            }
            "-s" | "--source" | "--src" => {
                let any = matches!(next, Some("0.0.0.0/0" | "::/0" | "0/0"));
                if was_negated {
                    rule.unknown.push(format!("! -s {}", next.unwrap_or("")));
                } else if !any {
                    rule.source_restricted = true;
                }
                i += 2;
            }
            "-p" | "--protocol" => {
                if was_negated {
                    rule.unknown.push(format!("! -p {}", next.unwrap_or("")));
                } else {
                    rule.protocol = next.map(|p| p.to_ascii_lowercase());
                }
                i += 2;
            }
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                if was_negated {
                    rule.unknown.push(format!("! {w}"));
                } else {
                    rule.ports = next.map(|p| {
                        p.split(',')
                            .map(|x| super::nft::service_port(&x.replace(':', "-")))
                            .collect()
                    });
                }
                i += 2;
            }
            "--state" | "--ctstate" => {
                let states: Vec<&str> = next.unwrap_or("").split(',').collect();
                if !was_negated
                    && states
                        .iter()
                        .all(|s| *s == "ESTABLISHED" || *s == "RELATED")
                {
                    rule.established_only = true;
                } else if was_negated || !states.contains(&"NEW") {
                    rule.unknown.push(format!("state {}", next.unwrap_or("")));
                }
                i += 2;
            }
            "--match-set" => {
                rule.source_restricted = true;
                i += 3;
            }
            "-m" | "--match" => {
                // Module names carry no condition by themselves.
                i += 2;
            }
            "--comment" | "--log-prefix" | "--log-level" | "--reject-with" | "--limit"
            | "--limit-burst" => i += 2,
            "--icmp-type" | "--icmpv6-type" => {
                rule.protocol = Some("icmp".into());
                i += 2;
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let target = next.unwrap_or("");
                rule.verdict = match target {
                    "ACCEPT" => Verdict::Accept,
                    "DROP" | "REJECT" => Verdict::Drop,
                    "RETURN" => Verdict::Return,
                    "LOG" | "NFLOG" | "ULOG" | "MARK" | "CONNMARK" | "CT" | "NOTRACK" | "TRACE" => {
                        Verdict::None
                    }
                    chain if w.starts_with("-g") || w == "--goto" => {
                        Verdict::Goto(chain.to_string())
                    }
                    chain => Verdict::Jump(chain.to_string()),
                };
                i += 2;
            }
            other if other.starts_with('-') => {
                // An option we do not model narrows the rule; skip its argument if it has one.
                rule.unknown.push(other.to_string());
                i += if next.is_some_and(|n| !n.starts_with('-')) {
                    2
                } else {
                    1
                };
            }
            _ => i += 1,
        }
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::super::model::evaluate;
    use super::*;

    #[test]
    fn reads_a_saved_ruleset() {
        let text = "# Generated by iptables-save v1.8.9\n*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080\nCOMMIT\n\
                    *filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:services - [0:0]\n\
                    -A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
                    -A INPUT -p icmp -j ACCEPT\n-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 5432 -j ACCEPT\n\
                    -A INPUT -j services\n-A services -p tcp -m multiport --dports 80,443,8000:8100 -m comment --comment \"web \\\"tier\\\"\" -j ACCEPT\n\
                    -A services ! -s 192.168.0.0/16 -p tcp --dport 22 -j ACCEPT\n-A INPUT -p udp --dport 53 -j LOG --log-prefix \"dns \"\nCOMMIT\n";
        let r = parse_iptables_save(text, "/etc/iptables/rules.v4", Family::V4);
        let v = evaluate(&r, Family::V4);
        assert_eq!(
            v.deny.as_deref(),
            Some("policy drop (/etc/iptables/rules.v4:7)")
        );
        let ids: Vec<String> = v.open.iter().map(|o| o.id()).collect();
        assert_eq!(ids, ["443/tcp", "80/tcp", "8000-8100/tcp"]);
    }

    #[test]
    fn accept_policy_with_final_reject_and_open_everything() {
        let r = parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 3306 -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n",
            "x",
            Family::V4,
        );
        assert_eq!(
            evaluate(&r, Family::V4).deny.as_deref(),
            Some("final drop rule (x:4)")
        );
        let r = parse_iptables_save(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n",
            "x",
            Family::V4,
        );
        let v = evaluate(&r, Family::V4);
        assert!(v.deny.is_none());
        assert_eq!(v.accept_all.as_deref(), Some("x:3"));
        assert_eq!(
            split_words("-m comment --comment \"\" -j X"),
            ["-m", "comment", "--comment", "", "-j", "X"]
        );
    }
}
