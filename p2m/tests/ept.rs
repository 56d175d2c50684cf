//! set_entry, splitting, merging, guest MTRR writes and audit against the real EPT tables.

mod common;

use common::*;
use p2m::testmem::TestMem;
use p2m::{
    audit, translate, EptTableMemory, Mapping, MemType, P2m, P2mConfig, P2mError, DOMID_XEN,
    MAX_GFN,
};

const GIB: u64 = 1 << 18;
const MIB2: u64 = 512;
const RAM: Mapping = Mapping::ram(1);
const SPECIAL: Mapping = Mapping::special();

fn setup(cfg: P2mConfig) -> (TestMem, P2m) {
    let mut mem = TestMem::new();
    let p2m = P2m::new(cfg, &mut mem).unwrap();
    (mem, p2m)
}

fn assert_clean(mem: &TestMem, p2m: &P2m) {
    let r = audit(mem, p2m);
    let specials: u64 = p2m.special_ranges().map(|r| r.end - r.start).sum();
    assert_eq!(r.violations, 0, "{r:?}");
    assert_eq!(r.special_wb_ipat, specials, "{r:?}");
    let s = shape(mem, p2m);
    assert_eq!(s.empty_tables, 0, "empty tables left");
    assert_eq!(s.tables, mem.live(), "tables leaked");
    assert_eq!(r.leaves, s.leaves.len() as u64);
}

fn tr(mem: &TestMem, p2m: &P2m, gfn: u64) -> Option<(u64, MemType, bool, u64)> {
    translate(mem, p2m.eptp(), gfn << 12).map(|(hpa, mt, ipat, size)| (hpa >> 12, mt, ipat, size))
}

#[test]
fn eptp_and_mtrrcap() {
    let (mem, p2m) = setup(P2mConfig::default());
    assert_eq!(p2m.eptp() & 0xFFF, 0x1E);
    assert_eq!(mem.live(), 1);
    assert_eq!(p2m.guest_mtrr_read(0xFE), Some(0x508));
    assert_eq!(p2m.guest_mtrr_read(0x2FF), Some(0xC06));
    assert_eq!(p2m.guest_mtrr_read(0x10), None);
}

#[test]
fn argument_errors() {
    let (mut mem, mut p2m) = setup(P2mConfig::default());
    assert_eq!(
        p2m.set_entry(&mut mem, 0, 0, 3, Some(RAM)),
        Err(P2mError::BadOrder)
    );
    assert_eq!(
        p2m.set_entry(&mut mem, 1, 0, 9, Some(RAM)),
        Err(P2mError::Misaligned)
    );
    assert_eq!(
        p2m.set_entry(&mut mem, 0, 0x100, 18, Some(RAM)),
        Err(P2mError::Misaligned)
    );
    assert_eq!(
        p2m.set_entry(&mut mem, MAX_GFN, 0, 0, Some(RAM)),
        Err(P2mError::GfnOutOfRange)
    );
    assert_eq!(
        p2m.set_entry(&mut mem, 0, 1 << 40, 0, Some(RAM)),
        Err(P2mError::MfnOutOfRange)
    );
    // Removal ignores the mfn.
    assert_eq!(p2m.set_entry(&mut mem, 0, 7, 9, None), Ok(()));
    assert_eq!(mem.live(), 1);
}

#[test]
fn superpages_and_rights() {
    let (mut mem, mut p2m) = setup(P2mConfig::default());
    p2m.set_entry(&mut mem, 0, GIB, 18, Some(RAM)).unwrap();
    p2m.set_entry(&mut mem, GIB, 4 * GIB, 9, Some(Mapping::mmio(1)))
        .unwrap();
    p2m.set_entry(&mut mem, GIB + MIB2, 0x777, 0, Some(Mapping::grant(2)))
        .unwrap();
    let s = shape(&mem, &p2m);
    assert_eq!(
        (count_order(&s, 18), count_order(&s, 9), count_order(&s, 0)),
        (1, 1, 1)
    );
    let l = s.leaves[0];
    assert_eq!(
        (l.mfn(), l.rights(), l.mem_type(), l.ipat()),
        (GIB, 7, Some(MemType::Wb), true)
    );
    let l = s.leaves[1];
    assert_eq!(
        (l.rights(), l.mem_type(), l.ipat()),
        (3, Some(MemType::Uc), false)
    );
    let l = s.leaves[2];
    assert_eq!(
        (l.rights(), l.mem_type(), l.ipat()),
        (3, Some(MemType::Wb), true)
    );
    assert_eq!(
        tr(&mem, &p2m, 12345),
        Some((GIB + 12345, MemType::Wb, true, 1 << 30))
    );
    assert_eq!(
        tr(&mem, &p2m, GIB + 3),
        Some((4 * GIB + 3, MemType::Uc, false, 1 << 21))
    );
    assert_eq!(tr(&mem, &p2m, GIB + MIB2 + 1), None);
    assert_clean(&mem, &p2m);
}

