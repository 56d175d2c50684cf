//! `__HYPERVISOR_memory_op`: placing hypervisor pages in the guest physmap
//! (`add_to_physmap` for shared_info and grant frames), reservation queries and
//! the guest's e820 map. Ballooning (`increase_reservation`,
//! `decrease_reservation`, `populate_physmap`) is not offered (`-ENOSYS`).

use crate::dispatch::{read_arg, write_arg};
use crate::domain::Domain;
use crate::evtchn::check_target;
use crate::{gnttab, Errno, Host, HypercallResult, VcpuContext};
use guest_abi::memory::{self as mem, E820Entry, XenAddToPhysmap, XenMemoryMap};
use p2m::P2mType;
use zerocopy::IntoBytes;

/// `HYPERVISOR_memory_op(cmd, arg)`.
pub fn memory_op(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let cmd = args[0] & mem::MEMOP_CMD_MASK;
    let arg = args[1];
    match cmd as u32 {
        mem::XENMEM_ADD_TO_PHYSMAP => {
            let xatp: XenAddToPhysmap = if ctx.compat {
                read_arg::<mem::CompatAddToPhysmap>(dom, host, ctx, arg)?.into()
            } else {
                read_arg(dom, host, ctx, arg)?
            };
            add_to_physmap(dom, host, &xatp)
        }
        mem::XENMEM_CURRENT_RESERVATION
        | mem::XENMEM_MAXIMUM_RESERVATION
        | mem::XENMEM_MAXIMUM_GPFN => {
            let domid: u16 = read_arg(dom, host, ctx, arg)?;
            check_target(dom, domid)?;
            if cmd as u32 == mem::XENMEM_MAXIMUM_GPFN {
                Ok(dom.p2m.extents().last().map_or(0, |(r, _, _)| r.end - 1))
            } else {
                Ok(dom.ram_pages)
            }
        }
        mem::XENMEM_MEMORY_MAP => {
            let (capacity, buffer) = if ctx.compat {
                let m: mem::CompatMemoryMap = read_arg(dom, host, ctx, arg)?;
                (m.nr_entries, m.buffer as u64)
            } else {
                let m: XenMemoryMap = read_arg(dom, host, ctx, arg)?;
                (m.nr_entries, m.buffer)
            };
            if dom.e820.is_empty() {
                return Err(Errno::ENOSYS);
            }
            let n = (capacity as usize).min(dom.e820.len());
            for (i, &(addr, size, ty)) in dom.e820[..n].iter().enumerate() {
                let e = E820Entry {
                    addr,
                    size,
                    r#type: ty,
                };
                let gva = buffer.wrapping_add((i * core::mem::size_of::<E820Entry>()) as u64);
                write_arg(dom, host, ctx, gva, e.as_bytes())?;
            }
            // `nr_entries` comes first in both layouts.
            write_arg(dom, host, ctx, arg, &(n as u32).to_le_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `XENMEM_add_to_physmap`: maps shared_info (`idx` 0) or grant frame `idx` at
/// `gpfn`, replacing what was there (guest RAM is dropped from the physmap, a
/// hypervisor page is unhooked; device MMIO is `-EPERM`). A page mapped
/// elsewhere before moves; a move that fails leaves it where it was. Other spaces
/// are `-EINVAL`.
pub fn add_to_physmap(
    dom: &mut Domain,
    host: &mut impl Host,
    xatp: &XenAddToPhysmap,
) -> HypercallResult {
    check_target(dom, xatp.domid)?;
    if xatp.gpfn >= p2m::MAX_GFN {
        return Err(Errno::EINVAL);
    }
    let grant_frame = match xatp.space {
        mem::XENMAPSPACE_SHARED_INFO if xatp.idx == 0 => None,
        mem::XENMAPSPACE_GRANT_TABLE => Some(gnttab::frame_index(dom, xatp.idx)?),
        _ => return Err(Errno::EINVAL),
    };
    if dom
        .p2m
        .lookup(xatp.gpfn)
        .is_some_and(|e| e.mapping.p2m_type == P2mType::MmioDirect)
    {
        return Err(Errno::EPERM);
    }
    if let Some(idx) = grant_frame {
        return gnttab::map_frame(dom, host, idx, xatp.gpfn);
    }
    // The new place first: a move the p2m refuses (too many extents, no table memory)
    // leaves the page where it was instead of unmapped.
    let old = dom.shared_info_gfn;
    dom.map_special(host, xatp.gpfn, dom.shared_info_mfn)?;
    if let Some(old) = old.filter(|&old| old != xatp.gpfn) {
        dom.unmap(host, old)?;
    }
    dom.shared_info_gfn = Some(xatp.gpfn);
    Ok(0)
}
