//! `test=identity`: discover Xen like Linux does, query it, set an MTRR, map `shared_info`.

use crate::arch;
use crate::console::Bytes;
use crate::xen;

/// First CPUID leaf scanned for a hypervisor signature.
const CPUID_SCAN_FIRST: u32 = 0x4000_0000;
/// Last CPUID leaf scanned (inclusive).
const CPUID_SCAN_LAST: u32 = 0x4000_FF00;
/// Step between scanned leaves.
const CPUID_SCAN_STEP: usize = 0x100;
/// Xen's CPUID signature, EBX:ECX:EDX.
const XEN_SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";

/// `IA32_MTRRCAP`.
const IA32_MTRRCAP: u32 = 0xFE;
/// `IA32_MTRR_PHYSBASE0`.
const IA32_MTRR_PHYSBASE0: u32 = 0x200;
/// `IA32_MTRR_PHYSMASK0`.
const IA32_MTRR_PHYSMASK0: u32 = 0x201;
/// `IA32_MTRR_DEF_TYPE`.
const IA32_MTRR_DEF_TYPE: u32 = 0x2FF;
/// Memory type UC in an MTRR.
const MTRR_TYPE_UC: u64 = 0;
/// The valid bit of `IA32_MTRR_PHYSMASKn`.
const MTRR_PHYSMASK_VALID: u64 = 1 << 11;
/// Start of the range made UC (and where `shared_info` is mapped).
const UC_RANGE_BASE: u64 = 0xF000_0000;
/// Size of the UC range (256 MiB).
const UC_RANGE_SIZE: u64 = 256 << 20;
/// MAXPHYADDR assumed when CPUID leaf 0x80000008 is missing.
const DEFAULT_PHYS_ADDR_BITS: u32 = 36;

/// The GFN at which `shared_info` is mapped (the start of the UC range).
const SHARED_INFO_GPFN: u64 = UC_RANGE_BASE >> 12;
/// Smallest `wc_sec` accepted as a plausible wallclock (September 2020).
pub(crate) const MIN_PLAUSIBLE_WC_SEC: u32 = 1_600_000_000;
/// How often a torn `wc_*` read is retried.
const WC_READ_TRIES: usize = 1000;

/// Runs the identity test and powers the domain off.
pub fn run() -> ! {
    signature();
    version();
    features();
    mtrr();
    shared_info();
    say!("done, shutting down");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}

/// Finds Xen's CPUID base like Linux's `hypervisor_cpuid_base`: the signature with at least
/// two leaves after the base. Returns `(base, max leaf)`.
fn find_xen_base() -> Option<(u32, u32)> {
    (CPUID_SCAN_FIRST..=CPUID_SCAN_LAST)
        .step_by(CPUID_SCAN_STEP)
        .find_map(|base| {
            let r = arch::cpuid(base, 0);
            let mut sig = [0u8; 12];
            sig[0..4].copy_from_slice(&r.ebx.to_le_bytes());
            sig[4..8].copy_from_slice(&r.ecx.to_le_bytes());
            sig[8..12].copy_from_slice(&r.edx.to_le_bytes());
            (&sig == XEN_SIGNATURE && r.eax.wrapping_sub(base) >= 2).then_some((base, r.eax))
        })
}

/// Step 1: the CPUID signature line.
fn signature() {
    match find_xen_base() {
        Some((base, max)) => say!(
            "xen-signature {} base={base:#x} max={max:#x}",
            Bytes(XEN_SIGNATURE)
        ),
        None => say!(
            "xen-signature FAIL (no {} leaf in {CPUID_SCAN_FIRST:#x}-{CPUID_SCAN_LAST:#x})",
            Bytes(XEN_SIGNATURE)
        ),
    }
}

