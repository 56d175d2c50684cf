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
//!   [`Vif::owns_port`], call [`Vif::service`]`(dom, host, &mut frames)` (or
//!   its halves [`Vif::service_tx`] and [`Vif::service_rx`]) and hand
//!   `frames` (the guest's transmitted frames) to the switch as they are:
//!   `switch.input_packet(port, frame.into_packet(), now)`. The switch's
//!   [`Packet`] carries the frame's buffer and its offload state (GSO,
//!   checksum) as an opaque tag, so a GSO super-frame crosses it whole.
//!   Also call `service` whenever [`Vif::needs_service`]: right after the vif
//!   connects (netfront queues packets and posts buffers before the backend
//!   is there), under [`VifConfig::tx_holdoff`], and once TX, stopped for
//!   want of a pool buffer, can go on ([`Vif::tx_resumable`]: buffers come
//!   back when frames are delivered elsewhere, so check it after deliveries).
//! * Frames for the guest: [`Vif::deliver_rx_batch`]`(dom, host, frames)`
//!   with `Frame::from_packet(packet)` for each packet the switch queued for
//!   the vif's port (one notification per batch).
//! * Frames for a receiver without offloads (the peer, which takes no GSO
//!   and checks checksums): [`Frame::into_plain`] segments and completes
//!   them as they are pulled.
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
//! `feature-sg`, `feature-gso-tcpv4/-tcpv6`, `feature-no-csum-offload` and
//! `feature-ipv6-csum-offload` (whether RX may carry partial checksums of
//! IPv4 and IPv6 frames), `feature-rx-notify`, `multi-queue-num-queues` (absent: 1; 0 or more than offered: error) and
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
//! page cannot change during one; a pass still stops after [`TX_PASS_SLOTS`]
//! TX slots, and an RX pass consumes at most the ring's [`RING_SIZE`]
//! requests per queue.
//!
//! # TX (guest to network)
//!
//! A packet is a first request (its `size` is the packet's total), then
//! extra-info slots if `XEN_NETTXF_extra_info` (GSO is used; multicast and
//! hash extras are ignored), then continuation slots while
//! `XEN_NETTXF_more_data`, at most [`MAX_TX_SLOTS`] data slots. Every slot
//! gets a response in its own ring slot: `{id, OKAY|ERROR}`, or
//! `XEN_NETIF_RSP_NULL` for extras. Nothing is computed, as in Linux's
//! netback: the packet keeps its checksum state ([`Checksum`], Linux's
//! `ip_summed`): `csum_blank` is [`Checksum::Partial`] (the field holds the
//! pseudo-header sum netfront put there), `data_validated` alone is
//! [`Checksum::Validated`], neither is [`Checksum::None`]; a GSO packet stays
//! whole. A packet shorter than an Ethernet header, or whose checksum or GSO
//! request cannot apply (`csum_blank` on anything but TCP/UDP over IPv4/IPv6,
//! VLAN-tagged or not; GSO on anything but TCP of its IP version, or asking
//! for more than [`csum::MAX_GSO_SEGS`] segments), is answered `ERROR` and
//! counted as dropped. The following disconnect: size 0, a slot crossing its
//! page, continuation slots larger than the total, too many slots, a packet
//! running past `req_prod`, unknown extra types, a bad GSO type or a GSO size
//! below [`MIN_GSO_SIZE`], any grant that cannot be used.
//!
//! A pass ([`Vif::service_tx`]) takes at most [`TX_PASS_SLOTS`] slots over
//! all of a vif's queues, starting with the queue after the one the last
//! pass started with; a vif with more waiting asks to be called again
//! ([`Vif::needs_service`]), so one guest's flood costs one bounded pass
//! per call and the kernel can serve every vif in turn.
//!
//! Each packet is copied into a buffer of the vif's [`Pool`]. When the pool
//! has none for the next packet, TX stops there: its requests stay in the
//! ring, unanswered, with `req_event` left alone (the guest does not kick
//! for nothing), until a buffer comes back ([`Vif::tx_resumable`]). A packet
//! no buffer of the pool can ever hold is answered `ERROR`.
//!
//! # RX (network to guest)
//!
//! Frames go to a queue by flow hash and wait there (bounded:
//! [`VifConfig::rx_queue_frames`], [`VifConfig::rx_queue_bytes`]) until the
//! guest has posted enough buffers, or at most
//! [`VifConfig::rx_drain_timeout_ms`] (10 s, Linux's `rx_drain_timeout`),
//! after which they are dropped ([`Vif::expire_rx`], [`Vif::rx_expiry`]). They are copied to **offset 0** of each
//! buffer, up to 4096 bytes per slot. Linux's netback does the same. QEMU's
//! offset 2 (`NET_IP_ALIGN`) only helps a guest that receives straight into its
//! skb, which netfront does not: it copies the headers out of the page. On
//! x86 `NET_IP_ALIGN` is 0 anyway, and offset 0 lets a 1514-byte frame use one
//! slot and a 64 KiB one 16. Each response goes into the slot of the request
//! it consumed. Frames spanning several slots carry `more_data` and need
//! `feature-sg`. The flags follow the frame's checksum state, as Linux's
//! netback sets them, and nothing is verified (the guest checks what it must):
//! [`Checksum::Partial`] gives `csum_blank|data_validated` with nothing
//! computed (completed instead, then `data_validated`, for a frontend that
//! wrote `feature-no-csum-offload`, or for IPv6 one without
//! `feature-ipv6-csum-offload`); [`Checksum::Validated`] gives
//! `data_validated`; [`Checksum::None`] no flag. GSO frames go whole, with a
//! GSO extra slot right after the first slot and `csum_blank|data_validated`
//! (the checksum field holds the pseudo-header sum, as Linux expects for
//! `CHECKSUM_PARTIAL`; a frame that came otherwise gets it), to frontends
//! that negotiated `feature-sg`, `feature-gso-tcpv4/-tcpv6` and partial
//! checksums of that IP version ([`Vif::takes_gso`]). Other frontends get
//! them segmented, with `data_validated` and every checksum computed: the
//! frame waits whole in the queue and each segment is cut
//! ([`csum::TcpSegments`]) into one scratch buffer of the vif as the RX
//! buffers for it are posted, so segmenting costs no buffer and drops
//! nothing.
//!
//! # Buffers, and what a guest costs
//!
//! No frame costs a heap allocation. Each vif allocates, in [`Vif::new`], a
//! [`Pool`] ([`VifConfig::pool`]; by default [`VifConfig::DEFAULT_POOL`]: 512
//! buffers of [`SMALL_BUF_LEN`] and 24 of [`LARGE_BUF_LEN`], 2.5 MiB) and a
//! 64 KiB segmentation buffer; at connect, the slots of its RX queues
//! ([`VifConfig::rx_queue_frames`] per queue). [`VifConfig::memory_bound`]
//! is the sum (2.62 MiB for a 2-queue vif by default, 3.03 MiB with 16
//! queues), and it is all a guest's network traffic makes the hypervisor
//! hold for it: every frame the guest sends lives in a buffer of its own pool
//! wherever it goes (the switch's queues, another vif's RX queue, the peer's
//! receive queue), and so do the copies the switch makes to flood it and the
//! segments [`Frame::into_plain`] cuts of it for the peer; each buffer goes
//! back to the pool when its frame is delivered or dropped. A guest that
//! sends more than its pool holds waits (so does one whose receivers are slow
//! to take its frames); no other guest's pool is touched. Frames waiting for
//! a guest's RX buffers are held in their senders' buffers, at most
//! [`VifConfig::rx_queue_frames`] and [`VifConfig::rx_queue_bytes`] per queue.

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
pub use netswitch::{Buf, Packet, Pool, PoolConfig, PoolStats};
pub use vif::{FrontendFeatures, Vif, VifConfig, VifStats, XenbusState};

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Entries in a TX or RX ring page (`NET_TX_RING_SIZE`, `NET_RX_RING_SIZE`).
pub const RING_SIZE: u32 = guest_abi::netif::NET_TX_RING_SIZE as u32;
/// TX slots one [`Vif::service_tx`] call consumes at most, over all of the
/// vif's queues (two rings' worth: a pass's worth of pool buffers, see
/// [`VifConfig::DEFAULT_POOL`]); the one packet that crosses the bound is
/// taken whole.
pub const TX_PASS_SLOTS: u32 = 2 * RING_SIZE;
/// Data slots one TX packet may use (`XEN_NETIF_NR_SLOTS_MIN`; netfront uses
/// at most 18).
pub const MAX_TX_SLOTS: usize = guest_abi::netif::XEN_NETIF_NR_SLOTS_MIN;
/// The smallest GSO segment size (`u.gso.size`) a TX packet may ask for:
/// Linux's `TCP_MIN_GSO_SIZE`, `TCP_MIN_SND_MSS` (48, the floor of
/// `net.ipv4.tcp_min_snd_mss`) less `MAX_TCP_OPTION_SPACE` (40), the least
/// payload a Linux TCP segment carries with every option present, so no
/// Linux netfront asks for less. A smaller size is a fatal TX error (the vif
/// disconnects), as Linux's netback treats a size of 0
/// (`xenvif_set_skb_gso`, `xenvif_fatal_tx_err`); with it a 64 KiB frame
/// makes at most 8192 segments, and [`csum::MAX_GSO_SEGS`] bounds them
/// further per frame.
pub const MIN_GSO_SIZE: u16 = 8;
/// Most queues a vif offers (`multi-queue-max-queues` is the guest's vCPU
/// count up to this).
pub const MAX_QUEUES: u32 = 16;
/// The largest frame written to an RX ring (16 slots).
pub const MAX_RX_FRAME: usize = 16 * 4096;
/// Length of a small pool buffer: a standard 1514-byte frame with two VLAN
/// tags fits, as does any frame of one slot under 2 KiB.
pub const SMALL_BUF_LEN: usize = 2048;
/// Length of a large pool buffer: the longest TX packet (its size is a
/// `u16`) and the longest RX frame ([`MAX_RX_FRAME`]).
pub const LARGE_BUF_LEN: usize = MAX_RX_FRAME;

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

