//! An in-memory [`EptTableMemory`] for host tests, examples and benchmarks.

use crate::EptTableMemory;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;

/// EPT tables kept in a map from fake host-physical addresses to 512-entry arrays.
#[derive(Debug, Default)]
pub struct TestMem {
    tables: BTreeMap<u64, Box<[u64; 512]>>,
    next: u64,
    /// Maximum number of live tables; `alloc_table` fails beyond it.
    pub limit: Option<usize>,
    /// Tables allocated so far.
    pub allocs: u64,
    /// Tables freed so far.
    pub frees: u64,
}

impl TestMem {
    /// No table allocated; fake addresses start at 16 MiB.
    pub fn new() -> TestMem {
        TestMem {
            next: 0x100_0000,
            ..TestMem::default()
        }
    }

    /// Tables currently allocated.
    pub fn live(&self) -> usize {
        self.tables.len()
    }

    fn table(&self, table: u64) -> &[u64; 512] {
        self.tables
            .get(&table)
            .unwrap_or_else(|| panic!("no EPT table at {table:#x}"))
    }
}

impl EptTableMemory for TestMem {
    fn alloc_table(&mut self) -> Option<u64> {
        if self.limit.is_some_and(|l| self.tables.len() >= l) {
            return None;
        }
        let a = self.next;
        self.next += 0x1000;
        self.allocs += 1;
        self.tables.insert(a, Box::new([0; 512]));
        Some(a)
    }

    fn free_table(&mut self, table: u64) {
        assert!(
            self.tables.remove(&table).is_some(),
            "double free of EPT table {table:#x}"
        );
        self.frees += 1;
    }

    fn read_entry(&self, table: u64, index: usize) -> u64 {
        self.table(table)[index]
    }

    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        let t = self.tables.get_mut(&table);
        t.unwrap_or_else(|| panic!("no EPT table at {table:#x}"))[index] = value;
    }
}
