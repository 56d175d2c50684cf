//! The virtual switch: an IEEE 802.1D-style learning bridge with no clock of
//! its own.
//!
//! Every vif and the built-in peer host is one [`PortId`]. A frame handed to
//! [`Switch::input_packet`] (or [`Switch::input`], [`Switch::input_vec`]) teaches the switch where its
//! source MAC lives and is queued on the output queue of every port that
//! should see it:
//!
//! * a unicast destination that the switch has learned, and whose entry has
//!   not aged out, goes to that one port (or nowhere, when it lives on the
//!   port the frame came in on: no hairpin);
//! * unknown unicast, broadcast and multicast destinations are flooded to
//!   every other port that is up;
//! * a frame never goes back out of its ingress port.
//!
//! # Antispoofing and bounded learning
//!
//! A port may carry a [`SourceFilter`] ([`Switch::set_source_filter`]): the
//! vif's own MAC, and its `ip=` networks; a frame it does not admit is
//! dropped at ingress, before anything is learned from it
//! ([`PortStats::rx_dropped_spoofed`]). The filter's MAC is pinned to the
//! port: its entry never ages or moves, and a frame from it on any other
//! port is dropped as spoofed too, so no port can take a vif's MAC and
//! traffic for a quiet vif is never flooded to the others.
//!
//! Learning is bounded: at most [`PortConfig::max_learned`] MACs per port
//! and [`SwitchConfig::max_mac_entries`] in all (pinned MACs aside). A source
//! met when its port, or the table, is full is not learned (frames to it are
//! flooded until an entry ages out), as Linux's bridge does at its
//! `max_learned` limit, so a port flooding random source MACs can neither
//! grow the table nor push other ports' stations out of it.
//!
//! The owner of a port drains its queue with [`Switch::take_packet`] (or
//! [`Switch::take_output`], [`Switch::peek_output`], [`Switch::drain`] for
//! the bytes alone). Queues are bounded both in frames and in bytes; a frame
//! that does not fit is dropped and counted (tail drop).
//!
//! # Packets: pooled bytes and a tag
//!
//! What the switch carries is a [`Packet`]: the frame's bytes in a
//! [`Buf`] (normally from the sender's
//! [`Pool`](crate::pool::Pool)) and an opaque `u32` tag, the sender's
//! per-frame metadata (netback's GSO and checksum state), which the switch
//! never interprets. [`Switch::input_packet`] queues a packet without
//! copying it; flooding gives every other port a copy of the bytes taken from
//! the packet's own pool ([`Buf::try_clone`](crate::pool::Buf::try_clone)),
//! with the same tag, so a broadcast is charged to whoever sent it; a port
//! for which the pool has no buffer misses the frame
//! ([`PortStats::tx_dropped_no_buffer`]). A buffer goes back to its pool
//! when the frame is taken and done with, or when the switch drops it. The
//! byte-only calls ([`Switch::input`], [`Switch::input_vec`],
//! [`Switch::take_output`], [`Switch::drain`]) keep working: they carry tag 0
//! and heap vectors.
//!
//! # Frame sizes
//!
//! A frame is the Ethernet header (destination MAC, source MAC, EtherType:
//! [`ETH_HEADER_LEN`] bytes) and its payload, with no preamble, no padding
//! requirement and no FCS. The switch accepts frames of [`MIN_FRAME_LEN`]
//! (a bare header) to [`MAX_FRAME_LEN`] (a header and a 65535-byte IPv4
//! packet, the size of a GSO/TSO "super-frame" from a netfront with TSO)
//! bytes; anything else is dropped at ingress. Each port then has its own
//! [`PortConfig::max_frame_len`]: a frame longer than that is not queued on
//! that port (counted in [`PortStats::tx_dropped_too_big`]).
//! [`PortConfig::standard`] accepts [`STANDARD_FRAME_LEN`] (MTU 1500),
//! [`PortConfig::large`] accepts everything up to [`MAX_FRAME_LEN`].
//!
//! # Time
//!
//! Time is a caller-supplied monotonic count of milliseconds (`now_ms`); it
//! is only used to age the MAC table. A time that goes backwards is treated
//! as "no time has passed".

