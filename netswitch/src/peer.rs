//! The built-in peer host: a small IPv4 host on the switch, made with
//! `smoltcp`, for guests to ping and to measure TCP throughput against with
//! the tools already in them (busybox `ping`, `nc`, `dd`).
//!
//! It answers ARP and ICMP echo (smoltcp's automatic echo reply), and
//! serves TCP on two ports:
//!
//! * **discard** ([`DISCARD_PORT`], 9): reads and throws away everything it
//!   receives, counting bytes per connection; when the client closes, the
//!   peer closes too and reports a [`ConnectionReport`]
//!   (`discard received N bytes from A:P in T ms`).
//!   `dd if=/dev/zero bs=64k count=1024 | nc 10.0.0.1 9`
//! * **source** ([`SOURCE_PORT`], 19): sends an endless chargen-like stream
//!   (see [`fill_source_pattern`]) until the client goes away (reset, or
//!   close of both halves), and reports the bytes the client acknowledged.
//!   Anything the client sends is read and ignored; a client's FIN alone
//!   does not stop the stream (chargen semantics).
//!   `nc 10.0.0.1 19 | head -c 67108864 >/dev/null`
//!
//! Each service has a small pool of listening sockets
//! ([`PeerConfig::connections_per_service`]): a connection takes one and
//! the socket listens again once the connection is over, so several
//! clients can be served at once; a SYN that finds no free socket is
//! answered with a reset.
//!
//! # Driving it
//!
//! The peer has no clock and no thread. Its owner:
//!
//! 1. gives it the frames the switch queued on its port
//!    ([`Peer::push_frame`]),
//! 2. calls [`Peer::poll`] with the current time in milliseconds,
//! 3. hands the frames it produced ([`Peer::take_frame`]) to the switch,
//! 4. and calls it again when new frames arrive for it or at the latest at
//!    [`Peer::poll_at`] (retransmissions, keep-alives, timeouts).
//!
//! [`Peer::exchange`] does 1 to 3 against a [`Switch`] until nothing moves;
//! [`Peer::exchange_with`] does the same with a `prepare` step that turns
//! each packet from the switch into the frames the peer can take (the
//! kernel segments GSO super-frames and completes partial checksums there,
//! with netback's `Frame::into_plain`).
//!
//! # Buffers
//!
//! The peer writes the frames it sends into buffers of its own [`Pool`]
//! ([`PeerConfig::pool_frames`] buffers of the MTU plus the Ethernet
//! header, allocated by [`Peer::new`]) and stops sending while none is free;
//! a frame's buffer comes back when whoever received it is done with it.
//! Received frames are kept in the [`Buf`] they came in (a guest's pool) until
//! smoltcp has read them, then dropped, back to that pool.
//!
//! # Checksums
//!
//! Frames the peer sends carry complete IPv4, ICMP and TCP checksums.
//! Received frames are expected to be complete too (the owner's `prepare`
//! completes the partial checksums of a netfront's frames before they reach
//! the peer); with [`PeerConfig::verify_rx_checksums`] they are verified and
//! a frame with a wrong checksum is dropped, without it they are trusted.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};

use crate::device::QueueDevice;
use crate::pool::{Buf, Packet, Pool, PoolConfig};
use crate::switch::{is_group_mac, MacAddr, PortId, Switch, ETH_HEADER_LEN};

/// TCP port of the discard service (RFC 863).
pub const DISCARD_PORT: u16 = 9;

/// TCP port of the endless source (the chargen port, RFC 864).
pub const SOURCE_PORT: u16 = 19;

/// Default MAC of the peer: a locally administered unicast address.
pub const DEFAULT_PEER_MAC: MacAddr = [0x02, 0x58, 0x4e, 0x00, 0x00, 0x01];

/// Default IPv4 address of the peer, 10.0.0.1 (in 10.0.0.0/24).
pub const DEFAULT_PEER_IPV4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Default prefix length of the peer's subnet.
pub const DEFAULT_PREFIX_LEN: u8 = 24;

/// Length of one line of the source pattern: 72 characters and CR LF.
const LINE_LEN: usize = 74;
/// The source pattern repeats after 95 lines (one per printable character).
const PATTERN_LEN: usize = 95 * LINE_LEN;

