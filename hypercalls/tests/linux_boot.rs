//! The hypercalls Linux 6.1 makes as a PVHVM guest, in order (phases A-H of
//! `linux-xen-guest.md` §15), as one table: each step is a call, the result
//! Linux needs, and what must then be true of the hypervisor and guest state.
//! Linux takes the FIFO event-channel ABI (`xen:events: Using FIFO-based ABI`):
//! the steps do what its `events_fifo.c` does with the control blocks and the
//! event array.

mod common;

use common::{Guest, ARG, BUF};
use guest_abi::event_channel as ev;
use guest_abi::grant_table::{self as gt, GrantEntryV1};
use guest_abi::hvm::{self as hp, XenHvmParam};
use guest_abi::memory::XenAddToPhysmap;
use guest_abi::vcpu::{self as vc, VcpuRegisterVcpuInfo, VcpuRunstateInfo};
use guest_abi::version::XenFeatureInfo;
use guest_abi::xen::{VcpuTimeInfo, DOMID_SELF, VIRQ_DEBUG, VIRQ_TIMER};
use guest_abi::{features as feat, hypercall as hc, Errno};
use hypercalls::{Host, CONSOLE_GFN, STORE_GFN};
use p2m::MemType;
use zerocopy::{FromZeros, IntoBytes};

/// Where Linux maps shared_info (first free RAM page at or above 4 KiB).
const SHARED_INFO_GFN: u64 = 0x10;
/// Linux's per-CPU vcpu_info for CPU 0 (a GFN and an offset in it).
const VCPU_INFO_GFN: u64 = 0x500;
const VCPU_INFO_OFF: u32 = 0x40;
/// Linux's runstate area for CPU 0 (a GVA).
const RUNSTATE_GVA: u64 = BUF + 0x100;
/// The Xen platform device's BAR1, where Linux maps grant frames (UC by MTRR).
const BAR1_GFN: u64 = 0xF1000;
/// The vector Linux asks for.
const CALLBACK: u64 = (2 << 56) | 0xF3;
/// A page the guest grants to the backend.
const GRANTED_GFN: u64 = 0x600;
/// Linux's per-CPU FIFO control blocks (a page each, offset 0).
const CB_GFN: [u64; 2] = [0x520, 0x521];
/// The first page of Linux's FIFO event array (ports 0-1023).
const ARRAY0_GFN: u64 = 0x530;
const PENDING: u32 = 1 << ev::EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << ev::EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << ev::EVTCHN_FIFO_LINKED;
const BUSY: u32 = 1 << ev::EVTCHN_FIFO_BUSY;

type Run = Box<dyn Fn(&mut Guest) -> i64>;
type Check = Box<dyn Fn(&mut Guest)>;

struct Step {
    phase: &'static str,
    what: &'static str,
    run: Run,
    want: i64,
    then: Check,
}

fn step(phase: &'static str, what: &'static str, run: Run, want: i64, then: Check) -> Step {
    Step {
        phase,
        what,
        run,
        want,
        then,
    }
}

fn ok() -> i64 {
    0
}

fn e(e: Errno) -> i64 {
    e.to_return() as i64
}

fn nothing() -> Check {
    Box::new(|_| {})
}

fn evtchn<T: IntoBytes + zerocopy::FromBytes + zerocopy::Immutable + Copy + 'static>(
    cmd: u32,
    arg: T,
) -> Run {
    Box::new(move |g| g.op(hc::EVENT_CHANNEL_OP, cmd as u64, arg).0)
}

fn send(port: u32) -> Run {
    evtchn(ev::EVTCHNOP_SEND, ev::EvtchnSend { port })
}

fn unmask(port: u32) -> Run {
    evtchn(ev::EVTCHNOP_UNMASK, ev::EvtchnUnmask { port })
}

fn u32_at(g: &Guest, gpa: u64) -> u32 {
    u32::from_le_bytes(g.read(gpa, 4).try_into().unwrap())
}

/// `port`'s FIFO event word (all ports here are in page 0).
fn word(g: &Guest, port: u32) -> u32 {
    u32_at(g, ARRAY0_GFN * 4096 + port as u64 * 4)
}

