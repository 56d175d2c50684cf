//! The tick ledger of the physical CPU (crate `ticks`): the kernel says what
//! it is doing at each VM entry, exit, hypercall and backend call, and every
//! TSC tick is charged to one bucket. A guest console line
//! `XENOLITH TICKS <label>` asks for a snapshot: the machine prints
//! `ticks <label>: tsc=... <bucket>=<ticks> ... n.<counter>=<count> ...`.

use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use spin::Mutex;
pub use ticks::{Bucket, Part};
use ticks::{Profile, MAX_DOMAINS};

/// `profile_us=<N>`: sample guest RIPs every N µs of guest time (0: off).
pub static PROFILE_US: AtomicU64 = AtomicU64::new(0);
/// Guest RIP samples per domain since the last snapshot.
static PROFILES: Mutex<[Profile; MAX_DOMAINS]> =
    Mutex::new([const { Profile::new() }; MAX_DOMAINS]);
/// Addresses per domain a snapshot prints.
const PROFILE_TOP: usize = 48;

static LEDGER: Mutex<Option<ticks::Ledger>> = Mutex::new(None);
/// Labels of snapshots guests asked for, not printed yet.
static MARKS: Mutex<alloc::vec::Vec<String>> = Mutex::new(alloc::vec::Vec::new());

/// The console line that asks for a snapshot.
const MARK: &str = "XENOLITH TICKS ";
/// Snapshots waiting at most (a guest printing marks in a loop drops the rest).
const MAX_MARKS: usize = 16;

fn with(f: impl FnOnce(&mut ticks::Ledger, u64)) {
    let now = crate::cpu::rdtsc();
    if let Some(l) = LEDGER.lock().as_mut() {
        f(l, now);
    }
}

/// Starts the ledger (at the domains' launch), charging the scheduler.
pub fn start() {
    let now = crate::cpu::rdtsc();
    *LEDGER.lock() = Some(ticks::Ledger::new(now, Bucket::Hv(Part::Sched)));
}

/// From now on, ticks go to `b` instead of the bucket on top.
pub fn set(b: Bucket) {
    with(|l, now| l.set(b, now));
}

/// Runs `f` with its ticks charged to hypervisor part `p`.
pub fn part<R>(p: Part, f: impl FnOnce() -> R) -> R {
    with(|l, now| l.push(Bucket::Hv(p), now));
    let r = f();
    with(|l, now| l.pop(now));
    r
}

/// TSC ticks domain `domid`'s vCPUs spent running guest code and halted in
/// the guest, so far.
pub fn guest_ticks(domid: u16) -> (u64, u64) {
    let mut t = (0, 0);
    with(|l, now| {
        l.set(l.current(), now);
        t = (l.get(Bucket::Busy(domid)), l.get(Bucket::Halted(domid)));
    });
    t
}

/// The sampling period in TSC ticks, if guest code is profiled.
pub fn profile_period() -> Option<u64> {
    match PROFILE_US.load(Relaxed) {
        0 => None,
        us => Some(sched::us_to_ticks(us, crate::cpu::tsc_khz())),
    }
}

/// Counts a sample of domain `domid` at guest `rip`.
pub fn sample(domid: u16, rip: u64) {
    PROFILES.lock()[(domid as usize).min(MAX_DOMAINS - 1)].record(rip);
}

/// Notes a snapshot request if `line` (a guest console line) is one.
pub fn console_line(line: &str) {
    if let Some(at) = line.find(MARK) {
        let label: String = line[at + MARK.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(64)
            .collect();
        let mut marks = MARKS.lock();
        if !label.is_empty() && marks.len() < MAX_MARKS {
            marks.push(label);
        }
    }
}

/// Prints the snapshots asked for since the last call, each followed by the
/// counters `counters` writes (` n.<key>=<count>` pairs).
pub fn print_marks(counters: impl Fn(&mut String)) {
    let marks = core::mem::take(&mut *MARKS.lock());
    for label in marks {
        let mut line = alloc::format!("ticks {label}: ");
        with(|l, now| {
            let _ = l.write(now, &mut line);
        });
        counters(&mut line);
        crate::kprintln!("{line}");
        if profile_period().is_some() {
            print_profiles(&label);
        }
    }
}

/// `profile <label> d<N>: samples=.. dropped=.. <rip>=<count> ...`, most sampled
/// first, for each domain with samples; then starts the profiles afresh.
fn print_profiles(label: &str) {
    use core::fmt::Write;
    let mut profiles = PROFILES.lock();
    for (d, p) in profiles.iter_mut().enumerate() {
        if p.samples == 0 {
            continue;
        }
        let mut top = [(0u64, 0u32); PROFILE_TOP];
        let n = p.top(&mut top);
        let mut line = alloc::format!(
            "profile {label} d{d}: samples={} dropped={}",
            p.samples,
            p.dropped
        );
        for (rip, count) in &top[..n] {
            let _ = write!(line, " {rip:x}={count}");
        }
        crate::kprintln!("{line}");
        p.clear();
    }
}
