//! The firewall front-ends' own files: ufw (`ufw.conf`, `/etc/default/ufw`, the rule tuples in
//! `user.rules`/`user6.rules`) and firewalld (`firewalld.conf`, zone and service XML).

use std::collections::BTreeMap;

use super::model::Open;

/// `KEY=value` shell-style assignments (quotes removed).
pub fn parse_shell_vars(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim();
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                let v = v.trim();
                let v = v.split(" #").next().unwrap_or(v).trim();
                out.insert(
                    k.to_string(),
                    v.trim_matches(|c| c == '"' || c == '\'').to_string(),
                );
            }
        }
    }
    out
}

/// One ufw rule from a `### tuple ###` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UfwTuple {
    pub action: String,
    pub protocol: String,
    pub dport: String,
    pub source: String,
    pub direction: String,
    pub line: usize,
}

/// `### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in` (optionally with application names
/// before the direction: `… 0.0.0.0/0 OpenSSH - in`).
pub fn parse_ufw_tuples(text: &str) -> Vec<UfwTuple> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("### tuple ###") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 7 {
            continue;
        }
        let direction = fields.last().copied().unwrap_or("in");
        out.push(UfwTuple {
            action: fields[0].to_string(),
            protocol: fields[1].to_string(),
            dport: fields[2].to_string(),
            source: fields[5].to_string(),
            direction: direction.to_string(),
            line: index + 1,
        });
    }
    out
}

/// Ports a ufw rule opens to the world, if it does.
pub fn ufw_open(tuple: &UfwTuple, file: &str) -> Vec<Open> {
    let world = matches!(tuple.source.as_str(), "0.0.0.0/0" | "::/0" | "any");
    let inbound = tuple.direction == "in" || tuple.direction.starts_with("in_");
    if !world || !inbound || !matches!(tuple.action.as_str(), "allow" | "limit") {
        return Vec::new();
    }
    let protocols: Vec<&str> = match tuple.protocol.as_str() {
        "any" => vec!["tcp", "udp"],
        p => vec![p],
    };
    let mut out = Vec::new();
    for protocol in protocols {
        for port in tuple.dport.split(',') {
            out.push(Open {
                protocol: protocol.to_string(),
                port: if port == "any" {
                    "*".into()
                } else {
                    port.replace(':', "-")
                },
                location: format!("{file}:{}", tuple.line),
            });
        }
    }
    out
}

/// One XML element's name and attributes (no nesting is kept: enough for zone files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    /// True for a closing tag `</rule>`.
    pub closing: bool,
}

/// A forgiving scan of XML start, empty and end tags; comments and declarations skipped.
pub fn scan_xml(text: &str) -> Vec<Element> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = match after.find("-->") {
                Some(end) => &after[end + 3..],
                None => "",
            };
            continue;
        }
        let Some(end) = rest.find('>') else {
            break;
        };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let closing = tag.starts_with('/');
        let tag = tag.trim_start_matches('/').trim_end_matches('/');
        let mut parts = tag.splitn(2, char::is_whitespace);
        let name = parts.next().unwrap_or("").to_string();
        let mut attrs = BTreeMap::new();
        let mut a = parts.next().unwrap_or("");
        while let Some(eq) = a.find('=') {
            let key = a[..eq].trim().to_string();
            let after = a[eq + 1..].trim_start();
            let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                break;
            };
            let Some(close) = after[1..].find(quote) else {
                break;
            };
            attrs.insert(key, xml_unescape(&after[1..1 + close]));
            a = &after[close + 2..];
        }
        out.push(Element {
            name,
            attrs,
            closing,
        });
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// What a firewalld zone lets in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    /// `default`, `ACCEPT`, `DROP`, `REJECT`, `%%REJECT%%`.
    pub target: String,
    pub services: Vec<String>,
    /// (port, protocol) from `<port>` elements and source-less rich rules.
    pub ports: Vec<(String, String)>,
    pub interfaces: Vec<String>,
    pub sources: Vec<String>,
}

