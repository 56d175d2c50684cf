//! A model of the x86 MTRRs (the guest's virtual ones, or a copy of the host's), with memory-type
//! lookups over whole ranges computed from range boundaries, never per frame.

use crate::{Coverage, MemType, P2mError};
use core::ops::Range;

/// IA32_MTRRCAP (read-only).
pub const MSR_MTRR_CAP: u32 = 0xFE;
/// IA32_MTRR_DEF_TYPE: E (bit 11), FE (bit 10), default type (bits 7:0).
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2FF;
/// IA32_MTRR_PHYSBASE0; PHYSBASEn = 0x200 + 2n, PHYSMASKn = 0x201 + 2n.
pub const MSR_MTRR_PHYS_BASE0: u32 = 0x200;
/// IA32_MTRR_FIX64K_00000: eight 64 KiB ranges from 0.
pub const MSR_MTRR_FIX_64K: u32 = 0x250;
/// IA32_MTRR_FIX16K_80000 (0x258) and IA32_MTRR_FIX16K_A0000 (0x259).
pub const MSR_MTRR_FIX_16K: u32 = 0x258;
/// IA32_MTRR_FIX4K_C0000 .. IA32_MTRR_FIX4K_F8000: 0x268 ..= 0x26F.
pub const MSR_MTRR_FIX_4K: u32 = 0x268;
/// Variable ranges an [`MtrrState`] can hold (hosts have up to this many).
pub const MAX_VAR_RANGES: usize = 16;
/// Variable ranges the guest's MTRRcap reports.
pub const GUEST_MTRR_VCNT: u8 = 8;

/// Address bits 51:12 of PHYSBASE/PHYSMASK.
const ADDR_BITS: u64 = 0x000F_FFFF_FFFF_F000;
const DEF_E: u64 = 1 << 11;
const DEF_FE: u64 = 1 << 10;
const MASK_VALID: u64 = 1 << 11;
const CAP_FIX: u64 = 1 << 8;
const CAP_WC: u64 = 1 << 10;
/// Frames below 1 MiB, governed by fixed ranges when they are enabled.
const FIXED_END: u64 = 0x100;
/// Fixed-range MSRs in unit order: unit `8 * i + byte` belongs to `FIXED_MSRS[i]`.
const FIXED_MSRS: [u32; 11] = [
    0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F,
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct VarRange {
    base: u64,
    mask: u64,
}

/// How a variable range (raw PHYSBASE, PHYSMASK) covers the aligned block of `1 << order`
/// frames at `start`. Exact for any mask, contiguous or not: the block's low `order` frame bits
/// take every value, so it is fully matched when the mask has none of them and the high bits
/// agree, partly matched when the mask has some of them and the high bits agree.
pub(crate) fn var_block_coverage(base: u64, mask: u64, start: u64, order: u32) -> Coverage {
    if mask & MASK_VALID == 0 {
        return Coverage::None;
    }
    let m = (mask & ADDR_BITS) >> 12;
    let b = (base & ADDR_BITS) >> 12;
    let low = if order >= 64 {
        u64::MAX
    } else {
        (1u64 << order) - 1
    };
    if (start ^ b) & m & !low != 0 {
        Coverage::None
    } else if m & low == 0 {
        Coverage::Full
    } else {
        Coverage::Partial
    }
}

fn fixed_unit(gfn: u64) -> usize {
    match gfn {
        0..0x80 => (gfn / 16) as usize,
        0x80..0xC0 => 8 + ((gfn - 0x80) / 4) as usize,
        _ => 24 + (gfn - 0xC0) as usize,
    }
}

fn fixed_unit_start(unit: usize) -> u64 {
    let u = unit as u64;
    match unit {
        0..8 => u * 16,
        8..24 => 0x80 + (u - 8) * 4,
        _ => 0xC0 + (u - 24),
    }
}

fn mem_type_bits(v: u64) -> MemType {
    MemType::try_from((v & 0xFF) as u8).unwrap_or(MemType::Uc)
}

fn valid_type(v: u64) -> bool {
    MemType::try_from((v & 0xFF) as u8).is_ok()
}

/// The effective type of a set of overlapping MTRR types (bit `t` set for type `t`): UC wins,
/// WT wins over WB, other mixtures are undefined and taken as UC.
fn combine(types: u8) -> MemType {
    const UC: u8 = 1 << MemType::Uc as u8;
    const WT_WB: u8 = (1 << MemType::Wt as u8) | (1 << MemType::Wb as u8);
    if types & UC != 0 {
        MemType::Uc
    } else if types.count_ones() == 1 {
        mem_type_bits(u64::from(types.trailing_zeros()))
    } else if types == WT_WB {
        MemType::Wt
    } else {
        MemType::Uc
    }
}

/// The floor of log2 of `x` (x > 0).
fn log2(x: u64) -> u32 {
    63 - x.leading_zeros()
}

/// MTRR state: IA32_MTRR_DEF_TYPE, the 88 fixed-range types and the variable ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtrrState {
    def_type: u64,
    fixed: [u8; 88],
    var: [VarRange; MAX_VAR_RANGES],
    vcnt: u8,
    has_fixed: bool,
    has_wc: bool,
}

