//! EPT paging-structure entries and the memory they live in.

use crate::MemType;

/// Memory for EPT paging structures: host-physical 4 KiB tables of 512 entries, reached by
/// (table address, index).
///
/// The p2m frees a table only after unlinking it; the caller must not reuse a freed table (nor
/// rely on a changed mapping) before it has invalidated the EPT-derived translations of the
/// domain (INVEPT single-context) after the call that freed or changed it.
pub trait EptTableMemory {
    /// Allocates a zeroed, 4 KiB-aligned table and returns its host-physical address; `None`
    /// when out of memory.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Frees a table returned by `alloc_table`.
    fn free_table(&mut self, table: u64);
    /// Reads entry `index` (0..512) of `table`.
    fn read_entry(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` (0..512) of `table`.
    fn write_entry(&mut self, table: u64, index: usize, value: u64);
}

/// Address bits 51:12 of an entry.
pub(crate) const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// Read, write and execute access.
pub(crate) const RWX: u64 = 0x7;
/// Bit 7 of a PDPTE or PDE: the entry maps a 1 GiB or 2 MiB page.
pub(crate) const LARGE: u64 = 1 << 7;
/// Bit 6 of a leaf: ignore the guest's PAT.
pub(crate) const IPAT: u64 = 1 << 6;
/// Entries per table.
pub(crate) const ENTRIES: usize = 512;

/// True when the entry maps or points at something (any of R, W, X).
pub(crate) const fn present(e: u64) -> bool {
    e & RWX != 0
}

/// True when a present entry at `level` (1 = PTE .. 4 = PML4E) is a leaf.
pub(crate) const fn is_leaf(e: u64, level: u32) -> bool {
    level == 1 || (level <= 3 && e & LARGE != 0)
}

/// log2 of the frames one entry at `level` covers.
pub(crate) const fn slot_order(level: u32) -> u32 {
    9 * (level - 1)
}

/// A non-leaf entry pointing at `table`.
pub(crate) const fn table_entry(table: u64) -> u64 {
    (table & ADDR_MASK) | RWX
}

/// A leaf entry at `level` mapping `mfn`.
pub(crate) const fn leaf_entry(mfn: u64, level: u32, rights: u64, mt: MemType, ipat: bool) -> u64 {
    (mfn << 12)
        | rights
        | (mt as u64) << 3
        | if ipat { IPAT } else { 0 }
        | if level > 1 { LARGE } else { 0 }
}

/// Walks the EPT whose pointer is `eptp` for guest-physical address `gpa`. Returns the
/// host-physical address, the leaf's memory type and ignore-PAT bit, and the leaf's size in bytes;
/// `None` when `gpa` is not mapped or the leaf is misconfigured (reserved memory type, large bit
/// in a PML4E).
pub fn translate(
    mem: &impl EptTableMemory,
    eptp: u64,
    gpa: u64,
) -> Option<(u64, MemType, bool, u64)> {
    if gpa >> 48 != 0 {
        return None;
    }
    let mut table = eptp & ADDR_MASK;
    for level in (1..=4).rev() {
        let shift = 12 + slot_order(level);
        let e = mem.read_entry(table, ((gpa >> shift) & 511) as usize);
        if !present(e) || (level == 4 && e & LARGE != 0) {
            return None;
        }
        if is_leaf(e, level) {
            let mt = MemType::try_from(((e >> 3) & 7) as u8).ok()?;
            let size = 1u64 << shift;
            let hpa = (e & ADDR_MASK & !(size - 1)) | (gpa & (size - 1));
            return Some((hpa, mt, e & IPAT != 0, size));
        }
        table = e & ADDR_MASK;
    }
    None
}