/// Parses a zone file. Rich rules with a source are not openings to the world.
pub fn parse_zone(text: &str) -> Zone {
    let mut zone = Zone {
        target: "default".into(),
        ..Zone::default()
    };
    let mut in_rule = false;
    let mut rule_source = false;
    let mut rule_accept = false;
    let mut rule_services: Vec<String> = Vec::new();
    let mut rule_ports: Vec<(String, String)> = Vec::new();
    for el in scan_xml(text) {
        let attr = |k: &str| el.attrs.get(k).cloned().unwrap_or_default();
        match (el.name.as_str(), el.closing) {
            ("zone", false) => {
                if let Some(t) = el.attrs.get("target") {
                    zone.target = t.clone();
                }
            }
            ("rule", false) => {
                in_rule = true;
                rule_source = false;
                rule_accept = false;
                rule_services.clear();
                rule_ports.clear();
            }
            ("rule", true) => {
                if rule_accept && !rule_source {
                    zone.services.append(&mut rule_services);
                    zone.ports.append(&mut rule_ports);
                }
                in_rule = false;
            }
            ("source", false) if in_rule => rule_source = true,
            ("source", false) => zone.sources.push(attr("address")),
            ("accept", false) if in_rule => rule_accept = true,
            ("service", false) if in_rule => rule_services.push(attr("name")),
            ("service", false) => zone.services.push(attr("name")),
            ("port", false) if in_rule => rule_ports.push((attr("port"), attr("protocol"))),
            ("port", false) => zone.ports.push((attr("port"), attr("protocol"))),
            ("interface", false) => zone.interfaces.push(attr("name")),
            _ => {}
        }
    }
    zone
}

/// Ports of a firewalld service definition.
pub fn parse_service(text: &str) -> Vec<(String, String)> {
    scan_xml(text)
        .into_iter()
        .filter(|e| e.name == "port" && !e.closing)
        .map(|e| {
            (
                e.attrs.get("port").cloned().unwrap_or_default(),
                e.attrs.get("protocol").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// Ports of the services most zones name, for hosts whose service files are not readable.
pub fn builtin_service(name: &str) -> Option<Vec<(&'static str, &'static str)>> {
    Some(match name {
        "ssh" => vec![("22", "tcp")],
        "dhcpv6-client" => vec![("546", "udp")],
        "dhcp" => vec![("67", "udp")],
        "http" => vec![("80", "tcp")],
        "https" => vec![("443", "tcp")],
        "cockpit" => vec![("9090", "tcp")],
        "mdns" => vec![("5353", "udp")],
        "samba-client" => vec![("137", "udp"), ("138", "udp")],
        "mysql" => vec![("3306", "tcp")],
        "postgresql" => vec![("5432", "tcp")],
        "dns" => vec![("53", "tcp"), ("53", "udp")],
        "ntp" => vec![("123", "udp")],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ufw_files() {
        let vars = parse_shell_vars(
            "# comment\nENABLED=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nIPV6=yes # v6 too\nbad line\n",
        );
        assert_eq!(vars["ENABLED"], "yes");
        assert_eq!(vars["DEFAULT_INPUT_POLICY"], "DROP");
        assert_eq!(vars["IPV6"], "yes");
        let tuples = parse_ufw_tuples(
            "*filter\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\
             ### tuple ### allow any 80,443 0.0.0.0/0 any 10.0.0.0/8 in\n### tuple ### limit tcp 2222 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in\n\
             ### tuple ### deny udp 53 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 out\n### tuple ### short\n",
        );
        assert_eq!(tuples.len(), 5);
        let open: Vec<String> = tuples
            .iter()
            .flat_map(|t| ufw_open(t, "u"))
            .map(|o| o.id())
            .collect();
        assert_eq!(open, ["22/tcp", "2222/tcp"]);
    }

    #[test]
    fn reads_firewalld_zones() {
        let zone = parse_zone(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- <service name=\"telnet\"/> -->\n<zone target=\"DROP\">\n  <short>Public</short>\n\
             <service name=\"ssh\"/>\n  <port port=\"8080\" protocol=\"tcp\"/>\n  <interface name=\"eth0\"/>\n\
             <rule family=\"ipv4\"><source address=\"10.0.0.0/8\"/><service name=\"postgresql\"/><accept/></rule>\n\
             <rule><port port=\"9000-9010\" protocol=\"udp\"/><accept/></rule>\n<rule><service name=\"ftp\"/><reject/></rule>\n</zone>\n",
        );
        assert_eq!(zone.target, "DROP");
        assert_eq!(zone.services, ["ssh"]);
        assert_eq!(
            zone.ports,
            [
                ("8080".to_string(), "tcp".to_string()),
                ("9000-9010".to_string(), "udp".to_string())
            ]
        );
        assert_eq!(zone.interfaces, ["eth0"]);
        assert_eq!(parse_zone("<zone>").target, "default");
        assert_eq!(
            parse_service("<service><port protocol=\"tcp\" port=\"22\"/></service>"),
            [("22".to_string(), "tcp".to_string())]
        );
        assert!(
            scan_xml("<a b=\"unterminated").is_empty()
                || scan_xml("<a b=\"unterminated").len() == 1
        );
        assert!(scan_xml("<<<>>><!--").len() <= 2);
    }
}
