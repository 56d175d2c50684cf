//! `hypercall_dispatch`: [`hypercalls::dispatch`] with hostile arguments over a test domain.
//!
//! The domain is [`hypercalls::testhost::test_domain`] (8 MiB of RAM, identity page tables,
//! 1 to 4 vCPUs, `iommu` either way). The input is a program of what a guest can do: write its
//! RAM (argument structures, its page tables) and the hypervisor pages it has mapped
//! (shared_info with its pending and mask bits and vcpu_info, the grant table frames, the
//! console and xenstore rings); change CR3 and its paging mode; make hypercalls from any vCPU at
//! CPL 0 or 3, with numbers mostly among those implemented, small sub-op numbers and arguments
//! that point into its argument areas, across page ends, at unmapped, non-canonical or special
//! addresses, or are anything. Between calls the kernel's side runs: time passes, timers fire,
//! vCPUs block and wake, runstates change, backends drain the console and signal ports.
//!
//! The FIFO event-channel ABI needs arguments random words rarely give (a control block in a
//! RAM frame of the domain at an offset a multiple of 8 up to 4024, for a vCPU it has), so
//! some calls are event-channel operations built as a guest would: `init_control` and
//! `expand_array` on its RAM frames (often those already registered, or the argument pages),
//! `set_priority`, and the ports to drive them (IPIs, timer VIRQs, send, unmask, bind_vcpu,
//! close, now and then a reset). Between calls the guest scribbles on the control blocks and
//! event-array pages it registered: READY and HEAD garbage, event words with any of
//! PENDING/MASKED/LINKED/BUSY and a LINK to anywhere (itself, a queue's tail, beyond the
//! array).
//!
//! Checked besides "no panic" (the fake host also panics on any access crossing a page):
//! every result is 0, a positive value or a Xen errno; a hypercall from CPL 3 is `-EPERM`;
//! the FIFO state stays in bounds (at most 128 event-array pages, control blocks only for the
//! domain's vCPUs, inside their page, every queue tail a port with an event word); at the end,
//! when a hypercall changed the EPT, the tables agree with the p2m (`p2m::audit`: no violation)
//! and the domain tears down.

use alloc::vec::Vec;

use guest_abi::event_channel as ev;
use guest_abi::hypercall as hc;
use hypercalls::evtchn_fifo::{CONTROL_BLOCK_SIZE, EVENT_WORDS_PER_PAGE, MAX_EVENT_ARRAY_PAGES};
use hypercalls::guest_mem::{write_gpa, PagingState};
use hypercalls::testhost::{test_domain, FakeHost, RAM_MIB};
use hypercalls::{dispatch, Domain, Errno, Host, VcpuContext};
use zerocopy::IntoBytes;

use crate::Input;

/// Argument area (identity-mapped: GVA = GPA).
const ARG: u64 = 0x30_0000;
/// A second one.
const BUF: u64 = 0x31_0000;
/// Actions per input at most.
const MAX_STEPS: usize = 100;
/// The largest errno Xen returns (`-EHWPOISON` region; anything from -4095 up is an errno).
const MAX_ERRNO: u64 = 4095;

/// Hypercall numbers: every implemented one, several that are not.
const NUMBERS: &[u64] = &[
    hc::XEN_VERSION,
    hc::CONSOLE_IO,
    hc::MEMORY_OP,
    hc::SCHED_OP,
    hc::EVENT_CHANNEL_OP,
    hc::VCPU_OP,
    hc::HVM_OP,
    hc::GRANT_TABLE_OP,
    hc::SET_TIMER_OP,
    hc::VM_ASSIST,
    hc::PLATFORM_OP,
    hc::PHYSDEV_OP,
    hc::MULTICALL,
    hc::MMU_UPDATE,
    hc::IRET,
    hc::SCHED_OP_COMPAT,
    hc::EVENT_CHANNEL_OP_COMPAT,
    hc::DOMCTL,
    hc::SYSCTL,
    hc::DM_OP,
    hc::HYPFS_OP,
    48,
    64,
    127,
    128,
];

