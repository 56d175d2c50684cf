//! The Xen hypercall surface of xenolith, as plain data and functions.
//!
//! Nothing here needs a privileged instruction: the kernel hands each handler
//! a [`Host`] (host-physical memory, EPT table memory, console, clock) and the
//! [`Domain`] being served, and the handlers return Xen's result for RAX.
//! Guest memory is reached only through [`guest_mem`], so a bad guest
//! address is `-EFAULT` for the guest and never a hypervisor fault.
//!
//! # What the kernel calls
//!
//! Building a domain:
//! * [`Domain::new`]`(domid, name, p2m, ram_pages, nr_vcpus, host)` allocates shared_info
//!   (wall clock and every vCPU's pvclock stamped in), the console and xenstore rings
//!   (special pages at [`CONSOLE_GFN`] and [`STORE_GFN`]), their two event channels
//!   ([`Domain::console_port`], [`Domain::store_port`], remote end domain 0) and the HVM
//!   params that name them. [`Domain::e820`] may be filled for `XENMEM_memory_map`.
//! * [`hypercall_page`] is what a write of the hypercall MSR puts at the written GPA.
//!
//! Running it:
//! * `VMCALL` exit: RAX = [`dispatch()`]`(dom, host, &VcpuContext, rax, [rdi, rsi, rdx, r10, r8])`.
//!   Afterwards, if [`Domain::ept_dirty`] is set, INVEPT and clear it.
//! * Before each VM entry of vCPU `v`: if [`Domain::upcall_pending`]`(host, v)` and
//!   [`Domain::callback_vector`] is `Some(vec)`, inject `vec` as an external interrupt
//!   (Xen's vector callback: direct injection, no LAPIC IRR/ISR, no EOI). Use an
//!   interrupt window while the guest cannot take it.
//! * Time: system time is [`Domain::system_time_ns`] (the same pvclock scale the guest
//!   reads). [`Domain::next_deadline`] is the earliest timer of a vCPU; call
//!   [`Domain::poll_timers`] when it passes (it fires `VIRQ_TIMER`).
//! * Halting: `SCHEDOP_block`/`SCHEDOP_poll` set [`Vcpu::blocked`] / [`Vcpu::polling`].
//!   Keep such a vCPU off the CPU until [`Domain::should_wake`] says so, then call
//!   [`Domain::wake`]. [`Vcpu::needs_upcall`] is set whenever an event is newly
//!   delivered to a vCPU (clear it when you have acted on it).
//! * Runstate: [`Domain::update_runstate`] when a vCPU starts running, becomes
//!   runnable, blocks or goes offline (optional: without it vCPU 0 is always
//!   "running" and the others start "offline" until they register their area).
//! * Backends (the hypervisor is domain 0): [`Domain::take_backend_kicks`] lists the
//!   guest ports signalled towards domain 0 since the last call; a backend signals the
//!   guest with [`Domain::notify_port`]. The console backend is
//!   [`Domain::drain_console_ring`]. Grant access for backends:
//!   [`Domain::grant_entry`], [`Domain::grant_acquire`], [`Domain::grant_release`],
//!   [`Domain::grant_read`], [`Domain::grant_write`].
//! * Teardown: [`Domain::destroy`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod budget;
pub mod builder;
pub mod console;
pub mod cpuid;
pub mod dispatch;
pub mod domain;
pub mod evtchn;
pub mod evtchn_fifo;
pub mod gnttab;
pub mod guest_mem;
pub mod hvm;
pub mod memory;
pub mod pvh;
pub mod sched;
#[cfg(feature = "testhost")]
pub mod testhost;
pub mod time;
pub mod vcpu;

pub use dispatch::{dispatch, hypercall_page};
pub use domain::Domain;
pub use guest_abi::Errno;
pub use hvm::{CONSOLE_GFN, STORE_GFN};
pub use vcpu::Vcpu;

/// The result of a hypercall handler: a value for RAX, or a Xen errno.
pub type HypercallResult = Result<u64, Errno>;

