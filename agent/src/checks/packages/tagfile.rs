//! RFC 822-style stanzas as apt reads them (`pkgTagFile`/`pkgTagSection`): dpkg's status file,
//! Release files, apt preferences and deb822 `.sources` files.
//!
//! Rules mirrored from apt: a stanza ends at an empty line (a line holding only `\r` counts as
//! empty, one holding spaces does not); a line starting with a space or tab continues the
//! previous field; field names are matched case-insensitively; values are trimmed. Files that
//! allow comments (preferences, sources) drop every line starting with `#` first, wherever it
//! is, as apt does.

use std::borrow::Cow;

/// One field: its name and its value with surrounding whitespace removed (continuation lines
/// keep their newline and indentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// One stanza with the 1-based line number it starts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stanza<'a> {
    pub line: usize,
    pub fields: Vec<Field<'a>>,
}

impl<'a> Stanza<'a> {
    /// The field of that name (case-insensitive); the last one when repeated, as in apt.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .rfind(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

/// Stanzas plus the lines that could not be read as a field (a line that is neither a
/// continuation nor `Name: value`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub stanzas: Vec<Stanza<'a>>,
    pub bad_lines: Vec<usize>,
}

/// Removes the lines apt treats as comments: every line whose first byte is `#`.
pub fn strip_comment_lines(text: &str) -> Cow<'_, str> {
    if !text.starts_with('#') && !text.contains("\n#") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !line.starts_with('#') {
            out.push_str(line);
        }
    }
    Cow::Owned(out)
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b'\r')
}

/// Parses stanzas. Never fails: unreadable lines are reported in [`Parsed::bad_lines`].
pub fn parse(text: &str) -> Parsed<'_> {
    let mut parsed = Parsed::default();
    let mut current: Option<Stanza<'_>> = None;
    // Byte range of the value being collected: (name, value start, value end).
    let mut open: Option<(&str, usize, usize)> = None;
    let mut offset = 0usize;

    fn close_field<'a>(
        text: &'a str,
        open: &mut Option<(&'a str, usize, usize)>,
        stanza: &mut Option<Stanza<'a>>,
    ) {
        if let (Some((name, start, end)), Some(st)) = (open.take(), stanza.as_mut()) {
            let value = text
                .get(start..end)
                .unwrap_or("")
                .trim_matches(is_tag_space);
            st.fields.push(Field { name, value });
        }
    }

    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let start = offset;
        offset += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        if is_blank(line) {
            close_field(text, &mut open, &mut current);
            if let Some(st) = current.take()
                && !st.fields.is_empty()
            {
                parsed.stanzas.push(st);
            }
            continue;
        }
        let first = line.as_bytes()[0];
        if first == b' ' || first == b'\t' {
            match open.as_mut() {
                Some((_, _, end)) => *end = start + line.len(),
                None => parsed.bad_lines.push(line_no),
            }
            continue;
        }
        close_field(text, &mut open, &mut current);
        let Some(colon) = line.find(':') else {
            parsed.bad_lines.push(line_no);
            continue;
        };
        let name = line[..colon].trim_end_matches(is_tag_space);
        if name.is_empty() {
            parsed.bad_lines.push(line_no);
            continue;
        }
        if current.is_none() {
            current = Some(Stanza {
                line: line_no,
                fields: Vec::new(),
            });
        }
        open = Some((name, start + colon + 1, start + line.len()));
    }
    close_field(text, &mut open, &mut current);
    if let Some(st) = current
        && !st.fields.is_empty()
    {
        parsed.stanzas.push(st);
    }
    parsed
}

fn is_tag_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Splits a multi-value field (`Suites: a b`, possibly over several lines) on whitespace.
pub fn words(value: &str) -> impl Iterator<Item = &str> {
    value.split(is_tag_space).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_fields_and_continuations() {
        let text = "Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\n\nPackage: b\r\nStatus: install ok installed\r\n\r\nPackage: c\n";
        let p = parse(text);
        assert!(p.bad_lines.is_empty());
        assert_eq!(p.stanzas.len(), 3);
        assert_eq!(p.stanzas[0].get("package"), Some("a"));
        assert_eq!(
            p.stanzas[0].get("DESCRIPTION"),
            Some("short\n long line\n .\n more")
        );
        assert_eq!(p.stanzas[1].line, 9);
        assert_eq!(p.stanzas[1].get("Status"), Some("install ok installed"));
        assert_eq!(p.stanzas[2].get("Package"), Some("c"));
        assert_eq!(p.stanzas[2].get("Version"), None);
    }

    #[test]
    fn empty_first_line_values_and_odd_names() {
        let p = parse("Conffiles:\n /etc/a 123\n /etc/b 456\nName :  spaced  \nX-Empty:\n");
        let st = &p.stanzas[0];
        assert_eq!(st.get("Conffiles"), Some("/etc/a 123\n /etc/b 456"));
        assert_eq!(st.get("name"), Some("spaced"));
        assert_eq!(st.get("X-Empty"), Some(""));
    }

    #[test]
    fn junk_lines_are_reported_not_fatal() {
        let p = parse(
            " orphan continuation\nno colon here\n: no name\nPackage: ok\n\u{0}\u{1}binary\n",
        );
        assert_eq!(p.bad_lines, [1, 2, 3, 5]);
        assert_eq!(p.stanzas.len(), 1);
        assert_eq!(p.stanzas[0].get("Package"), Some("ok"));
    }

    #[test]
    fn whitespace_only_line_does_not_end_a_stanza() {
        let p = parse("A: 1\n \nB: 2\n");
        assert_eq!(p.stanzas.len(), 1);
        assert_eq!(p.stanzas[0].get("A"), Some("1"));
        assert_eq!(p.stanzas[0].get("B"), Some("2"));
    }

    #[test]
    fn comments_are_whole_lines_starting_with_hash() {
        let text =
            "# head\nTypes: deb\n# inside\nURIs: http://x/ # not a comment\n\n#x\nTypes: deb-src\n";
        let stripped = strip_comment_lines(text);
        let p = parse(&stripped);
        assert_eq!(p.stanzas.len(), 2);
        assert_eq!(p.stanzas[0].get("URIs"), Some("http://x/ # not a comment"));
        assert_eq!(p.stanzas[1].get("Types"), Some("deb-src"));
        assert!(matches!(strip_comment_lines("A: b\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn words_split_on_any_whitespace() {
        let v: Vec<&str> = words("bookworm  bookworm-updates\n\tbookworm-backports ").collect();
        assert_eq!(v, ["bookworm", "bookworm-updates", "bookworm-backports"]);
    }

    #[test]
    fn empty_and_blank_inputs() {
        assert!(parse("").stanzas.is_empty());
        assert!(parse("\n\n\r\n").stanzas.is_empty());
    }
}