/// Addresses a guest might pass: argument areas, page ends, nothing mapped, not canonical,
/// beyond its RAM, its special pages' gfns, its page tables.
const ADDRESSES: &[u64] = &[
    ARG,
    ARG + 8,
    ARG + 0xFF8,
    ARG + 0xFFC,
    BUF,
    BUF + 0x800,
    BUF + 0xFF0,
    hypercalls::builder::PML4_GPA,
    0,
    8,
    0xFFF,
    0xFFFF_8000_DEAD_0000,
    0x0000_8000_0000_0000,
    0x8000_0000,
    (RAM_MIB << 20) - 8,
    RAM_MIB << 20,
    hypercalls::CONSOLE_GFN << 12,
    hypercalls::STORE_GFN << 12,
    0xF100_0000,
    u64::MAX,
    u64::MAX - 7,
];

/// A gfn a guest might name: RAM, its edge, special, MMIO, huge.
const GFNS: &[u64] = &[
    0x300,
    0x301,
    0x7FF,
    0x800,
    0x0,
    0x2,
    hypercalls::CONSOLE_GFN,
    hypercalls::STORE_GFN,
    0xF1000,
    0xFEFFF,
    0xFFFF_FFFF,
    u64::MAX,
];

/// Ports a guest might name in an event-channel operation besides those bound: the reserved
/// port 0, the first ports, the edges of the first event-array pages, of the 2-level ABI and of
/// the FIFO ABI.
const PORTS: &[u32] = &[
    0,
    1,
    2,
    3,
    1023,
    1024,
    1025,
    2047,
    4095,
    4096,
    ev::EVTCHN_FIFO_NR_CHANNELS - 1,
    ev::EVTCHN_FIFO_NR_CHANNELS,
    u32::MAX,
];

struct World {
    dom: Domain,
    host: FakeHost,
    paging: PagingState,
    vcpus: u32,
    /// A hypercall changed the EPT (the audit and teardown have something new to see).
    ept_changed: bool,
    /// The gfns of the control blocks and event-array pages registered so far (a guest reuses
    /// them, on purpose or not).
    fifo_gfns: Vec<u64>,
    /// How far into the FIFO ABI the input got.
    reached: Reached,
}

/// How far into the FIFO ABI an input got (for the sample tests: the harness reaches it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Reached {
    /// Control blocks registered at once, at most.
    control_blocks: u32,
    /// Event-array pages, at most.
    array_pages: u32,
    /// A queue had a tail (an event was linked).
    linked: bool,
}

/// One argument register.
fn arg(u: &mut Input<'_>) -> u64 {
    match u.range(0u8, 9) {
        0..=2 => u.range(0u64, 40),
        3 | 4 => u.pick(ADDRESSES),
        5 => ARG + u64::from(u.range(0u16, 0x1FFF)),
        6 => u.pick(GFNS),
        7 => u.pick(&[
            u64::from(u32::MAX),
            1 << 32,
            i64::MAX as u64,
            u64::MAX,
            0x7FF0,
        ]),
        _ => u.any(),
    }
}

/// Bytes for an argument structure: raw, or little-endian words from [`arg`].
fn structure(u: &mut Input<'_>) -> Vec<u8> {
    if u.ratio(1, 3) {
        return u.bytes(96).to_vec();
    }
    let mut v = Vec::new();
    for _ in 0..u.range(1u8, 8) {
        match u.range(0u8, 3) {
            0 => v.extend_from_slice(&arg(u).to_le_bytes()),
            1 => v.extend_from_slice(&(arg(u) as u32).to_le_bytes()),
            2 => v.extend_from_slice(&(arg(u) as u16).to_le_bytes()),
            _ => v.extend_from_slice(&[u.any::<u8>()]),
        }
    }
    v
}

