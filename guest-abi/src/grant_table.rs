//! `__HYPERVISOR_grant_table_op` sub-ops, grant entries and flags (`grant_table.h`).

use crate::xen::DomId;
use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `grant_ref_t`: an index into the grant table.
pub type GrantRef = u32;

/// `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
/// `GNTTABOP_setup_table`: [`GnttabSetupTable`].
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
/// `GNTTABOP_dump_table`.
pub const GNTTABOP_DUMP_TABLE: u32 = 3;
/// `GNTTABOP_transfer`.
pub const GNTTABOP_TRANSFER: u32 = 4;
/// `GNTTABOP_copy`.
pub const GNTTABOP_COPY: u32 = 5;
/// `GNTTABOP_query_size`: [`GnttabQuerySize`].
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
/// `GNTTABOP_unmap_and_replace`.
pub const GNTTABOP_UNMAP_AND_REPLACE: u32 = 7;
/// `GNTTABOP_set_version`: [`GnttabSetVersion`].
pub const GNTTABOP_SET_VERSION: u32 = 8;
/// `GNTTABOP_get_status_frames`.
pub const GNTTABOP_GET_STATUS_FRAMES: u32 = 9;
/// `GNTTABOP_get_version`: [`GnttabGetVersion`].
pub const GNTTABOP_GET_VERSION: u32 = 10;
/// `GNTTABOP_swap_grant_ref`.
pub const GNTTABOP_SWAP_GRANT_REF: u32 = 11;
/// `GNTTABOP_cache_flush`.
pub const GNTTABOP_CACHE_FLUSH: u32 = 12;

/// `GNTTAB_NR_RESERVED_ENTRIES`: refs the guest does not allocate.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `GNTTAB_RESERVED_CONSOLE`: ref for the console ring page (toolstack-filled).
pub const GNTTAB_RESERVED_CONSOLE: GrantRef = 0;
/// `GNTTAB_RESERVED_XENSTORE`: ref for the xenstore ring page (toolstack-filled).
pub const GNTTAB_RESERVED_XENSTORE: GrantRef = 1;
/// Number of v1 entries per 4 KiB frame.
pub const GRANT_ENTRIES_V1_PER_FRAME: usize = 4096 / 8;

/// `GTF_invalid`: type: the entry grants nothing.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: type: the domain in `domid` may map/copy `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer`: type: the domain may transfer a page into this entry.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_transitive`: type: transitive grant (v2).
pub const GTF_TRANSITIVE: u16 = 3;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: the grantee may only read.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: set by the grantee (hypervisor) while it reads the frame.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: set by the grantee (hypervisor) while it writes the frame.
pub const GTF_WRITING: u16 = 1 << 4;
/// `GTF_PWT`: cache attribute.
pub const GTF_PWT: u16 = 1 << 5;
/// `GTF_PCD`: cache attribute.
pub const GTF_PCD: u16 = 1 << 6;
/// `GTF_PAT`: cache attribute.
pub const GTF_PAT: u16 = 1 << 7;
/// `GTF_sub_page`: sub-page grant (v2).
pub const GTF_SUB_PAGE: u16 = 1 << 8;
/// `GTF_transfer_committed` (accept_transfer entries).
pub const GTF_TRANSFER_COMMITTED: u16 = 1 << 2;
/// `GTF_transfer_completed` (accept_transfer entries).
pub const GTF_TRANSFER_COMPLETED: u16 = 1 << 3;

/// `GNTMAP_device_map`.
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// `GNTMAP_host_map`.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// `GNTMAP_application_map`.
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
/// `GNTMAP_contains_pte`.
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;

/// `GNTST_okay`.
pub const GNTST_OKAY: i16 = 0;
/// `GNTST_general_error`.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// `GNTST_bad_domain`.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// `GNTST_bad_gntref`.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// `GNTST_bad_handle`.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// `GNTST_bad_virt_addr`.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// `GNTST_bad_dev_addr`.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// `GNTST_no_device_space`.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// `GNTST_permission_denied`.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// `GNTST_bad_page`.
pub const GNTST_BAD_PAGE: i16 = -9;
/// `GNTST_bad_copy_arg`.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// `GNTST_address_too_big`.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// `GNTST_eagain`.
pub const GNTST_EAGAIN: i16 = -12;
/// `GNTST_no_space`.
pub const GNTST_NO_SPACE: i16 = -13;

/// `grant_entry_v1_t` (8 bytes). The guest writes `domid` and `frame`, then (after a write
/// barrier) `flags`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain being granted access.
    pub domid: DomId,
    /// The granted frame (a GFN for auto-translated guests).
    pub frame: u32,
}
assert_size!(GrantEntryV1, 8);

/// `struct gnttab_setup_table` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabSetupTable {
    /// In: the domain.
    pub dom: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// In: number of frames wanted.
    pub nr_frames: u32,
    /// Out: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad1: [u8; 6],
    /// Guest handle of an array of frame numbers (out).
    pub frame_list: u64,
}
assert_size!(GnttabSetupTable, 24);
assert_offset!(GnttabSetupTable, frame_list, 16);

/// `struct gnttab_query_size` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabQuerySize {
    /// In: the domain.
    pub dom: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// Out: frames currently in use.
    pub nr_frames: u32,
    /// Out: the maximum number of frames.
    pub max_nr_frames: u32,
    /// Out: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad1: u16,
}
assert_size!(GnttabQuerySize, 16);

/// `struct gnttab_set_version` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabSetVersion {
    /// In: the requested version (1 or 2); out: the version in force.
    pub version: u32,
}
assert_size!(GnttabSetVersion, 4);

/// `struct gnttab_get_version` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabGetVersion {
    /// In: the domain.
    pub dom: DomId,
    /// Padding (C `pad`).
    pub pad: u16,
    /// Out: the version.
    pub version: u32,
}
assert_size!(GnttabGetVersion, 8);
