//! Hypercall handlers against an in-memory guest: what a guest sees for good
//! and bad arguments, and what the EPT looks like afterwards.

use guest_abi::memory::XenAddToPhysmap;
use guest_abi::{hypercall, Errno};
use hypercalls::builder;
use hypercalls::domain::ShutdownReason;
use hypercalls::guest_mem::{read_gpa, write_gpa};
use hypercalls::{dispatch, Domain, Host, VcpuContext};
use p2m::MemType;
use zerocopy::IntoBytes;

mod common;
use common::{setup, FakeHost, BEYOND_RAM_GVA, NONCANONICAL_GVA, UNMAPPED_GVA};
use hypercalls::testhost::RAM_MIB;

fn call(dom: &mut Domain, host: &mut FakeHost, vcpu: &VcpuContext, nr: u64, args: [u64; 5]) -> i64 {
    dispatch(dom, host, vcpu, nr, args) as i64
}

/// `XENVER_extraversion` into the guest buffer at `gva`.
fn extraversion_to(dom: &mut Domain, host: &mut FakeHost, vcpu: &VcpuContext, gva: u64) -> i64 {
    call(dom, host, vcpu, hypercall::XEN_VERSION, [1, gva, 0, 0, 0])
}

fn err(e: Errno) -> i64 {
    e.to_return() as i64
}

#[test]
fn xen_version_reports_4_17_and_extraversion() {
    let (mut dom, mut host, vcpu) = setup(false);
    assert_eq!(
        call(&mut dom, &mut host, &vcpu, hypercall::XEN_VERSION, [0; 5]),
        0x0004_0011
    );
    assert_eq!(extraversion_to(&mut dom, &mut host, &vcpu, 0x20_0000), 0);
    let mut buf = [0u8; 16];
    read_gpa(&dom.p2m, &host, 0x20_0000, &mut buf).unwrap();
    assert_eq!(&buf[..3], b".0\0");
}

/// Every `XENVER_*` sub-op Xen 4.17 answers a domU: what it returns and writes, for a 64-bit
/// and a 32-bit (compat) caller.
#[test]
fn xen_version_sub_ops_as_xen_answers_a_domu() {
    use guest_abi::version::*;
    let (mut dom, mut host, vcpu) = setup(false);
    let buf = 0x20_0000u64;
    let ver = |dom: &mut Domain, host: &mut FakeHost, vcpu: &VcpuContext, cmd: u32| {
        write_gpa(&dom.p2m, host, buf, &[0xAA; 2048]).unwrap();
        let r = call(
            dom,
            host,
            vcpu,
            hypercall::XEN_VERSION,
            [cmd as u64, buf, 0, 0, 0],
        );
        let mut out = vec![0u8; 2048];
        read_gpa(&dom.p2m, host, buf, &mut out).unwrap();
        (r, out)
    };
    let (r, out) = ver(&mut dom, &mut host, &vcpu, XENVER_CAPABILITIES);
    assert_eq!(r, 0);
    assert!(out.starts_with(b"hvm-3.0-x86_64 "));
    assert_eq!((out[1023], out[1024]), (0, 0xAA));
    let (r, out) = ver(&mut dom, &mut host, &vcpu, XENVER_CHANGESET);
    assert_eq!((r, out[63], out[64]), (0, 0, 0xAA));
    let (r, out) = ver(&mut dom, &mut host, &vcpu, XENVER_COMPILE_INFO);
    assert_eq!((r, out[143], out[144]), (0, 0, 0xAA));
    let (r, out) = ver(&mut dom, &mut host, &vcpu, XENVER_GUEST_HANDLE);
    assert_eq!((r, out[16]), (0, 0xAA));
    assert_eq!(ver(&mut dom, &mut host, &vcpu, XENVER_PAGESIZE).0, 4096);
    // Xen's command line is denied: "<denied>" and success; the build id is -EPERM.
    let (r, out) = ver(&mut dom, &mut host, &vcpu, XENVER_COMMANDLINE);
    assert_eq!((r, &out[..10]), (0, &b"<denied>\0\xAA"[..]));
    assert_eq!(
        ver(&mut dom, &mut host, &vcpu, XENVER_BUILD_ID).0,
        err(Errno::EPERM)
    );
    // platform_parameters: 8 bytes for a 64-bit caller, 4 (zero) for a 32-bit one.
    let (r, out) = ver(&mut dom, &mut host, &vcpu, XENVER_PLATFORM_PARAMETERS);
    assert_eq!((r, out[8]), (0, 0xAA));
    let compat = VcpuContext {
        compat: true,
        ..vcpu
    };
    let (r, out) = ver(&mut dom, &mut host, &compat, XENVER_PLATFORM_PARAMETERS);
    assert_eq!((r, &out[..5]), (0, &[0, 0, 0, 0, 0xAA][..]));
    // Sub-ops Xen 4.17 does not have.
    for cmd in [XENVER_EXTRAVERSION2, XENVER_CAPABILITIES2, 15, 0x8000_0000] {
        assert_eq!(ver(&mut dom, &mut host, &vcpu, cmd).0, err(Errno::ENOSYS));
    }
}

