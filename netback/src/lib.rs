//! xenolith's network backend (netback): the XenbusState handshake with a
//! guest's netfront, and its TX/RX rings, reached through grants and event
//! channels, with no privileged instruction.
//!
//! The hypervisor is domain 0, so netback is a library the kernel calls with
//! the guest's [`hypercalls::Domain`], a [`hypercalls::Host`] and the
//! hypervisor's [`xenstore::Xenstore`]. One [`Vif`] serves one
//! `/local/domain/<domid>/device/vif/<devid>`.
//!
//! # What the kernel calls
//!
//! * Building the domain: [`backend_features`]`(max_queues)` are the keys for
//!   every vif backend directory (pass them as
//!   `xenstore::toolstack::DomainSpec::vif_backend_features`, or let
//!   [`Vif::attach`] write them). After `populate_domain` and before the guest
//!   runs: `Vif::new(domid, devid, VifConfig::new(nr_vcpus))` and
//!   [`Vif::attach`]`(xs)`, which writes the features and watches
//!   `<frontend>/state`.
//! * Watch events: for every event of `xs.take_backend_events()` for which
//!   [`Vif::is_my_event`] holds, call [`Vif::frontend_changed`]`(dom, host, xs)`.
//!   It connects, disconnects or resets the vif and writes `<backend>/state`.
//! * Kicks: for each port of `dom.take_backend_kicks()` that
//!   [`Vif::owns_port`], call [`Vif::service`]`(dom, host, &mut frames)` and
//!   hand `frames` (the guest's transmitted frames) to the switch. `netswitch`
//!   carries plain bytes, so pass it `frame.segment()` (a no-op except for
//!   the GSO super-frames a guest sends once it sees `feature-gso-tcpv4`).
//!   Also call `service` whenever [`Vif::needs_service`]: right after the vif
//!   connects (netfront queues packets and posts buffers before the backend
//!   is there), and under [`VifConfig::tx_holdoff`].
//! * Frames for the guest: [`Vif::deliver_rx`]`(dom, host, Frame::new(bytes))`
//!   for each frame the switch queued for the vif's port.
//! * Errors: every call that can see a broken ring returns a [`VifError`]
//!   whose `Display` is the log line (`netback: d1 vif0: ...`). The vif is then
//!   disconnected (grants given back, state `Closing`); call
//!   [`Vif::publish_state`]`(xs)` so the frontend sees it. Nothing panics and
//!   no other vif or domain is touched.
//! * Teardown: [`Vif::detach`]`(dom, host, xs)` before `Domain::destroy`.
//!
//! # The handshake (Linux netback's `xenbus.c`, doc §13)
//!
//! The toolstack leaves the backend in `InitWait`. When the frontend reaches
//! `Connected` (or `Initialised`), netback reads `request-rx-copy` (must be 1),
//! `feature-sg`, `feature-gso-tcpv4/-tcpv6`, `feature-rx-notify`,
//! `multi-queue-num-queues` (absent: 1; 0 or more than offered: error) and
//! per queue (flat for one queue, `queue-N/` otherwise) `tx-ring-ref`, `rx-ring-ref` and
//! `event-channel-tx` + `event-channel-rx` or `event-channel`. The ports must
//! be the guest's, open to domain 0 (netfront's unbound ports are: no bind
//! step is needed). `feature-rx-notify` is recorded but not required, unlike
//! in Linux's netback: the RX `req_event` is armed either way. Then the
//! backend goes `Connected`. A frontend `Closing` makes it `Closing`;
//! `Closed` or a vanished frontend makes it `Closed`; a frontend back at
//! `Initialising` (reconnect, kexec) puts it back in `InitWait`.
//!
//! # Rings and grants
//!
//! Each ring page is held through [`Domain::grant_acquire`](hypercalls::Domain::grant_acquire)
//! (writable) from connect to disconnect, as Linux's netback keeps its ring
//! mapping; the frontend ends those grants only after the backend closed.
//! Indices are read from the page every time and checked: more than
//! [`RING_SIZE`] unconsumed requests disconnects. The backend's own
//! `req_cons`/`rsp_prod` never come back from the page. Packet data moves only
//! by [`grant_read`](hypercalls::Domain::grant_read) and
//! [`grant_write`](hypercalls::Domain::grant_write), so `GTF_reading` and
//! `GTF_writing` on data pages are set only for one copy (netfront marks the
//! device broken if they stay set).
//!
//! Nothing runs concurrently with a backend call (the `Host` contract), so the
//! page cannot change during one; a pass still stops after two rings' worth of
//! TX slots.
//!
//! # TX (guest to network)
//!
//! A packet is a first request (its `size` is the packet's total), then
//! extra-info slots if `XEN_NETTXF_extra_info` (GSO is used; multicast and
//! hash extras are ignored), then continuation slots while
//! `XEN_NETTXF_more_data`, at most [`MAX_TX_SLOTS`] data slots. Every slot
//! gets a response in its own ring slot: `{id, OKAY|ERROR}`, or
//! `XEN_NETIF_RSP_NULL` for extras. `csum_blank` packets get their TCP/UDP
//! checksum computed (IPv4 and IPv6, VLAN-tagged or not): netfront always
//! offloads it. A packet shorter than an Ethernet header, or whose checksum or
//! GSO request cannot apply, is answered `ERROR` and counted as dropped. The
//! following disconnect: size 0, a slot crossing its page, continuation slots
//! larger than the total, too many slots, a packet running past `req_prod`,
//! unknown extra types, a bad GSO type or size, any grant that cannot be used.
//!
//! # RX (network to guest)
//!
//! Frames go to a queue by flow hash and wait there (bounded:
//! [`VifConfig::rx_queue_frames`], [`VifConfig::rx_queue_bytes`]) until the
//! guest has posted enough buffers. They are copied to **offset 0** of each
//! buffer, up to 4096 bytes per slot. Linux's netback does the same. QEMU's
//! offset 2 (`NET_IP_ALIGN`) only helps a guest that receives straight into its
//! skb, which netfront does not: it copies the headers out of the page. On
//! x86 `NET_IP_ALIGN` is 0 anyway, and offset 0 lets a 1514-byte frame use one
//! slot and a 64 KiB one 16. Each response goes into the slot of the request
//! it consumed. Frames spanning several slots carry `more_data` and need
//! `feature-sg`. `data_validated` is set when the TCP/UDP checksum verifies.
//! GSO frames go whole, with a GSO extra slot right after the first slot and
//! `csum_blank|data_validated` (the checksum field then holds the pseudo-header
//! sum, as Linux expects for `CHECKSUM_PARTIAL`), to frontends that negotiated
//! `feature-gso-tcpv4/-tcpv6`. Other frontends get them segmented
//! ([`Frame::segment`]).
//!
//! # Notifications
//!
//! Responses are pushed with `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: the guest
//! is notified only if its `rsp_event` lies in the newly published range. A
//! drained TX ring is left with `req_event = req_cons + 1`
//! (`RING_FINAL_CHECK_FOR_REQUESTS`, re-checked after the write). The RX
//! `req_event` is armed only when a frame waits for buffers, and then for
//! exactly the slots it needs. So a guest posting buffers never kicks unless
//! something waits. With [`VifConfig::tx_holdoff`] a busy TX ring is polled
//! instead of kicked. Ports that are one channel for TX and RX are notified
//! once per pass.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod csum;
mod error;
mod ring;
mod vif;

