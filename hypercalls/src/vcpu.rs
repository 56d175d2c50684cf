//! Per-vCPU Xen state and `__HYPERVISOR_vcpu_op` / `__HYPERVISOR_set_timer_op`:
//! vcpu_info placement, runstate and time areas, single-shot and periodic timers.
//!
//! Semantics follow Xen 4.17 (the version the guest is told): `set_singleshot_timer`
//! honours `VCPU_SSHOTTMR_future` (`-ETIME`), `register_vcpu_info` refuses an area
//! that would cross its page with `-EINVAL`. Guest-virtual areas (runstate, time)
//! are translated once, at registration, as KVM and QEMU do; an address that does
//! not translate is refused with `-EFAULT` (Xen would accept it and retry later).

use crate::dispatch::{read_arg as read, write_arg};
use crate::domain::Domain;
use crate::guest_mem::{translate_gva, write_gpa, PagingState};
use crate::{Errno, Host, HypercallResult, VcpuContext};
use alloc::vec::Vec;
use guest_abi::vcpu as vc;
use guest_abi::xen::{VcpuInfo, NR_VIRQS, VIRQ_TIMER, XEN_LEGACY_MAX_VCPUS};
use p2m::{P2m, P2mType};
use zerocopy::{FromZeros, IntoBytes};

/// Size of a `vcpu_info`.
const VCPU_INFO_SIZE: u64 = 64;
/// Shortest periodic timer Xen accepts (1 ms).
const MIN_PERIOD_NS: u64 = 1_000_000;
/// Xen's `STIME_DELTA_MAX`.
const STIME_DELTA_MAX: u64 = u64::MAX >> 2;
/// Offset of `state_entry_time` in a `vcpu_runstate_info`.
const RUNSTATE_ENTRY_TIME: usize = 8;

/// A guest-virtual area translated at registration: up to two guest-physical
/// pieces (it may straddle a page boundary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestArea {
    /// The guest-virtual address the guest registered.
    pub gva: u64,
    /// Guest-physical address of the first byte.
    pub gpa: u64,
    /// Bytes in the first page.
    pub first_len: usize,
    /// Guest-physical address of the part in the next page, if any.
    pub rest_gpa: Option<u64>,
}

impl GuestArea {
    /// Translates `len` bytes at `gva` for writing; `-EFAULT` if any page does not.
    pub fn new(
        p2m: &P2m,
        host: &impl Host,
        paging: &PagingState,
        gva: u64,
        len: usize,
    ) -> Result<Self, Errno> {
        let first_len = ((4096 - gva % 4096) as usize).min(len);
        let gpa = translate_gva(p2m, host, paging, gva, true)?;
        let rest_gpa = if first_len < len {
            let next = gva.checked_add(first_len as u64).ok_or(Errno::EFAULT)?;
            Some(translate_gva(p2m, host, paging, next, true)?)
        } else {
            None
        };
        let area = GuestArea {
            gva,
            gpa,
            first_len,
            rest_gpa,
        };
        // The frames must be guest memory the hypervisor may write.
        for gpa in [Some(area.gpa), area.rest_gpa].into_iter().flatten() {
            match p2m.lookup(gpa / 4096) {
                Some(e) if e.mapping.p2m_type == P2mType::RamRw => {}
                _ => return Err(Errno::EFAULT),
            }
        }
        Ok(area)
    }

    /// Writes `data` at offset `off` of the area through the p2m (so a frame the
    /// guest has since unmapped is `-EFAULT`, never a stray write).
    pub fn write_at(
        &self,
        p2m: &P2m,
        host: &mut impl Host,
        off: usize,
        data: &[u8],
    ) -> Result<(), Errno> {
        let end = off + data.len();
        if off < self.first_len {
            let n = end.min(self.first_len) - off;
            write_gpa(p2m, host, self.gpa + off as u64, &data[..n])?;
        }
        if end > self.first_len {
            let rest = self.rest_gpa.ok_or(Errno::EFAULT)?;
            let skip = self.first_len.saturating_sub(off);
            let start = off.max(self.first_len) - self.first_len;
            write_gpa(p2m, host, rest + start as u64, &data[skip..])?;
        }
        Ok(())
    }
}

