//! Emulated platform devices of an HVM domain, as plain data with no hardware access: PCI
//! configuration mechanism #1 with a host bridge and the Xen platform device, the Xen unplug
//! ports, a legacy 8259 pair that never interrupts, the x2APIC local APIC, the ACPI tables and
//! PM1 registers, the e820 map and hvmloader's MTRR layout.
//!
//! # How the hypervisor uses each piece
//!
//! | Piece | When | Call |
//! |---|---|---|
//! | [`acpi::build_tables`] | domain build | copy `bytes` to [`layout::ACPI_TABLES_GPA`], put `rsdp_gpa` in `boot_params.acpi_rsdp_addr` |
//! | [`e820::e820_map`] | domain build | the `boot_params` e820 table (packed by `loader::boot_params`) |
//! | [`mtrr::mtrr_layout`] | domain build | write each (MSR, value) through the guest-MTRR model |
//! | [`lapic::Lapic::new`], [`lapic::apic_base_reset_value`] | vCPU creation | the vCPU starts in x2APIC mode |
//! | [`lapic::Lapic::read_msr`] / [`lapic::Lapic::write_msr`] | RDMSR / WRMSR exit | `None`: not the APIC's MSR; `Some(Err(()))`: inject #GP; an [`lapic::Ipi`] from an ICR write goes to [`lapic::Ipi::targets`] and each target's model |
//! | [`lapic::Lapic::accept`] | an IPI or other fixed interrupt for this vCPU | sets IRR |
//! | [`lapic::Lapic::highest_deliverable`], [`lapic::Lapic::start_service`] | before VM entry, interrupt window open | inject the vector, then move it IRR → ISR |
//! | [`lapic::Lapic::next_timer_deadline_tsc`], [`lapic::Lapic::poll_timer`] | scheduling / timer expiry | arm the host timer; fire the LVT timer |
//! | `handles_port` + `io_read` / `io_write` of [`pci::PciBus`], [`unplug::PlatformPorts`], [`acpi::PmRegisters`], [`pic::Pic`] | I/O instruction exit | ports no model claims read all-ones and ignore writes |
//! | [`pci::PciBus::io_write`] returning a [`pci::ResetRequest`] | OUT to 0xCF9 (also the FADT's reset register) | reboot the domain |
//! | [`acpi::PmRegisters::io_write`] returning [`acpi::SleepRequest::S5`] | OUT to PM1a_CNT | power the domain off |
//! | [`pci::PciBus::platform_bar1`] | `XENMEM_add_to_physmap` of grant frames | where the guest placed the Xen platform device's MMIO BAR |
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod e820;
pub mod lapic;
pub mod mtrr;
pub mod pci;
pub mod pic;
pub mod unplug;

pub use mtrr::mtrr_layout;

/// The guest-physical (and I/O port) layout of an HVM domain, shared by the models and the
/// hypervisor.
pub mod layout {
    /// Guest RAM is `[0, ram_bytes)` with `ram_bytes` at most this: it ends below the PCI hole.
    pub const RAM_MAX: u64 = 0xF000_0000;
    /// Start of the reserved low area (EBDA, VGA, option ROMs, BIOS); RAM below it.
    pub const LOW_RESERVED_START: u64 = 0x9_F000;
    /// End of the reserved low area: RAM again from 1 MiB.
    pub const LOW_RESERVED_END: u64 = 0x10_0000;
    /// Where the ACPI tables go (in the reserved BIOS area).
    pub const ACPI_TABLES_GPA: u64 = 0xE_0000;
    /// The most bytes the ACPI tables may take.
    pub const ACPI_TABLES_MAX: usize = 0x1_0000;
    /// Start of the PCI MMIO hole (UC in the guest's MTRRs, not in the e820 map).
    pub const PCI_HOLE_START: u64 = 0xF000_0000;
    /// End (exclusive) of the PCI MMIO hole: 4 GiB.
    pub const PCI_HOLE_END: u64 = 0x1_0000_0000;
    /// Guest-physical address of the Xen platform device's BAR1 (prefetchable MMIO).
    pub const PLATFORM_BAR1_GPA: u64 = 0xF000_0000;
    /// Size of the Xen platform device's BAR1 (16 MiB).
    pub const PLATFORM_BAR1_SIZE: u64 = 16 << 20;
    /// I/O port of the Xen platform device's BAR0.
    pub const PLATFORM_BAR0_PORT: u16 = 0xC000;
    /// Size of the Xen platform device's BAR0 in ports.
    pub const PLATFORM_BAR0_SIZE: u16 = 0x100;
    /// Guest frame of the console ring (QEMU's `XEN_SPECIAL_AREA`).
    pub const XEN_CONSOLE_GFN: u64 = 0xF_EFF8;
    /// Guest frame of the xenstore ring.
    pub const XEN_STORE_GFN: u64 = 0xF_EFF9;
    /// The Xen special pages (console and xenstore rings) as a byte range, e820-reserved.
    pub const SPECIAL_PAGES: (u64, u64) = (0xFEFF_8000, 0xFEFF_A000);
    /// The local APIC's (unused, x2APIC mode) MMIO base, as IA32_APIC_BASE reports it.
    pub const LAPIC_GPA: u64 = 0xFEE0_0000;
    /// The range a PVH domain's memory map reserves for the Xen special pages: Xen's eight
    /// (`X86_HVM_NR_SPECIAL_PAGES` below `X86_HVM_END_SPECIAL_REGION`, frame 0xFF000, as
    /// libxl's `domain_construct_memmap` reserves them), holding [`SPECIAL_PAGES`].
    pub const PVH_SPECIAL_REGION: (u64, u64) = (0xFEFF_8000, 0xFF00_0000);

    // The layout's invariants, checked at compile time.
    const _: () = {
        assert!(RAM_MAX == PCI_HOLE_START);
        assert!(PLATFORM_BAR1_GPA >= PCI_HOLE_START);
        assert!(
            PLATFORM_BAR1_GPA & (PLATFORM_BAR1_SIZE - 1) == 0,
            "BAR alignment"
        );
        assert!(PLATFORM_BAR1_GPA + PLATFORM_BAR1_SIZE <= LAPIC_GPA);
        assert!(
            PLATFORM_BAR0_PORT & (PLATFORM_BAR0_SIZE - 1) == 0,
            "BAR alignment"
        );
        assert!(SPECIAL_PAGES.0 >> 12 == XEN_CONSOLE_GFN);
        assert!(SPECIAL_PAGES.1 >> 12 == XEN_STORE_GFN + 1);
        assert!(SPECIAL_PAGES.0 >= LAPIC_GPA + 0x1000 && SPECIAL_PAGES.1 <= PCI_HOLE_END);
        let pvh = PVH_SPECIAL_REGION;
        assert!(pvh.0 <= SPECIAL_PAGES.0 && SPECIAL_PAGES.1 <= pvh.1);
        assert!(pvh.0 >= LAPIC_GPA + 0x1000 && pvh.1 <= PCI_HOLE_END);
        assert!(ACPI_TABLES_GPA >= LOW_RESERVED_START);
        assert!(ACPI_TABLES_GPA + ACPI_TABLES_MAX as u64 <= LOW_RESERVED_END);
    };
}
