//! One domain's connection: its watches, open transactions, partial input and queued output.

use crate::acct;
use crate::perms::Who;
use crate::ring::{
    copy_from_ring, copy_to_ring, read_u32, write_u32, RingPage, REQ_CONS_OFFSET, REQ_OFFSET,
    REQ_PROD_OFFSET, RSP_CONS_OFFSET, RSP_OFFSET, RSP_PROD_OFFSET,
};
use crate::tree::Transaction;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use guest_abi::xenstore::{
    XENSTORE_ERROR_PROTO, XENSTORE_ERROR_RINGIDX, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE,
    XS_ERROR, XS_WATCH_EVENT,
};

/// Size of `struct xsd_sockmsg`.
pub(crate) const HEADER_LEN: usize = 16;

/// A registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Watch {
    /// Canonical path (absolute, or `@special`).
    pub path: String,
    /// The client's token, echoed in events.
    pub token: Vec<u8>,
    /// Bytes to strip from event paths (`/local/domain/<n>/` for a relative watch, else 0).
    pub prefix_len: usize,
}

impl Watch {
    /// Whether an event on `path` (exact-only if `exact`) matches this watch.
    pub fn matches(&self, path: &str, exact: bool) -> bool {
        if exact {
            self.path == path
        } else {
            crate::path::is_child(path, &self.path)
        }
    }

    /// The path this watch reports for an event on `path`.
    pub fn event_path<'p>(&self, path: &'p str) -> &'p str {
        path.get(self.prefix_len..).unwrap_or(path)
    }
}

/// A complete request read from the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// `XS_*`.
    pub ty: u32,
    /// Echoed in the reply.
    pub req_id: u32,
    /// Transaction, or 0.
    pub tx_id: u32,
    /// `len` payload bytes.
    pub payload: Vec<u8>,
}

/// Encodes one message (header + payload).
pub(crate) fn encode(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + payload.len());
    for v in [ty, req_id, tx_id, payload.len() as u32] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(payload);
    m
}

/// Payloads up to this size are queued even past the memory quota (xenstored's
/// `DEFAULT_BUFFER_SIZE`, enough for every error name): a reply can always say `ENOMEM`.
pub(crate) const SMALL_PAYLOAD: usize = 16;

/// A queued message.
#[derive(Clone, Debug)]
pub(crate) struct OutMsg {
    bytes: Vec<u8>,
    event: bool,
}

/// A domain's connection state.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    /// The domain.
    pub domid: u16,
    /// `SET_TARGET`: the domain this one may act for.
    pub target: Option<u16>,
    /// Registered watches, in registration order (changed only through
    /// [`add_watch`](Self::add_watch) and friends, which keep `watch_bytes`).
    watches: Vec<Watch>,
    watch_bytes: usize,
    /// Open transactions by id.
    pub transactions: BTreeMap<u32, Transaction>,
    next_tx: u32,
    /// The request being received (header, then payload).
    input: Vec<u8>,
    /// Whole messages to send; the first may be partly written already.
    out: VecDeque<OutMsg>,
    /// Bytes of the first queued message already in the ring.
    out_off: usize,
    /// Heap bytes of `out` ([`acct::out_msg`] of each message).
    out_bytes: usize,
    replies: usize,
    events: usize,
    /// Set when the connection was shut down for a protocol error (`XENSTORE_ERROR_*`).
    pub error: Option<u32>,
    /// The domain's memory quota in bytes (`Config::max_memory` unless set otherwise).
    pub quota: usize,
}

impl Connection {
    /// A fresh connection for `domid` with a memory quota of `quota` bytes.
    pub fn new(domid: u16, quota: usize) -> Connection {
        Connection {
            domid,
            target: None,
            watches: Vec::new(),
            watch_bytes: 0,
            transactions: BTreeMap::new(),
            next_tx: 1,
            input: Vec::new(),
            out: VecDeque::new(),
            out_off: 0,
            out_bytes: 0,
            replies: 0,
            events: 0,
            error: None,
            quota,
        }
    }

    /// Heap bytes this connection holds: itself, its watches, transactions (records and
    /// copies), queued output and partial request. The nodes the domain owns are the tree's.
    pub fn bytes(&self) -> usize {
        acct::CONNECTION
            + self.watch_bytes
            + self.out_bytes
            + acct::block(self.input.capacity())
            + self.transactions.values().map(|t| t.bytes()).sum::<usize>()
    }