const fn build_pattern() -> [u8; PATTERN_LEN] {
    let mut p = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        let line = i / LINE_LEN;
        let col = i % LINE_LEN;
        p[i] = match col {
            72 => b'\r',
            73 => b'\n',
            _ => b' ' + ((line + col) % 95) as u8,
        };
        i += 1;
    }
    p
}

static PATTERN: [u8; PATTERN_LEN] = build_pattern();

/// Fill `buf` with the source service's stream starting at byte `offset`
/// of the stream.
///
/// The stream is the classic chargen one: lines of 72 printable ASCII
/// characters followed by CR LF, line `n` starting with character
/// `' ' + n % 95` and each next character one further along the 95
/// printable characters, so it repeats every 7030 bytes.
pub fn fill_source_pattern(offset: u64, buf: &mut [u8]) {
    let mut pos = (offset % PATTERN_LEN as u64) as usize;
    let mut done = 0;
    while done < buf.len() {
        let n = (buf.len() - done).min(PATTERN_LEN - pos);
        buf[done..done + n].copy_from_slice(&PATTERN[pos..pos + n]);
        done += n;
        pos = 0;
    }
}

/// Settings of a [`Peer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's MAC address (unicast).
    pub mac: MacAddr,
    /// The peer's IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Prefix length of the peer's subnet (1..=32). The peer has no route:
    /// it only talks to hosts on its subnet.
    pub prefix_len: u8,
    /// IP MTU of the peer's link (576..=9000): its frames are at most this
    /// plus [`ETH_HEADER_LEN`] bytes long, and its TCP MSS follows from it.
    /// Longer frames are still received.
    pub mtu: usize,
    /// TCP port of the discard service.
    pub discard_port: u16,
    /// TCP port of the endless source.
    pub source_port: u16,
    /// Concurrent connections each service can hold (at least 1).
    pub connections_per_service: usize,
    /// Size of the big buffer of each connection: the receive buffer of a
    /// discard connection, the send buffer of a source connection (the
    /// other direction gets 4 KiB). Larger buffers mean a larger TCP
    /// window, hence more throughput when polls are far apart.
    pub tcp_buffer_len: usize,
    /// Most frames waiting in the peer's receive queue; more are dropped.
    pub rx_queue_frames: usize,
    /// The peer stops producing frames while this many wait to be taken.
    pub tx_queue_frames: usize,
    /// Buffers of the peer's own pool (at least 1), each of `mtu` plus
    /// [`ETH_HEADER_LEN`] bytes, allocated by [`Peer::new`]: the frames it
    /// sends are written there, and it stops sending while all of them are
    /// out (queued on the switch, or waiting in a guest's receive queue).
    pub pool_frames: usize,
    /// Verify the checksums of received frames (drop the bad ones), rather
    /// than trusting them.
    pub verify_rx_checksums: bool,
    /// Abort a connection when the client has sent nothing for this long
    /// (ms) while the peer waits for it (unacknowledged data or keep-alive
    /// probes, which are sent every quarter of it); `None` for never.
    pub idle_timeout_ms: Option<u64>,
    /// Seed for TCP initial sequence numbers; any value works, a different
    /// one per boot is better.
    pub random_seed: u64,
}

impl PeerConfig {
    /// Default settings with the given addresses.
    pub const fn new(mac: MacAddr, ipv4: Ipv4Addr, prefix_len: u8) -> Self {
        Self {
            mac,
            ipv4,
            prefix_len,
            mtu: 1500,
            discard_port: DISCARD_PORT,
            source_port: SOURCE_PORT,
            connections_per_service: 4,
            tcp_buffer_len: 128 * 1024,
            rx_queue_frames: 256,
            tx_queue_frames: 256,
            pool_frames: 512,
            verify_rx_checksums: true,
            idle_timeout_ms: Some(60_000),
            random_seed: 0x6e65_7470_6565_7221,
        }
    }
}

impl Default for PeerConfig {
    /// [`DEFAULT_PEER_MAC`], [`DEFAULT_PEER_IPV4`]/[`DEFAULT_PREFIX_LEN`].
    fn default() -> Self {
        Self::new(DEFAULT_PEER_MAC, DEFAULT_PEER_IPV4, DEFAULT_PREFIX_LEN)
    }
}

/// Why [`Peer::new`] refused a [`PeerConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerConfigError {
    /// The MAC is all zeros or a group address.
    BadMac,
    /// The IPv4 address is unspecified, broadcast, multicast or loopback.
    BadAddress,
    /// The prefix length is 0 or above 32.
    BadPrefix,
    /// The MTU is outside 576..=9000.
    BadMtu,
    /// The two services share a port, or one of them is port 0.
    BadPorts,
}

