//! Hypercall dispatch and the handlers (Xen x86-64 ABI: RAX = number,
//! arguments in RDI, RSI, RDX, R10, R8; RAX = result or -errno).

use crate::domain::{Domain, ShutdownReason};
use crate::guest_mem::{copy_from_guest, copy_to_guest};
use crate::{cpuid, Errno, Host, HypercallResult, VcpuContext};
use guest_abi::memory::XenAddToPhysmap;
use guest_abi::version::XenFeatureInfo;
use guest_abi::{hypercall, memory, version, xen};
use zerocopy::{FromBytes, IntoBytes};

/// `XENFEAT_*` bits this hypervisor offers an HVM guest (submap 0).
pub const FEATURES: u32 = (1 << guest_abi::features::XENFEAT_AUTO_TRANSLATED_PHYSMAP)
    | (1 << guest_abi::features::XENFEAT_HVM_CALLBACK_VECTOR)
    | (1 << guest_abi::features::XENFEAT_HVM_SAFE_PVCLOCK);

/// The extraversion string reported by `XENVER_extraversion`.
pub const EXTRAVERSION: &str = ".0";

/// `XENVER_capabilities` for an HVM host.
pub const CAPABILITIES: &str = "hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p";

/// Start of the hypervisor's virtual-address hole on x86-64 (`XENVER_platform_parameters`).
const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
const CONSOLEIO_WRITE: u64 = 0;
const CONSOLEIO_READ: u64 = 1;
const SCHEDOP_YIELD: u64 = 0;
const SCHEDOP_BLOCK: u64 = 1;
const SCHEDOP_SHUTDOWN: u64 = 2;
/// SCHEDOP_poll: answered at once (a spurious wake-up, which the ABI allows).
const SCHEDOP_POLL: u64 = 3;

/// Runs hypercall `nr` with `args` for a vCPU of `dom`; returns RAX.
pub fn dispatch(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    nr: u64,
    args: [u64; 5],
) -> u64 {
    let result = if vcpu.cpl != 0 {
        Err(Errno::EPERM)
    } else {
        match nr {
            hypercall::XEN_VERSION => xen_version(dom, host, vcpu, args),
            hypercall::CONSOLE_IO => console_io(dom, host, vcpu, args),
            hypercall::MEMORY_OP => memory_op(dom, host, vcpu, args),
            hypercall::SCHED_OP => sched_op(dom, host, vcpu, args),
            hypercall::EVENT_CHANNEL_OP => crate::evtchn::event_channel_op(dom, host, vcpu, args),
            hypercall::VCPU_OP => crate::hvm::vcpu_op(dom, host, vcpu, args),
            hypercall::HVM_OP => crate::hvm::hvm_op(dom, host, vcpu, args),
            hypercall::SET_TIMER_OP => crate::hvm::set_timer_op(dom, vcpu, args[0]),
            hypercall::VM_ASSIST => crate::hvm::vm_assist(args),
            hypercall::GRANT_TABLE_OP => crate::gnttab::grant_table_op(dom, host, vcpu, args),
            hypercall::PLATFORM_OP => Err(Errno::EPERM),
            _ => Err(Errno::ENOSYS),
        }
    };
    match result {
        Ok(v) => v,
        Err(e) => e.to_return(),
    }
}

pub(crate) fn read_arg<T: FromBytes + IntoBytes>(
    dom: &Domain,
    host: &impl Host,
    vcpu: &VcpuContext,
    gva: u64,
) -> Result<T, Errno> {
    let mut v = T::new_zeroed();
    copy_from_guest(&dom.p2m, host, &vcpu.paging, gva, v.as_mut_bytes())?;
    Ok(v)
}

pub(crate) fn write_arg(
    dom: &Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    gva: u64,
    bytes: &[u8],
) -> Result<(), Errno> {
    copy_to_guest(&dom.p2m, host, &vcpu.paging, gva, bytes)
}

/// Copies a NUL-padded string into a fixed-size guest buffer of `len` bytes.
fn write_fixed_str(
    dom: &Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    gva: u64,
    s: &str,
    len: usize,
) -> HypercallResult {
    let mut buf = alloc::vec![0u8; len];
    let n = s.len().min(len - 1);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    write_arg(dom, host, vcpu, gva, &buf)?;
    Ok(0)
}

