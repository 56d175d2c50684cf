//! Event channels (`event_channel.h`, Xen's `event_channel.c` and `event_2l.c`):
//! the port table, the `EVTCHNOP_*` sub-ops, and 2-level delivery into shared_info
//! and the target vCPU's vcpu_info. The FIFO ABI is in [`crate::evtchn_fifo`]; a
//! domain is on one ABI or the other ([`Domain::evtchn_fifo`]) and every delivery
//! path here ([`set_pending`], unmask, close, [`Domain::port_is_pending`],
//! [`Domain::port_is_masked`]) goes to the ABI in use.
//!
//! The hypervisor is domain 0: its backends (console, xenstore, netback) are the
//! remote end of every port whose remote domain is 0. A guest `send` on such a
//! port is recorded as a backend kick ([`Domain::take_backend_kicks`]); a backend
//! signals the guest with [`Domain::notify_port`].
//!
//! Every port up to the domain's `max_evtchn_port` (xl's `event_channels`,
//! default [`DEFAULT_MAX_PORT`]; at most [`NR_PORTS`] - 1 on the 2-level ABI,
//! [`FIFO_NR_PORTS`] - 1 on FIFO) is valid, as if Xen had allocated all its
//! buckets; port 0 is reserved, as in Xen. Linux 6.1 asks for FIFO first
//! (`EVTCHNOP_init_control`) and uses it; on the 2-level ABI `set_priority` is
//! `-ENOSYS` and `expand_array` `-EOPNOTSUPP`, as in Xen.

use crate::dispatch::{read_arg as read, write_arg};
use crate::domain::Domain;
use crate::evtchn_fifo;
use crate::{test_and_clear_bit, test_and_set_bit, test_bit};
use crate::{Errno, Host, HypercallResult, VcpuContext};
use alloc::vec::Vec;
use guest_abi::event_channel as ev;
use guest_abi::xen::{self as gx, DOMID_SELF};
use zerocopy::IntoBytes;

/// Ports of the two-level ABI on a 64-bit guest (`EVTCHN_2L_NR_CHANNELS`).
pub const NR_PORTS: u32 = ev::EVTCHN_2L_NR_CHANNELS;
/// Ports of the FIFO ABI (`EVTCHN_FIFO_NR_CHANNELS`).
pub const FIFO_NR_PORTS: u32 = ev::EVTCHN_FIFO_NR_CHANNELS;
/// The domain id of the hypervisor's backends.
pub const BACKEND_DOMID: u16 = 0;
/// Offset of `evtchn_pending` in shared_info.
pub(crate) const EVTCHN_PENDING: u64 = 2048;
/// Offset of `evtchn_mask` in shared_info.
const EVTCHN_MASK: u64 = 2560;
/// Offset of `evtchn_pending_sel` in a vcpu_info.
const PENDING_SEL: u64 = 8;

/// What a port is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not allocated.
    Free,
    /// Never allocated (port 0).
    Reserved,
    /// Allocated, waiting for `remote` to bind it. When `remote` is
    /// [`BACKEND_DOMID`], the hypervisor's backends count as bound.
    Unbound {
        /// The domain allowed to bind the other end.
        remote: u16,
    },
    /// Connected to `remote_port` of `remote_dom` (this domain for a loopback
    /// pair, [`BACKEND_DOMID`] for a hypervisor backend).
    Interdomain {
        /// The remote domain.
        remote_dom: u16,
        /// The remote port.
        remote_port: u32,
    },
    /// A virtual IRQ.
    Virq {
        /// The `VIRQ_*` number.
        virq: u32,
    },
    /// An inter-processor event (delivered to the port's vCPU).
    Ipi,
}

/// Whether the guest uses the port (Xen's `evtchn_usable`): not free, not reserved.
pub(crate) fn usable(p: Port) -> bool {
    !matches!(p.state, PortState::Free | PortState::Reserved)
}

impl PortState {
    /// Whether the other end is the hypervisor (domain 0).
    pub fn is_backend(self) -> bool {
        matches!(
            self,
            PortState::Unbound {
                remote: BACKEND_DOMID
            } | PortState::Interdomain {
                remote_dom: BACKEND_DOMID,
                ..
            }
        )
    }
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// What it is connected to.
    pub state: PortState,
    /// The vCPU it notifies.
    pub vcpu: u32,
}

const FREE: Port = Port {
    state: PortState::Free,
    vcpu: 0,
};

/// libxl's default `event_channels`: the highest port a domain may use.
pub const DEFAULT_MAX_PORT: u32 = 1023;

