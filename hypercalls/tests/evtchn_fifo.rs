//! The FIFO event-channel ABI: `init_control`, `expand_array`, `set_priority`,
//! delivery onto the per-vCPU queues as Xen's `event_fifo.c` does it, and a hostile
//! guest's control blocks and event words.

mod common;

use common::{alloc_unbound, bind_ipi, err, evtchn_op as op, send, Guest, ARG, BUF, UNMAPPED_GVA};
use guest_abi::event_channel::*;
use guest_abi::hypercall as hc;
use guest_abi::sched::SchedPoll;
use guest_abi::xen::DOMID_SELF;
use guest_abi::Errno;
use hypercalls::testhost::RAM_MFN_BASE;
use hypercalls::{Host, CONSOLE_GFN};
use zerocopy::IntoBytes;

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;
const BUSY: u32 = 1 << EVTCHN_FIFO_BUSY;
/// Control blocks of vCPUs 0 and 1 (one page each, offset 0 unless a test says).
const CB_GFN: [u64; 2] = [0x520, 0x521];
/// Event-array pages 0, 1, ...
const ARRAY_GFN: u64 = 0x540;

fn init_control_at(g: &mut Guest, vcpu: u32, gfn: u64, offset: u32) -> (i64, EvtchnInitControl) {
    let ic = EvtchnInitControl {
        control_gfn: gfn,
        offset,
        vcpu,
        ..Default::default()
    };
    op(g, EVTCHNOP_INIT_CONTROL, ic)
}

fn init_control(g: &mut Guest, vcpu: u32) -> i64 {
    init_control_at(g, vcpu, CB_GFN[vcpu as usize], 0).0
}

fn expand(g: &mut Guest, gfn: u64) -> i64 {
    op(
        g,
        EVTCHNOP_EXPAND_ARRAY,
        EvtchnExpandArray { array_gfn: gfn },
    )
    .0
}

/// A guest on FIFO with `vcpus` vCPUs, every control block registered and event-array
/// page 0 added (its words zero: unmasked, as a test wants them).
fn fifo_guest(vcpus: u32) -> Guest {
    let mut g = Guest::new(false, vcpus);
    for v in 0..vcpus {
        assert_eq!(init_control(&mut g, v), 0);
    }
    assert_eq!(expand(&mut g, ARRAY_GFN), 0);
    g
}

fn unmask(g: &mut Guest, port: u32) -> i64 {
    op(g, EVTCHNOP_UNMASK, EvtchnUnmask { port }).0
}

fn close(g: &mut Guest, port: u32) -> i64 {
    op(g, EVTCHNOP_CLOSE, EvtchnClose { port }).0
}

fn set_priority(g: &mut Guest, port: u32, priority: u32) -> i64 {
    op(
        g,
        EVTCHNOP_SET_PRIORITY,
        EvtchnSetPriority { port, priority },
    )
    .0
}

fn u32_phys(g: &Guest, hpa: u64) -> u32 {
    u32::from_le_bytes(g.phys(hpa, 4).try_into().unwrap())
}

fn word_hpa(g: &Guest, port: u32) -> u64 {
    g.dom.evtchn_fifo.as_ref().unwrap().word_hpa(port).unwrap()
}

/// `port`'s event word, as the guest sees it.
fn word(g: &Guest, port: u32) -> u32 {
    u32_phys(g, word_hpa(g, port))
}

/// The guest writes `port`'s event word.
fn set_word(g: &mut Guest, port: u32, w: u32) {
    let hpa = word_hpa(g, port);
    g.host.write_phys(hpa, &w.to_le_bytes());
}

fn cb_hpa(g: &Guest, vcpu: u32) -> u64 {
    g.dom
        .evtchn_fifo
        .as_ref()
        .unwrap()
        .control_block_hpa(vcpu)
        .unwrap()
}

fn ready(g: &Guest, vcpu: u32) -> u32 {
    u32_phys(g, cb_hpa(g, vcpu))
}

fn head(g: &Guest, vcpu: u32, priority: u32) -> u32 {
    u32_phys(g, cb_hpa(g, vcpu) + 8 + 4 * priority as u64)
}

