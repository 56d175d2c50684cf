//! Event channels: Xen's errno for every bad port and argument, 2-level
//! delivery, loopback pairs, backend ports and polling.

mod common;

use common::{alloc_unbound, bind_ipi, err, evtchn_op as op, send, Guest, ARG, BUF, UNMAPPED_GVA};
use guest_abi::event_channel::*;
use guest_abi::hypercall as hc;
use guest_abi::sched::SchedPoll;
use guest_abi::xen::{DOMID_SELF, VIRQ_CONSOLE, VIRQ_DEBUG, VIRQ_TIMER};
use guest_abi::Errno;
use hypercalls::evtchn::PortState;
use hypercalls::Host;
use zerocopy::IntoBytes;

fn status(g: &mut Guest, port: u32) -> (i64, EvtchnStatus) {
    let s = EvtchnStatus {
        dom: DOMID_SELF,
        port,
        ..Default::default()
    };
    op(g, EVTCHNOP_STATUS, s)
}

#[test]
fn ports_out_of_range_unbound_and_free() {
    let mut g = Guest::new(false, 2);
    let unbound = alloc_unbound(&mut g, 7);
    let free = 100;
    for port in [4096, 4097, u32::MAX] {
        assert_eq!(send(&mut g, port), err(Errno::EINVAL), "send {port}");
        let r = op(&mut g, EVTCHNOP_CLOSE, EvtchnClose { port }).0;
        assert_eq!(r, err(Errno::EINVAL), "close {port}");
        let r = op(&mut g, EVTCHNOP_UNMASK, EvtchnUnmask { port }).0;
        assert_eq!(r, err(Errno::EINVAL), "unmask {port}");
        assert_eq!(status(&mut g, port).0, err(Errno::EINVAL), "status {port}");
        let r = op(&mut g, EVTCHNOP_BIND_VCPU, EvtchnBindVcpu { port, vcpu: 0 }).0;
        assert_eq!(r, err(Errno::EINVAL), "bind_vcpu {port}");
    }
    // Port 0 is valid but reserved; a free port is valid but closed.
    for port in [0, free] {
        assert_eq!(send(&mut g, port), err(Errno::EINVAL), "send {port}");
        let r = op(&mut g, EVTCHNOP_CLOSE, EvtchnClose { port }).0;
        assert_eq!(r, err(Errno::EINVAL), "close {port}");
        let (r, s) = status(&mut g, port);
        assert_eq!((r, s.status), (0, EVTCHNSTAT_CLOSED), "status {port}");
        let r = op(&mut g, EVTCHNOP_BIND_VCPU, EvtchnBindVcpu { port, vcpu: 0 }).0;
        assert_eq!(r, err(Errno::EINVAL), "bind_vcpu {port}");
        // Xen's unmask only needs a valid port.
        let r = op(&mut g, EVTCHNOP_UNMASK, EvtchnUnmask { port }).0;
        assert_eq!(r, 0, "unmask {port}");
    }
    // A send on a port nobody bound is dropped silently.
    assert_eq!(send(&mut g, unbound), 0);
    assert!(!g.pending(unbound));
    assert!(g.dom.take_backend_kicks().is_empty());
    let (r, s) = status(&mut g, unbound);
    assert_eq!((r, s.status, s.u.dom), (0, EVTCHNSTAT_UNBOUND, 7));
    assert!(!g.pending(0) && !g.pending(free));
}

#[test]
fn bad_argument_pointers_are_efault() {
    let mut g = Guest::new(false, 1);
    for cmd in [0, 1, 3, 4, 5, 6, 7, 8, 9, 10] {
        let r = g.call(hc::EVENT_CHANNEL_OP, [cmd, UNMAPPED_GVA, 0, 0, 0]);
        assert_eq!(r, err(Errno::EFAULT), "cmd {cmd}");
    }
    // A result that cannot be written back leaves no port behind.
    let before: Vec<_> = g.dom.evtchn.bound().collect();
    let mut ro = g.ctx;
    ro.paging.cr0 |= 1 << 16;
    // Make the 2 MiB page at 2 MiB read-only in the guest's PD (entry 1).
    g.write(
        hypercalls::builder::PML4_GPA + 0x2000 + 8,
        &((1u64 << 21) | 0x81).to_le_bytes(),
    );
    g.write(0x20_0000, EvtchnBindIpi { vcpu: 0, port: 0 }.as_bytes());
    let r = hypercalls::dispatch(
        &mut g.dom,
        &mut g.host,
        &ro,
        hc::EVENT_CHANNEL_OP,
        [7, 0x20_0000, 0, 0, 0],
    );
    assert_eq!(r as i64, err(Errno::EFAULT));
    assert_eq!(g.dom.evtchn.bound().collect::<Vec<_>>(), before);
}