/// The state of a frame's TCP/UDP checksum, as Linux's `skb->ip_summed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Checksum {
    /// Nothing is known (`CHECKSUM_NONE`): whoever receives the frame checks
    /// its checksum.
    #[default]
    None,
    /// Partial (`CHECKSUM_PARTIAL`; TX `NETTXF_csum_blank`): the TCP/UDP
    /// checksum field holds the folded pseudo-header sum, as netfront sends
    /// it, and the sum over the segment is still to be folded in
    /// ([`Frame::complete_checksum`]).
    Partial,
    /// Known to be right (`CHECKSUM_UNNECESSARY`): TX `NETTXF_data_validated`
    /// without `csum_blank`, or a frame the hypervisor made (the peer's,
    /// segments).
    Validated,
}

/// An Ethernet frame (destination MAC first, no FCS) on its way through a vif,
/// with its offload state.
///
/// Frames from [`Vif::service`] are in a buffer of the sending vif's pool and
/// keep what the guest asked for: a GSO super-frame stays whole (longer than
/// the MTU) and a `csum_blank` checksum stays partial. Hand one whole to a
/// receiver that takes offloads ([`Vif::deliver_rx`] does what the receiving
/// frontend negotiated) or turn it into plain frames for one that does not
/// ([`Frame::into_plain`]). Through the switch a frame travels as a
/// [`Packet`] ([`Frame::into_packet`], [`Frame::from_packet`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The bytes.
    pub data: Buf,
    /// Set for a TCP super-frame.
    pub gso: Option<Gso>,
    /// Its TCP/UDP checksum.
    pub csum: Checksum,
}