pub use error::{ErrorKind, RingKind, VifError};
pub use vif::{FrontendFeatures, Vif, VifConfig, VifStats, XenbusState};

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Entries in a TX or RX ring page (`NET_TX_RING_SIZE`, `NET_RX_RING_SIZE`).
pub const RING_SIZE: u32 = guest_abi::netif::NET_TX_RING_SIZE as u32;
/// Data slots one TX packet may use (`XEN_NETIF_NR_SLOTS_MIN`; netfront uses
/// at most 18).
pub const MAX_TX_SLOTS: usize = guest_abi::netif::XEN_NETIF_NR_SLOTS_MIN;
/// Most queues a vif offers (`multi-queue-max-queues` is the guest's vCPU
/// count up to this).
pub const MAX_QUEUES: u32 = 16;
/// The largest frame written to an RX ring (16 slots).
pub const MAX_RX_FRAME: usize = 16 * 4096;

/// Which TCP a GSO frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    /// TCP over IPv4 (`XEN_NETIF_GSO_TYPE_TCPV4`).
    TcpV4,
    /// TCP over IPv6 (`XEN_NETIF_GSO_TYPE_TCPV6`).
    TcpV6,
}

/// Segmentation offload: the frame is a TCP "super-frame" to be cut into
/// segments of at most `mss` payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    /// The protocol.
    pub kind: GsoKind,
    /// The segment size (`u.gso.size`).
    pub mss: u16,
}

/// An Ethernet frame (destination MAC first, no FCS) on its way through a vif.
///
/// Frames from [`Vif::service`] have correct TCP/UDP checksums (blank ones
/// were filled in). A frame with `gso` set may be longer than the MTU: hand it
/// whole to a receiver that takes GSO ([`Vif::deliver_rx`] does the right
/// thing for a guest) or cut it with [`Frame::segment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The bytes.
    pub data: Vec<u8>,
    /// Set for a TCP super-frame.
    pub gso: Option<Gso>,
}

impl Frame {
    /// A plain frame.
    pub fn new(data: Vec<u8>) -> Frame {
        Frame { data, gso: None }
    }

    /// The frame as MTU-sized frames: a GSO frame is segmented (TCP sequence
    /// numbers, IP lengths and ids, and checksums set per segment); anything
    /// else comes back as it is. A GSO frame that is not TCP over IP comes
    /// back unsegmented with `gso` cleared.
    pub fn segment(self) -> Vec<Frame> {
        match self.gso {
            Some(g) => match csum::segment_tcp(&self.data, g.mss) {
                Some(segs) => segs.into_iter().map(Frame::new).collect(),
                None => vec![Frame::new(self.data)],
            },
            None => vec![self],
        }
    }
}

/// The keys netback offers in every vif backend directory, with
/// `multi-queue-max-queues = max_queues` (clamped to 1..=[`MAX_QUEUES`]):
/// `feature-rx-copy=1` (required by netfront), `feature-rx-flip=0`,
/// `feature-sg=1`, `feature-gso-tcpv4=1`, `feature-gso-tcpv6=1`,
/// `feature-ipv6-csum-offload=1`, `feature-rx-notify=1`,
/// `feature-split-event-channels=1`, `multi-queue-max-queues`.
/// Not offered: `feature-multicast-control`, `feature-ctrl-ring`,
/// `feature-xdp-headroom`, `feature-dynamic-multicast-control`.
pub fn backend_features(max_queues: u32) -> Vec<(&'static str, String)> {
    let q = max_queues.clamp(1, MAX_QUEUES);
    [
        ("feature-rx-copy", "1"),
        ("feature-rx-flip", "0"),
        ("feature-sg", "1"),
        ("feature-gso-tcpv4", "1"),
        ("feature-gso-tcpv6", "1"),
        ("feature-ipv6-csum-offload", "1"),
        ("feature-rx-notify", "1"),
        ("feature-split-event-channels", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k, String::from(v)))
    .chain([("multi-queue-max-queues", alloc::format!("{q}"))])
    .collect()
}
