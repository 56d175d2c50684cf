//! The TX ring: packets out of the guest, responses, checksum states, GSO,
//! the pool's backpressure, notification discipline, and frontends that break
//! the protocol.

mod common;

use common::*;
use guest_abi::grant_table::{GTF_PERMIT_ACCESS, GTF_READONLY};
use guest_abi::netif as nf;
use hypercalls::gnttab::GrantError;

use netback::{
    csum, Checksum, ErrorKind, Gso, GsoKind, RingKind, VifConfig, XenbusState, MIN_GSO_SIZE,
    RING_SIZE, TX_PASS_SLOTS,
};

fn connected(vifs: u32, config: VifConfig) -> World {
    let mut w = World::new(2, vifs, config);
    for i in 0..vifs as usize {
        w.connect(i, &FrontOpts::default());
    }
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    w
}

const CSUM: u16 = nf::NETTXF_CSUM_BLANK | nf::NETTXF_DATA_VALIDATED;

#[test]
fn single_slot_packet_keeps_its_partial_checksum() {
    let mut w = connected(1, VifConfig::new(2));
    let q = w.fronts[0][0].clone();
    // netfront sends csum_blank packets with the pseudo-header sum in the field.
    let pkt = partial(tcp4(1234, b"GET / HTTP/1.0\r\n\r\n"));
    let ids = w.queue_tx(0, 0, &pkt, CSUM, None, 4096, 100);
    assert!(w.push_tx(0, 0), "the first request kicks (req_event = 1)");
    assert_eq!(w.frames[0].len(), 1);
    let f = &w.frames[0][0];
    assert!(f.gso.is_none());
    // Nothing computed: the frame is what the guest sent, marked partial.
    assert_eq!(f.data, pkt);
    assert_eq!(f.csum, Checksum::Partial);
    assert!(f.data.is_pooled());
    let mut done = f.clone();
    assert!(done.complete_checksum());
    assert_eq!(done.data, checksummed(pkt.clone()));
    assert_eq!(done.csum, Checksum::Validated);
    assert_eq!(w.tx_responses(0, 0), vec![(ids[0], nf::NETIF_RSP_OKAY)]);
    // RING_FINAL_CHECK_FOR_REQUESTS left req_event at req_cons + 1.
    assert_eq!(w.tx_req_event(0, 0), 2);
    // rsp_event was 1: the guest is notified; GTF_reading is not left set.
    assert!(w.take_event(q.tx_port));
    assert!(w.grants_in_use(&[q.tx_ref, q.rx_ref]).is_empty());
    let s = *w.vifs[0].stats();
    assert_eq!((s.tx_packets, s.tx_bytes), (1, pkt.len() as u64));
    assert_eq!(s.notifications, 1);

    // IPv6 and UDP stay partial too; data_validated alone is validated (even
    // a bogus checksum the guest vouched for), no flag is nothing known.
    let six = partial(tcp6(5, &payload(100)));
    let udp = partial(udp4(b"dns?"));
    let mut wrong = tcp4(9, b"x");
    wrong[50] = 0xAB;
    let plain = checksummed(tcp4(10, b"y"));
    w.queue_tx(0, 0, &six, CSUM, None, 4096, 0);
    w.queue_tx(0, 0, &udp, CSUM, None, 4096, 0);
    w.queue_tx(0, 0, &wrong, nf::NETTXF_DATA_VALIDATED, None, 4096, 0);
    w.queue_tx(0, 0, &plain, 0, None, 4096, 0);
    assert!(w.push_tx(0, 0));
    let got: Vec<_> = w.frames[0][1..]
        .iter()
        .map(|f| (f.data.to_vec(), f.csum))
        .collect();
    assert_eq!(
        got,
        vec![
            (six, Checksum::Partial),
            (udp, Checksum::Partial),
            (wrong, Checksum::Validated),
            (plain, Checksum::None)
        ]
    );
}

