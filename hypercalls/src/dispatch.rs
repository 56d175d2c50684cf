//! Hypercall dispatch and the handlers (Xen x86-64 ABI: RAX = number,
//! arguments in RDI, RSI, RDX, R10, R8; RAX = result or -errno).

use crate::domain::Domain;
use crate::guest_mem::{copy_from_guest, copy_to_guest};
use crate::{cpuid, evtchn, gnttab, hvm, memory, sched, vcpu};
use crate::{Errno, Host, HypercallResult, VcpuContext};
use guest_abi::features::{self as feat, bit};
use guest_abi::version::XenFeatureInfo;
use guest_abi::{hypercall, version, xen};
use zerocopy::{FromBytes, IntoBytes};

/// `XENFEAT_*` bits this hypervisor offers an HVM guest (submap 0): what Xen
/// gives an HVM domU without PIRQs, less what is not implemented here
/// (`memory_op_vnode_supported`, `dm_msix_all_writes`, the `*_phys_area` ops).
pub const FEATURES: u32 = bit(feat::XENFEAT_WRITABLE_PAGE_TABLES)
    | bit(feat::XENFEAT_AUTO_TRANSLATED_PHYSMAP)
    | bit(feat::XENFEAT_HVM_CALLBACK_VECTOR)
    | bit(feat::XENFEAT_HVM_SAFE_PVCLOCK)
    | bit(feat::XENFEAT_NOT_DIRECT_MAPPED);

/// The extraversion string reported by `XENVER_extraversion`.
pub const EXTRAVERSION: &str = ".0";

/// `XENVER_capabilities` for an HVM host.
pub const CAPABILITIES: &str = "hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p";

/// Start of the hypervisor's virtual-address hole on x86-64 (`XENVER_platform_parameters`).
const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// What Xen gives a guest XSM denies a piece of information (`xen_deny()`), with its NUL.
const XEN_DENY: &[u8] = b"<denied>\0";
const CONSOLEIO_WRITE: u64 = 0;
const CONSOLEIO_READ: u64 = 1;
/// Bytes one `CONSOLEIO_write` call copies before it continues itself: a
/// guest asking for gigabytes holds the CPU no longer than for 2 KiB.
pub const CONSOLEIO_WRITE_PER_CALL: u64 = 2048;
/// Slot of `__HYPERVISOR_iret` in the hypercall page (a `ud2` for HVM).
const IRET_SLOT: usize = hypercall::IRET as usize;

/// Xen's hypercall page for an HVM guest on Intel (`vmx_init_hypercall_page`):
/// 128 stubs of 32 bytes, stub `n` = `mov $n, %eax; vmcall; ret`
/// (`b8 <n:le32> 0f 01 c1 c3`), except `__HYPERVISOR_iret` (23), which is
/// `ud2`. The rest of each stub is `int3` padding. The kernel writes this page at
/// the GPA a guest writes to the hypercall MSR.
pub fn hypercall_page() -> [u8; 4096] {
    let mut page = [0xCCu8; 4096];
    for (nr, stub) in page.chunks_exact_mut(32).enumerate() {
        if nr == IRET_SLOT {
            stub[..2].copy_from_slice(&[0x0F, 0x0B]);
            continue;
        }
        stub[0] = 0xB8;
        stub[1..5].copy_from_slice(&(nr as u32).to_le_bytes());
        stub[5..9].copy_from_slice(&[0x0F, 0x01, 0xC1, 0xC3]);
    }
    page
}

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
            hypercall::MEMORY_OP => memory::memory_op(dom, host, vcpu, args),
            hypercall::SCHED_OP => sched::sched_op(dom, host, vcpu, args),
            hypercall::EVENT_CHANNEL_OP => evtchn::event_channel_op(dom, host, vcpu, args),
            hypercall::VCPU_OP => vcpu::vcpu_op(dom, host, vcpu, args),
            hypercall::HVM_OP => hvm::hvm_op(dom, host, vcpu, args),
            hypercall::GRANT_TABLE_OP => gnttab::grant_table_op(dom, host, vcpu, args),
            hypercall::SET_TIMER_OP => vcpu::set_timer_op(dom, host, vcpu, args[0]),
            hypercall::VM_ASSIST => vm_assist(dom, args),
            // Only for the control domain.
            hypercall::PLATFORM_OP => Err(Errno::EPERM),
            // PIRQs are not offered (no XENFEAT_hvm_pirqs).
            hypercall::PHYSDEV_OP => Err(Errno::ENOSYS),
            _ => Err(Errno::ENOSYS),
        }
    };
    match result {
        Ok(v) => v,
        Err(e) => e.to_return(),
    }
}

/// Copies a hypercall argument structure in from guest-virtual `gva`.
/// A sub-op number: Xen takes the command as an `unsigned int`, so larger
/// values name no sub-op (`-ENOSYS`).
pub(crate) fn subop(cmd: u64) -> Result<u32, Errno> {
    u32::try_from(cmd).map_err(|_| Errno::ENOSYS)
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

/// Copies a (result) structure out to guest-virtual `gva`.
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
        // A 32-bit caller gets `compat_platform_parameters_t` (a 32-bit virt_start, 0 for an
        // HVM vCPU, as Xen's HYPERVISOR_COMPAT_VIRT_START of a domain that is not 32-bit PV).
        version::XENVER_PLATFORM_PARAMETERS if vcpu.compat => {
            write_arg(dom, host, vcpu, arg, &0u32.to_le_bytes())?;
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
        // XSM denies a domU Xen's command line: Xen copies its `xen_deny()` string instead
        // (with its NUL, not the whole 1024 bytes) and succeeds; the build id is -EPERM.
        version::XENVER_COMMANDLINE => {
            write_arg(dom, host, vcpu, arg, XEN_DENY)?;
            Ok(0)
        }
        version::XENVER_BUILD_ID => Err(Errno::EPERM),
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
            let this_call = count.min(CONSOLEIO_WRITE_PER_CALL);
            while done < this_call {
                let n = (this_call - done).min(chunk.len() as u64) as usize;
                copy_from_guest(
                    &dom.p2m,
                    host,
                    &vcpu.paging,
                    buf.wrapping_add(done),
                    &mut chunk[..n],
                )?;
                dom.console_write(host, &chunk[..n]);
                done += n as u64;
            }
            if count > done {
                // The rest in a continuation, as Xen's guest_console_write
                // makes one when it must give the CPU up.
                if let Some(v) = dom.vcpus.get_mut(vcpu.vcpu_id as usize) {
                    v.continuation =
                        Some([cmd, count - done, buf.wrapping_add(done), args[3], args[4]]);
                }
            }
            Ok(0)
        }
        // No console input for domUs.
        CONSOLEIO_READ => Ok(0),
        _ => Err(Errno::ENOSYS),
    }
}

/// `HYPERVISOR_vm_assist(cmd, type)`: an HVM guest has only
/// `VMASST_TYPE_runstate_update_flag` (other types `-EINVAL`, other commands
/// `-ENOSYS`).
fn vm_assist(dom: &mut Domain, args: [u64; 5]) -> HypercallResult {
    let (cmd, ty) = (args[0] as u32, args[1] as u32);
    if ty != xen::VMASST_TYPE_RUNSTATE_UPDATE_FLAG {
        return Err(Errno::EINVAL);
    }
    match cmd {
        xen::VMASST_CMD_ENABLE => dom.vm_assist |= 1 << ty,
        xen::VMASST_CMD_DISABLE => dom.vm_assist &= !(1 << ty),
        _ => return Err(Errno::ENOSYS),
    }
    Ok(0)
}
