//! `test=console-flood`: abuses `CONSOLEIO_write` (and port 0xE9) to freeze the machine or to
//! forge the hypervisor's own lines, then reports what each call returned.
//!
//! In order: lengths of 1 GiB and 4 GiB - 1 (from 8 MiB and 1 MiB before the end of RAM), a
//! buffer running past the end of RAM, a length with bits above 31, unmapped and MMIO buffers;
//! text with control characters, ANSI escapes, `\r`, NULs and invalid UTF-8; lines forging the
//! hypervisor's (`xenolith: ...`, `xenolith: p2m audit ...`) and another domain's
//! (`(d2) GUEST ...`), each tagged `[forged by d1]`, also after a line of exactly the longest
//! length and through port 0xE9; then [`MAX_CALLS`] calls of a [`BUF_SIZE`] buffer of forged
//! lines. It then waits a second (so that
//! a rate limiter lets its report through), prints one line per case, forges the final line
//! and prints `GUEST console-flood done`.

use core::cell::UnsafeCell;

use guest_abi::hypercall as nr;

use crate::hostile;
use crate::hypercall::hypercall;
use crate::xen;

/// Size of the buffer of the repeated calls.
const BUF_SIZE: usize = 64 << 10;
/// How many calls of the whole buffer.
const MAX_CALLS: u32 = 32;
/// Where the 1 GiB write starts: this many bytes before the end of RAM.
const LEN_1G_BEFORE_END: u64 = 8 << 20;
/// A canonical address the builder's page tables do not map.
const UNMAPPED: u64 = 0xFFFF_8000_DEAD_0000;
/// The Xen platform device's BAR1 (MMIO, not RAM).
const MMIO: u64 = 0xF000_0000;
/// System time the flooder waits before its report (1 s).
const REPORT_WAIT_NS: u64 = 1_000_000_000;
/// Cases recorded for the report.
const MAX_CASES: usize = 16;

/// Control characters, escapes, `\r`, NULs and invalid UTF-8.
const ESCAPES: &[u8] =
    b"\x1b[2J\x1b[H\x1b]0;owned\x07\x1b[31mred\x1b[0m \x00\x01\x02\x7f\x08\x08\x08\
    \x1bc\x1b[?1049h \t tab \xc3\x28 \xff\xfe\r\n";

/// Lines that imitate the hypervisor's and the victim's, each tagged.
const FORGED: &[u8] = b"\rxenolith: domain 2 (victim) shut down: poweroff [forged by d1]\n\
    \r(d2) GUEST done, shutting down [forged by d1]\n\
    xenolith: p2m audit d2: 3 special pages WB+ipat, 1 leaves, 0 violations [forged by d1]\n\
    p2m audit d2: 3 special pages WB+ipat, 1 leaves, 0 violations [forged by d1]\n\
    \x1b[2K\x1b[1Gxenolith: domain 1 (console-flood) shut down: poweroff [forged by d1]\n\
    \x00\nxenolith: PANIC [forged by d1]\n\
    \nxenolith: EXCEPTION vector=13 rip=0x0 error=0x0 cr2=0x0 [forged by d1]\n";

/// One forged line, the unit the big buffer repeats.
const FORGED_LINE: &[u8] = b"xenolith: domain 2 (victim) shut down: poweroff [forged by d1]\n";

/// Through port 0xE9, the other console channel.
const FORGED_E9: &[u8] = b"\nxenolith: domain 2 (victim) crashed: port 0xe9 [forged by d1]\n";

/// The forged final line, sent last.
const FORGED_FINAL: &[u8] = b"\nxenolith: all domains finished [forged by d1]\n";

/// The buffer of the repeated calls.
struct Buf(UnsafeCell<[u8; BUF_SIZE]>);

// SAFETY: one vCPU; the buffer is borrowed once, by `run`.
unsafe impl Sync for Buf {}

/// The buffer of the repeated calls.
static BUF: Buf = Buf(UnsafeCell::new([0; BUF_SIZE]));

/// `console_io(CONSOLEIO_write, count, buf)` with any count and address.
fn write_raw(count: u64, buf: u64) -> i64 {
    // SAFETY: CONSOLEIO_write only reads guest memory; an address or length beyond what is
    // mapped makes it fail with -EFAULT, never write.
    unsafe { hypercall(nr::CONSOLE_IO, [xen::CONSOLEIO_WRITE, count, buf, 0, 0]) }
}

/// The report: a name and a return value per case.
struct Report {
    /// The cases so far.
    cases: [(&'static str, i64); MAX_CASES],
    /// How many of `cases` are used.
    len: usize,
}

impl Report {
    /// Records a case.
    fn add(&mut self, name: &'static str, rc: i64) {
        if self.len < MAX_CASES {
            self.cases[self.len] = (name, rc);
            self.len += 1;
        }
    }
}

/// Runs the flood and powers the domain off; `ram_end` is the end of the highest RAM range in
/// the builder's memory map.
pub fn run(ram_end: u64) -> ! {
    // SAFETY: the only borrow of the static buffer (single vCPU, `run` never returns).
    let buf = unsafe { &mut *BUF.0.get() };
    let mut report = Report {
        cases: [("", 0); MAX_CASES],
        len: 0,
    };
    say!("console-flood start ram_end={ram_end:#x}");

    // 1 GiB from 8 MiB before the end of RAM: 8 MiB to copy before -EFAULT (enough to hold
    // every domain for minutes at the serial line's speed were it copied in one go; from the
    // start of RAM it would take Bochs minutes even with the output dropped).
    report.add(
        "len-1g",
        write_raw(1 << 30, ram_end.saturating_sub(LEN_1G_BEFORE_END)),
    );
    report.add(
        "len-4g-1-near-ram-end",
        write_raw(u64::from(u32::MAX), ram_end.saturating_sub(1 << 20)),
    );
    report.add(
        "len-past-ram-end",
        write_raw(4096, ram_end.saturating_sub(100)),
    );
    let short = b"GUEST console-flood count above 32 bits\n";
    report.add(
        "len-2^32+n",
        write_raw((1 << 32) | short.len() as u64, short.as_ptr() as u64),
    );
    report.add("unmapped-1g", write_raw(1 << 30, UNMAPPED));
    report.add("mmio-64k", write_raw(64 << 10, MMIO));

    report.add("escapes", xen::console_write(ESCAPES));
    report.add("forged", xen::console_write(FORGED));
    // A line of exactly the longest length the hypervisor keeps, then a forged line: the cut
    // must not let the rest start a line of its own.
    buf[..256].fill(b'A');
    let n = 256 + FORGED_LINE.len();
    buf[256..n].copy_from_slice(FORGED_LINE);
    report.add("long-line-then-forged", xen::console_write(&buf[..n]));
    crate::arch::out_bytes(0xE9, FORGED_E9);

    for chunk in buf.chunks_mut(FORGED_LINE.len()) {
        chunk.copy_from_slice(&FORGED_LINE[..chunk.len()]);
    }
    let mut failed = 0;
    let mut last = 0;
    for _ in 0..MAX_CALLS {
        last = xen::console_write(&buf[..]);
        failed += u32::from(last != 0);
    }
    // The buffer ends mid-line: end it.
    xen::console_write(b"\n");

    hostile::wait_ns(REPORT_WAIT_NS, 1_000_000);
    for &(name, rc) in &report.cases[..report.len] {
        say!("console-flood {name}: rc={rc}");
    }
    say!("console-flood {MAX_CALLS} calls of {BUF_SIZE} bytes: {failed} failed, last rc={last}");
    xen::console_write(FORGED_FINAL);
    say!("console-flood done");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}
