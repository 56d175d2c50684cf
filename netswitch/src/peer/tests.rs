//! The peer on a switch, driven by a second smoltcp interface (the
//! "client", standing in for a guest) on another port.

use super::*;
use crate::pool::PoolConfig;
use crate::switch::PortConfig;

use smoltcp::socket::icmp;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket,
};

const CLIENT_MAC: MacAddr = [0x02, 0x58, 0x4e, 0x00, 0x00, 0x02];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const MIB: usize = 1024 * 1024;

struct Client {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
}

impl Client {
    fn new(now: u64, max_frame_len: usize) -> Self {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = max_frame_len;
        let mut device = QueueDevice::new(caps, 1024, None);
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(CLIENT_MAC)));
        cfg.random_seed = 42;
        let mut iface = Interface::new(cfg, &mut device, instant(now));
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(CLIENT_IP), 24)).unwrap();
        });
        Self {
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
        }
    }

    fn tcp(&mut self) -> SocketHandle {
        let s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
        );
        self.sockets.add(s)
    }

    fn connect(&mut self, h: SocketHandle, port: u16, local_port: u16) {
        let cx = self.iface.context();
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .connect(cx, (IpAddress::Ipv4(DEFAULT_PEER_IPV4), port), local_port)
            .unwrap();
    }

    fn sock(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
}

/// A switch with the peer on one port and the client on another.
struct Net {
    now: u64,
    switch: Switch,
    peer: Peer,
    peer_port: PortId,
    client: Client,
    client_port: PortId,
    /// Rewrite the MSS the peer announces to the client (see
    /// [`raise_mss`]).
    raise_mss_to: Option<u16>,
}

impl Net {
    fn new(config: PeerConfig) -> Self {
        let mut switch = Switch::default();
        let peer_port = switch.add_port(PortConfig::large());
        let client_port = switch.add_port(PortConfig::large());
        Self {
            now: 1000,
            switch,
            peer: Peer::new(config, 1000).unwrap(),
            peer_port,
            client: Client::new(1000, 1514),
            client_port,
            raise_mss_to: None,
        }
    }

    /// One millisecond of the world.
    fn step(&mut self) {
        let ts = instant(self.now);
        let c = &mut self.client;
        c.iface.poll(ts, &mut c.device, &mut c.sockets);
        while let Some(f) = c.device.tx.pop_front() {
            self.switch
                .input_vec(self.client_port, f.into_vec(), self.now);
        }
        self.peer
            .exchange(&mut self.switch, self.peer_port, self.now);
        let c = &mut self.client;
        for mut f in self.switch.drain(self.client_port) {
            if let Some(mss) = self.raise_mss_to {
                raise_mss(&mut f, mss);
            }
            c.device.rx.push_back(Buf::from_vec(f));
        }
        c.iface.poll(ts, &mut c.device, &mut c.sockets);
        while let Some(f) = c.device.tx.pop_front() {
            self.switch
                .input_vec(self.client_port, f.into_vec(), self.now);
        }
        self.now += 1;
    }

    /// Step until `done` holds, at most `max` steps; returns the steps.
    fn run_until(&mut self, max: usize, mut done: impl FnMut(&mut Self) -> bool) -> usize {
        for i in 0..max {
            if done(self) {
                return i;
            }
            self.step();
        }
        panic!("not done after {max} steps");
    }
}

/// Like a middlebox, rewrite the MSS option of a TCP SYN in `frame` to
/// `mss` and fix the checksum, so that the client sends segments as large
/// as a guest's TSO super-frames.
fn raise_mss(frame: &mut [u8], mss: u16) {
    let mut ef = EthernetFrame::new_checked(frame).unwrap();
    if ef.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let mut ipp = Ipv4Packet::new_checked(ef.payload_mut()).unwrap();
    if ipp.next_header() != IpProtocol::Tcp {
        return;
    }
    let (src, dst) = (ipp.src_addr(), ipp.dst_addr());
    let mut tp = TcpPacket::new_checked(ipp.payload_mut()).unwrap();
    if !tp.syn() {
        return;
    }
    let opts = tp.options_mut();
    // smoltcp puts the MSS option first.
    assert_eq!(opts[..2], [2, 4]);
    opts[2..4].copy_from_slice(&mss.to_be_bytes());
    tp.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
}

