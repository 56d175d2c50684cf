//! Offloads end to end, as Xen's data path has them: GSO super-frames and
//! partial checksums from one vif through the switch to another vif (whole,
//! or segmented for a frontend that cannot take them) or to the peer
//! (segmented and completed); the pool's backpressure on TX; hostile GSO
//! requests.

mod common;

use common::*;
use guest_abi::netif as nf;
use netback::{
    csum, Buf, Checksum, Frame, Gso, GsoKind, Packet, PoolConfig, VifConfig, LARGE_BUF_LEN,
    MIN_GSO_SIZE, SMALL_BUF_LEN,
};
use netswitch::{Peer, PeerConfig, PortConfig, PortId, Switch, DEFAULT_PEER_MAC};

const CSUM: u16 = nf::NETTXF_CSUM_BLANK | nf::NETTXF_DATA_VALIDATED;
const V4: Gso = Gso {
    kind: GsoKind::TcpV4,
    mss: 1448,
};
const V6: Gso = Gso {
    kind: GsoKind::TcpV6,
    mss: 1428,
};
const BLANK: u16 = nf::NETRXF_CSUM_BLANK | nf::NETRXF_DATA_VALIDATED;

/// A frontend without `feature-gso-tcpv4/-tcpv6`.
fn no_gso() -> FrontOpts {
    FrontOpts {
        gso: false,
        ..Default::default()
    }
}

/// Two vifs of the test domain on a switch: vif 0 connected as netfront
/// does, vif 1 with `rx` (and 64 RX buffers posted).
struct Net {
    w: World,
    sw: Switch,
    ports: [PortId; 2],
}

impl Net {
    fn new(rx: FrontOpts, config: VifConfig) -> Net {
        let mut w = World::new(2, 2, config);
        w.connect(0, &FrontOpts::default());
        w.connect(1, &rx);
        assert!(w.errors.is_empty(), "{:?}", w.errors);
        w.post_rx(1, 0, 64);
        w.push_rx(1, 0);
        let mut sw = Switch::default();
        let ports = [
            sw.add_port(PortConfig::large()),
            sw.add_port(PortConfig::large()),
        ];
        Net { w, sw, ports }
    }

    /// Vif 0's guest sends `pkt`.
    fn send(&mut self, pkt: &[u8], flags: u16, gso: Option<Gso>) {
        self.w.queue_tx(0, 0, pkt, flags, gso, 4096, 0);
        self.w.push_tx(0, 0);
        assert!(self.w.errors.is_empty(), "{:?}", self.w.errors);
    }

    /// What vif 0 sent goes through the switch, and what reaches vif 1's
    /// port is delivered to its guest, which reassembles what it got.
    fn carry(&mut self) -> Vec<Received> {
        for f in self.w.frames[0].drain(..) {
            self.sw.input_packet(self.ports[0], f.into_packet(), 0);
        }
        let (sw, port) = (&mut self.sw, self.ports[1]);
        let batch = std::iter::from_fn(|| sw.take_packet(port)).map(Frame::from_packet);
        let r = self.w.vifs[1].deliver_rx_batch(&mut self.w.dom, &mut self.w.host, batch);
        self.w.after(1, r);
        self.w.rx_frames(1, 0)
    }

    /// Vif 0's pool has every buffer back.
    fn all_back(&self) -> bool {
        let s = self.w.vifs[0].pool().stats();
        let c = VifConfig::DEFAULT_POOL;
        (s.small_free, s.large_free) == (c.small, c.large)
    }
}

