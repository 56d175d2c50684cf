//! The few Xen public-ABI constants and structures the guest uses, and typed hypercalls.
//!
//! Values from Xen's public headers (`xen.h`, `version.h`, `memory.h`, `sched.h`, `errno.h`)
//! and the layouts in `xen-abi-offsets.txt`.

use crate::arch;
use crate::hypercall::hypercall;

/// `__HYPERVISOR_memory_op`.
pub const HYPERVISOR_MEMORY_OP: u64 = 12;
/// `__HYPERVISOR_xen_version`.
pub const HYPERVISOR_XEN_VERSION: u64 = 17;
/// `__HYPERVISOR_console_io`.
pub const HYPERVISOR_CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_sched_op`.
pub const HYPERVISOR_SCHED_OP: u64 = 29;

/// `XENVER_version`: returns `(major << 16) | minor`.
pub const XENVER_VERSION: u64 = 0;
/// `XENVER_extraversion`: fills a `char[16]`.
pub const XENVER_EXTRAVERSION: u64 = 1;
/// `XENVER_get_features`: fills a `struct xen_feature_info`.
pub const XENVER_GET_FEATURES: u64 = 6;

/// `CONSOLEIO_write`.
pub const CONSOLEIO_WRITE: u64 = 0;

/// `XENMEM_add_to_physmap`.
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7FF0;

/// `SCHEDOP_shutdown`.
pub const SCHEDOP_SHUTDOWN: u64 = 2;
/// `SHUTDOWN_poweroff`.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;

/// `EFAULT` (Xen errno, returned negated).
pub const EFAULT: i64 = 14;
/// `EINVAL`.
pub const EINVAL: i64 = 22;
/// `ENOSYS`.
pub const ENOSYS: i64 = 38;

/// Offset of `wc_version` (u32) in `struct shared_info`.
pub const SHARED_INFO_WC_VERSION: u64 = 3072;
/// Offset of `wc_sec` (u32) in `struct shared_info`.
pub const SHARED_INFO_WC_SEC: u64 = 3076;

/// `struct xen_feature_info` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FeatureInfo {
    /// IN: which 32-bit submap to return.
    pub submap_idx: u32,
    /// OUT: the submap.
    pub submap: u32,
}

/// `struct xen_add_to_physmap` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AddToPhysmap {
    /// Domain whose physmap changes (`DOMID_SELF`).
    pub domid: u16,
    /// Number of pages (only for `XENMAPSPACE_gmfn_range`).
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index into the space.
    pub idx: u64,
    /// Guest frame number to map it at.
    pub gpfn: u64,
}

/// `struct sched_shutdown` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*`.
    pub reason: u32,
}

/// `console_io(CONSOLEIO_write, buf.len(), buf)`.
pub fn console_write(buf: &[u8]) -> i64 {
    // SAFETY: `buf` is a live slice; CONSOLEIO_write only reads `buf.len()` bytes of it.
    unsafe {
        hypercall(
            HYPERVISOR_CONSOLE_IO,
            [CONSOLEIO_WRITE, buf.len() as u64, buf.as_ptr() as u64, 0, 0],
        )
    }
}

/// `xen_version(XENVER_version, NULL)`: `(major << 16) | minor`, or a negative errno.
pub fn xen_version() -> i64 {
    // SAFETY: XENVER_version takes no pointer.
    unsafe { hypercall(HYPERVISOR_XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0]) }
}

/// `xen_version(XENVER_extraversion, buf)`: fills the 16-byte extraversion string.
pub fn xen_extraversion(buf: &mut [u8; 16]) -> i64 {
    // SAFETY: `buf` is a live, exclusively borrowed 16-byte buffer (xen_extraversion_t).
    unsafe {
        hypercall(
            HYPERVISOR_XEN_VERSION,
            [XENVER_EXTRAVERSION, buf.as_mut_ptr() as u64, 0, 0, 0],
        )
    }
}

/// `xen_version(XENVER_get_features, info)`.
pub fn xen_get_features(info: &mut FeatureInfo) -> i64 {
    // SAFETY: `info` is a live, exclusively borrowed `struct xen_feature_info`.
    unsafe {
        hypercall(
            HYPERVISOR_XEN_VERSION,
            [
                XENVER_GET_FEATURES,
                info as *mut FeatureInfo as u64,
                0,
                0,
                0,
            ],
        )
    }
}

/// `memory_op(XENMEM_add_to_physmap, xatp)`.
pub fn add_to_physmap(xatp: &mut AddToPhysmap) -> i64 {
    // SAFETY: `xatp` is a live, exclusively borrowed `struct xen_add_to_physmap`. The pages it
    // remaps (at `gpfn`) hold no Rust object: the guest image lives at 1 MiB.
    unsafe {
        hypercall(
            HYPERVISOR_MEMORY_OP,
            [
                XENMEM_ADD_TO_PHYSMAP,
                xatp as *mut AddToPhysmap as u64,
                0,
                0,
                0,
            ],
        )
    }
}

/// `sched_op(SCHEDOP_shutdown, {reason})`: returns only if the hypercall failed.
pub fn sched_shutdown(reason: u32) -> i64 {
    let mut arg = SchedShutdown { reason };
    // SAFETY: `arg` is a live `struct sched_shutdown` that the call only reads.
    unsafe {
        hypercall(
            HYPERVISOR_SCHED_OP,
            [
                SCHEDOP_SHUTDOWN,
                &mut arg as *mut SchedShutdown as u64,
                0,
                0,
                0,
            ],
        )
    }
}

/// Shuts the domain down for `reason`; if that fails, reports it and halts forever.
pub fn shutdown(reason: u32) -> ! {
    let rc = sched_shutdown(reason);
    say!("FAIL SCHEDOP_shutdown({reason}) returned rc={rc}");
    arch::halt_forever()
}