fn echo_request(seq_no: u16, data: &[u8]) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no,
        data,
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
        &ChecksumCapabilities::default(),
    );
    buf
}

#[test]
fn answers_arp_and_ping() {
    let mut net = Net::new(PeerConfig::default());
    let h = net.client.sockets.add(icmp::Socket::new(
        icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 8], vec![0; 4096]),
        icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 8], vec![0; 4096]),
    ));
    net.client
        .sockets
        .get_mut::<icmp::Socket>(h)
        .bind(icmp::Endpoint::Ident(0x1234))
        .unwrap();
    let payload = b"xenolith ping payload";
    let mut replies = 0;
    for seq in 0..3u16 {
        net.client
            .sockets
            .get_mut::<icmp::Socket>(h)
            .send_slice(
                &echo_request(seq, payload),
                IpAddress::Ipv4(DEFAULT_PEER_IPV4),
            )
            .unwrap();
        // The first request waits for ARP; smoltcp may drop it meanwhile.
        for _ in 0..50 {
            net.step();
            let s = net.client.sockets.get_mut::<icmp::Socket>(h);
            if s.can_recv() {
                let (data, from) = s.recv().unwrap();
                assert_eq!(from, IpAddress::Ipv4(DEFAULT_PEER_IPV4));
                let pkt = Icmpv4Packet::new_checked(data).unwrap();
                let repr = Icmpv4Repr::parse(&pkt, &ChecksumCapabilities::default()).unwrap();
                assert_eq!(
                    repr,
                    Icmpv4Repr::EchoReply {
                        ident: 0x1234,
                        seq_no: seq,
                        data: payload
                    }
                );
                replies += 1;
                break;
            }
        }
    }
    assert!(replies >= 2, "only {replies} echo replies");
    // The switch learned both hosts, and the peer's frames went straight to
    // the client.
    assert_eq!(
        net.switch.lookup(&DEFAULT_PEER_MAC, net.now),
        Some(net.peer_port)
    );
    assert_eq!(
        net.switch.lookup(&CLIENT_MAC, net.now),
        Some(net.client_port)
    );
    assert!(net.peer.stats().frames_out >= 3);
    // Idle, with only listening sockets: nothing to do until a frame comes.
    assert_eq!(net.peer.poll_at(net.now), None);
}

#[test]
fn discard_counts_a_mebibyte() {
    let mut net = Net::new(PeerConfig::default());
    let h = net.client.tcp();
    net.client.connect(h, DISCARD_PORT, 40000);
    let mut sent = 0usize;
    let mut closed = false;
    let steps = net.run_until(20_000, |net| {
        let s = net.client.sock(h);
        if s.can_send() && sent < MIB {
            sent += s
                .send(|buf| {
                    let n = buf.len().min(MIB - sent);
                    buf[..n].fill(0xa5);
                    (n, n)
                })
                .unwrap();
        }
        if sent == MIB && !closed {
            s.close();
            closed = true;
        }
        net.peer.reports.len() == 1 && s.state() == tcp::State::TimeWait
    });
    assert!(steps < 20_000);
    let r = net.peer.take_report().unwrap();
    assert_eq!(r.service, Service::Discard);
    assert_eq!(r.bytes, MIB as u64);
    assert_eq!(r.remote, SocketAddrV4::new(CLIENT_IP, 40000));
    assert_eq!(
        alloc::format!("{r}"),
        alloc::format!(
            "discard received 1048576 bytes from 10.0.0.2:40000 in {} ms",
            r.duration_ms
        )
    );
    let st = net.peer.stats();
    assert_eq!(st.discard_bytes, MIB as u64);
    assert_eq!(st.discard_connections, 1);
    assert_eq!(net.peer.open_connections(), (0, 0));
    // The socket listens again: a second connection works too.
    net.run_until(100, |net| {
        net.client.sock(h).state() == tcp::State::TimeWait
    });
    let h2 = net.client.tcp();
    net.client.connect(h2, DISCARD_PORT, 40001);
    let mut sent2 = 0;
    net.run_until(5_000, |net| {
        let s = net.client.sock(h2);
        if s.can_send() && sent2 < 1000 {
            sent2 += s.send_slice(&[1u8; 1000]).unwrap();
            s.close();
        }
        net.peer.reports.len() == 1
    });
    assert_eq!(net.peer.take_report().unwrap().bytes, 1000);
}

