//! The hypervisor's xenstore: one server (crate `xenstore`) for every domain,
//! reached by each guest through its store ring page.

use alloc::vec::Vec;
use spin::Mutex;
use xenstore::Xenstore;

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
