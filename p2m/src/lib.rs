//! Per-domain guest-physical memory map (p2m), the EPT memory-type (EMT) resolver and the
//! construction of Intel EPT paging structures.
//!
//! * [`P2m`] records, for every guest frame number (gfn), the machine frame (mfn) it maps, what
//!   kind of frame it is ([`P2mType`]), which domain owns it and whether it is a *special page*
//!   (hypervisor-owned, shared with the guest). [`P2m::set_entry`] is the only way to change it;
//!   every change is written to the EPT immediately, through [`resolve`] for every leaf.
//! * [`resolve`] is the pure decision table of the EMT resolver spec (`emt-resolver.md`): it
//!   turns one naturally aligned range into a memory type plus ignore-PAT bit, or asks for the
//!   range to be split.
//!   Its cost does not depend on the size of the range: special pages are kept in a [`RangeSet`]
//!   and MTRR uniformity is computed from range boundaries ([`MtrrState::type_of_range`]).
//! * [`audit`] and [`translate`] walk the real EPT tables, for teardown checks and tests.
//!
//! The paging-structure memory is supplied by the caller through [`EptTableMemory`], so the same
//! code runs in the hypervisor and in host tests (see `testmem`, feature `testmem`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod audit;
mod ept;
mod mtrr;
mod p2m;
mod rangeset;
mod resolve;
#[cfg(any(test, feature = "testmem"))]
pub mod testmem;

pub use audit::{audit, AuditReport};
pub use ept::{translate, EptTableMemory};
pub use mtrr::{
    MtrrState, GUEST_MTRR_VCNT, MAX_VAR_RANGES, MSR_MTRR_CAP, MSR_MTRR_DEF_TYPE, MSR_MTRR_FIX_16K,
    MSR_MTRR_FIX_4K, MSR_MTRR_FIX_64K, MSR_MTRR_PHYS_BASE0,
};
pub use p2m::{P2m, P2mConfig, DEFAULT_MAX_EXTENTS};
pub use rangeset::{Coverage, PinnedCacheAttrs, RangeSet};
pub use resolve::{resolve, Resolution, ResolveEnv, ResolveQuery};

use core::fmt;

/// Guest frame number: a guest-physical address shifted right by 12.
pub type Gfn = u64;
/// Machine frame number: a host-physical address shifted right by 12.
pub type Mfn = u64;
/// Domain identifier.
pub type DomId = u16;

/// The owner of hypervisor pages (shared info, grant-table frames, ...).
pub const DOMID_XEN: DomId = 0x7FF2;

/// Number of guest frames a 4-level EPT can map: 48-bit guest-physical addresses.
pub const MAX_GFN: Gfn = 1 << 36;
/// Number of machine frames an EPT entry can name: address bits 51:12.
pub const MAX_MFN: Mfn = 1 << 40;

/// Page orders [`P2m::set_entry`] accepts: 4 KiB, 2 MiB and 1 GiB.
pub const VALID_ORDERS: [u32; 3] = [0, 9, 18];

/// An x86 memory type, as used by MTRRs and EPT leaf entries (bits 5:3).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemType {
    /// Uncacheable.
    Uc = 0,
    /// Write-combining.
    Wc = 1,
    /// Write-through.
    Wt = 4,
    /// Write-protected.
    Wp = 5,
    /// Write-back.
    Wb = 6,
}

impl TryFrom<u8> for MemType {
    type Error = P2mError;

    /// Decodes a memory-type encoding; 2, 3 and 7 and above are reserved.
    fn try_from(v: u8) -> Result<Self, P2mError> {
        match v {
            0 => Ok(MemType::Uc),
            1 => Ok(MemType::Wc),
            4 => Ok(MemType::Wt),
            5 => Ok(MemType::Wp),
            6 => Ok(MemType::Wb),
            _ => Err(P2mError::BadMemType),
        }
    }
}

