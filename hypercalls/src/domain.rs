//! A domain as the hypercall handlers see it.

use crate::console::ConsoleBuffer;
use crate::evtchn::{EvtchnTable, PortState, BACKEND_DOMID};
use crate::evtchn_fifo::FifoState;
use crate::gnttab::GrantTable;
use crate::hvm::{CONSOLE_GFN, STORE_GFN};
use crate::time::TimeBase;
use crate::vcpu::Vcpu;
use crate::{Errno, Host};
use alloc::string::String;
use alloc::vec::Vec;
use guest_abi::hvm::{self as hp, CallbackVia};
use guest_abi::xen::{SharedInfo, XEN_LEGACY_MAX_VCPUS};
use p2m::{Gfn, Mapping, Mfn, P2m};
use zerocopy::IntoBytes;

const WC_OFFSET: u64 = core::mem::offset_of!(SharedInfo, wc_version) as u64;

/// Why a domain stopped running (Xen's `SHUTDOWN_*` reasons, plus crashes
/// detected by the hypervisor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// SHUTDOWN_poweroff.
    Poweroff,
    /// SHUTDOWN_reboot.
    Reboot,
    /// SHUTDOWN_suspend.
    Suspend,
    /// SHUTDOWN_crash (requested by the guest).
    Crash,
    /// SHUTDOWN_watchdog.
    Watchdog,
    /// SHUTDOWN_soft_reset.
    SoftReset,
    /// A reason code Xen does not define.
    Other(u32),
}

impl ShutdownReason {
    /// Decodes a `sched_shutdown.reason`.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Self::Poweroff,
            1 => Self::Reboot,
            2 => Self::Suspend,
            3 => Self::Crash,
            4 => Self::Watchdog,
            5 => Self::SoftReset,
            n => Self::Other(n),
        }
    }

    /// The name Xen's toolstack uses for the reason.
    pub fn name(self) -> &'static str {
        match self {
            Self::Poweroff => "poweroff",
            Self::Reboot => "reboot",
            Self::Suspend => "suspend",
            Self::Crash => "crash",
            Self::Watchdog => "watchdog",
            Self::SoftReset => "soft_reset",
            Self::Other(_) => "unknown",
        }
    }
}

/// Per-domain state shared by the hypercall handlers.
pub struct Domain {
    /// The domain id (1, 2, ...).
    pub domid: u16,
    /// The name from the domain configuration.
    pub name: String,
    /// The guest-physical map; its EPT is the domain's only view of memory.
    pub p2m: P2m,
    /// Host frame of the shared_info page (hypervisor-owned, special).
    pub shared_info_mfn: Mfn,
    /// Where the guest mapped shared_info, if it did.
    pub shared_info_gfn: Option<Gfn>,
    /// Set when the guest asked to shut down (the first request wins).
    pub shutdown: Option<ShutdownReason>,
    /// `SCHEDOP_shutdown_code`: the reason a later shutdown reports instead of its own.
    pub shutdown_code: Option<ShutdownReason>,
    /// Console output not yet terminated by a newline.
    pub console: ConsoleBuffer,
    /// Number of guest RAM pages.
    pub ram_pages: u64,
    /// Set by a hypercall that changed the EPT: the kernel must INVEPT.
    pub ept_dirty: bool,
    /// Per-vCPU Xen state, indexed by vCPU id.
    pub vcpus: Vec<Vcpu>,
    /// The domain's system-time scale (pvclock); system time 0 is its creation.
    pub time: TimeBase,
    /// The wall clock at system time 0 (seconds since the Unix epoch, ns).
    pub boot_wallclock: (u64, u32),
    /// Event channels.
    pub evtchn: EvtchnTable,
    /// The FIFO event-channel state once the guest switched to the FIFO ABI
    /// (`EVTCHNOP_init_control`); `None` on the 2-level ABI (at creation and after
    /// `EVTCHNOP_reset`).
    pub evtchn_fifo: Option<FifoState>,
    /// HVM params (`HVM_PARAM_*`).
    pub params: [u64; hp::HVM_NR_PARAMS as usize],
    /// `vm_assist` types enabled (bit = `VMASST_TYPE_*`).
    pub vm_assist: u64,
    /// The grant table (v1).
    pub grant: GrantTable,
    /// Host frame of the console ring (special page at [`CONSOLE_GFN`]).
    pub console_mfn: Mfn,
    /// Host frame of the xenstore ring (special page at [`STORE_GFN`]).
    pub store_mfn: Mfn,
    /// The console's event channel (`None` once the guest closed it).
    pub console_port: Option<u32>,
    /// The xenstore event channel (`None` once the guest closed it).
    pub store_port: Option<u32>,
    /// The guest's e820 map for `XENMEM_memory_map` as (address, size, type); empty
    /// means the call is `-ENOSYS` (the guest has its map from boot_params or start_info).
    pub e820: Vec<(u64, u64, u32)>,
    /// Ports signalled towards domain 0, one bit per port (grows with the highest
    /// port kicked: FIFO ports go up to 131071).
    pub(crate) backend_kicks: Vec<u64>,
}

