//! One virtual interface: the XenbusState handshake and the data path of its
//! queues.

use crate::csum::{self, TcpSegments};
use crate::error::{ErrorKind, RingKind, VifError};
use crate::ring::{AttachError, Ring};
use crate::{
    backend_features, Checksum, Frame, Gso, GsoKind, LARGE_BUF_LEN, MAX_QUEUES, MAX_RX_FRAME,
    MAX_TX_SLOTS, MIN_GSO_SIZE, SMALL_BUF_LEN, TX_PASS_SLOTS,
};
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use guest_abi::netif as nf;
use hypercalls::evtchn::BACKEND_DOMID;
use hypercalls::{Domain, Host};
use netswitch::{Buf, Pool, PoolConfig};
use xenstore::toolstack::{vif_backend_path, vif_frontend_path};
use xenstore::{WatchEvent, Xenstore, XsError};

const PAGE: usize = 4096;
const TX_ENTRY: u64 = 12;
const RX_ENTRY: u64 = 8;
/// Extra-info slots one TX packet may carry (one per extra type).
const MAX_EXTRAS: u32 = nf::XEN_NETIF_EXTRA_TYPE_MAX as u32 - 1;

/// `enum xenbus_state` (`io/xenbus.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenbusState {
    /// 0: no state (also what a missing `state` node reads as).
    Unknown,
    /// 1.
    Initialising,
    /// 2: the backend waits for the frontend's details.
    InitWait,
    /// 3.
    Initialised,
    /// 4.
    Connected,
    /// 5: the device is being closed.
    Closing,
    /// 6.
    Closed,
    /// 7.
    Reconfiguring,
    /// 8.
    Reconfigured,
}

impl XenbusState {
    /// The state numbered `v`, if there is one.
    pub fn from_u32(v: u32) -> Option<XenbusState> {
        use XenbusState::*;
        Some(match v {
            0 => Unknown,
            1 => Initialising,
            2 => InitWait,
            3 => Initialised,
            4 => Connected,
            5 => Closing,
            6 => Closed,
            7 => Reconfiguring,
            8 => Reconfigured,
            _ => return None,
        })
    }

    /// Its number, as written in xenstore.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// Limits and policy of a vif.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VifConfig {
    /// `multi-queue-max-queues`: at most this many queues (1..=[`crate::MAX_QUEUES`]).
    pub max_queues: u32,
    /// Frames waiting for receive buffers, per queue; more are dropped.
    pub rx_queue_frames: usize,
    /// Bytes waiting for receive buffers, per queue; more are dropped.
    pub rx_queue_bytes: usize,
    /// When set, a [`Vif::service`] pass that consumed TX requests leaves
    /// `req_event` disarmed, so a guest transmitting steadily does not kick at
    /// all; [`Vif::needs_service`] then stays true and the kernel must call
    /// `service` again soon (on its next exit or timer tick), and the first
    /// pass that finds the ring empty re-arms it. Off: every pass re-arms (the
    /// plain `RING_FINAL_CHECK_FOR_REQUESTS` discipline; nothing to poll).
    pub tx_holdoff: bool,
    /// The vif's buffer pool, allocated by [`Vif::new`]: every packet the
    /// guest transmits is copied into one of its buffers, and so are the
    /// copies and segments made of it; a buffer comes back when its frame is
    /// delivered or dropped, wherever it went. While the pool has no buffer
    /// for the next TX packet, TX stops (the requests stay in the ring) and
    /// [`Vif::needs_service`] turns true once one is back. Its memory
    /// ([`PoolConfig::bytes`]) is what the guest's traffic can hold in the
    /// hypervisor.
    pub pool: PoolConfig,
    /// A frame that has waited this long (ms) for the guest's RX buffers is
    /// dropped, as by Linux's netback (`rx_drain_timeout_msecs`), so that a
    /// guest that stops taking frames does not hold its senders' buffers.
    pub rx_drain_timeout_ms: u64,
}

impl VifConfig {
    /// Defaults for a guest with `nr_vcpus` vCPUs: one queue per vCPU (at most
    /// [`crate::MAX_QUEUES`]), 256 frames or 1 MiB waiting per queue, no
    /// hold-off, [`VifConfig::DEFAULT_POOL`].
    pub fn new(nr_vcpus: u32) -> VifConfig {
        VifConfig {
            max_queues: nr_vcpus.clamp(1, crate::MAX_QUEUES),
            rx_queue_frames: 256,
            rx_queue_bytes: 1 << 20,
            tx_holdoff: false,
            pool: VifConfig::DEFAULT_POOL,
            rx_drain_timeout_ms: 10_000,
        }
    }

    /// The default pool: 512 small buffers of [`SMALL_BUF_LEN`] (1 MiB: two
    /// full 256-slot TX rings of MTU-sized packets, a pass's worth) and 24
    /// large ones of [`LARGE_BUF_LEN`] (1.5 MiB: more GSO super-frames than
    /// a 256-slot RX ring holds at 17 slots each), 2.5 MiB in all.
    pub const DEFAULT_POOL: PoolConfig = PoolConfig {
        small: 512,
        small_len: SMALL_BUF_LEN,
        large: 24,
        large_len: LARGE_BUF_LEN,
    };

    /// The memory a vif with this configuration allocates, whatever its
    /// guest does (bytes): its pool, the buffer RX segmentation writes into,
    /// and the slots of its RX queues (taken at connect).
    pub fn memory_bound(&self) -> usize {
        self.pool.bytes()
            + MAX_RX_FRAME
            + self.max_queues.clamp(1, MAX_QUEUES) as usize
                * self.rx_queue_frames
                * core::mem::size_of::<RxItem>()
    }
}

/// Counters of a vif. "TX" is the guest's transmit ring (guest to network),
/// "RX" its receive ring (network to guest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VifStats {
    /// Packets taken from the TX ring and handed on.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// TX packets answered with an error and not handed on (shorter than an
    /// Ethernet header, or a checksum or GSO request on something that is not
    /// TCP/UDP over IP).
    pub tx_dropped: u64,
    /// TX packets that came with a GSO extra-info slot.
    pub tx_gso: u64,
    /// TX passes that stopped, leaving requests in the ring, because the
    /// vif's pool had no buffer for the next packet.
    pub tx_pool_waits: u64,
    /// Frames written to the RX ring.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Frames for the guest that were dropped (vif not connected, queue full,
    /// too big for the frontend's features, disconnect with frames waiting,
    /// waited too long).
    pub rx_dropped: u64,
    /// Of those, frames that waited longer than
    /// [`VifConfig::rx_drain_timeout_ms`] for RX buffers.
    pub rx_expired: u64,
    /// GSO frames segmented for a frontend that cannot take them whole.
    pub rx_segmented: u64,
    /// Frames other than GSO ones that the frontend got with `csum_blank`,
    /// their partial checksum untouched.
    pub rx_csum_blank: u64,
    /// Partial checksums completed for a frontend that cannot take them.
    pub rx_csum_completed: u64,
    /// Event-channel notifications sent to the guest.
    pub notifications: u64,
    /// Disconnections for protocol errors.
    pub errors: u64,
}

