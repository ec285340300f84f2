//! A pure parser for one sudoers file, following sudo's own lexer and grammar
//! (`plugins/sudoers/toke.l`, `gram.y`): line continuations, `#` comments versus `#uid` and
//! `#include`, quoting and backslash escapes, aliases, `Defaults` bindings, runas specs,
//! command options and tags, with tags and runas inherited along a command list.

/// What kind of alias a name belongs to (aliases of different kinds may share a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AliasKind {
    User,
    Runas,
    Host,
    Cmnd,
}

/// One element of a user, host, runas or command list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub negated: bool,
    pub item: Item,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    All,
    /// An upper-case name: refers to an alias of the list's kind.
    Alias(String),
    /// A user (`alice`, `#1000`), group (`%sudo`, `%#27`, `%:domain users`), netgroup
    /// (`+admins`) or host, as written.
    Name(String),
    /// A command with its arguments (`/usr/bin/systemctl restart nginx`), `sudoedit …`, a
    /// directory or a regular expression.
    Command(String),
}

/// The run-as part of a command spec: `(users : groups)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runas {
    /// `None` when only a group is given (`(:wheel)`): the command runs as the invoking user.
    /// An empty list is `()`, which also means the invoking user.
    pub users: Option<Vec<Member>>,
    pub groups: Option<Vec<Member>>,
}

/// One command of a rule with its effective (inherited) run-as and password tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmndSpec {
    /// `None`: no run-as given anywhere before it in the list, so sudo's default (root).
    pub runas: Option<Runas>,
    /// True when `NOPASSWD:` is in effect for this command.
    pub nopasswd: bool,
    pub cmnd: Member,
}

/// `hosts = commands` in a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    pub hosts: Vec<Member>,
    pub cmnds: Vec<CmndSpec>,
}

/// A user specification: `users hosts = cmnds [: hosts = cmnds]…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub users: Vec<Member>,
    pub privileges: Vec<Privilege>,
}

/// What a `Defaults` line applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Global,
    /// `Defaults:users`
    User(Vec<Member>),
    /// `Defaults@hosts`
    Host(Vec<Member>),
    /// `Defaults>runas`
    Runas(Vec<Member>),
    /// `Defaults!commands`
    Cmnd(Vec<Member>),
}

/// One `name`, `!name` or `name=value` of a `Defaults` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub negated: bool,
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `@include`/`#include` (`dir: false`) or `@includedir`/`#includedir`; the path as
    /// written, quotes removed, `%h` not yet expanded.
    Include {
        path: String,
        dir: bool,
    },
    Alias {
        kind: AliasKind,
        name: String,
        members: Vec<Member>,
    },
    Defaults {
        binding: Binding,
        settings: Vec<Setting>,
    },
    Rule(Rule),
}

/// A line sudo would reject; sudo refuses to run with such a file, and the text may still
/// show what someone meant to grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsed {
    pub line: usize,
    pub reason: String,
    /// The text mentions `NOPASSWD` or `authenticate`: judged as a possible grant without
    /// authentication rather than ignored.
    pub mentions_no_auth: bool,
}

/// A parsed sudoers file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFile {
    /// Entries with the 1-based line where each starts.
    pub entries: Vec<(usize, Entry)>,
    pub unparsed: Vec<Unparsed>,
}

const TAGS: &[&str] = &[
    "NOPASSWD",
    "PASSWD",
    "NOEXEC",
    "EXEC",
    "SETENV",
    "NOSETENV",
    "LOG_INPUT",
    "NOLOG_INPUT",
    "LOG_OUTPUT",
    "NOLOG_OUTPUT",
    "MAIL",
    "NOMAIL",
    "FOLLOW",
    "NOFOLLOW",
    "INTERCEPT",
    "NOINTERCEPT",
];

const OPTIONS: &[&str] = &[
    "TIMEOUT",
    "NOTBEFORE",
    "NOTAFTER",
    "CWD",
    "CHROOT",
    "ROLE",
    "TYPE",
    "APPARMOR_PROFILE",
    "PRIVS",
    "LIMITPRIVS",
];

const DIGESTS: &[&str] = &["sha224", "sha256", "sha384", "sha512"];

/// Parses the text of one sudoers file.
pub fn parse_sudoers(text: &str) -> ParsedFile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parsed = ParsedFile::default();
    for (line, logical) in logical_lines(text) {
        if logical.trim().is_empty() {
            continue;
        }
        match parse_logical(&logical) {
            Ok(entries) => parsed
                .entries
                .extend(entries.into_iter().map(|e| (line, e))),
            Err(reason) => parsed.unparsed.push(Unparsed {
                line,
                reason,
                mentions_no_auth: logical.contains("NOPASSWD") || logical.contains("authenticate"),
            }),
        }
    }
    parsed
}

