//! Configuration errors.

use alloc::string::String;
use core::fmt;

/// A configuration error: where it is and what is wrong.
///
/// `Display` gives one line such as
/// `line 3, key 'memory': expected an integer, found "lots"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number, or 0 when the error concerns the file as a whole (a missing key).
    pub line: usize,
    /// The key concerned, if any.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A quoted string is not closed on its line.
    UnterminatedString,
    /// A backslash escape in a quoted string is invalid (or would produce a NUL byte).
    InvalidEscape {
        /// The escape as written, e.g. `\q`.
        escape: String,
    },
    /// A character that cannot start any token (e.g. `@`).
    UnexpectedChar(char),
    /// A statement does not start with a key.
    ExpectedKey {
        /// What was found instead.
        found: String,
    },
    /// A key is not followed by `=` (or `+=`).
    MissingEquals {
        /// What was found instead.
        found: String,
    },
    /// `=` is not followed by a value (quoted string, number or list).
    ExpectedValue {
        /// What was found instead.
        found: String,
    },
    /// Something follows a complete `key = value` on the same statement.
    ExpectedEndOfStatement {
        /// What was found instead.
        found: String,
    },
    /// A list's `[` has no matching `]`.
    UnterminatedList,
    /// A list contains a list.
    NestedList,
    /// The key wants an integer.
    ExpectedInteger {
        /// The value found.
        found: String,
    },
    /// The key wants a single string, not a list.
    ExpectedString {
        /// The value found.
        found: String,
    },
    /// The key wants a list.
    ExpectedList {
        /// The value found.
        found: String,
    },
    /// An integer outside the accepted range.
    OutOfRange {
        /// The value as written.
        value: String,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A value not among the accepted choices.
    InvalidChoice {
        /// The value found.
        found: String,
        /// The accepted values, for the message.
        expected: &'static str,
    },
    /// A valid xl setting that this hypervisor does not support.
    Unsupported {
        /// What is unsupported.
        what: String,
    },
    /// `+=` used with a number, or appending a list to a string (or the reverse).
    InvalidAppend,
    /// Two settings contradict each other.
    Conflict {
        /// The explanation.
        detail: String,
    },
    /// A malformed MAC address in a `vif` entry.
    BadMac {
        /// The address as written.
        found: String,
    },
    /// A malformed `vif` entry (other than its MAC).
    BadVif {
        /// 0-based index of the entry in the list.
        index: usize,
        /// The explanation.
        detail: String,
    },
    /// A required key is absent.
    MissingKey(&'static str),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnterminatedString => f.write_str("unterminated string"),
            ErrorKind::InvalidEscape { escape } => {
                write!(f, "invalid escape '{escape}' in quoted string")
            }
            ErrorKind::UnexpectedChar(c) => write!(f, "unexpected character {c:?}"),
            ErrorKind::ExpectedKey { found } => write!(f, "expected a key, found {found}"),
            ErrorKind::MissingEquals { found } => write!(f, "expected '=', found {found}"),
            ErrorKind::ExpectedValue { found } => write!(
                f,
                "expected a value (quoted string, number or list), found {found}"
            ),
            ErrorKind::ExpectedEndOfStatement { found } => {
                write!(f, "expected end of line or ';', found {found}")
            }
            ErrorKind::UnterminatedList => f.write_str("unterminated list (missing ']')"),
            ErrorKind::NestedList => f.write_str("lists cannot contain lists"),
            ErrorKind::ExpectedInteger { found } => {
                write!(f, "expected an integer, found {found}")
            }
            ErrorKind::ExpectedString { found } => write!(f, "expected a string, found {found}"),
            ErrorKind::ExpectedList { found } => write!(f, "expected a list, found {found}"),
            ErrorKind::OutOfRange { value, min, max } => {
                write!(f, "value {value} is out of range ({min} to {max})")
            }
            ErrorKind::InvalidChoice { found, expected } => {
                write!(f, "invalid value {found}, expected {expected}")
            }
            ErrorKind::Unsupported { what } => write!(f, "unsupported: {what}"),
            ErrorKind::InvalidAppend => {
                f.write_str("'+=' only appends a string to a string or a list to a list")
            }
            ErrorKind::Conflict { detail } => f.write_str(detail),
            ErrorKind::BadMac { found } => write!(
                f,
                "invalid MAC address {found:?} (want six hex octets like 00:16:3e:00:00:01, unicast)"
            ),
            ErrorKind::BadVif { index, detail } => write!(f, "vif entry {index}: {detail}"),
            ErrorKind::MissingKey(key) => write!(f, "missing required key '{key}'"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::MissingKey(_) = self.kind {
            return write!(f, "{}", self.kind);
        }
        match (self.line, &self.key) {
            (0, None) => write!(f, "{}", self.kind),
            (0, Some(k)) => write!(f, "key '{k}': {}", self.kind),
            (l, None) => write!(f, "line {l}: {}", self.kind),
            (l, Some(k)) => write!(f, "line {l}, key '{k}': {}", self.kind),
        }
    }
}

impl core::error::Error for ConfigError {}
