//! `__HYPERVISOR_vcpu_op` sub-ops and structures (`vcpu.h`). The vCPU id is the second
//! argument (RSI), the structure pointer the third (RDX).

use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `VCPUOP_initialise` (PV / PVH AP bring-up).
pub const VCPUOP_INITIALISE: u32 = 0;
/// `VCPUOP_up`.
pub const VCPUOP_UP: u32 = 1;
/// `VCPUOP_down`.
pub const VCPUOP_DOWN: u32 = 2;
/// `VCPUOP_is_up`.
pub const VCPUOP_IS_UP: u32 = 3;
/// `VCPUOP_get_runstate_info`: fills a [`VcpuRunstateInfo`].
pub const VCPUOP_GET_RUNSTATE_INFO: u32 = 4;
/// `VCPUOP_register_runstate_memory_area`: [`VcpuRegisterRunstateMemoryArea`] (by GVA).
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u32 = 5;
/// `VCPUOP_set_periodic_timer`: [`VcpuSetPeriodicTimer`].
pub const VCPUOP_SET_PERIODIC_TIMER: u32 = 6;
/// `VCPUOP_stop_periodic_timer`: no argument.
pub const VCPUOP_STOP_PERIODIC_TIMER: u32 = 7;
/// `VCPUOP_set_singleshot_timer`: [`VcpuSetSingleshotTimer`].
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
/// `VCPUOP_stop_singleshot_timer`: no argument.
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;
/// `VCPUOP_register_vcpu_info`: [`VcpuRegisterVcpuInfo`] (by GFN + offset).
pub const VCPUOP_REGISTER_VCPU_INFO: u32 = 10;
/// `VCPUOP_send_nmi`.
pub const VCPUOP_SEND_NMI: u32 = 11;
/// `VCPUOP_get_physid`.
pub const VCPUOP_GET_PHYSID: u32 = 12;
/// `VCPUOP_register_vcpu_time_memory_area`: [`VcpuRegisterTimeMemoryArea`] (by GVA).
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u32 = 13;
/// `VCPUOP_register_runstate_phys_area`: like 5 but by guest-physical address.
pub const VCPUOP_REGISTER_RUNSTATE_PHYS_AREA: u32 = 14;
/// `VCPUOP_register_vcpu_time_phys_area`: like 13 but by guest-physical address.
pub const VCPUOP_REGISTER_VCPU_TIME_PHYS_AREA: u32 = 15;

/// `RUNSTATE_running`.
pub const RUNSTATE_RUNNING: i32 = 0;
/// `RUNSTATE_runnable`.
pub const RUNSTATE_RUNNABLE: i32 = 1;
/// `RUNSTATE_blocked`.
pub const RUNSTATE_BLOCKED: i32 = 2;
/// `RUNSTATE_offline`.
pub const RUNSTATE_OFFLINE: i32 = 3;
/// `XEN_RUNSTATE_UPDATE`: bit 63 of `state_entry_time` while an update is in progress.
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// `VCPU_SSHOTTMR_future`: fail with `-ETIME` if the timeout is already in the past.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// `struct vcpu_runstate_info` (48 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRunstateInfo {
    /// `RUNSTATE_*`.
    pub state: i32,
    /// Implicit C padding.
    pub _pad: u32,
    /// System time (ns) when `state` was entered; bit 63 is [`XEN_RUNSTATE_UPDATE`].
    pub state_entry_time: u64,
    /// Nanoseconds spent in each `RUNSTATE_*`.
    pub time: [u64; 4],
}
assert_size!(VcpuRunstateInfo, 48);
assert_offset!(VcpuRunstateInfo, time, 16);

/// `struct vcpu_register_runstate_memory_area` (8 bytes): a guest handle (GVA) of a
/// [`VcpuRunstateInfo`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRegisterRunstateMemoryArea {
    /// The address (C: union `addr.h` / `addr.v` / `addr.p`).
    pub addr: u64,
}
assert_size!(VcpuRegisterRunstateMemoryArea, 8);

/// `struct vcpu_register_time_memory_area` (8 bytes): a guest handle (GVA) of a
/// [`VcpuTimeInfo`](crate::xen::VcpuTimeInfo).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRegisterTimeMemoryArea {
    /// The address (C: union `addr.h` / `addr.v` / `addr.p`).
    pub addr: u64,
}
assert_size!(VcpuRegisterTimeMemoryArea, 8);

/// `struct vcpu_set_periodic_timer` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuSetPeriodicTimer {
    /// Period in nanoseconds.
    pub period_ns: u64,
}
assert_size!(VcpuSetPeriodicTimer, 8);

/// `struct vcpu_set_singleshot_timer` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuSetSingleshotTimer {
    /// Absolute system time (pvclock ns) of the deadline.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
    /// Implicit C padding.
    pub _pad: u32,
}
assert_size!(VcpuSetSingleshotTimer, 16);

/// `struct compat_vcpu_set_singleshot_timer` (12 bytes: a 32-bit guest aligns `uint64_t` to 4).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct CompatVcpuSetSingleshotTimer {
    /// Absolute system time (pvclock ns) of the deadline.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
}
assert_size!(CompatVcpuSetSingleshotTimer, 12);

impl From<CompatVcpuSetSingleshotTimer> for VcpuSetSingleshotTimer {
    fn from(c: CompatVcpuSetSingleshotTimer) -> Self {
        VcpuSetSingleshotTimer {
            timeout_abs_ns: c.timeout_abs_ns,
            flags: c.flags,
            _pad: 0,
        }
    }
}

/// `struct vcpu_register_vcpu_info` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRegisterVcpuInfo {
    /// Frame holding the new `vcpu_info` (a GFN for HVM/PVH).
    pub mfn: u64,
    /// Offset of the `vcpu_info` within that frame.
    pub offset: u32,
    /// Unused.
    pub rsvd: u32,
}
assert_size!(VcpuRegisterVcpuInfo, 16);

/// `struct vcpu_get_physid` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuGetPhysid {
    /// Physical CPU id (x86: APIC ids).
    pub phys_id: u64,
}
assert_size!(VcpuGetPhysid, 8);