use crate::filter::{SourceFilter, Spoof};
use crate::pool::{Buf, Packet};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

/// Length of an Ethernet header: destination MAC, source MAC, EtherType.
pub const ETH_HEADER_LEN: usize = 14;

/// The shortest frame the switch accepts: a bare Ethernet header.
///
/// Virtual NICs do not pad frames to the 60 bytes of a wire, so nothing
/// longer is required.
pub const MIN_FRAME_LEN: usize = ETH_HEADER_LEN;

/// The longest frame the switch accepts: an Ethernet header followed by a
/// 65535-byte IPv4 packet (a GSO/TSO super-frame), i.e. 65549 bytes.
pub const MAX_FRAME_LEN: usize = ETH_HEADER_LEN + 65535;

/// The longest frame of a standard 1500-byte-MTU link, without VLAN tag or
/// FCS: 1514 bytes.
pub const STANDARD_FRAME_LEN: usize = ETH_HEADER_LEN + 1500;

/// Default MAC table ageing time, 300 s, as in IEEE 802.1D.
pub const DEFAULT_AGEING_MS: u64 = 300_000;

/// Default capacity of the MAC table (learned entries).
pub const DEFAULT_MAX_MAC_ENTRIES: usize = 1024;

/// Default bound on the MACs learned on one port (a quarter of the table).
pub const DEFAULT_MAX_LEARNED: usize = DEFAULT_MAX_MAC_ENTRIES / 4;

/// Default bound on the number of frames queued on one port.
pub const DEFAULT_QUEUE_FRAMES: usize = 512;

/// Default bound on the number of bytes queued on one port (2 MiB).
pub const DEFAULT_QUEUE_BYTES: usize = 2 * 1024 * 1024;

/// A 48-bit Ethernet MAC address.
pub type MacAddr = [u8; 6];

/// The broadcast MAC address.
pub const BROADCAST_MAC: MacAddr = [0xff; 6];

/// Whether `mac` is a group (multicast or broadcast) address: the I/G bit,
/// the lowest bit of the first octet, is set.
pub const fn is_group_mac(mac: &MacAddr) -> bool {
    mac[0] & 1 != 0
}

/// Whether `mac` is one of the IEEE 802.1D reserved link-local group
/// addresses 01:80:C2:00:00:00 to 01:80:C2:00:00:0F (STP, pause, LACP,
/// 802.1X, LLDP, ...), which a bridge must not forward.
pub const fn is_link_local_mac(mac: &MacAddr) -> bool {
    mac[0] == 0x01
        && mac[1] == 0x80
        && mac[2] == 0xc2
        && mac[3] == 0
        && mac[4] == 0
        && mac[5] & 0xf0 == 0
}

/// Identifies a port of a [`Switch`].
///
/// Ids are handed out in increasing order by [`Switch::add_port`] and never
/// reused, so an id kept after [`Switch::remove_port`] cannot reach a later
/// port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(u32);

impl PortId {
    /// The number of the port (0 for the first port added).
    pub const fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}

/// Switch-wide settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// How long (ms) a learned MAC stays valid without a frame from it.
    pub ageing_ms: u64,
    /// Most learned entries in the MAC table (pinned ones aside). When it
    /// is full, once aged entries are gone, new sources are not learned.
    pub max_mac_entries: usize,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            ageing_ms: DEFAULT_AGEING_MS,
            max_mac_entries: DEFAULT_MAX_MAC_ENTRIES,
        }
    }
}

/// Per-port settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Most frames held on the port's output queue (at least 1).
    pub queue_frames: usize,
    /// Most bytes held on the port's output queue. A single frame longer
    /// than this is still accepted by an empty queue.
    pub queue_bytes: usize,
    /// Longest frame queued on this port, clamped to
    /// [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`]. Longer frames are dropped on
    /// this port (and still delivered to ports that accept them).
    pub max_frame_len: usize,
    /// Most MACs learned on this port (Linux's `max_learned`); further
    /// sources are not learned until an entry ages out.
    pub max_learned: usize,
}

