//! The per-domain p2m and the EPT built from it.

use crate::ept::{
    is_leaf, leaf_entry, present, slot_order, table_entry, ADDR_MASK, ENTRIES, LARGE,
};
use crate::mtrr::var_block_coverage;
use crate::{
    resolve, Coverage, EptTableMemory, Gfn, Mapping, MemType, Mfn, MtrrState, P2mEntry, P2mError,
    PinnedCacheAttrs, RangeSet, Resolution, ResolveEnv, ResolveQuery, MAX_GFN, MAX_MFN,
    MSR_MTRR_DEF_TYPE, MSR_MTRR_PHYS_BASE0, VALID_ORDERS,
};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;

/// Per-domain settings of a [`P2m`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P2mConfig {
    /// The domain honours guest memory types (`iommu = 1` or a pass-through device): guest
    /// MTRRs then take part in the EPT memory type of RAM.
    pub honour_guest_mem_types: bool,
    /// The host's MTRRs (see [`MtrrState::from_msrs`]).
    pub host_mtrr: MtrrState,
    /// The CPU supports 2 MiB EPT leaves (IA32_VMX_EPT_VPID_CAP bit 16).
    pub ept_2m: bool,
    /// The CPU supports 1 GiB EPT leaves (IA32_VMX_EPT_VPID_CAP bit 17).
    pub ept_1g: bool,
    /// Most extents (runs of gfns) the records may hold: every hole a guest punches
    /// (`XENMEM_add_to_physmap` moving a page) splits one, and the records live on the
    /// hypervisor's heap.
    pub max_extents: usize,
    /// Most EPT tables (the root included) the p2m may hold; see [`P2mConfig::max_tables_for`].
    pub max_tables: usize,
}

/// Default [`P2mConfig::max_extents`]: about 160 KiB of records; a Linux guest uses a few dozen.
pub const DEFAULT_MAX_EXTENTS: usize = 4096;

impl P2mConfig {
    /// A table bound for a guest of `ram_pages` 4 KiB pages: enough to map all of its RAM
    /// with 4 KiB leaves (one page table per 2 MiB, one directory per 1 GiB), plus 256
    /// tables for special pages and MMIO anywhere in its physical address space.
    pub fn max_tables_for(ram_pages: u64) -> usize {
        (ram_pages / 512 + 2 * ram_pages.div_ceil(1 << 18)) as usize + 256
    }
}

impl Default for P2mConfig {
    /// Not honouring guest types, host MTRRs all WB, 2 MiB and 1 GiB leaves supported.
    fn default() -> P2mConfig {
        P2mConfig {
            honour_guest_mem_types: false,
            host_mtrr: MtrrState::new_default_wb(),
            ept_2m: true,
            ept_1g: true,
            max_extents: DEFAULT_MAX_EXTENTS,
            max_tables: usize::MAX,
        }
    }
}

/// A run of guest frames mapping consecutive machine frames the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) end: Gfn,
    pub(crate) mfn: Mfn,
    pub(crate) mapping: Mapping,
}

/// The part of guest-physical space a change can affect, for re-syncing the EPT.
enum Area {
    /// Everything.
    All,
    /// A gfn range.
    Gfns(Range<Gfn>),
    /// What either of two variable MTRRs (raw PHYSBASE, PHYSMASK) matches.
    Var([(u64, u64); 2]),
}

impl Area {
    /// How the area covers the aligned block of `1 << order` frames at `start`.
    fn classify(&self, start: Gfn, order: u32) -> Coverage {
        match self {
            Area::All => Coverage::Full,
            Area::Gfns(r) => {
                let end = start + (1 << order);
                if r.end <= start || r.start >= end {
                    Coverage::None
                } else if r.start <= start && r.end >= end {
                    Coverage::Full
                } else {
                    Coverage::Partial
                }
            }
            Area::Var(v) => {
                let a = var_block_coverage(v[0].0, v[0].1, start, order);
                let b = var_block_coverage(v[1].0, v[1].1, start, order);
                match (a, b) {
                    (Coverage::Full, _) | (_, Coverage::Full) => Coverage::Full,
                    (Coverage::None, Coverage::None) => Coverage::None,
                    _ => Coverage::Partial,
                }
            }
        }
    }

