//! nftables rulesets (`/etc/nftables.conf` with its includes, or `nft list ruleset` output)
//! reduced to the input-filter [`Ruleset`] model.
//!
//! Understood: `table`/`chain`/`set` blocks and the `add`/`insert rule` command forms,
//! `include` (globs, relative to `/etc`), `define`/`$var`, `flush ruleset`, base chains with
//! `type filter hook input … policy …`, and the rule expressions that decide exposure
//! (`iif lo`, `ip saddr`, `ct state`, `tcp dport`, `meta l4proto`, named and anonymous sets,
//! `accept`/`drop`/`reject`/`jump`/`goto`/`return`). Anything else in a rule is kept as an
//! unknown condition, which makes the rule narrower than an opening.

use std::collections::BTreeMap;

use super::model::{Chain, Family, Rule, Ruleset, Verdict};
use crate::checks::confdir::glob_match;
use crate::hostroot::{HostRoot, join};

const MAX_INCLUDE_DEPTH: usize = 16;

/// A token with its `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Quoted strings keep their text without quotes.
    pub quoted: bool,
    pub location: String,
}

/// Splits nft syntax into tokens; newlines and `;` are separators.
pub fn tokenize(text: &str, file: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    let push = |out: &mut Vec<Token>, text: String, quoted: bool, line: usize| {
        out.push(Token {
            text,
            quoted,
            location: format!("{file}:{line}"),
        });
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                push(&mut out, "\n".into(), false, line);
                line += 1;
            }
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
                line += 1;
            }
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '{' | '}' | ';' | ',' => push(&mut out, c.to_string(), false, line),
            '"' => {
                let mut s = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    s.push(c);
                }
                push(&mut out, s, true, line);
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | ',' | '"' | '#') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                push(&mut out, s, false, line);
            }
        }
    }
    out
}

/// Reads a file and splices in its `include`s.
pub fn load_tokens(
    root: &HostRoot,
    path: &str,
    sources: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Vec<Token> {
    let mut out = Vec::new();
    load_into(root, path, 0, sources, problems, &mut out);
    out
}

fn load_into(
    root: &HostRoot,
    path: &str,
    depth: usize,
    sources: &mut Vec<String>,
    problems: &mut Vec<String>,
    out: &mut Vec<Token>,
) {
    if depth > MAX_INCLUDE_DEPTH {
        problems.push(format!(
            "{path}: includes nested deeper than {MAX_INCLUDE_DEPTH}"
        ));
        return;
    }
    let text = match root.read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(e.to_string());
            return;
        }
    };
    sources.push(path.to_string());
    let tokens = tokenize(&text, path);
    let mut i = 0;
    let mut at_start = true;
    while i < tokens.len() {
        let t = &tokens[i];
        if at_start
            && !t.quoted
            && t.text == "include"
            && tokens.get(i + 1).is_some_and(|n| n.quoted)
        {
            let pattern = &tokens[i + 1].text;
            for file in expand_include(root, pattern) {
                load_into(root, &file, depth + 1, sources, problems, out);
                out.push(Token {
                    text: "\n".into(),
                    quoted: false,
                    location: t.location.clone(),
                });
            }
            i += 2;
            continue;
        }
        at_start = !t.quoted && matches!(t.text.as_str(), "\n" | ";" | "{" | "}");
        out.push(t.clone());
        i += 1;
    }
}

fn expand_include(root: &HostRoot, pattern: &str) -> Vec<String> {
    let path = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        join("/etc", pattern)
    };
    if !path.contains(['*', '?', '[']) {
        return vec![path];
    }
    let (dir, name) = path.rsplit_once('/').unwrap_or(("/", &path));
    let dir = if dir.is_empty() { "/" } else { dir };
    let mut files: Vec<String> = root
        .read_dir(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !n.starts_with('.') && glob_match(name, n))
        .map(|n| join(dir, &n))
        .filter(|p| root.metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    files.sort();
    files
}

/// A word of a statement: plain text or an anonymous set `{ a, b }`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Text(String),
    Set(Vec<String>),
}

#[derive(Debug, Clone)]
struct Stmt {
    words: Vec<Word>,
    location: String,
    block: Option<Vec<Stmt>>,
}

