//! The RX ring: frames into posted buffers, same-slot responses, waiting for
//! buffers, multi-slot and GSO frames, multi-queue, and broken frontends.

mod common;

use common::*;
use guest_abi::grant_table::{GTF_PERMIT_ACCESS, GTF_READONLY};
use guest_abi::netif as nf;
use hypercalls::gnttab::GrantError;
use netback::{csum, Checksum, ErrorKind, Frame, Gso, GsoKind, RingKind, VifConfig, XenbusState};

fn connected(o: FrontOpts, config: VifConfig) -> World {
    let mut w = World::new(4, 1, config);
    w.connect(0, &o);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    w
}

#[test]
fn frames_land_in_posted_buffers() {
    let mut w = connected(FrontOpts::default(), VifConfig::new(1));
    let q = w.fronts[0][0].clone();
    w.post_rx(0, 0, 8);
    // The frontend initialised req_event to 1: its first batch kicks.
    assert!(w.push_rx(0, 0));
    // The checksum state decides the flags; nothing is verified or computed.
    let good = checksummed(tcp4(7, b"reply"));
    let mut bad = good.clone();
    bad[50] ^= 0xFF;
    let part = partial(tcp4(8, b"partial"));
    for (f, c) in [
        (good.clone(), Checksum::Validated),
        (bad.clone(), Checksum::None),
        (arp(), Checksum::None),
        (part.clone(), Checksum::Partial),
    ] {
        w.deliver(0, with_csum(f, c));
    }
    let got = w.rx_frames(0, 0);
    let one = |data, flags| Received {
        data,
        flags,
        gso: None,
        slots: 1,
    };
    assert_eq!(
        got,
        vec![
            one(good, nf::NETRXF_DATA_VALIDATED),
            one(bad, 0),
            one(arp(), 0),
            one(part, nf::NETRXF_CSUM_BLANK | nf::NETRXF_DATA_VALIDATED),
        ]
    );
    // Offset 0, and the guest was notified once (rsp_event was 1).
    let rsp = w.read_gpa(q.rx_gfn * 4096 + 64, 8);
    assert_eq!(u16::from_le_bytes([rsp[2], rsp[3]]), 0);
    assert!(w.take_event(q.rx_port));
    let s = *w.vifs[0].stats();
    assert_eq!((s.rx_packets, s.notifications), (4, 1));
    assert_eq!((s.rx_csum_blank, s.rx_csum_completed), (1, 0));
    assert!(w.grants_in_use(&[q.tx_ref, q.rx_ref]).is_empty());
    // Posting more buffers while nothing waits never kicks.
    let kicks = w.kicks;
    for _ in 0..5 {
        w.post_rx(0, 0, 10);
        assert!(!w.push_rx(0, 0));
    }
    assert_eq!(w.kicks, kicks);
}

#[test]
fn frames_wait_for_buffers() {
    let mut w = connected(FrontOpts::default(), VifConfig::new(1));
    w.post_rx(0, 0, 1);
    w.push_rx(0, 0);
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|k| checksummed(tcp4(1, &payload(k * 10))))
        .collect();
    for f in &frames {
        w.deliver(0, Frame::new(f.clone()));
    }
    assert_eq!(w.rx_frames(0, 0).len(), 1);
    assert_eq!(w.vifs[0].rx_waiting(), 2);
    // The backend asked for an event once one more buffer is posted.
    let cons = w.fronts[0][0].rx_prod;
    assert_eq!(w.rx_req_event(0, 0), cons + 1);
    w.post_rx(0, 0, 2);
    assert!(w.push_rx(0, 0), "posting buffers kicks while frames wait");
    let got: Vec<Vec<u8>> = w.rx_frames(0, 0).into_iter().map(|r| r.data).collect();
    assert_eq!(got, frames[1..].to_vec());
    assert_eq!(w.vifs[0].rx_waiting(), 0);
}

#[test]
fn waiting_frames_are_bounded() {
    let mut cfg = VifConfig::new(1);
    cfg.rx_queue_frames = 4;
    cfg.rx_queue_bytes = 10_000;
    let mut w = connected(FrontOpts::default(), cfg);
    for _ in 0..10 {
        w.deliver(0, Frame::new(arp()));
    }
    assert_eq!(w.vifs[0].rx_waiting(), 4);
    assert_eq!(w.vifs[0].stats().rx_dropped, 6);
    w.deliver(0, Frame::new(tcp4(1, &payload(9_990))));
    assert_eq!(w.vifs[0].stats().rx_dropped, 7, "byte limit");
    // A frame for a vif that is not connected is dropped and counted.
    let mut w = World::new(1, 1, VifConfig::new(1));
    w.deliver(0, Frame::new(arp()));
    assert_eq!(w.vifs[0].stats().rx_dropped, 1);
    // Frames waiting when the vif disconnects are counted as dropped.
    let mut w = connected(FrontOpts::default(), VifConfig::new(1));
    w.deliver(0, Frame::new(arp()));
    w.set_fe_state(0, 5);
    assert_eq!(w.vifs[0].stats().rx_dropped, 1);
}

