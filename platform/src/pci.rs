//! PCI configuration mechanism #1 (ports 0xCF8/0xCFC) with the two devices an HVM domain has
//! on bus 0: an i440FX host bridge at 00:00.0 (Linux's `pci_sanity_check` wants a host bridge
//! when there is no DMI) and the Xen platform device 5853:0001 at 00:02.0, whose BAR1 is where
//! Linux maps the grant-table frames. Its BARs come pre-assigned, as firmware leaves them.
//!
//! Also the PIIX reset control register at 0xCF9 (the FADT's reset register).
//!
//! Each function's configuration space is 256 bytes with a write mask per byte (as QEMU does):
//! the command register, cache line size, latency timer, interrupt line and the address bits
//! of the implemented BARs are writable, everything else is read-only, and a BAR written with
//! all-ones reads back its size mask with its type bits. Absent devices and functions read
//! all-ones and ignore writes.

use crate::layout;

/// The configuration address port (dword accesses only).
pub const CONFIG_ADDRESS: u16 = 0xCF8;
/// The PIIX reset control register (byte accesses).
pub const RESET_CONTROL: u16 = 0xCF9;
/// The first of the configuration data ports (0xCFC..=0xCFF).
pub const CONFIG_DATA: u16 = 0xCFC;
/// Reset control: RST_CPU; a write with it set resets the system.
pub const RESET_CONTROL_RST_CPU: u8 = 1 << 2;
/// Where the platform device's BAR0 (I/O, 256 bytes) is placed.
pub const PLATFORM_BAR0_PORT: u16 = layout::PLATFORM_BAR0_PORT;
/// Size of BAR0.
pub const PLATFORM_BAR0_SIZE: u32 = layout::PLATFORM_BAR0_SIZE as u32;
/// Where the platform device's BAR1 (prefetchable MMIO, 16 MiB) is placed: the start of the PCI hole.
pub const PLATFORM_BAR1_GPA: u32 = layout::PLATFORM_BAR1_GPA as u32;
/// Size of BAR1.
pub const PLATFORM_BAR1_SIZE: u32 = layout::PLATFORM_BAR1_SIZE as u32;
/// The host bridge's slot on bus 0.
pub const HOST_BRIDGE_SLOT: u8 = 0;
/// The platform device's slot on bus 0.
pub const PLATFORM_SLOT: u8 = 2;
/// Xen platform device vendor ID (XenSource).
pub const XEN_PLATFORM_VENDOR: u16 = 0x5853;
/// Xen platform device device ID.
pub const XEN_PLATFORM_DEVICE: u16 = 0x0001;

/// Command register: I/O space decoding.
pub const PCI_COMMAND_IO: u16 = 1 << 0;
/// Command register: memory space decoding.
pub const PCI_COMMAND_MEMORY: u16 = 1 << 1;

/// BAR type bits: I/O space.
const BAR_IO: u32 = 1;
/// BAR type bits: 32-bit prefetchable memory.
const BAR_MEM_PREFETCH: u32 = 1 << 3;
/// Writable command bits: I/O, memory, bus master, parity error response, SERR#, INTx disable.
const COMMAND_WMASK: u16 = 0x0547;

/// The guest asked for a system reset (RST_CPU written to [`RESET_CONTROL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetRequest;

/// One function's configuration space and which of its bits the guest may write.
#[derive(Clone, Debug)]
struct Function {
    config: [u8; 256],
    wmask: [u8; 256],
}

impl Function {
    fn new(vendor: u16, device: u16, class: u32, revision: u8) -> Self {
        let mut f = Function {
            config: [0; 256],
            wmask: [0; 256],
        };
        f.put(0x00, vendor as u32, 2);
        f.put(0x02, device as u32, 2);
        f.put(0x08, revision as u32 | class << 8, 4);
        f.wmask[0x04..0x06].copy_from_slice(&COMMAND_WMASK.to_le_bytes());
        f.wmask[0x0C] = 0xFF; // cache line size
        f.wmask[0x0D] = 0xFF; // latency timer
        f.wmask[0x3C] = 0xFF; // interrupt line
        f
    }