impl Stmt {
    fn text(&self, i: usize) -> Option<&str> {
        match self.words.get(i) {
            Some(Word::Text(t)) => Some(t),
            _ => None,
        }
    }
}

/// Which braces open a block in a context.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Top,
    Table,
    Body,
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    defines: BTreeMap<String, Vec<Word>>,
}

impl Parser<'_> {
    fn statements(&mut self, ctx: Ctx) -> Vec<Stmt> {
        let mut out = Vec::new();
        let mut current: Vec<Word> = Vec::new();
        let mut location = String::new();
        while self.pos < self.tokens.len() {
            let t = &self.tokens[self.pos];
            self.pos += 1;
            if !t.quoted && (t.text == "\n" || t.text == ";") {
                self.finish(&mut out, &mut current, &location, None);
                continue;
            }
            if !t.quoted && t.text == "}" {
                self.finish(&mut out, &mut current, &location, None);
                return out;
            }
            if current.is_empty() {
                location = t.location.clone();
            }
            if !t.quoted && t.text == "{" {
                if opens_block(ctx, &current) {
                    let inner = if matches!(first_keyword(&current), Some("table")) {
                        Ctx::Table
                    } else {
                        Ctx::Body
                    };
                    let block = self.statements(inner);
                    self.finish(&mut out, &mut current, &location, Some(block));
                } else {
                    let set = self.set_literal();
                    current.push(Word::Set(set));
                }
                continue;
            }
            if !t.quoted && t.text == "," {
                continue;
            }
            if !t.quoted
                && let Some(name) = t.text.strip_prefix('$')
            {
                match self.defines.get(name) {
                    Some(words) => current.extend(words.iter().cloned()),
                    None => current.push(Word::Text(t.text.clone())),
                }
                continue;
            }
            current.push(Word::Text(t.text.clone()));
        }
        self.finish(&mut out, &mut current, &location, None);
        out
    }

    fn set_literal(&mut self) -> Vec<String> {
        let mut items = Vec::new();
        let mut depth = 1;
        while self.pos < self.tokens.len() {
            let t = &self.tokens[self.pos];
            self.pos += 1;
            if !t.quoted {
                match t.text.as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            return items;
                        }
                    }
                    "," | "\n" | ";" => {}
                    text => match text.strip_prefix('$').and_then(|n| self.defines.get(n)) {
                        Some(words) => {
                            for w in words {
                                match w {
                                    Word::Text(s) => items.push(s.clone()),
                                    Word::Set(v) => items.extend(v.iter().cloned()),
                                }
                            }
                        }
                        None => items.push(text.to_string()),
                    },
                }
            } else {
                items.push(t.text.clone());
            }
        }
        items
    }

    fn finish(
        &mut self,
        out: &mut Vec<Stmt>,
        current: &mut Vec<Word>,
        location: &str,
        block: Option<Vec<Stmt>>,
    ) {
        if current.is_empty() && block.is_none() {
            return;
        }
        let words = std::mem::take(current);
        // `define NAME = value…` is resolved while parsing, like nft's scanner does.
        if let (Some(Word::Text(first)), Some(Word::Text(name))) = (words.first(), words.get(1))
            && first == "define"
        {
            let value: Vec<Word> = words
                .iter()
                .skip(2)
                .skip_while(|w| matches!(w, Word::Text(t) if t == "="))
                .cloned()
                .collect();
            self.defines.insert(name.clone(), value);
            return;
        }
        out.push(Stmt {
            words,
            location: location.to_string(),
            block,
        });
    }
}

fn first_keyword(words: &[Word]) -> Option<&str> {
    let mut it = words.iter().filter_map(|w| match w {
        Word::Text(t) => Some(t.as_str()),
        Word::Set(_) => None,
    });
    let first = it.next()?;
    if matches!(first, "add" | "create" | "insert" | "replace") {
        it.next()
    } else {
        Some(first)
    }
}

fn opens_block(ctx: Ctx, words: &[Word]) -> bool {
    let keyword = first_keyword(words);
    match ctx {
        Ctx::Top => matches!(
            keyword,
            Some("table" | "chain" | "set" | "map" | "flowtable")
        ),
        Ctx::Table => matches!(
            keyword,
            Some(
                "chain"
                    | "set"
                    | "map"
                    | "flowtable"
                    | "counter"
                    | "quota"
                    | "limit"
                    | "ct"
                    | "secmark"
                    | "synproxy"
            )
        ),
        Ctx::Body => false,
    }
}

