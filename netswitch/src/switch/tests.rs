use super::*;
use crate::filter::Ipv4Net;
use crate::pool::{Pool, PoolConfig};
use alloc::vec;

const A: MacAddr = [0x02, 0, 0, 0, 0, 0xa];
const B: MacAddr = [0x02, 0, 0, 0, 0, 0xb];
const C: MacAddr = [0x02, 0, 0, 0, 0, 0xc];
const MCAST: MacAddr = [0x01, 0x00, 0x5e, 0, 0, 1];

fn frame(dst: MacAddr, src: MacAddr, len: usize) -> Vec<u8> {
    assert!(len >= ETH_HEADER_LEN);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x08;
    for (i, b) in f[ETH_HEADER_LEN..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

fn sw3() -> (Switch, PortId, PortId, PortId) {
    let mut sw = Switch::default();
    let p0 = sw.add_port(PortConfig::standard());
    let p1 = sw.add_port(PortConfig::standard());
    let p2 = sw.add_port(PortConfig::standard());
    (sw, p0, p1, p2)
}

fn queued(sw: &Switch) -> Vec<(PortId, usize)> {
    sw.ports().map(|p| (p, sw.queued_frames(p))).collect()
}

#[test]
fn unknown_unicast_floods_to_all_but_ingress() {
    let (mut sw, p0, p1, p2) = sw3();
    let f = frame(B, A, 60);
    assert_eq!(sw.input(p0, &f, 0), Delivery::Flooded { queued: 2 });
    assert_eq!(queued(&sw), vec![(p0, 0), (p1, 1), (p2, 1)]);
    assert_eq!(sw.take_output(p1).unwrap(), f);
    assert_eq!(sw.take_output(p2).unwrap(), f);
    assert_eq!(sw.take_output(p0), None);
    assert_eq!(sw.stats().flooded, 1);
    assert_eq!(sw.lookup(&A, 0), Some(p0));
}

#[test]
fn learned_unicast_goes_to_one_port() {
    let (mut sw, p0, p1, p2) = sw3();
    sw.input(p0, &frame(BROADCAST_MAC, A, 60), 0);
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    for p in [p0, p1, p2] {
        sw.drain(p).for_each(drop);
    }
    assert_eq!(sw.input(p0, &frame(B, A, 100), 1), Delivery::Unicast(p1));
    assert_eq!(sw.input_vec(p1, frame(A, B, 100), 1), Delivery::Unicast(p0));
    assert_eq!(queued(&sw), vec![(p0, 1), (p1, 1), (p2, 0)]);
    assert_eq!(sw.stats().unicast, 2);
    assert_eq!(sw.stats().learned, 2);
    let ports: Vec<_> = sw.ports_with_output().collect();
    assert_eq!(ports, vec![p0, p1]);
}

#[test]
fn broadcast_and_multicast_always_flood() {
    let (mut sw, p0, p1, p2) = sw3();
    // Even with every host learned.
    sw.input(p1, &frame(A, B, 60), 0);
    sw.input(p2, &frame(A, C, 60), 0);
    sw.drain(p0).for_each(drop);
    sw.drain(p1).for_each(drop);
    sw.drain(p2).for_each(drop);
    assert_eq!(
        sw.input(p0, &frame(BROADCAST_MAC, A, 60), 1),
        Delivery::Flooded { queued: 2 }
    );
    assert_eq!(
        sw.input(p0, &frame(MCAST, A, 60), 1),
        Delivery::Flooded { queued: 2 }
    );
    assert_eq!(queued(&sw), vec![(p0, 0), (p1, 2), (p2, 2)]);
}

#[test]
fn no_hairpin() {
    let (mut sw, p0, p1, p2) = sw3();
    // A and B both live behind port 0 (e.g. a guest bridging two MACs).
    sw.input(p0, &frame(BROADCAST_MAC, A, 60), 0);
    sw.input(p0, &frame(BROADCAST_MAC, B, 60), 0);
    sw.drain(p1).for_each(drop);
    sw.drain(p2).for_each(drop);
    assert_eq!(
        sw.input(p0, &frame(B, A, 60), 1),
        Delivery::Dropped(DropReason::Filtered)
    );
    assert_eq!(queued(&sw), vec![(p0, 0), (p1, 0), (p2, 0)]);
    assert_eq!(sw.port_stats(p0).unwrap().rx_filtered, 1);
    // A one-port switch floods to nobody.
    let mut sw = Switch::default();
    let only = sw.add_port(PortConfig::standard());
    assert_eq!(
        sw.input(only, &frame(BROADCAST_MAC, A, 60), 0),
        Delivery::Flooded { queued: 0 }
    );
    assert_eq!(sw.queued_frames(only), 0);
}

#[test]
fn entries_age_out() {
    let mut sw = Switch::new(SwitchConfig {
        ageing_ms: 1000,
        ..SwitchConfig::default()
    });
    let p0 = sw.add_port(PortConfig::standard());
    let p1 = sw.add_port(PortConfig::standard());
    let p2 = sw.add_port(PortConfig::standard());
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    assert_eq!(sw.lookup(&B, 999), Some(p1));
    assert_eq!(sw.input(p0, &frame(B, A, 60), 999), Delivery::Unicast(p1));
    // Aged: unknown again, so flooded.
    assert_eq!(sw.lookup(&B, 1000), None);
    assert_eq!(
        sw.input(p0, &frame(B, A, 60), 1000),
        Delivery::Flooded { queued: 2 }
    );
    // Traffic from B refreshes its entry.
    sw.input(p1, &frame(A, B, 60), 1500);
    assert_eq!(sw.lookup(&B, 2499), Some(p1));
    assert_eq!(sw.lookup(&B, 2500), None);
    // expire() removes only what aged: A was last seen at 1000.
    assert_eq!(sw.mac_table().count(), 2);
    assert_eq!(sw.expire(2000), 1);
    let left: Vec<_> = sw.mac_table().map(|e| (e.mac, e.port)).collect();
    assert_eq!(left, vec![(B, p1)]);
    assert_eq!(sw.stats().aged_out, 1);
    assert!(sw.queued_frames(p2) > 0);
    // A clock that goes backwards is "no time passed".
    assert_eq!(sw.lookup(&B, 0), Some(p1));
    sw.input(p0, &frame(B, A, 60), 5);
}

#[test]
fn station_moves() {
    let (mut sw, p0, p1, p2) = sw3();
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    sw.input(p2, &frame(BROADCAST_MAC, B, 60), 1);
    assert_eq!(sw.lookup(&B, 1), Some(p2));
    assert_eq!(sw.stats().moved, 1);
    assert_eq!(sw.input(p0, &frame(B, A, 60), 2), Delivery::Unicast(p2));
}

#[test]
fn a_full_table_learns_no_more() {
    let mut sw = Switch::new(SwitchConfig {
        max_mac_entries: 2,
        ageing_ms: 1000,
    });
    let p0 = sw.add_port(PortConfig::standard());
    let p1 = sw.add_port(PortConfig::standard());
    sw.input(p0, &frame(BROADCAST_MAC, A, 60), 10);
    sw.input(p0, &frame(BROADCAST_MAC, B, 60), 20);
    sw.input(p1, &frame(BROADCAST_MAC, C, 60), 30);
    // C is not learned (nothing is pushed out), yet its frames get through.
    assert_eq!(sw.mac_table().count(), 2);
    assert_eq!(sw.lookup(&A, 30), Some(p0));
    assert_eq!(sw.lookup(&C, 30), None);
    assert_eq!(sw.stats().not_learned, 1);
    assert_eq!(sw.port_stats(p1).unwrap().not_learned, 1);
    assert_eq!(
        sw.input(p0, &frame(C, A, 60), 40),
        Delivery::Flooded { queued: 1 }
    );
    // Once A ages out, C is learned in its place.
    sw.input(p0, &frame(BROADCAST_MAC, B, 60), 1015);
    sw.input(p1, &frame(BROADCAST_MAC, C, 60), 1040);
    assert_eq!(sw.lookup(&C, 1040), Some(p1));
    assert_eq!(sw.lookup(&A, 1040), None);
    assert_eq!(sw.stats().aged_out, 1);
    assert_eq!(sw.learned_macs(p0) + sw.learned_macs(p1), 2);
}

/// A small deterministic generator (xorshift64*).
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn a_random_mac_flood_is_bounded_to_its_port() {
    let mut sw = Switch::new(SwitchConfig {
        max_mac_entries: 64,
        ..SwitchConfig::default()
    });
    let bounded = PortConfig {
        max_learned: 16,
        ..PortConfig::standard()
    };
    let flooder = sw.add_port(bounded);
    let p1 = sw.add_port(bounded);
    let p2 = sw.add_port(bounded);
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    sw.input(p2, &frame(BROADCAST_MAC, C, 60), 0);
    let mut seed = 0x1234_5678_9abc_def0;
    for t in 0..20_000u64 {
        let r = rng(&mut seed).to_be_bytes();
        // Any unicast source, some of them the others' MACs.
        let mut src = [r[0] & 0xfe, r[1], r[2], r[3], r[4], r[5]];
        if t % 1000 == 0 {
            src = B;
        }
        sw.input(flooder, &frame(BROADCAST_MAC, src, 60), t / 10);
        sw.drain(p1).for_each(drop);
        sw.drain(p2).for_each(drop);
    }
    assert!(sw.learned_macs(flooder) <= 16);
    assert!(sw.mac_table().count() <= 64);
    assert!(sw.port_stats(flooder).unwrap().not_learned > 19_000);
    // The flood took B (a station move: B's port is unfiltered), but never C,
    // whose entry is still there.
    assert_eq!(sw.lookup(&C, 2000), Some(p2));
    assert_eq!(sw.input(p1, &frame(C, B, 60), 2000), Delivery::Unicast(p2));
    // Ageing makes room again (B was just seen).
    assert!(sw.expire(1999 + DEFAULT_AGEING_MS) > 0);
    let left: Vec<_> = sw.mac_table().map(|e| (e.mac, e.port)).collect();
    assert_eq!(left, vec![(B, p1)]);
    assert_eq!(sw.learned_macs(flooder), 0);
    sw.input(
        flooder,
        &frame(BROADCAST_MAC, A, 60),
        2000 + DEFAULT_AGEING_MS,
    );
    assert_eq!(sw.lookup(&A, 2000 + DEFAULT_AGEING_MS), Some(flooder));
}

const MAC1: MacAddr = [0x00, 0x16, 0x3e, 0, 1, 0];
const MAC2: MacAddr = [0x00, 0x16, 0x3e, 0, 2, 0];
const PEER: MacAddr = [0x02, 0, 0, 0, 0, 0x99];

/// The peer on port 0 and two vifs with their own MACs (vif 2 with `ip`).
fn vifs(ip: Option<Vec<Ipv4Net>>) -> (Switch, PortId, PortId, PortId) {
    let (mut sw, peer, v1, v2) = sw3();
    assert!(sw.set_source_filter(v1, Some(SourceFilter::mac_only(MAC1))));
    let f2 = SourceFilter {
        mac: MAC2,
        ipv4: ip,
    };
    assert!(sw.set_source_filter(v2, Some(f2)));
    (sw, peer, v1, v2)
}

fn ipv4_frame(dst: MacAddr, src: MacAddr, ip_src: [u8; 4]) -> Vec<u8> {
    let mut f = frame(dst, src, 14 + 40);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[23] = 6;
    f[26..30].copy_from_slice(&ip_src);
    f
}

#[test]
fn a_vif_sends_only_from_its_own_mac() {
    let (mut sw, peer, v1, v2) = vifs(None);
    // Pinned: known before either vif said a word, and never aged.
    assert_eq!(sw.lookup(&MAC1, u64::MAX), Some(v1));
    assert_eq!(
        sw.input(peer, &frame(MAC2, PEER, 60), 0),
        Delivery::Unicast(v2)
    );
    assert_eq!(
        sw.input(v1, &frame(PEER, MAC1, 60), 1),
        Delivery::Unicast(peer)
    );
    // Vif 1 takes vif 2's MAC, or a made-up one: dropped, nothing learned.
    for src in [MAC2, A, [0; 6]] {
        assert_eq!(
            sw.input(v1, &frame(BROADCAST_MAC, src, 60), 2),
            Delivery::Dropped(DropReason::Spoofed(Spoof::Mac))
        );
    }
    assert_eq!(sw.port_stats(v1).unwrap().rx_dropped_spoofed, 3);
    assert_eq!(sw.lookup(&A, 2), None);
    // The victim still gets its traffic, and only the victim.
    sw.drain(v2).for_each(drop);
    sw.drain(v1).for_each(drop);
    assert_eq!(
        sw.input(peer, &frame(MAC2, PEER, 60), 3),
        Delivery::Unicast(v2)
    );
    assert_eq!(sw.queued_frames(v1), 0);
    // Nor can an unfiltered port (the peer, an uplink) claim a vif's MAC.
    assert_eq!(
        sw.input(peer, &frame(BROADCAST_MAC, MAC1, 60), 4),
        Delivery::Dropped(DropReason::Spoofed(Spoof::Mac))
    );
    assert_eq!(sw.port_stats(peer).unwrap().rx_dropped_spoofed, 1);
    assert_eq!(sw.lookup(&MAC1, 4), Some(v1));
    // Group sources stay what they were: bad.
    assert_eq!(
        sw.input(v1, &frame(BROADCAST_MAC, MCAST, 60), 5),
        Delivery::Dropped(DropReason::BadSource)
    );
    assert!(sw.mac_table().all(|e| e.pinned || e.mac == PEER));
}

#[test]
fn ip_rules_apply_on_the_switch() {
    let nets = vec![Ipv4Net::host([10, 0, 0, 3])];
    let (mut sw, peer, v1, v2) = vifs(Some(nets));
    assert_eq!(
        sw.input(v2, &ipv4_frame(PEER, MAC2, [10, 0, 0, 3]), 0),
        Delivery::Flooded { queued: 2 }
    );
    assert_eq!(
        sw.input(v2, &ipv4_frame(PEER, MAC2, [10, 0, 0, 2]), 0),
        Delivery::Dropped(DropReason::Spoofed(Spoof::Ip))
    );
    // Vif 1 has no ip=: any address.
    assert_eq!(
        sw.input(v1, &ipv4_frame(PEER, MAC1, [10, 0, 0, 3]), 0),
        Delivery::Flooded { queued: 2 }
    );
    assert_eq!(sw.port_stats(v2).unwrap().rx_dropped_spoofed, 1);
    assert_eq!(sw.port_stats(v2).unwrap().rx_frames, 1);
    assert_eq!(sw.port_stats(peer).unwrap().rx_dropped_spoofed, 0);
}

#[test]
fn source_filters_come_and_go() {
    let (mut sw, peer, v1, v2) = vifs(None);
    // A learned MAC is taken over by the port pinning it.
    sw.input(peer, &frame(BROADCAST_MAC, A, 60), 0);
    assert_eq!(sw.learned_macs(peer), 1);
    assert!(sw.set_source_filter(v1, Some(SourceFilter::mac_only(A))));
    assert_eq!(sw.learned_macs(peer), 0);
    assert_eq!(sw.lookup(&A, 0), Some(v1));
    // The old MAC is unpinned: unknown, and learnable elsewhere.
    assert_eq!(sw.lookup(&MAC1, 0), None);
    // Another port's pinned MAC, a group MAC, a missing port: refused.
    assert!(!sw.set_source_filter(v1, Some(SourceFilter::mac_only(MAC2))));
    assert!(!sw.set_source_filter(v1, Some(SourceFilter::mac_only(MCAST))));
    assert!(!sw.set_source_filter(PortId(99), None));
    assert_eq!(sw.source_filter(v1), Some(&SourceFilter::mac_only(A)));
    // Cleared: the port is trusted again and its MAC forgotten.
    assert!(sw.set_source_filter(v1, None));
    assert_eq!(sw.lookup(&A, 0), None);
    assert_eq!(
        sw.input(v1, &frame(BROADCAST_MAC, C, 60), 1),
        Delivery::Flooded { queued: 2 }
    );
    // Flushing keeps pins; removing the port drops its pin.
    sw.flush_mac_table();
    assert_eq!(sw.lookup(&MAC2, 1), Some(v2));
    assert_eq!(sw.expire(u64::MAX), 0);
    sw.remove_port(v2);
    assert_eq!(sw.lookup(&MAC2, 1), None);
    assert_eq!(sw.mac_table().count(), 0);
}

#[test]
fn queue_overflow_drops_and_counts() {
    let mut sw = Switch::default();
    let p0 = sw.add_port(PortConfig::standard());
    let p1 = sw.add_port(PortConfig {
        queue_frames: 3,
        queue_bytes: 1 << 20,
        max_frame_len: STANDARD_FRAME_LEN,
        max_learned: DEFAULT_MAX_LEARNED,
    });
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    for _ in 0..3 {
        assert_eq!(sw.input(p0, &frame(B, A, 60), 0), Delivery::Unicast(p1));
    }
    assert_eq!(
        sw.input(p0, &frame(B, A, 60), 0),
        Delivery::Dropped(DropReason::QueueFull)
    );
    // A full port does not stop a flood from reaching the others.
    let p2 = sw.add_port(PortConfig::standard());
    assert_eq!(
        sw.input(p0, &frame(BROADCAST_MAC, A, 60), 0),
        Delivery::Flooded { queued: 1 }
    );
    let st = sw.port_stats(p1).unwrap();
    assert_eq!(st.tx_frames, 3);
    assert_eq!(st.tx_bytes, 180);
    assert_eq!(st.tx_dropped_queue_full, 2);
    assert_eq!(sw.queued_frames(p2), 1);
    // Draining makes room again.
    assert!(sw.take_output(p1).is_some());
    assert_eq!(sw.input(p0, &frame(B, A, 60), 0), Delivery::Unicast(p1));

    // The byte bound.
    let mut sw = Switch::default();
    let p0 = sw.add_port(PortConfig::standard());
    let p1 = sw.add_port(PortConfig {
        queue_frames: 100,
        queue_bytes: 2500,
        max_frame_len: STANDARD_FRAME_LEN,
        max_learned: DEFAULT_MAX_LEARNED,
    });
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    assert_eq!(sw.input(p0, &frame(B, A, 1000), 0), Delivery::Unicast(p1));
    assert_eq!(sw.input(p0, &frame(B, A, 1000), 0), Delivery::Unicast(p1));
    assert_eq!(
        sw.input(p0, &frame(B, A, 1000), 0),
        Delivery::Dropped(DropReason::QueueFull)
    );
    assert_eq!(sw.input(p0, &frame(B, A, 500), 0), Delivery::Unicast(p1));
    assert_eq!(sw.queued_bytes(p1), 2500);
    assert_eq!(sw.peek_output(p1).map(<[u8]>::len), Some(1000));
    let drained: Vec<usize> = sw.drain(p1).map(|f| f.len()).collect();
    assert_eq!(drained, vec![1000, 1000, 500]);
    assert_eq!(sw.queued_bytes(p1), 0);
    // An empty queue takes even a frame longer than its byte bound.
    let mut sw = Switch::default();
    let p0 = sw.add_port(PortConfig::standard());
    let p1 = sw.add_port(PortConfig {
        queue_bytes: 10,
        ..PortConfig::standard()
    });
    assert_eq!(
        sw.input(p0, &frame(B, A, 60), 0),
        Delivery::Flooded { queued: 1 }
    );
    assert_eq!(sw.queued_frames(p1), 1);
}

#[test]
fn bad_sizes_are_dropped_at_ingress() {
    let (mut sw, p0, p1, _) = sw3();
    for len in [0, 1, 13] {
        let f = vec![0xffu8; len];
        assert_eq!(sw.input(p0, &f, 0), Delivery::Dropped(DropReason::BadSize));
    }
    let f = frame(B, A, MAX_FRAME_LEN + 1);
    assert_eq!(sw.input(p0, &f, 0), Delivery::Dropped(DropReason::BadSize));
    assert_eq!(sw.port_stats(p0).unwrap().rx_dropped_bad_size, 4);
    assert_eq!(sw.port_stats(p0).unwrap().rx_frames, 0);
    assert_eq!(sw.stats().dropped, 4);
    // A bare header is a frame.
    assert_eq!(
        sw.input(p0, &frame(B, A, MIN_FRAME_LEN), 0),
        Delivery::Flooded { queued: 2 }
    );
    assert_eq!(sw.take_output(p1).unwrap().len(), 14);
}

#[test]
fn large_frames_only_reach_ports_that_take_them() {
    let mut sw = Switch::default();
    let p0 = sw.add_port(PortConfig::large());
    let std_port = sw.add_port(PortConfig::standard());
    let big_port = sw.add_port(PortConfig::large());
    let f = frame(C, A, STANDARD_FRAME_LEN);
    assert_eq!(sw.input(p0, &f, 0), Delivery::Flooded { queued: 2 });
    let f = frame(C, A, STANDARD_FRAME_LEN + 1);
    assert_eq!(sw.input(p0, &f, 0), Delivery::Flooded { queued: 1 });
    let f = frame(C, A, MAX_FRAME_LEN);
    assert_eq!(sw.input(p0, &f, 0), Delivery::Flooded { queued: 1 });
    assert_eq!(sw.port_stats(std_port).unwrap().tx_dropped_too_big, 2);
    assert_eq!(sw.queued_frames(std_port), 1);
    assert_eq!(sw.queued_frames(big_port), 3);
    // Unicast to a standard port.
    sw.input(std_port, &frame(A, B, 60), 0);
    assert_eq!(
        sw.input(p0, &frame(B, A, 9000), 0),
        Delivery::Dropped(DropReason::TooBig)
    );
    // max_frame_len is clamped to what the switch handles.
    let p = sw.add_port(PortConfig {
        max_frame_len: 1 << 20,
        ..PortConfig::standard()
    });
    assert_eq!(sw.port_config(p).unwrap().max_frame_len, MAX_FRAME_LEN);
}

#[test]
fn bad_sources_and_link_local_destinations_are_dropped() {
    let (mut sw, p0, p1, _) = sw3();
    assert_eq!(
        sw.input(p0, &frame(B, MCAST, 60), 0),
        Delivery::Dropped(DropReason::BadSource)
    );
    assert_eq!(
        sw.input(p0, &frame(B, BROADCAST_MAC, 60), 0),
        Delivery::Dropped(DropReason::BadSource)
    );
    let stp = [0x01, 0x80, 0xc2, 0, 0, 0];
    let lldp = [0x01, 0x80, 0xc2, 0, 0, 0x0e];
    assert_eq!(
        sw.input(p0, &frame(stp, A, 60), 0),
        Delivery::Dropped(DropReason::LinkLocal)
    );
    assert_eq!(
        sw.input(p0, &frame(lldp, A, 60), 0),
        Delivery::Dropped(DropReason::LinkLocal)
    );
    assert!(!is_link_local_mac(&[0x01, 0x80, 0xc2, 0, 0, 0x10]));
    let st = sw.port_stats(p0).unwrap();
    assert_eq!(st.rx_dropped_bad_source, 2);
    assert_eq!(st.rx_dropped_link_local, 2);
    assert_eq!(sw.queued_frames(p1), 0);
    assert_eq!(sw.mac_table().count(), 0);
    // An all-zero source is forwarded but not learned.
    assert_eq!(
        sw.input(p0, &frame(B, [0; 6], 60), 0),
        Delivery::Flooded { queued: 2 }
    );
    assert_eq!(sw.mac_table().count(), 0);
}

#[test]
fn removed_ports_are_forgotten_and_ids_not_reused() {
    let (mut sw, p0, p1, p2) = sw3();
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    sw.input(p0, &frame(B, A, 60), 0);
    let st = sw.remove_port(p1).unwrap();
    assert_eq!(st.rx_frames, 1);
    assert_eq!(st.tx_frames, 1);
    assert_eq!(sw.remove_port(p1), None);
    assert_eq!(sw.lookup(&B, 0), None);
    assert_eq!(
        sw.input(p1, &frame(A, B, 60), 0),
        Delivery::Dropped(DropReason::NoSuchPort)
    );
    assert_eq!(sw.take_output(p1), None);
    assert_eq!(sw.drain(p1).count(), 0);
    let p3 = sw.add_port(PortConfig::standard());
    assert!(p3 > p2 && p3 != p1);
    assert_eq!(p3.index(), 3);
    assert_eq!(alloc::format!("{p3}"), "port3");
    // B is unknown again: flooded to the live ports.
    assert_eq!(
        sw.input(p0, &frame(B, A, 60), 0),
        Delivery::Flooded { queued: 2 }
    );
}

#[test]
fn ports_that_are_down_take_nothing() {
    let (mut sw, p0, p1, p2) = sw3();
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    sw.input(p0, &frame(B, A, 60), 0);
    assert!(sw.set_port_up(p1, false));
    assert!(!sw.is_port_up(p1));
    assert_eq!(sw.queued_frames(p1), 0);
    assert_eq!(sw.lookup(&B, 0), None);
    assert_eq!(
        sw.input(p1, &frame(A, B, 60), 0),
        Delivery::Dropped(DropReason::PortDown)
    );
    assert_eq!(sw.port_stats(p1).unwrap().rx_dropped_port_down, 1);
    assert_eq!(
        sw.input(p0, &frame(BROADCAST_MAC, A, 60), 0),
        Delivery::Flooded { queued: 1 }
    );
    assert_eq!(sw.queued_frames(p1), 0);
    assert!(sw.queued_frames(p2) > 0);
    assert!(sw.set_port_up(p1, true));
    assert_eq!(
        sw.input(p0, &frame(BROADCAST_MAC, A, 60), 0),
        Delivery::Flooded { queued: 2 }
    );
    assert!(!sw.set_port_up(PortId(99), true));
}

#[test]
fn drain_dropped_early_discards_the_rest() {
    let (mut sw, p0, p1, _) = sw3();
    for i in 0..5 {
        sw.input(p0, &frame(B, A, 60 + i), 0);
    }
    let first = sw.drain(p1).next().unwrap();
    assert_eq!(first.len(), 60);
    assert_eq!(sw.queued_frames(p1), 0);
    assert_eq!(sw.queued_bytes(p1), 0);
    assert_eq!(sw.peek_output(p1), None);
}

fn pool(small: usize) -> Pool {
    Pool::new(PoolConfig {
        small,
        small_len: 2048,
        large: 1,
        large_len: MAX_FRAME_LEN,
    })
}

#[test]
fn packets_keep_their_buffer_and_tag() {
    let (mut sw, p0, p1, _) = sw3();
    sw.input(p1, &frame(BROADCAST_MAC, B, 60), 0);
    sw.drain(p0).for_each(drop);
    let pool = pool(4);
    let f = frame(B, A, 100);
    let buf = pool.take_copy(&f).unwrap();
    assert_eq!(
        sw.input_packet(p0, Packet::new(buf, 0xABCD), 1),
        Delivery::Unicast(p1)
    );
    assert_eq!(sw.peek_packet(p1).map(|p| p.tag), Some(0xABCD));
    let got = sw.take_packet(p1).unwrap();
    assert!(got.data.is_pooled() && got.data == f && got.tag == 0xABCD);
    assert_eq!(pool.stats().small_free, 3, "queued as it is, no copy");
    drop(got);
    assert_eq!(pool.stats().small_free, 4);
    // The byte-only calls see a copy; the buffer goes back.
    sw.input_packet(p0, Packet::new(pool.take_copy(&f).unwrap(), 1), 1);
    assert_eq!(sw.take_output(p1).unwrap(), f);
    assert_eq!(pool.stats().small_free, 4);
    // Frames the switch drops give their buffer back: a full queue, a port
    // taken down, a port removed.
    let mut sw = Switch::default();
    let p0 = sw.add_port(PortConfig::standard());
    let p1 = sw.add_port(PortConfig {
        queue_frames: 2,
        ..PortConfig::standard()
    });
    for _ in 0..3 {
        sw.input_packet(p0, Packet::new(pool.take_copy(&f).unwrap(), 0), 0);
    }
    assert_eq!(sw.queued_frames(p1), 2);
    assert_eq!(pool.stats().small_free, 2);
    sw.set_port_up(p1, false);
    assert_eq!(pool.stats().small_free, 4);
    sw.set_port_up(p1, true);
    sw.input_packet(p0, Packet::new(pool.take_copy(&f).unwrap(), 0), 0);
    sw.remove_port(p1);
    assert_eq!(pool.stats().small_free, 4);
}

#[test]
fn floods_are_copies_from_the_senders_pool() {
    let (mut sw, p0, p1, p2) = sw3();
    let p3 = sw.add_port(PortConfig::standard());
    let pool = pool(3);
    let f = frame(BROADCAST_MAC, A, 60);
    let d = sw.input_packet(p0, Packet::new(pool.take_copy(&f).unwrap(), 5), 0);
    assert_eq!(d, Delivery::Flooded { queued: 3 });
    // The original and two copies: the pool is empty now.
    assert_eq!(pool.stats().small_free, 0);
    for p in [p1, p2, p3] {
        let got = sw.take_packet(p).unwrap();
        assert!(got.data.is_pooled() && got.data == f && got.tag == 5);
    }
    assert_eq!(pool.stats().small_free, 3);
    // A pool with no buffer for a copy: those ports miss the frame, the last
    // one still gets the original.
    let held: Vec<Buf> = (0..2).map(|_| pool.take(60).unwrap()).collect();
    let d = sw.input_packet(p0, Packet::new(pool.take_copy(&f).unwrap(), 5), 0);
    assert_eq!(d, Delivery::Flooded { queued: 1 });
    assert_eq!(queued(&sw), vec![(p0, 0), (p1, 0), (p2, 0), (p3, 1)]);
    assert_eq!(sw.port_stats(p1).unwrap().tx_dropped_no_buffer, 1);
    assert_eq!(sw.port_stats(p2).unwrap().tx_dropped_no_buffer, 1);
    drop(held);
    // Heap frames are copied on the heap.
    sw.input_vec(p0, f.clone(), 0);
    assert_eq!(sw.take_packet(p1).unwrap().tag, 0);
}
