//! PVH boot: `hvm_start_info` and its module list and memory map
//! (`arch-x86/hvm/start_info.h`). EBX holds the structure's guest-physical address at entry.

use crate::assert_size;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// `SIF_PRIVILEGED` in [`HvmStartInfo::flags`]: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN` in [`HvmStartInfo::flags`]: the domain is the initial domain.
pub const SIF_INITDOMAIN: u32 = 1 << 1;

/// `XEN_HVM_MEMMAP_TYPE_RAM`.
pub const XEN_HVM_MEMMAP_TYPE_RAM: u32 = 1;
/// `XEN_HVM_MEMMAP_TYPE_RESERVED`.
pub const XEN_HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
/// `XEN_HVM_MEMMAP_TYPE_ACPI`.
pub const XEN_HVM_MEMMAP_TYPE_ACPI: u32 = 3;
/// `XEN_HVM_MEMMAP_TYPE_NVS`.
pub const XEN_HVM_MEMMAP_TYPE_NVS: u32 = 4;
/// `XEN_HVM_MEMMAP_TYPE_UNUSABLE`.
pub const XEN_HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
/// `XEN_HVM_MEMMAP_TYPE_DISABLED`.
pub const XEN_HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
/// `XEN_HVM_MEMMAP_TYPE_PMEM`.
pub const XEN_HVM_MEMMAP_TYPE_PMEM: u32 = 7;

/// `struct hvm_start_info` (56 bytes), version 1.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HvmStartInfo {
    /// [`XEN_HVM_START_MAGIC_VALUE`].
    pub magic: u32,
    /// Structure version (1 has the memory map).
    pub version: u32,
    /// `SIF_*` flags (0 for an unprivileged domain).
    pub flags: u32,
    /// Number of entries at `modlist_paddr` (the first is the initrd).
    pub nr_modules: u32,
    /// Guest-physical address of an array of [`HvmModlistEntry`].
    pub modlist_paddr: u64,
    /// Guest-physical address of the NUL-terminated command line.
    pub cmdline_paddr: u64,
    /// Guest-physical address of the ACPI RSDP.
    pub rsdp_paddr: u64,
    /// Guest-physical address of an array of [`HvmMemmapTableEntry`] (version >= 1).
    pub memmap_paddr: u64,
    /// Number of memory-map entries (version >= 1).
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}
assert_size!(HvmStartInfo, 56);

/// `struct hvm_modlist_entry` (32 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HvmModlistEntry {
    /// Guest-physical address of the module.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Guest-physical address of the module's command line (0 = none).
    pub cmdline_paddr: u64,
    /// Must be zero.
    pub reserved: u64,
}
assert_size!(HvmModlistEntry, 32);

/// `struct hvm_memmap_table_entry` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HvmMemmapTableEntry {
    /// Base address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// `XEN_HVM_MEMMAP_TYPE_*` (the e820 types).
    pub r#type: u32,
    /// Must be zero.
    pub reserved: u32,
}
assert_size!(HvmMemmapTableEntry, 24);