#[test]
fn source_streams_a_mebibyte() {
    let mut net = Net::new(PeerConfig::default());
    let h = net.client.tcp();
    net.client.connect(h, SOURCE_PORT, 40002);
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut expect = vec![0u8; 64 * 1024];
    net.run_until(20_000, |net| {
        let s = net.client.sock(h);
        while got < MIB && s.can_recv() {
            let want = (MIB - got).min(buf.len());
            let n = s.recv_slice(&mut buf[..want]).unwrap();
            fill_source_pattern(got as u64, &mut expect[..n]);
            assert_eq!(buf[..n], expect[..n], "stream differs at {got}");
            got += n;
        }
        got == MIB
    });
    // Let the client's last acknowledgements reach the peer.
    net.run_until(100, |net| net.peer.stats().source_bytes >= MIB as u64);
    assert_eq!(net.peer.open_connections(), (0, 1));
    // Like nc killed by SIGPIPE: the client resets the connection.
    net.client.sock(h).abort();
    net.run_until(100, |net| net.peer.reports.len() == 1);
    let r = net.peer.take_report().unwrap();
    assert_eq!(r.service, Service::Source);
    assert_eq!(r.remote, SocketAddrV4::new(CLIENT_IP, 40002));
    // Acknowledged: what the client read plus at most its receive window.
    assert!(r.bytes >= MIB as u64, "{r}");
    assert!(r.bytes <= (MIB + 64 * 1024) as u64, "{r}");
    assert!(alloc::format!("{r}").starts_with("source sent "));
    assert_eq!(net.peer.stats().source_connections, 1);
    net.run_until(100, |net| net.peer.open_connections() == (0, 0));
}

#[test]
fn serves_concurrent_connections_and_refuses_extra_ones() {
    let mut net = Net::new(PeerConfig {
        connections_per_service: 2,
        ..PeerConfig::default()
    });
    let d1 = net.client.tcp();
    let d2 = net.client.tcp();
    let d3 = net.client.tcp();
    let s1 = net.client.tcp();
    net.client.connect(d1, DISCARD_PORT, 41001);
    net.client.connect(d2, DISCARD_PORT, 41002);
    net.client.connect(s1, SOURCE_PORT, 41004);
    net.run_until(1000, |net| {
        [d1, d2, s1]
            .iter()
            .all(|&h| net.client.sock(h).state() == tcp::State::Established)
    });
    assert_eq!(net.peer.open_connections(), (2, 1));
    // Both discard sockets are taken: a third client is reset.
    net.client.connect(d3, DISCARD_PORT, 41003);
    net.run_until(1000, |net| {
        net.client.sock(d3).state() == tcp::State::Closed
    });

    let amounts = [(d1, 300_000usize), (d2, 200_000usize)];
    let mut sent = [0usize; 2];
    let mut closed = [false; 2];
    let mut received = 0usize;
    net.run_until(20_000, |net| {
        for (i, &(h, total)) in amounts.iter().enumerate() {
            let s = net.client.sock(h);
            if sent[i] < total && s.can_send() {
                sent[i] += s
                    .send(|b| {
                        let n = b.len().min(total - sent[i]);
                        (n, n)
                    })
                    .unwrap();
            }
            if sent[i] == total && !closed[i] {
                s.close();
                closed[i] = true;
            }
        }
        let s = net.client.sock(s1);
        while s.can_recv() {
            received += s.recv(|b| (b.len(), b.len())).unwrap();
        }
        net.peer.reports.len() == 2 && received >= 200_000
    });
    let mut reports: Vec<_> = net.peer.take_reports().collect();
    reports.sort_by_key(|r| r.remote.port());
    assert_eq!(reports[0].remote.port(), 41001);
    assert_eq!(reports[0].bytes, 300_000);
    assert_eq!(reports[1].remote.port(), 41002);
    assert_eq!(reports[1].bytes, 200_000);
    assert_eq!(net.peer.stats().discard_bytes, 500_000);
    assert_eq!(net.peer.open_connections(), (0, 1));
}

