//! An in-memory [`Host`] for host tests of the hypercall handlers and of the
//! backends built on them (feature `testhost`).

use crate::Host;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use p2m::testmem::TestMem;
use p2m::EptTableMemory;

/// The fake TSC frequency (2.5 GHz).
pub const TSC_KHZ: u64 = 2_500_000;

/// Fake host: EPT tables from `TestMem`, other frames as a sparse map, a TSC the
/// test moves.
pub struct FakeHost {
    /// EPT table frames.
    pub tables: TestMem,
    /// Guest RAM and special pages written so far, by frame.
    pub pages: BTreeMap<u64, Box<[u8; 4096]>>,
    /// The last frame `alloc_page` handed out (above 0x10_0000).
    pub next_page: u64,
    /// Frames given back with `free_page`.
    pub freed: Vec<u64>,
    /// Console lines, by domain.
    pub console: Vec<(u16, String)>,
    /// The TSC the test moves.
    pub tsc: u64,
    /// The TSC frequency.
    pub tsc_khz: u64,
    /// Every `write_phys` while `logging` is set.
    pub log: Vec<(u64, Vec<u8>)>,
    /// Record writes in `log`.
    pub logging: bool,
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost {
            tables: TestMem::default(),
            pages: BTreeMap::new(),
            next_page: 0,
            freed: Vec::new(),
            console: Vec::new(),
            tsc: 1_000_000,
            tsc_khz: TSC_KHZ,
            log: Vec::new(),
            logging: false,
        }
    }
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
        assert!(off + buf.len() <= 4096, "read crosses a page");
        match self.pages.get(&(hpa / 4096)) {
            Some(p) => buf.copy_from_slice(&p[off..off + buf.len()]),
            None => buf.fill(0),
        }
    }
    fn write_phys(&mut self, hpa: u64, data: &[u8]) {
        let off = (hpa % 4096) as usize;
        assert!(off + data.len() <= 4096, "write crosses a page");
        if self.logging {
            self.log.push((hpa, data.to_vec()));
        }
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
        self.freed.push(hpa / 4096);
    }
    fn console_line(&mut self, domid: u16, line: &str) {
        self.console.push((domid, line.to_string()));
    }
    fn wallclock(&self) -> (u64, u32) {
        (1_795_588_215, 250)
    }
    fn tsc(&self) -> u64 {
        self.tsc
    }
    fn tsc_khz(&self) -> u64 {
        self.tsc_khz
    }
}

/// Guest RAM of [`test_domain`], in MiB.
pub const RAM_MIB: u64 = 8;
/// The host frame backing guest frame 0 in [`test_domain`].
pub const RAM_MFN_BASE: u64 = 0x4_0000;

/// A domain `domid` with [`RAM_MIB`] of RAM at gfn 0.. (2 MiB leaves), the
/// builder's identity page tables in it, `vcpus` vCPUs, and the context of
/// vCPU 0 in 64-bit mode with CR0.WP set; `iommu` as the config key.
pub fn test_domain(
    domid: u16,
    vcpus: u32,
    iommu: bool,
) -> (crate::Domain, FakeHost, crate::VcpuContext) {
    test_domain_with_extents(domid, vcpus, iommu, p2m::DEFAULT_MAX_EXTENTS)
}

/// [`test_domain`] with a p2m of at most `max_extents` runs.
pub fn test_domain_with_extents(
    domid: u16,
    vcpus: u32,
    iommu: bool,
    max_extents: usize,
) -> (crate::Domain, FakeHost, crate::VcpuContext) {
    use crate::guest_mem::{write_gpa, PagingState};
    use p2m::{Mapping, MtrrState, P2m, P2mConfig, P2mType};
    let mut host = FakeHost::default();
    let cfg = P2mConfig {
        honour_guest_mem_types: iommu,
        host_mtrr: MtrrState::new_default_wb(),
        ept_2m: true,
        ept_1g: true,
        max_extents,
        max_tables: P2mConfig::max_tables_for(RAM_MIB << 8),
    };
    let mut p2m = P2m::new(cfg, &mut host).unwrap();
    let ram = Mapping {
        p2m_type: P2mType::RamRw,
        owner: domid,
        special: false,
    };
    let pages = RAM_MIB << 8;
    for gfn in (0..pages).step_by(512) {
        p2m.set_entry(&mut host, gfn, RAM_MFN_BASE + gfn, 9, Some(ram))
            .unwrap();
    }
    let dom = crate::Domain::new(domid, "t".into(), p2m, pages, vcpus, &mut host).unwrap();
    write_gpa(
        &dom.p2m,
        &mut host,
        crate::builder::PML4_GPA,
        &crate::builder::identity_page_tables(),
    )
    .unwrap();
    let ctx = crate::VcpuContext {
        vcpu_id: 0,
        cpl: 0,
        paging: PagingState {
            cr0: 0x8001_0031,
            cr3: crate::builder::PML4_GPA,
            cr4: 0x20,
            efer: 0x500,
        },
        compat: false,
        interrupts_blocked: false,
    };
    (dom, host, ctx)
}

/// Programs the guest's variable MTRR 0 to make 0xF0000000-0xFFFFFFFF (the PCI
/// hole, where Linux puts the platform device's BAR1) UC, as hvmloader does.
pub fn make_pci_hole_uc(dom: &mut crate::Domain, host: &mut FakeHost) {
    dom.p2m.guest_mtrr_write(host, 0x200, 0xF000_0000).unwrap();
    dom.p2m
        .guest_mtrr_write(host, 0x201, 0xF_F000_0800)
        .unwrap();
}