/// A domain's port table.
#[derive(Clone, Debug)]
pub struct EvtchnTable {
    /// Index = port; grows on allocation, never beyond `max_port`.
    ports: Vec<Port>,
    /// The highest valid port (Xen's `max_evtchn_port` within `max_evtchns`).
    max_port: u32,
    /// The limit the configuration asked for ([`EvtchnTable::set_max_port`]),
    /// at most [`FIFO_NR_PORTS`] - 1.
    configured: u32,
    /// Whether the domain is on the FIFO ABI (more ports).
    fifo: bool,
}

impl Default for EvtchnTable {
    fn default() -> Self {
        EvtchnTable {
            ports: alloc::vec![Port {
                state: PortState::Reserved,
                vcpu: 0,
            }],
            max_port: DEFAULT_MAX_PORT,
            configured: DEFAULT_MAX_PORT,
            fifo: false,
        }
    }
}

impl EvtchnTable {
    /// Limits the domain to ports `0..=max_port` (xl's `event_channels`), at most the
    /// last port of the ABI in use (`NR_PORTS - 1` on 2-level, `FIFO_NR_PORTS - 1`
    /// once the guest switched to FIFO: the limit applies in full from then on);
    /// ports already allocated above it stay valid.
    pub fn set_max_port(&mut self, max_port: u32) {
        self.configured = max_port.min(FIFO_NR_PORTS - 1);
        self.update_limit();
    }

    /// Switches the limit between the 2-level and the FIFO ABI's.
    pub(crate) fn set_fifo(&mut self, fifo: bool) {
        self.fifo = fifo;
        self.update_limit();
    }

    fn update_limit(&mut self) {
        let top = self.ports.len().saturating_sub(1) as u32;
        let abi_last = if self.fifo { FIFO_NR_PORTS } else { NR_PORTS } - 1;
        self.max_port = self.configured.min(abi_last).max(top);
    }

    /// The highest valid port.
    pub fn max_port(&self) -> u32 {
        self.max_port
    }

    /// `port`'s state, or `None` if it is out of range (not a valid port).
    pub fn get(&self, port: u32) -> Option<Port> {
        if port > self.max_port {
            return None;
        }
        Some(self.ports.get(port as usize).copied().unwrap_or(FREE))
    }

    /// Allocated ports (not free, not reserved), in ascending order.
    pub fn bound(&self) -> impl Iterator<Item = (u32, Port)> + '_ {
        self.ports
            .iter()
            .enumerate()
            .filter(|(_, p)| usable(**p))
            .map(|(i, p)| (i as u32, *p))
    }

    /// Allocates the lowest free port (port 0 is reserved).
    pub fn alloc(&mut self, state: PortState, vcpu: u32) -> Result<u32, Errno> {
        self.alloc_unless(state, vcpu, |_| false)
    }

    /// Allocates the lowest free port that is not `busy` (Xen's `get_free_port`
    /// with `evtchn_is_busy`: under FIFO a closed port still linked on a queue is
    /// skipped). `-ENOSPC` when every port up to the limit is taken or busy.
    pub(crate) fn alloc_unless(
        &mut self,
        state: PortState,
        vcpu: u32,
        busy: impl Fn(u32) -> bool,
    ) -> Result<u32, Errno> {
        let found = self
            .ports
            .iter()
            .enumerate()
            .position(|(i, p)| p.state == PortState::Free && !busy(i as u32));
        let port = match found {
            Some(i) => i,
            None => {
                let mut fresh = None;
                while self.ports.len() <= self.max_port as usize {
                    self.ports.push(FREE);
                    let i = self.ports.len() - 1;
                    if !busy(i as u32) {
                        fresh = Some(i);
                        break;
                    }
                }
                match fresh {
                    Some(i) => i,
                    None => {
                        self.trim();
                        return Err(Errno::ENOSPC);
                    }
                }
            }
        };
        self.ports[port] = Port { state, vcpu };
        Ok(port as u32)
    }

    /// Changes the state of an allocated port.
    pub(crate) fn set_state(&mut self, port: u32, state: PortState) {
        if let Some(slot) = self.ports.get_mut(port as usize) {
            slot.state = state;
        }
    }

    fn set(&mut self, port: u32, p: Port) {
        if let Some(slot) = self.ports.get_mut(port as usize) {
            *slot = p;
        }
    }

    fn free(&mut self, port: u32) {
        self.set(port, FREE);
        self.trim();
    }

    /// Drops free ports at the end of the table.
    fn trim(&mut self) {
        while self.ports.len() > 1 && self.ports.last() == Some(&FREE) {
            self.ports.pop();
        }
    }
}

