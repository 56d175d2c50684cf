//! Every guest is hostile: vifs on the switch as the kernel plugs them, each
//! port admitting only its backend directory's `mac` (and `ip=`); a guest
//! that takes another's MAC or address loses those frames, and the victim
//! keeps its traffic.

mod common;

use common::*;
use guest_abi::netif as nf;
use netback::{Frame, VifConfig};
use netswitch::{
    Delivery, DropReason, Ipv4Net, PortConfig, PortId, SourceFilter, Spoof, Switch,
    DEFAULT_PEER_MAC,
};

const CSUM: u16 = nf::NETTXF_CSUM_BLANK | nf::NETTXF_DATA_VALIDATED;

/// Two connected vifs on a switch with the peer's port; vif 1 with `ip`.
struct Net {
    w: World,
    sw: Switch,
    peer: PortId,
    ports: [PortId; 2],
    macs: [[u8; 6]; 2],
}

impl Net {
    fn new(ip: Option<Vec<Ipv4Net>>) -> Net {
        let mut w = World::new(2, 2, VifConfig::new(2));
        let mut sw = Switch::default();
        let peer = sw.add_port(PortConfig::large());
        let mut ports = [peer; 2];
        let mut macs = [[0; 6]; 2];
        for i in 0..2 {
            w.connect(i, &FrontOpts::default());
            w.post_rx(i, 0, 16);
            w.push_rx(i, 0);
            // What the kernel does: the MAC the toolstack wrote for the frontend.
            let path = format!("{}/mac", w.vifs[i].backend_path());
            let text = w.xs.read(&path).unwrap();
            macs[i] = parse_mac(&text);
            ports[i] = sw.add_port(PortConfig::large());
            let ipv4 = if i == 1 { ip.clone() } else { None };
            let filter = SourceFilter { mac: macs[i], ipv4 };
            assert!(sw.set_source_filter(ports[i], Some(filter)));
        }
        assert!(w.errors.is_empty(), "{:?}", w.errors);
        Net {
            w,
            sw,
            peer,
            ports,
            macs,
        }
    }

    /// Vif `i`'s guest sends `pkt`: what the switch did with it.
    fn send(&mut self, i: usize, pkt: &[u8]) -> Delivery {
        self.w.queue_tx(i, 0, pkt, CSUM, None, 4096, 0);
        self.w.push_tx(i, 0);
        let f = self.w.frames[i].pop().expect("netback took the packet");
        self.sw.input_packet(self.ports[i], f.into_packet(), 0)
    }

    /// What reached vif `i`'s guest.
    fn received(&mut self, i: usize) -> Vec<Vec<u8>> {
        let (sw, port) = (&mut self.sw, self.ports[i]);
        let batch = std::iter::from_fn(|| sw.take_packet(port)).map(Frame::from_packet);
        let r = self.w.vifs[i].deliver_rx_batch(&mut self.w.dom, &mut self.w.host, batch);
        self.w.after(i, r);
        self.w.rx_frames(i, 0).into_iter().map(|r| r.data).collect()
    }

    fn spoofed(&self, port: PortId) -> u64 {
        self.sw.port_stats(port).unwrap().rx_dropped_spoofed
    }
}

/// `aa:bb:cc:dd:ee:ff`.
fn parse_mac(text: &[u8]) -> [u8; 6] {
    let text = std::str::from_utf8(text).unwrap();
    let bytes: Vec<u8> = text
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// A TCP/IPv4 frame from `src` (IPv4 `ip_src`) to `dst`.
fn frame(dst: [u8; 6], src: [u8; 6], ip_src: [u8; 4]) -> Vec<u8> {
    let mut f = tcp4(1, b"hello");
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[26..30].copy_from_slice(&ip_src);
    f
}

#[test]
fn a_guest_cannot_take_another_guests_mac() {
    let mut n = Net::new(None);
    let [m0, m1] = n.macs;
    // Its own MAC passes, unicast to where the victim is pinned.
    let hello = frame(m1, m0, [10, 0, 0, 2]);
    assert_eq!(n.send(0, &hello), Delivery::Unicast(n.ports[1]));
    assert_eq!(n.received(1), vec![hello]);
    // The victim's MAC, or one made up: dropped, counted, nothing learned.
    for src in [m1, [0x02, 0, 0, 0, 0, 7]] {
        let spoof = frame(DEFAULT_PEER_MAC, src, [10, 0, 0, 3]);
        assert_eq!(
            n.send(0, &spoof),
            Delivery::Dropped(DropReason::Spoofed(Spoof::Mac))
        );
    }
    assert_eq!(n.spoofed(n.ports[0]), 2);
    assert_eq!(n.sw.lookup(&m1, 0), Some(n.ports[1]));
    // The victim still gets what is sent to it, and the attacker none of it.
    let reply = frame(m1, DEFAULT_PEER_MAC, [10, 0, 0, 1]);
    assert_eq!(n.sw.input(n.peer, &reply, 1), Delivery::Unicast(n.ports[1]));
    assert_eq!(n.received(1), vec![reply]);
    assert!(n.received(0).is_empty());
    assert!(n.w.vifs[0].is_connected() && n.w.vifs[1].is_connected());
}

#[test]
fn a_guest_with_ip_sends_only_from_its_addresses() {
    let mut n = Net::new(Some(vec![Ipv4Net::host([10, 0, 0, 3])]));
    let [m0, m1] = n.macs;
    let own = frame(m0, m1, [10, 0, 0, 3]);
    assert_eq!(n.send(1, &own), Delivery::Unicast(n.ports[0]));
    let forged = frame(m0, m1, [10, 0, 0, 2]);
    assert_eq!(
        n.send(1, &forged),
        Delivery::Dropped(DropReason::Spoofed(Spoof::Ip))
    );
    assert_eq!(n.received(0), vec![own]);
    assert_eq!(n.spoofed(n.ports[1]), 1);
    // Vif 0 has no ip=: any address.
    assert_eq!(
        n.send(0, &frame(m1, m0, [172, 16, 0, 1])),
        Delivery::Unicast(n.ports[1])
    );
}
