//! `__HYPERVISOR_hvm_op` sub-ops (`hvm/hvm_op.h`) and HVM parameters (`hvm/params.h`).

use crate::assert_size;
use crate::xen::DomId;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `HVMOP_set_param`: [`XenHvmParam`].
pub const HVMOP_SET_PARAM: u32 = 0;
/// `HVMOP_get_param`: [`XenHvmParam`].
pub const HVMOP_GET_PARAM: u32 = 1;
/// `HVMOP_set_pci_intx_level`.
pub const HVMOP_SET_PCI_INTX_LEVEL: u32 = 2;
/// `HVMOP_set_isa_irq_level`.
pub const HVMOP_SET_ISA_IRQ_LEVEL: u32 = 3;
/// `HVMOP_set_pci_link_route`.
pub const HVMOP_SET_PCI_LINK_ROUTE: u32 = 4;
/// `HVMOP_flush_tlbs`.
pub const HVMOP_FLUSH_TLBS: u32 = 5;
/// `HVMOP_pagetable_dying`: [`XenHvmPagetableDying`].
pub const HVMOP_PAGETABLE_DYING: u32 = 9;
/// `HVMOP_get_time`: [`XenHvmGetTime`].
pub const HVMOP_GET_TIME: u32 = 10;
/// `HVMOP_xentrace`.
pub const HVMOP_XENTRACE: u32 = 11;
/// `HVMOP_set_mem_access`.
pub const HVMOP_SET_MEM_ACCESS: u32 = 12;
/// `HVMOP_get_mem_access`.
pub const HVMOP_GET_MEM_ACCESS: u32 = 13;
/// `HVMOP_get_mem_type`.
pub const HVMOP_GET_MEM_TYPE: u32 = 15;
/// `HVMOP_set_evtchn_upcall_vector`: [`XenHvmEvtchnUpcallVector`].
pub const HVMOP_SET_EVTCHN_UPCALL_VECTOR: u32 = 23;
/// `HVMOP_guest_request_vm_event`.
pub const HVMOP_GUEST_REQUEST_VM_EVENT: u32 = 24;
/// `HVMOP_altp2m`.
pub const HVMOP_ALTP2M: u32 = 25;

/// `HVM_PARAM_CALLBACK_IRQ`: how event-channel upcalls are delivered (type in bits 63:56).
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `HVM_PARAM_STORE_PFN`: frame of the xenstore ring.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`: event channel of the xenstore ring.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_PAE_ENABLED`.
pub const HVM_PARAM_PAE_ENABLED: u32 = 4;
/// `HVM_PARAM_IOREQ_PFN`.
pub const HVM_PARAM_IOREQ_PFN: u32 = 5;
/// `HVM_PARAM_BUFIOREQ_PFN`.
pub const HVM_PARAM_BUFIOREQ_PFN: u32 = 6;
/// `HVM_PARAM_VIRIDIAN`.
pub const HVM_PARAM_VIRIDIAN: u32 = 9;
/// `HVM_PARAM_TIMER_MODE`.
pub const HVM_PARAM_TIMER_MODE: u32 = 10;
/// `HVM_PARAM_HPET_ENABLED`.
pub const HVM_PARAM_HPET_ENABLED: u32 = 11;
/// `HVM_PARAM_IDENT_PT`.
pub const HVM_PARAM_IDENT_PT: u32 = 12;
/// `HVM_PARAM_DM_DOMAIN`.
pub const HVM_PARAM_DM_DOMAIN: u32 = 13;
/// `HVM_PARAM_ACPI_S_STATE`.
pub const HVM_PARAM_ACPI_S_STATE: u32 = 14;
/// `HVM_PARAM_VM86_TSS`.
pub const HVM_PARAM_VM86_TSS: u32 = 15;
/// `HVM_PARAM_VPT_ALIGN`.
pub const HVM_PARAM_VPT_ALIGN: u32 = 16;
/// `HVM_PARAM_CONSOLE_PFN`: frame of the PV console ring.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`: event channel of the PV console ring.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// `HVM_PARAM_ACPI_IOPORTS_LOCATION`.
pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
/// `HVM_PARAM_MEMORY_EVENT_CR0`.
pub const HVM_PARAM_MEMORY_EVENT_CR0: u32 = 20;
/// `HVM_PARAM_MEMORY_EVENT_CR3`.
pub const HVM_PARAM_MEMORY_EVENT_CR3: u32 = 21;
/// `HVM_PARAM_MEMORY_EVENT_CR4`.
pub const HVM_PARAM_MEMORY_EVENT_CR4: u32 = 22;
/// `HVM_PARAM_MEMORY_EVENT_INT3`.
pub const HVM_PARAM_MEMORY_EVENT_INT3: u32 = 23;
/// `HVM_PARAM_NESTEDHVM`.
pub const HVM_PARAM_NESTEDHVM: u32 = 24;
/// `HVM_PARAM_MEMORY_EVENT_SINGLE_STEP`.
pub const HVM_PARAM_MEMORY_EVENT_SINGLE_STEP: u32 = 25;
/// `HVM_PARAM_BUFIOREQ_EVTCHN`.
pub const HVM_PARAM_BUFIOREQ_EVTCHN: u32 = 26;
/// `HVM_PARAM_PAGING_RING_PFN`.
pub const HVM_PARAM_PAGING_RING_PFN: u32 = 27;
/// `HVM_PARAM_MONITOR_RING_PFN`.
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
/// `HVM_PARAM_SHARING_RING_PFN`.
pub const HVM_PARAM_SHARING_RING_PFN: u32 = 29;
/// `HVM_PARAM_MEMORY_EVENT_MSR`.
pub const HVM_PARAM_MEMORY_EVENT_MSR: u32 = 30;
/// `HVM_PARAM_TRIPLE_FAULT_REASON`.
pub const HVM_PARAM_TRIPLE_FAULT_REASON: u32 = 31;
/// `HVM_PARAM_IOREQ_SERVER_PFN`.
pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
/// `HVM_PARAM_NR_IOREQ_SERVER_PAGES`.
pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
/// `HVM_PARAM_VM_GENERATION_ID_ADDR`.
pub const HVM_PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
/// `HVM_PARAM_ALTP2M`.
pub const HVM_PARAM_ALTP2M: u32 = 35;
/// `HVM_PARAM_X87_FIP_WIDTH`.
pub const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
/// `HVM_PARAM_VM86_TSS_SIZED`.
pub const HVM_PARAM_VM86_TSS_SIZED: u32 = 37;
/// `HVM_PARAM_MCA_CAP`.
pub const HVM_PARAM_MCA_CAP: u32 = 38;
/// `HVM_NR_PARAMS`: parameter indices are below this.
pub const HVM_NR_PARAMS: u32 = 39;

