//! The Xen platform device's I/O ports: the fixed ports at 0x10 (the emulated-device unplug
//! protocol of Xen's `docs/misc/hvm-emulated-unplug.pandoc`, which Linux drives in
//! `arch/x86/xen/platform-pci-unplug.c`) and the device's BAR0 range, both as QEMU's
//! `hw/i386/xen/xen_platform.c` implements them.
//!
//! Linux reads the magic with `inw(0x10)` and the protocol version with `inb(0x12)`, writes
//! its product number (`outw(0x12)`, 3 = Linux) and driver version (`outl(0x10)`), reads the
//! magic again (0xd249 would mean "blacklisted"), then writes the unplug mask with
//! `outw(0x10)`. The mask must be accepted: if the magic is wrong Linux's netfront refuses to
//! load (unless `xen_emul_unplug=unnecessary`). Bytes written to 0x12 are a log, one line per
//! `\n`.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use crate::layout;

/// First fixed port (`XEN_IOPORT_BASE`); QEMU claims 16 ports from here.
pub const XEN_IOPORT_BASE: u16 = 0x10;
/// Number of fixed ports.
pub const XEN_IOPORT_COUNT: u16 = 16;
/// `inw`: the magic; `outw`: the unplug mask; `outl`: the driver version; `inb`/`outb`: flags.
pub const XEN_IOPORT_MAGIC: u16 = XEN_IOPORT_BASE;
/// `inb`: the protocol version; `outw`: the product number; `outb`: the log.
pub const XEN_IOPORT_PROTOVER: u16 = XEN_IOPORT_BASE + 2;
/// The magic `inw(0x10)` returns.
pub const XEN_IOPORT_MAGIC_VAL: u16 = 0x49d2;
/// The magic a blacklisted driver would see (never returned here).
pub const XEN_IOPORT_MAGIC_BLACKLISTED: u16 = 0xd249;
/// The protocol version `inb(0x12)` returns.
pub const XEN_IOPORT_PROTOCOL_VERSION: u8 = 1;
/// Unplug mask: all IDE and SCSI disks.
pub const UNPLUG_ALL_IDE_DISKS: u16 = 1 << 0;
/// Unplug mask: all NICs.
pub const UNPLUG_ALL_NICS: u16 = 1 << 1;
/// Unplug mask: IDE disks except the primary master.
pub const UNPLUG_AUX_IDE_DISKS: u16 = 1 << 2;
/// Unplug mask: NVMe disks.
pub const UNPLUG_NVME_DISKS: u16 = 1 << 3;
/// Platform flags: the ROM area 0xC0000-0xFFFFF is read-only.
pub const PFFLAG_ROM_LOCK: u8 = 1;
/// Longest log line kept; longer lines are split (QEMU's buffer is 4096 bytes with the NUL).
pub const LOG_LINE_MAX: usize = 4095;
/// Completed log lines kept until taken; older ones are dropped first.
pub const LOG_LINES_KEPT: usize = 64;

/// The fixed ports, the BAR0 range and what the guest told them.
#[derive(Clone, Debug)]
pub struct PlatformPorts {
    bar0: u16,
    flags: u8,
    unplug_mask: u16,
    product: Option<u16>,
    driver_version: Option<u32>,
    line: Vec<u8>,
    lines: VecDeque<String>,
}

impl Default for PlatformPorts {
    fn default() -> Self {
        Self::new()
    }
}

impl PlatformPorts {
    /// The ports after reset, BAR0 at [`layout::PLATFORM_BAR0_PORT`].
    pub fn new() -> Self {
        PlatformPorts {
            bar0: layout::PLATFORM_BAR0_PORT,
            flags: 0,
            unplug_mask: 0,
            product: None,
            driver_version: None,
            line: Vec::new(),
            lines: VecDeque::new(),
        }
    }

    /// Moves the BAR0 range (to where [`crate::pci::PciBus::platform_bar0`] says it is).
    pub fn set_bar0(&mut self, port: u16) {
        self.bar0 = port;
    }

