//! A minimal netfront for vif 0 (`io/netif.h`, Linux's `xen-netfront.c`): one queue, one event
//! channel, the TX and RX rings and their buffers in `.bss`, all granted to domain 0.
//!
//! Handshake: the backend waits in `InitWait` (2); the frontend writes `tx-ring-ref`,
//! `rx-ring-ref`, `event-channel`, `request-rx-copy = 1`, `feature-rx-notify`, `feature-sg`
//! (and `feature-gso-tcpv4` if asked) under `device/vif/0`, then `state = 4`, and waits for the
//! backend's `Connected` (4). Waits poll the event channel (see [`crate::evtchn::Events`]).

use guest_abi::grant_table::GrantRef;
use guest_abi::netif::{
    NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA,
    NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA,
    NET_RX_RING_SIZE, NET_TX_RING_SIZE, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO,
    XEN_NETIF_GSO_TYPE_TCPV4,
};
use guest_abi::xenstore::{XENBUS_STATE_CONNECTED, XENBUS_STATE_INIT_WAIT};

use crate::evtchn::{self, Events};
use crate::gnttab::GrantTable;
use crate::hvm::{self, Deadline};
use crate::shmem::{self, Pages, PAGE_SIZE};
use crate::xs::{text, Text, Xs};

/// TX buffer pages: a whole 64 KiB packet fits (16 data slots) with one to spare.
pub const NR_TX_PAGES: usize = 17;
/// RX buffers kept posted.
const NR_RX_BUFS: usize = 64;
/// Bytes of a received frame's first slot handed to the caller (its headers).
pub const RX_HEAD: usize = 128;
/// Where shared_info is mapped (the start of the platform device's BAR, as Linux maps it).
const SHARED_INFO_GPFN: u64 = 0xF0000;
/// Where grant-table frame 0 is mapped.
const GRANT_FRAME_GPFN: u64 = 0xF0001;
/// Grant reference of the TX ring page.
const GREF_TX_RING: GrantRef = crate::gnttab::FIRST_FREE;
/// Grant reference of the RX ring page.
const GREF_RX_RING: GrantRef = GREF_TX_RING + 1;
/// Grant reference of TX buffer page 0 (the others follow).
const GREF_TX_BUF: GrantRef = 16;
/// Grant reference of RX buffer 0 (the others follow).
const GREF_RX_BUF: GrantRef = 64;
/// Offsets in a shared-ring page (`io/ring.h`).
const REQ_PROD: u64 = 0;
/// `req_event`.
const REQ_EVENT: u64 = 4;
/// `rsp_prod`.
const RSP_PROD: u64 = 8;
/// `rsp_event`.
const RSP_EVENT: u64 = 12;
/// The first entry.
const ENTRIES: u64 = 64;
/// Size of a TX ring entry.
const TX_ENTRY: u64 = 12;
/// Size of an RX ring entry.
const RX_ENTRY: u64 = 8;
/// TX requests in flight at most before sending stops (the ring has 256 slots).
const TX_MAX_IN_FLIGHT: u32 = 200;
/// How long a batch of TX requests may wait for its responses (ms).
const TX_TIMEOUT_MS: u64 = 2_000;
/// How long the backend may take to connect (ms).
const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// The TX ring page (index 0) and the RX ring page (index 1).
static RINGS: Pages<2> = Pages::new();
/// TX buffers.
static TX_BUFS: Pages<NR_TX_PAGES> = Pages::new();
/// RX buffers.
static RX_BUFS: Pages<NR_RX_BUFS> = Pages::new();

/// What the TX responses to the packets sent said (one count per packet, from the response
/// to its first slot).
#[derive(Clone, Copy, Debug, Default)]
pub struct TxStats {
    /// Packets sent (first slots pushed).
    pub sent: u64,
    /// `NETIF_RSP_OKAY`.
    pub ok: u64,
    /// `NETIF_RSP_ERROR`.
    pub error: u64,
    /// `NETIF_RSP_DROPPED`.
    pub dropped: u64,
    /// Any other status.
    pub other: u64,
}

