//! vcpu_op, set_timer_op and vm_assist: placement of vcpu_info, runstate and
//! time areas, timers, and Xen's errno for bad ids, offsets and addresses.

mod common;

use common::{err, Guest, ARG, BUF, UNMAPPED_GVA};
use guest_abi::hypercall as hc;
use guest_abi::vcpu::*;
use guest_abi::xen::{VcpuTimeInfo, VIRQ_TIMER};
use guest_abi::Errno;
use hypercalls::testhost::RAM_MIB;
use hypercalls::Host;
use zerocopy::IntoBytes;

fn register_vcpu_info(g: &mut Guest, vcpu: u32, mfn: u64, offset: u32) -> i64 {
    let r = VcpuRegisterVcpuInfo {
        mfn,
        offset,
        rsvd: 0,
    };
    g.write(ARG, r.as_bytes());
    g.call_on(
        vcpu,
        hc::VCPU_OP,
        [VCPUOP_REGISTER_VCPU_INFO as u64, vcpu as u64, ARG, 0, 0],
    )
}

fn bind_timer(g: &mut Guest, vcpu: u32) -> u32 {
    let b = guest_abi::event_channel::EvtchnBindVirq {
        virq: VIRQ_TIMER,
        vcpu,
        port: 0,
    };
    let (r, b) = g.op(hc::EVENT_CHANNEL_OP, 1, b);
    assert_eq!(r, 0);
    b.port
}

fn singleshot(g: &mut Guest, vcpu: u32, target: u32, timeout_abs_ns: u64, flags: u32) -> i64 {
    let t = VcpuSetSingleshotTimer {
        timeout_abs_ns,
        flags,
        _pad: 0,
    };
    g.write(ARG, t.as_bytes());
    g.call_on(vcpu, hc::VCPU_OP, [8, target as u64, ARG, 0, 0])
}

#[test]
fn vcpu_ids_out_of_range_are_enoent() {
    let mut g = Guest::new(false, 2);
    for id in [2, 31, 32, u32::MAX as u64, u64::MAX] {
        for cmd in [3, 4, 5, 7, 8, 9, 10, 13, 99] {
            let r = g.call(hc::VCPU_OP, [cmd, id, ARG, 0, 0]);
            assert_eq!(r, err(Errno::ENOENT), "cmd {cmd} vcpu {id:#x}");
        }
    }
    for cmd in [0, 1, 2, 11, 14, 15, 99, 1 << 32] {
        let r = g.call(hc::VCPU_OP, [cmd, 0, ARG, 0, 0]);
        assert_eq!(r, err(Errno::ENOSYS), "cmd {cmd:#x}");
    }
    assert_eq!(
        g.call(hc::VCPU_OP, [12, 0, ARG, 0, 0]),
        err(Errno::EINVAL),
        "get_physid"
    );
}

#[test]
fn register_vcpu_info_checks_frame_offset_and_once() {
    let mut g = Guest::new(false, 2);
    let ram_end = RAM_MIB << 8;
    for (mfn, offset, want) in [
        (0x500, 4096 - 63, Errno::EINVAL), // crosses the page
        (0x500, 4096, Errno::EINVAL),
        (0x500, u32::MAX, Errno::EINVAL),
        (ram_end, 0, Errno::EINVAL),  // not RAM
        (u64::MAX, 0, Errno::EINVAL), // no such frame
        (1 << 52, 0, Errno::EINVAL),
        (hypercalls::CONSOLE_GFN, 0, Errno::EINVAL), // a hypervisor page
    ] {
        let r = register_vcpu_info(&mut g, 0, mfn, offset);
        assert_eq!(r, err(want), "mfn {mfn:#x} offset {offset:#x}");
    }
    assert_eq!(g.dom.vcpus[0].vcpu_info_hpa, None);
    let bad = g.call(hc::VCPU_OP, [10, 0, UNMAPPED_GVA, 0, 0]);
    assert_eq!(bad, err(Errno::EFAULT));
    // The last possible offset works; a second registration does not.
    assert_eq!(register_vcpu_info(&mut g, 0, 0x500, 4096 - 64), 0);
    assert_eq!(register_vcpu_info(&mut g, 0, 0x501, 0), err(Errno::EINVAL));
    // The BSP registers a not-yet-started AP's vcpu_info, as Linux does.
    assert_eq!(
        register_vcpu_info(&mut g, 0, 0x502, 0x80),
        err(Errno::EINVAL)
    );
    let r = {
        let r = VcpuRegisterVcpuInfo {
            mfn: 0x502,
            offset: 0x80,
            rsvd: 0,
        };
        g.write(ARG, r.as_bytes());
        g.call_on(0, hc::VCPU_OP, [10, 1, ARG, 0, 0])
    };
    assert_eq!(r, 0);
    assert_eq!(g.dom.vcpus[1].vcpu_info_gpa, Some(0x502080));
}

