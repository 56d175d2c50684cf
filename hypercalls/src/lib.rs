//! The Xen hypercall surface of xenolith, as plain data and functions.
//!
//! Nothing here needs a privileged instruction: the kernel hands each handler
//! a [`Host`] (host-physical memory, EPT table memory, console, clock) and the
//! [`Domain`] being served, and the handlers return Xen's result for RAX.
//! Guest memory is reached only through [`guest_mem`], so a bad guest
//! address is `-EFAULT` for the guest and never a hypervisor fault.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod builder;
pub mod console;
pub mod cpuid;
pub mod dispatch;
pub mod domain;
pub mod evtchn;
pub mod gnttab;
pub mod guest_mem;
pub mod hvm;
pub mod time;

pub use dispatch::dispatch;
pub use domain::Domain;
pub use guest_abi::Errno;

/// The result of a hypercall handler: a value for RAX, or a Xen errno.
pub type HypercallResult = Result<u64, Errno>;

/// What the hypervisor provides to the handlers.
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
    /// The vCPU's index in its domain.
    pub vcpu_id: u32,
    /// Current privilege level (hypercalls from CPL > 0 fail with EPERM).
    pub cpl: u8,
    /// Paging state used to translate guest-virtual arguments.
    pub paging: guest_mem::PagingState,
}
