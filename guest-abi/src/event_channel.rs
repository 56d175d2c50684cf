//! `__HYPERVISOR_event_channel_op` sub-ops and structures (`event_channel.h`).

use crate::xen::DomId;
use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `evtchn_port_t`.
pub type EvtchnPort = u32;

/// `EVTCHNOP_bind_interdomain`: [`EvtchnBindInterdomain`].
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// `EVTCHNOP_bind_virq`: [`EvtchnBindVirq`].
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// `EVTCHNOP_bind_pirq`: [`EvtchnBindPirq`].
pub const EVTCHNOP_BIND_PIRQ: u32 = 2;
/// `EVTCHNOP_close`: [`EvtchnClose`].
pub const EVTCHNOP_CLOSE: u32 = 3;
/// `EVTCHNOP_send`: [`EvtchnSend`].
pub const EVTCHNOP_SEND: u32 = 4;
/// `EVTCHNOP_status`: [`EvtchnStatus`].
pub const EVTCHNOP_STATUS: u32 = 5;
/// `EVTCHNOP_alloc_unbound`: [`EvtchnAllocUnbound`].
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// `EVTCHNOP_bind_ipi`: [`EvtchnBindIpi`].
pub const EVTCHNOP_BIND_IPI: u32 = 7;
/// `EVTCHNOP_bind_vcpu`: [`EvtchnBindVcpu`].
pub const EVTCHNOP_BIND_VCPU: u32 = 8;
/// `EVTCHNOP_unmask`: [`EvtchnUnmask`].
pub const EVTCHNOP_UNMASK: u32 = 9;
/// `EVTCHNOP_reset`: [`EvtchnReset`].
pub const EVTCHNOP_RESET: u32 = 10;
/// `EVTCHNOP_init_control`: [`EvtchnInitControl`] (FIFO ABI).
pub const EVTCHNOP_INIT_CONTROL: u32 = 11;
/// `EVTCHNOP_expand_array`: [`EvtchnExpandArray`] (FIFO ABI).
pub const EVTCHNOP_EXPAND_ARRAY: u32 = 12;
/// `EVTCHNOP_set_priority`: [`EvtchnSetPriority`] (FIFO ABI).
pub const EVTCHNOP_SET_PRIORITY: u32 = 13;
/// `EVTCHNOP_reset_cont`: continuation of `reset`.
pub const EVTCHNOP_RESET_CONT: u32 = 14;

/// `EVTCHNSTAT_closed`: the port is not in use.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`: waiting for an interdomain connection.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_interdomain`: connected to a remote domain.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_pirq`: bound to a physical IRQ.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `EVTCHNSTAT_virq`: bound to a virtual IRQ.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`: bound to a virtual IPI.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `BIND_PIRQ__WILL_SHARE` in [`EvtchnBindPirq::flags`].
pub const BIND_PIRQ_WILL_SHARE: u32 = 1;

/// `EVTCHN_2L_NR_CHANNELS` on x86-64: number of ports of the 2-level ABI (64 * 64).
pub const EVTCHN_2L_NR_CHANNELS: u32 = 4096;
/// `EVTCHN_FIFO_PRIORITY_MAX`: the highest FIFO priority.
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
/// `EVTCHN_FIFO_PRIORITY_DEFAULT`: the priority of a newly bound port.
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
/// `EVTCHN_FIFO_PRIORITY_MIN`: the lowest FIFO priority.
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
/// `EVTCHN_FIFO_MAX_QUEUES`: one queue per priority, per vCPU.
pub const EVTCHN_FIFO_MAX_QUEUES: usize = EVTCHN_FIFO_PRIORITY_MIN as usize + 1;

