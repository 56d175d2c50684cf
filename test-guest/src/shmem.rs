//! Memory shared with the hypervisor: volatile accessors for pages it reads and writes
//! (xenstore ring, shared_info, grant table, netif rings and buffers), and page-aligned
//! buffers in `.bss` to share.
//!
//! Everything is addressed by guest-physical address, which the builder's identity map makes
//! the virtual address too. The hypervisor only touches these pages while this (single) vCPU
//! is in a hypercall or a VM exit, so plain volatile accesses are enough; `fence` orders them
//! around the ring indices as Xen's `wmb()`/`rmb()` do.

use core::cell::UnsafeCell;
use core::sync::atomic::{fence, Ordering};

/// Size of a page.
pub const PAGE_SIZE: usize = 4096;

/// `N` page-aligned pages in `.bss`, shared with the hypervisor by address only (never through
/// a Rust reference to their contents).
#[repr(C, align(4096))]
pub struct Pages<const N: usize>(UnsafeCell<[[u8; PAGE_SIZE]; N]>);

// SAFETY: the contents are only reached through raw addresses with volatile accesses; the guest
// has one vCPU and no interrupts, so there is no concurrent access from guest code.
unsafe impl<const N: usize> Sync for Pages<N> {}

impl<const N: usize> Pages<N> {
    /// Zeroed pages (they live in `.bss`).
    pub const fn new() -> Self {
        Self(UnsafeCell::new([[0; PAGE_SIZE]; N]))
    }

    /// Guest-physical address of page `i`.
    pub fn gpa(&self, i: usize) -> u64 {
        assert!(i < N, "page {i} of {N}");
        self.0.get() as u64 + (i * PAGE_SIZE) as u64
    }

    /// Guest frame number of page `i`.
    pub fn gfn(&self, i: usize) -> u64 {
        self.gpa(i) >> 12
    }
}

/// Asserts that `[gpa, gpa + len)` lies in the identity map and does not wrap.
fn check(gpa: u64, len: usize) {
    assert!(
        gpa.checked_add(len as u64)
            .is_some_and(|end| end <= 1 << 32),
        "shared access {gpa:#x}+{len}"
    );
}

/// Reads a byte at `gpa`.
pub fn rd8(gpa: u64) -> u8 {
    check(gpa, 1);
    // SAFETY: `gpa` is identity-mapped (checked above) and names a page shared with the
    // hypervisor, which no Rust reference covers; a volatile load of a byte has no alignment
    // requirement.
    unsafe { core::ptr::read_volatile(gpa as *const u8) }
}

/// Reads a little-endian `u16` at `gpa` (2-byte aligned).
pub fn rd16(gpa: u64) -> u16 {
    check(gpa, 2);
    assert!(gpa & 1 == 0, "rd16({gpa:#x})");
    // SAFETY: as in `rd8`; alignment checked above.
    unsafe { core::ptr::read_volatile(gpa as *const u16) }
}

/// Reads a little-endian `u32` at `gpa` (4-byte aligned).
pub fn rd32(gpa: u64) -> u32 {
    check(gpa, 4);
    assert!(gpa & 3 == 0, "rd32({gpa:#x})");
    // SAFETY: as in `rd8`; alignment checked above.
    unsafe { core::ptr::read_volatile(gpa as *const u32) }
}

/// Writes a byte at `gpa`.
pub fn wr8(gpa: u64, v: u8) {
    check(gpa, 1);
    // SAFETY: as in `rd8`: a shared page that no Rust reference covers.
    unsafe { core::ptr::write_volatile(gpa as *mut u8, v) }
}

/// Writes a little-endian `u16` at `gpa` (2-byte aligned).
pub fn wr16(gpa: u64, v: u16) {
    check(gpa, 2);
    assert!(gpa & 1 == 0, "wr16({gpa:#x})");
    // SAFETY: as in `wr8`; alignment checked above.
    unsafe { core::ptr::write_volatile(gpa as *mut u16, v) }
}

/// Writes a little-endian `u32` at `gpa` (4-byte aligned).
pub fn wr32(gpa: u64, v: u32) {
    check(gpa, 4);
    assert!(gpa & 3 == 0, "wr32({gpa:#x})");
    // SAFETY: as in `wr8`; alignment checked above.
    unsafe { core::ptr::write_volatile(gpa as *mut u32, v) }
}

/// Copies `src` to `gpa`.
pub fn copy_out(gpa: u64, src: &[u8]) {
    for (i, &b) in src.iter().enumerate() {
        wr8(gpa + i as u64, b);
    }
}

/// Copies `dst.len()` bytes from `gpa`.
pub fn copy_in(gpa: u64, dst: &mut [u8]) {
    for (i, b) in dst.iter_mut().enumerate() {
        *b = rd8(gpa + i as u64);
    }
}

/// A full barrier between shared-memory accesses (Xen's `mb()`).
pub fn barrier() {
    fence(Ordering::SeqCst);
}