/// Joins continued lines (an odd number of trailing backslashes) and drops comments, keeping
/// the first physical line number of each logical line. `#include` lines are kept whole.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        // Include lines are read whole: their path may contain `#`, and they cannot continue.
        if pending.is_none()
            && (is_hash_include(raw) || raw.trim_start_matches([' ', '\t']).starts_with("@include"))
        {
            out.push((line_no, raw.to_string()));
            continue;
        }
        let (code, had_comment) = match comment_start(raw) {
            Some(i) => (&raw[..i], true),
            None => (raw, false),
        };
        let trimmed_end = code.trim_end_matches([' ', '\t']);
        let trailing_backslashes = trimmed_end.chars().rev().take_while(|&c| c == '\\').count();
        let continues = !had_comment && trailing_backslashes % 2 == 1;
        let piece = if continues {
            &trimmed_end[..trimmed_end.len() - 1]
        } else {
            code
        };
        let (start, mut acc) = pending.take().unwrap_or((line_no, String::new()));
        if !acc.is_empty() {
            acc.push(' ');
        }
        acc.push_str(piece);
        if continues {
            pending = Some((start, acc));
        } else {
            out.push((start, acc));
        }
    }
    if let Some(rest) = pending {
        out.push(rest);
    }
    out
}

/// `#include` and `#includedir` count only at the very start of a line and before a blank.
fn is_hash_include(raw: &str) -> bool {
    ["#include", "#includedir"].iter().any(|kw| {
        raw.strip_prefix(kw)
            .is_some_and(|rest| rest.starts_with([' ', '\t']))
    })
}

