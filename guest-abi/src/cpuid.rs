//! The Xen CPUID leaves (`arch-x86/cpuid.h`), at `0x4000_0000 + 0x100 * n`.

/// `XEN_CPUID_FIRST_LEAF`: the usual base of the Xen leaves.
pub const XEN_CPUID_FIRST_LEAF: u32 = 0x4000_0000;
/// `XEN_CPUID_SIGNATURE_EBX`: `"XenV"`.
pub const XEN_CPUID_SIGNATURE_EBX: u32 = 0x566e_6558;
/// `XEN_CPUID_SIGNATURE_ECX`: `"MMXe"`.
pub const XEN_CPUID_SIGNATURE_ECX: u32 = 0x6558_4d4d;
/// `XEN_CPUID_SIGNATURE_EDX`: `"nVMM"`.
pub const XEN_CPUID_SIGNATURE_EDX: u32 = 0x4d4d_566e;
/// `XEN_CPUID_MAX_NUM_LEAVES`: leaves base+0 ..= base+5.
pub const XEN_CPUID_MAX_NUM_LEAVES: u32 = 5;

/// Leaf base+2 EBX: the MSR a guest writes to have the hypercall page filled (Xen's choice).
pub const XEN_HYPERCALL_MSR: u32 = 0x4000_0000;

/// `XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD` (leaf base+2 ECX).
pub const XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD: u32 = 1 << 0;

/// `XEN_CPUID_TSC_EMULATED` (leaf base+3, sub-leaf 0, EAX).
pub const XEN_CPUID_TSC_EMULATED: u32 = 1 << 0;
/// `XEN_CPUID_HOST_TSC_RELIABLE`.
pub const XEN_CPUID_HOST_TSC_RELIABLE: u32 = 1 << 1;
/// `XEN_CPUID_RDTSCP_INSTR_AVAIL`.
pub const XEN_CPUID_RDTSCP_INSTR_AVAIL: u32 = 1 << 2;

/// `XEN_HVM_CPUID_APIC_ACCESS_VIRT` (leaf base+4 EAX).
pub const XEN_HVM_CPUID_APIC_ACCESS_VIRT: u32 = 1 << 0;
/// `XEN_HVM_CPUID_X2APIC_VIRT`.
pub const XEN_HVM_CPUID_X2APIC_VIRT: u32 = 1 << 1;
/// `XEN_HVM_CPUID_IOMMU_MAPPINGS`.
pub const XEN_HVM_CPUID_IOMMU_MAPPINGS: u32 = 1 << 2;
/// `XEN_HVM_CPUID_VCPU_ID_PRESENT`: EBX holds the vCPU id.
pub const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
/// `XEN_HVM_CPUID_DOMID_PRESENT`: ECX holds the domain id.
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 4;
/// `XEN_HVM_CPUID_EXT_DEST_ID`: MSI extended destination id supported.
pub const XEN_HVM_CPUID_EXT_DEST_ID: u32 = 1 << 5;
/// `XEN_HVM_CPUID_UPCALL_VECTOR`: `HVMOP_set_evtchn_upcall_vector` supported.
pub const XEN_HVM_CPUID_UPCALL_VECTOR: u32 = 1 << 6;

/// Returns the signature as the 12 bytes `"XenVMMXenVMM"` (EBX, ECX, EDX in order).
pub const fn signature_bytes() -> [u8; 12] {
    let b = XEN_CPUID_SIGNATURE_EBX.to_le_bytes();
    let c = XEN_CPUID_SIGNATURE_ECX.to_le_bytes();
    let d = XEN_CPUID_SIGNATURE_EDX.to_le_bytes();
    [
        b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2], d[3],
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature() {
        assert_eq!(&super::signature_bytes(), b"XenVMMXenVMM");
    }
}
