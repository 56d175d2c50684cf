//! Line output through `console_io(CONSOLEIO_write)`: one hypercall per `GUEST ...` line.

use core::fmt::{self, Write};

use crate::xen;

/// Capacity of one output line, including the trailing `\n`.
const LINE_CAP: usize = 256;

/// A fixed-size line buffer; text past its capacity is dropped (the `\n` always fits).
pub struct Line {
    /// The bytes written so far.
    buf: [u8; LINE_CAP],
    /// How many bytes of `buf` are used.
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; LINE_CAP],
            len: 0,
        }
    }

    /// Appends `\n` and writes the line with one `console_io` call.
    pub fn emit(mut self) {
        self.buf[self.len] = b'\n';
        self.len += 1;
        // A console failure cannot be reported anywhere else, so its result is dropped.
        let _ = xen::console_write(&self.buf[..self.len]);
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the newline.
        let room = LINE_CAP - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one line: `GUEST ` followed by `args` and `\n`.
pub fn say(args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    // `Line::write_str` never fails; it truncates instead.
    let _ = line.write_str("GUEST ");
    let _ = line.write_fmt(args);
    line.emit();
}

/// Prints one `GUEST ...` line, with `format!` syntax.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::say(format_args!($($arg)*))
    };
}

/// Displays a byte string, replacing anything but printable ASCII with `?`.
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            let c = if (0x20..0x7F).contains(&b) {
                b as char
            } else {
                '?'
            };
            f.write_char(c)?;
        }
        Ok(())
    }
}
