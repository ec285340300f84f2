//! Rule conditions: a small expression language over a check result.
//!
//! ```text
//! pending_security == 0
//! status == "pass" and offenders == 0
//! days_since_update <= 30 or not reboot_required
//! len(ports) < 3
//! ```
//!
//! Names are the result's `values` (`pending_security`, or `values.pending_security`) plus
//! `status` (`"pass"`, `"fail"`, `"error"`, `"no_data"`), `offenders` and `checked` (subject
//! counts) and `age_days` (how old the evidence is). Operators: `==`, `!=`, `<`, `<=`, `>`,
//! `>=`; `and`/`&&`, `or`/`||`, `not`/`!`; parentheses. A bare name must be a boolean. A name
//! the result does not carry, or a comparison of different types, makes the verdict `error`
//! with the reason: a rule never passes on a value it could not read.

use std::fmt;

/// A value a condition can see.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Bool(bool),
    Str(String),
    List(usize),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Num(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Str(_) => "string",
            Value::List(_) => "list",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(n) => write!(f, "a list of {n}"),
        }
    }
}

/// Where names are looked up.
pub trait Scope {
    fn lookup(&self, name: &str) -> Option<Value>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Num(f64),
    Str(String),
    Bool(bool),
    Name(String),
    Len(String),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
    Truthy(Operand),
}

/// A syntax error with its 0-based character column in the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(Op),
    And,
    Or,
    Not,
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: String| SyntaxError { column, message };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let tok = match two.as_str() {
            "==" => Some(Tok::Op(Op::Eq)),
            "!=" => Some(Tok::Op(Op::Ne)),
            "<=" => Some(Tok::Op(Op::Le)),
            ">=" => Some(Tok::Op(Op::Ge)),
            "&&" => Some(Tok::And),
            "||" => Some(Tok::Or),
            _ => None,
        };
        if let Some(tok) = tok {
            out.push((start, tok));
            i += 2;
            continue;
        }
        match c {
            '<' => out.push((start, Tok::Op(Op::Lt))),
            '>' => out.push((start, Tok::Op(Op::Gt))),
            '!' => out.push((start, Tok::Not)),
            '(' => out.push((start, Tok::LParen)),
            ')' => out.push((start, Tok::RParen)),
            ',' => out.push((start, Tok::Comma)),
            '=' => {
                return Err(err(
                    start,
                    "a single '=' is not a comparison; use '=='".into(),
                ));
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated string".into())),
                        Some(&ch) if ch == quote => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some(&ch) => s.push(ch),
                                None => return Err(err(start, "unterminated string".into())),
                            }
                        }
                        Some(&ch) => s.push(ch),
                    }
                    i += 1;
                }
                out.push((start, Tok::Str(s)));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_digit() || chars[j] == '.' || chars[j] == '_')
                {
                    j += 1;
                }
                let literal: String = chars[i..j].iter().filter(|&&ch| ch != '_').collect();
                let n: f64 = literal
                    .parse()
                    .map_err(|_| err(start, format!("{literal:?} is not a number")))?;
                out.push((start, Tok::Num(n)));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || chars[j] == '_' || chars[j] == '.')
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let tok = match word.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Ident(word),
                };
                out.push((start, tok));
                i = j;
                continue;
            }
            other => return Err(err(start, format!("unexpected character {other:?}"))),
        }
        i += 1;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(c, _)| *c)
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.unary()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.fail("expected ')'");
                }
                self.pos += 1;
                Ok(inner)
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let left = self.operand()?;
        if let Some(Tok::Op(op)) = self.peek().cloned() {
            self.pos += 1;
            let right = self.operand()?;
            return Ok(Expr::Compare(left, op, right));
        }
        match &left {
            Operand::Name(_) | Operand::Bool(_) => Ok(Expr::Truthy(left)),
            _ => self.fail("expected a comparison operator (==, !=, <, <=, >, >=)"),
        }
    }

    fn operand(&mut self) -> Result<Operand, SyntaxError> {
        let Some((_, tok)) = self.toks.get(self.pos).cloned() else {
            return self.fail("unexpected end of condition; expected a name or a value");
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Operand::Num(n)),
            Tok::Str(s) => Ok(Operand::Str(s)),
            Tok::Ident(word) if word == "true" => Ok(Operand::Bool(true)),
            Tok::Ident(word) if word == "false" => Ok(Operand::Bool(false)),
            Tok::Ident(word) if word == "len" && self.peek() == Some(&Tok::LParen) => {
                self.pos += 1;
                let Some((_, Tok::Ident(name))) = self.toks.get(self.pos).cloned() else {
                    return self.fail("len() takes the name of a list value");
                };
                self.pos += 1;
                if self.peek() != Some(&Tok::RParen) {
                    return self.fail("expected ')' after the name in len(…)");
                }
                self.pos += 1;
                Ok(Operand::Len(strip_values(&name)))
            }
            Tok::Ident(word) => Ok(Operand::Name(strip_values(&word))),
            _ => {
                self.pos -= 1;
                self.fail("expected a name, a number, a string or true/false")
            }
        }
    }
}

fn strip_values(name: &str) -> String {
    name.strip_prefix("values.").unwrap_or(name).to_string()
}

/// Parses a condition.
pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err(SyntaxError {
            column: 0,
            message: "empty condition".into(),
        });
    }
    let mut parser = Parser {
        toks,
        pos: 0,
        end: text.chars().count(),
    };
    let expr = parser.or()?;
    if parser.pos < parser.toks.len() {
        return parser.fail("unexpected text after the condition (missing 'and'/'or'?)");
    }
    Ok(expr)
}

