//! A guest in memory (the hypercalls crate's FakeHost idea) and a netfront
//! simulator driving a vif through xenstore, grants, rings and ports.
#![allow(dead_code, clippy::too_many_arguments)]

use std::collections::HashMap;

use guest_abi::grant_table::{GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_WRITING};
use guest_abi::netif as nf;
use guest_abi::ring::need_notify;
use hypercalls::evtchn::PortState;
use hypercalls::guest_mem::{read_gpa, write_gpa};
pub use hypercalls::testhost::{test_domain, RAM_MFN_BASE};
use hypercalls::{dispatch, Domain, Host};
use netback::{backend_features, Checksum, Frame, Gso, GsoKind, Vif, VifConfig, VifError};
use xenstore::toolstack::{self, VifSpec};
use xenstore::Xenstore;

pub const ARG: u64 = 0x30_0000;
/// Where the grant table frames are mapped (4 frames: 2048 entries).
pub const GNT_GFN: u64 = 0xF1000;
pub const GNT_FRAMES: u64 = 4;
/// Guest frames for ring pages (never reused).
pub const RING_PAGES: std::ops::Range<u64> = 0x400..0x440;
/// Guest frames for packet and buffer pages (reused round-robin).
pub const DATA_PAGES: std::ops::Range<u64> = 0x440..0x7F0;
/// Grant references for ring pages (never reused).
pub const RING_REFS: std::ops::Range<u32> = 8..64;
/// Grant references for data pages (reused round-robin).
pub const DATA_REFS: std::ops::Range<u32> = 64..(GNT_FRAMES as u32 * 512);
pub const DOMID: u16 = 1;

pub use hypercalls::testhost::FakeHost;

/// A domain with `vcpus` vCPUs, RAM at gfn 0.., identity page tables and four
/// grant frames mapped at [`GNT_GFN`].
pub fn domain(vcpus: u32) -> (Domain, FakeHost) {
    let (mut dom, mut host, ctx) = test_domain(DOMID, vcpus, false);
    for idx in 0..GNT_FRAMES {
        // XENMEM_add_to_physmap(DOMID_SELF, space=grant_table, idx, gpfn).
        let mut a = Vec::new();
        a.extend_from_slice(&0x7FF0u16.to_le_bytes());
        a.extend_from_slice(&0u16.to_le_bytes());
        a.extend_from_slice(&1u32.to_le_bytes());
        a.extend_from_slice(&idx.to_le_bytes());
        a.extend_from_slice(&(GNT_GFN + idx).to_le_bytes());
        write_gpa(&dom.p2m, &mut host, ARG, &a).unwrap();
        let r = dispatch(&mut dom, &mut host, &ctx, 12, [7, ARG, 0, 0, 0]);
        assert_eq!(r, 0, "grant frame {idx}");
    }
    (dom, host)
}

/// One frontend queue as netfront keeps it.
#[derive(Clone, Debug, Default)]
pub struct FrontQueue {
    pub tx_gfn: u64,
    pub rx_gfn: u64,
    pub tx_ref: u32,
    pub rx_ref: u32,
    pub tx_port: u32,
    pub rx_port: u32,
    /// `req_prod_pvt`.
    pub tx_prod: u32,
    pub rx_prod: u32,
    pub tx_rsp_cons: u32,
    pub rx_rsp_cons: u32,
    /// Posted RX buffers by ring slot: (id, gref, gfn).
    pub rx_bufs: HashMap<u32, (u16, u32, u64)>,
    /// TX grants in flight by request id.
    pub tx_inflight: HashMap<u16, Vec<u32>>,
    pub next_id: u16,
}

/// How the frontend connects.
#[derive(Clone, Debug)]
pub struct FrontOpts {
    pub queues: u32,
    pub split: bool,
    pub sg: bool,
    pub gso: bool,
    /// Partial checksums on RX: `feature-ipv6-csum-offload=1` (netfront
    /// writes it) when set, `feature-no-csum-offload=1` when not.
    pub csum: bool,
    /// Write `multi-queue-num-queues` even for one queue (netfront does when
    /// the backend offers multi-queue).
    pub write_num_queues: bool,
}