impl PortConfig {
    /// A port for a standard 1500-byte-MTU link: frames up to
    /// [`STANDARD_FRAME_LEN`], default queue bounds.
    pub const fn standard() -> Self {
        Self {
            queue_frames: DEFAULT_QUEUE_FRAMES,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            max_frame_len: STANDARD_FRAME_LEN,
            max_learned: DEFAULT_MAX_LEARNED,
        }
    }

    /// A port that also takes GSO-sized frames up to [`MAX_FRAME_LEN`],
    /// default queue bounds.
    pub const fn large() -> Self {
        Self {
            max_frame_len: MAX_FRAME_LEN,
            ..Self::standard()
        }
    }
}

impl Default for PortConfig {
    /// Same as [`PortConfig::standard`].
    fn default() -> Self {
        Self::standard()
    }
}

/// Counters of one port. "rx" is from the port into the switch, "tx" from
/// the switch onto the port's output queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames accepted from the port.
    pub rx_frames: u64,
    /// Bytes of the frames accepted from the port.
    pub rx_bytes: u64,
    /// Frames from the port dropped for their length (outside
    /// [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`]).
    pub rx_dropped_bad_size: u64,
    /// Frames from the port dropped because their source MAC is a group
    /// address.
    pub rx_dropped_bad_source: u64,
    /// Frames from the port dropped because they were sent to a reserved
    /// link-local group address (see [`is_link_local_mac`]).
    pub rx_dropped_link_local: u64,
    /// Frames from the port dropped because the port is down.
    pub rx_dropped_port_down: u64,
    /// Frames from the port dropped by its [`SourceFilter`], or because
    /// their source MAC is pinned to another port.
    pub rx_dropped_spoofed: u64,
    /// Source MACs from the port not learned because the port
    /// ([`PortConfig::max_learned`]) or the table was full.
    pub not_learned: u64,
    /// Frames from the port whose destination lives on the same port and so
    /// were not forwarded anywhere.
    pub rx_filtered: u64,
    /// Frames queued on the port.
    pub tx_frames: u64,
    /// Bytes of the frames queued on the port.
    pub tx_bytes: u64,
    /// Frames for the port dropped because its queue was full.
    pub tx_dropped_queue_full: u64,
    /// Frames for the port dropped because they exceed its
    /// [`PortConfig::max_frame_len`].
    pub tx_dropped_too_big: u64,
    /// Flooded frames the port missed because the sender's pool had no
    /// buffer for its copy.
    pub tx_dropped_no_buffer: u64,
}

/// Switch-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchStats {
    /// Frames sent to one known port.
    pub unicast: u64,
    /// Frames flooded (unknown unicast, broadcast, multicast).
    pub flooded: u64,
    /// Frames dropped at ingress (any `rx_dropped_*` or `rx_filtered`
    /// reason, or an unknown port).
    pub dropped: u64,
    /// MAC addresses newly learned.
    pub learned: u64,
    /// Learned MAC addresses seen again on another port.
    pub moved: u64,
    /// Entries removed because they aged out.
    pub aged_out: u64,
    /// Sources not learned because their port or the table was full.
    pub not_learned: u64,
}

/// Why a frame was not delivered (see [`Delivery::Dropped`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The ingress port does not exist (never added, or removed).
    NoSuchPort,
    /// The ingress port is down.
    PortDown,
    /// The frame is shorter than [`MIN_FRAME_LEN`] or longer than
    /// [`MAX_FRAME_LEN`].
    BadSize,
    /// The source MAC is a group address.
    BadSource,
    /// The port's [`SourceFilter`] refused the frame, or its source MAC is
    /// pinned to another port.
    Spoofed(Spoof),
    /// The destination is a reserved link-local group address.
    LinkLocal,
    /// The destination lives on the ingress port (no hairpin).
    Filtered,
    /// The one egress port's queue was full.
    QueueFull,
    /// The frame is longer than the one egress port accepts.
    TooBig,
    /// The egress port is down.
    EgressDown,
}

