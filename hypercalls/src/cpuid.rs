//! The guest CPUID policy: the host's leaves with virtualization-specific
//! adjustments, and Xen's leaves at 0x40000000, as Xen presents them to an
//! HVM guest.

/// Xen's CPUID base leaf.
pub const XEN_CPUID_BASE: u32 = 0x4000_0000;
/// The highest Xen leaf reported (Xen reports base + 5).
pub const XEN_CPUID_MAX: u32 = XEN_CPUID_BASE + 5;
/// The Xen version reported by CPUID and XENVER_version: 4.17.
pub const XEN_VERSION: (u32, u32) = (4, 17);
/// The MSR whose write installs the hypercall page.
pub const HYPERCALL_MSR: u32 = 0x4000_0000;

/// CPUID.1:ECX bits.
const ECX_MONITOR: u32 = 1 << 3;
const ECX_VMX: u32 = 1 << 5;
const ECX_SMX: u32 = 1 << 6;
const ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID 0x40000004 EAX: vCPU id present in EBX.
const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;

/// Computes the guest's view of CPUID(`leaf`, `subleaf`) for vCPU `vcpu_id`,
/// given the host's raw CPUID.
pub fn guest_cpuid(
    leaf: u32,
    subleaf: u32,
    vcpu_id: u32,
    host: impl Fn(u32, u32) -> [u32; 4],
) -> [u32; 4] {
    match leaf {
        XEN_CPUID_BASE => {
            let sig = *b"XenVMMXenVMM";
            let word = |i: usize| u32::from_le_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
            [XEN_CPUID_MAX, word(0), word(4), word(8)]
        }
        0x4000_0001 => [(XEN_VERSION.0 << 16) | XEN_VERSION.1, 0, 0, 0],
        // One hypercall page, installed through MSR 0x40000000.
        0x4000_0002 => [1, HYPERCALL_MSR, 0, 0],
        0x4000_0004 => [XEN_HVM_CPUID_VCPU_ID_PRESENT, vcpu_id, 0, 0],
        0x4000_0003 | 0x4000_0005..=0x4000_FFFF => [0; 4],
        1 => {
            let [eax, ebx, ecx, edx] = host(1, 0);
            let ecx = (ecx | ECX_HYPERVISOR) & !(ECX_VMX | ECX_SMX | ECX_MONITOR);
            // Initial APIC id = vCPU id; one logical processor per package.
            let ebx = (ebx & 0x0000_FFFF) | (vcpu_id << 24) | (1 << 16);
            [eax, ebx, ecx, edx]
        }
        _ => host(leaf, subleaf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_host(leaf: u32, _sub: u32) -> [u32; 4] {
        match leaf {
            1 => [
                0x906ea,
                0x0008_0800,
                ECX_VMX | ECX_SMX | ECX_MONITOR | 1,
                0xbfeb_fbff,
            ],
            0x4000_0000 => [0x4000_0001, 0x4b4d_564b, 0, 0], // a host KVM signature must not leak
            _ => [leaf, 1, 2, 3],
        }
    }

    #[test]
    fn xen_signature_and_version() {
        let r = guest_cpuid(XEN_CPUID_BASE, 0, 0, fake_host);
        let mut sig = [0u8; 12];
        sig[0..4].copy_from_slice(&r[1].to_le_bytes());
        sig[4..8].copy_from_slice(&r[2].to_le_bytes());
        sig[8..12].copy_from_slice(&r[3].to_le_bytes());
        assert_eq!(&sig, b"XenVMMXenVMM");
        assert!(r[0] >= XEN_CPUID_BASE + 4, "Linux reads up to base+4");
        assert_eq!(guest_cpuid(0x4000_0001, 0, 0, fake_host)[0], 0x0004_0011);
        assert_eq!(
            guest_cpuid(0x4000_0002, 0, 0, fake_host)[..2],
            [1, HYPERCALL_MSR]
        );
    }

    #[test]
    fn vcpu_id_leaf_and_apic_id() {
        assert_eq!(
            guest_cpuid(0x4000_0004, 0, 3, fake_host)[..2],
            [XEN_HVM_CPUID_VCPU_ID_PRESENT, 3]
        );
        assert_eq!(guest_cpuid(1, 0, 3, fake_host)[1] >> 24, 3);
    }

    #[test]
    fn leaf1_hides_vmx_and_sets_hypervisor() {
        let ecx = guest_cpuid(1, 0, 0, fake_host)[2];
        assert_eq!(ecx & (ECX_VMX | ECX_SMX | ECX_MONITOR), 0);
        assert_ne!(ecx & ECX_HYPERVISOR, 0);
        assert_eq!(ecx & 1, 1, "other bits pass through");
    }
}
