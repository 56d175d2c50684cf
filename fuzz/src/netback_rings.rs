//! `netback_rings`: netback's TX and RX ring consumers facing a hostile netfront.
//!
//! The world is netback's own test frontend (`netback/tests/common`, included as it is): a
//! domain with two vifs on one store. Vif 1's frontend behaves; vif 0's is
//! driven by the input, a program of what a guest can do to its vif: connect with any queue
//! count and features and any xenstore keys; put TX slots in its rings (well-formed packets,
//! requests with any grant, offset, flags, id and size, extra-info slots, raw bytes) and RX
//! requests with any id and grant; set `req_prod`, `req_event` or `rsp_event` to anything,
//! or write anything on the shared ring pages; rewrite grant entries (ring pages included)
//! while the backend uses them; kick, or not; close its event channels; change its xenbus
//! state (reconnect, close, nonsense). The host side delivers frames of every shape (GSO,
//! checksum states, sizes up to 64 KiB) to it, loops its frames back, lets time pass (RX
//! expiry) and frees or keeps the pool buffers its frames hold.
//!
//! Checked besides "no panic, no endless loop": every error is vif 0's, and leaves it
//! `Closing` and serviceable; vif 1 (connected in a quarter of the inputs) stays connected and
//! carries a frame each way at the end;
//! frames handed on are 14 to 65535 bytes; no grant stays in use after detaching vif 0 (only
//! vif 1's rings), beyond those whose flags the guest wrote itself.

#[path = "../../netback/tests/common/mod.rs"]
#[allow(missing_docs, unused_imports, clippy::all)]
mod common;

use alloc::vec::Vec;

use common::*;
use guest_abi::grant_table::{GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING};
use guest_abi::netif as nf;
use netback::{Checksum, Frame, Gso, GsoKind, PoolConfig, VifConfig, XenbusState};

use crate::Input;

/// Actions per input at most.
const MAX_STEPS: usize = 120;
/// Connections of vif 0 per input at most (each takes two ring pages per queue).
const MAX_CONNECTS: u32 = 3;

/// Vif 0's frontend keys in the template store ([`store`]): the flat layout netfront writes
/// for one queue, with values that read as the key's absence would (no feature, one queue,
/// no ring or port, no rx-copy: the connect that follows writes the real ones). The split
/// `event-channel-tx`/`-rx` are not there: their presence alone means split channels.
const NEUTRAL_KEYS: &[(&str, &str)] = &[
    ("tx-ring-ref", "0"),
    ("rx-ring-ref", "0"),
    ("event-channel", "0"),
    ("multi-queue-num-queues", "1"),
    ("request-rx-copy", "0"),
    ("feature-rx-notify", "0"),
    ("feature-sg", "0"),
    ("feature-gso-tcpv4", "0"),
    ("feature-gso-tcpv6", "0"),
    ("feature-no-csum-offload", "0"),
    ("feature-ipv6-csum-offload", "0"),
];

/// Frontend keys a hostile guest may write (or spoil) before or after connecting.
const KEYS: &[&str] = &[
    "tx-ring-ref",
    "rx-ring-ref",
    "event-channel",
    "event-channel-tx",
    "event-channel-rx",
    "multi-queue-num-queues",
    "request-rx-copy",
    "feature-rx-notify",
    "feature-sg",
    "feature-gso-tcpv4",
    "feature-gso-tcpv6",
    "feature-no-csum-offload",
    "feature-ipv6-csum-offload",
    "queue-0/tx-ring-ref",
    "queue-0/rx-ring-ref",
    "queue-0/event-channel",
    "queue-1/tx-ring-ref",
    "queue-1/event-channel-rx",
    "state",
];

/// Values for those keys.
const VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "16",
    "17",
    "255",
    "4294967295",
    "4294967296",
    "-1",
    "",
    " 1",
    "0x10",
    "x",
];

struct Fuzz {
    w: World,
    /// Data pages holding a valid TCP frame, granted read-only and writable.
    goods: Vec<u32>,
    /// Grant references whose flags the guest wrote itself.
    spoiled: Vec<u32>,
    /// Vif 1 is connected (a quarter of the inputs: it costs a third of an input's time), and
    /// must come out untouched.
    other: bool,
    connects: u32,
    /// Data grant references handed out by posting RX buffers (they are reused round-robin).
    posted: usize,
}