/// Marks `port` pending and, unless masked, raises an upcall on its vCPU. On the
/// 2-level ABI this is Xen's `evtchn_2l_set_pending` (pending bit, mask check,
/// selector bit, upcall flag); on FIFO, `evtchn_fifo_set_pending` (the event is
/// linked onto its vCPU's queue, see [`crate::evtchn_fifo`]). Pending a port a
/// vCPU polls ends that poll's wait. Ports that are not allocated are ignored.
pub fn set_pending(dom: &mut Domain, host: &mut impl Host, port: u32) {
    let Some(p) = dom.evtchn.get(port) else {
        return;
    };
    if !usable(p) {
        return;
    }
    if dom.evtchn_fifo.is_some() {
        evtchn_fifo::set_pending(dom, host, port, p.vcpu);
        return;
    }
    let si = dom.shared_info_mfn * 4096;
    if test_and_set_bit(host, si + EVTCHN_PENDING, port) {
        return;
    }
    if !test_bit(host, si + EVTCHN_MASK, port) {
        raise_selector(dom, host, p.vcpu, port);
    }
}

/// Sets the selector bit of `port` in `vcpu`'s vcpu_info and, if it was clear,
/// the upcall flag.
fn raise_selector(dom: &mut Domain, host: &mut impl Host, vcpu: u32, port: u32) {
    let Some(hpa) = dom.vcpu_info_hpa(vcpu) else {
        return;
    };
    if !test_and_set_bit(host, hpa + PENDING_SEL, port / 64) {
        dom.mark_events_pending(host, vcpu);
    }
}

impl Domain {
    /// Whether `port` is pending: its bit in shared_info's `evtchn_pending` on the
    /// 2-level ABI, PENDING in its event word on FIFO (false while the word's page
    /// is missing).
    pub fn port_is_pending(&self, host: &impl Host, port: u32) -> bool {
        match &self.evtchn_fifo {
            Some(f) => evtchn_fifo::is_pending(f, host, port),
            None => {
                port < NR_PORTS
                    && test_bit(host, self.shared_info_mfn * 4096 + EVTCHN_PENDING, port)
            }
        }
    }

    /// Whether `port` is masked: its bit in shared_info's `evtchn_mask` on the
    /// 2-level ABI, MASKED in its event word on FIFO (true while the word's page is
    /// missing).
    pub fn port_is_masked(&self, host: &impl Host, port: u32) -> bool {
        match &self.evtchn_fifo {
            Some(f) => evtchn_fifo::is_masked(f, host, port),
            None => {
                port >= NR_PORTS || test_bit(host, self.shared_info_mfn * 4096 + EVTCHN_MASK, port)
            }
        }
    }

    /// The number of ports of the ABI in use (Xen's `max_evtchns`): [`NR_PORTS`] on
    /// 2-level, [`FIFO_NR_PORTS`] on FIFO.
    pub fn evtchn_max_channels(&self) -> u32 {
        if self.evtchn_fifo.is_some() {
            FIFO_NR_PORTS
        } else {
            NR_PORTS
        }
    }

