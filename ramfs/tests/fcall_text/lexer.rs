//! The value syntax of transcript lines, before it is given a meaning.
//!
//! A message line is `Name field=value field=value …`. A value is one of:
//! - an atom: a run of characters other than white space and `,[](){}"=`, e.g. `12`,
//!   `0x80`, `DMDIR|0777`, `a.txt`, `..`;
//! - a quoted string with `\\`, `\"`, `\n`, `\t`, `\0` and `\xNN` escapes, optionally
//!   repeated, and pieces joined with `+`: `"ab"*3+"c"` is `abababc`;
//! - a list `[v, v, …]` (possibly empty);
//! - a tuple `(v, v, …)`, used for qids `(ty, version, path)`;
//! - a record `{flag field=value …}` whose bare words are flags (e.g. `dont_touch`).
//!
//! What an atom means (a number, a name) is decided by the field it fills.

use std::fmt;

/// A parsed value, not yet interpreted.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Record(Record),
}

/// `{flag field=value …}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub flags: Vec<String>,
    pub fields: Vec<(String, Value)>,
}

/// A syntax error, with the byte offset in the text where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub at: usize,
    pub what: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.at + 1, self.what)
    }
}

/// Parses the body of a line (`field=value …` or bare flags) as a record.
pub fn parse_fields(text: &str) -> Result<Record, SyntaxError> {
    let mut lx = Lexer {
        s: text.as_bytes(),
        pos: 0,
    };
    let rec = lx.record_items(None)?;
    lx.skip_space();
    if lx.pos != lx.s.len() {
        return Err(lx.err("unexpected text"));
    }
    Ok(rec)
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

fn is_atom_byte(b: u8) -> bool {
    !b.is_ascii_whitespace() && !b"[](){},\"=".contains(&b)
}

impl Lexer<'_> {
    fn err(&self, what: impl Into<String>) -> SyntaxError {
        SyntaxError {
            at: self.pos,
            what: what.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), SyntaxError> {
        self.skip_space();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected '{}'", b as char)))
        }
    }

    fn atom(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(is_atom_byte) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a value"));
        }
        // Atom bytes are a subset of the input text, which is UTF-8; cutting at ASCII
        // delimiters keeps it UTF-8.
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// A decimal count (of a repetition).
    fn digits(&mut self) -> Result<usize, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| self.err("expected a repeat count"))
    }

    /// Items of a record up to `close` (or the end of the text when `close` is None).
    fn record_items(&mut self, close: Option<u8>) -> Result<Record, SyntaxError> {
        let mut rec = Record::default();
        loop {
            self.skip_space();
            match (self.peek(), close) {
                (None, None) => return Ok(rec),
                (None, Some(c)) => return Err(self.err(format!("missing '{}'", c as char))),
                (Some(b), Some(c)) if b == c => {
                    self.pos += 1;
                    return Ok(rec);
                }
                _ => {}
            }
            let name = self.atom()?;
            if self.peek() == Some(b'=') {
                self.pos += 1;
                let v = self.value()?;
                rec.fields.push((name, v));
            } else {
                rec.flags.push(name);
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Value>, SyntaxError> {
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.err(format!("expected ',' or '{}'", close as char))),
            }
        }
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        self.skip_space();
        match self.peek() {
            Some(b'[') => {
                self.pos += 1;
                Ok(Value::List(self.seq(b']')?))
            }
            Some(b'(') => {
                self.pos += 1;
                Ok(Value::Tuple(self.seq(b')')?))
            }
            Some(b'{') => {
                self.pos += 1;
                Ok(Value::Record(self.record_items(Some(b'}'))?))
            }
            Some(b'"') => {
                let mut out = Vec::new();
                loop {
                    let piece = self.quoted()?;
                    if self.peek() == Some(b'*') {
                        self.pos += 1;
                        let n = self.digits()?;
                        out.extend(piece.repeat(n));
                    } else {
                        out.extend(piece);
                    }
                    if self.peek() != Some(b'+') {
                        return Ok(Value::Str(out));
                    }
                    self.pos += 1;
                }
            }
            _ => Ok(Value::Atom(self.atom()?)),
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, SyntaxError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.pos += 1;
                    match e {
                        b'\\' => out.push(b'\\'),
                        b'"' => out.push(b'"'),
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'0' => out.push(0),
                        b'x' => {
                            let hex = self
                                .s
                                .get(self.pos..self.pos + 2)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u8::from_str_radix(h, 16).ok())
                                .ok_or_else(|| self.err("bad \\x escape"))?;
                            self.pos += 2;
                            out.push(hex);
                        }
                        _ => return Err(self.err(format!("unknown escape \\{}", e as char))),
                    }
                }
                _ => out.push(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_every_shape() {
        let r = parse_fields(
            r#"tag=1 wnames=[a,"b c", ..] q=(QTDIR,0,0x1) s={dont_touch name=x} d="ab"*2+"c" e="\x00\n""#,
        )
        .unwrap();
        assert!(r.flags.is_empty());
        assert_eq!(r.fields[0], ("tag".into(), Value::Atom("1".into())));
        assert_eq!(
            r.fields[1].1,
            Value::List(vec![
                Value::Atom("a".into()),
                Value::Str(b"b c".to_vec()),
                Value::Atom("..".into())
            ])
        );
        assert_eq!(
            r.fields[2].1,
            Value::Tuple(vec![
                Value::Atom("QTDIR".into()),
                Value::Atom("0".into()),
                Value::Atom("0x1".into())
            ])
        );
        let Value::Record(s) = &r.fields[3].1 else {
            panic!("not a record")
        };
        assert_eq!(s.flags, vec!["dont_touch".to_string()]);
        assert_eq!(r.fields[4].1, Value::Str(b"ababc".to_vec()));
        assert_eq!(r.fields[5].1, Value::Str(vec![0, b'\n']));
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert!(parse_fields("a=[1,2").is_err());
        assert!(parse_fields("a=\"x").is_err());
        assert!(parse_fields("a=").is_err());
        assert!(parse_fields("a=\"\\q\"").is_err());
    }
}
