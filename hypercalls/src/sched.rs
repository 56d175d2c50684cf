//! `__HYPERVISOR_sched_op`: yield, block, poll and shutdown. Blocking is only
//! recorded ([`Vcpu::blocked`](crate::Vcpu::blocked) for `SCHEDOP_block`,
//! [`Vcpu::polling`](crate::Vcpu::polling) for `SCHEDOP_poll`); the kernel keeps
//! such a vCPU off the CPU until [`Domain::should_wake`] and then calls
//! [`Domain::wake`]. A kernel that ignores `polling` just lets the poll return
//! at once, which the ABI allows (the guest re-checks and polls again).

use crate::dispatch::read_arg;
use crate::domain::{Domain, ShutdownReason};
use crate::evtchn::usable;
use crate::guest_mem::copy_from_guest;
use crate::{Errno, Host, HypercallResult, VcpuContext};
use alloc::vec::Vec;
use guest_abi::sched::{self as sc, SchedPoll, SchedRemoteShutdown, SchedShutdown};
use guest_abi::xen::DOMID_FIRST_RESERVED;

/// The most ports one `SCHEDOP_poll` may name (Xen's "fairly arbitrary limit").
pub const MAX_POLL_PORTS: u32 = 128;

impl Domain {
    /// Records a shutdown request: the first one wins, and a code set with
    /// `SCHEDOP_shutdown_code` replaces the reason given.
    pub fn request_shutdown(&mut self, reason: ShutdownReason) {
        if self.shutdown.is_none() {
            self.shutdown = Some(self.shutdown_code.unwrap_or(reason));
        }
    }
}

/// `HYPERVISOR_sched_op(cmd, arg)`.
pub fn sched_op(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, arg) = (args[0], args[1]);
    let cmd = crate::dispatch::subop(cmd)?;
    let id = ctx.vcpu_id;
    match cmd {
        sc::SCHEDOP_YIELD => {
            if let Some(v) = dom.vcpus.get_mut(id as usize) {
                v.yielded = true;
            }
            Ok(0)
        }
        sc::SCHEDOP_BLOCK => {
            // Xen's vcpu_block_enable_events: no sleep with an upcall pending.
            if id as usize >= dom.vcpus.len() {
                return Err(Errno::EINVAL);
            }
            if !dom.upcall_pending(host, id) {
                dom.vcpus[id as usize].blocked = true;
            }
            Ok(0)
        }
        sc::SCHEDOP_SHUTDOWN => {
            let s: SchedShutdown = read_arg(dom, host, ctx, arg)?;
            // Xen passes the reason on as a u8.
            dom.request_shutdown(ShutdownReason::from_code(s.reason & 0xFF));
            Ok(0)
        }
        sc::SCHEDOP_SHUTDOWN_CODE => {
            let s: SchedShutdown = read_arg(dom, host, ctx, arg)?;
            if dom.shutdown_code.is_none() {
                dom.shutdown_code = Some(ShutdownReason::from_code(s.reason & 0xFF));
            }
            Ok(0)
        }
        sc::SCHEDOP_POLL => {
            let p: SchedPoll = if ctx.compat {
                read_arg::<sc::CompatSchedPoll>(dom, host, ctx, arg)?.into()
            } else {
                read_arg(dom, host, ctx, arg)?
            };
            poll(dom, host, ctx, &p)
        }
        sc::SCHEDOP_REMOTE_SHUTDOWN => {
            let r: SchedRemoteShutdown = read_arg(dom, host, ctx, arg)?;
            // Reserved ids name no domain; a domU may shut down no domain, itself
            // included (XSM_DM_PRIV).
            if r.domain_id >= DOMID_FIRST_RESERVED {
                Err(Errno::ESRCH)
            } else {
                Err(Errno::EPERM)
            }
        }
        // Only the hardware domain may pin.
        sc::SCHEDOP_PIN_OVERRIDE => Err(Errno::EPERM),
        // SCHEDOP_watchdog: no watchdogs.
        _ => Err(Errno::ENOSYS),
    }
}

/// `SCHEDOP_poll` (Xen's `do_poll`): returns at once if an upcall or one of the
/// ports is pending; otherwise marks the vCPU polling until one is, or until the
/// timeout (absolute system time; 0 = none).
fn poll(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    p: &SchedPoll,
) -> HypercallResult {
    let id = ctx.vcpu_id;
    if id as usize >= dom.vcpus.len() {
        return Err(Errno::EINVAL);
    }
    if p.nr_ports > MAX_POLL_PORTS {
        return Err(Errno::EINVAL);
    }
    let mut raw = alloc::vec![0u8; p.nr_ports as usize * 4];
    copy_from_guest(&dom.p2m, host, &ctx.paging, p.ports, &mut raw)?;
    // Xen's `do_poll`: an upcall the vCPU can take ends the poll at once; otherwise each
    // port must be in use (`evtchn_port_poll`: -EINVAL for one out of range, free or
    // reserved), and a pending one ends it.
    if !ctx.interrupts_blocked && dom.upcall_pending(host, id) {
        return Ok(0);
    }
    let ports: Vec<u32> = raw
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    for &port in &ports {
        let in_use = port < dom.evtchn_max_channels() && dom.evtchn.get(port).is_some_and(usable);
        if !in_use {
            return Err(Errno::EINVAL);
        }
        if dom.port_is_pending(host, port) {
            return Ok(0);
        }
    }
    let v = &mut dom.vcpus[id as usize];
    v.polling = true;
    v.poll_ports = ports;
    v.poll_timeout = (p.timeout != 0).then_some(p.timeout);
    Ok(0)
}
