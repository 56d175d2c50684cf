//! A sampling profile of guest code: guest RIPs taken at a fixed period
//! (preemption-timer exits), counted in a fixed-size table, so that a
//! benchmark can name the guest functions its ticks go to (map the RIPs with
//! the guest kernel's `System.map`; boot it with `nokaslr`).

/// Distinct sample addresses a profile holds; more are counted as dropped.
pub const PROFILE_SLOTS: usize = 2048;
/// Samples are counted per this many bytes of guest code.
pub const PROFILE_GRAIN: u64 = 16;

/// Sample counts by guest RIP (rounded down to [`PROFILE_GRAIN`]).
#[derive(Clone, Debug)]
pub struct Profile {
    slots: [(u64, u32); PROFILE_SLOTS],
    used: usize,
    /// Samples that found the table full.
    pub dropped: u64,
    /// Samples taken.
    pub samples: u64,
}

impl Profile {
    /// An empty profile.
    pub const fn new() -> Profile {
        Profile {
            slots: [(0, 0); PROFILE_SLOTS],
            used: 0,
            dropped: 0,
            samples: 0,
        }
    }

    /// Counts one sample at `rip`.
    pub fn record(&mut self, rip: u64) {
        self.samples += 1;
        // Key 0 marks a free slot, so addresses are stored plus one grain.
        let key = (rip / PROFILE_GRAIN).wrapping_add(1).max(1);
        let mut h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 53) as usize % PROFILE_SLOTS;
        for _ in 0..PROFILE_SLOTS {
            let s = &mut self.slots[h];
            if s.0 == key {
                s.1 = s.1.saturating_add(1);
                return;
            }
            if s.0 == 0 {
                if self.used * 4 >= PROFILE_SLOTS * 3 {
                    break;
                }
                *s = (key, 1);
                self.used += 1;
                return;
            }
            h = (h + 1) % PROFILE_SLOTS;
        }
        self.dropped += 1;
    }

    /// The `out.len()` addresses with the most samples, most first, as
    /// (RIP rounded down to the grain, count); returns how many it filled.
    pub fn top(&self, out: &mut [(u64, u32)]) -> usize {
        let mut n = 0;
        for &(key, count) in self.slots.iter().filter(|s| s.0 != 0) {
            let entry = ((key - 1).wrapping_mul(PROFILE_GRAIN), count);
            let pos = out[..n].iter().position(|e| e.1 < count).unwrap_or(n);
            if pos < out.len() {
                let end = (n + 1).min(out.len());
                out.copy_within(pos..end - 1, pos + 1);
                out[pos] = entry;
                n = end;
            }
        }
        n
    }

    /// Forgets every sample (in place: a profile is too big for a small stack).
    pub fn clear(&mut self) {
        self.slots.fill((0, 0));
        self.used = 0;
        self.dropped = 0;
        self.samples = 0;
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_grain_and_ranks() {
        let mut p = Profile::new();
        for _ in 0..5 {
            p.record(0xffff_ffff_8100_0003);
        }
        p.record(0xffff_ffff_8100_000f); // same grain
        for _ in 0..3 {
            p.record(0x4000);
        }
        p.record(0);
        let mut top = [(0, 0); 2];
        assert_eq!(p.top(&mut top), 2);
        assert_eq!(top, [(0xffff_ffff_8100_0000, 6), (0x4000, 3)]);
        let mut all = [(0, 0); 8];
        assert_eq!(p.top(&mut all), 3);
        assert_eq!(all[2], (0, 1));
        assert_eq!(p.samples, 10);
        p.clear();
        assert_eq!(p.top(&mut all), 0);
    }

    #[test]
    fn a_full_table_drops_instead_of_growing() {
        let mut p = Profile::new();
        for k in 0..(PROFILE_SLOTS as u64 * 2) {
            p.record(k * PROFILE_GRAIN);
        }
        assert_eq!(p.samples, PROFILE_SLOTS as u64 * 2);
        assert_eq!(
            p.dropped,
            PROFILE_SLOTS as u64 * 2 - (PROFILE_SLOTS as u64 * 3 / 4)
        );
        let mut top = [(0, 0); 4];
        assert_eq!(p.top(&mut top), 4);
    }
}