#[test]
fn register_vcpu_info_carries_state_over() {
    let mut g = Guest::new(false, 1);
    // Something pending in the shared_info slot before the move.
    let slot = g.dom.vcpu_info_hpa(0).unwrap();
    g.host.write_phys(slot + 16, &0x1234u64.to_le_bytes()); // arch.cr2
    assert_eq!(register_vcpu_info(&mut g, 0, 0x500, 0x40), 0);
    let vi = 0x500040;
    assert_eq!(g.read(vi, 1)[0], 1);
    assert_eq!(g.read_u64(vi + 8), u64::MAX);
    assert_eq!(g.read_u64(vi + 16), 0x1234, "contents copied");
    let t: VcpuTimeInfo = g.read_obj(vi + 32);
    assert_eq!(t, g.dom.time.pvclock());
    // Events now go to the new place only.
    g.ack_all(0);
    let port = bind_timer(&mut g, 0);
    g.host.write_phys(slot, &[0]);
    assert!(g.dom.send_virq(&mut g.host, 0, VIRQ_TIMER));
    assert!(g.pending(port));
    assert_eq!(g.read(vi, 1)[0], 1);
    assert_eq!(g.phys(slot, 1)[0], 0, "old slot untouched");
}

#[test]
fn singleshot_timer_rules() {
    let mut g = Guest::new(false, 2);
    let port = bind_timer(&mut g, 0);
    g.set_time(1_000_000);
    // Only the calling vCPU's own timer.
    assert_eq!(singleshot(&mut g, 1, 0, 2_000_000, 0), err(Errno::EINVAL));
    assert_eq!(
        g.call_on(1, hc::VCPU_OP, [9, 0, 0, 0, 0]),
        err(Errno::EINVAL)
    );
    // VCPU_SSHOTTMR_future in the past: ETIME (Xen 4.17), nothing armed.
    assert_eq!(
        singleshot(&mut g, 0, 0, 999_999, VCPU_SSHOTTMR_FUTURE),
        err(Errno::ETIME)
    );
    assert_eq!(g.dom.next_deadline(0), None);
    assert!(!g.pending(port));
    // Without the flag a deadline in the past fires at once.
    assert_eq!(singleshot(&mut g, 0, 0, 999_999, 0), 0);
    assert!(g.pending(port) && g.dom.upcall_pending(&g.host, 0));
    assert_eq!(g.dom.next_deadline(0), None);
    g.ack_all(0);
    // A future one fires when due, once.
    assert_eq!(singleshot(&mut g, 0, 0, 1_500_000, VCPU_SSHOTTMR_FUTURE), 0);
    assert_eq!(g.dom.next_deadline(0), Some(1_500_000));
    assert!(!g.dom.poll_timers(&mut g.host, 1_499_999));
    assert!(g.dom.poll_timers(&mut g.host, 1_500_000));
    assert!(g.pending(port));
    assert!(!g.dom.poll_timers(&mut g.host, 9_000_000));
    // Beyond 2^63 is a negative s_time_t in Xen: in the past.
    g.ack_all(0);
    assert_eq!(singleshot(&mut g, 0, 0, u64::MAX, 0), 0);
    assert!(g.pending(port));
    // The argument must be readable.
    let r = g.call(hc::VCPU_OP, [8, 0, UNMAPPED_GVA, 0, 0]);
    assert_eq!(r, err(Errno::EFAULT));
    // No VIRQ_TIMER bound on vCPU 1: its timer fires into nothing.
    assert_eq!(singleshot(&mut g, 1, 1, 2_000_000, 0), 0);
    assert!(!g.dom.poll_timers(&mut g.host, 2_000_000));
    assert_eq!(g.dom.next_deadline(1), None);
    assert!(!g.dom.upcall_pending(&g.host, 1));
}

