//! The vCPU scheduling policy of the one physical CPU, with no privileged
//! instruction: round robin over every vCPU of every domain, with a boost
//! for a vCPU an event just woke (as Xen's credit scheduler boosts a waking
//! vCPU), so that an event's receiver runs promptly instead of waiting for
//! the running vCPU's slice to end. The running vCPU keeps the CPU for at
//! least [`Params::ratelimit_us`] (Xen's `sched_ratelimit_us`), so that a
//! stream of wake-ups cannot thrash it.
//!
//! All times are microseconds, converted to TSC ticks with the measured TSC
//! frequency ([`us_to_ticks`]): on an Intel host the TSC runs at GHz, under
//! Bochs at 50 MHz.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// Scheduling times, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Slice of a vCPU while others are runnable.
    pub slice_us: u64,
    /// Slice of a vCPU that runs alone (the hypervisor still polls its backends this often).
    pub alone_us: u64,
    /// Least time the running vCPU keeps the CPU before a boosted one takes it.
    pub ratelimit_us: u64,
    /// Longest the CPU idles when no vCPU has a timer.
    pub idle_max_us: u64,
}

impl Params {
    /// Xen's credit scheduler values: 30 ms slices (the
    /// `sched_credit_tslice_ms` default), 1 ms rate limit; 1 s alone or idle.
    pub const XEN: Params = Params {
        slice_us: 30_000,
        alone_us: 1_000_000,
        ratelimit_us: 1_000,
        idle_max_us: 1_000_000,
    };

    /// xenolith's default: Xen's, but a woken vCPU does not preempt the
    /// running one (the rate limit is the slice); it runs first once the
    /// running one blocks or its slice ends. With one physical CPU shared by
    /// a sender and a receiver, preempting after 1 ms cost more in switches
    /// and smaller batches than it saved in latency: iperf3 between two
    /// domains went from 101-103 / 122-137 Mbit/s (c2s / s2c, Xen's 1 ms) to
    /// 108-112 / 141-143 (README, Measured). `sched_ratelimit_us=1000` gives
    /// Xen's behaviour.
    pub const DEFAULT: Params = Params {
        ratelimit_us: 30_000,
        ..Params::XEN
    };
}

