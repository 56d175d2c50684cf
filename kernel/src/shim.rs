//! Temporary stand-ins for the platform models and hypercall-state methods
//! that are being written in crates `platform` and `hypercalls`.
#![allow(missing_docs, dead_code, clippy::all)]

pub mod lapic {
    #[derive(Debug)]
    pub struct Lapic {
        id: u32,
    }
    #[derive(Debug, Clone, Copy)]
    pub enum Delivery {
        Fixed(u8),
        Init,
        Startup(u8),
        Nmi,
    }
    #[derive(Debug, Clone, Copy)]
    pub struct Ipi {
        pub delivery: Delivery,
    }
    impl Ipi {
        pub fn targets(&self, _from: u32, _ids: &[u32]) -> alloc::vec::Vec<u32> {
            alloc::vec::Vec::new()
        }
    }
    impl Lapic {
        pub fn new(id: u32) -> Self {
            Lapic { id }
        }
        pub fn next_timer_deadline_tsc(&self) -> Option<u64> {
            None
        }
        pub fn poll_timer(&mut self, _now: u64) {}
        pub fn highest_deliverable(&self) -> Option<u8> {
            None
        }
        pub fn start_service(&mut self, _v: u8) {}
        pub fn accept(&mut self, _v: u8) {}
        pub fn read_msr(&mut self, msr: u32, _now: u64) -> Option<Result<u64, ()>> {
            match msr {
                0x1B => Some(Ok(0xFEE0_0000
                    | (1 << 11)
                    | (1 << 10)
                    | if self.id == 0 { 1 << 8 } else { 0 })),
                0x802 => Some(Ok(self.id as u64)),
                0x803 => Some(Ok(0x5_0014)),
                0x800..=0x8FF => Some(Ok(0)),
                _ => None,
            }
        }
        pub fn write_msr(
            &mut self,
            msr: u32,
            _v: u64,
            _now: u64,
        ) -> Option<Result<Option<Ipi>, ()>> {
            match msr {
                0x1B | 0x6E0 | 0x800..=0x8FF => Some(Ok(None)),
                _ => None,
            }
        }
    }
}

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
