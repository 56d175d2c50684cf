//! `test=heap`: every hypervisor allocation a guest can drive without xenstore, each repeated
//! until refused (or a bound), one line per kind:
//! `GUEST heap <what>: <count> then rc=<rc>` (`rc=0`: the bound was reached, nothing refused),
//! then `GUEST heap done`.
//!
//! Kinds: event channels (`EVTCHNOP_alloc_unbound`), grant-table growth
//! (`GNTTABOP_setup_table`, which reports through its `status`, and `XENMEM_add_to_physmap`
//! of grant frames), `VCPUOP_register_vcpu_info`, the three timers, `HVMOP_set_param`, and the
//! console.

use guest_abi::event_channel::{self as ev, EvtchnAllocUnbound};
use guest_abi::grant_table::{self as gt, GnttabQuerySize, GnttabSetupTable};
use guest_abi::hvm::{self, XenHvmParam};
use guest_abi::memory::XENMAPSPACE_GRANT_TABLE;
use guest_abi::vcpu::VcpuSetSingleshotTimer;
use guest_abi::vcpu::{self as vc, VcpuRegisterVcpuInfo, VcpuSetPeriodicTimer};
use guest_abi::{hypercall as nr, xen::DOMID_SELF};

use crate::hostile::{self, op_ptr};
use crate::hypercall::hypercall;
use crate::xen;

/// Most event channels asked for (twice the 2-level ABI's 4096 ports).
const MAX_PORTS: u32 = 8192;
/// Most grant frames asked for.
const MAX_GRANT_FRAMES: u32 = 1024;
/// The first frame grant frames are mapped at (2 GiB: no RAM, no MMIO).
const GRANT_GPFN: u64 = 0x8_0000;
/// The frame offered for `vcpu_info` (7 MiB: RAM above the guest image).
const VCPU_INFO_GPFN: u64 = 0x700;
/// Most `register_vcpu_info` calls.
const MAX_VCPU_INFO: u32 = 16;
/// Calls of each timer operation.
const TIMER_CALLS: u32 = 1000;
/// Timer deadlines and periods: far enough never to fire during the test (10 s).
const TIMER_NS: u64 = 10_000_000_000;
/// `HVMOP_set_param` calls of a parameter the guest may set.
const PARAM_CALLS: u32 = 2000;
/// Console calls, and bytes each (no newline: the hypervisor cuts the lines).
const CONSOLE_CALLS: u32 = 16;
/// Bytes of each console call.
const CONSOLE_BYTES: usize = 1024;

/// Runs every kind and powers the domain off.
pub fn run() -> ! {
    evtchn();
    gnttab_setup_table();
    gnttab_add_to_physmap();
    vcpu_info();
    timers();
    hvm_set_param();
    console();
    say!("heap done");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}

/// Calls `f(i)` for `i` in `0..max` until it returns non-zero: (successes, that return value).
fn until_refused(max: u32, mut f: impl FnMut(u32) -> i64) -> (u32, i64) {
    for i in 0..max {
        let rc = f(i);
        if rc != 0 {
            return (i, rc);
        }
    }
    (max, 0)
}

/// `EVTCHNOP_alloc_unbound` (remote: the backend domain 0) until `-ENOSPC`.
fn evtchn() {
    let (n, rc) = until_refused(MAX_PORTS, |_| {
        let mut a = EvtchnAllocUnbound {
            dom: DOMID_SELF,
            remote_dom: 0,
            port: 0,
        };
        // SAFETY: a live `struct evtchn_alloc_unbound`, written back with the port.
        let rc = unsafe { op_ptr(nr::EVENT_CHANNEL_OP, ev::EVTCHNOP_ALLOC_UNBOUND, &mut a) };
        rc.min(0)
    });
    say!("heap evtchn-alloc-unbound: {n} then rc={rc}");
}

/// `grant_table_op(cmd, uop, 1)`.
///
/// # Safety
/// As for [`op_ptr`]: `uop` is the structure `cmd` takes.
unsafe fn gnttab_op<T>(cmd: u32, uop: &mut T) -> i64 {
    // SAFETY: the caller vouches for the structure.
    unsafe {
        hypercall(
            nr::GRANT_TABLE_OP,
            [u64::from(cmd), uop as *mut T as u64, 1, 0, 0],
        )
    }
}