#[test]
fn set_timer_op_and_periodic_timer() {
    let mut g = Guest::new(false, 1);
    let port = bind_timer(&mut g, 0);
    g.set_time(10_000);
    assert_eq!(g.call(hc::SET_TIMER_OP, [50_000, 0, 0, 0, 0]), 0);
    assert_eq!(g.dom.next_deadline(0), Some(50_000));
    assert_eq!(g.call(hc::SET_TIMER_OP, [0, 0, 0, 0, 0]), 0);
    assert_eq!(g.dom.next_deadline(0), None);
    // A wrapped deadline (more than 2^50 ns ahead) becomes 100 ms.
    assert_eq!(g.call(hc::SET_TIMER_OP, [1 << 62, 0, 0, 0, 0]), 0);
    assert_eq!(g.dom.next_deadline(0), Some(100_010_000));
    // Xen's signed arithmetic: 2^63 is a wrapped offset (100 ms), u64::MAX is -1
    // (in the past).
    assert_eq!(g.call(hc::SET_TIMER_OP, [1 << 63, 0, 0, 0, 0]), 0);
    assert_eq!(g.dom.next_deadline(0), Some(100_010_000));
    assert!(!g.pending(port));
    assert_eq!(g.call(hc::SET_TIMER_OP, [u64::MAX, 0, 0, 0, 0]), 0);
    assert!(g.pending(port));
    assert_eq!(g.dom.next_deadline(0), None);
    g.ack_all(0);
    // One in the past fires now.
    assert_eq!(g.call(hc::SET_TIMER_OP, [5, 0, 0, 0, 0]), 0);
    assert!(g.pending(port));
    g.ack_all(0);
    // Periodic: Xen's limits, then ticks.
    let periodic = |g: &mut Guest, period_ns: u64| {
        g.write(ARG, &period_ns.to_le_bytes());
        g.call(hc::VCPU_OP, [6, 0, ARG, 0, 0])
    };
    assert_eq!(periodic(&mut g, 999_999), err(Errno::EINVAL));
    assert_eq!(periodic(&mut g, 1 << 63), err(Errno::EINVAL));
    assert_eq!(periodic(&mut g, 1_000_000), 0);
    assert_eq!(g.dom.next_deadline(0), Some(1_010_000));
    assert!(g.dom.poll_timers(&mut g.host, 1_010_000));
    assert_eq!(g.dom.vcpus[0].periodic_next, 2_010_000);
    assert_eq!(g.call(hc::VCPU_OP, [7, 0, 0, 0, 0]), 0);
    assert_eq!(g.dom.next_deadline(0), None);
}

/// Records every write the hypervisor makes.
fn writes_to(g: &Guest, hpa_range: core::ops::Range<u64>) -> Vec<(u64, Vec<u8>)> {
    g.host
        .log
        .iter()
        .filter(|(a, _)| hpa_range.contains(a))
        .cloned()
        .collect()
}