#[test]
fn discard_takes_gso_sized_frames() {
    let mut net = Net::new(PeerConfig::default());
    net.client = Client::new(net.now, crate::switch::MAX_FRAME_LEN);
    net.raise_mss_to = Some(60_000);
    let h = net.client.tcp();
    net.client.connect(h, DISCARD_PORT, 40010);
    let mut sent = 0usize;
    let mut closed = false;
    net.run_until(5_000, |net| {
        let s = net.client.sock(h);
        while s.can_send() && sent < MIB {
            sent += s
                .send(|buf| {
                    let n = buf.len().min(MIB - sent);
                    (n, n)
                })
                .unwrap();
        }
        if sent == MIB && !closed {
            s.close();
            closed = true;
        }
        net.peer.reports.len() == 1
    });
    assert_eq!(net.peer.take_report().unwrap().bytes, MIB as u64);
    // The frames to the peer were far above the peer's 1500-byte MTU.
    let st = net.switch.port_stats(net.peer_port).unwrap();
    assert!(st.tx_bytes / st.tx_frames > 10_000, "{st:?}");
    // The peer's own frames stayed within its MTU.
    let st = net.switch.port_stats(net.client_port).unwrap();
    assert!(st.tx_bytes / st.tx_frames < 1514, "{st:?}");
}

/// An ICMP echo request frame from the client, with a good or a bad IPv4
/// header checksum.
fn raw_ping(good_checksum: bool) -> Vec<u8> {
    let icmp = echo_request(7, b"raw");
    let ip = Ipv4Repr {
        src_addr: CLIENT_IP,
        dst_addr: DEFAULT_PEER_IPV4,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(CLIENT_MAC),
        dst_addr: EthernetAddress(DEFAULT_PEER_MAC),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut frame = vec![0u8; eth.buffer_len() + ip.buffer_len() + icmp.len()];
    let mut ef = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut ef);
    let mut ipp = Ipv4Packet::new_unchecked(ef.payload_mut());
    ip.emit(&mut ipp, &ChecksumCapabilities::default());
    ipp.payload_mut().copy_from_slice(&icmp);
    if !good_checksum {
        let c = ipp.checksum();
        ipp.set_checksum(c ^ 0x5555);
    }
    frame
}

