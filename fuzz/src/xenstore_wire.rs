//! `xenstore_wire`: the xenstore server's ring and wire protocol facing hostile guests.
//!
//! Three domains share one [`Xenstore`] (1 and 2 with the toolstack's tree, 3 with none), each
//! with its ring page. The input is a program of guest and dom0 actions: well-framed requests
//! of every type (paths, values, permissions, tokens and numbers from a vocabulary, or raw
//! bytes), raw bytes in the request stream, partial writes, any value in any index or header
//! field of the page, bytes anywhere on the page, reconnection requests, reading responses, and
//! dom0's in-process operations, introductions and releases. Quotas are the defaults or tiny.
//!
//! Checked besides "no panic, no endless loop": while a guest has framed its stream and left
//! the page's indices alone, what it reads back is well formed: every message's payload is at
//! most 4096 bytes; replies come in request order, each with its request's id and type (or
//! `XS_ERROR`); watch events carry a path and a token; the response indices never claim more
//! than a ring's worth. A released domain is forgotten and its page left alone.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use guest_abi::xenstore::*;
use xenstore::toolstack;
use xenstore::{
    init_ring, Access, Config, Perm, Xenstore, CONNECTION_OFFSET, ERROR_OFFSET, REQ_CONS_OFFSET,
    REQ_OFFSET, REQ_PROD_OFFSET, RSP_CONS_OFFSET, RSP_OFFSET, RSP_PROD_OFFSET,
    SERVER_FEATURES_OFFSET,
};

use crate::Input;

/// Domains with a connection (index + 1 is the domid).
const DOMAINS: usize = 3;
/// Actions per input at most.
const MAX_STEPS: usize = 300;

/// Request types, valid ones and a few that are not.
const TYPES: &[u32] = &[
    XS_CONTROL,
    XS_DIRECTORY,
    XS_READ,
    XS_GET_PERMS,
    XS_WATCH,
    XS_UNWATCH,
    XS_TRANSACTION_START,
    XS_TRANSACTION_END,
    XS_INTRODUCE,
    XS_RELEASE,
    XS_GET_DOMAIN_PATH,
    XS_WRITE,
    XS_MKDIR,
    XS_RM,
    XS_SET_PERMS,
    XS_WATCH_EVENT,
    XS_ERROR,
    XS_IS_DOMAIN_INTRODUCED,
    XS_RESUME,
    XS_SET_TARGET,
    XS_RESET_WATCHES,
    XS_DIRECTORY_PART,
    XS_GET_FEATURE,
    XS_SET_FEATURE,
    XS_GET_QUOTA,
    XS_SET_QUOTA,
    XS_TYPE_COUNT,
    XS_INVALID,
    20,
];

/// Payload fields that steer requests towards the interesting parts of the tree and grammar.
const WORDS: &[&[u8]] = &[
    b"/",
    b"/local",
    b"/local/domain",
    b"/local/domain/1",
    b"/local/domain/1/data",
    b"/local/domain/1/data/a",
    b"/local/domain/2",
    b"/local/domain/2/data/x",
    b"/local/domain/3",
    b"/local/domain/0/backend",
    b"/local/domain/0/backend/vif/1/0/state",
    b"/local/domain/1/device/vif/0/state",
    b"/vm",
    b"/tool/xenstored",
    b"data",
    b"data/a",
    b"data/a/b/c",
    b"device/vif/0",
    b"device/vif/0/state",
    b"control/shutdown",
    b"name",
    b"domid",
    b"@introduceDomain",
    b"@releaseDomain",
    b"@other",
    b"",
    b"a//b",
    b"/a/",
    b"a b",
    b"..",
    b"1",
    b"2",
    b"3",
    b"4",
    b"0",
    b"4294967295",
    b"65535",
    b"-1",
    b"n0",
    b"r1",
    b"w2",
    b"b3",
    b"n1",
    b"r0",
    b"b65535",
    b"x1",
    b"T",
    b"F",
    b"tok",
    b"t",
    b"value",
];

