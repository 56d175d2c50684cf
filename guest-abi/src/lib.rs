//! The Xen public guest ABI (x86-64) as Rust types and constants.
//!
//! This crate describes *layout only*: hypercall numbers, sub-op numbers, error numbers and the
//! `#[repr(C)]` structures a guest passes to (or shares with) the hypervisor. It contains no
//! behaviour beyond small helpers (names for logging, index masks).
//!
//! Every structure derives zerocopy's [`FromBytes`](zerocopy::FromBytes),
//! [`IntoBytes`](zerocopy::IntoBytes), [`Immutable`](zerocopy::Immutable) and
//! [`KnownLayout`](zerocopy::KnownLayout), so the hypervisor can read and write them from byte
//! buffers (guest memory copies) without `unsafe`. Implicit C padding is spelled out as explicit
//! `_pad` fields so that every byte of every structure is initialised.
//!
//! The values follow Xen's `xen/include/public/*.h` (what Linux carries as
//! `include/xen/interface`). Sizes and offsets are asserted at compile time and, in the test
//! suite, against offsets obtained by compiling Xen's headers (`tests/data/xen-abi-offsets.txt`).
//!
//! Naming: constants keep Xen's names in upper case (`XENVER_get_features` becomes
//! [`version::XENVER_GET_FEATURES`]); hypercall numbers drop the `__HYPERVISOR_` prefix
//! ([`hypercall::MEMORY_OP`]); structures are the C names in CamelCase
//! (`struct xen_add_to_physmap` becomes [`memory::XenAddToPhysmap`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod console;
pub mod cpuid;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hvm;
pub mod hypercall;
pub mod memory;
pub mod netif;
pub mod ring;
pub mod sched;
pub mod start_info;
pub mod vcpu;
pub mod version;
pub mod xen;
pub mod xenstore;

pub use errno::Errno;

/// Asserts at compile time that a type has the given size (in bytes).
macro_rules! assert_size {
    ($t:ty, $n:expr) => {
        const _: () = assert!(core::mem::size_of::<$t>() == $n);
    };
}

/// Asserts at compile time that a field of a type lies at the given offset.
macro_rules! assert_offset {
    ($t:ty, $f:ident, $n:expr) => {
        const _: () = assert!(core::mem::offset_of!($t, $f) == $n);
    };
}

pub(crate) use assert_offset;
pub(crate) use assert_size;