#[test]
fn unknown_subops_are_enosys_and_fifo_ones_need_fifo() {
    let mut g = Guest::new(false, 1);
    for cmd in [2, 15, 99, 1 << 32] {
        g.write(ARG, &[0; 24]);
        let r = g.call(hc::EVENT_CHANNEL_OP, [cmd, ARG, 0, 0, 0]);
        assert_eq!(r, err(Errno::ENOSYS), "cmd {cmd:#x}");
    }
    // On the 2-level ABI (Xen): set_priority has no port op, expand_array needs
    // init_control first. (tests/evtchn_fifo.rs has the FIFO ABI.)
    g.write(ARG, &[0; 24]);
    assert_eq!(
        g.call(hc::EVENT_CHANNEL_OP, [13, ARG, 0, 0, 0]),
        err(Errno::ENOSYS)
    );
    assert_eq!(
        g.call(hc::EVENT_CHANNEL_OP, [12, ARG, 0, 0, 0]),
        err(Errno::EOPNOTSUPP)
    );
}

#[test]
fn bind_virq_rules() {
    let mut g = Guest::new(false, 2);
    let bind = |g: &mut Guest, virq, vcpu| {
        op(
            g,
            EVTCHNOP_BIND_VIRQ,
            EvtchnBindVirq {
                virq,
                vcpu,
                port: 0,
            },
        )
    };
    for (virq, vcpu, want) in [
        (24, 0, Errno::EINVAL),
        (u32::MAX, 0, Errno::EINVAL),
        // Global VIRQs: only on vCPU 0, and only for the domain that handles them.
        (VIRQ_CONSOLE, 1, Errno::EINVAL),
        (VIRQ_CONSOLE, 0, Errno::EBUSY),
        (VIRQ_TIMER, 2, Errno::ENOENT),
        (VIRQ_TIMER, u32::MAX, Errno::ENOENT),
    ] {
        assert_eq!(
            bind(&mut g, virq, vcpu).0,
            err(want),
            "virq {virq} vcpu {vcpu}"
        );
    }
    let (r, t0) = bind(&mut g, VIRQ_TIMER, 0);
    assert_eq!(r, 0);
    assert_eq!(bind(&mut g, VIRQ_TIMER, 0).0, err(Errno::EEXIST));
    let (r, t1) = bind(&mut g, VIRQ_TIMER, 1);
    assert_eq!(r, 0);
    assert_ne!(t0.port, t1.port);
    // find_virq after EEXIST: status says which VIRQ a port is.
    let (r, s) = status(&mut g, t1.port);
    assert_eq!((r, s.status, s.vcpu), (0, EVTCHNSTAT_VIRQ, 1));
    assert_eq!(&s.as_bytes()[16..20], &VIRQ_TIMER.to_le_bytes());
    // A per-vCPU VIRQ cannot move; closing it allows binding it again.
    let r = op(
        &mut g,
        EVTCHNOP_BIND_VCPU,
        EvtchnBindVcpu {
            port: t1.port,
            vcpu: 0,
        },
    )
    .0;
    assert_eq!(r, err(Errno::EINVAL));
    assert_eq!(
        op(&mut g, EVTCHNOP_CLOSE, EvtchnClose { port: t1.port }).0,
        0
    );
    assert_eq!(bind(&mut g, VIRQ_TIMER, 1).0, 0);
    assert_eq!(bind(&mut g, VIRQ_DEBUG, 1).0, 0);
    // An IPI port cannot be moved either (Xen's bind_vcpu).
    let ipi = bind_ipi(&mut g, 0);
    let r = op(
        &mut g,
        EVTCHNOP_BIND_VCPU,
        EvtchnBindVcpu { port: ipi, vcpu: 1 },
    )
    .0;
    assert_eq!(r, err(Errno::EINVAL));
    let r = op(
        &mut g,
        EVTCHNOP_BIND_VCPU,
        EvtchnBindVcpu { port: ipi, vcpu: 2 },
    )
    .0;
    assert_eq!(r, err(Errno::ENOENT));
    assert_eq!(
        op(
            &mut g,
            EVTCHNOP_BIND_IPI,
            EvtchnBindIpi { vcpu: 2, port: 0 }
        )
        .0,
        err(Errno::ENOENT)
    );
}