/// Xen-visible state of one vCPU.
#[derive(Clone, Debug)]
pub struct Vcpu {
    /// The vCPU id.
    pub id: u32,
    /// Where the guest registered its vcpu_info (guest-physical), if it did.
    pub vcpu_info_gpa: Option<u64>,
    /// Host-physical address of that vcpu_info (it never crosses a page).
    pub vcpu_info_hpa: Option<u64>,
    /// The runstate the hypervisor keeps (`time[]` counts up to `state_entry_time`).
    pub runstate: vc::VcpuRunstateInfo,
    /// The registered runstate area (`VCPUOP_register_runstate_memory_area`).
    pub runstate_area: Option<GuestArea>,
    /// The registered secondary time area (`VCPUOP_register_vcpu_time_memory_area`).
    pub time_area: Option<GuestArea>,
    /// Single-shot timer deadline (system time, ns).
    pub singleshot_deadline: Option<u64>,
    /// Periodic timer period (ns), if running.
    pub periodic_period: Option<u64>,
    /// Next periodic tick (system time, ns), when `periodic_period` is set.
    pub periodic_next: u64,
    /// `SCHEDOP_block`: halted until an event is pending. The kernel clears it
    /// ([`Domain::wake`]).
    pub blocked: bool,
    /// `SCHEDOP_poll`: halted until one of [`Vcpu::poll_ports`] is pending, an
    /// upcall is pending, or [`Vcpu::poll_timeout`] passes (independent of
    /// `blocked`). The kernel clears it ([`Domain::wake`]).
    pub polling: bool,
    /// The ports of the current poll.
    pub poll_ports: Vec<u32>,
    /// The poll's timeout (system time, ns), if any.
    pub poll_timeout: Option<u64>,
    /// Set when an event was newly delivered to this vCPU (its upcall flag went
    /// from 0 to 1); the kernel clears it.
    pub needs_upcall: bool,
    /// Port bound to each VIRQ on this vCPU (0 = none); global VIRQs live on vCPU 0.
    pub virq_ports: [u32; NR_VIRQS as usize],
    /// Set by a hypercall that did part of its work (Xen's hypercall
    /// continuation): the arguments to run it again with. The kernel loads
    /// them into the argument registers, leaves RIP on the VMCALL and lets
    /// other vCPUs run first.
    pub continuation: Option<[u64; 5]>,
    /// `SCHEDOP_yield`: the vCPU gives up the rest of its slice; the kernel clears it.
    pub yielded: bool,
}

impl Vcpu {
    /// A vCPU as created: vCPU 0 running, the others offline, no areas or timers.
    pub fn new(id: u32) -> Self {
        Vcpu {
            id,
            vcpu_info_gpa: None,
            vcpu_info_hpa: None,
            runstate: vc::VcpuRunstateInfo {
                state: if id == 0 {
                    vc::RUNSTATE_RUNNING
                } else {
                    vc::RUNSTATE_OFFLINE
                },
                ..Default::default()
            },
            runstate_area: None,
            time_area: None,
            singleshot_deadline: None,
            periodic_period: None,
            periodic_next: 0,
            blocked: false,
            polling: false,
            continuation: None,
            yielded: false,
            poll_ports: Vec::new(),
            poll_timeout: None,
            needs_upcall: false,
            virq_ports: [0; NR_VIRQS as usize],
        }
    }

    /// The runstate as of `now` (`time[state]` includes the current stretch).
    pub fn runstate_at(&self, now: u64) -> vc::VcpuRunstateInfo {
        let mut r = self.runstate;
        if let Some(t) = r.time.get_mut(r.state as usize) {
            *t += now.saturating_sub(r.state_entry_time);
        }
        r
    }