/// What the guest does after handling events on `vcpu`: clears the upcall flag,
/// READY and every word's LINKED/LINK and PENDING (page 0).
fn consume_all(g: &mut Guest, vcpu: u32) {
    let vi = g.dom.vcpu_info_hpa(vcpu).unwrap();
    g.host.write_phys(vi, &[0]);
    g.dom.vcpus[vcpu as usize].needs_upcall = false;
    let cb = cb_hpa(g, vcpu);
    g.host.write_phys(cb, &0u32.to_le_bytes());
    for port in 0..1024 {
        let w = word(g, port);
        set_word(g, port, w & MASKED);
    }
}

#[test]
fn init_control_errnos_and_link_bits() {
    let mut g = Guest::new(false, 2);
    // vCPU out of range first, whatever else is wrong.
    let (r, back) = init_control_at(&mut g, 2, u64::MAX, 3);
    assert_eq!(r, err(Errno::ENOENT));
    assert_eq!(back.link_bits, 0, "nothing written back on failure");
    assert_eq!(
        init_control_at(&mut g, u32::MAX, CB_GFN[0], 0).0,
        err(Errno::ENOENT)
    );
    // Alignment and room for the 72-byte control block.
    for offset in [4, 12, 4028, 4032, 4088, 4096, u32::MAX] {
        let r = init_control_at(&mut g, 0, CB_GFN[0], offset).0;
        assert_eq!(r, err(Errno::EINVAL), "offset {offset}");
    }
    // Frames that are not the domain's ordinary RAM.
    assert_eq!(init_control_at(&mut g, 0, 0x8000, 0).0, err(Errno::EINVAL));
    assert_eq!(
        init_control_at(&mut g, 0, u64::MAX, 0).0,
        err(Errno::EINVAL)
    );
    assert_eq!(
        init_control_at(&mut g, 0, CONSOLE_GFN, 0).0,
        err(Errno::EINVAL)
    );
    let xatp = guest_abi::memory::XenAddToPhysmap {
        domid: DOMID_SELF,
        space: 0,
        idx: 0,
        gpfn: 0x10,
        ..Default::default()
    };
    assert_eq!(g.op(hc::MEMORY_OP, 7, xatp).0, 0);
    assert_eq!(
        init_control_at(&mut g, 0, 0x10, 0).0,
        err(Errno::EINVAL),
        "shared_info"
    );
    assert!(
        g.dom.evtchn_fifo.is_none(),
        "failures leave the domain on 2-level"
    );
    // A bad argument pointer.
    let r = g.call(hc::EVENT_CHANNEL_OP, [11, UNMAPPED_GVA, 0, 0, 0]);
    assert_eq!(r, err(Errno::EFAULT));
    // The last offset that fits.
    let (r, back) = init_control_at(&mut g, 1, CB_GFN[1], 4024);
    assert_eq!((r, back.link_bits), (0, 17));
    assert_eq!(back.control_gfn, CB_GFN[1], "inputs as given");
    let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
    assert_eq!(
        fifo.control_block_hpa(1),
        Some((RAM_MFN_BASE + CB_GFN[1]) * 4096 + 4024)
    );
    assert_eq!(fifo.control_block_hpa(0), None);
    // Once per vCPU.
    assert_eq!(
        init_control_at(&mut g, 1, CB_GFN[0], 0).0,
        err(Errno::EINVAL)
    );
    assert_eq!(init_control(&mut g, 0), 0);
    assert_eq!(init_control(&mut g, 0), err(Errno::EINVAL));
}

#[test]
fn expand_array_limits() {
    let mut g = Guest::new(false, 1);
    assert_eq!(
        expand(&mut g, ARRAY_GFN),
        err(Errno::EOPNOTSUPP),
        "before init_control"
    );
    assert_eq!(init_control(&mut g, 0), 0);
    let r = g.call(hc::EVENT_CHANNEL_OP, [12, UNMAPPED_GVA, 0, 0, 0]);
    assert_eq!(r, err(Errno::EFAULT));
    assert_eq!(expand(&mut g, 0x8000), err(Errno::EINVAL), "beyond RAM");
    assert_eq!(
        expand(&mut g, CONSOLE_GFN),
        err(Errno::EINVAL),
        "special page"
    );
    for i in 0..128 {
        assert_eq!(expand(&mut g, ARRAY_GFN + i), 0, "page {i}");
    }
    let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
    assert_eq!(
        (fifo.event_array_pages(), fifo.nr_event_words()),
        (128, 1 << 17)
    );
    assert_eq!(
        fifo.word_hpa(131_071),
        Some((RAM_MFN_BASE + ARRAY_GFN + 127) * 4096 + 4092)
    );
    assert_eq!(fifo.word_hpa(131_072), None);
    assert_eq!(expand(&mut g, ARRAY_GFN + 200), err(Errno::ENOSPC));
}