/// Where a comment starts: a `#` outside quotes, not escaped, and not followed by a digit or
/// `-digit` (those are uids and gids: `#1000`, `%#27`).
fn comment_start(line: &str) -> Option<usize> {
    let mut quoted = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => quoted = !quoted,
            '#' if !quoted => {
                let rest = &line[i + 1..];
                let mut next = rest.chars();
                let is_id = match next.next() {
                    Some(d) if d.is_ascii_digit() => true,
                    Some('-') => next.next().is_some_and(|d| d.is_ascii_digit()),
                    _ => false,
                };
                if !is_id {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_alias_name(word: &str) -> bool {
    let mut bytes = word.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A character cursor over one logical line.
struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    fn new(s: &str) -> Self {
        Cursor {
            chars: s.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    /// What is left of the line.
    fn rest(&self) -> &[char] {
        self.chars.get(self.pos..).unwrap_or_default()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_blanks();
        self.pos >= self.chars.len()
    }

    /// Skips blanks, then consumes `c` if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_blanks();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, context: &str) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}' {context}")))
        }
    }

    fn unexpected(&mut self, wanted: &str) -> String {
        self.skip_blanks();
        let found: String = self.rest().iter().take(24).collect();
        if found.is_empty() {
            format!("expected {wanted} before the end of the line")
        } else {
            format!("expected {wanted} near {found:?}")
        }
    }

    /// Counts leading `!` (sudo: an odd run negates, an even run cancels out).
    fn negations(&mut self) -> bool {
        let mut count = 0;
        loop {
            self.skip_blanks();
            if self.peek() == Some('!') {
                self.pos += 1;
                count += 1;
            } else {
                return count % 2 == 1;
            }
        }
    }

    /// A double-quoted string (the cursor is on the opening quote); `\"` and `\\` escape.
    fn quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unterminated double quote".into()),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\\')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err("unterminated double quote".into()),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// A WORD: characters up to a delimiter, backslash escapes removed. Returns `None` (and
    /// consumes nothing) when no word starts here.
    fn word(&mut self) -> Option<String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => match self.peek_at(1) {
                    Some(next) if next != '\t' => {
                        out.push(next);
                        self.pos += 2;
                    }
                    _ => break,
                },
                ',' | ':' | '=' | '(' | ')' | '!' | ' ' | '\t' | '"' | '#' | '>' => break,
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        if out.is_empty() { None } else { Some(out) }
    }

    /// Looks at the next word without consuming it.
    fn peek_word(&mut self) -> Option<String> {
        let saved = self.pos;
        self.skip_blanks();
        let word = self.word();
        self.pos = saved;
        word
    }

    /// One user, group, netgroup or host item (without its `!`).
    fn item(&mut self) -> Result<Item, String> {
        self.skip_blanks();
        match self.peek() {
            Some('"') => {
                let text = self.quoted()?;
                if text.is_empty() {
                    return Err("empty quoted name".into());
                }
                Ok(Item::Name(text))
            }
            Some('#') => {
                let mut text = String::from('#');
                self.pos += 1;
                text.push_str(&self.id_digits()?);
                Ok(Item::Name(text))
            }
            Some('%') => {
                let mut text = String::from('%');
                self.pos += 1;
                if self.peek() == Some(':') {
                    text.push(':');
                    self.pos += 1;
                }
                match self.peek() {
                    Some('#') => {
                        self.pos += 1;
                        text.push('#');
                        text.push_str(&self.id_digits()?);
                    }
                    Some('"') => text.push_str(&self.quoted()?),
                    _ => text.push_str(&self.word().ok_or("empty group name")?),
                }
                Ok(Item::Name(text))
            }
            Some('+') => {
                self.pos += 1;
                let name = self.word().ok_or("empty netgroup name")?;
                Ok(Item::Name(format!("+{name}")))
            }
            _ => {
                let word = self
                    .word()
                    .ok_or_else(|| self.unexpected("a user, group or host name"))?;
                Ok(if word == "ALL" {
                    Item::All
                } else if is_alias_name(&word) {
                    Item::Alias(word)
                } else {
                    Item::Name(word)
                })
            }
        }
    }

    /// The digits of `#123` / `#-1` (the cursor is past the `#`).
    fn id_digits(&mut self) -> Result<String, String> {
        let mut out = String::new();
        if self.peek() == Some('-') {
            out.push('-');
            self.pos += 1;
        }
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            out.push(c);
            self.pos += 1;
        }
        if out.is_empty() || out == "-" {
            Err("'#' without a numeric id".into())
        } else {
            Ok(out)
        }
    }

    /// A comma-separated list of possibly negated items.
    fn list(&mut self) -> Result<Vec<Member>, String> {
        self.any_list(false)
    }

    /// A host list: like any list, but IPv6 addresses (whose colons would otherwise end the
    /// list) are recognised first, as sudo's lexer does.
    fn host_list(&mut self) -> Result<Vec<Member>, String> {
        self.any_list(true)
    }

    fn any_list(&mut self, hosts: bool) -> Result<Vec<Member>, String> {
        let mut members = Vec::new();
        loop {
            let negated = self.negations();
            let item = match hosts.then(|| self.ipv6()).flatten() {
                Some(address) => Item::Name(address),
                None => self.item()?,
            };
            members.push(Member { negated, item });
            if !self.eat(',') {
                return Ok(members);
            }
        }
    }

    /// An IPv6 address or network at the cursor, consumed only if it parses as one.
    fn ipv6(&mut self) -> Option<String> {
        self.skip_blanks();
        let run: String = self
            .rest()
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '/'))
            .collect();
        // Longest prefix that is an address (a trailing `:` may separate host sections).
        let mut candidate = run.as_str();
        loop {
            let (address, prefix) = match candidate.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (candidate, None),
            };
            let prefix_ok = prefix.is_none_or(|p| {
                p.parse::<u8>().is_ok_and(|n| n <= 128) || p.parse::<std::net::Ipv6Addr>().is_ok()
            });
            if address.contains(':') && address.parse::<std::net::Ipv6Addr>().is_ok() && prefix_ok {
                self.pos += candidate.chars().count();
                return Some(candidate.to_string());
            }
            candidate = &candidate[..candidate.rfind(':')?];
        }
    }

    /// A comma-separated list of possibly negated commands; `args: false` for `Defaults!`
    /// bindings, where a command ends at the first blank.
    fn cmnd_list(&mut self, args: bool) -> Result<Vec<Member>, String> {
        let mut members = Vec::new();
        loop {
            members.push(self.cmnd(args)?);
            if !self.eat(',') {
                return Ok(members);
            }
        }
    }

    /// One command item: `[!] [sha…:digest] (ALL | ALIAS | /path args | sudoedit args | ^regex$)`.
    fn cmnd(&mut self, args: bool) -> Result<Member, String> {
        let negated = self.negations();
        self.skip_blanks();
        // Digests pin the command's content; they do not change what is granted.
        while let Some(word) = self.peek_word() {
            if !DIGESTS.contains(&word.as_str()) {
                break;
            }
            self.skip_blanks();
            self.word();
            self.expect(':', "after a digest type")?;
            self.skip_blanks();
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
            {
                self.pos += 1;
            }
            // A list of digests for the same command is separated by commas.
            let saved = self.pos;
            if self.eat(',') {
                match self.peek_word() {
                    Some(w) if DIGESTS.contains(&w.as_str()) => continue,
                    _ => self.pos = saved,
                }
            }
            self.skip_blanks();
        }
        let item = match self.peek() {
            Some('/' | '^') => Item::Command(self.command_text(args)),
            _ => match self.peek_word() {
                Some(w) if w == "sudoedit" => Item::Command(self.command_text(args)),
                Some(w) if w == "ALL" => {
                    self.skip_blanks();
                    self.word();
                    Item::All
                }
                Some(w) if is_alias_name(&w) => {
                    self.skip_blanks();
                    self.word();
                    Item::Alias(w)
                }
                _ => return Err(self.unexpected("a command, ALL or a Cmnd_Alias")),
            },
        };
        Ok(Member { negated, item })
    }

    /// A command and its arguments: up to an unescaped `,`, `:` or `=`, with sudo's escapes
    /// for those characters removed and runs of blanks collapsed.
    fn command_text(&mut self, args: bool) -> String {
        let mut out = String::new();
        let mut in_regex = self.peek() == Some('^');
        while let Some(c) = self.peek() {
            match c {
                '\\' => match self.peek_at(1) {
                    Some(next @ (',' | ':' | '=' | '\\' | ' ' | '\t' | '#')) => {
                        out.push(next);
                        self.pos += 2;
                    }
                    Some(next) => {
                        out.push('\\');
                        out.push(next);
                        self.pos += 2;
                    }
                    None => {
                        self.pos += 1;
                    }
                },
                '$' if in_regex => {
                    out.push('$');
                    self.pos += 1;
                    in_regex = false;
                }
                ',' | ':' | '=' if !in_regex => break,
                ' ' | '\t' if !args => break,
                ' ' | '\t' => {
                    if !out.ends_with(' ') {
                        out.push(' ');
                    }
                    self.pos += 1;
                    if self.peek() == Some('^') {
                        in_regex = true;
                    }
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        out.trim_end().to_string()
    }
}

fn parse_logical(line: &str) -> Result<Vec<Entry>, String> {
    let trimmed = line.trim_start_matches([' ', '\t']);
    if let Some(entry) = parse_include(trimmed)? {
        return Ok(vec![entry]);
    }
    let mut cursor = Cursor::new(trimmed);
    if let Some(rest) = trimmed.strip_prefix("Defaults") {
        match rest.chars().next() {
            None | Some(' ' | '\t' | ':' | '@' | '>' | '!') => {
                cursor.pos = "Defaults".len();
                return parse_defaults(&mut cursor).map(|e| vec![e]);
            }
            _ => {}
        }
    }
    for (keyword, kind) in [
        ("User_Alias", AliasKind::User),
        ("Runas_Alias", AliasKind::Runas),
        ("Host_Alias", AliasKind::Host),
        ("Cmnd_Alias", AliasKind::Cmnd),
        ("Cmd_Alias", AliasKind::Cmnd),
    ] {
        if let Some(rest) = trimmed.strip_prefix(keyword)
            && rest.starts_with([' ', '\t'])
        {
            cursor.pos = keyword.chars().count();
            return parse_aliases(&mut cursor, kind);
        }
    }
    parse_rule(&mut cursor).map(|r| vec![Entry::Rule(r)])
}

fn parse_include(trimmed: &str) -> Result<Option<Entry>, String> {
    let (rest, dir) = if let Some(r) = trimmed
        .strip_prefix("@includedir")
        .or_else(|| trimmed.strip_prefix("#includedir"))
    {
        (r, true)
    } else if let Some(r) = trimmed
        .strip_prefix("@include")
        .or_else(|| trimmed.strip_prefix("#include"))
    {
        (r, false)
    } else {
        return Ok(None);
    };
    if !rest.starts_with([' ', '\t']) {
        // `@includes` or `#included` would be a user name or a comment, not an include.
        return if trimmed.starts_with('@') {
            Err("unknown @ directive".into())
        } else {
            Ok(None)
        };
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let path = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or("unterminated double quote in include path")?;
        quoted[..end].to_string()
    } else {
        // An unquoted path ends at a blank that is not escaped.
        let mut path = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next @ (' ' | '\t')) => path.push(next),
                    Some(next) => {
                        path.push('\\');
                        path.push(next);
                    }
                    None => path.push('\\'),
                },
                ' ' | '\t' => break,
                _ => path.push(c),
            }
        }
        path
    };
    if path.is_empty() {
        return Err("include without a path".into());
    }
    Ok(Some(Entry::Include { path, dir }))
}