fn set_word(g: &mut Guest, port: u32, w: u32) {
    g.write(ARRAY0_GFN * 4096 + port as u64 * 4, &w.to_le_bytes());
}

/// vCPU `cpu`'s control block: (READY, HEAD[priority]).
fn control(g: &Guest, cpu: usize, priority: u64) -> (u32, u32) {
    let cb = CB_GFN[cpu] * 4096;
    (u32_at(g, cb), u32_at(g, cb + 8 + 4 * priority))
}

/// `init_control_block(cpu)`: clears the page, then `EVTCHNOP_init_control`.
fn init_control(cpu: u32) -> Run {
    Box::new(move |g| {
        g.write(CB_GFN[cpu as usize] * 4096, &[0; 4096]);
        let ic = ev::EvtchnInitControl {
            control_gfn: CB_GFN[cpu as usize],
            offset: 0,
            vcpu: cpu,
            ..Default::default()
        };
        g.op(hc::EVENT_CHANNEL_OP, ev::EVTCHNOP_INIT_CONTROL as u64, ic)
            .0
    })
}

/// `evtchn_fifo_unmask`: `clear_masked_cond` in guest memory, and
/// `EVTCHNOP_unmask` only when the event is pending (or BUSY).
fn fifo_unmask(port: u32) -> Run {
    Box::new(move |g| {
        let w = word(g, port);
        if w & MASKED != 0 && w & (PENDING | BUSY) == 0 {
            set_word(g, port, w & !MASKED);
            return 0;
        }
        if w & MASKED == 0 {
            return 0;
        }
        unmask(port)(g)
    })
}

/// What Linux's upcall handler does on `cpu` (`xen_evtchn_do_upcall` with
/// `__evtchn_fifo_handle_events`): clears the upcall flag, takes READY, walks each
/// ready queue from HEAD clearing LINKED, and acks (clears PENDING of) each event it
/// handles. Returns the ports handled, in order.
fn fifo_consume(g: &mut Guest, cpu: u32) -> Vec<u32> {
    let vi = g.dom.vcpu_info_hpa(cpu).unwrap();
    g.host.write_phys(vi, &[0]);
    g.dom.vcpus[cpu as usize].needs_upcall = false;
    let cb = CB_GFN[cpu as usize] * 4096;
    let xchg_ready = |g: &mut Guest| {
        let r = u32_at(g, cb);
        g.write(cb, &0u32.to_le_bytes());
        r
    };
    let mut heads = [0u32; 16];
    let mut handled = Vec::new();
    let mut ready = xchg_ready(g);
    for _ in 0..64 {
        if ready == 0 {
            break;
        }
        let q = ready.trailing_zeros() as usize;
        let port = match heads[q] {
            0 => u32_at(g, cb + 8 + 4 * q as u64),
            h => h,
        };
        let w = word(g, port);
        set_word(g, port, w & !(LINKED | ev::EVTCHN_FIFO_LINK_MASK));
        let next = w & ev::EVTCHN_FIFO_LINK_MASK;
        if next == 0 {
            ready &= !(1 << q);
        }
        if w & PENDING != 0 && w & MASKED == 0 {
            handled.push(port);
            let w = word(g, port);
            set_word(g, port, w & !PENDING);
        }
        heads[q] = next;
        ready |= xchg_ready(g);
    }
    handled
}

/// `get_param(index)` must return `want`.
fn get_param(index: u32, want: u64) -> (Run, Check) {
    let p = XenHvmParam {
        domid: DOMID_SELF,
        index,
        ..Default::default()
    };
    (
        Box::new(move |g| g.op(hc::HVM_OP, hp::HVMOP_GET_PARAM as u64, p).0),
        Box::new(move |g| {
            let got: XenHvmParam = g.read_obj(ARG);
            assert_eq!(got.value, want, "param {index}");
            assert_ne!(got.value, 0, "Linux needs param {index} non-zero");
        }),
    )
}

/// The port an `EVTCHNOP_*` wrote back (in the struct at `ARG`, at `off`).
fn port_at(g: &Guest, off: u64) -> u32 {
    u32::from_le_bytes(g.read(ARG + off, 4).try_into().unwrap())
}

