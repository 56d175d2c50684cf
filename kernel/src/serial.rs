//! 16550 UART console on COM1 and the `log` backend.
//!
//! Every record is printed as `xenolith: <message>` (with the level for
//! anything other than info) so the runner can find protocol lines at the
//! start of a line; see `docs/protocol.md`.

use core::fmt::{self, Write};
use spin::Mutex;
use x86::io::{inb, outb};

const COM1: u16 = 0x3F8;

/// The COM1 port; `None` until [`init`] ran.
static SERIAL: Mutex<Serial> = Mutex::new(Serial { ready: false });

struct Serial {
    ready: bool,
}

impl Serial {
    fn put(&mut self, byte: u8) {
        if !self.ready {
            return;
        }
        for _ in 0..100_000 {
            // SAFETY: reading the 16550 line status register has no side effects.
            if unsafe { inb(COM1 + 5) } & 0x20 != 0 {
                break;
            }
        }
        // SAFETY: COM1's transmit holding register; we own the UART.
        unsafe { outb(COM1, byte) };
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
    // which nothing else in the hypervisor touches.
    unsafe {
        outb(COM1 + 1, 0x00);
        outb(COM1 + 3, 0x80);
        outb(COM1, 0x01);
        outb(COM1 + 1, 0x00);
        outb(COM1 + 3, 0x03);
        outb(COM1 + 2, 0xC7);
        outb(COM1 + 4, 0x03);
    }
    SERIAL.lock().ready = true;
}

/// Writes formatted text to the console (used by [`kprint!`]).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let _ = SERIAL.lock().write_fmt(args);
}

/// Writes to the console even if the lock is held (exception and panic paths).
pub fn write_fmt_forced(args: fmt::Arguments<'_>) {
    if let Some(mut s) = SERIAL.try_lock() {
        let _ = s.write_fmt(args);
    } else {
        let mut s = Serial { ready: true };
        let _ = s.write_fmt(args);
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