impl MtrrState {
    /// The guest's initial state (docs/protocol.md): MTRRdefType = 0xC06 (enabled, fixed ranges
    /// enabled, default WB), every fixed range WB, no variable range in use; MTRRcap reports 8
    /// variable ranges, fixed ranges and WC.
    pub const fn new_default_wb() -> MtrrState {
        MtrrState {
            def_type: DEF_E | DEF_FE | MemType::Wb as u64,
            fixed: [MemType::Wb as u8; 88],
            var: [VarRange { base: 0, mask: 0 }; MAX_VAR_RANGES],
            vcnt: GUEST_MTRR_VCNT,
            has_fixed: true,
            has_wc: true,
        }
    }

    /// MTRRs disabled (IA32_MTRR_DEF_TYPE = 0): every address is UC. The reset state.
    pub const fn disabled() -> MtrrState {
        MtrrState {
            def_type: 0,
            fixed: [0; 88],
            var: [VarRange { base: 0, mask: 0 }; MAX_VAR_RANGES],
            vcnt: GUEST_MTRR_VCNT,
            has_fixed: true,
            has_wc: true,
        }
    }

    /// Reads a full MTRR state through `rdmsr` (the host's, at boot). Uses IA32_MTRRCAP for the
    /// number of variable ranges (at most [`MAX_VAR_RANGES`]) and the presence of fixed ranges;
    /// reserved types read back are taken as UC.
    pub fn from_msrs(mut rdmsr: impl FnMut(u32) -> u64) -> MtrrState {
        let cap = rdmsr(MSR_MTRR_CAP);
        let mut s = MtrrState::disabled();
        s.vcnt = (cap & 0xFF).min(MAX_VAR_RANGES as u64) as u8;
        s.has_fixed = cap & CAP_FIX != 0;
        s.has_wc = cap & CAP_WC != 0;
        let def = rdmsr(MSR_MTRR_DEF_TYPE);
        s.def_type = (def & (DEF_E | DEF_FE)) | mem_type_bits(def) as u64;
        if !s.has_fixed {
            s.def_type &= !DEF_FE;
        } else {
            for (i, &msr) in FIXED_MSRS.iter().enumerate() {
                let v = rdmsr(msr);
                for b in 0..8 {
                    s.fixed[i * 8 + b] = mem_type_bits(v >> (8 * b)) as u8;
                }
            }
        }
        for i in 0..s.vcnt as usize {
            let base = rdmsr(MSR_MTRR_PHYS_BASE0 + 2 * i as u32);
            let mask = rdmsr(MSR_MTRR_PHYS_BASE0 + 2 * i as u32 + 1);
            s.var[i] = VarRange {
                base: (base & ADDR_BITS) | mem_type_bits(base) as u64,
                mask: mask & (ADDR_BITS | MASK_VALID),
            };
        }
        s
    }

    /// MTRRs enabled (IA32_MTRR_DEF_TYPE.E).
    pub fn enabled(&self) -> bool {
        self.def_type & DEF_E != 0
    }

    /// Fixed ranges enabled (IA32_MTRR_DEF_TYPE.FE, and E).
    pub fn fixed_enabled(&self) -> bool {
        self.enabled() && self.has_fixed && self.def_type & DEF_FE != 0
    }

    /// The default memory type (IA32_MTRR_DEF_TYPE bits 7:0).
    pub fn default_type(&self) -> MemType {
        mem_type_bits(self.def_type)
    }