    /// A gfn range outside which the area has nothing.
    fn hull(&self) -> Range<Gfn> {
        match self {
            Area::Gfns(r) => r.clone(),
            _ => 0..MAX_GFN,
        }
    }
}

/// What one EPT entry should be, derived from the p2m.
enum Plan {
    /// Not present.
    Empty,
    /// This leaf entry.
    Leaf(u64),
    /// A table of smaller entries.
    Table,
}

/// A domain's guest-physical memory map and its EPT.
///
/// The p2m's own records (extents of gfns mapping consecutive mfns) are the truth; the EPT is
/// derived from them with the largest leaves that the CPU supports, the alignment allows and the
/// resolver accepts, and is kept in step by every call that changes them.
#[derive(Debug)]
pub struct P2m {
    pub(crate) cfg: P2mConfig,
    root: u64,
    pub(crate) guest_mtrr: MtrrState,
    pub(crate) extents: BTreeMap<Gfn, Extent>,
    pub(crate) specials: RangeSet,
    ro_mmio: RangeSet,
    pinned: PinnedCacheAttrs,
    /// EPT tables held, the root included.
    tables: usize,
}

impl P2m {
    /// An empty p2m; allocates the EPT root (PML4) table. The guest's MTRRs start as
    /// [`MtrrState::new_default_wb`].
    pub fn new(cfg: P2mConfig, mem: &mut impl EptTableMemory) -> Result<P2m, P2mError> {
        let root = mem.alloc_table().ok_or(P2mError::OutOfTableMemory)?;
        Ok(P2m {
            cfg,
            root,
            guest_mtrr: MtrrState::new_default_wb(),
            extents: BTreeMap::new(),
            specials: RangeSet::new(),
            ro_mmio: RangeSet::new(),
            pinned: PinnedCacheAttrs::new(),
            tables: 1,
        })
    }

    /// The EPT pointer for the VMCS: root table | WB (6) | page-walk length 4 - 1 in bits 5:3;
    /// accessed/dirty flags off.
    pub fn eptp(&self) -> u64 {
        self.root | MemType::Wb as u64 | (3 << 3)
    }

    /// The settings this p2m was created with.
    pub fn config(&self) -> &P2mConfig {
        &self.cfg
    }

    /// Maps `1 << order` frames from `gfn` to `mfn ..` with `mapping`, or unmaps them when
    /// `mapping` is `None` (`mfn` is then ignored). The only way to change a mapping.
    ///
    /// `order` is 0 (4 KiB), 9 (2 MiB) or 18 (1 GiB); `gfn` and `mfn` must be aligned to it.
    /// The EPT is updated at once: every leaf written goes through [`resolve`]; a range the
    /// resolver splits is mapped with smaller pages, down to 4 KiB only where needed; a
    /// superpage that a smaller change falls into is split the same way, and a table whose
    /// range becomes a single leaf or empty is freed. On [`P2mError::OutOfTableMemory`] the
    /// p2m is left as it was. The caller must INVEPT afterwards.
    pub fn set_entry(
        &mut self,
        mem: &mut impl EptTableMemory,
        gfn: Gfn,
        mfn: Mfn,
        order: u32,
        mapping: Option<Mapping>,
    ) -> Result<(), P2mError> {
        if !VALID_ORDERS.contains(&order) {
            return Err(P2mError::BadOrder);
        }
        let n = 1u64 << order;
        if gfn & (n - 1) != 0 || (mapping.is_some() && mfn & (n - 1) != 0) {
            return Err(P2mError::Misaligned);
        }
        if gfn >= MAX_GFN {
            return Err(P2mError::GfnOutOfRange);
        }
        if mapping.is_some() && mfn >= MAX_MFN {
            return Err(P2mError::MfnOutOfRange);
        }
        let range = gfn..gfn + n;
        let saved = self.extents_clipped(range.clone());
        let before = self.extents.len();
        self.remove_extents(range.clone());
        if let Some(m) = mapping {
            self.insert_extent(gfn, gfn + n, mfn, m);
        }
        if self.extents.len() > self.cfg.max_extents && self.extents.len() > before {
            self.remove_extents(range);
            for (s, x) in saved {
                self.insert_extent(s, x.end, x.mfn, x.mapping);
            }
            return Err(P2mError::TooManyExtents);
        }
        let area = Area::Gfns(range.clone());
        if let Err(e) = self.sync_root(mem, &area) {
            self.remove_extents(range);
            for (s, x) in saved {
                self.insert_extent(s, x.end, x.mfn, x.mapping);
            }
            // Puts back what was already rewritten; needs no more tables than were there.
            let _ = self.sync_root(mem, &area);
            return Err(e);
        }
        Ok(())
    }