/// A hypervisor page the guest can write: (host frame, name).
fn special_frames(dom: &Domain) -> Vec<u64> {
    let mut v = alloc::vec![dom.shared_info_mfn, dom.console_mfn, dom.store_mfn];
    v.extend(dom.grant.frame_mfns());
    v
}

impl World {
    fn new(u: &mut Input<'_>) -> World {
        let vcpus = u.range(1u32, 4);
        let iommu = u.ratio(1, 2);
        let (dom, host, ctx) = test_domain(1, vcpus, iommu);
        World {
            dom,
            host,
            paging: ctx.paging,
            vcpus,
            ept_changed: false,
            fifo_gfns: Vec::new(),
            reached: Reached::default(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.dom.system_time_ns(&self.host)
    }

    fn call(&mut self, u: &mut Input<'_>) {
        let nr = if u.ratio(1, 16) {
            u.any()
        } else {
            u.pick(NUMBERS)
        };
        let mut args = [0u64; 5];
        args[0] = if u.ratio(7, 8) {
            u.range(0u64, 40)
        } else {
            arg(u)
        };
        for a in &mut args[1..] {
            *a = arg(u);
        }
        let ctx = VcpuContext {
            vcpu_id: u.range(0, self.vcpus - 1),
            cpl: if u.ratio(1, 16) { 3 } else { 0 },
            paging: self.paging,
            compat: u.ratio(1, 16),
            interrupts_blocked: u.ratio(1, 4),
        };
        self.hypercall(&ctx, nr, args);
    }

    /// Makes one hypercall and checks what every hypercall must respect; returns its result.
    fn hypercall(&mut self, ctx: &VcpuContext, nr: u64, args: [u64; 5]) -> u64 {
        let r = dispatch(&mut self.dom, &mut self.host, ctx, nr, args);
        assert!(
            r <= i64::MAX as u64 || r >= MAX_ERRNO.wrapping_neg(),
            "hypercall {nr} {args:x?}: result {r:#x}"
        );
        if ctx.cpl != 0 {
            assert_eq!(r, Errno::EPERM.to_return());
        }
        // The kernel's INVEPT.
        self.ept_changed |= self.dom.ept_dirty;
        self.dom.ept_dirty = false;
        self.check_fifo(nr, args);
        r
    }

    /// The FIFO state stays within what the ABI allows, whatever the guest wrote.
    fn check_fifo(&mut self, nr: u64, args: [u64; 5]) {
        let Some(f) = self.dom.evtchn_fifo.as_ref() else {
            return;
        };
        let pages = f.event_array_pages();
        assert!(pages <= MAX_EVENT_ARRAY_PAGES, "after {nr} {args:x?}");
        assert_eq!(
            f.control_block_hpa(self.vcpus),
            None,
            "after {nr} {args:x?}"
        );
        let r = &mut self.reached;
        r.array_pages = r.array_pages.max(pages);
        let mut blocks = 0;
        for v in 0..self.vcpus {
            if let Some(cb) = f.control_block_hpa(v) {
                assert!(cb % 8 == 0 && cb % 4096 <= 4096 - u64::from(CONTROL_BLOCK_SIZE));
                blocks += 1;
            }
            for prio in 0..ev::EVTCHN_FIFO_MAX_QUEUES as u32 {
                let tail = f.tail(v, prio);
                r.linked |= tail != 0;
                assert!(
                    tail == 0 || tail < f.nr_event_words(),
                    "vCPU {v} queue {prio}: tail {tail} without an event word, after {nr} \
                     {args:x?}"
                );
            }
        }
        r.control_blocks = r.control_blocks.max(blocks);
    }

    /// A gfn for a control block or an event-array page: mostly the domain's RAM (pages
    /// already registered, the argument pages, its page tables, anywhere), now and then not.
    fn fifo_gfn(&self, u: &mut Input<'_>) -> u64 {
        let ram_pages = RAM_MIB << 8;
        match u.range(0u8, 9) {
            0..=2 if !self.fifo_gfns.is_empty() => {
                self.fifo_gfns[u.range(0, self.fifo_gfns.len() - 1)]
            }
            0 | 1 => 0x400 + u64::from(u.range(0u8, 15)),
            2 => ram_pages - 1,
            3 => u.pick(&[ARG >> 12, (ARG >> 12) + 1, BUF >> 12]),
            4 => hypercalls::builder::PML4_GPA >> 12,
            5..=7 => u.range(0, ram_pages - 1),
            _ => u.pick(GFNS),
        }
    }

    /// A port: one bound (most of the time), or one of [`PORTS`], or anything.
    fn port(&self, u: &mut Input<'_>) -> u32 {
        if u.ratio(3, 4) {
            let bound: Vec<u32> = self.dom.evtchn.bound().map(|(p, _)| p).collect();
            if !bound.is_empty() {
                return bound[u.range(0, bound.len() - 1)];
            }
        }
        if u.ratio(7, 8) {
            u.pick(PORTS)
        } else {
            u.any()
        }
    }

    /// A vCPU: one the domain has, mostly.
    fn vcpu(&self, u: &mut Input<'_>) -> u32 {
        if u.ratio(15, 16) {
            u.range(0, self.vcpus - 1)
        } else {
            u.pick(&[self.vcpus, 32, u32::MAX])
        }
    }

    /// An event-channel operation built as a guest builds it, FIFO sub-ops first.
    fn evtchn_call(&mut self, u: &mut Input<'_>) {
        let (cmd, bytes) = match u.range(0u8, 11) {
            0..=2 => {
                let control_gfn = self.fifo_gfn(u);
                let offset = match u.range(0u8, 7) {
                    0 => 0,
                    1 => 4096 - CONTROL_BLOCK_SIZE,
                    // Unaligned, or leaving no room for the block.
                    2 => u.range(0, 4095),
                    3 => u.pick(&[4096 - CONTROL_BLOCK_SIZE + 8, 4096, u32::MAX - 7]),
                    _ => u.range(0, (4096 - CONTROL_BLOCK_SIZE) / 8) * 8,
                };
                let a = ev::EvtchnInitControl {
                    control_gfn,
                    offset,
                    vcpu: self.vcpu(u),
                    link_bits: u.any(),
                    _pad: [0; 7],
                };
                (ev::EVTCHNOP_INIT_CONTROL, a.as_bytes().to_vec())
            }
            3 | 4 => {
                let a = ev::EvtchnExpandArray {
                    array_gfn: self.fifo_gfn(u),
                };
                (ev::EVTCHNOP_EXPAND_ARRAY, a.as_bytes().to_vec())
            }
            5 => {
                let a = ev::EvtchnSetPriority {
                    port: self.port(u),
                    priority: if u.ratio(7, 8) {
                        u.range(0, ev::EVTCHN_FIFO_PRIORITY_MIN + 1)
                    } else {
                        u.any()
                    },
                };
                (ev::EVTCHNOP_SET_PRIORITY, a.as_bytes().to_vec())
            }
            6 => {
                let a = ev::EvtchnBindIpi {
                    vcpu: self.vcpu(u),
                    port: 0,
                };
                (ev::EVTCHNOP_BIND_IPI, a.as_bytes().to_vec())
            }
            7 => {
                let a = ev::EvtchnBindVirq {
                    virq: u.pick(&[guest_abi::xen::VIRQ_TIMER, guest_abi::xen::VIRQ_DEBUG]),
                    vcpu: self.vcpu(u),
                    port: 0,
                };
                (ev::EVTCHNOP_BIND_VIRQ, a.as_bytes().to_vec())
            }
            8 => {
                let a = ev::EvtchnSend { port: self.port(u) };
                (ev::EVTCHNOP_SEND, a.as_bytes().to_vec())
            }
            9 => {
                let a = ev::EvtchnUnmask { port: self.port(u) };
                (ev::EVTCHNOP_UNMASK, a.as_bytes().to_vec())
            }
            10 => {
                let a = ev::EvtchnBindVcpu {
                    port: self.port(u),
                    vcpu: self.vcpu(u),
                };
                (ev::EVTCHNOP_BIND_VCPU, a.as_bytes().to_vec())
            }
            _ if u.ratio(1, 4) => {
                let a = ev::EvtchnReset {
                    dom: guest_abi::xen::DOMID_SELF,
                };
                (ev::EVTCHNOP_RESET, a.as_bytes().to_vec())
            }
            _ => {
                let a = ev::EvtchnClose { port: self.port(u) };
                (ev::EVTCHNOP_CLOSE, a.as_bytes().to_vec())
            }
        };
        let at = u.pick(&[ARG, BUF, ARG + 0x800]);
        if write_gpa(&self.dom.p2m, &mut self.host, at, &bytes).is_err() {
            return;
        }
        let ctx = VcpuContext {
            vcpu_id: u.range(0, self.vcpus - 1),
            cpl: 0,
            paging: self.paging,
            compat: u.ratio(1, 16),
            interrupts_blocked: u.ratio(1, 4),
        };
        let r = self.hypercall(&ctx, hc::EVENT_CHANNEL_OP, [u64::from(cmd), at, 0, 0, 0]);
        if r == 0 {
            // Both structures start with the gfn.
            let gfn = match (cmd, bytes.first_chunk::<8>()) {
                (ev::EVTCHNOP_INIT_CONTROL | ev::EVTCHNOP_EXPAND_ARRAY, Some(g)) => {
                    u64::from_le_bytes(*g)
                }
                _ => return,
            };
            if !self.fifo_gfns.contains(&gfn) {
                self.fifo_gfns.push(gfn);
            }
        }
    }

    /// A hostile guest writes the control blocks and event-array pages it registered.
    fn scribble(&mut self, u: &mut Input<'_>) {
        let Some(f) = self.dom.evtchn_fifo.as_ref() else {
            // Not registered (yet, or no longer): the pages it once named.
            if !self.fifo_gfns.is_empty() {
                let gfn = self.fifo_gfns[u.range(0, self.fifo_gfns.len() - 1)];
                let off = u.range(0u64, 4095);
                let bytes = u.bytes(16);
                let n = bytes.len().min(4096 - off as usize);
                let _ = write_gpa(&self.dom.p2m, &mut self.host, gfn * 4096 + off, &bytes[..n]);
            }
            return;
        };
        let words = f.nr_event_words();
        let bound: Vec<u32> = self.dom.evtchn.bound().map(|(p, _)| p).collect();
        let mut tails = Vec::new();
        for v in 0..self.vcpus {
            for prio in 0..ev::EVTCHN_FIFO_MAX_QUEUES as u32 {
                let t = f.tail(v, prio);
                if t != 0 {
                    tails.push(t);
                }
            }
        }
        // A port number for a LINK or HEAD: bound, a tail, the array's edges, anything.
        let link = |u: &mut Input<'_>| -> u32 {
            match u.range(0u8, 5) {
                0 if !bound.is_empty() => bound[u.range(0, bound.len() - 1)],
                1 if !tails.is_empty() => tails[u.range(0, tails.len() - 1)],
                0..=2 => u.pick(&[0, 1, words.saturating_sub(1), words, words + 1]),
                3 => u.pick(PORTS),
                _ => u.any(),
            }
        };
        // A word in the guest's style: flag bits and a LINK, or anything.
        let event_word = |u: &mut Input<'_>| -> u32 {
            if u.ratio(1, 8) {
                return u.any();
            }
            let flags: u8 = u.any();
            let mut w = link(u) & ev::EVTCHN_FIFO_LINK_MASK;
            for (i, bit) in [
                ev::EVTCHN_FIFO_PENDING,
                ev::EVTCHN_FIFO_MASKED,
                ev::EVTCHN_FIFO_LINKED,
                ev::EVTCHN_FIFO_BUSY,
            ]
            .into_iter()
            .enumerate()
            {
                if flags >> i & 1 != 0 {
                    w |= 1 << bit;
                }
            }
            w
        };
        let blocks: Vec<u64> = (0..self.vcpus)
            .filter_map(|v| f.control_block_hpa(v))
            .collect();
        let (hpa, bytes) = match u.range(0u8, 7) {
            // A control block: READY, a HEAD, or raw bytes over it.
            0..=2 if !blocks.is_empty() => {
                let cb = blocks[u.range(0, blocks.len() - 1)];
                match u.range(0u8, 3) {
                    0 => {
                        let ready: u32 = if u.ratio(1, 2) {
                            u.any()
                        } else {
                            u32::from(u.any::<u16>())
                        };
                        (cb, ready.to_le_bytes().to_vec())
                    }
                    1 | 2 => {
                        let q = u64::from(u.range(0u8, ev::EVTCHN_FIFO_MAX_QUEUES as u8 - 1));
                        (cb + 8 + 4 * q, link(u).to_le_bytes().to_vec())
                    }
                    _ => {
                        let off = u.range(0u64, u64::from(CONTROL_BLOCK_SIZE) - 1);
                        let bytes = u.bytes(CONTROL_BLOCK_SIZE as usize);
                        (cb + off, bytes.to_vec())
                    }
                }
            }
            // An event word: of a bound port, a tail, or any port with a word.
            0..=5 if words > 0 => {
                let port = match u.range(0u8, 2) {
                    0 if !bound.is_empty() => bound[u.range(0, bound.len() - 1)],
                    1 if !tails.is_empty() => tails[u.range(0, tails.len() - 1)],
                    _ => u.range(0, words - 1),
                };
                let Some(hpa) = f.word_hpa(port) else {
                    return;
                };
                (hpa, event_word(u).to_le_bytes().to_vec())
            }
            // Raw bytes anywhere in a registered page.
            _ => {
                let mut pages = blocks.iter().map(|cb| cb & !0xFFF).collect::<Vec<_>>();
                pages.extend(
                    (0..f.event_array_pages()).filter_map(|i| f.word_hpa(i * EVENT_WORDS_PER_PAGE)),
                );
                if pages.is_empty() {
                    return;
                }
                let page = pages[u.range(0, pages.len() - 1)];
                let off = u.range(0u64, 4095);
                (page + off, u.bytes(32).to_vec())
            }
        };
        let n = bytes.len().min(4096 - (hpa % 4096) as usize);
        self.host.write_phys(hpa, &bytes[..n]);
    }

