//! A domain as the hypercall handlers see it.

use crate::console::ConsoleBuffer;
use crate::{Errno, Host};
use alloc::string::String;
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
}

impl Domain {
    /// Creates the domain's hypervisor-side state: allocates its shared_info
    /// page and stamps the wall clock into it.
    pub fn new(
        domid: u16,
        name: String,
        p2m: P2m,
        ram_pages: u64,
        host: &mut impl Host,
    ) -> Result<Self, Errno> {
        let page = host.alloc_page().ok_or(Errno::ENOMEM)?;
        let (sec, nsec) = host.wallclock();
        let wc: [u32; 4] = [2, sec as u32, nsec, (sec >> 32) as u32];
        host.write_phys(page + WC_OFFSET, wc.as_bytes());
        Ok(Domain {
            domid,
            name,
            p2m,
            shared_info_mfn: page / 4096,
            shared_info_gfn: None,
            shutdown: None,
            console: ConsoleBuffer::default(),
            ram_pages,
            ept_dirty: false,
        })
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
    }
}