impl Domain {
    /// Creates the domain's hypervisor-side state: allocates shared_info (wall
    /// clock and each vCPU's pvclock stamped in), the console and xenstore rings
    /// (special pages at [`CONSOLE_GFN`] and [`STORE_GFN`]) with their event
    /// channels (bound to domain 0, as xenconsoled and xenstored bind them), and
    /// sets the HVM params that name them. System time 0 is now.
    ///
    /// `nr_vcpus` must be 1..=32 (every vCPU has a shared_info slot); `-EINVAL`
    /// otherwise, `-ENOMEM` when pages or EPT tables run out.
    pub fn new(
        domid: u16,
        name: String,
        p2m: P2m,
        ram_pages: u64,
        nr_vcpus: u32,
        host: &mut impl Host,
    ) -> Result<Self, Errno> {
        if nr_vcpus == 0 || nr_vcpus as usize > XEN_LEGACY_MAX_VCPUS {
            return Err(Errno::EINVAL);
        }
        let mut pages = [0u64; 3];
        for i in 0..pages.len() {
            match host.alloc_page() {
                Some(p) => pages[i] = p,
                None => {
                    for &p in &pages[..i] {
                        host.free_page(p);
                    }
                    return Err(Errno::ENOMEM);
                }
            }
        }
        let [shared, console, store] = pages;
        let time = TimeBase::new(host.tsc(), host.tsc_khz());
        let boot_wallclock = host.wallclock();
        let mut dom = Domain {
            domid,
            name,
            p2m,
            shared_info_mfn: shared / 4096,
            shared_info_gfn: None,
            shutdown: None,
            shutdown_code: None,
            console: ConsoleBuffer::default(),
            ram_pages,
            ept_dirty: false,
            vcpus: (0..nr_vcpus).map(Vcpu::new).collect(),
            time,
            boot_wallclock,
            evtchn: EvtchnTable::default(),
            evtchn_fifo: None,
            params: [0; hp::HVM_NR_PARAMS as usize],
            vm_assist: 0,
            grant: GrantTable::default(),
            console_mfn: console / 4096,
            store_mfn: store / 4096,
            console_port: None,
            store_port: None,
            e820: Vec::new(),
            backend_kicks: Vec::new(),
        };
        dom.stamp_time(host);
        match dom.attach_backends(host) {
            Ok(()) => Ok(dom),
            Err(e) => {
                dom.destroy(host);
                Err(e)
            }
        }
    }

    /// Maps the console and xenstore rings, binds their ports to domain 0 and
    /// publishes both in the HVM params.
    fn attach_backends(&mut self, host: &mut impl Host) -> Result<(), Errno> {
        self.map_special(host, CONSOLE_GFN, self.console_mfn)?;
        self.map_special(host, STORE_GFN, self.store_mfn)?;
        let console_port = self.alloc_backend_port()?;
        let store_port = self.alloc_backend_port()?;
        self.console_port = Some(console_port);
        self.store_port = Some(store_port);
        self.params[hp::HVM_PARAM_CONSOLE_PFN as usize] = CONSOLE_GFN;
        self.params[hp::HVM_PARAM_CONSOLE_EVTCHN as usize] = console_port as u64;
        self.params[hp::HVM_PARAM_STORE_PFN as usize] = STORE_GFN;
        self.params[hp::HVM_PARAM_STORE_EVTCHN as usize] = store_port as u64;
        Ok(())
    }