#[test]
fn bad_pointers_are_efault() {
    let (mut dom, mut host, vcpu) = setup(false);
    for gva in [UNMAPPED_GVA, NONCANONICAL_GVA, BEYOND_RAM_GVA, u64::MAX - 4] {
        let r = call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::XEN_VERSION,
            [1, gva, 0, 0, 0],
        );
        assert_eq!(r, err(Errno::EFAULT), "extraversion to {gva:#x}");
        let r = call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::CONSOLE_IO,
            [0, 16, gva, 0, 0],
        );
        assert_eq!(r, err(Errno::EFAULT), "console write from {gva:#x}");
        let r = call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::MEMORY_OP,
            [7, gva, 0, 0, 0],
        );
        assert_eq!(r, err(Errno::EFAULT), "add_to_physmap from {gva:#x}");
        let r = call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::SCHED_OP,
            [2, gva, 0, 0, 0],
        );
        assert_eq!(r, err(Errno::EFAULT), "shutdown from {gva:#x}");
    }
    assert_eq!(dom.shutdown, None);
}

#[test]
fn oversize_console_write_faults_at_end_of_ram() {
    let (mut dom, mut host, vcpu) = setup(false);
    let end = RAM_MIB << 20;
    let r = call(
        &mut dom,
        &mut host,
        &vcpu,
        hypercall::CONSOLE_IO,
        [0, u32::MAX as u64, end - 64, 0, 0],
    );
    assert_eq!(r, err(Errno::EFAULT));
}

#[test]
fn write_through_read_only_guest_mapping_is_efault() {
    let (mut dom, mut host, mut vcpu) = setup(false);
    // Make the 2 MiB page at 2 MiB read-only in the guest's PD (entry 1).
    let pd = builder::PML4_GPA + 0x2000;
    write_gpa(
        &dom.p2m,
        &mut host,
        pd + 8,
        &((1u64 << 21) | 0x81).to_le_bytes(),
    )
    .unwrap();
    let r = call(
        &mut dom,
        &mut host,
        &vcpu,
        hypercall::XEN_VERSION,
        [1, 0x20_0000, 0, 0, 0],
    );
    assert_eq!(
        r,
        err(Errno::EFAULT),
        "CR0.WP: supervisor writes honour R/W"
    );
    vcpu.paging.cr0 &= !(1 << 16);
    assert_eq!(extraversion_to(&mut dom, &mut host, &vcpu, 0x20_0000), 0);
}

#[test]
fn unknown_calls_and_subops_are_enosys() {
    let (mut dom, mut host, vcpu) = setup(false);
    for (nr, cmd) in [
        (99, 0),
        (0xFFFF_FFFF_0000_0011, 0),
        (hypercall::XEN_VERSION, 0x7777),
        (hypercall::XEN_VERSION, 1 << 32),
        (hypercall::CONSOLE_IO, 7),
        (hypercall::MEMORY_OP, 0x777 & 0x3F),
        (hypercall::SCHED_OP, 99),
    ] {
        assert_eq!(
            call(&mut dom, &mut host, &vcpu, nr, [cmd, 0, 0, 0, 0]),
            err(Errno::ENOSYS),
            "{nr}/{cmd:#x}"
        );
    }
}

