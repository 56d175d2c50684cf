//! PCI configuration mechanism #1 (ports 0xCF8/0xCFC) with the two devices an
//! HVM domain has on bus 0: an i440FX host bridge at 00:00.0 (Linux's
//! `pci_sanity_check` wants one) and the Xen platform device 5853:0001 at
//! 00:02.0, whose BAR1 is where Linux maps the grant table frames.

/// The address port.
pub const CONFIG_ADDRESS: u16 = 0xCF8;
/// The data ports (0xCFC..=0xCFF).
pub const CONFIG_DATA: u16 = 0xCFC;
/// Where the platform device's BAR0 (I/O, 256 bytes) is placed.
pub const PLATFORM_BAR0_PORT: u16 = 0xC000;
/// Size of BAR0.
pub const PLATFORM_BAR0_SIZE: u32 = 0x100;
/// Where the platform device's BAR1 (prefetchable MMIO, 16 MiB) is placed: the start of the PCI hole.
pub const PLATFORM_BAR1_GPA: u32 = 0xF000_0000;
/// Size of BAR1.
pub const PLATFORM_BAR1_SIZE: u32 = 16 << 20;
/// The platform device's slot on bus 0.
pub const PLATFORM_SLOT: u8 = 2;

/// One function's configuration space and its BARs' sizes.
#[derive(Clone, Debug)]
struct Function {
    config: [u8; 256],
    /// (offset, size, low type bits) of each BAR.
    bars: [(usize, u32, u32); 2],
    nr_bars: usize,
}

impl Function {
    fn new(vendor: u16, device: u16, class: u32, revision: u8) -> Self {
        let mut config = [0u8; 256];
        config[0..2].copy_from_slice(&vendor.to_le_bytes());
        config[2..4].copy_from_slice(&device.to_le_bytes());
        config[8] = revision;
        config[9..12].copy_from_slice(&class.to_le_bytes()[..3]);
        Function {
            config,
            bars: [(0, 0, 0); 2],
            nr_bars: 0,
        }
    }

    fn put(&mut self, off: usize, v: u32, n: usize) {
        self.config[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
    }

    fn add_bar(&mut self, off: usize, size: u32, type_bits: u32, base: u32) {
        self.bars[self.nr_bars] = (off, size, type_bits);
        self.nr_bars += 1;
        self.put(off, base | type_bits, 4);
    }

    fn read(&self, off: usize, size: usize) -> u32 {
        (0..size).fold(0, |v, i| v | (self.config[off + i] as u32) << (8 * i))
    }

    fn write(&mut self, off: usize, size: usize, value: u32) {
        for i in 0..size {
            let reg = off + i;
            let byte = (value >> (8 * i)) as u8;
            match reg {
                // Command register: I/O, memory, bus master, INTx disable.
                4 => self.config[4] = byte & 0x07,
                5 => self.config[5] = byte & 0x04,
                // Status bits are write-1-to-clear; none is ever set.
                0x3C => self.config[reg] = byte, // interrupt line
                0x10..=0x27 => {}
                _ => {} // everything else is read-only
            }
        }
        // BARs are written as whole dwords by Linux; handle sizing and moves.
        for b in 0..self.nr_bars {
            let (bar_off, bar_size, type_bits) = self.bars[b];
            if off <= bar_off && bar_off + 4 <= off + size {
                let v = value >> (8 * (bar_off - off));
                let base = v & !(bar_size - 1);
                self.put(bar_off, base | type_bits, 4);
            }
        }
    }
}

/// Bus 0 with its two devices, behind configuration mechanism #1.
#[derive(Clone, Debug)]
pub struct PciBus {
    address: u32,
    host_bridge: Function,
    platform: Function,
}

impl Default for PciBus {
    fn default() -> Self {
        Self::new()
    }
}

impl PciBus {
    /// The bus with BARs pre-assigned, as firmware would leave them.
    pub fn new() -> Self {
        let host_bridge = Function::new(0x8086, 0x1237, 0x06_00_00, 2);
        let mut platform = Function::new(0x5853, 0x0001, 0xFF_80_00, 1);
        platform.put(0x2C, 0x5853, 2); // subsystem vendor
        platform.put(0x2E, 0x0001, 2); // subsystem id
        platform.config[0x3D] = 1; // INTA
        platform.config[4] = 0x03; // I/O and memory decoding on
        platform.add_bar(0x10, PLATFORM_BAR0_SIZE, 1, PLATFORM_BAR0_PORT as u32);
        platform.add_bar(0x14, PLATFORM_BAR1_SIZE, 0x8, PLATFORM_BAR1_GPA); // prefetchable
        PciBus {
            address: 0,
            host_bridge,
            platform,
        }
    }