#[test]
fn runstate_area_protocol() {
    let mut g = Guest::new(false, 1);
    // An area straddling a page boundary.
    let gva = BUF + 4096 - 20;
    g.write(ARG, &gva.to_le_bytes());
    assert_eq!(g.call(hc::VCPU_OP, [5, 0, ARG, 0, 0]), 0);
    assert_eq!(g.dom.vcpus[0].runstate_area.unwrap().first_len, 20);
    assert_eq!(g.call(hc::VM_ASSIST, [0, 5, 0, 0, 0]), 0);
    g.host.log.clear();
    g.host.logging = true;
    g.set_time(777);
    g.dom.update_runstate(&mut g.host, 0, RUNSTATE_RUNNABLE);
    g.host.logging = false;
    // state_entry_time lives at area offset 8..16, in the first page (offset 8 < 20).
    let base = 0x4_0000 * 4096 + BUF + 4096 - 20;
    let w = writes_to(&g, base..base + 48);
    assert_eq!(
        w[0],
        (
            base + 8,
            (777u64 | XEN_RUNSTATE_UPDATE).to_le_bytes().to_vec()
        )
    );
    assert_eq!(
        w.last().unwrap(),
        &(base + 8, 777u64.to_le_bytes().to_vec())
    );
    let r: VcpuRunstateInfo = g.read_obj(gva);
    assert_eq!(
        (r.state, r.state_entry_time, r.time[0]),
        (RUNSTATE_RUNNABLE, 777, 777)
    );
    // Without the assist, one plain write of the whole area (per page).
    assert_eq!(g.call(hc::VM_ASSIST, [1, 5, 0, 0, 0]), 0);
    g.host.log.clear();
    g.host.logging = true;
    g.dom.update_runstate(&mut g.host, 0, RUNSTATE_RUNNING);
    g.host.logging = false;
    assert_eq!(g.host.log.len(), 2, "{:?}", g.host.log);
    assert!(g.host.log.iter().all(|(_, d)| d.len() != 8));
}

#[test]
fn runstate_and_time_areas_must_translate() {
    let mut g = Guest::new(false, 1);
    let end_of_ram = RAM_MIB << 20;
    for gva in [
        UNMAPPED_GVA,
        end_of_ram,
        end_of_ram - 8,
        0x0000_8000_0000_0000,
    ] {
        g.write(ARG, &gva.to_le_bytes());
        assert_eq!(
            g.call(hc::VCPU_OP, [5, 0, ARG, 0, 0]),
            err(Errno::EFAULT),
            "{gva:#x}"
        );
        assert_eq!(
            g.call(hc::VCPU_OP, [13, 0, ARG, 0, 0]),
            err(Errno::EFAULT),
            "{gva:#x}"
        );
    }
    assert_eq!(g.dom.vcpus[0].runstate_area, None);
    assert_eq!(
        g.call(hc::VCPU_OP, [5, 0, UNMAPPED_GVA, 0, 0]),
        err(Errno::EFAULT)
    );
    // The secondary time area gets the same pvclock.
    g.write(ARG, &(BUF + 0x40).to_le_bytes());
    assert_eq!(g.call(hc::VCPU_OP, [13, 0, ARG, 0, 0]), 0);
    let t: VcpuTimeInfo = g.read_obj(BUF + 0x40);
    assert_eq!(t, g.dom.time.pvclock());
}

#[test]
fn vm_assist_types() {
    let mut g = Guest::new(false, 1);
    for ty in [0, 1, 2, 3, 4, 32, 63, 64, u32::MAX as u64] {
        assert_eq!(
            g.call(hc::VM_ASSIST, [0, ty, 0, 0, 0]),
            err(Errno::EINVAL),
            "type {ty}"
        );
    }
    assert_eq!(g.call(hc::VM_ASSIST, [2, 5, 0, 0, 0]), err(Errno::ENOSYS));
    assert_eq!(g.call(hc::VM_ASSIST, [0, 5, 0, 0, 0]), 0);
    assert!(g.dom.vm_assist_enabled(5));
    assert_eq!(g.call(hc::VM_ASSIST, [1, 5, 0, 0, 0]), 0);
    assert!(!g.dom.vm_assist_enabled(5));
}
