//! The hypervisor's xenstore: one server (crate `xenstore`) for every domain,
//! reached by each guest through its store ring page.

use alloc::vec::Vec;
use spin::Mutex;
use xenstore::{Xenstore, XsError};

/// The heap one domain's xenstore use may take: the store's default memory quota
/// (`xenstore::Config::max_memory`, 4 MiB, derived from C xenstored's `memory` quota). A
/// domain's heap reservation should count this much for xenstore.
pub const DOMAIN_HEAP_BYTES: usize = 4 << 20;

/// What the store may hold for a domain past its quota, which the quota leaves room for:
/// replies of at most 16 bytes (20 outstanding), the partial request (4 KiB) and what dom0
/// (the toolstack, the backends) writes into its nodes, which no quota refuses.
const OVER_QUOTA: usize = 64 << 10;

/// The xenstore server of this hypervisor.
pub static STORE: Mutex<Option<Xenstore>> = Mutex::new(None);

/// A ring page in host memory, accessed with volatile reads and writes.
pub struct PhysRing(pub u64);

impl xenstore::RingPage for PhysRing {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset + buf.len() <= 4096);
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: the page is a hypervisor-owned special page (identity-
            // mapped) shared with the guest; bounds checked above.
            *b = unsafe { core::ptr::read_volatile((self.0 as usize + offset + i) as *const u8) };
        }
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= 4096);
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile((self.0 as usize + offset + i) as *mut u8, b) };
        }
    }
    fn barrier(&self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs `f` with the store, creating it on first use.
pub fn with<R>(f: impl FnOnce(&mut Xenstore) -> R) -> R {
    let mut guard = STORE.lock();
    f(guard.get_or_insert_with(Xenstore::default))
}

/// Serves domain `domid`'s requests on the ring at host-physical `ring_hpa`;
/// returns whether the domain must be signalled, and the other domains to serve.
pub fn serve(domid: u16, ring_hpa: u64) -> (bool, Vec<u16>) {
    with(|xs| {
        let mut ring = PhysRing(ring_hpa);
        let mut notify = false;
        loop {
            let out = xs.process_ring(domid, &mut ring);
            notify |= out.notify;
            if !out.more {
                let mut wake = out.wake;
                wake.extend(xs.pending_domains());
                wake.retain(|&d| d != domid);
                return (notify, wake);
            }
        }
    })
}

/// Introduces `domid` to the store with its memory quota: [`DOMAIN_HEAP_BYTES`] less what may
/// be charged past the quota, so that what the store holds for it stays within that heap.
pub fn introduce(xs: &mut Xenstore, domid: u16) -> Result<(), XsError> {
    let quota = DOMAIN_HEAP_BYTES
        .min(xs.config().max_memory)
        .saturating_sub(OVER_QUOTA);
    xs.introduce_domain(domid)?;
    xs.set_memory_quota(domid, quota)
}

/// Releases `domid` (`RELEASE`, then the toolstack's removal of its nodes) and audits the
/// store's accounting: nothing may be left charged to it.
pub fn release(xs: &mut Xenstore, domid: u16) {
    let held = xs.domain_bytes(domid);
    let _ = xs.release_domain(domid);
    let _ = xenstore::toolstack::depopulate_domain(xs, domid);
    let left = xs.domain_bytes(domid);
    log::debug!("xenstore d{domid}: held {held} bytes at release, {left} left");
    if left != 0 {
        log::warn!("xenstore d{domid}: {left} bytes still charged after release");
    }
}
