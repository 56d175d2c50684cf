//! The EPT memory-type (EMT) resolver: the decision table of the spec `emt-resolver.md`.

use crate::{Coverage, Gfn, MemType, Mfn, MtrrState, P2mType, PinnedCacheAttrs, RangeSet};

/// The resolver's answer for one range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// Map the whole range with this memory type and ignore-PAT bit.
    Type {
        /// EPT memory type (leaf bits 5:3).
        mem_type: MemType,
        /// Ignore the guest's PAT (leaf bit 6).
        ipat: bool,
    },
    /// The range is not uniform: map it with smaller pages.
    Split,
}

impl Resolution {
    /// WB with ignore-PAT: the answer for special pages and non-honouring domains.
    pub const WB_IPAT: Resolution = Resolution::Type {
        mem_type: MemType::Wb,
        ipat: true,
    };
}

/// One naturally aligned range of present frames that share a p2m type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResolveQuery {
    /// First guest frame, aligned to `1 << order`.
    pub gfn: Gfn,
    /// First machine frame (the range maps `mfn .. mfn + (1 << order)`).
    pub mfn: Mfn,
    /// log2 of the number of frames: 0 (4 KiB), 9 (2 MiB) or 18 (1 GiB).
    pub order: u32,
    /// The p2m type of every frame of the range.
    pub p2m_type: P2mType,
    /// How many frames of the range are special pages.
    pub special: Coverage,
}

/// The per-domain inputs of the resolver.
#[derive(Clone, Copy, Debug)]
pub struct ResolveEnv<'a> {
    /// The domain honours guest memory types (an IOMMU or pass-through device; `iommu = 1`).
    pub honour_guest_mem_types: bool,
    /// The guest's virtual MTRRs (indexed by gfn).
    pub guest_mtrr: &'a MtrrState,
    /// The host's MTRRs (indexed by mfn).
    pub host_mtrr: &'a MtrrState,
    /// Read-only MMIO ranges (mfns).
    pub ro_mmio: &'a RangeSet,
    /// Pinned cache attributes (gfns).
    pub pinned: &'a PinnedCacheAttrs,
}

/// Combines the guest's and the host's MTRR types (rows 8 to 12).
fn combine_guest_host(g: MemType, h: MemType) -> MemType {
    use MemType::*;
    match (g, h) {
        _ if g == h => g,          // row 8
        (Uc, _) | (_, Uc) => Uc,   // row 9
        (Wb, t) | (t, Wb) => t,    // row 10
        (Wt, Wp) | (Wp, Wt) => Wp, // row 11
        _ => Uc,                   // row 12
    }
}