    /// What the p2m maps at `gfn`.
    pub fn lookup(&self, gfn: Gfn) -> Option<P2mEntry> {
        let (&s, x) = self.extents.range(..=gfn).next_back()?;
        (x.end > gfn).then(|| P2mEntry {
            mfn: x.mfn + (gfn - s),
            mapping: x.mapping,
        })
    }

    /// Every mapped run: gfn range, first mfn (consecutive over the run) and mapping, in gfn
    /// order.
    pub fn extents(&self) -> impl Iterator<Item = (Range<Gfn>, Mfn, Mapping)> + '_ {
        self.extents
            .iter()
            .map(|(&s, x)| (s..x.end, x.mfn, x.mapping))
    }

    /// Number of mapped frames.
    pub fn mapped_frames(&self) -> u64 {
        self.extents.iter().map(|(s, x)| x.end - s).sum()
    }

    /// The gfn ranges of special pages, in ascending order.
    pub fn special_ranges(&self) -> impl Iterator<Item = Range<Gfn>> + '_ {
        self.specials.iter()
    }

    /// The special pages' gfns, as the range set the resolver queries.
    pub fn specials(&self) -> &RangeSet {
        &self.specials
    }

    /// The guest's virtual MTRRs.
    pub fn guest_mtrr(&self) -> &MtrrState {
        &self.guest_mtrr
    }

    /// The guest's RDMSR of an MTRR MSR; `None` when `msr` is not one (MTRRcap reports VCNT=8,
    /// FIX and WC).
    pub fn guest_mtrr_read(&self, msr: u32) -> Option<u64> {
        self.guest_mtrr.read_msr(msr)
    }

    /// The guest's WRMSR of an MTRR MSR. [`P2mError::BadMtrrWrite`]: inject #GP;
    /// [`P2mError::NotMtrrMsr`]: not an MTRR MSR. When the domain honours guest memory types,
    /// re-resolves the EPT leaves whose type can change: all of them for MTRRdefType, the
    /// MSR's range for a fixed-range MSR, what the old or new range matches for a variable
    /// range. Leaves may be split or merged back. The caller must INVEPT afterwards.
    pub fn guest_mtrr_write(
        &mut self,
        mem: &mut impl EptTableMemory,
        msr: u32,
        value: u64,
    ) -> Result<(), P2mError> {
        let old = self.guest_mtrr.clone();
        self.guest_mtrr.write_msr(msr, value)?;
        if self.guest_mtrr == old || !self.cfg.honour_guest_mem_types {
            return Ok(());
        }
        let area = if msr == MSR_MTRR_DEF_TYPE {
            Area::All
        } else if let Some(r) = MtrrState::fixed_msr_gfns(msr) {
            Area::Gfns(r)
        } else {
            let n = ((msr - MSR_MTRR_PHYS_BASE0) / 2) as usize;
            let before = old.variable_range(n).unwrap_or_default();
            let after = self.guest_mtrr.variable_range(n).unwrap_or_default();
            Area::Var([before, after])
        };
        if let Err(e) = self.sync_root(mem, &area) {
            self.guest_mtrr = old;
            let _ = self.sync_root(mem, &area);
            return Err(e);
        }
        Ok(())
    }

    /// Read-only MMIO ranges (mfns; row 1 of the resolver).
    pub fn ro_mmio(&self) -> &RangeSet {
        &self.ro_mmio
    }

    /// Marks `mfns` as read-only MMIO and re-resolves the whole EPT.
    pub fn add_ro_mmio(
        &mut self,
        mem: &mut impl EptTableMemory,
        mfns: Range<Mfn>,
    ) -> Result<(), P2mError> {
        let old = self.ro_mmio.clone();
        self.ro_mmio.insert(mfns);
        self.resync_or(mem, &Area::All, |p| p.ro_mmio = old)
    }

    /// Pinned cache attributes (gfns; row 6 of the resolver).
    pub fn pinned_cache_attrs(&self) -> &PinnedCacheAttrs {
        &self.pinned
    }

    /// Pins the memory type of `gfns` (must not overlap a pinned range) and re-resolves it.
    pub fn pin_cache_attr(
        &mut self,
        mem: &mut impl EptTableMemory,
        gfns: Range<Gfn>,
        ty: MemType,
    ) -> Result<(), P2mError> {
        if gfns.end > MAX_GFN {
            return Err(P2mError::GfnOutOfRange);
        }
        self.pinned.pin(gfns.clone(), ty)?;
        let start = gfns.start;
        self.resync_or(mem, &Area::Gfns(gfns), |p| {
            p.pinned.unpin(start);
        })
    }

    /// Removes the pinned range starting at `start` and re-resolves it; `Ok(false)` when there
    /// is none.
    pub fn unpin_cache_attr(
        &mut self,
        mem: &mut impl EptTableMemory,
        start: Gfn,
    ) -> Result<bool, P2mError> {
        let Some((r, ty)) = self.pinned.iter().find(|(r, _)| r.start == start) else {
            return Ok(false);
        };
        self.pinned.unpin(start);
        let undo = |p: &mut P2m| p.pinned.pin(r.clone(), ty).unwrap_or(());
        self.resync_or(mem, &Area::Gfns(r.clone()), undo)
            .map(|()| true)
    }

    /// Switches whether the domain honours guest memory types (a pass-through device was
    /// assigned or removed) and re-resolves the whole EPT.
    pub fn set_honour_guest_mem_types(
        &mut self,
        mem: &mut impl EptTableMemory,
        on: bool,
    ) -> Result<(), P2mError> {
        let old = self.cfg.honour_guest_mem_types;
        if old == on {
            return Ok(());
        }
        self.cfg.honour_guest_mem_types = on;
        self.resync_or(mem, &Area::All, |p| p.cfg.honour_guest_mem_types = old)
    }

    /// The resolver's inputs for this domain.
    pub fn resolve_env(&self) -> ResolveEnv<'_> {
        ResolveEnv {
            honour_guest_mem_types: self.cfg.honour_guest_mem_types,
            guest_mtrr: &self.guest_mtrr,
            host_mtrr: &self.cfg.host_mtrr,
            ro_mmio: &self.ro_mmio,
            pinned: &self.pinned,
        }
    }

    /// The resolver's answer for the aligned range of `1 << order` frames at `gfn`, or `None`
    /// when the p2m does not map it as one run (consecutive mfns, one mapping).
    pub fn resolution(&self, gfn: Gfn, order: u32) -> Option<Resolution> {
        let n = 1u64.checked_shl(order)?;
        let (&s, x) = self.extents.range(..=gfn).next_back()?;
        (x.end >= gfn.checked_add(n)?).then(|| self.resolve_run(gfn, x.mfn + (gfn - s), order, x))
    }

    /// Frees every EPT table, root included.
    pub fn destroy(self, mem: &mut impl EptTableMemory) {
        free_subtree(mem, self.root, 4);
    }

    pub(crate) fn root(&self) -> u64 {
        self.root
    }

    fn resolve_run(&self, gfn: Gfn, mfn: Mfn, order: u32, x: &Extent) -> Resolution {
        let special = self.specials.coverage(gfn..gfn + (1 << order));
        let q = ResolveQuery {
            gfn,
            mfn,
            order,
            p2m_type: x.mapping.p2m_type,
            special,
        };
        resolve(&q, &self.resolve_env())
    }

    /// Re-syncs `area`; on failure undoes the input change with `undo` and re-syncs again.
    fn resync_or(
        &mut self,
        mem: &mut impl EptTableMemory,
        area: &Area,
        undo: impl FnOnce(&mut P2m),
    ) -> Result<(), P2mError> {
        let r = self.sync_root(mem, area);
        if r.is_err() {
            undo(self);
            let _ = self.sync_root(mem, area);
        }
        r
    }

    // ---- bookkeeping ----

    /// The extents overlapping `r`, clipped to it.
    fn extents_clipped(&self, r: Range<Gfn>) -> Vec<(Gfn, Extent)> {
        let first = match self.extents.range(..r.start).next_back() {
            Some((&s, x)) if x.end > r.start => s,
            _ => r.start,
        };
        let mut v = Vec::new();
        for (&s, x) in self.extents.range(first..r.end) {
            let a = s.max(r.start);
            let end = x.end.min(r.end);
            v.push((
                a,
                Extent {
                    end,
                    mfn: x.mfn + (a - s),
                    mapping: x.mapping,
                },
            ));
        }
        v
    }

    /// Unmaps `r` from the records, trimming or splitting extents.
    fn remove_extents(&mut self, r: Range<Gfn>) {
        if let Some((&s, &x)) = self.extents.range(..r.start).next_back() {
            if x.end > r.start {
                self.extents.insert(s, Extent { end: r.start, ..x });
                if x.end > r.end {
                    let tail = Extent {
                        mfn: x.mfn + (r.end - s),
                        ..x
                    };
                    self.extents.insert(r.end, tail);
                }
            }
        }
        while let Some((&s, &x)) = self.extents.range(r.start..r.end).next() {
            self.extents.remove(&s);
            if x.end > r.end {
                self.extents.insert(
                    r.end,
                    Extent {
                        mfn: x.mfn + (r.end - s),
                        ..x
                    },
                );
                break;
            }
        }
        self.specials.remove(r);
    }

    /// Records `[s, e) -> mfn ..` (currently unmapped), merging with neighbouring extents that
    /// continue it.
    fn insert_extent(&mut self, s: Gfn, e: Gfn, mfn: Mfn, mapping: Mapping) {
        let (mut start, mut first_mfn, mut end) = (s, mfn, e);
        if let Some((&ps, &p)) = self.extents.range(..s).next_back() {
            if p.end == s && p.mapping == mapping && p.mfn + (s - ps) == mfn {
                start = ps;
                first_mfn = p.mfn;
            }
        }
        if let Some(&n) = self.extents.get(&e) {
            if n.mapping == mapping && n.mfn == mfn + (e - s) {
                self.extents.remove(&e);
                end = n.end;
            }
        }
        self.extents.insert(
            start,
            Extent {
                end,
                mfn: first_mfn,
                mapping,
            },
        );
        if mapping.special {
            self.specials.insert(s..e);
        }
    }

    /// The first extent overlapping `[from, end)`, clipped to it.
    fn next_overlap(&self, from: Gfn, end: Gfn) -> Option<Range<Gfn>> {
        if let Some((_, x)) = self.extents.range(..=from).next_back() {
            if x.end > from {
                return Some(from..x.end.min(end));
            }
        }
        let (&s, x) = self.extents.range(from..end).next()?;
        Some(s..x.end.min(end))
    }

    // ---- EPT construction ----

    fn leaf_allowed(&self, level: u32) -> bool {
        match level {
            1 => true,
            2 => self.cfg.ept_2m,
            3 => self.cfg.ept_1g,
            _ => false,
        }
    }

    /// What the entry at `level` covering the frames from `s` should be.
    fn plan(&self, s: Gfn, level: u32) -> Plan {
        let order = slot_order(level);
        let n = 1u64 << order;
        let Some((&xs, x)) = self.extents.range(..s + n).next_back() else {
            return Plan::Empty;
        };
        if x.end <= s {
            return Plan::Empty;
        }
        if xs > s || x.end < s + n || !self.leaf_allowed(level) {
            return Plan::Table;
        }
        let mfn = x.mfn + (s - xs);
        if mfn & (n - 1) != 0 {
            return Plan::Table;
        }
        let (mt, ipat) = match self.resolve_run(s, mfn, order, x) {
            Resolution::Type { mem_type, ipat } => (mem_type, ipat),
            Resolution::Split if level > 1 => return Plan::Table,
            // A single frame is always uniform; never reached.
            Resolution::Split => (MemType::Uc, false),
        };
        Plan::Leaf(leaf_entry(mfn, level, x.mapping.ept_rights(), mt, ipat))
    }

    fn sync_root(&mut self, mem: &mut impl EptTableMemory, area: &Area) -> Result<(), P2mError> {
        let mut tables = self.tables;
        let mut counted = CountedTables {
            mem,
            tables: &mut tables,
            max: self.cfg.max_tables,
        };
        let r = self.sync(&mut counted, self.root, 4, 0, area);
        self.tables = tables;
        r
    }

    /// EPT tables held, the root included.
    pub fn tables(&self) -> usize {
        self.tables
    }

    /// Brings the entries of `table` (at `level`, covering frames from `base`) that `area`
    /// touches in line with the records.
    fn sync(
        &self,
        mem: &mut impl EptTableMemory,
        table: u64,
        level: u32,
        base: Gfn,
        area: &Area,
    ) -> Result<(), P2mError> {
        let order = slot_order(level);
        let hull = area.hull();
        let span = (ENTRIES as u64) << order;
        if hull.end <= base || hull.start >= base + span {
            return Ok(());
        }
        let lo = (hull.start.saturating_sub(base) >> order) as usize;
        let hi = ((hull.end.min(base + span) - base + (1 << order) - 1) >> order) as usize;
        for i in lo..hi {
            let s = base + ((i as u64) << order);
            match area.classify(s, order) {
                Coverage::None => {}
                Coverage::Full => self.rebuild(mem, table, i, level, s)?,
                Coverage::Partial => {
                    let cur = mem.read_entry(table, i);
                    if present(cur) && !is_leaf(cur, level) {
                        self.sync(mem, cur & ADDR_MASK, level - 1, s, area)?;
                        self.collapse(mem, table, i, level, s);
                    } else {
                        self.rebuild(mem, table, i, level, s)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Replaces the table under entry `i` by a leaf or nothing when the records allow it.
    fn collapse(&self, mem: &mut impl EptTableMemory, table: u64, i: usize, level: u32, s: Gfn) {
        let new = match self.plan(s, level) {
            Plan::Table => return,
            Plan::Empty => 0,
            Plan::Leaf(e) => e,
        };
        let cur = mem.read_entry(table, i);
        mem.write_entry(table, i, new);
        free_subtree(mem, cur & ADDR_MASK, level - 1);
    }

    /// Rewrites entry `i` of `table` (at `level`, covering frames from `s`) and everything
    /// under it from the records. A new sub-table is filled before it is linked, and freed
    /// again on failure.
    fn rebuild(
        &self,
        mem: &mut impl EptTableMemory,
        table: u64,
        i: usize,
        level: u32,
        s: Gfn,
    ) -> Result<(), P2mError> {
        let cur = mem.read_entry(table, i);
        let old_child = (present(cur) && !is_leaf(cur, level)).then_some(cur & ADDR_MASK);
        let new = match self.plan(s, level) {
            Plan::Empty => 0,
            Plan::Leaf(e) => e,
            Plan::Table => {
                if let Some(child) = old_child {
                    return self.fill(mem, child, level - 1, s, true);
                }
                let child = mem.alloc_table().ok_or(P2mError::OutOfTableMemory)?;
                if let Err(e) = self.fill(mem, child, level - 1, s, false) {
                    free_subtree(mem, child, level - 1);
                    return Err(e);
                }
                table_entry(child)
            }
        };
        if new != cur {
            mem.write_entry(table, i, new);
        }
        if let Some(child) = old_child {
            free_subtree(mem, child, level - 1);
        }
        Ok(())
    }

    /// Rebuilds every entry of `table` (at `level`, covering frames from `base`). Entries no
    /// extent touches are cleared (when `existing`) or left zero, without consulting the
    /// resolver.
    fn fill(
        &self,
        mem: &mut impl EptTableMemory,
        table: u64,
        level: u32,
        base: Gfn,
        existing: bool,
    ) -> Result<(), P2mError> {
        let order = slot_order(level);
        let end = base + ((ENTRIES as u64) << order);
        let mut next = 0usize;
        let mut cursor = base;
        let clear = |mem: &mut _, range: Range<usize>| {
            if existing {
                for j in range {
                    clear_entry(mem, table, j, level);
                }
            }
        };
        while let Some(r) = self.next_overlap(cursor, end) {
            let first = ((r.start - base) >> order) as usize;
            let last = ((r.end - 1 - base) >> order) as usize;
            if first > next {
                clear(mem, next..first);
            }
            for j in next.max(first)..=last {
                self.rebuild(mem, table, j, level, base + ((j as u64) << order))?;
            }
            next = next.max(last + 1);
            cursor = r.end;
            if next == ENTRIES {
                break;
            }
        }
        clear(mem, next..ENTRIES);
        Ok(())
    }
}

/// Clears entry `j` of `table` at `level`, freeing what hangs under it.
fn clear_entry(mem: &mut impl EptTableMemory, table: u64, j: usize, level: u32) {
    let e = mem.read_entry(table, j);
    if e == 0 {
        return;
    }
    mem.write_entry(table, j, 0);
    if present(e) && !is_leaf(e, level) {
        free_subtree(mem, e & ADDR_MASK, level - 1);
    }
}

/// Frees `table` (at `level`) and every table under it.
fn free_subtree(mem: &mut impl EptTableMemory, table: u64, level: u32) {
    if level > 1 {
        for j in 0..ENTRIES {
            let e = mem.read_entry(table, j);
            if present(e) && (level == 4 || e & LARGE == 0) {
                free_subtree(mem, e & ADDR_MASK, level - 1);
            }
        }
    }
    mem.free_table(table);
}

/// Table memory that counts what the p2m holds and refuses more than `max` tables.
struct CountedTables<'a, M> {
    mem: &'a mut M,
    tables: &'a mut usize,
    max: usize,
}

impl<M: EptTableMemory> EptTableMemory for CountedTables<'_, M> {
    fn alloc_table(&mut self) -> Option<u64> {
        if *self.tables >= self.max {
            return None;
        }
        let t = self.mem.alloc_table()?;
        *self.tables += 1;
        Some(t)
    }
    fn free_table(&mut self, table: u64) {
        *self.tables -= 1;
        self.mem.free_table(table)
    }
    fn read_entry(&self, table: u64, index: usize) -> u64 {
        self.mem.read_entry(table, index)
    }
    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        self.mem.write_entry(table, index, value)
    }
}