fn family_of(word: &str) -> Option<Option<Family>> {
    match word {
        "ip" => Some(Some(Family::V4)),
        "ip6" => Some(Some(Family::V6)),
        "inet" => Some(Some(Family::Both)),
        "arp" | "bridge" | "netdev" => Some(None),
        _ => None,
    }
}

/// Builds the model from tokens.
pub fn parse_ruleset(tokens: &[Token]) -> Ruleset {
    let mut parser = Parser {
        tokens,
        pos: 0,
        defines: BTreeMap::new(),
    };
    let stmts = parser.statements(Ctx::Top);
    let mut builder = Builder::default();
    for stmt in &stmts {
        builder.top(stmt);
    }
    builder.finish()
}

#[derive(Default)]
struct Builder {
    chains: BTreeMap<String, Chain>,
    input: Vec<String>,
    sets: BTreeMap<String, Vec<String>>,
}

impl Builder {
    fn top(&mut self, stmt: &Stmt) {
        let command = stmt.text(0).unwrap_or("");
        let offset = usize::from(matches!(command, "add" | "create" | "insert" | "replace"));
        let Some(kind) = stmt.text(offset) else {
            return;
        };
        match kind {
            "flush" if stmt.text(offset + 1) == Some("ruleset") => *self = Builder::default(),
            "table" => {
                let (family, name) = table_ident(stmt, offset + 1);
                if let (Some(block), Some(family)) = (&stmt.block, family) {
                    for inner in block {
                        self.in_table(family, &name, inner);
                    }
                }
            }
            "chain" => {
                let (family, table) = table_ident(stmt, offset + 1);
                let skip = if stmt.text(offset + 1).and_then(family_of).is_some() {
                    3
                } else {
                    2
                };
                if let (Some(family), Some(chain)) = (family, stmt.text(offset + skip)) {
                    let key = chain_key(family, &table, chain);
                    self.declare_chain(
                        &key,
                        family,
                        stmt.block.as_deref().unwrap_or(&[]),
                        &stmt.location,
                    );
                }
            }
            "rule" => {
                let (family, table) = table_ident(stmt, offset + 1);
                let skip = if stmt.text(offset + 1).and_then(family_of).is_some() {
                    3
                } else {
                    2
                };
                if let (Some(family), Some(chain)) = (family, stmt.text(offset + skip)) {
                    let key = chain_key(family, &table, chain);
                    let words = &stmt.words[offset + skip + 1..];
                    let rule = self.rule(family, &table, words, &stmt.location);
                    let entry = self.chains.entry(key).or_default();
                    if command == "insert" {
                        entry.rules.insert(0, rule);
                    } else {
                        entry.rules.push(rule);
                    }
                }
            }
            _ => {}
        }
    }

    fn in_table(&mut self, family: Family, table: &str, stmt: &Stmt) {
        match stmt.text(0) {
            Some("chain") => {
                if let Some(name) = stmt.text(1) {
                    let key = chain_key(family, table, name);
                    self.declare_chain(
                        &key,
                        family,
                        stmt.block.as_deref().unwrap_or(&[]),
                        &stmt.location,
                    );
                }
            }
            Some("set") | Some("map") => {
                if let (Some(name), Some(block)) = (stmt.text(1), &stmt.block) {
                    let mut elements = Vec::new();
                    for inner in block {
                        if inner.text(0) == Some("elements") {
                            for w in &inner.words {
                                if let Word::Set(items) = w {
                                    elements.extend(items.iter().cloned());
                                }
                            }
                        }
                    }
                    self.sets.insert(format!("{table}/{name}"), elements);
                }
            }
            _ => {}
        }
    }