/// A guest's side of its connection.
struct Guest {
    /// The ring page.
    page: alloc::boxed::Box<[u8; 4096]>,
    /// Request bytes not yet written into the ring.
    pending: VecDeque<u8>,
    /// Response bytes read but not yet a whole message.
    resp: Vec<u8>,
    /// Whole requests written, not yet answered: (type, request id), when framed.
    asked: VecDeque<(u32, u32)>,
    /// The stream holds only whole requests and the indices are the server's and the guest's
    /// own: the responses must parse.
    framed: bool,
    /// Introduced (not released).
    alive: bool,
}

impl Guest {
    fn new() -> Guest {
        let mut page = alloc::boxed::Box::new([0u8; 4096]);
        init_ring(&mut *page);
        Guest {
            page,
            pending: VecDeque::new(),
            resp: Vec::new(),
            asked: VecDeque::new(),
            framed: true,
            alive: true,
        }
    }

    fn rd(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.page[off..off + 4].try_into().unwrap_or_default())
    }

    fn wr(&mut self, off: usize, v: u32) {
        self.page[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Writes as much of `pending` into the request ring as fits (at most `max` bytes), as a
    /// frontend does: data first, then `req_prod`.
    fn feed(&mut self, max: usize) {
        let cons = self.rd(REQ_CONS_OFFSET);
        let prod = self.rd(REQ_PROD_OFFSET);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENSTORE_RING_SIZE {
            return;
        }
        let n = (XENSTORE_RING_SIZE - used).min(self.pending.len()).min(max);
        for i in 0..n {
            let b = self.pending.pop_front().unwrap_or(0);
            let at = REQ_OFFSET + (prod.wrapping_add(i as u32) as usize & (XENSTORE_RING_SIZE - 1));
            self.page[at] = b;
        }
        self.wr(REQ_PROD_OFFSET, prod.wrapping_add(n as u32));
    }

    /// Reads the responses the server published (at most `max` bytes) and checks them.
    fn consume(&mut self, max: usize) {
        let cons = self.rd(RSP_CONS_OFFSET);
        let prod = self.rd(RSP_PROD_OFFSET);
        let avail = prod.wrapping_sub(cons) as usize;
        if self.framed {
            assert!(
                avail <= XENSTORE_RING_SIZE,
                "rsp_prod {prod} rsp_cons {cons}"
            );
        }
        if avail > XENSTORE_RING_SIZE {
            return;
        }
        let n = avail.min(max);
        for i in 0..n {
            let at = RSP_OFFSET + (cons.wrapping_add(i as u32) as usize & (XENSTORE_RING_SIZE - 1));
            self.resp.push(self.page[at]);
        }
        self.wr(RSP_CONS_OFFSET, cons.wrapping_add(n as u32));
        if self.framed {
            self.check_messages();
        } else {
            self.resp.clear();
        }
    }

    /// Takes the whole messages off `resp` and checks each against what was asked.
    fn check_messages(&mut self) {
        while self.resp.len() >= 16 {
            let word =
                |m: &[u8], i: usize| u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
            let (ty, req_id, len) = (
                word(&self.resp, 0),
                word(&self.resp, 4),
                word(&self.resp, 12),
            );
            assert!(
                len as usize <= XENSTORE_PAYLOAD_MAX,
                "reply payload of {len} bytes"
            );
            if self.resp.len() < 16 + len as usize {
                return;
            }
            let msg: Vec<u8> = self.resp.drain(..16 + len as usize).collect();
            let payload = &msg[16..];
            if ty == XS_WATCH_EVENT {
                assert!(
                    payload.iter().filter(|&&b| b == 0).count() >= 2,
                    "watch event {payload:?}"
                );
                continue;
            }
            let (asked_ty, asked_id) = self.asked.pop_front().expect("a reply to no request");
            assert_eq!(req_id, asked_id, "reply out of order");
            assert!(
                ty == asked_ty || ty == XS_ERROR,
                "reply type {ty} to {asked_ty}"
            );
            if ty == XS_ERROR {
                assert_eq!(payload.last(), Some(&0), "error {payload:?}");
            }
        }
    }

    /// The guest starts over on a fresh page (a reconnection the server carried out).
    fn restart(&mut self) {
        self.pending.clear();
        self.resp.clear();
        self.asked.clear();
        self.framed = true;
    }
}

/// A payload: up to six fields from [`WORDS`] or raw bytes, NUL-separated.
fn payload(u: &mut Input<'_>) -> Vec<u8> {
    let mut p = Vec::new();
    let fields = u.range(0u8, 6);
    for i in 0..fields {
        match u.range(0u8, 9) {
            0..=5 => p.extend_from_slice(u.pick(WORDS)),
            6 => p.extend_from_slice(u.bytes(48)),
            7 => {
                // A long path or value: quotas and length limits.
                let base: &[u8] = u.pick(WORDS);
                p.extend_from_slice(base);
                let n = u.pick(&[100usize, 2040, 2049, 3000, 4000]);
                p.extend(core::iter::repeat_n(b'a', n));
            }
            8 => {
                // A number in decimal.
                let n: u32 = u.any();
                p.extend_from_slice(alloc::format!("{n}").as_bytes());
            }
            _ => {
                let d = u.range(0u16, 4);
                p.extend_from_slice(xenstore::domain_path(d.into()).as_bytes());
                p.push(b'/');
                p.extend_from_slice(u.pick(WORDS));
            }
        }
        if i + 1 < fields || u.ratio(3, 4) {
            p.push(0);
        }
    }
    p.truncate(XENSTORE_PAYLOAD_MAX);
    p
}

fn encode(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + payload.len());
    for v in [ty, req_id, tx_id, payload.len() as u32] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(payload);
    m
}