fn vcpu_info_gpa() -> u64 {
    VCPU_INFO_GFN * 4096 + VCPU_INFO_OFF as u64
}

fn linux_boot_sequence() -> Vec<Step> {
    let (console_evtchn, console_evtchn_check) = get_param(hp::HVM_PARAM_CONSOLE_EVTCHN, 1);
    let (console_pfn, console_pfn_check) = get_param(hp::HVM_PARAM_CONSOLE_PFN, CONSOLE_GFN);
    let (store_evtchn, store_evtchn_check) = get_param(hp::HVM_PARAM_STORE_EVTCHN, 2);
    let (store_pfn, store_pfn_check) = get_param(hp::HVM_PARAM_STORE_PFN, STORE_GFN);
    vec![
        // ---- A. platform init (setup_arch) ----
        step(
            "A",
            "xen_version(get_features)",
            Box::new(|g| {
                let fi = XenFeatureInfo::default();
                g.op(hc::XEN_VERSION, 6, fi).0
            }),
            ok(),
            Box::new(|g| {
                let fi: XenFeatureInfo = g.read_obj(ARG);
                for f in [
                    feat::XENFEAT_AUTO_TRANSLATED_PHYSMAP,
                    feat::XENFEAT_HVM_CALLBACK_VECTOR,
                    feat::XENFEAT_HVM_SAFE_PVCLOCK,
                ] {
                    assert_ne!(fi.submap & feat::bit(f), 0, "feature {f}");
                }
                for f in [
                    feat::XENFEAT_HVM_PIRQS,
                    feat::XENFEAT_DOM0,
                    feat::XENFEAT_SUPERVISOR_MODE_KERNEL,
                    feat::XENFEAT_RUNSTATE_PHYS_AREA,
                    feat::XENFEAT_VCPU_TIME_PHYS_AREA,
                ] {
                    assert_eq!(fi.submap & feat::bit(f), 0, "feature {f}");
                }
            }),
        ),
        step(
            "A",
            "add_to_physmap(shared_info)",
            Box::new(|g| {
                let xatp = XenAddToPhysmap {
                    domid: DOMID_SELF,
                    space: 0,
                    idx: 0,
                    gpfn: SHARED_INFO_GFN,
                    ..Default::default()
                };
                g.op(hc::MEMORY_OP, 7, xatp).0
            }),
            ok(),
            Box::new(|g| {
                assert!(g.dom.ept_dirty);
                g.dom.ept_dirty = false;
                // The guest reads wall clock and pvclock through its own mapping.
                let si = SHARED_INFO_GFN * 4096;
                let wc = g.read(si + 3072, 16);
                assert_eq!(u32::from_le_bytes(wc[0..4].try_into().unwrap()) % 2, 0);
                assert_eq!(
                    u32::from_le_bytes(wc[4..8].try_into().unwrap()),
                    1_795_588_215
                );
                assert_eq!(u32::from_le_bytes(wc[8..12].try_into().unwrap()), 250);
                let t: VcpuTimeInfo = g.read_obj(si + 32);
                assert_eq!(t, g.dom.time.pvclock());
                assert_eq!(t.version % 2, 0);
                assert_eq!(t.flags, 0, "no TSC_STABLE");
                assert_eq!(t.tsc_timestamp, g.dom.time.origin_tsc);
            }),
        ),
        step(
            "A",
            "hvm_op(pagetable_dying)",
            Box::new(|g| {
                let a = hp::XenHvmPagetableDying {
                    domid: DOMID_SELF,
                    ..Default::default()
                };
                g.op(hc::HVM_OP, hp::HVMOP_PAGETABLE_DYING as u64, a).0
            }),
            e(Errno::ENOSYS),
            nothing(),
        ),
        // ---- B. BSP vCPU ----
        step(
            "B",
            "vcpu_op(register_vcpu_info)",
            Box::new(|g| {
                let r = VcpuRegisterVcpuInfo {
                    mfn: VCPU_INFO_GFN,
                    offset: VCPU_INFO_OFF,
                    rsvd: 0,
                };
                g.write(ARG, r.as_bytes());
                g.call(hc::VCPU_OP, [10, 0, ARG, 0, 0])
            }),
            ok(),
            Box::new(|g| {
                let vi = vcpu_info_gpa();
                assert_eq!(g.dom.vcpus[0].vcpu_info_gpa, Some(vi));
                assert_eq!(g.read(vi, 1)[0], 1, "upcall pending");
                assert_eq!(g.read_u64(vi + 8), u64::MAX, "all selectors");
                let t: VcpuTimeInfo = g.read_obj(vi + 32);
                assert_eq!(t, g.dom.time.pvclock());
                assert!(g.dom.upcall_pending(&g.host, 0));
                assert!(g.dom.vcpus[0].needs_upcall);
            }),
        ),
        // ---- C. IRQ init ----
        step(
            "C",
            "evtchn(init_control vCPU 0): FIFO probe succeeds",
            init_control(0),
            ok(),
            // "xen:events: Using FIFO-based ABI"; the event array is still empty,
            // so Linux masks nothing.
            Box::new(|g| {
                let ic: ev::EvtchnInitControl = g.read_obj(ARG);
                assert_eq!(ic.link_bits, 17);
                let fifo = g.dom.evtchn_fifo.as_ref().expect("on FIFO");
                assert!(fifo.control_block_hpa(0).is_some());
                assert!(fifo.control_block_hpa(1).is_none());
                assert_eq!(fifo.event_array_pages(), 0);
                assert_eq!(g.dom.evtchn_max_channels(), 1 << 17);
                assert_eq!(
                    g.dom.evtchn.max_port(),
                    1023,
                    "event_channels still applies"
                );
            }),
        ),
        step(
            "C",
            "hvm_op(set_param CALLBACK_IRQ)",
            Box::new(|g| {
                let p = XenHvmParam {
                    domid: DOMID_SELF,
                    index: hp::HVM_PARAM_CALLBACK_IRQ,
                    value: CALLBACK,
                    ..Default::default()
                };
                g.op(hc::HVM_OP, hp::HVMOP_SET_PARAM as u64, p).0
            }),
            ok(),
            Box::new(|g| {
                assert_eq!(g.dom.callback_vector(), Some(0xF3));
                // The registration's upcall is still pending: the kernel injects it.
                assert!(g.dom.upcall_pending(&g.host, 0));
                g.ack_all(0);
            }),
        ),
        // ---- D. console ----
        step(
            "D",
            "get_param(CONSOLE_EVTCHN)",
            console_evtchn,
            ok(),
            console_evtchn_check,
        ),
        step(
            "D",
            "get_param(CONSOLE_PFN)",
            console_pfn,
            ok(),
            console_pfn_check,
        ),
        step(
            "D",
            "hvc0 binds port 1: evtchn(expand_array) with page 0",
            Box::new(|g| {
                // init_array_page: every event masked.
                let masked: Vec<u8> = (0..1024).flat_map(|_| MASKED.to_le_bytes()).collect();
                g.write(ARRAY0_GFN * 4096, &masked);
                let a = ev::EvtchnExpandArray {
                    array_gfn: ARRAY0_GFN,
                };
                g.op(hc::EVENT_CHANNEL_OP, ev::EVTCHNOP_EXPAND_ARRAY as u64, a)
                    .0
            }),
            ok(),
            Box::new(|g| {
                let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
                assert_eq!(fifo.event_array_pages(), 1);
                assert_eq!(word(g, 1), MASKED, "nothing was pending");
                assert!(g.dom.port_is_masked(&g.host, 1));
            }),
        ),
        step(
            "D",
            "hvc0 writes its ring and sends",
            Box::new(|g| {
                let msg = b"Linux version 6.1.0 (hvc0)\nsecond";
                g.write(CONSOLE_GFN * 4096 + 1024, msg);
                g.write(CONSOLE_GFN * 4096 + 3084, &(msg.len() as u32).to_le_bytes());
                send(1)(g)
            }),
            ok(),
            Box::new(|g| {
                assert_eq!(g.dom.take_backend_kicks(), [1]);
                assert_eq!(g.dom.drain_console_ring(&mut g.host), 33);
                assert_eq!(g.host.console, [(1, "Linux version 6.1.0 (hvc0)".into())]);
                let cons = g.read(CONSOLE_GFN * 4096 + 3080, 4);
                assert_eq!(u32::from_le_bytes(cons.try_into().unwrap()), 33);
                // The backend signalled; the port is masked, so no upcall yet.
                assert!(g.pending(1));
                assert_eq!(word(g, 1), MASKED | PENDING, "not linked");
                assert!(!g.dom.upcall_pending(&g.host, 0));
            }),
        ),
        step(
            "D",
            "evtchn(unmask console port): pending, so a hypercall",
            fifo_unmask(1),
            ok(),
            Box::new(|g| {
                assert!(g.dom.upcall_pending(&g.host, 0), "pending port unmasked");
                assert_eq!(word(g, 1), PENDING | LINKED);
                assert_eq!(control(g, 0, 7), (1 << 7, 1), "HEAD of the default queue");
                assert_eq!(fifo_consume(g, 0), [1]);
                assert_eq!(word(g, 1), 0);
            }),
        ),
        // ---- E. timers (smp_prepare_cpus -> xen_time_init) ----
        step(
            "E",
            "vcpu_op(stop_periodic_timer)",
            Box::new(|g| g.call(hc::VCPU_OP, [7, 0, 0, 0, 0])),
            ok(),
            nothing(),
        ),
        step(
            "E",
            "vcpu_op(register_runstate_memory_area)",
            Box::new(|g| {
                g.write(RUNSTATE_GVA, &[0xAA; 48]);
                g.write(ARG, &RUNSTATE_GVA.to_le_bytes());
                g.call(hc::VCPU_OP, [5, 0, ARG, 0, 0])
            }),
            ok(),
            Box::new(|g| {
                let r: VcpuRunstateInfo = g.read_obj(RUNSTATE_GVA);
                assert_eq!(r.state, vc::RUNSTATE_RUNNING);
                assert_eq!(r.state_entry_time, 0);
                assert_eq!(r.time[1..], [0, 0, 0]);
            }),
        ),
        step(
            "E",
            "evtchn(bind_virq TIMER)",
            evtchn(
                ev::EVTCHNOP_BIND_VIRQ,
                ev::EvtchnBindVirq {
                    virq: VIRQ_TIMER,
                    vcpu: 0,
                    port: 0,
                },
            ),
            ok(),
            Box::new(|g| assert_eq!(port_at(g, 8), 3)),
        ),
        step(
            "E",
            "evtchn(set_priority)",
            evtchn(
                ev::EVTCHNOP_SET_PRIORITY,
                ev::EvtchnSetPriority {
                    port: 3,
                    priority: 0,
                },
            ),
            ok(),
            Box::new(|g| assert_eq!(g.dom.evtchn_fifo.as_ref().unwrap().priority(3), 0)),
        ),
        step(
            "E",
            "vm_assist(enable runstate_update_flag)",
            Box::new(|g| g.call(hc::VM_ASSIST, [0, 5, 0, 0, 0])),
            ok(),
            nothing(),
        ),
        step(
            "E",
            "evtchn(bind_ipi) resched",
            evtchn(
                ev::EVTCHNOP_BIND_IPI,
                ev::EvtchnBindIpi { vcpu: 0, port: 0 },
            ),
            ok(),
            Box::new(|g| assert_eq!(port_at(g, 4), 4)),
        ),
        step(
            "E",
            "evtchn(bind_ipi) callfunc",
            evtchn(
                ev::EVTCHNOP_BIND_IPI,
                ev::EvtchnBindIpi { vcpu: 0, port: 0 },
            ),
            ok(),
            Box::new(|g| assert_eq!(port_at(g, 4), 5)),
        ),
        step(
            "E",
            "evtchn(bind_ipi) callfuncsingle, for vCPU 1",
            evtchn(
                ev::EVTCHNOP_BIND_IPI,
                ev::EvtchnBindIpi { vcpu: 1, port: 0 },
            ),
            ok(),
            Box::new(|g| assert_eq!(port_at(g, 4), 6)),
        ),
        step(
            "E",
            "evtchn(bind_virq DEBUG)",
            evtchn(
                ev::EVTCHNOP_BIND_VIRQ,
                ev::EvtchnBindVirq {
                    virq: VIRQ_DEBUG,
                    vcpu: 0,
                    port: 0,
                },
            ),
            ok(),
            Box::new(|g| assert_eq!(port_at(g, 8), 7)),
        ),
        step(
            "E",
            "unmask timer (in guest memory: not pending)",
            fifo_unmask(3),
            ok(),
            Box::new(|g| assert_eq!(word(g, 3), 0)),
        ),
        step(
            "E",
            "vcpu_op(set_singleshot_timer, +1 ms)",
            Box::new(|g| {
                g.set_time(5_000_000);
                let t = vc::VcpuSetSingleshotTimer {
                    timeout_abs_ns: 6_000_000,
                    ..Default::default()
                };
                g.write(ARG, t.as_bytes());
                g.call(hc::VCPU_OP, [8, 0, ARG, 0, 0])
            }),
            ok(),
            Box::new(|g| {
                assert_eq!(g.dom.next_deadline(0), Some(6_000_000));
                assert!(!g.dom.poll_timers(&mut g.host, 5_999_999));
                assert!(!g.pending(3));
                g.set_time(6_000_000);
                let now = g.dom.system_time_ns(&g.host);
                assert!(g.dom.poll_timers(&mut g.host, now), "VIRQ_TIMER fires");
                assert_eq!(g.dom.vcpus[0].singleshot_deadline, None);
                assert!(g.pending(3));
                assert!(g.dom.upcall_pending(&g.host, 0));
                assert_eq!(g.read(vcpu_info_gpa(), 1)[0], 1, "registered vcpu_info");
                assert!(g.dom.vcpus[0].needs_upcall);
                // Priority 0: the highest queue.
                assert_eq!(control(g, 0, 0), (1, 3));
                assert_eq!(fifo_consume(g, 0), [3]);
            }),
        ),
        step(
            "E",
            "vcpu_op(stop_singleshot_timer)",
            Box::new(|g| g.call(hc::VCPU_OP, [9, 0, 0, 0, 0])),
            ok(),
            Box::new(|g| assert_eq!(g.dom.next_deadline(0), None)),
        ),
        step(
            "E",
            "CPU 1 comes up: evtchn(init_control vCPU 1)",
            init_control(1),
            ok(),
            Box::new(|g| {
                let fifo = g.dom.evtchn_fifo.as_ref().unwrap();
                assert!(fifo.control_block_hpa(1).is_some());
            }),
        ),
        step(
            "E",
            "unmask IPI port 6 (in guest memory)",
            fifo_unmask(6),
            ok(),
            nothing(),
        ),
        step(
            "E",
            "IPI to vCPU 1: evtchn(send port 6)",
            Box::new(|g| {
                g.dom.vcpus[1].needs_upcall = false;
                send(6)(g)
            }),
            ok(),
            Box::new(|g| {
                assert!(g.pending(6));
                // vCPU 1 has no registered vcpu_info yet: its shared_info slot.
                assert!(g.dom.upcall_pending(&g.host, 1));
                assert!(!g.dom.upcall_pending(&g.host, 0));
                assert!(g.dom.vcpus[1].needs_upcall);
                assert_eq!(control(g, 1, 7), (1 << 7, 6), "vCPU 1's queue");
                assert_eq!(fifo_consume(g, 1), [6]);
            }),
        ),
        step(
            "E",
            "sched_op(yield)",
            Box::new(|g| g.call(hc::SCHED_OP, [0, 0, 0, 0, 0])),
            ok(),
            nothing(),
        ),
        // ---- F. xenstore ----
        step(
            "F",
            "get_param(STORE_EVTCHN)",
            store_evtchn,
            ok(),
            store_evtchn_check,
        ),
        step(
            "F",
            "get_param(STORE_PFN)",
            store_pfn,
            ok(),
            store_pfn_check,
        ),
        step(
            "F",
            "xenbus sends on the store port",
            send(2),
            ok(),
            Box::new(|g| assert_eq!(g.dom.take_backend_kicks(), [2])),
        ),
        step(
            "F",
            "unmask store port (in guest memory)",
            fifo_unmask(2),
            ok(),
            Box::new(|g| assert_eq!(word(g, 2), 0)),
        ),
        // ---- G. grant table (platform-pci probe) ----
        step(
            "G",
            "grant_table_op(query_size)",
            Box::new(|g| {
                let q = gt::GnttabQuerySize {
                    dom: DOMID_SELF,
                    ..Default::default()
                };
                g.write(ARG, q.as_bytes());
                g.call(hc::GRANT_TABLE_OP, [6, ARG, 1, 0, 0])
            }),
            ok(),
            Box::new(|g| {
                let q: gt::GnttabQuerySize = g.read_obj(ARG);
                assert_eq!((q.nr_frames, q.max_nr_frames, q.status), (1, 64, 0));
            }),
        ),
        step(
            "G",
            "grant_table_op(set_version 1)",
            Box::new(|g| {
                g.write(ARG, &1u32.to_le_bytes());
                g.call(hc::GRANT_TABLE_OP, [8, ARG, 1, 0, 0])
            }),
            ok(),
            nothing(),
        ),
        step(
            "G",
            "add_to_physmap(grant_table idx 0) in BAR1",
            Box::new(|g| {
                // The guest's MTRRs make 0xF0000000.. UC, as Linux's do for BAR1.
                hypercalls::testhost::make_pci_hole_uc(&mut g.dom, &mut g.host);
                let xatp = XenAddToPhysmap {
                    domid: DOMID_SELF,
                    space: 1,
                    idx: 0,
                    gpfn: BAR1_GFN,
                    ..Default::default()
                };
                g.op(hc::MEMORY_OP, 7, xatp).0
            }),
            ok(),
            Box::new(|g| {
                let mfn = g.dom.grant.frame_mfn(0).unwrap();
                let (hpa, mt, ipat, size) =
                    p2m::translate(&g.host, g.dom.p2m.eptp(), BAR1_GFN * 4096).unwrap();
                assert_eq!((hpa / 4096, mt, ipat, size), (mfn, MemType::Wb, true, 4096));
                let report = p2m::audit(&g.host, &g.dom.p2m);
                // shared_info, console, xenstore and the grant frame.
                assert_eq!((report.special_wb_ipat, report.violations), (4, 0));
            }),
        ),
        // ---- H. netfront ----
        step(
            "H",
            "evtchn(alloc_unbound remote 0)",
            evtchn(
                ev::EVTCHNOP_ALLOC_UNBOUND,
                ev::EvtchnAllocUnbound {
                    dom: DOMID_SELF,
                    remote_dom: 0,
                    port: 0,
                },
            ),
            ok(),
            Box::new(|g| assert_eq!(port_at(g, 4), 8)),
        ),
        step(
            "H",
            "netfront grants a page and kicks",
            Box::new(|g| {
                let entry = GrantEntryV1 {
                    flags: gt::GTF_PERMIT_ACCESS,
                    domid: 0,
                    frame: GRANTED_GFN as u32,
                };
                g.write(BAR1_GFN * 4096 + 8 * 8, entry.as_bytes());
                send(8)(g)
            }),
            ok(),
            Box::new(|g| {
                assert_eq!(g.dom.take_backend_kicks(), [8]);
                // The backend copies a packet into the granted page.
                g.dom.grant_write(&mut g.host, 8, 0, 2, b"frame").unwrap();
                assert_eq!(g.read(GRANTED_GFN * 4096 + 2, 5), b"frame");
                let e = g.dom.grant_entry(&g.host, 8).unwrap();
                assert_eq!(e.flags, gt::GTF_PERMIT_ACCESS, "reading/writing cleared");
                g.dom.notify_port(&mut g.host, 8).unwrap();
                assert!(g.pending(8));
            }),
        ),
        step(
            "H",
            "evtchn(unmask): pending, so a hypercall",
            fifo_unmask(8),
            ok(),
            Box::new(|g| {
                // The queue's last tail (port 1) was unlinked by the guest: port 8
                // is the new HEAD, port 1's word is left alone.
                assert_eq!(control(g, 0, 7), (1 << 7, 8));
                assert_eq!(word(g, 1), 0);
                assert_eq!(fifo_consume(g, 0), [8]);
            }),
        ),
        step(
            "H",
            "evtchn(bind_vcpu to vCPU 1)",
            evtchn(
                ev::EVTCHNOP_BIND_VCPU,
                ev::EvtchnBindVcpu { port: 8, vcpu: 1 },
            ),
            ok(),
            nothing(),
        ),
        step(
            "H",
            "evtchn(close) at teardown",
            evtchn(ev::EVTCHNOP_CLOSE, ev::EvtchnClose { port: 8 }),
            ok(),
            Box::new(|g| assert!(!g.pending(8), "closing clears pending")),
        ),
        step(
            "H",
            "send on the closed port",
            send(8),
            e(Errno::EINVAL),
            nothing(),
        ),
        // ---- shutdown ----
        step(
            "-",
            "sched_op(shutdown poweroff)",
            Box::new(|g| {
                g.write(ARG, &0u32.to_le_bytes());
                g.call(hc::SCHED_OP, [2, ARG, 0, 0, 0])
            }),
            ok(),
            Box::new(|g| {
                assert_eq!(
                    g.dom.shutdown,
                    Some(hypercalls::domain::ShutdownReason::Poweroff)
                )
            }),
        ),
    ]
}