    /// Whether `port` is the address or data port.
    pub fn handles_port(&self, port: u16) -> bool {
        (CONFIG_ADDRESS..CONFIG_ADDRESS + 4).contains(&port)
            || (CONFIG_DATA..CONFIG_DATA + 4).contains(&port)
    }

    fn target(&mut self, port: u16, size: u8) -> Option<(&mut Function, usize)> {
        if self.address & 0x8000_0000 == 0 {
            return None;
        }
        let bus = (self.address >> 16) & 0xFF;
        let slot = ((self.address >> 11) & 0x1F) as u8;
        let func = (self.address >> 8) & 7;
        let off = (self.address & 0xFC) as usize + (port - CONFIG_DATA) as usize;
        if bus != 0 || func != 0 || off + size as usize > 256 {
            return None;
        }
        match slot {
            0 => Some((&mut self.host_bridge, off)),
            PLATFORM_SLOT => Some((&mut self.platform, off)),
            _ => None,
        }
    }

    /// A read of `size` bytes; absent devices read all-ones.
    pub fn io_read(&mut self, port: u16, size: u8) -> u32 {
        if port == CONFIG_ADDRESS && size == 4 {
            return self.address;
        }
        if !(CONFIG_DATA..CONFIG_DATA + 4).contains(&port) {
            return u32::MAX;
        }
        match self.target(port, size) {
            Some((f, off)) => f.read(off, size as usize),
            None => u32::MAX,
        }
    }

    /// A write of `size` bytes; writes to absent devices are dropped.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32) {
        if port == CONFIG_ADDRESS && size == 4 {
            self.address = value & 0x80FF_FFFC;
            return;
        }
        if let Some((f, off)) = self.target(port, size) {
            f.write(off, size as usize, value);
        }
    }

    /// Where the guest's BAR1 of the platform device currently is.
    pub fn platform_bar1(&self) -> u64 {
        (self.platform.read(0x14, 4) & !0xF) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_read(bus: &mut PciBus, slot: u32, reg: u32) -> u32 {
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (slot << 11) | reg);
        bus.io_read(CONFIG_DATA, 4)
    }

    #[test]
    fn address_port_reads_back() {
        let mut bus = PciBus::new();
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000);
        assert_eq!(bus.io_read(CONFIG_ADDRESS, 4), 0x8000_0000);
    }

    #[test]
    fn devices_and_absent_slots() {
        let mut bus = PciBus::new();
        assert_eq!(cfg_read(&mut bus, 0, 0), 0x1237_8086);
        assert_eq!(cfg_read(&mut bus, 0, 8) >> 8, 0x06_00_00);
        assert_eq!(cfg_read(&mut bus, 2, 0), 0x0001_5853);
        assert_eq!(cfg_read(&mut bus, 2, 8), 0xFF80_0001);
        assert_eq!(cfg_read(&mut bus, 2, 0x2C), 0x0001_5853);
        assert_eq!(cfg_read(&mut bus, 1, 0), u32::MAX);
        assert_eq!(cfg_read(&mut bus, 2, 0x10), 0xC001);
        assert_eq!(cfg_read(&mut bus, 2, 0x14), 0xF000_0008);
        // A 16-bit read at offset 2 of the platform device.
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (2 << 11));
        assert_eq!(bus.io_read(CONFIG_DATA + 2, 2), 0x0001);
    }

    #[test]
    fn bar_sizing_and_move() {
        let mut bus = PciBus::new();
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (2 << 11) | 0x14);
        bus.io_write(CONFIG_DATA, 4, u32::MAX);
        assert_eq!(bus.io_read(CONFIG_DATA, 4), 0xFF00_0008);
        bus.io_write(CONFIG_DATA, 4, 0xE000_0000);
        assert_eq!(bus.platform_bar1(), 0xE000_0000);
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (2 << 11) | 0x10);
        bus.io_write(CONFIG_DATA, 4, u32::MAX);
        assert_eq!(bus.io_read(CONFIG_DATA, 4), 0xFFFF_FF01);
        // Read-only identity.
        bus.io_write(CONFIG_ADDRESS, 4, 0x8000_0000 | (2 << 11));
        bus.io_write(CONFIG_DATA, 4, 0);
        assert_eq!(bus.io_read(CONFIG_DATA, 4), 0x0001_5853);
    }
}
