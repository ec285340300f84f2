//! apt's configuration (`apt.conf`, `apt.conf.d/*`): the scoped `Name::Sub "value";` grammar
//! with `{ }` blocks, lists, `#clear` and `#include`, read as apt reads it, so that the few
//! settings that change candidate selection (`APT::Default-Release`, architectures, the `Dir`
//! tree) are the ones apt would use.

use std::fmt;

/// One node of the configuration tree; tags compare case-insensitively, as in apt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    tag: String,
    value: String,
    children: Vec<Node>,
}

/// A syntax error apt would also refuse (apt then fails to start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The configuration tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    root: Node,
}

/// Splits `A::B::C` the way apt's `Lookup` does; a trailing `::` yields an empty last segment
/// (a new list item).
fn segments(name: &str) -> Vec<&str> {
    name.split("::").collect()
}

impl Config {
    /// apt's built-in defaults for the settings this check reads.
    pub fn with_defaults() -> Config {
        let mut c = Config::default();
        for (k, v) in [
            ("Dir", "/"),
            ("Dir::State", "var/lib/apt/"),
            ("Dir::State::lists", "lists/"),
            ("Dir::Etc", "etc/apt/"),
            ("Dir::Etc::sourcelist", "sources.list"),
            ("Dir::Etc::sourceparts", "sources.list.d"),
            ("Dir::Etc::preferences", "preferences"),
            ("Dir::Etc::preferencesparts", "preferences.d"),
            ("Dir::Etc::main", "apt.conf"),
            ("Dir::Etc::parts", "apt.conf.d"),
        ] {
            c.set(k, v);
        }
        c
    }

    fn lookup(&self, name: &str) -> Option<&Node> {
        let mut node = &self.root;
        for seg in segments(name) {
            if seg.is_empty() {
                return None;
            }
            node = node
                .children
                .iter()
                .find(|n| n.tag.eq_ignore_ascii_case(seg))?;
        }
        Some(node)
    }

    /// apt's `Set`: creates the path; an empty last segment appends a list item.
    pub fn set(&mut self, name: &str, value: &str) {
        let mut node = &mut self.root;
        for seg in segments(name) {
            let pos = if seg.is_empty() {
                None
            } else {
                node.children
                    .iter()
                    .position(|n| n.tag.eq_ignore_ascii_case(seg))
            };
            let idx = match pos {
                Some(i) => i,
                None => {
                    node.children.push(Node {
                        tag: seg.to_string(),
                        ..Node::default()
                    });
                    node.children.len() - 1
                }
            };
            node = &mut node.children[idx];
        }
        node.value = value.to_string();
    }

    /// apt's `Clear`: empties the value and drops every child.
    pub fn clear(&mut self, name: &str) {
        let mut node = &mut self.root;
        for seg in segments(name) {
            let Some(i) = node
                .children
                .iter()
                .position(|n| n.tag.eq_ignore_ascii_case(seg))
            else {
                return;
            };
            node = &mut node.children[i];
        }
        node.value.clear();
        node.children.clear();
    }

    /// The value of a setting, empty when unset.
    pub fn find(&self, name: &str) -> &str {
        self.lookup(name).map(|n| n.value.as_str()).unwrap_or("")
    }