impl Params {
    /// Applies one hypervisor command-line option, named as Xen's:
    /// `sched_credit_tslice_ms`, `sched_ratelimit_us` (0: a woken vCPU
    /// preempts at once; at least the slice: no boost preemption at all).
    /// `Ok(false)` for a key that is not a scheduler option; `Err` for a bad value.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, &'static str> {
        let n = || value.parse::<u64>().map_err(|_| "not a number");
        match key {
            "sched_credit_tslice_ms" => {
                self.slice_us = n()?.clamp(1, 1000) * 1000;
            }
            "sched_ratelimit_us" => self.ratelimit_us = n()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `us` microseconds in TSC ticks at `tsc_khz` (at least 1 tick).
pub fn us_to_ticks(us: u64, tsc_khz: u64) -> u64 {
    (us.saturating_mul(tsc_khz) / 1000).max(1)
}

/// What the policy needs to know of one vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// It can run.
    pub runnable: bool,
    /// An event woke it and it has not run since.
    pub boosted: bool,
}

/// The vCPU to run next: the first boosted runnable one from `cursor` on
/// (wrapping), else the first runnable one from `cursor` on; `None` if none
/// can run.
pub fn pick(slots: &[Slot], cursor: usize) -> Option<usize> {
    let n = slots.len();
    let order = || (0..n).map(|k| (cursor + k) % n);
    order()
        .find(|&k| slots[k].runnable && slots[k].boosted)
        .or_else(|| order().find(|&k| slots[k].runnable))
}

/// When the slice of the vCPU picked at `start` ends: its slice
/// ([`Params::slice_us`] if `others_runnable`, else [`Params::alone_us`]),
/// cut short at `deadline`, the earliest timer of a vCPU waiting elsewhere
/// (so that timer fires on time).
pub fn slice_end(
    p: &Params,
    tsc_khz: u64,
    start: u64,
    others_runnable: bool,
    deadline: Option<u64>,
) -> u64 {
    let slice = if others_runnable {
        p.slice_us
    } else {
        p.alone_us
    };
    let end = start.saturating_add(us_to_ticks(slice, tsc_khz));
    deadline.map_or(end, |d| end.min(d.max(start)))
}

/// The slice end once a boosted vCPU waits at `now`: no later than the
/// rate limit after `start` (or `now`, if that has passed).
pub fn preempt_at(p: &Params, tsc_khz: u64, start: u64, now: u64, end: u64) -> u64 {
    let earliest = start.saturating_add(us_to_ticks(p.ratelimit_us, tsc_khz));
    end.min(earliest.max(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: Slot = Slot {
        runnable: true,
        boosted: false,
    };
    const BOOST: Slot = Slot {
        runnable: true,
        boosted: true,
    };
    const WAIT: Slot = Slot {
        runnable: false,
        boosted: false,
    };

    #[test]
    fn boosted_first_then_round_robin() {
        assert_eq!(pick(&[RUN, RUN, RUN], 1), Some(1));
        assert_eq!(pick(&[RUN, RUN, RUN], 3), Some(0));
        assert_eq!(pick(&[RUN, WAIT, BOOST], 0), Some(2));
        assert_eq!(pick(&[BOOST, WAIT, BOOST], 1), Some(2));
        // A boost on a vCPU that cannot run counts for nothing.
        let stale = Slot {
            runnable: false,
            boosted: true,
        };
        assert_eq!(pick(&[RUN, stale], 1), Some(0));
        assert_eq!(pick(&[WAIT, stale], 0), None);
        assert_eq!(pick(&[], 0), None);
    }

    #[test]
    fn times_follow_the_tsc_frequency() {
        assert_eq!(us_to_ticks(30_000, 50_000), 1_500_000); // Bochs, 50 MHz
        assert_eq!(us_to_ticks(30_000, 3_000_000), 90_000_000); // 3 GHz
        assert_eq!(us_to_ticks(0, 3_000_000), 1);
        assert_eq!(us_to_ticks(u64::MAX, u64::MAX), u64::MAX / 1000);
        let p = Params::XEN;
        assert_eq!(slice_end(&p, 50_000, 100, true, None), 1_500_100);
        assert_eq!(slice_end(&p, 50_000, 100, false, None), 50_000_100);
        assert_eq!(slice_end(&p, 50_000, 100, true, Some(5_000)), 5_000);
        // A deadline already past ends the slice at once.
        assert_eq!(slice_end(&p, 50_000, 100, true, Some(7)), 100);
    }

    #[test]
    fn options_as_xen_names_them() {
        let mut p = Params::DEFAULT;
        assert_eq!(p.ratelimit_us, p.slice_us);
        assert_eq!(p.apply("sched_credit_tslice_ms", "10"), Ok(true));
        assert_eq!(p.apply("sched_ratelimit_us", "0"), Ok(true));
        assert_eq!(p.apply("loglvl", "debug"), Ok(false));
        assert_eq!(p.apply("sched_ratelimit_us", "x"), Err("not a number"));
        assert_eq!(p.apply("sched_credit_tslice_ms", "0"), Ok(true));
        assert_eq!(p.slice_us, 1000);
        assert_eq!(p.ratelimit_us, 0);
    }

    #[test]
    fn boost_preempts_after_the_rate_limit() {
        let p = Params::XEN;
        let end = slice_end(&p, 50_000, 1000, true, None);
        // Woken 10 µs in: runs to 1 ms after the start.
        assert_eq!(preempt_at(&p, 50_000, 1000, 1500, end), 51_000);
        // Woken after the rate limit: now.
        assert_eq!(preempt_at(&p, 50_000, 1000, 90_000, end), 90_000);
        // Never later than the slice.
        assert_eq!(preempt_at(&p, 50_000, 1000, 1500, 20_000), 20_000);
    }
}