#[test]
fn multi_slot_gso_packet() {
    let mut w = connected(1, VifConfig::new(2));
    let q = w.fronts[0][0].clone();
    let pkt = tcp4(80, &payload(10_000));
    let gso = Gso {
        kind: GsoKind::TcpV4,
        mss: 1448,
    };
    // Three data slots (4000 + 4000 + 2054 bytes) and a GSO slot after the first.
    let ids = w.queue_tx(0, 0, &pkt, CSUM, Some(gso), 4000, 0);
    assert_eq!(ids.len(), 3);
    assert!(w.push_tx(0, 0));
    assert_eq!(w.frames[0].len(), 1);
    let f = &w.frames[0][0];
    assert_eq!(f.gso, Some(gso));
    assert_eq!((&f.data, f.csum), (&pkt.clone().into(), Checksum::Partial));
    assert_eq!(
        w.tx_responses(0, 0),
        vec![
            (ids[0], nf::NETIF_RSP_OKAY),
            (0, nf::NETIF_RSP_NULL),
            (ids[1], nf::NETIF_RSP_OKAY),
            (ids[2], nf::NETIF_RSP_OKAY),
        ]
    );
    assert_eq!(w.vifs[0].stats().tx_gso, 1);
    assert!(w.grants_in_use(&[q.tx_ref, q.rx_ref]).is_empty());
    // The segments a non-GSO receiver gets are valid TCP.
    let segs: Vec<_> = w.frames[0][0].clone().segment().collect();
    assert_eq!(segs.len(), 10_000usize.div_ceil(1448));
    assert!(segs
        .iter()
        .all(|s| csum::verify(&s.data) && s.data.len() <= 1514));
    // The maximum: 18 slots of which 17 continuation slots, a 64 KiB packet.
    let big = tcp6(1, &payload(65_535 - 74));
    let n = w.queue_tx(0, 0, &big, CSUM, None, 3641, 0).len();
    assert_eq!(n, 18);
    w.push_tx(0, 0);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert_eq!(w.frames[0][1].data.len(), 65_535);
}

#[test]
fn multicast_and_hash_extras_are_ignored() {
    let mut w = connected(1, VifConfig::new(1));
    let pkt = tcp4(1, b"m");
    let gfn = w.alloc_page();
    w.write_gpa(gfn * 4096, &pkt);
    let gref = w.grant_new(gfn, true);
    w.put_tx_req(0, 0, gref, 0, nf::NETTXF_EXTRA_INFO, 7, pkt.len() as u16);
    let mut x = [0u8; 12];
    x[0] = nf::XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
    x[1] = nf::XEN_NETIF_EXTRA_FLAG_MORE;
    w.put_tx_raw(0, 0, x);
    x[0] = nf::XEN_NETIF_EXTRA_TYPE_HASH;
    x[1] = 0;
    w.put_tx_raw(0, 0, x);
    w.push_tx(0, 0);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert_eq!(
        w.tx_responses(0, 0),
        vec![
            (7, nf::NETIF_RSP_OKAY),
            (0, nf::NETIF_RSP_NULL),
            (0, nf::NETIF_RSP_NULL)
        ]
    );
}

#[test]
fn packets_that_cannot_be_sent_are_answered_with_an_error() {
    let mut w = connected(1, VifConfig::new(1));
    let runt = vec![0xFFu8; 10];
    let gso = Gso {
        kind: GsoKind::TcpV4,
        mss: 1000,
    };
    let a = w.queue_tx(0, 0, &runt, 0, None, 4096, 0)[0];
    let b = w.queue_tx(0, 0, &arp(), CSUM, None, 4096, 0)[0];
    let c = w.queue_tx(0, 0, &udp4(&payload(3000)), 0, Some(gso), 4096, 0)[0];
    let d = w.queue_tx(0, 0, &tcp6(1, b"v6"), 0, Some(gso), 4096, 0)[0];
    let e = w.queue_tx(0, 0, &arp(), 0, None, 4096, 0)[0];
    w.push_tx(0, 0);
    let err = nf::NETIF_RSP_ERROR;
    assert_eq!(
        w.tx_responses(0, 0),
        vec![
            (a, err),
            (b, err),
            (c, err),
            (0, nf::NETIF_RSP_NULL),
            (d, err),
            (0, nf::NETIF_RSP_NULL),
            (e, nf::NETIF_RSP_OKAY),
        ]
    );
    assert_eq!(w.frames[0], vec![netback::Frame::new(arp())]);
    assert_eq!(w.vifs[0].stats().tx_dropped, 4);
    assert!(w.vifs[0].is_connected());
}

