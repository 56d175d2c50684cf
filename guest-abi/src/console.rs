//! `__HYPERVISOR_console_io` sub-ops (`xen.h`) and the PV console ring (`io/console.h`).

use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `CONSOLEIO_write`: write `count` (RSI) bytes from the buffer at RDX (a GVA).
pub const CONSOLEIO_WRITE: u32 = 0;
/// `CONSOLEIO_read`: read up to `count` bytes into the buffer.
pub const CONSOLEIO_READ: u32 = 1;

/// `XENCONS_RING_IDX`: free-running ring index.
pub type XenconsRingIdx = u32;

/// Size of the input ring (`in[]`).
pub const XENCONS_IN_SIZE: usize = 1024;
/// Size of the output ring (`out[]`).
pub const XENCONS_OUT_SIZE: usize = 2048;
/// `XENCONSOLE_CONNECTED`: the `connection` value when the backend services the ring.
pub const XENCONSOLE_CONNECTED: u8 = 0;
/// `XENCONSOLE_DISCONNECTED`.
pub const XENCONSOLE_DISCONNECTED: u8 = 1;

/// `struct xencons_interface` (3092 bytes): the console ring page
/// (`HVM_PARAM_CONSOLE_PFN`). The guest produces into `out` and consumes from `in`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenconsInterface {
    /// Input ring (backend to guest).
    pub r#in: [u8; XENCONS_IN_SIZE],
    /// Output ring (guest to backend).
    pub out: [u8; XENCONS_OUT_SIZE],
    /// Input consumer index (guest).
    pub in_cons: XenconsRingIdx,
    /// Input producer index (backend).
    pub in_prod: XenconsRingIdx,
    /// Output consumer index (backend).
    pub out_cons: XenconsRingIdx,
    /// Output producer index (guest).
    pub out_prod: XenconsRingIdx,
    /// `XENCONSOLE_*` (newer headers).
    pub connection: u8,
    /// Implicit C padding.
    pub _pad: [u8; 3],
}
assert_size!(XenconsInterface, 3092);
assert_offset!(XenconsInterface, in_cons, 3072);

/// `MASK_XENCONS_IDX` for the input ring.
pub const fn mask_in_idx(idx: XenconsRingIdx) -> usize {
    idx as usize & (XENCONS_IN_SIZE - 1)
}

/// `MASK_XENCONS_IDX` for the output ring.
pub const fn mask_out_idx(idx: XenconsRingIdx) -> usize {
    idx as usize & (XENCONS_OUT_SIZE - 1)
}
