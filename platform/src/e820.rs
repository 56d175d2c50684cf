//! The e820 memory maps of an HVM and a PVH domain, for `boot_params.e820_table`,
//! `hvm_start_info`'s memmap and `XENMEM_memory_map`.
//!
//! [`e820_map`], HVM: RAM below the EBDA, the reserved BIOS area (holding the ACPI tables),
//! RAM from 1 MiB to the end of guest RAM, and the reserved Xen special pages. The PCI hole
//! stays a hole, so that Linux can place (and keep) the Xen platform device's BAR1 there.
//!
//! [`pvh_e820_map`], PVH: as libxl's `domain_construct_memmap` lays out a PVH domU, RAM from 0
//! with no legacy BIOS areas (no EBDA, VGA or ROM holes: Linux's PVH entry reserves
//! 0xA0000-0x100000 itself), the ACPI tables as ACPI NVS, and Xen's special-page region
//! reserved. libxl puts the tables at 0xFC000000, above RAM; here they stay at
//! [`layout::ACPI_TABLES_GPA`], so RAM runs on past them from 0xF0000.

use crate::layout;

/// e820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// e820 type: ACPI reclaimable (not used here: the tables sit in a reserved or NVS range).
pub const E820_ACPI: u32 = 3;
/// e820 type: ACPI NVS, the type libxl gives a PVH domU's ACPI tables.
pub const E820_NVS: u32 = 4;

/// One e820 entry; `loader::boot_params` packs them into the zero page.
pub use loader::E820Entry;

/// Why a RAM size cannot be laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E820Error {
    /// More than [`layout::RAM_MAX`]: RAM would reach into the PCI hole (a PVH domain keeps
    /// the same limit, below the LAPIC and the special pages; libxl's is 0xFC000000).
    TooLarge,
    /// Not above 1 MiB: there would be no RAM for the kernel.
    TooSmall,
    /// Not a multiple of 4 KiB.
    Unaligned,
}

/// Checks that `ram_bytes` of guest RAM can be laid out (for either map).
fn check(ram_bytes: u64) -> Result<(), E820Error> {
    if ram_bytes > layout::RAM_MAX {
        return Err(E820Error::TooLarge);
    }
    if ram_bytes <= layout::LOW_RESERVED_END {
        return Err(E820Error::TooSmall);
    }
    if ram_bytes & 0xFFF != 0 {
        return Err(E820Error::Unaligned);
    }
    Ok(())
}

/// The entry for `[addr, end)`.
fn range(addr: u64, end: u64, kind: u32) -> E820Entry {
    E820Entry {
        addr,
        size: end - addr,
        kind,
    }
}

/// The HVM map for `ram_bytes` of guest RAM, sorted and without overlaps.
pub fn e820_map(ram_bytes: u64) -> Result<[E820Entry; 4], E820Error> {
    check(ram_bytes)?;
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

/// The PVH map for `ram_bytes` of guest RAM, sorted and without overlaps: RAM below
/// [`layout::ACPI_TABLES_GPA`], the [`layout::ACPI_TABLES_MAX`] bytes of the ACPI area as
/// [`E820_NVS`], RAM from there to `ram_bytes`, and [`layout::PVH_SPECIAL_REGION`] reserved.
/// Same limits as [`e820_map`].
pub fn pvh_e820_map(ram_bytes: u64) -> Result<[E820Entry; 4], E820Error> {
    check(ram_bytes)?;
    let acpi_end = layout::ACPI_TABLES_GPA + layout::ACPI_TABLES_MAX as u64;
    Ok([
        range(0, layout::ACPI_TABLES_GPA, E820_RAM),
        range(layout::ACPI_TABLES_GPA, acpi_end, E820_NVS),
        range(acpi_end, ram_bytes, E820_RAM),
        range(
            layout::PVH_SPECIAL_REGION.0,
            layout::PVH_SPECIAL_REGION.1,
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
    fn pvh_map_for_one_gib() {
        let m = pvh_e820_map(1 << 30).unwrap();
        assert_eq!(
            m.map(|e| (e.addr, e.end(), e.kind)),
            [
                (0, 0xE_0000, E820_RAM),
                (0xE_0000, 0xF_0000, E820_NVS),
                (0xF_0000, 1 << 30, E820_RAM),
                (0xFEFF_8000, 0xFF00_0000, E820_RESERVED),
            ]
        );
        // No legacy hole: RAM from 0 up to the ACPI tables, which are NVS as libxl has them.
        let acpi = layout::ACPI_TABLES_GPA;
        let acpi_end = acpi + layout::ACPI_TABLES_MAX as u64;
        let nvs = m.iter().find(|e| e.kind == E820_NVS).unwrap();
        assert_eq!((nvs.addr, nvs.end()), (acpi, acpi_end));
        for addr in [0x9_F000, 0xA_0000, 0xC_0000] {
            assert!(m
                .iter()
                .any(|e| e.kind == E820_RAM && (e.addr..e.end()).contains(&addr)));
        }
        // The console and xenstore rings are reserved; the LAPIC is not mapped.
        let (lo, hi) = layout::SPECIAL_PAGES;
        assert!(m
            .iter()
            .any(|e| e.kind == E820_RESERVED && e.addr <= lo && hi <= e.end()));
        assert!(m
            .iter()
            .all(|e| !(e.addr..e.end()).contains(&layout::LAPIC_GPA)));
    }

    #[test]
    fn pvh_sizes_at_the_limits() {
        assert_eq!(pvh_e820_map(layout::RAM_MAX).unwrap()[2].end(), 0xF000_0000);
        assert_eq!(
            pvh_e820_map(layout::RAM_MAX + 0x1000),
            Err(E820Error::TooLarge)
        );
        assert_eq!(pvh_e820_map(0x10_0000), Err(E820Error::TooSmall));
        assert_eq!(pvh_e820_map(0x10_1000).unwrap()[2].size, 0x1_1000);
        assert_eq!(pvh_e820_map((1 << 30) + 1), Err(E820Error::Unaligned));
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

        #[test]
        fn pvh_maps_are_sorted_disjoint_and_cover_ram(pages in 0x101u64..=0xF_0000) {
            let ram = pages << 12;
            let m = pvh_e820_map(ram).unwrap();
            for w in m.windows(2) {
                prop_assert!(w[0].end() <= w[1].addr);
            }
            // Everything below `ram` is RAM except the ACPI area.
            let ram_bytes: u64 = m.iter().filter(|e| e.kind == E820_RAM).map(|e| e.size).sum();
            prop_assert_eq!(ram_bytes, ram - layout::ACPI_TABLES_MAX as u64);
            prop_assert!(m[..3].iter().all(|e| e.end() <= ram));
            prop_assert!(m.iter().all(|e| e.size > 0));
        }
    }
}