#[test]
fn the_table_fills_at_libxl_default_1023() {
    let mut g = Guest::new(false, 1);
    for want in 3..=1023 {
        assert_eq!(bind_ipi(&mut g, 0), want);
    }
    let r = op(
        &mut g,
        EVTCHNOP_BIND_IPI,
        EvtchnBindIpi { vcpu: 0, port: 0 },
    )
    .0;
    assert_eq!(r, err(Errno::ENOSPC));
    // A port beyond the limit is not a valid port.
    let r = op(&mut g, EVTCHNOP_CLOSE, EvtchnClose { port: 1024 }).0;
    assert_eq!(r, err(Errno::EINVAL));
    // The limit never drops below a port in use.
    g.dom.evtchn.set_max_port(10);
    assert_eq!(g.dom.evtchn.max_port(), 1023);
}

#[test]
fn lowest_free_port_is_reused_and_the_table_fills_at_4096() {
    let mut g = Guest::new(false, 1);
    g.dom.evtchn.set_max_port(u32::MAX);
    assert_eq!(g.dom.evtchn.max_port(), 4095);
    // Ports 1 and 2 are the console's and xenstore's.
    assert_eq!(bind_ipi(&mut g, 0), 3);
    assert_eq!(bind_ipi(&mut g, 0), 4);
    assert_eq!(op(&mut g, EVTCHNOP_CLOSE, EvtchnClose { port: 3 }).0, 0);
    assert_eq!(bind_ipi(&mut g, 0), 3);
    for want in 5..4096 {
        assert_eq!(bind_ipi(&mut g, 0), want);
    }
    let r = op(
        &mut g,
        EVTCHNOP_BIND_IPI,
        EvtchnBindIpi { vcpu: 0, port: 0 },
    )
    .0;
    assert_eq!(r, err(Errno::ENOSPC));
    // EVTCHNOP_reset closes everything, the backends' ports included.
    assert_eq!(
        op(&mut g, EVTCHNOP_RESET, EvtchnReset { dom: DOMID_SELF }).0,
        0
    );
    assert_eq!(g.dom.evtchn.bound().count(), 0);
    assert_eq!((g.dom.console_port, g.dom.store_port), (None, None));
    assert_eq!(
        op(&mut g, EVTCHNOP_RESET, EvtchnReset { dom: 5 }).0,
        err(Errno::ESRCH)
    );
    assert_eq!(bind_ipi(&mut g, 0), 1);
}

#[test]
fn other_domains_are_esrch_or_eperm() {
    let mut g = Guest::new(false, 1);
    let own = g.dom.domid;
    for (dom, want) in [
        (0, Some(Errno::EPERM)),
        (2, Some(Errno::ESRCH)),
        (own, None),
    ] {
        let a = EvtchnAllocUnbound {
            dom,
            remote_dom: 0,
            port: 0,
        };
        let r = op(&mut g, EVTCHNOP_ALLOC_UNBOUND, a).0;
        assert_eq!(r, want.map_or(0, err), "alloc_unbound in {dom}");
        let s = EvtchnStatus {
            dom,
            port: 1,
            ..Default::default()
        };
        let r = op(&mut g, EVTCHNOP_STATUS, s).0;
        assert_eq!(r, want.map_or(0, err), "status in {dom}");
    }
    // bind_interdomain: only loopback and the hypervisor's backends exist.
    let b = EvtchnBindInterdomain {
        remote_dom: 9,
        remote_port: 1,
        ..Default::default()
    };
    assert_eq!(
        op(&mut g, EVTCHNOP_BIND_INTERDOMAIN, b).0,
        err(Errno::ESRCH)
    );
}

