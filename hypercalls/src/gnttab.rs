//! Grant tables, v1 only (Xen's `grant_table.c`, QEMU's `xen_gnttab.c`): the
//! guest-visible frames, `__HYPERVISOR_grant_table_op` for an HVM guest, and
//! the access protocol the hypervisor's backends use on the guest's grants.
//!
//! Frames are hypervisor-owned pages, allocated when first needed and mapped as
//! special pages (WB, ignore-PAT) where the guest asks with
//! `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`. Like QEMU, the guest never
//! maps or copies grants itself: `map_grant_ref`, `unmap_grant_ref`, `copy` and
//! `swap_grant_ref` are `-ENOSYS`.

use crate::dispatch::{read_arg as read, write_arg};
use crate::domain::Domain;
use crate::evtchn::check_target;
use crate::guest_mem::copy_to_guest;
use crate::{Errno, Host, HypercallResult, VcpuContext};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use guest_abi::grant_table as gt;
use guest_abi::grant_table::GrantEntryV1;
use p2m::{Gfn, Mfn, P2mType};
use zerocopy::IntoBytes;

/// Frames a domain may have (`max_grant_frames`; Xen's and QEMU's default).
pub const MAX_GRANT_FRAMES: u32 = 64;
/// Grant entries per frame.
pub const ENTRIES_PER_FRAME: u32 = gt::GRANT_ENTRIES_V1_PER_FRAME as u32;
/// `INVALID_GFN` as `setup_table` reports an unmapped frame.
const INVALID_GFN: u64 = u64::MAX;

/// One grant-table frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Frame {
    /// The host page, once allocated.
    mfn: Option<Mfn>,
    /// Where the guest mapped it.
    gfn: Option<Gfn>,
}

/// A domain's grant table.
#[derive(Clone, Debug)]
pub struct GrantTable {
    /// The most frames the table may grow to.
    pub max_frames: u32,
    /// Frames in the table (Xen's `nr_grant_frames`; at least 1).
    frames: Vec<Frame>,
    /// Entries a backend holds: gref -> (accesses, write accesses).
    active: BTreeMap<u32, (u32, u32)>,
}

impl Default for GrantTable {
    fn default() -> Self {
        GrantTable {
            max_frames: MAX_GRANT_FRAMES,
            frames: alloc::vec![Frame::default()],
            active: BTreeMap::new(),
        }
    }
}

impl GrantTable {
    /// Frames in the table (what `GNTTABOP_query_size` reports).
    pub fn nr_frames(&self) -> u32 {
        self.frames.len() as u32
    }

    /// Where frame `idx` is mapped in the guest, if it is.
    pub fn frame_gfn(&self, idx: u32) -> Option<Gfn> {
        self.frames.get(idx as usize)?.gfn
    }

    /// The host frame backing frame `idx`, if allocated.
    pub fn frame_mfn(&self, idx: u32) -> Option<Mfn> {
        self.frames.get(idx as usize)?.mfn
    }

    /// Host frames allocated for the table.
    pub fn frame_mfns(&self) -> impl Iterator<Item = Mfn> + '_ {
        self.frames.iter().filter_map(|f| f.mfn)
    }

    /// Grows the table to `n` frames (Xen's `gnttab_grow_table`); `-EINVAL` beyond
    /// [`GrantTable::max_frames`].
    fn grow(&mut self, n: u32) -> Result<(), Errno> {
        if n > self.max_frames {
            return Err(Errno::EINVAL);
        }
        if n as usize > self.frames.len() {
            self.frames.resize(n as usize, Frame::default());
        }
        Ok(())
    }

    /// After `gfn` was remapped to `mfn`: forgets any frame that was mapped there.
    pub(crate) fn forget_gfn(&mut self, gfn: Gfn, mfn: Mfn) {
        for f in &mut self.frames {
            if f.gfn == Some(gfn) && f.mfn != Some(mfn) {
                f.gfn = None;
            }
        }
    }
}

/// Why a backend may not use a grant (each maps to a `GNTST_*` status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The reference is beyond the table.
    BadRef,
    /// The entry does not grant this access to this domain.
    PermissionDenied,
    /// The granted frame is not the guest's RAM.
    BadPage,
    /// Offset and length do not fit in the page.
    BadRange,
}

