//! Core definitions from `xen.h` and `arch-x86/xen{,-x86_64}.h`: domain ids, virtual IRQs,
//! `vm_assist` types and the shared-info page with its per-vCPU `vcpu_info`.

use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `domid_t`: a domain id.
pub type DomId = u16;

/// The guest page size (x86: 4 KiB).
pub const PAGE_SIZE: usize = 4096;
/// `PAGE_SHIFT` for [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// `DOMID_FIRST_RESERVED`: domain ids at or above this are special.
pub const DOMID_FIRST_RESERVED: DomId = 0x7FF0;
/// `DOMID_SELF`: the calling domain.
pub const DOMID_SELF: DomId = 0x7FF0;
/// `DOMID_IO`: pseudo-domain owning I/O memory.
pub const DOMID_IO: DomId = 0x7FF1;
/// `DOMID_XEN`: pseudo-domain owning Xen's own pages (e.g. grant-table frames).
pub const DOMID_XEN: DomId = 0x7FF2;
/// `DOMID_COW`: pseudo-domain owning shared (copy-on-write) pages.
pub const DOMID_COW: DomId = 0x7FF3;
/// `DOMID_INVALID`: no domain.
pub const DOMID_INVALID: DomId = 0x7FF4;
/// `DOMID_ANY`: any domain (e.g. an unbound port's remote end).
pub const DOMID_ANY: DomId = 0x7FF5;
/// `DOMID_IDLE`: the idle domain.
pub const DOMID_IDLE: DomId = 0x7FFF;
/// `DOMID_MASK`: mask of valid domid bits.
pub const DOMID_MASK: DomId = 0x7FFF;

/// `VIRQ_TIMER` (per vCPU): timebase update and/or requested timeout.
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG` (per vCPU): request to dump debug info.
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE` (global): bytes received on the emergency console.
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_DOM_EXC` (global): exceptional event for some domain.
pub const VIRQ_DOM_EXC: u32 = 3;
/// `VIRQ_TBUF` (global): trace buffer has records available.
pub const VIRQ_TBUF: u32 = 4;
/// `VIRQ_DEBUGGER` (global): a domain has paused for debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// `VIRQ_XENOPROF` (per vCPU): new profiling sample.
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_CON_RING` (global): bytes received on the console ring.
pub const VIRQ_CON_RING: u32 = 8;
/// `VIRQ_PCPU_STATE` (global): physical CPU state changed.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// `VIRQ_MEM_EVENT` (global): a memory event occurred.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// `VIRQ_ARGO` (per domain): Argo message notification.
pub const VIRQ_ARGO: u32 = 11;
/// `VIRQ_ENOMEM` (global): low on heap memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// `VIRQ_XENPMU` (per vCPU): PMC interrupt.
pub const VIRQ_XENPMU: u32 = 13;
/// `VIRQ_ARCH_0`: first of 8 architecture-specific VIRQs (16..=23).
pub const VIRQ_ARCH_0: u32 = 16;
/// `NR_VIRQS`: number of virtual IRQ numbers.
pub const NR_VIRQS: u32 = 24;

/// Whether a VIRQ is bound per vCPU (`VIRQ_TIMER`, `VIRQ_DEBUG`, `VIRQ_XENOPROF`,
/// `VIRQ_XENPMU`) rather than globally (global ones must be bound on vCPU 0).
pub const fn virq_is_per_vcpu(virq: u32) -> bool {
    matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// `VMASST_CMD_enable`: `vm_assist` command enabling an assist.
pub const VMASST_CMD_ENABLE: u32 = 0;
/// `VMASST_CMD_disable`: `vm_assist` command disabling an assist.
pub const VMASST_CMD_DISABLE: u32 = 1;
/// `VMASST_TYPE_4gb_segments`.
pub const VMASST_TYPE_4GB_SEGMENTS: u32 = 0;
/// `VMASST_TYPE_4gb_segments_notify`.
pub const VMASST_TYPE_4GB_SEGMENTS_NOTIFY: u32 = 1;
/// `VMASST_TYPE_writable_pagetables`.
pub const VMASST_TYPE_WRITABLE_PAGETABLES: u32 = 2;
/// `VMASST_TYPE_pae_extended_cr3`.
pub const VMASST_TYPE_PAE_EXTENDED_CR3: u32 = 3;
/// `VMASST_TYPE_architectural_iopl`.
pub const VMASST_TYPE_ARCHITECTURAL_IOPL: u32 = 4;
/// `VMASST_TYPE_runstate_update_flag`: Linux enables it to get `XEN_RUNSTATE_UPDATE`.
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u32 = 5;
/// `VMASST_TYPE_m2p_strict`.
pub const VMASST_TYPE_M2P_STRICT: u32 = 32;

/// `XEN_LEGACY_MAX_VCPUS`: number of `vcpu_info` slots in the shared-info page.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;
/// `MAX_GUEST_CMDLINE`: the longest guest command line Xen passes, in bytes.
pub const MAX_GUEST_CMDLINE: usize = 1024;
/// Number of `xen_ulong_t` words in the 2-level event-channel pending/mask bitmaps.
pub const EVTCHN_WORDS: usize = 64;

/// `XEN_PVCLOCK_TSC_STABLE_BIT`: `vcpu_time_info.flags` bit saying the TSC is stable.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `XEN_PVCLOCK_GUEST_STOPPED`: `vcpu_time_info.flags` bit saying the guest was stopped.
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// `struct vcpu_time_info` (32 bytes): the pvclock parameters for one vCPU.
///
/// System time is
/// `system_time + (((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul >> 32)`,
/// where a negative `tsc_shift` shifts right. `version` is odd while an update is in progress.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuTimeInfo {
    /// Update counter: incremented before and after each update.
    pub version: u32,
    /// Padding (C `pad0`).
    pub pad0: u32,
    /// TSC at the last update.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-ns multiplier (32.32 fixed point).
    pub tsc_to_system_mul: u32,
    /// TSC shift applied before the multiplication.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    /// Padding (C `pad1`).
    pub pad1: [u8; 2],
}
assert_size!(VcpuTimeInfo, 32);
assert_offset!(VcpuTimeInfo, tsc_to_system_mul, 24);

