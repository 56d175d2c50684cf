//! Helpers shared by the integration tests.
#![allow(dead_code)]

use p2m::testmem::TestMem;
use p2m::{EptTableMemory, MemType, P2m, P2mConfig};

/// One EPT leaf: first gfn, order, raw entry.
#[derive(Clone, Copy, Debug)]
pub struct Leaf {
    pub gfn: u64,
    pub order: u32,
    pub entry: u64,
}

impl Leaf {
    pub fn mfn(&self) -> u64 {
        (self.entry & 0x000F_FFFF_FFFF_F000) >> 12
    }
    pub fn mem_type(&self) -> Option<MemType> {
        MemType::try_from(((self.entry >> 3) & 7) as u8).ok()
    }
    pub fn ipat(&self) -> bool {
        self.entry & (1 << 6) != 0
    }
    pub fn rights(&self) -> u64 {
        self.entry & 7
    }
}

/// The shape of an EPT: its leaves in gfn order, tables reachable (root included), and
/// non-root tables with no present entry.
#[derive(Debug, Default)]
pub struct Shape {
    pub leaves: Vec<Leaf>,
    pub tables: usize,
    pub empty_tables: usize,
}

pub fn shape(mem: &TestMem, p2m: &P2m) -> Shape {
    let mut s = Shape::default();
    walk(mem, p2m.eptp() & !0xFFF, 4, 0, &mut s);
    s
}

fn walk(mem: &TestMem, table: u64, level: u32, base: u64, s: &mut Shape) {
    s.tables += 1;
    let order = 9 * (level - 1);
    let mut any = false;
    for i in 0..512 {
        let e = mem.read_entry(table, i);
        if e & 7 == 0 {
            continue;
        }
        any = true;
        let gfn = base + ((i as u64) << order);
        if level == 1 || (level < 4 && e & 0x80 != 0) {
            s.leaves.push(Leaf {
                gfn,
                order,
                entry: e,
            });
        } else {
            walk(mem, e & 0x000F_FFFF_FFFF_F000, level - 1, gfn, s);
        }
    }
    if !any && level < 4 {
        s.empty_tables += 1;
    }
}

/// Leaves of a given order.
pub fn count_order(s: &Shape, order: u32) -> usize {
    s.leaves.iter().filter(|l| l.order == order).count()
}

pub fn honouring() -> P2mConfig {
    P2mConfig {
        honour_guest_mem_types: true,
        ..P2mConfig::default()
    }
}

/// PHYSBASE/PHYSMASK MSR values for `size` frames (a power of two) at gfn `base`.
pub fn var_msrs(base: u64, size: u64, ty: MemType) -> (u64, u64) {
    (
        (base << 12) | ty as u64,
        (!((size << 12) - 1) & 0x000F_FFFF_FFFF_F000) | 0x800,
    )
}