#[test]
fn hypercalls_from_user_mode_are_eperm() {
    let (mut dom, mut host, mut vcpu) = setup(false);
    vcpu.cpl = 3;
    assert_eq!(
        call(&mut dom, &mut host, &vcpu, hypercall::XEN_VERSION, [0; 5]),
        err(Errno::EPERM)
    );
}

fn add_to_physmap(
    dom: &mut Domain,
    host: &mut FakeHost,
    vcpu: &VcpuContext,
    xatp: XenAddToPhysmap,
) -> i64 {
    write_gpa(&dom.p2m, host, 0x30_0000, xatp.as_bytes()).unwrap();
    call(
        dom,
        host,
        vcpu,
        hypercall::MEMORY_OP,
        [7, 0x30_0000, 0, 0, 0],
    )
}

#[test]
fn add_to_physmap_rejects_bad_space_index_and_domain() {
    let (mut dom, mut host, vcpu) = setup(false);
    let base = XenAddToPhysmap {
        domid: 0x7FF0,
        size: 0,
        space: 0,
        idx: 0,
        gpfn: 0xF0000,
    };
    let bad_space = XenAddToPhysmap { space: 99, ..base };
    let bad_idx = XenAddToPhysmap { idx: 1, ..base };
    let bad_dom = XenAddToPhysmap { domid: 5, ..base };
    let bad_gpfn = XenAddToPhysmap {
        gpfn: 1 << 52,
        ..base
    };
    for (xatp, want) in [
        (bad_space, Errno::EINVAL),
        (bad_idx, Errno::EINVAL),
        (bad_dom, Errno::ESRCH),
        (bad_gpfn, Errno::EINVAL),
    ] {
        let r = add_to_physmap(&mut dom, &mut host, &vcpu, xatp);
        assert_eq!(r, err(want), "{xatp:?}");
    }
    assert_eq!(dom.shared_info_gfn, None);
}

/// The seed's case: the guest makes 0xF0000000.. UC with its MTRRs and maps
/// shared_info there in a domain that honours guest memory types.
#[test]
fn shared_info_in_uc_range_is_wb_ipat() {
    let (mut dom, mut host, vcpu) = setup(true);
    hypercalls::testhost::make_pci_hole_uc(&mut dom, &mut host);
    let xatp = XenAddToPhysmap {
        domid: 0x7FF0,
        size: 0,
        space: 0,
        idx: 0,
        gpfn: 0xF0000,
    };
    assert_eq!(add_to_physmap(&mut dom, &mut host, &vcpu, xatp), 0);
    assert!(dom.ept_dirty);
    let (hpa, mt, ipat, size) = p2m::translate(&host, dom.p2m.eptp(), 0xF000_0000).unwrap();
    assert_eq!(
        (hpa / 4096, mt, ipat, size),
        (dom.shared_info_mfn, MemType::Wb, true, 4096)
    );
    // The guest reads the wall clock the hypervisor stamped.
    let mut wc = [0u8; 8];
    read_gpa(&dom.p2m, &host, 0xF000_0000 + 3072, &mut wc).unwrap();
    assert_eq!(
        u32::from_le_bytes(wc[4..8].try_into().unwrap()),
        1_795_588_215
    );
    // Remapping moves it: the old gfn becomes a hole, RAM at the new one is replaced.
    let xatp = XenAddToPhysmap {
        gpfn: 0x101,
        ..xatp
    };
    assert_eq!(add_to_physmap(&mut dom, &mut host, &vcpu, xatp), 0);
    assert!(p2m::translate(&host, dom.p2m.eptp(), 0xF000_0000).is_none());
    let (_, mt, ipat, _) = p2m::translate(&host, dom.p2m.eptp(), 0x10_1000).unwrap();
    assert_eq!((mt, ipat), (MemType::Wb, true));
    let report = p2m::audit(&host, &dom.p2m);
    // shared_info plus the console and xenstore rings.
    assert_eq!((report.special_wb_ipat, report.violations), (3, 0));
}