fn replies_to(verify: bool, good_checksum: bool) -> bool {
    let mut peer = peer_at_0(PeerConfig {
        verify_rx_checksums: verify,
        ..PeerConfig::default()
    });
    assert!(peer.push_frame(raw_ping(good_checksum)));
    let mut replied = false;
    for now in 0..3 {
        peer.poll(now);
        while let Some(f) = peer.take_frame() {
            let ef = EthernetFrame::new_checked(&f[..]).unwrap();
            match ef.ethertype() {
                // The peer asks for the client's MAC before it answers.
                EthernetProtocol::Arp => {
                    let arp = ArpPacket::new_checked(ef.payload()).unwrap();
                    let ArpRepr::EthernetIpv4 {
                        operation,
                        source_hardware_addr,
                        source_protocol_addr,
                        target_protocol_addr,
                        ..
                    } = ArpRepr::parse(&arp).unwrap()
                    else {
                        panic!("not an Ethernet/IPv4 ARP packet");
                    };
                    assert_eq!(operation, ArpOperation::Request);
                    assert_eq!(target_protocol_addr, CLIENT_IP);
                    let reply = ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        source_hardware_addr: EthernetAddress(CLIENT_MAC),
                        source_protocol_addr: CLIENT_IP,
                        target_hardware_addr: source_hardware_addr,
                        target_protocol_addr: source_protocol_addr,
                    };
                    let eth = EthernetRepr {
                        src_addr: EthernetAddress(CLIENT_MAC),
                        dst_addr: source_hardware_addr,
                        ethertype: EthernetProtocol::Arp,
                    };
                    let mut frame = vec![0u8; eth.buffer_len() + reply.buffer_len()];
                    let mut ef = EthernetFrame::new_unchecked(&mut frame[..]);
                    eth.emit(&mut ef);
                    reply.emit(&mut ArpPacket::new_unchecked(ef.payload_mut()));
                    assert!(peer.push_frame(frame));
                    // The first request was dropped while the peer asked.
                    assert!(peer.push_frame(raw_ping(good_checksum)));
                }
                EthernetProtocol::Ipv4 => {
                    let ipp = Ipv4Packet::new_checked(ef.payload()).unwrap();
                    assert!(ipp.verify_checksum(), "peer sent a bad IPv4 checksum");
                    let icmp = Icmpv4Packet::new_checked(ipp.payload()).unwrap();
                    assert!(icmp.verify_checksum(), "peer sent a bad ICMP checksum");
                    replied = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    replied
}

#[test]
fn checksums_are_verified_unless_told_not_to() {
    assert!(replies_to(true, true));
    assert!(!replies_to(true, false));
    assert!(replies_to(false, false));
}

#[test]
fn source_pattern_is_chargen() {
    let mut buf = vec![0u8; 2 * PATTERN_LEN + 10];
    fill_source_pattern(0, &mut buf);
    let mut line0: Vec<u8> = (0..72).map(|c| b' ' + c).collect();
    line0.extend_from_slice(b"\r\n");
    assert_eq!(buf[..74], line0[..]);
    assert_eq!(buf[74 + 71], b'!' + 71);
    assert_eq!(&buf[74..76], b"!\"");
    assert_eq!(&buf[94 * 74..94 * 74 + 3], b"~ !");
    assert_eq!(buf[..PATTERN_LEN], buf[PATTERN_LEN..2 * PATTERN_LEN]);
    // Any offset continues the same stream.
    let mut part = vec![0u8; 1000];
    fill_source_pattern(PATTERN_LEN as u64 - 3, &mut part);
    assert_eq!(part[..], buf[PATTERN_LEN - 3..PATTERN_LEN + 997]);
}

#[test]
fn bad_configs_are_refused() {
    let ok = PeerConfig::default();
    let bad = [
        (
            PeerConfig {
                mac: BROADCAST,
                ..ok
            },
            PeerConfigError::BadMac,
        ),
        (PeerConfig { mac: [0; 6], ..ok }, PeerConfigError::BadMac),
        (
            PeerConfig {
                ipv4: Ipv4Addr::UNSPECIFIED,
                ..ok
            },
            PeerConfigError::BadAddress,
        ),
        (
            PeerConfig {
                prefix_len: 33,
                ..ok
            },
            PeerConfigError::BadPrefix,
        ),
        (PeerConfig { mtu: 100, ..ok }, PeerConfigError::BadMtu),
        (
            PeerConfig {
                source_port: DISCARD_PORT,
                ..ok
            },
            PeerConfigError::BadPorts,
        ),
    ];
    for (cfg, err) in bad {
        assert_eq!(Peer::new(cfg, 0).unwrap_err(), err);
    }
}

const BROADCAST: MacAddr = crate::switch::BROADCAST_MAC;

/// A peer at time 0.
fn peer_at_0(config: PeerConfig) -> Peer {
    Peer::new(config, 0).unwrap()
}

#[test]
fn full_receive_queue_drops() {
    let mut peer = peer_at_0(PeerConfig {
        rx_queue_frames: 2,
        ..PeerConfig::default()
    });
    assert!(peer.push_frame(raw_ping(true)));
    assert!(peer.push_frame(raw_ping(true)));
    assert!(!peer.can_take_frame());
    assert!(!peer.push_frame(raw_ping(true)));
    assert!(!peer.push_frame(vec![0; 10]));
    assert_eq!(peer.stats().frames_in, 2);
    assert_eq!(peer.stats().frames_in_dropped, 2);
    assert_eq!(peer.poll_at(5), Some(5));
    assert!(peer.poll(5));
    // One ARP request for the client, the pings wait for its answer.
    assert_eq!(peer.pending_frames(), 1);
}

/// An ARP request from the client for the peer's address.
fn arp_request() -> Vec<u8> {
    let req = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(CLIENT_MAC),
        source_protocol_addr: CLIENT_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: DEFAULT_PEER_IPV4,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(CLIENT_MAC),
        dst_addr: EthernetAddress(crate::BROADCAST_MAC),
        ethertype: EthernetProtocol::Arp,
    };
    let mut frame = vec![0u8; eth.buffer_len() + req.buffer_len()];
    let mut ef = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut ef);
    req.emit(&mut ArpPacket::new_unchecked(ef.payload_mut()));
    frame
}

fn is_arp_reply(f: &[u8]) -> bool {
    let ef = EthernetFrame::new_checked(f).unwrap();
    ef.ethertype() == EthernetProtocol::Arp
        && matches!(
            ArpRepr::parse(&ArpPacket::new_checked(ef.payload()).unwrap()),
            Ok(ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                ..
            })
        )
}

