//! The emulated platform of a domain, as the exit handlers reach it: port I/O
//! routed to the models in crate `platform`, and startup IPIs waiting for
//! their vCPU's VMCS to be loaded.
//!
//! An HVM domain has the PCI host bridge and Xen platform device, the 8259
//! pair and the ACPI PM1 registers. A PVH domain has none of them, as a Xen
//! PVH domU (which Xen gives no device model): every port reads all-ones and
//! drops writes, but for the debug ports both kinds share (0xE9, handled by
//! the exit handler, and the log byte at 0x12).

use alloc::vec;
use alloc::vec::Vec;

/// What an I/O write asks of the scheduler.
pub enum IoResult {
    /// Nothing beyond the device's own state.
    Done,
    /// The guest entered ACPI S5: power the domain off.
    Poweroff,
    /// The guest reset the machine (port 0xCF9, the FADT's reset register).
    Reboot,
}

/// Per-domain device state.
pub struct Devices {
    pci: platform::pci::PciBus,
    pic: platform::pic::Pic,
    pm: platform::acpi::PmRegisters,
    unplug: platform::unplug::PlatformPorts,
    sipi: Vec<Option<u8>>,
    /// A PVH domain: no legacy devices.
    pvh: bool,
}

impl Devices {
    /// The devices of a domain with `nr_vcpus` vCPUs; `pvh` leaves out every legacy device.
    pub fn new(nr_vcpus: u32, pvh: bool) -> Self {
        Devices {
            pci: platform::pci::PciBus::new(),
            pic: platform::pic::Pic::new(),
            pm: platform::acpi::PmRegisters::new(),
            unplug: platform::unplug::PlatformPorts::new(),
            sipi: vec![None; nr_vcpus as usize],
            pvh,
        }
    }

    /// An IN of `size` bytes from `port`. Ports no device claims read all-ones.
    pub fn io_in(&mut self, port: u16, size: u8) -> u32 {
        if self.pvh {
            return u32::MAX;
        }
        if self.pm.handles_port(port) {
            return self.pm.io_read(port, size);
        }
        if self.pci.handles_port(port) {
            return self.pci.io_read(port, size);
        }
        if size == 1 && self.pic.handles_port(port) {
            return self.pic.io_read(port) as u32;
        }
        if self.unplug.handles_port(port) {
            return self.unplug.io_read(port, size);
        }
        u32::MAX
    }

    /// An OUT of `size` bytes to `port`. Writes to unclaimed ports are dropped.
    pub fn io_out(&mut self, port: u16, size: u8, value: u32) -> IoResult {
        if self.pvh {
            if port == platform::unplug::XEN_IOPORT_PROTOVER && size == 1 {
                self.unplug.io_write(port, size, value);
            }
            return IoResult::Done;
        }
        if size == 1 && self.pic.handles_port(port) {
            self.pic.io_write(port, value as u8);
        }
        if self.pci.handles_port(port) && self.pci.io_write(port, size, value).is_some() {
            return IoResult::Reboot;
        }
        if self.unplug.handles_port(port) {
            self.unplug.io_write(port, size, value);
        }
        if self.pm.handles_port(port) {
            if let Some(platform::acpi::SleepRequest::S5) = self.pm.io_write(port, size, value) {
                return IoResult::Poweroff;
            }
        }
        IoResult::Done
    }

    /// Lines the guest wrote to the platform device's log port.
    pub fn take_log_lines(&mut self) -> Vec<alloc::string::String> {
        self.unplug.take_log_lines()
    }

    /// Records a startup IPI for vCPU `vcpu`.
    pub fn post_sipi(&mut self, vcpu: usize, vector: u8) {
        if let Some(slot) = self.sipi.get_mut(vcpu) {
            *slot = Some(vector);
        }
    }

    /// Whether vCPU `vcpu` has a startup IPI waiting.
    pub fn sipi_pending(&self, vcpu: usize) -> bool {
        self.sipi.get(vcpu).is_some_and(|s| s.is_some())
    }

    /// Takes vCPU `vcpu`'s waiting startup IPI vector.
    pub fn take_sipi(&mut self, vcpu: usize) -> Option<u8> {
        self.sipi.get_mut(vcpu).and_then(|s| s.take())
    }
}
