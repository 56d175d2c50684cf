//! Grant table v1: frame 0 mapped with `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`, and
//! entries written as Linux's `gnttab_grant_foreign_access` does (`domid` and `frame`, a
//! barrier, then `flags`).

use guest_abi::grant_table::{GrantRef, GTF_PERMIT_ACCESS, GTF_READONLY};
use guest_abi::memory::XENMAPSPACE_GRANT_TABLE;

use crate::shmem;
use crate::xen;

/// Entries in the one mapped frame (`GRANT_ENTRIES_V1_PER_FRAME`).
pub const ENTRIES: u32 = guest_abi::grant_table::GRANT_ENTRIES_V1_PER_FRAME as u32;
/// First entry a guest may use (`GNTTAB_NR_RESERVED_ENTRIES`).
pub const FIRST_FREE: GrantRef = guest_abi::grant_table::GNTTAB_NR_RESERVED_ENTRIES;

/// Grant-table frame 0, mapped in the guest.
pub struct GrantTable {
    /// Guest-physical address of the frame.
    base: u64,
}

impl GrantTable {
    /// Maps frame 0 of the grant table at `gpfn`.
    pub fn map(gpfn: u64) -> Result<GrantTable, i64> {
        let mut xatp = xen::AddToPhysmap {
            domid: xen::DOMID_SELF,
            size: 0,
            space: XENMAPSPACE_GRANT_TABLE,
            idx: 0,
            gpfn,
        };
        match xen::add_to_physmap(&mut xatp) {
            0 => Ok(GrantTable { base: gpfn << 12 }),
            rc => Err(rc),
        }
    }

    /// Grants domain `domid` access to guest frame `gfn` with reference `gref`
    /// (`FIRST_FREE..ENTRIES`), read-only if `readonly`.
    pub fn grant(&self, gref: GrantRef, domid: u16, gfn: u64, readonly: bool) {
        assert!((FIRST_FREE..ENTRIES).contains(&gref), "grant ref {gref}");
        let e = self.base + u64::from(gref) * 8;
        shmem::wr16(e + 2, domid);
        shmem::wr32(e + 4, gfn as u32);
        shmem::barrier();
        let ro = if readonly { GTF_READONLY } else { 0 };
        shmem::wr16(e, GTF_PERMIT_ACCESS | ro);
    }
}