    fn put(&mut self, off: usize, v: u32, n: usize) {
        self.config[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
    }

    fn get(&self, off: usize, n: usize) -> u32 {
        let mut b = [0u8; 4];
        b[..n].copy_from_slice(&self.config[off..off + n]);
        u32::from_le_bytes(b)
    }

    /// BAR `n` of `size` bytes (a power of two) with `type_bits`, placed at `base`.
    fn add_bar(&mut self, n: usize, size: u32, type_bits: u32, base: u32) {
        let off = 0x10 + 4 * n;
        self.put(off, base | type_bits, 4);
        self.wmask[off..off + 4].copy_from_slice(&(!(size - 1)).to_le_bytes());
    }

    /// Reads `size` bytes at `off`; bytes past the end read all-ones.
    fn read(&self, off: usize, size: usize) -> u32 {
        (0..size).fold(0, |v, i| {
            v | (*self.config.get(off + i).unwrap_or(&0xFF) as u32) << (8 * i)
        })
    }

    /// Writes `size` bytes at `off` through the write mask.
    fn write(&mut self, off: usize, size: usize, value: u32) {
        for i in 0..size {
            let Some(&mask) = self.wmask.get(off + i) else {
                return;
            };
            let byte = (value >> (8 * i)) as u8;
            let old = self.config[off + i];
            self.config[off + i] = (old & !mask) | (byte & mask);
        }
    }
}

/// Bus 0 with its two devices, behind configuration mechanism #1.
#[derive(Clone, Debug)]
pub struct PciBus {
    address: u32,
    reset_control: u8,
    host_bridge: Function,
    platform: Function,
}

impl Default for PciBus {
    fn default() -> Self {
        Self::new()
    }
}

/// All-ones in the low `size` bytes.
fn ones(size: u8) -> u32 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => u32::MAX,
    }
}

impl PciBus {
    /// The bus with BARs pre-assigned and decoding on, as firmware would leave it.
    pub fn new() -> Self {
        // i440FX PMC: class 0x060000, revision 2; status: fast back-to-back, medium DEVSEL.
        let mut host_bridge = Function::new(0x8086, 0x1237, 0x06_00_00, 2);
        host_bridge.put(0x04, (PCI_COMMAND_MEMORY | 1 << 2) as u32, 2);
        host_bridge.put(0x06, 0x0280, 2);
        let mut platform = Function::new(XEN_PLATFORM_VENDOR, XEN_PLATFORM_DEVICE, 0xFF_80_00, 1);
        platform.put(0x2C, XEN_PLATFORM_VENDOR as u32, 2); // subsystem vendor
        platform.put(0x2E, XEN_PLATFORM_DEVICE as u32, 2); // subsystem id
        platform.config[0x3D] = 1; // INTA
        platform.put(0x04, (PCI_COMMAND_IO | PCI_COMMAND_MEMORY) as u32, 2);
        platform.add_bar(0, PLATFORM_BAR0_SIZE, BAR_IO, PLATFORM_BAR0_PORT as u32);
        platform.add_bar(1, PLATFORM_BAR1_SIZE, BAR_MEM_PREFETCH, PLATFORM_BAR1_GPA);
        PciBus {
            address: 0,
            reset_control: 0,
            host_bridge,
            platform,
        }
    }

    /// Whether `port` is one of 0xCF8..=0xCFF (address, reset control, data).
    pub fn handles_port(&self, port: u16) -> bool {
        (CONFIG_ADDRESS..CONFIG_DATA + 4).contains(&port)
    }

    /// The function the address register selects and the register offset for a data access
    /// at `port`, if the address is enabled and names a present function.
    fn target(&mut self, port: u16) -> Option<(&mut Function, usize)> {
        if self.address & 0x8000_0000 == 0 || !(CONFIG_DATA..CONFIG_DATA + 4).contains(&port) {
            return None;
        }
        let bus = (self.address >> 16) & 0xFF;
        let slot = ((self.address >> 11) & 0x1F) as u8;
        let func = (self.address >> 8) & 7;
        let off = (self.address & 0xFC) as usize + (port - CONFIG_DATA) as usize;
        if bus != 0 || func != 0 {
            return None;
        }
        match slot {
            HOST_BRIDGE_SLOT => Some((&mut self.host_bridge, off)),
            PLATFORM_SLOT => Some((&mut self.platform, off)),
            _ => None,
        }
    }

