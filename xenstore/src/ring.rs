//! The shared ring page (`struct xenstore_domain_interface`, `docs/misc/xenstore-ring.txt`).
//!
//! Two byte queues of 1024 bytes each (requests at offset 0, responses at 1024) with
//! free-running `u32` producer/consumer indices masked with `& 1023`, then the server feature
//! bitmap, the connection state and the error indicator. The page memory is reached through
//! [`RingPage`], so the same code runs on a guest page in the hypervisor and on a plain array in
//! host tests.

use core::mem::offset_of;
use guest_abi::xenstore::{
    XenstoreDomainInterface, XENSTORE_RING_SIZE, XENSTORE_SERVER_FEATURE_ERROR,
    XENSTORE_SERVER_FEATURE_RECONNECTION,
};

/// Offset of the request ring (`req[1024]`).
pub const REQ_OFFSET: usize = offset_of!(XenstoreDomainInterface, req);
/// Offset of the response ring (`rsp[1024]`).
pub const RSP_OFFSET: usize = offset_of!(XenstoreDomainInterface, rsp);
/// Offset of `req_cons` (written by the server).
pub const REQ_CONS_OFFSET: usize = offset_of!(XenstoreDomainInterface, req_cons);
/// Offset of `req_prod` (written by the guest).
pub const REQ_PROD_OFFSET: usize = offset_of!(XenstoreDomainInterface, req_prod);
/// Offset of `rsp_cons` (written by the guest).
pub const RSP_CONS_OFFSET: usize = offset_of!(XenstoreDomainInterface, rsp_cons);
/// Offset of `rsp_prod` (written by the server).
pub const RSP_PROD_OFFSET: usize = offset_of!(XenstoreDomainInterface, rsp_prod);
/// Offset of `server_features`.
pub const SERVER_FEATURES_OFFSET: usize = offset_of!(XenstoreDomainInterface, server_features);
/// Offset of `connection` (`XENSTORE_CONNECTED` = 0, `XENSTORE_RECONNECT` = 1).
pub const CONNECTION_OFFSET: usize = offset_of!(XenstoreDomainInterface, connection);
/// Offset of `error` (`XENSTORE_ERROR_*`).
pub const ERROR_OFFSET: usize = offset_of!(XenstoreDomainInterface, error);

/// The features this server advertises: ring reconnection and the error indicator.
pub const SERVER_FEATURES: u32 =
    XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR;

/// The memory of one xenstore ring page, as the server sees it.
///
/// The kernel implements this on the guest's page (with volatile accesses); tests use the
/// implementation on `[u8; 4096]`. Indices are read once per pass and validated, so a guest
/// changing the page concurrently can cause protocol errors but never a panic.
pub trait RingPage {
    /// Copies `buf.len()` bytes at `offset` into `buf`.
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// Copies `data` to `offset`.
    fn write(&mut self, offset: usize, data: &[u8]);
    /// A full memory barrier, called between reading an index and the data it covers, and
    /// between writing data and the index that publishes it. The default does nothing (enough
    /// for host tests; x86 needs at least a compiler fence).
    fn barrier(&self) {}
}

impl RingPage for [u8; 4096] {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self[offset..offset + buf.len()]);
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        self[offset..offset + data.len()].copy_from_slice(data);
    }
}

/// Reads a little-endian `u32` field.
pub(crate) fn read_u32<P: RingPage + ?Sized>(page: &P, offset: usize) -> u32 {
    let mut b = [0u8; 4];
    page.read(offset, &mut b);
    u32::from_le_bytes(b)
}

/// Writes a little-endian `u32` field.
pub(crate) fn write_u32<P: RingPage + ?Sized>(page: &mut P, offset: usize, v: u32) {
    page.write(offset, &v.to_le_bytes());
}

/// Copies `buf.len()` bytes from the ring at `base`, starting at free-running index `idx`.
pub(crate) fn copy_from_ring<P: RingPage + ?Sized>(
    page: &P,
    base: usize,
    idx: u32,
    buf: &mut [u8],
) {
    let start = idx as usize & (XENSTORE_RING_SIZE - 1);
    let first = buf.len().min(XENSTORE_RING_SIZE - start);
    let (a, b) = buf.split_at_mut(first);
    page.read(base + start, a);
    if !b.is_empty() {
        page.read(base, b);
    }
}

/// Copies `data` into the ring at `base`, starting at free-running index `idx`.
pub(crate) fn copy_to_ring<P: RingPage + ?Sized>(page: &mut P, base: usize, idx: u32, data: &[u8]) {
    let start = idx as usize & (XENSTORE_RING_SIZE - 1);
    let first = data.len().min(XENSTORE_RING_SIZE - start);
    page.write(base + start, &data[..first]);
    if first < data.len() {
        page.write(base, &data[first..]);
    }
}

/// Puts a ring page in its initial state: empty queues (indices 0), connected, no error, and
/// the server features advertised. The domain builder calls this before the guest runs.
pub fn init_ring<P: RingPage + ?Sized>(page: &mut P) {
    for off in [
        REQ_CONS_OFFSET,
        REQ_PROD_OFFSET,
        RSP_CONS_OFFSET,
        RSP_PROD_OFFSET,
        CONNECTION_OFFSET,
        ERROR_OFFSET,
    ] {
        write_u32(page, off, 0);
    }
    write_u32(page, SERVER_FEATURES_OFFSET, SERVER_FEATURES);
    page.barrier();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_xs_wire() {
        assert_eq!(REQ_OFFSET, 0);
        assert_eq!(RSP_OFFSET, 1024);
        assert_eq!(REQ_CONS_OFFSET, 2048);
        assert_eq!(REQ_PROD_OFFSET, 2052);
        assert_eq!(RSP_CONS_OFFSET, 2056);
        assert_eq!(RSP_PROD_OFFSET, 2060);
        assert_eq!(SERVER_FEATURES_OFFSET, 2064);
        assert_eq!(CONNECTION_OFFSET, 2068);
        assert_eq!(ERROR_OFFSET, 2072);
    }

    #[test]
    fn wrapping_copies() {
        let mut page = [0u8; 4096];
        copy_to_ring(&mut page, RSP_OFFSET, 1022, b"abcd");
        assert_eq!(&page[RSP_OFFSET + 1022..RSP_OFFSET + 1024], b"ab");
        assert_eq!(&page[RSP_OFFSET..RSP_OFFSET + 2], b"cd");
        let mut buf = [0u8; 4];
        copy_from_ring(&page, RSP_OFFSET, 1022 + 1024 * 7, &mut buf);
        assert_eq!(&buf, b"abcd");
    }
}