const TAG_CSUM_PARTIAL: u32 = 1;
const TAG_CSUM_VALIDATED: u32 = 2;
const TAG_GSO_V4: u32 = 1 << 2;
const TAG_GSO_V6: u32 = 2 << 2;

impl Frame {
    /// A plain frame of no pool, with nothing known of its checksum.
    pub fn new(data: Vec<u8>) -> Frame {
        Frame::from_buf(Buf::from_vec(data))
    }

    /// A plain frame in `data`, with nothing known of its checksum.
    pub fn from_buf(data: Buf) -> Frame {
        Frame {
            data,
            gso: None,
            csum: Checksum::None,
        }
    }

    /// The switch tag of a frame with `gso` and `csum`: bits 0-1 the checksum
    /// state (0 none, 1 partial, 2 validated), bits 2-3 the GSO type (0 none,
    /// 1 TCPv4, 2 TCPv6), bits 16-31 the segment size. A plain frame's tag is 0.
    pub const fn tag_of(gso: Option<Gso>, csum: Checksum) -> u32 {
        let c = match csum {
            Checksum::None => 0,
            Checksum::Partial => TAG_CSUM_PARTIAL,
            Checksum::Validated => TAG_CSUM_VALIDATED,
        };
        let g = match gso {
            None => 0,
            Some(Gso {
                kind: GsoKind::TcpV4,
                mss,
            }) => TAG_GSO_V4 | (mss as u32) << 16,
            Some(Gso {
                kind: GsoKind::TcpV6,
                mss,
            }) => TAG_GSO_V6 | (mss as u32) << 16,
        };
        c | g
    }