/// What the frontend announced when it connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontendFeatures {
    /// `feature-sg`: RX frames may span several slots.
    pub sg: bool,
    /// `feature-gso-tcpv4`: RX may carry TCP/IPv4 GSO frames.
    pub gso_tcpv4: bool,
    /// `feature-gso-tcpv6`: RX may carry TCP/IPv6 GSO frames.
    pub gso_tcpv6: bool,
    /// `feature-rx-notify`: the frontend kicks when it posts RX buffers.
    pub rx_notify: bool,
    /// Not `feature-no-csum-offload`: RX may carry IPv4 frames with a
    /// partial checksum (`csum_blank`).
    pub ip_csum: bool,
    /// `feature-ipv6-csum-offload`: RX may carry IPv6 frames with a partial
    /// checksum.
    pub ipv6_csum: bool,
    /// Queues in use.
    pub queues: u32,
    /// Separate TX and RX event channels.
    pub split_event_channels: bool,
}

/// A frame prepared for the RX ring.
#[derive(Debug)]
struct RxItem {
    data: Buf,
    kind: RxKind,
    /// TSC when it was queued.
    queued_at: u64,
}

#[derive(Debug)]
enum RxKind {
    /// Written as it is.
    Whole {
        /// `NETRXF_*` for the first slot (besides more_data/extra_info).
        flags: u16,
        gso: Option<Gso>,
    },
    /// A GSO frame for a frontend that cannot take it: its segments are cut,
    /// one at a time, as RX buffers are posted; `next` is the next one.
    Segments { plan: TcpSegments, next: usize },
}

impl RxItem {
    /// The ring slots the next thing to write takes (data slots, plus one for
    /// a GSO extra), and its length.
    fn need(&self) -> (u32, usize) {
        match self.kind {
            RxKind::Whole { gso, .. } => {
                let len = self.data.len();
                (len.div_ceil(PAGE) as u32 + gso.is_some() as u32, len)
            }
            RxKind::Segments { plan, next } => {
                let len = plan.seg_len(next);
                (len.div_ceil(PAGE) as u32, len)
            }
        }
    }
}

/// One queue: a TX and an RX ring and their event channel(s).
#[derive(Debug)]
struct Queue {
    index: u32,
    tx: Ring,
    rx: Ring,
    tx_port: u32,
    rx_port: u32,
    pending: VecDeque<RxItem>,
    pending_bytes: usize,
    /// TX `req_event` was left disarmed: poll again.
    tx_unarmed: bool,
    /// TX stopped for want of a pool buffer for a packet of this many bytes.
    tx_blocked: Option<usize>,
}

/// A TX request (`netif_tx_request`).
#[derive(Clone, Copy, Debug, Default)]
struct TxReq {
    gref: u32,
    offset: u16,
    flags: u16,
    id: u16,
    size: u16,
}

/// What [`Queue::tx_packet`] did.
enum TxStep {
    /// Took a packet (handed on or answered with an error) using this many slots.
    Took(u32),
    /// Left a packet of this many bytes in the ring: the pool has no buffer now.
    NoBuffer(usize),
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

impl Queue {
    fn read_tx(&self, host: &impl Host, idx: u32) -> TxReq {
        let mut b = [0u8; 12];
        self.tx.read_entry(host, idx, &mut b);
        TxReq {
            gref: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            offset: le16(&b, 4),
            flags: le16(&b, 6),
            id: le16(&b, 8),
            size: le16(&b, 10),
        }
    }

    fn tx_rsp(&self, host: &mut impl Host, idx: u32, id: u16, status: i16) {
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&id.to_le_bytes());
        b[2..].copy_from_slice(&status.to_le_bytes());
        self.tx.write_entry(host, idx, &b);
    }

    fn overflow(&self, ring: RingKind, req_prod: u32) -> ErrorKind {
        let req_cons = match ring {
            RingKind::Tx => self.tx.req_cons,
            RingKind::Rx => self.rx.req_cons,
        };
        ErrorKind::RingOverflow {
            ring,
            queue: self.index,
            req_prod,
            req_cons,
        }
    }

    /// Consumes TX requests until the ring is empty (then arms `req_event`,
    /// unless `holdoff` and work was done), the pass's `budget` of slots is
    /// used up (then `req_event` is left disarmed: poll again), or `pool`
    /// has no buffer for the next packet (then the rest stays in the ring,
    /// `req_event` disarmed, until buffers come back). Returns whether the
    /// frontend must be notified of responses.
    #[allow(clippy::too_many_arguments)]
    fn poll_tx(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        holdoff: bool,
        budget: &mut u32,
        pool: &Pool,
        stats: &mut VifStats,
        frames: &mut Vec<Frame>,
    ) -> Result<bool, ErrorKind> {
        let mut work = false;
        self.tx_unarmed = false;
        self.tx_blocked = None;
        loop {
            let avail = self
                .tx
                .unconsumed(host)
                .map_err(|p| self.overflow(RingKind::Tx, p))?;
            if avail == 0 {
                if holdoff && work {
                    self.tx_unarmed = true;
                    break;
                }
                // RING_FINAL_CHECK_FOR_REQUESTS.
                self.tx
                    .set_req_event(host, self.tx.req_cons.wrapping_add(1));
                if self.tx.req_prod(host) == self.tx.req_cons {
                    break;
                }
                continue;
            }
            if *budget == 0 {
                self.tx_unarmed = true;
                break;
            }
            match self.tx_packet(dom, host, avail, pool, stats, frames)? {
                TxStep::Took(used) => *budget = budget.saturating_sub(used),
                TxStep::NoBuffer(len) => {
                    self.tx_blocked = Some(len);
                    stats.tx_pool_waits += 1;
                    break;
                }
            }
            work = true;
        }
        Ok(self.tx.push_responses(host))
    }