impl Default for FrontOpts {
    fn default() -> Self {
        FrontOpts {
            queues: 1,
            split: false,
            sg: true,
            gso: true,
            csum: true,
            write_num_queues: true,
        }
    }
}

/// A received frame as netfront reassembles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub data: Vec<u8>,
    pub flags: u16,
    pub gso: Option<(u8, u16)>,
    pub slots: u32,
}

/// The guest, the store, one or more vifs and a netfront per vif.
pub struct World {
    pub dom: Domain,
    pub host: FakeHost,
    pub xs: Xenstore,
    pub vifs: Vec<Vif>,
    pub fronts: Vec<Vec<FrontQueue>>,
    pub next_ring_gfn: u64,
    pub next_data_gfn: u64,
    pub next_ring_ref: u32,
    pub next_data_ref: u32,
    /// Frames the backend handed on, per vif.
    pub frames: Vec<Vec<Frame>>,
    /// Errors the backend returned.
    pub errors: Vec<VifError>,
    /// Kicks the frontend sent (`need_notify` said so).
    pub kicks: u32,
}

impl World {
    /// A domain with `vcpus` vCPUs and `nvifs` vifs, attached, with the
    /// frontends still `Initialising`.
    pub fn new(vcpus: u32, nvifs: u32, config: VifConfig) -> World {
        let (dom, host) = domain(vcpus);
        let mut xs = Xenstore::default();
        let features = backend_features(config.max_queues);
        let features: Vec<(&str, &str)> = features.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let specs: Vec<VifSpec> = (0..nvifs)
            .map(|i| VifSpec::new([0, 0x16, 0x3e, 0, 1, i as u8]))
            .collect();
        let spec = toolstack::DomainSpec {
            domid: DOMID,
            name: "t",
            uuid: None,
            vcpus,
            memory_kib: None,
            store_port: dom.store_port.unwrap(),
            store_gfn: hypercalls::STORE_GFN,
            console_port: dom.console_port.unwrap(),
            console_gfn: hypercalls::CONSOLE_GFN,
            vifs: &specs,
            vif_backend_features: &features,
        };
        toolstack::populate_domain(&mut xs, &spec).unwrap();
        let mut w = World {
            dom,
            host,
            xs,
            vifs: Vec::new(),
            fronts: vec![Vec::new(); nvifs as usize],
            next_ring_gfn: RING_PAGES.start,
            next_data_gfn: DATA_PAGES.start,
            next_ring_ref: RING_REFS.start,
            next_data_ref: DATA_REFS.start,
            frames: vec![Vec::new(); nvifs as usize],
            errors: Vec::new(),
            kicks: 0,
        };
        for devid in 0..nvifs {
            let mut v = Vif::new(DOMID, devid, config);
            v.attach(&mut w.xs).unwrap();
            w.vifs.push(v);
        }
        w.events();
        w
    }

    /// Delivers the pending dom0 watch events to the vifs.
    pub fn events(&mut self) {
        for ev in self.xs.take_backend_events() {
            for v in &mut self.vifs {
                if v.is_my_event(&ev) {
                    if let Err(e) = v.frontend_changed(&mut self.dom, &mut self.host, &mut self.xs)
                    {
                        self.errors.push(e);
                    }
                }
            }
        }
        self.service_needed();
    }

    /// Runs `service` for every vif that asks for it.
    pub fn service_needed(&mut self) {
        for i in 0..self.vifs.len() {
            if self.vifs[i].needs_service() {
                self.service(i);
            }
        }
    }

    /// A kick on vif `i`: `service`, and on error publish the state.
    pub fn service(&mut self, i: usize) {
        let r = self.vifs[i].service(&mut self.dom, &mut self.host, &mut self.frames[i]);
        self.after(i, r);
    }

    pub fn after(&mut self, i: usize, r: Result<(), VifError>) {
        if let Err(e) = r {
            self.errors.push(e);
            self.vifs[i].publish_state(&mut self.xs).unwrap();
            self.events();
        }
    }

    /// Hands a frame to vif `i` for its guest.
    pub fn deliver(&mut self, i: usize, frame: Frame) {
        let r = self.vifs[i].deliver_rx(&mut self.dom, &mut self.host, frame);
        self.after(i, r);
    }

