//! The guest CPUID policy: the host's leaves with what the hypervisor does not
//! virtualize taken out, a topology of `nr_vcpus` cores in one package, and
//! Xen's leaves at 0x40000000, as Xen presents them to an HVM guest.
//!
//! The rule is Xen's: advertise only what the guest can use as advertised.
//! Features whose MSRs are not emulated (machine check, performance
//! monitoring, speculation controls, TSC_ADJUST, thermal and power control),
//! VMX/SMX, MONITOR/MWAIT and the compacted XSAVE formats (Bochs reports a
//! zero size for them) are hidden; x2APIC, TSC-deadline and ARAT, which the
//! emulated local APIC provides, are shown; OSXSAVE and OSPKE follow the
//! guest's own CR4, as on hardware.

/// Xen's CPUID base leaf.
pub const XEN_CPUID_BASE: u32 = 0x4000_0000;
/// The highest Xen leaf reported (Xen reports base + 5).
pub const XEN_CPUID_MAX: u32 = XEN_CPUID_BASE + 5;
/// The Xen version reported by CPUID and XENVER_version: 4.17.
pub const XEN_VERSION: (u32, u32) = (4, 17);
/// The MSR whose write installs the hypercall page.
pub const HYPERCALL_MSR: u32 = 0x4000_0000;

/// CPUID.1:ECX bits.
mod ecx1 {
    pub const DTES64: u32 = 1 << 2;
    pub const MONITOR: u32 = 1 << 3;
    pub const DS_CPL: u32 = 1 << 4;
    pub const VMX: u32 = 1 << 5;
    pub const SMX: u32 = 1 << 6;
    pub const EST: u32 = 1 << 7;
    pub const TM2: u32 = 1 << 8;
    pub const SDBG: u32 = 1 << 11;
    pub const XTPR: u32 = 1 << 14;
    pub const PDCM: u32 = 1 << 15;
    pub const X2APIC: u32 = 1 << 21;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const OSXSAVE: u32 = 1 << 27;
    pub const HYPERVISOR: u32 = 1 << 31;
}

/// CPUID.1:EDX bits.
mod edx1 {
    pub const MCE: u32 = 1 << 7;
    pub const MCA: u32 = 1 << 14;
    pub const PSN: u32 = 1 << 18;
    pub const DS: u32 = 1 << 21;
    pub const ACPI: u32 = 1 << 22;
    pub const HTT: u32 = 1 << 28;
    pub const TM: u32 = 1 << 29;
    pub const PBE: u32 = 1 << 31;
}

/// CPUID.7.0 bits.
mod leaf7 {
    pub const EBX_TSC_ADJUST: u32 = 1 << 1;
    /// Enhanced REP MOVSB/STOSB.
    pub const EBX_ERMS: u32 = 1 << 9;
    /// Fast short REP MOVSB.
    pub const EDX_FSRM: u32 = 1 << 4;
    pub const EBX_SGX: u32 = 1 << 2;
    pub const EBX_HLE: u32 = 1 << 4;
    pub const EBX_RTM: u32 = 1 << 11;
    pub const EBX_PQM: u32 = 1 << 12;
    pub const EBX_MPX: u32 = 1 << 14;
    pub const EBX_PQE: u32 = 1 << 15;
    pub const EBX_INTEL_PT: u32 = 1 << 25;
    pub const ECX_PKU: u32 = 1 << 3;
    pub const ECX_OSPKE: u32 = 1 << 4;
    pub const ECX_WAITPKG: u32 = 1 << 5;
    /// CET shadow stacks (the CET MSRs and XSS state are not emulated).
    pub const ECX_CET_SS: u32 = 1 << 7;
    /// Total memory encryption (its MSRs are not emulated).
    pub const ECX_TME: u32 = 1 << 13;
    /// 5-level paging (the builder's and EPT's tables are 4-level; not offered, as Xen's default).
    pub const ECX_LA57: u32 = 1 << 16;
    pub const ECX_SGX_LC: u32 = 1 << 30;
    pub const ECX_PKS: u32 = 1 << 31;
    pub const EDX_UINTR: u32 = 1 << 5;
    pub const EDX_SRBDS_CTRL: u32 = 1 << 9;
    pub const EDX_TSX_FORCE_ABORT: u32 = 1 << 13;
    pub const EDX_HYBRID: u32 = 1 << 15;
    pub const EDX_PCONFIG: u32 = 1 << 18;
    /// CET indirect-branch tracking.
    pub const EDX_CET_IBT: u32 = 1 << 20;
    /// AMX: its XCR0 components are not offered (see `GUEST_XCR0_ALLOWED`).
    pub const EDX_AMX_BF16: u32 = 1 << 22;
    pub const EDX_AMX_TILE: u32 = 1 << 24;
    pub const EDX_AMX_INT8: u32 = 1 << 25;
    pub const EDX_IBRS: u32 = 1 << 26;
    pub const EDX_STIBP: u32 = 1 << 27;
    pub const EDX_L1D_FLUSH: u32 = 1 << 28;
    pub const EDX_ARCH_CAPABILITIES: u32 = 1 << 29;
    pub const EDX_CORE_CAPABILITIES: u32 = 1 << 30;
    pub const EDX_SSBD: u32 = 1 << 31;
}

