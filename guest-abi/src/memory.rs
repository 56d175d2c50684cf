//! `__HYPERVISOR_memory_op` sub-ops and structures (`memory.h`).
//!
//! The command argument (RDI) packs the sub-op in its low bits ([`MEMOP_CMD_MASK`]) and a
//! continuation start extent above [`MEMOP_EXTENT_SHIFT`].

use crate::xen::DomId;
use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `MEMOP_EXTENT_SHIFT`: the start extent of a continued call is `cmd >> 6`.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
/// `MEMOP_CMD_MASK`: the sub-op is `cmd & 0x3f`.
pub const MEMOP_CMD_MASK: u64 = (1 << MEMOP_EXTENT_SHIFT) - 1;

/// `XENMEM_increase_reservation`: [`XenMemoryReservation`].
pub const XENMEM_INCREASE_RESERVATION: u32 = 0;
/// `XENMEM_decrease_reservation`: [`XenMemoryReservation`] (balloon out).
pub const XENMEM_DECREASE_RESERVATION: u32 = 1;
/// `XENMEM_maximum_ram_page`.
pub const XENMEM_MAXIMUM_RAM_PAGE: u32 = 2;
/// `XENMEM_current_reservation`: argument = pointer to a `domid_t`.
pub const XENMEM_CURRENT_RESERVATION: u32 = 3;
/// `XENMEM_maximum_reservation`: argument = pointer to a `domid_t`.
pub const XENMEM_MAXIMUM_RESERVATION: u32 = 4;
/// `XENMEM_machphys_mfn_list` (PV).
pub const XENMEM_MACHPHYS_MFN_LIST: u32 = 5;
/// `XENMEM_populate_physmap`: [`XenMemoryReservation`] (balloon in).
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
/// `XENMEM_add_to_physmap`: [`XenAddToPhysmap`].
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// `XENMEM_memory_map`: [`XenMemoryMap`], the guest's e820 map.
pub const XENMEM_MEMORY_MAP: u32 = 9;
/// `XENMEM_machine_memory_map`: the host's e820 map (dom0).
pub const XENMEM_MACHINE_MEMORY_MAP: u32 = 10;
/// `XENMEM_exchange`.
pub const XENMEM_EXCHANGE: u32 = 11;
/// `XENMEM_machphys_mapping` (PV).
pub const XENMEM_MACHPHYS_MAPPING: u32 = 12;
/// `XENMEM_set_memory_map` (toolstack).
pub const XENMEM_SET_MEMORY_MAP: u32 = 13;
/// `XENMEM_maximum_gpfn`: argument = pointer to a `domid_t`.
pub const XENMEM_MAXIMUM_GPFN: u32 = 14;
/// `XENMEM_remove_from_physmap`: [`XenRemoveFromPhysmap`].
pub const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;
/// `XENMEM_set_pod_target` (toolstack).
pub const XENMEM_SET_POD_TARGET: u32 = 16;
/// `XENMEM_get_pod_target` (toolstack).
pub const XENMEM_GET_POD_TARGET: u32 = 17;
/// `XENMEM_get_sharing_freed_pages`.
pub const XENMEM_GET_SHARING_FREED_PAGES: u32 = 18;
/// `XENMEM_get_sharing_shared_pages`.
pub const XENMEM_GET_SHARING_SHARED_PAGES: u32 = 19;
/// `XENMEM_paging_op`.
pub const XENMEM_PAGING_OP: u32 = 20;
/// `XENMEM_access_op`.
pub const XENMEM_ACCESS_OP: u32 = 21;
/// `XENMEM_sharing_op`.
pub const XENMEM_SHARING_OP: u32 = 22;
/// `XENMEM_add_to_physmap_batch` (alias `XENMEM_add_to_physmap_range`).
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: u32 = 23;
/// `XENMEM_claim_pages`.
pub const XENMEM_CLAIM_PAGES: u32 = 24;
/// `XENMEM_machphys_compat_mfn_list` (PV).
pub const XENMEM_MACHPHYS_COMPAT_MFN_LIST: u32 = 25;
/// `XENMEM_get_vnumainfo`.
pub const XENMEM_GET_VNUMAINFO: u32 = 26;
/// `XENMEM_reserved_device_memory_map`.
pub const XENMEM_RESERVED_DEVICE_MEMORY_MAP: u32 = 27;
/// `XENMEM_acquire_resource`.
pub const XENMEM_ACQUIRE_RESOURCE: u32 = 28;

/// `XENMEMF_populate_on_demand` in `mem_flags`.
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
/// `XENMEMF_exact_node_request` in `mem_flags`.
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
/// `XENMEMF_vnode` in `mem_flags`.
pub const XENMEMF_VNODE: u32 = 1 << 18;