#[test]
fn exchange_with_prepares_packets_and_tags_the_peers_frames() {
    let mut switch = Switch::default();
    let peer_port = switch.add_port(PortConfig::large());
    let client_port = switch.add_port(PortConfig::large());
    let mut peer = peer_at_0(PeerConfig::default());
    let pool = Pool::new(PoolConfig {
        small: 4,
        small_len: 2048,
        large: 0,
        large_len: 0,
    });
    let req = pool.take_copy(&arp_request()).unwrap();
    switch.input_packet(client_port, Packet::new(req, 7), 0);
    assert_eq!(pool.stats().small_free, 3);
    // `prepare` sees the packet with its tag and makes two frames of it.
    let mut tags = Vec::new();
    peer.exchange_with(&mut switch, peer_port, 0, 42, |p| {
        tags.push(p.tag);
        let copy = p.data.try_clone().unwrap();
        [p.data, copy]
    });
    assert_eq!(tags, vec![7]);
    assert_eq!(peer.stats().frames_in, 2);
    assert_eq!(pool.stats().small_free, 4, "read and given back");
    // Two replies, from the peer's pool, with its tag.
    let mut replies = 0;
    while let Some(p) = switch.take_packet(client_port) {
        assert!(is_arp_reply(&p.data));
        assert_eq!(p.tag, 42);
        assert!(p.data.is_pooled());
        replies += 1;
    }
    assert_eq!(replies, 2);
    let ps = peer.pool().unwrap().stats();
    assert_eq!(ps.small_free, PeerConfig::default().pool_frames);
}

#[test]
fn the_peer_waits_for_its_pool() {
    let mut peer = peer_at_0(PeerConfig {
        pool_frames: 1,
        ..PeerConfig::default()
    });
    assert!(peer.push_frame(arp_request()));
    peer.poll(0);
    let first = peer.take_buf().unwrap();
    assert!(is_arp_reply(&first));
    // Its one buffer is out: the next request waits, unread.
    assert!(peer.push_frame(arp_request()));
    peer.poll(1);
    assert_eq!(peer.pending_frames(), 0);
    assert_eq!(peer.poll_at(1), Some(1), "a frame waits to be read");
    // The buffer comes back: the peer answers.
    drop(first);
    peer.poll(2);
    assert!(is_arp_reply(&peer.take_frame().unwrap()));
    assert_eq!(peer.pool().unwrap().stats().small_free, 1);
}