    /// Takes one packet (first request, extra-info slots, continuation slots)
    /// from the `avail` unconsumed requests, copies it out by grant into a
    /// buffer of `pool` and answers every slot; or, when `pool` has no buffer
    /// for it now, leaves it all in the ring.
    fn tx_packet(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        avail: u32,
        pool: &Pool,
        stats: &mut VifStats,
        frames: &mut Vec<Frame>,
    ) -> Result<TxStep, ErrorKind> {
        let cons = self.tx.req_cons;
        let first = self.read_tx(host, cons);
        if first.size == 0 {
            return Err(ErrorKind::EmptyPacket { slot: cons });
        }
        let mut used = 1u32;
        let mut gso = None;
        if first.flags & nf::NETTXF_EXTRA_INFO != 0 {
            let mut extras = 0;
            loop {
                if used >= avail {
                    return Err(ErrorKind::Incomplete { slot: cons });
                }
                extras += 1;
                if extras > MAX_EXTRAS {
                    return Err(ErrorKind::TooManySlots { slot: cons });
                }
                let idx = cons.wrapping_add(used);
                let mut x = [0u8; 8];
                self.tx.read_entry(host, idx, &mut x);
                used += 1;
                match x[0] {
                    nf::XEN_NETIF_EXTRA_TYPE_GSO => {
                        let (size, ty) = (le16(&x, 2), x[4]);
                        let kind = match ty {
                            nf::XEN_NETIF_GSO_TYPE_TCPV4 => GsoKind::TcpV4,
                            nf::XEN_NETIF_GSO_TYPE_TCPV6 => GsoKind::TcpV6,
                            _ => {
                                return Err(ErrorKind::BadGso {
                                    slot: idx,
                                    ty,
                                    size,
                                })
                            }
                        };
                        // Linux's netback refuses 0 alone; no Linux TCP
                        // sends less than MIN_GSO_SIZE.
                        if size < MIN_GSO_SIZE {
                            return Err(ErrorKind::BadGso {
                                slot: idx,
                                ty,
                                size,
                            });
                        }
                        gso = Some(Gso { kind, mss: size });
                    }
                    // Multicast control was not offered and hashing is not
                    // used: accepted and ignored, as Linux's netback does.
                    nf::XEN_NETIF_EXTRA_TYPE_MCAST_ADD
                    | nf::XEN_NETIF_EXTRA_TYPE_MCAST_DEL
                    | nf::XEN_NETIF_EXTRA_TYPE_HASH => {}
                    ty => return Err(ErrorKind::BadExtra { slot: idx, ty }),
                }
                if x[1] & nf::XEN_NETIF_EXTRA_FLAG_MORE == 0 {
                    break;
                }
            }
        }
        let extra_end = used;
        // Continuation slots: the first request's size is the packet's total.
        let mut frags = [(0u32, TxReq::default()); MAX_TX_SLOTS];
        let mut nfrags = 0;
        let mut remaining = first.size as u32;
        let mut more = first.flags & nf::NETTXF_MORE_DATA != 0;
        while more {
            if used >= avail {
                return Err(ErrorKind::Incomplete { slot: cons });
            }
            if nfrags + 1 >= MAX_TX_SLOTS {
                return Err(ErrorKind::TooManySlots { slot: cons });
            }
            let idx = cons.wrapping_add(used);
            let r = self.read_tx(host, idx);
            used += 1;
            if r.size as u32 > remaining {
                return Err(ErrorKind::FragmentTooBig {
                    slot: idx,
                    size: r.size,
                    remaining,
                });
            }
            remaining -= r.size as u32;
            if r.offset as usize + r.size as usize > PAGE {
                return Err(ErrorKind::CrossesPage {
                    slot: idx,
                    offset: r.offset,
                    size: r.size as u32,
                });
            }
            more = r.flags & nf::NETTXF_MORE_DATA != 0;
            frags[nfrags] = (idx, r);
            nfrags += 1;
        }
        let frags = &frags[..nfrags];
        if first.offset as usize + remaining as usize > PAGE {
            return Err(ErrorKind::CrossesPage {
                slot: cons,
                offset: first.offset,
                size: remaining,
            });
        }
        // A buffer of the pool, or the packet waits in the ring; one the pool
        // can never give is refused.
        let total = first.size as usize;
        let mut data = match pool.take(total) {
            Some(b) => Some(b),
            None if pool.fits(total) => return Ok(TxStep::NoBuffer(total)),
            None => None,
        };
        // Copy by grant: GTF_reading is held only for each copy.
        if let Some(data) = data.as_mut() {
            let head = remaining as usize;
            let grant_err = |slot, gref, err| ErrorKind::DataGrant {
                ring: RingKind::Tx,
                slot,
                gref,
                err,
            };
            dom.grant_read(
                host,
                first.gref,
                BACKEND_DOMID,
                first.offset as usize,
                &mut data[..head],
            )
            .map_err(|e| grant_err(cons, first.gref, e))?;
            let mut pos = head;
            for &(idx, r) in frags {
                let end = pos + r.size as usize;
                dom.grant_read(
                    host,
                    r.gref,
                    BACKEND_DOMID,
                    r.offset as usize,
                    &mut data[pos..end],
                )
                .map_err(|e| grant_err(idx, r.gref, e))?;
                pos = end;
            }
        }
        // Offloads are left to the receiver; a partial checksum or a GSO
        // request must apply to the packet (TCP/UDP over IP; TCP of its kind
        // for GSO, in at most MAX_GSO_SEGS segments).
        let blank = first.flags & nf::NETTXF_CSUM_BLANK != 0;
        let ok = data.as_ref().is_some_and(|d| {
            d.len() >= csum::ETH_HLEN
                && (!blank || csum::parse(d).is_some())
                && gso.is_none_or(|g| TcpSegments::for_gso(d, g).is_some())
        });
        let status = if ok {
            nf::NETIF_RSP_OKAY
        } else {
            nf::NETIF_RSP_ERROR
        };
        // One response per slot, in the slot of its request.
        self.tx_rsp(host, cons, first.id, status);
        for k in 1..extra_end {
            self.tx_rsp(host, cons.wrapping_add(k), 0, nf::NETIF_RSP_NULL);
        }
        for &(idx, r) in frags {
            self.tx_rsp(host, idx, r.id, status);
        }
        self.tx.req_cons = cons.wrapping_add(used);
        self.tx.rsp_prod_pvt = self.tx.req_cons;
        match data {
            Some(data) if ok => {
                stats.tx_packets += 1;
                stats.tx_bytes += data.len() as u64;
                stats.tx_gso += gso.is_some() as u64;
                let csum = if blank {
                    Checksum::Partial
                } else if first.flags & nf::NETTXF_DATA_VALIDATED != 0 {
                    Checksum::Validated
                } else {
                    Checksum::None
                };
                frames.push(Frame { data, gso, csum });
            }
            _ => stats.tx_dropped += 1,
        }
        Ok(TxStep::Took(used))
    }

