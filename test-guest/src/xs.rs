//! A minimal xenstore client on the domain's ring page (`HVM_PARAM_STORE_PFN`, event channel
//! `HVM_PARAM_STORE_EVTCHN`), speaking `xs_wire.h` as Linux's xenbus does: a request is written
//! into the 1 KiB request ring as space allows, the store port is kicked, and replies and watch
//! events are read from the response ring. Every wait has a deadline.
//!
//! The hypervisor serves the ring when the port is kicked (during the `EVTCHNOP_send`), so a
//! waiting client kicks and yields in turn.

use core::fmt;

use guest_abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use guest_abi::xenstore::{
    XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE, XS_ERROR, XS_READ, XS_TRANSACTION_END,
    XS_TRANSACTION_START, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
};

use crate::evtchn;
use crate::hvm::{self, Deadline};
use crate::shmem;

/// Offset of `req[]` in `struct xenstore_domain_interface`.
const REQ: u64 = 0;
/// Offset of `rsp[]`.
const RSP: u64 = 1024;
/// Offset of `req_cons`.
const REQ_CONS: u64 = 2048;
/// Offset of `req_prod`.
const REQ_PROD: u64 = 2052;
/// Offset of `rsp_cons`.
const RSP_CONS: u64 = 2056;
/// Offset of `rsp_prod`.
const RSP_PROD: u64 = 2060;
/// Offset of `error`.
const ERROR: u64 = 2072;
/// Size of `struct xsd_sockmsg`.
const HEADER: usize = 16;
/// How long one request may take before the client gives up (ms of system time).
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;

/// A fixed-capacity text buffer for paths and values; `write!` past its end fails.
pub struct Text<const N: usize> {
    /// The bytes.
    buf: [u8; N],
    /// How many are used.
    len: usize,
}

impl<const N: usize> Text<N> {
    /// An empty text.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// `bytes` as a text (truncated to the capacity).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut t = Self::new();
        let n = bytes.len().min(N);
        t.buf[..n].copy_from_slice(&bytes[..n]);
        t.len = n;
        t
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> fmt::Display for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::console::Bytes(self.as_bytes()).fmt(f)
    }
}

/// Formats `args` into a [`Text`] of capacity `N` (truncated if it does not fit).
pub fn text<const N: usize>(args: fmt::Arguments<'_>) -> Text<N> {
    let mut t = Text::new();
    let _ = fmt::Write::write_fmt(&mut t, args);
    t
}

