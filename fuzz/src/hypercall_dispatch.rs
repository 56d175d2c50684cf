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
//! Checked besides "no panic" (the fake host also panics on any access crossing a page):
//! every result is 0, a positive value or a Xen errno; a hypercall from CPL 3 is `-EPERM`;
//! at the end, when a hypercall changed the EPT, the tables agree with the p2m (`p2m::audit`:
//! no violation) and the domain tears down.

use alloc::vec::Vec;

use guest_abi::hypercall as hc;
use hypercalls::guest_mem::{write_gpa, PagingState};
use hypercalls::testhost::{test_domain, FakeHost, RAM_MIB};
use hypercalls::{dispatch, Domain, Errno, Host, VcpuContext};

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

struct World {
    dom: Domain,
    host: FakeHost,
    paging: PagingState,
    vcpus: u32,
    /// A hypercall changed the EPT (the audit and teardown have something new to see).
    ept_changed: bool,
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
        };
        let r = dispatch(&mut self.dom, &mut self.host, &ctx, nr, args);
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
    let mut u = Input::new(data);
    let mut w = World::new(&mut u);
    let mut steps = 0;
    while !u.is_empty() && steps < MAX_STEPS {
        steps += 1;
        match u.range(0u8, 11) {
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
            _ => w.kernel(&mut u),
        }
    }
    // Both walk every EPT table: only worth it when a hypercall changed them.
    if w.ept_changed {
        let report = p2m::audit(&w.host, &w.dom.p2m);
        assert_eq!(report.violations, 0, "{report:?}");
        w.dom.destroy(&mut w.host);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        crate::run_samples(super::run);
    }
}
