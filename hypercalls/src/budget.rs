//! Heap budgets: what a domain may make the hypervisor hold on its heap, worked
//! out from its configuration, and the ledger that admits a domain only when its
//! whole budget fits beside everyone else's.
//!
//! Everything a guest can make the hypervisor allocate is bounded per domain:
//! event channels by the domain's `event_channels` (its highest port), grant frames by
//! [`crate::gnttab::MAX_GRANT_FRAMES`], poll sets by `MAX_POLL_PORTS`, p2m records
//! by the p2m's `max_extents`, xenstore by its per-domain quotas, a vif's buffers
//! by its pool. The sum of those bounds is the domain's budget; the hypervisor
//! reserves it from the heap when it builds the domain (as Xen checks a domain's
//! memory against the host's free pages) and refuses a domain whose budget does
//! not fit, so that no guest action can run the shared heap dry.

use alloc::vec::Vec;
use core::fmt;

/// Bytes the heap spends on one p2m extent record (a B-tree entry of 40 bytes and
/// its share of the node).
pub const P2M_EXTENT_BYTES: u64 = 64;

/// Bytes of hypercall-side state a vCPU may hold at most: its `Vcpu` record and
/// a full `SCHEDOP_poll` port list.
pub const VCPU_STATE_BYTES: u64 =
    core::mem::size_of::<crate::vcpu::Vcpu>() as u64 + 4 * crate::sched::MAX_POLL_PORTS as u64;

/// Bytes the event-channel state may grow to with ports `0..=max_port` allocated and
/// `nr_vcpus` vCPUs: the port table and its backend-kick bits (vectors that grow by
/// doubling, so up to the next power of two of entries), and the FIFO ABI's per-vCPU
/// queues and per-port records.
pub const fn evtchn_table_bytes(nr_vcpus: u32, max_port: u32) -> u64 {
    let slots = (max_port as u64 + 1).next_power_of_two();
    slots * core::mem::size_of::<crate::evtchn::Port>() as u64
        + slots / 8
        + crate::evtchn_fifo::heap_bytes(nr_vcpus, slots as u32)
}

/// Bytes of grant-table bookkeeping at most: frames records and an active entry
/// for every grant reference.
pub const GRANT_TABLE_BYTES: u64 = crate::gnttab::MAX_GRANT_FRAMES as u64 * (64 + 512 * 48);

/// A domain's heap budget, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapBudget {
    /// Hypercall state: event channels, grant table, vCPUs, console line.
    pub hypercall: u64,
    /// p2m extent records.
    pub p2m: u64,
    /// xenstore: nodes, transactions, watches, queued replies and events.
    pub xenstore: u64,
    /// Network buffers of its vifs (their pools, made when the vif is).
    pub vifs: u64,
}

impl HeapBudget {
    /// The budget of a domain with `nr_vcpus` vCPUs, event-channel ports up to
    /// `max_evtchn_port`, a p2m of at most `max_extents` records, a xenstore quota of
    /// `xenstore_bytes` and vifs whose pools take `vif_bytes` together.
    pub fn for_domain(
        nr_vcpus: u32,
        max_evtchn_port: u32,
        max_extents: usize,
        xenstore_bytes: u64,
        vif_bytes: u64,
    ) -> Self {
        HeapBudget {
            hypercall: evtchn_table_bytes(nr_vcpus, max_evtchn_port)
                + GRANT_TABLE_BYTES
                + nr_vcpus as u64 * VCPU_STATE_BYTES
                + crate::console::MAX_LINE as u64
                + core::mem::size_of::<crate::Domain>() as u64,
            p2m: max_extents as u64 * P2M_EXTENT_BYTES,
            xenstore: xenstore_bytes,
            vifs: vif_bytes,
        }
    }

    /// The whole budget.
    pub fn total(&self) -> u64 {
        self.hypercall + self.p2m + self.xenstore + self.vifs
    }
}

