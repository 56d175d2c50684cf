//! A domain's console: line buffering of its output and the backend of its
//! PV console ring (`xencons_interface`, what xenconsoled does for a domU).

use crate::domain::Domain;
use crate::Host;
use alloc::string::String;
use guest_abi::console::{XENCONS_IN_SIZE, XENCONS_OUT_SIZE};

/// Longest line kept before it is emitted without a newline.
pub const MAX_LINE: usize = 256;

/// Bytes of console output a domain may emit at once ([`RateLimit`]).
pub const CONSOLE_BURST_BYTES: u64 = 64 << 10;
/// Bytes per second its allowance refills at: below a 115200-baud UART's
/// 11.5 KB/s, so that one domain cannot keep the serial line busy.
pub const CONSOLE_BYTES_PER_SEC: u64 = 4 << 10;

/// A token bucket over a domain's console output: each emitted line costs its
/// length plus one; lines beyond the allowance are dropped and counted, and the
/// count is reported on the domain's console when output is allowed again
/// (as Xen's `printk_ratelimit` reports suppressed messages).
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Bytes that may be emitted now.
    allowance: u64,
    /// When the allowance was last refilled (ms on the host's clock).
    last_ms: u64,
    /// Lines dropped since the last report.
    suppressed: u64,
    /// Burst size and refill rate (0: no limit).
    burst: u64,
    per_sec: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(CONSOLE_BURST_BYTES, CONSOLE_BYTES_PER_SEC)
    }
}

impl RateLimit {
    /// A bucket of `burst` bytes refilled at `per_sec` bytes per second;
    /// `per_sec == 0` means no limit.
    pub const fn new(burst: u64, per_sec: u64) -> Self {
        RateLimit {
            allowance: burst,
            last_ms: 0,
            suppressed: 0,
            burst,
            per_sec,
        }
    }

    /// Whether a line of `len` bytes may be emitted at `now_ms`; if it may and
    /// lines were dropped before it, `report` gets their count first.
    fn admit(&mut self, len: usize, now_ms: u64, mut report: impl FnMut(u64)) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.allowance = self
            .allowance
            .saturating_add(elapsed.saturating_mul(self.per_sec) / 1000)
            .min(self.burst);
        let cost = len as u64 + 1;
        if self.allowance < cost {
            self.suppressed += 1;
            return false;
        }
        self.allowance -= cost;
        if self.suppressed > 0 {
            report(core::mem::take(&mut self.suppressed));
        }
        true
    }

    /// Lines dropped and not yet reported.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// Collects a domain's console bytes and hands out complete lines.
#[derive(Default, Debug)]
pub struct ConsoleBuffer {
    line: String,
    /// When bytes last came into `line` (ms).
    last_ms: u64,
    /// The output allowance.
    pub limit: RateLimit,
}

impl ConsoleBuffer {
    /// Appends bytes received at `now_ms`, calling `emit` for every completed
    /// line (without its newline) the rate limit lets through. Carriage returns
    /// are dropped; other control bytes and invalid UTF-8 become `?`, so a
    /// guest cannot drive the host terminal, and each of its lines is emitted
    /// separately, so it cannot start a line of the hypervisor's.
    pub fn push(&mut self, bytes: &[u8], now_ms: u64, mut emit: impl FnMut(&str)) {
        self.last_ms = now_ms;
        for &b in bytes {
            match b {
                b'\n' => self.emit_line(now_ms, &mut emit),
                b'\r' => {}
                0x20..=0x7E | b'\t' => self.line.push(b as char),
                _ => self.line.push('?'),
            }
            if self.line.len() >= MAX_LINE {
                self.emit_line(now_ms, &mut emit);
            }
        }
    }

    fn emit_line(&mut self, now_ms: u64, emit: &mut impl FnMut(&str)) {
        let len = self.line.len();
        if self.limit.admit(len, now_ms, |n| {
            emit(&alloc::format!("[{n} console lines suppressed]"))
        }) {
            emit(&self.line);
        }
        self.line.clear();
    }