/// `XENMEMF_get_address_bits`: the address-width restriction in `mem_flags` (0 = none).
pub const fn xenmemf_get_address_bits(mem_flags: u32) -> u32 {
    mem_flags & 0xff
}

/// `XENMAPSPACE_shared_info`: map the shared-info page (`idx` 0).
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: map grant-table frame `idx` (status frame if
/// [`XENMAPIDX_GRANT_TABLE_STATUS`] is set).
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPSPACE_gmfn`: move guest frame `idx` to `gpfn`.
pub const XENMAPSPACE_GMFN: u32 = 2;
/// `XENMAPSPACE_gmfn_range`: like `gmfn` for `size` frames (add_to_physmap only).
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// `XENMAPSPACE_gmfn_foreign`: a frame of another domain (batch only).
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// `XENMAPSPACE_dev_mmio`: device MMIO (ARM, batch only).
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;
/// `XENMAPIDX_grant_table_status`: bit in `idx` selecting a grant *status* frame (v2).
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

/// `struct xen_memory_reservation` (32 bytes): increase/decrease_reservation and
/// populate_physmap.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemoryReservation {
    /// Guest handle (GVA) of an array of `xen_pfn_t` (u64), in/out.
    pub extent_start: u64,
    /// Number of extents.
    pub nr_extents: u64,
    /// Each extent is `2^extent_order` pages.
    pub extent_order: u32,
    /// `XENMEMF_*` flags (x86: address bits in 7:0).
    pub mem_flags: u32,
    /// Target domain (usually `DOMID_SELF`).
    pub domid: DomId,
    /// Implicit C padding.
    pub _pad: [u8; 6],
}
assert_size!(XenMemoryReservation, 32);
assert_offset!(XenMemoryReservation, domid, 24);

/// `struct xen_add_to_physmap` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenAddToPhysmap {
    /// Domain whose physmap changes (usually `DOMID_SELF`).
    pub domid: DomId,
    /// Number of pages for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index into the space (e.g. the grant frame number).
    pub idx: u64,
    /// The guest frame number to map it at.
    pub gpfn: u64,
}
assert_size!(XenAddToPhysmap, 24);

/// `struct compat_add_to_physmap` (16 bytes): [`XenAddToPhysmap`] as a 32-bit guest lays it
/// out (`xen_ulong_t` and `xen_pfn_t` are 32-bit there).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CompatAddToPhysmap {
    /// Domain whose physmap changes.
    pub domid: DomId,
    /// Number of pages for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index into the space.
    pub idx: u32,
    /// The guest frame number to map it at.
    pub gpfn: u32,
}
assert_size!(CompatAddToPhysmap, 16);

impl From<CompatAddToPhysmap> for XenAddToPhysmap {
    fn from(c: CompatAddToPhysmap) -> Self {
        XenAddToPhysmap {
            domid: c.domid,
            size: c.size,
            space: c.space,
            idx: c.idx as u64,
            gpfn: c.gpfn as u64,
        }
    }
}

/// `struct xen_remove_from_physmap` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenRemoveFromPhysmap {
    /// Domain whose physmap changes.
    pub domid: DomId,
    /// Implicit C padding.
    pub _pad: [u8; 6],
    /// Guest frame to unmap.
    pub gpfn: u64,
}
assert_size!(XenRemoveFromPhysmap, 16);

/// `struct xen_memory_map` (16 bytes): argument of `XENMEM_memory_map`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemoryMap {
    /// In: capacity of `buffer` in entries; out: entries written.
    pub nr_entries: u32,
    /// Implicit C padding.
    pub _pad: u32,
    /// Guest handle (GVA) of an array of [`E820Entry`].
    pub buffer: u64,
}
assert_size!(XenMemoryMap, 16);

/// `struct compat_memory_map` (8 bytes): [`XenMemoryMap`] with a 32-bit handle.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CompatMemoryMap {
    /// In: capacity of `buffer` in entries; out: entries written.
    pub nr_entries: u32,
    /// Guest handle (32-bit linear address) of an array of [`E820Entry`].
    pub buffer: u32,
}
assert_size!(CompatMemoryMap, 8);

/// One e820 entry as `XENMEM_memory_map` writes it (20 bytes, packed like the BIOS format).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed)]
pub struct E820Entry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `E820_*` type.
    pub r#type: u32,
}
assert_size!(E820Entry, 20);

/// e820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// e820 type: ACPI reclaimable.
pub const E820_ACPI: u32 = 3;
/// e820 type: ACPI NVS.
pub const E820_NVS: u32 = 4;
/// e820 type: unusable.
pub const E820_UNUSABLE: u32 = 5;