    /// The earliest of this vCPU's timers (single-shot, periodic, poll timeout).
    pub fn next_deadline(&self) -> Option<u64> {
        let periodic = self.periodic_period.map(|_| self.periodic_next);
        [self.singleshot_deadline, periodic, self.poll_timeout]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Domain {
    /// Host-physical address of vCPU `vcpu`'s current vcpu_info: the registered one,
    /// else its slot in shared_info.
    pub fn vcpu_info_hpa(&self, vcpu: u32) -> Option<u64> {
        let v = self.vcpus.get(vcpu as usize)?;
        match v.vcpu_info_hpa {
            Some(hpa) => Some(hpa),
            None if (vcpu as usize) < XEN_LEGACY_MAX_VCPUS => {
                Some(self.shared_info_mfn * 4096 + vcpu as u64 * VCPU_INFO_SIZE)
            }
            None => None,
        }
    }

    /// Whether `evtchn_upcall_pending` is set in vCPU `vcpu`'s current vcpu_info
    /// (the kernel injects the callback vector before VM entry while it is).
    pub fn upcall_pending(&self, host: &impl Host, vcpu: u32) -> bool {
        let Some(hpa) = self.vcpu_info_hpa(vcpu) else {
            return false;
        };
        let mut b = [0u8];
        host.read_phys(hpa, &mut b);
        b[0] != 0
    }

    /// Sets `evtchn_upcall_pending` of `vcpu` (Xen's `vcpu_mark_events_pending`);
    /// records [`Vcpu::needs_upcall`] if it was clear.
    pub(crate) fn mark_events_pending(&mut self, host: &mut impl Host, vcpu: u32) {
        let Some(hpa) = self.vcpu_info_hpa(vcpu) else {
            return;
        };
        let mut b = [0u8];
        host.read_phys(hpa, &mut b);
        if b[0] == 0 {
            host.write_phys(hpa, &[1]);
            self.vcpus[vcpu as usize].needs_upcall = true;
        }
    }

    /// Records that vCPU `vcpu` entered runstate `state` (`RUNSTATE_*`) now, and
    /// writes the registered runstate area (with `XEN_RUNSTATE_UPDATE` set while
    /// writing if the guest enabled `VMASST_TYPE_runstate_update_flag`).
    pub fn update_runstate(&mut self, host: &mut impl Host, vcpu: u32, state: i32) {
        if !(vc::RUNSTATE_RUNNING..=vc::RUNSTATE_OFFLINE).contains(&state) {
            return;
        }
        let now = self.system_time_ns(host);
        let Some(v) = self.vcpus.get_mut(vcpu as usize) else {
            return;
        };
        let mut r = v.runstate_at(now);
        r.state = state;
        r.state_entry_time = now.max(v.runstate.state_entry_time);
        v.runstate = r;
        self.write_runstate_area(host, vcpu);
    }

    /// Copies vCPU `vcpu`'s runstate into its registered area, if any.
    pub(crate) fn write_runstate_area(&mut self, host: &mut impl Host, vcpu: u32) {
        let v = &self.vcpus[vcpu as usize];
        let Some(area) = v.runstate_area else {
            return;
        };
        let mut r = v.runstate;
        if self.vm_assist_enabled(guest_abi::xen::VMASST_TYPE_RUNSTATE_UPDATE_FLAG) {
            let flagged = r.state_entry_time | vc::XEN_RUNSTATE_UPDATE;
            let _ = area.write_at(&self.p2m, host, RUNSTATE_ENTRY_TIME, &flagged.to_le_bytes());
            r.state_entry_time = flagged;
            let _ = area.write_at(&self.p2m, host, 0, r.as_bytes());
            r.state_entry_time &= !vc::XEN_RUNSTATE_UPDATE;
            let _ = area.write_at(
                &self.p2m,
                host,
                RUNSTATE_ENTRY_TIME,
                &r.state_entry_time.to_le_bytes(),
            );
        } else {
            let _ = area.write_at(&self.p2m, host, 0, r.as_bytes());
        }
    }

    /// Sets the single-shot timer of `vcpu` to `deadline` (system time, ns); one
    /// that has already passed fires at once. Like Xen's `s_time_t`, a deadline
    /// with bit 63 set is negative, so in the past.
    pub(crate) fn set_singleshot(&mut self, host: &mut impl Host, vcpu: u32, deadline: u64) {
        if deadline as i64 <= self.system_time_ns(host) as i64 {
            self.vcpus[vcpu as usize].singleshot_deadline = None;
            self.send_virq(host, vcpu, VIRQ_TIMER);
        } else {
            self.vcpus[vcpu as usize].singleshot_deadline = Some(deadline);
        }
    }

    /// Fires the timers due at system time `now_ns`: each passed single-shot
    /// deadline (cleared) and periodic tick sends `VIRQ_TIMER` to its vCPU; a
    /// passed poll timeout only ends the poll's wait (see [`Domain::should_wake`]).
    /// Returns whether any `VIRQ_TIMER` was sent to a bound port.
    pub fn poll_timers(&mut self, host: &mut impl Host, now_ns: u64) -> bool {
        let mut fired = false;
        for id in 0..self.vcpus.len() as u32 {
            let v = &mut self.vcpus[id as usize];
            let mut due = false;
            if v.singleshot_deadline.is_some_and(|d| d <= now_ns) {
                v.singleshot_deadline = None;
                due = true;
            }
            if let Some(period) = v.periodic_period {
                if v.periodic_next <= now_ns {
                    v.periodic_next = now_ns.saturating_add(period);
                    due = true;
                }
            }
            if due {
                fired |= self.send_virq(host, id, VIRQ_TIMER);
            }
        }
        fired
    }

    /// The earliest timer of vCPU `vcpu` (system time, ns), for the kernel's own timer.
    pub fn next_deadline(&self, vcpu: u32) -> Option<u64> {
        self.vcpus.get(vcpu as usize)?.next_deadline()
    }

    /// Whether a blocked or polling vCPU should run again at system time `now_ns`:
    /// it is not halted, an upcall is pending, or (polling) one of its ports is
    /// pending or its timeout has passed.
    pub fn should_wake(&self, host: &impl Host, vcpu: u32, now_ns: u64) -> bool {
        let Some(v) = self.vcpus.get(vcpu as usize) else {
            return false;
        };
        if !v.blocked && !v.polling {
            return true;
        }
        if self.upcall_pending(host, vcpu) {
            return true;
        }
        v.polling
            && (v.poll_timeout.is_some_and(|t| t <= now_ns)
                || v.poll_ports.iter().any(|&p| self.port_is_pending(host, p)))
    }

    /// Ends a block or poll: clears [`Vcpu::blocked`], [`Vcpu::polling`] and the poll state.
    pub fn wake(&mut self, vcpu: u32) {
        if let Some(v) = self.vcpus.get_mut(vcpu as usize) {
            v.blocked = false;
            v.polling = false;
            v.poll_ports.clear();
            v.poll_timeout = None;
        }
    }
}

/// `HYPERVISOR_vcpu_op(cmd, vcpuid, arg)`.
pub fn vcpu_op(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, id, arg) = (args[0], args[1], args[2]);
    // Both are C `int`/`unsigned int`; ids beyond the domain's vCPUs are ENOENT.
    let cmd = crate::dispatch::subop(cmd)?;
    if id >= dom.vcpus.len() as u64 {
        return Err(Errno::ENOENT);
    }
    let id = id as u32;
    let is_current = id == ctx.vcpu_id;
    match cmd {
        vc::VCPUOP_IS_UP => {
            Ok((dom.vcpus[id as usize].runstate.state != vc::RUNSTATE_OFFLINE) as u64)
        }
        // `vcpu_runstate_info` is laid out differently for a 32-bit guest (no padding before
        // its `uint64_t`s), which is not translated here.
        vc::VCPUOP_GET_RUNSTATE_INFO | vc::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA if ctx.compat => {
            Err(Errno::ENOSYS)
        }
        vc::VCPUOP_GET_RUNSTATE_INFO => {
            let now = dom.system_time_ns(host);
            let r = dom.vcpus[id as usize].runstate_at(now);
            write_arg(dom, host, ctx, arg, r.as_bytes())?;
            Ok(0)
        }
        vc::VCPUOP_SET_PERIODIC_TIMER => {
            let t: vc::VcpuSetPeriodicTimer = read(dom, host, ctx, arg)?;
            if !(MIN_PERIOD_NS..=STIME_DELTA_MAX).contains(&t.period_ns) {
                return Err(Errno::EINVAL);
            }
            let now = dom.system_time_ns(host);
            let v = &mut dom.vcpus[id as usize];
            v.periodic_period = Some(t.period_ns);
            v.periodic_next = now.saturating_add(t.period_ns);
            Ok(0)
        }
        vc::VCPUOP_STOP_PERIODIC_TIMER => {
            dom.vcpus[id as usize].periodic_period = None;
            Ok(0)
        }
        vc::VCPUOP_SET_SINGLESHOT_TIMER => {
            if !is_current {
                return Err(Errno::EINVAL);
            }
            let t: vc::VcpuSetSingleshotTimer = if ctx.compat {
                read::<vc::CompatVcpuSetSingleshotTimer>(dom, host, ctx, arg)?.into()
            } else {
                read(dom, host, ctx, arg)?
            };
            if t.flags & vc::VCPU_SSHOTTMR_FUTURE != 0
                && t.timeout_abs_ns < dom.system_time_ns(host)
            {
                return Err(Errno::ETIME);
            }
            dom.set_singleshot(host, id, t.timeout_abs_ns);
            Ok(0)
        }
        vc::VCPUOP_STOP_SINGLESHOT_TIMER => {
            if !is_current {
                return Err(Errno::EINVAL);
            }
            dom.vcpus[id as usize].singleshot_deadline = None;
            Ok(0)
        }
        vc::VCPUOP_REGISTER_VCPU_INFO => {
            let r: vc::VcpuRegisterVcpuInfo = read(dom, host, ctx, arg)?;
            register_vcpu_info(dom, host, id, &r)
        }
        vc::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
            let r: vc::VcpuRegisterRunstateMemoryArea = read(dom, host, ctx, arg)?;
            let len = core::mem::size_of::<vc::VcpuRunstateInfo>();
            let area = GuestArea::new(&dom.p2m, host, &ctx.paging, r.addr, len)?;
            let now = dom.system_time_ns(host);
            if is_current && dom.vcpus[id as usize].runstate.state != vc::RUNSTATE_RUNNING {
                // The caller is evidently running.
                dom.update_runstate(host, id, vc::RUNSTATE_RUNNING);
            }
            let v = &mut dom.vcpus[id as usize];
            v.runstate_area = Some(area);
            // What Xen writes at registration: the runstate up to now.
            let r = v.runstate_at(now);
            let _ = area.write_at(&dom.p2m, host, 0, r.as_bytes());
            Ok(0)
        }
        vc::VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => {
            let r: vc::VcpuRegisterTimeMemoryArea = read(dom, host, ctx, arg)?;
            let pv = dom.time.pvclock();
            let area = GuestArea::new(&dom.p2m, host, &ctx.paging, r.addr, pv.as_bytes().len())?;
            area.write_at(&dom.p2m, host, 0, pv.as_bytes())?;
            dom.vcpus[id as usize].time_area = Some(area);
            Ok(0)
        }
        // Only for a hardware domain's pinned vCPUs.
        vc::VCPUOP_GET_PHYSID => Err(Errno::EINVAL),
        // initialise/up/down (PV bring-up), send_nmi, the *_phys_area variants.
        _ => Err(Errno::ENOSYS),
    }
}