fn resolve(operand: &Operand, scope: &dyn Scope) -> Result<Value, String> {
    match operand {
        Operand::Num(n) => Ok(Value::Num(*n)),
        Operand::Str(s) => Ok(Value::Str(s.clone())),
        Operand::Bool(b) => Ok(Value::Bool(*b)),
        Operand::Name(name) => scope
            .lookup(name)
            .ok_or_else(|| format!("the result has no value {name:?}")),
        Operand::Len(name) => match scope.lookup(name) {
            Some(Value::List(n)) => Ok(Value::Num(n as f64)),
            Some(other) => Err(format!(
                "len({name}): {name} is a {}, not a list",
                other.type_name()
            )),
            None => Err(format!("the result has no value {name:?}")),
        },
    }
}

fn compare(left: &Value, op: Op, right: &Value) -> Result<bool, String> {
    use std::cmp::Ordering;
    let ordering = match (left, right) {
        (Value::Num(a), Value::Num(b)) => a.partial_cmp(b),
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) if matches!(op, Op::Eq | Op::Ne) => Some(a.cmp(b)),
        _ => {
            return Err(format!(
                "cannot compare {left} ({}) {} {right} ({})",
                left.type_name(),
                op.as_str(),
                right.type_name()
            ));
        }
    };
    let Some(ordering) = ordering else {
        return Err(format!("cannot compare {left} with {right}"));
    };
    Ok(match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
    })
}

impl Expr {
    /// Evaluates the condition; an error says which value was missing or mistyped.
    pub fn eval(&self, scope: &dyn Scope) -> Result<bool, String> {
        match self {
            Expr::Or(items) => {
                for item in items {
                    if item.eval(scope)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Expr::And(items) => {
                for item in items {
                    if !item.eval(scope)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Expr::Not(inner) => Ok(!inner.eval(scope)?),
            Expr::Compare(left, op, right) => {
                compare(&resolve(left, scope)?, *op, &resolve(right, scope)?)
            }
            Expr::Truthy(operand) => match resolve(operand, scope)? {
                Value::Bool(b) => Ok(b),
                other => Err(format!(
                    "{other} is a {}, not a boolean; compare it (e.g. == 0)",
                    other.type_name()
                )),
            },
        }
    }

    /// Every name the condition reads.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names(&self, out: &mut Vec<String>) {
        let push = |o: &Operand, out: &mut Vec<String>| {
            if let Operand::Name(n) | Operand::Len(n) = o {
                out.push(n.clone());
            }
        };
        match self {
            Expr::Or(items) | Expr::And(items) => items.iter().for_each(|e| e.collect_names(out)),
            Expr::Not(inner) => inner.collect_names(out),
            Expr::Compare(l, _, r) => {
                push(l, out);
                push(r, out);
            }
            Expr::Truthy(o) => push(o, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<&'static str, Value>);
    impl Scope for Map {
        fn lookup(&self, name: &str) -> Option<Value> {
            self.0.get(name).cloned()
        }
    }

    fn scope() -> Map {
        Map(HashMap::from([
            ("pending_security", Value::Num(2.0)),
            ("status", Value::Str("fail".into())),
            ("reboot_required", Value::Bool(true)),
            ("ports", Value::List(3)),
        ]))
    }

    fn check(text: &str) -> Result<bool, String> {
        parse(text).map_err(|e| e.message)?.eval(&scope())
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(check("pending_security == 0"), Ok(false));
        assert_eq!(check("values.pending_security <= 2"), Ok(true));
        assert_eq!(check("status == \"fail\" and reboot_required"), Ok(true));
        assert_eq!(check("status == 'pass' || !reboot_required"), Ok(false));
        assert_eq!(
            check("not (pending_security > 1 and reboot_required)"),
            Ok(false)
        );
        assert_eq!(check("len(ports) < 3"), Ok(false));
        assert_eq!(check("pending_security >= -1"), Ok(true));
        assert_eq!(check("true"), Ok(true));
    }

    #[test]
    fn missing_and_mistyped_values_are_errors_not_verdicts() {
        assert_eq!(
            check("nope == 0"),
            Err("the result has no value \"nope\"".into())
        );
        assert!(check("status > 3").unwrap_err().contains("cannot compare"));
        assert!(
            check("pending_security")
                .unwrap_err()
                .contains("not a boolean")
        );
        assert!(
            check("len(status) == 1")
                .unwrap_err()
                .contains("not a list")
        );
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        let e = parse("pending_security = 0").unwrap_err();
        assert_eq!(e.column, 17);
        assert!(e.message.contains("=="));
        let e = parse("a == 1 b == 2").unwrap_err();
        assert_eq!(e.column, 7);
        let e = parse("(a == 1").unwrap_err();
        assert_eq!(e.message, "expected ')'");
        assert!(parse("").is_err());
        assert!(parse("'open").is_err());
        assert!(
            parse("3")
                .unwrap_err()
                .message
                .contains("comparison operator")
        );
        assert!(
            parse("a == ")
                .unwrap_err()
                .message
                .contains("unexpected end")
        );
        assert!(parse("a # b").is_err());
    }

    #[test]
    fn names_are_listed() {
        let e = parse("a == 1 or not (b and len(c) > 0)").unwrap();
        assert_eq!(e.names(), ["a", "b", "c"]);
    }
}