/// A decimal number at the start of `b` (`None` if `b` does not start with a digit).
pub fn parse_u32(b: &[u8]) -> Option<u32> {
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return None;
    }
    b[..digits].iter().try_fold(0u32, |v, &d| {
        v.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Why a xenstore operation failed.
#[derive(Clone, Copy)]
pub enum XsError {
    /// The server answered `XS_ERROR` with this errno name (`ENOSPC`, `E2BIG`, ...).
    Server([u8; 16], usize),
    /// Nothing came before the deadline; says what was waited for.
    Timeout(&'static str),
    /// The server shut the connection down: the ring's `error` field (`XENSTORE_ERROR_*`).
    Ring(u32),
    /// The ring or a reply broke the protocol.
    Protocol(&'static str),
}

impl XsError {
    /// The errno name of a [`XsError::Server`] error.
    pub fn server_name(&self) -> Option<&[u8]> {
        match self {
            XsError::Server(b, n) => Some(&b[..*n]),
            _ => None,
        }
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::Server(b, n) => write!(f, "{}", crate::console::Bytes(&b[..*n])),
            XsError::Timeout(what) => write!(f, "timeout waiting for {what}"),
            XsError::Ring(e) => write!(f, "ring error {e}"),
            XsError::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

/// The header of a message read from the response ring; its payload is [`Xs::payload`].
#[derive(Clone, Copy, Debug)]
pub struct Msg {
    /// `XS_*`.
    pub ty: u32,
    /// The request's id (0 for watch events).
    pub req_id: u32,
    /// Payload bytes.
    pub len: usize,
}

/// The domain's xenstore connection.
pub struct Xs {
    /// Guest-physical address of the ring page.
    ring: u64,
    /// The store event channel.
    port: u32,
    /// The next request id.
    next_id: u32,
    /// Watch events received (and skipped) while waiting for replies.
    pub events: u64,
    /// Replies to other requests than the awaited one, skipped.
    pub stray: u64,
    /// The last message read: header and payload.
    buf: [u8; HEADER + XENSTORE_PAYLOAD_MAX],
}

impl Xs {
    /// The connection the toolstack set up: the ring at `HVM_PARAM_STORE_PFN`, kicked through
    /// `HVM_PARAM_STORE_EVTCHN`.
    pub fn open() -> Result<Xs, XsError> {
        let pfn = hvm::get_param(HVM_PARAM_STORE_PFN)
            .map_err(|_| XsError::Protocol("HVM_PARAM_STORE_PFN unreadable"))?;
        let port = hvm::get_param(HVM_PARAM_STORE_EVTCHN)
            .map_err(|_| XsError::Protocol("HVM_PARAM_STORE_EVTCHN unreadable"))?;
        if pfn == 0 || pfn >= 1 << 20 || port == 0 {
            return Err(XsError::Protocol("no store ring"));
        }
        Ok(Xs {
            ring: pfn << 12,
            port: port as u32,
            next_id: 1,
            events: 0,
            stray: 0,
            buf: [0; HEADER + XENSTORE_PAYLOAD_MAX],
        })
    }

    /// Signals the store port (the server runs before the call returns).
    pub fn kick(&self) {
        evtchn::send(self.port);
    }

    /// `Err` once the server has shut the connection down.
    fn check_ring(&self) -> Result<(), XsError> {
        match shmem::rd32(self.ring + ERROR) {
            0 => Ok(()),
            e => Err(XsError::Ring(e)),
        }
    }

    /// Free bytes in the request ring.
    pub fn req_room(&self) -> usize {
        let used =
            shmem::rd32(self.ring + REQ_PROD).wrapping_sub(shmem::rd32(self.ring + REQ_CONS));
        XENSTORE_RING_SIZE.saturating_sub(used as usize)
    }

    /// Writes `data` into the request ring as space appears, kicking the server while full.
    fn put(&self, data: &[u8], deadline: Deadline) -> Result<(), XsError> {
        let mut done = 0;
        while done < data.len() {
            let cons = shmem::rd32(self.ring + REQ_CONS);
            let prod = shmem::rd32(self.ring + REQ_PROD);
            let used = prod.wrapping_sub(cons) as usize;
            if used > XENSTORE_RING_SIZE {
                return Err(XsError::Protocol("request ring indices"));
            }
            let room = XENSTORE_RING_SIZE - used;
            if room == 0 {
                self.kick();
                self.check_ring()?;
                if deadline.passed() {
                    return Err(XsError::Timeout("request ring space"));
                }
                hvm::sched_yield();
                continue;
            }
            shmem::barrier();
            let n = room.min(data.len() - done);
            for (i, &b) in data[done..done + n].iter().enumerate() {
                let at = prod.wrapping_add(i as u32) as usize % XENSTORE_RING_SIZE;
                shmem::wr8(self.ring + REQ + at as u64, b);
            }
            shmem::barrier();
            shmem::wr32(self.ring + REQ_PROD, prod.wrapping_add(n as u32));
            done += n;
        }
        Ok(())
    }

    /// Sends request `ty` in transaction `tx` (0: none) with the concatenation of `parts` as its
    /// payload, and kicks the server; returns the request id.
    pub fn send(
        &mut self,
        ty: u32,
        tx: u32,
        parts: &[&[u8]],
        deadline: Deadline,
    ) -> Result<u32, XsError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::Protocol("payload too long"));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let mut header = [0u8; HEADER];
        for (i, v) in [ty, id, tx, len as u32].into_iter().enumerate() {
            header[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        self.put(&header, deadline)?;
        for p in parts {
            self.put(p, deadline)?;
        }
        self.kick();
        Ok(id)
    }

    /// Like [`Xs::send`], but only if the whole message fits in the request ring now: never
    /// waits (and never reads the response ring). `None` when it does not fit.
    pub fn try_send(&mut self, ty: u32, tx: u32, parts: &[&[u8]]) -> Result<Option<u32>, XsError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.req_room() < HEADER + len {
            return Ok(None);
        }
        self.send(ty, tx, parts, Deadline(u64::MAX)).map(Some)
    }

    /// Bytes waiting in the response ring.
    pub fn rsp_avail(&self) -> usize {
        shmem::rd32(self.ring + RSP_PROD).wrapping_sub(shmem::rd32(self.ring + RSP_CONS)) as usize
    }

    /// Reads `n` bytes of the response ring into `buf[at..]`, kicking the server while it is
    /// empty (it may have output queued for lack of room).
    fn get(&mut self, at: usize, n: usize, deadline: Deadline) -> Result<(), XsError> {
        let mut got = 0;
        while got < n {
            let cons = shmem::rd32(self.ring + RSP_CONS);
            let avail = shmem::rd32(self.ring + RSP_PROD).wrapping_sub(cons) as usize;
            if avail > XENSTORE_RING_SIZE {
                return Err(XsError::Protocol("response ring indices"));
            }
            if avail == 0 {
                self.check_ring()?;
                if deadline.passed() {
                    return Err(XsError::Timeout("a reply"));
                }
                self.kick();
                hvm::sched_yield();
                continue;
            }
            shmem::barrier();
            let k = avail.min(n - got);
            for i in 0..k {
                let idx = cons.wrapping_add(i as u32) as usize % XENSTORE_RING_SIZE;
                self.buf[at + got + i] = shmem::rd8(self.ring + RSP + idx as u64);
            }
            shmem::barrier();
            shmem::wr32(self.ring + RSP_CONS, cons.wrapping_add(k as u32));
            got += k;
        }
        Ok(())
    }

    /// Reads the next message (reply or watch event) from the response ring.
    pub fn recv(&mut self, deadline: Deadline) -> Result<Msg, XsError> {
        self.get(0, HEADER, deadline)?;
        let word = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let (ty, req_id, len) = (word(&self.buf, 0), word(&self.buf, 4), word(&self.buf, 12));
        let len = len as usize;
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::Protocol("reply longer than XENSTORE_PAYLOAD_MAX"));
        }
        self.get(HEADER, len, deadline)?;
        Ok(Msg { ty, req_id, len })
    }

    /// The payload of the last message read.
    pub fn payload(&self, m: &Msg) -> &[u8] {
        &self.buf[HEADER..HEADER + m.len]
    }

    /// The errno name in an `XS_ERROR` message, as an error.
    pub fn error_of(&self, m: &Msg) -> XsError {
        let p = self.payload(m);
        let end = p.iter().position(|&b| b == 0).unwrap_or(p.len()).min(16);
        let mut name = [0u8; 16];
        name[..end].copy_from_slice(&p[..end]);
        XsError::Server(name, end)
    }

    /// Sends a request and waits for its reply (skipping watch events and other replies);
    /// returns the reply's payload length ([`Xs::reply`] holds it) or the server's error.
    pub fn request(&mut self, ty: u32, tx: u32, parts: &[&[u8]]) -> Result<usize, XsError> {
        let deadline = Deadline::after_ms(REQUEST_TIMEOUT_MS);
        let id = self.send(ty, tx, parts, deadline)?;
        loop {
            let m = self.recv(deadline)?;
            if m.ty == XS_WATCH_EVENT {
                self.events += 1;
                continue;
            }
            if m.req_id != id {
                self.stray += 1;
                continue;
            }
            if m.ty == XS_ERROR {
                return Err(self.error_of(&m));
            }
            return Ok(m.len);
        }
    }

    /// The payload of the last reply, `len` bytes as [`Xs::request`] returned.
    pub fn reply(&self, len: usize) -> &[u8] {
        &self.buf[HEADER..HEADER + len]
    }

    /// `XS_WRITE path value` (a relative path is under `/local/domain/<domid>/`).
    pub fn write(&mut self, tx: u32, path: &[u8], value: &[u8]) -> Result<(), XsError> {
        self.request(XS_WRITE, tx, &[path, b"\0", value])
            .map(|_| ())
    }

    /// `XS_READ path`: the value.
    pub fn read(&mut self, tx: u32, path: &[u8]) -> Result<&[u8], XsError> {
        let n = self.request(XS_READ, tx, &[path, b"\0"])?;
        Ok(self.reply(n))
    }

    /// `XS_READ path` as a decimal number.
    pub fn read_u32(&mut self, path: &[u8]) -> Result<u32, XsError> {
        let v = self.read(0, path)?;
        parse_u32(v).ok_or(XsError::Protocol("not a number"))
    }

    /// `XS_WATCH path token`.
    pub fn watch(&mut self, path: &[u8], token: &[u8]) -> Result<(), XsError> {
        self.request(XS_WATCH, 0, &[path, b"\0", token, b"\0"])
            .map(|_| ())
    }

    /// `XS_TRANSACTION_START`: the new transaction's id.
    pub fn transaction_start(&mut self) -> Result<u32, XsError> {
        let n = self.request(XS_TRANSACTION_START, 0, &[b"\0"])?;
        parse_u32(self.reply(n)).ok_or(XsError::Protocol("transaction id"))
    }

    /// `XS_TRANSACTION_END`: commits (`T`) or aborts (`F`) transaction `tx`.
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.request(XS_TRANSACTION_END, tx, &[arg]).map(|_| ())
    }
}
