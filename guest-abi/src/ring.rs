//! Shared-ring layout (`io/ring.h`): the header every split-driver ring page starts with, and
//! the ring-size computation.

use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `RING_IDX`: free-running ring index.
pub type RingIdx = u32;

/// Byte offset of the first ring entry in a shared-ring page (`offsetof(sring, ring)`).
pub const SRING_ENTRIES_OFFSET: usize = 64;

/// The header of a shared ring (`struct *_sring` up to `ring[]`, 64 bytes).
///
/// The frontend initialises `req_event = rsp_event = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SringHeader {
    /// Requests produced by the frontend.
    pub req_prod: RingIdx,
    /// The backend wants an event when `req_prod` reaches this.
    pub req_event: RingIdx,
    /// Responses produced by the backend.
    pub rsp_prod: RingIdx,
    /// The frontend wants an event when `rsp_prod` reaches this.
    pub rsp_event: RingIdx,
    /// Driver-private bytes (C union `pvt`; netif: `smartpoll_active`).
    pub pvt: [u8; 4],
    /// Padding (C `__pad[44]`).
    pub pad: [u8; 44],
}
assert_size!(SringHeader, SRING_ENTRIES_OFFSET);
assert_offset!(SringHeader, pvt, 16);

/// `__RING_SIZE`: the number of `entry_size`-byte entries in a `page_size`-byte shared ring,
/// rounded down to a power of two.
pub const fn ring_size(page_size: usize, entry_size: usize) -> usize {
    if entry_size == 0 || page_size <= SRING_ENTRIES_OFFSET {
        return 0;
    }
    let n = (page_size - SRING_ENTRIES_OFFSET) / entry_size;
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// `RING_NEED_NOTIFY` logic for `RING_PUSH_{REQUESTS,RESPONSES}_AND_CHECK_NOTIFY`: after moving
/// a producer index from `old` to `new`, the peer must be notified iff its `event` index lies in
/// `(old, new]` (with wrap-around).
pub const fn need_notify(old: RingIdx, new: RingIdx, event: RingIdx) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ring_size(4096, 12), 256);
        assert_eq!(ring_size(4096, 8), 256);
        assert_eq!(ring_size(4096, 64), 32);
        assert_eq!(ring_size(4096, 112), 32);
        assert_eq!(ring_size(4096, 0), 0);
        assert_eq!(ring_size(64, 8), 0);
        assert_eq!(ring_size(4096, 5000), 0);
    }

    #[test]
    fn notify() {
        assert!(need_notify(0, 1, 1));
        assert!(!need_notify(1, 2, 1));
        assert!(need_notify(0, 5, 3));
        assert!(need_notify(u32::MAX, 1, 0));
        assert!(!need_notify(5, 5, 5));
    }
}