    fn declare_chain(&mut self, key: &str, family: Family, body: &[Stmt], location: &str) {
        let mut rules = Vec::new();
        let mut hook_input = false;
        let mut policy = None;
        let table = key.split(' ').nth(1).unwrap_or("").to_string();
        for stmt in body {
            match stmt.text(0) {
                Some("type") => {
                    let words: Vec<&str> =
                        (0..stmt.words.len()).filter_map(|i| stmt.text(i)).collect();
                    hook_input = words.windows(2).any(|w| w[0] == "hook" && w[1] == "input")
                        && words.get(1) == Some(&"filter");
                    if let Some(i) = words.iter().position(|w| *w == "policy") {
                        policy = words.get(i + 1).map(|p| *p != "accept");
                    }
                }
                Some("policy") => policy = stmt.text(1).map(|p| p != "accept"),
                Some("comment") | Some("devices") => {}
                Some(_) => rules.push(self.rule(family, &table, &stmt.words, &stmt.location)),
                None => {}
            }
        }
        let chain = self.chains.entry(key.to_string()).or_default();
        chain.family = Some(family);
        chain.rules.extend(rules);
        if chain.location.is_empty() {
            chain.location = location.to_string();
        }
        if hook_input {
            chain.policy_drop = Some(policy.unwrap_or(false));
            if !self.input.iter().any(|k| k == key) {
                self.input.push(key.to_string());
            }
        }
    }

