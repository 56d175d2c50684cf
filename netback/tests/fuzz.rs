//! Random ring contents: whatever a frontend writes into its rings, the
//! backend does not panic, does not loop, never leaves a grant in use, either
//! consumes the ring or disconnects the vif, and the other vif goes on.

mod common;

use common::*;
use guest_abi::netif as nf;
use netback::{Checksum, Frame, Gso, GsoKind, VifConfig, XenbusState};
use proptest::prelude::*;

/// A grant reference as a broken frontend might use one.
#[derive(Clone, Copy, Debug)]
enum Ref {
    /// One of four good data pages (read-only for TX, writable for RX).
    Good(u8),
    /// The vif's own TX ring page.
    OwnRing,
    /// The other vif's RX ring page.
    OtherRing,
    /// Anything.
    Any(u32),
}

fn any_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![
        6 => (0u8..4).prop_map(Ref::Good),
        1 => Just(Ref::OwnRing),
        1 => Just(Ref::OtherRing),
        1 => prop_oneof![Just(0u32), Just(9999), Just(2000), any::<u32>()].prop_map(Ref::Any),
    ]
}

/// A TX ring slot.
#[derive(Clone, Debug)]
enum Slot {
    Raw([u8; 12]),
    Req {
        gref: Ref,
        offset: u16,
        flags: u16,
        id: u16,
        size: u16,
    },
    Extra {
        ty: u8,
        more: bool,
        gso_type: u8,
        mss: u16,
    },
    /// A well-formed packet from good page `k` (1554 bytes), in one slot or
    /// split at `split`, with `flags` and an optional GSO slot.
    Packet {
        k: u8,
        flags: u16,
        gso: Option<(u8, u16)>,
        split: Option<u16>,
    },
}

fn slot() -> impl Strategy<Value = Slot> {
    let offset = prop_oneof![0u16..128, 3900u16..4200, any::<u16>()];
    let size = prop_oneof![0u16..64, 60u16..1600, 3000u16..5000, any::<u16>()];
    let flags = prop_oneof![4 => 0u16..16, 1 => any::<u16>()];
    prop_oneof![
        1 => any::<[u8; 12]>().prop_map(Slot::Raw),
        6 => (any_ref(), offset, flags, any::<u16>(), size).prop_map(
            |(gref, offset, flags, id, size)| Slot::Req { gref, offset, flags, id, size }
        ),
        2 => (0u8..6, any::<bool>(), 0u8..4, prop_oneof![Just(0u16), 1u16..2000]).prop_map(
            |(ty, more, gso_type, mss)| Slot::Extra { ty, more, gso_type, mss }
        ),
        6 => (
            0u8..4,
            prop_oneof![Just(0u16), Just(3u16), 0u16..16],
            proptest::option::of((1u8..3, netback::MIN_GSO_SIZE..1600)),
            proptest::option::of(1u16..1554),
        )
            .prop_map(|(k, flags, gso, split)| Slot::Packet { k, flags, gso, split }),
    ]
}

/// Where the frontend puts `req_prod` relative to the slots it wrote.
fn prod() -> impl Strategy<Value = (u8, u32)> {
    (prop_oneof![5 => Just(0u8), 1 => 1u8..4], any::<u32>())
}

fn req_prod(mode: u8, raw: u32, written: usize, start: u32) -> u32 {
    match mode {
        0 => start.wrapping_add(written as u32),
        1 => start.wrapping_add(raw % 300),
        2 => raw,
        _ => start.wrapping_add(written as u32).wrapping_sub(1),
    }
}

struct Setup {
    w: World,
    goods: Vec<u32>,
}

/// Two connected vifs; four data pages with a valid TCP frame in each,
/// granted read-only (`ro`) or writable.
fn setup(ro: bool) -> Setup {
    let mut w = World::new(2, 2, VifConfig::new(2));
    w.connect(0, &FrontOpts::default());
    w.connect(1, &FrontOpts::default());
    assert!(w.errors.is_empty());
    let mut goods = Vec::new();
    for k in 0..4 {
        let gfn = w.alloc_page();
        let pkt = tcp4(k, &payload(1500));
        w.write_gpa(gfn * 4096, &pkt);
        w.write_gpa(gfn * 4096 + 2048, &pkt);
        goods.push(w.grant_new(gfn, ro));
    }
    Setup { w, goods }
}

