//! The network of the machine: one netback [`Vif`] per configured vif, the
//! switch (crate `netswitch`) that joins them, and the built-in peer host on
//! the switch. Glue only: the backends, the bridge and the peer are host-tested
//! crates; this module moves frames between them and the domains.
//!
//! Frames travel as Xen's do: a guest's GSO super-frame crosses the switch
//! whole (every port takes GSO-sized frames) and a partial checksum stays
//! partial, as [`Frame::into_packet`] tags them; the receiving vif sends
//! them on as its frontend negotiated (whole with `csum_blank`, or
//! segmented by netback). Only the peer, which checks checksums and takes
//! no GSO, gets them segmented and completed ([`Frame::into_plain`]) as it
//! reads them. No frame costs an allocation: a guest's frames live in its
//! vif's pool ([`VifConfig::pool`], bounded by
//! [`VifConfig::memory_bound`]), the peer's in the peer's pool.
//!
//! Every guest is hostile: a vif's switch port admits only its own MAC (the
//! `mac` of its backend directory, as the frontend reads it) and, with
//! `ip=`, its addresses ([`SourceFilter`]); what it may not send is dropped
//! and counted (`spoofed`, logged at teardown). Each netback pass is bounded
//! ([`netback::TX_PASS_SLOTS`], one RX ring per queue), and the passes that
//! resume TX and deliver frames take the vifs in turn, starting one further
//! on each time, so no vif is always first to the switch's shared queues.

use crate::domain::DomainRun;
use crate::host::KernelHost;
use crate::ledger::{self, Part};
use alloc::vec::Vec;
use hypercalls::Domain;
use netback::{Checksum, Frame, Vif, VifConfig};
use netswitch::{
    Ipv4Net, Peer, PeerConfig, PortConfig, PortId, SourceFilter, Switch, SwitchConfig,
};

/// One vif and its switch port.
struct VifPort {
    vif: Vif,
    port: PortId,
    /// Guest kicks on the vif's event channels.
    kicks: u64,
    /// Frames dropped from its switch port when its RX stalled.
    expired: u64,
}

/// The switch, the peer and every vif.
pub struct Net {
    switch: Switch,
    peer: Peer,
    peer_port: PortId,
    vifs: Vec<VifPort>,
    /// Frames taken from TX rings, waiting to enter the switch.
    frames: Vec<Frame>,
    /// TSC at which the peer wants to be polled (its timers), or frames
    /// waiting for a guest expire, as of the last pump.
    peer_due: Option<u64>,
    /// When (ms) the peer's own timers want it polled (retransmission,
    /// keep-alive), as of its last poll; it is polled only then or when
    /// frames reach it.
    peer_timer_ms: Option<u64>,
    /// The peer ran since its timer was last read.
    peer_ran: bool,
    /// The peer's open connections (discard, source) as of the last pump.
    peer_open: (usize, usize),
    /// The vif the next round-robin pass (TX resumption, delivery) starts with.
    next_vif: usize,
}

/// Milliseconds on the TSC clock (the switch's and the peer's time).
pub fn now_ms(tsc: u64) -> u64 {
    tsc / crate::cpu::tsc_khz().max(1)
}

/// Frames a vif may hold for its guest before the switch keeps the rest on
/// the vif's port (the guest's RX ring is the flow control).
const RX_BACKLOG: usize = 64;

/// Frames a TX pass may take from one vif: no more than its pool has buffers.
const TX_BATCH: usize = VifConfig::DEFAULT_POOL.small + VifConfig::DEFAULT_POOL.large;

/// Rounds of one pump: the peer, the deliveries, and the TX of vifs whose
/// pool those deliveries refilled.
const PUMP_ROUNDS: usize = 4;

/// The tag of the frames the peer makes: its checksums are complete.
const PEER_TAG: u32 = Frame::tag_of(None, Checksum::Validated);

impl Net {
    /// The switch with the peer host on its first port.
    pub fn new(tsc: u64) -> Net {
        let mut switch = Switch::new(SwitchConfig::default());
        let peer_port = switch.add_port(PortConfig::large());
        let peer = match Peer::new(PeerConfig::default(), now_ms(tsc)) {
            Ok(p) => p,
            Err(e) => crate::panic_msg(&alloc::format!("netpeer: {e:?}")),
        };
        Net {
            switch,
            peer,
            peer_port,
            vifs: Vec::new(),
            frames: Vec::with_capacity(TX_BATCH),
            peer_due: None,
            peer_timer_ms: Some(0),
            peer_ran: false,
            peer_open: (0, 0),
            next_vif: 0,
        }
    }

