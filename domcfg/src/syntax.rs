//! The xl.cfg syntax: tokens and `key = value` statements, without any meaning attached.
//!
//! Grammar (after `xl`'s `libxlu_cfg_l.l` / `libxlu_cfg_y.y`):
//!
//! ```text
//! file      := { statement? (NEWLINE | ';') }
//! statement := KEY ('=' | '+=') value
//! value     := atom | '[' NEWLINE* [ atom NEWLINE* { ',' NEWLINE* atom NEWLINE* } [',' NEWLINE*] ] ']'
//! atom      := STRING | NUMBER
//! ```
//!
//! `#` starts a comment that runs to the end of the line. Strings are quoted with `"` or `'`,
//! cannot span lines and know the escapes `\" \' \\ \a \b \f \n \r \t \v \xHH \ooo`.
//! Numbers are unquoted words starting with a digit (or a sign and a digit); they are kept as
//! text and only interpreted when a key needs an integer.

use crate::error::{ConfigError, ErrorKind};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::iter::Peekable;
use core::str::Chars;

/// One scalar value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// The text (unescaped for strings, as written for numbers).
    pub text: String,
    /// Whether it was a quoted string (else an unquoted number).
    pub quoted: bool,
}

impl Atom {
    /// How the atom appears in error messages: strings quoted, numbers bare.
    pub fn describe(&self) -> String {
        if self.quoted {
            format!("{:?}", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// The value of a setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string or a number.
    Atom(Atom),
    /// A list of strings/numbers.
    List(Vec<Atom>),
}

impl Value {
    /// How the value appears in error messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Atom(a) => a.describe(),
            Value::List(_) => "a list".to_string(),
        }
    }
}

/// One `key = value` statement (after `+=` folding: the last one for its key wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// 1-based line of the (last) statement that set it.
    pub line: usize,
    /// The value.
    pub value: Value,
    /// Whether `+=` contributed to the value.
    pub appended: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Number(String),
    Str(String),
    LBracket,
    RBracket,
    Comma,
    Eq,
    PlusEq,
    Semi,
    Newline,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Number(s) => s.clone(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::LBracket => "'['".to_string(),
            Tok::RBracket => "']'".to_string(),
            Tok::Comma => "','".to_string(),
            Tok::Eq => "'='".to_string(),
            Tok::PlusEq => "'+='".to_string(),
            Tok::Semi => "';'".to_string(),
            Tok::Newline => "end of line".to_string(),
            Tok::Eof => "end of file".to_string(),
        }
    }
}

struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    line: usize,
}

fn err(line: usize, key: Option<&str>, kind: ErrorKind) -> ConfigError {
    ConfigError {
        line,
        key: key.map(String::from),
        kind,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            chars: text.chars().peekable(),
            line: 1,
        }
    }

    /// The next token and the line it starts on. `key` only labels errors.
    fn next(&mut self, key: Option<&str>) -> Result<(Tok, usize), ConfigError> {
        loop {
            let line = self.line;
            let Some(c) = self.chars.next() else {
                return Ok((Tok::Eof, line));
            };
            let tok = match c {
                ' ' | '\t' | '\r' => continue,
                '\n' => {
                    self.line += 1;
                    Tok::Newline
                }
                '#' => {
                    while let Some(&c) = self.chars.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.chars.next();
                    }
                    continue;
                }
                '"' | '\'' => Tok::Str(self.string(c, key)?),
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '=' => Tok::Eq,
                '+' if self.chars.peek() == Some(&'=') => {
                    self.chars.next();
                    Tok::PlusEq
                }
                '+' | '-' if self.chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                    Tok::Number(self.word(c))
                }
                c if c.is_ascii_digit() => Tok::Number(self.word(c)),
                c if c.is_ascii_alphabetic() || c == '_' => Tok::Ident(self.word(c)),
                c => return Err(err(line, key, ErrorKind::UnexpectedChar(c))),
            };
            return Ok((tok, line));
        }
    }

    fn word(&mut self, first: char) -> String {
        let mut s = String::new();
        s.push(first);
        while let Some(&c) = self.chars.peek() {
            if !is_word_char(c) {
                break;
            }
            s.push(c);
            self.chars.next();
        }
        s
    }

    fn string(&mut self, quote: char, key: Option<&str>) -> Result<String, ConfigError> {
        let line = self.line;
        let mut s = String::new();
        loop {
            let Some(c) = self.chars.next() else {
                return Err(err(line, key, ErrorKind::UnterminatedString));
            };
            match c {
                '\n' => return Err(err(line, key, ErrorKind::UnterminatedString)),
                c if c == quote => return Ok(s),
                '\\' => s.push(self.escape(line, key)?),
                '\0' => return Err(err(line, key, ErrorKind::UnexpectedChar('\0'))),
                c => s.push(c),
            }
        }
    }

    fn escape(&mut self, line: usize, key: Option<&str>) -> Result<char, ConfigError> {
        let bad = |escape: String| err(line, key, ErrorKind::InvalidEscape { escape });
        let Some(c) = self.chars.next() else {
            return Err(err(line, key, ErrorKind::UnterminatedString));
        };
        let v = match c {
            '"' | '\'' | '\\' => return Ok(c),
            'a' => 0x07,
            'b' => 0x08,
            'f' => 0x0c,
            'n' => b'\n',
            'r' => b'\r',
            't' => b'\t',
            'v' => 0x0b,
            'x' => {
                let mut text = String::from("\\x");
                let mut v: u32 = 0;
                for _ in 0..2 {
                    match self.chars.peek().and_then(|d| d.to_digit(16)) {
                        Some(d) => {
                            text.push(self.chars.next().unwrap_or('0'));
                            v = v * 16 + d;
                        }
                        None => return Err(bad(text)),
                    }
                }
                if v == 0 || v > 0x7f {
                    return Err(bad(text));
                }
                v as u8
            }
            '0'..='7' => {
                let mut text = format!("\\{c}");
                let mut v = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            text.push(self.chars.next().unwrap_or('0'));
                            v = v * 8 + d;
                        }
                        None => break,
                    }
                }
                if v == 0 || v > 0x7f {
                    return Err(bad(text));
                }
                v as u8
            }
            '\n' => return Err(err(line, key, ErrorKind::UnterminatedString)),
            c => return Err(bad(format!("\\{c}"))),
        };
        Ok(char::from(v))
    }
}

