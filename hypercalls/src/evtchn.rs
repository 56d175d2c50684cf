//! Two-level event channels (Xen's `event_channel.h`): the port table, the
//! delivery into shared_info and the vCPU's vcpu_info, and the sub-ops Linux
//! uses. The hypervisor's own backends (console, xenstore) are domain 0.

use crate::domain::Domain;
use crate::{Errno, Host, HypercallResult, VcpuContext};
use alloc::vec::Vec;
use guest_abi::event_channel as ev;
use guest_abi::xen::DOMID_SELF;
use zerocopy::{FromBytes, IntoBytes};

/// Ports of the two-level ABI on a 64-bit guest.
pub const NR_PORTS: u32 = ev::EVTCHN_2L_NR_CHANNELS;
/// VIRQs are numbered below this.
pub const NR_VIRQS: u32 = 24;
/// `VIRQ_TIMER`.
pub const VIRQ_TIMER: u32 = 0;
/// Offsets in shared_info.
const EVTCHN_PENDING: u64 = 2048;
const EVTCHN_MASK: u64 = 2560;

/// What a port is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not allocated.
    Free,
    /// Allocated; `remote` may bind the other end. Remote 0 is the
    /// hypervisor's backend, which is always bound.
    Unbound {
        /// The domain allowed to bind.
        remote: u16,
    },
    /// A virtual IRQ delivered to a vCPU.
    Virq {
        /// The VIRQ number.
        virq: u32,
    },
    /// An inter-processor event.
    Ipi,
}

/// One port.
#[derive(Clone, Copy, Debug)]
pub struct Port {
    /// Connection.
    pub state: PortState,
    /// The vCPU notified.
    pub vcpu: u32,
}

/// The domain's port table.
#[derive(Debug, Default)]
pub struct EvtchnTable {
    ports: Vec<Port>,
}

impl EvtchnTable {
    /// The state of `port`, if it is in range and allocated.
    pub fn get(&self, port: u32) -> Option<Port> {
        self.ports
            .get(port as usize)
            .copied()
            .filter(|p| p.state != PortState::Free)
    }

    /// Allocates the lowest free port (port 0 is never valid).
    pub fn alloc(&mut self, state: PortState, vcpu: u32) -> Result<u32, Errno> {
        if self.ports.is_empty() {
            self.ports.push(Port {
                state: PortState::Unbound { remote: u16::MAX },
                vcpu: 0,
            });
        }
        let port = match self.ports.iter().position(|p| p.state == PortState::Free) {
            Some(i) => i,
            None if self.ports.len() < NR_PORTS as usize => {
                self.ports.push(Port {
                    state: PortState::Free,
                    vcpu: 0,
                });
                self.ports.len() - 1
            }
            None => return Err(Errno::ENOSPC),
        };
        self.ports[port] = Port { state, vcpu };
        Ok(port as u32)
    }

    fn find(&self, want: PortState, vcpu: u32) -> Option<u32> {
        self.ports
            .iter()
            .position(|p| p.state == want && p.vcpu == vcpu)
            .map(|i| i as u32)
    }

    fn valid(&self, port: u32) -> Result<Port, Errno> {
        if port == 0 {
            return Err(Errno::EINVAL);
        }
        self.get(port).ok_or(Errno::EINVAL)
    }
}

fn test_and_set_bit(dom: &Domain, host: &mut impl Host, hpa: u64, bit: u32) -> bool {
    let word = hpa + (bit as u64 / 64) * 8;
    let mut b = [0u8; 8];
    host.read_phys(word, &mut b);
    let v = u64::from_le_bytes(b);
    let mask = 1u64 << (bit % 64);
    if v & mask != 0 {
        return true;
    }
    host.write_phys(word, &(v | mask).to_le_bytes());
    let _ = dom;
    false
}

fn bit_is_set(host: &impl Host, hpa: u64, bit: u32) -> bool {
    let mut b = [0u8; 8];
    host.read_phys(hpa + (bit as u64 / 64) * 8, &mut b);
    u64::from_le_bytes(b) & (1 << (bit % 64)) != 0
}

