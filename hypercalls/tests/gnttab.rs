//! Grant tables: the guest's sub-ops, grant frames in the physmap, and the
//! access protocol backends use (`GTF_reading`/`GTF_writing`).

mod common;

use common::{err, Guest, ARG, BUF, UNMAPPED_GVA};
use guest_abi::grant_table::*;
use guest_abi::hypercall as hc;
use guest_abi::memory::{XenAddToPhysmap, XENMAPIDX_GRANT_TABLE_STATUS};
use guest_abi::xen::DOMID_SELF;
use guest_abi::Errno;
use hypercalls::gnttab::{GrantError, MAX_GRANT_FRAMES};
use p2m::{Mapping, MemType};
use zerocopy::IntoBytes;

fn map_grant_frame(g: &mut Guest, idx: u64, gpfn: u64) -> i64 {
    let xatp = XenAddToPhysmap {
        domid: DOMID_SELF,
        space: 1,
        idx,
        gpfn,
        ..Default::default()
    };
    g.op(hc::MEMORY_OP, 7, xatp).0
}

fn gnttab(g: &mut Guest, cmd: u64, arg: &[u8], count: u64) -> i64 {
    g.write(ARG, arg);
    g.call(hc::GRANT_TABLE_OP, [cmd, ARG, count, 0, 0])
}

#[test]
fn guest_subops() {
    let mut g = Guest::new(false, 1);
    let q = GnttabQuerySize {
        dom: DOMID_SELF,
        ..Default::default()
    };
    // query_size: count must be 1; another domain is a status, not an errno.
    assert_eq!(gnttab(&mut g, 6, q.as_bytes(), 2), err(Errno::EINVAL));
    assert_eq!(
        gnttab(&mut g, 6, q.as_bytes(), u32::MAX as u64),
        err(Errno::EINVAL)
    );
    for (dom, status) in [(5, GNTST_BAD_DOMAIN), (0, GNTST_PERMISSION_DENIED)] {
        let q = GnttabQuerySize {
            dom,
            ..Default::default()
        };
        assert_eq!(gnttab(&mut g, 6, q.as_bytes(), 1), 0);
        assert_eq!(g.read_obj::<GnttabQuerySize>(ARG).status, status);
    }
    assert_eq!(
        g.call(hc::GRANT_TABLE_OP, [6, UNMAPPED_GVA, 1, 0, 0]),
        err(Errno::EFAULT)
    );
    // set_version: 1 is fine, 2 is "not offered", others invalid; 1 is reported back.
    for (v, want) in [
        (1, 0),
        (2, err(Errno::ENOSYS)),
        (0, err(Errno::EINVAL)),
        (3, err(Errno::EINVAL)),
    ] {
        assert_eq!(
            gnttab(&mut g, 8, &(v as u32).to_le_bytes(), 1),
            want,
            "v{v}"
        );
        assert_eq!(g.read_obj::<u32>(ARG), 1);
    }
    let v = GnttabGetVersion {
        dom: DOMID_SELF,
        ..Default::default()
    };
    assert_eq!(gnttab(&mut g, 10, v.as_bytes(), 1), 0);
    assert_eq!(g.read_obj::<GnttabGetVersion>(ARG).version, 1);
    let v = GnttabGetVersion {
        dom: 9,
        ..Default::default()
    };
    assert_eq!(gnttab(&mut g, 10, v.as_bytes(), 1), err(Errno::ESRCH));
    // Frontends never map, unmap or copy; other ops are not for HVM guests;
    // continuation bits make a command none of the allowed ones.
    for cmd in [0, 1, 3, 4, 5, 7, 9, 11, 12, 99, 6 | 1 << 12, 1 << 32] {
        assert_eq!(
            gnttab(&mut g, cmd, &[0; 32], 1),
            err(Errno::ENOSYS),
            "cmd {cmd:#x}"
        );
    }
    assert_eq!(gnttab(&mut g, 6, q.as_bytes(), 1 << 31), err(Errno::EINVAL));
}

