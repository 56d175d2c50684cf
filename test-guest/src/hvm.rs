//! HVM params, the system time and waiting: `hvm_op(HVMOP_get_param)`, `hvm_op(HVMOP_get_time)`,
//! `sched_op(SCHEDOP_yield)` and `sched_op(SCHEDOP_poll)`.

use guest_abi::hvm::{XenHvmGetTime, XenHvmParam, HVMOP_GET_PARAM, HVMOP_GET_TIME};
use guest_abi::hypercall::{HVM_OP, SCHED_OP};
use guest_abi::sched::{SchedPoll, SCHEDOP_POLL, SCHEDOP_YIELD};
use guest_abi::xen::DOMID_SELF;

use crate::hypercall::hypercall;

/// `hvm_op(HVMOP_get_param)` for this domain: the param's value, or the negative errno.
pub fn get_param(index: u32) -> Result<u64, i64> {
    let mut p = XenHvmParam {
        domid: DOMID_SELF,
        pad: 0,
        index,
        value: 0,
    };
    // SAFETY: `p` is a live, exclusively borrowed `struct xen_hvm_param` that the call reads
    // and writes back.
    let rc = unsafe {
        hypercall(
            HVM_OP,
            [
                u64::from(HVMOP_GET_PARAM),
                &mut p as *mut XenHvmParam as u64,
                0,
                0,
                0,
            ],
        )
    };
    if rc < 0 {
        Err(rc)
    } else {
        Ok(p.value)
    }
}

/// The system time in ns (`HVMOP_get_time`); 0 if the call fails.
pub fn now_ns() -> u64 {
    let mut t = XenHvmGetTime { now: 0 };
    // SAFETY: `t` is a live, exclusively borrowed `struct xen_hvm_get_time` the call fills.
    let rc = unsafe {
        hypercall(
            HVM_OP,
            [
                u64::from(HVMOP_GET_TIME),
                &mut t as *mut XenHvmGetTime as u64,
                0,
                0,
                0,
            ],
        )
    };
    if rc < 0 {
        0
    } else {
        t.now
    }
}

/// `SCHEDOP_yield`: gives the other domains (and the backends) a turn.
pub fn sched_yield() {
    // SAFETY: SCHEDOP_yield takes no pointer.
    unsafe { hypercall(SCHED_OP, [u64::from(SCHEDOP_YIELD), 0, 0, 0, 0]) };
}

/// `SCHEDOP_poll` on `ports` until one is pending or the system time reaches `timeout_ns`
/// (absolute; 0 = none). Returns the hypercall's result.
pub fn poll(ports: &[u32], timeout_ns: u64) -> i64 {
    let mut p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: ports.len() as u32,
        _pad: 0,
        timeout: timeout_ns,
    };
    // SAFETY: `p` is a live `struct sched_poll`; its `ports` handle points at `ports.len()`
    // live `u32`s. The call only reads both.
    unsafe {
        hypercall(
            SCHED_OP,
            [
                u64::from(SCHEDOP_POLL),
                &mut p as *mut SchedPoll as u64,
                0,
                0,
                0,
            ],
        )
    }
}

/// A point in system time after which a wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(pub u64);

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Deadline(now_ns().saturating_add(ms * 1_000_000))
    }

    /// Whether the deadline has passed.
    pub fn passed(self) -> bool {
        now_ns() >= self.0
    }

    /// The earlier of this deadline and `ms` milliseconds from now.
    pub fn min_after_ms(self, ms: u64) -> Self {
        Deadline(self.0.min(now_ns().saturating_add(ms * 1_000_000)))
    }
}

/// Yields until `cond` holds (true) or `deadline` passes (false).
pub fn yield_until(deadline: Deadline, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if deadline.passed() {
            return false;
        }
        sched_yield();
    }
}