fn parse_defaults(cursor: &mut Cursor) -> Result<Entry, String> {
    let binding = match cursor.peek() {
        Some(c @ (':' | '@' | '>' | '!')) => {
            cursor.pos += 1;
            cursor.skip_blanks();
            let list = match c {
                '!' => cursor.cmnd_list(false)?,
                '@' => cursor.host_list()?,
                _ => cursor.list()?,
            };
            match c {
                ':' => Binding::User(list),
                '@' => Binding::Host(list),
                '>' => Binding::Runas(list),
                _ => Binding::Cmnd(list),
            }
        }
        _ => Binding::Global,
    };
    let mut settings = Vec::new();
    loop {
        let negated = cursor.negations();
        cursor.skip_blanks();
        let mut name = String::new();
        while let Some(c) = cursor
            .peek()
            .filter(|c| c.is_ascii_lowercase() || *c == '_')
        {
            name.push(c);
            cursor.pos += 1;
        }
        if name.is_empty() {
            return Err(cursor.unexpected("a Defaults setting name"));
        }
        cursor.skip_blanks();
        let value = if matches!(
            (cursor.peek(), cursor.peek_at(1)),
            (Some('+' | '-'), Some('=')) | (Some('='), _)
        ) {
            cursor.pos += if cursor.peek() == Some('=') { 1 } else { 2 };
            cursor.skip_blanks();
            Some(if cursor.peek() == Some('"') {
                cursor.quoted()?
            } else {
                let mut value = String::new();
                while let Some(c) = cursor.peek() {
                    match c {
                        '\\' => {
                            cursor.pos += 1;
                            if let Some(next) = cursor.bump() {
                                value.push(next);
                            }
                        }
                        ',' | ' ' | '\t' => break,
                        _ => {
                            value.push(c);
                            cursor.pos += 1;
                        }
                    }
                }
                value
            })
        } else {
            None
        };
        settings.push(Setting {
            negated,
            name,
            value,
        });
        if cursor.eat(',') {
            continue;
        }
        if cursor.at_end() {
            return Ok(Entry::Defaults { binding, settings });
        }
        return Err(cursor.unexpected("',' or the end of the Defaults line"));
    }
}

fn parse_aliases(cursor: &mut Cursor, kind: AliasKind) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    loop {
        cursor.skip_blanks();
        let name = cursor
            .word()
            .filter(|w| is_alias_name(w) && w != "ALL")
            .ok_or_else(|| cursor.unexpected("an alias name in capitals"))?;
        cursor.expect('=', "after the alias name")?;
        let members = match kind {
            AliasKind::Cmnd => cursor.cmnd_list(true)?,
            AliasKind::Host => cursor.host_list()?,
            AliasKind::User | AliasKind::Runas => cursor.list()?,
        };
        entries.push(Entry::Alias {
            kind,
            name,
            members,
        });
        if cursor.eat(':') {
            continue;
        }
        if cursor.at_end() {
            return Ok(entries);
        }
        return Err(cursor.unexpected("':' or the end of the alias line"));
    }
}