#[test]
fn no_superpage_support_maps_4k() {
    let cfg = P2mConfig {
        ept_2m: false,
        ept_1g: false,
        ..P2mConfig::default()
    };
    let (mut mem, mut p2m) = setup(cfg);
    p2m.set_entry(&mut mem, MIB2, MIB2, 9, Some(RAM)).unwrap();
    let s = shape(&mem, &p2m);
    assert_eq!(count_order(&s, 0), 512);
    assert_clean(&mem, &p2m);
    // 2 MiB but no 1 GiB: a 1 GiB range becomes 512 2 MiB leaves.
    let cfg = P2mConfig {
        ept_1g: false,
        ..P2mConfig::default()
    };
    let (mut mem, mut p2m) = setup(cfg);
    p2m.set_entry(&mut mem, GIB, 0, 18, Some(RAM)).unwrap();
    assert_eq!(count_order(&shape(&mem, &p2m), 9), 512);
    assert_clean(&mem, &p2m);
}

#[test]
fn misaligned_mfn_run_is_not_a_superpage() {
    let (mut mem, mut p2m) = setup(P2mConfig::default());
    // Two 2 MiB entries whose mfns are consecutive but whose union is not 1 GiB aligned.
    for i in 0..512 {
        p2m.set_entry(&mut mem, i * MIB2, MIB2 + i * MIB2, 9, Some(RAM))
            .unwrap();
    }
    assert_eq!(p2m.extents().count(), 1);
    let s = shape(&mem, &p2m);
    assert_eq!(count_order(&s, 9), 512);
    assert_clean(&mem, &p2m);
}

#[test]
fn special_page_in_2m_superpage_splits_to_4k() {
    for honour in [false, true] {
        let cfg = P2mConfig {
            honour_guest_mem_types: honour,
            ..P2mConfig::default()
        };
        let (mut mem, mut p2m) = setup(cfg);
        p2m.set_entry(&mut mem, MIB2, MIB2, 9, Some(RAM)).unwrap();
        assert_eq!(count_order(&shape(&mem, &p2m), 9), 1);
        p2m.set_entry(&mut mem, MIB2 + 7, 0x9999, 0, Some(SPECIAL))
            .unwrap();
        let s = shape(&mem, &p2m);
        assert_eq!(count_order(&s, 0), 512);
        assert_eq!(s.leaves.len(), 512);
        for l in &s.leaves {
            if l.gfn == MIB2 + 7 {
                assert_eq!(
                    (l.mfn(), l.mem_type(), l.ipat()),
                    (0x9999, Some(MemType::Wb), true)
                );
            } else {
                assert_eq!(l.mfn(), l.gfn);
                assert_eq!((l.mem_type(), l.ipat()), (Some(MemType::Wb), !honour));
            }
        }
        assert_eq!(p2m.lookup(MIB2 + 7).unwrap().mapping.owner, DOMID_XEN);
        assert_clean(&mem, &p2m);
        // Putting the RAM page back merges the run and the 2 MiB leaf comes back.
        p2m.set_entry(&mut mem, MIB2 + 7, MIB2 + 7, 0, Some(RAM))
            .unwrap();
        let s = shape(&mem, &p2m);
        assert_eq!((s.leaves.len(), count_order(&s, 9)), (1, 1));
        assert_eq!(mem.live(), 3);
        assert_clean(&mem, &p2m);
    }
}