/// Quotas: the defaults (`None`), or tiny ones so that every limit is reachable.
fn config(u: &mut Input<'_>) -> Option<Config> {
    if !u.ratio(1, 8) {
        return None;
    }
    Some(Config {
        max_nodes: u.range(0, 40),
        max_watches: u.range(0, 4),
        max_transactions: u.range(0, 3),
        max_node_size: u.range(0, 300),
        max_perms: u.range(1, 5),
        max_path_len: u.range(8, 80),
        max_transaction_nodes: u.range(0, 8),
        max_outstanding: u.range(1, 4),
        max_requests_per_pass: u.range(1, 8),
        max_queued_events: u.range(0, 8),
        max_memory: u.range(0, 256 << 10),
    })
}

/// The part of the toolstack's tree a guest's requests reach: its home (readable by it),
/// `data` (its own), a vif's frontend and backend directories. (The whole of
/// `toolstack::populate_domain` costs more than a typical input; the toolstack test covers it.)
fn populate(xs: &mut Xenstore, domid: u16) {
    let home = xenstore::domain_path(domid.into());
    let ro = [Perm::new(Access::None, 0), Perm::new(Access::Read, domid)];
    let rw = [Perm::new(Access::None, domid)];
    let front = [Perm::new(Access::None, domid), Perm::new(Access::Read, 0)];
    let fe = toolstack::vif_frontend_path(domid, 0);
    let be = toolstack::vif_backend_path(domid, 0);
    let mut r = xs.mkdir(&home).and_then(|()| xs.set_perms(&home, &ro));
    r = r.and_then(|()| xs.write(&alloc::format!("{home}/name"), b"guest"));
    let data = alloc::format!("{home}/data");
    r = r
        .and_then(|()| xs.mkdir(&data))
        .and_then(|()| xs.set_perms(&data, &rw));
    r = r
        .and_then(|()| xs.mkdir(&fe))
        .and_then(|()| xs.set_perms(&fe, &front));
    r = r.and_then(|()| xs.write(&alloc::format!("{fe}/state"), b"1"));
    r = r
        .and_then(|()| xs.mkdir(&be))
        .and_then(|()| xs.set_perms(&be, &ro));
    r = r.and_then(|()| xs.write(&alloc::format!("{be}/state"), b"2"));
    r.expect("populate");
}