/// CPUID.6:EAX.ARAT: the APIC timer keeps running in deep C-states.
const ARAT: u32 = 1 << 2;
/// CPUID.(0xD,1):EAX bits kept: XSAVEOPT and XGETBV with ECX=1.
const XSAVE_SUB1_KEEP: u32 = (1 << 0) | (1 << 2);
/// CPUID 0x40000004 EAX: vCPU id present in EBX.
const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
/// CR4.OSXSAVE and CR4.PKE.
const CR4_OSXSAVE: u64 = 1 << 18;
const CR4_PKE: u64 = 1 << 22;

/// XCR0 bits of the user state components (SDM vol. 1, 13.1).
pub mod xfeature {
    /// x87 state.
    pub const X87: u64 = 1 << 0;
    /// SSE state (XMM registers, MXCSR).
    pub const SSE: u64 = 1 << 1;
    /// AVX state (upper halves of the YMM registers).
    pub const AVX: u64 = 1 << 2;
    /// MPX state (BNDREGS and BNDCSR), which go together.
    pub const MPX: u64 = (1 << 3) | (1 << 4);
    /// AVX-512 state (opmask, ZMM_Hi256, Hi16_ZMM), which go together.
    pub const AVX512: u64 = 0xE0;
    /// PKRU state.
    pub const PKRU: u64 = 1 << 9;
    /// AMX state (XTILECFG and XTILEDATA), which go together.
    pub const AMX: u64 = (1 << 17) | (1 << 18);
}

/// The state components a guest may enable: x87, SSE, AVX, AVX-512 and PKRU.
/// MPX is hidden (its CPUID bit is), and so is AMX: its tile data needs an
/// XSAVE area larger than the one switched here and XFD, which is not emulated.
pub const GUEST_XCR0_ALLOWED: u64 =
    xfeature::X87 | xfeature::SSE | xfeature::AVX | xfeature::AVX512 | xfeature::PKRU;

/// The user state components (XCR0 bits) offered to guests: the host's within
/// [`GUEST_XCR0_ALLOWED`], less any component the host describes with a size
/// of 0 (Bochs does so for PKRU), which a guest could not lay out, and less
/// the AVX-512 group unless all three of its components remain.
pub fn guest_xcr0_mask(host: &impl Fn(u32, u32) -> [u32; 4]) -> u64 {
    let [eax, _, _, edx] = host(0xD, 0);
    let mut mask = (((edx as u64) << 32) | eax as u64) & GUEST_XCR0_ALLOWED;
    for i in 2..64 {
        if mask & (1 << i) != 0 && host(0xD, i)[0] == 0 {
            mask &= !(1 << i);
        }
    }
    if mask & xfeature::AVX512 != xfeature::AVX512 || mask & xfeature::AVX == 0 {
        mask &= !xfeature::AVX512;
    }
    if mask & xfeature::SSE == 0 {
        mask &= !(xfeature::AVX | xfeature::AVX512);
    }
    mask | xfeature::X87
}