#[test]
fn gso_frames_cross_the_switch_whole() {
    let mut n = Net::new(FrontOpts::default(), VifConfig::new(2));
    let pkt = partial(tcp4(80, &payload(60_000)));
    n.send(&pkt, CSUM, Some(V4));
    let f = &n.w.frames[0][0];
    assert!(f.data.is_pooled() && f.gso == Some(V4) && f.csum == Checksum::Partial);
    let got = n.carry();
    assert_eq!(got.len(), 1);
    // Whole, with its GSO extra and csum_blank, every byte as the guest sent it.
    assert_eq!(got[0].data, pkt);
    assert_eq!(got[0].gso, Some((nf::XEN_NETIF_GSO_TYPE_TCPV4, 1448)));
    assert_eq!(got[0].flags, BLANK);
    assert_eq!(got[0].slots as usize, pkt.len().div_ceil(4096));
    // What the receiving stack does with CHECKSUM_PARTIAL gives a valid frame.
    assert!(csum::verify(&checksummed(got[0].data.clone())));
    let s = *n.w.vifs[1].stats();
    assert_eq!((s.rx_packets, s.rx_segmented, s.rx_dropped), (1, 0, 0));
    assert!(n.all_back(), "the buffer went back to the sender's pool");

    // TCP over IPv6 too.
    let six = partial(tcp6(81, &payload(30_000)));
    n.send(&six, CSUM, Some(V6));
    let got = n.carry();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, six);
    assert_eq!(got[0].gso, Some((nf::XEN_NETIF_GSO_TYPE_TCPV6, 1428)));
    assert_eq!(got[0].flags, BLANK);

    // A GSO frame that arrives without a partial checksum gets one.
    let full = checksummed(tcp4(82, &payload(5000)));
    n.send(&full, nf::NETTXF_DATA_VALIDATED, Some(V4));
    let got = n.carry();
    assert_eq!(got[0].data, partial(full.clone()));
    assert_eq!(got[0].flags, BLANK);
    assert!(n.all_back());
}

#[test]
fn gso_frames_are_segmented_for_a_frontend_without_gso() {
    for rx in [
        no_gso(),
        FrontOpts {
            sg: false,
            ..no_gso()
        },
        // GSO needs partial checksums.
        FrontOpts {
            csum: false,
            ..Default::default()
        },
    ] {
        let mut n = Net::new(rx.clone(), VifConfig::new(2));
        let pkt = partial(tcp4(80, &payload(20_000)));
        n.send(&pkt, CSUM, Some(V4));
        let got = n.carry();
        assert_eq!(got.len(), 20_000usize.div_ceil(1448), "{rx:?}");
        let mut joined = Vec::new();
        for (i, r) in got.iter().enumerate() {
            assert_eq!(
                (r.flags, r.gso, r.slots),
                (nf::NETRXF_DATA_VALIDATED, None, 1)
            );
            assert!(csum::verify(&r.data), "segment {i}");
            assert!(r.data.len() <= 1514);
            let seq = u32::from_be_bytes(r.data[38..42].try_into().unwrap());
            assert_eq!(seq, 1 + 1448 * i as u32);
            joined.extend_from_slice(&r.data[54..]);
        }
        assert_eq!(joined, payload(20_000));
        assert_eq!(n.w.vifs[1].stats().rx_segmented, 1);
        assert!(n.all_back());
        // TCP over IPv6 too.
        let six = partial(tcp6(81, &payload(10_000)));
        n.send(&six, CSUM, Some(V6));
        let got = n.carry();
        assert_eq!(got.len(), 10_000usize.div_ceil(1428));
        assert!(got
            .iter()
            .all(|r| csum::verify(&r.data) && r.data.len() <= 1514));
        let joined: Vec<u8> = got.iter().flat_map(|r| r.data[74..].to_vec()).collect();
        assert_eq!(joined, payload(10_000));
    }
}

#[test]
fn segments_are_cut_as_buffers_are_posted() {
    let mut n = Net::new(no_gso(), VifConfig::new(2));
    // 64 buffers are posted: the first 64 of 100 segments go now.
    let pkt = partial(tcp4(80, &payload(100 * 500)));
    n.send(
        &pkt,
        CSUM,
        Some(Gso {
            kind: GsoKind::TcpV4,
            mss: 500,
        }),
    );
    let mut got = n.carry();
    assert_eq!(got.len(), 64);
    assert_eq!(n.w.vifs[1].rx_waiting(), 1, "the GSO frame waits, whole");
    assert!(!n.all_back(), "held until its last segment is written");
    // The backend asked to be told when the next segment's slot is posted.
    let cons = n.w.fronts[1][0].rx_prod;
    assert_eq!(n.w.rx_req_event(1, 0), cons + 1);
    n.w.post_rx(1, 0, 64);
    assert!(n.w.push_rx(1, 0));
    got.extend(n.w.rx_frames(1, 0));
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|r| csum::verify(&r.data)));
    let joined: Vec<u8> = got.iter().flat_map(|r| r.data[54..].to_vec()).collect();
    assert_eq!(joined, payload(100 * 500));
    assert_eq!(n.w.vifs[1].rx_waiting(), 0);
    assert!(n.all_back());
}