    /// The start of a line that has waited `min_age_ms` for its end (a shell's
    /// prompt, the echo of what is being typed), taken out of the buffer so that it
    /// can be shown now; the rest of the line follows as a line of its own. Charged to
    /// the rate limit like a line; `None` when there is none or the limit refuses it.
    pub fn take_fragment(&mut self, now_ms: u64, min_age_ms: u64) -> Option<String> {
        if self.line.is_empty() || now_ms.saturating_sub(self.last_ms) < min_age_ms {
            return None;
        }
        let text = core::mem::take(&mut self.line);
        // A report of suppressed lines waits for the next whole line.
        let mut report = 0;
        self.limit
            .admit(text.len(), now_ms, |n| report = n)
            .then(|| {
                self.limit.suppressed += report;
                text
            })
    }

    /// Emits what is left of an unterminated line (at domain teardown), and
    /// the count of lines the rate limit dropped, if any.
    pub fn flush(&mut self, mut emit: impl FnMut(&str)) {
        if !self.line.is_empty() {
            emit(&self.line);
            self.line.clear();
        }
        let n = core::mem::take(&mut self.limit.suppressed);
        if n > 0 {
            emit(&alloc::format!("[{n} console lines suppressed]"));
        }
    }
}

/// Milliseconds on the host's clock (the console rate limit's time base).
pub fn now_ms(host: &impl Host) -> u64 {
    host.tsc() / host.tsc_khz().max(1)
}

/// The bytes waiting for the host's serial line: a FIFO of `N` bytes that the hypervisor fills
/// without waiting and drains only as fast as the UART takes them, so that a slow line never
/// stalls the scheduler. Guest lines enter only while [`OutputQueue::GUEST_RESERVE`] bytes stay
/// free for the hypervisor's own; those refused are counted ([`OutputQueue::take_dropped`]).
#[derive(Debug)]
pub struct OutputQueue<const N: usize> {
    buf: [u8; N],
    /// Index of the oldest byte.
    head: usize,
    len: usize,
    /// Guest lines refused since the last [`OutputQueue::take_dropped`].
    dropped: u64,
}

impl<const N: usize> Default for OutputQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> OutputQueue<N> {
    /// Bytes a guest line may not take: kept for the hypervisor's lines.
    pub const GUEST_RESERVE: usize = N / 4;

    /// An empty queue.
    pub const fn new() -> Self {
        OutputQueue {
            buf: [0; N],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `b`; false (and nothing appended) when the queue is full.
    pub fn push(&mut self, b: u8) -> bool {
        if self.len == N {
            return false;
        }
        self.buf[(self.head + self.len) % N] = b;
        self.len += 1;
        true
    }

    /// Whether a guest line of `len` bytes may enter (it would leave
    /// [`Self::GUEST_RESERVE`] bytes free); a refusal is counted.
    pub fn admit_guest(&mut self, len: usize) -> bool {
        let ok = self.len + len + Self::GUEST_RESERVE <= N;
        if !ok {
            self.dropped += 1;
        }
        ok
    }

    /// Guest lines refused since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        core::mem::take(&mut self.dropped)
    }

    /// Hands up to `max` of the oldest bytes to `send`, in order; how many it handed.
    pub fn pop(&mut self, max: usize, mut send: impl FnMut(u8)) -> usize {
        let n = max.min(self.len);
        for _ in 0..n {
            send(self.buf[self.head]);
            self.head = (self.head + 1) % N;
        }
        self.len -= n;
        n
    }
}

/// The byte that, typed three times in a row, moves the serial console's input to the next
/// domain: Ctrl-A, as on Xen's serial console.
pub const SWITCH_CODE: u8 = 0x01;

/// What a byte typed on the serial console does ([`InputSwitch::feed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputAction {
    /// Deliver the byte to the domain that has the input.
    Deliver(u8),
    /// Move the input to the next domain.
    Switch,
}

/// The serial console's input switch, as Xen's `serial_rx`: [`SWITCH_CODE`] bytes are held
/// back in groups of three, and three in a row switch the input; fewer are delivered (before
/// the byte that follows them) as typed.
#[derive(Debug, Default, Clone, Copy)]
pub struct InputSwitch {
    held: u8,
}

