//! The guest MTRRs as Xen's hvmloader programs them (`tools/firmware/hvmloader/cacheattr.c`):
//! every fixed range WB except the VGA window 0xA0000-0xBFFFF, one variable range making the
//! PCI hole 0xF0000000-0xFFFFFFFF UC, and MTRRdefType enabled with fixed ranges and default WB.
//! (hvmloader makes the VGA window WC when MTRRcap.WC is set; UC here, nothing maps it.)

use crate::layout;

/// IA32_MTRR_DEF_TYPE.
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2FF;
/// IA32_MTRR_PHYSBASE0 (PHYSMASK0 is the next MSR).
pub const MSR_MTRR_PHYS_BASE0: u32 = 0x200;
/// IA32_MTRR_PHYSMASK0.
pub const MSR_MTRR_PHYS_MASK0: u32 = 0x201;
/// IA32_MTRR_FIX64K_00000: eight 64 KiB ranges from 0.
pub const MSR_MTRR_FIX64K_00000: u32 = 0x250;
/// IA32_MTRR_FIX16K_80000: eight 16 KiB ranges from 0x80000.
pub const MSR_MTRR_FIX16K_80000: u32 = 0x258;
/// IA32_MTRR_FIX16K_A0000: eight 16 KiB ranges from 0xA0000 (the VGA window).
pub const MSR_MTRR_FIX16K_A0000: u32 = 0x259;
/// IA32_MTRR_FIX4K_C0000; the eight 4K MSRs run to IA32_MTRR_FIX4K_F8000 (0x26F).
pub const MSR_MTRR_FIX4K_C0000: u32 = 0x268;
/// Memory type: uncacheable.
pub const MTRR_TYPE_UC: u8 = 0;
/// Memory type: write-back.
pub const MTRR_TYPE_WB: u8 = 6;
/// IA32_MTRR_DEF_TYPE.E: MTRRs enabled.
pub const MTRR_DEF_TYPE_E: u64 = 1 << 11;
/// IA32_MTRR_DEF_TYPE.FE: fixed-range MTRRs enabled.
pub const MTRR_DEF_TYPE_FE: u64 = 1 << 10;
/// IA32_MTRR_PHYSMASKn.V: the variable range is valid.
pub const MTRR_PHYS_MASK_VALID: u64 = 1 << 11;

/// A fixed-range MTRR value with all eight ranges of type `t`.
const fn fixed(t: u8) -> u64 {
    t as u64 * 0x0101_0101_0101_0101
}

/// The MTRR writes, in hvmloader's order (fixed ranges, variable range 0, then MTRRdefType),
/// for a guest whose physical addresses have `phys_bits` bits (CPUID 0x80000008 EAX bits 7:0;
/// clamped to 36..=52).
pub fn mtrr_layout(phys_bits: u32) -> [(u32, u64); 14] {
    let addr_mask = ((1u64 << phys_bits.clamp(36, 52)) - 1) & !0xFFF;
    let hole_size = layout::PCI_HOLE_END - layout::PCI_HOLE_START;
    let wb = fixed(MTRR_TYPE_WB);
    let f4k = |i: u32| (MSR_MTRR_FIX4K_C0000 + i, wb);
    [
        (MSR_MTRR_FIX64K_00000, wb),
        (MSR_MTRR_FIX16K_80000, wb),
        (MSR_MTRR_FIX16K_A0000, fixed(MTRR_TYPE_UC)),
        f4k(0),
        f4k(1),
        f4k(2),
        f4k(3),
        f4k(4),
        f4k(5),
        f4k(6),
        f4k(7),
        (
            MSR_MTRR_PHYS_BASE0,
            layout::PCI_HOLE_START | MTRR_TYPE_UC as u64,
        ),
        (
            MSR_MTRR_PHYS_MASK0,
            (!(hole_size - 1) & addr_mask) | MTRR_PHYS_MASK_VALID,
        ),
        (
            MSR_MTRR_DEF_TYPE,
            MTRR_DEF_TYPE_E | MTRR_DEF_TYPE_FE | MTRR_TYPE_WB as u64,
        ),
    ]
}