#[test]
fn linux_6_1_pvhvm_boot_sequence() {
    let mut g = Guest::new(true, 2);
    for (i, s) in linux_boot_sequence().into_iter().enumerate() {
        let r = (s.run)(&mut g);
        assert_eq!(r, s.want, "step {i} ({}) {}", s.phase, s.what);
        (s.then)(&mut g);
    }
    // Everything allocated is given back.
    let mfns: Vec<u64> = [
        g.dom.shared_info_mfn,
        g.dom.console_mfn,
        g.dom.store_mfn,
        g.dom.grant.frame_mfn(0).unwrap(),
    ]
    .into();
    let Guest { dom, mut host, .. } = g;
    dom.destroy(&mut host);
    for m in mfns {
        assert!(host.freed.contains(&m), "{m:#x} freed");
    }
}

/// The runstate area honours `XEN_RUNSTATE_UPDATE` once Linux enabled it.
#[test]
fn runstate_updates_after_vm_assist() {
    let mut g = Guest::new(false, 2);
    g.write(ARG, &RUNSTATE_GVA.to_le_bytes());
    assert_eq!(g.call(hc::VCPU_OP, [5, 0, ARG, 0, 0]), 0);
    assert_eq!(g.call(hc::VM_ASSIST, [0, 5, 0, 0, 0]), 0);
    g.set_time(1_000);
    g.dom.update_runstate(&mut g.host, 0, vc::RUNSTATE_BLOCKED);
    g.set_time(3_500);
    g.dom.update_runstate(&mut g.host, 0, vc::RUNSTATE_RUNNING);
    let r: VcpuRunstateInfo = g.read_obj(RUNSTATE_GVA);
    assert_eq!(r.state, vc::RUNSTATE_RUNNING);
    assert_eq!(r.state_entry_time, 3_500, "update flag cleared");
    assert_eq!(r.time, [1_000, 0, 2_500, 0]);
    // get_runstate_info includes the current stretch.
    g.set_time(4_000);
    g.write(ARG, VcpuRunstateInfo::new_zeroed().as_bytes());
    assert_eq!(g.call(hc::VCPU_OP, [4, 0, ARG, 0, 0]), 0);
    let r: VcpuRunstateInfo = g.read_obj(ARG);
    assert_eq!(r.time, [1_500, 0, 2_500, 0]);
    // vCPU 1 has not run: offline, and not up.
    assert_eq!(g.call(hc::VCPU_OP, [3, 1, 0, 0, 0]), 0);
    assert_eq!(g.call(hc::VCPU_OP, [3, 0, 0, 0, 0]), 1);
    // Its own registration makes it running.
    g.write(ARG, &(RUNSTATE_GVA + 64).to_le_bytes());
    assert_eq!(g.call_on(1, hc::VCPU_OP, [5, 1, ARG, 0, 0]), 0);
    let r: VcpuRunstateInfo = g.read_obj(RUNSTATE_GVA + 64);
    assert_eq!(
        (r.state, r.state_entry_time, r.time[3]),
        (vc::RUNSTATE_RUNNING, 4_000, 4_000)
    );
    assert_eq!(g.call(hc::VCPU_OP, [3, 1, 0, 0, 0]), 1);
}