/// What [`Switch::input`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued on the one port where the destination lives.
    Unicast(PortId),
    /// Flooded to every other port that is up; `queued` of them took it
    /// (the others were full or take shorter frames).
    Flooded {
        /// Ports whose queue took the frame.
        queued: usize,
    },
    /// Not queued anywhere.
    Dropped(DropReason),
}

/// Queue slots allocated when a port is added (more only for a port whose
/// [`PortConfig::queue_frames`] is larger).
const PREALLOCATED_QUEUE: usize = 1024;

#[derive(Debug)]
struct Port {
    config: PortConfig,
    up: bool,
    queue: VecDeque<Packet>,
    queued_bytes: usize,
    stats: PortStats,
    /// Entries of the table learned on the port (not pinned).
    learned: usize,
    filter: Option<SourceFilter>,
}

impl Port {
    /// Whether the port would take a frame of `len` bytes (counting a refusal).
    fn admit(&mut self, len: usize) -> Result<(), DropReason> {
        if !self.up {
            return Err(DropReason::EgressDown);
        }
        if len > self.config.max_frame_len {
            self.stats.tx_dropped_too_big += 1;
            return Err(DropReason::TooBig);
        }
        let full = self.queue.len() >= self.config.queue_frames
            || (!self.queue.is_empty() && self.queued_bytes + len > self.config.queue_bytes);
        if full {
            self.stats.tx_dropped_queue_full += 1;
            return Err(DropReason::QueueFull);
        }
        Ok(())
    }

    /// Queue `packet` if the port takes it, counting either way.
    fn offer(&mut self, packet: Packet) -> Result<(), DropReason> {
        let len = packet.data.len();
        self.admit(len)?;
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += len as u64;
        self.queued_bytes += len;
        self.queue.push_back(packet);
        Ok(())
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
    }
}

#[derive(Clone, Copy, Debug)]
struct MacEntry {
    port: PortId,
    last_seen: u64,
    /// A port's [`SourceFilter`] MAC: never ages, moves or counts as learned.
    pinned: bool,
}

/// An entry of the MAC table, as listed by [`Switch::mac_table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacTableEntry {
    /// The learned address.
    pub mac: MacAddr,
    /// The port it was last seen on.
    pub port: PortId,
    /// When (caller's ms) a frame from it was last seen.
    pub last_seen_ms: u64,
    /// Pinned by the port's [`SourceFilter`] (never ages).
    pub pinned: bool,
}

/// The learning bridge. See the [module documentation](self).
#[derive(Debug)]
pub struct Switch {
    config: SwitchConfig,
    ports: BTreeMap<PortId, Port>,
    next_port: u32,
    table: BTreeMap<MacAddr, MacEntry>,
    /// Learned entries in `table`.
    learned: usize,
    /// No learned entry ages before this (ms), so a full table is not
    /// scanned for aged entries before then.
    next_ageing_ms: u64,
    stats: SwitchStats,
}

impl Default for Switch {
    fn default() -> Self {
        Self::new(SwitchConfig::default())
    }
}

impl Switch {
    /// A switch with no ports.
    pub fn new(config: SwitchConfig) -> Self {
        Self {
            config: SwitchConfig {
                max_mac_entries: config.max_mac_entries.max(1),
                ..config
            },
            ports: BTreeMap::new(),
            next_port: 0,
            table: BTreeMap::new(),
            learned: 0,
            next_ageing_ms: 0,
            stats: SwitchStats::default(),
        }
    }

    /// The switch's settings.
    pub fn config(&self) -> SwitchConfig {
        self.config
    }