impl GrantError {
    /// The matching `GNTST_*` status.
    pub fn status(self) -> i16 {
        match self {
            GrantError::BadRef => gt::GNTST_BAD_GNTREF,
            GrantError::PermissionDenied => gt::GNTST_PERMISSION_DENIED,
            GrantError::BadPage => gt::GNTST_BAD_PAGE,
            GrantError::BadRange => gt::GNTST_BAD_COPY_ARG,
        }
    }
}

/// A grant a backend holds between [`Domain::grant_acquire`] and
/// [`Domain::grant_release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantAccess {
    /// The grant reference.
    pub gref: u32,
    /// The granted guest frame.
    pub gfn: Gfn,
    /// Host-physical address of that frame.
    pub hpa: u64,
    /// Whether the access may write.
    pub write: bool,
}

impl Domain {
    /// Host-physical address of entry `gref`, and whether its frame exists.
    fn grant_entry_hpa(&self, gref: u32) -> Option<Option<u64>> {
        let frame = gref / ENTRIES_PER_FRAME;
        if frame >= self.grant.nr_frames() {
            return None;
        }
        let off = (gref % ENTRIES_PER_FRAME) as u64 * 8;
        Some(self.grant.frame_mfn(frame).map(|mfn| mfn * 4096 + off))
    }

    /// Grant entry `gref` as the guest last wrote it (`None` beyond the table;
    /// an entry of a frame never mapped reads as empty).
    pub fn grant_entry(&self, host: &impl Host, gref: u32) -> Option<GrantEntryV1> {
        let mut e = GrantEntryV1::default();
        if let Some(hpa) = self.grant_entry_hpa(gref)? {
            host.read_phys(hpa, e.as_mut_bytes());
        }
        Some(e)
    }

    /// Starts an access by backend domain `grantee` to the frame granted by `gref`
    /// (QEMU's `gnt_ref`): the entry must be `GTF_permit_access` for `grantee`,
    /// without `GTF_sub_page`, and without `GTF_readonly` if `write`. Sets
    /// `GTF_reading` (and `GTF_writing` if `write`) in the entry until the matching
    /// [`Domain::grant_release`].
    pub fn grant_acquire(
        &mut self,
        host: &mut impl Host,
        gref: u32,
        grantee: u16,
        write: bool,
    ) -> Result<GrantAccess, GrantError> {
        let (hpa, e, mfn) = self.grant_check(host, gref, grantee, write)?;
        let gfn = e.frame as Gfn;
        let mut flags = e.flags | gt::GTF_READING;
        if write {
            flags |= gt::GTF_WRITING;
        }
        host.write_phys(hpa, &flags.to_le_bytes());
        let counts = self.grant.active.entry(gref).or_insert((0, 0));
        counts.0 += 1;
        counts.1 += write as u32;
        Ok(GrantAccess {
            gref,
            gfn,
            hpa: mfn * 4096,
            write,
        })
    }

    /// The checks of [`Domain::grant_acquire`]: the entry's host address, the
    /// entry, and the mfn of the granted frame.
    fn grant_check(
        &self,
        host: &impl Host,
        gref: u32,
        grantee: u16,
        write: bool,
    ) -> Result<(u64, GrantEntryV1, u64), GrantError> {
        let hpa = self.grant_entry_hpa(gref).ok_or(GrantError::BadRef)?;
        let hpa = hpa.ok_or(GrantError::PermissionDenied)?;
        let mut e = GrantEntryV1::default();
        host.read_phys(hpa, e.as_mut_bytes());
        let mut mask = gt::GTF_TYPE_MASK | gt::GTF_SUB_PAGE;
        if write {
            mask |= gt::GTF_READONLY;
        }
        if e.flags & mask != gt::GTF_PERMIT_ACCESS || e.domid != grantee {
            return Err(GrantError::PermissionDenied);
        }
        match self.p2m.lookup(e.frame as Gfn) {
            Some(p) if p.mapping.p2m_type == P2mType::RamRw && !p.mapping.special => {
                Ok((hpa, e, p.mfn))
            }
            _ => Err(GrantError::BadPage),
        }
    }