/// A grant reference for a slot. `other_ring` allows vif 1's RX ring page: only where the
/// backend reads it (a TX slot), since a guest that has the backend write into its other
/// vif's ring breaks that vif itself.
fn gref(f: &Fuzz, u: &mut Input<'_>, other_ring: bool) -> u32 {
    let q0 = f.w.fronts[0].first().cloned().unwrap_or_default();
    match u.range(0u8, 9) {
        0..=5 => f.goods[u.range(0, f.goods.len() - 1)],
        6 => q0.tx_ref,
        7 => q0.rx_ref,
        8 if other_ring && f.other => f.w.fronts[1][0].rx_ref,
        _ => u.pick(&[0, 1, 7, 9999, 2047, 2048, u32::MAX]),
    }
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

/// A frame for the guest (or any bytes), with its offload state.
fn frame(u: &mut Input<'_>) -> Frame {
    let len = match u.range(0u8, 3) {
        0 => u.range(0usize, 64),
        1 => u.range(0usize, 1600),
        2 => u.range(1500usize, 9000),
        _ => u.range(0usize, 65_600),
    };
    let sport = u.any();
    let data = match u.range(0u8, 5) {
        0 => tcp4(sport, &payload(len)),
        1 => tcp6(sport, &payload(len)),
        2 => udp4(&payload(len)),
        3 => arp(),
        4 => {
            let mut d = tcp4(sport, &payload(len));
            // A wrong header: damage one byte of it.
            let at = u.range(0usize, 60).min(d.len() - 1);
            d[at] ^= u.any::<u8>() | 1;
            d
        }
        _ => payload(len),
    };
    let gso = u.ratio(1, 3).then(|| Gso {
        kind: if u.ratio(1, 2) {
            GsoKind::TcpV4
        } else {
            GsoKind::TcpV6
        },
        mss: u.pick(&[0, 1, 8, 536, 1448, 1460, 9000, u16::MAX]),
    });
    let csum = u.pick(&[Checksum::None, Checksum::Partial, Checksum::Validated]);
    Frame {
        data: data.into(),
        gso,
        csum,
    }
}

/// The vifs' part of the toolstack's tree (netback reads nothing else).
fn vif_tree(xs: &mut xenstore::Xenstore) {
    let front = [
        xenstore::Perm::new(xenstore::Access::None, DOMID),
        xenstore::Perm::new(xenstore::Access::Read, 0),
    ];
    let back = [
        xenstore::Perm::new(xenstore::Access::None, 0),
        xenstore::Perm::new(xenstore::Access::Read, DOMID),
    ];
    for devid in 0..2 {
        let fe = xenstore::toolstack::vif_frontend_path(DOMID, devid);
        let be = xenstore::toolstack::vif_backend_path(DOMID, devid);
        let mut r = xs.mkdir(&fe).and_then(|()| xs.set_perms(&fe, &front));
        for (k, v) in [
            ("backend", be.as_str()),
            ("backend-id", "0"),
            ("state", "1"),
        ] {
            r = r.and_then(|()| xs.write(&alloc::format!("{fe}/{k}"), v.as_bytes()));
        }
        r = r
            .and_then(|()| xs.mkdir(&be))
            .and_then(|()| xs.set_perms(&be, &back));
        let id = alloc::format!("{DOMID}");
        for (k, v) in [
            ("frontend", fe.as_str()),
            ("frontend-id", &id),
            ("state", "2"),
        ] {
            r = r.and_then(|()| xs.write(&alloc::format!("{be}/{k}"), v.as_bytes()));
        }
        r.expect("vif tree");
    }
}

/// `World::new(2, 2, config)` on store `xs`, with vif 1 connected as netfront connects when
/// `other`. `attach`: run [`netback::Vif::attach`] (not needed on a clone of [`store`], which
/// holds what it writes).
fn world(config: VifConfig, xs: xenstore::Xenstore, attach: bool, other: bool) -> World {
    let (dom, host) = domain(2);
    let mut w = World {
        dom,
        host,
        xs,
        vifs: Vec::new(),
        fronts: alloc::vec![Vec::new(); 2],
        next_ring_gfn: RING_PAGES.start,
        next_data_gfn: DATA_PAGES.start,
        next_ring_ref: RING_REFS.start,
        next_data_ref: DATA_REFS.start,
        frames: alloc::vec![Vec::new(); 2],
        errors: Vec::new(),
        kicks: 0,
    };
    for devid in 0..2 {
        let mut v = netback::Vif::new(DOMID, devid, config);
        if attach {
            v.attach(&mut w.xs).expect("attach");
        }
        w.vifs.push(v);
    }
    w.events();
    if other {
        w.connect(1, &FrontOpts::default());
        assert!(w.errors.is_empty() && w.vifs[1].is_connected());
    }
    w
}

/// The store as [`world`] leaves it, made once: each input starts from a clone, so that
/// creating the nodes (the costly part of xenstore writes) is not paid per input. Writing the
/// same keys again with the same values is what the input's own world then does.
fn store() -> xenstore::Xenstore {
    static TEMPLATE: std::sync::OnceLock<xenstore::Xenstore> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let mut xs = xenstore::Xenstore::default();
            vif_tree(&mut xs);
            let mut xs = world(VifConfig::new(2), xs, true, true).xs;
            // Vif 0's flat keys, with the values that mean what their absence means, so that
            // its frontend's connect (netfront writes them all) only rewrites them.
            let fe = xenstore::toolstack::vif_frontend_path(DOMID, 0);
            for (k, v) in NEUTRAL_KEYS {
                xs.write(&alloc::format!("{fe}/{k}"), v.as_bytes())
                    .expect("neutral key");
            }
            let _ = xs.take_backend_events();
            xs
        })
        .clone()
}