impl fmt::Display for PeerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadMac => "bad MAC address",
            Self::BadAddress => "bad IPv4 address",
            Self::BadPrefix => "bad prefix length",
            Self::BadMtu => "MTU outside 576..=9000",
            Self::BadPorts => "bad service ports",
        })
    }
}

/// One of the peer's TCP services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Reads and discards.
    Discard,
    /// Sends an endless stream.
    Source,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Discard => "discard",
            Self::Source => "source",
        })
    }
}

/// The record of a finished connection, from [`Peer::take_report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionReport {
    /// The service the connection was made to.
    pub service: Service,
    /// The client's address and port.
    pub remote: SocketAddrV4,
    /// Discard: bytes received. Source: bytes the client acknowledged.
    pub bytes: u64,
    /// Time from the connection's first packet to its end (ms).
    pub duration_ms: u64,
}

impl fmt::Display for ConnectionReport {
    /// `discard received N bytes from A:P in T ms` or
    /// `source sent N bytes to A:P in T ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, prep) = match self.service {
            Service::Discard => ("received", "from"),
            Service::Source => ("sent", "to"),
        };
        write!(
            f,
            "{} {} {} bytes {} {} in {} ms",
            self.service, verb, self.bytes, prep, self.remote, self.duration_ms
        )
    }
}

/// Counters of a [`Peer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Frames given to the peer and queued.
    pub frames_in: u64,
    /// Frames dropped because the receive queue was full, or of a bad size.
    pub frames_in_dropped: u64,
    /// Frames the peer produced.
    pub frames_out: u64,
    /// Connections made to the discard service.
    pub discard_connections: u64,
    /// Bytes received by the discard service, all connections together.
    pub discard_bytes: u64,
    /// Connections made to the source service.
    pub source_connections: u64,
    /// Bytes of the source service acknowledged by clients, all
    /// connections together.
    pub source_bytes: u64,
}

/// Most reports kept for [`Peer::take_report`]; older ones are dropped.
const MAX_REPORTS: usize = 64;
/// Buffer size of the small direction of a connection.
const SMALL_BUFFER: usize = 4096;
/// Bound on iface-poll/socket-service rounds in one [`Peer::poll`].
const MAX_POLL_ROUNDS: usize = 32;
/// Bound on rounds in one [`Peer::exchange`].
const MAX_EXCHANGE_ROUNDS: usize = 64;
/// Receive-queue slots allocated beyond [`PeerConfig::rx_queue_frames`].
const RX_QUEUE_SLACK: usize = 64;

#[derive(Debug)]
struct Conn {
    remote: SocketAddrV4,
    started_ms: u64,
    established: bool,
    /// Discard: bytes received; source: bytes queued to send.
    bytes: u64,
    /// Source: bytes acknowledged by the client.
    acked: u64,
}

#[derive(Debug)]
struct Slot {
    service: Service,
    handle: SocketHandle,
    conn: Option<Conn>,
}