/// Marks `port` pending and raises an upcall on its vCPU (steps 1-5 of the
/// 2-level delivery: pending bit, mask check, selector, upcall flag).
pub fn set_pending(dom: &mut Domain, host: &mut impl Host, port: u32) {
    let Some(p) = dom.evtchn.get(port) else {
        return;
    };
    let si = dom.shared_info_mfn * 4096;
    if test_and_set_bit(dom, host, si + EVTCHN_PENDING, port) {
        return;
    }
    if bit_is_set(host, si + EVTCHN_MASK, port) {
        return;
    }
    raise_upcall(dom, host, p.vcpu, port / 64);
}

/// Sets the selector bit and the upcall flag in `vcpu`'s vcpu_info.
fn raise_upcall(dom: &mut Domain, host: &mut impl Host, vcpu: u32, sel_bit: u32) {
    let Some(hpa) = dom.vcpu_info_hpa(vcpu) else {
        return;
    };
    if test_and_set_bit(dom, host, hpa + 8, sel_bit) {
        return;
    }
    let mut flag = [0u8];
    host.read_phys(hpa, &mut flag);
    if flag[0] == 0 {
        host.write_phys(hpa, &[1]);
    }
    if let Some(v) = dom.vcpus.get_mut(vcpu as usize) {
        v.needs_upcall = true;
    }
}

fn read<T: FromBytes + IntoBytes>(
    dom: &Domain,
    host: &impl Host,
    vcpu: &VcpuContext,
    gva: u64,
) -> Result<T, Errno> {
    crate::dispatch::read_arg(dom, host, vcpu, gva)
}

