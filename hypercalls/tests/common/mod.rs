//! The in-memory guest the host tests run hypercalls against.
#![allow(dead_code)]

use guest_abi::Errno;
use hypercalls::guest_mem::{read_gpa, write_gpa};
use hypercalls::testhost::test_domain;
use hypercalls::{dispatch, Domain, Host, VcpuContext};
use zerocopy::{FromBytes, IntoBytes};

/// Where tests put hypercall argument structures (identity-mapped GVA = GPA).
pub const ARG: u64 = 0x30_0000;
/// A second scratch buffer.
pub const BUF: u64 = 0x31_0000;
/// Mapped by no guest page table entry.
pub const UNMAPPED_GVA: u64 = 0xFFFF_8000_DEAD_0000;
/// Not canonical.
pub const NONCANONICAL_GVA: u64 = 0x0000_8000_0000_0000;
/// Mapped by the guest's page tables (identity 0-4 GiB) but not guest RAM.
pub const BEYOND_RAM_GVA: u64 = 0x8000_0000;
pub use hypercalls::testhost::FakeHost;

/// A guest with RAM at gfn 0.., the builder's identity page tables in it, and
/// `vcpus` vCPUs in 64-bit mode with CR0.WP set.
pub struct Guest {
    pub dom: Domain,
    pub host: FakeHost,
    pub ctx: VcpuContext,
}

pub fn setup(iommu: bool) -> (Domain, FakeHost, VcpuContext) {
    let g = Guest::new(iommu, 1);
    (g.dom, g.host, g.ctx)
}

impl Guest {
    pub fn new(iommu: bool, vcpus: u32) -> Guest {
        let (dom, host, ctx) = test_domain(1, vcpus, iommu);
        Guest { dom, host, ctx }
    }

    /// Runs hypercall `nr` on vCPU `vcpu`; returns RAX as a signed value.
    pub fn call_on(&mut self, vcpu: u32, nr: u64, args: [u64; 5]) -> i64 {
        let ctx = VcpuContext {
            vcpu_id: vcpu,
            ..self.ctx
        };
        dispatch(&mut self.dom, &mut self.host, &ctx, nr, args) as i64
    }

    /// Runs hypercall `nr` on vCPU 0.
    pub fn call(&mut self, nr: u64, args: [u64; 5]) -> i64 {
        self.call_on(0, nr, args)
    }

    /// Writes `v` at `ARG` and runs `nr(cmd, ARG)`; returns RAX and the structure
    /// as the hypervisor left it.
    pub fn op<T: IntoBytes + FromBytes + zerocopy::Immutable>(
        &mut self,
        nr: u64,
        cmd: u64,
        v: T,
    ) -> (i64, T) {
        self.op_on(0, nr, cmd, v)
    }

    /// [`Guest::op`] on vCPU `vcpu`.
    pub fn op_on<T: IntoBytes + FromBytes + zerocopy::Immutable>(
        &mut self,
        vcpu: u32,
        nr: u64,
        cmd: u64,
        v: T,
    ) -> (i64, T) {
        self.write(ARG, v.as_bytes());
        let r = self.call_on(vcpu, nr, [cmd, ARG, 0, 0, 0]);
        (r, self.read_obj(ARG))
    }

    pub fn write(&mut self, gpa: u64, data: &[u8]) {
        write_gpa(&self.dom.p2m, &mut self.host, gpa, data).unwrap();
    }

    pub fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        read_gpa(&self.dom.p2m, &self.host, gpa, &mut b).unwrap();
        b
    }

    pub fn read_obj<T: FromBytes>(&self, gpa: u64) -> T {
        T::read_from_bytes(&self.read(gpa, core::mem::size_of::<T>())).unwrap()
    }

    pub fn read_u64(&self, gpa: u64) -> u64 {
        u64::from_le_bytes(self.read(gpa, 8).try_into().unwrap())
    }

    /// Reads host-physical memory (a hypervisor page).
    pub fn phys(&self, hpa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.host.read_phys(hpa, &mut b);
        b
    }

    pub fn phys_u64(&self, hpa: u64) -> u64 {
        u64::from_le_bytes(self.phys(hpa, 8).try_into().unwrap())
    }

    /// Moves the TSC to system time `ns`.
    pub fn set_time(&mut self, ns: u64) {
        self.host.tsc = self.dom.time.tsc(ns);
        assert_eq!(self.dom.system_time_ns(&self.host), ns);
    }

    /// Whether `port` is pending in shared_info.
    pub fn pending(&self, port: u32) -> bool {
        self.dom.port_is_pending(&self.host, port)
    }

    /// Sets `port`'s mask bit in shared_info (as Linux does, without a hypercall).
    pub fn mask(&mut self, port: u32) {
        let hpa = self.dom.shared_info_mfn * 4096 + 2560 + (port as u64 / 64) * 8;
        let v = self.phys_u64(hpa) | 1 << (port % 64);
        self.host.write_phys(hpa, &v.to_le_bytes());
    }

    /// What the guest does when it handles events on `vcpu`: clears the upcall
    /// flag, the selector and the pending bits (the vcpu_info at `hpa`).
    pub fn ack_all(&mut self, vcpu: u32) {
        let vi = self.dom.vcpu_info_hpa(vcpu).unwrap();
        self.host.write_phys(vi, &[0]);
        self.host.write_phys(vi + 8, &[0; 8]);
        let si = self.dom.shared_info_mfn * 4096;
        self.host.write_phys(si + 2048, &[0; 512]);
        self.dom.vcpus[vcpu as usize].needs_upcall = false;
    }
}

pub fn err(e: Errno) -> i64 {
    e.to_return() as i64
}

/// `HYPERVISOR_event_channel_op(cmd, &arg)` on vCPU 0: the result and the argument as the
/// hypervisor left it.
pub fn evtchn_op<T: IntoBytes + FromBytes + zerocopy::Immutable>(
    g: &mut Guest,
    cmd: u32,
    arg: T,
) -> (i64, T) {
    g.op(guest_abi::hypercall::EVENT_CHANNEL_OP, cmd as u64, arg)
}

/// `EVTCHNOP_bind_ipi` for `vcpu`, which must succeed: the new port.
pub fn bind_ipi(g: &mut Guest, vcpu: u32) -> u32 {
    use guest_abi::event_channel::{EvtchnBindIpi, EVTCHNOP_BIND_IPI};
    let (r, a) = evtchn_op(g, EVTCHNOP_BIND_IPI, EvtchnBindIpi { vcpu, port: 0 });
    assert_eq!(r, 0);
    a.port
}

/// `EVTCHNOP_alloc_unbound` for `remote_dom`, which must succeed: the new port.
pub fn alloc_unbound(g: &mut Guest, remote_dom: u16) -> u32 {
    use guest_abi::event_channel::{EvtchnAllocUnbound, EVTCHNOP_ALLOC_UNBOUND};
    let a = EvtchnAllocUnbound {
        dom: guest_abi::xen::DOMID_SELF,
        remote_dom,
        port: 0,
    };
    let (r, a) = evtchn_op(g, EVTCHNOP_ALLOC_UNBOUND, a);
    assert_eq!(r, 0);
    a.port
}

/// `EVTCHNOP_send` on `port`: the result.
pub fn send(g: &mut Guest, port: u32) -> i64 {
    use guest_abi::event_channel::{EvtchnSend, EVTCHNOP_SEND};
    evtchn_op(g, EVTCHNOP_SEND, EvtchnSend { port }).0
}