/// Hole punching: moves of shared_info and a grant frame over every other frame split the
/// p2m until it refuses (`-ENOMEM`); a refused move leaves the page mapped where it was.
#[test]
fn refused_physmap_move_keeps_the_old_place() {
    let (mut dom, mut host, vcpu) = hypercalls::testhost::test_domain_with_extents(1, 1, false, 64);
    let mut moves = 0;
    let mut last = [None, None];
    let refused = loop {
        let space = (moves % 2) as u32;
        let xatp = XenAddToPhysmap {
            domid: 0x7FF0,
            size: 0,
            space,
            idx: 0,
            gpfn: 0x400 + 2 * moves,
        };
        let rc = add_to_physmap(&mut dom, &mut host, &vcpu, xatp);
        if rc != 0 {
            break rc;
        }
        last[space as usize] = Some(xatp.gpfn);
        moves += 1;
        assert!(moves < 512, "never refused");
    };
    assert_eq!(refused, err(Errno::ENOMEM));
    assert!(dom.p2m.extents().count() <= 64);
    assert_eq!(dom.shared_info_gfn, last[0]);
    let (hpa, _, ipat, _) = p2m::translate(&host, dom.p2m.eptp(), last[0].unwrap() * 4096).unwrap();
    assert_eq!((hpa / 4096, ipat), (dom.shared_info_mfn, true));
    let (_, _, ipat, _) = p2m::translate(&host, dom.p2m.eptp(), last[1].unwrap() * 4096).unwrap();
    assert!(ipat);
    let report = p2m::audit(&host, &dom.p2m);
    assert_eq!((report.special_wb_ipat, report.violations), (4, 0));
}

#[test]
fn console_lines_and_shutdown() {
    let (mut dom, mut host, vcpu) = setup(false);
    write_gpa(&dom.p2m, &mut host, 0x20_0000, b"hello\nwor").unwrap();
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::CONSOLE_IO,
            [0, 9, 0x20_0000, 0, 0]
        ),
        0
    );
    assert_eq!(host.console, [(1, "hello".to_string())]);
    write_gpa(&dom.p2m, &mut host, 0x20_0000, &0u32.to_le_bytes()).unwrap();
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::SCHED_OP,
            [2, 0x20_0000, 0, 0, 0]
        ),
        0
    );
    assert_eq!(dom.shutdown, Some(ShutdownReason::Poweroff));
}

#[test]
fn sched_yield_asks_the_kernel_to_yield() {
    let (mut dom, mut host, vcpu) = setup(false);
    assert!(!dom.vcpus[0].yielded);
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::SCHED_OP,
            [0, 0, 0, 0, 0]
        ),
        0
    );
    assert!(dom.vcpus[0].yielded);
    assert!(!dom.vcpus[0].blocked);
}

/// Scratch guest memory for hypercall arguments (identity-mapped: GVA = GPA).
const ARG: u64 = 0x31_0000;

/// Writes `arg` at [`ARG`] and calls `nr(cmd, ARG)`; returns RAX.
fn call_with(
    dom: &mut Domain,
    host: &mut FakeHost,
    vcpu: &VcpuContext,
    nr: u64,
    cmd: u64,
    arg: &[u8],
) -> i64 {
    write_gpa(&dom.p2m, host, ARG, arg).unwrap();
    call(dom, host, vcpu, nr, [cmd, ARG, 1, 0, 0])
}