fn check_self(dom: &Domain, domid: u16) -> Result<(), Errno> {
    if domid == DOMID_SELF || domid == dom.domid {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// `HYPERVISOR_event_channel_op(cmd, arg)`.
pub fn event_channel_op(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, arg) = (args[0], args[1]);
    let nr_vcpus = dom.vcpus.len() as u32;
    match cmd as u32 {
        _ if cmd > u32::MAX as u64 => Err(Errno::ENOSYS),
        ev::EVTCHNOP_ALLOC_UNBOUND => {
            let mut a: ev::EvtchnAllocUnbound = read(dom, host, vcpu, arg)?;
            check_self(dom, a.dom)?;
            let remote = if a.remote_dom == DOMID_SELF {
                dom.domid
            } else {
                a.remote_dom
            };
            if remote != 0 && remote != dom.domid {
                return Err(Errno::ESRCH);
            }
            a.port = dom.evtchn.alloc(PortState::Unbound { remote }, 0)?;
            crate::dispatch::write_arg(dom, host, vcpu, arg, a.as_bytes())?;
            Ok(0)
        }
        ev::EVTCHNOP_BIND_VIRQ => {
            let mut a: ev::EvtchnBindVirq = read(dom, host, vcpu, arg)?;
            if a.virq >= NR_VIRQS {
                return Err(Errno::EINVAL);
            }
            if a.vcpu >= nr_vcpus {
                return Err(Errno::ENOENT);
            }
            let state = PortState::Virq { virq: a.virq };
            if dom.evtchn.find(state, a.vcpu).is_some() {
                return Err(Errno::EEXIST);
            }
            a.port = dom.evtchn.alloc(state, a.vcpu)?;
            crate::dispatch::write_arg(dom, host, vcpu, arg, a.as_bytes())?;
            Ok(0)
        }
        ev::EVTCHNOP_BIND_IPI => {
            let mut a: ev::EvtchnBindIpi = read(dom, host, vcpu, arg)?;
            if a.vcpu >= nr_vcpus {
                return Err(Errno::ENOENT);
            }
            a.port = dom.evtchn.alloc(PortState::Ipi, a.vcpu)?;
            crate::dispatch::write_arg(dom, host, vcpu, arg, a.as_bytes())?;
            Ok(0)
        }
        ev::EVTCHNOP_CLOSE => {
            let a: ev::EvtchnClose = read(dom, host, vcpu, arg)?;
            dom.evtchn.valid(a.port)?;
            if Some(a.port) == dom.console_port || Some(a.port) == dom.store_port {
                // The toolstack's ports stay reserved for their backends.
                return Ok(0);
            }
            dom.evtchn.ports[a.port as usize].state = PortState::Free;
            Ok(0)
        }
        ev::EVTCHNOP_SEND => {
            let a: ev::EvtchnSend = read(dom, host, vcpu, arg)?;
            match dom.evtchn.valid(a.port)?.state {
                PortState::Ipi => set_pending(dom, host, a.port),
                PortState::Unbound { remote: 0 } => dom.backend_kicks.push(a.port),
                PortState::Unbound { .. } => {} // nobody listens: dropped, as in Xen
                _ => return Err(Errno::EINVAL),
            }
            Ok(0)
        }
        ev::EVTCHNOP_UNMASK => {
            let a: ev::EvtchnUnmask = read(dom, host, vcpu, arg)?;
            let p = dom.evtchn.valid(a.port)?;
            let si = dom.shared_info_mfn * 4096;
            let word = si + EVTCHN_MASK + (a.port as u64 / 64) * 8;
            let mut b = [0u8; 8];
            host.read_phys(word, &mut b);
            let v = u64::from_le_bytes(b);
            let bit = 1u64 << (a.port % 64);
            if v & bit != 0 {
                host.write_phys(word, &(v & !bit).to_le_bytes());
                if bit_is_set(host, si + EVTCHN_PENDING, a.port) {
                    raise_upcall(dom, host, p.vcpu, a.port / 64);
                }
            }
            Ok(0)
        }
        ev::EVTCHNOP_BIND_VCPU => {
            let a: ev::EvtchnBindVcpu = read(dom, host, vcpu, arg)?;
            dom.evtchn.valid(a.port)?;
            if a.vcpu >= nr_vcpus {
                return Err(Errno::ENOENT);
            }
            dom.evtchn.ports[a.port as usize].vcpu = a.vcpu;
            Ok(0)
        }
        ev::EVTCHNOP_STATUS => {
            let mut a: ev::EvtchnStatus = read(dom, host, vcpu, arg)?;
            check_self(dom, a.dom)?;
            let p = dom.evtchn.get(a.port);
            let (status, u) = match p.map(|p| p.state) {
                None => (ev::EVTCHNSTAT_CLOSED, ev::EvtchnStatusU::default()),
                Some(PortState::Unbound { remote }) => {
                    (ev::EVTCHNSTAT_UNBOUND, ev::EvtchnStatusU::unbound(remote))
                }
                Some(PortState::Virq { virq }) => {
                    (ev::EVTCHNSTAT_VIRQ, ev::EvtchnStatusU::pirq_or_virq(virq))
                }
                Some(PortState::Ipi) => (ev::EVTCHNSTAT_IPI, ev::EvtchnStatusU::default()),
                Some(PortState::Free) => (ev::EVTCHNSTAT_CLOSED, ev::EvtchnStatusU::default()),
            };
            a.status = status;
            a.vcpu = p.map_or(0, |p| p.vcpu);
            a.u = u;
            crate::dispatch::write_arg(dom, host, vcpu, arg, a.as_bytes())?;
            Ok(0)
        }
        // FIFO ABI and priorities: not offered, so Linux uses the 2-level ABI.
        _ => Err(Errno::ENOSYS),
    }
}

/// Fires VIRQ_TIMER on `vcpu` if it is bound.
pub fn fire_timer(dom: &mut Domain, host: &mut impl Host, vcpu: u32) {
    if let Some(port) = dom.evtchn.find(PortState::Virq { virq: VIRQ_TIMER }, vcpu) {
        set_pending(dom, host, port);
    }
}