fn gref(s: &Setup, r: Ref) -> u32 {
    match r {
        Ref::Good(k) => s.goods[k as usize],
        Ref::OwnRing => s.w.fronts[0][0].tx_ref,
        Ref::OtherRing => s.w.fronts[1][0].rx_ref,
        Ref::Any(v) => v,
    }
}

/// Whatever happened to vif 0, its state is consistent, no grant is left in
/// use that should not be, and vif 1 still carries traffic both ways.
fn check_aftermath(s: &mut Setup) -> Result<(), TestCaseError> {
    let w = &mut s.w;
    let v0 = &w.vifs[0];
    let mut keep = vec![w.fronts[1][0].tx_ref, w.fronts[1][0].rx_ref];
    match v0.state() {
        XenbusState::Connected => {
            prop_assert!(w.errors.is_empty());
            keep.extend([w.fronts[0][0].tx_ref, w.fronts[0][0].rx_ref]);
        }
        XenbusState::Closing => {
            prop_assert_eq!(w.errors.len(), 1);
            prop_assert_eq!(w.be_state(0), "5");
            prop_assert!(w.errors[0].to_string().starts_with("netback: d1 vif0: "));
            let mut frames = Vec::new();
            prop_assert!(w.vifs[0]
                .service(&mut w.dom, &mut w.host, &mut frames)
                .is_ok());
            prop_assert!(frames.is_empty());
        }
        other => prop_assert!(false, "vif 0 in {:?}", other),
    }
    prop_assert_eq!(w.grants_in_use(&keep), Vec::<u32>::new());
    prop_assert!(w.vifs[1].is_connected());
    let n = w.frames[1].len();
    w.queue_tx(
        1,
        0,
        &tcp4(9, b"alive"),
        nf::NETTXF_CSUM_BLANK,
        None,
        4096,
        0,
    );
    w.push_tx(1, 0);
    prop_assert_eq!(w.frames[1].len(), n + 1);
    w.post_rx(1, 0, 1);
    w.push_rx(1, 0);
    w.deliver(1, Frame::new(arp()));
    let got = w.rx_frames(1, 0);
    prop_assert_eq!(got.last().map(|r| r.data.clone()), Some(arp()));
    Ok(())
}

fn req_bytes(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&gref.to_le_bytes());
    b[4..6].copy_from_slice(&offset.to_le_bytes());
    b[6..8].copy_from_slice(&flags.to_le_bytes());
    b[8..10].copy_from_slice(&id.to_le_bytes());
    b[10..12].copy_from_slice(&size.to_le_bytes());
    b
}

/// Number of TX slots `slots` take.
fn slot_count(slots: &[Slot]) -> usize {
    slots
        .iter()
        .map(|s| match s {
            Slot::Packet { gso, split, .. } => {
                1 + gso.is_some() as usize + split.is_some() as usize
            }
            _ => 1,
        })
        .sum()
}