#[test]
fn checksum_states_map_to_rx_flags() {
    let mut n = Net::new(FrontOpts::default(), VifConfig::new(2));
    let part4 = partial(tcp4(1, b"partial v4"));
    let part6 = partial(tcp6(2, b"partial v6"));
    let udp = partial(udp4(b"partial udp"));
    let valid = checksummed(tcp4(3, b"validated"));
    let mut none = tcp4(4, b"nothing known");
    none[50] = 0x5A; // wrong, and nobody checks it but the guest
    n.send(&part4, CSUM, None);
    n.send(&part6, CSUM, None);
    n.send(&udp, CSUM, None);
    n.send(&valid, nf::NETTXF_DATA_VALIDATED, None);
    n.send(&none, 0, None);
    n.send(&arp(), 0, None);
    let got: Vec<(Vec<u8>, u16)> = n.carry().into_iter().map(|r| (r.data, r.flags)).collect();
    assert_eq!(
        got,
        vec![
            (part4.clone(), BLANK),
            (part6.clone(), BLANK),
            (udp.clone(), BLANK),
            (valid.clone(), nf::NETRXF_DATA_VALIDATED),
            (none.clone(), 0),
            (arp(), 0),
        ]
    );
    let s = *n.w.vifs[1].stats();
    assert_eq!((s.rx_csum_blank, s.rx_csum_completed), (3, 0));

    // A frontend that cannot take partial checksums (feature-no-csum-offload,
    // no feature-ipv6-csum-offload) gets them completed.
    let o = FrontOpts {
        csum: false,
        ..Default::default()
    };
    let mut n = Net::new(o, VifConfig::new(2));
    n.send(&part4, CSUM, None);
    n.send(&part6, CSUM, None);
    n.send(&none, 0, None);
    let got: Vec<(Vec<u8>, u16)> = n.carry().into_iter().map(|r| (r.data, r.flags)).collect();
    assert_eq!(
        got,
        vec![
            (checksummed(part4), nf::NETRXF_DATA_VALIDATED),
            (checksummed(part6), nf::NETRXF_DATA_VALIDATED),
            (none, 0),
        ]
    );
    assert_eq!(n.w.vifs[1].stats().rx_csum_completed, 2);
}

/// A TCP SYN from 10.0.0.2:40000 to the peer's discard port.
fn syn_to_peer() -> Vec<u8> {
    let mut f = tcp4(40000, b"");
    f[0..6].copy_from_slice(&DEFAULT_PEER_MAC);
    f[26..30].copy_from_slice(&[10, 0, 0, 2]);
    f[30..34].copy_from_slice(&[10, 0, 0, 1]);
    f[24..26].fill(0);
    let c = !ip_sum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[47] = 0x02; // SYN
    f[48..50].copy_from_slice(&8192u16.to_be_bytes()); // window
    f
}

fn ip_sum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// The peer and vif 0 of a one-vif world on a switch.
struct PeerNet {
    w: World,
    sw: Switch,
    peer: Peer,
    peer_port: PortId,
    vif_port: PortId,
}

impl PeerNet {
    fn new() -> PeerNet {
        let mut w = World::new(1, 1, VifConfig::new(1));
        w.connect(0, &FrontOpts::default());
        let mut sw = Switch::default();
        let peer_port = sw.add_port(PortConfig::large());
        let vif_port = sw.add_port(PortConfig::large());
        PeerNet {
            w,
            sw,
            peer: Peer::new(PeerConfig::default(), 0).unwrap(),
            peer_port,
            vif_port,
        }
    }