/// `HVM_PARAM_CALLBACK_IRQ_TYPE_MASK`: the delivery type is `(value & mask) >> 56`.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
/// Shift of the delivery type in `HVM_PARAM_CALLBACK_IRQ`.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT: u32 = 56;
/// `HVM_PARAM_CALLBACK_TYPE_GSI`: value bits 55:0 are a GSI (0 disables delivery).
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u8 = 0;
/// `HVM_PARAM_CALLBACK_TYPE_PCI_INTX`: value bits encode a PCI INTx line.
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u8 = 1;
/// `HVM_PARAM_CALLBACK_TYPE_VECTOR` (x86): value bits 7:0 are the vector to inject.
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u8 = 2;

/// A decoded `HVM_PARAM_CALLBACK_IRQ` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackVia {
    /// Value 0: no delivery.
    None,
    /// Type 0: a GSI (bits 55:0).
    Gsi(u64),
    /// Type 1: PCI INTx: segment (47:32), bus (31:16), devfn (15:8), pin (1:0).
    PciIntx {
        /// PCI segment.
        domain: u16,
        /// PCI bus.
        bus: u8,
        /// PCI device/function.
        devfn: u8,
        /// INTx pin (0 = INTA).
        pin: u8,
    },
    /// Type 2: an interrupt vector (bits 7:0).
    Vector(u8),
    /// Another type (unsupported on x86).
    Other {
        /// The type byte.
        ty: u8,
        /// Bits 55:0.
        value: u64,
    },
}

impl CallbackVia {
    /// Decodes a `HVM_PARAM_CALLBACK_IRQ` value.
    pub const fn decode(v: u64) -> CallbackVia {
        if v == 0 {
            return CallbackVia::None;
        }
        let ty = (v >> HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT) as u8;
        let low = v & !HVM_PARAM_CALLBACK_IRQ_TYPE_MASK;
        match ty {
            HVM_PARAM_CALLBACK_TYPE_GSI => CallbackVia::Gsi(low),
            HVM_PARAM_CALLBACK_TYPE_PCI_INTX => CallbackVia::PciIntx {
                domain: (low >> 32) as u16,
                bus: (low >> 16) as u8,
                devfn: (low >> 8) as u8,
                pin: (low & 3) as u8,
            },
            HVM_PARAM_CALLBACK_TYPE_VECTOR => CallbackVia::Vector(low as u8),
            _ => CallbackVia::Other { ty, value: low },
        }
    }
}

/// `struct xen_hvm_param` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenHvmParam {
    /// In: the domain (usually `DOMID_SELF`).
    pub domid: DomId,
    /// Padding (C `pad`).
    pub pad: u16,
    /// In: `HVM_PARAM_*`.
    pub index: u32,
    /// In (set) / out (get): the value.
    pub value: u64,
}
assert_size!(XenHvmParam, 16);

/// `struct xen_hvm_pagetable_dying` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenHvmPagetableDying {
    /// The domain.
    pub domid: DomId,
    /// Padding (C `pad[3]`).
    pub pad: [u16; 3],
    /// Guest-physical address of the top-level page table being torn down.
    pub gpa: u64,
}
assert_size!(XenHvmPagetableDying, 16);

/// `struct xen_hvm_get_time` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenHvmGetTime {
    /// Out: current system time in ns.
    pub now: u64,
}
assert_size!(XenHvmGetTime, 8);

/// `struct xen_hvm_evtchn_upcall_vector` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenHvmEvtchnUpcallVector {
    /// The vCPU.
    pub vcpu: u32,
    /// The LAPIC vector for its upcalls.
    pub vector: u8,
    /// Implicit C padding.
    pub _pad: [u8; 3],
}
assert_size!(XenHvmEvtchnUpcallVector, 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_via() {
        assert_eq!(CallbackVia::decode(0), CallbackVia::None);
        assert_eq!(
            CallbackVia::decode((2 << 56) | 0xF3),
            CallbackVia::Vector(0xF3)
        );
        assert_eq!(CallbackVia::decode(28), CallbackVia::Gsi(28));
        assert_eq!(
            CallbackVia::decode((1 << 56) | (0x0001 << 16) | (0x18 << 8) | 1),
            CallbackVia::PciIntx {
                domain: 0,
                bus: 1,
                devfn: 0x18,
                pin: 1
            }
        );
        assert_eq!(
            CallbackVia::decode(7 << 56 | 5),
            CallbackVia::Other { ty: 7, value: 5 }
        );
    }
}
