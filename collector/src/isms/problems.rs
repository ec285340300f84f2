//! A problem found in the ISMS definition: the file, the line and column, what is wrong, and
//! what to do about it. The loader collects every problem instead of stopping at the first.

use std::fmt;

/// Whether a problem stops the ISMS from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The definition is refused.
    Error,
    /// Loaded, but probably not what was meant.
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    /// File name relative to the ISMS directory (`kpis.toml`).
    pub file: String,
    /// 1-based line; 0 when the problem concerns the whole file or directory.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.level == Level::Warning {
            f.write_str("warning: ")?;
        }
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message)?,
            (line, 0) => write!(f, "{}:{line}: {}", self.file, self.message)?,
            (line, column) => write!(f, "{}:{line}:{column}: {}", self.file, self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// The text of one file, to turn byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    /// 1-based line and column of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        (line, column)
    }
}

/// Collects problems as the loader goes.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    /// A problem at a byte offset of a file (from a `toml::Spanned` value).
    pub fn at(
        &mut self,
        source: &Source,
        offset: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(Level::Error, source, offset, message.into(), hint);
    }

    /// A warning at a byte offset of a file.
    pub fn warn_at(
        &mut self,
        source: &Source,
        offset: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(Level::Warning, source, offset, message.into(), hint);
    }

    fn push(
        &mut self,
        level: Level,
        source: &Source,
        offset: usize,
        message: String,
        hint: Option<String>,
    ) {
        let (line, column) = source.position(offset);
        self.list.push(Problem {
            level,
            file: source.name.clone(),
            line,
            column,
            message,
            hint,
        });
    }

    /// A problem about a whole file.
    pub fn file(&mut self, file: &str, message: impl Into<String>, hint: Option<String>) {
        self.list.push(Problem {
            level: Level::Error,
            file: file.to_string(),
            line: 0,
            column: 0,
            message: message.into(),
            hint,
        });
    }

    /// True when nothing stops the definition from loading (warnings allowed).
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|p| p.level == Level::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let source = Source {
            name: "x.toml".into(),
            text: "a = 1\nbé = 2\n".into(),
        };
        assert_eq!(source.position(0), (1, 1));
        assert_eq!(source.position(6), (2, 1));
        // Columns count characters, not bytes.
        assert_eq!(source.position(10), (2, 4));
        let p = Problem {
            level: Level::Error,
            file: "x.toml".into(),
            line: 2,
            column: 4,
            message: "bad".into(),
            hint: Some("fix it".into()),
        };
        assert_eq!(p.to_string(), "x.toml:2:4: bad (fix it)");
    }
}