impl fmt::Display for HeapBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} KiB (hypercall state {} KiB, p2m {} KiB, xenstore {} KiB, vifs {} KiB)",
            self.total() >> 10,
            self.hypercall >> 10,
            self.p2m >> 10,
            self.xenstore >> 10,
            self.vifs >> 10
        )
    }
}

/// A budget that does not fit: what it asked for and what was left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// Bytes asked for.
    pub wanted: u64,
    /// Bytes still unreserved.
    pub available: u64,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its heap budget of {} KiB exceeds the {} KiB the hypervisor has left",
            self.wanted >> 10,
            self.available >> 10
        )
    }
}

/// The heap reservations of every live domain.
#[derive(Debug)]
pub struct HeapLedger {
    capacity: u64,
    reserved: Vec<(u16, u64)>,
}

impl HeapLedger {
    /// A ledger over `capacity` bytes (the heap less what the hypervisor keeps
    /// for itself).
    pub const fn new(capacity: u64) -> Self {
        HeapLedger {
            capacity,
            reserved: Vec::new(),
        }
    }

    /// Bytes not reserved by any domain.
    pub fn available(&self) -> u64 {
        self.capacity - self.reserved.iter().map(|&(_, b)| b).sum::<u64>()
    }

    /// Reserves `bytes` for `domid` (replacing an earlier reservation of it),
    /// or says why not; nothing changes on failure.
    pub fn reserve(&mut self, domid: u16, bytes: u64) -> Result<(), OverBudget> {
        self.release(domid);
        let available = self.available();
        if bytes > available {
            return Err(OverBudget {
                wanted: bytes,
                available,
            });
        }
        self.reserved.push((domid, bytes));
        Ok(())
    }

    /// Gives back what `domid` reserved (at its teardown).
    pub fn release(&mut self, domid: u16) {
        self.reserved.retain(|&(d, _)| d != domid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_add_up_and_count_every_part() {
        let b = HeapBudget::for_domain(2, 1023, 4096, 1 << 20, 3 << 20);
        assert_eq!(b.p2m, 4096 * P2M_EXTENT_BYTES);
        assert_eq!(b.total(), b.hypercall + b.p2m + (1 << 20) + (3 << 20));
        assert!(
            b.hypercall >= evtchn_table_bytes(2, 1023) + GRANT_TABLE_BYTES + 2 * VCPU_STATE_BYTES
        );
        let one = HeapBudget::for_domain(1, 1023, 4096, 1 << 20, 3 << 20);
        assert_eq!(
            b.total() - one.total(),
            VCPU_STATE_BYTES + evtchn_table_bytes(2, 1023) - evtchn_table_bytes(1, 1023)
        );
        // Every FIFO port a domain may have is charged to it.
        let fifo = HeapBudget::for_domain(2, 131_071, 4096, 1 << 20, 3 << 20);
        let ports = 131_072 * core::mem::size_of::<crate::evtchn::Port>() as u64;
        assert!(fifo.hypercall - b.hypercall >= ports - 1024 * ports / 131_072);
        assert!(b.to_string().contains("xenstore 1024 KiB"));
    }

    #[test]
    fn ledger_admits_only_what_fits() {
        let mut l = HeapLedger::new(10 << 20);
        l.reserve(1, 4 << 20).unwrap();
        l.reserve(2, 4 << 20).unwrap();
        let e = l.reserve(3, 4 << 20).unwrap_err();
        assert_eq!(
            e,
            OverBudget {
                wanted: 4 << 20,
                available: 2 << 20
            }
        );
        assert_eq!(l.available(), 2 << 20, "a refused domain reserves nothing");
        l.release(1);
        l.reserve(3, 4 << 20).unwrap();
        assert_eq!(l.available(), 2 << 20);
        // Reserving again replaces the earlier reservation.
        l.reserve(3, 1 << 20).unwrap();
        assert_eq!(l.available(), 5 << 20);
        assert!(e.to_string().contains("4096 KiB exceeds the 2048 KiB"));
    }
}
