//! A guest-side xenbus client on a `[u8; 4096]` ring page, for host tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use xenstore::{
    init_ring, RingOutcome, Xenstore, REQ_OFFSET, REQ_PROD_OFFSET, RSP_CONS_OFFSET, RSP_OFFSET,
    RSP_PROD_OFFSET,
};

pub use guest_abi::xenstore::*;

/// One message read from the response ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub payload: Vec<u8>,
}

impl Msg {
    /// The payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// For a watch event: (path, token).
    pub fn event(&self) -> (String, String) {
        assert_eq!(self.ty, XS_WATCH_EVENT, "not an event: {self:?}");
        let parts: Vec<&[u8]> = self.payload.split(|&b| b == 0).collect();
        assert_eq!(parts.len(), 3, "{self:?}");
        (
            String::from_utf8_lossy(parts[0]).into_owned(),
            String::from_utf8_lossy(parts[1]).into_owned(),
        )
    }
}

pub fn rd(page: &[u8; 4096], off: usize) -> u32 {
    u32::from_le_bytes(page[off..off + 4].try_into().unwrap())
}

pub fn wr(page: &mut [u8; 4096], off: usize, v: u32) {
    page[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn encode(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for v in [ty, req_id, tx_id, payload.len() as u32] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(payload);
    m
}

/// A domU with its ring page, as Linux's xenbus driver uses it.
pub struct Guest {
    pub domid: u16,
    pub page: Box<[u8; 4096]>,
    /// Response bytes read but not yet a whole message.
    rx: Vec<u8>,
    /// Messages received and not yet taken, in order.
    pub inbox: VecDeque<Msg>,
    next_req: u32,
    /// Bytes queued for the request ring that did not fit yet.
    pending: VecDeque<u8>,
    pub last: RingOutcome,
    /// Domains named in `wake` since the last `call`.
    pub woken: Vec<u16>,
}

impl Guest {
    /// Introduces `domid` and gives it a fresh ring.
    pub fn new(xs: &mut Xenstore, domid: u16) -> Guest {
        xs.introduce_domain(domid).unwrap();
        Guest::attach(domid)
    }

    /// A ring for an already introduced domain.
    pub fn attach(domid: u16) -> Guest {
        let mut page = Box::new([0u8; 4096]);
        init_ring(&mut *page);
        Guest {
            domid,
            page,
            rx: Vec::new(),
            inbox: VecDeque::new(),
            next_req: 1,
            pending: VecDeque::new(),
            last: RingOutcome::default(),
            woken: Vec::new(),
        }
    }

    /// Puts as many pending bytes as fit into the request ring.
    pub fn push(&mut self) {
        let cons = rd(&self.page, 2048);
        let mut prod = rd(&self.page, REQ_PROD_OFFSET);
        while prod.wrapping_sub(cons) < 1024 {
            let Some(b) = self.pending.pop_front() else {
                break;
            };
            self.page[REQ_OFFSET + (prod as usize & 1023)] = b;
            prod = prod.wrapping_add(1);
        }
        wr(&mut self.page, REQ_PROD_OFFSET, prod);
    }

    /// Queues raw bytes for the request ring.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.pending.extend(bytes);
        self.push();
    }

    /// Queues a request; returns its req_id.
    pub fn send(&mut self, ty: u32, tx_id: u32, payload: &[u8]) -> u32 {
        let id = self.next_req;
        self.next_req += 1;
        self.send_raw(&encode(ty, id, tx_id, payload));
        id
    }

    /// Reads everything in the response ring into `inbox`.
    pub fn pull(&mut self) {
        let mut cons = rd(&self.page, RSP_CONS_OFFSET);
        let prod = rd(&self.page, RSP_PROD_OFFSET);
        assert!(prod.wrapping_sub(cons) <= 1024);
        while cons != prod {
            self.rx.push(self.page[RSP_OFFSET + (cons as usize & 1023)]);
            cons = cons.wrapping_add(1);
        }
        wr(&mut self.page, RSP_CONS_OFFSET, cons);
        loop {
            if self.rx.len() < 16 {
                break;
            }
            let w = |i: usize| u32::from_le_bytes(self.rx[i..i + 4].try_into().unwrap());
            let len = w(12) as usize;
            assert!(len <= XENSTORE_PAYLOAD_MAX, "server sent len {len}");
            if self.rx.len() < 16 + len {
                break;
            }
            let msg = Msg {
                ty: w(0),
                req_id: w(4),
                tx_id: w(8),
                payload: self.rx[16..16 + len].to_vec(),
            };
            self.rx.drain(..16 + len);
            self.inbox.push_back(msg);
        }
    }

    /// Lets the server run, pushing and pulling until nothing moves.
    pub fn pump(&mut self, xs: &mut Xenstore) {
        for _ in 0..10_000 {
            self.last = xs.process_ring(self.domid, &mut *self.page);
            self.woken.extend(&self.last.wake);
            let before = (self.inbox.len(), self.pending.len(), self.rx.len());
            self.pull();
            self.push();
            if !self.last.notify && before == (self.inbox.len(), self.pending.len(), self.rx.len())
            {
                return;
            }
        }
        panic!("server never settled");
    }

    /// Takes every queued watch event, in order.
    pub fn events(&mut self) -> Vec<(String, String)> {
        let ev: Vec<Msg> = self
            .inbox
            .iter()
            .filter(|m| m.ty == XS_WATCH_EVENT)
            .cloned()
            .collect();
        self.inbox.retain(|m| m.ty != XS_WATCH_EVENT);
        ev.iter().map(Msg::event).collect()
    }

    /// Sends one request, runs the server and returns its reply (events stay in `inbox`).
    pub fn call(&mut self, xs: &mut Xenstore, ty: u32, tx_id: u32, payload: &[u8]) -> Msg {
        self.woken.clear();
        let id = self.send(ty, tx_id, payload);
        self.pump(xs);
        let i = self
            .inbox
            .iter()
            .position(|m| m.ty != XS_WATCH_EVENT && m.req_id == id)
            .unwrap_or_else(|| panic!("no reply to request {id}: {:?}", self.inbox));
        let m = self.inbox.remove(i).unwrap();
        assert_eq!(m.tx_id, tx_id, "tx_id echoed");
        m
    }

    /// A call whose reply is `Ok(payload)` or `Err(errno name)`.
    pub fn req(
        &mut self,
        xs: &mut Xenstore,
        ty: u32,
        tx_id: u32,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let m = self.call(xs, ty, tx_id, payload);
        if m.ty == XS_ERROR {
            let name = m.payload.strip_suffix(b"\0").expect("error ends with NUL");
            Err(String::from_utf8(name.to_vec()).unwrap())
        } else {
            assert_eq!(m.ty, ty, "reply type echoes request");
            Ok(m.payload)
        }
    }

    pub fn read(&mut self, xs: &mut Xenstore, path: &str) -> Result<Vec<u8>, String> {
        self.read_tx(xs, 0, path)
    }

    pub fn read_tx(&mut self, xs: &mut Xenstore, tx: u32, path: &str) -> Result<Vec<u8>, String> {
        self.req(xs, XS_READ, tx, &z(path))
    }

    pub fn write(&mut self, xs: &mut Xenstore, path: &str, value: &str) -> Result<(), String> {
        self.write_tx(xs, 0, path, value)
    }

    pub fn write_tx(
        &mut self,
        xs: &mut Xenstore,
        tx: u32,
        path: &str,
        value: &str,
    ) -> Result<(), String> {
        let mut p = z(path);
        p.extend_from_slice(value.as_bytes());
        self.req(xs, XS_WRITE, tx, &p).map(ok)
    }

    pub fn mkdir(&mut self, xs: &mut Xenstore, path: &str) -> Result<(), String> {
        self.req(xs, XS_MKDIR, 0, &z(path)).map(ok)
    }

    pub fn rm(&mut self, xs: &mut Xenstore, path: &str) -> Result<(), String> {
        self.rm_tx(xs, 0, path)
    }

    pub fn rm_tx(&mut self, xs: &mut Xenstore, tx: u32, path: &str) -> Result<(), String> {
        self.req(xs, XS_RM, tx, &z(path)).map(ok)
    }

    pub fn dir(&mut self, xs: &mut Xenstore, path: &str) -> Result<Vec<String>, String> {
        self.dir_tx(xs, 0, path)
    }

    pub fn dir_tx(
        &mut self,
        xs: &mut Xenstore,
        tx: u32,
        path: &str,
    ) -> Result<Vec<String>, String> {
        self.req(xs, XS_DIRECTORY, tx, &z(path)).map(|p| split(&p))
    }

    pub fn get_perms(&mut self, xs: &mut Xenstore, path: &str) -> Result<Vec<String>, String> {
        self.req(xs, XS_GET_PERMS, 0, &z(path)).map(|p| split(&p))
    }

    pub fn set_perms(
        &mut self,
        xs: &mut Xenstore,
        path: &str,
        perms: &[&str],
    ) -> Result<(), String> {
        let mut p = z(path);
        for perm in perms {
            p.extend(z(perm));
        }
        self.req(xs, XS_SET_PERMS, 0, &p).map(ok)
    }

    pub fn watch(&mut self, xs: &mut Xenstore, path: &str, token: &str) -> Result<(), String> {
        let mut p = z(path);
        p.extend(z(token));
        self.req(xs, XS_WATCH, 0, &p).map(ok)
    }

    pub fn unwatch(&mut self, xs: &mut Xenstore, path: &str, token: &str) -> Result<(), String> {
        let mut p = z(path);
        p.extend(z(token));
        self.req(xs, XS_UNWATCH, 0, &p).map(ok)
    }

    pub fn start(&mut self, xs: &mut Xenstore) -> Result<u32, String> {
        let p = self.req(xs, XS_TRANSACTION_START, 0, b"\0")?;
        let s = std::str::from_utf8(p.strip_suffix(b"\0").unwrap()).unwrap();
        Ok(s.parse().unwrap())
    }

    pub fn end(&mut self, xs: &mut Xenstore, tx: u32, commit: bool) -> Result<(), String> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.req(xs, XS_TRANSACTION_END, tx, arg).map(ok)
    }
}

fn ok(p: Vec<u8>) {
    assert_eq!(p, b"OK\0");
}

/// `s` followed by a NUL.
pub fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// NUL-terminated strings of a payload.
pub fn split(p: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = p
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    v.pop();
    v
}

pub fn s(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap()
}

/// A store made with `config`, domain 5 introduced and its home directory
/// `/local/domain/5` given to it (permissions `n5`).
pub fn setup_with(config: xenstore::Config) -> (xenstore::Xenstore, Guest) {
    let mut xs = xenstore::Xenstore::new(config);
    let g = Guest::new(&mut xs, 5);
    give_home(&mut xs, 5);
    (xs, g)
}

/// [`setup_with`] the default configuration.
pub fn setup() -> (xenstore::Xenstore, Guest) {
    setup_with(xenstore::Config::default())
}

/// Creates `/local/domain/<domid>` owned by that domain.
pub fn give_home(xs: &mut xenstore::Xenstore, domid: u16) {
    let home = format!("/local/domain/{domid}");
    xs.mkdir(&home).unwrap();
    xs.set_perms(&home, &[xenstore::Perm::new(xenstore::Access::None, domid)])
        .unwrap();
}