#[test]
fn indices_wrap_around() {
    let mut w = World::new(1, 1, VifConfig::new(1));
    // A frontend whose ring indices start just below 2^32.
    let start = u32::MAX - 100;
    w.connect_with(0, &FrontOpts::default(), |w: &mut World| {
        let q = w.fronts[0][0].clone();
        for g in [q.tx_gfn, q.rx_gfn] {
            for off in [0, 8] {
                w.write_gpa(g * 4096 + off, &start.to_le_bytes());
            }
            w.write_gpa(g * 4096 + 4, &start.wrapping_add(1).to_le_bytes());
            w.write_gpa(g * 4096 + 12, &start.wrapping_add(1).to_le_bytes());
        }
        let f = &mut w.fronts[0][0];
        (f.tx_prod, f.rx_prod, f.tx_rsp_cons, f.rx_rsp_cons) = (start, start, start, start);
    });
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    // 40 packets of up to 3 slots per round: 720 slots, across 2^32.
    for round in 0..6 {
        for k in 0..40u16 {
            let pkt = tcp4(k, &payload(60 + k as usize * 2));
            w.queue_tx(0, 0, &pkt, CSUM, None, 100, 0);
        }
        w.push_tx(0, 0);
        let rsps = w.tx_responses(0, 0);
        assert!(
            rsps.iter().all(|r| r.1 == nf::NETIF_RSP_OKAY),
            "round {round}"
        );
        assert_eq!(w.frames[0].len(), 40 * (round + 1));
    }
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert!(w.frames[0].iter().all(|f| {
        let mut f = f.clone();
        f.csum == Checksum::Partial && f.complete_checksum() && csum::verify(&f.data)
    }));
}

/// What a broken frontend puts on vif 0's TX ring.
enum Bad {
    EmptyPacket,
    CrossesPage,
    TailCrossesPage,
    GrantBeyondTable,
    GrantToOtherDomain,
    NeverGranted,
    Incomplete,
    FragmentTooBig,
    TooManySlots,
    UnknownExtra,
    UnknownGsoType,
    ZeroMss,
    TinyMss(u16),
    TooManyExtras,
    ExtraPastProd,
    Overflow,
    HugeReqProd,
}

