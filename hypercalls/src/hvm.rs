//! Per-vCPU Xen state of an HVM guest and the calls that manage it: pvclock
//! time, vcpu_info registration, runstate, single-shot timers (`vcpu_op`,
//! `set_timer_op`), HVM params (`hvm_op`) and the console ring backend.

use crate::domain::Domain;
use crate::{evtchn, Errno, Host, HypercallResult, VcpuContext};
use guest_abi::hvm;
use guest_abi::vcpu as vc;
use zerocopy::IntoBytes;

/// Guest-physical frame of the console ring (QEMU's `XEN_SPECIAL_AREA`).
pub const CONSOLE_GFN: u64 = 0xFEFF8;
/// Guest-physical frame of the xenstore ring.
pub const STORE_GFN: u64 = 0xFEFF9;

/// The scale from TSC ticks to nanoseconds, as pvclock expresses it:
/// ns = ((tsc - origin) << shift (>> -shift)) * mul >> 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBase {
    /// TSC at the domain's time origin (system time 0).
    pub origin_tsc: u64,
    /// `tsc_to_system_mul`.
    pub mul: u32,
    /// `tsc_shift`.
    pub shift: i8,
}

impl TimeBase {
    /// The scale for a TSC of `tsc_khz` with system time 0 at `origin_tsc`
    /// (Xen's `set_time_scale`).
    pub fn new(origin_tsc: u64, tsc_khz: u64) -> Self {
        let tsc_hz = tsc_khz.max(1) as u128 * 1000;
        let mut mul = (1_000_000_000u128 << 32) / tsc_hz;
        let mut shift: i8 = 0;
        while mul >= 1 << 32 {
            mul >>= 1;
            shift += 1;
        }
        while mul < 1 << 31 && shift > -31 {
            mul <<= 1;
            shift -= 1;
        }
        TimeBase {
            origin_tsc,
            mul: mul as u32,
            shift,
        }
    }

    /// System time (ns) at `tsc`, exactly as the guest computes it.
    pub fn ns(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.origin_tsc) as u128;
        let d = if self.shift >= 0 {
            delta << self.shift
        } else {
            delta >> -self.shift
        };
        ((d * self.mul as u128) >> 32) as u64
    }

    /// The TSC value at which system time reaches `ns` (rounded up).
    pub fn tsc(&self, ns: u64) -> u64 {
        let scaled = ((ns as u128) << 32).div_ceil(self.mul as u128);
        let delta = if self.shift >= 0 {
            scaled.div_ceil(1 << self.shift)
        } else {
            scaled << -self.shift
        };
        self.origin_tsc
            .saturating_add(delta.min(u64::MAX as u128) as u64)
    }

    /// The 32-byte `vcpu_time_info` for this scale.
    pub fn pvclock(&self) -> [u8; 32] {
        let mut t = [0u8; 32];
        t[0..4].copy_from_slice(&2u32.to_le_bytes());
        t[8..16].copy_from_slice(&self.origin_tsc.to_le_bytes());
        // system_time = 0 at tsc_timestamp = origin; flags = 0 (no TSC_STABLE).
        t[24..28].copy_from_slice(&self.mul.to_le_bytes());
        t[28] = self.shift as u8;
        t
    }
}

/// Xen-visible state of one vCPU.
#[derive(Clone, Debug, Default)]
pub struct XenVcpu {
    /// Where the guest registered its vcpu_info (guest-physical), if it did.
    pub vcpu_info_gpa: Option<u64>,
    /// Host-physical address of that vcpu_info (it never crosses a page).
    pub vcpu_info_hpa: Option<u64>,
    /// Guest-physical address of the registered runstate area.
    pub runstate_gpa: Option<u64>,
    /// Single-shot timer deadline (system time, ns).
    pub singleshot_deadline: Option<u64>,
    /// SCHEDOP_block: halted until an event arrives.
    pub blocked: bool,
    /// An event was delivered to this vCPU since the kernel last looked.
    pub needs_upcall: bool,
}

fn read<T: zerocopy::FromBytes + IntoBytes>(
    dom: &Domain,
    host: &impl Host,
    vcpu: &VcpuContext,
    gva: u64,
) -> Result<T, Errno> {
    crate::dispatch::read_arg(dom, host, vcpu, gva)
}

