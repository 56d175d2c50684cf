//! 32-bit callers (`VcpuContext::compat`, a PVH kernel before it enters long mode): the
//! structures whose layout differs for a 32-bit guest are read and written in that layout,
//! and those not translated are `-ENOSYS` rather than misread.

mod common;

use common::{err, Guest, ARG, BUF};
use guest_abi::grant_table::{GNTTABOP_COPY, GNTTABOP_SETUP_TABLE};
use guest_abi::hypercall as hc;
use guest_abi::memory::{
    CompatAddToPhysmap, CompatMemoryMap, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP,
    XENMEM_MEMORY_MAP,
};
use guest_abi::sched::{CompatSchedPoll, SCHEDOP_POLL};
use guest_abi::vcpu::{
    CompatVcpuSetSingleshotTimer, VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, VCPUOP_SET_SINGLESHOT_TIMER,
};
use guest_abi::xen::DOMID_SELF;
use guest_abi::Errno;
use hypercalls::testhost::RAM_MIB;
use zerocopy::IntoBytes;

fn compat_guest() -> Guest {
    let mut g = Guest::new(false, 1);
    g.ctx.compat = true;
    g
}

#[test]
fn add_to_physmap_takes_the_16_byte_layout() {
    let mut g = compat_guest();
    let xatp = CompatAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: XENMAPSPACE_SHARED_INFO,
        idx: 0,
        gpfn: 0x500,
    };
    // At the very end of RAM: a 24-byte read would run past it.
    let at = (RAM_MIB << 20) - 16;
    g.write(at, xatp.as_bytes());
    let r = g.call(hc::MEMORY_OP, [XENMEM_ADD_TO_PHYSMAP as u64, at, 0, 0, 0]);
    assert_eq!(r, 0);
    assert_eq!(g.dom.shared_info_gfn, Some(0x500));
}

#[test]
fn memory_map_takes_a_32_bit_handle() {
    let mut g = compat_guest();
    g.dom.e820 = vec![(0, 0x9_F000, 1), (0x10_0000, 0x70_0000, 1)];
    let map = CompatMemoryMap {
        nr_entries: 8,
        buffer: BUF as u32,
    };
    let (r, out) = g.op(hc::MEMORY_OP, XENMEM_MEMORY_MAP as u64, map);
    assert_eq!((r, out.nr_entries, out.buffer), (0, 2, BUF as u32));
    let second = g.read(BUF + 20, 20);
    assert_eq!(&second[..8], &0x10_0000u64.to_le_bytes());
    assert_eq!(&second[16..20], &1u32.to_le_bytes());
}

#[test]
fn poll_takes_a_32_bit_handle() {
    let mut g = compat_guest();
    let port = common::bind_ipi(&mut g, 0);
    assert_eq!(common::send(&mut g, port), 0);
    g.write(BUF, &port.to_le_bytes());
    let p = CompatSchedPoll {
        ports: BUF as u32,
        nr_ports: 1,
        timeout: 0,
    };
    // The port is pending: the poll returns at once, as it does for a 64-bit caller.
    let (r, _) = g.op(hc::SCHED_OP, SCHEDOP_POLL as u64, p);
    assert_eq!(r, 0);
    assert!(!g.dom.vcpus[0].polling);
    // A bad port in the 32-bit list is Xen's -EINVAL (once no upcall is pending).
    let mut g = compat_guest();
    g.write(BUF, &u32::MAX.to_le_bytes());
    let (r, _) = g.op(hc::SCHED_OP, SCHEDOP_POLL as u64, p);
    assert_eq!(r, err(Errno::EINVAL));
}

#[test]
fn singleshot_timer_takes_the_12_byte_layout() {
    let mut g = compat_guest();
    g.set_time(1_000);
    let t = CompatVcpuSetSingleshotTimer {
        timeout_abs_ns: 5_000_000,
        flags: 0,
    };
    let at = (RAM_MIB << 20) - 12;
    g.write(at, t.as_bytes());
    let r = g.call(
        hc::VCPU_OP,
        [VCPUOP_SET_SINGLESHOT_TIMER as u64, 0, at, 0, 0],
    );
    assert_eq!(r, 0);
    assert_eq!(g.dom.vcpus[0].singleshot_deadline, Some(5_000_000));
}

#[test]
fn untranslated_layouts_are_enosys_for_32_bit_callers() {
    let mut g = compat_guest();
    let r = g.call(
        hc::VCPU_OP,
        [VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA as u64, 0, ARG, 0, 0],
    );
    assert_eq!(r, err(Errno::ENOSYS));
    for cmd in [GNTTABOP_SETUP_TABLE, GNTTABOP_COPY] {
        let r = g.call(hc::GRANT_TABLE_OP, [cmd as u64, ARG, 1, 0, 0]);
        assert_eq!(r, err(Errno::ENOSYS), "gnttab op {cmd}");
    }
    // The same calls from 64-bit code are served.
    g.ctx.compat = false;
    let r = g.call(
        hc::GRANT_TABLE_OP,
        [GNTTABOP_SETUP_TABLE as u64, ARG, 0, 0, 0],
    );
    assert_ne!(r, err(Errno::ENOSYS));
}
