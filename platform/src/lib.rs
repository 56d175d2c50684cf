//! Emulated platform devices of an HVM domain, as plain data: PCI configuration mechanism 1
//! with a host bridge and the Xen platform device, the Xen unplug ports, the local APIC, ACPI
//! tables, the e820 map and hvmloader's MTRR layout.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod lapic;
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

/// The guest MTRRs as Xen's hvmloader programs them, as (MSR, value) pairs:
/// default type WB with fixed ranges on, the VGA window 0xA0000-0xBFFFF UC,
/// and variable range 0 making the PCI hole (0xF0000000-0xFFFFFFFF) UC.
pub fn mtrr_layout(phys_bits: u32) -> [(u32, u64); 4] {
    const UC: u64 = 0;
    let phys_mask = (1u64 << phys_bits.clamp(36, 52)) - 1;
    let hole_size = (1u64 << 32) - layout::PCI_HOLE_START;
    [
        (0x2FF, (1 << 11) | (1 << 10) | 6), // MTRRdefType: E, FE, default WB
        (0x259, UC),                        // MTRRfix16K_A0000: VGA UC
        (0x200, layout::PCI_HOLE_START | UC),
        (0x201, (!(hole_size - 1) & phys_mask) | (1 << 11)),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn mtrr_layout_covers_the_pci_hole() {
        let l = super::mtrr_layout(39);
        assert_eq!(l[2], (0x200, 0xF000_0000));
        assert_eq!(l[3], (0x201, 0x7F_F000_0800));
        assert_eq!(l[0].1 & 0xFF, 6);
    }
}