    /// An IN of `size` (1, 2 or 4) bytes; absent devices and other ports read all-ones.
    pub fn io_read(&mut self, port: u16, size: u8) -> u32 {
        match (port, size) {
            (CONFIG_ADDRESS, 4) => self.address,
            (RESET_CONTROL, 1) => self.reset_control as u32,
            _ => match self.target(port) {
                Some((f, off)) => f.read(off, size as usize),
                None => ones(size),
            },
        }
    }

    /// An OUT of `size` (1, 2 or 4) bytes; writes to absent devices are dropped. Returns a
    /// [`ResetRequest`] when the guest sets RST_CPU in the reset control register.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32) -> Option<ResetRequest> {
        match (port, size) {
            (CONFIG_ADDRESS, 4) => self.address = value & 0x80FF_FFFC,
            (RESET_CONTROL, 1) => {
                // Bit 1 (SYS_RST) and bit 3 (FULL_RST) say what kind of reset follows.
                self.reset_control = value as u8 & 0x0A;
                if value as u8 & RESET_CONTROL_RST_CPU != 0 {
                    return Some(ResetRequest);
                }
            }
            _ => {
                if let Some((f, off)) = self.target(port) {
                    f.write(off, size as usize, value);
                }
            }
        }
        None
    }

    /// The I/O port the guest's BAR0 of the platform device currently names.
    pub fn platform_bar0(&self) -> u16 {
        (self.platform.get(0x10, 4) & !3) as u16
    }

    /// The guest-physical address the guest's BAR1 of the platform device currently names.
    /// While Linux sizes the BAR (memory decoding off, all-ones written) this is 0xFF000000;
    /// see [`Self::platform_memory_enabled`].
    pub fn platform_bar1(&self) -> u64 {
        (self.platform.get(0x14, 4) & !0xF) as u64
    }

    /// Whether the platform device decodes its memory BAR (command register bit 1).
    pub fn platform_memory_enabled(&self) -> bool {
        self.platform.get(0x04, 2) as u16 & PCI_COMMAND_MEMORY != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(bus: &mut PciBus, slot: u32, reg: u32) {
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (slot << 11) | reg);
    }

    fn cfg_read(bus: &mut PciBus, slot: u32, reg: u32) -> u32 {
        select(bus, slot, reg);
        bus.io_read(CONFIG_DATA, 4)
    }

    fn cfg_write(bus: &mut PciBus, slot: u32, reg: u32, v: u32) {
        select(bus, slot, reg);
        bus.io_write(CONFIG_DATA, 4, v);
    }

    #[test]
    fn linux_type1_probe() {
        // arch/x86/pci/direct.c pci_check_type1.
        let mut bus = PciBus::new();
        assert_eq!(bus.io_write(0xCFB, 1, 1), None);
        let tmp = bus.io_read(CONFIG_ADDRESS, 4);
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000);
        assert_eq!(bus.io_read(CONFIG_ADDRESS, 4), 0x8000_0000);
        bus.io_write(CONFIG_ADDRESS, 4, tmp);
        // pci_sanity_check: a host bridge class on bus 0.
        select(&mut bus, 0, 0x08);
        assert_eq!(bus.io_read(CONFIG_DATA + 2, 2), 0x0600);
        assert!((CONFIG_ADDRESS..=0xCFF).all(|p| bus.handles_port(p)));
        assert!(!bus.handles_port(0xCF7) && !bus.handles_port(0xD00));
    }

    #[test]
    fn identity_of_both_devices() {
        let mut bus = PciBus::new();
        assert_eq!(cfg_read(&mut bus, 0, 0), 0x1237_8086);
        assert_eq!(cfg_read(&mut bus, 0, 8), 0x0600_0002);
        assert_eq!(cfg_read(&mut bus, 0, 0x0C) >> 16, 0, "header type 0");
        assert_eq!(cfg_read(&mut bus, 0, 0x10), 0, "no BARs");
        assert_eq!(cfg_read(&mut bus, 2, 0), 0x0001_5853);
        assert_eq!(
            cfg_read(&mut bus, 2, 4) & 0xFFFF,
            0x0003,
            "I/O and memory on"
        );
        assert_eq!(cfg_read(&mut bus, 2, 8), 0xFF80_0001);
        assert_eq!(
            cfg_read(&mut bus, 2, 0x0C) >> 16,
            0,
            "header type 0, single function"
        );
        assert_eq!(cfg_read(&mut bus, 2, 0x10), 0xC001);
        assert_eq!(cfg_read(&mut bus, 2, 0x14), 0xF000_0008);
        for bar in [0x18, 0x1C, 0x20, 0x24, 0x30] {
            assert_eq!(
                cfg_read(&mut bus, 2, bar),
                0,
                "BAR at {bar:#x} unimplemented"
            );
        }
        assert_eq!(cfg_read(&mut bus, 2, 0x2C), 0x0001_5853);
        assert_eq!(cfg_read(&mut bus, 2, 0x34), 0, "no capabilities");
        assert_eq!(cfg_read(&mut bus, 2, 0x3C), 0x0100, "INTA, line 0");
        assert_eq!(bus.platform_bar0(), 0xC000);
        assert_eq!(bus.platform_bar1(), 0xF000_0000);
        assert!(bus.platform_memory_enabled());
    }

    #[test]
    fn narrow_reads() {
        let mut bus = PciBus::new();
        select(&mut bus, 2, 0);
        assert_eq!(bus.io_read(CONFIG_DATA, 1), 0x53);
        assert_eq!(bus.io_read(CONFIG_DATA + 1, 1), 0x58);
        assert_eq!(bus.io_read(CONFIG_DATA + 2, 2), 0x0001);
        select(&mut bus, 2, 0x3C);
        assert_eq!(bus.io_read(CONFIG_DATA + 1, 1), 1, "interrupt pin");
        select(&mut bus, 2, 0x08);
        assert_eq!(bus.io_read(CONFIG_DATA + 3, 1), 0xFF, "base class");
    }

    #[test]
    fn absent_devices_functions_and_buses() {
        let mut bus = PciBus::new();
        assert_eq!(cfg_read(&mut bus, 1, 0), u32::MAX);
        assert_eq!(cfg_read(&mut bus, 31, 0), u32::MAX);
        select(&mut bus, 2, 0);
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (2 << 11) | (1 << 8));
        assert_eq!(bus.io_read(CONFIG_DATA, 4), u32::MAX, "function 1");
        assert_eq!(bus.io_read(CONFIG_DATA, 2), 0xFFFF);
        assert_eq!(bus.io_read(CONFIG_DATA, 1), 0xFF);
        bus.io_write(CONFIG_ADDRESS, 4, 0x8001_0000);
        assert_eq!(bus.io_read(CONFIG_DATA, 4), u32::MAX, "bus 1");
        // Disabled address register: data reads all-ones.
        bus.io_write(CONFIG_ADDRESS, 4, 2 << 11);
        assert_eq!(bus.io_read(CONFIG_DATA, 4), u32::MAX);
        // Writes to absent devices change nothing.
        cfg_write(&mut bus, 1, 0x04, 0xFFFF_FFFF);
        bus.io_write(CONFIG_ADDRESS, 4, 2 << 11 | 0x14);
        bus.io_write(CONFIG_DATA, 4, 0);
        assert_eq!(bus.platform_bar1(), 0xF000_0000);
    }

    #[test]
    fn bar_sizing_and_moves() {
        let mut bus = PciBus::new();
        // Linux __pci_read_base: decoding off, all-ones, read the mask, restore.
        cfg_write(&mut bus, 2, 0x04, 0);
        assert!(!bus.platform_memory_enabled());
        cfg_write(&mut bus, 2, 0x14, u32::MAX);
        assert_eq!(cfg_read(&mut bus, 2, 0x14), 0xFF00_0008);
        cfg_write(&mut bus, 2, 0x14, 0xF000_0000);
        cfg_write(&mut bus, 2, 0x10, u32::MAX);
        assert_eq!(cfg_read(&mut bus, 2, 0x10), 0xFFFF_FF01);
        cfg_write(&mut bus, 2, 0x10, 0xC000);
        cfg_write(&mut bus, 2, 0x18, u32::MAX);
        assert_eq!(cfg_read(&mut bus, 2, 0x18), 0, "unimplemented BAR");
        cfg_write(&mut bus, 2, 0x30, u32::MAX);
        assert_eq!(cfg_read(&mut bus, 2, 0x30), 0, "no expansion ROM");
        cfg_write(&mut bus, 2, 0x04, 3);
        assert_eq!(bus.platform_bar1(), 0xF000_0000);
        // A move, with the low bits and the size bits ignored.
        cfg_write(&mut bus, 2, 0x14, 0xE0AB_CDEF);
        assert_eq!(bus.platform_bar1(), 0xE000_0000);
        assert_eq!(cfg_read(&mut bus, 2, 0x14), 0xE000_0008);
        cfg_write(&mut bus, 2, 0x10, 0xD0FF);
        assert_eq!(bus.platform_bar0(), 0xD000);
        // A 16-bit write to the upper half of BAR1.
        select(&mut bus, 2, 0x14);
        bus.io_write(CONFIG_DATA + 2, 2, 0xF100);
        assert_eq!(bus.platform_bar1(), 0xF100_0000);
    }

    #[test]
    fn read_only_fields() {
        let mut bus = PciBus::new();
        for reg in [0x00, 0x08, 0x2C, 0x34] {
            let before = cfg_read(&mut bus, 2, reg);
            cfg_write(&mut bus, 2, reg, !before);
            assert_eq!(cfg_read(&mut bus, 2, reg), before, "register {reg:#x}");
        }
        // Interrupt line is writable, pin is not.
        cfg_write(&mut bus, 2, 0x3C, 0xFFFF_FF0B);
        assert_eq!(cfg_read(&mut bus, 2, 0x3C), 0x010B);
        // Command: only the defined bits; status is not written.
        cfg_write(&mut bus, 2, 0x04, u32::MAX);
        assert_eq!(cfg_read(&mut bus, 2, 0x04), 0x0547);
        // Host bridge identity.
        cfg_write(&mut bus, 0, 0, 0);
        assert_eq!(cfg_read(&mut bus, 0, 0), 0x1237_8086);
    }

    #[test]
    fn reset_control_register() {
        let mut bus = PciBus::new();
        assert_eq!(bus.io_read(RESET_CONTROL, 1), 0);
        assert_eq!(bus.io_write(RESET_CONTROL, 1, 0x02), None);
        assert_eq!(bus.io_read(RESET_CONTROL, 1), 0x02);
        // ACPI's reset value (FADT RESET_VALUE 0x06) and Linux's reboot=pci sequence.
        assert_eq!(bus.io_write(RESET_CONTROL, 1, 0x06), Some(ResetRequest));
        assert_eq!(bus.io_write(RESET_CONTROL, 1, 0x0E), Some(ResetRequest));
        // Other widths on 0xCF8..0xCFB are not the address register.
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000);
        bus.io_write(CONFIG_ADDRESS, 2, 0);
        assert_eq!(bus.io_read(CONFIG_ADDRESS, 4), 0x8000_0000);
        assert_eq!(bus.io_read(CONFIG_ADDRESS, 2), 0xFFFF);
        assert_eq!(bus.io_read(0xCFA, 1), 0xFF);
    }

    #[test]
    fn address_register_bits() {
        let mut bus = PciBus::new();
        bus.io_write(CONFIG_ADDRESS, 4, u32::MAX);
        assert_eq!(bus.io_read(CONFIG_ADDRESS, 4), 0x80FF_FFFC);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn access() -> impl Strategy<Value = (bool, u16, u8, u32)> {
        (
            any::<bool>(),
            0xCF6u16..0xD02,
            prop_oneof![Just(1u8), Just(2), Just(4)],
            any::<u32>(),
        )
    }

    proptest! {
        #[test]
        fn random_accesses_keep_identity(ops in proptest::collection::vec(access(), 1..200)) {
            let mut bus = PciBus::new();
            for (write, port, size, value) in ops {
                if write {
                    let _ = bus.io_write(port, size, value);
                } else {
                    let v = bus.io_read(port, size);
                    prop_assert!(size == 4 || v < 1 << (8 * size));
                }
            }
            bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (2 << 11));
            prop_assert_eq!(bus.io_read(CONFIG_DATA, 4), 0x0001_5853);
            bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (2 << 11) | 8);
            prop_assert_eq!(bus.io_read(CONFIG_DATA, 4), 0xFF80_0001);
            prop_assert_eq!(bus.platform_bar1() % u64::from(PLATFORM_BAR1_SIZE), 0);
            prop_assert_eq!(u32::from(bus.platform_bar0()) % PLATFORM_BAR0_SIZE, 0);
        }
    }
}