/// What a present guest frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum P2mType {
    /// Ordinary guest RAM (or a hypervisor page when [`Mapping::special`] is set): RWX.
    RamRw,
    /// A grant or foreign mapping of another domain's page: RW.
    GrantMapRw,
    /// Direct (pass-through) device MMIO: RW.
    MmioDirect,
}

/// How a guest frame is mapped, apart from the machine frame itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The kind of frame.
    pub p2m_type: P2mType,
    /// The domain that owns the machine frame.
    pub owner: DomId,
    /// A special page (hypervisor-owned, shared with the guest): always WB with ignore-PAT.
    pub special: bool,
}

impl Mapping {
    /// Ordinary guest RAM owned by `owner`.
    pub const fn ram(owner: DomId) -> Mapping {
        Mapping {
            p2m_type: P2mType::RamRw,
            owner,
            special: false,
        }
    }

    /// A special (hypervisor-owned, guest-shared) page, owned by [`DOMID_XEN`].
    pub const fn special() -> Mapping {
        Mapping {
            p2m_type: P2mType::RamRw,
            owner: DOMID_XEN,
            special: true,
        }
    }

    /// Direct device MMIO assigned to `owner`.
    pub const fn mmio(owner: DomId) -> Mapping {
        Mapping {
            p2m_type: P2mType::MmioDirect,
            owner,
            special: false,
        }
    }

    /// A grant mapping of a page owned by `owner`.
    pub const fn grant(owner: DomId) -> Mapping {
        Mapping {
            p2m_type: P2mType::GrantMapRw,
            owner,
            special: false,
        }
    }

    /// The EPT access rights (bits 2:0) for this mapping: RWX for RAM and special pages, RW
    /// otherwise.
    pub const fn ept_rights(&self) -> u64 {
        if self.special || matches!(self.p2m_type, P2mType::RamRw) {
            0x7
        } else {
            0x3
        }
    }
}

/// One frame as the p2m records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct P2mEntry {
    /// The machine frame the guest frame maps.
    pub mfn: Mfn,
    /// How it is mapped.
    pub mapping: Mapping,
}

/// Errors of the p2m.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum P2mError {
    /// gfn or mfn not aligned to the page order.
    Misaligned,
    /// Page order other than 0, 9 or 18.
    BadOrder,
    /// gfn range beyond what a 4-level EPT maps ([`MAX_GFN`]).
    GfnOutOfRange,
    /// mfn range beyond 52-bit host-physical addresses ([`MAX_MFN`]).
    MfnOutOfRange,
    /// [`EptTableMemory::alloc_table`] failed; the p2m is unchanged.
    OutOfTableMemory,
    /// Invalid MTRR value (reserved type or reserved bits set) or a write to a read-only MTRR
    /// MSR: the guest should get #GP.
    BadMtrrWrite,
    /// The MSR is not an MTRR MSR this model implements.
    NotMtrrMsr,
    /// Reserved memory-type encoding (2, 3, 7 or above).
    BadMemType,
    /// Empty or inverted range, or one overlapping an existing pinned range.
    BadRange,
    /// The change would split the records into more than [`P2mConfig::max_extents`] runs;
    /// the p2m is unchanged.
    TooManyExtents,
}

impl fmt::Display for P2mError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            P2mError::Misaligned => "gfn or mfn not aligned to the page order",
            P2mError::BadOrder => "page order must be 0, 9 or 18",
            P2mError::GfnOutOfRange => "gfn beyond the guest-physical address width",
            P2mError::MfnOutOfRange => "mfn beyond the host-physical address width",
            P2mError::OutOfTableMemory => "out of memory for EPT tables",
            P2mError::BadMtrrWrite => "invalid MTRR write",
            P2mError::NotMtrrMsr => "not an MTRR MSR",
            P2mError::BadMemType => "reserved memory type",
            P2mError::BadRange => "empty, inverted or overlapping range",
            P2mError::TooManyExtents => "too many p2m extents",
        })
    }
}