/// Puts `bad` on vif 0's ring, kicks, and checks that vif 0 disconnected
/// cleanly while vif 1 keeps working. Returns the error.
fn break_tx(bad: Bad) -> ErrorKind {
    let mut w = connected(2, VifConfig::new(2));
    let q = w.fronts[0][0].clone();
    let keep = {
        let q1 = &w.fronts[1][0];
        [q1.tx_ref, q1.rx_ref]
    };
    let gfn = w.alloc_page();
    let pkt = tcp4(1, &payload(1000));
    w.write_gpa(gfn * 4096, &pkt);
    let good = w.grant_new(gfn, true);
    let n = pkt.len() as u16;
    let more = nf::NETTXF_MORE_DATA;
    // A good packet first: it is sent before the bad one is seen.
    w.put_tx_req(0, 0, good, 0, 0, 1, n);
    match bad {
        Bad::EmptyPacket => w.put_tx_req(0, 0, good, 0, 0, 2, 0),
        Bad::CrossesPage => w.put_tx_req(0, 0, good, 4000, 0, 2, 200),
        Bad::TailCrossesPage => {
            w.put_tx_req(0, 0, good, 0, more, 2, 300);
            w.put_tx_req(0, 0, good, 4000, 0, 3, 100);
        }
        Bad::GrantBeyondTable => w.put_tx_req(0, 0, 9999, 0, 0, 2, n),
        Bad::GrantToOtherDomain => {
            let other = w.grant_new(gfn, true);
            w.grant(other, GTF_PERMIT_ACCESS | GTF_READONLY, 3, gfn as u32);
            w.put_tx_req(0, 0, other, 0, 0, 2, n);
        }
        Bad::NeverGranted => w.put_tx_req(0, 0, 2000, 0, 0, 2, n),
        Bad::Incomplete => w.put_tx_req(0, 0, good, 0, more, 2, n),
        Bad::FragmentTooBig => {
            w.put_tx_req(0, 0, good, 0, more, 2, 100);
            w.put_tx_req(0, 0, good, 0, 0, 3, 101);
        }
        Bad::TooManySlots => {
            for k in 0..19 {
                let f = if k < 18 { more } else { 0 };
                w.put_tx_req(0, 0, good, 0, f, k, if k == 0 { 1900 } else { 100 });
            }
        }
        Bad::UnknownExtra => {
            w.put_tx_req(0, 0, good, 0, nf::NETTXF_EXTRA_INFO, 2, n);
            let mut x = [0u8; 12];
            x[0] = 7;
            w.put_tx_raw(0, 0, x);
        }
        Bad::UnknownGsoType => {
            w.put_tx_req(0, 0, good, 0, nf::NETTXF_EXTRA_INFO, 2, n);
            w.put_tx_gso(0, 0, 5, 1448, false);
        }
        Bad::ZeroMss => {
            w.put_tx_req(0, 0, good, 0, nf::NETTXF_EXTRA_INFO, 2, n);
            w.put_tx_gso(0, 0, nf::XEN_NETIF_GSO_TYPE_TCPV4, 0, false);
        }
        Bad::TinyMss(mss) => {
            w.put_tx_req(0, 0, good, 0, nf::NETTXF_EXTRA_INFO, 2, n);
            w.put_tx_gso(0, 0, nf::XEN_NETIF_GSO_TYPE_TCPV6, mss, false);
        }
        Bad::TooManyExtras => {
            w.put_tx_req(0, 0, good, 0, nf::NETTXF_EXTRA_INFO, 2, n);
            for _ in 0..6 {
                w.put_tx_gso(0, 0, nf::XEN_NETIF_GSO_TYPE_TCPV4, 1448, true);
            }
        }
        Bad::ExtraPastProd => {
            w.put_tx_req(0, 0, good, 0, nf::NETTXF_EXTRA_INFO, 2, n);
            w.put_tx_gso(0, 0, nf::XEN_NETIF_GSO_TYPE_TCPV4, 1448, true);
        }
        Bad::Overflow => {}
        Bad::HugeReqProd => {}
    }
    match bad {
        Bad::Overflow => w.set_tx_req_prod(0, 0, 1 + 257),
        Bad::HugeReqProd => w.set_tx_req_prod(0, 0, u32::MAX),
        _ => {
            w.push_tx(0, 0);
        }
    }
    if w.errors.is_empty() {
        // The frontend did not kick (req_prod went past req_event silently).
        w.service(0);
    }
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    let e = w.errors[0].clone();
    assert!(e.to_string().starts_with("netback: d1 vif0: "), "{e}");
    assert_eq!(w.vifs[0].state(), XenbusState::Closing);
    assert_eq!(w.be_state(0), "5");
    assert!(!w.vifs[0].owns_port(q.tx_port));
    // No grant of vif 0 is left in use (vif 1's rings are, as they should).
    assert_eq!(w.grants_in_use(&keep), Vec::<u32>::new());
    // The good packet before the bad one was taken, except where the ring was
    // unusable from the start.
    let before = matches!(bad, Bad::Overflow | Bad::HugeReqProd) as usize;
    assert_eq!(w.frames[0].len(), 1 - before);
    // A dead vif does nothing more.
    let mut frames = Vec::new();
    assert!(w.vifs[0]
        .service(&mut w.dom, &mut w.host, &mut frames)
        .is_ok());
    assert!(frames.is_empty());
    w.deliver(0, netback::Frame::new(arp()));
    assert_eq!(w.vifs[0].stats().rx_dropped, 1);
    // The other vif goes on.
    w.queue_tx(1, 0, &tcp4(2, b"still here"), CSUM, None, 4096, 0);
    w.push_tx(1, 0);
    assert_eq!(w.frames[1].len(), 1);
    assert!(w.vifs[1].is_connected());
    // The frontend closes and starts over: the vif works again.
    w.set_fe_state(0, 6);
    assert_eq!(w.be_state(0), "6");
    w.set_fe_state(0, 1);
    w.connect(0, &FrontOpts::default());
    assert_eq!(w.be_state(0), "4");
    w.queue_tx(0, 0, &tcp4(3, b"again"), CSUM, None, 4096, 0);
    w.push_tx(0, 0);
    assert_eq!(w.frames[0].len(), 2 - before);
    assert_eq!(w.errors.len(), 1);
    e.kind
}