    fn rule(&self, family: Family, table: &str, words: &[Word], location: &str) -> Rule {
        let mut rule = Rule::new(location);
        rule.family = family;
        let text = |i: usize| match words.get(i) {
            Some(Word::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        let values = |i: usize| -> Vec<String> {
            match words.get(i) {
                Some(Word::Text(t)) => match t.strip_prefix('@') {
                    Some(set) => self
                        .sets
                        .get(&format!("{table}/{set}"))
                        .cloned()
                        .unwrap_or_else(|| vec![t.clone()]),
                    None => vec![t.clone()],
                },
                Some(Word::Set(items)) => items.clone(),
                None => Vec::new(),
            }
        };
        let mut i = 0;
        while i < words.len() {
            let Some(w) = text(i) else {
                rule.unknown.push("{…}".into());
                i += 1;
                continue;
            };
            match w {
                "iif" | "iifname" => {
                    if text(i + 1) == Some("!=") {
                        rule.unknown.push(format!("{w} != …"));
                        i += 3;
                        continue;
                    }
                    let v = values(i + 1);
                    if v.iter().all(|x| x == "lo") {
                        rule.loopback_only = true;
                    } else {
                        rule.source_restricted = true;
                    }
                    i += 2;
                }
                "ip" | "ip6" => {
                    let field = text(i + 1).unwrap_or("");
                    if w == "ip" {
                        rule.family = Family::V4;
                    } else {
                        rule.family = Family::V6;
                    }
                    match field {
                        "saddr" => {
                            if text(i + 2) == Some("!=") {
                                rule.unknown.push(format!("{w} saddr != …"));
                                i += 4;
                                continue;
                            }
                            let v = values(i + 2);
                            if !v.iter().all(|a| a == "0.0.0.0/0" || a == "::/0") {
                                rule.source_restricted = true;
                            }
                            i += 3;
                        }
                        "protocol" | "nexthdr" => {
                            rule.protocol = values(i + 2).first().cloned();
                            i += 3;
                        }
                        _ => {
                            rule.unknown.push(format!("{w} {field}"));
                            i += 3;
                        }
                    }
                }
                "ct" if text(i + 1) == Some("state") => {
                    let v = values(i + 2);
                    if !v.is_empty() && v.iter().all(|s| s == "established" || s == "related") {
                        rule.established_only = true;
                    } else if !v.iter().any(|s| s == "new") {
                        rule.unknown.push(format!("ct state {}", v.join(",")));
                    }
                    i += 3;
                }
                "tcp" | "udp" | "sctp" | "dccp" | "th" => {
                    let field = text(i + 1).unwrap_or("");
                    if w != "th" {
                        rule.protocol = Some(w.to_string());
                    }
                    if field == "dport" {
                        if text(i + 2) == Some("!=") {
                            rule.unknown.push(format!("{w} dport != …"));
                            i += 4;
                            continue;
                        }
                        rule.ports = Some(values(i + 2).iter().map(|p| service_port(p)).collect());
                        i += 3;
                    } else if field == "flags" || field == "sport" {
                        rule.unknown.push(format!("{w} {field}"));
                        i += 3;
                    } else {
                        i += 1;
                    }
                }
                "meta" => {
                    let key = text(i + 1).unwrap_or("");
                    let v = values(i + 2);
                    match key {
                        "l4proto" => rule.protocol = Some(v.join(",")),
                        "nfproto" => {
                            rule.family = match v.first().map(String::as_str) {
                                Some("ipv4") => Family::V4,
                                Some("ipv6") => Family::V6,
                                _ => rule.family,
                            }
                        }
                        "iif" | "iifname" => {
                            if v.iter().all(|x| x == "lo") {
                                rule.loopback_only = true;
                            } else {
                                rule.source_restricted = true;
                            }
                        }
                        _ => rule.unknown.push(format!("meta {key}")),
                    }
                    i += 3;
                }
                "icmp" | "icmpv6" => {
                    rule.protocol = Some(w.to_string());
                    i += 3;
                }
                "accept" => {
                    rule.verdict = Verdict::Accept;
                    i += 1;
                }
                "drop" => {
                    rule.verdict = Verdict::Drop;
                    i += 1;
                }
                "reject" => {
                    rule.verdict = Verdict::Drop;
                    // `reject with icmpx type admin-prohibited`, `with tcp reset`.
                    i = words.len();
                }
                "jump" | "goto" => {
                    let target = text(i + 1).unwrap_or("").to_string();
                    let key = chain_key(family, table, &target);
                    rule.verdict = if w == "jump" {
                        Verdict::Jump(key)
                    } else {
                        Verdict::Goto(key)
                    };
                    i += 2;
                }
                "return" => {
                    rule.verdict = Verdict::Return;
                    i += 1;
                }
                "counter" => {
                    i += 1;
                    while matches!(text(i), Some("packets" | "bytes")) {
                        i += 2;
                    }
                }
                "log" => {
                    i += 1;
                    while matches!(
                        text(i),
                        Some(
                            "prefix" | "level" | "flags" | "group" | "snaplen" | "queue-threshold"
                        )
                    ) {
                        i += 2;
                    }
                }
                "limit" => {
                    i += 1;
                    while let Some(t) = text(i) {
                        if matches!(
                            t,
                            "accept" | "drop" | "reject" | "jump" | "goto" | "counter" | "log"
                        ) {
                            break;
                        }
                        i += 1;
                    }
                }
                "comment" => i += 2,
                "notrack" | "continue" | "queue" => i += 1,
                other => {
                    rule.unknown.push(other.to_string());
                    i += 1;
                }
            }
        }
        rule
    }

    fn finish(self) -> Ruleset {
        Ruleset {
            chains: self.chains,
            input: self.input,
        }
    }
}

fn table_ident(stmt: &Stmt, at: usize) -> (Option<Family>, String) {
    match stmt.text(at).and_then(family_of) {
        Some(family) => (family, stmt.text(at + 1).unwrap_or("").to_string()),
        // No family given: nft's default is ip.
        None => (Some(Family::V4), stmt.text(at).unwrap_or("").to_string()),
    }
}

fn chain_key(family: Family, table: &str, chain: &str) -> String {
    let f = match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
        Family::Both => "inet",
    };
    format!("{f} {table} {chain}")
}

/// Well-known service names nft accepts for ports.
pub fn service_port(name: &str) -> String {
    let port = match name {
        "ssh" => "22",
        "http" => "80",
        "https" => "443",
        "domain" => "53",
        "smtp" => "25",
        "submission" => "587",
        "ntp" => "123",
        "ftp" => "21",
        "telnet" => "23",
        "mysql" => "3306",
        "postgresql" => "5432",
        "imap" | "imap2" => "143",
        "imaps" => "993",
        "pop3" => "110",
        "pop3s" => "995",
        "bootps" => "67",
        "bootpc" => "68",
        "snmp" => "161",
        "ldap" => "389",
        "ldaps" => "636",
        "rsync" => "873",
        other => return other.to_string(),
    };
    port.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::model::{Family, evaluate};
    use super::*;

    fn ruleset(text: &str) -> Ruleset {
        parse_ruleset(&tokenize(text, "/etc/nftables.conf"))
    }

    fn open_ids(r: &Ruleset, f: Family) -> Vec<String> {
        evaluate(r, f).open.iter().map(|o| o.id()).collect()
    }

    #[test]
    fn debian_default_configuration_accepts_everything() {
        let r = ruleset(
            "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter;\n\t}\n\
             \tchain forward {\n\t\ttype filter hook forward priority filter;\n\t}\n\tchain output {\n\t\ttype filter hook output priority filter;\n\t}\n}\n",
        );
        assert_eq!(r.input, ["inet filter input"]);
        let v = evaluate(&r, Family::V4);
        assert!(v.deny.is_none());
    }

    #[test]
    fn a_hardened_ruleset_with_sets_defines_and_jumps() {
        let r = ruleset(
            "define ADMIN = { 10.0.0.0/8, 192.168.1.0/24 }\ndefine WEB = { http, https }\n\
             table inet filter {\n  set allowed_udp { type inet_service; elements = { 53, 123 } }\n\
               chain input {\n    type filter hook input priority 0; policy drop;\n\
                 iif lo accept\n    ct state established,related accept\n    ct state invalid drop\n\
                 meta l4proto { icmp, ipv6-icmp } accept\n    ip saddr $ADMIN tcp dport ssh accept comment \"admin ssh\"\n\
                 tcp dport $WEB counter packets 10 bytes 600 accept\n    udp dport @allowed_udp accept\n\
                 jump extra\n    log prefix \"dropped: \" level info\n  }\n\
               chain extra { tcp dport 8000-8100 limit rate 10/second accept; return }\n}\n\
             table ip6 legacy { chain input { type filter hook input priority 10; policy accept; tcp dport 25 accept } }\n",
        );
        let v4 = evaluate(&r, Family::V4);
        assert_eq!(
            v4.deny.as_deref(),
            Some("policy drop (/etc/nftables.conf:5)")
        );
        assert_eq!(
            open_ids(&r, Family::V4),
            ["443/tcp", "80/tcp", "8000-8100/tcp", "123/udp", "53/udp"]
        );
        // IPv6 passes through both input chains: the ip6 one accepts 25, but inet drops by default.
        let v6 = open_ids(&r, Family::V6);
        assert!(v6.contains(&"80/tcp".to_string()));
        assert!(evaluate(&r, Family::V6).deny.is_some());
    }

    #[test]
    fn command_form_and_final_reject() {
        let r = ruleset(
            "add table ip filter\nadd chain ip filter INPUT { type filter hook input priority 0 ; policy accept ; }\n\
             add rule ip filter INPUT tcp dport 22 accept\nadd rule ip filter INPUT reject with icmp type port-unreachable\n\
             insert rule ip filter INPUT iifname \"lo\" accept\n",
        );
        let v = evaluate(&r, Family::V4);
        assert_eq!(
            v.deny.as_deref(),
            Some("final drop rule (/etc/nftables.conf:4)")
        );
        assert_eq!(open_ids(&r, Family::V4), ["22/tcp"]);
        assert!(evaluate(&r, Family::V6).deny.is_none());
    }

    #[test]
    fn list_ruleset_output_parses() {
        // As `nft list ruleset` prints an iptables-nft table.
        let r = ruleset(
            "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy drop;\n\
             \t\tiifname \"lo\" counter packets 0 bytes 0 accept\n\t\tmeta l4proto tcp tcp dport 3306 counter packets 3 bytes 180 accept\n\
             \t\tip saddr != 10.0.0.0/8 tcp dport 22 accept\n\t\tmeta mark 0x1 accept\n\t\taccept\n\t}\n}\n",
        );
        let v = evaluate(&r, Family::V4);
        assert_eq!(open_ids(&r, Family::V4), ["3306/tcp"]);
        assert_eq!(v.accept_all.as_deref(), Some("/etc/nftables.conf:8"));
    }

    #[test]
    fn tokenizer_survives_junk() {
        for text in [
            "{{{{",
            "}}}}",
            "\"unterminated",
            "table inet x { chain y { type filter hook input",
            "define = ;;;",
            "$x $y {",
        ] {
            let r = ruleset(text);
            let _ = evaluate(&r, Family::V4);
        }
    }
}