/// The size of a standard-format XSAVE area holding every component of `mask`
/// (what CPUID.(0xD,0):ECX reports for that set): the legacy area and header
/// (576 bytes), or the end of the highest component.
pub fn xsave_area_size(mask: u64, host: &impl Fn(u32, u32) -> [u32; 4]) -> u32 {
    (2..64)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| {
            let [size, offset, _, _] = host(0xD, i);
            offset + size
        })
        .fold(576, u32::max)
}

/// Whether XSETBV may load `xcr0` into XCR0 given the components `allowed`
/// (the SDM's rules for XSETBV, vol. 1, 13.3): x87 set; nothing outside
/// `allowed`; AVX needs SSE; the MPX pair (bits 4:3), the AVX-512 triple
/// (7:5) and the AMX pair (18:17) each all or none; AVX-512 needs AVX (and so SSE).
pub fn xcr0_valid(xcr0: u64, allowed: u64) -> bool {
    let all_or_none = |group: u64| xcr0 & group == 0 || xcr0 & group == group;
    xcr0 & !allowed == 0
        && xcr0 & xfeature::X87 != 0
        && (xcr0 & xfeature::AVX == 0 || xcr0 & xfeature::SSE != 0)
        && all_or_none(xfeature::MPX)
        && all_or_none(xfeature::AVX512)
        && (xcr0 & xfeature::AVX512 == 0 || xcr0 & xfeature::AVX != 0)
        && all_or_none(xfeature::AMX)
}

/// What the policy needs to know about the vCPU asking.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuidContext {
    /// The vCPU's index (also its APIC id and Xen vcpu id).
    pub vcpu_id: u32,
    /// Number of vCPUs in the domain.
    pub nr_vcpus: u32,
    /// The guest's CR4 as it sees it (OSXSAVE and OSPKE reflect it).
    pub guest_cr4: u64,
    /// Fast-string operations are enabled (`IA32_MISC_ENABLE` bit 0 as the
    /// guest reads it, the host's as on Xen). When clear, ERMS and FSRM are
    /// hidden too: a CPU without fast strings does not honour them, and Linux
    /// clears ERMS on that bit but keeps FSRM, a pair its `memmove` mishandles.
    pub fast_strings: bool,
}