#[test]
fn special_page_in_1g_superpage_splits_only_its_2m() {
    let (mut mem, mut p2m) = setup(honouring());
    p2m.set_entry(&mut mem, GIB, 2 * GIB, 18, Some(RAM))
        .unwrap();
    assert_eq!(mem.live(), 2);
    p2m.set_entry(&mut mem, GIB + 5 * MIB2 + 3, 0x42, 0, Some(SPECIAL))
        .unwrap();
    let s = shape(&mem, &p2m);
    assert_eq!(
        (count_order(&s, 18), count_order(&s, 9), count_order(&s, 0)),
        (0, 511, 512)
    );
    assert_eq!(mem.live(), 4); // PML4, PDPT, PD, one PT
    assert_eq!(
        tr(&mem, &p2m, GIB + 5 * MIB2 + 3),
        Some((0x42, MemType::Wb, true, 4096))
    );
    assert_eq!(
        tr(&mem, &p2m, GIB + 5 * MIB2 + 4),
        Some((2 * GIB + 5 * MIB2 + 4, MemType::Wb, false, 4096))
    );
    assert_eq!(
        tr(&mem, &p2m, GIB + 6 * MIB2),
        Some((2 * GIB + 6 * MIB2, MemType::Wb, false, 1 << 21))
    );
    assert_clean(&mem, &p2m);
    // Removing the special page leaves a hole: the 4 KiB table stays, with 511 leaves.
    p2m.set_entry(&mut mem, GIB + 5 * MIB2 + 3, 0, 0, None)
        .unwrap();
    let s = shape(&mem, &p2m);
    assert_eq!((count_order(&s, 9), count_order(&s, 0)), (511, 511));
    assert_clean(&mem, &p2m);
    // Mapping the whole GiB again replaces every table below the PDPT by one leaf.
    p2m.set_entry(&mut mem, GIB, 2 * GIB, 18, Some(RAM))
        .unwrap();
    assert_eq!(shape(&mem, &p2m).leaves.len(), 1);
    assert_eq!(mem.live(), 2);
    assert_clean(&mem, &p2m);
}

#[test]
fn fully_special_superpage_is_one_wb_ipat_leaf() {
    let (mut mem, mut p2m) = setup(honouring());
    // Even inside a guest UC range (the seed's BAR case).
    let (b, m) = var_msrs(0, GIB, MemType::Uc);
    p2m.guest_mtrr_write(&mut mem, 0x200, b).unwrap();
    p2m.guest_mtrr_write(&mut mem, 0x201, m).unwrap();
    p2m.set_entry(&mut mem, 4 * MIB2, 8 * MIB2, 9, Some(SPECIAL))
        .unwrap();
    let s = shape(&mem, &p2m);
    assert_eq!(s.leaves.len(), 1);
    let l = s.leaves[0];
    assert_eq!(
        (l.order, l.mem_type(), l.ipat(), l.rights()),
        (9, Some(MemType::Wb), true, 7)
    );
    assert_clean(&mem, &p2m);
}

#[test]
fn seed_scenario_special_page_in_uc_bar() {
    // Guest RAM 0..1 GiB; platform PCI BAR at 0xF0000000 (UC by guest MTRR); shared_info
    // placed at gfn 0xF0000 by XENMEM_add_to_physmap.
    let (mut mem, mut p2m) = setup(honouring());
    p2m.set_entry(&mut mem, 0, GIB, 18, Some(RAM)).unwrap();
    let (b, m) = var_msrs(0xF0000, 0x10000, MemType::Uc);
    p2m.guest_mtrr_write(&mut mem, 0x200, b).unwrap();
    p2m.guest_mtrr_write(&mut mem, 0x201, m).unwrap();
    p2m.set_entry(&mut mem, 0xF0000, 0x5555, 0, Some(SPECIAL))
        .unwrap();
    p2m.set_entry(&mut mem, 0xF0001, 0xFE000, 0, Some(Mapping::mmio(1)))
        .unwrap();
    p2m.set_entry(&mut mem, 0xF0002, 0x6666, 0, Some(RAM))
        .unwrap();
    assert_eq!(
        tr(&mem, &p2m, 0xF0000),
        Some((0x5555, MemType::Wb, true, 4096))
    );
    assert_eq!(
        tr(&mem, &p2m, 0xF0001),
        Some((0xFE000, MemType::Uc, false, 4096))
    );
    assert_eq!(
        tr(&mem, &p2m, 0xF0002),
        Some((0x6666, MemType::Uc, false, 4096))
    );
    assert_eq!(
        tr(&mem, &p2m, 0x100),
        Some((GIB + 0x100, MemType::Wb, false, 1 << 30))
    );
    let r = audit(&mem, &p2m);
    assert_eq!((r.special_wb_ipat, r.violations), (1, 0));
    assert_clean(&mem, &p2m);
}