#[test]
fn setup_table_reports_frame_gfns() {
    let mut g = Guest::new(false, 1);
    assert_eq!(map_grant_frame(&mut g, 1, 0x700), 0);
    let s = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 3,
        frame_list: BUF,
        ..Default::default()
    };
    assert_eq!(gnttab(&mut g, 2, s.as_bytes(), 1), 0);
    assert_eq!(g.read_obj::<GnttabSetupTable>(ARG).status, GNTST_OKAY);
    assert_eq!(g.read_u64(BUF), u64::MAX, "frame 0 not mapped");
    assert_eq!(g.read_u64(BUF + 8), 0x700);
    assert_eq!(g.read_u64(BUF + 16), u64::MAX);
    assert_eq!(g.dom.grant.nr_frames(), 3);
    for (nr_frames, frame_list, status) in [
        (MAX_GRANT_FRAMES + 1, BUF, GNTST_GENERAL_ERROR),
        (1, UNMAPPED_GVA, GNTST_BAD_VIRT_ADDR),
    ] {
        let s = GnttabSetupTable {
            dom: DOMID_SELF,
            nr_frames,
            frame_list,
            ..Default::default()
        };
        assert_eq!(gnttab(&mut g, 2, s.as_bytes(), 1), 0);
        assert_eq!(g.read_obj::<GnttabSetupTable>(ARG).status, status);
    }
}

#[test]
fn grant_frames_in_the_physmap() {
    let mut g = Guest::new(true, 1);
    // BAR1 is UC by the guest's MTRRs; grant frames still map WB with ignore-PAT.
    hypercalls::testhost::make_pci_hole_uc(&mut g.dom, &mut g.host);
    for (idx, want) in [
        (MAX_GRANT_FRAMES as u64, Errno::EINVAL),
        (u64::MAX, Errno::EINVAL),
        (1 << 32, Errno::EINVAL),
        (XENMAPIDX_GRANT_TABLE_STATUS, Errno::EINVAL), // v1 has no status frames
    ] {
        assert_eq!(
            map_grant_frame(&mut g, idx, 0xF1000),
            err(want),
            "idx {idx:#x}"
        );
    }
    // Linux maps from the highest index down.
    for idx in (0..4).rev() {
        assert_eq!(map_grant_frame(&mut g, idx, 0xF1000 + idx), 0, "idx {idx}");
    }
    assert_eq!(g.dom.grant.nr_frames(), 4);
    let report = p2m::audit(&g.host, &g.dom.p2m);
    assert_eq!((report.special_wb_ipat, report.violations), (2 + 4, 0));
    for idx in 0..4 {
        let (hpa, mt, ipat, _) =
            p2m::translate(&g.host, g.dom.p2m.eptp(), (0xF1000 + idx) * 4096).unwrap();
        assert_eq!(hpa / 4096, g.dom.grant.frame_mfn(idx as u32).unwrap());
        assert_eq!((mt, ipat), (MemType::Wb, true));
    }
    // Remapping a frame moves it (the old gfn becomes a hole); mapping over
    // shared_info unhooks shared_info.
    let si = XenAddToPhysmap {
        domid: DOMID_SELF,
        space: 0,
        idx: 0,
        gpfn: 0x10,
        ..Default::default()
    };
    assert_eq!(g.op(hc::MEMORY_OP, 7, si).0, 0);
    assert_eq!(map_grant_frame(&mut g, 0, 0x10), 0);
    assert!(p2m::translate(&g.host, g.dom.p2m.eptp(), 0xF1000 * 4096).is_none());
    assert_eq!(g.dom.shared_info_gfn, None);
    assert_eq!(g.dom.grant.frame_gfn(0), Some(0x10));
    // Device MMIO cannot be replaced.
    g.dom
        .p2m
        .set_entry(&mut g.host, 0xFE000, 0xFE000, 0, Some(Mapping::mmio(1)))
        .unwrap();
    assert_eq!(map_grant_frame(&mut g, 1, 0xFE000), err(Errno::EPERM));
    assert_eq!(map_grant_frame(&mut g, 1, 1 << 40), err(Errno::EINVAL));
}

/// Writes grant entry `gref` into frame 0 (mapped at gfn 0xF1000).
fn grant(g: &mut Guest, gref: u32, flags: u16, domid: u16, frame: u32) {
    let e = GrantEntryV1 {
        flags,
        domid,
        frame,
    };
    g.write(0xF1000 * 4096 + gref as u64 * 8, e.as_bytes());
}