    pub fn fe(&self, i: usize) -> String {
        toolstack::vif_frontend_path(DOMID, i as u32)
    }

    pub fn be_state(&mut self, i: usize) -> String {
        let p = format!("{}/state", toolstack::vif_backend_path(DOMID, i as u32));
        String::from_utf8(self.xs.read(&p).unwrap()).unwrap()
    }

    pub fn set_fe_state(&mut self, i: usize, state: u32) {
        let p = format!("{}/state", self.fe(i));
        self.xs.write(&p, state.to_string().as_bytes()).unwrap();
        self.events();
    }

    pub fn write_gpa(&mut self, gpa: u64, data: &[u8]) {
        write_gpa(&self.dom.p2m, &mut self.host, gpa, data).unwrap();
    }

    pub fn read_gpa(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        read_gpa(&self.dom.p2m, &self.host, gpa, &mut b).unwrap();
        b
    }

    pub fn u32_at(&self, gpa: u64) -> u32 {
        u32::from_le_bytes(self.read_gpa(gpa, 4).try_into().unwrap())
    }

    /// A zeroed page for a ring.
    pub fn alloc_ring_page(&mut self) -> u64 {
        let g = self.next_ring_gfn;
        self.next_ring_gfn += 1;
        assert!(RING_PAGES.contains(&g), "out of ring pages");
        self.write_gpa(g * 4096, &[0; 4096]);
        g
    }

    /// A zeroed page for data (reused round-robin).
    pub fn alloc_page(&mut self) -> u64 {
        let g = self.next_data_gfn;
        self.next_data_gfn += 1;
        if self.next_data_gfn == DATA_PAGES.end {
            self.next_data_gfn = DATA_PAGES.start;
        }
        self.write_gpa(g * 4096, &[0; 4096]);
        g
    }

    /// Writes grant entry `gref`.
    pub fn grant(&mut self, gref: u32, flags: u16, domid: u16, frame: u32) {
        let mut e = [0u8; 8];
        e[0..2].copy_from_slice(&flags.to_le_bytes());
        e[2..4].copy_from_slice(&domid.to_le_bytes());
        e[4..8].copy_from_slice(&frame.to_le_bytes());
        self.write_gpa(GNT_GFN * 4096 + gref as u64 * 8, &e);
    }

    /// Grants data page `gfn` to domain 0 (references reused round-robin).
    pub fn grant_new(&mut self, gfn: u64, readonly: bool) -> u32 {
        let r = self.next_data_ref;
        self.next_data_ref += 1;
        if self.next_data_ref == DATA_REFS.end {
            self.next_data_ref = DATA_REFS.start;
        }
        let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
        self.grant(r, flags, 0, gfn as u32);
        r
    }

    /// Grants ring page `gfn` (writable) to domain 0.
    pub fn grant_ring(&mut self, gfn: u64) -> u32 {
        let r = self.next_ring_ref;
        self.next_ring_ref += 1;
        assert!(RING_REFS.contains(&r), "out of ring refs");
        self.grant(r, GTF_PERMIT_ACCESS, 0, gfn as u32);
        r
    }

    pub fn grant_flags(&self, gref: u32) -> u16 {
        self.dom.grant_entry(&self.host, gref).unwrap().flags
    }

    /// Whether any grant entry has GTF_reading or GTF_writing set, except `but`.
    pub fn grants_in_use(&self, but: &[u32]) -> Vec<u32> {
        (0..DATA_REFS.end)
            .filter(|r| !but.contains(r))
            .filter(|&r| self.grant_flags(r) & (GTF_READING | GTF_WRITING) != 0)
            .collect()
    }

    /// netfront's `xennet_connect`: rings, ports, keys, then `Connected`.
    pub fn connect(&mut self, i: usize, o: &FrontOpts) {
        self.connect_with(i, o, |_| {});
    }