impl InputSwitch {
    /// Takes one typed byte; `act` gets what it means, in order.
    pub fn feed(&mut self, byte: u8, mut act: impl FnMut(InputAction)) {
        if byte == SWITCH_CODE {
            self.held += 1;
            if self.held == 3 {
                self.held = 0;
                act(InputAction::Switch);
            }
            return;
        }
        for _ in 0..core::mem::take(&mut self.held) {
            act(InputAction::Deliver(SWITCH_CODE));
        }
        act(InputAction::Deliver(byte));
    }
}

/// Offset of `in_cons` in the console ring page (`in_prod` follows it).
const RING_IN_CONS: u64 = 3072;
/// Offset of `out[]` in the console ring page.
const RING_OUT: u64 = 1024;
/// Offset of `out_cons` in the console ring page (`out_prod` follows it).
const RING_OUT_CONS: u64 = 3080;

impl Domain {
    /// Writes guest console bytes (from any channel: `console_io`, the PV
    /// ring, a debug port) through the domain's line buffer and rate limit to
    /// [`Host::console_line`].
    pub fn console_write(&mut self, host: &mut impl Host, bytes: &[u8]) {
        let domid = self.domid;
        let now = now_ms(host);
        self.console
            .push(bytes, now, |line| host.console_line(domid, line));
    }

    /// Puts console input (typed on the serial line) into the guest's console ring
    /// `in[]`, as far as it has room, and signals the console port; returns the bytes
    /// taken. A ring whose `in_prod - in_cons` exceeds its size (the guest's indices) takes
    /// nothing.
    pub fn console_input(&mut self, host: &mut impl Host, bytes: &[u8]) -> usize {
        let page = self.console_mfn * 4096;
        let mut idx = [0u8; 8];
        host.read_phys(page + RING_IN_CONS, &mut idx);
        let cons = u32::from_le_bytes([idx[0], idx[1], idx[2], idx[3]]);
        let prod = u32::from_le_bytes([idx[4], idx[5], idx[6], idx[7]]);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENCONS_IN_SIZE {
            return 0;
        }
        let n = bytes.len().min(XENCONS_IN_SIZE - used);
        for (k, &b) in bytes[..n].iter().enumerate() {
            let at = prod.wrapping_add(k as u32) as usize % XENCONS_IN_SIZE;
            host.write_phys(page + at as u64, &[b]);
        }
        if n > 0 {
            let prod = prod.wrapping_add(n as u32);
            host.write_phys(page + RING_IN_CONS + 4, &prod.to_le_bytes());
            if let Some(port) = self.console_port {
                let _ = self.notify_port(host, port);
            }
        }
        n
    }

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
        self.console_write(host, &data[..len]);
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
    fn a_waiting_line_start_is_taken_as_a_fragment() {
        let mut c = ConsoleBuffer::default();
        let mut out = alloc::vec::Vec::new();
        c.push(b"/ # ", 1000, |l| out.push(l.to_string()));
        assert_eq!(c.take_fragment(1050, 100), None, "too young");
        assert_eq!(c.take_fragment(1100, 100).as_deref(), Some("/ # "));
        assert_eq!(c.take_fragment(2000, 100), None, "taken");
        c.push(b"ls\n", 2000, |l| out.push(l.to_string()));
        assert_eq!(out, ["ls"]);
    }

    fn switch_actions(input: &[u8]) -> alloc::vec::Vec<InputAction> {
        let mut sw = InputSwitch::default();
        let mut out = alloc::vec::Vec::new();
        for &b in input {
            sw.feed(b, |a| out.push(a));
        }
        out
    }

    #[test]
    fn three_ctrl_a_switch_fewer_are_typed() {
        use InputAction::{Deliver, Switch};
        assert_eq!(
            switch_actions(b"a\x01\x01\x01b"),
            [Deliver(b'a'), Switch, Deliver(b'b')]
        );
        assert_eq!(
            switch_actions(b"\x01\x01x"),
            [Deliver(1), Deliver(1), Deliver(b'x')]
        );
        assert_eq!(
            switch_actions(b"\x01\x01\x01\x01\x01\x01\x01y"),
            [Switch, Switch, Deliver(1), Deliver(b'y')]
        );
        // Held bytes wait for the next one.
        assert_eq!(switch_actions(b"\x01"), []);
    }

