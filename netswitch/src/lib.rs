//! The virtual switch (an L2 learning bridge) that joins every vif, and the
//! built-in peer host on it, with no privileged instruction.
//!
//! * [`Switch`] is the bridge: one [`PortId`] per vif plus one for the
//!   peer, MAC learning with ageing (bounded per port and in all),
//!   flooding, bounded per-port output queues and counters.
//! * [`SourceFilter`] is a vif's antispoofing: its own MAC only, and with
//!   `ip=` only its IPv4 networks ([`Ipv4Net`]), as Xen's vif scripts
//!   allow.
//! * [`Peer`] is a small IPv4 host made with `smoltcp` that answers ARP and
//!   ping and serves TCP discard (port 9) and an endless source (port 19),
//!   so that guests can measure throughput both ways with busybox `nc` and
//!   `dd`.
//!
//! * [`Pool`] and [`Buf`] are pools of frame buffers allocated once, and
//!   the buffers they hand out, which go back to their pool when dropped;
//!   [`Packet`] is what the switch carries: a `Buf` and an opaque `u32`
//!   tag (the sender's per-frame metadata: for netback, a frame's GSO and
//!   checksum state), which the switch never interprets and copies along
//!   when it floods.
//!
//! Neither the switch nor the peer has a clock: every call that needs the
//! time takes a caller-supplied monotonic `now_ms`.
//!
//! # No heap on the packet path
//!
//! A frame's bytes stay in the buffer of the pool they were first copied
//! into (a vif's pool for what a guest sends, the peer's own pool for what
//! the peer sends): the switch queues that buffer, flooding copies it into
//! another buffer of the same pool, and whoever takes it (a vif's receive
//! queue, the peer) drops it, back into its pool, once done. Port queues are
//! allocated when the port is added. The byte-only calls (`input`,
//! `input_vec`, `take_output`, `drain`, `push_frame`, `take_frame`) use heap
//! vectors, for callers (tests, tools) that do not care.
//!
//! # Wiring
//!
//! ```
//! use netswitch::{Peer, PeerConfig, PortConfig, SourceFilter, Switch, SwitchConfig};
//!
//! let mut now_ms = 0;
//! let mut switch = Switch::new(SwitchConfig::default());
//! let peer_port = switch.add_port(PortConfig::large());
//! let vif_port = switch.add_port(PortConfig::standard());
//! // A vif sends only from its own MAC (and, with `ip=`, its addresses).
//! let mac = [0x00, 0x16, 0x3e, 0, 1, 0];
//! assert!(switch.set_source_filter(vif_port, Some(SourceFilter::mac_only(mac))));
//! let mut peer = Peer::new(PeerConfig::default(), now_ms).unwrap();
//!
//! // Whenever netback has taken frames off a vif's TX ring:
//! # let frame = [0xffu8; 60];
//! switch.input(vif_port, &frame, now_ms);
//! // (netback's frames are pooled and tagged: `switch.input_packet`.)
//! // ... then let the peer answer, and give every vif what is queued for it.
//! peer.exchange(&mut switch, peer_port, now_ms);
//! while let Some(packet) = switch.take_packet(vif_port) {
//!     // netback copies `packet.data` into the vif's RX ring; dropping it
//!     // gives the buffer back to its pool.
//! #   drop(packet);
//! }
//! while let Some(report) = peer.take_report() {
//!     // e.g. "netpeer: discard received 67108864 bytes from 10.0.0.2:40000 in 812 ms"
//! #   let _ = report;
//! }
//! // Arm a timer for the peer's next deadline (retransmission, keep-alive).
//! let next = peer.poll_at(now_ms);
//! # assert_eq!(next, None);
//! # now_ms += 1;
//! # let _ = now_ms;
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod device;
pub mod filter;
pub mod peer;
pub mod pool;
pub mod switch;

pub use filter::{Ipv4Net, SourceFilter, Spoof};
pub use peer::{
    fill_source_pattern, ConnectionReport, Peer, PeerConfig, PeerConfigError, PeerStats, Service,
    DEFAULT_PEER_IPV4, DEFAULT_PEER_MAC, DEFAULT_PREFIX_LEN, DISCARD_PORT, SOURCE_PORT,
};
pub use pool::{Buf, Packet, Pool, PoolConfig, PoolStats};
pub use switch::{
    is_group_mac, is_link_local_mac, Delivery, DropReason, MacAddr, MacTableEntry, PortConfig,
    PortId, PortStats, Switch, SwitchConfig, SwitchStats, BROADCAST_MAC, DEFAULT_AGEING_MS,
    DEFAULT_MAX_LEARNED, DEFAULT_MAX_MAC_ENTRIES, DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_FRAMES,
    ETH_HEADER_LEN, MAX_FRAME_LEN, MIN_FRAME_LEN, STANDARD_FRAME_LEN,
};
