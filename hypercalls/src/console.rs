//! A domain's console: line buffering of its output and the backend of its
//! PV console ring (`xencons_interface`, what xenconsoled does for a domU).

use crate::domain::Domain;
use crate::Host;
use alloc::string::String;
use guest_abi::console::XENCONS_OUT_SIZE;

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

/// Offset of `out[]` in the console ring page.
const RING_OUT: u64 = 1024;
/// Offset of `out_cons` in the console ring page (`out_prod` follows it).
const RING_OUT_CONS: u64 = 3080;

impl Domain {
    /// Consumes what the guest produced in its console ring's `out[]` into
    /// console lines ([`Host::console_line`]), advances `out_cons`, and signals
    /// the console port if anything was consumed. Returns the bytes consumed.
    ///
    /// Like xenconsoled, a ring whose `out_prod - out_cons` exceeds the ring size
    /// is left alone (the indices are the guest's; nothing is read past the page).
    pub fn drain_console_ring(&mut self, host: &mut impl Host) -> usize {
        let page = self.console_mfn * 4096;
        let mut idx = [0u8; 8];
        host.read_phys(page + RING_OUT_CONS, &mut idx);
        let cons = u32::from_le_bytes([idx[0], idx[1], idx[2], idx[3]]);
        let prod = u32::from_le_bytes([idx[4], idx[5], idx[6], idx[7]]);
        let len = prod.wrapping_sub(cons) as usize;
        if len == 0 || len > XENCONS_OUT_SIZE {
            return 0;
        }
        let mut data = [0u8; XENCONS_OUT_SIZE];
        let start = cons as usize % XENCONS_OUT_SIZE;
        let first = len.min(XENCONS_OUT_SIZE - start);
        host.read_phys(page + RING_OUT + start as u64, &mut data[..first]);
        if first < len {
            host.read_phys(page + RING_OUT, &mut data[first..len]);
        }
        host.write_phys(page + RING_OUT_CONS, &prod.to_le_bytes());
        let domid = self.domid;
        self.console
            .push(&data[..len], |line| host.console_line(domid, line));
        if let Some(port) = self.console_port {
            let _ = self.notify_port(host, port);
        }
        len
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