/// Parses the text into settings, folding `+=` into earlier values; for a key set several
/// times the last statement wins (as in `xl`). Order: by first appearance of each key.
pub fn parse_settings(text: &str) -> Result<Vec<Setting>, ConfigError> {
    let mut lx = Lexer::new(text);
    let mut settings: Vec<Setting> = Vec::new();
    loop {
        let (tok, line) = lx.next(None)?;
        let key = match tok {
            Tok::Eof => return Ok(settings),
            Tok::Newline | Tok::Semi => continue,
            Tok::Ident(k) => k,
            other => {
                return Err(err(
                    line,
                    None,
                    ErrorKind::ExpectedKey {
                        found: other.describe(),
                    },
                ))
            }
        };
        let k = Some(key.as_str());
        let (op, _) = lx.next(k)?;
        let append = match op {
            Tok::Eq => false,
            Tok::PlusEq => true,
            other => {
                return Err(err(
                    line,
                    k,
                    ErrorKind::MissingEquals {
                        found: other.describe(),
                    },
                ))
            }
        };
        let (tok, vline) = lx.next(k)?;
        let value = match tok {
            Tok::Str(s) => Value::Atom(Atom {
                text: s,
                quoted: true,
            }),
            Tok::Number(s) => Value::Atom(Atom {
                text: s,
                quoted: false,
            }),
            Tok::LBracket => Value::List(parse_list(&mut lx, vline, k)?),
            other => {
                return Err(err(
                    line,
                    k,
                    ErrorKind::ExpectedValue {
                        found: other.describe(),
                    },
                ))
            }
        };
        let (end, eline) = lx.next(k)?;
        if !matches!(end, Tok::Newline | Tok::Semi | Tok::Eof) {
            return Err(err(
                eline,
                k,
                ErrorKind::ExpectedEndOfStatement {
                    found: end.describe(),
                },
            ));
        }
        store(&mut settings, key, line, value, append)?;
        if end == Tok::Eof {
            return Ok(settings);
        }
    }
}

fn parse_list(
    lx: &mut Lexer<'_>,
    open_line: usize,
    key: Option<&str>,
) -> Result<Vec<Atom>, ConfigError> {
    let mut items = Vec::new();
    // After '[' or ',': an atom or ']' (empty list / trailing comma).
    loop {
        let (tok, line) = next_skipping_newlines(lx, key)?;
        match tok {
            Tok::RBracket => return Ok(items),
            Tok::Str(s) => items.push(Atom {
                text: s,
                quoted: true,
            }),
            Tok::Number(s) => items.push(Atom {
                text: s,
                quoted: false,
            }),
            Tok::LBracket => return Err(err(line, key, ErrorKind::NestedList)),
            Tok::Eof => return Err(err(open_line, key, ErrorKind::UnterminatedList)),
            other => {
                return Err(err(
                    line,
                    key,
                    ErrorKind::ExpectedValue {
                        found: other.describe(),
                    },
                ))
            }
        }
        // After an atom: ',' or ']'.
        let (tok, line) = next_skipping_newlines(lx, key)?;
        match tok {
            Tok::Comma => continue,
            Tok::RBracket => return Ok(items),
            Tok::Eof => return Err(err(open_line, key, ErrorKind::UnterminatedList)),
            other => {
                return Err(err(
                    line,
                    key,
                    ErrorKind::ExpectedValue {
                        found: format!("{} (missing ',' or ']'?)", other.describe()),
                    },
                ))
            }
        }
    }
}