/// A connected vif 0.
pub struct Netfront {
    /// The vif's MAC address (`device/vif/0/mac`).
    pub mac: [u8; 6],
    /// The backend's xenstore directory.
    pub backend: Text<64>,
    /// The event channel of both rings.
    port: u32,
    /// shared_info, for waiting on `port`.
    events: Events,
    /// TX requests produced (`req_prod_pvt`).
    tx_prod: u32,
    /// TX responses consumed.
    tx_cons: u32,
    /// Whether TX slot `i` holds the first request of a packet.
    tx_first: [bool; NET_TX_RING_SIZE],
    /// TX buffer pages used since the last flush.
    tx_pages: usize,
    /// RX requests produced.
    rx_prod: u32,
    /// RX responses consumed.
    rx_cons: u32,
    /// The RX buffer posted in each ring slot.
    rx_buf: [u8; NET_RX_RING_SIZE],
    /// The next RX slot is an extra-info slot.
    rx_extra: bool,
    /// The next RX data slot continues a frame.
    rx_more: bool,
    /// TX results.
    pub tx: TxStats,
    /// Frames received.
    pub rx_frames: u64,
    /// Frames whose first response was an error status.
    pub rx_errors: u64,
}

/// `aa:bb:cc:dd:ee:ff` as six bytes.
pub fn parse_mac(s: &[u8]) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(|&c| c == b':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        let hex = |c: u8| (c as char).to_digit(16);
        *b = (hex(p[0])? * 16 + hex(p[1])?) as u8;
    }
    parts.next().is_none().then_some(mac)
}

/// Displays a MAC address as `aa:bb:cc:dd:ee:ff`.
pub struct Mac(pub [u8; 6]);

impl core::fmt::Display for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Error text of a failed connection step.
pub type ConnectError = Text<112>;

