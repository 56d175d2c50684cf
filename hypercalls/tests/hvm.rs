//! hvm_op params and time, memory_op extras, sched_op, the console ring
//! backend, the hypercall page and the feature bits.

mod common;

use common::{err, Guest, ARG, BUF, UNMAPPED_GVA};
use guest_abi::hvm::*;
use guest_abi::memory::{E820Entry, XenMemoryMap};
use guest_abi::sched::{SchedRemoteShutdown, SchedShutdown};
use guest_abi::xen::DOMID_SELF;
use guest_abi::{features as feat, hypercall as hc, Errno};
use hypercalls::domain::ShutdownReason;
use hypercalls::{hypercall_page, CONSOLE_GFN, STORE_GFN};

fn param(g: &mut Guest, op: u32, domid: u16, index: u32, value: u64) -> (i64, u64) {
    let p = XenHvmParam {
        domid,
        index,
        value,
        ..Default::default()
    };
    let (r, p) = g.op(hc::HVM_OP, op as u64, p);
    (r, p.value)
}

#[test]
fn hvm_params() {
    let mut g = Guest::new(false, 2);
    let get = |g: &mut Guest, i| param(g, HVMOP_GET_PARAM, DOMID_SELF, i, 0);
    let set = |g: &mut Guest, i, v| param(g, HVMOP_SET_PARAM, DOMID_SELF, i, v).0;
    assert_eq!(get(&mut g, HVM_PARAM_CONSOLE_PFN), (0, CONSOLE_GFN));
    assert_eq!(get(&mut g, HVM_PARAM_STORE_PFN), (0, STORE_GFN));
    assert_eq!(get(&mut g, HVM_PARAM_CONSOLE_EVTCHN), (0, 1));
    assert_eq!(get(&mut g, HVM_PARAM_STORE_EVTCHN), (0, 2));
    // Index out of range comes first, then the domain.
    for index in [HVM_NR_PARAMS, 1000, u32::MAX] {
        assert_eq!(get(&mut g, index).0, err(Errno::EINVAL), "get {index}");
        assert_eq!(set(&mut g, index, 1), err(Errno::EINVAL), "set {index}");
        let r = param(&mut g, HVMOP_GET_PARAM, 5, index, 0).0;
        assert_eq!(r, err(Errno::EINVAL));
    }
    let own = g.dom.domid;
    assert_eq!(
        param(&mut g, HVMOP_GET_PARAM, own, HVM_PARAM_STORE_PFN, 0),
        (0, STORE_GFN)
    );
    assert_eq!(
        param(&mut g, HVMOP_GET_PARAM, 5, HVM_PARAM_STORE_PFN, 0).0,
        err(Errno::ESRCH)
    );
    assert_eq!(param(&mut g, HVMOP_SET_PARAM, 0, 0, 1).0, err(Errno::EPERM));
    // Xen's guest permissions.
    assert_eq!(
        set(&mut g, HVM_PARAM_STORE_PFN, 5),
        err(Errno::EPERM),
        "toolstack's"
    );
    assert_eq!(set(&mut g, HVM_PARAM_TIMER_MODE, 1), err(Errno::EPERM));
    assert_eq!(get(&mut g, HVM_PARAM_IDENT_PT).0, err(Errno::EPERM));
    assert_eq!(
        set(&mut g, HVM_PARAM_PAE_ENABLED, 1),
        err(Errno::EINVAL),
        "deprecated"
    );
    assert_eq!(get(&mut g, HVM_PARAM_NESTEDHVM).0, err(Errno::EINVAL));
    assert_eq!(
        set(&mut g, HVM_PARAM_ALTP2M, 1),
        err(Errno::EEXIST),
        "read-only"
    );
    assert_eq!(set(&mut g, HVM_PARAM_X87_FIP_WIDTH, 3), err(Errno::EINVAL));
    assert_eq!(set(&mut g, HVM_PARAM_X87_FIP_WIDTH, 8), 0);
    assert_eq!(get(&mut g, HVM_PARAM_X87_FIP_WIDTH), (0, 8));
    assert_eq!(
        get(&mut g, HVM_PARAM_STORE_PFN),
        (0, STORE_GFN),
        "unchanged"
    );
    // The callback: other types are stored but give no vector.
    for (value, vector) in [
        (28, None),                        // GSI
        ((1 << 56) | (3 << 11) | 1, None), // PCI INTx
        ((2 << 56) | 0x0F, None),          // an exception vector
        ((2 << 56) | 0xF3, Some(0xF3)),
    ] {
        assert_eq!(set(&mut g, HVM_PARAM_CALLBACK_IRQ, value), 0);
        assert_eq!(get(&mut g, HVM_PARAM_CALLBACK_IRQ), (0, value));
        assert_eq!(g.dom.callback_vector(), vector, "{value:#x}");
    }
    // Setting the callback re-asserts pending upcalls.
    let vi = g.dom.vcpu_info_hpa(1).unwrap();
    hypercalls::Host::write_phys(&mut g.host, vi, &[1]);
    assert_eq!(set(&mut g, HVM_PARAM_CALLBACK_IRQ, (2 << 56) | 0xF3), 0);
    assert!(g.dom.vcpus[1].needs_upcall && !g.dom.vcpus[0].needs_upcall);
    // Bad pointers.
    for op in [0, 1, 10] {
        assert_eq!(
            g.call(hc::HVM_OP, [op, UNMAPPED_GVA, 0, 0, 0]),
            err(Errno::EFAULT)
        );
    }
}