fn next_skipping_newlines(
    lx: &mut Lexer<'_>,
    key: Option<&str>,
) -> Result<(Tok, usize), ConfigError> {
    loop {
        let (tok, line) = lx.next(key)?;
        if tok != Tok::Newline {
            return Ok((tok, line));
        }
    }
}

fn store(
    settings: &mut Vec<Setting>,
    key: String,
    line: usize,
    value: Value,
    append: bool,
) -> Result<(), ConfigError> {
    let Some(prev) = settings.iter_mut().find(|s| s.key == key) else {
        settings.push(Setting {
            key,
            line,
            value,
            appended: append,
        });
        return Ok(());
    };
    if append {
        match (&mut prev.value, value) {
            (Value::Atom(a), Value::Atom(b)) => {
                a.text.push_str(&b.text);
                a.quoted |= b.quoted;
            }
            (Value::List(a), Value::List(b)) => a.extend(b),
            _ => return Err(err(line, Some(&key), ErrorKind::InvalidAppend)),
        }
        prev.appended = true;
    } else {
        prev.value = value;
        prev.appended = false;
    }
    prev.line = line;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str, quoted: bool) -> Atom {
        Atom {
            text: s.to_string(),
            quoted,
        }
    }

    #[test]
    fn statements_comments_semicolons() {
        let s = parse_settings("# c\na = 1; b = 'x' # tail\n\n c=\"y\";").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].value, Value::Atom(atom("1", false)));
        assert_eq!(s[1].value, Value::Atom(atom("x", true)));
        assert_eq!(s[2].line, 4);
    }

    #[test]
    fn lists_span_lines_and_allow_trailing_comma() {
        let s = parse_settings("v = [\n 'a',\n \"b\",\n]\nw = []\nx=[1]").unwrap();
        assert_eq!(
            s[0].value,
            Value::List(alloc::vec![atom("a", true), atom("b", true)])
        );
        assert_eq!(s[0].line, 1);
        assert_eq!(s[1].value, Value::List(Vec::new()));
        assert_eq!(s[2].value, Value::List(alloc::vec![atom("1", false)]));
    }

    #[test]
    fn escapes() {
        let s = parse_settings(r#"a = "q\"\\\t\x41\101""#).unwrap();
        assert_eq!(s[0].value, Value::Atom(atom("q\"\\\tAA", true)));
        let e = parse_settings(r#"a = "\q""#).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::InvalidEscape {
                escape: "\\q".into()
            }
        );
        let e = parse_settings(r#"a = "\0""#).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::InvalidEscape { .. }));
        let e = parse_settings(r#"a = "\x4""#).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::InvalidEscape { .. }));
    }

    #[test]
    fn last_wins_and_append() {
        let s =
            parse_settings("a = 'x'\na = 'y'\nb = 'p'\nb += 'q'\nl = ['1']\nl += ['2']\nn += 'z'")
                .unwrap();
        assert_eq!(s[0].value, Value::Atom(atom("y", true)));
        assert_eq!(s[0].line, 2);
        assert_eq!(s[1].value, Value::Atom(atom("pq", true)));
        assert!(s[1].appended);
        assert_eq!(
            s[2].value,
            Value::List(alloc::vec![atom("1", true), atom("2", true)])
        );
        assert_eq!(s[3].value, Value::Atom(atom("z", true)));
        let e = parse_settings("a = 'x'\na += ['y']").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ErrorKind::InvalidAppend));
    }

    #[test]
    fn syntax_errors() {
        let e = parse_settings("a = 1\nb 2").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("b")));
        assert_eq!(e.kind, ErrorKind::MissingEquals { found: "2".into() });
        let e = parse_settings("= 2").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ExpectedKey { .. }));
        let e = parse_settings("a = \"abc\nb = 1").unwrap_err();
        assert_eq!((e.line, e.kind), (1, ErrorKind::UnterminatedString));
        let e = parse_settings("a = ").unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::ExpectedValue {
                found: "end of file".into()
            }
        );
        let e = parse_settings("a = hvm").unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::ExpectedValue {
                found: "hvm".into()
            }
        );
        let e = parse_settings("a = 1 2").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ExpectedEndOfStatement { .. }));
        let e = parse_settings("a = [\n'x',\n").unwrap_err();
        assert_eq!((e.line, e.kind), (1, ErrorKind::UnterminatedList));
        let e = parse_settings("a = [[1]]").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NestedList);
        let e = parse_settings("a = ['x' 'y']").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ExpectedValue { .. }));
        let e = parse_settings("a = @").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnexpectedChar('@'));
    }
}