#[test]
fn large_frames_span_slots_with_sg() {
    let mut w = connected(FrontOpts::default(), VifConfig::new(1));
    w.post_rx(0, 0, 20);
    w.push_rx(0, 0);
    let jumbo = checksummed(tcp4(1, &payload(9000)));
    w.deliver(0, with_csum(jumbo.clone(), Checksum::Validated));
    let got = w.rx_frames(0, 0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, jumbo);
    assert_eq!(got[0].slots, 3);
    assert_eq!(got[0].flags, nf::NETRXF_DATA_VALIDATED);
    // Without feature-sg such a frame cannot be delivered.
    let o = FrontOpts {
        sg: false,
        ..Default::default()
    };
    let mut w = connected(o, VifConfig::new(1));
    w.post_rx(0, 0, 20);
    w.push_rx(0, 0);
    w.deliver(0, Frame::new(jumbo));
    w.deliver(0, Frame::new(vec![0u8; 4096]));
    assert_eq!(w.rx_frames(0, 0).len(), 1, "exactly one page fits");
    assert_eq!(w.vifs[0].stats().rx_dropped, 1);
    // Empty and over-long frames are never delivered.
    w.deliver(0, Frame::new(Vec::new()));
    w.deliver(0, Frame::new(vec![0u8; netback::MAX_RX_FRAME + 1]));
    assert_eq!(w.vifs[0].stats().rx_dropped, 3);
}

#[test]
fn gso_frames_go_whole_or_segmented() {
    let gso = Gso {
        kind: GsoKind::TcpV4,
        mss: 1448,
    };
    let big = checksummed(tcp4(5, &payload(20_000)));
    // A GSO frontend gets one frame: 5 data slots and the GSO extra.
    let mut w = connected(FrontOpts::default(), VifConfig::new(1));
    w.post_rx(0, 0, 10);
    w.push_rx(0, 0);
    w.deliver(0, gso_frame(big.clone(), gso, Checksum::None));
    let got = w.rx_frames(0, 0);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.slots, 5);
    assert_eq!(r.gso, Some((nf::XEN_NETIF_GSO_TYPE_TCPV4, 1448)));
    assert_eq!(r.flags, nf::NETRXF_CSUM_BLANK | nf::NETRXF_DATA_VALIDATED);
    assert_eq!(r.data.len(), big.len());
    // Everything but the checksum field is the frame; the field holds the
    // pseudo-header sum (CHECKSUM_PARTIAL), which completes to the checksum.
    assert_eq!(r.data[..50], big[..50]);
    assert_eq!(r.data[52..], big[52..]);
    let mut done = r.data.clone();
    assert!(csum::complete(&mut done));
    assert_eq!(done, big);
    // The extra slot's buffer was consumed; the next frame uses the next one.
    w.deliver(0, Frame::new(arp()));
    assert_eq!(w.rx_frames(0, 0)[0].data, arp());
    // GSO metadata that does not fit the frame is refused.
    for (data, kind, mss) in [
        (udp4(&payload(3000)), GsoKind::TcpV4, 1448),
        (big.clone(), GsoKind::TcpV6, 1448),
        (big.clone(), GsoKind::TcpV4, 0),
    ] {
        w.deliver(0, gso_frame(data, Gso { kind, mss }, Checksum::Partial));
    }
    assert_eq!(w.vifs[0].stats().rx_dropped, 3);
    assert!(w.rx_frames(0, 0).is_empty());

    // A frontend without GSO gets MSS-sized segments, each valid.
    let o = FrontOpts {
        gso: false,
        ..Default::default()
    };
    let mut w = connected(o, VifConfig::new(1));
    w.post_rx(0, 0, 30);
    w.push_rx(0, 0);
    w.deliver(0, gso_frame(big.clone(), gso, Checksum::Partial));
    let got = w.rx_frames(0, 0);
    assert_eq!(got.len(), 20_000usize.div_ceil(1448));
    let mut joined = Vec::new();
    for r in &got {
        assert_eq!(r.flags, nf::NETRXF_DATA_VALIDATED);
        assert!(csum::verify(&r.data));
        joined.extend_from_slice(&r.data[54..]);
    }
    assert_eq!(joined, payload(20_000));
    assert_eq!(w.vifs[0].stats().rx_segmented, 1);
    // A "GSO" frame that is not TCP is dropped.
    w.deliver(0, gso_frame(udp4(&payload(3000)), gso, Checksum::Partial));
    assert_eq!(w.vifs[0].stats().rx_dropped, 1);
}

