//! Hypercall handlers against an in-memory guest: what a guest sees for good
//! and bad arguments, and what the EPT looks like afterwards.

use std::collections::HashMap;

use guest_abi::memory::XenAddToPhysmap;
use guest_abi::{hypercall, Errno};
use hypercalls::builder;
use hypercalls::domain::ShutdownReason;
use hypercalls::guest_mem::{read_gpa, write_gpa, PagingState};
use hypercalls::{dispatch, Domain, Host, VcpuContext};
use p2m::testmem::TestMem;
use p2m::{EptTableMemory, Mapping, MemType, MtrrState, P2m, P2mConfig, P2mType};
use zerocopy::IntoBytes;

const RAM_MIB: u64 = 8;
const RAM_MFN_BASE: u64 = 0x4_0000;

/// Fake host: EPT tables from `TestMem`, other frames as a sparse map.
#[derive(Default)]
struct FakeHost {
    tables: TestMem,
    pages: HashMap<u64, Box<[u8; 4096]>>,
    next_page: u64,
    console: Vec<(u16, String)>,
}

impl EptTableMemory for FakeHost {
    fn alloc_table(&mut self) -> Option<u64> {
        self.tables.alloc_table()
    }
    fn free_table(&mut self, table: u64) {
        self.tables.free_table(table)
    }
    fn read_entry(&self, table: u64, index: usize) -> u64 {
        self.tables.read_entry(table, index)
    }
    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        self.tables.write_entry(table, index, value)
    }
}

impl Host for FakeHost {
    fn read_phys(&self, hpa: u64, buf: &mut [u8]) {
        let off = (hpa % 4096) as usize;
        match self.pages.get(&(hpa / 4096)) {
            Some(p) => buf.copy_from_slice(&p[off..off + buf.len()]),
            None => buf.fill(0),
        }
    }
    fn write_phys(&mut self, hpa: u64, data: &[u8]) {
        let off = (hpa % 4096) as usize;
        let page = self
            .pages
            .entry(hpa / 4096)
            .or_insert_with(|| Box::new([0; 4096]));
        page[off..off + data.len()].copy_from_slice(data);
    }
    fn alloc_page(&mut self) -> Option<u64> {
        self.next_page += 1;
        Some((0x10_0000 + self.next_page) * 4096)
    }
    fn free_page(&mut self, hpa: u64) {
        self.pages.remove(&(hpa / 4096));
    }
    fn console_line(&mut self, domid: u16, line: &str) {
        self.console.push((domid, line.to_string()));
    }
    fn wallclock(&self) -> (u64, u32) {
        (1_795_588_215, 0)
    }
    fn tsc(&self) -> u64 {
        1_000_000
    }
    fn tsc_khz(&self) -> u64 {
        50_000
    }
}

/// A domain with RAM at gfn 0.., the builder's identity page tables in it,
/// and a vCPU in 64-bit mode with CR0.WP set.
fn setup(iommu: bool) -> (Domain, FakeHost, VcpuContext) {
    let mut host = FakeHost::default();
    let cfg = P2mConfig {
        honour_guest_mem_types: iommu,
        host_mtrr: MtrrState::new_default_wb(),
        ept_2m: true,
        ept_1g: true,
    };
    let mut p2m = P2m::new(cfg, &mut host).unwrap();
    let ram = Mapping {
        p2m_type: P2mType::RamRw,
        owner: 1,
        special: false,
    };
    let pages = RAM_MIB << 8;
    for gfn in (0..pages).step_by(512) {
        p2m.set_entry(&mut host, gfn, RAM_MFN_BASE + gfn, 9, Some(ram))
            .unwrap();
    }
    let dom = Domain::new(1, "t".into(), p2m, pages, 1, &mut host).unwrap();
    write_gpa(
        &dom.p2m,
        &mut host,
        builder::PML4_GPA,
        &builder::identity_page_tables(),
    )
    .unwrap();
    let vcpu = VcpuContext {
        vcpu_id: 0,
        cpl: 0,
        paging: PagingState {
            cr0: 0x8001_0031,
            cr3: builder::PML4_GPA,
            cr4: 0x20,
            efer: 0x500,
        },
    };
    (dom, host, vcpu)
}

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

const UNMAPPED_GVA: u64 = 0xFFFF_8000_DEAD_0000;
const NONCANONICAL_GVA: u64 = 0x0000_8000_0000_0000;
/// Mapped by the guest's page tables (identity 0-4 GiB) but not guest RAM.
const BEYOND_RAM_GVA: u64 = 0x8000_0000;

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
    dom.p2m
        .guest_mtrr_write(&mut host, 0x200, 0xF000_0000)
        .unwrap();
    dom.p2m
        .guest_mtrr_write(&mut host, 0x201, 0xF_F000_0800)
        .unwrap();
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