#[test]
fn pending_unmasked_event_links_into_its_queue_and_raises_ready_and_the_upcall_once() {
    let mut g = fifo_guest(1);
    let a = bind_ipi(&mut g, 0);
    assert_eq!(g.dom.evtchn_fifo.as_ref().unwrap().priority(a), 7);
    assert_eq!(send(&mut g, a), 0);
    assert_eq!(word(&g, a), PENDING | LINKED);
    assert_eq!(head(&g, 0, 7), a);
    assert_eq!(ready(&g, 0), 1 << 7);
    assert!(g.dom.upcall_pending(&g.host, 0));
    assert!(g.dom.vcpus[0].needs_upcall);
    assert!(g.pending(a) && !g.dom.port_is_masked(&g.host, a));
    g.dom.vcpus[0].needs_upcall = false;
    // Already pending and linked: nothing changes.
    assert_eq!(send(&mut g, a), 0);
    assert_eq!(word(&g, a), PENDING | LINKED);
    // A second event links behind the first; READY was set, so no new upcall.
    let b = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, b), 0);
    assert_eq!(
        word(&g, a),
        PENDING | LINKED | b,
        "old tail's LINK = new port"
    );
    assert_eq!(word(&g, b), PENDING | LINKED);
    assert_eq!(head(&g, 0, 7), a, "HEAD unchanged");
    assert!(!g.dom.vcpus[0].needs_upcall);
    let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
    assert_eq!(fifo.tail(0, 7), b);
    // The 2-level bitmaps are not used any more.
    let si = g.dom.shared_info_mfn * 4096;
    assert!(g.phys(si + 2048, 512).iter().all(|&b| b == 0));
}

#[test]
fn an_event_whose_old_tail_was_unlinked_becomes_the_new_head() {
    let mut g = fifo_guest(1);
    let a = bind_ipi(&mut g, 0);
    let b = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, a), 0);
    // The guest consumed A (cleared LINKED and PENDING) but not READY.
    set_word(&mut g, a, 0);
    g.dom.vcpus[0].needs_upcall = false;
    assert_eq!(send(&mut g, b), 0);
    assert_eq!(head(&g, 0, 7), b);
    assert_eq!(word(&g, a), 0, "the unlinked tail is not written");
    assert!(!g.dom.vcpus[0].needs_upcall, "READY was still set");
    // Once READY is clear too, the next event raises the upcall again.
    consume_all(&mut g, 0);
    assert_eq!(send(&mut g, a), 0);
    assert_eq!((head(&g, 0, 7), ready(&g, 0)), (a, 1 << 7));
    assert!(g.dom.vcpus[0].needs_upcall);
}

#[test]
fn masked_events_are_linked_only_when_unmasked() {
    let mut g = fifo_guest(1);
    let a = bind_ipi(&mut g, 0);
    set_word(&mut g, a, MASKED);
    assert!(g.dom.port_is_masked(&g.host, a));
    assert_eq!(send(&mut g, a), 0);
    assert_eq!(word(&g, a), MASKED | PENDING);
    assert_eq!((ready(&g, 0), head(&g, 0, 7)), (0, 0));
    assert!(!g.dom.upcall_pending(&g.host, 0));
    // Xen's evtchn_fifo_unmask: clear MASKED, link since it is pending.
    assert_eq!(unmask(&mut g, a), 0);
    assert_eq!(word(&g, a), PENDING | LINKED);
    assert_eq!((ready(&g, 0), head(&g, 0, 7)), (1 << 7, a));
    assert!(g.dom.upcall_pending(&g.host, 0));
    // Unmasking a port that is not pending only clears MASKED.
    let b = bind_ipi(&mut g, 0);
    set_word(&mut g, b, MASKED);
    assert_eq!(unmask(&mut g, b), 0);
    assert_eq!(word(&g, b), 0);
    // Port validity as in Xen: beyond the limit -EINVAL, free or reserved a no-op.
    assert_eq!(unmask(&mut g, 1024), err(Errno::EINVAL));
    set_word(&mut g, 0, MASKED | PENDING);
    set_word(&mut g, 900, MASKED | PENDING);
    assert_eq!(unmask(&mut g, 0), 0);
    assert_eq!(unmask(&mut g, 900), 0);
    assert_eq!(
        (word(&g, 0), word(&g, 900)),
        (MASKED | PENDING, MASKED | PENDING)
    );
}