/// Runs the server for `d` and for every domain it wakes, as the kernel does.
fn process(xs: &mut Xenstore, guests: &mut [Guest], d: usize) {
    let mut todo = VecDeque::from([d]);
    let mut rounds = 0;
    while let Some(i) = todo.pop_front() {
        rounds += 1;
        assert!(rounds < 64, "watch wake-ups do not settle");
        let g = &mut guests[i];
        let before = if g.alive { None } else { Some(*g.page) };
        let out = xs.process_ring(i as u16 + 1, &mut *g.page);
        if let Some(before) = before {
            assert!(!out.notify && !out.more, "a released domain was served");
            assert!(before == *g.page, "a released domain's page was written");
        }
        for w in out.wake {
            let w = w as usize - 1;
            if w < DOMAINS && !todo.contains(&w) {
                todo.push_back(w);
            }
        }
    }
}

/// The store every input starts from: `config`, domains 1 and 2's part of the tree, domains
/// 1 to 3 introduced, a dom0 watch.
fn store(config: Config) -> Xenstore {
    let mut xs = Xenstore::new(config);
    populate(&mut xs, 1);
    populate(&mut xs, 2);
    for d in 1..=DOMAINS as u16 {
        xs.introduce_domain(d).expect("introduce");
    }
    let _ = xs.watch("/local/domain", "dom0");
    let _ = xs.take_backend_events();
    xs
}