    /// Add a port with `config` (see [`PortConfig`]); it starts up with an
    /// empty queue.
    ///
    /// # Panics
    /// After 2^32 ports have been added over the switch's life.
    pub fn add_port(&mut self, config: PortConfig) -> PortId {
        let id = PortId(self.next_port);
        self.next_port = self
            .next_port
            .checked_add(1)
            .expect("netswitch: port ids exhausted");
        let config = PortConfig {
            queue_frames: config.queue_frames.max(1),
            queue_bytes: config.queue_bytes,
            max_frame_len: config.max_frame_len.clamp(MIN_FRAME_LEN, MAX_FRAME_LEN),
            max_learned: config.max_learned,
        };
        self.ports.insert(
            id,
            Port {
                config,
                up: true,
                queue: VecDeque::with_capacity(config.queue_frames.min(PREALLOCATED_QUEUE)),
                queued_bytes: 0,
                stats: PortStats::default(),
                learned: 0,
                filter: None,
            },
        );
        id
    }

    /// Remove a port: its queue is discarded and every MAC learned on it is
    /// forgotten. Returns its counters, or `None` if there was no such port.
    pub fn remove_port(&mut self, port: PortId) -> Option<PortStats> {
        let removed = self.ports.remove(&port)?;
        self.forget_port(port, true);
        Some(removed.stats)
    }

    /// Sets (or, with `None`, clears) what `port` may send (see the
    /// [module documentation](self)); the filter's MAC is pinned to the port,
    /// taken from wherever it was learned. Returns `false` if there is no
    /// such port, or the MAC is a group address or pinned to another port
    /// (nothing changes then).
    pub fn set_source_filter(&mut self, port: PortId, filter: Option<SourceFilter>) -> bool {
        if !self.ports.contains_key(&port) {
            return false;
        }
        if let Some(f) = &filter {
            let taken = self
                .table
                .get(&f.mac)
                .is_some_and(|e| e.pinned && e.port != port);
            if is_group_mac(&f.mac) || taken {
                return false;
            }
        }
        let old = self.ports.get_mut(&port).and_then(|p| p.filter.take());
        if let Some(old) = old {
            self.table.remove(&old.mac);
        }
        if let Some(f) = &filter {
            self.unlearn(&f.mac);
            self.table.insert(
                f.mac,
                MacEntry {
                    port,
                    last_seen: 0,
                    pinned: true,
                },
            );
        }
        if let Some(p) = self.ports.get_mut(&port) {
            p.filter = filter;
        }
        true
    }

    /// The [`SourceFilter`] of `port`, if it has one.
    pub fn source_filter(&self, port: PortId) -> Option<&SourceFilter> {
        self.ports.get(&port)?.filter.as_ref()
    }

    /// MACs learned on `port` now (pinned ones aside).
    pub fn learned_macs(&self, port: PortId) -> usize {
        self.ports.get(&port).map_or(0, |p| p.learned)
    }

    /// Bring a port up or down. A port that is down takes no frame in
    /// either direction; taking it down discards its queue and forgets the
    /// MACs learned on it. Returns `false` if there is no such port.
    pub fn set_port_up(&mut self, port: PortId, up: bool) -> bool {
        let Some(p) = self.ports.get_mut(&port) else {
            return false;
        };
        p.up = up;
        if !up {
            p.clear();
            self.forget_port(port, false);
        }
        true
    }

    /// Whether `port` exists and is up.
    pub fn is_port_up(&self, port: PortId) -> bool {
        self.ports.get(&port).is_some_and(|p| p.up)
    }

    /// The settings of `port`.
    pub fn port_config(&self, port: PortId) -> Option<PortConfig> {
        self.ports.get(&port).map(|p| p.config)
    }