    /// Writes waiting frames into posted RX buffers while there are enough
    /// (cutting the segments of a GSO frame for a frontend without GSO, one
    /// at a time, in `scratch`); when there are not, arms `req_event` for the
    /// slots the next one needs. Returns whether the frontend must be
    /// notified of responses.
    fn flush_rx(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        stats: &mut VifStats,
        scratch: &mut [u8],
    ) -> Result<bool, ErrorKind> {
        while let Some(item) = self.pending.front() {
            let (need, len) = item.need();
            let avail = self
                .rx
                .unconsumed(host)
                .map_err(|p| self.overflow(RingKind::Rx, p))?;
            if avail < need {
                self.rx
                    .set_req_event(host, self.rx.req_cons.wrapping_add(need));
                let avail = self
                    .rx
                    .unconsumed(host)
                    .map_err(|p| self.overflow(RingKind::Rx, p))?;
                if avail < need {
                    break;
                }
            }
            let Some(item) = self.pending.front_mut() else {
                break;
            };
            let done = match &mut item.kind {
                RxKind::Whole { flags, gso } => {
                    let (flags, gso) = (*flags, *gso);
                    Self::rx_write(&mut self.rx, dom, host, &item.data, flags, gso)?;
                    true
                }
                RxKind::Segments { plan, next } => {
                    let seg = &mut scratch[..len];
                    plan.write(&item.data, *next, seg);
                    *next += 1;
                    let done = *next == plan.count();
                    Self::rx_write(
                        &mut self.rx,
                        dom,
                        host,
                        seg,
                        nf::NETRXF_DATA_VALIDATED,
                        None,
                    )?;
                    done
                }
            };
            stats.rx_packets += 1;
            stats.rx_bytes += len as u64;
            if done {
                if let Some(item) = self.pending.pop_front() {
                    self.pending_bytes -= item.data.len();
                }
            }
        }
        Ok(self.rx.push_responses(host))
    }

    /// Copies one frame into the next RX buffers at offset 0 (a GSO extra
    /// after the first) and answers each request in its own slot.
    fn rx_write(
        rx: &mut Ring,
        dom: &mut Domain,
        host: &mut impl Host,
        data: &[u8],
        first_flags: u16,
        gso: Option<Gso>,
    ) -> Result<(), ErrorKind> {
        let cons = rx.req_cons;
        let slots = data.len().div_ceil(PAGE) as u32 + gso.is_some() as u32;
        let mut pos = 0usize;
        for k in 0..slots {
            let idx = cons.wrapping_add(k);
            let mut req = [0u8; 8];
            rx.read_entry(host, idx, &mut req);
            let (id, gref) = (
                le16(&req, 0),
                u32::from_le_bytes([req[4], req[5], req[6], req[7]]),
            );
            if k == 1 {
                if let Some(g) = gso {
                    // Extras go right after the first data slot; the request
                    // in this slot is consumed unused (netfront recycles it).
                    let ty = match g.kind {
                        GsoKind::TcpV4 => nf::XEN_NETIF_GSO_TYPE_TCPV4,
                        GsoKind::TcpV6 => nf::XEN_NETIF_GSO_TYPE_TCPV6,
                    };
                    let mss = g.mss.to_le_bytes();
                    let x = [nf::XEN_NETIF_EXTRA_TYPE_GSO, 0, mss[0], mss[1], ty, 0, 0, 0];
                    rx.write_entry(host, idx, &x);
                    continue;
                }
            }
            let end = (pos + PAGE).min(data.len());
            dom.grant_write(host, gref, BACKEND_DOMID, 0, &data[pos..end])
                .map_err(|err| ErrorKind::DataGrant {
                    ring: RingKind::Rx,
                    slot: idx,
                    gref,
                    err,
                })?;
            let mut flags = 0;
            if k == 0 {
                flags = first_flags;
                if gso.is_some() {
                    flags |= nf::NETRXF_EXTRA_INFO;
                }
            }
            if end < data.len() {
                flags |= nf::NETRXF_MORE_DATA;
            }
            let mut rsp = [0u8; 8];
            rsp[0..2].copy_from_slice(&id.to_le_bytes());
            rsp[2..4].copy_from_slice(&0u16.to_le_bytes());
            rsp[4..6].copy_from_slice(&flags.to_le_bytes());
            rsp[6..8].copy_from_slice(&((end - pos) as i16).to_le_bytes());
            rx.write_entry(host, idx, &rsp);
            pos = end;
        }
        rx.req_cons = cons.wrapping_add(slots);
        rx.rsp_prod_pvt = rx.req_cons;
        Ok(())
    }

    /// Drops the frames at the head that were queued at or before `before`
    /// (TSC); how many.
    fn expire(&mut self, before: u64) -> usize {
        let mut n = 0;
        while self.pending.front().is_some_and(|i| i.queued_at <= before) {
            if let Some(item) = self.pending.pop_front() {
                self.pending_bytes -= item.data.len();
                n += 1;
            }
        }
        n
    }

    fn release(self, dom: &mut Domain, host: &mut impl Host) -> usize {
        self.tx.release(dom, host);
        self.rx.release(dom, host);
        self.pending.len()
    }
}

/// A vif: the backend of `/local/domain/<domid>/device/vif/<devid>`.
///
/// Created in [`XenbusState::InitWait`] (the toolstack tree writes that state).
/// See the crate documentation for the calls the kernel makes.
#[derive(Debug)]
pub struct Vif {
    domid: u16,
    devid: u32,
    config: VifConfig,
    state: XenbusState,
    published: XenbusState,
    queues: Vec<Queue>,
    features: FrontendFeatures,
    stats: VifStats,
    service_pending: bool,
    token: String,
    /// Where the guest's TX packets are copied (see [`VifConfig::pool`]).
    pool: Pool,
    /// One segment of a GSO frame being cut for a frontend without GSO.
    scratch: Vec<u8>,
    /// The queue the next TX pass starts with.
    tx_first: usize,
}

/// Event-channel ports to notify after a pass, each once.
struct PortSet {
    ports: [u32; 2 * MAX_QUEUES as usize],
    len: usize,
}

impl PortSet {
    fn new() -> PortSet {
        PortSet {
            ports: [0; 2 * MAX_QUEUES as usize],
            len: 0,
        }
    }

    /// Adds `port` unless it is there (a vif has at most two per queue).
    fn add(&mut self, port: u32) {
        if !self.ports[..self.len].contains(&port) && self.len < self.ports.len() {
            self.ports[self.len] = port;
            self.len += 1;
        }
    }
}

