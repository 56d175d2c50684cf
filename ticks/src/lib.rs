//! The tick ledger: every TSC tick of the physical CPU is charged to exactly
//! one [`Bucket`], so that a benchmark can say where a window's time went and
//! the parts add up to the window.
//!
//! The kernel keeps one [`Ledger`]. A stack of buckets says what the CPU is
//! doing: [`Ledger::set`] replaces the top (the scheduler entering a guest,
//! the guest exiting), [`Ledger::push`]/[`Ledger::pop`] nest backend work
//! inside it. Each call charges the ticks since the previous call to the
//! bucket that was on top, so the sum of all buckets is always the time since
//! [`Ledger::new`], exactly.
//!
//! [`Ledger::write`] prints the nonzero buckets as `key=value` pairs:
//! `d<N>.busy`, `d<N>.halted`, `d<N>.exit.<reason>`, `d<N>.hcall.<name>`,
//! `hv.<part>` (see [`Part`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

mod profile;
pub use profile::{Profile, PROFILE_GRAIN, PROFILE_SLOTS};

/// Domains with buckets of their own; higher domids share the last slot.
pub const MAX_DOMAINS: usize = 8;
/// Basic VM-exit reasons with buckets of their own (SDM vol. 3, appendix C);
/// higher ones share the last.
pub const EXIT_REASONS: usize = 80;
/// Hypercall numbers with buckets of their own; higher ones share the last.
pub const HYPERCALLS: usize = 64;
/// Nesting depth of [`Ledger::push`].
pub const MAX_DEPTH: usize = 16;

/// Hypervisor work that is not a VM exit of one domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Netback taking packets off guests' TX rings.
    NetbackTx,
    /// Netback writing frames into guests' RX rings.
    NetbackRx,
    /// The L2 switch.
    Switch,
    /// The built-in peer host (smoltcp).
    Peer,
    /// The xenstore server and backend watch events.
    Xenstore,
    /// Guest console rings.
    Console,
    /// The scheduler: picking vCPUs, timers, wake-ups, vCPU switches.
    Sched,
    /// Spinning with nothing to run (no HLT activity state).
    Idle,
    /// Anything else (boot, domain building, teardown).
    Other,
}

impl Part {
    /// Every part, in index order.
    pub const ALL: [Part; 9] = [
        Part::NetbackTx,
        Part::NetbackRx,
        Part::Switch,
        Part::Peer,
        Part::Xenstore,
        Part::Console,
        Part::Sched,
        Part::Idle,
        Part::Other,
    ];

    /// Its key after `hv.`.
    pub fn name(self) -> &'static str {
        match self {
            Part::NetbackTx => "netback_tx",
            Part::NetbackRx => "netback_rx",
            Part::Switch => "switch",
            Part::Peer => "peer",
            Part::Xenstore => "xenstore",
            Part::Console => "console",
            Part::Sched => "sched",
            Part::Idle => "idle",
            Part::Other => "other",
        }
    }
}

/// Where ticks go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// A vCPU of domain `domid` running guest code.
    Busy(u16),
    /// A vCPU of domain `domid` in the HLT activity state (the CPU idle).
    Halted(u16),
    /// Handling a VM exit of domain `domid` with this basic exit reason.
    Exit(u16, u16),
    /// Handling hypercall `nr` of domain `domid`.
    Hcall(u16, u64),
    /// Hypervisor work of no one domain.
    Hv(Part),
}

const PER_DOMAIN: usize = 2 + EXIT_REASONS + HYPERCALLS;
const BUCKETS: usize = Part::ALL.len() + MAX_DOMAINS * PER_DOMAIN;

impl Bucket {
    fn index(self) -> usize {
        let dom = |d: u16| Part::ALL.len() + (d as usize).min(MAX_DOMAINS - 1) * PER_DOMAIN;
        match self {
            Bucket::Hv(p) => p as usize,
            Bucket::Busy(d) => dom(d),
            Bucket::Halted(d) => dom(d) + 1,
            Bucket::Exit(d, r) => dom(d) + 2 + (r as usize).min(EXIT_REASONS - 1),
            Bucket::Hcall(d, nr) => {
                dom(d) + 2 + EXIT_REASONS + (nr.min(HYPERCALLS as u64 - 1) as usize)
            }
        }
    }

