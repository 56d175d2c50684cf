//! Checking the real EPT tables against the p2m.

use crate::ept::{is_leaf, present, slot_order, ADDR_MASK, ENTRIES, IPAT, LARGE};
use crate::{EptTableMemory, Gfn, MemType, P2m, Resolution, MAX_GFN};

/// What [`audit`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AuditReport {
    /// Special 4 KiB frames mapped by a WB leaf with ignore-PAT.
    pub special_wb_ipat: u64,
    /// EPT leaves.
    pub leaves: u64,
    /// Special frames not mapped WB+ipat, leaves with a reserved memory type, leaves that do not
    /// map what the p2m says (wrong mfn or rights, misaligned superpage, mapped where the p2m
    /// has nothing), leaves whose type is not the resolver's answer for their range, p2m runs
    /// missing from the EPT, and large-page bits in PML4 entries.
    pub violations: u64,
}

struct Walker<'a, M> {
    mem: &'a M,
    p2m: &'a P2m,
    report: AuditReport,
    /// End of the last leaf seen: leaves come in ascending gfn order.
    next: Gfn,
}

impl<M: EptTableMemory> Walker<'_, M> {
    fn walk(&mut self, table: u64, level: u32, base: Gfn) {
        let order = slot_order(level);
        for i in 0..ENTRIES {
            let e = self.mem.read_entry(table, i);
            if !present(e) {
                continue;
            }
            let s = base + ((i as u64) << order);
            if level == 4 && e & LARGE != 0 {
                self.report.violations += 1;
            } else if is_leaf(e, level) {
                self.leaf(e, order, s);
            } else {
                self.walk(e & ADDR_MASK, level - 1, s);
            }
        }
    }

    /// Counts the p2m runs overlapping `[a, b)`, a stretch the EPT does not map.
    fn gap(&mut self, a: Gfn, b: Gfn) {
        if a >= b {
            return;
        }
        let ext = &self.p2m.extents;
        let before = matches!(ext.range(..a).next_back(), Some((_, x)) if x.end > a);
        self.report.violations += u64::from(before) + ext.range(a..b).count() as u64;
    }

    fn leaf(&mut self, e: u64, order: u32, s: Gfn) {
        let n = 1u64 << order;
        let end = s + n;
        self.report.leaves += 1;
        self.gap(self.next, s);
        self.next = end;
        let mfn = (e & ADDR_MASK) >> 12;
        let ipat = e & IPAT != 0;
        let mt = MemType::try_from(((e >> 3) & 7) as u8).ok();
        if mt.is_none() {
            self.report.violations += 1;
        }
        let specials = self.p2m.specials.count_in(s..end);
        if mt == Some(MemType::Wb) && ipat {
            self.report.special_wb_ipat += specials;
        } else {
            self.report.violations += specials;
        }
        if !self.maps_run(s, end, mfn, e & 7) {
            self.report.violations += 1;
        } else if let Some(mem_type) = mt {
            if self.p2m.resolution(s, order) != Some(Resolution::Type { mem_type, ipat }) {
                self.report.violations += 1;
            }
        }
    }

    /// True when the p2m maps all of `[s, end)` to `mfn ..` with one p2m type and `rights`.
    fn maps_run(&self, s: Gfn, end: Gfn, mfn: u64, rights: u64) -> bool {
        if mfn & (end - s - 1) != 0 {
            return false;
        }
        let ext = &self.p2m.extents;
        let first = match ext.range(..=s).next_back() {
            Some((&k, x)) if x.end > s => k,
            _ => return false,
        };
        let mut cursor = s;
        let mut ty = None;
        for (&xs, x) in ext.range(first..end) {
            let a = xs.max(s);
            if a != cursor
                || x.mfn + (a - xs) != mfn + (a - s)
                || x.mapping.ept_rights() != rights
                || ty.is_some_and(|t| t != x.mapping.p2m_type)
            {
                return false;
            }
            ty = Some(x.mapping.p2m_type);
            cursor = x.end.min(end);
        }
        cursor == end
    }
}

/// Walks the real EPT tables (not the p2m's records) and checks them against the p2m. Cost:
/// one visit per present entry plus O(log n) per leaf.
pub fn audit(mem: &impl EptTableMemory, p2m: &P2m) -> AuditReport {
    let mut w = Walker {
        mem,
        p2m,
        report: AuditReport::default(),
        next: 0,
    };
    w.walk(p2m.root(), 4, 0);
    w.gap(w.next, MAX_GFN);
    w.report
}