/// `struct arch_vcpu_info` (x86-64, 16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ArchVcpuInfo {
    /// The faulting address of the last page fault (PV only).
    pub cr2: u64,
    /// Padding so that `vcpu_info` is 64 bytes.
    pub pad: u64,
}
assert_size!(ArchVcpuInfo, 16);

/// `struct vcpu_info` (64 bytes): per-vCPU event and time state, in the shared-info page or
/// wherever `VCPUOP_register_vcpu_info` placed it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuInfo {
    /// Non-zero when an upcall is pending; set by the hypervisor, cleared by the guest.
    pub evtchn_upcall_pending: u8,
    /// Non-zero masks upcalls (C: `evtchn_upcall_mask`, `pad0` for HVM builds).
    pub evtchn_upcall_mask: u8,
    /// Implicit C padding.
    pub _pad: [u8; 6],
    /// Selector: bit `i` set means word `i` of `evtchn_pending` may have pending bits.
    pub evtchn_pending_sel: u64,
    /// Architecture-specific part.
    pub arch: ArchVcpuInfo,
    /// pvclock parameters.
    pub time: VcpuTimeInfo,
}
assert_size!(VcpuInfo, 64);
assert_offset!(VcpuInfo, evtchn_pending_sel, 8);
assert_offset!(VcpuInfo, time, 32);

/// `struct arch_shared_info` (x86-64, 48 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ArchSharedInfo {
    /// Highest PFN + 1 (PV).
    pub max_pfn: u64,
    /// Frame of the PV p2m frame-list-list.
    pub pfn_to_mfn_frame_list_list: u64,
    /// NMI reason bits.
    pub nmi_reason: u64,
    /// CR3 of the p2m address space (PV).
    pub p2m_cr3: u64,
    /// Virtual address of the p2m list (PV).
    pub p2m_vaddr: u64,
    /// Generation count of the p2m mapping (PV).
    pub p2m_generation: u64,
}
assert_size!(ArchSharedInfo, 48);

/// `struct shared_info` (x86-64, 3136 bytes): the page a guest maps with
/// `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SharedInfo {
    /// The legacy per-vCPU info slots (vCPUs 0..32 before `register_vcpu_info`).
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// 2-level event channels: pending bitmap, port `p` is bit `p % 64` of word `p / 64`.
    pub evtchn_pending: [u64; EVTCHN_WORDS],
    /// 2-level event channels: mask bitmap, same indexing.
    pub evtchn_mask: [u64; EVTCHN_WORDS],
    /// Wallclock update counter (odd while updating).
    pub wc_version: u32,
    /// Wallclock seconds since the Unix epoch at system time 0 (low 32 bits).
    pub wc_sec: u32,
    /// Wallclock nanoseconds.
    pub wc_nsec: u32,
    /// Wallclock seconds, high 32 bits.
    pub wc_sec_hi: u32,
    /// Architecture-specific part.
    pub arch: ArchSharedInfo,
}
assert_size!(SharedInfo, 3136);
assert_offset!(SharedInfo, evtchn_pending, 2048);
assert_offset!(SharedInfo, wc_version, 3072);
const _: () = assert!(core::mem::size_of::<SharedInfo>() <= PAGE_SIZE);

/// `struct multicall_entry` (64 bytes): one call of `__HYPERVISOR_multicall`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct MulticallEntry {
    /// Hypercall number.
    pub op: u64,
    /// Result (out).
    pub result: u64,
    /// Arguments.
    pub args: [u64; 6],
}
assert_size!(MulticallEntry, 64);

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn shared_info_roundtrip() {
        let mut s = SharedInfo::new_zeroed();
        s.wc_sec = 0x1234_5678;
        s.vcpu_info[1].evtchn_upcall_pending = 1;
        s.evtchn_pending[0] = 1 << 3;
        let bytes = s.as_bytes();
        assert_eq!(bytes.len(), 3136);
        assert_eq!(&bytes[3076..3080], &0x1234_5678u32.to_le_bytes());
        assert_eq!(bytes[64], 1);
        assert_eq!(bytes[2048], 8);
        let back = SharedInfo::read_from_bytes(bytes).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn per_vcpu_virqs() {
        assert!(virq_is_per_vcpu(VIRQ_TIMER));
        assert!(virq_is_per_vcpu(VIRQ_DEBUG));
        assert!(!virq_is_per_vcpu(VIRQ_CONSOLE));
    }
}