fn parse_rule(cursor: &mut Cursor) -> Result<Rule, String> {
    let users = cursor.list()?;
    let mut privileges = Vec::new();
    loop {
        let hosts = cursor.host_list()?;
        cursor.expect('=', "between the host list and the commands")?;
        let mut cmnds: Vec<CmndSpec> = Vec::new();
        loop {
            let spec = parse_cmnd_spec(cursor, cmnds.last())?;
            cmnds.push(spec);
            if !cursor.eat(',') {
                break;
            }
        }
        privileges.push(Privilege { hosts, cmnds });
        if cursor.eat(':') {
            continue;
        }
        if cursor.at_end() {
            return Ok(Rule { users, privileges });
        }
        return Err(cursor.unexpected("',', ':' or the end of the rule"));
    }
}

/// One command spec; run-as and `NOPASSWD`/`PASSWD` carry over from the previous spec of the
/// same list unless given again (sudo's `cmndspeclist` rule).
fn parse_cmnd_spec(cursor: &mut Cursor, previous: Option<&CmndSpec>) -> Result<CmndSpec, String> {
    let mut runas = None;
    if cursor.eat('(') {
        cursor.skip_blanks();
        let users = match cursor.peek() {
            Some(')') | Some(':') => None,
            _ => Some(cursor.list()?),
        };
        let groups = if cursor.eat(':') {
            cursor.skip_blanks();
            if cursor.peek() == Some(')') {
                None
            } else {
                Some(cursor.list()?)
            }
        } else {
            None
        };
        cursor.expect(')', "to close the run-as list")?;
        runas = Some(match (users, groups) {
            // `()` and `(:)` both mean "as the invoking user".
            (None, None) => Runas {
                users: Some(Vec::new()),
                groups: None,
            },
            (users, groups) => Runas { users, groups },
        });
    }
    while let Some(word) = cursor.peek_word() {
        if !OPTIONS.contains(&word.as_str()) {
            break;
        }
        let saved = cursor.pos;
        cursor.skip_blanks();
        cursor.word();
        if !cursor.eat('=') {
            // An alias that happens to be called like an option.
            cursor.pos = saved;
            break;
        }
        cursor.skip_blanks();
        if cursor.peek() == Some('"') {
            cursor.quoted()?;
        } else {
            while cursor
                .peek()
                .is_some_and(|c| !matches!(c, ' ' | '\t' | ',' | ':'))
            {
                cursor.pos += 1;
            }
        }
    }
    let mut nopasswd = None;
    while let Some(word) = cursor.peek_word() {
        if !TAGS.contains(&word.as_str()) {
            break;
        }
        let saved = cursor.pos;
        cursor.skip_blanks();
        cursor.word();
        if !cursor.eat(':') {
            cursor.pos = saved;
            break;
        }
        match word.as_str() {
            "NOPASSWD" => nopasswd = Some(true),
            "PASSWD" => nopasswd = Some(false),
            _ => {}
        }
    }
    let cmnd = cursor.cmnd(true)?;
    let runas = runas.or_else(|| previous.and_then(|p| p.runas.clone()));
    let nopasswd = nopasswd.unwrap_or_else(|| previous.is_some_and(|p| p.nopasswd));
    Ok(CmndSpec {
        runas,
        nopasswd,
        cmnd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Member {
        Member {
            negated: false,
            item: Item::Name(s.into()),
        }
    }

    fn all() -> Member {
        Member {
            negated: false,
            item: Item::All,
        }
    }

    fn cmd(s: &str) -> Member {
        Member {
            negated: false,
            item: Item::Command(s.into()),
        }
    }

    fn rule(text: &str) -> Rule {
        let parsed = parse_sudoers(text);
        assert!(parsed.unparsed.is_empty(), "{text}: {:?}", parsed.unparsed);
        assert_eq!(parsed.entries.len(), 1, "{text}");
        match parsed.entries.into_iter().next() {
            Some((_, Entry::Rule(r))) => r,
            other => panic!("{text}: not a rule: {other:?}"),
        }
    }

    fn unparsed(text: &str) -> Unparsed {
        let parsed = parse_sudoers(text);
        assert!(parsed.entries.is_empty(), "{text}: {:?}", parsed.entries);
        assert_eq!(parsed.unparsed.len(), 1, "{text}");
        parsed.unparsed.into_iter().next().unwrap()
    }

    #[test]
    fn the_debian_default_file() {
        let text = "#\n# This file MUST be edited with the 'visudo' command as root.\n#\n\
            Defaults\tenv_reset\n\
            Defaults\tmail_badpass\n\
            Defaults\tsecure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n\
            Defaults\tuse_pty\n\
            #Defaults:%sudo env_keep += \"http_proxy https_proxy\"\n\
            # User privilege specification\n\
            root\tALL=(ALL:ALL) ALL\n\
            \n\
            # Allow members of group sudo to execute any command\n\
            %sudo\tALL=(ALL:ALL) ALL\n\
            \n\
            # See sudoers(5) for more information on \"@include\" directives:\n\
            \n\
            @includedir /etc/sudoers.d\n";
        let parsed = parse_sudoers(text);
        assert!(parsed.unparsed.is_empty(), "{:?}", parsed.unparsed);
        let lines: Vec<usize> = parsed.entries.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [4, 5, 6, 7, 10, 13, 17]);
        match &parsed.entries[2].1 {
            Entry::Defaults { binding, settings } => {
                assert_eq!(binding, &Binding::Global);
                assert_eq!(settings[0].name, "secure_path");
                assert_eq!(
                    settings[0].value.as_deref(),
                    Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                );
            }
            other => panic!("{other:?}"),
        }
        match &parsed.entries[5].1 {
            Entry::Rule(r) => {
                assert_eq!(r.users, [name("%sudo")]);
                let spec = &r.privileges[0].cmnds[0];
                assert_eq!(spec.cmnd, all());
                assert!(!spec.nopasswd);
                let runas = spec.runas.clone().unwrap();
                assert_eq!(runas.users, Some(vec![all()]));
                assert_eq!(runas.groups, Some(vec![all()]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parsed.entries[6].1,
            Entry::Include {
                path: "/etc/sudoers.d".into(),
                dir: true
            }
        );
    }

    #[test]
    fn includes_in_every_spelling() {
        let parsed = parse_sudoers(
            "#includedir /etc/sudoers.d\n\
             #include /etc/sudoers.local\n\
             @include sudoers.%h\n\
             @include \"/etc/sudo ers.d/with space\"\n\
             @include /etc/with\\ escaped\\ space # not a comment? yes it is\n\
             \x20 #include /indented/is/a/comment\n\
             #includes are discussed in the manual\n\
             #include\n",
        );
        let includes: Vec<(String, bool)> = parsed
            .entries
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Include { path, dir } => Some((path.clone(), *dir)),
                _ => None,
            })
            .collect();
        assert_eq!(
            includes,
            [
                ("/etc/sudoers.d".to_string(), true),
                ("/etc/sudoers.local".to_string(), false),
                ("sudoers.%h".to_string(), false),
                ("/etc/sudo ers.d/with space".to_string(), false),
                ("/etc/with escaped space".to_string(), false),
            ]
        );
        assert!(parsed.unparsed.is_empty(), "{:?}", parsed.unparsed);
    }

    #[test]
    fn tags_carry_over_until_overridden() {
        let r = rule(
            "alice ALL = (root) NOPASSWD: /bin/ls, /bin/cat, PASSWD: /bin/rm, /bin/mv, NOPASSWD: ALL\n",
        );
        let tags: Vec<bool> = r.privileges[0].cmnds.iter().map(|c| c.nopasswd).collect();
        assert_eq!(tags, [true, true, false, false, true]);
        // Run-as carries over too.
        assert!(r.privileges[0].cmnds.iter().all(|c| c.runas.is_some()));
        // Other tags and options do not hide NOPASSWD.
        let r = rule("bob ALL = (ALL) NOEXEC: SETENV:NOPASSWD : LOG_OUTPUT: /usr/bin/vi\n");
        assert!(r.privileges[0].cmnds[0].nopasswd);
        let r = rule("bob ALL = CWD=/tmp TIMEOUT=5m NOPASSWD: /bin/true\n");
        assert!(r.privileges[0].cmnds[0].nopasswd);
        assert_eq!(r.privileges[0].cmnds[0].cmnd, cmd("/bin/true"));
        // A new host section starts from scratch.
        let r = rule("carol web1 = NOPASSWD: /bin/a : db1 = /bin/b\n");
        assert_eq!(r.privileges.len(), 2);
        assert!(r.privileges[0].cmnds[0].nopasswd);
        assert!(!r.privileges[1].cmnds[0].nopasswd);
        assert_eq!(r.privileges[1].hosts, [name("db1")]);
    }

    #[test]
    fn continuations_comments_and_uids() {
        let r = rule(
            "#1000, %#27, %:\"domain admins\", +ops, !\"bad guy\" \\\n   ALL=(#0) \\\n\
             NOPASSWD: /usr/bin/systemctl restart nginx, \\\n /usr/bin/id # trailing comment \\\n",
        );
        let users: Vec<String> = r
            .users
            .iter()
            .map(|m| match &m.item {
                Item::Name(n) => format!("{}{n}", if m.negated { "!" } else { "" }),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            users,
            ["#1000", "%#27", "%:domain admins", "+ops", "!bad guy"]
        );
        let cmnds: Vec<&Member> = r.privileges[0].cmnds.iter().map(|c| &c.cmnd).collect();
        assert_eq!(
            cmnds,
            [
                &cmd("/usr/bin/systemctl restart nginx"),
                &cmd("/usr/bin/id")
            ]
        );
        assert_eq!(
            r.privileges[0].cmnds[0].runas.clone().and_then(|r| r.users),
            Some(vec![name("#0")])
        );
        // An escaped backslash at the end of a line does not continue it.
        let parsed = parse_sudoers("alice ALL = /bin/echo \\\\\nbob ALL = ALL\n");
        assert!(parsed.unparsed.is_empty(), "{:?}", parsed.unparsed);
        assert_eq!(parsed.entries.len(), 2);
        // A comment ending in a backslash does not continue the line.
        let parsed = parse_sudoers("# comment \\\nalice ALL = ALL\n");
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].0, 2);
    }

    #[test]
    fn escapes_in_commands() {
        let r = rule(
            "dave ALL = /usr/bin/printf a\\,b\\:c\\=d, /bin/echo \\#1, /bin/ls   -l  /tmp/*\n",
        );
        let cmnds: Vec<Member> = r.privileges[0]
            .cmnds
            .iter()
            .map(|c| c.cmnd.clone())
            .collect();
        assert_eq!(
            cmnds,
            [
                cmd("/usr/bin/printf a,b:c=d"),
                cmd("/bin/echo #1"),
                cmd("/bin/ls -l /tmp/*")
            ]
        );
        let r = rule(
            "erin ALL = sudoedit /etc/hosts, ^/usr/bin/(cat|less)$ ^/var/log/.*$, sha256:0123abcd /bin/x\n",
        );
        let cmnds: Vec<Member> = r.privileges[0]
            .cmnds
            .iter()
            .map(|c| c.cmnd.clone())
            .collect();
        assert_eq!(
            cmnds,
            [
                cmd("sudoedit /etc/hosts"),
                cmd("^/usr/bin/(cat|less)$ ^/var/log/.*$"),
                cmd("/bin/x")
            ]
        );
    }

    #[test]
    fn negated_commands_and_aliases() {
        let r = rule("ops ALL = ALL, !/usr/bin/su, !!/bin/sh, !SHELLS\n");
        let cmnds: Vec<(bool, Item)> = r.privileges[0]
            .cmnds
            .iter()
            .map(|c| (c.cmnd.negated, c.cmnd.item.clone()))
            .collect();
        assert_eq!(
            cmnds,
            [
                (false, Item::All),
                (true, Item::Command("/usr/bin/su".into())),
                (false, Item::Command("/bin/sh".into())),
                (true, Item::Alias("SHELLS".into())),
            ]
        );
    }

    #[test]
    fn aliases_with_several_definitions_on_one_line() {
        let parsed = parse_sudoers(
            "User_Alias ADMINS = alice, %wheel, !bob : WEBOPS = carol\n\
             Cmnd_Alias SERVICES = /usr/bin/systemctl restart nginx, \\\n  /usr/bin/systemctl reload nginx\n\
             Runas_Alias OP = root, operator\n\
             Host_Alias WEB = web1, web2.example.com, 192.0.2.0/24\n\
             Cmd_Alias OLD = /bin/old\n",
        );
        assert!(parsed.unparsed.is_empty(), "{:?}", parsed.unparsed);
        let aliases: Vec<(AliasKind, String, usize)> = parsed
            .entries
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Alias {
                    kind,
                    name,
                    members,
                } => Some((*kind, name.clone(), members.len())),
                _ => None,
            })
            .collect();
        assert_eq!(
            aliases,
            [
                (AliasKind::User, "ADMINS".into(), 3),
                (AliasKind::User, "WEBOPS".into(), 1),
                (AliasKind::Cmnd, "SERVICES".into(), 2),
                (AliasKind::Runas, "OP".into(), 2),
                (AliasKind::Host, "WEB".into(), 3),
                (AliasKind::Cmnd, "OLD".into(), 1),
            ]
        );
    }

    #[test]
    fn defaults_bindings_and_settings() {
        let parsed = parse_sudoers(
            "Defaults:alice, %ops !authenticate, !lecture\n\
             Defaults@web1 authenticate\n\
             Defaults>root , operator  !!authenticate\n\
             Defaults!/usr/bin/less, PAGERS !authenticate\n\
             Defaults env_keep += \"LANG LC_*\", passprompt=\"pw #:\"\n\
             Defaults\tlogfile=/var/log/sudo\\ log\n",
        );
        assert!(parsed.unparsed.is_empty(), "{:?}", parsed.unparsed);
        let entries: Vec<&Entry> = parsed.entries.iter().map(|(_, e)| e).collect();
        match entries[0] {
            Entry::Defaults { binding, settings } => {
                assert_eq!(binding, &Binding::User(vec![name("alice"), name("%ops")]));
                assert_eq!(
                    settings
                        .iter()
                        .map(|s| (s.negated, s.name.as_str()))
                        .collect::<Vec<_>>(),
                    [(true, "authenticate"), (true, "lecture")]
                );
            }
            other => panic!("{other:?}"),
        }
        match entries[2] {
            Entry::Defaults { binding, settings } => {
                assert_eq!(
                    binding,
                    &Binding::Runas(vec![name("root"), name("operator")])
                );
                assert!(!settings[0].negated, "!! cancels out");
            }
            other => panic!("{other:?}"),
        }
        match entries[3] {
            Entry::Defaults { binding, .. } => assert_eq!(
                binding,
                &Binding::Cmnd(vec![
                    cmd("/usr/bin/less"),
                    Member {
                        negated: false,
                        item: Item::Alias("PAGERS".into())
                    }
                ])
            ),
            other => panic!("{other:?}"),
        }
        match entries[4] {
            Entry::Defaults { settings, .. } => {
                assert_eq!(settings[0].value.as_deref(), Some("LANG LC_*"));
                assert_eq!(settings[1].value.as_deref(), Some("pw #:"));
            }
            other => panic!("{other:?}"),
        }
        match entries[5] {
            Entry::Defaults { settings, .. } => {
                assert_eq!(settings[0].value.as_deref(), Some("/var/log/sudo log"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_runas_means_the_invoking_user() {
        let r = rule("alice ALL = () /bin/a, (:wheel) /bin/b, (:) /bin/c\n");
        let runas: Vec<Option<Runas>> = r.privileges[0]
            .cmnds
            .iter()
            .map(|c| c.runas.clone())
            .collect();
        assert_eq!(
            runas[0],
            Some(Runas {
                users: Some(vec![]),
                groups: None
            })
        );
        assert_eq!(
            runas[1],
            Some(Runas {
                users: None,
                groups: Some(vec![name("wheel")])
            })
        );
        assert_eq!(runas[2], runas[0]);
    }

    #[test]
    fn broken_lines_are_reported_and_flagged_when_they_mention_nopasswd() {
        let u = unparsed("alice ALL = (root NOPASSWD: ALL\n");
        assert!(u.mentions_no_auth);
        assert!(u.reason.contains("')'"), "{}", u.reason);
        assert!(!unparsed("alice ALL\n").mentions_no_auth);
        assert!(!unparsed("alice = ALL\n").reason.is_empty());
        assert!(!unparsed("\u{0}\u{1}\u{fffd}\n").reason.is_empty());
        assert!(!unparsed("User_Alias lower = alice\n").reason.is_empty());
        assert!(!unparsed("Defaults !\n").reason.is_empty());
        assert!(
            !unparsed("Defaults env_keep=\"unterminated\n")
                .reason
                .is_empty()
        );
        assert!(!unparsed("@includex /etc/x\n").reason.is_empty());
        assert!(
            !unparsed("alice ALL = /bin/ls junk=more\n")
                .reason
                .is_empty()
        );
        // A continuation at the end of the file does not lose the line.
        let u = unparsed("bob ALL = NOPASSWD: \\");
        assert!(u.mentions_no_auth);
    }

    #[test]
    fn ipv6_hosts_do_not_end_the_list() {
        let r = rule("alice fe80::1, 2001:db8::/32, ::1 = NOPASSWD: /bin/ls : db1 = /bin/cat\n");
        assert_eq!(
            r.privileges[0].hosts,
            [name("fe80::1"), name("2001:db8::/32"), name("::1")]
        );
        assert_eq!(r.privileges[1].hosts, [name("db1")]);
        let parsed = parse_sudoers("Host_Alias LAN = 10.0.0.0/8, fd00::/8 : WEB = cafe, beef\n");
        assert!(parsed.unparsed.is_empty(), "{:?}", parsed.unparsed);
        assert_eq!(parsed.entries.len(), 2);
    }

    #[test]
    fn distribution_defaults_parse() {
        // RHEL 9's /etc/sudoers (abridged), Ubuntu's and cloud-init's drop-ins.
        let rhel = "## Sudoers allows particular users to run various commands as\n\
            ## the root user, without needing the root password.\n\
            Defaults   !visiblepw\n\
            Defaults    always_set_home\n\
            Defaults    match_group_by_gid\n\
            Defaults    env_reset\n\
            Defaults    env_keep =  \"COLORS DISPLAY HOSTNAME HISTSIZE KDEDIR LS_COLORS\"\n\
            Defaults    env_keep += \"MAIL QTDIR USERNAME LANG LC_ADDRESS LC_CTYPE\"\n\
            Defaults    secure_path = /sbin:/bin:/usr/sbin:/usr/bin\n\
            root\tALL=(ALL) \tALL\n\
            ## Allows people in group wheel to run all commands\n\
            %wheel\tALL=(ALL)\tALL\n\
            ## Same thing without a password\n\
            # %wheel\tALL=(ALL)\tNOPASSWD: ALL\n\
            # %users  localhost=/sbin/shutdown -h now\n\
            ## Read drop-in files from /etc/sudoers.d (the # here does not mean a comment)\n\
            #includedir /etc/sudoers.d\n";
        let parsed = parse_sudoers(rhel);
        assert!(parsed.unparsed.is_empty(), "{:?}", parsed.unparsed);
        assert_eq!(parsed.entries.len(), 10);
        let cloud = "# Created by cloud-init v. 23.1.1 on Tue, 05 Mar 2024 10:12:01 +0000\n\n\
            # User rules for ubuntu\nubuntu ALL=(ALL) NOPASSWD:ALL\n";
        let r = rule(cloud);
        assert!(r.privileges[0].cmnds[0].nopasswd);
        assert_eq!(r.privileges[0].cmnds[0].cmnd, all());
        let ubuntu = "%admin ALL=(ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n";
        assert_eq!(parse_sudoers(ubuntu).entries.len(), 3);
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "\\",
            "\"",
            "#",
            "%",
            "%:",
            "+",
            "!",
            "(",
            ")",
            ":",
            "=",
            ",",
            "ALL",
            "Defaults:",
            "Defaults@",
            "User_Alias",
            "User_Alias A",
            "a b = (",
            "a b = (a:",
            "a b = sha256:",
            "a b = ^unterminated",
            "a b = /x\\",
            "\u{feff}root ALL=ALL",
            "é ALL=(é) /é",
            "a b = NOPASSWD",
            "a b = TIMEOUT=",
            "#-",
            "%#",
            "%#-",
            "a\tb\t=\t\t/bin/x\t,",
        ];
        for input in inputs {
            let _ = parse_sudoers(input);
            let _ = parse_sudoers(&format!("{input}\n{input}\\\n{input}"));
        }
    }
}