    /// Allocates a port bound to a hypervisor backend (its backend-side port
    /// number is the same number).
    pub(crate) fn alloc_backend_port(&mut self) -> Result<u32, Errno> {
        let placeholder = PortState::Interdomain {
            remote_dom: BACKEND_DOMID,
            remote_port: 0,
        };
        let port = self.evtchn.alloc(placeholder, 0)?;
        self.evtchn.set_state(
            port,
            PortState::Interdomain {
                remote_dom: BACKEND_DOMID,
                remote_port: port,
            },
        );
        Ok(port)
    }

    /// Writes the wall clock (boot epoch) and every vCPU's pvclock into shared_info.
    fn stamp_time(&self, host: &mut impl Host) {
        let si = self.shared_info_mfn * 4096;
        let (sec, nsec) = self.boot_wallclock;
        let wc: [u32; 4] = [2, sec as u32, nsec, (sec >> 32) as u32];
        host.write_phys(si + WC_OFFSET, wc.as_bytes());
        let pv = self.time.pvclock();
        for v in 0..self.vcpus.len() as u64 {
            host.write_phys(si + v * 64 + 32, pv.as_bytes());
        }
    }

    /// The domain's system time now (ns since its creation), as the guest's
    /// pvclock reads it.
    pub fn system_time_ns(&self, host: &impl Host) -> u64 {
        self.time.ns(host.tsc())
    }

    /// How upcalls are delivered (`HVM_PARAM_CALLBACK_IRQ`).
    pub fn callback_via(&self) -> CallbackVia {
        CallbackVia::decode(self.params[hp::HVM_PARAM_CALLBACK_IRQ as usize])
    }

    /// The vector to inject while an upcall is pending, if the guest chose
    /// vector delivery (`HVM_PARAM_CALLBACK_IRQ = (2 << 56) | vector`). Other
    /// delivery types are stored but give `None`, as do vectors below 0x10
    /// (exceptions, never injected as interrupts).
    pub fn callback_vector(&self) -> Option<u8> {
        match self.callback_via() {
            CallbackVia::Vector(v) if v >= 0x10 => Some(v),
            _ => None,
        }
    }

    /// Whether the guest enabled `vm_assist` type `ty`.
    pub fn vm_assist_enabled(&self, ty: u32) -> bool {
        ty < 64 && self.vm_assist & (1 << ty) != 0
    }

    /// Maps a hypervisor-owned special page at `gfn` (WB, ignore-PAT), replacing
    /// whatever was there; a hypervisor page already there is unhooked and forgotten.
    pub fn map_special(&mut self, host: &mut impl Host, gfn: Gfn, mfn: Mfn) -> Result<(), Errno> {
        self.p2m
            .set_entry(host, gfn, mfn, 0, Some(Mapping::special()))
            .map_err(|_| Errno::ENOMEM)?;
        self.ept_dirty = true;
        self.forget_gfn(gfn, mfn);
        Ok(())
    }

    /// Removes the mapping at `gfn` (leaves a hole, as Xen does).
    pub fn unmap(&mut self, host: &mut impl Host, gfn: Gfn) -> Result<(), Errno> {
        self.p2m
            .set_entry(host, gfn, 0, 0, None)
            .map_err(|_| Errno::ENOMEM)?;
        self.ept_dirty = true;
        self.forget_gfn(gfn, u64::MAX);
        Ok(())
    }

    /// After `gfn` was remapped to `mfn`: drops the record of any other hypervisor
    /// page that was mapped there.
    fn forget_gfn(&mut self, gfn: Gfn, mfn: Mfn) {
        if self.shared_info_gfn == Some(gfn) && self.shared_info_mfn != mfn {
            self.shared_info_gfn = None;
        }
        self.grant.forget_gfn(gfn, mfn);
    }

    /// Frees what [`Domain::new`] and the grant table allocated and the EPT
    /// tables; the kernel frees the guest RAM it allocated itself.
    pub fn destroy(self, host: &mut impl Host) {
        self.p2m.destroy(host);
        host.free_page(self.shared_info_mfn * 4096);
        host.free_page(self.console_mfn * 4096);
        host.free_page(self.store_mfn * 4096);
        for mfn in self.grant.frame_mfns() {
            host.free_page(mfn * 4096);
        }
    }
}