impl Vif {
    /// The backend of vif `devid` of domain `domid`, with its pool allocated
    /// ([`VifConfig::memory_bound`] is what it takes).
    pub fn new(domid: u16, devid: u32, config: VifConfig) -> Vif {
        let max_queues = config.max_queues.clamp(1, crate::MAX_QUEUES);
        Vif {
            domid,
            devid,
            config: VifConfig {
                max_queues,
                ..config
            },
            state: XenbusState::InitWait,
            published: XenbusState::InitWait,
            queues: Vec::new(),
            features: FrontendFeatures::default(),
            stats: VifStats::default(),
            service_pending: false,
            token: format!("netback:{domid}:{devid}"),
            pool: Pool::new(config.pool),
            scratch: vec![0; MAX_RX_FRAME],
            tx_first: 0,
        }
    }

    /// The vif's buffer pool (its counters say what is in flight).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether TX stopped for want of a pool buffer (requests wait in the
    /// ring until buffers come back).
    pub fn tx_blocked(&self) -> bool {
        self.queues.iter().any(|q| q.tx_blocked.is_some())
    }

    /// Whether TX stopped for want of a pool buffer and the pool has one now:
    /// call [`Vif::service_tx`] (as [`Vif::needs_service`] says too).
    pub fn tx_resumable(&self) -> bool {
        self.queues
            .iter()
            .any(|q| q.tx_blocked.is_some_and(|len| self.pool.can_take(len)))
    }

    /// The guest.
    pub fn domid(&self) -> u16 {
        self.domid
    }

    /// The device id (`vif/<devid>`).
    pub fn devid(&self) -> u32 {
        self.devid
    }

    /// The backend state (what is, or is about to be, in `<backend>/state`).
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Whether the rings are attached.
    pub fn is_connected(&self) -> bool {
        self.state == XenbusState::Connected
    }

    /// The counters.
    pub fn stats(&self) -> &VifStats {
        &self.stats
    }

    /// What the frontend negotiated (all off until connected).
    pub fn frontend_features(&self) -> FrontendFeatures {
        self.features
    }

    /// `/local/domain/<domid>/device/vif/<devid>`.
    pub fn frontend_path(&self) -> String {
        vif_frontend_path(self.domid, self.devid)
    }

    /// `/local/domain/0/backend/vif/<domid>/<devid>`.
    pub fn backend_path(&self) -> String {
        vif_backend_path(self.domid, self.devid)
    }

    /// The token of the vif's xenstore watch (`netback:<domid>:<devid>`).
    pub fn watch_token(&self) -> &str {
        &self.token
    }

    /// Whether a dom0 watch event is this vif's (pass it to [`Vif::frontend_changed`]).
    pub fn is_my_event(&self, ev: &WatchEvent) -> bool {
        ev.token == self.token
    }

    /// Whether `port` is one of the connected vif's event channels (a kick on
    /// it means: call [`Vif::service`]).
    pub fn owns_port(&self, port: u32) -> bool {
        self.queues
            .iter()
            .any(|q| q.tx_port == port || q.rx_port == port)
    }

    /// Whether [`Vif::service`] must run without a kick: the vif has just
    /// connected (requests may have been queued before), TX polling is held
    /// off (see [`VifConfig::tx_holdoff`]) or stopped at its budget, or TX
    /// stopped for want of a pool buffer and one is back
    /// ([`Vif::tx_resumable`]).
    pub fn needs_service(&self) -> bool {
        self.service_pending || self.queues.iter().any(|q| q.tx_unarmed) || self.tx_resumable()
    }

