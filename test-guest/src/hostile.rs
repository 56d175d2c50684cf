//! What the hostile modes (`console-flood`, `xmm-probe`, `xmm-victim`, `physmap-moves`,
//! `heap`) share: typed wrappers of the hypercalls they abuse, the guest's RAM size, a clock.
//!
//! Layouts and numbers come from crate `guest-abi` (checked there against Xen's headers).

use guest_abi::{hvm, hypercall as nr, sched};

use crate::arch;
use crate::hypercall::hypercall;

/// Offset of `e820_entries` (u8) in `struct boot_params`.
const BOOT_PARAMS_E820_ENTRIES: u64 = 0x1E8;
/// Offset of `e820_table` in `struct boot_params` (20-byte entries).
const BOOT_PARAMS_E820_TABLE: u64 = 0x2D0;
/// Most entries `e820_table` holds.
const E820_MAX: u64 = 128;
/// `E820_TYPE_RAM`.
const E820_RAM: u32 = 1;

/// The end of the highest RAM range in the `boot_params` e820 map (0 if there is none).
pub fn ram_end(boot_params: u64) -> u64 {
    if boot_params == 0 {
        return 0;
    }
    let rd64 = |gpa: u64| {
        // SAFETY: the boot_params page the domain builder filled, identity-mapped guest RAM that
        // no Rust object occupies; `read_phys_u32` checks alignment and the 4 GiB bound.
        let (lo, hi) = unsafe { (arch::read_phys_u32(gpa), arch::read_phys_u32(gpa + 4)) };
        (u64::from(hi) << 32) | u64::from(lo)
    };
    // SAFETY: as above.
    let n = u64::from(unsafe { arch::read_phys_u8(boot_params + BOOT_PARAMS_E820_ENTRIES) });
    (0..n.min(E820_MAX))
        .map(|i| boot_params + BOOT_PARAMS_E820_TABLE + 20 * i)
        .filter(|&e| rd64(e + 16) as u32 == E820_RAM)
        .map(|e| rd64(e) + rd64(e + 8))
        .max()
        .unwrap_or(0)
}

/// `sched_op(SCHEDOP_yield)`.
pub fn sched_yield() -> i64 {
    // SAFETY: SCHEDOP_yield takes no pointer.
    unsafe { hypercall(nr::SCHED_OP, [u64::from(sched::SCHEDOP_YIELD), 0, 0, 0, 0]) }
}

/// Gives the CPU to the other domains once: a `pause` and `SCHEDOP_yield` (which ends the
/// vCPU's slice, as on Xen).
pub fn yield_cpu() {
    crate::trap::pause();
    sched_yield();
}

/// Xen system time in ns (`HVMOP_get_time`), or 0 if the call fails.
pub fn now_ns() -> u64 {
    let mut t = hvm::XenHvmGetTime { now: 0 };
    // SAFETY: `t` is a live `struct xen_hvm_get_time` the call writes.
    let rc = unsafe {
        hypercall(
            nr::HVM_OP,
            [
                u64::from(hvm::HVMOP_GET_TIME),
                &mut t as *mut hvm::XenHvmGetTime as u64,
                0,
                0,
                0,
            ],
        )
    };
    if rc == 0 {
        t.now
    } else {
        0
    }
}

/// Yields the CPU until `ns` of system time have passed (at most `max_yields` times, in case
/// the clock does not move).
pub fn wait_ns(ns: u64, max_yields: u32) {
    let end = now_ns().saturating_add(ns);
    for _ in 0..max_yields {
        if now_ns() >= end {
            break;
        }
        yield_cpu();
    }
}

/// Issues `nr(cmd, arg)` with `arg` pointing at `*val` (a Xen argument structure).
///
/// # Safety
/// `T` must be the structure the sub-op reads and writes, with no outstanding references to
/// `*val`, and any guest memory the sub-op writes through handles inside it must be valid for
/// it (or unmapped).
pub unsafe fn op_ptr<T>(nr: u64, cmd: u32, val: &mut T) -> i64 {
    // SAFETY: the caller vouches for the structure and what it points to.
    unsafe { hypercall(nr, [u64::from(cmd), val as *mut T as u64, 0, 0, 0]) }
}

/// `memory_op(XENMEM_add_to_physmap, {DOMID_SELF, space, idx, gpfn})`.
///
/// The page at `gpfn` is replaced: it must hold nothing the guest still uses.
pub fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> i64 {
    let mut xatp = guest_abi::memory::XenAddToPhysmap {
        domid: guest_abi::xen::DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    // SAFETY: a live `struct xen_add_to_physmap`; the callers pass gpfns that hold no Rust object.
    unsafe {
        op_ptr(
            nr::MEMORY_OP,
            guest_abi::memory::XENMEM_ADD_TO_PHYSMAP,
            &mut xatp,
        )
    }
}

extern "C" {
    /// The end of the guest image's `.bss` (linker script).
    static __bss_end: u8;
}

/// The first page after the guest image (its `.bss` included).
pub fn image_end() -> u64 {
    let end = &raw const __bss_end as u64;
    (end + 0xFFF) & !0xFFF
}
