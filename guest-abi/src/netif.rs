//! The PV network interface rings (`io/netif.h`): TX/RX requests and responses, extra-info
//! slots, flags, and the 4 KiB shared-ring pages.

use crate::grant_table::GrantRef;
use crate::ring::{ring_size, RingIdx};
use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XEN_NETIF_NR_SLOTS_MIN`: slots a backend must accept per packet.
pub const XEN_NETIF_NR_SLOTS_MIN: usize = 18;
/// `XEN_NETIF_MAX_TX_SIZE`: the largest TX packet.
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xFFFF;

/// `NETTXF_csum_blank`: the L4 checksum is blank (the backend must fill it).
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: the packet data was validated.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: a [`NetifExtraInfo`] slot follows.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`: the packet data was validated.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`: the L4 checksum is blank.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`: the packet continues in the next response.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`: a [`NetifExtraInfo`] slot follows.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`: a GSO prefix descriptor.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// `XEN_NETIF_EXTRA_TYPE_NONE` (never used).
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`.
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;
/// `XEN_NETIF_GSO_TYPE_NONE`.
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_GSO_TYPE_TCPV4`.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`.
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;

/// `NETIF_RSP_DROPPED`.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: response for an extra-info slot.
pub const NETIF_RSP_NULL: i16 = 1;

/// `struct netif_tx_request` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifTxRequest {
    /// Grant of the page holding the data.
    pub gref: GrantRef,
    /// Offset of the data in that page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// First slot: the whole packet's size; later slots: this fragment's size.
    pub size: u16,
}
assert_size!(NetifTxRequest, 12);

/// `struct netif_tx_response` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifTxResponse {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}
assert_size!(NetifTxResponse, 4);

/// `struct netif_rx_request` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifRxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Padding (C `pad`).
    pub pad: u16,
    /// Grant of a whole page to receive into.
    pub gref: GrantRef,
}
assert_size!(NetifRxRequest, 8);

/// `struct netif_rx_response` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NetifRxResponse {
    /// The request's `id`.
    pub id: u16,
    /// Offset of the data in the granted page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Negative: `NETIF_RSP_*` error; otherwise the data length.
    pub status: i16,
}
assert_size!(NetifRxResponse, 8);

/// `struct netif_extra_info` (8 bytes). The 6-byte union `u` is kept as raw bytes; see the
/// accessors for its GSO and multicast views.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(2))]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub r#type: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The union: `gso {u16 size; u8 type; u8 pad; u16 features}`, `mcast {u8 addr[6]}`,
    /// `hash {u8 type; u8 algorithm; u8 value[4]}`.
    pub u: [u8; 6],
}
assert_size!(NetifExtraInfo, 8);

impl NetifExtraInfo {
    /// `u.gso.size`: the GSO segment size (MSS).
    pub const fn gso_size(&self) -> u16 {
        u16::from_le_bytes([self.u[0], self.u[1]])
    }

    /// `u.gso.type`: `XEN_NETIF_GSO_TYPE_*`.
    pub const fn gso_type(&self) -> u8 {
        self.u[2]
    }

    /// `u.gso.features`.
    pub const fn gso_features(&self) -> u16 {
        u16::from_le_bytes([self.u[4], self.u[5]])
    }

    /// `u.mcast.addr`: the multicast MAC address.
    pub const fn mcast_addr(&self) -> [u8; 6] {
        self.u
    }
}

/// `union netif_tx_sring_entry` (12 bytes): a request or its response, as raw bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(4))]
pub struct NetifTxSringEntry {
    /// The slot's bytes.
    pub bytes: [u8; 12],
}
assert_size!(NetifTxSringEntry, 12);

impl NetifTxSringEntry {
    /// The slot read as a request.
    pub fn req(&self) -> NetifTxRequest {
        zerocopy::transmute!(self.bytes)
    }

    /// The slot read as an extra-info slot (first 8 bytes).
    pub fn extra(&self) -> NetifExtraInfo {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[..8]);
        zerocopy::transmute!(b)
    }

    /// The slot read as a response (first 4 bytes).
    pub fn rsp(&self) -> NetifTxResponse {
        let b: [u8; 4] = [self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]];
        zerocopy::transmute!(b)
    }

    /// Overwrites the slot's first bytes with a response (the rest is left as is).
    pub fn set_rsp(&mut self, rsp: NetifTxResponse) {
        self.bytes[..4].copy_from_slice(rsp.as_bytes());
    }

    /// Overwrites the slot with a request.
    pub fn set_req(&mut self, req: NetifTxRequest) {
        self.bytes = zerocopy::transmute!(req);
    }
}

/// `union netif_rx_sring_entry` (8 bytes): a request or its response, as raw bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, align(4))]
pub struct NetifRxSringEntry {
    /// The slot's bytes.
    pub bytes: [u8; 8],
}
assert_size!(NetifRxSringEntry, 8);

impl NetifRxSringEntry {
    /// The slot read as a request.
    pub fn req(&self) -> NetifRxRequest {
        zerocopy::transmute!(self.bytes)
    }

    /// The slot read as a response.
    pub fn rsp(&self) -> NetifRxResponse {
        zerocopy::transmute!(self.bytes)
    }

    /// The slot read as an extra-info slot.
    pub fn extra(&self) -> NetifExtraInfo {
        zerocopy::transmute!(self.bytes)
    }

    /// Overwrites the slot with a response.
    pub fn set_rsp(&mut self, rsp: NetifRxResponse) {
        self.bytes = zerocopy::transmute!(rsp);
    }

    /// Overwrites the slot with a request.
    pub fn set_req(&mut self, req: NetifRxRequest) {
        self.bytes = zerocopy::transmute!(req);
    }
}

/// `NET_TX_RING_SIZE(4096)`: TX entries in a 4 KiB ring page.
pub const NET_TX_RING_SIZE: usize = ring_size(4096, core::mem::size_of::<NetifTxSringEntry>());
/// `NET_RX_RING_SIZE(4096)`: RX entries in a 4 KiB ring page.
pub const NET_RX_RING_SIZE: usize = ring_size(4096, core::mem::size_of::<NetifRxSringEntry>());

/// `struct netif_tx_sring` for a 4 KiB page (3136 bytes: header + 256 entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct NetifTxSring {
    /// Requests produced by the frontend.
    pub req_prod: RingIdx,
    /// Event threshold for requests.
    pub req_event: RingIdx,
    /// Responses produced by the backend.
    pub rsp_prod: RingIdx,
    /// Event threshold for responses.
    pub rsp_event: RingIdx,
    /// `pvt` union (netif: `smartpoll_active` in byte 0).
    pub pvt: [u8; 4],
    /// Padding (C `__pad[44]`).
    pub pad: [u8; 44],
    /// The slots; index with `idx & (NET_TX_RING_SIZE - 1)`.
    pub ring: [NetifTxSringEntry; NET_TX_RING_SIZE],
}
assert_offset!(NetifTxSring, ring, 64);
assert_size!(NetifTxSring, 64 + 12 * 256);

/// `struct netif_rx_sring` for a 4 KiB page (2112 bytes: header + 256 entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct NetifRxSring {
    /// Requests produced by the frontend.
    pub req_prod: RingIdx,
    /// Event threshold for requests.
    pub req_event: RingIdx,
    /// Responses produced by the backend.
    pub rsp_prod: RingIdx,
    /// Event threshold for responses.
    pub rsp_event: RingIdx,
    /// `pvt` union.
    pub pvt: [u8; 4],
    /// Padding (C `__pad[44]`).
    pub pad: [u8; 44],
    /// The slots; index with `idx & (NET_RX_RING_SIZE - 1)`.
    pub ring: [NetifRxSringEntry; NET_RX_RING_SIZE],
}
assert_offset!(NetifRxSring, ring, 64);
assert_size!(NetifRxSring, 64 + 8 * 256);

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn ring_sizes() {
        assert_eq!(NET_TX_RING_SIZE, 256);
        assert_eq!(NET_RX_RING_SIZE, 256);
    }

    #[test]
    fn tx_slot_views() {
        let mut page = NetifTxSring::new_zeroed();
        let req = NetifTxRequest {
            gref: 9,
            offset: 0x10,
            flags: NETTXF_MORE_DATA,
            id: 3,
            size: 1514,
        };
        page.ring[5].set_req(req);
        assert_eq!(page.ring[5].req(), req);
        page.ring[5].set_rsp(NetifTxResponse {
            id: 3,
            status: NETIF_RSP_OKAY,
        });
        assert_eq!(page.ring[5].rsp(), NetifTxResponse { id: 3, status: 0 });
        let bytes = page.as_bytes();
        assert_eq!(&bytes[64 + 5 * 12..64 + 5 * 12 + 2], &3u16.to_le_bytes());
    }

    #[test]
    fn rx_slot_and_extra() {
        let mut e = NetifRxSringEntry::default();
        e.set_req(NetifRxRequest {
            id: 4,
            pad: 0,
            gref: 77,
        });
        assert_eq!(e.req().gref, 77);
        e.set_rsp(NetifRxResponse {
            id: 4,
            offset: 2,
            flags: NETRXF_DATA_VALIDATED,
            status: 60,
        });
        assert_eq!(e.rsp().status, 60);
        let x = NetifExtraInfo {
            r#type: XEN_NETIF_EXTRA_TYPE_GSO,
            flags: 0,
            u: [0xb4, 0x05, XEN_NETIF_GSO_TYPE_TCPV4, 0, 0, 0],
        };
        assert_eq!(x.gso_size(), 1460);
        assert_eq!(x.gso_type(), XEN_NETIF_GSO_TYPE_TCPV4);
        assert_eq!(x.gso_features(), 0);
        let mut t = NetifTxSringEntry::default();
        t.bytes[..8].copy_from_slice(x.as_bytes());
        assert_eq!(t.extra(), x);
        assert_eq!(x.mcast_addr()[0], 0xb4);
    }
}
