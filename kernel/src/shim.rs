//! Temporary stand-ins for the platform models and hypercall-state methods
//! that are being written in crates `platform` and `hypercalls`.
#![allow(missing_docs, dead_code, clippy::all)]

/// Hypercall-state methods the scheduler needs from `hypercalls::Domain`.
pub trait XenState {
    fn singleshot_deadline(&self, vcpu: usize) -> Option<u64>;
    fn is_blocked(&self, vcpu: usize) -> bool;
    fn clear_blocked(&mut self, vcpu: usize);
    fn ns_to_tsc(&self, host: &crate::host::KernelHost, ns: u64) -> u64;
    fn tsc_to_ns(&self, host: &crate::host::KernelHost, tsc: u64) -> u64;
    fn poll_timers(&mut self, host: &mut crate::host::KernelHost, now_ns: u64);
    fn console_port(&self) -> Option<u32>;
    fn drain_console_ring(&mut self, host: &mut crate::host::KernelHost);
}

impl XenState for hypercalls::Domain {
    fn singleshot_deadline(&self, vcpu: usize) -> Option<u64> {
        self.vcpus[vcpu].singleshot_deadline
    }
    fn is_blocked(&self, vcpu: usize) -> bool {
        self.vcpus[vcpu].blocked
    }
    fn clear_blocked(&mut self, vcpu: usize) {
        self.vcpus[vcpu].blocked = false;
    }
    fn ns_to_tsc(&self, _host: &crate::host::KernelHost, ns: u64) -> u64 {
        self.time.tsc(ns)
    }
    fn tsc_to_ns(&self, _host: &crate::host::KernelHost, tsc: u64) -> u64 {
        self.time.ns(tsc)
    }
    fn poll_timers(&mut self, host: &mut crate::host::KernelHost, now_ns: u64) {
        hypercalls::hvm::poll_timers(self, host, now_ns)
    }
    fn console_port(&self) -> Option<u32> {
        self.console_port
    }
    fn drain_console_ring(&mut self, host: &mut crate::host::KernelHost) {
        hypercalls::hvm::drain_console_ring(self, host)
    }
}

/// Xen's hypercall page: 32-byte stubs `mov $nr, %eax; vmcall; ret`.
pub fn hypercall_page() -> [u8; 4096] {
    let mut page = [0u8; 4096];
    for nr in 0..128u32 {
        let s = &mut page[nr as usize * 32..];
        s[0] = 0xB8;
        s[1..5].copy_from_slice(&nr.to_le_bytes());
        s[5..8].copy_from_slice(&[0x0F, 0x01, 0xC1]);
        s[8] = 0xC3;
    }
    page[23 * 32..23 * 32 + 2].copy_from_slice(&[0x0F, 0x0B]);
    page
}