    /// apt's `FindB`: a boolean setting, `default` when unset or not a boolean.
    pub fn find_bool(&self, name: &str, default: bool) -> bool {
        match self.lookup(name) {
            Some(n) => super::sources::string_to_bool(&n.value).unwrap_or(default),
            None => default,
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// apt's `FindVector`: a value is split on commas, otherwise the children's values.
    pub fn find_vector(&self, name: &str) -> Vec<String> {
        let Some(node) = self.lookup(name) else {
            return Vec::new();
        };
        if !node.value.is_empty() {
            return node.value.split(',').map(str::to_string).collect();
        }
        node.children.iter().map(|c| c.value.clone()).collect()
    }

    /// apt's `FindFile`: relative values are joined to their parents' values (`Dir` →
    /// `Dir::State` → `Dir::State::lists`) until an absolute path is reached.
    pub fn find_file(&self, name: &str) -> Option<String> {
        let mut chain: Vec<&Node> = Vec::new();
        let mut node = &self.root;
        for seg in segments(name) {
            node = node
                .children
                .iter()
                .find(|n| n.tag.eq_ignore_ascii_case(seg))?;
            chain.push(node);
        }
        let last = chain.pop()?;
        if last.value.is_empty() {
            return None;
        }
        let mut val = last.value.clone();
        while let Some(parent) = chain.pop() {
            if parent.value.is_empty() {
                continue;
            }
            if val.starts_with('/') {
                if val.starts_with("/dev/null") {
                    val.truncate(9);
                }
                break;
            }
            if val.starts_with("~/") || val.starts_with("./") || val.starts_with("../") {
                break;
            }
            if !parent.value.ends_with('/') {
                val.insert(0, '/');
            }
            val.insert_str(0, &parent.value);
        }
        Some(normalize(&val))
    }

    /// `FindDir`: `find_file` with a trailing slash.
    pub fn find_dir(&self, name: &str) -> Option<String> {
        self.find_file(name).map(|mut p| {
            if !p.ends_with('/') {
                p.push('/');
            }
            p
        })
    }

    /// Parses one configuration file's text into the tree. `include` reads an `#include`d file
    /// (or a directory when the name ends with `/`) and applies it at `depth + 1`.
    pub fn apply_text(
        &mut self,
        text: &str,
        file: &str,
        depth: u32,
        include: &mut dyn FnMut(&mut Config, &str, u32) -> Result<(), ConfError>,
    ) -> Result<(), ConfError> {
        let err = |line: usize, message: &str| ConfError {
            file: file.to_string(),
            line,
            message: message.to_string(),
        };
        let mut stack: Vec<String> = Vec::new();
        let mut parent_tag = String::new();
        let mut line_buffer = String::new();
        let mut in_comment = false;

        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let expanded = raw.replace('\t', "        ");
            let mut line: &str = expanded.trim_matches(|c: char| c.is_ascii_whitespace());

            if in_comment {
                match line.find("*/") {
                    Some(end) => {
                        line = &line[end + 2..];
                        in_comment = false;
                    }
                    None => continue,
                }
            }
            let line = strip_line_comments(line);
            let mut fragment = String::with_capacity(line.len());
            let mut rest: &str = line;
            while let Some(start) = find_outside_quotes(rest, "/*") {
                fragment.push_str(&rest[..start]);
                match rest[start + 2..].find("*/") {
                    Some(end) => rest = &rest[start + 2 + end + 2..],
                    None => {
                        rest = "";
                        in_comment = true;
                    }
                }
            }
            fragment.push_str(rest);
            if fragment.is_empty() {
                continue;
            }

            let bytes = fragment.as_bytes();
            let mut in_quote = false;
            let mut start = 0usize;
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'"' {
                    in_quote = !in_quote;
                }
                if in_quote || !(b == b'{' || b == b';' || b == b'}') {
                    continue;
                }
                let piece = fragment[start..i].trim_matches(|c: char| c.is_ascii_whitespace());
                if !line_buffer.is_empty() && !piece.is_empty() {
                    line_buffer.push(' ');
                }
                line_buffer.push_str(piece);
                start = i + 1;
                let term = b;

                if term == b'{' && line_buffer.is_empty() {
                    return Err(err(line_no, "block starts with no name"));
                }
                if line_buffer.is_empty() {
                    if term == b'}' {
                        parent_tag = stack.pop().unwrap_or_default();
                    }
                    continue;
                }

                let mut pos: &str = &line_buffer;
                let Some(mut tag) = parse_quote_word(&mut pos) else {
                    return Err(err(line_no, "malformed tag"));
                };
                let mut no_word = false;
                let word = match parse_c_word(&mut pos).or_else(|| parse_quote_word(&mut pos)) {
                    Some(w) => w,
                    None => {
                        if term != b'{' {
                            std::mem::take(&mut tag)
                        } else {
                            no_word = true;
                            String::new()
                        }
                    }
                };
                if !pos.is_empty() {
                    return Err(err(line_no, "extra junk after value"));
                }

                if term == b'{' {
                    stack.push(parent_tag.clone());
                    if parent_tag.is_empty() {
                        parent_tag = tag.clone();
                    } else {
                        parent_tag = format!("{parent_tag}::{tag}");
                    }
                    tag.clear();
                }

                let item = if parent_tag.is_empty() {
                    tag.clone()
                } else if term != b'{' || !tag.is_empty() {
                    format!("{parent_tag}::{tag}")
                } else {
                    parent_tag.clone()
                };

                if let Some(directive) = tag.strip_prefix('#') {
                    if !parent_tag.is_empty() {
                        return Err(err(line_no, "directives can only be done at the top level"));
                    }
                    match directive {
                        "clear" => self.clear(&word),
                        "include" => {
                            if depth > 10 {
                                return Err(err(line_no, "too many nested includes"));
                            }
                            include(self, &word, depth + 1)?;
                        }
                        "x-apt-configure-index" => {}
                        other => {
                            return Err(err(line_no, &format!("unsupported directive '{other}'")));
                        }
                    }
                } else if tag.is_empty() && !no_word && word == "#clear" {
                    return Err(err(
                        line_no,
                        "clear directive requires an option tree as argument",
                    ));
                } else if !no_word {
                    self.set(&item, &word);
                }

                line_buffer.clear();
                if term == b'}' {
                    parent_tag = stack.pop().unwrap_or_default();
                }
            }
            let remaining = fragment[start..].trim_matches(|c: char| c.is_ascii_whitespace());
            if !remaining.is_empty() && !line_buffer.is_empty() {
                line_buffer.push(' ');
            }
            line_buffer.push_str(remaining);
        }
        if !line_buffer.is_empty() {
            let lines = text.split('\n').count();
            return Err(err(lines, "extra junk at end of file"));
        }
        Ok(())
    }
}