#[test]
fn loopback_pair() {
    let mut g = Guest::new(false, 2);
    let a = alloc_unbound(&mut g, DOMID_SELF);
    let (r, s) = status(&mut g, a);
    assert_eq!(
        (r, s.status, s.u.dom),
        (0, EVTCHNSTAT_UNBOUND, 1),
        "SELF means own id"
    );
    // Not unbound for us / not a port: EINVAL.
    let other = alloc_unbound(&mut g, 5);
    for remote_port in [other, 4096, 0, 200] {
        let b = EvtchnBindInterdomain {
            remote_dom: DOMID_SELF,
            remote_port,
            ..Default::default()
        };
        let r = op(&mut g, EVTCHNOP_BIND_INTERDOMAIN, b).0;
        assert_eq!(r, err(Errno::EINVAL), "remote port {remote_port}");
    }
    let b = EvtchnBindInterdomain {
        remote_dom: DOMID_SELF,
        remote_port: a,
        ..Default::default()
    };
    let (r, b) = op(&mut g, EVTCHNOP_BIND_INTERDOMAIN, b);
    assert_eq!(r, 0);
    let l = b.local_port;
    assert!(g.pending(l), "Xen marks the new local port pending");
    g.ack_all(0);
    let r = op(
        &mut g,
        EVTCHNOP_BIND_VCPU,
        EvtchnBindVcpu { port: a, vcpu: 1 },
    )
    .0;
    assert_eq!(r, 0);
    assert_eq!(send(&mut g, l), 0);
    assert!(g.pending(a) && !g.pending(l));
    assert!(g.dom.upcall_pending(&g.host, 1) && !g.dom.upcall_pending(&g.host, 0));
    let (_, s) = status(&mut g, a);
    assert_eq!(
        (s.status, s.vcpu, s.u.dom, s.u.port),
        (EVTCHNSTAT_INTERDOMAIN, 1, 1, l)
    );
    // Closing one end leaves the other unbound (for this domain).
    assert_eq!(op(&mut g, EVTCHNOP_CLOSE, EvtchnClose { port: l }).0, 0);
    assert_eq!(
        g.dom.evtchn.get(a).unwrap().state,
        PortState::Unbound { remote: 1 }
    );
    assert_eq!(send(&mut g, a), 0);
    assert!(g.dom.take_backend_kicks().is_empty());
}

#[test]
fn delivery_follows_the_two_level_rules() {
    let mut g = Guest::new(false, 1);
    let p = 70; // word 1 of the bitmaps
    while bind_ipi(&mut g, 0) < p {}
    g.mask(p);
    assert_eq!(send(&mut g, p), 0);
    assert!(
        g.pending(p) && !g.dom.upcall_pending(&g.host, 0),
        "masked: no upcall"
    );
    // Unmasking a pending port raises selector bit 1 and the upcall.
    assert_eq!(op(&mut g, EVTCHNOP_UNMASK, EvtchnUnmask { port: p }).0, 0);
    let vi = g.dom.vcpu_info_hpa(0).unwrap();
    assert_eq!(g.phys_u64(vi + 8), 1 << 1);
    assert!(g.dom.upcall_pending(&g.host, 0) && g.dom.vcpus[0].needs_upcall);
    // Already pending: a second send changes nothing.
    g.host.write_phys(vi, &[0]);
    g.host.write_phys(vi + 8, &[0; 8]);
    g.dom.vcpus[0].needs_upcall = false;
    assert_eq!(send(&mut g, p), 0);
    assert!(!g.dom.upcall_pending(&g.host, 0));
    // Selector already set: the pending bit only.
    g.ack_all(0);
    g.host.write_phys(vi + 8, &(1u64 << 1).to_le_bytes());
    assert_eq!(send(&mut g, p), 0);
    assert!(g.pending(p) && !g.dom.upcall_pending(&g.host, 0));
}

#[test]
fn backend_ports_kick_and_are_notified() {
    let mut g = Guest::new(false, 1);
    let (console, store) = (g.dom.console_port.unwrap(), g.dom.store_port.unwrap());
    let (_, s) = status(&mut g, console);
    assert_eq!((s.status, s.u.dom), (EVTCHNSTAT_INTERDOMAIN, 0));
    let net = alloc_unbound(&mut g, 0);
    for p in [net, store, console, net] {
        assert_eq!(send(&mut g, p), 0);
    }
    assert_eq!(g.dom.take_backend_kicks(), [console, store, net]);
    assert!(g.dom.take_backend_kicks().is_empty());
    // A backend may signal only its own ports.
    let ipi = bind_ipi(&mut g, 0);
    assert_eq!(g.dom.notify_port(&mut g.host, ipi), Err(Errno::EINVAL));
    assert_eq!(g.dom.notify_port(&mut g.host, 4096), Err(Errno::EINVAL));
    assert_eq!(g.dom.notify_port(&mut g.host, net), Ok(()));
    assert!(g.pending(net) && g.dom.upcall_pending(&g.host, 0));
    // A closed backend port is forgotten.
    assert_eq!(
        op(&mut g, EVTCHNOP_CLOSE, EvtchnClose { port: console }).0,
        0
    );
    assert_eq!(g.dom.console_port, None);
    assert_eq!(g.dom.notify_port(&mut g.host, console), Err(Errno::EINVAL));
    // bind_interdomain to domain 0 connects to a backend.
    let b = EvtchnBindInterdomain {
        remote_dom: 0,
        remote_port: 33,
        ..Default::default()
    };
    let (r, b) = op(&mut g, EVTCHNOP_BIND_INTERDOMAIN, b);
    assert_eq!(r, 0);
    assert_eq!(send(&mut g, b.local_port), 0);
    assert_eq!(g.dom.take_backend_kicks(), [b.local_port]);
}

