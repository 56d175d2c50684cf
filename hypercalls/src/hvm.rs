//! `__HYPERVISOR_hvm_op`: HVM params, the time, and the sub-ops this
//! hypervisor declines; the fixed frames of the console and xenstore rings.

use crate::dispatch::{read_arg, write_arg};
use crate::domain::Domain;
use crate::evtchn::check_target;
use crate::{Errno, Host, HypercallResult, VcpuContext};
use guest_abi::hvm as hp;
use zerocopy::IntoBytes;

pub use crate::dispatch::hypercall_page;
pub use crate::time::TimeBase;

/// Guest frame of the console ring (QEMU's `XEN_SPECIAL_AREA`, 0xFEFF8000).
pub const CONSOLE_GFN: u64 = 0xFEFF8;
/// Guest frame of the xenstore ring (the next page of that area).
pub const STORE_GFN: u64 = 0xFEFF9;

/// How the guest may use an HVM param (Xen's `hvm_allow_{get,set}_param`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The guest may read and write it.
    ReadWrite,
    /// The guest may only read it (writes are `-EPERM`).
    Read,
    /// Deprecated: `-EINVAL` both ways.
    Deprecated,
    /// The toolstack's: `-EPERM` both ways.
    Toolstack,
}

fn access(index: u32) -> Access {
    match index {
        hp::HVM_PARAM_CALLBACK_IRQ
        | hp::HVM_PARAM_VM86_TSS
        | hp::HVM_PARAM_VM86_TSS_SIZED
        | hp::HVM_PARAM_ACPI_IOPORTS_LOCATION
        | hp::HVM_PARAM_VM_GENERATION_ID_ADDR
        | hp::HVM_PARAM_STORE_EVTCHN
        | hp::HVM_PARAM_CONSOLE_EVTCHN
        | hp::HVM_PARAM_X87_FIP_WIDTH => Access::ReadWrite,
        hp::HVM_PARAM_STORE_PFN | hp::HVM_PARAM_CONSOLE_PFN | hp::HVM_PARAM_ALTP2M => Access::Read,
        hp::HVM_PARAM_PAE_ENABLED
        | hp::HVM_PARAM_DM_DOMAIN
        | hp::HVM_PARAM_MEMORY_EVENT_CR0
        | hp::HVM_PARAM_MEMORY_EVENT_CR3
        | hp::HVM_PARAM_MEMORY_EVENT_CR4
        | hp::HVM_PARAM_MEMORY_EVENT_INT3
        | hp::HVM_PARAM_NESTEDHVM
        | hp::HVM_PARAM_MEMORY_EVENT_SINGLE_STEP
        | hp::HVM_PARAM_BUFIOREQ_EVTCHN
        | hp::HVM_PARAM_MEMORY_EVENT_MSR => Access::Deprecated,
        _ => Access::Toolstack,
    }
}

/// `HVMOP_set_param` on this domain's own params (`index` < `HVM_NR_PARAMS`).
fn set_param(dom: &mut Domain, host: &mut impl Host, index: u32, value: u64) -> HypercallResult {
    match access(index) {
        Access::ReadWrite => {}
        // Xen: ALTP2M is read-only (EEXIST); the other readable ones are the toolstack's.
        Access::Read if index == hp::HVM_PARAM_ALTP2M => return Err(Errno::EEXIST),
        Access::Read | Access::Toolstack => return Err(Errno::EPERM),
        Access::Deprecated => return Err(Errno::EINVAL),
    }
    match index {
        hp::HVM_PARAM_X87_FIP_WIDTH if !matches!(value, 0 | 4 | 8) => return Err(Errno::EINVAL),
        hp::HVM_PARAM_VM86_TSS if value > u32::MAX as u64 => return Err(Errno::EINVAL),
        _ => {}
    }
    dom.params[index as usize] = value;
    if index == hp::HVM_PARAM_CALLBACK_IRQ {
        // Xen re-asserts the callback on every vCPU with an upcall pending.
        for v in 0..dom.vcpus.len() as u32 {
            if dom.upcall_pending(host, v) {
                dom.vcpus[v as usize].needs_upcall = true;
            }
        }
    }
    Ok(0)
}

/// `HYPERVISOR_hvm_op(op, arg)`.
pub fn hvm_op(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (op, arg) = (args[0], args[1]);
    match op {
        o if o == hp::HVMOP_SET_PARAM as u64 || o == hp::HVMOP_GET_PARAM as u64 => {
            let mut p: hp::XenHvmParam = read_arg(dom, host, ctx, arg)?;
            if p.index >= hp::HVM_NR_PARAMS {
                return Err(Errno::EINVAL);
            }
            check_target(dom, p.domid)?;
            if o == hp::HVMOP_SET_PARAM as u64 {
                return set_param(dom, host, p.index, p.value);
            }
            match access(p.index) {
                Access::ReadWrite | Access::Read => {}
                Access::Deprecated => return Err(Errno::EINVAL),
                Access::Toolstack => return Err(Errno::EPERM),
            }
            p.value = dom.params[p.index as usize];
            write_arg(dom, host, ctx, arg, p.as_bytes())?;
            Ok(0)
        }
        o if o == hp::HVMOP_GET_TIME as u64 => {
            let t = hp::XenHvmGetTime {
                now: dom.system_time_ns(host),
            };
            write_arg(dom, host, ctx, arg, t.as_bytes())?;
            Ok(0)
        }
        // pagetable_dying is a shadow-paging hint (QEMU: ENOSYS); the per-vCPU
        // LAPIC upcall vector is not advertised (CPUID leaf 4 bit 6 clear).
        _ => Err(Errno::ENOSYS),
    }
}

/// Fires the timers due at `now_ns` (see [`Domain::poll_timers`]).
pub fn poll_timers(dom: &mut Domain, host: &mut impl Host, now_ns: u64) {
    dom.poll_timers(host, now_ns);
}

/// Consumes the console ring (see [`Domain::drain_console_ring`]).
pub fn drain_console_ring(dom: &mut Domain, host: &mut impl Host) {
    dom.drain_console_ring(host);
}