    /// This frame's switch tag ([`Frame::tag_of`]).
    pub fn tag(&self) -> u32 {
        Frame::tag_of(self.gso, self.csum)
    }

    /// The frame a packet from the switch carries (its tag decoded; bits
    /// that mean nothing are ignored).
    pub fn from_packet(p: Packet) -> Frame {
        let csum = match p.tag & 3 {
            TAG_CSUM_PARTIAL => Checksum::Partial,
            TAG_CSUM_VALIDATED => Checksum::Validated,
            _ => Checksum::None,
        };
        let mss = (p.tag >> 16) as u16;
        let gso = match p.tag & (3 << 2) {
            TAG_GSO_V4 => Some(Gso {
                kind: GsoKind::TcpV4,
                mss,
            }),
            TAG_GSO_V6 => Some(Gso {
                kind: GsoKind::TcpV6,
                mss,
            }),
            _ => None,
        };
        Frame {
            data: p.data,
            gso,
            csum,
        }
    }

    /// The frame as a packet for the switch (no copy).
    pub fn into_packet(self) -> Packet {
        let tag = self.tag();
        Packet::new(self.data, tag)
    }

    /// Fills in a partial TCP/UDP checksum (then [`Checksum::Validated`]);
    /// other frames are left alone. Returns `false` for a partial frame that
    /// is not TCP or UDP over IP (left as it is).
    pub fn complete_checksum(&mut self) -> bool {
        if self.csum != Checksum::Partial {
            return true;
        }
        let ok = csum::complete(&mut self.data);
        if ok {
            self.csum = Checksum::Validated;
        }
        ok
    }

    /// The frame as MTU-sized frames, made one at a time as the iterator is
    /// pulled: a GSO frame is segmented (see [`csum::TcpSegments`]; every
    /// segment has its checksums computed, [`Checksum::Validated`]) into
    /// buffers of the frame's own pool (heap vectors for a frame of no pool;
    /// when the pool runs dry the rest is lost, see [`Segments::short`]);
    /// anything else comes back as it is. A GSO frame that cannot be
    /// segmented (not TCP of its kind, a segment size of 0 or one making
    /// more than [`csum::MAX_GSO_SEGS`] segments) comes back unsegmented
    /// with `gso` cleared.
    pub fn segment(self) -> Segments {
        let plan = self
            .gso
            .and_then(|g| csum::TcpSegments::for_gso(&self.data, g));
        let mut frame = self;
        if plan.is_none() {
            frame.gso = None;
        }
        Segments {
            pool: frame.data.pool(),
            frame: Some(frame),
            plan,
            next: 0,
            short: false,
        }
    }

    /// What a receiver without offloads needs (the peer): the frame
    /// segmented ([`Frame::segment`]) and every partial checksum completed
    /// ([`Frame::complete_checksum`]).
    pub fn into_plain(self) -> impl Iterator<Item = Frame> {
        self.segment().map(|mut f| {
            f.complete_checksum();
            f
        })
    }
}

/// The segments of a frame ([`Frame::segment`]).
#[derive(Debug)]
pub struct Segments {
    frame: Option<Frame>,
    plan: Option<csum::TcpSegments>,
    pool: Option<Pool>,
    next: usize,
    short: bool,
}

impl Segments {
    /// Whether segments were lost because the frame's pool had no buffer.
    pub fn short(&self) -> bool {
        self.short
    }
}

impl Iterator for Segments {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        let Some(plan) = self.plan else {
            return self.frame.take();
        };
        let src = self.frame.as_ref()?;
        if self.next >= plan.count() {
            self.frame = None;
            return None;
        }
        let len = plan.seg_len(self.next);
        let buf = match &self.pool {
            Some(p) => p.take(len),
            None => Some(Buf::from_vec(vec![0; len])),
        };
        let Some(mut buf) = buf else {
            self.short = true;
            self.frame = None;
            return None;
        };
        plan.write(&src.data, self.next, &mut buf);
        self.next += 1;
        Some(Frame {
            data: buf,
            gso: None,
            csum: Checksum::Validated,
        })
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