#[test]
fn set_priority_routes_to_the_queue_of_that_priority() {
    let mut g = fifo_guest(1);
    let a = bind_ipi(&mut g, 0);
    assert_eq!(set_priority(&mut g, a, 16), err(Errno::EINVAL));
    assert_eq!(set_priority(&mut g, a, u32::MAX), err(Errno::EINVAL));
    assert_eq!(
        set_priority(&mut g, 1024, 0),
        err(Errno::EINVAL),
        "not a port"
    );
    assert_eq!(set_priority(&mut g, 0, 0), err(Errno::EACCES), "reserved");
    assert_eq!(set_priority(&mut g, 900, 0), err(Errno::EACCES), "free");
    let r = g.call(hc::EVENT_CHANNEL_OP, [13, UNMAPPED_GVA, 0, 0, 0]);
    assert_eq!(r, err(Errno::EFAULT));
    assert_eq!(set_priority(&mut g, a, 2), 0);
    assert_eq!(send(&mut g, a), 0);
    assert_eq!(
        (head(&g, 0, 2), head(&g, 0, 7), ready(&g, 0)),
        (a, 0, 1 << 2)
    );
    // A new priority applies the next time the event is linked.
    assert_eq!(set_priority(&mut g, a, 15), 0);
    assert_eq!(send(&mut g, a), 0);
    assert_eq!(ready(&g, 0), 1 << 2, "still on queue 2");
    consume_all(&mut g, 0);
    assert_eq!(send(&mut g, a), 0);
    assert_eq!((head(&g, 0, 15), ready(&g, 0)), (a, 1 << 15));
    assert_eq!(set_priority(&mut g, a, EVTCHN_FIFO_PRIORITY_MAX), 0);
    // A rebound port starts at the default priority again.
    assert_eq!(close(&mut g, a), 0);
    consume_all(&mut g, 0);
    let b = bind_ipi(&mut g, 0);
    assert_eq!(b, a);
    assert_eq!(g.dom.evtchn_fifo.as_ref().unwrap().priority(b), 7);
}

#[test]
fn busy_is_cleared_after_linking() {
    let mut g = fifo_guest(1);
    let a = bind_ipi(&mut g, 0);
    let b = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, a), 0);
    // A stale BUSY on the tail (and a LINK the guest scribbled): Xen's new word
    // drops both, or the guest's clear_masked_cond() would spin on BUSY forever.
    set_word(&mut g, a, PENDING | LINKED | BUSY | 0x1_2345);
    assert_eq!(send(&mut g, b), 0);
    assert_eq!(word(&g, a), PENDING | LINKED | b);
    assert_eq!(word(&g, b), PENDING | LINKED);
}

#[test]
fn bind_vcpu_moves_the_next_linking_to_the_other_vcpus_queue() {
    let mut g = fifo_guest(2);
    let p = alloc_unbound(&mut g, 0);
    let q = alloc_unbound(&mut g, 0);
    g.dom.notify_port(&mut g.host, p).unwrap();
    assert_eq!(
        (
            head(&g, 0, 7),
            g.dom.evtchn_fifo.as_ref().unwrap().tail(0, 7)
        ),
        (p, p)
    );
    let r = op(
        &mut g,
        EVTCHNOP_BIND_VCPU,
        EvtchnBindVcpu { port: p, vcpu: 1 },
    )
    .0;
    assert_eq!(r, 0);
    // Still linked on vCPU 0's queue: signalling again changes nothing.
    g.dom.notify_port(&mut g.host, p).unwrap();
    assert_eq!((ready(&g, 1), head(&g, 1, 7)), (0, 0));
    consume_all(&mut g, 0);
    // The next linking goes to vCPU 1's queue.
    g.dom.notify_port(&mut g.host, p).unwrap();
    assert_eq!((ready(&g, 1), head(&g, 1, 7)), (1 << 7, p));
    assert!(g.dom.upcall_pending(&g.host, 1));
    assert!(!g.dom.upcall_pending(&g.host, 0));
    let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
    assert_eq!(
        (fifo.tail(0, 7), fifo.tail(1, 7)),
        (0, p),
        "old tail forgotten"
    );
    // So an event on vCPU 0's queue becomes its HEAD instead of being linked
    // behind P, which is on vCPU 1's queue now.
    g.dom.notify_port(&mut g.host, q).unwrap();
    assert_eq!(head(&g, 0, 7), q);
    assert_eq!(word(&g, p), PENDING | LINKED, "vCPU 1's queue untouched");
}