fn u32_at(dom: &Domain, host: &FakeHost, gpa: u64) -> u32 {
    let mut b = [0u8; 4];
    read_gpa(&dom.p2m, host, gpa, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn hvm_param(op: u32, index: u32, value: u64, domid: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0..2].copy_from_slice(&domid.to_le_bytes());
    p[4..8].copy_from_slice(&index.to_le_bytes());
    p[8..16].copy_from_slice(&value.to_le_bytes());
    let _ = op;
    p
}

fn shared_info_bit(host: &FakeHost, dom: &Domain, base: u64, port: u32) -> bool {
    let mut b = [0u8; 8];
    host.read_phys(
        dom.shared_info_mfn * 4096 + base + (port as u64 / 64) * 8,
        &mut b,
    );
    u64::from_le_bytes(b) & (1 << (port % 64)) != 0
}

/// Linux 6.1's PV-on-HVM boot, phases A-G of the checklist, as one guest would
/// make the calls: each must succeed and leave the state Linux relies on.
#[test]
fn linux_boot_sequence() {
    let (mut dom, mut host, vcpu) = setup(true);
    // A: features, then shared_info.
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::XEN_VERSION,
            6,
            &[0u8; 8]
        ),
        0
    );
    let features = u32_at(&dom, &host, ARG + 4);
    assert_eq!(
        features & 0x704,
        0x304,
        "auto-translated, callback vector, safe pvclock, no pirqs"
    );
    let xatp = XenAddToPhysmap {
        domid: 0x7FF0,
        size: 0,
        space: 0,
        idx: 0,
        gpfn: 0x3F0,
    };
    assert_eq!(add_to_physmap(&mut dom, &mut host, &vcpu, xatp), 0);
    assert_eq!(
        call_with(&mut dom, &mut host, &vcpu, hypercall::HVM_OP, 9, &[0u8; 16]),
        err(Errno::ENOSYS)
    );
    // B: register_vcpu_info at gfn 0x30, offset 0x40.
    let mut r = [0u8; 16];
    r[0..8].copy_from_slice(&0x30u64.to_le_bytes());
    r[8..12].copy_from_slice(&0x40u32.to_le_bytes());
    write_gpa(&dom.p2m, &mut host, ARG, &r).unwrap();
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::VCPU_OP,
            [10, 0, ARG, 0, 0]
        ),
        0
    );
    let info = 0x30_040;
    assert_eq!(
        u32_at(&dom, &host, info) & 0xFF,
        1,
        "upcall pending after registration"
    );
    assert_ne!(u32_at(&dom, &host, info + 32 + 24), 0, "pvclock mul filled");
    // C: the FIFO probe names a control block outside RAM, so it fails and this
    // guest stays on the 2-level ABI (Linux's FIFO boot is tests/linux_boot.rs);
    // callback vector set.
    let mut ic = [0u8; 24];
    ic[0..8].copy_from_slice(&0xF_FFFFu64.to_le_bytes());
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::EVENT_CHANNEL_OP,
            11,
            &ic
        ),
        err(Errno::EINVAL)
    );
    assert!(dom.evtchn_fifo.is_none());
    let cb = hvm_param(0, 0, (2 << 56) | 0xF3, 0x7FF0);
    assert_eq!(
        call_with(&mut dom, &mut host, &vcpu, hypercall::HVM_OP, 0, &cb),
        0
    );
    assert_eq!(dom.callback_vector(), Some(0xF3));
    // D, F: console and store params are non-zero.
    for (index, want) in [
        (17, Some(0xFEFF8)),
        (18, None),
        (1, Some(0xFEFF9)),
        (2, None),
    ] {
        let p = hvm_param(1, index, 0, 0x7FF0);
        assert_eq!(
            call_with(&mut dom, &mut host, &vcpu, hypercall::HVM_OP, 1, &p),
            0
        );
        let mut v = [0u8; 8];
        read_gpa(&dom.p2m, &host, ARG + 8, &mut v).unwrap();
        let v = u64::from_le_bytes(v);
        assert_ne!(v, 0, "param {index}");
        if let Some(w) = want {
            assert_eq!(v, w);
        }
    }
    // E: timers.
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::VCPU_OP,
            [7, 0, 0, 0, 0]
        ),
        0
    );
    write_gpa(&dom.p2m, &mut host, ARG, &0x32_0000u64.to_le_bytes()).unwrap();
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::VCPU_OP,
            [5, 0, ARG, 0, 0]
        ),
        0
    );
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::EVENT_CHANNEL_OP,
            1,
            &[0u8; 12]
        ),
        0
    );
    let timer_port = u32_at(&dom, &host, ARG + 8);
    assert!(timer_port > 0);
    // The guest consumed the registration upcall.
    write_gpa(&dom.p2m, &mut host, info, &[0u8; 16]).unwrap();
    let mut t = [0u8; 16];
    t[0..8].copy_from_slice(&5_000_000u64.to_le_bytes());
    write_gpa(&dom.p2m, &mut host, ARG, &t).unwrap();
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::VCPU_OP,
            [8, 0, ARG, 0, 0]
        ),
        0
    );
    hypercalls::hvm::poll_timers(&mut dom, &mut host, 4_999_999);
    assert!(!dom.upcall_pending(&host, 0), "not yet due");
    hypercalls::hvm::poll_timers(&mut dom, &mut host, 5_000_000);
    assert!(shared_info_bit(&host, &dom, 2048, timer_port));
    assert!(
        dom.upcall_pending(&host, 0),
        "delivered to the registered vcpu_info"
    );
    assert_eq!(
        call(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::VM_ASSIST,
            [0, 5, 0, 0, 0]
        ),
        0
    );
    // IPIs and a backend port.
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::EVENT_CHANNEL_OP,
            7,
            &[0u8; 8]
        ),
        0
    );
    let ipi = u32_at(&dom, &host, ARG + 4);
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::EVENT_CHANNEL_OP,
            4,
            &ipi.to_le_bytes()
        ),
        0
    );
    assert!(shared_info_bit(&host, &dom, 2048, ipi));
    let mut au = [0u8; 8];
    au[0..2].copy_from_slice(&0x7FF0u16.to_le_bytes());
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::EVENT_CHANNEL_OP,
            6,
            &au
        ),
        0
    );
    let unbound = u32_at(&dom, &host, ARG + 4);
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::EVENT_CHANNEL_OP,
            4,
            &unbound.to_le_bytes()
        ),
        0
    );
    assert_eq!(dom.take_backend_kicks(), vec![unbound]);
    // The console ring: the guest writes "hi\n" and signals.
    let ring = dom.console_mfn * 4096;
    host.write_phys(ring + 1024, b"hi\n");
    host.write_phys(ring + 3084, &3u32.to_le_bytes());
    hypercalls::hvm::drain_console_ring(&mut dom, &mut host);
    assert_eq!(host.console.last(), Some(&(1, "hi".to_string())));
    // G: grant table in a UC MTRR range (BAR1), as Linux's platform-pci driver does it.
    hypercalls::testhost::make_pci_hole_uc(&mut dom, &mut host);
    let mut q = [0u8; 16];
    q[0..2].copy_from_slice(&0x7FF0u16.to_le_bytes());
    assert_eq!(
        call_with(&mut dom, &mut host, &vcpu, hypercall::GRANT_TABLE_OP, 6, &q),
        0
    );
    assert_eq!(u32_at(&dom, &host, ARG + 8), 64, "max_nr_frames");
    assert_eq!(
        call_with(
            &mut dom,
            &mut host,
            &vcpu,
            hypercall::GRANT_TABLE_OP,
            8,
            &1u32.to_le_bytes()
        ),
        0
    );
    let gnt = XenAddToPhysmap {
        domid: 0x7FF0,
        size: 0,
        space: 1,
        idx: 0,
        gpfn: 0xF0000,
    };
    assert_eq!(add_to_physmap(&mut dom, &mut host, &vcpu, gnt), 0);
    let (_, mt, ipat, _) = p2m::translate(&host, dom.p2m.eptp(), 0xF000_0000).unwrap();
    assert_eq!((mt, ipat), (MemType::Wb, true));
    let report = p2m::audit(&host, &dom.p2m);
    assert_eq!((report.special_wb_ipat, report.violations), (4, 0));
}