    /// Vif 0's frames into the switch; the peer reads them as the kernel
    /// has it (plain) or as they are.
    fn exchange(&mut self, plain: bool) {
        for f in self.w.frames[0].drain(..) {
            self.sw.input_packet(self.vif_port, f.into_packet(), 0);
        }
        let tag = Frame::tag_of(None, Checksum::Validated);
        if plain {
            self.peer
                .exchange_with(&mut self.sw, self.peer_port, 0, tag, |p| {
                    Frame::from_packet(p).into_plain().map(|f| f.data)
                });
        } else {
            self.peer.exchange(&mut self.sw, self.peer_port, 0);
        }
    }
}

#[test]
fn partial_checksums_are_completed_for_the_peer() {
    let syn = partial(syn_to_peer());
    // As it is, the peer (smoltcp checks checksums) drops it.
    let mut n = PeerNet::new();
    n.w.queue_tx(0, 0, &syn, CSUM, None, 4096, 0);
    n.w.push_tx(0, 0);
    n.exchange(false);
    assert_eq!(n.peer.stats().frames_in, 1);
    assert_eq!(n.sw.queued_frames(n.vif_port), 0, "no answer");
    // Completed on the way, it is answered (an ARP request for the guest, or
    // the SYN-ACK), with the peer's validated tag.
    let mut n = PeerNet::new();
    n.w.queue_tx(0, 0, &syn, CSUM, None, 4096, 0);
    n.w.push_tx(0, 0);
    n.exchange(true);
    assert_eq!(n.peer.stats().frames_in, 1);
    let reply = n.sw.take_packet(n.vif_port).expect("the peer answers");
    let f = Frame::from_packet(reply);
    assert_eq!((f.csum, f.gso), (Checksum::Validated, None));
    assert!(f.data.is_pooled(), "from the peer's own pool");
    let s = n.w.vifs[0].pool().stats();
    assert_eq!(s.small_free, VifConfig::DEFAULT_POOL.small, "buffer back");
}

#[test]
fn gso_frames_reach_the_peer_segmented() {
    let mut n = PeerNet::new();
    let mut pkt = partial(tcp4(40001, &payload(10_000)));
    pkt[0..6].copy_from_slice(&DEFAULT_PEER_MAC);
    n.w.queue_tx(0, 0, &pkt, CSUM, Some(V4), 4096, 0);
    n.w.push_tx(0, 0);
    assert_eq!(n.w.frames[0].len(), 1);
    // The frames the peer is given are the segments, each with valid checksums.
    let segs: Vec<Frame> = n.w.frames[0][0].clone().into_plain().collect();
    assert_eq!(segs.len(), 10_000usize.div_ceil(1448));
    assert!(segs
        .iter()
        .all(|s| csum::verify(&s.data) && s.csum == Checksum::Validated));
    n.exchange(true);
    assert_eq!(n.peer.stats().frames_in, segs.len() as u64);
    let s = n.w.vifs[0].pool().stats();
    let c = VifConfig::DEFAULT_POOL;
    assert_eq!((s.small_free, s.large_free), (c.small, c.large));
}

#[test]
fn segments_come_from_the_senders_pool() {
    let pool = netback::Pool::new(PoolConfig {
        small: 2,
        small_len: SMALL_BUF_LEN,
        large: 1,
        large_len: LARGE_BUF_LEN,
    });
    let pkt = partial(tcp4(1, &payload(5 * 1448)));
    let frame = || Frame {
        gso: Some(V4),
        csum: Checksum::Partial,
        ..Frame::from_buf(pool.take_copy(&pkt).unwrap())
    };
    // Pulled one at a time and dropped, two small buffers are enough.
    let mut segs = frame().segment();
    let mut n = 0;
    for s in segs.by_ref() {
        assert!(s.data.is_pooled() && csum::verify(&s.data));
        n += 1;
    }
    assert_eq!((n, segs.short()), (5, false));
    drop(segs);
    // Kept, they exhaust the pool: the rest is lost, and said so.
    let mut segs = frame().segment();
    let kept: Vec<Frame> = segs.by_ref().collect();
    assert_eq!((kept.len(), segs.short()), (2, true));
    assert_eq!(pool.stats().misses, 1);
    drop((kept, segs));
    let s = pool.stats();
    assert_eq!((s.small_free, s.large_free), (2, 1));
    // A frame of no pool is segmented on the heap.
    let heap: Vec<Frame> = gso_frame(pkt.clone(), V4, Checksum::Partial)
        .segment()
        .collect();
    assert!(heap.len() == 5 && heap.iter().all(|s| !s.data.is_pooled()));
}