    /// The registered watches, in registration order.
    pub fn watches(&self) -> &[Watch] {
        &self.watches
    }

    /// Registers a watch.
    pub fn add_watch(&mut self, w: Watch) {
        self.watch_bytes += acct::watch(&w);
        self.watches.push(w);
    }

    /// Removes the watch at index `i`, if there is one.
    pub fn remove_watch(&mut self, i: usize) {
        if i < self.watches.len() {
            let w = self.watches.remove(i);
            self.watch_bytes -= acct::watch(&w);
        }
    }

    /// Removes every watch.
    pub fn clear_watches(&mut self) {
        self.watches.clear();
        self.watch_bytes = 0;
    }

    /// The permission identity of this connection.
    pub fn who(&self) -> Who {
        Who::domu(self.domid, self.target)
    }

    /// Drops watches, transactions, partial input, queued output and any error.
    pub fn reset(&mut self) {
        let (domid, target) = (self.domid, self.target);
        *self = Connection::new(domid, self.quota);
        self.target = target;
    }

    /// Shuts the connection down with `code` (everything is dropped; it stays ignored).
    pub fn fail(&mut self, code: u32) {
        self.reset();
        self.error = Some(code);
    }

    /// An unused transaction id (never 0).
    pub fn alloc_tx_id(&mut self) -> u32 {
        loop {
            let id = self.next_tx;
            self.next_tx = self.next_tx.wrapping_add(1);
            if id != 0 && !self.transactions.contains_key(&id) {
                return id;
            }
        }
    }

    /// The bytes the domain may still be charged, given that its nodes take `node_bytes`.
    pub fn room(&self, node_bytes: usize) -> usize {
        self.quota.saturating_sub(node_bytes + self.bytes())
    }

    /// Queues a reply. One whose payload is over [`SMALL_PAYLOAD`] bytes and does not fit in
    /// the memory quota (the domain's nodes taking `node_bytes`) becomes an `ENOMEM` error, as
    /// xenstored's `send_reply`.
    pub fn queue_reply(
        &mut self,
        ty: u32,
        req_id: u32,
        tx_id: u32,
        payload: &[u8],
        node_bytes: usize,
    ) {
        let cost = acct::out_msg(HEADER_LEN + payload.len());
        let bytes = if payload.len() > SMALL_PAYLOAD && cost > self.room(node_bytes) {
            encode(XS_ERROR, req_id, tx_id, b"ENOMEM\0")
        } else {
            encode(ty, req_id, tx_id, payload)
        };
        self.out_bytes += acct::out_msg(bytes.len());
        self.out.push_back(OutMsg {
            bytes,
            event: false,
        });
        self.replies += 1;
    }

    /// Queues a watch event unless it is too long, an identical one is already waiting (not
    /// for `@` paths, as xenstored), `max` events are queued, or it does not fit in the memory
    /// quota (the domain's nodes taking `node_bytes`; xenstored's `send_event` drops it then
    /// too). True if queued.
    pub fn queue_event(&mut self, path: &str, token: &[u8], max: usize, node_bytes: usize) -> bool {
        let len = path.len() + token.len() + 2;
        if len > XENSTORE_PAYLOAD_MAX
            || self.events >= max
            || acct::out_msg(HEADER_LEN + len) > self.room(node_bytes)
        {
            return false;
        }
        let mut payload = Vec::with_capacity(len);
        payload.extend_from_slice(path.as_bytes());
        payload.push(0);
        payload.extend_from_slice(token);
        payload.push(0);
        let bytes = encode(XS_WATCH_EVENT, 0, 0, &payload);
        let skip = usize::from(self.out_off > 0);
        if !path.starts_with('@')
            && self
                .out
                .iter()
                .skip(skip)
                .any(|m| m.event && m.bytes == bytes)
        {
            return false;
        }
        self.out_bytes += acct::out_msg(bytes.len());
        self.out.push_back(OutMsg { bytes, event: true });
        self.events += 1;
        true
    }

    /// Whether output is waiting.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Replies queued and not yet completely written.
    pub fn outstanding(&self) -> usize {
        self.replies
    }