    /// The vifs' indices for one round-robin pass, starting one further on
    /// than the last.
    fn round_robin(&mut self) -> impl Iterator<Item = usize> + use<> {
        let n = self.vifs.len();
        let first = self.next_vif % n.max(1);
        self.next_vif = first + 1;
        (0..n).map(move |k| (first + k) % n)
    }

    /// Creates the backend of vif `devid` of `dom` (whose xenstore tree the
    /// toolstack has written; `spec` is its `vif` entry) and plugs it into
    /// the switch, its port admitting only the backend directory's `mac` and
    /// `spec`'s `ip=` addresses. A vif whose MAC cannot be read is not
    /// plugged.
    pub fn add_vif(&mut self, dom: &Domain, devid: u32, nr_vcpus: u32, spec: &domcfg::VifSpec) {
        // TX hold-off: a busy TX ring is polled between time slices instead
        // of kicked per packet, so a burst costs one pass and one notification.
        let config = VifConfig {
            tx_holdoff: true,
            ..VifConfig::new(nr_vcpus)
        };
        let mut vif = Vif::new(dom.domid, devid, config);
        // The port admits what the frontend was told is its MAC, and `ip=`.
        let mac_path = alloc::format!("{}/mac", vif.backend_path());
        let mac = crate::store::with(|xs| xs.read(&mac_path))
            .ok()
            .and_then(|v| domcfg::parse_mac(core::str::from_utf8(&v).ok()?));
        let Some(mac) = mac else {
            log::error!(
                "netback: d{} vif{devid}: no unicast MAC in {mac_path}; not plugged",
                dom.domid
            );
            return;
        };
        let ipv4: Option<Vec<Ipv4Net>> = spec.ip.as_ref().map(|nets| {
            nets.iter()
                .map(|n| Ipv4Net {
                    addr: n.addr,
                    prefix_len: n.prefix_len,
                })
                .collect()
        });
        let mut allowed = alloc::string::String::new();
        for n in ipv4.iter().flatten() {
            use core::fmt::Write;
            let _ = write!(allowed, " {n}");
        }
        // GSO super-frames cross the switch whole.
        let port = self.switch.add_port(PortConfig::large());
        if !self
            .switch
            .set_source_filter(port, Some(SourceFilter { mac, ipv4 }))
        {
            log::error!(
                "netback: d{} vif{devid}: MAC {} is another vif's; not plugged",
                dom.domid,
                show_mac(mac)
            );
            self.switch.remove_port(port);
            return;
        }
        if let Err(e) = crate::store::with(|xs| vif.attach(xs)) {
            log::error!("netback: d{} vif{devid}: xenstore: {e:?}", dom.domid);
            self.switch.remove_port(port);
            return;
        }
        log::info!(
            "netback: d{} vif{devid} on switch port {} ({} KiB of buffers), sends as {}, ip={}",
            dom.domid,
            port.index(),
            config.memory_bound() / 1024,
            show_mac(mac),
            if allowed.is_empty() {
                "any"
            } else {
                allowed.trim_start()
            }
        );
        self.vifs.push(VifPort {
            vif,
            port,
            kicks: 0,
            expired: 0,
        });
    }

    /// Whether `port` of domain `domid` is one of its vifs' event channels.
    pub fn owns_port(&self, domid: u16, port: u32) -> bool {
        self.vifs
            .iter()
            .any(|v| v.vif.domid() == domid && v.vif.owns_port(port))
    }

    /// Counts a guest kick on `port` of domain `domid` (one of its vifs').
    pub fn count_kick(&mut self, domid: u16, port: u32) {
        if let Some(v) = self
            .vifs
            .iter_mut()
            .find(|v| v.vif.domid() == domid && v.vif.owns_port(port))
        {
            v.kicks += 1;
        }
    }

