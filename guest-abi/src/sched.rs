//! `__HYPERVISOR_sched_op` sub-ops and structures (`sched.h`).

use crate::assert_size;
use crate::xen::DomId;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `SCHEDOP_yield`: give up the CPU; no argument.
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_block`: block until an event is pending; no argument.
pub const SCHEDOP_BLOCK: u32 = 1;
/// `SCHEDOP_shutdown`: [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// `SCHEDOP_poll`: [`SchedPoll`].
pub const SCHEDOP_POLL: u32 = 3;
/// `SCHEDOP_remote_shutdown`: [`SchedRemoteShutdown`].
pub const SCHEDOP_REMOTE_SHUTDOWN: u32 = 4;
/// `SCHEDOP_shutdown_code`: [`SchedShutdown`], records the code without shutting down.
pub const SCHEDOP_SHUTDOWN_CODE: u32 = 5;
/// `SCHEDOP_watchdog`: [`SchedWatchdog`].
pub const SCHEDOP_WATCHDOG: u32 = 6;
/// `SCHEDOP_pin_override`: [`SchedPinOverride`].
pub const SCHEDOP_PIN_OVERRIDE: u32 = 7;

/// `SHUTDOWN_poweroff`: exited normally.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`: restart.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_suspend`: save state and stop.
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// `SHUTDOWN_crash`: the guest crashed.
pub const SHUTDOWN_CRASH: u32 = 3;
/// `SHUTDOWN_watchdog`: the watchdog expired.
pub const SHUTDOWN_WATCHDOG: u32 = 4;
/// `SHUTDOWN_soft_reset`: reset the domain's state but keep its memory.
pub const SHUTDOWN_SOFT_RESET: u32 = 5;
/// `SHUTDOWN_MAX`: the highest valid reason.
pub const SHUTDOWN_MAX: u32 = 5;

/// The lower-case name of a shutdown reason (`"poweroff"`, `"reboot"`, `"suspend"`, `"crash"`,
/// `"watchdog"`, `"soft_reset"`), as the serial protocol prints it.
pub const fn shutdown_reason_name(reason: u32) -> Option<&'static str> {
    match reason {
        SHUTDOWN_POWEROFF => Some("poweroff"),
        SHUTDOWN_REBOOT => Some("reboot"),
        SHUTDOWN_SUSPEND => Some("suspend"),
        SHUTDOWN_CRASH => Some("crash"),
        SHUTDOWN_WATCHDOG => Some("watchdog"),
        SHUTDOWN_SOFT_RESET => Some("soft_reset"),
        _ => None,
    }
}

/// `struct sched_shutdown` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*`.
    pub reason: u32,
}
assert_size!(SchedShutdown, 4);

/// `struct sched_poll` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedPoll {
    /// Guest handle (GVA) of an array of `evtchn_port_t`.
    pub ports: u64,
    /// Number of ports in the array.
    pub nr_ports: u32,
    /// Implicit C padding.
    pub _pad: u32,
    /// Absolute system-time timeout in ns (0 = none).
    pub timeout: u64,
}
assert_size!(SchedPoll, 24);

/// `struct compat_sched_poll` (16 bytes): [`SchedPoll`] with a 32-bit handle.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CompatSchedPoll {
    /// Guest handle (32-bit linear address) of an array of `evtchn_port_t`.
    pub ports: u32,
    /// Number of ports in the array.
    pub nr_ports: u32,
    /// Absolute system-time timeout in ns (0 = none).
    pub timeout: u64,
}
assert_size!(CompatSchedPoll, 16);

impl From<CompatSchedPoll> for SchedPoll {
    fn from(c: CompatSchedPoll) -> Self {
        SchedPoll {
            ports: c.ports as u64,
            nr_ports: c.nr_ports,
            _pad: 0,
            timeout: c.timeout,
        }
    }
}

/// `struct sched_remote_shutdown` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedRemoteShutdown {
    /// The domain to shut down.
    pub domain_id: DomId,
    /// Implicit C padding.
    pub _pad: u16,
    /// `SHUTDOWN_*`.
    pub reason: u32,
}
assert_size!(SchedRemoteShutdown, 8);

/// `struct sched_watchdog` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedWatchdog {
    /// Watchdog id (0 allocates a new one).
    pub id: u32,
    /// Timeout in seconds (0 destroys the watchdog).
    pub timeout: u32,
}
assert_size!(SchedWatchdog, 8);

/// `struct sched_pin_override` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedPinOverride {
    /// Physical CPU to pin to, or -1 to undo.
    pub pcpu: i32,
}
assert_size!(SchedPinOverride, 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names() {
        assert_eq!(shutdown_reason_name(SHUTDOWN_POWEROFF), Some("poweroff"));
        assert_eq!(shutdown_reason_name(SHUTDOWN_CRASH), Some("crash"));
        assert_eq!(shutdown_reason_name(SHUTDOWN_MAX + 1), None);
    }
}