    /// [`World::connect`] with `tamper` run after the keys are written and
    /// before the frontend switches to `Connected`.
    pub fn connect_with(&mut self, i: usize, o: &FrontOpts, tamper: impl FnOnce(&mut World)) {
        let fe = self.fe(i);
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut qs = Vec::new();
        for q in 0..o.queues {
            let tx_gfn = self.alloc_ring_page();
            let rx_gfn = self.alloc_ring_page();
            for g in [tx_gfn, rx_gfn] {
                // SHARED_RING_INIT: req_event = rsp_event = 1.
                self.write_gpa(g * 4096 + 4, &1u32.to_le_bytes());
                self.write_gpa(g * 4096 + 12, &1u32.to_le_bytes());
            }
            let tx_ref = self.grant_ring(tx_gfn);
            let rx_ref = self.grant_ring(rx_gfn);
            let unbound = PortState::Unbound { remote: 0 };
            let tx_port = self.dom.evtchn.alloc(unbound, 0).unwrap();
            let rx_port = if o.split {
                self.dom.evtchn.alloc(unbound, 0).unwrap()
            } else {
                tx_port
            };
            let dir = if o.queues == 1 {
                fe.clone()
            } else {
                format!("{fe}/queue-{q}")
            };
            keys.push((format!("{dir}/tx-ring-ref"), tx_ref.to_string()));
            keys.push((format!("{dir}/rx-ring-ref"), rx_ref.to_string()));
            if o.split {
                keys.push((format!("{dir}/event-channel-tx"), tx_port.to_string()));
                keys.push((format!("{dir}/event-channel-rx"), rx_port.to_string()));
            } else {
                keys.push((format!("{dir}/event-channel"), tx_port.to_string()));
            }
            qs.push(FrontQueue {
                tx_gfn,
                rx_gfn,
                tx_ref,
                rx_ref,
                tx_port,
                rx_port,
                ..Default::default()
            });
        }
        if o.queues > 1 || o.write_num_queues {
            keys.push((format!("{fe}/multi-queue-num-queues"), o.queues.to_string()));
        }
        let b = |v: bool| if v { "1" } else { "0" }.to_string();
        keys.push((format!("{fe}/request-rx-copy"), "1".into()));
        keys.push((format!("{fe}/feature-rx-notify"), "1".into()));
        keys.push((format!("{fe}/feature-sg"), b(o.sg)));
        keys.push((format!("{fe}/feature-gso-tcpv4"), b(o.gso)));
        keys.push((format!("{fe}/feature-gso-tcpv6"), b(o.gso)));
        if o.csum {
            keys.push((format!("{fe}/feature-ipv6-csum-offload"), "1".into()));
        } else {
            keys.push((format!("{fe}/feature-no-csum-offload"), "1".into()));
        }
        for (k, v) in keys {
            self.xs.write(&k, v.as_bytes()).unwrap();
        }
        self.fronts[i] = qs;
        tamper(self);
        self.set_fe_state(i, 4);
    }

    // ---- TX (frontend side) ----

    fn tx_slot_gpa(&self, i: usize, q: usize, idx: u32) -> u64 {
        self.fronts[i][q].tx_gfn * 4096 + 64 + (idx % 256) as u64 * 12
    }

    /// Writes a raw TX slot at `req_prod_pvt` and advances it.
    pub fn put_tx_raw(&mut self, i: usize, q: usize, bytes: [u8; 12]) {
        let idx = self.fronts[i][q].tx_prod;
        let gpa = self.tx_slot_gpa(i, q, idx);
        self.write_gpa(gpa, &bytes);
        self.fronts[i][q].tx_prod = idx.wrapping_add(1);
    }