    fn bar0_offset(&self, port: u16) -> Option<u16> {
        let off = port.wrapping_sub(self.bar0);
        (off < layout::PLATFORM_BAR0_SIZE).then_some(off)
    }

    fn fixed_offset(port: u16) -> Option<u16> {
        let off = port.wrapping_sub(XEN_IOPORT_BASE);
        (off < XEN_IOPORT_COUNT).then_some(off)
    }

    /// Whether `port` is a fixed port or in the BAR0 range.
    pub fn handles_port(&self, port: u16) -> bool {
        Self::fixed_offset(port).is_some() || self.bar0_offset(port).is_some()
    }

    /// An IN of `size` (1, 2 or 4) bytes. Unclaimed ports read all-ones.
    pub fn io_read(&self, port: u16, size: u8) -> u32 {
        if let Some(off) = Self::fixed_offset(port) {
            return match (off, size) {
                (0, 1) => self.flags as u32,
                (2, 1) => XEN_IOPORT_PROTOCOL_VERSION as u32,
                (0, 2) => XEN_IOPORT_MAGIC_VAL as u32,
                (_, 1) => 0xFF,
                (_, 2) => 0xFFFF,
                _ => u32::MAX,
            };
        }
        if self.bar0_offset(port).is_some() {
            // Byte registers: offset 0 is the flags, the rest reads all-ones.
            return (0..size as u16).fold(0, |v, i| {
                let b = match self.bar0_offset(port.wrapping_add(i)) {
                    Some(0) => self.flags,
                    _ => 0xFF,
                };
                v | (b as u32) << (8 * i)
            });
        }
        match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => u32::MAX,
        }
    }

    /// An OUT of `size` (1, 2 or 4) bytes. Unclaimed ports ignore it.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32) {
        if let Some(off) = Self::fixed_offset(port) {
            match (off, size) {
                (0, 1) => self.flags = value as u8 & PFFLAG_ROM_LOCK,
                (2, 1) => self.log_byte(value as u8),
                (0, 2) => self.unplug_mask |= value as u16,
                (2, 2) => self.product = Some(value as u16),
                (0, 4) => self.driver_version = Some(value),
                _ => {}
            }
            return;
        }
        for i in 0..size as u16 {
            let byte = (value >> (8 * i)) as u8;
            match self.bar0_offset(port.wrapping_add(i)) {
                Some(0) => self.flags = byte & PFFLAG_ROM_LOCK,
                // Old SUSE/VMDP drivers' unplug registers.
                Some(4) if byte == 1 => self.unplug_mask |= UNPLUG_ALL_IDE_DISKS | UNPLUG_ALL_NICS,
                Some(8) => match byte {
                    1 => self.unplug_mask |= UNPLUG_ALL_IDE_DISKS,
                    2 => self.unplug_mask |= UNPLUG_ALL_NICS,
                    b => self.log_byte(b),
                },
                _ => {}
            }
        }
    }

    fn log_byte(&mut self, b: u8) {
        if b != b'\n' {
            self.line.push(b);
        }
        if b == b'\n' || self.line.len() >= LOG_LINE_MAX {
            if self.lines.len() == LOG_LINES_KEPT {
                self.lines.pop_front();
            }
            let line = String::from_utf8_lossy(&self.line).into_owned();
            self.lines.push_back(line);
            self.line.clear();
        }
    }

    /// The unplug mask: every bit any `outw(0x10)` has set ([`UNPLUG_ALL_IDE_DISKS`],
    /// [`UNPLUG_ALL_NICS`], ...). Linux writes 3 when blkfront and netfront are built.
    pub fn unplug_mask(&self) -> u16 {
        self.unplug_mask
    }

    /// The product number the guest reported (3 for Linux), if any.
    pub fn product(&self) -> Option<u16> {
        self.product
    }

    /// The driver build number the guest reported (1 for Linux), if any.
    pub fn driver_version(&self) -> Option<u32> {
        self.driver_version
    }

    /// Takes the completed log lines, oldest first, without their `\n`.
    pub fn take_log_lines(&mut self) -> Vec<String> {
        self.lines.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_unplug_sequence() {
        // arch/x86/xen/platform-pci-unplug.c check_platform_magic and
        // xen_unplug_emulated_devices.
        let mut p = PlatformPorts::new();
        assert!(p.handles_port(0x10) && p.handles_port(0x12) && p.handles_port(0x1F));
        assert!(!p.handles_port(0x0F) && !p.handles_port(0x20));
        assert_eq!(p.io_read(0x10, 2), 0x49d2);
        assert_eq!(p.io_read(0x12, 1), 1);
        p.io_write(0x12, 2, 3);
        p.io_write(0x10, 4, 1);
        assert_eq!(p.io_read(0x10, 2), 0x49d2, "not blacklisted");
        assert_eq!(p.unplug_mask(), 0);
        p.io_write(0x10, 2, (UNPLUG_ALL_IDE_DISKS | UNPLUG_ALL_NICS) as u32);
        assert_eq!(p.unplug_mask(), 3);
        assert_eq!(p.product(), Some(3));
        assert_eq!(p.driver_version(), Some(1));
    }

    #[test]
    fn other_fixed_port_accesses() {
        let mut p = PlatformPorts::new();
        assert_eq!(p.io_read(0x11, 1), 0xFF);
        assert_eq!(p.io_read(0x12, 2), 0xFFFF);
        assert_eq!(p.io_read(0x10, 4), u32::MAX);
        assert_eq!(p.io_read(0x10, 1), 0, "platform flags");
        p.io_write(0x10, 1, 0xFF);
        assert_eq!(p.io_read(0x10, 1), PFFLAG_ROM_LOCK as u32);
        p.io_write(0x14, 2, 0xFFFF);
        assert_eq!(p.unplug_mask(), 0);
    }

    #[test]
    fn log_port_collects_lines() {
        let mut p = PlatformPorts::new();
        for &b in b"hello\nwor" {
            p.io_write(0x12, 1, b as u32);
        }
        assert_eq!(p.take_log_lines(), ["hello"]);
        assert!(p.take_log_lines().is_empty());
        for &b in b"ld\n\n" {
            p.io_write(0x12, 1, b as u32);
        }
        assert_eq!(p.take_log_lines(), ["world", ""]);
        for _ in 0..LOG_LINE_MAX + 1 {
            p.io_write(0x12, 1, b'x' as u32);
        }
        let lines = p.take_log_lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), LOG_LINE_MAX);
        for i in 0..LOG_LINES_KEPT + 3 {
            p.io_write(0x12, 1, b'0' as u32 + (i % 10) as u32);
            p.io_write(0x12, 1, b'\n' as u32);
        }
        let lines = p.take_log_lines();
        assert_eq!(lines.len(), LOG_LINES_KEPT);
        assert_eq!(lines[0], "3", "the oldest three were dropped");
    }

    #[test]
    fn bar0_range() {
        let mut p = PlatformPorts::new();
        assert!(p.handles_port(0xC000) && p.handles_port(0xC0FF) && !p.handles_port(0xC100));
        assert_eq!(p.io_read(0xC000, 1), 0);
        assert_eq!(p.io_read(0xC001, 1), 0xFF);
        assert_eq!(p.io_read(0xC004, 4), u32::MAX);
        p.io_write(0xC000, 1, 1);
        assert_eq!(p.io_read(0xC000, 2), 0xFF01);
        p.io_write(0xC008, 1, 2);
        assert_eq!(p.unplug_mask(), UNPLUG_ALL_NICS);
        p.io_write(0xC004, 4, 1);
        assert_eq!(p.unplug_mask(), 3);
        p.io_write(0xC008, 1, b'!' as u32);
        p.io_write(0xC008, 1, b'\n' as u32);
        assert_eq!(p.take_log_lines(), ["!"]);
        p.set_bar0(0xD000);
        assert!(!p.handles_port(0xC000) && p.handles_port(0xD010));
        assert_eq!(p.io_read(0xC000, 1), 0xFF);
    }
}