#[test]
fn tags_carry_the_offload_state() {
    let buf = || Buf::from_vec(arp());
    for gso in [None, Some(V4), Some(V6)] {
        for csum in [Checksum::None, Checksum::Partial, Checksum::Validated] {
            let f = Frame {
                gso,
                csum,
                ..Frame::from_buf(buf())
            };
            assert_eq!(Frame::from_packet(f.clone().into_packet()), f);
        }
    }
    assert_eq!(Frame::new(arp()).tag(), 0);
    // Bits that mean nothing are nothing.
    let f = Frame::from_packet(Packet::new(buf(), 0xFFFF_FFFF));
    assert_eq!((f.gso, f.csum), (None, Checksum::None));
}

/// A world with vif 0 on a small pool (3 small buffers, 1 large).
fn small_pool() -> World {
    let mut cfg = VifConfig::new(1);
    cfg.pool = PoolConfig {
        small: 3,
        small_len: SMALL_BUF_LEN,
        large: 1,
        large_len: LARGE_BUF_LEN,
    };
    let mut w = World::new(1, 1, cfg);
    w.connect(0, &FrontOpts::default());
    assert!(w.errors.is_empty());
    w
}

#[test]
fn an_empty_pool_stops_tx_until_buffers_come_back() {
    let mut w = small_pool();
    let pkts: Vec<Vec<u8>> = (0..6).map(|k| partial(tcp4(k, &payload(100)))).collect();
    let mut ids = Vec::new();
    for p in &pkts[..5] {
        ids.extend(w.queue_tx(0, 0, p, CSUM, None, 4096, 0));
    }
    assert!(w.push_tx(0, 0));
    // Three buffers: three packets taken and answered, two left in the ring.
    assert_eq!(w.frames[0].len(), 3);
    let rsps = w.tx_responses(0, 0);
    assert_eq!(
        rsps,
        ids[..3]
            .iter()
            .map(|&i| (i, nf::NETIF_RSP_OKAY))
            .collect::<Vec<_>>()
    );
    assert!(w.vifs[0].tx_blocked() && !w.vifs[0].needs_service());
    assert_eq!(w.vifs[0].stats().tx_pool_waits, 1);
    assert!(w.errors.is_empty() && w.vifs[0].is_connected());
    // req_event is not re-armed: the guest queues on without kicking.
    ids.extend(w.queue_tx(0, 0, &pkts[5], CSUM, None, 4096, 0));
    assert!(
        !w.push_tx(0, 0),
        "no kick while the backend waits for buffers"
    );
    // One frame is delivered (dropped here): its buffer is back, TX goes on.
    w.frames[0].remove(0);
    assert!(w.vifs[0].tx_resumable() && w.vifs[0].needs_service());
    w.service_needed();
    assert_eq!(w.frames[0].len(), 3);
    assert_eq!(w.tx_responses(0, 0), vec![(ids[3], nf::NETIF_RSP_OKAY)]);
    // All of them back: the rest, in order, nothing lost.
    w.frames[0].clear();
    w.service_needed();
    let got: Vec<Vec<u8>> = w.frames[0].iter().map(|f| f.data.to_vec()).collect();
    assert_eq!(got, pkts[4..].to_vec());
    assert_eq!(
        w.tx_responses(0, 0),
        vec![(ids[4], nf::NETIF_RSP_OKAY), (ids[5], nf::NETIF_RSP_OKAY)]
    );
    // Drained: re-armed, nothing more to do.
    assert!(!w.vifs[0].tx_blocked() && !w.vifs[0].needs_service());
    assert_eq!(w.tx_req_event(0, 0), w.fronts[0][0].tx_prod + 1);
    assert_eq!(w.vifs[0].stats().tx_packets, 6);
}