    /// A backend signals the guest on `port`, whose remote end must be domain 0
    /// (unbound for it or bound to it); `-EINVAL` otherwise.
    pub fn notify_port(&mut self, host: &mut impl Host, port: u32) -> Result<(), Errno> {
        match self.evtchn.get(port) {
            Some(p) if p.state.is_backend() => {
                set_pending(self, host, port);
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Sends `virq` to vCPU `vcpu` if the guest bound it (global VIRQs are bound on
    /// vCPU 0); returns whether a port was bound.
    pub fn send_virq(&mut self, host: &mut impl Host, vcpu: u32, virq: u32) -> bool {
        let slot = if gx::virq_is_per_vcpu(virq) { vcpu } else { 0 };
        let port = self
            .vcpus
            .get(slot as usize)
            .and_then(|v| v.virq_ports.get(virq as usize).copied())
            .unwrap_or(0);
        if port == 0 {
            return false;
        }
        set_pending(self, host, port);
        true
    }

    /// Takes the guest ports signalled towards domain 0 since the last call, in
    /// ascending order, each once.
    pub fn take_backend_kicks(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        for (w, word) in self.backend_kicks.iter_mut().enumerate() {
            let mut bits = core::mem::take(word);
            while bits != 0 {
                out.push(w as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        out
    }

    fn record_kick(&mut self, port: u32) {
        let w = port as usize / 64;
        if self.backend_kicks.len() <= w {
            self.backend_kicks.resize(w + 1, 0);
        }
        self.backend_kicks[w] |= 1 << (port % 64);
    }

    /// Allocates the lowest free port for `state` on `vcpu`; under FIFO a port still
    /// linked is skipped and the new port starts at the default priority.
    fn alloc_port(&mut self, host: &impl Host, state: PortState, vcpu: u32) -> Result<u32, Errno> {
        let port = match &self.evtchn_fifo {
            Some(f) => self
                .evtchn
                .alloc_unless(state, vcpu, |p| evtchn_fifo::is_busy(f, host, p))?,
            None => self.evtchn.alloc(state, vcpu)?,
        };
        evtchn_fifo::port_init(self, port);
        Ok(port)
    }

    /// Closes `port` (Xen's `evtchn_close`): `-EINVAL` unless it is allocated.
    /// Its pending bit (2-level) or PENDING (FIFO) is cleared; a loopback peer goes
    /// back to unbound.
    pub fn close_port(&mut self, host: &mut impl Host, port: u32) -> Result<(), Errno> {
        let p = self.evtchn.get(port).ok_or(Errno::EINVAL)?;
        match p.state {
            PortState::Free | PortState::Reserved => return Err(Errno::EINVAL),
            PortState::Virq { virq } => {
                let slot = if gx::virq_is_per_vcpu(virq) {
                    p.vcpu
                } else {
                    0
                };
                if let Some(v) = self.vcpus.get_mut(slot as usize) {
                    v.virq_ports[virq as usize] = 0;
                }
            }
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } if remote_dom == self.domid => {
                if let Some(mut peer) = self.evtchn.get(remote_port) {
                    peer.state = PortState::Unbound { remote: self.domid };
                    self.evtchn.set(remote_port, peer);
                }
            }
            _ => {}
        }
        if self.evtchn_fifo.is_some() {
            evtchn_fifo::clear_pending(self, host, port);
        } else {
            test_and_clear_bit(host, self.shared_info_mfn * 4096 + EVTCHN_PENDING, port);
        }
        if let Some(w) = self.backend_kicks.get_mut(port as usize / 64) {
            *w &= !(1 << (port % 64));
        }
        self.evtchn.free(port);
        if self.console_port == Some(port) {
            self.console_port = None;
        }
        if self.store_port == Some(port) {
            self.store_port = None;
        }
        Ok(())
    }
}

/// Checks the `dom` field of an argument: this domain (by id or `DOMID_SELF`);
/// domain 0 (the hypervisor) exists but is not the guest's to touch (`-EPERM`);
/// any other domain is invisible to it (`-ESRCH`).
pub(crate) fn check_target(dom: &Domain, domid: u16) -> Result<(), Errno> {
    if domid == DOMID_SELF || domid == dom.domid {
        Ok(())
    } else if domid == BACKEND_DOMID {
        Err(Errno::EPERM)
    } else {
        Err(Errno::ESRCH)
    }
}

/// The kind of a VIRQ (Xen's `get_virq_type`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum VirqType {
    /// Bound per vCPU.
    Vcpu,
    /// Bound once per domain, on vCPU 0.
    Domain,
    /// Bound by the one domain that handles it system-wide (not a domU).
    Global,
}

fn virq_type(virq: u32) -> VirqType {
    if gx::virq_is_per_vcpu(virq) {
        VirqType::Vcpu
    } else if virq == gx::VIRQ_ARGO {
        VirqType::Domain
    } else {
        VirqType::Global
    }
}

/// `HYPERVISOR_event_channel_op(cmd, arg)`.
pub fn event_channel_op(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, arg) = (args[0], args[1]);
    let cmd = crate::dispatch::subop(cmd)?;
    let nr_vcpus = dom.vcpus.len() as u32;
    match cmd {
        ev::EVTCHNOP_ALLOC_UNBOUND => {
            let mut a: ev::EvtchnAllocUnbound = read(dom, host, ctx, arg)?;
            check_target(dom, a.dom)?;
            let remote = if a.remote_dom == DOMID_SELF {
                dom.domid
            } else {
                a.remote_dom
            };
            a.port = dom.alloc_port(host, PortState::Unbound { remote }, 0)?;
            write_back(dom, host, ctx, arg, a.as_bytes(), a.port)
        }
        ev::EVTCHNOP_BIND_INTERDOMAIN => {
            let mut a: ev::EvtchnBindInterdomain = read(dom, host, ctx, arg)?;
            let rdom = if a.remote_dom == DOMID_SELF {
                dom.domid
            } else {
                a.remote_dom
            };
            if rdom != dom.domid && rdom != BACKEND_DOMID {
                return Err(Errno::ESRCH);
            }
            let rport = a.remote_port;
            if rdom == dom.domid {
                // Loopback: the remote port must be unbound for this domain.
                let ok = matches!(
                    dom.evtchn.get(rport).map(|p| p.state),
                    Some(PortState::Unbound { remote }) if remote == dom.domid
                );
                if !ok {
                    return Err(Errno::EINVAL);
                }
            } else if rport == 0 || rport >= NR_PORTS {
                return Err(Errno::EINVAL);
            }
            let state = PortState::Interdomain {
                remote_dom: rdom,
                remote_port: rport,
            };
            let lport = dom.alloc_port(host, state, 0)?;
            if rdom == dom.domid {
                let mut peer = dom.evtchn.get(rport).unwrap_or(FREE);
                peer.state = PortState::Interdomain {
                    remote_dom: rdom,
                    remote_port: lport,
                };
                dom.evtchn.set(rport, peer);
            }
            // Notifications sent to the unbound end may have been lost (Xen).
            set_pending(dom, host, lport);
            a.local_port = lport;
            write_back(dom, host, ctx, arg, a.as_bytes(), lport)
        }
        ev::EVTCHNOP_BIND_VIRQ => {
            let mut a: ev::EvtchnBindVirq = read(dom, host, ctx, arg)?;
            if a.virq >= gx::NR_VIRQS {
                return Err(Errno::EINVAL);
            }
            let ty = virq_type(a.virq);
            if ty != VirqType::Vcpu && a.vcpu != 0 {
                return Err(Errno::EINVAL);
            }
            if a.vcpu >= nr_vcpus {
                return Err(Errno::ENOENT);
            }
            if ty == VirqType::Global {
                return Err(Errno::EBUSY);
            }
            if dom.vcpus[a.vcpu as usize].virq_ports[a.virq as usize] != 0 {
                return Err(Errno::EEXIST);
            }
            a.port = dom.alloc_port(host, PortState::Virq { virq: a.virq }, a.vcpu)?;
            dom.vcpus[a.vcpu as usize].virq_ports[a.virq as usize] = a.port;
            write_back(dom, host, ctx, arg, a.as_bytes(), a.port)
        }
        ev::EVTCHNOP_BIND_IPI => {
            let mut a: ev::EvtchnBindIpi = read(dom, host, ctx, arg)?;
            if a.vcpu >= nr_vcpus {
                return Err(Errno::ENOENT);
            }
            a.port = dom.alloc_port(host, PortState::Ipi, a.vcpu)?;
            write_back(dom, host, ctx, arg, a.as_bytes(), a.port)
        }
        ev::EVTCHNOP_CLOSE => {
            let a: ev::EvtchnClose = read(dom, host, ctx, arg)?;
            dom.close_port(host, a.port)?;
            Ok(0)
        }
        ev::EVTCHNOP_SEND => {
            let a: ev::EvtchnSend = read(dom, host, ctx, arg)?;
            let p = dom.evtchn.get(a.port).ok_or(Errno::EINVAL)?;
            match p.state {
                s if s.is_backend() => dom.record_kick(a.port),
                PortState::Interdomain { remote_port, .. } => set_pending(dom, host, remote_port),
                PortState::Ipi => set_pending(dom, host, a.port),
                // Nobody is listening: dropped, as in Xen.
                PortState::Unbound { .. } => {}
                _ => return Err(Errno::EINVAL),
            }
            Ok(0)
        }
        ev::EVTCHNOP_STATUS => {
            let mut a: ev::EvtchnStatus = read(dom, host, ctx, arg)?;
            check_target(dom, a.dom)?;
            let p = dom.evtchn.get(a.port).ok_or(Errno::EINVAL)?;
            let (status, u) = match p.state {
                PortState::Free | PortState::Reserved => {
                    (ev::EVTCHNSTAT_CLOSED, ev::EvtchnStatusU::default())
                }
                PortState::Unbound { remote } => {
                    (ev::EVTCHNSTAT_UNBOUND, ev::EvtchnStatusU::unbound(remote))
                }
                PortState::Interdomain {
                    remote_dom,
                    remote_port,
                } => (
                    ev::EVTCHNSTAT_INTERDOMAIN,
                    ev::EvtchnStatusU::interdomain(remote_dom, remote_port),
                ),
                PortState::Virq { virq } => {
                    (ev::EVTCHNSTAT_VIRQ, ev::EvtchnStatusU::pirq_or_virq(virq))
                }
                PortState::Ipi => (ev::EVTCHNSTAT_IPI, ev::EvtchnStatusU::default()),
            };
            a.status = status;
            a.vcpu = p.vcpu;
            a.u = u;
            write_arg(dom, host, ctx, arg, a.as_bytes())?;
            Ok(0)
        }
        ev::EVTCHNOP_BIND_VCPU => {
            let a: ev::EvtchnBindVcpu = read(dom, host, ctx, arg)?;
            if a.vcpu >= nr_vcpus {
                return Err(Errno::ENOENT);
            }
            let mut p = dom.evtchn.get(a.port).ok_or(Errno::EINVAL)?;
            match p.state {
                PortState::Virq { virq } if virq_type(virq) != VirqType::Vcpu => {}
                PortState::Unbound { .. } | PortState::Interdomain { .. } => {}
                _ => return Err(Errno::EINVAL),
            }
            p.vcpu = a.vcpu;
            dom.evtchn.set(a.port, p);
            Ok(0)
        }
        ev::EVTCHNOP_UNMASK => {
            let a: ev::EvtchnUnmask = read(dom, host, ctx, arg)?;
            let p = dom.evtchn.get(a.port).ok_or(Errno::EINVAL)?;
            if dom.evtchn_fifo.is_some() {
                if usable(p) {
                    evtchn_fifo::unmask(dom, host, a.port, p);
                }
                return Ok(0);
            }
            // Xen's evtchn_2l_unmask: clear the mask; if it was masked and the
            // port is pending, raise the selector and upcall.
            let si = dom.shared_info_mfn * 4096;
            if test_and_clear_bit(host, si + EVTCHN_MASK, a.port)
                && test_bit(host, si + EVTCHN_PENDING, a.port)
            {
                raise_selector(dom, host, p.vcpu, a.port);
            }
            Ok(0)
        }
        ev::EVTCHNOP_RESET | ev::EVTCHNOP_RESET_CONT => {
            let a: ev::EvtchnReset = read(dom, host, ctx, arg)?;
            check_target(dom, a.dom)?;
            let ports: Vec<u32> = dom.evtchn.bound().map(|(port, _)| port).collect();
            for port in ports {
                let _ = dom.close_port(host, port);
            }
            // Xen's evtchn_reset: back to the 2-level ABI.
            if dom.evtchn_fifo.is_some() {
                evtchn_fifo::destroy(dom);
            }
            Ok(0)
        }
        ev::EVTCHNOP_INIT_CONTROL => {
            let mut a: ev::EvtchnInitControl = read(dom, host, ctx, arg)?;
            evtchn_fifo::init_control(dom, host, &mut a)?;
            write_arg(dom, host, ctx, arg, a.as_bytes())?;
            Ok(0)
        }
        ev::EVTCHNOP_EXPAND_ARRAY => {
            let a: ev::EvtchnExpandArray = read(dom, host, ctx, arg)?;
            evtchn_fifo::expand_array(dom, host, a.array_gfn)?;
            Ok(0)
        }
        ev::EVTCHNOP_SET_PRIORITY => {
            let a: ev::EvtchnSetPriority = read(dom, host, ctx, arg)?;
            let p = dom.evtchn.get(a.port).ok_or(Errno::EINVAL)?;
            // Xen's evtchn_port_set_priority: no such op on 2-level.
            if dom.evtchn_fifo.is_none() {
                return Err(Errno::ENOSYS);
            }
            if !usable(p) {
                return Err(Errno::EACCES);
            }
            evtchn_fifo::set_priority(dom, a.port, a.priority)?;
            Ok(0)
        }
        // PIRQs are not offered (no XENFEAT_hvm_pirqs).
        _ => Err(Errno::ENOSYS),
    }
}

/// Copies an updated argument back; if that faults, the port just allocated is
/// closed again so that a failed call leaves nothing behind.
fn write_back(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    arg: u64,
    bytes: &[u8],
    port: u32,
) -> HypercallResult {
    if let Err(e) = write_arg(dom, host, ctx, arg, bytes) {
        let _ = dom.close_port(host, port);
        return Err(e);
    }
    Ok(0)
}