/// The bytes of `buf` before its first NUL.
fn until_nul(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

/// Step 2a: `XENVER_version` and `XENVER_extraversion`.
fn version() {
    let ver = xen::xen_version();
    let mut extra = [0u8; 16];
    let rc = xen::xen_extraversion(&mut extra);
    if ver < 0 || rc != 0 {
        say!("xen-version FAIL (XENVER_version rc={ver}, XENVER_extraversion rc={rc})");
    } else {
        say!(
            "xen-version {}.{}{}",
            ver >> 16,
            ver & 0xFFFF,
            Bytes(until_nul(&extra))
        );
    }
}

/// Step 2b: `XENVER_get_features` submap 0.
fn features() {
    let mut info = xen::FeatureInfo {
        submap_idx: 0,
        submap: 0,
    };
    let rc = xen::xen_get_features(&mut info);
    if rc == 0 {
        say!("features={:#x}", info.submap);
    } else {
        say!("features FAIL (XENVER_get_features rc={rc})");
    }
}

/// MAXPHYADDR from CPUID 0x80000008 EAX[7:0], or 36 if that leaf is missing.
fn phys_addr_bits() -> u32 {
    if arch::cpuid(0x8000_0000, 0).eax >= 0x8000_0008 {
        match arch::cpuid(0x8000_0008, 0).eax & 0xFF {
            0 => DEFAULT_PHYS_ADDR_BITS,
            bits => bits.min(63),
        }
    } else {
        DEFAULT_PHYS_ADDR_BITS
    }
}

/// Step 3: make `[0xF000_0000, 4 GiB)` UC with variable MTRR 0 and read it back.
fn mtrr() {
    let cap = arch::rdmsr(IA32_MTRRCAP);
    let vcnt = cap & 0xFF;
    if vcnt == 0 {
        say!("mtrr FAIL (MTRRcap={cap:#x} has no variable ranges)");
        return;
    }
    let phys_mask = (1u64 << phys_addr_bits()) - 1;
    let base = UC_RANGE_BASE | MTRR_TYPE_UC;
    let mask = (phys_mask & !(UC_RANGE_SIZE - 1)) | MTRR_PHYSMASK_VALID;
    arch::wrmsr_mtrr(IA32_MTRR_PHYSBASE0, base);
    arch::wrmsr_mtrr(IA32_MTRR_PHYSMASK0, mask);
    let base_rb = arch::rdmsr(IA32_MTRR_PHYSBASE0);
    let mask_rb = arch::rdmsr(IA32_MTRR_PHYSMASK0);
    let def = arch::rdmsr(IA32_MTRR_DEF_TYPE);
    let verdict = if base_rb == base && mask_rb == mask {
        ""
    } else {
        " FAIL (read-back differs from what was written)"
    };
    say!(
        "mtrr uc-range {UC_RANGE_BASE:#x}-{:#x} def={def:#x} var0={base_rb:#x}/{mask_rb:#x}{verdict}",
        UC_RANGE_BASE + UC_RANGE_SIZE - 1
    );
}

/// Reads `(wc_version, wc_sec)` from the `shared_info` page at `gpa` under its seqlock:
/// retries while the version is odd (an update in progress) or changes during the read.
pub(crate) fn read_wallclock(gpa: u64) -> (u32, u32) {
    let mut last = (0, 0);
    for _ in 0..WC_READ_TRIES {
        // SAFETY: `gpa` is the shared_info page the hypervisor just mapped below 4 GiB, above
        // guest RAM holding Rust objects; volatile reads of the hypervisor-written fields.
        let (v1, sec, v2) = unsafe {
            (
                arch::read_phys_u32(gpa + xen::SHARED_INFO_WC_VERSION),
                arch::read_phys_u32(gpa + xen::SHARED_INFO_WC_SEC),
                arch::read_phys_u32(gpa + xen::SHARED_INFO_WC_VERSION),
            )
        };
        last = (v2, sec);
        if v1 == v2 && v1 % 2 == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    last
}

/// Step 4: map `shared_info` at GFN 0xF0000 (in the UC range) and check its wallclock.
fn shared_info() {
    let mut xatp = xen::AddToPhysmap {
        domid: xen::DOMID_SELF,
        size: 0,
        space: xen::XENMAPSPACE_SHARED_INFO,
        idx: 0,
        gpfn: SHARED_INFO_GPFN,
    };
    let rc = xen::add_to_physmap(&mut xatp);
    if rc != 0 {
        say!("shared_info gpfn={SHARED_INFO_GPFN:#x} FAIL (XENMEM_add_to_physmap rc={rc})");
        return;
    }
    let (wc_version, wc_sec) = read_wallclock(SHARED_INFO_GPFN << 12);
    if wc_version % 2 != 0 {
        say!(
            "shared_info gpfn={SHARED_INFO_GPFN:#x} wc_sec={wc_sec} FAIL (wc_version {wc_version} is odd)"
        );
    } else if wc_sec <= MIN_PLAUSIBLE_WC_SEC {
        say!(
            "shared_info gpfn={SHARED_INFO_GPFN:#x} wc_sec={wc_sec} FAIL (wc_sec not after {MIN_PLAUSIBLE_WC_SEC})"
        );
    } else {
        say!("shared_info gpfn={SHARED_INFO_GPFN:#x} wc_sec={wc_sec} ok");
    }
}