/// `GNTTABOP_setup_table` for 1, 2, ... frames until its status is an error (Xen:
/// `GNTST_general_error` past the domain's maximum).
fn gnttab_setup_table() {
    let mut q = GnttabQuerySize {
        dom: DOMID_SELF,
        ..Default::default()
    };
    // SAFETY: a live `struct gnttab_query_size`.
    let rc = unsafe { gnttab_op(gt::GNTTABOP_QUERY_SIZE, &mut q) };
    say!(
        "heap gnttab query_size rc={rc} status={} nr_frames={} max_nr_frames={}",
        q.status,
        q.nr_frames,
        q.max_nr_frames
    );
    let mut frames = [0u64; MAX_GRANT_FRAMES as usize];
    let mut status = 0;
    let (n, rc) = until_refused(MAX_GRANT_FRAMES, |i| {
        let mut s = GnttabSetupTable {
            dom: DOMID_SELF,
            nr_frames: i + 1,
            frame_list: frames.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: a live `struct gnttab_setup_table` whose frame list has room for
        // MAX_GRANT_FRAMES entries, more than `nr_frames`.
        let rc = unsafe { gnttab_op(gt::GNTTABOP_SETUP_TABLE, &mut s) };
        status = s.status;
        if rc != 0 {
            rc
        } else {
            i64::from(s.status)
        }
    });
    // `rc` is the status when the hypercall itself succeeded.
    let rc = if status != 0 && rc == i64::from(status) {
        0
    } else {
        rc
    };
    say!("heap gnttab-setup-table: {n} then rc={rc} status={status}");
}

/// `XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx)` for idx 0, 1, ... (each at its own
/// frame) until refused (Xen: `-EINVAL` at the domain's maximum).
fn gnttab_add_to_physmap() {
    let (n, rc) = until_refused(MAX_GRANT_FRAMES, |i| {
        hostile::add_to_physmap(
            XENMAPSPACE_GRANT_TABLE,
            u64::from(i),
            GRANT_GPFN + u64::from(i),
        )
    });
    say!("heap gnttab-add-to-physmap: {n} then rc={rc}");
}

/// `vcpu_op(cmd, 0, arg)`.
///
/// # Safety
/// As for [`op_ptr`].
unsafe fn vcpu_op<T>(cmd: u32, arg: &mut T) -> i64 {
    // SAFETY: the caller vouches for the structure.
    unsafe { hypercall(nr::VCPU_OP, [u64::from(cmd), 0, arg as *mut T as u64, 0, 0]) }
}

/// `VCPUOP_register_vcpu_info` at a new frame each time, until refused (Xen: once only, then
/// `-EINVAL`).
fn vcpu_info() {
    let (n, rc) = until_refused(MAX_VCPU_INFO, |i| {
        let mut r = VcpuRegisterVcpuInfo {
            mfn: VCPU_INFO_GPFN + u64::from(i),
            offset: 0,
            rsvd: 0,
        };
        // SAFETY: a live `struct vcpu_register_vcpu_info`; the frames it names are RAM above
        // the guest image that holds no Rust object.
        unsafe { vcpu_op(vc::VCPUOP_REGISTER_VCPU_INFO, &mut r) }
    });
    say!("heap vcpu-register-vcpu-info: {n} then rc={rc}");
}

/// The single-shot, periodic and `set_timer_op` timers, [`TIMER_CALLS`] times each, then
/// stopped.
fn timers() {
    let (n, rc) = until_refused(TIMER_CALLS, |_| {
        let mut t = VcpuSetSingleshotTimer {
            timeout_abs_ns: hostile::now_ns() + TIMER_NS,
            ..Default::default()
        };
        // SAFETY: a live `struct vcpu_set_singleshot_timer`.
        unsafe { vcpu_op(vc::VCPUOP_SET_SINGLESHOT_TIMER, &mut t) }
    });
    say!("heap vcpu-singleshot-timer: {n} then rc={rc}");
    let (n, rc) = until_refused(TIMER_CALLS, |_| {
        let mut t = VcpuSetPeriodicTimer {
            period_ns: TIMER_NS,
        };
        // SAFETY: a live `struct vcpu_set_periodic_timer`.
        unsafe { vcpu_op(vc::VCPUOP_SET_PERIODIC_TIMER, &mut t) }
    });
    say!("heap vcpu-periodic-timer: {n} then rc={rc}");
    let (n, rc) = until_refused(TIMER_CALLS, |_| {
        // SAFETY: set_timer_op takes no pointer.
        unsafe { hypercall(nr::SET_TIMER_OP, [hostile::now_ns() + TIMER_NS, 0, 0, 0, 0]) }
    });
    say!("heap set-timer-op: {n} then rc={rc}");
    let mut none = 0u64;
    // SAFETY: the stop sub-ops ignore their argument; `none` is a live u64 anyway.
    let stops = unsafe {
        [
            vcpu_op(vc::VCPUOP_STOP_SINGLESHOT_TIMER, &mut none),
            vcpu_op(vc::VCPUOP_STOP_PERIODIC_TIMER, &mut none),
            hypercall(nr::SET_TIMER_OP, [0; 5]),
        ]
    };
    say!(
        "heap timers stopped: rc={},{},{}",
        stops[0],
        stops[1],
        stops[2]
    );
}

/// `HVMOP_set_param(HVM_PARAM_X87_FIP_WIDTH, 8)` [`PARAM_CALLS`] times, then an index past
/// the last parameter (Xen: `-EINVAL`).
fn hvm_set_param() {
    let set = |index: u32, value: u64| {
        let mut p = XenHvmParam {
            domid: DOMID_SELF,
            pad: 0,
            index,
            value,
        };
        // SAFETY: a live `struct xen_hvm_param`.
        unsafe { op_ptr(nr::HVM_OP, hvm::HVMOP_SET_PARAM, &mut p) }
    };
    let (n, rc) = until_refused(PARAM_CALLS + 1, |i| {
        if i < PARAM_CALLS {
            set(hvm::HVM_PARAM_X87_FIP_WIDTH, 8)
        } else {
            set(hvm::HVM_NR_PARAMS, 0)
        }
    });
    say!("heap hvm-set-param: {n} then rc={rc}");
}

/// [`CONSOLE_CALLS`] console writes of [`CONSOLE_BYTES`] bytes without a newline.
fn console() {
    let text = [b'x'; CONSOLE_BYTES];
    let (n, rc) = until_refused(CONSOLE_CALLS, |_| xen::console_write(&text));
    // End the last cut line.
    xen::console_write(b"\n");
    say!("heap console: {n} then rc={rc}");
}