#[test]
fn events_for_a_vcpu_without_a_control_block_are_dropped() {
    let mut g = Guest::new(false, 2);
    assert_eq!(init_control(&mut g, 0), 0);
    assert_eq!(expand(&mut g, ARRAY_GFN), 0);
    let ipi = bind_ipi(&mut g, 1);
    assert_eq!(send(&mut g, ipi), 0);
    assert_eq!(word(&g, ipi), 0, "not even PENDING (Xen 4.17)");
    assert!(!g.dom.upcall_pending(&g.host, 1));
    assert_eq!(init_control(&mut g, 1), 0);
    assert_eq!(send(&mut g, ipi), 0);
    assert_eq!((word(&g, ipi), head(&g, 1, 7)), (PENDING | LINKED, ipi));
    assert!(g.dom.upcall_pending(&g.host, 1));
}

#[test]
fn close_clears_pending_and_a_still_linked_port_is_not_reused() {
    let mut g = fifo_guest(1);
    let a = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, a), 0);
    assert_eq!(close(&mut g, a), 0);
    assert_eq!(word(&g, a), LINKED, "PENDING cleared, the guest unlinks");
    assert!(!g.pending(a));
    // Xen's evtchn_is_busy: the lowest free port is skipped while it is linked.
    let b = bind_ipi(&mut g, 0);
    assert_ne!(b, a);
    set_word(&mut g, a, 0);
    assert_eq!(bind_ipi(&mut g, 0), a);
    assert_eq!(close(&mut g, 4000), err(Errno::EINVAL));
}

#[test]
fn ports_beyond_the_event_array_wait_for_their_page() {
    let mut g = fifo_guest(1);
    g.dom.evtchn.set_max_port(2047);
    // Linux binds first, then adds the page holding the port's word.
    let mut port = 0;
    while port < 1500 {
        port = bind_ipi(&mut g, 0);
    }
    let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
    assert_eq!(fifo.word_hpa(port), None);
    assert_eq!(send(&mut g, port), 0);
    assert!(!g.pending(port), "no word to show it");
    assert!(g.dom.port_is_masked(&g.host, port));
    assert!(!g.dom.upcall_pending(&g.host, 0));
    assert_eq!(unmask(&mut g, port), 0, "no word: nothing to do");
    assert_eq!(set_priority(&mut g, port, 3), 0);
    // Adding page 1 (all masked, as Linux's init_array_page does) raises it.
    let masked: Vec<u8> = (0..1024).flat_map(|_| MASKED.to_le_bytes()).collect();
    g.write((ARRAY_GFN + 1) * 4096, &masked);
    assert_eq!(expand(&mut g, ARRAY_GFN + 1), 0);
    assert_eq!(word(&g, port), MASKED | PENDING);
    assert_eq!(word(&g, port - 1), MASKED, "only the signalled port");
    assert_eq!(unmask(&mut g, port), 0);
    assert_eq!((head(&g, 0, 3), ready(&g, 0)), (port, 1 << 3));
    // An event signalled while the page was missing and then closed is forgotten.
    let mut g = fifo_guest(1);
    g.dom.evtchn.set_max_port(2047);
    let mut port = 0;
    while port < 1024 {
        port = bind_ipi(&mut g, 0);
    }
    assert_eq!(send(&mut g, port), 0);
    assert_eq!(close(&mut g, port), 0);
    assert_eq!(bind_ipi(&mut g, 0), port);
    assert_eq!(expand(&mut g, ARRAY_GFN + 1), 0);
    assert_eq!(word(&g, port), 0);
}