#[test]
fn multi_queue_with_split_event_channels() {
    let o = FrontOpts {
        queues: 4,
        split: true,
        ..Default::default()
    };
    let mut w = connected(o, VifConfig::new(4));
    let f = w.vifs[0].frontend_features();
    assert_eq!((f.queues, f.split_event_channels), (4, true));
    assert_eq!(w.vifs[0].ring_refs().len(), 4);
    for q in 0..4 {
        w.post_rx(0, q, 64);
        w.push_rx(0, q);
    }
    for q in 0..4 {
        let fq = w.fronts[0][q].clone();
        w.take_event(fq.rx_port);
        w.take_event(fq.tx_port);
    }
    // 32 flows, 2 frames each: every flow stays on one queue, and more than
    // one queue is used.
    for round in 0..2 {
        for flow in 0..32u16 {
            w.deliver(0, Frame::new(checksummed(tcp4(1000 + flow, &[round]))));
        }
    }
    let mut used = 0;
    let mut seen: std::collections::HashMap<u16, usize> = Default::default();
    for q in 0..4 {
        let got = w.rx_frames(0, q);
        let fq = w.fronts[0][q].clone();
        if !got.is_empty() {
            used += 1;
            assert!(w.take_event(fq.rx_port), "queue {q} RX port notified");
        }
        assert!(!w.take_event(fq.tx_port), "queue {q} TX port left alone");
        for r in got {
            let flow = u16::from_be_bytes([r.data[34], r.data[35]]);
            assert_eq!(*seen.entry(flow).or_insert(q), q, "flow {flow}");
        }
    }
    assert!(used > 1, "flows spread over queues");
    assert_eq!(seen.len(), 32);
    // TX on queue 2 through its own port.
    let port = w.fronts[0][2].tx_port;
    assert!(w.vifs[0].owns_port(port));
    w.queue_tx(0, 2, &tcp6(1, b"q2"), nf::NETTXF_CSUM_BLANK, None, 4096, 0);
    assert!(w.push_tx(0, 2));
    assert_eq!(w.frames[0].len(), 1);
    assert!(w.take_event(port));
}

/// Breaks vif 0's RX side with `tamper`, delivers a frame, and checks the
/// disconnection. Returns the error.
fn break_rx(tamper: impl FnOnce(&mut World)) -> ErrorKind {
    let mut w = connected(FrontOpts::default(), VifConfig::new(1));
    let q = w.fronts[0][0].clone();
    tamper(&mut w);
    w.deliver(0, Frame::new(checksummed(tcp4(1, &payload(6000)))));
    assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
    let e = w.errors[0].clone();
    assert!(e.to_string().starts_with("netback: d1 vif0: "), "{e}");
    assert_eq!(w.vifs[0].state(), XenbusState::Closing);
    assert_eq!(w.be_state(0), "5");
    assert!(w.grants_in_use(&[]).is_empty());
    assert!(!w.vifs[0].owns_port(q.rx_port));
    e.kind
}

#[test]
fn malformed_rx_rings_disconnect() {
    // A buffer granted read-only, to another domain, or not at all.
    for (flags, domid, want) in [
        (
            GTF_PERMIT_ACCESS | GTF_READONLY,
            0,
            GrantError::PermissionDenied,
        ),
        (GTF_PERMIT_ACCESS, 2, GrantError::PermissionDenied),
        (0, 0, GrantError::PermissionDenied),
    ] {
        let k = break_rx(|w| {
            w.post_rx(0, 0, 1);
            let gfn = w.alloc_page();
            let gref = w.grant_new(gfn, false);
            w.grant(gref, flags, domid, gfn as u32);
            w.post_rx_gref(0, 0, gref, gfn);
            w.push_rx(0, 0);
        });
        assert_eq!(
            k,
            ErrorKind::DataGrant {
                ring: RingKind::Rx,
                slot: 1,
                gref: match &k {
                    ErrorKind::DataGrant { gref, .. } => *gref,
                    _ => 0,
                },
                err: want
            }
        );
    }
    // A grant reference beyond the table.
    let k = break_rx(|w| {
        w.post_rx_gref(0, 0, 100_000, 0x500);
        w.post_rx(0, 0, 1);
        w.push_rx(0, 0);
    });
    assert!(
        matches!(
            k,
            ErrorKind::DataGrant {
                err: GrantError::BadRef,
                slot: 0,
                ..
            }
        ),
        "{k:?}"
    );
    // req_prod more than a ring ahead.
    let k = break_rx(|w| w.set_rx_req_prod(0, 0, 300));
    assert_eq!(
        k,
        ErrorKind::RingOverflow {
            ring: RingKind::Rx,
            queue: 0,
            req_prod: 300,
            req_cons: 0
        }
    );
    let k = break_rx(|w| w.set_rx_req_prod(0, 0, u32::MAX - 3));
    assert!(matches!(k, ErrorKind::RingOverflow { .. }), "{k:?}");
}
