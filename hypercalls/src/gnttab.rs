//! Grant tables, version 1 (`grant_table.h`): the frames the guest writes its
//! grant entries into are hypervisor pages, mapped special wherever the guest
//! asks (`XENMEM_add_to_physmap`, space `grant_table`; Linux puts them in the
//! Xen platform device's BAR1, which its MTRRs call UC).

use crate::domain::Domain;
use crate::{Errno, Host, HypercallResult, VcpuContext};
use guest_abi::grant_table as gt;
use guest_abi::xen::DOMID_SELF;
use p2m::Gfn;
use zerocopy::IntoBytes;

/// Maximum grant frames per domain (Xen's and QEMU's default).
pub const MAX_GRANT_FRAMES: u32 = 64;
/// `GNTST_okay`.
const GNTST_OKAY: i16 = 0;
/// `GNTST_bad_domain`.
const GNTST_BAD_DOMAIN: i16 = -2;

/// `HYPERVISOR_grant_table_op(cmd, arg, count)`.
pub fn grant_table_op(
    dom: &mut Domain,
    host: &mut impl Host,
    vcpu: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, arg, count) = (args[0], args[1], args[2]);
    match cmd as u32 {
        _ if cmd > u32::MAX as u64 => Err(Errno::ENOSYS),
        gt::GNTTABOP_QUERY_SIZE => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut q: gt::GnttabQuerySize = crate::dispatch::read_arg(dom, host, vcpu, arg)?;
            if q.dom == DOMID_SELF || q.dom == dom.domid {
                q.nr_frames = dom.grant_frames.len() as u32;
                q.max_nr_frames = MAX_GRANT_FRAMES;
                q.status = GNTST_OKAY;
            } else {
                q.status = GNTST_BAD_DOMAIN;
            }
            crate::dispatch::write_arg(dom, host, vcpu, arg, q.as_bytes())?;
            Ok(0)
        }
        gt::GNTTABOP_SET_VERSION => {
            let v: gt::GnttabSetVersion = crate::dispatch::read_arg(dom, host, vcpu, arg)?;
            match v.version {
                1 => Ok(0),
                // Version 2 is not offered; Linux then keeps version 1.
                _ => Err(Errno::ENOSYS),
            }
        }
        gt::GNTTABOP_GET_VERSION => {
            let mut v: gt::GnttabGetVersion = crate::dispatch::read_arg(dom, host, vcpu, arg)?;
            if v.dom != DOMID_SELF && v.dom != dom.domid {
                return Err(Errno::ESRCH);
            }
            v.version = 1;
            crate::dispatch::write_arg(dom, host, vcpu, arg, v.as_bytes())?;
            Ok(0)
        }
        // A frontend never maps or copies grants itself.
        _ => Err(Errno::ENOSYS),
    }
}

/// Maps grant frame `idx` at `gpfn`, growing the table up to `idx` first.
pub fn map_frame(dom: &mut Domain, host: &mut impl Host, idx: u64, gpfn: Gfn) -> HypercallResult {
    if idx & guest_abi::memory::XENMAPIDX_GRANT_TABLE_STATUS != 0 || idx >= MAX_GRANT_FRAMES as u64
    {
        return Err(Errno::EINVAL);
    }
    while dom.grant_frames.len() as u64 <= idx {
        let page = host.alloc_page().ok_or(Errno::ENOMEM)?;
        dom.grant_frames.push((page / 4096, None));
    }
    let (mfn, old) = dom.grant_frames[idx as usize];
    if let Some(old) = old.filter(|&g| g != gpfn) {
        dom.unmap(host, old)?;
    }
    dom.map_special(host, gpfn, mfn)?;
    dom.grant_frames[idx as usize].1 = Some(gpfn);
    Ok(0)
}