    /// Host address of `offset` in the frame `gref` grants to `grantee` for a
    /// copy of `len` bytes that starts and ends within one hypervisor call.
    /// Nothing runs beside the hypervisor, so the guest could never see the
    /// `GTF_reading`/`GTF_writing` an acquire and release would set and clear
    /// around the copy: the checks are those of [`Domain::grant_acquire`],
    /// and no flag or active count is written.
    fn grant_copy_hpa(
        &self,
        host: &impl Host,
        gref: u32,
        grantee: u16,
        offset: usize,
        len: usize,
        write: bool,
    ) -> Result<u64, GrantError> {
        if offset.checked_add(len).is_none_or(|end| end > 4096) {
            return Err(GrantError::BadRange);
        }
        let (_, _, mfn) = self.grant_check(host, gref, grantee, write)?;
        Ok(mfn * 4096 + offset as u64)
    }

    /// Ends an access from [`Domain::grant_acquire`]: clears `GTF_writing` when
    /// the last writer is done and `GTF_reading` when the last access is.
    pub fn grant_release(&mut self, host: &mut impl Host, access: GrantAccess) {
        let Some(counts) = self.grant.active.get_mut(&access.gref) else {
            return;
        };
        counts.0 = counts.0.saturating_sub(1);
        if access.write {
            counts.1 = counts.1.saturating_sub(1);
        }
        let mut clear = 0;
        if counts.1 == 0 {
            clear |= gt::GTF_WRITING;
        }
        if counts.0 == 0 {
            clear |= gt::GTF_READING;
            self.grant.active.remove(&access.gref);
        }
        if let Some(Some(hpa)) = self.grant_entry_hpa(access.gref) {
            let mut f = [0u8; 2];
            host.read_phys(hpa, &mut f);
            let flags = u16::from_le_bytes(f) & !clear;
            host.write_phys(hpa, &flags.to_le_bytes());
        }
    }

    /// Copies `buf.len()` bytes at `offset` of the page granted by `gref` to `grantee`.
    pub fn grant_read(
        &mut self,
        host: &mut impl Host,
        gref: u32,
        grantee: u16,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        let hpa = self.grant_copy_hpa(host, gref, grantee, offset, buf.len(), false)?;
        host.read_phys(hpa, buf);
        Ok(())
    }

    /// Copies `data` to `offset` of the page granted writable by `gref` to `grantee`.
    pub fn grant_write(
        &mut self,
        host: &mut impl Host,
        gref: u32,
        grantee: u16,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        let hpa = self.grant_copy_hpa(host, gref, grantee, offset, data.len(), true)?;
        host.write_phys(hpa, data);
        Ok(())
    }
}

/// Checks the `idx` of `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`: a frame
/// below the maximum (`-EINVAL` otherwise; with v1 an index with
/// `XENMAPIDX_grant_table_status` set is just an index that is too big).
pub(crate) fn frame_index(dom: &Domain, idx: u64) -> Result<u32, Errno> {
    match u32::try_from(idx) {
        Ok(i) if i < dom.grant.max_frames => Ok(i),
        _ => Err(Errno::EINVAL),
    }
}

/// Maps grant frame `idx` (checked by [`frame_index`]) at `gpfn`, growing the
/// table to `idx + 1` frames; a frame mapped elsewhere before moves.
pub(crate) fn map_frame(
    dom: &mut Domain,
    host: &mut impl Host,
    idx: u32,
    gpfn: Gfn,
) -> HypercallResult {
    dom.grant.grow(idx + 1)?;
    let mfn = match dom.grant.frame_mfn(idx) {
        Some(mfn) => mfn,
        None => {
            let mfn = host.alloc_page().ok_or(Errno::ENOMEM)? / 4096;
            dom.grant.frames[idx as usize].mfn = Some(mfn);
            mfn
        }
    };
    // As for shared_info: a refused move leaves the frame where it was.
    let old = dom.grant.frame_gfn(idx);
    dom.map_special(host, gpfn, mfn)?;
    if let Some(old) = old.filter(|&old| old != gpfn) {
        dom.unmap(host, old)?;
    }
    dom.grant.frames[idx as usize].gfn = Some(gpfn);
    Ok(0)
}

