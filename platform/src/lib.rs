//! Emulated platform devices of an HVM domain, as plain data: PCI configuration mechanism 1
//! with a host bridge and the Xen platform device, the Xen unplug ports, the local APIC, ACPI
//! tables, the e820 map and hvmloader's MTRR layout.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