#[test]
fn malformed_tx_rings_disconnect() {
    let slot = |k: &ErrorKind| match k {
        ErrorKind::EmptyPacket { slot }
        | ErrorKind::CrossesPage { slot, .. }
        | ErrorKind::TooManySlots { slot }
        | ErrorKind::Incomplete { slot }
        | ErrorKind::BadExtra { slot, .. }
        | ErrorKind::BadGso { slot, .. }
        | ErrorKind::FragmentTooBig { slot, .. }
        | ErrorKind::DataGrant { slot, .. } => Some(*slot),
        _ => None,
    };
    let k = break_tx(Bad::EmptyPacket);
    assert_eq!(k, ErrorKind::EmptyPacket { slot: 1 });
    let k = break_tx(Bad::CrossesPage);
    assert_eq!(
        k,
        ErrorKind::CrossesPage {
            slot: 1,
            offset: 4000,
            size: 200
        }
    );
    let k = break_tx(Bad::TailCrossesPage);
    assert_eq!(
        k,
        ErrorKind::CrossesPage {
            slot: 2,
            offset: 4000,
            size: 100
        }
    );
    let k = break_tx(Bad::GrantBeyondTable);
    assert_eq!(
        k,
        ErrorKind::DataGrant {
            ring: RingKind::Tx,
            slot: 1,
            gref: 9999,
            err: GrantError::BadRef
        }
    );
    for bad in [Bad::GrantToOtherDomain, Bad::NeverGranted] {
        let k = break_tx(bad);
        assert!(
            matches!(
                k,
                ErrorKind::DataGrant {
                    err: GrantError::PermissionDenied,
                    ..
                }
            ),
            "{k:?}"
        );
    }
    assert_eq!(break_tx(Bad::Incomplete), ErrorKind::Incomplete { slot: 1 });
    assert_eq!(
        break_tx(Bad::ExtraPastProd),
        ErrorKind::Incomplete { slot: 1 }
    );
    assert_eq!(
        break_tx(Bad::FragmentTooBig),
        ErrorKind::FragmentTooBig {
            slot: 2,
            size: 101,
            remaining: 100
        }
    );
    assert_eq!(
        break_tx(Bad::TooManySlots),
        ErrorKind::TooManySlots { slot: 1 }
    );
    assert_eq!(
        break_tx(Bad::TooManyExtras),
        ErrorKind::TooManySlots { slot: 1 }
    );
    assert_eq!(
        break_tx(Bad::UnknownExtra),
        ErrorKind::BadExtra { slot: 2, ty: 7 }
    );
    let k = break_tx(Bad::UnknownGsoType);
    assert_eq!(
        k,
        ErrorKind::BadGso {
            slot: 2,
            ty: 5,
            size: 1448
        }
    );
    assert_eq!(slot(&k), Some(2));
    assert!(matches!(
        break_tx(Bad::ZeroMss),
        ErrorKind::BadGso { size: 0, .. }
    ));
    // Below Linux's TCP_MIN_GSO_SIZE: fatal, as a size of 0 is in Linux.
    for mss in [1, MIN_GSO_SIZE - 1] {
        assert_eq!(
            break_tx(Bad::TinyMss(mss)),
            ErrorKind::BadGso {
                slot: 2,
                ty: nf::XEN_NETIF_GSO_TYPE_TCPV6,
                size: mss
            }
        );
    }
    let k = break_tx(Bad::Overflow);
    assert_eq!(
        k,
        ErrorKind::RingOverflow {
            ring: RingKind::Tx,
            queue: 0,
            req_prod: 258,
            req_cons: 0
        }
    );
    assert!(k.to_string().contains("258"), "{k}");
    assert!(matches!(
        break_tx(Bad::HugeReqProd),
        ErrorKind::RingOverflow { .. }
    ));
}