impl Fuzz {
    fn new(u: &mut Input<'_>) -> Fuzz {
        let other = u.ratio(1, 4);
        let mut config = VifConfig::new(2);
        config.pool = PoolConfig {
            small: u.range(1, 32),
            small_len: netback::SMALL_BUF_LEN,
            large: u.range(0, 2),
            large_len: netback::LARGE_BUF_LEN,
        };
        config.rx_queue_frames = u.range(1, 16);
        config.rx_queue_bytes = u.pick(&[1 << 12, 1 << 16, 1 << 20]);
        config.tx_holdoff = u.ratio(1, 4);
        let mut w = world(config, store(), false, other);
        let mut goods = Vec::new();
        for k in 0..4u16 {
            let gfn = w.alloc_page();
            let pkt = tcp4(k, &payload(1500));
            w.write_gpa(gfn * 4096, &pkt);
            w.write_gpa(gfn * 4096 + 2048, &pkt);
            goods.push(w.grant_new(gfn, k % 2 == 0));
        }
        let mut f = Fuzz {
            w,
            goods,
            spoiled: Vec::new(),
            other,
            connects: 0,
            posted: 0,
        };
        f.connect(u);
        f
    }

    /// Vif 0's frontend connects, with its own choices and any keys spoiled.
    fn connect(&mut self, u: &mut Input<'_>) {
        if self.connects >= MAX_CONNECTS {
            return;
        }
        self.connects += 1;
        let o = FrontOpts {
            queues: u.range(1, 3),
            split: u.ratio(1, 2),
            sg: !u.ratio(1, 4),
            gso: !u.ratio(1, 4),
            csum: !u.ratio(1, 4),
            write_num_queues: !u.ratio(1, 4),
        };
        let spoil: Vec<(&str, &str)> = (0..u.range(0u8, 2))
            .map(|_| (u.pick(KEYS), self.value(u)))
            .collect();
        self.w.connect_with(0, &o, |w| {
            let fe = w.fe(0);
            for (k, v) in spoil {
                let _ = w.xs.write(&alloc::format!("{fe}/{k}"), v.as_bytes());
            }
        });
    }