/// What the hypervisor provides to the handlers.
///
/// The handlers update guest-shared bitmaps (event-channel pending bits, grant
/// flags) with plain reads and writes through this trait, so they assume no vCPU
/// of the domain runs while a handler or backend call is in progress.
pub trait Host: p2m::EptTableMemory {
    /// Copies bytes out of host-physical memory (never crosses a 4 KiB page).
    fn read_phys(&self, hpa: u64, buf: &mut [u8]);
    /// Copies bytes into host-physical memory (never crosses a 4 KiB page).
    fn write_phys(&mut self, hpa: u64, data: &[u8]);
    /// Allocates a zeroed 4 KiB host page (for special pages).
    fn alloc_page(&mut self) -> Option<u64>;
    /// Frees a page from [`Host::alloc_page`].
    fn free_page(&mut self, hpa: u64);
    /// Emits one complete line of a domain's console output.
    fn console_line(&mut self, domid: u16, line: &str);
    /// The wall-clock time: (seconds since the Unix epoch, nanoseconds).
    fn wallclock(&self) -> (u64, u32);
    /// The current TSC (guests see the same TSC, with no offset).
    fn tsc(&self) -> u64;
    /// The TSC frequency in kHz.
    fn tsc_khz(&self) -> u64;
}

/// The vCPU state a hypercall handler may need besides its arguments.
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuContext {
    /// The vCPU's index in its domain (the Xen vcpu id).
    pub vcpu_id: u32,
    /// Current privilege level (hypercalls from CPL > 0 fail with EPERM).
    pub cpl: u8,
    /// Paging state used to translate guest-virtual arguments.
    pub paging: guest_mem::PagingState,
    /// The caller is not in 64-bit mode (Xen's `hcall_compat`): it passed its arguments in
    /// EBX, ECX, EDX, ESI, EDI, and structures whose layout differs for 32-bit guests use
    /// the compat layout.
    pub compat: bool,
    /// The caller runs with interrupts blocked (RFLAGS.IF clear): an upcall pending cannot be
    /// taken, so it does not end a `SCHEDOP_poll` before its ports are checked (Xen's
    /// `local_events_need_delivery` for an HVM vCPU).
    pub interrupts_blocked: bool,
}

/// Reads a little-endian `u64` of host-physical memory.
pub(crate) fn read_u64(host: &impl Host, hpa: u64) -> u64 {
    let mut b = [0u8; 8];
    host.read_phys(hpa, &mut b);
    u64::from_le_bytes(b)
}

/// Writes a little-endian `u64` of host-physical memory.
pub(crate) fn write_u64(host: &mut impl Host, hpa: u64, v: u64) {
    host.write_phys(hpa, &v.to_le_bytes());
}

/// Sets bit `bit` of the bitmap at `hpa` (64-bit words); returns whether it was set.
pub(crate) fn test_and_set_bit(host: &mut impl Host, hpa: u64, bit: u32) -> bool {
    let word = hpa + (bit as u64 / 64) * 8;
    let mask = 1u64 << (bit % 64);
    let v = read_u64(host, word);
    if v & mask == 0 {
        write_u64(host, word, v | mask);
    }
    v & mask != 0
}

/// Clears bit `bit` of the bitmap at `hpa`; returns whether it was set.
pub(crate) fn test_and_clear_bit(host: &mut impl Host, hpa: u64, bit: u32) -> bool {
    let word = hpa + (bit as u64 / 64) * 8;
    let mask = 1u64 << (bit % 64);
    let v = read_u64(host, word);
    if v & mask != 0 {
        write_u64(host, word, v & !mask);
    }
    v & mask != 0
}

/// Whether bit `bit` of the bitmap at `hpa` is set.
pub(crate) fn test_bit(host: &impl Host, hpa: u64, bit: u32) -> bool {
    read_u64(host, hpa + (bit as u64 / 64) * 8) & (1 << (bit % 64)) != 0
}