#[test]
fn notification_discipline() {
    // Without hold-off every packet pushed after the backend drained the ring
    // kicks once; the backend notifies only when rsp_event is crossed.
    let mut w = connected(1, VifConfig::new(1));
    let q = w.fronts[0][0].clone();
    for k in 0..20 {
        w.queue_tx(0, 0, &tcp4(k, b"x"), CSUM, None, 4096, 0);
        assert!(w.push_tx(0, 0), "packet {k} kicks");
    }
    assert_eq!(w.kicks, 20);
    assert_eq!(w.frames[0].len(), 20);
    // The guest never consumed responses (rsp_event still 1): one notification.
    assert_eq!(w.vifs[0].stats().notifications, 1);
    assert_eq!(w.tx_responses(0, 0).len(), 20);
    w.take_event(q.tx_port);
    // Now rsp_event = 21: the next response notifies again.
    w.queue_tx(0, 0, &tcp4(99, b"x"), CSUM, None, 4096, 0);
    w.push_tx(0, 0);
    assert!(w.take_event(q.tx_port));
    assert_eq!(w.vifs[0].stats().notifications, 2);
    // A batch pushed at once costs one kick.
    for k in 0..50 {
        w.queue_tx(0, 0, &tcp4(k, b"y"), CSUM, None, 4096, 0);
    }
    assert!(w.push_tx(0, 0));
    assert_eq!(w.kicks, 22);
    assert_eq!(w.frames[0].len(), 71);
    assert!(!w.vifs[0].needs_service());

    // With hold-off a steadily transmitting guest kicks once: the kernel polls.
    let mut cfg = VifConfig::new(1);
    cfg.tx_holdoff = true;
    let mut w = connected(1, cfg);
    w.queue_tx(0, 0, &tcp4(0, b"x"), CSUM, None, 4096, 0);
    assert!(w.push_tx(0, 0));
    assert!(w.vifs[0].needs_service());
    for k in 1..20 {
        w.queue_tx(0, 0, &tcp4(k, b"x"), CSUM, None, 4096, 0);
        assert!(!w.push_tx(0, 0), "packet {k} does not kick");
        w.service_needed(); // the kernel's next exit
    }
    assert_eq!(w.kicks, 1);
    assert_eq!(w.frames[0].len(), 20);
    // The first pass that finds nothing re-arms, and the guest kicks again.
    assert!(w.vifs[0].needs_service());
    w.service_needed();
    assert!(!w.vifs[0].needs_service());
    w.queue_tx(0, 0, &tcp4(0, b"x"), CSUM, None, 4096, 0);
    assert!(w.push_tx(0, 0));
}

/// A host whose TX ring page has a frontend producing forever on another
/// CPU: every read of `req_prod` finds one more request, always a valid packet.
struct ProducerHost {
    inner: FakeHost,
    ring_hpa: u64,
    req: [u8; 12],
    prod: std::cell::Cell<u32>,
}

impl p2m::EptTableMemory for ProducerHost {
    fn alloc_table(&mut self) -> Option<u64> {
        self.inner.alloc_table()
    }
    fn free_table(&mut self, table: u64) {
        self.inner.free_table(table)
    }
    fn read_entry(&self, table: u64, index: usize) -> u64 {
        self.inner.read_entry(table, index)
    }
    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        self.inner.write_entry(table, index, value)
    }
}

impl hypercalls::Host for ProducerHost {
    fn read_phys(&self, hpa: u64, buf: &mut [u8]) {
        if hpa == self.ring_hpa {
            let p = self.prod.get() + 1;
            self.prod.set(p);
            buf.copy_from_slice(&p.to_le_bytes());
        } else if hpa >= self.ring_hpa + 64 && hpa < self.ring_hpa + 64 + 256 * 12 {
            buf.copy_from_slice(&self.req[..buf.len()]);
        } else {
            self.inner.read_phys(hpa, buf)
        }
    }
    fn write_phys(&mut self, hpa: u64, data: &[u8]) {
        self.inner.write_phys(hpa, data)
    }
    fn alloc_page(&mut self) -> Option<u64> {
        self.inner.alloc_page()
    }
    fn free_page(&mut self, hpa: u64) {
        self.inner.free_page(hpa)
    }
    fn console_line(&mut self, domid: u16, line: &str) {
        self.inner.console_line(domid, line)
    }
    fn wallclock(&self) -> (u64, u32) {
        self.inner.wallclock()
    }
    fn tsc(&self) -> u64 {
        self.inner.tsc()
    }
    fn tsc_khz(&self) -> u64 {
        self.inner.tsc_khz()
    }
}