#[test]
fn fifo_lifts_the_2_level_port_limit_to_the_configured_one() {
    let mut g = Guest::new(false, 1);
    g.dom.evtchn.set_max_port(5000);
    assert_eq!(g.dom.evtchn.max_port(), 4095, "2-level");
    assert_eq!(init_control(&mut g, 0), 0);
    assert_eq!(g.dom.evtchn.max_port(), 5000);
    for i in 0..5 {
        assert_eq!(expand(&mut g, ARRAY_GFN + i), 0);
    }
    let mut last = 0;
    loop {
        let (r, a) = op(
            &mut g,
            EVTCHNOP_BIND_IPI,
            EvtchnBindIpi { vcpu: 0, port: 0 },
        );
        if r != 0 {
            assert_eq!(r, err(Errno::ENOSPC));
            break;
        }
        last = a.port;
    }
    assert_eq!(last, 5000);
    // A backend port above 4095 kicks and is polled like any other.
    assert_eq!(close(&mut g, 4500), 0);
    assert_eq!(alloc_unbound(&mut g, 0), 4500);
    assert_eq!(send(&mut g, 4500), 0);
    assert_eq!(g.dom.take_backend_kicks(), [4500]);
    set_word(&mut g, 4500, MASKED);
    g.write(BUF, &4500u32.to_le_bytes());
    let p = SchedPoll {
        ports: BUF,
        nr_ports: 1,
        ..Default::default()
    };
    assert_eq!(g.op(hc::SCHED_OP, 3, p).0, 0);
    assert!(g.dom.vcpus[0].polling);
    assert!(!g.dom.should_wake(&g.host, 0, 0));
    g.dom.notify_port(&mut g.host, 4500).unwrap();
    assert!(
        g.dom.should_wake(&g.host, 0, 0),
        "the polled FIFO word went pending"
    );
    g.write(BUF, &(1u32 << 17).to_le_bytes());
    assert_eq!(g.op(hc::SCHED_OP, 3, p).0, err(Errno::EINVAL));
    // The configured limit still applies: at most the FIFO ABI's last port.
    g.dom.evtchn.set_max_port(u32::MAX);
    assert_eq!(g.dom.evtchn.max_port(), 131_071);
}

#[test]
fn ports_pending_under_2_level_stay_pending_under_fifo() {
    let mut g = Guest::new(false, 1);
    let console = g.dom.console_port.unwrap();
    g.dom.notify_port(&mut g.host, console).unwrap();
    assert!(g.pending(console));
    assert_eq!(init_control(&mut g, 0), 0);
    assert!(!g.pending(console), "no event word yet");
    let masked: Vec<u8> = (0..1024).flat_map(|_| MASKED.to_le_bytes()).collect();
    g.write(ARRAY_GFN * 4096, &masked);
    assert_eq!(expand(&mut g, ARRAY_GFN), 0);
    assert_eq!(word(&g, console), MASKED | PENDING);
    let store = g.dom.store_port.unwrap();
    assert_eq!(word(&g, store), MASKED);
    assert_eq!(unmask(&mut g, console), 0);
    assert_eq!((head(&g, 0, 7), ready(&g, 0)), (console, 1 << 7));
}

#[test]
fn reset_returns_to_2_level() {
    let mut g = fifo_guest(1);
    g.dom.evtchn.set_max_port(u32::MAX);
    let a = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, a), 0);
    let r = op(&mut g, EVTCHNOP_RESET, EvtchnReset { dom: DOMID_SELF }).0;
    assert_eq!(r, 0);
    assert!(g.dom.evtchn_fifo.is_none());
    assert_eq!(g.dom.evtchn.max_port(), 4095);
    assert_eq!(g.dom.evtchn_max_channels(), 4096);
    assert_eq!(g.dom.evtchn.bound().count(), 0);
    assert_eq!(
        word_at_gfn(&g, ARRAY_GFN, a),
        LINKED,
        "PENDING cleared at close"
    );
    // 2-level delivery again.
    assert_eq!(set_priority(&mut g, 0, 0), err(Errno::ENOSYS));
    assert_eq!(expand(&mut g, ARRAY_GFN), err(Errno::EOPNOTSUPP));
    let b = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, b), 0);
    let si = g.dom.shared_info_mfn * 4096;
    assert_eq!(g.phys_u64(si + 2048) & 1 << b, 1 << b);
    assert!(g.pending(b));
    // And FIFO can be set up afresh.
    assert_eq!(init_control(&mut g, 0), 0);
    let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
    assert_eq!(fifo.event_array_pages(), 0);
}