    fn from_index(i: usize) -> Bucket {
        if i < Part::ALL.len() {
            return Bucket::Hv(Part::ALL[i]);
        }
        let j = i - Part::ALL.len();
        let d = (j / PER_DOMAIN) as u16;
        match j % PER_DOMAIN {
            0 => Bucket::Busy(d),
            1 => Bucket::Halted(d),
            k if k < 2 + EXIT_REASONS => Bucket::Exit(d, (k - 2) as u16),
            k => Bucket::Hcall(d, (k - 2 - EXIT_REASONS) as u64),
        }
    }
}

impl fmt::Display for Bucket {
    /// The bucket's key: `d1.busy`, `d1.exit.hlt`, `d1.hcall.sched_op`, `hv.switch`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Bucket::Hv(p) => write!(f, "hv.{}", p.name()),
            Bucket::Busy(d) => write!(f, "d{d}.busy"),
            Bucket::Halted(d) => write!(f, "d{d}.halted"),
            Bucket::Exit(d, r) => match exit_reason_name(r) {
                Some(n) => write!(f, "d{d}.exit.{n}"),
                None => write!(f, "d{d}.exit.reason_{r}"),
            },
            Bucket::Hcall(d, nr) => match guest_abi::hypercall::name(nr) {
                Some(n) => write!(f, "d{d}.hcall.{n}"),
                None => write!(f, "d{d}.hcall.nr_{nr}"),
            },
        }
    }
}

/// The name of basic VM-exit reason `r` (SDM vol. 3, appendix C), lower case.
pub fn exit_reason_name(r: u16) -> Option<&'static str> {
    Some(match r {
        0 => "exception_nmi",
        1 => "external_interrupt",
        2 => "triple_fault",
        3 => "init",
        4 => "sipi",
        7 => "interrupt_window",
        8 => "nmi_window",
        9 => "task_switch",
        10 => "cpuid",
        12 => "hlt",
        13 => "invd",
        14 => "invlpg",
        15 => "rdpmc",
        16 => "rdtsc",
        18 => "vmcall",
        28 => "cr_access",
        29 => "dr_access",
        30 => "io",
        31 => "msr_read",
        32 => "msr_write",
        33 => "invalid_guest_state",
        34 => "msr_loading",
        36 => "mwait",
        37 => "monitor_trap_flag",
        39 => "monitor",
        40 => "pause",
        43 => "tpr_below_threshold",
        44 => "apic_access",
        45 => "virtualized_eoi",
        48 => "ept_violation",
        49 => "ept_misconfig",
        52 => "preemption_timer",
        55 => "xsetbv",
        56 => "apic_write",
        _ => return None,
    })
}

/// Ticks per bucket and the stack of what the CPU is doing.
#[derive(Clone, Debug)]
pub struct Ledger {
    ticks: [u64; BUCKETS],
    stack: [Bucket; MAX_DEPTH],
    depth: usize,
    last: u64,
    start: u64,
}

impl Ledger {
    /// A ledger whose time starts at TSC `now`, charged to `base`.
    pub const fn new(now: u64, base: Bucket) -> Ledger {
        Ledger {
            ticks: [0; BUCKETS],
            stack: [base; MAX_DEPTH],
            depth: 1,
            last: now,
            start: now,
        }
    }

    /// Charges the ticks up to `now` to the bucket on top. A TSC that went
    /// backwards charges nothing.
    fn charge(&mut self, now: u64) {
        let top = self.stack[self.depth - 1];
        self.ticks[top.index()] += now.saturating_sub(self.last);
        self.last = self.last.max(now);
    }

    /// From `now` on, ticks go to `b` instead of the bucket on top.
    pub fn set(&mut self, b: Bucket, now: u64) {
        self.charge(now);
        self.stack[self.depth - 1] = b;
    }

    /// From `now` on, ticks go to `b` until the matching [`Ledger::pop`]
    /// (past [`MAX_DEPTH`] the top is replaced, and that pop returns to the
    /// bucket below).
    pub fn push(&mut self, b: Bucket, now: u64) {
        self.charge(now);
        if self.depth < MAX_DEPTH {
            self.depth += 1;
        }
        self.stack[self.depth - 1] = b;
    }

    /// From `now` on, ticks go back to the bucket below the top (the base
    /// stays).
    pub fn pop(&mut self, now: u64) {
        self.charge(now);
        if self.depth > 1 {
            self.depth -= 1;
        }
    }

    /// The bucket on top.
    pub fn current(&self) -> Bucket {
        self.stack[self.depth - 1]
    }

    /// Ticks charged to `b` so far.
    pub fn get(&self, b: Bucket) -> u64 {
        self.ticks[b.index()]
    }