/// `HYPERVISOR_grant_table_op(cmd, uop, count)` as Xen answers an HVM guest.
pub fn grant_table_op(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    args: [u64; 5],
) -> HypercallResult {
    let (cmd, uop, count) = (args[0], args[1], args[2] as u32);
    // An HVM guest may use only these (`hvm_grant_table_op`); continuation bits
    // above the command make it none of them.
    let cmd = crate::dispatch::subop(cmd)?;
    match cmd {
        gt::GNTTABOP_QUERY_SIZE
        | gt::GNTTABOP_SETUP_TABLE
        | gt::GNTTABOP_SET_VERSION
        | gt::GNTTABOP_GET_VERSION
        | gt::GNTTABOP_COPY
        | gt::GNTTABOP_MAP_GRANT_REF
        | gt::GNTTABOP_UNMAP_GRANT_REF
        | gt::GNTTABOP_SWAP_GRANT_REF => {}
        _ => return Err(Errno::ENOSYS),
    }
    // `gnttab_setup_table` (a 32-bit handle of 32-bit frames) and `gnttab_copy` (32-bit
    // `xen_pfn_t`) have other layouts for a 32-bit guest, which are not translated here; the
    // other sub-ops are laid out alike.
    if ctx.compat && matches!(cmd, gt::GNTTABOP_SETUP_TABLE | gt::GNTTABOP_COPY) {
        return Err(Errno::ENOSYS);
    }
    if (count as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        gt::GNTTABOP_QUERY_SIZE => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut q: gt::GnttabQuerySize = read(dom, host, ctx, uop)?;
            q.status = match check_target(dom, q.dom) {
                Ok(()) => {
                    q.nr_frames = dom.grant.nr_frames();
                    q.max_nr_frames = dom.grant.max_frames;
                    gt::GNTST_OKAY
                }
                Err(Errno::EPERM) => gt::GNTST_PERMISSION_DENIED,
                Err(_) => gt::GNTST_BAD_DOMAIN,
            };
            write_arg(dom, host, ctx, uop, q.as_bytes())?;
            Ok(0)
        }
        gt::GNTTABOP_SETUP_TABLE => {
            if count != 1 {
                return Err(Errno::EINVAL);
            }
            let mut s: gt::GnttabSetupTable = read(dom, host, ctx, uop)?;
            s.status = setup_table(dom, host, ctx, &s);
            let off = core::mem::offset_of!(gt::GnttabSetupTable, status);
            write_arg(dom, host, ctx, uop + off as u64, &s.status.to_le_bytes())?;
            Ok(0)
        }
        gt::GNTTABOP_SET_VERSION => {
            let mut v: gt::GnttabSetVersion = read(dom, host, ctx, uop)?;
            let result = match v.version {
                1 => Ok(0),
                // Only v1 is offered: "behave as before set_version was introduced".
                2 => Err(Errno::ENOSYS),
                _ => Err(Errno::EINVAL),
            };
            v.version = 1;
            write_arg(dom, host, ctx, uop, v.as_bytes())?;
            result
        }
        gt::GNTTABOP_GET_VERSION => {
            let mut v: gt::GnttabGetVersion = read(dom, host, ctx, uop)?;
            check_target(dom, v.dom)?;
            v.version = 1;
            let off = core::mem::offset_of!(gt::GnttabGetVersion, version);
            write_arg(dom, host, ctx, uop + off as u64, &v.version.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `GNTTABOP_setup_table` for an auto-translated guest: grows the table to
/// `nr_frames` and reports where each frame is mapped (`INVALID_GFN` if nowhere).
fn setup_table(
    dom: &mut Domain,
    host: &mut impl Host,
    ctx: &VcpuContext,
    s: &gt::GnttabSetupTable,
) -> i16 {
    match check_target(dom, s.dom) {
        Ok(()) => {}
        Err(Errno::EPERM) => return gt::GNTST_PERMISSION_DENIED,
        Err(_) => return gt::GNTST_BAD_DOMAIN,
    }
    if s.nr_frames > dom.grant.max_frames || dom.grant.grow(s.nr_frames).is_err() {
        return gt::GNTST_GENERAL_ERROR;
    }
    for i in 0..s.nr_frames {
        let gfn = dom.grant.frame_gfn(i).unwrap_or(INVALID_GFN);
        let gva = s.frame_list.wrapping_add(i as u64 * 8);
        if copy_to_guest(&dom.p2m, host, &ctx.paging, gva, &gfn.to_le_bytes()).is_err() {
            return gt::GNTST_BAD_VIRT_ADDR;
        }
    }
    gt::GNTST_OKAY
}