fn word_at_gfn(g: &Guest, gfn: u64, port: u32) -> u32 {
    u32_phys(g, (RAM_MFN_BASE + gfn) * 4096 + port as u64 * 4)
}

/// A small deterministic generator for the hostile-guest test.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

#[test]
fn a_hostile_control_block_and_event_array_never_loop_or_fault() {
    let mut g = Guest::new(false, 2);
    // The control block of vCPU 0 at the end of its page, vCPU 1's inside the
    // event-array page, both full of garbage.
    assert_eq!(init_control_at(&mut g, 0, CB_GFN[0], 4024).0, 0);
    assert_eq!(init_control_at(&mut g, 1, ARRAY_GFN, 64).0, 0);
    assert_eq!(expand(&mut g, ARRAY_GFN), 0);
    assert_eq!(expand(&mut g, ARRAY_GFN), 0, "the same frame twice");
    g.write(CB_GFN[0] * 4096, &[0xFF; 4096]);
    let mut rng = Lcg(7);
    let garbage: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    g.write(ARRAY_GFN * 4096, &garbage);
    let mut ports = Vec::new();
    for i in 0..40 {
        let v = i % 2;
        let (r, a) = op(
            &mut g,
            EVTCHNOP_BIND_IPI,
            EvtchnBindIpi { vcpu: v, port: 0 },
        );
        if r == 0 {
            ports.push(a.port);
        }
    }
    assert!(!ports.is_empty());
    g.host.log.clear();
    g.host.logging = true;
    for _ in 0..5000 {
        let port = ports[rng.next() as usize % ports.len()];
        match rng.next() % 9 {
            0..=2 => {
                let _ = send(&mut g, port);
            }
            3 => {
                let _ = unmask(&mut g, port);
            }
            4 => {
                let _ = set_priority(&mut g, port, rng.next() % 17);
            }
            5 => {
                // The guest writes a word: LINK loops, BUSY, anything.
                let w = match rng.next() % 4 {
                    0 => LINKED | port,
                    1 => LINKED | BUSY | ports[0],
                    2 => u32::MAX,
                    _ => rng.next(),
                };
                set_word(&mut g, port, w);
            }
            6 => {
                // ... or the control block.
                let cb = (RAM_MFN_BASE + CB_GFN[0]) * 4096 + 4024 + (rng.next() % 18) as u64 * 4;
                g.host.write_phys(cb, &rng.next().to_le_bytes());
            }
            7 => {
                let _ = op(
                    &mut g,
                    EVTCHNOP_BIND_VCPU,
                    EvtchnBindVcpu {
                        port,
                        vcpu: rng.next() % 3,
                    },
                );
            }
            _ => {
                if close(&mut g, port) == 0 {
                    let (r, a) = op(
                        &mut g,
                        EVTCHNOP_BIND_IPI,
                        EvtchnBindIpi { vcpu: 1, port: 0 },
                    );
                    if r == 0 {
                        ports.retain(|&p| p != port);
                        ports.push(a.port);
                    }
                }
            }
        }
    }
    // Every write the hypervisor made was to the domain's own RAM or its
    // shared_info (vcpu_info slots), never across a page (the fake host checks).
    let ram = RAM_MFN_BASE..RAM_MFN_BASE + 2048;
    for (hpa, data) in &g.host.log {
        let mfn = hpa / 4096;
        assert!(
            ram.contains(&mfn) || mfn == g.dom.shared_info_mfn,
            "write of {} bytes at {hpa:#x}",
            data.len()
        );
    }
}

#[test]
fn the_upcall_goes_to_the_registered_vcpu_info() {
    let mut g = fifo_guest(1);
    let r = guest_abi::vcpu::VcpuRegisterVcpuInfo {
        mfn: 0x500,
        offset: 0x40,
        rsvd: 0,
    };
    g.write(ARG, r.as_bytes());
    assert_eq!(g.call(hc::VCPU_OP, [10, 0, ARG, 0, 0]), 0);
    g.write(0x500 * 4096 + 0x40, &[0]);
    let a = bind_ipi(&mut g, 0);
    assert_eq!(send(&mut g, a), 0);
    assert_eq!(g.read(0x500 * 4096 + 0x40, 1), [1]);
    assert!(g.dom.upcall_pending(&g.host, 0));
}