    /// Number of variable ranges (MTRRcap.VCNT).
    pub fn vcnt(&self) -> u8 {
        self.vcnt
    }

    /// Raw (PHYSBASEn, PHYSMASKn) of variable range `n`, or `None` beyond VCNT.
    pub fn variable_range(&self, n: usize) -> Option<(u64, u64)> {
        (n < self.vcnt as usize).then(|| (self.var[n].base, self.var[n].mask))
    }

    /// The MSR's value, or `None` when `msr` is not an MTRR MSR of this state (MTRRcap reports
    /// VCNT, FIX and WC).
    pub fn read_msr(&self, msr: u32) -> Option<u64> {
        match msr {
            MSR_MTRR_CAP => Some(
                u64::from(self.vcnt)
                    | if self.has_fixed { CAP_FIX } else { 0 }
                    | if self.has_wc { CAP_WC } else { 0 },
            ),
            MSR_MTRR_DEF_TYPE => Some(self.def_type),
            _ => {
                if let Some(i) = self.fixed_msr_index(msr) {
                    let bytes: [u8; 8] = self.fixed[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]);
                    Some(u64::from_le_bytes(bytes))
                } else if let Some((n, is_mask)) = self.var_msr(msr) {
                    let r = &self.var[n];
                    Some(if is_mask { r.mask } else { r.base })
                } else {
                    None
                }
            }
        }
    }

    /// Writes an MTRR MSR as WRMSR would. [`P2mError::BadMtrrWrite`] for a reserved type,
    /// reserved bits or a write to MTRRcap (the guest gets #GP); [`P2mError::NotMtrrMsr`] when
    /// `msr` is not an MTRR MSR of this state.
    pub fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), P2mError> {
        let bad = Err(P2mError::BadMtrrWrite);
        match msr {
            MSR_MTRR_CAP => return bad,
            MSR_MTRR_DEF_TYPE => {
                if value & !(DEF_E | DEF_FE | 0xFF) != 0 || !valid_type(value) {
                    return bad;
                }
                if !self.has_fixed && value & DEF_FE != 0 {
                    return bad;
                }
                self.def_type = value;
            }
            _ => {
                if let Some(i) = self.fixed_msr_index(msr) {
                    let bytes = value.to_le_bytes();
                    if !bytes.iter().all(|&b| valid_type(u64::from(b))) {
                        return bad;
                    }
                    self.fixed[i * 8..i * 8 + 8].copy_from_slice(&bytes);
                } else if let Some((n, is_mask)) = self.var_msr(msr) {
                    if is_mask {
                        if value & !(ADDR_BITS | MASK_VALID) != 0 {
                            return bad;
                        }
                        self.var[n].mask = value;
                    } else {
                        if value & !(ADDR_BITS | 0xFF) != 0 || !valid_type(value) {
                            return bad;
                        }
                        self.var[n].base = value;
                    }
                } else {
                    return Err(P2mError::NotMtrrMsr);
                }
            }
        }
        Ok(())
    }

    fn fixed_msr_index(&self, msr: u32) -> Option<usize> {
        if !self.has_fixed {
            return None;
        }
        FIXED_MSRS.iter().position(|&m| m == msr)
    }

    fn var_msr(&self, msr: u32) -> Option<(usize, bool)> {
        let off = msr.checked_sub(MSR_MTRR_PHYS_BASE0)? as usize;
        (off < 2 * self.vcnt as usize).then_some((off / 2, off % 2 == 1))
    }

    /// The frames a fixed-range MSR governs.
    pub(crate) fn fixed_msr_gfns(msr: u32) -> Option<Range<u64>> {
        let i = FIXED_MSRS.iter().position(|&m| m == msr)?;
        let end = if i == FIXED_MSRS.len() - 1 {
            FIXED_END
        } else {
            fixed_unit_start(i * 8 + 8)
        };
        Some(fixed_unit_start(i * 8)..end)
    }

    /// The memory type of frames `[start, start + nr)`, or `None` when it is not the same for
    /// every frame (or `nr` is 0). Computed from the range boundaries: the range is cut into at
    /// most ~2 x 64 naturally aligned blocks, each checked against the fixed ranges (below
    /// 1 MiB) or every variable range in O(1).
    pub fn type_of_range(&self, start: u64, nr: u64) -> Option<MemType> {
        let end = start.checked_add(nr)?;
        if nr == 0 {
            return None;
        }
        if !self.enabled() {
            return Some(MemType::Uc);
        }
        let fixed = self.fixed_enabled();
        let mut result = None;
        let mut s = start;
        while s < end {
            let mut k = log2(end - s);
            if s != 0 {
                k = k.min(s.trailing_zeros());
            }
            if fixed && s < FIXED_END {
                k = k.min(log2(FIXED_END));
            }
            let t = if fixed && s < FIXED_END {
                self.fixed_block_type(s, 1 << k)?
            } else {
                self.var_block_type(s, k)?
            };
            if result.is_some_and(|r| r != t) {
                return None;
            }
            result = Some(t);
            s += 1 << k;
        }
        result
    }

    /// The type of the naturally aligned block of `1 << order` frames at `start`.
    pub fn type_of_block(&self, start: u64, order: u32) -> Option<MemType> {
        self.type_of_range(start, 1u64.checked_shl(order)?)
    }

    fn fixed_block_type(&self, start: u64, nr: u64) -> Option<MemType> {
        let (first, last) = (fixed_unit(start), fixed_unit(start + nr - 1));
        let t = self.fixed[first];
        self.fixed[first..=last]
            .iter()
            .all(|&x| x == t)
            .then(|| mem_type_bits(u64::from(t)))
    }

    /// Variable ranges over one aligned block: `full` holds the types of ranges covering all of
    /// it, `part` those covering some of it. Without partial ranges the type is exact; with
    /// them, the block is uniform only if every combination of the partial types gives the same
    /// result (a safe over-approximation: at order 0 no range is partial).
    fn var_block_type(&self, start: u64, order: u32) -> Option<MemType> {
        let (mut full, mut part) = (0u8, 0u8);
        for r in &self.var[..self.vcnt as usize] {
            let bit = 1u8 << (mem_type_bits(r.base) as u8);
            match var_block_coverage(r.base, r.mask, start, order) {
                Coverage::Full => full |= bit,
                Coverage::Partial => part |= bit,
                Coverage::None => {}
            }
        }
        let eval = |set: u8| {
            if set == 0 {
                self.default_type()
            } else {
                combine(set)
            }
        };
        let t = eval(full);
        if part == 0 || full & (1 << MemType::Uc as u8) != 0 {
            return Some(t);
        }
        let mut sub = part;
        loop {
            if eval(full | sub) != t {
                return None;
            }
            if sub == 0 {
                return Some(t);
            }
            sub = (sub - 1) & part;
        }
    }
}