    /// The ports, in the order they were added.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports.keys().copied()
    }

    /// The ports with at least one frame queued.
    pub fn ports_with_output(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports
            .iter()
            .filter(|(_, p)| !p.queue.is_empty())
            .map(|(id, _)| *id)
    }

    /// Counters of `port`.
    pub fn port_stats(&self, port: PortId) -> Option<PortStats> {
        self.ports.get(&port).map(|p| p.stats)
    }

    /// Switch-wide counters.
    pub fn stats(&self) -> SwitchStats {
        self.stats
    }

    /// Frames queued on `port` (0 if there is no such port).
    pub fn queued_frames(&self, port: PortId) -> usize {
        self.ports.get(&port).map_or(0, |p| p.queue.len())
    }

    /// Bytes queued on `port` (0 if there is no such port).
    pub fn queued_bytes(&self, port: PortId) -> usize {
        self.ports.get(&port).map_or(0, |p| p.queued_bytes)
    }

    /// The bytes of the next frame queued on `port`, left on the queue (for
    /// an owner that must check it has room for it first).
    pub fn peek_output(&self, port: PortId) -> Option<&[u8]> {
        self.peek_packet(port).map(|p| &p.data[..])
    }

    /// The next packet queued on `port`, left on the queue.
    pub fn peek_packet(&self, port: PortId) -> Option<&Packet> {
        self.ports.get(&port)?.queue.front()
    }

    /// Take the next packet queued on `port` (its bytes and tag, no copy).
    pub fn take_packet(&mut self, port: PortId) -> Option<Packet> {
        let p = self.ports.get_mut(&port)?;
        let packet = p.queue.pop_front()?;
        p.queued_bytes -= packet.data.len();
        Some(packet)
    }

    /// Take the bytes of the next frame queued on `port` (a copy if they
    /// were pooled; the tag is dropped).
    pub fn take_output(&mut self, port: PortId) -> Option<Vec<u8>> {
        self.take_packet(port).map(|p| p.data.into_vec())
    }

    /// Take every packet queued on `port`, oldest first. Packets the
    /// iterator has not yielded when it is dropped are discarded.
    pub fn drain_packets(&mut self, port: PortId) -> impl Iterator<Item = Packet> + '_ {
        self.ports.get_mut(&port).into_iter().flat_map(|p| {
            p.queued_bytes = 0;
            p.queue.drain(..)
        })
    }

    /// [`Switch::drain_packets`], the bytes alone.
    pub fn drain(&mut self, port: PortId) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.drain_packets(port).map(|p| p.data.into_vec())
    }

    /// Switch `frame`, received on `port` at `now_ms`, copying it onto
    /// every egress queue that takes it (tag 0).
    pub fn input(&mut self, port: PortId, frame: &[u8], now_ms: u64) -> Delivery {
        self.switch(port, Frame::Borrowed(frame), now_ms)
    }

    /// Like [`Switch::input`], but takes the frame by value, so that a
    /// unicast frame is queued without a copy.
    pub fn input_vec(&mut self, port: PortId, frame: Vec<u8>, now_ms: u64) -> Delivery {
        self.input_packet(port, Packet::from_vec(frame), now_ms)
    }

    /// Switch `packet`, received on `port` at `now_ms`: queued as it is on
    /// the one port of a known unicast destination; flooded as copies from
    /// its buffer's pool, each with its tag (see the
    /// [module documentation](self)).
    pub fn input_packet(&mut self, port: PortId, packet: Packet, now_ms: u64) -> Delivery {
        self.switch(port, Frame::Owned(packet), now_ms)
    }

    /// The port where `mac` was learned, if its entry has not aged out by
    /// `now_ms`.
    pub fn lookup(&self, mac: &MacAddr, now_ms: u64) -> Option<PortId> {
        let e = self.table.get(mac)?;
        (!self.aged(e, now_ms)).then_some(e.port)
    }

    /// The MAC table, including entries that have aged out but have not yet
    /// been removed (see [`Switch::expire`]).
    pub fn mac_table(&self) -> impl Iterator<Item = MacTableEntry> + '_ {
        self.table.iter().map(|(mac, e)| MacTableEntry {
            mac: *mac,
            port: e.port,
            last_seen_ms: e.last_seen,
            pinned: e.pinned,
        })
    }

    /// Remove every learned entry that has aged out by `now_ms`; returns
    /// how many. Calling it is optional (aged entries are ignored anyway and
    /// make room when the table is full); it keeps [`Switch::mac_table`] tidy.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let ageing = self.config.ageing_ms;
        let ports = &mut self.ports;
        let mut removed = 0;
        let mut next = u64::MAX;
        self.table.retain(|_, e| {
            if e.pinned {
                return true;
            }
            if now_ms.saturating_sub(e.last_seen) < ageing {
                next = next.min(e.last_seen.saturating_add(ageing));
                return true;
            }
            if let Some(p) = ports.get_mut(&e.port) {
                p.learned -= 1;
            }
            removed += 1;
            false
        });
        self.learned -= removed;
        self.next_ageing_ms = next;
        self.stats.aged_out += removed as u64;
        removed
    }

    /// Forget every learned MAC (pinned ones stay).
    pub fn flush_mac_table(&mut self) {
        self.table.retain(|_, e| e.pinned);
        self.learned = 0;
        for p in self.ports.values_mut() {
            p.learned = 0;
        }
    }

    fn aged(&self, e: &MacEntry, now_ms: u64) -> bool {
        !e.pinned && now_ms.saturating_sub(e.last_seen) >= self.config.ageing_ms
    }

    /// Removes the entries of `port`: the learned ones, and with `pinned`
    /// its pinned one too.
    fn forget_port(&mut self, port: PortId, pinned: bool) {
        let mut removed = 0;
        self.table.retain(|_, e| {
            let gone = e.port == port && (pinned || !e.pinned);
            removed += (gone && !e.pinned) as usize;
            !gone
        });
        self.learned -= removed;
        if let Some(p) = self.ports.get_mut(&port) {
            p.learned = 0;
        }
    }

    /// Removes `mac`'s learned entry, if it has one.
    fn unlearn(&mut self, mac: &MacAddr) {
        if self.table.get(mac).is_some_and(|e| !e.pinned) {
            if let Some(e) = self.table.remove(mac) {
                self.learned -= 1;
                if let Some(p) = self.ports.get_mut(&e.port) {
                    p.learned -= 1;
                }
            }
        }
    }

    /// Whether `port` may learn one more MAC now (aged entries are dropped
    /// first when the table is full).
    fn has_room(&mut self, port: PortId, now_ms: u64) -> bool {
        let full = |sw: &Switch| {
            sw.learned >= sw.config.max_mac_entries
                || sw
                    .ports
                    .get(&port)
                    .is_none_or(|p| p.learned >= p.config.max_learned)
        };
        if full(self) && now_ms >= self.next_ageing_ms {
            self.expire(now_ms);
        }
        !full(self)
    }

    fn learn(&mut self, mac: MacAddr, port: PortId, now_ms: u64) {
        if let Some(e) = self.table.get_mut(&mac) {
            if e.pinned {
                return;
            }
            if e.port == port {
                e.last_seen = e.last_seen.max(now_ms);
                return;
            }
            // A station move: learned again on its new port, if that port
            // has room.
            self.unlearn(&mac);
            self.stats.moved += 1;
        }
        if !self.has_room(port, now_ms) {
            self.stats.not_learned += 1;
            if let Some(p) = self.ports.get_mut(&port) {
                p.stats.not_learned += 1;
            }
            return;
        }
        self.table.insert(
            mac,
            MacEntry {
                port,
                last_seen: now_ms,
                pinned: false,
            },
        );
        self.learned += 1;
        if let Some(p) = self.ports.get_mut(&port) {
            p.learned += 1;
        }
        self.next_ageing_ms = self
            .next_ageing_ms
            .min(now_ms.saturating_add(self.config.ageing_ms));
        self.stats.learned += 1;
    }

    fn drop_rx(&mut self, reason: DropReason) -> Delivery {
        self.stats.dropped += 1;
        Delivery::Dropped(reason)
    }

    fn switch(&mut self, ingress: PortId, frame: Frame<'_>, now_ms: u64) -> Delivery {
        let bytes = frame.as_slice();
        let len = bytes.len();
        let Some(p) = self.ports.get_mut(&ingress) else {
            return self.drop_rx(DropReason::NoSuchPort);
        };
        if !p.up {
            p.stats.rx_dropped_port_down += 1;
            return self.drop_rx(DropReason::PortDown);
        }
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
            p.stats.rx_dropped_bad_size += 1;
            return self.drop_rx(DropReason::BadSize);
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&bytes[0..6]);
        src.copy_from_slice(&bytes[6..12]);
        if is_group_mac(&src) {
            p.stats.rx_dropped_bad_source += 1;
            return self.drop_rx(DropReason::BadSource);
        }
        let spoof = match &p.filter {
            Some(f) => f.check(bytes).err(),
            // Another port's pinned MAC.
            None => self
                .table
                .get(&src)
                .is_some_and(|e| e.pinned && e.port != ingress)
                .then_some(Spoof::Mac),
        };
        if let Some(why) = spoof {
            p.stats.rx_dropped_spoofed += 1;
            return self.drop_rx(DropReason::Spoofed(why));
        }
        if is_link_local_mac(&dst) {
            p.stats.rx_dropped_link_local += 1;
            return self.drop_rx(DropReason::LinkLocal);
        }
        p.stats.rx_frames += 1;
        p.stats.rx_bytes += len as u64;
        // A filtered port sends only its pinned MAC: nothing to learn.
        if src != [0; 6] && p.filter.is_none() {
            self.learn(src, ingress, now_ms);
        }

        let known = if is_group_mac(&dst) {
            None
        } else {
            self.lookup(&dst, now_ms)
        };
        match known {
            Some(egress) if egress == ingress => {
                if let Some(p) = self.ports.get_mut(&ingress) {
                    p.stats.rx_filtered += 1;
                }
                self.drop_rx(DropReason::Filtered)
            }
            Some(egress) => {
                self.stats.unicast += 1;
                let Some(p) = self.ports.get_mut(&egress) else {
                    return Delivery::Dropped(DropReason::EgressDown);
                };
                if let Err(reason) = p.admit(len) {
                    return Delivery::Dropped(reason);
                }
                match p.offer(frame.into_packet()) {
                    Ok(()) => Delivery::Unicast(egress),
                    Err(reason) => Delivery::Dropped(reason),
                }
            }
            None => {
                self.stats.flooded += 1;
                let targets = self
                    .ports
                    .iter()
                    .filter(|(id, p)| **id != ingress && p.up)
                    .count();
                let mut queued = 0;
                let mut frame = Some(frame);
                let mut seen = 0;
                for (_, p) in self
                    .ports
                    .iter_mut()
                    .filter(|(id, p)| **id != ingress && p.up)
                {
                    seen += 1;
                    if p.admit(len).is_err() {
                        continue;
                    }
                    // The last port takes the frame itself, the others copies.
                    let copy = if seen == targets {
                        frame.take().map(Frame::into_packet)
                    } else {
                        frame.as_ref().and_then(Frame::try_copy)
                    };
                    let Some(copy) = copy else {
                        p.stats.tx_dropped_no_buffer += 1;
                        continue;
                    };
                    if p.offer(copy).is_ok() {
                        queued += 1;
                    }
                }
                Delivery::Flooded { queued }
            }
        }
    }
}

enum Frame<'a> {
    Borrowed(&'a [u8]),
    Owned(Packet),
}

impl Frame<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Frame::Borrowed(b) => b,
            Frame::Owned(p) => &p.data,
        }
    }

    fn into_packet(self) -> Packet {
        match self {
            Frame::Borrowed(b) => Packet::from_vec(b.to_vec()),
            Frame::Owned(p) => p,
        }
    }

    /// A copy for one more port of a flood (`None`: the pool is empty).
    fn try_copy(&self) -> Option<Packet> {
        match self {
            Frame::Borrowed(b) => Some(Packet::new(Buf::from_vec(b.to_vec()), 0)),
            Frame::Owned(p) => p.try_clone(),
        }
    }
}

#[cfg(test)]
mod tests;