#[test]
fn a_pass_is_bounded() {
    // A frontend that never stops producing cannot keep the backend in one
    // pass: it stops after two rings' worth of slots, leaves req_event
    // disarmed and asks to be called again.
    let mut w = connected(1, VifConfig::new(1));
    let q = w.fronts[0][0].clone();
    let pkt = tcp4(1, b"flood");
    let gfn = w.alloc_page();
    w.write_gpa(gfn * 4096, &pkt);
    let gref = w.grant_new(gfn, true);
    let mut req = [0u8; 12];
    req[0..4].copy_from_slice(&gref.to_le_bytes());
    req[10..12].copy_from_slice(&(pkt.len() as u16).to_le_bytes());
    let mut host = ProducerHost {
        inner: std::mem::take(&mut w.host),
        ring_hpa: (RAM_MFN_BASE + q.tx_gfn) * 4096,
        req,
        prod: std::cell::Cell::new(0),
    };
    let before = w.tx_req_event_raw(&host.inner);
    let mut frames = Vec::new();
    w.vifs[0]
        .service(&mut w.dom, &mut host, &mut frames)
        .unwrap();
    assert_eq!(frames.len(), 512);
    assert!(w.vifs[0].needs_service());
    assert_eq!(w.tx_req_event_raw(&host.inner), before, "not re-armed");
    w.host = host.inner;
    assert!(w.grants_in_use(&[q.tx_ref, q.rx_ref]).is_empty());
}

#[test]
fn the_smallest_gso_size_linux_sends_is_taken() {
    let mut w = connected(1, VifConfig::new(1));
    let gso = Gso {
        kind: GsoKind::TcpV4,
        mss: MIN_GSO_SIZE,
    };
    let pkt = partial(tcp4(1, &payload(800)));
    let id = w.queue_tx(0, 0, &pkt, CSUM, Some(gso), 4096, 0)[0];
    w.push_tx(0, 0);
    assert_eq!(
        w.tx_responses(0, 0),
        vec![(id, nf::NETIF_RSP_OKAY), (0, nf::NETIF_RSP_NULL)]
    );
    assert_eq!(w.frames[0].len(), 1);
    assert_eq!(w.frames[0][0].gso, Some(gso));
    let segs: Vec<_> = w.frames[0].remove(0).segment().collect();
    assert_eq!(segs.len(), 100);
    assert!(w.vifs[0].is_connected());
}

#[test]
fn a_pass_is_bounded_over_all_queues_and_none_is_starved() {
    // Four queues kept full: one pass takes at most TX_PASS_SLOTS slots in
    // all, and the next pass starts one queue further on, so every queue is
    // served within four passes however hard the others are pushed.
    let o = FrontOpts {
        queues: 4,
        ..FrontOpts::default()
    };
    let mut w = World::new(4, 1, VifConfig::new(4));
    w.connect(0, &o);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    let pkt = tcp4(7, b"flood");
    let mut taken = [0usize; 4];
    for pass in 0..4 {
        for q in 0..4 {
            let f = &w.fronts[0][q];
            let room = RING_SIZE - f.tx_prod.wrapping_sub(f.tx_rsp_cons);
            for _ in 0..room {
                w.queue_tx(0, q, &pkt, CSUM, None, 4096, 0);
            }
            let prod = w.fronts[0][q].tx_prod;
            w.set_tx_req_prod(0, q, prod);
        }
        w.service(0);
        let mut slots = 0;
        for (q, t) in taken.iter_mut().enumerate() {
            let n = w.tx_responses(0, q).len();
            *t += n;
            slots += n;
        }
        assert!(slots as u32 <= TX_PASS_SLOTS, "pass {pass}: {slots} slots");
        assert!(w.vifs[0].needs_service(), "pass {pass}");
        // The frames go on their way: their buffers come back.
        w.frames[0].clear();
    }
    assert!(taken.iter().all(|&t| t > 0), "{taken:?}");
    assert!(w.errors.is_empty() && w.vifs[0].is_connected());
}
