//! The kernel's implementation of [`hypercalls::Host`]: identity-mapped host
//! memory, frames from [`crate::mem`], the serial console and the RTC.

use crate::mem;
use x86::io::{inb, outb};

/// `console_timestamps=tsc`: prefix each domain console line with the TSC
/// Set by `console_limit=0` on the command line: domains' console output is
/// not rate-limited.
pub static CONSOLE_UNLIMITED: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);
/// ticks since that domain's first VM entry (as Xen's `console_timestamps`).
pub static CONSOLE_TSC_STAMPS: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);
/// TSC at the running domain's first VM entry.
pub static LAUNCH_TSC: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Host services for the p2m and the hypercall handlers.
pub struct KernelHost;

impl p2m::EptTableMemory for KernelHost {
    fn alloc_table(&mut self) -> Option<u64> {
        mem::alloc_frame()
    }
    fn free_table(&mut self, table: u64) {
        mem::free_frames(table, 1);
    }
    fn read_entry(&self, table: u64, index: usize) -> u64 {
        assert!(index < 512);
        // SAFETY: `table` is an EPT table frame allocated by `alloc_table`,
        // identity-mapped; the index is in bounds.
        unsafe { core::ptr::read_volatile((table as *const u64).add(index)) }
    }
    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        assert!(index < 512);
        // SAFETY: as for `read_entry`; the p2m owns the table.
        unsafe { core::ptr::write_volatile((table as *mut u64).add(index), value) }
    }
}

/// The TSC stamp of a console line (ticks since launch), when the hypervisor was asked
/// for them.
fn console_stamp() -> Option<u64> {
    use core::sync::atomic::Ordering::Relaxed;
    CONSOLE_TSC_STAMPS
        .load(Relaxed)
        .then(|| crate::cpu::rdtsc().wrapping_sub(LAUNCH_TSC.load(Relaxed)))
}

/// Shows the start of domain `domid`'s current console line (a prompt, the echo of what
/// is typed) once it has waited [`FRAGMENT_AGE_MS`] for its end.
pub fn console_fragment(dom: &mut hypercalls::Domain, host: &KernelHost) {
    let now = hypercalls::console::now_ms(host);
    if let Some(text) = dom.console.take_fragment(now, FRAGMENT_AGE_MS) {
        crate::serial::write_guest(dom.domid, console_stamp(), &text, false);
    }
}

/// How long the start of a console line waits for its end before it is shown (ms).
pub const FRAGMENT_AGE_MS: u64 = 100;

impl hypercalls::Host for KernelHost {
    fn read_phys(&self, hpa: u64, buf: &mut [u8]) {
        assert!(hpa % 4096 + buf.len() as u64 <= 4096 && hpa < 1 << 32);
        // SAFETY: the p2m only hands out frames the hypervisor allocated for
        // the domain (guest RAM or special pages), below 4 GiB and identity-mapped;
        // the copy stays inside one page.
        unsafe { core::ptr::copy_nonoverlapping(hpa as *const u8, buf.as_mut_ptr(), buf.len()) }
    }
    fn write_phys(&mut self, hpa: u64, data: &[u8]) {
        assert!(hpa % 4096 + data.len() as u64 <= 4096 && hpa < 1 << 32);
        // SAFETY: as for `read_phys`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), hpa as *mut u8, data.len()) }
    }
    fn alloc_page(&mut self) -> Option<u64> {
        mem::alloc_frame()
    }
    fn free_page(&mut self, hpa: u64) {
        mem::free_frames(hpa, 1);
    }
    fn console_line(&mut self, domid: u16, line: &str) {
        crate::ledger::console_line(line);
        crate::serial::write_guest(domid, console_stamp(), line, true);
    }
    fn wallclock(&self) -> (u64, u32) {
        (rtc_unix_time(), 0)
    }
    fn tsc(&self) -> u64 {
        crate::cpu::rdtsc()
    }
    fn tsc_khz(&self) -> u64 {
        crate::cpu::tsc_khz()
    }
}

fn cmos(reg: u8) -> u8 {
    // SAFETY: the CMOS index/data ports; reading RTC registers has no side effects.
    unsafe {
        outb(0x70, reg);
        inb(0x71)
    }
}

/// Reads the RTC (UTC assumed) as seconds since the Unix epoch.
pub fn rtc_unix_time() -> u64 {
    // Wait for an update not to be in progress, then read twice until stable.
    let read = || {
        for _ in 0..1_000_000 {
            if cmos(0x0A) & 0x80 == 0 {
                break;
            }
        }
        [
            cmos(0x00),
            cmos(0x02),
            cmos(0x04),
            cmos(0x07),
            cmos(0x08),
            cmos(0x09),
            cmos(0x32),
        ]
    };
    let mut v = read();
    loop {
        let w = read();
        if w == v {
            break;
        }
        v = w;
    }
    let status_b = cmos(0x0B);
    let bcd = |x: u8| {
        if status_b & 0x04 == 0 {
            (x & 0x0F) + (x >> 4) * 10
        } else {
            x
        }
    };
    let mut hour = bcd(v[2] & 0x7F) as u64;
    if status_b & 0x02 == 0 && v[2] & 0x80 != 0 {
        hour = (hour % 12) + 12;
    }
    let century = match bcd(v[6]) {
        19..=30 => bcd(v[6]) as u64,
        _ => 20,
    };
    let year = century * 100 + bcd(v[5]) as u64;
    hypercalls::time::unix_time(
        year,
        bcd(v[4]) as u64,
        bcd(v[3]) as u64,
        hour,
        bcd(v[1]) as u64,
        bcd(v[0]) as u64,
    )
}