/// The built-in peer host. See the [module documentation](self).
pub struct Peer {
    config: PeerConfig,
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    slots: Vec<Slot>,
    reports: VecDeque<ConnectionReport>,
    stats: PeerStats,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("config", &self.config)
            .field("slots", &self.slots)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn instant(ms: u64) -> Instant {
    Instant::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn endpoint_v4(ep: Option<IpEndpoint>) -> SocketAddrV4 {
    match ep {
        Some(IpEndpoint {
            addr: IpAddress::Ipv4(a),
            port,
        }) => SocketAddrV4::new(a, port),
        _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    }
}

impl Peer {
    /// A peer with `config`, its sockets listening, at time `now_ms`.
    pub fn new(config: PeerConfig, now_ms: u64) -> Result<Self, PeerConfigError> {
        if config.mac == [0; 6] || is_group_mac(&config.mac) {
            return Err(PeerConfigError::BadMac);
        }
        let ip = config.ipv4;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            return Err(PeerConfigError::BadAddress);
        }
        if config.prefix_len == 0 || config.prefix_len > 32 {
            return Err(PeerConfigError::BadPrefix);
        }
        if !(576..=9000).contains(&config.mtu) {
            return Err(PeerConfigError::BadMtu);
        }
        if config.discard_port == 0
            || config.source_port == 0
            || config.discard_port == config.source_port
        {
            return Err(PeerConfigError::BadPorts);
        }
        let config = PeerConfig {
            connections_per_service: config.connections_per_service.max(1),
            tcp_buffer_len: config.tcp_buffer_len.max(SMALL_BUFFER),
            rx_queue_frames: config.rx_queue_frames.max(1),
            tx_queue_frames: config.tx_queue_frames.max(1),
            pool_frames: config.pool_frames.max(1),
            ..config
        };

        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = config.mtu + ETH_HEADER_LEN;
        caps.max_burst_size = None;
        caps.checksum = if config.verify_rx_checksums {
            ChecksumCapabilities::default()
        } else {
            let mut c = ChecksumCapabilities::default();
            c.ipv4 = Checksum::Tx;
            c.tcp = Checksum::Tx;
            c.udp = Checksum::Tx;
            c.icmpv4 = Checksum::Tx;
            c
        };
        let pool = Pool::new(PoolConfig {
            small: config.pool_frames,
            small_len: config.mtu + ETH_HEADER_LEN,
            large: 0,
            large_len: 0,
        });
        let mut device = QueueDevice::new(caps, config.tx_queue_frames, Some(pool));
        device.rx.reserve(config.rx_queue_frames + RX_QUEUE_SLACK);

        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(config.mac)));
        iface_config.random_seed = config.random_seed;
        let mut iface = Interface::new(iface_config, &mut device, instant(now_ms));
        iface.update_ip_addrs(|addrs| {
            // The address list is empty, so there is room for one.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ip), config.prefix_len));
        });