/// `HYPERVISOR_vcpu_op(cmd, vcpuid, arg)`.
pub fn vcpu_op(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, id, arg) = (args[0], args[1], args[2]);
    if id >= dom.vcpus.len() as u64 {
        return Err(Errno::ENOENT);
    }
    let id = id as usize;
    match cmd as u32 {
        _ if cmd > u32::MAX as u64 => Err(Errno::ENOSYS),
        vc::VCPUOP_IS_UP => Ok(1),
        vc::VCPUOP_STOP_PERIODIC_TIMER => Ok(0),
        vc::VCPUOP_SET_SINGLESHOT_TIMER => {
            let t: vc::VcpuSetSingleshotTimer = read(dom, host, vcpu, arg)?;
            const VCPU_SSHOTTMR_FUTURE: u32 = 1;
            if t.flags & VCPU_SSHOTTMR_FUTURE != 0 && t.timeout_abs_ns < dom.time.ns(host.tsc()) {
                return Err(Errno::ETIME);
            }
            dom.vcpus[id].singleshot_deadline = Some(t.timeout_abs_ns);
            Ok(0)
        }
        vc::VCPUOP_STOP_SINGLESHOT_TIMER => {
            dom.vcpus[id].singleshot_deadline = None;
            Ok(0)
        }
        vc::VCPUOP_REGISTER_VCPU_INFO => {
            let r: vc::VcpuRegisterVcpuInfo = read(dom, host, vcpu, arg)?;
            register_vcpu_info(dom, host, id, r)
        }
        vc::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
            let r: vc::VcpuRegisterRunstateMemoryArea = read(dom, host, vcpu, arg)?;
            let gpa = crate::guest_mem::translate_gva(&dom.p2m, host, &vcpu.paging, r.addr, true)?;
            if gpa % 4096 + 48 > 4096 {
                return Err(Errno::EINVAL);
            }
            let info = vc::VcpuRunstateInfo::default(); // RUNSTATE_running since 0
            crate::guest_mem::write_gpa(&dom.p2m, host, gpa, info.as_bytes())?;
            dom.vcpus[id].runstate_gpa = Some(gpa);
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// VCPUOP_register_vcpu_info: move vcpu `id`'s vcpu_info to guest memory.
fn register_vcpu_info(
    dom: &mut Domain,
    host: &mut impl Host,
    id: usize,
    r: vc::VcpuRegisterVcpuInfo,
) -> HypercallResult {
    if r.offset as u64 + 64 > 4096 || r.mfn >= p2m::MAX_GFN {
        return Err(Errno::EINVAL);
    }
    if dom.vcpus[id].vcpu_info_gpa.is_some() {
        return Err(Errno::EINVAL);
    }
    let gpa = r.mfn * 4096 + r.offset as u64;
    let Some(entry) = dom
        .p2m
        .lookup(r.mfn)
        .filter(|e| e.mapping.p2m_type == p2m::P2mType::RamRw && !e.mapping.special)
    else {
        return Err(Errno::EINVAL);
    };
    let hpa = entry.mfn * 4096 + r.offset as u64;
    // Copy the current contents, then flag every selector and the upcall
    // so that the guest rescans (Xen's vcpu_info_populate).
    let mut info = [0u8; 64];
    if let Some(old) = dom.vcpu_info_hpa(id as u32) {
        host.read_phys(old, &mut info);
    }
    info[0] = 1;
    info[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    info[32..64].copy_from_slice(&dom.time.pvclock());
    host.write_phys(hpa, &info);
    dom.vcpus[id].vcpu_info_gpa = Some(gpa);
    dom.vcpus[id].vcpu_info_hpa = Some(hpa);
    dom.vcpus[id].needs_upcall = true;
    Ok(0)
}

/// `HYPERVISOR_set_timer_op(timeout)`: single-shot timer of the calling vCPU; 0 stops it.
pub fn set_timer_op(dom: &mut Domain, vcpu: &VcpuContext, timeout: u64) -> HypercallResult {
    let v = dom
        .vcpus
        .get_mut(vcpu.vcpu_id as usize)
        .ok_or(Errno::EINVAL)?;
    v.singleshot_deadline = (timeout != 0).then_some(timeout);
    Ok(0)
}

/// Params a guest may set itself; the others belong to the toolstack (EPERM).
const GUEST_SETTABLE: [u32; 3] = [
    hvm::HVM_PARAM_CALLBACK_IRQ,
    hvm::HVM_PARAM_TIMER_MODE,
    hvm::HVM_PARAM_PAE_ENABLED,
];

/// `HYPERVISOR_hvm_op(op, arg)`.
pub fn hvm_op(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (op, arg) = (args[0], args[1]);
    match op as u32 {
        _ if op > u32::MAX as u64 => Err(Errno::ENOSYS),
        hvm::HVMOP_SET_PARAM | hvm::HVMOP_GET_PARAM => {
            let mut p: hvm::XenHvmParam = read(dom, host, vcpu, arg)?;
            if p.domid != guest_abi::xen::DOMID_SELF && p.domid != dom.domid {
                return Err(Errno::ESRCH);
            }
            if p.index >= hvm::HVM_NR_PARAMS {
                return Err(Errno::EINVAL);
            }
            if op as u32 == hvm::HVMOP_GET_PARAM {
                p.value = dom.params[p.index as usize];
                crate::dispatch::write_arg(dom, host, vcpu, arg, p.as_bytes())?;
            } else {
                if !GUEST_SETTABLE.contains(&p.index) {
                    return Err(Errno::EPERM);
                }
                dom.params[p.index as usize] = p.value;
            }
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `HYPERVISOR_vm_assist(cmd, type)`: only the runstate update flag exists for HVM.
pub fn vm_assist(args: [u64; 5]) -> HypercallResult {
    const VMASST_CMD_ENABLE: u64 = 0;
    const VMASST_CMD_DISABLE: u64 = 1;
    const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u64 = 5;
    match (args[0], args[1]) {
        (VMASST_CMD_ENABLE | VMASST_CMD_DISABLE, VMASST_TYPE_RUNSTATE_UPDATE_FLAG) => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// Consumes the guest's console ring output (`xencons_interface.out`) into
/// console lines, then signals the console port as xenconsoled does.
pub fn drain_console_ring(dom: &mut Domain, host: &mut impl Host) {
    const OUT: u64 = 1024;
    const OUT_SIZE: u32 = 2048;
    const OUT_CONS: u64 = 3080;
    let page = dom.console_mfn * 4096;
    let mut idx = [0u8; 8];
    host.read_phys(page + OUT_CONS, &mut idx);
    let cons = u32::from_le_bytes([idx[0], idx[1], idx[2], idx[3]]);
    let prod = u32::from_le_bytes([idx[4], idx[5], idx[6], idx[7]]);
    let len = prod.wrapping_sub(cons);
    if len == 0 {
        return;
    }
    if len > OUT_SIZE {
        // A broken ring: drop what is in it rather than read garbage.
        host.write_phys(page + OUT_CONS, &prod.to_le_bytes());
        return;
    }
    let mut data = alloc::vec![0u8; len as usize];
    for (i, byte) in data.iter_mut().enumerate() {
        let off = (cons.wrapping_add(i as u32) % OUT_SIZE) as u64;
        let mut b = [0u8];
        host.read_phys(page + OUT + off, &mut b);
        *byte = b[0];
    }
    host.write_phys(page + OUT_CONS, &prod.to_le_bytes());
    let domid = dom.domid;
    dom.console
        .push(&data, |line| host.console_line(domid, line));
    if let Some(port) = dom.console_port {
        evtchn::set_pending(dom, host, port);
    }
}

/// Fires the single-shot timers due at system time `now_ns`.
pub fn poll_timers(dom: &mut Domain, host: &mut impl Host, now_ns: u64) {
    for id in 0..dom.vcpus.len() {
        if dom.vcpus[id]
            .singleshot_deadline
            .is_some_and(|d| d <= now_ns)
        {
            dom.vcpus[id].singleshot_deadline = None;
            evtchn::fire_timer(dom, host, id as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_scale_round_trips() {
        for khz in [50_000, 1_000_000, 2_999_999, 3_000_000] {
            let t = TimeBase::new(1000, khz);
            let one_s = 1000 + khz * 1000;
            let ns = t.ns(one_s);
            assert!(ns.abs_diff(1_000_000_000) < 10, "{khz} kHz: {ns}");
            let back = t.tsc(ns);
            assert!(t.ns(back) >= ns && back.abs_diff(one_s) <= 2, "{khz}");
            assert_eq!(t.ns(0), 0, "before the origin");
        }
    }
}