fn poll(g: &mut Guest, ports: &[u32], timeout: u64) -> i64 {
    let raw: Vec<u8> = ports.iter().flat_map(|p| p.to_le_bytes()).collect();
    g.write(BUF, &raw);
    let p = SchedPoll {
        ports: BUF,
        nr_ports: ports.len() as u32,
        timeout,
        ..Default::default()
    };
    g.op(hc::SCHED_OP, 3, p).0
}

/// Xen's `do_poll`: a port not in use (reserved port 0, a free port, one past the limit) is
/// -EINVAL; a pending upcall ends the poll at once only if the vCPU can take it (IF set), else
/// the ports are checked first.
#[test]
fn poll_answers_as_xens_do_poll() {
    let mut g = Guest::new(false, 1);
    let kick = bind_ipi(&mut g, 0);
    g.mask(kick);
    assert_eq!(poll(&mut g, &[0], 0), err(Errno::EINVAL));
    assert_eq!(poll(&mut g, &[kick + 1], 0), err(Errno::EINVAL));
    assert_eq!(poll(&mut g, &[kick, 1023], 0), err(Errno::EINVAL));
    assert!(!g.dom.vcpus[0].polling);
    // An upcall pending (another port fired).
    let other = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, other), 0);
    assert!(g.dom.upcall_pending(&g.host, 0));
    // With interrupts on it ends the poll, whatever the ports.
    assert_eq!(poll(&mut g, &[0], 0), 0);
    assert!(!g.dom.vcpus[0].polling);
    // With interrupts off the ports are checked: a bad one is -EINVAL, a quiet one polls.
    g.ctx.interrupts_blocked = true;
    assert_eq!(poll(&mut g, &[0], 0), err(Errno::EINVAL));
    assert_eq!(poll(&mut g, &[kick], 0), 0);
    assert!(g.dom.vcpus[0].polling);
}

#[test]
fn poll_and_block() {
    let mut g = Guest::new(false, 1);
    let kick = bind_ipi(&mut g, 0);
    g.mask(kick); // PV spinlocks poll a masked port.
    assert_eq!(poll(&mut g, &[kick], 0), 0);
    assert!(g.dom.vcpus[0].polling && !g.dom.vcpus[0].blocked);
    assert!(!g.dom.should_wake(&g.host, 0, u64::MAX));
    assert_eq!(send(&mut g, kick), 0);
    assert!(!g.dom.upcall_pending(&g.host, 0));
    assert!(
        g.dom.should_wake(&g.host, 0, 0),
        "a polled port went pending"
    );
    g.dom.wake(0);
    assert!(!g.dom.vcpus[0].polling);
    // Already pending: returns without polling.
    assert_eq!(poll(&mut g, &[kick], 0), 0);
    assert!(!g.dom.vcpus[0].polling);
    g.ack_all(0);
    // The timeout ends the wait.
    assert_eq!(poll(&mut g, &[kick, 1], 5_000), 0);
    assert_eq!(g.dom.next_deadline(0), Some(5_000));
    assert!(!g.dom.should_wake(&g.host, 0, 4_999));
    assert!(g.dom.should_wake(&g.host, 0, 5_000));
    g.dom.wake(0);
    // Bad arguments.
    assert_eq!(poll(&mut g, &[4096], 0), err(Errno::EINVAL));
    assert_eq!(poll(&mut g, &[1; 129], 0), err(Errno::EINVAL));
    let p = SchedPoll {
        ports: UNMAPPED_GVA,
        nr_ports: 1,
        ..Default::default()
    };
    assert_eq!(g.op(hc::SCHED_OP, 3, p).0, err(Errno::EFAULT));
    assert!(!g.dom.vcpus[0].polling);
    // SCHEDOP_block: halts unless an upcall is pending.
    assert_eq!(g.call(hc::SCHED_OP, [1, 0, 0, 0, 0]), 0);
    assert!(g.dom.vcpus[0].blocked);
    assert!(!g.dom.should_wake(&g.host, 0, u64::MAX));
    let ipi = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, ipi), 0);
    assert!(g.dom.should_wake(&g.host, 0, 0));
    g.dom.wake(0);
    assert_eq!(g.call(hc::SCHED_OP, [1, 0, 0, 0, 0]), 0);
    assert!(!g.dom.vcpus[0].blocked, "upcall pending: no block");
}