    /// Writes queued output into the response ring, in order, as far as there is room.
    /// Returns the bytes written, or the error code for inconsistent indices.
    pub fn flush<P: RingPage + ?Sized>(&mut self, page: &mut P) -> Result<usize, u32> {
        if self.out.is_empty() {
            return Ok(0);
        }
        let cons = read_u32(page, RSP_CONS_OFFSET);
        let prod = read_u32(page, RSP_PROD_OFFSET);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENSTORE_RING_SIZE {
            return Err(XENSTORE_ERROR_RINGIDX);
        }
        page.barrier();
        let mut free = XENSTORE_RING_SIZE - used;
        let mut idx = prod;
        let mut written = 0;
        while free > 0 {
            let Some(front) = self.out.front() else {
                break;
            };
            let rest = &front.bytes[self.out_off..];
            let n = rest.len().min(free);
            copy_to_ring(page, RSP_OFFSET, idx, &rest[..n]);
            idx = idx.wrapping_add(n as u32);
            free -= n;
            written += n;
            self.out_off += n;
            if self.out_off == front.bytes.len() {
                if front.event {
                    self.events -= 1;
                } else {
                    self.replies -= 1;
                }
                self.out_bytes -= acct::out_msg(front.bytes.len());
                self.out.pop_front();
                self.out_off = 0;
            }
        }
        if written > 0 {
            page.barrier();
            write_u32(page, RSP_PROD_OFFSET, idx);
        }
        Ok(written)
    }

    /// Consumes request bytes from the ring, never past the end of the current message.
    /// Returns the bytes consumed and the request if it is now complete, or the error code
    /// for inconsistent indices (`XENSTORE_ERROR_RINGIDX`) or a payload length over
    /// `XENSTORE_PAYLOAD_MAX` (`XENSTORE_ERROR_PROTO`, checked as soon as the header is in,
    /// before any payload byte is read). The header is copied out of the ring once, so a guest
    /// rewriting it afterwards changes nothing.
    pub fn receive<P: RingPage + ?Sized>(
        &mut self,
        page: &mut P,
    ) -> Result<(usize, Option<Request>), u32> {
        let cons = read_u32(page, REQ_CONS_OFFSET);
        let prod = read_u32(page, REQ_PROD_OFFSET);
        let avail = prod.wrapping_sub(cons) as usize;
        if avail > XENSTORE_RING_SIZE {
            return Err(XENSTORE_ERROR_RINGIDX);
        }
        let mut n = 0;
        if self.input.len() < HEADER_LEN {
            n = self.take(page, cons, avail, HEADER_LEN - self.input.len());
        }
        let Some(len) = self.payload_len() else {
            return Ok((n, None));
        };
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(XENSTORE_ERROR_PROTO);
        }
        let missing = HEADER_LEN + len - self.input.len();
        if missing > 0 {
            self.input.reserve_exact(missing);
            n += self.take(page, cons.wrapping_add(n as u32), avail - n, missing);
        }
        if self.input.len() < HEADER_LEN + len {
            return Ok((n, None));
        }
        let mut msg = core::mem::take(&mut self.input);
        let word = |i: usize| u32::from_le_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
        let (ty, req_id, tx_id) = (word(0), word(4), word(8));
        msg.drain(..HEADER_LEN);
        let req = Request {
            ty,
            req_id,
            tx_id,
            payload: msg,
        };
        Ok((n, Some(req)))
    }

    /// Appends up to `want` of the `avail` bytes at ring index `cons` to the input and
    /// advances `req_cons` past them; returns how many.
    fn take<P: RingPage + ?Sized>(
        &mut self,
        page: &mut P,
        cons: u32,
        avail: usize,
        want: usize,
    ) -> usize {
        let n = want.min(avail);
        if n > 0 {
            page.barrier();
            let start = self.input.len();
            self.input.resize(start + n, 0);
            copy_from_ring(page, REQ_OFFSET, cons, &mut self.input[start..]);
            page.barrier();
            write_u32(page, REQ_CONS_OFFSET, cons.wrapping_add(n as u32));
        }
        n
    }

    /// Whether the cached byte counts match what is held (tests).
    #[cfg(test)]
    pub fn check_bytes(&self) -> bool {
        let out: usize = self.out.iter().map(|m| acct::out_msg(m.bytes.len())).sum();
        let watches: usize = self.watches.iter().map(acct::watch).sum();
        out == self.out_bytes
            && watches == self.watch_bytes
            && self.transactions.values().all(|t| t.check_bytes())
    }

    /// The payload length of the message being received, once its header is complete.
    fn payload_len(&self) -> Option<usize> {
        let h = self.input.get(12..16)?;
        Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
    }
}