/// The MTRRs a PVH domain starts with, as Xen sets them when no firmware will
/// (`hvm_vcpu_cacheattr_init` for a PVH domain): MTRRs enabled, default type WB, fixed
/// ranges off, no variable range.
pub fn pvh_mtrr_layout() -> [(u32, u64); 1] {
    [(MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_E | MTRR_TYPE_WB as u64)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory type of `addr` under `msrs`, as the SDM's MTRR precedence rules give it.
    fn type_of(msrs: &[(u32, u64)], addr: u64) -> u8 {
        let get = |m: u32| msrs.iter().find(|e| e.0 == m).map(|e| e.1).unwrap_or(0);
        let def = get(MSR_MTRR_DEF_TYPE);
        assert_ne!(def & MTRR_DEF_TYPE_E, 0);
        if addr < 0x10_0000 && def & MTRR_DEF_TYPE_FE != 0 {
            let (msr, byte) = match addr {
                0..=0x7_FFFF => (MSR_MTRR_FIX64K_00000, addr >> 16),
                0x8_0000..=0xB_FFFF => (
                    MSR_MTRR_FIX16K_80000 + ((addr - 0x8_0000) >> 17) as u32,
                    (addr >> 14) & 7,
                ),
                _ => (
                    MSR_MTRR_FIX4K_C0000 + ((addr - 0xC_0000) >> 15) as u32,
                    (addr >> 12) & 7,
                ),
            };
            return (get(msr) >> (8 * byte)) as u8;
        }
        let base = get(MSR_MTRR_PHYS_BASE0);
        let mask = get(MSR_MTRR_PHYS_MASK0);
        if mask & MTRR_PHYS_MASK_VALID != 0 && (addr & mask & !0xFFF) == (base & mask & !0xFFF) {
            return base as u8;
        }
        def as u8
    }

    #[test]
    fn hvmloader_layout() {
        let l = mtrr_layout(39);
        assert_eq!(l.last(), Some(&(MSR_MTRR_DEF_TYPE, 0xC06)), "defType last");
        assert!(l.contains(&(MSR_MTRR_PHYS_BASE0, 0xF000_0000)));
        assert!(l.contains(&(MSR_MTRR_PHYS_MASK0, 0x7F_F000_0800)));
        assert!(l.contains(&(MSR_MTRR_FIX4K_C0000 + 7, 0x0606_0606_0606_0606)));
        let types = [
            (0, MTRR_TYPE_WB),
            (0x9_F000, MTRR_TYPE_WB),
            (0xA_0000, MTRR_TYPE_UC),
            (0xB_F000, MTRR_TYPE_UC),
            (0xC_0000, MTRR_TYPE_WB),
            (0xE_0000, MTRR_TYPE_WB),
            (0xF_F000, MTRR_TYPE_WB),
            (0x10_0000, MTRR_TYPE_WB),
            (0xEFFF_F000, MTRR_TYPE_WB),
            (0xF000_0000, MTRR_TYPE_UC),
            (0xFEE0_0000, MTRR_TYPE_UC),
            (0xFFFF_F000, MTRR_TYPE_UC),
            (0x1_0000_0000, MTRR_TYPE_WB),
            (0x7F_F000_0000, MTRR_TYPE_WB),
        ];
        for (addr, t) in types {
            assert_eq!(type_of(&l, addr), t, "type of {addr:#x}");
        }
    }

    #[test]
    fn mask_follows_the_address_width() {
        let mask = |bits| mtrr_layout(bits)[12].1;
        assert_eq!(mask(36), 0xF_F000_0800);
        assert_eq!(mask(46), 0x3FFF_F000_0800);
        assert_eq!(mask(52), 0xF_FFFF_F000_0800);
        assert_eq!(mask(20), mask(36), "clamped");
        assert_eq!(mask(64), mask(52), "clamped");
    }

    #[test]
    fn pvh_is_write_back_by_default() {
        assert_eq!(pvh_mtrr_layout(), [(MSR_MTRR_DEF_TYPE, 0x806)]);
    }
}