/// Out-of-range ports, bad guest addresses, unaligned and oversize arguments:
/// each gets Xen's errno and changes nothing.
#[test]
fn bad_arguments_of_the_hvm_calls() {
    let (mut dom, mut host, vcpu) = setup(false);
    let e = |e: Errno| err(e);
    let evtchn = hypercall::EVENT_CHANNEL_OP;
    let cases: Vec<(&str, u64, u64, Vec<u8>, i64)> = vec![
        (
            "send port 0",
            evtchn,
            4,
            0u32.to_le_bytes().to_vec(),
            e(Errno::EINVAL),
        ),
        (
            "send port 4096",
            evtchn,
            4,
            4096u32.to_le_bytes().to_vec(),
            e(Errno::EINVAL),
        ),
        (
            "send port u32::MAX",
            evtchn,
            4,
            u32::MAX.to_le_bytes().to_vec(),
            e(Errno::EINVAL),
        ),
        (
            "send unallocated port",
            evtchn,
            4,
            100u32.to_le_bytes().to_vec(),
            e(Errno::EINVAL),
        ),
        (
            "unmask port 4096",
            evtchn,
            9,
            4096u32.to_le_bytes().to_vec(),
            e(Errno::EINVAL),
        ),
        // Port 0 is a valid (reserved) port: Xen's evtchn_unmask only checks
        // port_is_valid(), so unmasking it succeeds and does nothing.
        ("unmask port 0", evtchn, 9, 0u32.to_le_bytes().to_vec(), 0),
        (
            "close port 4096",
            evtchn,
            3,
            4096u32.to_le_bytes().to_vec(),
            e(Errno::EINVAL),
        ),
        (
            "bind_virq virq 24",
            evtchn,
            1,
            [24u32, 0, 0].as_bytes().to_vec(),
            e(Errno::EINVAL),
        ),
        (
            "bind_virq vcpu 5",
            evtchn,
            1,
            [0u32, 5, 0].as_bytes().to_vec(),
            e(Errno::ENOENT),
        ),
        (
            "bind_ipi vcpu 1",
            evtchn,
            7,
            [1u32, 0].as_bytes().to_vec(),
            e(Errno::ENOENT),
        ),
        (
            "alloc_unbound for dom 7",
            evtchn,
            6,
            [7u16, 0, 0, 0].as_bytes().to_vec(),
            e(Errno::ESRCH),
        ),
        (
            "alloc_unbound in dom 0",
            evtchn,
            6,
            [0u16, 0, 0, 0].as_bytes().to_vec(),
            e(Errno::EPERM),
        ),
        (
            "bind_vcpu vcpu 3",
            evtchn,
            8,
            [1u32, 3].as_bytes().to_vec(),
            e(Errno::ENOENT),
        ),
        ("set_priority", evtchn, 13, vec![0; 12], e(Errno::ENOSYS)),
        (
            "hvm param index 39",
            hypercall::HVM_OP,
            1,
            hvm_param(1, 39, 0, 0x7FF0).to_vec(),
            e(Errno::EINVAL),
        ),
        (
            "hvm param of dom 5",
            hypercall::HVM_OP,
            1,
            hvm_param(1, 1, 0, 5).to_vec(),
            e(Errno::ESRCH),
        ),
        (
            "guest sets STORE_PFN",
            hypercall::HVM_OP,
            0,
            hvm_param(0, 1, 0x1234, 0x7FF0).to_vec(),
            e(Errno::EPERM),
        ),
        (
            "grant set_version 2",
            hypercall::GRANT_TABLE_OP,
            8,
            2u32.to_le_bytes().to_vec(),
            e(Errno::ENOSYS),
        ),
        (
            "grant map_grant_ref",
            hypercall::GRANT_TABLE_OP,
            0,
            vec![0; 24],
            e(Errno::ENOSYS),
        ),
        (
            "vm_assist type 9",
            hypercall::VM_ASSIST,
            0,
            vec![],
            e(Errno::EINVAL),
        ),
    ];
    let mut failures = Vec::new();
    for (what, nr, cmd, arg, want) in &cases {
        let rc = if arg.is_empty() {
            call(&mut dom, &mut host, &vcpu, *nr, [*cmd, 9, 0, 0, 0])
        } else {
            call_with(&mut dom, &mut host, &vcpu, *nr, *cmd, arg)
        };
        if rc != *want {
            failures.push(format!("{what}: rc {rc}, want {want}"));
        }
    }
    // Bad guest-virtual addresses: EFAULT for every structure argument.
    for (nr, cmd) in [
        (evtchn, 4),
        (evtchn, 1),
        (hypercall::HVM_OP, 1),
        (hypercall::GRANT_TABLE_OP, 6),
    ] {
        for gva in [UNMAPPED_GVA, NONCANONICAL_GVA, BEYOND_RAM_GVA] {
            let rc = call(&mut dom, &mut host, &vcpu, nr, [cmd, gva, 1, 0, 0]);
            if rc != e(Errno::EFAULT) {
                failures.push(format!("op {nr}/{cmd} at {gva:#x}: rc {rc}"));
            }
        }
    }
    // vcpu_op: vcpu id out of range, vcpu_info crossing a page, outside RAM, twice.
    let vcpu_op = |dom: &mut Domain, host: &mut FakeHost, id: u64, mfn: u64, offset: u32| {
        let mut r = [0u8; 16];
        r[0..8].copy_from_slice(&mfn.to_le_bytes());
        r[8..12].copy_from_slice(&offset.to_le_bytes());
        write_gpa(&dom.p2m, host, ARG, &r).unwrap();
        call(dom, host, &vcpu, hypercall::VCPU_OP, [10, id, ARG, 0, 0])
    };
    for (what, id, mfn, off, want) in [
        ("vcpu 1 of 1", 1, 0x30, 0, e(Errno::ENOENT)),
        ("vcpu u64::MAX", u64::MAX, 0x30, 0, e(Errno::ENOENT)),
        ("offset crossing the page", 0, 0x30, 4090, e(Errno::EINVAL)),
        ("frame beyond RAM", 0, 0x8_0000, 0, e(Errno::EINVAL)),
        (
            "frame beyond the guest-physical space",
            0,
            u64::MAX,
            0,
            e(Errno::EINVAL),
        ),
        ("good", 0, 0x30, 64, 0),
        ("second registration", 0, 0x31, 0, e(Errno::EINVAL)),
    ] {
        let rc = vcpu_op(&mut dom, &mut host, id, mfn, off);
        if rc != want {
            failures.push(format!("register_vcpu_info {what}: rc {rc}, want {want}"));
        }
    }
    // A past deadline with VCPU_SSHOTTMR_future is ETIME.
    let mut t = [0u8; 16];
    t[8..12].copy_from_slice(&1u32.to_le_bytes());
    write_gpa(&dom.p2m, &mut host, ARG, &t).unwrap();
    let tsc_later = call(
        &mut dom,
        &mut host,
        &vcpu,
        hypercall::VCPU_OP,
        [8, 0, ARG, 0, 0],
    );
    // The fake TSC sits at the time origin, so deadline 0 is not in the past: accepted.
    if tsc_later != 0 {
        failures.push(format!("singleshot at the origin: rc {tsc_later}"));
    }
    // Grant frames: index too large, or a v2 status frame.
    for idx in [64, 1 << 31, u64::MAX] {
        let x = XenAddToPhysmap {
            domid: 0x7FF0,
            size: 0,
            space: 1,
            idx,
            gpfn: 0x100,
        };
        let rc = add_to_physmap(&mut dom, &mut host, &vcpu, x);
        if rc != e(Errno::EINVAL) {
            failures.push(format!("grant frame {idx:#x}: rc {rc}"));
        }
    }
    let mut q = [0u8; 16];
    q[0..2].copy_from_slice(&0x7FF0u16.to_le_bytes());
    write_gpa(&dom.p2m, &mut host, ARG, &q).unwrap();
    let rc = call(
        &mut dom,
        &mut host,
        &vcpu,
        hypercall::GRANT_TABLE_OP,
        [6, ARG, 2, 0, 0],
    );
    if rc != e(Errno::EINVAL) {
        failures.push(format!("query_size count 2: rc {rc}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(dom.take_backend_kicks().is_empty());
    assert_eq!(p2m::audit(&host, &dom.p2m).violations, 0);
}

#[test]
fn long_console_write_continues_itself() {
    let (mut dom, mut host, vcpu) = setup(false);
    let gva = 0x20_0000;
    let mut text = Vec::new();
    for i in 0..500 {
        text.extend_from_slice(format!("line {i:04}\n").as_bytes());
    }
    write_gpa(&dom.p2m, &mut host, gva, &text).unwrap();
    let mut args = [0, text.len() as u64, gva, 0, 0];
    let mut calls = 0;
    loop {
        calls += 1;
        assert_eq!(
            call(&mut dom, &mut host, &vcpu, hypercall::CONSOLE_IO, args),
            0
        );
        match dom.vcpus[0].continuation.take() {
            Some(next) => {
                assert_eq!(next[1], args[1] - dispatch::CONSOLEIO_WRITE_PER_CALL);
                assert_eq!(next[2], args[2] + dispatch::CONSOLEIO_WRITE_PER_CALL);
                args = next;
            }
            None => break,
        }
    }
    assert_eq!(calls, text.len().div_ceil(2048));
    let lines: Vec<&str> = host.console.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines.len(), 500);
    assert_eq!(lines[499], "line 0499");
}
