//! One domain's connection: its watches, open transactions, partial input and queued output.

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
    XS_WATCH_EVENT,
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

#[derive(Debug)]
struct OutMsg {
    bytes: Vec<u8>,
    event: bool,
}

/// A domain's connection state.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The domain.
    pub domid: u16,
    /// `SET_TARGET`: the domain this one may act for.
    pub target: Option<u16>,
    /// Registered watches, in registration order.
    pub watches: Vec<Watch>,
    /// Open transactions by id.
    pub transactions: BTreeMap<u32, Transaction>,
    next_tx: u32,
    /// The request being received (header, then payload).
    input: Vec<u8>,
    /// Whole messages to send; the first may be partly written already.
    out: VecDeque<OutMsg>,
    /// Bytes of the first queued message already in the ring.
    out_off: usize,
    replies: usize,
    events: usize,
    /// Set when the connection was shut down for a protocol error (`XENSTORE_ERROR_*`).
    pub error: Option<u32>,
}

impl Connection {
    /// A fresh connection for `domid`.
    pub fn new(domid: u16) -> Connection {
        Connection {
            domid,
            target: None,
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            next_tx: 1,
            input: Vec::new(),
            out: VecDeque::new(),
            out_off: 0,
            replies: 0,
            events: 0,
            error: None,
        }
    }

    /// The permission identity of this connection.
    pub fn who(&self) -> Who {
        Who::domu(self.domid, self.target)
    }

    /// Drops watches, transactions, partial input, queued output and any error.
    pub fn reset(&mut self) {
        let (domid, target) = (self.domid, self.target);
        *self = Connection::new(domid);
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

    /// Queues a reply.
    pub fn queue_reply(&mut self, ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
        self.out.push_back(OutMsg {
            bytes: encode(ty, req_id, tx_id, payload),
            event: false,
        });
        self.replies += 1;
    }

    /// Queues a watch event unless it is too long, an identical one is already waiting (not
    /// for `@` paths, as xenstored), or `max` events are queued. True if queued.
    pub fn queue_event(&mut self, path: &str, token: &[u8], max: usize) -> bool {
        let mut payload = Vec::with_capacity(path.len() + token.len() + 2);
        payload.extend_from_slice(path.as_bytes());
        payload.push(0);
        payload.extend_from_slice(token);
        payload.push(0);
        if payload.len() > XENSTORE_PAYLOAD_MAX || self.events >= max {
            return false;
        }
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
    /// for inconsistent indices or an oversized payload.
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
        let need = match self.payload_len() {
            None => HEADER_LEN - self.input.len(),
            Some(len) => HEADER_LEN + len - self.input.len(),
        };
        let n = need.min(avail);
        if n > 0 {
            page.barrier();
            let start = self.input.len();
            self.input.resize(start + n, 0);
            copy_from_ring(page, REQ_OFFSET, cons, &mut self.input[start..]);
            page.barrier();
            write_u32(page, REQ_CONS_OFFSET, cons.wrapping_add(n as u32));
        }
        let Some(len) = self.payload_len() else {
            return Ok((n, None));
        };
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(XENSTORE_ERROR_PROTO);
        }
        if self.input.len() < HEADER_LEN + len {
            return Ok((n, None));
        }
        let msg = core::mem::take(&mut self.input);
        let word = |i: usize| u32::from_le_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
        let req = Request {
            ty: word(0),
            req_id: word(4),
            tx_id: word(8),
            payload: msg[HEADER_LEN..].to_vec(),
        };
        Ok((n, Some(req)))
    }

    /// The payload length of the message being received, once its header is complete.
    fn payload_len(&self) -> Option<usize> {
        let h = self.input.get(12..16)?;
        Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
    }
}
