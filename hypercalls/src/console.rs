//! Line buffering of a domain's console output.

use alloc::string::String;

/// Longest line kept before it is emitted without a newline.
pub const MAX_LINE: usize = 256;

/// Collects a domain's console bytes and hands out complete lines.
#[derive(Default, Debug)]
pub struct ConsoleBuffer {
    line: String,
}

impl ConsoleBuffer {
    /// Appends bytes, calling `emit` for every completed line (without its
    /// newline). Carriage returns are dropped; other control bytes and invalid
    /// UTF-8 become `?`, so a guest cannot drive the host terminal.
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&str)) {
        for &b in bytes {
            match b {
                b'\n' => {
                    emit(&self.line);
                    self.line.clear();
                }
                b'\r' => {}
                0x20..=0x7E | b'\t' => self.line.push(b as char),
                _ => self.line.push('?'),
            }
            if self.line.len() >= MAX_LINE {
                emit(&self.line);
                self.line.clear();
            }
        }
    }

    /// Emits what is left of an unterminated line (at domain teardown).
    pub fn flush(&mut self, mut emit: impl FnMut(&str)) {
        if !self.line.is_empty() {
            emit(&self.line);
            self.line.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_sanitises() {
        let mut c = ConsoleBuffer::default();
        let mut out = alloc::vec::Vec::new();
        c.push(b"hello\r\nwor", |l| out.push(l.to_string()));
        c.push(b"ld\x1b[2J\n", |l| out.push(l.to_string()));
        c.push(b"tail", |l| out.push(l.to_string()));
        c.flush(|l| out.push(l.to_string()));
        assert_eq!(out, ["hello", "world?[2J", "tail"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let mut c = ConsoleBuffer::default();
        let mut n = 0;
        c.push(&[b'x'; 3 * MAX_LINE], |l| {
            assert_eq!(l.len(), MAX_LINE);
            n += 1
        });
        assert_eq!(n, 3);
    }
}