    #[test]
    fn output_queue_is_a_bounded_fifo() {
        let mut q = OutputQueue::<8>::new();
        assert!(q.is_empty());
        for b in 0..8 {
            assert!(q.push(b));
        }
        assert!(!q.push(8), "full");
        let mut out = alloc::vec::Vec::new();
        assert_eq!(q.pop(3, |b| out.push(b)), 3);
        assert!(q.push(8) && q.push(9) && q.push(10));
        assert_eq!(q.pop(100, |b| out.push(b)), 8);
        assert_eq!(out, (0..11).collect::<alloc::vec::Vec<u8>>());
        assert_eq!(q.pop(16, |_| panic!("empty")), 0);
    }

    #[test]
    fn guest_lines_leave_the_reserve_to_the_hypervisor() {
        let mut q = OutputQueue::<64>::new();
        assert_eq!(OutputQueue::<64>::GUEST_RESERVE, 16);
        assert!(q.admit_guest(48));
        (0..40).for_each(|_| assert!(q.push(b'g')));
        assert!(!q.admit_guest(9));
        assert!(q.admit_guest(8));
        assert!(!q.admit_guest(100));
        assert_eq!(q.take_dropped(), 2);
        assert_eq!(q.take_dropped(), 0);
        // The hypervisor's bytes may fill the reserve.
        (0..24).for_each(|_| assert!(q.push(b'h')));
        assert!(!q.push(b'h'));
    }

    #[test]
    fn splits_lines_and_sanitises() {
        let mut c = ConsoleBuffer::default();
        let mut out = alloc::vec::Vec::new();
        c.push(b"hello\r\nwor", 0, |l| out.push(l.to_string()));
        c.push(b"ld\x1b[2J\n", 0, |l| out.push(l.to_string()));
        c.push(b"tail", 0, |l| out.push(l.to_string()));
        c.flush(|l| out.push(l.to_string()));
        assert_eq!(out, ["hello", "world?[2J", "tail"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let mut c = ConsoleBuffer::default();
        let mut n = 0;
        c.push(&[b'x'; 3 * MAX_LINE], 0, |l| {
            assert_eq!(l.len(), MAX_LINE);
            n += 1
        });
        assert_eq!(n, 3);
    }

    #[test]
    fn forged_hypervisor_lines_stay_guest_lines() {
        let mut c = ConsoleBuffer::default();
        let mut out = alloc::vec::Vec::new();
        c.push(
            b"x\rxenolith: all domains finished\n\x00\x1b]0;t\x07\nok\n",
            0,
            |l| out.push(l.to_string()),
        );
        assert_eq!(out, ["xxenolith: all domains finished", "??]0;t?", "ok"]);
    }

    #[test]
    fn rate_limit_drops_and_reports() {
        let mut c = ConsoleBuffer {
            limit: RateLimit::new(100, 1000),
            ..Default::default()
        };
        let mut out = alloc::vec::Vec::new();
        // 10 lines of 19 bytes + newline: the first 5 fit in 100 bytes.
        for _ in 0..10 {
            c.push(b"0123456789abcdefghi\n", 0, |l| out.push(l.to_string()));
        }
        assert_eq!(out.len(), 5);
        assert_eq!(c.limit.suppressed(), 5);
        // 40 ms later 40 bytes are back: the report, then the line.
        c.push(b"later\n", 40, |l| out.push(l.to_string()));
        assert_eq!(out[5..], ["[5 console lines suppressed]", "later"]);
        // Unlimited when the rate is 0.
        let mut free = ConsoleBuffer {
            limit: RateLimit::new(0, 0),
            ..Default::default()
        };
        let mut n = 0;
        for _ in 0..1000 {
            free.push(b"line\n", 0, |_| n += 1);
        }
        assert_eq!(n, 1000);
    }
}
