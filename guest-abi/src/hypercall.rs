//! Hypercall numbers (`__HYPERVISOR_*` in `xen.h`), the value a guest puts in RAX before
//! `VMCALL`.
//!
//! Arguments travel in RDI, RSI, RDX, R10 and R8; the result comes back in RAX (see
//! [`Errno::to_return`](crate::Errno::to_return) for failures).

/// `__HYPERVISOR_set_trap_table` (PV only).
pub const SET_TRAP_TABLE: u64 = 0;
/// `__HYPERVISOR_mmu_update` (PV only).
pub const MMU_UPDATE: u64 = 1;
/// `__HYPERVISOR_set_gdt` (PV only).
pub const SET_GDT: u64 = 2;
/// `__HYPERVISOR_stack_switch` (PV only).
pub const STACK_SWITCH: u64 = 3;
/// `__HYPERVISOR_set_callbacks` (PV only).
pub const SET_CALLBACKS: u64 = 4;
/// `__HYPERVISOR_fpu_taskswitch` (PV only).
pub const FPU_TASKSWITCH: u64 = 5;
/// `__HYPERVISOR_sched_op_compat` (obsolete since 3.0.1, replaced by [`SCHED_OP`]).
pub const SCHED_OP_COMPAT: u64 = 6;
/// `__HYPERVISOR_platform_op` (dom0 only).
pub const PLATFORM_OP: u64 = 7;
/// `__HYPERVISOR_set_debugreg`.
pub const SET_DEBUGREG: u64 = 8;
/// `__HYPERVISOR_get_debugreg`.
pub const GET_DEBUGREG: u64 = 9;
/// `__HYPERVISOR_update_descriptor` (PV only).
pub const UPDATE_DESCRIPTOR: u64 = 10;
/// `__HYPERVISOR_memory_op`: sub-ops `XENMEM_*` in [`crate::memory`].
pub const MEMORY_OP: u64 = 12;
/// `__HYPERVISOR_multicall`.
pub const MULTICALL: u64 = 13;
/// `__HYPERVISOR_update_va_mapping` (PV only).
pub const UPDATE_VA_MAPPING: u64 = 14;
/// `__HYPERVISOR_set_timer_op`: one-shot timer, argument = absolute system time in ns.
pub const SET_TIMER_OP: u64 = 15;
/// `__HYPERVISOR_event_channel_op_compat` (obsolete since 3.2.2).
pub const EVENT_CHANNEL_OP_COMPAT: u64 = 16;
/// `__HYPERVISOR_xen_version`: sub-ops `XENVER_*` in [`crate::version`].
pub const XEN_VERSION: u64 = 17;
/// `__HYPERVISOR_console_io`: sub-ops `CONSOLEIO_*` in [`crate::console`].
pub const CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_physdev_op_compat` (obsolete since 3.2.2).
pub const PHYSDEV_OP_COMPAT: u64 = 19;
/// `__HYPERVISOR_grant_table_op`: sub-ops `GNTTABOP_*` in [`crate::grant_table`].
pub const GRANT_TABLE_OP: u64 = 20;
/// `__HYPERVISOR_vm_assist`: `VMASST_*` in [`crate::xen`].
pub const VM_ASSIST: u64 = 21;
/// `__HYPERVISOR_update_va_mapping_otherdomain` (PV only).
pub const UPDATE_VA_MAPPING_OTHERDOMAIN: u64 = 22;
/// `__HYPERVISOR_iret` (x86 PV only; its hypercall-page slot holds `ud2` for HVM).
pub const IRET: u64 = 23;
/// `__HYPERVISOR_vcpu_op`: sub-ops `VCPUOP_*` in [`crate::vcpu`].
pub const VCPU_OP: u64 = 24;
/// `__HYPERVISOR_set_segment_base` (x86-64 PV only).
pub const SET_SEGMENT_BASE: u64 = 25;
/// `__HYPERVISOR_mmuext_op` (PV only).
pub const MMUEXT_OP: u64 = 26;
/// `__HYPERVISOR_xsm_op`.
pub const XSM_OP: u64 = 27;
/// `__HYPERVISOR_nmi_op`.
pub const NMI_OP: u64 = 28;
/// `__HYPERVISOR_sched_op`: sub-ops `SCHEDOP_*` in [`crate::sched`].
pub const SCHED_OP: u64 = 29;
/// `__HYPERVISOR_callback_op`.
pub const CALLBACK_OP: u64 = 30;
/// `__HYPERVISOR_xenoprof_op` (dropped in Xen 4.22).
pub const XENOPROF_OP: u64 = 31;
/// `__HYPERVISOR_event_channel_op`: sub-ops `EVTCHNOP_*` in [`crate::event_channel`].
pub const EVENT_CHANNEL_OP: u64 = 32;
/// `__HYPERVISOR_physdev_op`.
pub const PHYSDEV_OP: u64 = 33;
/// `__HYPERVISOR_hvm_op`: sub-ops `HVMOP_*` in [`crate::hvm`].
pub const HVM_OP: u64 = 34;
/// `__HYPERVISOR_sysctl` (toolstack only).
pub const SYSCTL: u64 = 35;
/// `__HYPERVISOR_domctl` (toolstack only).
pub const DOMCTL: u64 = 36;
/// `__HYPERVISOR_kexec_op`.
pub const KEXEC_OP: u64 = 37;
/// `__HYPERVISOR_tmem_op` (removed).
pub const TMEM_OP: u64 = 38;
/// `__HYPERVISOR_argo_op`.
pub const ARGO_OP: u64 = 39;
/// `__HYPERVISOR_xenpmu_op`.
pub const XENPMU_OP: u64 = 40;
/// `__HYPERVISOR_dm_op` (device model).
pub const DM_OP: u64 = 41;
/// `__HYPERVISOR_hypfs_op`.
pub const HYPFS_OP: u64 = 42;
/// `__HYPERVISOR_arch_0`: the first of 8 architecture-specific numbers (48..=55).
pub const ARCH_0: u64 = 48;
/// `__HYPERVISOR_arch_1` (x86: `mca`).
pub const ARCH_1: u64 = 49;
/// `__HYPERVISOR_arch_2`.
pub const ARCH_2: u64 = 50;
/// `__HYPERVISOR_arch_3`.
pub const ARCH_3: u64 = 51;
/// `__HYPERVISOR_arch_4`.
pub const ARCH_4: u64 = 52;
/// `__HYPERVISOR_arch_5`.
pub const ARCH_5: u64 = 53;
/// `__HYPERVISOR_arch_6`.
pub const ARCH_6: u64 = 54;
/// `__HYPERVISOR_arch_7`.
pub const ARCH_7: u64 = 55;

/// Number of hypercall-page slots: each hypercall `n` has a 32-byte stub at offset `n * 32`.
pub const HYPERCALL_PAGE_SLOTS: usize = 128;
/// Size of one hypercall-page stub in bytes.
pub const HYPERCALL_STUB_SIZE: usize = 32;

/// Every hypercall number with its Xen name (without the `__HYPERVISOR_` prefix).
pub const ALL: &[(u64, &str)] = &[
    (SET_TRAP_TABLE, "set_trap_table"),
    (MMU_UPDATE, "mmu_update"),
    (SET_GDT, "set_gdt"),
    (STACK_SWITCH, "stack_switch"),
    (SET_CALLBACKS, "set_callbacks"),
    (FPU_TASKSWITCH, "fpu_taskswitch"),
    (SCHED_OP_COMPAT, "sched_op_compat"),
    (PLATFORM_OP, "platform_op"),
    (SET_DEBUGREG, "set_debugreg"),
    (GET_DEBUGREG, "get_debugreg"),
    (UPDATE_DESCRIPTOR, "update_descriptor"),
    (MEMORY_OP, "memory_op"),
    (MULTICALL, "multicall"),
    (UPDATE_VA_MAPPING, "update_va_mapping"),
    (SET_TIMER_OP, "set_timer_op"),
    (EVENT_CHANNEL_OP_COMPAT, "event_channel_op_compat"),
    (XEN_VERSION, "xen_version"),
    (CONSOLE_IO, "console_io"),
    (PHYSDEV_OP_COMPAT, "physdev_op_compat"),
    (GRANT_TABLE_OP, "grant_table_op"),
    (VM_ASSIST, "vm_assist"),
    (
        UPDATE_VA_MAPPING_OTHERDOMAIN,
        "update_va_mapping_otherdomain",
    ),
    (IRET, "iret"),
    (VCPU_OP, "vcpu_op"),
    (SET_SEGMENT_BASE, "set_segment_base"),
    (MMUEXT_OP, "mmuext_op"),
    (XSM_OP, "xsm_op"),
    (NMI_OP, "nmi_op"),
    (SCHED_OP, "sched_op"),
    (CALLBACK_OP, "callback_op"),
    (XENOPROF_OP, "xenoprof_op"),
    (EVENT_CHANNEL_OP, "event_channel_op"),
    (PHYSDEV_OP, "physdev_op"),
    (HVM_OP, "hvm_op"),
    (SYSCTL, "sysctl"),
    (DOMCTL, "domctl"),
    (KEXEC_OP, "kexec_op"),
    (TMEM_OP, "tmem_op"),
    (ARGO_OP, "argo_op"),
    (XENPMU_OP, "xenpmu_op"),
    (DM_OP, "dm_op"),
    (HYPFS_OP, "hypfs_op"),
    (ARCH_0, "arch_0"),
    (ARCH_1, "arch_1"),
    (ARCH_2, "arch_2"),
    (ARCH_3, "arch_3"),
    (ARCH_4, "arch_4"),
    (ARCH_5, "arch_5"),
    (ARCH_6, "arch_6"),
    (ARCH_7, "arch_7"),
];

/// The Xen name of hypercall `nr` (e.g. `"memory_op"` for 12), for logging.
pub fn name(nr: u64) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == nr).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(MEMORY_OP), Some("memory_op"));
        assert_eq!(name(HVM_OP), Some("hvm_op"));
        assert_eq!(name(11), None);
        assert_eq!(name(u64::MAX), None);
    }

    #[test]
    fn numbers_unique_and_fit_page() {
        for (i, (a, _)) in ALL.iter().enumerate() {
            assert!((*a as usize) < HYPERCALL_PAGE_SLOTS);
            for (b, _) in &ALL[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(HYPERCALL_PAGE_SLOTS * HYPERCALL_STUB_SIZE, 4096);
    }
}