    /// Appends ` n.d<N>.<counter>=<count>` for every domain: VM exits, and
    /// over its vifs the kicks, notifications, packets and bytes each way,
    /// GSO packets sent and GSO frames segmented for it.
    pub fn write_counters(&self, doms: &[DomainRun<'_>], out: &mut alloc::string::String) {
        use core::fmt::Write;
        for r in doms {
            let d = r.dom.domid;
            let _ = write!(out, " n.d{d}.exits={}", r.exits());
            let mut sum = [0u64; 8];
            for v in self.vifs.iter().filter(|v| v.vif.domid() == d) {
                let s = v.vif.stats();
                let vals = [
                    v.kicks,
                    s.notifications,
                    s.tx_packets,
                    s.tx_bytes,
                    s.rx_packets,
                    s.rx_bytes,
                    s.tx_gso,
                    s.rx_segmented,
                ];
                for (a, b) in sum.iter_mut().zip(vals) {
                    *a += b;
                }
            }
            let names = [
                "kicks",
                "notifications",
                "tx_packets",
                "tx_bytes",
                "rx_packets",
                "rx_bytes",
                "tx_gso",
                "rx_segmented",
            ];
            for (n, v) in names.iter().zip(sum) {
                let _ = write!(out, " n.d{d}.{n}={v}");
            }
        }
    }

    /// Dom0 watch events: each vif sees its frontend's state changes.
    pub fn backend_events(&mut self, doms: &mut [DomainRun<'_>], host: &mut KernelHost) {
        let events = crate::store::with(|xs| xs.take_backend_events());
        for ev in events {
            for v in self.vifs.iter_mut().filter(|v| v.vif.is_my_event(&ev)) {
                let Some(run) = doms.iter_mut().find(|r| r.dom.domid == v.vif.domid()) else {
                    continue;
                };
                let r = crate::store::with(|xs| v.vif.frontend_changed(&mut run.dom, host, xs));
                match r {
                    Ok(()) => log::debug!(
                        "netback: d{} vif{}: {:?}",
                        v.vif.domid(),
                        v.vif.devid(),
                        v.vif.state()
                    ),
                    Err(e) => log::error!("{e}"),
                }
            }
        }
    }

    /// Serves the vifs of domain `d` that need it: kicked on one of `ports`,
    /// or (with `poll`) asking to be polled. Their guests' frames go through the switch;
    /// receivers are served as the switch's queues fill, so that a burst of
    /// two TX rings does not overflow them. Call [`Net::pump`] after it.
    pub fn service(
        &mut self,
        doms: &mut [DomainRun<'_>],
        d: usize,
        host: &mut KernelHost,
        ports: &[u32],
        poll: bool,
        tsc: u64,
    ) {
        let now = now_ms(tsc);
        let domid = doms[d].dom.domid;
        for k in 0..self.vifs.len() {
            let v = &self.vifs[k];
            let kicked = ports.iter().any(|&p| v.vif.owns_port(p));
            if v.vif.domid() != domid || !(kicked || poll && v.vif.needs_service()) {
                continue;
            }
            let mut frames = core::mem::take(&mut self.frames);
            self.run_vif(k, &mut doms[d].dom, host, true, &mut frames);
            self.input_frames(self.vifs[k].port, &mut frames, doms, host, now);
            self.frames = frames;
        }
    }

    /// Takes the TX rings of the vifs that stopped for want of a pool buffer
    /// and have one again (the deliveries just gave buffers back), into the
    /// switch, moving frames on as its queues fill; whether there were any.
    fn resume_tx(&mut self, doms: &mut [DomainRun<'_>], host: &mut KernelHost, now: u64) -> bool {
        let mut any = false;
        for k in self.round_robin() {
            let v = &self.vifs[k];
            if !v.vif.tx_resumable() {
                continue;
            }
            let Some(d) = doms.iter().position(|r| r.dom.domid == v.vif.domid()) else {
                continue;
            };
            any = true;
            // `Net::service` is done with `frames` whenever a pump runs.
            let mut frames = core::mem::take(&mut self.frames);
            self.run_vif(k, &mut doms[d].dom, host, false, &mut frames);
            self.input_frames(self.vifs[k].port, &mut frames, doms, host, now);
            self.frames = frames;
        }
        any
    }

    /// Runs vif `k`'s TX rings (and, with `rx`, its RX rings) on `dom`: the
    /// frames its guest sent go to `frames`.
    fn run_vif(
        &mut self,
        k: usize,
        dom: &mut Domain,
        host: &mut KernelHost,
        rx: bool,
        frames: &mut Vec<Frame>,
    ) {
        let v = &mut self.vifs[k];
        let mut r = ledger::part(Part::NetbackTx, || v.vif.service_tx(dom, host, frames));
        if rx && r.is_ok() {
            r = ledger::part(Part::NetbackRx, || v.vif.service_rx(dom, host));
        }
        if let Err(e) = r {
            log::error!("{e}");
            let _ = crate::store::with(|xs| v.vif.publish_state(xs));
        }
    }

    /// Puts a vif's `frames` into the switch on its `port`, moving frames on
    /// whenever a queue is half full, so that a burst of two TX rings does
    /// not overflow the receivers'.
    fn input_frames(
        &mut self,
        port: PortId,
        frames: &mut Vec<Frame>,
        doms: &mut [DomainRun<'_>],
        host: &mut KernelHost,
        now: u64,
    ) {
        for frame in frames.drain(..) {
            ledger::part(Part::Switch, || {
                self.switch.input_packet(port, frame.into_packet(), now)
            });
            if self.switch_filling() {
                self.move_frames(doms, host, now);
            }
        }
    }

    /// Whether some port's queue is half full (in frames or bytes).
    fn switch_filling(&self) -> bool {
        self.switch.ports_with_output().any(|p| {
            self.switch.queued_frames(p) >= netswitch::DEFAULT_QUEUE_FRAMES / 2
                || self.switch.queued_bytes(p) >= netswitch::DEFAULT_QUEUE_BYTES / 2
        })
    }

    /// Whether a vif of `domid` wants [`Net::service`] without a kick.
    pub fn needs_service(&self, domid: u16) -> bool {
        self.vifs
            .iter()
            .any(|v| v.vif.domid() == domid && v.vif.needs_service())
    }

    /// Lets the peer answer what reached it (and run its timers), then hands
    /// every vif the frames queued on its port, as far as its guest takes them;
    /// vifs whose TX waited for the buffers that gave back go on.
    pub fn pump(&mut self, doms: &mut [DomainRun<'_>], host: &mut KernelHost, tsc: u64) {
        let now = now_ms(tsc);
        for _ in 0..PUMP_ROUNDS {
            self.move_frames(doms, host, now);
            if !self.resume_tx(doms, host, now) {
                break;
            }
        }
        let khz = crate::cpu::tsc_khz().max(1);
        if self.peer_ran {
            self.peer_ran = false;
            self.peer_timer_ms = self.peer.poll_at(now);
        }
        let peer_due = self.peer_timer_ms.map(|ms| ms.saturating_mul(khz));
        // Frames waiting for a guest expire: be back by then.
        let rx_due = self.vifs.iter().filter_map(|v| v.vif.rx_expiry(host)).min();
        self.peer_due = match (peer_due, rx_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let open = self.peer.open_connections();
        if open.0 > self.peer_open.0 {
            self.print_counters("discard open", doms);
        }
        if open.1 > self.peer_open.1 {
            self.print_counters("source open", doms);
        }
        self.peer_open = open;
        let mut reported = false;
        while let Some(report) = self.peer.take_report() {
            crate::kprintln!("xenolith: netpeer: {report}");
            self.print_counters(&alloc::format!("{} close", report.service), doms);
            reported = true;
        }
        if reported {
            self.log_stats();
        }
    }

    /// Lets the peer exchange frames with the switch, then hands every vif
    /// what is queued on its port.
    fn move_frames(&mut self, doms: &mut [DomainRun<'_>], host: &mut KernelHost, now: u64) {
        let due = self.peer_timer_ms.is_some_and(|ms| ms <= now);
        if due || self.switch.queued_frames(self.peer_port) > 0 || self.peer.pending_frames() > 0 {
            self.peer_ran = true;
            self.exchange_peer(now);
        }
        ledger::part(Part::NetbackRx, || self.deliver(doms, host));
    }

    /// Lets the peer take the frames for it, answer them and run its timers.
    fn exchange_peer(&mut self, now: u64) {
        let (peer, switch, port) = (&mut self.peer, &mut self.switch, self.peer_port);
        // The peer checks checksums and takes no GSO: its frames are made
        // plain as it reads them.
        ledger::part(Part::Peer, || {
            peer.exchange_with(switch, port, now, PEER_TAG, |p| {
                Frame::from_packet(p).into_plain().map(|f| f.data)
            })
        });
    }

    /// Hands every vif the frames queued on its port, as far as its guest
    /// takes them (one batch per vif, one notification per batch). A guest
    /// that has taken no frame for its vif's drain timeout loses what waits
    /// for it (its vif's queues and its switch port's), so that it holds no
    /// sender's buffers.
    fn deliver(&mut self, doms: &mut [DomainRun<'_>], host: &mut KernelHost) {
        for k in self.round_robin() {
            let v = &mut self.vifs[k];
            if v.vif.expire_rx(host) > 0 {
                let n = self.switch.drain_packets(v.port).count();
                v.expired += n as u64;
                log::debug!(
                    "netback: d{} vif{}: RX stalled, {n} frames dropped from its port",
                    v.vif.domid(),
                    v.vif.devid()
                );
            }
            let room = RX_BACKLOG.saturating_sub(v.vif.rx_waiting());
            if self.switch.queued_frames(v.port) == 0 || room == 0 {
                continue;
            }
            let Some(run) = doms.iter_mut().find(|r| r.dom.domid == v.vif.domid()) else {
                continue;
            };
            let switch = &mut self.switch;
            let port = v.port;
            let batch = (0..room).map_while(|_| switch.take_packet(port).map(Frame::from_packet));
            if let Err(e) = v.vif.deliver_rx_batch(&mut run.dom, host, batch) {
                log::error!("{e}");
                let _ = crate::store::with(|xs| v.vif.publish_state(xs));
            }
        }
    }

    /// `xenolith: netpeer: counters at <what>: ...`: VM exits of every domain, the
    /// event-channel notifications netback sent and the kicks guests sent it,
    /// for benchmarks to take differences between a connection's open and close.
    fn print_counters(&self, what: &str, doms: &[DomainRun<'_>]) {
        let exits: u64 = doms.iter().map(|r| r.exits()).sum();
        let notifications: u64 = self.vifs.iter().map(|v| v.vif.stats().notifications).sum();
        crate::kprintln!(
            "xenolith: netpeer: counters at {what}: tsc={} vm_exits={exits} notifications={notifications} kicks={}",
            crate::cpu::rdtsc(),
            self.vifs.iter().map(|v| v.kicks).sum::<u64>()
        );
    }

    /// The counters, at debug level.
    pub fn log_stats(&self) {
        let p = self.peer.stats();
        let s = self.switch.stats();
        let pool = self.peer.pool().map(|p| p.stats()).unwrap_or_default();
        log::debug!(
            "net: peer in {} (dropped {}) out {}, pool {} free {} misses; switch unicast {} flooded {} dropped {}",
            p.frames_in,
            p.frames_in_dropped,
            p.frames_out,
            pool.small_free,
            pool.misses,
            s.unicast,
            s.flooded,
            s.dropped
        );
        for v in &self.vifs {
            let st = v.vif.stats();
            let pool = v.vif.pool().stats();
            log::debug!(
                "net: d{} vif{}: {:?} tx {}/{}B gso {} dropped {} spoofed {} pool waits {}; rx {}/{}B dropped {} (expired {}+{}) waiting {} segmented {} csum blank {} completed {}; notified {}; pool free {}+{} misses {}",
                v.vif.domid(),
                v.vif.devid(),
                v.vif.state(),
                st.tx_packets,
                st.tx_bytes,
                st.tx_gso,
                st.tx_dropped,
                self.switch
                    .port_stats(v.port)
                    .map_or(0, |p| p.rx_dropped_spoofed),
                st.tx_pool_waits,
                st.rx_packets,
                st.rx_bytes,
                st.rx_dropped,
                st.rx_expired,
                v.expired,
                v.vif.rx_waiting(),
                st.rx_segmented,
                st.rx_csum_blank,
                st.rx_csum_completed,
                st.notifications,
                pool.small_free,
                pool.large_free,
                pool.misses
            );
            for line in v.vif.describe_rings(&KernelHost) {
                log::debug!("net: d{} vif{}: {line}", v.vif.domid(), v.vif.devid());
            }
        }
    }

    /// Whether frames wait on some port (for the peer, or for a guest).
    pub fn busy(&self) -> bool {
        self.switch.ports_with_output().next().is_some()
    }

    /// TSC at which the peer wants to run again (retransmission, keep-alive),
    /// or frames waiting for a guest expire.
    pub fn deadline(&self) -> Option<u64> {
        self.peer_due
    }

    /// Unplugs the vifs of a domain that is going away.
    pub fn remove_domain(&mut self, dom: &mut Domain, host: &mut KernelHost) {
        let mut i = 0;
        while i < self.vifs.len() {
            if self.vifs[i].vif.domid() != dom.domid {
                i += 1;
                continue;
            }
            let mut v = self.vifs.swap_remove(i);
            crate::store::with(|xs| v.vif.detach(dom, host, xs));
            let s = v.vif.stats();
            let port = self.switch.remove_port(v.port).unwrap_or_default();
            log::info!(
                "netback: d{} vif{}: tx {} packets {} bytes, rx {} packets {} bytes, {} rx dropped, {} spoofed, {} notifications, {} errors",
                dom.domid,
                v.vif.devid(),
                s.tx_packets,
                s.tx_bytes,
                s.rx_packets,
                s.rx_bytes,
                s.rx_dropped,
                port.rx_dropped_spoofed,
                s.notifications,
                s.errors
            );
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
fn show_mac(m: [u8; 6]) -> alloc::string::String {
    alloc::format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5]
    )
}
