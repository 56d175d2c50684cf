//! Time: calendar arithmetic for the wall clock (the RTC gives a date, Xen's
//! shared_info wants seconds since the Unix epoch) and the pvclock scale from
//! TSC ticks to a domain's system time.

use guest_abi::xen::VcpuTimeInfo;

/// Seconds since 1970-01-01 00:00:00 UTC for a proleptic Gregorian date and time.
pub fn unix_time(year: u64, month: u64, day: u64, hour: u64, min: u64, sec: u64) -> u64 {
    // Days from civil (Howard Hinnant's algorithm), shifted so March is month 0.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hour * 3600 + min * 60 + sec
}

/// A domain's system time: nanoseconds since its creation, derived from the TSC
/// exactly as the guest derives it from its pvclock (`vcpu_time_info`):
/// `ns = ((tsc - origin_tsc) << shift (>> -shift)) * mul >> 32`.
///
/// Hypervisor and guest use the same function, so a deadline the guest computes
/// from its pvclock is the deadline [`TimeBase::tsc`] turns back into a TSC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBase {
    /// TSC at system time 0 (the domain's creation): `tsc_timestamp`.
    pub origin_tsc: u64,
    /// `tsc_to_system_mul` (32.32 fixed point, in [2^31, 2^32)).
    pub mul: u32,
    /// `tsc_shift`.
    pub shift: i8,
}

impl TimeBase {
    /// The scale for a TSC running at `tsc_khz` with system time 0 at `origin_tsc`
    /// (Xen's `set_time_scale`: the frequency is halved or doubled into (1, 2] GHz,
    /// counting the steps in `shift`, and `mul = 10^9 * 2^32 / frequency`).
    pub fn new(origin_tsc: u64, tsc_khz: u64) -> Self {
        const NS_PER_S: u64 = 1_000_000_000;
        let mut hz = tsc_khz.max(1).saturating_mul(1000);
        let mut shift: i8 = 0;
        while hz > 2 * NS_PER_S {
            hz >>= 1;
            shift -= 1;
        }
        while hz <= NS_PER_S {
            hz <<= 1;
            shift += 1;
        }
        TimeBase {
            origin_tsc,
            mul: ((NS_PER_S << 32) / hz) as u32,
            shift,
        }
    }

    /// System time (ns) at `tsc`, computed as the guest's pvclock code does
    /// (0 before the origin).
    pub fn ns(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.origin_tsc);
        let scaled = if self.shift < 0 {
            delta >> -self.shift
        } else {
            delta << self.shift
        };
        ((scaled as u128 * self.mul as u128) >> 32) as u64
    }

    /// The first TSC value at which system time reaches `ns` (saturating).
    pub fn tsc(&self, ns: u64) -> u64 {
        // The smallest scaled delta s with (s * mul) >> 32 >= ns ...
        let s = ((ns as u128) << 32).div_ceil(self.mul as u128);
        // ... and the smallest delta that scales to at least s.
        let delta = if self.shift < 0 {
            s << -self.shift
        } else {
            s.div_ceil(1 << self.shift)
        };
        self.origin_tsc
            .saturating_add(delta.min(u64::MAX as u128) as u64)
    }

    /// The `vcpu_time_info` for this scale: version 2 (even, written once),
    /// `tsc_timestamp` = origin, `system_time` = 0, flags 0 (no
    /// `XEN_PVCLOCK_TSC_STABLE_BIT`, so Linux does not ask for a time area).
    pub fn pvclock(&self) -> VcpuTimeInfo {
        VcpuTimeInfo {
            version: 2,
            tsc_timestamp: self.origin_tsc,
            system_time: 0,
            tsc_to_system_mul: self.mul,
            tsc_shift: self.shift,
            flags: 0,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Linux's `pvclock_clocksource_read` computes.
    fn guest_ns(t: &VcpuTimeInfo, tsc: u64) -> u64 {
        let mut delta = tsc.wrapping_sub(t.tsc_timestamp);
        if t.tsc_shift < 0 {
            delta >>= -t.tsc_shift;
        } else {
            delta <<= t.tsc_shift;
        }
        t.system_time + ((delta as u128 * t.tsc_to_system_mul as u128) >> 32) as u64
    }

    /// Linux's `pvclock_tsc_khz`.
    fn guest_khz(t: &VcpuTimeInfo) -> u64 {
        let khz = (1_000_000u64 << 32) / t.tsc_to_system_mul as u64;
        if t.tsc_shift < 0 {
            khz << -t.tsc_shift
        } else {
            khz >> t.tsc_shift
        }
    }

    #[test]
    fn scale_matches_the_guest_and_inverts() {
        for khz in [
            1, 1_000, 50_000, 999_999, 1_000_000, 2_000_000, 2_999_999, 3_600_000,
        ] {
            let t = TimeBase::new(12_345, khz);
            let pv = t.pvclock();
            assert!(t.mul >= 1 << 31, "{khz}: mul normalised");
            let k = guest_khz(&pv);
            assert!(
                k.abs_diff(khz) * 10_000 <= khz,
                "{khz} kHz read back as {k}"
            );
            for tsc in [12_345, 12_346, 1 << 20, 1 << 40, 1 << 50, u64::MAX / 2] {
                assert_eq!(t.ns(tsc), guest_ns(&pv, tsc), "{khz} kHz at {tsc}");
            }
            let one_s = 12_345 + khz * 1000;
            assert!(t.ns(one_s).abs_diff(1_000_000_000) <= 1_000_000_000 / khz.min(1_000_000) + 2);
            for ns in [0, 1, 999, 1_000_000, 1_000_000_007, 1 << 45] {
                let tsc = t.tsc(ns);
                assert!(t.ns(tsc) >= ns, "{khz} kHz: {ns}");
                assert!(
                    tsc == t.origin_tsc || t.ns(tsc - 1) < ns,
                    "{khz} kHz: {ns} not first"
                );
            }
        }
        assert_eq!(TimeBase::new(7, 1_000_000).ns(3), 0, "before the origin");
        assert_eq!(TimeBase::new(7, 1_000_000).tsc(u64::MAX), u64::MAX);
    }

    #[test]
    fn known_dates() {
        assert_eq!(unix_time(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_time(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(unix_time(2026, 11, 25, 6, 30, 15), 1_795_588_215);
        assert_eq!(unix_time(2024, 2, 29, 23, 59, 59), 1_709_251_199);
    }
}