/// Bits needed to number `n` items (the x2APIC-id shift of a topology level).
fn order_bits(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// Computes the guest's view of CPUID(`leaf`, `subleaf`), given the host's raw CPUID.
pub fn guest_cpuid(
    leaf: u32,
    subleaf: u32,
    ctx: &CpuidContext,
    host: impl Fn(u32, u32) -> [u32; 4],
) -> [u32; 4] {
    let nr = ctx.nr_vcpus.max(1);
    match leaf {
        XEN_CPUID_BASE => {
            let sig = *b"XenVMMXenVMM";
            let word = |i: usize| u32::from_le_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
            [XEN_CPUID_MAX, word(0), word(4), word(8)]
        }
        0x4000_0001 => [(XEN_VERSION.0 << 16) | XEN_VERSION.1, 0, 0, 0],
        // One hypercall page, installed through MSR 0x40000000.
        0x4000_0002 => [1, HYPERCALL_MSR, 0, 0],
        0x4000_0004 => [XEN_HVM_CPUID_VCPU_ID_PRESENT, ctx.vcpu_id, 0, 0],
        0x4000_0003 | 0x4000_0005..=0x4FFF_FFFF => [0; 4],
        1 => {
            let [eax, ebx, ecx, edx] = host(1, 0);
            let mut ecx = (ecx | ecx1::HYPERVISOR | ecx1::X2APIC | ecx1::TSC_DEADLINE)
                & !(ecx1::VMX
                    | ecx1::SMX
                    | ecx1::MONITOR
                    | ecx1::DTES64
                    | ecx1::DS_CPL
                    | ecx1::EST
                    | ecx1::TM2
                    | ecx1::SDBG
                    | ecx1::XTPR
                    | ecx1::PDCM
                    | ecx1::OSXSAVE);
            if ctx.guest_cr4 & CR4_OSXSAVE != 0 {
                ecx |= ecx1::OSXSAVE;
            }
            let mut edx = edx
                & !(edx1::MCE
                    | edx1::MCA
                    | edx1::PSN
                    | edx1::DS
                    | edx1::ACPI
                    | edx1::TM
                    | edx1::PBE
                    | edx1::HTT);
            if nr > 1 {
                edx |= edx1::HTT;
            }
            // Initial APIC id = vCPU id; logical processors per package = vCPUs.
            let ebx = (ebx & 0x0000_FFFF) | (ctx.vcpu_id << 24) | (nr.min(255) << 16);
            [eax, ebx, ecx, edx]
        }
        4 => {
            let [eax, ebx, ecx, edx] = host(4, subleaf);
            if eax & 0x1F == 0 {
                return [0; 4];
            }
            let level = (eax >> 5) & 7;
            let sharing = if level >= 3 { nr - 1 } else { 0 };
            let cores = (nr - 1).min(63);
            let eax = (eax & 0x3FFF) | ((sharing & 0xFFF) << 14) | (cores << 26);
            [eax, ebx, ecx, edx]
        }
        // MONITOR/MWAIT, PMU, PQM/PQE, SGX, Intel PT, Key Locker, hybrid, AMX tiles
        // and V2 topology: not offered.
        5 | 0xA | 0xF | 0x10 | 0x12 | 0x14 | 0x19 | 0x1A | 0x1D | 0x1E | 0x1F => [0; 4],
        6 => [ARAT, 0, 0, 0],
        7 if subleaf == 0 => {
            let [_, ebx, ecx, edx] = host(7, 0);
            let ebx = ebx
                & !(leaf7::EBX_TSC_ADJUST
                    | leaf7::EBX_SGX
                    | leaf7::EBX_HLE
                    | leaf7::EBX_RTM
                    | leaf7::EBX_PQM
                    | leaf7::EBX_MPX
                    | leaf7::EBX_PQE
                    | leaf7::EBX_INTEL_PT);
            let mut ecx = ecx
                & !(leaf7::ECX_OSPKE
                    | leaf7::ECX_WAITPKG
                    | leaf7::ECX_CET_SS
                    | leaf7::ECX_TME
                    | leaf7::ECX_LA57
                    | leaf7::ECX_SGX_LC
                    | leaf7::ECX_PKS);
            if guest_xcr0_mask(&host) & xfeature::PKRU == 0 {
                ecx &= !leaf7::ECX_PKU;
            }
            if ctx.guest_cr4 & CR4_PKE != 0 {
                ecx |= leaf7::ECX_OSPKE;
            }
            let (ebx, edx) = if ctx.fast_strings {
                (ebx, edx)
            } else {
                (ebx & !leaf7::EBX_ERMS, edx & !leaf7::EDX_FSRM)
            };
            let edx = edx
                & !(leaf7::EDX_UINTR
                    | leaf7::EDX_SRBDS_CTRL
                    | leaf7::EDX_TSX_FORCE_ABORT
                    | leaf7::EDX_HYBRID
                    | leaf7::EDX_PCONFIG
                    | leaf7::EDX_CET_IBT
                    | leaf7::EDX_AMX_BF16
                    | leaf7::EDX_AMX_TILE
                    | leaf7::EDX_AMX_INT8
                    | leaf7::EDX_IBRS
                    | leaf7::EDX_STIBP
                    | leaf7::EDX_L1D_FLUSH
                    | leaf7::EDX_ARCH_CAPABILITIES
                    | leaf7::EDX_CORE_CAPABILITIES
                    | leaf7::EDX_SSBD);
            // Sub-leaves above 0 read as zero: report none.
            [0, ebx, ecx, edx]
        }
        7 => [0; 4],
        0xB => {
            let x2apic_id = ctx.vcpu_id;
            match subleaf {
                // SMT level: one thread per core.
                0 => [0, 1, 0x100, x2apic_id],
                // Core level: the package's cores.
                1 => [order_bits(nr), nr, 0x200 | 1, x2apic_id],
                n => [0, 0, n & 0xFF, x2apic_id],
            }
        }
        0xD => {
            let [eax, ebx, ecx, edx] = host(0xD, subleaf);
            match subleaf {
                // EBX is the size for the XCR0 loaded now, which is the guest's.
                0 => {
                    let mask = guest_xcr0_mask(&host);
                    [
                        mask as u32,
                        ebx,
                        xsave_area_size(mask, &host),
                        (mask >> 32) as u32,
                    ]
                }
                // No compacted format, no supervisor state (XSAVEC/XSAVES hidden).
                1 => [eax & XSAVE_SUB1_KEEP, 0, 0, 0],
                // Components not offered (supervisor ones, AMX, MPX) read as absent.
                n if n >= 64 || guest_xcr0_mask(&host) & (1 << n) == 0 => [0; 4],
                _ => [eax, ebx, ecx, edx],
            }
        }
        _ => host(leaf, subleaf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_host(leaf: u32, sub: u32) -> [u32; 4] {
        match (leaf, sub) {
            (1, _) => [
                0x906ea,
                0x0008_0800,
                ecx1::VMX | ecx1::SMX | ecx1::MONITOR | ecx1::PDCM | ecx1::OSXSAVE | 1,
                0xbfeb_fbff,
            ],
            (4, 0) => [0x1C00_4121, 1, 2, 3],
            (4, 3) => [0x1C00_4163, 1, 2, 3],
            (4, _) => [0; 4],
            (7, 0) => [0, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF],
            (0xD, 0) => [0x207, 0x340, 0x340, 0],
            (0xD, 1) => [0xF, 0x240, 0x100, 0],
            (0xD, 2) => [0x100, 0x240, 0, 0],
            (0xD, 8) => [0x80, 0, 1, 0],
            (0xD, 9) => [0, 0, 0, 0],
            (0x4000_0000, _) => [0x4000_0001, 0x4b4d_564b, 0, 0], // a host KVM signature must not leak
            _ => [leaf, 1, 2, 3],
        }
    }

    fn ctx(vcpu_id: u32, nr_vcpus: u32) -> CpuidContext {
        CpuidContext {
            vcpu_id,
            nr_vcpus,
            guest_cr4: 0,
            fast_strings: true,
        }
    }

    #[test]
    fn rep_string_features_follow_fast_strings() {
        let on = guest_cpuid(7, 0, &ctx(0, 1), fake_host);
        assert_ne!(on[1] & leaf7::EBX_ERMS, 0);
        assert_ne!(on[3] & leaf7::EDX_FSRM, 0);
        let off_ctx = CpuidContext {
            fast_strings: false,
            ..ctx(0, 1)
        };
        let off = guest_cpuid(7, 0, &off_ctx, fake_host);
        assert_eq!(off[1] & leaf7::EBX_ERMS, 0);
        assert_eq!(off[3] & leaf7::EDX_FSRM, 0);
        assert_eq!(off[1] | leaf7::EBX_ERMS, on[1]);
    }

    #[test]
    fn xen_signature_and_version() {
        let r = guest_cpuid(XEN_CPUID_BASE, 0, &ctx(0, 1), fake_host);
        let mut sig = [0u8; 12];
        sig[0..4].copy_from_slice(&r[1].to_le_bytes());
        sig[4..8].copy_from_slice(&r[2].to_le_bytes());
        sig[8..12].copy_from_slice(&r[3].to_le_bytes());
        assert_eq!(&sig, b"XenVMMXenVMM");
        assert!(r[0] >= XEN_CPUID_BASE + 4, "Linux reads up to base+4");
        assert_eq!(
            guest_cpuid(0x4000_0001, 0, &ctx(0, 1), fake_host)[0],
            0x0004_0011
        );
        assert_eq!(
            guest_cpuid(0x4000_0002, 0, &ctx(0, 1), fake_host)[..2],
            [1, HYPERCALL_MSR]
        );
        // Nothing at a higher base (Linux picks the highest signature it finds).
        assert_eq!(guest_cpuid(0x4000_0100, 0, &ctx(0, 1), fake_host), [0; 4]);
    }

    #[test]
    fn vcpu_id_leaf_and_apic_id() {
        assert_eq!(
            guest_cpuid(0x4000_0004, 0, &ctx(3, 4), fake_host)[..2],
            [XEN_HVM_CPUID_VCPU_ID_PRESENT, 3]
        );
        let ebx = guest_cpuid(1, 0, &ctx(3, 4), fake_host)[1];
        assert_eq!(ebx >> 24, 3);
        assert_eq!((ebx >> 16) & 0xFF, 4);
        assert_eq!(guest_cpuid(0xB, 0, &ctx(3, 4), fake_host)[3], 3);
    }

    #[test]
    fn leaf1_policy() {
        let [_, _, ecx, edx] = guest_cpuid(1, 0, &ctx(0, 2), fake_host);
        assert_eq!(
            ecx & (ecx1::VMX | ecx1::SMX | ecx1::MONITOR | ecx1::PDCM),
            0
        );
        assert_ne!(ecx & ecx1::HYPERVISOR, 0);
        assert_ne!(ecx & ecx1::X2APIC, 0);
        assert_ne!(ecx & ecx1::TSC_DEADLINE, 0);
        assert_eq!(ecx & 1, 1, "other bits pass through");
        assert_eq!(edx & (edx1::MCE | edx1::MCA | edx1::ACPI), 0);
        assert_ne!(edx & edx1::HTT, 0);
    }

    #[test]
    fn osxsave_and_ospke_follow_guest_cr4() {
        let mut c = ctx(0, 1);
        assert_eq!(guest_cpuid(1, 0, &c, fake_host)[2] & ecx1::OSXSAVE, 0);
        assert_eq!(guest_cpuid(7, 0, &c, fake_host)[2] & leaf7::ECX_OSPKE, 0);
        c.guest_cr4 = CR4_OSXSAVE | CR4_PKE;
        assert_ne!(guest_cpuid(1, 0, &c, fake_host)[2] & ecx1::OSXSAVE, 0);
        assert_ne!(guest_cpuid(7, 0, &c, fake_host)[2] & leaf7::ECX_OSPKE, 0);
    }

    #[test]
    fn unemulated_features_are_hidden() {
        let [_, ebx, _, edx] = guest_cpuid(7, 0, &ctx(0, 1), fake_host);
        assert_eq!(ebx & (leaf7::EBX_TSC_ADJUST | leaf7::EBX_RTM), 0);
        assert_eq!(
            edx & (leaf7::EDX_ARCH_CAPABILITIES | leaf7::EDX_IBRS | leaf7::EDX_SSBD),
            0
        );
        assert_eq!(guest_cpuid(0xA, 0, &ctx(0, 1), fake_host), [0; 4]);
        assert_eq!(guest_cpuid(6, 0, &ctx(0, 1), fake_host), [ARAT, 0, 0, 0]);
        assert_eq!(guest_cpuid(5, 0, &ctx(0, 1), fake_host), [0; 4]);
    }

    #[test]
    fn xsave_compacted_forms_hidden() {
        assert_eq!(guest_cpuid(0xD, 1, &ctx(0, 1), fake_host), [0x5, 0, 0, 0]);
        assert_eq!(guest_cpuid(0xD, 8, &ctx(0, 1), fake_host), [0; 4]);
    }

    #[test]
    fn zero_sized_xsave_components_are_hidden() {
        // The fake host lists PKRU (bit 9) in XCR0 but gives it no size, as Bochs does.
        assert_eq!(guest_cpuid(0xD, 0, &ctx(0, 1), fake_host)[0], 0x7);
        assert_eq!(
            guest_cpuid(7, 0, &ctx(0, 1), fake_host)[2] & leaf7::ECX_PKU,
            0
        );
    }

    #[test]
    fn topology() {
        assert_eq!(guest_cpuid(0xB, 0, &ctx(1, 2), fake_host), [0, 1, 0x100, 1]);
        assert_eq!(guest_cpuid(0xB, 1, &ctx(1, 2), fake_host), [1, 2, 0x201, 1]);
        assert_eq!(guest_cpuid(0xB, 2, &ctx(1, 2), fake_host), [0, 0, 2, 1]);
        assert_eq!(guest_cpuid(0xB, 1, &ctx(0, 5), fake_host)[0], 3);
        let l1 = guest_cpuid(4, 0, &ctx(0, 2), fake_host)[0];
        assert_eq!((l1 >> 26, (l1 >> 14) & 0xFFF), (1, 0));
        let l3 = guest_cpuid(4, 3, &ctx(0, 2), fake_host)[0];
        assert_eq!((l3 >> 26, (l3 >> 14) & 0xFFF), (1, 1));
        assert_eq!(guest_cpuid(4, 4, &ctx(0, 2), fake_host), [0; 4]);
    }

    /// A host with AVX-512 and AMX, as a Sapphire Rapids reports them.
    fn amx_host(leaf: u32, sub: u32) -> [u32; 4] {
        match (leaf, sub) {
            (0xD, 0) => [0x602E7, 0x2B00, 0x2B00, 0],
            (0xD, 2) => [256, 576, 0, 0],
            (0xD, 5) => [64, 1088, 0, 0],
            (0xD, 6) => [512, 1152, 0, 0],
            (0xD, 7) => [1024, 1664, 0, 0],
            (0xD, 9) => [8, 2688, 0, 0],
            (0xD, 17) => [64, 2752, 0, 0],
            (0xD, 18) => [8192, 2816, 0, 0],
            (7, 0) => [
                1,
                0,
                leaf7::ECX_LA57 | leaf7::ECX_CET_SS | leaf7::ECX_TME,
                0x0340_0000,
            ],
            _ => fake_host(leaf, sub),
        }
    }

    #[test]
    fn amx_cet_tme_la57_are_hidden() {
        let [eax, _, ecx, edx] = guest_cpuid(7, 0, &ctx(0, 1), amx_host);
        assert_eq!(eax, 0, "no sub-leaves beyond 0");
        assert_eq!(
            ecx & (leaf7::ECX_LA57 | leaf7::ECX_CET_SS | leaf7::ECX_TME),
            0
        );
        assert_eq!(
            edx & (leaf7::EDX_AMX_TILE | leaf7::EDX_AMX_INT8 | leaf7::EDX_AMX_BF16),
            0
        );
        let mask = guest_xcr0_mask(&amx_host);
        assert_eq!(
            mask, 0x2E7,
            "x87, SSE, AVX, AVX-512 and PKRU; no AMX, no MPX"
        );
        let d0 = guest_cpuid(0xD, 0, &ctx(0, 1), amx_host);
        assert_eq!((d0[0], d0[3]), (0x2E7, 0));
        // The area for x87..PKRU ends with PKRU at 2688 + 8, not at the AMX tile data.
        assert_eq!(d0[2], 2696);
        assert_eq!(xsave_area_size(mask, &amx_host), 2696);
        assert_eq!(guest_cpuid(0xD, 17, &ctx(0, 1), amx_host), [0; 4]);
        assert_eq!(guest_cpuid(0xD, 18, &ctx(0, 1), amx_host), [0; 4]);
        assert_eq!(guest_cpuid(0xD, 5, &ctx(0, 1), amx_host)[0], 64);
        assert_eq!(guest_cpuid(0x1D, 0, &ctx(0, 1), amx_host), [0; 4]);
    }

    #[test]
    fn xcr0_rules_follow_the_sdm() {
        let all = 0x602FF; // x87..AVX-512, PKRU, AMX: every rule can be exercised
        for good in [0x1, 0x3, 0x7, 0xE7, 0x2E7, 0x1F, 0x60003, 0x602FF, 0x201] {
            assert!(xcr0_valid(good, all), "{good:#x} is valid");
        }
        for bad in [
            0x0,     // x87 clear
            0x2,     // x87 clear
            0x5,     // AVX without SSE
            0x27,    // one AVX-512 component
            0x67,    // two of three
            0xE3,    // AVX-512 without AVX
            0xF,     // one MPX component
            0x20003, // XTILECFG alone
            0x40003, // XTILEDATA alone
            1 << 63, // reserved
            0x101,   // a supervisor component (PT)
        ] {
            assert!(!xcr0_valid(bad, all), "{bad:#x} is refused");
        }
        // Valid by the rules but not offered: refused.
        assert!(!xcr0_valid(0x60003, 0x2E7));
        assert!(!xcr0_valid(0x7, 0x3));
    }
}