/// Drops `//` and `#` comments outside quotes (`#clear`, `#include` and
/// `#x-apt-configure-index` are directives, not comments).
fn strip_line_comments(line: &str) -> &str {
    let mut line = line;
    if let Some(i) = find_outside_quotes(line, "//") {
        line = &line[..i];
    }
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(rel) = line[from..].find('#') {
        let i = from + rel;
        let quotes = bytes[..i].iter().filter(|&&b| b == b'"').count();
        let rest = &line[i + 1..];
        let magic = ["clear", "include", "x-apt-configure-index"]
            .iter()
            .any(|m| rest.starts_with(m));
        if quotes % 2 != 0 || magic {
            from = i + 1;
            continue;
        }
        return &line[..i];
    }
    line
}

/// First occurrence of `needle` preceded by an even number of quotes.
fn find_outside_quotes(hay: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = hay[from..].find(needle) {
        let i = from + rel;
        if hay.as_bytes()[..i].iter().filter(|&&b| b == b'"').count() % 2 == 0 {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// apt's `ParseQuoteWord`: a word where `"…"` and `[…]` may hold spaces; quotes are dropped and
/// `%xx` escapes decoded.
pub fn parse_quote_word(s: &mut &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut c = 0;
    while c < bytes.len() && bytes[c] == b' ' {
        c += 1;
    }
    if c >= bytes.len() {
        return None;
    }
    let start = c;
    while c < bytes.len() && !bytes[c].is_ascii_whitespace() {
        if bytes[c] == b'"' {
            c += 1 + bytes[c + 1..].iter().position(|&b| b == b'"')?;
        }
        if bytes[c] == b'[' {
            c += 1 + bytes[c + 1..].iter().position(|&b| b == b']')?;
        }
        c += 1;
    }
    let word = &bytes[start..c];
    let mut out: Vec<u8> = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if word[i] == b'%'
            && i + 2 < word.len()
            && word[i + 1].is_ascii_hexdigit()
            && word[i + 2].is_ascii_hexdigit()
        {
            let hex = [word[i + 1], word[i + 2]];
            if let Some(v) = std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        if word[i] != b'"' {
            out.push(word[i]);
        }
        i += 1;
    }
    while c < bytes.len() && bytes[c].is_ascii_whitespace() {
        c += 1;
    }
    *s = &s[c..];
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// apt's `ParseCWord`: one or more `"…"` strings separated by spaces, concatenated.
fn parse_c_word(s: &mut &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut c = 0;
    while c < bytes.len() && bytes[c] == b' ' {
        c += 1;
    }
    if c >= bytes.len() {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    while c < bytes.len() {
        if bytes[c] == b'"' {
            c += 1;
            while c < bytes.len() && bytes[c] != b'"' {
                out.push(bytes[c]);
                c += 1;
            }
            if c >= bytes.len() {
                return None;
            }
            c += 1;
            continue;
        }
        if c > 0 && bytes[c].is_ascii_whitespace() && bytes[c - 1].is_ascii_whitespace() {
            c += 1;
            continue;
        }
        if !bytes[c].is_ascii_whitespace() {
            return None;
        }
        out.push(b' ');
        c += 1;
    }
    *s = &s[c..];
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Collapses `//`, `/./` and `/../` like apt's `flNormalize`.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfError> {
        let mut c = Config::with_defaults();
        c.apply_text(text, "test.conf", 0, &mut |_, _, _| Ok(()))?;
        Ok(c)
    }

    #[test]
    fn scoped_and_flat_forms() {
        let c = parse(
            "APT::Default-Release \"bookworm\";\nAPT { Get { Assume-Yes \"true\"; }; };\n\
             acquire::languages \"none\"; // trailing comment\n",
        )
        .unwrap();
        assert_eq!(c.find("apt::default-release"), "bookworm");
        assert_eq!(c.find("APT::Get::Assume-Yes"), "true");
        assert_eq!(c.find("Acquire::Languages"), "none");
        assert_eq!(c.find("APT::Nothing"), "");
    }

    #[test]
    fn lists_and_clear() {
        let c = parse(
            "APT::Architectures { \"amd64\"; \"i386\"; };\nAPT::Architectures:: \"arm64\";\n\
             #clear APT::Architectures;\nAPT::Architectures:: \"armhf\";\n",
        )
        .unwrap();
        assert_eq!(c.find_vector("APT::Architectures"), ["armhf"]);
        let c = parse("APT::Architectures \"amd64,i386\";").unwrap();
        assert_eq!(c.find_vector("APT::Architectures"), ["amd64", "i386"]);
    }

    #[test]
    fn real_debian_files_parse() {
        let autoremove = "APT\n{\n  NeverAutoRemove\n  {\n\t\"^firmware-linux.*\";\n\t\"^linux-image-[a-z0-9]*$\";\n  };\n  VersionedKernelPackages\n  {\n\t# kernels\n\t\"linux-.*\";\n\t\".*-modules\";\n  };\n};\n";
        let c = parse(autoremove).unwrap();
        assert_eq!(
            c.find_vector("APT::VersionedKernelPackages"),
            ["linux-.*", ".*-modules"]
        );
        let packagekit = "// comment\nDPkg::Post-Invoke {\n\"/usr/bin/test -e /x && /usr/bin/gdbus call --system; /bin/echo > /dev/null\";\n};\n";
        let c = parse(packagekit).unwrap();
        assert_eq!(
            c.find_vector("DPkg::Post-Invoke"),
            ["/usr/bin/test -e /x && /usr/bin/gdbus call --system; /bin/echo > /dev/null"]
        );
        let docker = "# comment\nDir::Cache::pkgcache \"\";\nAcquire::GzipIndexes \"true\";\n/* multi\n line */ Acquire::X \"1\"; /* inline */\n";
        let c = parse(docker).unwrap();
        assert_eq!(c.find("Acquire::GzipIndexes"), "true");
        assert_eq!(c.find("Acquire::X"), "1");
        assert!(c.exists("Dir::Cache::pkgcache"));
    }

    #[test]
    fn dir_tree_resolution() {
        let c = Config::with_defaults();
        assert_eq!(
            c.find_dir("Dir::State::lists").as_deref(),
            Some("/var/lib/apt/lists/")
        );
        assert_eq!(
            c.find_file("Dir::Etc::sourcelist").as_deref(),
            Some("/etc/apt/sources.list")
        );
        let c = parse("Dir::State::lists \"/srv/lists\";\nDir::Etc \"/opt/etc/\";").unwrap();
        assert_eq!(
            c.find_dir("Dir::State::lists").as_deref(),
            Some("/srv/lists/")
        );
        assert_eq!(
            c.find_dir("Dir::Etc::preferencesparts").as_deref(),
            Some("/opt/etc/preferences.d/")
        );
        let c = parse("Dir \"/chroot\";").unwrap();
        assert_eq!(
            c.find_file("Dir::Etc::preferences").as_deref(),
            Some("/chroot/etc/apt/preferences")
        );
    }

    #[test]
    fn syntax_errors_are_reported_like_apt() {
        assert_eq!(
            parse("{ \"x\"; };").unwrap_err().message,
            "block starts with no name"
        );
        assert_eq!(
            parse("APT::X \"1\" junk;").unwrap_err().message,
            "extra junk after value"
        );
        assert_eq!(
            parse("APT::X \"1\"").unwrap_err().message,
            "extra junk at end of file"
        );
        assert_eq!(
            parse("#clearfoo bar;").unwrap_err().message,
            "unsupported directive 'clearfoo'"
        );
        // any other '#' starts a comment
        assert!(parse("#foo bar;").is_ok());
        assert!(parse("APT { #clear X; };").is_err());
    }

    #[test]
    fn includes_go_through_the_loader() {
        let mut c = Config::with_defaults();
        let mut seen = Vec::new();
        c.apply_text(
            "#include \"/etc/apt/extra.conf\";",
            "main",
            0,
            &mut |cfg, name, depth| {
                seen.push((name.to_string(), depth));
                cfg.set("APT::Default-Release", "stable");
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, [("/etc/apt/extra.conf".to_string(), 1)]);
        assert_eq!(c.find("APT::Default-Release"), "stable");
    }

    #[test]
    fn quote_words() {
        let mut s = "\"a b\"c%5fd  rest";
        assert_eq!(parse_quote_word(&mut s).as_deref(), Some("a bc_d"));
        assert_eq!(s, "rest");
        let mut s = "[arch=amd64 trusted=yes] http://x/";
        assert_eq!(
            parse_quote_word(&mut s).as_deref(),
            Some("[arch=amd64 trusted=yes]")
        );
        let mut s = "\"unterminated";
        assert_eq!(parse_quote_word(&mut s), None);
        let mut s = "   ";
        assert_eq!(parse_quote_word(&mut s), None);
    }

    #[test]
    fn junk_never_panics() {
        for text in [
            "\"",
            "{{{",
            "}}}",
            "/*",
            "a \"b",
            "a { b { c \"d\"; }",
            "::: \"x\";",
            "\u{0}",
        ] {
            let _ = parse(text);
        }
    }
}