impl Netfront {
    /// Connects vif 0 through `xs`; `gso` also advertises `feature-gso-tcpv4`.
    pub fn connect(xs: &mut Xs, gso: bool) -> Result<Netfront, ConnectError> {
        let backend = match xs.read(0, b"device/vif/0/backend") {
            Ok(v) => Text::<64>::from_bytes(v),
            Err(e) => return Err(text(format_args!("read device/vif/0/backend: {e}"))),
        };
        let mac = match xs.read(0, b"device/vif/0/mac") {
            Ok(v) => parse_mac(v)
                .ok_or_else(|| text(format_args!("bad mac '{}'", crate::console::Bytes(v))))?,
            Err(e) => return Err(text(format_args!("read device/vif/0/mac: {e}"))),
        };
        let state_path = text::<80>(format_args!("{backend}/state"));
        let wait = Deadline::after_ms(CONNECT_TIMEOUT_MS);
        let ready = hvm::yield_until(wait, || {
            xs.read_u32(state_path.as_bytes()).ok() == Some(XENBUS_STATE_INIT_WAIT)
        });
        if !ready {
            return Err(text(format_args!("backend {backend} not in InitWait")));
        }
        let events = Events::map(SHARED_INFO_GPFN)
            .map_err(|rc| text(format_args!("map shared_info: rc={rc}")))?;
        let gnt = GrantTable::map(GRANT_FRAME_GPFN)
            .map_err(|rc| text(format_args!("map grant frame: rc={rc}")))?;
        let port = evtchn::alloc_unbound(0)
            .map_err(|rc| text(format_args!("EVTCHNOP_alloc_unbound: rc={rc}")))?;

        for ring in 0..2 {
            let r = RINGS.gpa(ring);
            shmem::wr32(r + REQ_PROD, 0);
            shmem::wr32(r + REQ_EVENT, 1);
            shmem::wr32(r + RSP_PROD, 0);
            shmem::wr32(r + RSP_EVENT, 1);
        }
        gnt.grant(GREF_TX_RING, 0, RINGS.gfn(0), false);
        gnt.grant(GREF_RX_RING, 0, RINGS.gfn(1), false);
        for i in 0..NR_TX_PAGES {
            gnt.grant(GREF_TX_BUF + i as u32, 0, TX_BUFS.gfn(i), true);
        }
        for i in 0..NR_RX_BUFS {
            gnt.grant(GREF_RX_BUF + i as u32, 0, RX_BUFS.gfn(i), false);
        }
        let mut net = Netfront {
            mac,
            backend,
            port,
            events,
            tx_prod: 0,
            tx_cons: 0,
            tx_first: [false; NET_TX_RING_SIZE],
            tx_pages: 0,
            rx_prod: 0,
            rx_cons: 0,
            rx_buf: [0; NET_RX_RING_SIZE],
            rx_extra: false,
            rx_more: false,
            tx: TxStats::default(),
            rx_frames: 0,
            rx_errors: 0,
        };
        for b in 0..NR_RX_BUFS {
            net.post_rx(b as u8);
        }
        shmem::barrier();
        shmem::wr32(RINGS.gpa(1) + REQ_PROD, net.rx_prod);

        let tx_ref = text::<16>(format_args!("{GREF_TX_RING}"));
        let rx_ref = text::<16>(format_args!("{GREF_RX_RING}"));
        let evt = text::<16>(format_args!("{port}"));
        let mut keys: [(&[u8], &[u8]); 8] = [
            (b"tx-ring-ref", tx_ref.as_bytes()),
            (b"rx-ring-ref", rx_ref.as_bytes()),
            (b"event-channel", evt.as_bytes()),
            (b"request-rx-copy", b"1"),
            (b"feature-rx-notify", b"1"),
            (b"feature-sg", b"1"),
            (b"feature-gso-tcpv4", b"1"),
            (b"state", b"4"),
        ];
        if !gso {
            keys[6] = (b"feature-gso-tcpv4", b"0");
        }
        for (k, v) in keys {
            let path = text::<64>(format_args!("device/vif/0/{}", crate::console::Bytes(k)));
            if let Err(e) = xs.write(0, path.as_bytes(), v) {
                return Err(text(format_args!("write {path}: {e}")));
            }
        }
        let wait = Deadline::after_ms(CONNECT_TIMEOUT_MS);
        let mut last = 0;
        let connected = hvm::yield_until(wait, || {
            last = xs.read_u32(state_path.as_bytes()).unwrap_or(0);
            last >= XENBUS_STATE_CONNECTED
        });
        if !connected || last != XENBUS_STATE_CONNECTED {
            return Err(text(format_args!("backend state {last}, not Connected")));
        }
        net.kick();
        Ok(net)
    }

    /// Signals the backend.
    pub fn kick(&self) {
        evtchn::send(self.port);
    }

    /// The backend's `state` now (0 if unreadable).
    pub fn backend_state(&self, xs: &mut Xs) -> u32 {
        let path = text::<80>(format_args!("{}/state", self.backend));
        xs.read_u32(path.as_bytes()).unwrap_or(0)
    }

    /// Posts RX buffer `b` in the next RX slot (the request is pushed later).
    fn post_rx(&mut self, b: u8) {
        let slot = self.rx_prod as usize % NET_RX_RING_SIZE;
        let e = RINGS.gpa(1) + ENTRIES + slot as u64 * RX_ENTRY;
        shmem::wr16(e, slot as u16);
        shmem::wr16(e + 2, 0);
        shmem::wr32(e + 4, GREF_RX_BUF + u32::from(b));
        self.rx_buf[slot] = b;
        self.rx_prod = self.rx_prod.wrapping_add(1);
    }

