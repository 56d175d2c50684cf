//! Ordered sets of frame ranges, queried in O(log n).

use crate::{MemType, P2mError};
use alloc::collections::BTreeMap;
use core::ops::Range;

/// How much of a queried range a set covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coverage {
    /// No frame of the range is in the set.
    None,
    /// Some frames are, some are not.
    Partial,
    /// Every frame is.
    Full,
}

/// A set of frame numbers stored as disjoint, non-adjacent half-open ranges (start -> end).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// The empty set.
    pub const fn new() -> RangeSet {
        RangeSet {
            ranges: BTreeMap::new(),
        }
    }

    /// True when the set holds no frame.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Adds `r` to the set, merging with neighbouring ranges.
    pub fn insert(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        // A range that starts at or before `start` and reaches it: absorb it.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.ranges.remove(&s);
            }
        }
        // Ranges starting inside [start, end]: absorb them.
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            end = end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, end);
    }

    /// Removes `r` from the set, trimming or splitting ranges.
    pub fn remove(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        if let Some((&s, &e)) = self.ranges.range(..r.start).next_back() {
            if e > r.start {
                self.ranges.insert(s, r.start);
                if e > r.end {
                    self.ranges.insert(r.end, e);
                    return;
                }
            }
        }
        while let Some((&s, &e)) = self.ranges.range(r.start..r.end).next() {
            self.ranges.remove(&s);
            if e > r.end {
                self.ranges.insert(r.end, e);
                break;
            }
        }
    }

    /// True when frame `x` is in the set.
    pub fn contains(&self, x: u64) -> bool {
        matches!(self.ranges.range(..=x).next_back(), Some((_, &e)) if e > x)
    }

    /// How much of `r` the set covers, in O(log n): ranges are disjoint and non-adjacent, so
    /// full coverage means one stored range holds all of `r`.
    pub fn coverage(&self, r: Range<u64>) -> Coverage {
        if r.is_empty() {
            return Coverage::None;
        }
        match self.ranges.range(..r.end).next_back() {
            Some((&s, &e)) if e > r.start => {
                if s <= r.start && e >= r.end {
                    Coverage::Full
                } else {
                    Coverage::Partial
                }
            }
            _ => Coverage::None,
        }
    }

    /// Number of frames of `r` in the set.
    pub fn count_in(&self, r: Range<u64>) -> u64 {
        self.overlapping(r.clone())
            .map(|x| x.end.min(r.end) - x.start.max(r.start))
            .sum()
    }

    /// The stored ranges that overlap `r` (unclipped), in ascending order.
    pub fn overlapping(&self, r: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let first = match self.ranges.range(..r.start).next_back() {
            Some((&s, &e)) if e > r.start => s,
            _ => r.start,
        };
        let end = r.end.max(first);
        self.ranges.range(first..end).map(|(&s, &e)| s..e)
    }

    /// Total number of frames in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// The ranges of the set, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().map(|(&s, &e)| s..e)
    }
}

/// Pinned cache attributes: disjoint gfn ranges with a memory type forced by the toolstack
/// (Xen's `XEN_DOMCTL_pin_mem_cacheattr`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinnedCacheAttrs {
    ranges: BTreeMap<u64, (u64, MemType)>,
}

impl PinnedCacheAttrs {
    /// No pinned range.
    pub const fn new() -> PinnedCacheAttrs {
        PinnedCacheAttrs {
            ranges: BTreeMap::new(),
        }
    }

    /// Pins `r` to `ty`. Fails with [`P2mError::BadRange`] when `r` is empty or overlaps a pinned
    /// range.
    pub fn pin(&mut self, r: Range<u64>, ty: MemType) -> Result<(), P2mError> {
        if r.is_empty() || self.lookup(r.clone()) != (Coverage::None, None) {
            return Err(P2mError::BadRange);
        }
        self.ranges.insert(r.start, (r.end, ty));
        Ok(())
    }

    /// Removes the pinned range starting at `start`; returns it.
    pub fn unpin(&mut self, start: u64) -> Option<Range<u64>> {
        self.ranges.remove(&start).map(|(end, _)| start..end)
    }

    /// How `r` is covered by pinned ranges, and the type when it is inside one.
    pub fn lookup(&self, r: Range<u64>) -> (Coverage, Option<MemType>) {
        if r.is_empty() {
            return (Coverage::None, None);
        }
        match self.ranges.range(..r.end).next_back() {
            Some((&s, &(e, ty))) if e > r.start => {
                if s <= r.start && e >= r.end {
                    (Coverage::Full, Some(ty))
                } else {
                    (Coverage::Partial, None)
                }
            }
            _ => (Coverage::None, None),
        }
    }

    /// The pinned ranges and their types, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (Range<u64>, MemType)> + '_ {
        self.ranges.iter().map(|(&s, &(e, t))| (s..e, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn insert_merges_and_remove_splits() {
        let mut s = RangeSet::new();
        s.insert(10..20);
        s.insert(30..40);
        s.insert(20..30);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![10..40]);
        s.remove(15..25);
        assert_eq!(s.iter().collect::<Vec<_>>(), [10..15, 25..40]);
        s.insert(5..12);
        s.insert(38..50);
        assert_eq!(s.iter().collect::<Vec<_>>(), [5..15, 25..50]);
        s.remove(0..100);
        assert!(s.is_empty());
    }

    #[test]
    fn coverage_is_exact() {
        let mut s = RangeSet::new();
        s.insert(512..1024);
        s.insert(2048..2049);
        assert_eq!(s.coverage(512..1024), Coverage::Full);
        assert_eq!(s.coverage(0..512), Coverage::None);
        assert_eq!(s.coverage(0..513), Coverage::Partial);
        assert_eq!(s.coverage(1024..2048), Coverage::None);
        assert_eq!(s.coverage(1536..2560), Coverage::Partial);
        assert_eq!(s.coverage(2048..2049), Coverage::Full);
        assert_eq!(s.count_in(0..4096), 513);
        assert_eq!(s.count_in(1000..2049), 25);
        assert!(s.contains(2048) && !s.contains(2049) && !s.contains(511));
    }

    #[test]
    fn pinned_rejects_overlap() {
        let mut p = PinnedCacheAttrs::new();
        p.pin(100..200, MemType::Wc).unwrap();
        assert_eq!(p.pin(150..250, MemType::Uc), Err(P2mError::BadRange));
        assert_eq!(p.lookup(120..130), (Coverage::Full, Some(MemType::Wc)));
        assert_eq!(p.lookup(190..210), (Coverage::Partial, None));
        assert_eq!(p.unpin(100), Some(100..200));
    }
}