fn xen_version(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, arg) = (args[0], args[1]);
    match cmd as u32 {
        _ if cmd > u32::MAX as u64 => Err(Errno::ENOSYS),
        version::XENVER_VERSION => Ok(((cpuid::XEN_VERSION.0 << 16) | cpuid::XEN_VERSION.1) as u64),
        version::XENVER_EXTRAVERSION => write_fixed_str(dom, host, vcpu, arg, EXTRAVERSION, 16),
        version::XENVER_CAPABILITIES => write_fixed_str(dom, host, vcpu, arg, CAPABILITIES, 1024),
        version::XENVER_CHANGESET => write_fixed_str(dom, host, vcpu, arg, "xenolith", 64),
        version::XENVER_COMPILE_INFO => {
            // compiler[64], compile_by[16], compile_domain[32], compile_date[32]
            let mut info = [0u8; 144];
            info[..5].copy_from_slice(b"rustc");
            info[64..72].copy_from_slice(b"xenolith");
            write_arg(dom, host, vcpu, arg, &info)?;
            Ok(0)
        }
        version::XENVER_PLATFORM_PARAMETERS => {
            write_arg(dom, host, vcpu, arg, &HYPERVISOR_VIRT_START.to_le_bytes())?;
            Ok(0)
        }
        version::XENVER_GET_FEATURES => {
            let mut fi: XenFeatureInfo = read_arg(dom, host, vcpu, arg)?;
            fi.submap = match fi.submap_idx {
                0 => FEATURES,
                _ => return Err(Errno::EINVAL),
            };
            write_arg(dom, host, vcpu, arg, fi.as_bytes())?;
            Ok(0)
        }
        version::XENVER_PAGESIZE => Ok(4096),
        version::XENVER_GUEST_HANDLE => {
            let mut handle = [0u8; 16];
            handle[..2].copy_from_slice(&dom.domid.to_le_bytes());
            write_arg(dom, host, vcpu, arg, &handle)?;
            Ok(0)
        }
        version::XENVER_COMMANDLINE | version::XENVER_BUILD_ID => Err(Errno::EPERM),
        _ => Err(Errno::ENOSYS),
    }
}

fn console_io(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, count, buf) = (args[0], args[1] as u32 as u64, args[2]);
    match cmd {
        CONSOLEIO_WRITE => {
            let mut chunk = [0u8; 128];
            let mut done = 0;
            while done < count {
                let n = (count - done).min(chunk.len() as u64) as usize;
                copy_from_guest(
                    &dom.p2m,
                    host,
                    &vcpu.paging,
                    buf.wrapping_add(done),
                    &mut chunk[..n],
                )?;
                let domid = dom.domid;
                dom.console
                    .push(&chunk[..n], |line| host.console_line(domid, line));
                done += n as u64;
            }
            Ok(0)
        }
        // No console input for domUs.
        CONSOLEIO_READ => Ok(0),
        _ => Err(Errno::ENOSYS),
    }
}

fn memory_op(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let cmd = args[0] & memory::MEMOP_CMD_MASK;
    match cmd as u32 {
        memory::XENMEM_ADD_TO_PHYSMAP => {
            let xatp: XenAddToPhysmap = read_arg(dom, host, vcpu, args[1])?;
            add_to_physmap(dom, host, &xatp)
        }
        memory::XENMEM_CURRENT_RESERVATION | memory::XENMEM_MAXIMUM_RESERVATION => {
            let domid: u16 = read_arg(dom, host, vcpu, args[1])?;
            check_self(dom, domid)?;
            Ok(dom.ram_pages)
        }
        _ => Err(Errno::ENOSYS),
    }
}

fn check_self(dom: &Domain, domid: u16) -> Result<(), Errno> {
    if domid == xen::DOMID_SELF || domid == dom.domid {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// `XENMEM_add_to_physmap`: map a hypervisor page into the guest's physmap.
pub fn add_to_physmap(
    dom: &mut Domain,
    host: &mut impl Host,
    xatp: &XenAddToPhysmap,
) -> HypercallResult {
    check_self(dom, xatp.domid)?;
    if xatp.gpfn >= p2m::MAX_GFN {
        return Err(Errno::EINVAL);
    }
    match xatp.space {
        memory::XENMAPSPACE_SHARED_INFO => {
            if xatp.idx != 0 {
                return Err(Errno::EINVAL);
            }
            if let Some(old) = dom.shared_info_gfn.take() {
                if old != xatp.gpfn {
                    dom.unmap(host, old)?;
                }
            }
            dom.map_special(host, xatp.gpfn, dom.shared_info_mfn)?;
            dom.shared_info_gfn = Some(xatp.gpfn);
            Ok(0)
        }
        memory::XENMAPSPACE_GRANT_TABLE => crate::gnttab::map_frame(dom, host, xatp.idx, xatp.gpfn),
        _ => Err(Errno::EINVAL),
    }
}

fn sched_op(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    match args[0] {
        SCHEDOP_YIELD | SCHEDOP_POLL => Ok(0),
        SCHEDOP_BLOCK => {
            if let Some(v) = dom.vcpus.get_mut(vcpu.vcpu_id as usize) {
                v.blocked = true;
            }
            Ok(0)
        }
        SCHEDOP_SHUTDOWN => {
            let reason: u32 = read_arg(dom, host, vcpu, args[1])?;
            dom.shutdown = Some(ShutdownReason::from_code(reason));
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
