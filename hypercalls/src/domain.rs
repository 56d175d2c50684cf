//! A domain as the hypercall handlers see it.

use crate::console::ConsoleBuffer;
use crate::evtchn::{EvtchnTable, PortState};
use crate::hvm::{TimeBase, XenVcpu, CONSOLE_GFN, STORE_GFN};
use crate::{Errno, Host};
use alloc::string::String;
use alloc::vec::Vec;
use guest_abi::hvm as hp;
use guest_abi::xen::SharedInfo;
use p2m::{Gfn, Mapping, Mfn, P2m, P2mType, DOMID_XEN};
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
    /// Set when the guest asked to shut down.
    pub shutdown: Option<ShutdownReason>,
    /// Console output not yet terminated by a newline.
    pub console: ConsoleBuffer,
    /// Number of guest RAM pages.
    pub ram_pages: u64,
    /// Set by a hypercall that changed the EPT: the kernel must INVEPT.
    pub ept_dirty: bool,
    /// Per-vCPU Xen state.
    pub vcpus: Vec<XenVcpu>,
    /// The domain's system-time scale (pvclock).
    pub time: TimeBase,
    /// Event channels.
    pub evtchn: EvtchnTable,
    /// HVM params (`HVM_PARAM_*`).
    pub params: [u64; hp::HVM_NR_PARAMS as usize],
    /// Ports the guest signalled whose other end is a hypervisor backend.
    pub backend_kicks: Vec<u32>,
    /// Host frame of the console ring.
    pub console_mfn: Mfn,
    /// Host frame of the xenstore ring.
    pub store_mfn: Mfn,
    /// The console's event channel.
    pub console_port: Option<u32>,
    /// The xenstore event channel.
    pub store_port: Option<u32>,
    /// Grant table frames: host frame and where the guest mapped it.
    pub grant_frames: Vec<(Mfn, Option<Gfn>)>,
}

impl Domain {
    /// Creates the domain's hypervisor-side state: allocates shared_info
    /// (wall clock and each vCPU's pvclock stamped in), the console and
    /// xenstore rings (mapped at [`CONSOLE_GFN`] and [`STORE_GFN`]) with their
    /// pre-allocated event channels, and the HVM params that name them.
    pub fn new(
        domid: u16,
        name: String,
        p2m: P2m,
        ram_pages: u64,
        nr_vcpus: u32,
        host: &mut impl Host,
    ) -> Result<Self, Errno> {
        if nr_vcpus == 0 || nr_vcpus > 32 {
            return Err(Errno::EINVAL);
        }
        let mut pages = [0u64; 3];
        for i in 0..3 {
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
        let [page, console, store] = pages;
        let (sec, nsec) = host.wallclock();
        let wc: [u32; 4] = [2, sec as u32, nsec, (sec >> 32) as u32];
        host.write_phys(page + WC_OFFSET, wc.as_bytes());
        let time = TimeBase::new(host.tsc(), host.tsc_khz());
        for v in 0..nr_vcpus as u64 {
            host.write_phys(page + v * 64 + 32, &time.pvclock());
        }
        let mut dom = Domain {
            domid,
            name,
            p2m,
            shared_info_mfn: page / 4096,
            shared_info_gfn: None,
            shutdown: None,
            console: ConsoleBuffer::default(),
            ram_pages,
            ept_dirty: false,
            vcpus: alloc::vec![XenVcpu::default(); nr_vcpus as usize],
            time,
            evtchn: EvtchnTable::default(),
            params: [0; hp::HVM_NR_PARAMS as usize],
            backend_kicks: Vec::new(),
            console_mfn: console / 4096,
            store_mfn: store / 4096,
            console_port: None,
            store_port: None,
            grant_frames: Vec::new(),
        };
        let console_port = dom.evtchn.alloc(PortState::Unbound { remote: 0 }, 0)?;
        let store_port = dom.evtchn.alloc(PortState::Unbound { remote: 0 }, 0)?;
        dom.console_port = Some(console_port);
        dom.store_port = Some(store_port);
        dom.params[hp::HVM_PARAM_CONSOLE_PFN as usize] = CONSOLE_GFN;
        dom.params[hp::HVM_PARAM_CONSOLE_EVTCHN as usize] = console_port as u64;
        dom.params[hp::HVM_PARAM_STORE_PFN as usize] = STORE_GFN;
        dom.params[hp::HVM_PARAM_STORE_EVTCHN as usize] = store_port as u64;
        let map = dom
            .map_special(host, CONSOLE_GFN, console / 4096)
            .and_then(|()| dom.map_special(host, STORE_GFN, store / 4096));
        if let Err(e) = map {
            dom.destroy(host);
            return Err(e);
        }
        Ok(dom)
    }

    /// Host-physical address of vCPU `vcpu`'s current vcpu_info.
    pub fn vcpu_info_hpa(&self, vcpu: u32) -> Option<u64> {
        let v = self.vcpus.get(vcpu as usize)?;
        Some(
            v.vcpu_info_hpa
                .unwrap_or(self.shared_info_mfn * 4096 + vcpu as u64 * 64),
        )
    }

    /// Whether `evtchn_upcall_pending` is set in vCPU `vcpu`'s vcpu_info.
    pub fn upcall_pending(&self, host: &impl Host, vcpu: u32) -> bool {
        let Some(hpa) = self.vcpu_info_hpa(vcpu) else {
            return false;
        };
        let mut b = [0u8];
        host.read_phys(hpa, &mut b);
        b[0] != 0
    }

    /// The callback vector, if the guest chose vector delivery (`HVM_PARAM_CALLBACK_IRQ`
    /// = `(2 << 56) | vector`).
    pub fn callback_vector(&self) -> Option<u8> {
        let v = self.params[hp::HVM_PARAM_CALLBACK_IRQ as usize];
        (v >> 56 == hp::HVM_PARAM_CALLBACK_TYPE_VECTOR as u64 && v & 0xFF >= 0x10)
            .then_some(v as u8)
    }

    /// Takes the ports the guest signalled towards the hypervisor's backends.
    pub fn take_backend_kicks(&mut self) -> Vec<u32> {
        core::mem::take(&mut self.backend_kicks)
    }

    /// Maps a hypervisor-owned special page at `gfn`, replacing whatever was there.
    pub fn map_special(&mut self, host: &mut impl Host, gfn: Gfn, mfn: Mfn) -> Result<(), Errno> {
        let mapping = Mapping {
            p2m_type: P2mType::RamRw,
            owner: DOMID_XEN,
            special: true,
        };
        self.p2m
            .set_entry(host, gfn, mfn, 0, Some(mapping))
            .map_err(|_| Errno::ENOMEM)?;
        self.ept_dirty = true;
        Ok(())
    }

    /// Removes the mapping at `gfn` (leaves a hole, as Xen does).
    pub fn unmap(&mut self, host: &mut impl Host, gfn: Gfn) -> Result<(), Errno> {
        self.p2m
            .set_entry(host, gfn, 0, 0, None)
            .map_err(|_| Errno::ENOMEM)?;
        self.ept_dirty = true;
        Ok(())
    }

    /// Frees what [`Domain::new`] allocated and the EPT tables; the kernel
    /// frees the guest RAM it allocated itself.
    pub fn destroy(self, host: &mut impl Host) {
        self.p2m.destroy(host);
        host.free_page(self.shared_info_mfn * 4096);
        host.free_page(self.console_mfn * 4096);
        host.free_page(self.store_mfn * 4096);
        for (mfn, _) in self.grant_frames {
            host.free_page(mfn * 4096);
        }
    }
}