    /// Writes the backend's feature keys ([`backend_features`]) into its
    /// directory and watches `<frontend>/state` (the watch fires once at once).
    /// Call it once the toolstack tree exists, before the guest runs.
    pub fn attach(&mut self, xs: &mut Xenstore) -> Result<(), XsError> {
        let be = self.backend_path();
        for (k, v) in backend_features(self.config.max_queues) {
            xs.write(&format!("{be}/{k}"), v.as_bytes())?;
        }
        match xs.watch(&format!("{}/state", self.frontend_path()), &self.token) {
            Ok(()) | Err(XsError::Exist) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Ends the vif for good (domain teardown or unplug): gives back every
    /// grant, removes the watch, and writes `Closed` if the backend directory
    /// still exists. Call it before the domain is destroyed.
    pub fn detach(&mut self, dom: &mut Domain, host: &mut impl Host, xs: &mut Xenstore) {
        self.disconnect(dom, host);
        self.state = XenbusState::Closed;
        let _ = xs.unwatch(&format!("{}/state", self.frontend_path()), &self.token);
        let _ = self.publish_state(xs);
    }

    /// Writes the backend state to `<backend>/state` if it changed since the
    /// last write. [`Vif::frontend_changed`] does it itself; after a
    /// [`VifError`] from [`Vif::service`] or [`Vif::deliver_rx`] the kernel
    /// calls it so the frontend sees `Closing`. Nothing is written once the
    /// backend directory is gone.
    pub fn publish_state(&mut self, xs: &mut Xenstore) -> Result<(), XsError> {
        if self.state == self.published {
            return Ok(());
        }
        let be = self.backend_path();
        if xs.exists(&be) {
            let v = format!("{}", self.state.as_u32());
            xs.write(&format!("{be}/state"), v.as_bytes())?;
        }
        self.published = self.state;
        Ok(())
    }

    /// Reacts to the frontend's state (call it for every watch event of this
    /// vif): connects when the frontend is `Connected` (reads its keys, takes
    /// its rings, checks its event channels), disconnects when it closes or
    /// disappears, and goes back to `InitWait` when a frontend starts over.
    /// The new backend state is written to xenstore. An `Err` is a frontend
    /// that broke the protocol: the vif is now `Closing`.
    pub fn frontend_changed(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        xs: &mut Xenstore,
    ) -> Result<(), VifError> {
        let path = format!("{}/state", self.frontend_path());
        let fe = match xs.read(&path) {
            Err(_) => Some(XenbusState::Unknown),
            Ok(v) => parse_u32(&v).and_then(XenbusState::from_u32),
        };
        let result = match fe {
            None => {
                let value = show(&xs.read(&path).unwrap_or_default());
                Err(self.fail(dom, host, ErrorKind::BadFrontendState(value)))
            }
            Some(XenbusState::Initialising) => {
                if self.state != XenbusState::InitWait {
                    self.disconnect(dom, host);
                    self.state = XenbusState::InitWait;
                }
                Ok(())
            }
            Some(XenbusState::Initialised | XenbusState::Connected) => {
                if self.state == XenbusState::InitWait {
                    match self.connect(dom, host, xs) {
                        Ok(()) => Ok(()),
                        Err(k) => Err(self.fail(dom, host, k)),
                    }
                } else {
                    Ok(())
                }
            }
            Some(XenbusState::Closing) => {
                self.disconnect(dom, host);
                if self.state != XenbusState::Closed {
                    self.state = XenbusState::Closing;
                }
                Ok(())
            }
            Some(XenbusState::Closed | XenbusState::Unknown) => {
                self.disconnect(dom, host);
                self.state = XenbusState::Closed;
                Ok(())
            }
            Some(
                XenbusState::InitWait | XenbusState::Reconfiguring | XenbusState::Reconfigured,
            ) => Ok(()),
        };
        if let Err(e) = self.publish_state(xs) {
            return match result {
                Err(v) => Err(v),
                Ok(()) => Err(self.error(ErrorKind::Xenstore(e))),
            };
        }
        result
    }

    /// Processes every queue: takes the packets the guest queued on its TX
    /// rings (appended to `frames`, in ring order per queue, each in a buffer
    /// of the vif's pool), writes waiting frames into newly posted RX buffers,
    /// and notifies the guest where its `rsp_event` asks for it (each port at
    /// most once). Call it when the guest kicks one of the vif's ports and
    /// whenever [`Vif::needs_service`] says so; nothing happens unless the vif
    /// is connected. An `Err` disconnected the vif (call
    /// [`Vif::publish_state`]); `frames` keeps what was taken before.
    /// [`Vif::service_tx`] and [`Vif::service_rx`] are its two halves.
    pub fn service(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        frames: &mut Vec<Frame>,
    ) -> Result<(), VifError> {
        let mut notify = PortSet::new();
        let r = self
            .poll_tx_queues(dom, host, frames, &mut notify)
            .and_then(|()| self.flush_rx_queues(dom, host, &mut notify));
        self.notify(dom, host, &notify);
        r
    }

    /// The TX half of [`Vif::service`]: takes the guest's packets off every
    /// TX ring and notifies the TX ports whose `rsp_event` asks for it.
    pub fn service_tx(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        frames: &mut Vec<Frame>,
    ) -> Result<(), VifError> {
        let mut notify = PortSet::new();
        let r = self.poll_tx_queues(dom, host, frames, &mut notify);
        self.notify(dom, host, &notify);
        r
    }

    /// The RX half of [`Vif::service`]: writes waiting frames into newly
    /// posted RX buffers and notifies the RX ports whose `rsp_event` asks for it.
    pub fn service_rx(&mut self, dom: &mut Domain, host: &mut impl Host) -> Result<(), VifError> {
        let mut notify = PortSet::new();
        let r = self.flush_rx_queues(dom, host, &mut notify);
        self.notify(dom, host, &notify);
        r
    }

    fn poll_tx_queues(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        frames: &mut Vec<Frame>,
        notify: &mut PortSet,
    ) -> Result<(), VifError> {
        self.service_pending = false;
        if self.state != XenbusState::Connected {
            return Ok(());
        }
        let holdoff = self.config.tx_holdoff;
        // One budget for the pass, the queues taken in turn from the one
        // after where the last pass started, so none is starved.
        let mut budget = TX_PASS_SLOTS;
        let n = self.queues.len();
        let first = self.tx_first % n.max(1);
        self.tx_first = first + 1;
        for k in 0..n {
            let qi = (first + k) % n;
            let q = &mut self.queues[qi];
            match q.poll_tx(
                dom,
                host,
                holdoff,
                &mut budget,
                &self.pool,
                &mut self.stats,
                frames,
            ) {
                Ok(true) => notify.add(q.tx_port),
                Ok(false) => {}
                Err(k) => return Err(self.fail(dom, host, k)),
            }
        }
        Ok(())
    }

    fn flush_rx_queues(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        notify: &mut PortSet,
    ) -> Result<(), VifError> {
        if self.state != XenbusState::Connected {
            return Ok(());
        }
        self.expire_rx(host);
        for qi in 0..self.queues.len() {
            let q = &mut self.queues[qi];
            match q.flush_rx(dom, host, &mut self.stats, &mut self.scratch) {
                Ok(true) => notify.add(q.rx_port),
                Ok(false) => {}
                Err(k) => return Err(self.fail(dom, host, k)),
            }
        }
        Ok(())
    }

    /// Hands a frame to the guest: [`Vif::deliver_rx_batch`] of one frame.
    pub fn deliver_rx(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        frame: Frame,
    ) -> Result<(), VifError> {
        self.deliver_rx_batch(dom, host, [frame])
    }

    /// Hands frames to the guest: picks a queue for each by flow hash,
    /// prepares it for what the frontend negotiated (see the crate
    /// documentation: GSO frames go whole or are segmented as buffers come,
    /// checksum states become `NETRXF_*` flags; multi-slot frames need
    /// `feature-sg`), queues it and writes what fits into posted RX buffers;
    /// then notifies each RX port whose `rsp_event` asked for it, once for
    /// the whole batch. Frames for a vif that is not connected, or beyond the
    /// queue limits, are dropped and counted (their buffers go back to their
    /// pools). An `Err` disconnected the vif (call [`Vif::publish_state`]).
    pub fn deliver_rx_batch(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        frames: impl IntoIterator<Item = Frame>,
    ) -> Result<(), VifError> {
        let mut notify = PortSet::new();
        let mut result = Ok(());
        let now = host.tsc();
        self.expire_rx(host);
        for frame in frames {
            if self.state != XenbusState::Connected || self.queues.is_empty() {
                self.stats.rx_dropped += 1;
                continue;
            }
            let qi = flow_hash(&frame.data) as usize % self.queues.len();
            if let Some(mut item) = self.prepare_rx(frame) {
                item.queued_at = now;
                let q = &mut self.queues[qi];
                if q.pending.len() >= self.config.rx_queue_frames
                    || q.pending_bytes + item.data.len() > self.config.rx_queue_bytes
                {
                    self.stats.rx_dropped += 1;
                    continue;
                }
                q.pending_bytes += item.data.len();
                q.pending.push_back(item);
            }
            let q = &mut self.queues[qi];
            match q.flush_rx(dom, host, &mut self.stats, &mut self.scratch) {
                Ok(true) => notify.add(q.rx_port),
                Ok(false) => {}
                Err(k) => {
                    result = Err(self.fail(dom, host, k));
                    break;
                }
            }
        }
        self.notify(dom, host, &notify);
        result
    }

    /// The rings' indices and waiting frames, one line per queue (diagnostics).
    pub fn describe_rings(&self, host: &impl Host) -> Vec<String> {
        self.queues
            .iter()
            .map(|q| {
                format!(
                    "queue {}: tx {}{}; rx {}; {} frames waiting",
                    q.index,
                    q.tx.describe(host),
                    if q.tx_blocked.is_some() {
                        " (waiting for a buffer)"
                    } else {
                        ""
                    },
                    q.rx.describe(host),
                    q.pending.len()
                )
            })
            .collect()
    }

    /// Frames waiting for RX buffers, over all queues.
    pub fn rx_waiting(&self) -> usize {
        self.queues.iter().map(|q| q.pending.len()).sum()
    }

    /// The drain timeout in TSC ticks.
    fn drain_ticks(&self, host: &impl Host) -> u64 {
        self.config
            .rx_drain_timeout_ms
            .saturating_mul(host.tsc_khz())
    }

    /// Drops (and counts) the frames that have waited longer than
    /// [`VifConfig::rx_drain_timeout_ms`] for RX buffers; how many. Delivery
    /// and [`Vif::service_rx`] do it themselves; call it at
    /// [`Vif::rx_expiry`] when nothing else happens.
    pub fn expire_rx(&mut self, host: &impl Host) -> usize {
        let Some(before) = host.tsc().checked_sub(self.drain_ticks(host)) else {
            return 0;
        };
        let n: usize = self.queues.iter_mut().map(|q| q.expire(before)).sum();
        self.stats.rx_dropped += n as u64;
        self.stats.rx_expired += n as u64;
        n
    }

    /// When (TSC) the oldest frame waiting for RX buffers expires, if one waits.
    pub fn rx_expiry(&self, host: &impl Host) -> Option<u64> {
        let oldest = self
            .queues
            .iter()
            .filter_map(|q| q.pending.front().map(|i| i.queued_at))
            .min()?;
        Some(oldest.saturating_add(self.drain_ticks(host)))
    }

    /// Whether the frontend takes a GSO frame of `gso` whole: `feature-sg`,
    /// `feature-gso-tcpv4/-tcpv6` and partial checksums of that IP version.
    pub fn takes_gso(&self, gso: Gso) -> bool {
        let f = self.features;
        f.sg && match gso.kind {
            GsoKind::TcpV4 => f.gso_tcpv4 && f.ip_csum,
            GsoKind::TcpV6 => f.gso_tcpv6 && f.ipv6_csum,
        }
    }

    /// Turns a frame into what the frontend can take, or drops (and counts)
    /// it. Nothing is computed for a frontend that takes the frame's offloads.
    fn prepare_rx(&mut self, frame: Frame) -> Option<RxItem> {
        let f = self.features;
        let Frame {
            mut data,
            gso,
            csum,
        } = frame;
        if let Some(g) = gso {
            let Some(plan) = TcpSegments::for_gso(&data, g) else {
                self.stats.rx_dropped += 1;
                return None;
            };
            if self.takes_gso(g) && data.len() <= MAX_RX_FRAME {
                // A GSO frame must carry the pseudo-header sum (netfront's
                // frames do; anything else gets it).
                if csum != Checksum::Partial {
                    csum::set_partial(&mut data);
                }
                return Some(RxItem {
                    data,
                    kind: RxKind::Whole {
                        flags: nf::NETRXF_CSUM_BLANK | nf::NETRXF_DATA_VALIDATED,
                        gso: Some(g),
                    },
                    queued_at: 0,
                });
            }
            let max = plan.max_len();
            if max > self.scratch.len() || (max > PAGE && !f.sg) {
                self.stats.rx_dropped += 1;
                return None;
            }
            self.stats.rx_segmented += 1;
            return Some(RxItem {
                data,
                kind: RxKind::Segments { plan, next: 0 },
                queued_at: 0,
            });
        }
        let slots = data.len().div_ceil(PAGE);
        if data.is_empty() || data.len() > MAX_RX_FRAME || (slots > 1 && !f.sg) {
            self.stats.rx_dropped += 1;
            return None;
        }
        let flags = match csum {
            Checksum::Partial => {
                let takes =
                    f.ip_csum && f.ipv6_csum
                        || csum::parse(&data).is_some_and(|l4| {
                            if l4.v6 {
                                f.ipv6_csum
                            } else {
                                f.ip_csum
                            }
                        });
                if takes {
                    self.stats.rx_csum_blank += 1;
                    nf::NETRXF_CSUM_BLANK | nf::NETRXF_DATA_VALIDATED
                } else if csum::complete(&mut data) {
                    self.stats.rx_csum_completed += 1;
                    nf::NETRXF_DATA_VALIDATED
                } else {
                    0
                }
            }
            Checksum::Validated => nf::NETRXF_DATA_VALIDATED,
            Checksum::None => 0,
        };
        Some(RxItem {
            data,
            kind: RxKind::Whole { flags, gso: None },
            queued_at: 0,
        })
    }

    fn notify(&mut self, dom: &mut Domain, host: &mut impl Host, ports: &PortSet) {
        for &p in &ports.ports[..ports.len] {
            // A port the guest closed under us: nothing to tell.
            if dom.notify_port(host, p).is_ok() {
                self.stats.notifications += 1;
            }
        }
    }

    fn error(&self, kind: ErrorKind) -> VifError {
        VifError {
            domid: self.domid,
            devid: self.devid,
            kind,
        }
    }

    /// Disconnects for a protocol error: the vif goes `Closing`.
    fn fail(&mut self, dom: &mut Domain, host: &mut impl Host, kind: ErrorKind) -> VifError {
        self.disconnect(dom, host);
        self.state = XenbusState::Closing;
        self.stats.errors += 1;
        self.error(kind)
    }

    /// Gives the rings back and forgets the frontend's features.
    fn disconnect(&mut self, dom: &mut Domain, host: &mut impl Host) {
        for q in self.queues.drain(..) {
            self.stats.rx_dropped += q.release(dom, host) as u64;
        }
        self.features = FrontendFeatures::default();
        self.service_pending = false;
    }

    /// Reads the frontend's keys and takes its rings (`connect` in Linux's
    /// netback `xenbus.c`).
    fn connect(
        &mut self,
        dom: &mut Domain,
        host: &mut impl Host,
        xs: &mut Xenstore,
    ) -> Result<(), ErrorKind> {
        let fe = self.frontend_path();
        if read_u32(xs, &format!("{fe}/request-rx-copy"))? != Some(1) {
            return Err(ErrorKind::NoRxCopy);
        }
        let flag = |xs: &mut Xenstore, k: &str| {
            xs.read(&format!("{fe}/{k}"))
                .ok()
                .and_then(|v| parse_u32(&v))
                .is_some_and(|v| v != 0)
        };
        let mut features = FrontendFeatures {
            sg: flag(xs, "feature-sg"),
            gso_tcpv4: flag(xs, "feature-gso-tcpv4"),
            gso_tcpv6: flag(xs, "feature-gso-tcpv6"),
            rx_notify: flag(xs, "feature-rx-notify"),
            ip_csum: !flag(xs, "feature-no-csum-offload"),
            ipv6_csum: flag(xs, "feature-ipv6-csum-offload"),
            queues: 1,
            split_event_channels: false,
        };
        let max = self.config.max_queues;
        features.queues = match read_u32(xs, &format!("{fe}/multi-queue-num-queues"))? {
            None => 1,
            Some(n) if (1..=max).contains(&n) => n,
            Some(n) => return Err(ErrorKind::QueueCount { requested: n, max }),
        };
        let mut grefs: Vec<u32> = Vec::new();
        for qi in 0..features.queues {
            let dir = if features.queues == 1 {
                fe.clone()
            } else {
                format!("{fe}/queue-{qi}")
            };
            let tx_ref = required(xs, &format!("{dir}/tx-ring-ref"))?;
            let rx_ref = required(xs, &format!("{dir}/rx-ring-ref"))?;
            let split = (
                read_u32(xs, &format!("{dir}/event-channel-tx"))?,
                read_u32(xs, &format!("{dir}/event-channel-rx"))?,
            );
            let (tx_port, rx_port) = match split {
                (Some(t), Some(r)) => {
                    features.split_event_channels = true;
                    (t, r)
                }
                _ => {
                    let p = required(xs, &format!("{dir}/event-channel"))?;
                    (p, p)
                }
            };
            for p in [tx_port, rx_port] {
                if !dom.evtchn.get(p).is_some_and(|s| s.state.is_backend()) {
                    return Err(ErrorKind::BadPort(p));
                }
            }
            for r in [tx_ref, rx_ref] {
                if grefs.contains(&r) {
                    return Err(ErrorKind::RingRefReused(r));
                }
                grefs.push(r);
            }
            let ring_err = |ring, gref, e| match e {
                AttachError::Grant(err) => ErrorKind::RingGrant {
                    ring,
                    queue: qi,
                    gref,
                    err,
                },
                AttachError::Overflow { req_prod, rsp_prod } => ErrorKind::RingOverflow {
                    ring,
                    queue: qi,
                    req_prod,
                    req_cons: rsp_prod,
                },
            };
            let tx = Ring::attach(dom, host, tx_ref, TX_ENTRY)
                .map_err(|e| ring_err(RingKind::Tx, tx_ref, e))?;
            let rx = match Ring::attach(dom, host, rx_ref, RX_ENTRY) {
                Ok(rx) => rx,
                Err(e) => {
                    tx.release(dom, host);
                    return Err(ring_err(RingKind::Rx, rx_ref, e));
                }
            };
            self.queues.push(Queue {
                index: qi,
                tx,
                rx,
                tx_port,
                rx_port,
                pending: VecDeque::with_capacity(self.config.rx_queue_frames),
                pending_bytes: 0,
                tx_unarmed: false,
                tx_blocked: None,
            });
        }
        self.features = features;
        self.state = XenbusState::Connected;
        self.service_pending = true;
        Ok(())
    }

    /// The grant references of the rings in use (TX, RX per queue).
    pub fn ring_refs(&self) -> Vec<(u32, u32)> {
        self.queues
            .iter()
            .map(|q| (q.tx.gref(), q.rx.gref()))
            .collect()
    }
}

/// A decimal `u32` as xenstore holds it (digits only).
fn parse_u32(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u32, |a, &d| {
        a.checked_mul(10)?.checked_add((d - b'0') as u32)
    })
}

/// A value for a log line: lossy UTF-8, at most 32 characters.
fn show(v: &[u8]) -> String {
    String::from_utf8_lossy(v).chars().take(32).collect()
}

/// An optional numeric key: `None` if missing, an error if not a number.
fn read_u32(xs: &mut Xenstore, path: &str) -> Result<Option<u32>, ErrorKind> {
    match xs.read(path) {
        Err(_) => Ok(None),
        Ok(v) => parse_u32(&v).map(Some).ok_or_else(|| ErrorKind::BadKey {
            path: String::from(path),
            value: show(&v),
        }),
    }
}

/// A numeric key that must be there.
fn required(xs: &mut Xenstore, path: &str) -> Result<u32, ErrorKind> {
    read_u32(xs, path)?.ok_or_else(|| ErrorKind::MissingKey(String::from(path)))
}

/// FNV-1a over the IP addresses and TCP/UDP ports, so that a flow stays on
/// one queue; 0 for anything else.
fn flow_hash(frame: &[u8]) -> u32 {
    let Some(l4) = csum::parse(frame) else {
        return 0;
    };
    let addrs = if l4.v6 {
        &frame[l4.l3_off + 8..l4.l3_off + 40]
    } else {
        &frame[l4.l3_off + 12..l4.l3_off + 20]
    };
    let ports = &frame[l4.l4_off..l4.l4_off + 4];
    let mut h: u32 = 0x811C_9DC5;
    for &b in addrs.iter().chain(ports) {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        for bad in [
            &b""[..],
            b"4294967296",
            b"-1",
            b" 1",
            b"1 ",
            b"0x10",
            b"99999999999",
        ] {
            assert_eq!(parse_u32(bad), None, "{bad:?}");
        }
        assert_eq!(XenbusState::from_u32(4), Some(XenbusState::Connected));
        assert_eq!(XenbusState::from_u32(9), None);
        assert_eq!(XenbusState::Closed.as_u32(), 6);
    }

    #[test]
    fn memory_per_vif_is_bounded() {
        let two = VifConfig::new(2).memory_bound();
        let most = VifConfig::new(64).memory_bound();
        assert_eq!(
            VifConfig::DEFAULT_POOL.bytes(),
            5 << 19,
            "2.5 MiB of buffers"
        );
        // 2.62 MiB and 3.03 MiB.
        assert!(two < 27 << 20 >> 3, "2 queues: under 2.7 MiB");
        assert!(most < 13 << 20 >> 2, "16 queues: under 3.25 MiB");
    }

    #[test]
    fn flows_hash_by_addresses_and_ports() {
        let a = crate::csum::tests::tcp4(b"x");
        let mut b = a.clone();
        b.push(0); // Ethernet padding does not matter
        assert_eq!(flow_hash(&a), flow_hash(&b));
        let mut c = a.clone();
        c[34] ^= 1; // another source port
        assert_ne!(flow_hash(&a), flow_hash(&c));
        assert_eq!(flow_hash(&[0u8; 60]), 0);
    }
}
