//! 16550 UART console on COM1 and the `log` backend.
//!
//! Every record is printed as `xenolith: <message>` (with the level for
//! anything other than info) so the runner can find protocol lines at the
//! start of a line; see `docs/protocol.md`.
//!
//! Until the scheduler starts, output is written synchronously. From then on
//! it goes through an [`OutputQueue`] that [`pump`] drains a FIFO's worth at a
//! time whenever the UART is ready, so that 87 µs per byte on a real 115200-baud
//! line never stalls the scheduler. Guest lines that would eat into the
//! hypervisor's reserve are dropped and counted; [`flush`] empties the queue
//! before the machine stops.

use core::fmt::{self, Write};
use hypercalls::console::OutputQueue;
use spin::Mutex;
use x86::io::{inb, outb};

const COM1: u16 = 0x3F8;
/// Line status register: a received byte waits in RBR.
const LSR_DR: u8 = 0x01;
/// Line status register: transmit holding register (FIFO) empty.
const LSR_THRE: u8 = 0x20;
/// Line status register: transmitter empty (the last bit is on the line).
const LSR_TEMT: u8 = 0x40;
/// Bytes the queue holds: two rate-limit bursts of guest output and the reserve.
const QUEUE_BYTES: usize = 128 << 10;
/// Polls of the line status register before a byte is sent regardless.
const THRE_POLLS: u32 = 100_000;

/// The COM1 port and its queue.
static SERIAL: Mutex<Serial> = Mutex::new(Serial {
    ready: false,
    buffered: false,
    fifo: 1,
    queue: OutputQueue::new(),
    open: None,
});

struct Serial {
    /// [`init`] ran.
    ready: bool,
    /// Output is queued ([`start_buffering`]) rather than written at once.
    buffered: bool,
    /// Bytes the UART takes when THRE is set (16 with a working 16550A FIFO).
    fifo: usize,
    queue: OutputQueue<QUEUE_BYTES>,
    /// The domain whose line was started without its end (a fragment): its next
    /// text continues it; anything else ends it first.
    open: Option<u16>,
}

/// Whether the UART can take [`Serial::fifo`] more bytes.
fn thr_empty() -> bool {
    // SAFETY: reading the 16550 line status register has no side effects.
    unsafe { inb(COM1 + 5) & LSR_THRE != 0 }
}

/// Waits (boundedly) for the UART's transmit FIFO to empty.
fn wait_thr_empty() {
    for _ in 0..THRE_POLLS {
        if thr_empty() {
            break;
        }
    }
}

/// Sends one byte to the UART.
fn send(byte: u8) {
    // SAFETY: COM1's transmit holding register; we own the UART.
    unsafe { outb(COM1, byte) };
}

/// Sends one byte once the UART has room (or the wait timed out).
fn put_direct(byte: u8) {
    wait_thr_empty();
    send(byte);
}

impl Serial {
    fn put(&mut self, byte: u8) {
        if !self.ready {
            return;
        }
        if !self.buffered {
            put_direct(byte);
            return;
        }
        while !self.queue.push(byte) {
            // Full with the hypervisor's own output: wait for room.
            wait_thr_empty();
            self.pump();
        }
    }

    /// Moves what the UART can take now from the queue to it.
    fn pump(&mut self) {
        if !self.queue.is_empty() && thr_empty() {
            self.queue.pop(self.fifo, send);
        }
    }

    /// Sends everything queued, waiting for the line.
    fn drain(&mut self) {
        while !self.queue.is_empty() {
            wait_thr_empty();
            self.queue.pop(self.fifo, send);
        }
    }
}

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

/// Programs COM1 for 115200 8N1 with FIFOs.
pub fn init() {
    // SAFETY: standard 16550 programming sequence on the legacy COM1 ports,
    // which nothing else in the hypervisor touches; IIR (port + 2 on read) has no
    // side effect on the transmitter.
    let iir = unsafe {
        outb(COM1 + 1, 0x00);
        outb(COM1 + 3, 0x80);
        outb(COM1, 0x01);
        outb(COM1 + 1, 0x00);
        outb(COM1 + 3, 0x03);
        outb(COM1 + 2, 0xC7);
        outb(COM1 + 4, 0x03);
        inb(COM1 + 2)
    };
    let mut s = SERIAL.lock();
    // IIR bits 7:6 read 11 when the 16-byte FIFOs are enabled (a 16550A).
    s.fifo = if iir & 0xC0 == 0xC0 { 16 } else { 1 };
    s.ready = true;
}