/// `event_word_t`: one port's word in the FIFO event array.
pub type EventWord = u32;
/// `EVTCHN_FIFO_PENDING`: bit of an [`EventWord`], the event is pending.
pub const EVTCHN_FIFO_PENDING: u32 = 31;
/// `EVTCHN_FIFO_MASKED`: bit of an [`EventWord`], the event is masked.
pub const EVTCHN_FIFO_MASKED: u32 = 30;
/// `EVTCHN_FIFO_LINKED`: bit of an [`EventWord`], the event is on a queue.
pub const EVTCHN_FIFO_LINKED: u32 = 29;
/// `EVTCHN_FIFO_BUSY`: bit of an [`EventWord`], Xen is updating the LINK field.
pub const EVTCHN_FIFO_BUSY: u32 = 28;
/// `EVTCHN_FIFO_LINK_BITS`: width of the LINK field (the next port on the queue).
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
/// `EVTCHN_FIFO_LINK_MASK`: the LINK field of an [`EventWord`].
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
/// `EVTCHN_FIFO_NR_CHANNELS`: number of ports of the FIFO ABI.
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;

/// `struct evtchn_alloc_unbound` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnAllocUnbound {
    /// In: domain to allocate in (usually `DOMID_SELF`).
    pub dom: DomId,
    /// In: the domain allowed to bind the other end.
    pub remote_dom: DomId,
    /// Out: the new port.
    pub port: EvtchnPort,
}
assert_size!(EvtchnAllocUnbound, 8);

/// `struct evtchn_bind_interdomain` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindInterdomain {
    /// In: the remote domain.
    pub remote_dom: DomId,
    /// Implicit C padding.
    pub _pad: u16,
    /// In: the remote domain's unbound port.
    pub remote_port: EvtchnPort,
    /// Out: the local port.
    pub local_port: EvtchnPort,
}
assert_size!(EvtchnBindInterdomain, 12);

/// `struct evtchn_bind_virq` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindVirq {
    /// In: `VIRQ_*`.
    pub virq: u32,
    /// In: the vCPU to bind on.
    pub vcpu: u32,
    /// Out: the new port.
    pub port: EvtchnPort,
}
assert_size!(EvtchnBindVirq, 12);

/// `struct evtchn_bind_pirq` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindPirq {
    /// In: the physical IRQ.
    pub pirq: u32,
    /// In: `BIND_PIRQ__*`.
    pub flags: u32,
    /// Out: the new port.
    pub port: EvtchnPort,
}
assert_size!(EvtchnBindPirq, 12);

/// `struct evtchn_bind_ipi` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindIpi {
    /// In: the vCPU that receives the IPI.
    pub vcpu: u32,
    /// Out: the new port.
    pub port: EvtchnPort,
}
assert_size!(EvtchnBindIpi, 8);

/// `struct evtchn_close` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnClose {
    /// The port to close.
    pub port: EvtchnPort,
}
assert_size!(EvtchnClose, 4);

/// `struct evtchn_send` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnSend {
    /// The local port whose remote end is notified.
    pub port: EvtchnPort,
}
assert_size!(EvtchnSend, 4);

/// The union `u` of `struct evtchn_status` (8 bytes), as raw fields; which ones are meaningful
/// depends on [`EvtchnStatus::status`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnStatusU {
    /// `unbound.dom` / `interdomain.dom`: the remote domain.
    pub dom: DomId,
    /// Padding inside the union.
    pub _pad: u16,
    /// `interdomain.port` (the remote port); for `pirq`/`virq` status this word is at offset 0
    /// instead, see [`EvtchnStatusU::pirq_or_virq`].
    pub port: EvtchnPort,
}
assert_size!(EvtchnStatusU, 8);

impl EvtchnStatusU {
    /// The union for `EVTCHNSTAT_unbound`.
    pub const fn unbound(dom: DomId) -> Self {
        EvtchnStatusU {
            dom,
            _pad: 0,
            port: 0,
        }
    }

    /// The union for `EVTCHNSTAT_interdomain`.
    pub const fn interdomain(dom: DomId, port: EvtchnPort) -> Self {
        EvtchnStatusU { dom, _pad: 0, port }
    }

