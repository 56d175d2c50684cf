//! Event channels: `EVTCHNOP_alloc_unbound` and `EVTCHNOP_send`, and waiting for a port with
//! `SCHEDOP_poll` once shared_info is mapped and every port masked (no upcalls: the guest runs
//! with interrupts off and polls).

use guest_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnSend, EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_SEND,
};
use guest_abi::hypercall::EVENT_CHANNEL_OP;
use guest_abi::xen::DOMID_SELF;

use crate::hvm::{self, Deadline};
use crate::hypercall::hypercall;
use crate::shmem;
use crate::xen;

/// Offset of `evtchn_pending[]` in shared_info.
const EVTCHN_PENDING: u64 = 2048;
/// Offset of `evtchn_mask[]` in shared_info.
const EVTCHN_MASK: u64 = 2560;
/// Bytes of each of those bitmaps (4096 ports).
const EVTCHN_BITMAP_BYTES: u64 = 512;
/// Offset of vCPU 0's `evtchn_pending_sel` (its `vcpu_info` starts shared_info).
const VCPU0_PENDING_SEL: u64 = 8;

/// `EVTCHNOP_alloc_unbound`: a new port of this domain that `remote` may bind (0: the
/// hypervisor's backends); the port or the negative errno.
pub fn alloc_unbound(remote: u16) -> Result<u32, i64> {
    let mut a = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    // SAFETY: `a` is a live, exclusively borrowed `struct evtchn_alloc_unbound` the call reads
    // and writes back.
    let rc = unsafe {
        hypercall(
            EVENT_CHANNEL_OP,
            [
                u64::from(EVTCHNOP_ALLOC_UNBOUND),
                &mut a as *mut EvtchnAllocUnbound as u64,
                0,
                0,
                0,
            ],
        )
    };
    if rc < 0 {
        Err(rc)
    } else {
        Ok(a.port)
    }
}

/// `EVTCHNOP_send` on `port`; the hypercall's result.
pub fn send(port: u32) -> i64 {
    let mut s = EvtchnSend { port };
    // SAFETY: `s` is a live `struct evtchn_send` the call only reads.
    unsafe {
        hypercall(
            EVENT_CHANNEL_OP,
            [
                u64::from(EVTCHNOP_SEND),
                &mut s as *mut EvtchnSend as u64,
                0,
                0,
                0,
            ],
        )
    }
}

/// shared_info mapped at a fixed frame, with every port masked: ports are then waited for with
/// `SCHEDOP_poll`, never delivered.
pub struct Events {
    /// Guest-physical address of shared_info.
    si: u64,
}

impl Events {
    /// Maps shared_info at `gpfn` (`XENMEM_add_to_physmap`), masks every port and clears
    /// vCPU 0's upcall flag and selector (set by events before the masking).
    pub fn map(gpfn: u64) -> Result<Events, i64> {
        let mut xatp = xen::AddToPhysmap {
            domid: xen::DOMID_SELF,
            size: 0,
            space: xen::XENMAPSPACE_SHARED_INFO,
            idx: 0,
            gpfn,
        };
        let rc = xen::add_to_physmap(&mut xatp);
        if rc != 0 {
            return Err(rc);
        }
        let si = gpfn << 12;
        for i in (0..EVTCHN_BITMAP_BYTES).step_by(4) {
            shmem::wr32(si + EVTCHN_MASK + i, u32::MAX);
        }
        shmem::barrier();
        // evtchn_upcall_pending is the first byte of vcpu_info 0.
        shmem::wr8(si, 0);
        shmem::wr32(si + VCPU0_PENDING_SEL, 0);
        shmem::wr32(si + VCPU0_PENDING_SEL + 4, 0);
        Ok(Events { si })
    }

    /// Clears `port`'s pending bit; whether it was set.
    pub fn clear(&self, port: u32) -> bool {
        let word = self.si + EVTCHN_PENDING + u64::from(port / 32) * 4;
        let bit = 1u32 << (port % 32);
        let v = shmem::rd32(word);
        if v & bit != 0 {
            shmem::wr32(word, v & !bit);
            true
        } else {
            false
        }
    }

    /// Waits until `port` is signalled or `deadline` passes, then clears it. Callers clear the
    /// port, check what they wait for, and only then wait, so no signal is lost.
    pub fn wait(&self, port: u32, deadline: Deadline) {
        if self.clear(port) {
            return;
        }
        // Neither masked-port events nor the poll raise an upcall, but clear it anyway: a set
        // flag would end every poll at once.
        shmem::wr8(self.si, 0);
        hvm::poll(&[port], deadline.0.max(1));
        self.clear(port);
    }
}