/// From now on output is queued and sent by [`pump`] (the scheduler starts).
pub fn start_buffering() {
    SERIAL.lock().buffered = true;
}

/// Sends what the UART can take now, without waiting. Cheap when nothing is queued.
pub fn pump() {
    if let Some(mut s) = SERIAL.try_lock() {
        s.pump();
    }
}

/// Reads what was typed on the serial line, up to `buf.len()` bytes, without waiting;
/// returns how many. Nothing before [`init`].
pub fn read_input(buf: &mut [u8]) -> usize {
    if !SERIAL.try_lock().is_some_and(|s| s.ready) {
        return 0;
    }
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: reading LSR has no side effects; RBR is read only when LSR.DR
        // says a byte waits, which takes it from the receive FIFO we own.
        unsafe {
            if inb(COM1 + 5) & LSR_DR == 0 {
                break;
            }
            buf[n] = inb(COM1);
        }
        n += 1;
    }
    n
}

/// Whether output waits in the queue.
pub fn pending() -> bool {
    SERIAL.try_lock().is_some_and(|s| !s.queue.is_empty())
}

/// Sends everything queued and waits until the last byte is on the line; output is
/// synchronous again afterwards. Skipped if the console is locked (a fault inside it).
pub fn flush() {
    if let Some(mut s) = SERIAL.try_lock() {
        s.drain();
        s.buffered = false;
        for _ in 0..THRE_POLLS {
            // SAFETY: as in `thr_empty`.
            if unsafe { inb(COM1 + 5) } & LSR_TEMT != 0 {
                break;
            }
        }
    }
}

impl Serial {
    /// Ends a guest's open line, so that the next text starts a line of its own.
    fn end_open_line(&mut self) {
        if self.open.take().is_some() {
            let _ = self.write_str("\n");
        }
    }
}

/// Writes formatted text to the console (used by [`kprint!`]), on a line of its own.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let mut s = SERIAL.lock();
    s.end_open_line();
    let _ = s.write_fmt(args);
}

/// Writes domain `domid`'s console text as `(d<domid>) [<stamp>] <text>`: a whole line
/// (`whole`), or the start of one (a prompt) that its next text continues. Dropped and
/// counted when the queue is too full for guest output; the count is reported before the
/// next guest text that fits.
pub fn write_guest(domid: u16, stamp: Option<u64>, text: &str, whole: bool) {
    let mut s = SERIAL.lock();
    // The prefix, a TSC stamp and the line end.
    if s.buffered && !s.queue.admit_guest(text.len() + 40) {
        return;
    }
    let dropped = s.queue.take_dropped();
    if dropped > 0 {
        s.end_open_line();
        let _ = writeln!(
            s,
            "xenolith: warning: serial output queue full: {dropped} guest lines dropped"
        );
    }
    if s.open != Some(domid) {
        s.end_open_line();
        let _ = write!(s, "(d{domid}) ");
        if let Some(t) = stamp {
            let _ = write!(s, "[tsc+{t}] ");
        }
    }
    let _ = s.write_str(text);
    if whole {
        let _ = s.write_str("\n");
        s.open = None;
    } else {
        s.open = Some(domid);
    }
}

/// Writes to the console even if the lock is held (exception and panic paths):
/// what is queued first, then the text, synchronously.
pub fn write_fmt_forced(args: fmt::Arguments<'_>) {
    if let Some(mut s) = SERIAL.try_lock() {
        s.drain();
        s.buffered = false;
        s.end_open_line();
        let _ = s.write_fmt(args);
    } else {
        let _ = Direct.write_fmt(args);
    }
}

/// The UART written byte by byte, bypassing [`SERIAL`] (its lock is held).
struct Direct;

impl Write for Direct {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put_direct(b'\r');
            }
            put_direct(b);
        }
        Ok(())
    }
}

/// Prints to the serial console without a prefix.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the serial console without a prefix.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        match record.level() {
            log::Level::Info => kprintln!("xenolith: {}", record.args()),
            log::Level::Error => kprintln!("xenolith: error: {}", record.args()),
            log::Level::Warn => kprintln!("xenolith: warning: {}", record.args()),
            log::Level::Debug => kprintln!("xenolith: debug: {}", record.args()),
            log::Level::Trace => kprintln!("xenolith: trace: {}", record.args()),
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the `log` backend at the given level.
pub fn init_log(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