    /// The union for `EVTCHNSTAT_pirq` / `EVTCHNSTAT_virq`: a `u32` at offset 0.
    pub const fn pirq_or_virq(v: u32) -> Self {
        EvtchnStatusU {
            dom: v as u16,
            _pad: (v >> 16) as u16,
            port: 0,
        }
    }
}

/// `struct evtchn_status` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnStatus {
    /// In: the domain (usually `DOMID_SELF`).
    pub dom: DomId,
    /// Implicit C padding.
    pub _pad: u16,
    /// In: the port.
    pub port: EvtchnPort,
    /// Out: `EVTCHNSTAT_*`.
    pub status: u32,
    /// Out: the vCPU the port is bound to.
    pub vcpu: u32,
    /// Out: status-specific data.
    pub u: EvtchnStatusU,
}
assert_size!(EvtchnStatus, 24);
assert_offset!(EvtchnStatus, u, 16);

/// `struct evtchn_bind_vcpu` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindVcpu {
    /// The port to re-target.
    pub port: EvtchnPort,
    /// The vCPU to notify.
    pub vcpu: u32,
}
assert_size!(EvtchnBindVcpu, 8);

/// `struct evtchn_unmask` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnUnmask {
    /// The port to unmask.
    pub port: EvtchnPort,
}
assert_size!(EvtchnUnmask, 4);

/// `struct evtchn_reset` (2 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnReset {
    /// The domain whose ports are closed.
    pub dom: DomId,
}
assert_size!(EvtchnReset, 2);

/// `struct evtchn_init_control` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnInitControl {
    /// In: frame of the FIFO control block.
    pub control_gfn: u64,
    /// In: offset of the control block in that frame.
    pub offset: u32,
    /// In: the vCPU.
    pub vcpu: u32,
    /// Out: number of link bits.
    pub link_bits: u8,
    /// Padding (C `_pad`).
    pub _pad: [u8; 7],
}
assert_size!(EvtchnInitControl, 24);

/// `struct evtchn_expand_array` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnExpandArray {
    /// Frame of the next event-array page.
    pub array_gfn: u64,
}
assert_size!(EvtchnExpandArray, 8);

/// `struct evtchn_set_priority` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnSetPriority {
    /// The port.
    pub port: EvtchnPort,
    /// The FIFO priority (0 highest .. 15 lowest).
    pub priority: u32,
}
assert_size!(EvtchnSetPriority, 8);

/// `struct evtchn_fifo_control_block` (72 bytes): a vCPU's FIFO control block, in guest
/// memory at [`EvtchnInitControl::control_gfn`] + [`EvtchnInitControl::offset`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnFifoControlBlock {
    /// One bit per priority: its queue has events (set by Xen, cleared by the guest).
    pub ready: u32,
    /// Reserved.
    pub _rsvd: u32,
    /// The first port of each priority's queue (written by Xen when the queue was empty).
    pub head: [EventWord; EVTCHN_FIFO_MAX_QUEUES],
}
assert_size!(EvtchnFifoControlBlock, 72);
assert_offset!(EvtchnFifoControlBlock, ready, 0);
assert_offset!(EvtchnFifoControlBlock, head, 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_union_encodings() {
        let s = EvtchnStatus {
            u: EvtchnStatusU::pirq_or_virq(0x0001_0002),
            ..Default::default()
        };
        assert_eq!(&s.as_bytes()[16..20], &0x0001_0002u32.to_le_bytes());
        let s = EvtchnStatus {
            u: EvtchnStatusU::interdomain(7, 9),
            ..Default::default()
        };
        assert_eq!(&s.as_bytes()[16..18], &7u16.to_le_bytes());
        assert_eq!(&s.as_bytes()[20..24], &9u32.to_le_bytes());
        assert_eq!(EvtchnStatusU::unbound(3).dom, 3);
    }
}