#[test]
fn large_packets_wait_for_large_buffers() {
    let mut w = small_pool();
    let big = partial(tcp4(1, &payload(10_000)));
    let small = partial(tcp4(2, b"small"));
    w.queue_tx(0, 0, &big, CSUM, Some(V4), 4096, 0);
    w.queue_tx(0, 0, &big, CSUM, Some(V4), 4096, 0);
    w.queue_tx(0, 0, &small, CSUM, None, 4096, 0);
    w.push_tx(0, 0);
    // One large buffer: the second super-frame waits, and what is behind it.
    assert_eq!(w.frames[0].len(), 1);
    assert!(w.vifs[0].tx_blocked());
    assert!(!w.vifs[0].needs_service(), "small buffers do not help");
    w.frames[0].clear();
    w.service_needed();
    assert_eq!(w.frames[0].len(), 2);
    assert_eq!(w.frames[0][1].data, small);
    // A packet no buffer of the pool can ever hold is refused, not waited for.
    let mut cfg = VifConfig::new(1);
    cfg.pool.large = 0;
    let mut w = World::new(1, 1, cfg);
    w.connect(0, &FrontOpts::default());
    let id = w.queue_tx(0, 0, &big, CSUM, Some(V4), 4096, 0)[0];
    w.queue_tx(0, 0, &small, CSUM, None, 4096, 0);
    w.push_tx(0, 0);
    let rsps = w.tx_responses(0, 0);
    assert_eq!(rsps[0], (id, nf::NETIF_RSP_ERROR));
    assert_eq!(w.frames[0].len(), 1);
    assert!(!w.vifs[0].tx_blocked() && w.vifs[0].is_connected());
    assert_eq!(w.vifs[0].stats().tx_dropped, 1);
}