#[test]
fn guest_mtrr_write_splits_and_merges_back() {
    let (mut mem, mut p2m) = setup(honouring());
    for g in 0..4 {
        p2m.set_entry(&mut mem, g * GIB, (g + 4) * GIB, 18, Some(RAM))
            .unwrap();
    }
    // UC for the top 256 MiB below 4 GiB: only the last GiB splits.
    let (b, m) = var_msrs(0xF0000, 0x10000, MemType::Uc);
    p2m.guest_mtrr_write(&mut mem, 0x200, b).unwrap();
    assert_eq!(shape(&mem, &p2m).leaves.len(), 4); // mask not valid yet
    p2m.guest_mtrr_write(&mut mem, 0x201, m).unwrap();
    let s = shape(&mem, &p2m);
    assert_eq!((count_order(&s, 18), count_order(&s, 9)), (3, 512));
    let uc = s
        .leaves
        .iter()
        .filter(|l| l.mem_type() == Some(MemType::Uc))
        .count();
    assert_eq!(uc, 128);
    assert_clean(&mem, &p2m);
    // Fixed ranges: VGA hole UC splits the first 2 MiB down to 4 KiB.
    p2m.guest_mtrr_write(&mut mem, 0x259, 0).unwrap();
    let s = shape(&mem, &p2m);
    assert_eq!(
        (count_order(&s, 18), count_order(&s, 9), count_order(&s, 0)),
        (2, 1023, 512)
    );
    assert_eq!(tr(&mem, &p2m, 0xA0).map(|t| t.1), Some(MemType::Uc));
    assert_clean(&mem, &p2m);
    // Disabling the variable range and restoring the fixed one merges back to 1 GiB leaves.
    p2m.guest_mtrr_write(&mut mem, 0x201, 0).unwrap();
    p2m.guest_mtrr_write(&mut mem, 0x259, 0x0606_0606_0606_0606)
        .unwrap();
    assert_eq!(count_order(&shape(&mem, &p2m), 18), 4);
    assert_eq!(mem.live(), 2);
    // MTRRs disabled: all UC, still 1 GiB leaves.
    p2m.guest_mtrr_write(&mut mem, 0x2FF, 0).unwrap();
    let s = shape(&mem, &p2m);
    assert!(s
        .leaves
        .iter()
        .all(|l| l.order == 18 && l.mem_type() == Some(MemType::Uc)));
    assert_clean(&mem, &p2m);
}

#[test]
fn guest_mtrr_write_errors_and_non_honouring_domain() {
    let (mut mem, mut p2m) = setup(P2mConfig::default());
    p2m.set_entry(&mut mem, 0, 0, 18, Some(RAM)).unwrap();
    assert_eq!(
        p2m.guest_mtrr_write(&mut mem, 0x2FF, 0xC07),
        Err(P2mError::BadMtrrWrite)
    );
    assert_eq!(
        p2m.guest_mtrr_write(&mut mem, 0xFE, 0),
        Err(P2mError::BadMtrrWrite)
    );
    assert_eq!(
        p2m.guest_mtrr_write(&mut mem, 0x210, 0),
        Err(P2mError::NotMtrrMsr)
    );
    assert_eq!(p2m.guest_mtrr_read(0x2FF), Some(0xC06));
    // Not honouring: guest MTRRs change nothing in the EPT.
    p2m.guest_mtrr_write(&mut mem, 0x2FF, 0).unwrap();
    assert_eq!(tr(&mem, &p2m, 5), Some((5, MemType::Wb, true, 1 << 30)));
    // Turning honouring on re-resolves everything.
    p2m.set_honour_guest_mem_types(&mut mem, true).unwrap();
    assert_eq!(tr(&mem, &p2m, 5), Some((5, MemType::Uc, false, 1 << 30)));
    assert_clean(&mem, &p2m);
}