/// Resolves the EPT memory type of one range: rows 1 to 12 of the decision table, first match
/// wins. Cost is independent of `q.order`: every check is a range-set lookup or an MTRR check
/// over range boundaries.
pub fn resolve(q: &ResolveQuery, env: &ResolveEnv<'_>) -> Resolution {
    let n = 1u64 << q.order;
    let typed = |mem_type, ipat| Resolution::Type { mem_type, ipat };
    // Row 1: read-only MMIO.
    match env.ro_mmio.coverage(q.mfn..q.mfn + n) {
        Coverage::Full => return typed(MemType::Uc, true),
        Coverage::Partial => return Resolution::Split,
        Coverage::None => {}
    }
    // Row 2: the domain does not honour guest memory types.
    if q.p2m_type != P2mType::MmioDirect && !env.honour_guest_mem_types {
        return Resolution::WB_IPAT;
    }
    // Rows 3 and 3b: special pages (the seed).
    match q.special {
        Coverage::Full => return Resolution::WB_IPAT,
        Coverage::Partial => return Resolution::Split,
        Coverage::None => {}
    }
    match q.p2m_type {
        // Row 4: direct MMIO; the guest's PAT may still choose WC.
        P2mType::MmioDirect => return typed(MemType::Uc, false),
        // Row 5: grant or foreign mapping.
        P2mType::GrantMapRw => return Resolution::WB_IPAT,
        P2mType::RamRw => {}
    }
    // Row 6: pinned cache attributes.
    match env.pinned.lookup(q.gfn..q.gfn + n) {
        (Coverage::Full, Some(t)) => return typed(t, true),
        (Coverage::None, _) => {}
        _ => return Resolution::Split,
    }
    // Row 7: MTRR types must be uniform over the range.
    let g = env.guest_mtrr.type_of_block(q.gfn, q.order);
    let h = env.host_mtrr.type_of_block(q.mfn, q.order);
    match (g, h) {
        (Some(g), Some(h)) => typed(combine_guest_host(g, h), false),
        _ => Resolution::Split,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemType::*;

    struct Env {
        honour: bool,
        guest: MtrrState,
        host: MtrrState,
        ro: RangeSet,
        pinned: PinnedCacheAttrs,
    }

    impl Env {
        fn new(honour: bool) -> Env {
            Env {
                honour,
                guest: MtrrState::new_default_wb(),
                host: MtrrState::new_default_wb(),
                ro: RangeSet::new(),
                pinned: PinnedCacheAttrs::new(),
            }
        }
        fn env(&self) -> ResolveEnv<'_> {
            ResolveEnv {
                honour_guest_mem_types: self.honour,
                guest_mtrr: &self.guest,
                host_mtrr: &self.host,
                ro_mmio: &self.ro,
                pinned: &self.pinned,
            }
        }
        fn resolve(&self, gfn: u64, mfn: u64, order: u32, t: P2mType, sp: Coverage) -> Resolution {
            let q = ResolveQuery {
                gfn,
                mfn,
                order,
                p2m_type: t,
                special: sp,
            };
            resolve(&q, &self.env())
        }
        /// Guest variable range `n` = `[base, base + size)` (frames) of type `ty`.
        fn guest_var(&mut self, n: u32, base: u64, size: u64, ty: MemType) {
            set_var(&mut self.guest, n, base, size, ty);
        }
        fn host_var(&mut self, n: u32, base: u64, size: u64, ty: MemType) {
            set_var(&mut self.host, n, base, size, ty);
        }
    }

    fn set_var(s: &mut MtrrState, n: u32, base: u64, size: u64, ty: MemType) {
        s.write_msr(0x200 + 2 * n, (base << 12) | ty as u64)
            .unwrap();
        s.write_msr(
            0x201 + 2 * n,
            (!((size << 12) - 1) & 0xF_FFFF_FFFF_F000) | 0x800,
        )
        .unwrap();
    }

    fn ty(mem_type: MemType, ipat: bool) -> Resolution {
        Resolution::Type { mem_type, ipat }
    }

    use Coverage::{Full as All, None as No, Partial as Some_};
    use P2mType::*;

    #[test]
    fn row_01_ro_mmio_is_uc_ipat() {
        let mut e = Env::new(false);
        e.ro.insert(0xFEE00..0xFEE01);
        e.ro.insert(0x80000..0x80200);
        assert_eq!(e.resolve(0x1000, 0xFEE00, 0, MmioDirect, No), ty(Uc, true));
        // Before row 2 and row 3: even RAM or a special page there is UC+ipat.
        assert_eq!(e.resolve(0x1000, 0xFEE00, 0, RamRw, All), ty(Uc, true));
        assert_eq!(e.resolve(0x200, 0x80000, 9, RamRw, No), ty(Uc, true));
    }

    #[test]
    fn row_01_ro_mmio_partly_inside_splits() {
        let mut e = Env::new(true);
        e.ro.insert(0x80000..0x80001);
        assert_eq!(
            e.resolve(0x200, 0x80000, 9, MmioDirect, No),
            Resolution::Split
        );
    }

    #[test]
    fn row_02_not_honouring_non_mmio_is_wb_ipat() {
        let mut e = Env::new(false);
        e.guest_var(0, 0xF0000, 0x10000, Uc);
        assert_eq!(e.resolve(0xF0000, 0x1234, 0, RamRw, No), ty(Wb, true));
        assert_eq!(e.resolve(0xF0000, 0x1234, 0, GrantMapRw, No), ty(Wb, true));
        // Mixed specials and non-uniform MTRRs do not matter there: no split.
        assert_eq!(e.resolve(0xEFE00, 0x40000, 9, RamRw, Some_), ty(Wb, true));
        assert_eq!(e.resolve(0xC0000, 0x40000, 18, RamRw, No), ty(Wb, true));
        // Direct MMIO goes on to row 4.
        assert_eq!(
            e.resolve(0xF0000, 0xF0000, 0, MmioDirect, No),
            ty(Uc, false)
        );
    }

    #[test]
    fn row_03_fully_special_is_wb_ipat_and_not_split() {
        // The seed: a special page in the guest's UC MTRR range of an honouring domain.
        let mut e = Env::new(true);
        e.guest_var(0, 0xF0000, 0x10000, Uc);
        assert_eq!(e.resolve(0xF0000, 0x1234, 0, RamRw, All), ty(Wb, true));
        assert_eq!(e.resolve(0xF0000, 0x1234, 0, RamRw, No), ty(Uc, false));
        // A fully special superpage straddling MTRR types is still one WB+ipat leaf.
        assert_eq!(e.resolve(0xC0000, 0x40000, 18, RamRw, All), ty(Wb, true));
        assert_eq!(
            e.resolve(0xF0000, 0x40000, 9, GrantMapRw, All),
            ty(Wb, true)
        );
    }

    #[test]
    fn row_03b_partly_special_splits() {
        let e = Env::new(true);
        assert_eq!(
            e.resolve(0xF0000, 0x1200, 9, RamRw, Some_),
            Resolution::Split
        );
        assert_eq!(
            e.resolve(0xC0000, 0x40000, 18, RamRw, Some_),
            Resolution::Split
        );
    }

    #[test]
    fn row_04_direct_mmio_is_uc_without_ipat() {
        let mut e = Env::new(true);
        assert_eq!(
            e.resolve(0xE0000, 0xE0000, 9, MmioDirect, No),
            ty(Uc, false)
        );
        e.guest_var(0, 0xE0000, 0x200, Wc);
        assert_eq!(
            e.resolve(0xE0000, 0xE0000, 9, MmioDirect, No),
            ty(Uc, false)
        );
    }

    #[test]
    fn row_05_grant_mapping_is_wb_ipat() {
        let mut e = Env::new(true);
        e.guest_var(0, 0xF0000, 0x10000, Uc);
        assert_eq!(e.resolve(0xF0000, 0x5000, 0, GrantMapRw, No), ty(Wb, true));
    }

    #[test]
    fn row_06_pinned_cache_attribute() {
        let mut e = Env::new(true);
        e.guest_var(0, 0xF0000, 0x10000, Uc);
        e.pinned.pin(0xF0000..0xF0400, Wc).unwrap();
        assert_eq!(e.resolve(0xF0000, 0x5000, 0, RamRw, No), ty(Wc, true));
        assert_eq!(e.resolve(0xF0200, 0x5000, 9, RamRw, No), ty(Wc, true));
    }

    #[test]
    fn row_06_pinned_partly_covering_splits() {
        let mut e = Env::new(true);
        e.pinned.pin(0xF0000..0xF0001, Wt).unwrap();
        assert_eq!(e.resolve(0xF0000, 0x5000, 9, RamRw, No), Resolution::Split);
    }

    #[test]
    fn row_07_guest_mtrr_not_uniform_splits() {
        let mut e = Env::new(true);
        e.guest_var(0, 0xF0000, 0x10000, Uc);
        assert_eq!(
            e.resolve(0xC0000, 0x40000, 18, RamRw, No),
            Resolution::Split
        );
        assert_eq!(e.resolve(0xF0000, 0x40000, 9, RamRw, No), ty(Uc, false));
    }

    #[test]
    fn row_07_host_mtrr_not_uniform_splits() {
        let mut e = Env::new(true);
        e.host_var(0, 0x40000, 1, Uc);
        assert_eq!(e.resolve(0, 0x40000, 18, RamRw, No), Resolution::Split);
        assert_eq!(e.resolve(0, 0x40000, 0, RamRw, No), ty(Uc, false));
        assert_eq!(e.resolve(1, 0x40001, 0, RamRw, No), ty(Wb, false));
    }

    #[test]
    fn row_08_same_type() {
        let mut e = Env::new(true);
        assert_eq!(e.resolve(0, 0x40000, 18, RamRw, No), ty(Wb, false));
        e.guest_var(0, 0x40000, 0x40000, Wt);
        e.host_var(0, 0x40000, 0x40000, Wt);
        assert_eq!(e.resolve(0x40000, 0x40000, 18, RamRw, No), ty(Wt, false));
    }

    #[test]
    fn row_09_either_uc() {
        let mut e = Env::new(true);
        e.guest_var(0, 0x40000, 0x200, Uc);
        e.host_var(0, 0x80000, 0x200, Uc);
        e.host_var(1, 0x40000, 0x200, Wc);
        assert_eq!(e.resolve(0x40000, 0x40000, 9, RamRw, No), ty(Uc, false));
        assert_eq!(e.resolve(0x80000, 0x80000, 9, RamRw, No), ty(Uc, false));
    }

    #[test]
    fn row_10_one_wb_gives_the_other() {
        let mut e = Env::new(true);
        e.guest_var(0, 0x40000, 0x200, Wc);
        e.host_var(0, 0x80000, 0x200, Wp);
        assert_eq!(e.resolve(0x40000, 0x10000, 9, RamRw, No), ty(Wc, false));
        assert_eq!(e.resolve(0x10000, 0x80000, 9, RamRw, No), ty(Wp, false));
    }

    #[test]
    fn row_11_wt_and_wp_give_wp() {
        let mut e = Env::new(true);
        e.guest_var(0, 0x40000, 0x200, Wt);
        e.host_var(0, 0x80000, 0x200, Wp);
        assert_eq!(e.resolve(0x40000, 0x80000, 9, RamRw, No), ty(Wp, false));
        let mut e = Env::new(true);
        e.guest_var(0, 0x40000, 0x200, Wp);
        e.host_var(0, 0x80000, 0x200, Wt);
        assert_eq!(e.resolve(0x40000, 0x80000, 9, RamRw, No), ty(Wp, false));
    }

    #[test]
    fn row_12_otherwise_uc() {
        let mut e = Env::new(true);
        e.guest_var(0, 0x40000, 0x200, Wc);
        e.host_var(0, 0x80000, 0x200, Wt);
        assert_eq!(e.resolve(0x40000, 0x80000, 9, RamRw, No), ty(Uc, false));
        let mut e = Env::new(true);
        e.guest_var(0, 0x40000, 0x200, Wp);
        e.host_var(0, 0x80000, 0x200, Wc);
        assert_eq!(e.resolve(0x40000, 0x80000, 0, RamRw, No), ty(Uc, false));
    }

    #[test]
    fn combine_table_is_symmetric() {
        let all = [Uc, Wc, Wt, Wp, Wb];
        for g in all {
            for h in all {
                assert_eq!(combine_guest_host(g, h), combine_guest_host(h, g));
            }
        }
    }

    #[test]
    fn guest_mtrrs_disabled_make_ram_uc() {
        let mut e = Env::new(true);
        e.guest = MtrrState::disabled();
        assert_eq!(e.resolve(0, 0x40000, 18, RamRw, No), ty(Uc, false));
        assert_eq!(e.resolve(0, 0x40000, 18, RamRw, All), ty(Wb, true));
    }
}