    /// The kernel between VM exits: time, timers, wake-ups, runstates, backends.
    fn kernel(&mut self, u: &mut Input<'_>) {
        match u.range(0u8, 6) {
            0 => {
                let ns = u.pick(&[1_000u64, 1_000_000, 10_000_000, 1_000_000_000, 1 << 40]);
                self.host.tsc = self
                    .host
                    .tsc
                    .saturating_add(ns.saturating_mul(self.host.tsc_khz) / 1_000_000);
                let now = self.now_ns();
                self.dom.poll_timers(&mut self.host, now);
            }
            1 => {
                let now = self.now_ns();
                for v in 0..self.vcpus {
                    let _ = self.dom.next_deadline(v);
                    let _ = self.dom.upcall_pending(&self.host, v);
                    if self.dom.should_wake(&self.host, v, now) {
                        self.dom.wake(v);
                    }
                }
            }
            2 => {
                let v = u.range(0, self.vcpus - 1);
                let state = u.range(-1i32, 4);
                self.dom.update_runstate(&mut self.host, v, state);
            }
            3 => {
                let _ = self.dom.take_backend_kicks();
                let _ = self.dom.drain_console_ring(&mut self.host);
            }
            4 => {
                let port = match u.range(0u8, 2) {
                    0 => self.dom.store_port.unwrap_or(1),
                    1 => self.dom.console_port.unwrap_or(2),
                    _ => u.range(0u32, 5000),
                };
                let _ = self.dom.notify_port(&mut self.host, port);
            }
            5 => {
                let gref = u.range(0u32, 600);
                let _ = self.dom.grant_entry(&self.host, gref);
            }
            _ => {
                let v = u.range(0, self.vcpus - 1);
                let _ = self.dom.vcpu_info_hpa(v);
                let _ = self.dom.callback_vector();
            }
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    exec(data);
}

/// Runs one input; says how far into the FIFO ABI it got.
fn exec(data: &[u8]) -> Reached {
    let mut u = Input::new(data);
    let mut w = World::new(&mut u);
    let mut steps = 0;
    while !u.is_empty() && steps < MAX_STEPS {
        steps += 1;
        match u.range(0u8, 13) {
            0..=3 => w.call(&mut u),
            // An argument structure in guest RAM.
            4..=6 => {
                let at = match u.range(0u8, 3) {
                    0 => ARG,
                    1 => BUF,
                    2 => ARG + u64::from(u.range(0u16, 0x1FFF)),
                    _ => u.range(0u64, (RAM_MIB << 20) - 1),
                };
                let bytes = structure(&mut u);
                let _ = write_gpa(&w.dom.p2m, &mut w.host, at, &bytes);
            }
            // A hypervisor page the guest has mapped.
            7 => {
                let frames = special_frames(&w.dom);
                let mfn = frames[u.range(0, frames.len() - 1)];
                let off = u.range(0u64, 4095);
                let bytes = u.bytes(32);
                let n = bytes.len().min(4096 - off as usize);
                w.host.write_phys(mfn * 4096 + off, &bytes[..n]);
            }
            // CR3 and the paging mode.
            8 => {
                w.paging.cr3 = match u.range(0u8, 2) {
                    0 => hypercalls::builder::PML4_GPA,
                    1 => u.range(0u64, (RAM_MIB << 20) - 1) & !0xFFF,
                    _ => u.any(),
                };
                if u.ratio(1, 2) {
                    // CR0 (PG, WP, PE), CR4 (PSE, PAE, LA57), EFER (LME, LMA, NX).
                    let mode: u8 = u.any();
                    w.paging.cr0 =
                        0x11 | u64::from(mode & 1) << 31 | u64::from(mode >> 1 & 1) << 16 | 1;
                    w.paging.cr4 = u64::from(mode >> 2 & 1) << 4
                        | u64::from(mode >> 3 & 1) << 5
                        | u64::from(mode >> 4 & 1) << 12;
                    w.paging.efer = u64::from(mode >> 5 & 1) << 8
                        | u64::from(mode >> 6 & 1) << 10
                        | u64::from(mode >> 7) << 11;
                }
            }
            9 => w.evtchn_call(&mut u),
            10 => w.scribble(&mut u),
            _ => w.kernel(&mut u),
        }
    }
    // Both walk every EPT table: only worth it when a hypercall changed them.
    if w.ept_changed {
        let report = p2m::audit(&w.host, &w.dom.p2m);
        assert_eq!(report.violations, 0, "{report:?}");
        w.dom.destroy(&mut w.host);
    }
    w.reached
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        crate::run_samples(super::run);
    }

    /// Pseudo-random inputs (xorshift) register control blocks and event-array pages and link
    /// events, while the guest scribbles on them.
    #[test]
    fn random_inputs_reach_the_fifo_abi() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut best = super::Reached::default();
        for _ in 0..2000 {
            let data = crate::xorshift_bytes(&mut x, 512);
            let r = super::exec(&data);
            best.control_blocks = best.control_blocks.max(r.control_blocks);
            best.array_pages = best.array_pages.max(r.array_pages);
            best.linked |= r.linked;
        }
        assert!(best.control_blocks >= 2, "{best:?}");
        assert!(best.array_pages >= 2, "{best:?}");
        assert!(best.linked, "{best:?}");
    }
}