#[test]
fn hostile_gso_requests_cost_the_sender_only() {
    let mut n = Net::new(no_gso(), VifConfig::new(2));
    let mss = |mss| {
        Some(Gso {
            kind: GsoKind::TcpV4,
            mss,
        })
    };
    let err = |n: &mut Net, pkt: &[u8], flags, gso| {
        let id = n.w.queue_tx(0, 0, pkt, flags, gso, 4096, 0)[0];
        n.w.push_tx(0, 0);
        let rsps = n.w.tx_responses(0, 0);
        assert_eq!(rsps[0], (id, nf::NETIF_RSP_ERROR), "{gso:?}");
        assert!(n.w.vifs[0].is_connected());
    };
    let dropped = n.w.vifs[0].stats().tx_dropped;
    // The smallest segment size on 20000 bytes: more segments than allowed.
    err(
        &mut n,
        &partial(tcp4(1, &payload(20_000))),
        CSUM,
        mss(MIN_GSO_SIZE),
    );
    // GSO of the other IP version, of UDP, of a TCP header that lies.
    err(&mut n, &partial(tcp4(1, &payload(3000))), CSUM, Some(V6));
    err(&mut n, &partial(udp4(&payload(3000))), CSUM, mss(1448));
    let mut doff = partial(tcp4(1, &payload(20)));
    doff[46] = 15 << 4; // 60-byte TCP header in a 40-byte segment
    err(&mut n, &doff, CSUM, mss(1448));
    // An IP length beyond the frame, with a partial checksum.
    let mut long = partial(tcp4(1, &payload(100)));
    long[16..18].copy_from_slice(&3000u16.to_be_bytes());
    err(&mut n, &long, CSUM, None);
    assert_eq!(n.w.vifs[0].stats().tx_dropped, dropped + 5);
    assert!(n.carry().is_empty() && n.all_back());

    // The smallest segment size on 800 bytes is allowed: 100 segments of 8
    // bytes, cut as the receiver's buffers come (64 posted).
    n.send(&partial(tcp4(1, &payload(800))), CSUM, mss(MIN_GSO_SIZE));
    let mut got = n.carry();
    n.w.post_rx(1, 0, 64);
    n.w.push_rx(1, 0);
    got.extend(n.w.rx_frames(1, 0));
    assert_eq!(got.len(), 100);
    assert!(got
        .iter()
        .all(|r| r.data.len() == 62 && csum::verify(&r.data)));
    assert!(n.all_back());
    // Ethernet padding after the datagram is not a segment's.
    let mut padded = partial(tcp4(1, &payload(3000)));
    padded.extend_from_slice(&[0xEE; 10]);
    n.send(&padded, CSUM, Some(V4));
    let got = n.carry();
    let joined: Vec<u8> = got.iter().flat_map(|r| r.data[54..].to_vec()).collect();
    assert_eq!(joined, payload(3000));

    // Frames met on the way with GSO metadata that does not fit are dropped.
    let before = n.w.vifs[1].stats().rx_dropped;
    let tag = Frame::tag_of(mss(1448), Checksum::Partial);
    n.w.deliver(
        1,
        Frame::from_packet(Packet::new(Buf::from_vec(arp()), tag)),
    );
    n.w.deliver(1, gso_frame(udp4(&payload(3000)), V4, Checksum::Partial));
    let tcp = tcp4(1, &payload(3000));
    for m in [0, 1] {
        n.w.deliver(1, gso_frame(tcp.clone(), mss(m).unwrap(), Checksum::None));
    }
    assert_eq!(n.w.vifs[1].stats().rx_dropped, before + 4);
    assert!(n.w.rx_frames(1, 0).is_empty() && n.w.vifs[1].is_connected());
    // Segments longer than a slot need feature-sg.
    let o = FrontOpts {
        sg: false,
        ..no_gso()
    };
    let mut n = Net::new(o, VifConfig::new(2));
    let big = tcp4(1, &payload(10_000));
    n.w.deliver(
        1,
        gso_frame(big.clone(), mss(5000).unwrap(), Checksum::None),
    );
    assert_eq!(n.w.vifs[1].stats().rx_dropped, 1);
    // Not segmentable (a segment size of 1 on 10000 bytes): whole, without
    // GSO, to the peer.
    let plain: Vec<Frame> = gso_frame(big.clone(), mss(1).unwrap(), Checksum::Partial)
        .into_plain()
        .collect();
    assert_eq!(plain.len(), 1);
    assert_eq!((plain[0].gso, plain[0].csum), (None, Checksum::Validated));
    assert_eq!(plain[0].data, checksummed(big));
}

#[test]
fn frames_a_stalled_guest_leaves_waiting_expire() {
    let mut n = Net::new(FrontOpts::default(), VifConfig::new(2));
    for k in 0..70 {
        n.send(&partial(tcp4(k, b"x")), CSUM, None);
    }
    // 64 buffers were posted: 6 frames wait, in vif 0's buffers.
    assert_eq!(n.carry().len(), 64);
    assert_eq!(n.w.vifs[1].rx_waiting(), 6);
    assert!(!n.all_back());
    let (tsc, khz) = (n.w.host.tsc, n.w.host.tsc_khz);
    let due = n.w.vifs[1].rx_expiry(&n.w.host).unwrap();
    assert_eq!(due, tsc + 10_000 * khz);
    n.w.host.tsc = due - 1;
    assert_eq!(n.w.vifs[1].expire_rx(&n.w.host), 0);
    // The guest took nothing for 10 s: they are dropped, the sender's
    // buffers come back.
    n.w.host.tsc = due;
    assert_eq!(n.w.vifs[1].expire_rx(&n.w.host), 6);
    let s = *n.w.vifs[1].stats();
    assert_eq!((s.rx_expired, s.rx_dropped), (6, 6));
    assert!(n.all_back());
    assert_eq!(n.w.vifs[1].rx_expiry(&n.w.host), None);
    // Delivery does it too.
    n.send(&arp(), 0, None);
    n.send(&arp(), 0, None);
    assert!(n.carry().is_empty());
    assert_eq!(n.w.vifs[1].rx_waiting(), 2);
    n.w.host.tsc += 10_000 * khz;
    assert!(n.carry().is_empty());
    assert_eq!(n.w.vifs[1].stats().rx_expired, 8);
    assert!(n.all_back());
}