#[test]
fn hvm_time_and_declined_ops() {
    let mut g = Guest::new(false, 1);
    g.set_time(123_456_789);
    assert_eq!(g.call(hc::HVM_OP, [HVMOP_GET_TIME as u64, ARG, 0, 0, 0]), 0);
    assert_eq!(g.read_u64(ARG), 123_456_789);
    for op in [9, 23, 2, 5, 99, 1 << 32] {
        g.write(ARG, &[0; 16]);
        assert_eq!(
            g.call(hc::HVM_OP, [op, ARG, 0, 0, 0]),
            err(Errno::ENOSYS),
            "op {op:#x}"
        );
    }
    assert_eq!(
        g.call(hc::PHYSDEV_OP, [0, ARG, 0, 0, 0]),
        err(Errno::ENOSYS)
    );
    assert_eq!(
        g.call(hc::PLATFORM_OP, [ARG, 0, 0, 0, 0]),
        err(Errno::EPERM)
    );
    assert_eq!(g.call(hc::MULTICALL, [ARG, 1, 0, 0, 0]), err(Errno::ENOSYS));
}

#[test]
fn memory_map_and_reservations() {
    let mut g = Guest::new(false, 1);
    let m = XenMemoryMap {
        nr_entries: 8,
        buffer: BUF,
        ..Default::default()
    };
    assert_eq!(
        g.op(hc::MEMORY_OP, 9, m).0,
        err(Errno::ENOSYS),
        "no e820 given"
    );
    g.dom.e820 = vec![
        (0, 0x9F000, 1),
        (0x10_0000, 0x70_0000, 1),
        (0xFEFF_8000, 0x2000, 2),
    ];
    let (r, out) = g.op(hc::MEMORY_OP, 9, m);
    assert_eq!((r, out.nr_entries), (0, 3));
    let e: E820Entry = g.read_obj(BUF + 40);
    assert_eq!((e.addr, e.size, e.r#type), (0xFEFF_8000, 0x2000, 2));
    let small = XenMemoryMap { nr_entries: 2, ..m };
    g.write(BUF, &[0xEE; 60]);
    let (r, out) = g.op(hc::MEMORY_OP, 9, small);
    assert_eq!((r, out.nr_entries), (0, 2));
    assert_eq!(g.read(BUF + 40, 1)[0], 0xEE, "nothing past the buffer");
    let bad = XenMemoryMap {
        buffer: UNMAPPED_GVA,
        ..m
    };
    assert_eq!(g.op(hc::MEMORY_OP, 9, bad).0, err(Errno::EFAULT));
    // Reservations and the highest gfn.
    let (r, _) = g.op(hc::MEMORY_OP, 3, DOMID_SELF);
    assert_eq!(r, g.dom.ram_pages as i64);
    let (r, _) = g.op(hc::MEMORY_OP, 4, DOMID_SELF);
    assert_eq!(r, g.dom.ram_pages as i64);
    let (r, _) = g.op(hc::MEMORY_OP, 14, DOMID_SELF);
    assert_eq!(r, STORE_GFN as i64);
    assert_eq!(g.op(hc::MEMORY_OP, 3, 5u16).0, err(Errno::ESRCH));
    // Ballooning is not offered.
    for cmd in [0, 1, 6, 12, 13, 23] {
        assert_eq!(
            g.call(hc::MEMORY_OP, [cmd, ARG, 0, 0, 0]),
            err(Errno::ENOSYS),
            "{cmd}"
        );
    }
}

#[test]
fn sched_shutdown_variants() {
    let mut g = Guest::new(false, 1);
    let code = |g: &mut Guest, cmd, reason| g.op(hc::SCHED_OP, cmd, SchedShutdown { reason }).0;
    assert_eq!(code(&mut g, 5, 3), 0, "shutdown_code crash");
    assert_eq!(code(&mut g, 5, 1), 0, "the first code stays");
    assert_eq!(g.dom.shutdown, None);
    assert_eq!(code(&mut g, 2, 0x100), 0, "poweroff (reason is a u8)");
    assert_eq!(g.dom.shutdown, Some(ShutdownReason::Crash), "the code wins");
    assert_eq!(code(&mut g, 2, 1), 0);
    assert_eq!(
        g.dom.shutdown,
        Some(ShutdownReason::Crash),
        "the first request wins"
    );
    for (domain_id, want) in [
        (0, Errno::EPERM),
        (1, Errno::EPERM),
        (7, Errno::EPERM),
        (DOMID_SELF, Errno::ESRCH),
    ] {
        let r = SchedRemoteShutdown {
            domain_id,
            reason: 0,
            ..Default::default()
        };
        assert_eq!(g.op(hc::SCHED_OP, 4, r).0, err(want), "remote {domain_id}");
    }
    assert_eq!(
        g.call(hc::SCHED_OP, [7, ARG, 0, 0, 0]),
        err(Errno::EPERM),
        "pin_override"
    );
    assert_eq!(
        g.call(hc::SCHED_OP, [6, ARG, 0, 0, 0]),
        err(Errno::ENOSYS),
        "watchdog"
    );
    assert_eq!(
        g.call(hc::SCHED_OP, [5, UNMAPPED_GVA, 0, 0, 0]),
        err(Errno::EFAULT)
    );
}

/// Puts `data` in the console ring at producer index `prod`.
fn produce(g: &mut Guest, cons: u32, data: &[u8]) {
    let ring = CONSOLE_GFN * 4096;
    for (i, &b) in data.iter().enumerate() {
        let off = (cons as usize + i) % 2048;
        g.write(ring + 1024 + off as u64, &[b]);
    }
    g.write(ring + 3080, &cons.to_le_bytes());
    g.write(
        ring + 3084,
        &cons.wrapping_add(data.len() as u32).to_le_bytes(),
    );
}

#[test]
fn console_ring_backend() {
    let mut g = Guest::new(false, 1);
    let ring = CONSOLE_GFN * 4096;
    // Wrapping indices and a wrapping buffer.
    produce(&mut g, u32::MAX - 2, b"abc\ndef\n");
    assert_eq!(g.dom.drain_console_ring(&mut g.host), 8);
    assert_eq!(g.host.console, [(1, "abc".into()), (1, "def".into())]);
    assert_eq!(g.read_obj::<u32>(ring + 3080), 5);
    assert!(g.pending(1), "the backend signals the console port");
    // Nothing new: nothing consumed, no event.
    g.ack_all(0);
    assert_eq!(g.dom.drain_console_ring(&mut g.host), 0);
    assert!(!g.pending(1));
    // A full ring.
    let full: Vec<u8> = (0..2048)
        .map(|i| if i % 64 == 63 { b'\n' } else { b'x' })
        .collect();
    produce(&mut g, 2040, &full);
    assert_eq!(g.dom.drain_console_ring(&mut g.host), 2048);
    assert_eq!(g.host.console.len(), 2 + 32);
    // A broken ring (producer more than a ring ahead) is left alone.
    g.write(ring + 3080, &0u32.to_le_bytes());
    g.write(ring + 3084, &2049u32.to_le_bytes());
    assert_eq!(g.dom.drain_console_ring(&mut g.host), 0);
    g.write(ring + 3084, &u32::MAX.to_le_bytes());
    assert_eq!(g.dom.drain_console_ring(&mut g.host), 0);
    assert_eq!(g.read_obj::<u32>(ring + 3080), 0);
    assert_eq!(g.host.console.len(), 34);
    // Control bytes are neutralised; partial lines wait for their newline.
    produce(&mut g, 0, b"\x1b[2Jtail");
    assert_eq!(g.dom.drain_console_ring(&mut g.host), 8);
    assert_eq!(g.host.console.len(), 34);
    produce(&mut g, 8, b"!\n");
    g.dom.drain_console_ring(&mut g.host);
    assert_eq!(g.host.console.last().unwrap().1, "?[2Jtail!");
}

#[test]
fn console_input_fills_the_in_ring() {
    let mut g = Guest::new(false, 1);
    let ring = CONSOLE_GFN * 4096;
    // The guest has consumed up to a wrapping index.
    let start = u32::MAX - 1;
    g.write(ring + 3072, &start.to_le_bytes());
    g.write(ring + 3076, &start.to_le_bytes());
    g.ack_all(0);
    assert_eq!(g.dom.console_input(&mut g.host, b"ls\r"), 3);
    assert_eq!(g.read_obj::<u32>(ring + 3076), start.wrapping_add(3));
    assert_eq!(g.read_obj::<u8>(ring + 1022), b'l');
    assert_eq!(g.read_obj::<u8>(ring + 1023), b's');
    assert_eq!(g.read_obj::<u8>(ring), b'\r');
    assert!(g.pending(1), "the backend signals the console port");
    // Only what fits is taken; a full ring takes nothing and sends no event.
    let many = [b'x'; 2000];
    assert_eq!(g.dom.console_input(&mut g.host, &many), 1021);
    g.ack_all(0);
    assert_eq!(g.dom.console_input(&mut g.host, b"y"), 0);
    assert!(!g.pending(1));
    // Broken indices (more than a ring apart) take nothing.
    g.write(ring + 3076, &start.wrapping_add(2000).to_le_bytes());
    assert_eq!(g.dom.console_input(&mut g.host, b"z"), 0);
}

#[test]
fn hypercall_page_layout() {
    let page = hypercall_page();
    for nr in 0..128usize {
        let stub = &page[nr * 32..nr * 32 + 32];
        if nr == 23 {
            assert_eq!(&stub[..2], &[0x0F, 0x0B], "iret is ud2");
            continue;
        }
        assert_eq!(stub[0], 0xB8, "mov $nr, %eax");
        assert_eq!(
            u32::from_le_bytes(stub[1..5].try_into().unwrap()),
            nr as u32
        );
        assert_eq!(&stub[5..9], &[0x0F, 0x01, 0xC1, 0xC3], "vmcall; ret");
        assert!(stub[9..].iter().all(|&b| b == 0xCC));
    }
}

#[test]
fn feature_bits() {
    let mut g = Guest::new(false, 1);
    let fi = guest_abi::version::XenFeatureInfo {
        submap_idx: 0,
        submap: 0,
    };
    let (r, fi) = g.op(hc::XEN_VERSION, 6, fi);
    assert_eq!(r, 0);
    let want = [
        feat::XENFEAT_WRITABLE_PAGE_TABLES,
        feat::XENFEAT_AUTO_TRANSLATED_PHYSMAP,
        feat::XENFEAT_HVM_CALLBACK_VECTOR,
        feat::XENFEAT_HVM_SAFE_PVCLOCK,
        feat::XENFEAT_NOT_DIRECT_MAPPED,
    ]
    .iter()
    .fold(0, |m, &f| m | feat::bit(f));
    assert_eq!(fi.submap, want);
    let fi = guest_abi::version::XenFeatureInfo {
        submap_idx: 1,
        submap: 0,
    };
    assert_eq!(g.op(hc::XEN_VERSION, 6, fi).0, err(Errno::EINVAL));
}