fn write_tx_slots(s: &mut Setup, slots: &[Slot]) {
    for sl in slots {
        if let Slot::Packet {
            k,
            flags,
            gso,
            split,
        } = *sl
        {
            let r = s.goods[k as usize];
            let mut f = flags & !(nf::NETTXF_MORE_DATA | nf::NETTXF_EXTRA_INFO);
            if gso.is_some() {
                f |= nf::NETTXF_EXTRA_INFO;
            }
            if split.is_some() {
                f |= nf::NETTXF_MORE_DATA;
            }
            s.w.put_tx_raw(0, 0, req_bytes(r, 0, f, 1, 1554));
            if let Some((ty, mss)) = gso {
                s.w.put_tx_gso(0, 0, ty, mss, false);
            }
            if let Some(at) = split {
                s.w.put_tx_raw(0, 0, req_bytes(r, 2048 + at, 0, 2, 1554 - at));
            }
            continue;
        }
        let bytes = match *sl {
            Slot::Packet { .. } => unreachable!(),
            Slot::Raw(b) => b,
            Slot::Req {
                gref: r,
                offset,
                flags,
                id,
                size,
            } => req_bytes(gref(s, r), offset, flags, id, size),
            Slot::Extra {
                ty,
                more,
                gso_type,
                mss,
            } => {
                let mut b = [0u8; 12];
                b[0] = ty;
                b[1] = more as u8;
                b[2..4].copy_from_slice(&mss.to_le_bytes());
                b[4] = gso_type;
                b
            }
        };
        s.w.put_tx_raw(0, 0, bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random TX slots and a random `req_prod`, over two rounds.
    #[test]
    fn random_tx_rings(
        rounds in proptest::collection::vec(
            (proptest::collection::vec(slot(), 0..40), prod(), any::<u32>()),
            1..3,
        ),
        clean in any::<bool>(),
    ) {
        let mut s = setup(true);
        for (mut slots, (mode, raw), rsp_event) in rounds {
            if clean {
                // Only well-formed packets: the vif must stay up.
                slots.retain(|s| matches!(s, Slot::Packet { .. }));
            }
            let start = s.w.fronts[0][0].tx_prod;
            write_tx_slots(&mut s, &slots);
            let p = req_prod(mode, raw, slot_count(&slots), start);
            s.w.set_tx_req_prod(0, 0, p);
            s.w.fronts[0][0].tx_prod = p;
            let g = s.w.fronts[0][0].tx_gfn * 4096;
            s.w.write_gpa(g + 12, &rsp_event.to_le_bytes());
            let before = s.w.frames[0].len();
            let dropped_before = s.w.vifs[0].stats().tx_dropped as usize;
            s.w.service(0);
            if clean && mode == 0 {
                prop_assert!(s.w.vifs[0].is_connected(), "{:?}", s.w.errors);
                let sent = s.w.frames[0].len() - before;
                let dropped = s.w.vifs[0].stats().tx_dropped as usize - dropped_before;
                prop_assert_eq!(sent + dropped, slots.len());
            }
            if s.w.vifs[0].is_connected() {
                // Consumed everything, answered every slot, re-armed.
                prop_assert_eq!(s.w.u32_at(g + 8), p);
                prop_assert_eq!(s.w.tx_req_event(0, 0), p.wrapping_add(1));
                prop_assert!(!s.w.vifs[0].needs_service());
                for f in &s.w.frames[0] {
                    prop_assert!(f.data.len() >= 14 && f.data.len() <= 65535);
                }
            }
            check_aftermath(&mut s)?;
            if !s.w.vifs[0].is_connected() {
                break;
            }
        }
    }

    /// Random RX requests, a random `req_prod`, and random frames to deliver.
    #[test]
    fn random_rx_rings(
        reqs in proptest::collection::vec((any::<u16>(), any_ref()), 0..40),
        (mode, raw) in prod(),
        frames in proptest::collection::vec(
            (1usize..20_000, any::<bool>(), 0u16..3000, any::<bool>(), 0u8..3),
            1..6,
        ),
    ) {
        let mut s = setup(false);
        let start = s.w.fronts[0][0].rx_prod;
        for &(id, r) in &reqs {
            let idx = s.w.fronts[0][0].rx_prod;
            let mut b = [0u8; 8];
            b[0..2].copy_from_slice(&id.to_le_bytes());
            b[4..8].copy_from_slice(&gref(&s, r).to_le_bytes());
            let gpa = s.w.fronts[0][0].rx_gfn * 4096 + 64 + (idx % 256) as u64 * 8;
            s.w.write_gpa(gpa, &b);
            s.w.fronts[0][0].rx_prod = idx.wrapping_add(1);
        }
        let p = req_prod(mode, raw, reqs.len(), start);
        s.w.set_rx_req_prod(0, 0, p);
        for (len, tcp, mss, gso, csum) in frames {
            let data = if tcp {
                tcp4(1, &payload(len))
            } else {
                let mut d = payload(len);
                d.truncate(len);
                d
            };
            let gso = (gso && mss > 0).then_some(Gso { kind: GsoKind::TcpV4, mss });
            let csum = [Checksum::None, Checksum::Partial, Checksum::Validated][csum as usize];
            s.w.deliver(0, Frame { data: data.into(), gso, csum });
            if !s.w.vifs[0].is_connected() {
                break;
            }
        }
        if s.w.vifs[0].is_connected() {
            let g = s.w.fronts[0][0].rx_gfn * 4096;
            let rsp_prod = s.w.u32_at(g + 8);
            // Responses only for requests produced, within one ring.
            let made = rsp_prod.wrapping_sub(start);
            let produced = p.wrapping_sub(start);
            prop_assert!(made == 0 || (produced <= 256 && made <= produced));
        }
        check_aftermath(&mut s)?;
    }
}
