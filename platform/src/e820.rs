//! The e820 memory map of an HVM domain, for `boot_params.e820_table`: RAM below the
//! EBDA, the reserved BIOS area (holding the ACPI tables), RAM from 1 MiB to the end of guest
//! RAM, and the reserved Xen special pages. The PCI hole stays a hole, so that Linux can place
//! (and keep) the Xen platform device's BAR1 there.

use crate::layout;

/// e820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// e820 type: ACPI reclaimable (not used here: the tables sit in a reserved range).
pub const E820_ACPI: u32 = 3;

/// One e820 entry; `loader::boot_params` packs them into the zero page.
pub use loader::E820Entry;

/// Why a RAM size cannot be laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E820Error {
    /// More than [`layout::RAM_MAX`]: RAM would reach into the PCI hole.
    TooLarge,
    /// Not above 1 MiB: there would be no RAM for the kernel.
    TooSmall,
    /// Not a multiple of 4 KiB.
    Unaligned,
}

/// The map for `ram_bytes` of guest RAM, sorted and without overlaps.
pub fn e820_map(ram_bytes: u64) -> Result<[E820Entry; 4], E820Error> {
    if ram_bytes > layout::RAM_MAX {
        return Err(E820Error::TooLarge);
    }
    if ram_bytes <= layout::LOW_RESERVED_END {
        return Err(E820Error::TooSmall);
    }
    if ram_bytes & 0xFFF != 0 {
        return Err(E820Error::Unaligned);
    }
    let range = |addr: u64, end: u64, kind| E820Entry {
        addr,
        size: end - addr,
        kind,
    };
    Ok([
        range(0, layout::LOW_RESERVED_START, E820_RAM),
        range(
            layout::LOW_RESERVED_START,
            layout::LOW_RESERVED_END,
            E820_RESERVED,
        ),
        range(layout::LOW_RESERVED_END, ram_bytes, E820_RAM),
        range(
            layout::SPECIAL_PAGES.0,
            layout::SPECIAL_PAGES.1,
            E820_RESERVED,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_for_one_gib() {
        let m = e820_map(1 << 30).unwrap();
        assert_eq!(
            m.map(|e| (e.addr, e.end(), e.kind)),
            [
                (0, 0x9_F000, E820_RAM),
                (0x9_F000, 0x10_0000, E820_RESERVED),
                (0x10_0000, 1 << 30, E820_RAM),
                (0xFEFF_8000, 0xFEFF_A000, E820_RESERVED),
            ]
        );
        // The ACPI tables are inside a reserved range; the PCI hole and the LAPIC are not mapped.
        let acpi = layout::ACPI_TABLES_GPA;
        assert!(m
            .iter()
            .any(|e| e.kind == E820_RESERVED && e.addr <= acpi && acpi < e.end()));
        for addr in [layout::PLATFORM_BAR1_GPA, layout::LAPIC_GPA] {
            assert!(m.iter().all(|e| !(e.addr..e.end()).contains(&addr)));
        }
    }

    #[test]
    fn sizes_at_the_limits() {
        assert_eq!(e820_map(layout::RAM_MAX).unwrap()[2].end(), 0xF000_0000);
        assert_eq!(e820_map(layout::RAM_MAX + 0x1000), Err(E820Error::TooLarge));
        assert_eq!(e820_map(0x10_0000), Err(E820Error::TooSmall));
        assert_eq!(e820_map(0x10_1000).unwrap()[2].size, 0x1000);
        assert_eq!(e820_map((1 << 30) + 1), Err(E820Error::Unaligned));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn maps_are_sorted_disjoint_and_cover_ram(pages in 0x101u64..=0xF_0000) {
            let ram = pages << 12;
            let m = e820_map(ram).unwrap();
            for w in m.windows(2) {
                prop_assert!(w[0].end() <= w[1].addr);
            }
            let ram_bytes: u64 = m.iter().filter(|e| e.kind == E820_RAM).map(|e| e.size).sum();
            prop_assert_eq!(ram_bytes, ram - 0x61000);
            prop_assert!(m.iter().all(|e| e.size > 0));
        }
    }
}