    /// Ticks charged to all buckets (`last charge - start`).
    pub fn total(&self) -> u64 {
        self.ticks.iter().sum()
    }

    /// The nonzero buckets, in index order.
    pub fn entries(&self) -> impl Iterator<Item = (Bucket, u64)> + '_ {
        self.ticks
            .iter()
            .enumerate()
            .filter(|(_, &t)| t != 0)
            .map(|(i, &t)| (Bucket::from_index(i), t))
    }

    /// Charges up to `now`, then writes `tsc=<now> <key>=<ticks> ...` for every nonzero
    /// bucket (no trailing space).
    pub fn write(&mut self, now: u64, out: &mut impl Write) -> fmt::Result {
        self.charge(now);
        write!(out, "tsc={}", self.last)?;
        for (b, t) in self.entries() {
            write!(out, " {b}={t}")?;
        }
        Ok(())
    }

    /// The TSC the ledger started at.
    pub fn start(&self) -> u64 {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tick_in_one_bucket() {
        let mut l = Ledger::new(100, Bucket::Hv(Part::Sched));
        l.set(Bucket::Busy(1), 110); // 10 sched
        l.set(Bucket::Exit(1, 18), 150); // 40 busy
        l.set(Bucket::Hcall(1, 29), 152); // 2 exit
        l.push(Bucket::Hv(Part::NetbackTx), 160); // 8 hcall
        l.push(Bucket::Hv(Part::Switch), 170); // 10 tx
        l.pop(175); // 5 switch
        l.pop(180); // 5 tx
        l.set(Bucket::Hv(Part::Sched), 181); // 1 hcall
        l.pop(190); // base stays: 9 sched
        assert_eq!(l.get(Bucket::Hv(Part::Sched)), 19);
        assert_eq!(l.get(Bucket::Busy(1)), 40);
        assert_eq!(l.get(Bucket::Exit(1, 18)), 2);
        assert_eq!(l.get(Bucket::Hcall(1, 29)), 9);
        assert_eq!(l.get(Bucket::Hv(Part::NetbackTx)), 15);
        assert_eq!(l.get(Bucket::Hv(Part::Switch)), 5);
        assert_eq!(l.total(), 90);
        let mut s = String::new();
        l.write(200, &mut s).unwrap();
        assert_eq!(
            s,
            "tsc=200 hv.netback_tx=15 hv.switch=5 hv.sched=29 d1.busy=40 \
             d1.exit.vmcall=2 d1.hcall.sched_op=9"
        );
        assert_eq!(l.total(), 200 - l.start());
    }

    #[test]
    fn indices_round_trip_and_clamp() {
        for d in 0..MAX_DOMAINS as u16 {
            for b in [
                Bucket::Busy(d),
                Bucket::Halted(d),
                Bucket::Exit(d, 0),
                Bucket::Exit(d, EXIT_REASONS as u16 - 1),
                Bucket::Hcall(d, 0),
                Bucket::Hcall(d, HYPERCALLS as u64 - 1),
            ] {
                assert_eq!(Bucket::from_index(b.index()), b);
            }
        }
        for p in Part::ALL {
            assert_eq!(Bucket::from_index(Bucket::Hv(p).index()), Bucket::Hv(p));
        }
        // Out-of-range domids, reasons and numbers share the last slot.
        assert_eq!(Bucket::Busy(500).index(), Bucket::Busy(7).index());
        assert_eq!(Bucket::Exit(1, 9999).index(), Bucket::Exit(1, 79).index());
        assert_eq!(
            Bucket::Hcall(1, u64::MAX).index(),
            Bucket::Hcall(1, 63).index()
        );
        assert_eq!(format!("{}", Bucket::Exit(2, 61)), "d2.exit.reason_61");
        assert_eq!(format!("{}", Bucket::Hcall(2, 60)), "d2.hcall.nr_60");
    }

    #[test]
    fn deep_nesting_and_backwards_tsc() {
        let mut l = Ledger::new(0, Bucket::Hv(Part::Other));
        for k in 0..MAX_DEPTH as u64 + 4 {
            l.push(Bucket::Hv(Part::Peer), k);
        }
        for k in 0..MAX_DEPTH as u64 + 8 {
            l.pop(100 + k);
        }
        assert_eq!(l.current(), Bucket::Hv(Part::Other));
        l.set(Bucket::Busy(1), 50); // backwards: nothing charged
        assert_eq!(l.total(), 100 + MAX_DEPTH as u64 + 7);
    }
}