/// Runs one input.
pub fn run(data: &[u8]) {
    static TEMPLATE: std::sync::OnceLock<Xenstore> = std::sync::OnceLock::new();
    let mut u = Input::new(data);
    let mut xs = match config(&mut u) {
        None => TEMPLATE.get_or_init(|| store(Config::default())).clone(),
        Some(c) => store(c),
    };
    let mut guests: Vec<Guest> = (0..DOMAINS).map(|_| Guest::new()).collect();
    let mut steps = 0;
    while !u.is_empty() && steps < MAX_STEPS {
        steps += 1;
        let d = u.range(0, DOMAINS - 1);
        match u.range(0u8, 15) {
            // A whole request, fed and served.
            0..=4 => {
                let ty = if u.ratio(1, 16) {
                    u.any()
                } else {
                    u.pick(TYPES)
                };
                let req_id = u.any();
                let tx_id = match u.range(0u8, 7) {
                    0..=4 => 0,
                    5 | 6 => u.range(1, 4),
                    _ => u.any(),
                };
                let p = payload(&mut u);
                let g = &mut guests[d];
                g.pending.extend(encode(ty, req_id, tx_id, &p));
                g.asked.push_back((ty, req_id));
                g.feed(usize::MAX);
                process(&mut xs, &mut guests, d);
            }
            // Raw bytes in the request stream (framing lost).
            5 => {
                let g = &mut guests[d];
                let b = u.bytes(64);
                g.pending.extend(b);
                g.framed &= b.is_empty();
                g.feed(usize::MAX);
            }
            // A header claiming a payload it may not have, or an oversized one.
            6 => {
                let len = u.pick(&[0u32, 1, 4095, 4096, 4097, 65536, u32::MAX]);
                let g = &mut guests[d];
                for v in [XS_READ, 7, 0, len] {
                    g.pending.extend(v.to_le_bytes());
                }
                g.framed = false;
                g.feed(usize::MAX);
                process(&mut xs, &mut guests, d);
            }
            // A partial write, then the server runs.
            7 => {
                let n = u.range(0, 40);
                guests[d].feed(n);
                process(&mut xs, &mut guests, d);
            }
            // The guest reads responses (some or all), then the server runs.
            8 => {
                let n = if u.ratio(1, 2) {
                    usize::MAX
                } else {
                    u.range(0, 64)
                };
                guests[d].consume(n);
                process(&mut xs, &mut guests, d);
            }
            // Any value in a field of the page.
            9 => {
                let off = u.pick(&[
                    REQ_CONS_OFFSET,
                    REQ_PROD_OFFSET,
                    RSP_CONS_OFFSET,
                    RSP_PROD_OFFSET,
                    SERVER_FEATURES_OFFSET,
                    CONNECTION_OFFSET,
                    ERROR_OFFSET,
                ]);
                let g = &mut guests[d];
                let v = match u.range(0u8, 3) {
                    0 => u.any(),
                    1 => g.rd(off).wrapping_add(u.range(0, 2048)),
                    2 => g.rd(off).wrapping_sub(u.range(0, 2048)),
                    _ => u.pick(&[0, 1, 1023, 1024, 1025, u32::MAX]),
                };
                g.wr(off, v);
                g.framed = false;
                process(&mut xs, &mut guests, d);
            }
            // Bytes anywhere on the page.
            10 => {
                let off = u.range(0, 4095);
                let b = u.bytes(32);
                let g = &mut guests[d];
                let n = b.len().min(4096 - off);
                g.page[off..off + n].copy_from_slice(&b[..n]);
                g.framed &= n == 0;
            }
            // The guest asks to reconnect; the server resets the page.
            11 => {
                let g = &mut guests[d];
                g.wr(CONNECTION_OFFSET, XENSTORE_RECONNECT);
                process(&mut xs, &mut guests, d);
                let g = &mut guests[d];
                if g.alive {
                    assert_eq!(g.rd(CONNECTION_OFFSET), XENSTORE_CONNECTED);
                    assert_eq!(g.rd(ERROR_OFFSET), XENSTORE_ERROR_NONE);
                    g.restart();
                }
            }
            // dom0's own operations (the backends, the toolstack).
            12 => {
                let path = {
                    let mut p = Vec::from(u.pick(WORDS));
                    if u.ratio(1, 2) {
                        p.push(b'/');
                        p.extend_from_slice(u.pick(WORDS));
                    }
                    alloc::string::String::from_utf8_lossy(&p).into_owned()
                };
                let who = u.range(0u16, 4);
                match u.range(0u8, 7) {
                    0 => {
                        let _ = xs.write(&path, u.bytes(16));
                    }
                    1 => {
                        let _ = xs.mkdir(&path);
                    }
                    2 => {
                        let _ = xs.rm(&path);
                    }
                    3 => {
                        let access =
                            u.pick(&[Access::None, Access::Read, Access::Write, Access::Both]);
                        let _ = xs.set_perms(
                            &path,
                            &[Perm::new(Access::None, 0), Perm::new(access, who)],
                        );
                    }
                    4 => {
                        let _ = xs.watch(&path, "w");
                    }
                    5 => {
                        let _ = xs.unwatch(&path, "w");
                    }
                    6 => {
                        let _ = xs.read(&path);
                    }
                    _ => {
                        let _ = xs.directory(&path);
                    }
                }
                let _ = xs.take_backend_events();
                for w in xs.pending_domains() {
                    if let Some(i) = (w as usize).checked_sub(1).filter(|&i| i < DOMAINS) {
                        process(&mut xs, &mut guests, i);
                    }
                }
            }
            // Release (domain destroyed) or introduce again on a fresh page.
            13 => {
                let domid = d as u16 + 1;
                if guests[d].alive {
                    xs.release_domain(domid).expect("release");
                    guests[d].alive = false;
                    assert!(!xs.is_domain_introduced(domid));
                } else {
                    guests[d] = Guest::new();
                    xs.introduce_domain(domid).expect("introduce");
                }
                let _ = xs.take_backend_events();
            }
            // dom0 lets domain 3 act for another (the device model case).
            14 => {
                let target = u.range(0u16, 4);
                let _ = xs.set_target(3, target);
            }
            // Only the server runs (a spurious kick, or the `more` follow-up).
            _ => process(&mut xs, &mut guests, d),
        }
    }
    for (d, g) in guests.iter_mut().enumerate() {
        if g.alive {
            g.consume(usize::MAX);
            xs.release_domain(d as u16 + 1).expect("release");
        }
    }
    for d in 1..=DOMAINS as u16 {
        assert!(!xs.is_domain_introduced(d));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        crate::run_samples(super::run);
    }
}