    /// Takes every RX response, hands the first [`RX_HEAD`] bytes of each frame to `f`, posts
    /// the buffers again; returns the frames taken.
    pub fn poll_rx(&mut self, mut f: impl FnMut(&[u8])) -> u64 {
        let ring = RINGS.gpa(1);
        let mut frames = 0;
        loop {
            let prod = shmem::rd32(ring + RSP_PROD);
            shmem::barrier();
            if prod.wrapping_sub(self.rx_cons) as usize > NET_RX_RING_SIZE {
                // A backend that broke the ring: stop reading it.
                return frames;
            }
            let mut took = false;
            while self.rx_cons != prod {
                let slot = self.rx_cons as usize % NET_RX_RING_SIZE;
                let e = ring + ENTRIES + slot as u64 * RX_ENTRY;
                if self.rx_extra {
                    self.rx_extra = shmem::rd8(e + 1) & XEN_NETIF_EXTRA_FLAG_MORE != 0;
                } else {
                    let offset = shmem::rd16(e + 2) as usize;
                    let flags = shmem::rd16(e + 4);
                    let status = shmem::rd16(e + 6) as i16;
                    if !self.rx_more {
                        frames += 1;
                        self.rx_frames += 1;
                        if status > 0 && offset < PAGE_SIZE {
                            let n = (status as usize).min(RX_HEAD).min(PAGE_SIZE - offset);
                            let mut head = [0u8; RX_HEAD];
                            let buf = RX_BUFS.gpa(self.rx_buf[slot] as usize);
                            shmem::copy_in(buf + offset as u64, &mut head[..n]);
                            f(&head[..n]);
                        } else {
                            self.rx_errors += 1;
                        }
                    }
                    self.rx_extra = flags & NETRXF_EXTRA_INFO != 0;
                    self.rx_more = flags & NETRXF_MORE_DATA != 0;
                }
                let b = self.rx_buf[slot];
                self.rx_cons = self.rx_cons.wrapping_add(1);
                self.post_rx(b);
                took = true;
            }
            shmem::barrier();
            shmem::wr32(ring + REQ_PROD, self.rx_prod);
            shmem::wr32(ring + RSP_EVENT, self.rx_cons.wrapping_add(1));
            shmem::barrier();
            if took {
                self.kick();
            }
            if shmem::rd32(ring + RSP_PROD) == self.rx_cons {
                return frames;
            }
        }
    }

    /// Takes the RX frames arriving until `deadline`, handing each to `f` as [`Netfront::poll_rx`]
    /// does; returns early once `f` returns true for one.
    pub fn listen(&mut self, deadline: Deadline, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        let mut done = false;
        loop {
            self.events.clear(self.port);
            self.poll_rx(|h| done |= f(h));
            if done {
                return true;
            }
            if deadline.passed() {
                return false;
            }
            self.events.wait(self.port, deadline);
        }
    }

    /// TX requests sent and not yet answered.
    pub fn tx_in_flight(&self) -> u32 {
        self.tx_prod.wrapping_sub(self.tx_cons)
    }

    /// Whether the backend stopped answering (too many requests unanswered to send more).
    pub fn tx_stalled(&self) -> bool {
        self.tx_in_flight() >= TX_MAX_IN_FLIGHT
    }

    /// Writes a TX request in the next slot.
    fn tx_req(&mut self, gref: GrantRef, offset: u16, flags: u16, size: u16, first: bool) {
        let slot = self.tx_prod as usize % NET_TX_RING_SIZE;
        let e = RINGS.gpa(0) + ENTRIES + slot as u64 * TX_ENTRY;
        shmem::wr32(e, gref);
        shmem::wr16(e + 4, offset);
        shmem::wr16(e + 6, flags);
        shmem::wr16(e + 8, slot as u16);
        shmem::wr16(e + 10, size);
        self.tx_first[slot] = first;
        if first {
            self.tx.sent += 1;
        }
        self.tx_prod = self.tx_prod.wrapping_add(1);
    }

    /// Writes a GSO extra-info slot (`XEN_NETIF_EXTRA_TYPE_GSO`, TCPv4, segment size `mss`).
    fn tx_extra_gso(&mut self, mss: u16) {
        let slot = self.tx_prod as usize % NET_TX_RING_SIZE;
        let e = RINGS.gpa(0) + ENTRIES + slot as u64 * TX_ENTRY;
        shmem::wr8(e, XEN_NETIF_EXTRA_TYPE_GSO);
        shmem::wr8(e + 1, 0);
        shmem::wr16(e + 2, mss);
        shmem::wr8(e + 4, XEN_NETIF_GSO_TYPE_TCPV4);
        shmem::wr8(e + 5, 0);
        shmem::wr16(e + 6, 0);
        self.tx_first[slot] = false;
        self.tx_prod = self.tx_prod.wrapping_add(1);
    }

