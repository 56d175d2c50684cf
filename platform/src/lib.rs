//! Emulated platform devices of an HVM domain, as plain data: PCI configuration mechanism 1
//! with a host bridge and the Xen platform device, the Xen unplug ports, the local APIC, ACPI
//! tables, the e820 map and hvmloader's MTRR layout.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod pci;
pub mod pic;

/// The guest-physical layout of an HVM domain.
pub mod layout {
    /// Guest RAM is `[0, size)` and ends below the PCI hole.
    pub const RAM_MAX: u64 = 0xF000_0000;
    /// Start of the PCI MMIO hole (UC in the guest's MTRRs).
    pub const PCI_HOLE_START: u64 = 0xF000_0000;
    /// Where the ACPI tables go (in the reserved BIOS area).
    pub const ACPI_TABLES_GPA: u64 = 0xE_0000;
    /// Start of the reserved low area (EBDA, VGA, BIOS).
    pub const LOW_RESERVED_START: u64 = 0x9_F000;
    /// The Xen special pages (console and xenstore rings), e820-reserved.
    pub const SPECIAL_PAGES: (u64, u64) = (0xFEFF_8000, 0xFEFF_A000);
}