#[test]
fn ro_mmio_and_pinned_ranges() {
    let (mut mem, mut p2m) = setup(honouring());
    p2m.set_entry(&mut mem, 0, 0, 18, Some(RAM)).unwrap();
    p2m.set_entry(&mut mem, GIB, 0xFEE00, 0, Some(Mapping::mmio(1)))
        .unwrap();
    p2m.add_ro_mmio(&mut mem, 0xFEE00..0xFEE01).unwrap();
    assert_eq!(
        tr(&mem, &p2m, GIB),
        Some((0xFEE00, MemType::Uc, true, 4096))
    );
    p2m.pin_cache_attr(&mut mem, 0x1000..0x1200, MemType::Wc)
        .unwrap();
    assert_eq!(
        tr(&mem, &p2m, 0x1100),
        Some((0x1100, MemType::Wc, true, 1 << 21))
    );
    assert_eq!(
        tr(&mem, &p2m, 0x1200),
        Some((0x1200, MemType::Wb, false, 1 << 21))
    );
    assert_clean(&mem, &p2m);
    assert_eq!(p2m.unpin_cache_attr(&mut mem, 0x1000), Ok(true));
    assert_eq!(shape(&mem, &p2m).leaves.len(), 2);
    assert_clean(&mem, &p2m);
}

#[test]
fn out_of_table_memory_leaves_p2m_unchanged() {
    let (mut mem, mut p2m) = setup(honouring());
    p2m.set_entry(&mut mem, 0, 0, 18, Some(RAM)).unwrap();
    mem.limit = Some(mem.live() + 1);
    let r = p2m.set_entry(&mut mem, 77, 0x999, 0, Some(SPECIAL));
    assert_eq!(r, Err(P2mError::OutOfTableMemory));
    assert_eq!(p2m.lookup(77).unwrap().mfn, 77);
    assert_eq!(p2m.special_ranges().count(), 0);
    assert_eq!(shape(&mem, &p2m).leaves.len(), 1);
    assert_clean(&mem, &p2m);
    // A guest MTRR write that needs tables fails the same way and is not applied.
    let (b, m) = var_msrs(0x100, 0x100, MemType::Uc);
    p2m.guest_mtrr_write(&mut mem, 0x200, b).unwrap();
    assert_eq!(
        p2m.guest_mtrr_write(&mut mem, 0x201, m),
        Err(P2mError::OutOfTableMemory)
    );
    assert_eq!(p2m.guest_mtrr_read(0x201), Some(0));
    assert_clean(&mem, &p2m);
    mem.limit = None;
    p2m.set_entry(&mut mem, 77, 0x999, 0, Some(SPECIAL))
        .unwrap();
    assert_clean(&mem, &p2m);
}

#[test]
fn destroy_frees_every_table() {
    let (mut mem, mut p2m) = setup(honouring());
    p2m.set_entry(&mut mem, 0, 0, 18, Some(RAM)).unwrap();
    p2m.set_entry(&mut mem, 3, 0x10, 0, Some(SPECIAL)).unwrap();
    p2m.set_entry(&mut mem, 100 * GIB, 0, 9, Some(RAM)).unwrap();
    assert!(mem.live() > 4);
    p2m.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
    assert_eq!(mem.allocs, mem.frees);
}

#[test]
fn removing_everything_frees_tables() {
    let (mut mem, mut p2m) = setup(P2mConfig::default());
    p2m.set_entry(&mut mem, 5, 5, 0, Some(RAM)).unwrap();
    p2m.set_entry(&mut mem, 600 * GIB + 3 * MIB2, 0, 9, Some(RAM))
        .unwrap();
    assert_eq!(mem.live(), 6);
    p2m.set_entry(&mut mem, 5, 0, 0, None).unwrap();
    p2m.set_entry(&mut mem, 600 * GIB + 3 * MIB2, 0, 9, None)
        .unwrap();
    assert_eq!(mem.live(), 1);
    assert_eq!(audit(&mem, &p2m), p2m::AuditReport::default());
}

/// Finds the leaf mapping `gfn`: (table, index, entry).
fn leaf_slot(mem: &TestMem, p2m: &P2m, gfn: u64) -> (u64, usize, u64) {
    let mut table = p2m.eptp() & !0xFFF;
    for level in (1..=4).rev() {
        let i = ((gfn >> (9 * (level - 1))) & 511) as usize;
        let e = mem.read_entry(table, i);
        if level == 1 || e & 0x80 != 0 {
            return (table, i, e);
        }
        table = e & 0x000F_FFFF_FFFF_F000;
    }
    unreachable!()
}

