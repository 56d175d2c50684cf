//! A shared ring page the backend holds through a grant for as long as the vif
//! is connected (as Linux's netback keeps its ring mapping), with Xen's
//! `BACK_RING` bookkeeping (`io/ring.h`).
//!
//! The page is shared with the guest, so every index read from it is checked
//! by the caller before use, and the backend's own indices (`req_cons`,
//! `rsp_prod_pvt`, the last `rsp_prod` pushed) live here, never re-read from
//! the page.

use crate::RING_SIZE;
use guest_abi::ring::{need_notify, SRING_ENTRIES_OFFSET};
use hypercalls::gnttab::{GrantAccess, GrantError};
use hypercalls::{Domain, Host};

const REQ_PROD: u64 = 0;
const REQ_EVENT: u64 = 4;
const RSP_PROD: u64 = 8;
const RSP_EVENT: u64 = 12;

/// Why [`Ring::attach`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttachError {
    /// The page's grant cannot be used.
    Grant(GrantError),
    /// The page's indices are inconsistent.
    Overflow {
        /// Its `req_prod`.
        req_prod: u32,
        /// Its `rsp_prod`.
        rsp_prod: u32,
    },
}

/// The backend end of one shared ring.
#[derive(Debug)]
pub(crate) struct Ring {
    /// The held grant (`GTF_reading|GTF_writing` stay set while held).
    access: GrantAccess,
    /// Size of one entry (12 for TX, 8 for RX).
    entry_size: u64,
    /// Next request to consume.
    pub req_cons: u32,
    /// Next response slot to fill (private until pushed).
    pub rsp_prod_pvt: u32,
    /// The `rsp_prod` last written to the page.
    rsp_pushed: u32,
}

impl Ring {
    /// Takes the ring page granted by `gref` (it must be writable for domain 0)
    /// and attaches to it as `BACK_RING_ATTACH` does: consumption resumes at the
    /// page's `rsp_prod`. Fails if `req_prod` is already more than a ring's
    /// worth past that (the grant is released again).
    pub fn attach(
        dom: &mut Domain,
        host: &mut impl Host,
        gref: u32,
        entry_size: u64,
    ) -> Result<Ring, AttachError> {
        let access = dom
            .grant_acquire(host, gref, hypercalls::evtchn::BACKEND_DOMID, true)
            .map_err(AttachError::Grant)?;
        let mut ring = Ring {
            access,
            entry_size,
            req_cons: 0,
            rsp_prod_pvt: 0,
            rsp_pushed: 0,
        };
        let rsp = ring.read(host, RSP_PROD);
        let req = ring.read(host, REQ_PROD);
        if req.wrapping_sub(rsp) > RING_SIZE {
            ring.release(dom, host);
            return Err(AttachError::Overflow {
                req_prod: req,
                rsp_prod: rsp,
            });
        }
        ring.req_cons = rsp;
        ring.rsp_prod_pvt = rsp;
        ring.rsp_pushed = rsp;
        Ok(ring)
    }

    /// Gives the page's grant back (clears `GTF_reading|GTF_writing`).
    pub fn release(self, dom: &mut Domain, host: &mut impl Host) {
        dom.grant_release(host, self.access);
    }

    /// The grant reference of the page.
    pub fn gref(&self) -> u32 {
        self.access.gref
    }

    fn read(&self, host: &impl Host, off: u64) -> u32 {
        let mut b = [0u8; 4];
        host.read_phys(self.access.hpa + off, &mut b);
        u32::from_le_bytes(b)
    }

    fn write(&self, host: &mut impl Host, off: u64, v: u32) {
        host.write_phys(self.access.hpa + off, &v.to_le_bytes());
    }

    /// `req_prod req_event rsp_prod rsp_event` on the page, then the
    /// backend's `req_cons`, for diagnostics.
    pub fn describe(&self, host: &impl Host) -> alloc::string::String {
        alloc::format!(
            "req_prod {} req_event {} rsp_prod {} rsp_event {} req_cons {}",
            self.read(host, REQ_PROD),
            self.read(host, REQ_EVENT),
            self.read(host, RSP_PROD),
            self.read(host, RSP_EVENT),
            self.req_cons
        )
    }

    /// The frontend's `req_prod` (unchecked: see [`Ring::unconsumed`]).
    pub fn req_prod(&self, host: &impl Host) -> u32 {
        self.read(host, REQ_PROD)
    }

    /// Requests produced and not consumed, or `Err(req_prod)` when that is more
    /// than the ring holds (the frontend overwrote requests it had not got
    /// responses for, or the index is garbage).
    pub fn unconsumed(&self, host: &impl Host) -> Result<u32, u32> {
        let prod = self.req_prod(host);
        match prod.wrapping_sub(self.req_cons) {
            n if n <= RING_SIZE => Ok(n),
            _ => Err(prod),
        }
    }

    /// Asks for an event when `req_prod` reaches `v`.
    pub fn set_req_event(&self, host: &mut impl Host, v: u32) {
        self.write(host, REQ_EVENT, v);
    }

    /// Copies the entry at ring index `idx` (masked) into `buf`.
    pub fn read_entry(&self, host: &impl Host, idx: u32, buf: &mut [u8]) {
        let n = buf.len().min(self.entry_size as usize);
        host.read_phys(self.entry_hpa(idx), &mut buf[..n]);
    }

    /// Writes `data` at the start of the entry at ring index `idx` (masked).
    pub fn write_entry(&self, host: &mut impl Host, idx: u32, data: &[u8]) {
        let n = data.len().min(self.entry_size as usize);
        host.write_phys(self.entry_hpa(idx), &data[..n]);
    }

    fn entry_hpa(&self, idx: u32) -> u64 {
        self.access.hpa
            + SRING_ENTRIES_OFFSET as u64
            + (idx & (RING_SIZE - 1)) as u64 * self.entry_size
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: publishes the responses filled
    /// since the last push; whether the frontend asked to be told (its
    /// `rsp_event` lies in the newly published range).
    pub fn push_responses(&mut self, host: &mut impl Host) -> bool {
        let (old, new) = (self.rsp_pushed, self.rsp_prod_pvt);
        if old == new {
            return false;
        }
        self.write(host, RSP_PROD, new);
        self.rsp_pushed = new;
        need_notify(old, new, self.read(host, RSP_EVENT))
    }
}