    pub fn put_tx_req(
        &mut self,
        i: usize,
        q: usize,
        gref: u32,
        offset: u16,
        flags: u16,
        id: u16,
        size: u16,
    ) {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&gref.to_le_bytes());
        b[4..6].copy_from_slice(&offset.to_le_bytes());
        b[6..8].copy_from_slice(&flags.to_le_bytes());
        b[8..10].copy_from_slice(&id.to_le_bytes());
        b[10..12].copy_from_slice(&size.to_le_bytes());
        self.put_tx_raw(i, q, b);
    }

    pub fn put_tx_gso(&mut self, i: usize, q: usize, ty: u8, mss: u16, more: bool) {
        let mut b = [0u8; 12];
        b[0] = nf::XEN_NETIF_EXTRA_TYPE_GSO;
        b[1] = if more {
            nf::XEN_NETIF_EXTRA_FLAG_MORE
        } else {
            0
        };
        b[2..4].copy_from_slice(&mss.to_le_bytes());
        b[4] = ty;
        self.put_tx_raw(i, q, b);
    }

    /// Queues a packet as netfront does: the data in pieces of at most
    /// `piece` bytes, each in its own granted page at `offset`, first slot
    /// carrying the total size, a GSO slot if `gso`. Returns the request ids.
    pub fn queue_tx(
        &mut self,
        i: usize,
        q: usize,
        data: &[u8],
        flags: u16,
        gso: Option<Gso>,
        piece: usize,
        offset: u16,
    ) -> Vec<u16> {
        let pieces: Vec<&[u8]> = data.chunks(piece.max(1)).collect();
        let mut ids = Vec::new();
        for (n, p) in pieces.iter().enumerate() {
            let gfn = self.alloc_page();
            self.write_gpa(gfn * 4096 + offset as u64, p);
            let gref = self.grant_new(gfn, true);
            let id = self.fronts[i][q].next_id;
            self.fronts[i][q].next_id = id.wrapping_add(1) % 256;
            let mut f = if n + 1 < pieces.len() {
                nf::NETTXF_MORE_DATA
            } else {
                0
            };
            let size = if n == 0 {
                f |= flags;
                if gso.is_some() {
                    f |= nf::NETTXF_EXTRA_INFO;
                }
                data.len() as u16
            } else {
                p.len() as u16
            };
            self.put_tx_req(i, q, gref, offset, f, id, size);
            self.fronts[i][q].tx_inflight.insert(id, vec![gref]);
            ids.push(id);
            if n == 0 {
                if let Some(g) = gso {
                    let ty = match g.kind {
                        GsoKind::TcpV4 => nf::XEN_NETIF_GSO_TYPE_TCPV4,
                        GsoKind::TcpV6 => nf::XEN_NETIF_GSO_TYPE_TCPV6,
                    };
                    self.put_tx_gso(i, q, ty, g.mss, false);
                }
            }
        }
        ids
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` on TX; kicks (runs `service`) if
    /// the backend asked. Returns whether it kicked.
    pub fn push_tx(&mut self, i: usize, q: usize) -> bool {
        let g = self.fronts[i][q].tx_gfn * 4096;
        let old = self.u32_at(g);
        let new = self.fronts[i][q].tx_prod;
        self.write_gpa(g, &new.to_le_bytes());
        let kick = need_notify(old, new, self.u32_at(g + 4));
        if kick {
            self.kicks += 1;
            self.service(i);
        }
        kick
    }

    /// Sets the TX `req_prod` to anything (a broken frontend).
    pub fn set_tx_req_prod(&mut self, i: usize, q: usize, v: u32) {
        let g = self.fronts[i][q].tx_gfn * 4096;
        self.write_gpa(g, &v.to_le_bytes());
    }

    /// Reads the TX responses since the last call: (id, status) per slot.
    pub fn tx_responses(&mut self, i: usize, q: usize) -> Vec<(u16, i16)> {
        let g = self.fronts[i][q].tx_gfn * 4096;
        let prod = self.u32_at(g + 8);
        let mut out = Vec::new();
        while self.fronts[i][q].tx_rsp_cons != prod {
            let idx = self.fronts[i][q].tx_rsp_cons;
            let b = self.read_gpa(self.tx_slot_gpa(i, q, idx), 4);
            out.push((
                u16::from_le_bytes([b[0], b[1]]),
                i16::from_le_bytes([b[2], b[3]]),
            ));
            self.fronts[i][q].tx_rsp_cons = idx.wrapping_add(1);
        }
        // RING_FINAL_CHECK_FOR_RESPONSES: event at the next response.
        let cons = self.fronts[i][q].tx_rsp_cons;
        self.write_gpa(g + 12, &cons.wrapping_add(1).to_le_bytes());
        out
    }

    // ---- RX (frontend side) ----

    fn rx_slot_gpa(&self, i: usize, q: usize, idx: u32) -> u64 {
        self.fronts[i][q].rx_gfn * 4096 + 64 + (idx % 256) as u64 * 8
    }

    /// Posts `n` fresh writable buffers (not pushed).
    pub fn post_rx(&mut self, i: usize, q: usize, n: u32) {
        for _ in 0..n {
            let gfn = self.alloc_page();
            let gref = self.grant_new(gfn, false);
            self.post_rx_gref(i, q, gref, gfn);
        }
    }

    pub fn post_rx_gref(&mut self, i: usize, q: usize, gref: u32, gfn: u64) {
        let idx = self.fronts[i][q].rx_prod;
        let id = (idx % 256) as u16;
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&id.to_le_bytes());
        b[4..8].copy_from_slice(&gref.to_le_bytes());
        let gpa = self.rx_slot_gpa(i, q, idx);
        self.write_gpa(gpa, &b);
        self.fronts[i][q].rx_bufs.insert(idx, (id, gref, gfn));
        self.fronts[i][q].rx_prod = idx.wrapping_add(1);
    }

    /// Pushes posted RX requests; kicks if the backend asked. Returns whether it kicked.
    pub fn push_rx(&mut self, i: usize, q: usize) -> bool {
        let g = self.fronts[i][q].rx_gfn * 4096;
        let old = self.u32_at(g);
        let new = self.fronts[i][q].rx_prod;
        self.write_gpa(g, &new.to_le_bytes());
        let kick = need_notify(old, new, self.u32_at(g + 4));
        if kick {
            self.kicks += 1;
            self.service(i);
        }
        kick
    }

    pub fn set_rx_req_prod(&mut self, i: usize, q: usize, v: u32) {
        let g = self.fronts[i][q].rx_gfn * 4096;
        self.write_gpa(g, &v.to_le_bytes());
    }

    pub fn rx_req_event(&self, i: usize, q: usize) -> u32 {
        self.u32_at(self.fronts[i][q].rx_gfn * 4096 + 4)
    }

    /// TX `req_event` of vif 0 queue 0 read through `host`.
    pub fn tx_req_event_raw(&self, host: &FakeHost) -> u32 {
        let hpa = (RAM_MFN_BASE + self.fronts[0][0].tx_gfn) * 4096 + 4;
        let mut b = [0u8; 4];
        host.read_phys(hpa, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn tx_req_event(&self, i: usize, q: usize) -> u32 {
        self.u32_at(self.fronts[i][q].tx_gfn * 4096 + 4)
    }

    /// netfront's `xennet_get_responses`: reassembles the frames answered
    /// since the last call, checking that each response is in the slot of its
    /// request, its id matches, and offset + size fits the page.
    pub fn rx_frames(&mut self, i: usize, q: usize) -> Vec<Received> {
        let g = self.fronts[i][q].rx_gfn * 4096;
        let prod = self.u32_at(g + 8);
        let mut out = Vec::new();
        let rsp = |w: &World, idx: u32| {
            let b = w.read_gpa(w.rx_slot_gpa(i, q, idx), 8);
            (
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
                u16::from_le_bytes([b[4], b[5]]),
                i16::from_le_bytes([b[6], b[7]]),
                b,
            )
        };
        while self.fronts[i][q].rx_rsp_cons != prod {
            let mut cons = self.fronts[i][q].rx_rsp_cons;
            let mut data = Vec::new();
            let mut slots = 0;
            let (_, _, first_flags, _, _) = rsp(self, cons);
            let mut gso = None;
            let mut k = 0;
            loop {
                let (id, off, flags, status, raw) = rsp(self, cons);
                if k == 1 && first_flags & nf::NETRXF_EXTRA_INFO != 0 {
                    assert_eq!(raw[0], nf::XEN_NETIF_EXTRA_TYPE_GSO);
                    gso = Some((raw[4], u16::from_le_bytes([raw[2], raw[3]])));
                    self.fronts[i][q].rx_bufs.remove(&cons);
                    cons = cons.wrapping_add(1);
                    k += 1;
                    continue;
                }
                let (bid, _gref, gfn) = self.fronts[i][q]
                    .rx_bufs
                    .remove(&cons)
                    .expect("response in a slot with a posted request");
                assert_eq!(id, bid, "response id is the request's");
                assert!(status >= 0, "status {status}");
                assert!(off as usize + status as usize <= 4096);
                data.extend(self.read_gpa(gfn * 4096 + off as u64, status as usize));
                slots += 1;
                cons = cons.wrapping_add(1);
                k += 1;
                if flags & nf::NETRXF_MORE_DATA == 0 {
                    break;
                }
                assert_ne!(cons, prod, "more_data on the last response published");
            }
            self.fronts[i][q].rx_rsp_cons = cons;
            out.push(Received {
                data,
                flags: first_flags & !(nf::NETRXF_MORE_DATA | nf::NETRXF_EXTRA_INFO),
                gso,
                slots,
            });
        }
        let cons = self.fronts[i][q].rx_rsp_cons;
        self.write_gpa(g + 12, &cons.wrapping_add(1).to_le_bytes());
        out
    }

    /// Whether `port` is pending; clears it (the guest handled the event).
    pub fn take_event(&mut self, port: u32) -> bool {
        let p = self.dom.port_is_pending(&self.host, port);
        if p {
            let hpa = self.dom.shared_info_mfn * 4096 + 2048 + (port as u64 / 64) * 8;
            let mut b = [0u8; 8];
            self.host.read_phys(hpa, &mut b);
            let v = u64::from_le_bytes(b) & !(1 << (port % 64));
            self.host.write_phys(hpa, &v.to_le_bytes());
        }
        p
    }
}

// ---- frames ----

pub const ETH_P_IP: [u8; 2] = [0x08, 0x00];
pub const ETH_P_IPV6: [u8; 2] = [0x86, 0xDD];

fn ones_sum(data: &[u8]) -> u32 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

fn eth(ty: [u8; 2], src_last: u8) -> Vec<u8> {
    let mut f = vec![0x00, 0x16, 0x3e, 0, 1, 0, 0x00, 0x16, 0x3e, 0, 2, src_last];
    f.extend_from_slice(&ty);
    f
}

/// Ethernet + IPv4 + TCP (ports `sport`→80) with a correct IP header checksum
/// and a zero TCP checksum.
pub fn tcp4(sport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(ETH_P_IP, 1);
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&7u16.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let c = !fold(ones_sum(&ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    f.extend_from_slice(&tcp);
    f.extend_from_slice(payload);
    f
}

/// Ethernet + IPv6 + TCP with a zero TCP checksum.
pub fn tcp6(sport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(ETH_P_IPV6, 1);
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip[6] = 6;
    ip[7] = 64;
    ip[8] = 0xfd;
    ip[23] = 1;
    ip[24] = 0xfd;
    ip[39] = 2;
    f.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x10;
    f.extend_from_slice(&tcp);
    f.extend_from_slice(payload);
    f
}

/// Ethernet + IPv4 + UDP with a zero UDP checksum.
pub fn udp4(payload: &[u8]) -> Vec<u8> {
    let mut f = tcp4(53, &[]);
    f.truncate(14 + 20);
    f[14 + 9] = 17;
    f[16..18].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    f[24..26].fill(0);
    let c = !fold(ones_sum(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let mut udp = vec![0u8; 8];
    udp[0..2].copy_from_slice(&53u16.to_be_bytes());
    udp[2..4].copy_from_slice(&53u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&udp);
    f.extend_from_slice(payload);
    f
}

/// A 42-byte ARP request.
pub fn arp() -> Vec<u8> {
    let mut f = eth([0x08, 0x06], 1);
    f.resize(42, 0);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f
}

/// `frame` with its TCP/UDP checksum computed.
pub fn checksummed(mut frame: Vec<u8>) -> Vec<u8> {
    assert!(netback::csum::complete(&mut frame));
    frame
}

/// `frame` as netfront sends it with `csum_blank`: the pseudo-header sum in
/// the TCP/UDP checksum field.
pub fn partial(mut frame: Vec<u8>) -> Vec<u8> {
    assert!(netback::csum::set_partial(&mut frame));
    frame
}

/// A frame of no pool with checksum state `csum`.
pub fn with_csum(data: Vec<u8>, csum: Checksum) -> Frame {
    Frame {
        csum,
        ..Frame::new(data)
    }
}

/// A GSO frame of no pool.
pub fn gso_frame(data: Vec<u8>, gso: Gso, csum: Checksum) -> Frame {
    Frame {
        gso: Some(gso),
        ..with_csum(data, csum)
    }
}

/// Deterministic payload bytes.
pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 256) as u8).collect()
}