    /// Counts the TX responses that arrived.
    fn reap_tx(&mut self) {
        let ring = RINGS.gpa(0);
        let prod = shmem::rd32(ring + RSP_PROD);
        shmem::barrier();
        if prod.wrapping_sub(self.tx_cons) > self.tx_in_flight() {
            return;
        }
        while self.tx_cons != prod {
            let slot = self.tx_cons as usize % NET_TX_RING_SIZE;
            if self.tx_first[slot] {
                let status = shmem::rd16(ring + ENTRIES + slot as u64 * TX_ENTRY + 2) as i16;
                match status {
                    NETIF_RSP_OKAY => self.tx.ok += 1,
                    NETIF_RSP_ERROR => self.tx.error += 1,
                    NETIF_RSP_DROPPED => self.tx.dropped += 1,
                    _ => self.tx.other += 1,
                }
            }
            self.tx_cons = self.tx_cons.wrapping_add(1);
        }
    }

    /// Queues a frame of at most a page in the next free TX buffer (flushing first when all are
    /// in use). False if the backend stopped answering and nothing was queued.
    pub fn queue(&mut self, frame: &[u8]) -> bool {
        assert!(frame.len() <= PAGE_SIZE, "frame of {} bytes", frame.len());
        if self.tx_pages == NR_TX_PAGES {
            self.flush();
        }
        if self.tx_stalled() {
            return false;
        }
        let page = self.tx_pages;
        self.tx_pages += 1;
        shmem::copy_out(TX_BUFS.gpa(page), frame);
        self.tx_req(GREF_TX_BUF + page as u32, 0, 0, frame.len() as u16, true);
        true
    }

    /// Pushes the queued requests, kicks the backend and waits (at most [`TX_TIMEOUT_MS`]) for
    /// every response; true if all came.
    pub fn flush(&mut self) -> bool {
        let ring = RINGS.gpa(0);
        shmem::barrier();
        shmem::wr32(ring + REQ_PROD, self.tx_prod);
        self.kick();
        let deadline = Deadline::after_ms(TX_TIMEOUT_MS);
        let all = loop {
            self.events.clear(self.port);
            self.reap_tx();
            if self.tx_cons == self.tx_prod {
                break true;
            }
            if deadline.passed() {
                break false;
            }
            shmem::wr32(ring + RSP_EVENT, self.tx_cons.wrapping_add(1));
            shmem::barrier();
            self.reap_tx();
            if self.tx_cons == self.tx_prod {
                break true;
            }
            self.events.wait(self.port, deadline);
        };
        self.tx_pages = 0;
        all
    }

    /// Sends one packet of `len` bytes (at most `(NR_TX_PAGES - 1)` pages) starting with
    /// `head`, as TCPv4 GSO with segment size `mss` (`NETTXF_csum_blank`, one
    /// `XEN_NETIF_EXTRA_TYPE_GSO` slot, a page per data slot), and waits for the responses.
    /// False if the backend stopped answering.
    pub fn send_gso(&mut self, head: &[u8], len: usize, mss: u16) -> bool {
        let pages = len.div_ceil(PAGE_SIZE);
        assert!(pages < NR_TX_PAGES && len <= 0xFFFF && head.len() <= PAGE_SIZE);
        if self.tx_pages > 0 {
            self.flush();
        }
        if self.tx_in_flight() + pages as u32 + 1 > TX_MAX_IN_FLIGHT {
            return false;
        }
        shmem::copy_out(TX_BUFS.gpa(0), head);
        let more = if pages > 1 { NETTXF_MORE_DATA } else { 0 };
        let flags = NETTXF_EXTRA_INFO | NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED | more;
        self.tx_req(GREF_TX_BUF, 0, flags, len as u16, true);
        self.tx_extra_gso(mss);
        for p in 1..pages {
            let size = (len - p * PAGE_SIZE).min(PAGE_SIZE);
            let more = if p + 1 < pages { NETTXF_MORE_DATA } else { 0 };
            self.tx_req(GREF_TX_BUF + p as u32, 0, more, size as u16, false);
        }
        self.tx_pages = pages;
        self.flush()
    }
}