        let mut peer = Self {
            config,
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            slots: Vec::new(),
            reports: VecDeque::new(),
            stats: PeerStats::default(),
        };
        for service in [Service::Discard, Service::Source] {
            for _ in 0..config.connections_per_service {
                peer.add_slot(service);
            }
        }
        Ok(peer)
    }

    fn port_of(&self, service: Service) -> u16 {
        match service {
            Service::Discard => self.config.discard_port,
            Service::Source => self.config.source_port,
        }
    }

    fn add_slot(&mut self, service: Service) {
        let (rx, tx) = match service {
            Service::Discard => (self.config.tcp_buffer_len, SMALL_BUFFER),
            Service::Source => (SMALL_BUFFER, self.config.tcp_buffer_len),
        };
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; rx]),
            tcp::SocketBuffer::new(vec![0u8; tx]),
        );
        let handle = self.sockets.add(socket);
        self.slots.push(Slot {
            service,
            handle,
            conn: None,
        });
        self.listen(handle, service);
    }

    fn listen(&mut self, handle: SocketHandle, service: Service) {
        let port = self.port_of(service);
        let timeout = self.config.idle_timeout_ms;
        let s = self.sockets.get_mut::<tcp::Socket>(handle);
        s.set_ack_delay(None);
        s.set_nagle_enabled(false);
        s.set_timeout(timeout.map(Duration::from_millis));
        s.set_keep_alive(timeout.map(|t| Duration::from_millis((t / 4).max(1))));
        // Cannot fail: the socket is closed and the port is not 0.
        let _ = s.listen(port);
    }

    /// The peer's settings.
    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// The peer's MAC address.
    pub fn mac(&self) -> MacAddr {
        self.config.mac
    }

    /// The peer's IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.config.ipv4
    }

    /// The peer's counters.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }

    /// Connections now open (past the handshake's first packet), per
    /// service: `(discard, source)`.
    pub fn open_connections(&self) -> (usize, usize) {
        let count = |svc| {
            self.slots
                .iter()
                .filter(|s| s.service == svc && s.conn.is_some())
                .count()
        };
        (count(Service::Discard), count(Service::Source))
    }

    /// Give the peer a frame from the switch. Returns `false` (and counts
    /// it) if it was dropped: receive queue full, or shorter than an
    /// Ethernet header.
    pub fn push_frame(&mut self, frame: Vec<u8>) -> bool {
        self.push_buf(Buf::from_vec(frame))
    }

    /// [`Peer::push_frame`] for a frame in a (pooled) buffer, kept as it is
    /// until smoltcp has read it.
    pub fn push_buf(&mut self, frame: Buf) -> bool {
        if self.device.rx.len() >= self.config.rx_queue_frames {
            self.stats.frames_in_dropped += 1;
            return false;
        }
        self.queue_rx(frame)
    }

    /// Queues a received frame whatever the queue holds (a packet's frames
    /// go in together).
    fn queue_rx(&mut self, frame: Buf) -> bool {
        if frame.len() < ETH_HEADER_LEN {
            self.stats.frames_in_dropped += 1;
            return false;
        }
        self.stats.frames_in += 1;
        self.device.rx.push_back(frame);
        true
    }

    /// Whether the receive queue has room for another frame.
    pub fn can_take_frame(&self) -> bool {
        self.device.rx.len() < self.config.rx_queue_frames
    }

    /// Take the bytes of a frame the peer produced (a copy: its buffer goes
    /// back to the peer's pool).
    pub fn take_frame(&mut self) -> Option<Vec<u8>> {
        self.take_buf().map(Buf::into_vec)
    }

    /// Take a frame the peer produced, in its buffer of the peer's pool, to
    /// hand to the switch.
    pub fn take_buf(&mut self) -> Option<Buf> {
        let f = self.device.tx.pop_front()?;
        self.stats.frames_out += 1;
        Some(f)
    }

    /// The peer's own pool (where the frames it sends are written).
    pub fn pool(&self) -> Option<&Pool> {
        self.device.pool.as_ref()
    }

    /// Frames waiting in the transmit queue.
    pub fn pending_frames(&self) -> usize {
        self.device.tx.len()
    }

    /// Take the oldest report of a finished connection.
    pub fn take_report(&mut self) -> Option<ConnectionReport> {
        self.reports.pop_front()
    }

    /// Take every report of a finished connection, oldest first.
    pub fn take_reports(&mut self) -> impl Iterator<Item = ConnectionReport> + '_ {
        self.reports.drain(..)
    }

    /// Process received frames, run the services and produce frames, at
    /// time `now_ms`. Returns whether anything happened. Stops early (and
    /// keeps the rest for later) when the transmit queue is full: take the
    /// frames and call it again.
    pub fn poll(&mut self, now_ms: u64) -> bool {
        let ts = instant(now_ms);
        let mut any = false;
        for _ in 0..MAX_POLL_ROUNDS {
            let net = self.iface.poll(ts, &mut self.device, &mut self.sockets);
            let app = self.service(now_ms);
            if net == PollResult::None && !app {
                break;
            }
            any = true;
        }
        any
    }

    /// When (ms, same clock as `now_ms`) [`Peer::poll`] should next be
    /// called if no frame arrives before: `Some(now_ms)` or earlier means
    /// at once, `None` means only when a frame arrives.
    pub fn poll_at(&mut self, now_ms: u64) -> Option<u64> {
        if !self.device.rx.is_empty() {
            return Some(now_ms);
        }
        self.iface
            .poll_at(instant(now_ms), &self.sockets)
            .map(|t| u64::try_from(t.total_millis()).unwrap_or(0))
    }

    /// Move frames between the peer and its `port` on `switch` and poll,
    /// until nothing moves (bounded). Returns whether anything happened.
    /// Packets from the switch are taken as they are (their tag ignored);
    /// the peer's frames enter the switch with tag 0.
    pub fn exchange(&mut self, switch: &mut Switch, port: PortId, now_ms: u64) -> bool {
        self.exchange_with(switch, port, now_ms, 0, |p| Some(p.data))
    }

    /// [`Peer::exchange`] with the packets from the switch turned into the
    /// frames the peer takes by `prepare` (called once per packet, while the
    /// receive queue has room; what its iterator yields is pulled only as
    /// the queue has room, so a packet that makes many frames, such as a GSO
    /// super-frame cut into segments, makes them as they are read); the
    /// peer's frames enter the switch with tag `out_tag`. Frames of a packet
    /// still unmade when the rounds run out are dropped and counted.
    pub fn exchange_with<I, F>(
        &mut self,
        switch: &mut Switch,
        port: PortId,
        now_ms: u64,
        out_tag: u32,
        mut prepare: F,
    ) -> bool
    where
        F: FnMut(Packet) -> I,
        I: IntoIterator<Item = Buf>,
    {
        let mut any = false;
        let mut current: Option<I::IntoIter> = None;
        for _ in 0..MAX_EXCHANGE_ROUNDS {
            let mut moved = false;
            while self.can_take_frame() {
                let frame = match current.as_mut().and_then(Iterator::next) {
                    Some(f) => f,
                    None => {
                        let Some(packet) = switch.take_packet(port) else {
                            current = None;
                            break;
                        };
                        moved = true;
                        current = Some(prepare(packet).into_iter());
                        continue;
                    }
                };
                self.queue_rx(frame);
                moved = true;
            }
            let polled = self.poll(now_ms);
            while let Some(frame) = self.take_buf() {
                switch.input_packet(port, Packet::new(frame, out_tag), now_ms);
                moved = true;
            }
            if !moved && !polled {
                break;
            }
            any = true;
        }
        if let Some(rest) = current {
            self.stats.frames_in_dropped += rest.count() as u64;
        }
        any
    }

    fn push_report(&mut self, report: ConnectionReport) {
        if self.reports.len() >= MAX_REPORTS {
            self.reports.pop_front();
        }
        self.reports.push_back(report);
    }

    /// Run the services on every socket; returns whether anything changed.
    fn service(&mut self, now_ms: u64) -> bool {
        let mut progress = false;
        for i in 0..self.slots.len() {
            progress |= self.service_slot(i, now_ms);
        }
        progress
    }

    fn service_slot(&mut self, i: usize, now_ms: u64) -> bool {
        let slot = &mut self.slots[i];
        let service = slot.service;
        let handle = slot.handle;
        let sock = self.sockets.get_mut::<tcp::Socket>(handle);
        let state = sock.state();
        let mut progress = false;

        let idle = matches!(
            state,
            tcp::State::Listen | tcp::State::Closed | tcp::State::TimeWait
        );
        if slot.conn.is_none() && !idle {
            slot.conn = Some(Conn {
                remote: endpoint_v4(sock.remote_endpoint()),
                started_ms: now_ms,
                established: false,
                bytes: 0,
                acked: 0,
            });
            progress = true;
        }

        if let Some(conn) = slot.conn.as_mut() {
            if !conn.established {
                // A handshake that was reset sends the socket back to
                // LISTEN, and the next SYN may already have arrived.
                if let Some(ep) = sock.remote_endpoint() {
                    conn.remote = endpoint_v4(Some(ep));
                }
            }
            // Both services read and count what arrives; only discard
            // reports it.
            while sock.can_recv() {
                let n = sock.recv(|b| (b.len(), b.len())).unwrap_or(0);
                if n == 0 {
                    break;
                }
                progress = true;
                if service == Service::Discard {
                    conn.bytes += n as u64;
                    self.stats.discard_bytes += n as u64;
                }
            }
            // Several segments may be processed in one poll, so the
            // socket may already be past ESTABLISHED.
            let synchronized = match state {
                tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived => false,
                tcp::State::Closed => conn.bytes > 0,
                _ => true,
            };
            if !conn.established && synchronized {
                conn.established = true;
                match service {
                    Service::Discard => self.stats.discard_connections += 1,
                    Service::Source => self.stats.source_connections += 1,
                }
                progress = true;
            }
            match service {
                Service::Discard => {
                    if state == tcp::State::CloseWait {
                        // The client has finished sending: close our half.
                        sock.close();
                        progress = true;
                    }
                }
                Service::Source => {
                    // What has left the send buffer was acknowledged (the
                    // buffer is still intact after a reset).
                    let acked = conn.bytes.saturating_sub(sock.send_queue() as u64);
                    if acked > conn.acked {
                        self.stats.source_bytes += acked - conn.acked;
                        conn.acked = acked;
                    }
                    if !idle && sock.may_send() {
                        let offset = conn.bytes;
                        let n = sock
                            .send(|buf| {
                                fill_source_pattern(offset, buf);
                                (buf.len(), buf.len())
                            })
                            .unwrap_or(0);
                        if n > 0 {
                            conn.bytes += n as u64;
                            progress = true;
                        }
                    }
                }
            }
        }

        if idle {
            if let Some(conn) = slot.conn.take() {
                progress = true;
                if conn.established {
                    let bytes = match service {
                        Service::Discard => conn.bytes,
                        Service::Source => conn.acked,
                    };
                    self.push_report(ConnectionReport {
                        service,
                        remote: conn.remote,
                        bytes,
                        duration_ms: now_ms.saturating_sub(conn.started_ms),
                    });
                }
            }
            if state == tcp::State::Closed {
                self.listen(handle, service);
                progress = true;
            }
        }
        progress
    }
}

#[cfg(test)]
mod tests;