impl Default for MtrrState {
    /// [`MtrrState::new_default_wb`].
    fn default() -> MtrrState {
        MtrrState::new_default_wb()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemType::*;

    const GIB: u64 = 1 << 18; // frames

    /// PHYSBASE/PHYSMASK for a power-of-two range of `size` bytes at `base` (bytes).
    fn var(s: &mut MtrrState, n: u32, base: u64, size: u64, ty: MemType) {
        s.write_msr(0x200 + 2 * n, base | ty as u64).unwrap();
        s.write_msr(0x201 + 2 * n, (!(size - 1) & ADDR_BITS) | MASK_VALID)
            .unwrap();
    }

    #[test]
    fn disabled_is_uc() {
        let mut s = MtrrState::new_default_wb();
        s.write_msr(MSR_MTRR_DEF_TYPE, 0x006).unwrap();
        assert_eq!(s.type_of_range(0, 4 * GIB), Some(Uc));
        assert_eq!(MtrrState::disabled().type_of_block(12345, 0), Some(Uc));
    }

    #[test]
    fn default_wb_is_uniform() {
        let s = MtrrState::new_default_wb();
        assert_eq!(s.type_of_block(0, 18), Some(Wb));
        assert_eq!(s.type_of_range(3, 1 << 30), Some(Wb));
        assert_eq!(s.read_msr(MSR_MTRR_CAP), Some(0x508));
        assert_eq!(s.read_msr(MSR_MTRR_DEF_TYPE), Some(0xC06));
        assert_eq!(s.read_msr(0x250), Some(0x0606_0606_0606_0606));
        assert_eq!(s.read_msr(0x210), None);
        assert_eq!(s.read_msr(0x1FF), None);
    }

    #[test]
    fn uc_wins_over_everything() {
        let mut s = MtrrState::new_default_wb();
        var(&mut s, 0, 0, 1 << 30, Wb);
        var(&mut s, 1, 0, 1 << 30, Wt);
        var(&mut s, 2, 0x2000_0000, 1 << 29, Uc);
        assert_eq!(s.type_of_block(0x20000, 17), Some(Uc));
        assert_eq!(s.type_of_block(0x20000, 0), Some(Uc));
        assert_eq!(s.type_of_block(0x10000, 0), Some(Wt));
        assert_eq!(s.type_of_block(0, 18), None);
    }

    #[test]
    fn wt_wins_over_wb() {
        let mut s = MtrrState::new_default_wb();
        var(&mut s, 0, 0x4000_0000, 1 << 30, Wb);
        var(&mut s, 1, 0x4000_0000, 1 << 21, Wt);
        assert_eq!(s.type_of_block(0x40000, 9), Some(Wt));
        assert_eq!(s.type_of_block(0x40200, 9), Some(Wb));
        assert_eq!(s.type_of_block(0x40000, 18), None);
    }

    #[test]
    fn other_overlaps_are_uc() {
        let mut s = MtrrState::new_default_wb();
        var(&mut s, 0, 0x4000_0000, 1 << 21, Wc);
        var(&mut s, 1, 0x4000_0000, 1 << 21, Wp);
        assert_eq!(s.type_of_block(0x40000, 9), Some(Uc));
        let mut s = MtrrState::new_default_wb();
        var(&mut s, 0, 0x4000_0000, 1 << 21, Wt);
        var(&mut s, 1, 0x4000_0000, 1 << 21, Wc);
        assert_eq!(s.type_of_block(0x40000, 0), Some(Uc));
    }

    #[test]
    fn partial_ranges_of_the_same_type_stay_uniform() {
        let mut s = MtrrState::new_default_wb();
        var(&mut s, 0, 0x4000_0000, 1 << 21, Wb);
        assert_eq!(s.type_of_block(GIB, 18), Some(Wb));
        var(&mut s, 1, 0x4000_0000, 1 << 30, Uc);
        assert_eq!(s.type_of_block(GIB, 18), Some(Uc));
        var(&mut s, 1, 0x4000_0000, 1 << 30, Wt);
        assert_eq!(s.type_of_block(GIB, 18), Some(Wt));
        var(&mut s, 0, 0x4000_0000, 1 << 21, Wc);
        assert_eq!(s.type_of_block(GIB, 18), None);
        assert_eq!(s.type_of_block(GIB, 9), Some(Uc));
    }

    #[test]
    fn partial_range_over_uc_default_is_not_uniform() {
        let mut s = MtrrState::new_default_wb();
        s.write_msr(MSR_MTRR_DEF_TYPE, 0xC00).unwrap();
        var(&mut s, 0, 0x4000_0000, 1 << 12, Wc);
        assert_eq!(s.type_of_block(GIB, 18), None);
        assert_eq!(s.type_of_block(GIB, 0), Some(Wc));
        assert_eq!(s.type_of_block(GIB + 1, 0), Some(Uc));
    }

    #[test]
    fn fixed_ranges_take_precedence_below_1m() {
        let mut s = MtrrState::new_default_wb();
        var(&mut s, 0, 0, 1 << 30, Wb);
        s.write_msr(0x259, 0).unwrap(); // 0xA0000..0xC0000 UC (VGA)
        assert_eq!(s.type_of_range(0xA0, 0x20), Some(Uc));
        assert_eq!(s.type_of_range(0x9F, 2), None);
        assert_eq!(s.type_of_block(0, 8), None);
        assert_eq!(s.type_of_block(0, 9), None);
        assert_eq!(s.type_of_block(0x100, 8), Some(Wb));
        assert_eq!(s.type_of_block(0x200, 9), Some(Wb));
        // Fixed ranges disabled: the variable range rules the first MiB too.
        s.write_msr(MSR_MTRR_DEF_TYPE, 0x806).unwrap();
        assert_eq!(s.type_of_block(0, 18), Some(Wb));
    }

    #[test]
    fn fixed_range_units() {
        let mut s = MtrrState::new_default_wb();
        s.write_msr(0x26F, 0x0505_0505_0505_0500).unwrap(); // 0xF8000: UC then WP
        assert_eq!(s.type_of_block(0xF8, 0), Some(Uc));
        assert_eq!(s.type_of_block(0xF9, 0), Some(Wp));
        assert_eq!(s.type_of_range(0xF9, 7), Some(Wp));
        assert_eq!(s.type_of_range(0xF8, 8), None);
        s.write_msr(0x250, 0x0606_0606_0606_0104).unwrap();
        assert_eq!(s.type_of_range(0, 0x10), Some(Wt));
        assert_eq!(s.type_of_range(0x10, 0x10), Some(Wc));
        assert_eq!(s.type_of_range(0x20, 0x60), Some(Wb));
        assert_eq!(MtrrState::fixed_msr_gfns(0x250), Some(0..0x80));
        assert_eq!(MtrrState::fixed_msr_gfns(0x259), Some(0xA0..0xC0));
        assert_eq!(MtrrState::fixed_msr_gfns(0x26F), Some(0xF8..0x100));
    }

    #[test]
    fn non_contiguous_mask_is_exact_at_4k() {
        let mut s = MtrrState::new_default_wb();
        // Matches frames whose bit 1 (frame) is set and bit 4 is clear: holes everywhere.
        s.write_msr(0x200, 0x2000 | Uc as u64).unwrap();
        s.write_msr(0x201, 0x12000 | MASK_VALID).unwrap();
        for g in 0x100..0x200u64 {
            let want = if g & 2 != 0 && g & 0x10 == 0 { Uc } else { Wb };
            assert_eq!(s.type_of_block(g, 0), Some(want), "gfn {g:#x}");
        }
        assert_eq!(s.type_of_block(0x100, 1), Some(Wb));
        assert_eq!(s.type_of_block(0x102, 1), Some(Uc));
        assert_eq!(s.type_of_block(0x100, 2), None);
        assert_eq!(s.type_of_block(0x100, 4), None);
        assert_eq!(s.type_of_block(0x110, 4), Some(Wb));
    }

    #[test]
    fn bad_writes_are_rejected() {
        let mut s = MtrrState::new_default_wb();
        let before = s.clone();
        assert_eq!(
            s.write_msr(MSR_MTRR_DEF_TYPE, 0xC02),
            Err(P2mError::BadMtrrWrite)
        );
        assert_eq!(
            s.write_msr(MSR_MTRR_DEF_TYPE, 0x1C06),
            Err(P2mError::BadMtrrWrite)
        );
        assert_eq!(
            s.write_msr(MSR_MTRR_DEF_TYPE, 0x306),
            Err(P2mError::BadMtrrWrite)
        );
        assert_eq!(
            s.write_msr(0x250, 0x0606_0606_0607_0606),
            Err(P2mError::BadMtrrWrite)
        );
        assert_eq!(s.write_msr(0x200, 0x1000_0003), Err(P2mError::BadMtrrWrite));
        assert_eq!(s.write_msr(0x200, 0x1000_0106), Err(P2mError::BadMtrrWrite));
        assert_eq!(s.write_msr(0x200, 1 << 52), Err(P2mError::BadMtrrWrite));
        assert_eq!(
            s.write_msr(0x201, 0xFFFF_F000_0801),
            Err(P2mError::BadMtrrWrite)
        );
        assert_eq!(s.write_msr(MSR_MTRR_CAP, 0), Err(P2mError::BadMtrrWrite));
        assert_eq!(s.write_msr(0x210, 0), Err(P2mError::NotMtrrMsr));
        assert_eq!(s, before);
    }

    #[test]
    fn from_msrs_reads_host_state() {
        let host = |msr: u32| match msr {
            MSR_MTRR_CAP => 0xD0A, // 10 variable ranges, FIX, WC, SMRR
            MSR_MTRR_DEF_TYPE => 0xC00,
            0x250 => 0x0606_0606_0606_0606,
            0x200 => 0x6,
            0x201 => 0xF_FFFF_8000_0800, // 0..2 GiB WB
            _ => 0,
        };
        let s = MtrrState::from_msrs(host);
        assert_eq!(s.vcnt(), 10);
        assert_eq!(s.type_of_block(0, 18), None); // fixed 0xC0000.. are UC
        assert_eq!(s.type_of_block(GIB, 18), Some(Wb));
        assert_eq!(s.type_of_block(2 * GIB, 18), Some(Uc));
    }
}