    /// A value for a frontend key. With vif 1 connected, never its ring references (8 and
    /// 9): a guest that gives vif 0 its other vif's rings breaks that vif itself, which is
    /// allowed (as in Xen, the guest owns both), but is no failure of the isolation checked.
    fn value(&self, u: &mut Input<'_>) -> &'static str {
        match u.pick(VALUES) {
            "8" | "9" if self.other => "0",
            v => v,
        }
    }

    fn queue(&self, u: &mut Input<'_>) -> Option<usize> {
        let n = self.w.fronts[0].len();
        (n > 0).then(|| u.range(0, n - 1))
    }

    /// TX slots at `req_prod_pvt`, then some `req_prod`.
    fn tx(&mut self, u: &mut Input<'_>) {
        let Some(q) = self.queue(u) else { return };
        let start = self.w.fronts[0][q].tx_prod;
        let mut written = 0u32;
        for _ in 0..u.range(0u8, 24) {
            match u.range(0u8, 9) {
                // A well-formed packet from a good page, maybe split, maybe with GSO.
                0..=3 => {
                    let r = self.goods[u.range(0, 3)];
                    let gso = u.ratio(1, 3).then(|| (u.range(0u8, 3), u.any::<u16>()));
                    let split = u.ratio(1, 3).then(|| u.range(1u16, 1553));
                    let mut flags =
                        u.pick(&[0, nf::NETTXF_CSUM_BLANK, nf::NETTXF_DATA_VALIDATED, 3]);
                    if gso.is_some() {
                        flags |= nf::NETTXF_EXTRA_INFO;
                    }
                    if split.is_some() {
                        flags |= nf::NETTXF_MORE_DATA;
                    }
                    self.w.put_tx_raw(0, q, req_bytes(r, 0, flags, 1, 1554));
                    written += 1;
                    if let Some((ty, mss)) = gso {
                        self.w.put_tx_gso(0, q, ty, mss, u.ratio(1, 8));
                        written += 1;
                    }
                    if let Some(at) = split {
                        self.w
                            .put_tx_raw(0, q, req_bytes(r, 2048 + at, 0, 2, 1554 - at));
                        written += 1;
                    }
                }
                // A request with anything in it.
                4..=6 => {
                    let g = gref(self, u, true);
                    let offset = match u.range(0u8, 2) {
                        0 => u.range(0u16, 128),
                        1 => u.range(3900u16, 4200),
                        _ => u.any(),
                    };
                    let flags = if u.ratio(3, 4) {
                        u.range(0u16, 15)
                    } else {
                        u.any()
                    };
                    let size = match u.range(0u8, 3) {
                        0 => u.range(0u16, 64),
                        1 => u.range(60u16, 1600),
                        2 => u.range(3000u16, 5000),
                        _ => u.any(),
                    };
                    let id = u.any();
                    self.w
                        .put_tx_raw(0, q, req_bytes(g, offset, flags, id, size));
                    written += 1;
                }
                // An extra-info slot.
                7 => {
                    let mut b = [0u8; 12];
                    b[0] = u.range(0u8, 6);
                    b[1] = u.range(0u8, 1);
                    b[2..4].copy_from_slice(&u.any::<u16>().to_le_bytes());
                    b[4] = u.range(0u8, 4);
                    self.w.put_tx_raw(0, q, b);
                    written += 1;
                }
                // Raw bytes.
                _ => {
                    let mut b = [0u8; 12];
                    let raw = u.bytes(12);
                    b[..raw.len()].copy_from_slice(raw);
                    self.w.put_tx_raw(0, q, b);
                    written += 1;
                }
            }
        }
        let p = match u.range(0u8, 7) {
            0..=4 => start.wrapping_add(written),
            5 => start.wrapping_add(u.range(0, 300)),
            6 => u.any(),
            _ => start.wrapping_add(written).wrapping_sub(1),
        };
        self.w.fronts[0][q].tx_prod = p;
        if u.ratio(3, 4) {
            // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY.
            let _ = self.w.push_tx(0, q);
        } else {
            self.w.set_tx_req_prod(0, q, p);
        }
    }

    /// RX requests, posted as netfront does or with any id and grant.
    fn rx(&mut self, u: &mut Input<'_>) {
        let Some(q) = self.queue(u) else { return };
        if u.ratio(1, 2) {
            let n = u.range(0u32, 20);
            self.posted += n as usize;
            self.w.post_rx(0, q, n);
            let _ = self.w.push_rx(0, q);
            return;
        }
        let start = self.w.fronts[0][q].rx_prod;
        let n = u.range(0u32, 20);
        for i in 0..n {
            let idx = start.wrapping_add(i);
            let mut b = [0u8; 8];
            b[0..2].copy_from_slice(&u.any::<u16>().to_le_bytes());
            b[4..8].copy_from_slice(&gref(self, u, false).to_le_bytes());
            let gpa = self.w.fronts[0][q].rx_gfn * 4096 + 64 + u64::from(idx % 256) * 8;
            self.w.write_gpa(gpa, &b);
        }
        let p = match u.range(0u8, 5) {
            0..=3 => start.wrapping_add(n),
            4 => start.wrapping_add(u.range(0, 300)),
            _ => u.any(),
        };
        self.w.fronts[0][q].rx_prod = p;
        if u.ratio(3, 4) {
            let _ = self.w.push_rx(0, q);
        } else {
            self.w.set_rx_req_prod(0, q, p);
        }
    }

    /// Anything in a shared ring page's header or slots.
    fn scribble(&mut self, u: &mut Input<'_>) {
        let Some(q) = self.queue(u) else { return };
        let fq = &self.w.fronts[0][q];
        let gfn = if u.ratio(1, 2) { fq.tx_gfn } else { fq.rx_gfn };
        let off = match u.range(0u8, 2) {
            0 => u64::from(u.pick(&[0u8, 4, 8, 12])),
            1 => u.range(0u64, 63),
            _ => u.range(0u64, 4095),
        };
        let v: u32 = match u.range(0u8, 2) {
            0 => u.any(),
            1 => u.pick(&[0, 1, 255, 256, 257, u32::MAX]),
            _ => self
                .w
                .u32_at(gfn * 4096 + (off & !3))
                .wrapping_add(u.range(0, 512)),
        };
        let off = off.min(4092);
        self.w.write_gpa(gfn * 4096 + off, &v.to_le_bytes());
    }

    /// The guest rewrites a grant entry (a data page's or a ring's).
    fn grant(&mut self, u: &mut Input<'_>) {
        let r = gref(self, u, false).min(DATA_REFS.end - 1);
        let flags = match u.range(0u8, 3) {
            0 => 0,
            1 => GTF_PERMIT_ACCESS | GTF_READONLY,
            2 => GTF_PERMIT_ACCESS,
            _ => u.any(),
        };
        let domid = if u.ratio(3, 4) { 0 } else { u.any() };
        let frame = match u.range(0u8, 2) {
            0 => self
                .w
                .dom
                .grant_entry(&self.w.host, r)
                .map_or(0, |e| e.frame),
            1 => u.pick(&[0u32, 0x7FF, 0x800, 0xF1000, 0xFEFF8, u32::MAX]),
            _ => u.any(),
        };
        if flags & (GTF_READING | GTF_WRITING) != 0 {
            self.spoiled.push(r);
        }
        self.w.grant(r, flags, domid, frame);
    }

    /// The frontend's xenbus state, or another of its keys.
    fn xenbus(&mut self, u: &mut Input<'_>) {
        match u.range(0u8, 4) {
            0 => self.w.set_fe_state(0, u.range(0, 8)),
            1 => {
                // Reconnect: back to Initialising, then connect again.
                self.w.set_fe_state(0, 1);
                self.connect(u);
            }
            2 => {
                let k = alloc::format!("{}/{}", self.w.fe(0), u.pick(KEYS));
                let _ = self.w.xs.write(&k, self.value(u).as_bytes());
                self.w.events();
            }
            3 => {
                let fe = self.w.fe(0);
                let _ = self.w.xs.rm(&fe);
                self.w.events();
            }
            _ => {
                let _ = self
                    .w
                    .xs
                    .write(&alloc::format!("{}/state", self.w.fe(0)), u.bytes(4));
                self.w.events();
            }
        }
    }

    /// Frames for the guest, one at a time or in a batch.
    fn deliver(&mut self, u: &mut Input<'_>) {
        let n = u.range(1u8, 6);
        let frames: Vec<Frame> = (0..n).map(|_| frame(u)).collect();
        if u.ratio(1, 2) {
            let r = self.w.vifs[0].deliver_rx_batch(&mut self.w.dom, &mut self.w.host, frames);
            self.w.after(0, r);
        } else {
            for f in frames {
                self.w.deliver(0, f);
            }
        }
    }

    /// The guest's own frames: looped back to it, sent to vif 1, kept, or dropped.
    fn frames(&mut self, u: &mut Input<'_>) {
        let frames = core::mem::take(&mut self.w.frames[0]);
        for fr in &frames {
            assert!(
                (14..=65535).contains(&fr.data.len()),
                "a {} byte frame handed on",
                fr.data.len()
            );
        }
        match u.range(0u8, 3) {
            0 => {
                let r = self.w.vifs[0].deliver_rx_batch(&mut self.w.dom, &mut self.w.host, frames);
                self.w.after(0, r);
            }
            1 if self.other => {
                let r = self.w.vifs[1].deliver_rx_batch(&mut self.w.dom, &mut self.w.host, frames);
                self.w.after(1, r);
            }
            2 => self.w.frames[0] = frames,
            _ => drop(frames),
        }
        self.w.service_needed();
    }

    fn step(&mut self, u: &mut Input<'_>) {
        match u.range(0u8, 13) {
            0..=2 => self.tx(u),
            3 | 4 => self.rx(u),
            5 | 6 => self.deliver(u),
            7 => self.scribble(u),
            8 => self.grant(u),
            9 => self.xenbus(u),
            10 => self.frames(u),
            11 => {
                // A kick on one of the vif's ports, or a pass the kernel makes on its own.
                let which = u.range(0u8, 2);
                let r = match which {
                    0 => self.w.vifs[0].service_tx(
                        &mut self.w.dom,
                        &mut self.w.host,
                        &mut self.w.frames[0],
                    ),
                    1 => self.w.vifs[0].service_rx(&mut self.w.dom, &mut self.w.host),
                    _ => self.w.vifs[0].service(
                        &mut self.w.dom,
                        &mut self.w.host,
                        &mut self.w.frames[0],
                    ),
                };
                self.w.after(0, r);
            }
            12 => {
                // Time passes; frames waiting for RX buffers expire.
                let ms = u.pick(&[1u64, 100, 5_000, 10_001, 60_000]);
                self.w.host.tsc += ms * self.w.host.tsc_khz;
                let _ = self.w.vifs[0].rx_expiry(&self.w.host);
                let _ = self.w.vifs[0].expire_rx(&self.w.host);
            }
            _ => {
                // The guest closes one of its ports.
                if let Some(q) = self.queue(u) {
                    let fq = &self.w.fronts[0][q];
                    let port = if u.ratio(1, 2) {
                        fq.tx_port
                    } else {
                        fq.rx_port
                    };
                    let _ = self.w.dom.close_port(&mut self.w.host, port);
                    self.w.service(0);
                }
            }
        }
        self.w.service_needed();
    }

    /// Vif 1 untouched, vif 0 consistent, no grant left in use.
    fn aftermath(&mut self) {
        let w = &mut self.w;
        for e in &w.errors {
            assert!(e.to_string().starts_with("netback: d1 vif0: "), "{e}");
        }
        let state = w.vifs[0].state();
        if !w.errors.is_empty() && state == XenbusState::Closing {
            let mut frames = Vec::new();
            assert!(w.vifs[0]
                .service(&mut w.dom, &mut w.host, &mut frames)
                .is_ok());
            assert!(frames.is_empty());
        }
        w.frames[0].clear();
        if self.other {
            Self::other_alive(w);
        }
        let vif = &mut w.vifs[0];
        vif.detach(&mut w.dom, &mut w.host, &mut w.xs);
        // The references that may have been used (scanning all 2048 costs more than an input).
        let keep = match w.fronts[1].first() {
            Some(q) => alloc::vec![q.tx_ref, q.rx_ref],
            None => Vec::new(),
        };
        let data_end = if self.posted + 16 >= DATA_REFS.len() {
            DATA_REFS.end
        } else {
            w.next_data_ref
        };
        let in_use: Vec<u32> = [0, 1, 7, 2047]
            .into_iter()
            .chain(RING_REFS.start..w.next_ring_ref)
            .chain(DATA_REFS.start..data_end)
            .filter(|r| !keep.contains(r) && !self.spoiled.contains(r))
            .filter(|&r| w.grant_flags(r) & (GTF_READING | GTF_WRITING) != 0)
            .collect();
        assert_eq!(in_use, Vec::<u32>::new(), "grants left in use");
    }

    /// Vif 1 is still connected and carries a frame each way.
    fn other_alive(w: &mut World) {
        // Frames vif 0 sent to vif 1 wait there for buffers never posted: let them expire.
        w.host.tsc += 20_000 * w.host.tsc_khz;
        w.vifs[1].expire_rx(&w.host);
        assert!(w.vifs[1].is_connected(), "vif 1 is {:?}", w.vifs[1].state());
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
        assert_eq!(w.frames[1].len(), n + 1, "vif 1 took no frame");
        w.post_rx(1, 0, 1);
        w.push_rx(1, 0);
        w.deliver(1, Frame::new(arp()));
        let got = w.rx_frames(1, 0);
        assert_eq!(
            got.last().map(|r| r.data.clone()),
            Some(arp()),
            "vif 1 got no frame"
        );
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut u = Input::new(data);
    let mut f = Fuzz::new(&mut u);
    let mut steps = 0;
    while !u.is_empty() && steps < MAX_STEPS {
        steps += 1;
        f.step(&mut u);
    }
    f.aftermath();
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        crate::run_samples(super::run);
    }
}