#[test]
fn backend_access_protocol() {
    let mut g = Guest::new(false, 1);
    assert_eq!(map_grant_frame(&mut g, 0, 0xF1000), 0);
    let page = 0x600u32;
    grant(&mut g, 8, GTF_PERMIT_ACCESS, 0, page); // RX: writable
    grant(&mut g, 9, GTF_PERMIT_ACCESS | GTF_READONLY, 0, page); // TX: read-only
    grant(&mut g, 10, GTF_PERMIT_ACCESS, 3, page); // to another domain
    grant(&mut g, 11, GTF_PERMIT_ACCESS | GTF_SUB_PAGE, 0, page);
    grant(&mut g, 12, GTF_ACCEPT_TRANSFER, 0, page);
    grant(&mut g, 13, GTF_PERMIT_ACCESS, 0, 0x7FFFF); // beyond RAM
    grant(
        &mut g,
        14,
        GTF_PERMIT_ACCESS,
        0,
        hypercalls::CONSOLE_GFN as u32,
    );
    assert_eq!(
        g.dom.grant_entry(&g.host, 9),
        Some(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS | GTF_READONLY,
            domid: 0,
            frame: page
        })
    );
    assert_eq!(g.dom.grant_entry(&g.host, 512), None, "beyond the table");
    let h = &mut g.host;
    for (gref, write, want) in [
        (9, true, GrantError::PermissionDenied),
        (10, false, GrantError::PermissionDenied),
        (11, false, GrantError::PermissionDenied),
        (12, false, GrantError::PermissionDenied),
        (7, false, GrantError::PermissionDenied), // never granted
        (13, false, GrantError::BadPage),
        (14, true, GrantError::BadPage),
        (512, false, GrantError::BadRef),
        (u32::MAX, false, GrantError::BadRef),
    ] {
        assert_eq!(
            g.dom.grant_acquire(h, gref, 0, write),
            Err(want),
            "gref {gref}"
        );
    }
    assert_eq!(GrantError::BadRef.status(), GNTST_BAD_GNTREF);
    // Flags are set for the access and cleared after it, by use count.
    let w = g.dom.grant_acquire(&mut g.host, 8, 0, true).unwrap();
    let r = g.dom.grant_acquire(&mut g.host, 8, 0, false).unwrap();
    assert_eq!(w.gfn, page as u64);
    let flags = |g: &Guest, gref| g.dom.grant_entry(&g.host, gref).unwrap().flags;
    assert_eq!(flags(&g, 8), GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING);
    g.dom.grant_release(&mut g.host, w);
    assert_eq!(flags(&g, 8), GTF_PERMIT_ACCESS | GTF_READING);
    g.dom.grant_release(&mut g.host, r);
    assert_eq!(flags(&g, 8), GTF_PERMIT_ACCESS);
    // Copies through grants, with the range checked.
    g.write(page as u64 * 4096 + 100, b"tx packet");
    let mut buf = [0u8; 9];
    g.dom.grant_read(&mut g.host, 9, 0, 100, &mut buf).unwrap();
    assert_eq!(&buf, b"tx packet");
    assert_eq!(flags(&g, 9), GTF_PERMIT_ACCESS | GTF_READONLY);
    assert_eq!(
        g.dom.grant_write(&mut g.host, 9, 0, 0, b"x"),
        Err(GrantError::PermissionDenied)
    );
    assert_eq!(
        g.dom.grant_write(&mut g.host, 8, 0, 4090, b"too long"),
        Err(GrantError::BadRange)
    );
    assert_eq!(
        g.dom.grant_read(&mut g.host, 8, 0, usize::MAX, &mut buf),
        Err(GrantError::BadRange)
    );
    g.dom
        .grant_write(&mut g.host, 8, 0, 4088, b"rx frame")
        .unwrap();
    assert_eq!(g.read(page as u64 * 4096 + 4088, 8), b"rx frame");
    assert_eq!(flags(&g, 8), GTF_PERMIT_ACCESS, "never left set");
    // Entries in a frame the guest never mapped read as empty.
    assert_eq!(map_grant_frame(&mut g, 2, 0xF1002), 0);
    assert_eq!(
        g.dom.grant_entry(&g.host, 600),
        Some(GrantEntryV1::default())
    );
    assert_eq!(
        g.dom.grant_acquire(&mut g.host, 600, 0, false),
        Err(GrantError::PermissionDenied)
    );
}