#[test]
fn audit_detects_corruption() {
    let (mut mem, mut p2m) = setup(honouring());
    p2m.set_entry(&mut mem, 0, GIB, 18, Some(RAM)).unwrap();
    p2m.set_entry(&mut mem, 0x300, 0x42, 0, Some(SPECIAL))
        .unwrap();
    p2m.set_entry(&mut mem, GIB, 0, 9, Some(RAM)).unwrap();
    assert_clean(&mem, &p2m);

    // Special leaf turned UC (what the seed's bug looks like).
    let (t, i, e) = leaf_slot(&mem, &p2m, 0x300);
    mem.write_entry(t, i, e & !0x78);
    let r = audit(&mem, &p2m);
    assert_eq!((r.special_wb_ipat, r.violations), (0, 2), "{r:?}"); // special + resolver mismatch
                                                                    // ipat cleared only.
    mem.write_entry(t, i, e & !0x40);
    assert_eq!(audit(&mem, &p2m).violations, 2);
    mem.write_entry(t, i, e);
    assert_eq!(audit(&mem, &p2m).violations, 0);

    // Wrong mfn in a 4 KiB leaf and in a 2 MiB leaf.
    let (t2, i2, e2) = leaf_slot(&mem, &p2m, 0x301);
    mem.write_entry(t2, i2, e2 + 0x1000);
    assert_eq!(audit(&mem, &p2m).violations, 1);
    mem.write_entry(t2, i2, e2);
    let (t3, i3, e3) = leaf_slot(&mem, &p2m, GIB);
    mem.write_entry(t3, i3, e3 + (512 << 12));
    assert_eq!(audit(&mem, &p2m).violations, 1);
    // Reserved memory type 7.
    mem.write_entry(t3, i3, e3 | 0x38);
    assert_eq!(audit(&mem, &p2m).violations, 1);
    // Leaf removed: the p2m's run is missing from the EPT.
    mem.write_entry(t3, i3, 0);
    assert_eq!(audit(&mem, &p2m).violations, 1);
    mem.write_entry(t3, i3, e3);
    // A leaf where the p2m has nothing.
    mem.write_entry(t3, (i3 + 1) % 512, e3 + (512 << 12));
    assert_eq!(audit(&mem, &p2m).violations, 1);
    mem.write_entry(t3, (i3 + 1) % 512, 0);
    // Rights wrong.
    mem.write_entry(t3, i3, e3 & !4);
    assert_eq!(audit(&mem, &p2m).violations, 1);
    mem.write_entry(t3, i3, e3);
    assert_clean(&mem, &p2m);
}

#[test]
fn hole_punching_is_bounded_by_max_extents() {
    let cfg = P2mConfig {
        max_extents: 64,
        ..P2mConfig::default()
    };
    let (mut mem, mut p2m) = setup(cfg);
    // 8 MiB of RAM in one extent.
    p2m.set_entry(&mut mem, 0, 0x1000, 9, Some(RAM)).unwrap();
    p2m.set_entry(&mut mem, 512, 0x1200, 9, Some(RAM)).unwrap();
    let mut holes = 0;
    let err = loop {
        match p2m.set_entry(&mut mem, 1 + 2 * holes, 0, 0, None) {
            Ok(()) => holes += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, p2m::P2mError::TooManyExtents);
    assert!(p2m.extents().count() <= 64);
    assert!(holes >= 60, "{holes} holes before the bound");
    // The refused change left the p2m as it was; unmapping a whole extent still works.
    let gfn = 1 + 2 * holes;
    assert!(p2m.lookup(gfn).is_some());
    p2m.set_entry(&mut mem, 0, 0, 0, None).unwrap();
}

#[test]
fn ept_tables_are_bounded_by_max_tables() {
    let cfg = P2mConfig {
        max_tables: 8,
        ..P2mConfig::default()
    };
    let (mut mem, mut p2m) = setup(cfg);
    // Each page 1 GiB apart needs a directory and a page table.
    let mut mapped = 0;
    let err = loop {
        match p2m.set_entry(&mut mem, mapped << 18, 0x1000, 0, Some(RAM)) {
            Ok(()) => mapped += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, p2m::P2mError::OutOfTableMemory);
    assert!(p2m.tables() <= 8);
    assert!(
        p2m.lookup(mapped << 18).is_none(),
        "the refused page is not recorded"
    );
}