/// `VCPUOP_register_vcpu_info`: move vCPU `id`'s vcpu_info to guest frame
/// `r.mfn` (a GFN) at `r.offset` (Xen 4.17's `map_vcpu_info`).
fn register_vcpu_info(
    dom: &mut Domain,
    host: &mut impl Host,
    id: u32,
    r: &vc::VcpuRegisterVcpuInfo,
) -> HypercallResult {
    // The area must lie within the frame, and be registered only once.
    if r.offset as u64 > 4096 - VCPU_INFO_SIZE || dom.vcpus[id as usize].vcpu_info_hpa.is_some() {
        return Err(Errno::EINVAL);
    }
    // Only the domain's own writable RAM (not a special page, not MMIO).
    let entry = dom
        .p2m
        .lookup(r.mfn)
        .filter(|e| e.mapping.p2m_type == P2mType::RamRw && !e.mapping.special)
        .ok_or(Errno::EINVAL)?;
    let hpa = entry.mfn * 4096 + r.offset as u64;
    // Copy the current contents (the shared_info slot), then make the guest
    // rescan everything: all selector bits and the upcall flag (Xen marks
    // everything pending "just to make sure nothing gets lost"), and the time.
    let mut info = VcpuInfo::new_zeroed();
    if let Some(old) = dom.vcpu_info_hpa(id) {
        host.read_phys(old, info.as_mut_bytes());
    }
    info.evtchn_pending_sel = u64::MAX;
    info.time = dom.time.pvclock();
    info.evtchn_upcall_pending = 0;
    host.write_phys(hpa, info.as_bytes());
    let v = &mut dom.vcpus[id as usize];
    v.vcpu_info_gpa = Some(r.mfn * 4096 + r.offset as u64);
    v.vcpu_info_hpa = Some(hpa);
    dom.mark_events_pending(host, id);
    Ok(0)
}

/// `HYPERVISOR_set_timer_op(timeout)`: the calling vCPU's single-shot timer at
/// absolute system time `timeout` (ns); 0 stops it. As in Xen, a deadline more
/// than 2^50 ns (about 13 days) ahead is taken as a wrapped value and becomes 100 ms.
pub fn set_timer_op(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    timeout: u64,
) -> HypercallResult {
    let id = ctx.vcpu_id;
    if id as usize >= dom.vcpus.len() {
        return Err(Errno::EINVAL);
    }
    if timeout == 0 {
        dom.vcpus[id as usize].singleshot_deadline = None;
        return Ok(0);
    }
    let now = dom.system_time_ns(host);
    let offset = (timeout as i64).wrapping_sub(now as i64);
    let deadline = if offset > 0 && (offset >> 50) != 0 {
        now + 100_000_000
    } else {
        timeout
    };
    dom.set_singleshot(host, id, deadline);
    Ok(0)
}
