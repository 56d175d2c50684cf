//! Hostile xenstore clients: `test=xs-txn` (every transaction it may open, each filled with
//! large nodes until the server refuses) and `test=watch-flood` (every watch it may set, then
//! writes that fire them all while it never reads its response ring). Both then check that a
//! plain write and read of their own home still work, and power off.

use guest_abi::xenstore::{XS_ERROR, XS_WATCH_EVENT, XS_WRITE};

use crate::hvm::{self, Deadline};
use crate::xen;
use crate::xs::{text, Xs, XsError};

/// Transactions tried at most (the server's limit is far lower).
const MAX_TRANSACTIONS: usize = 64;
/// Nodes written at most in one transaction.
const NODES_PER_TRANSACTION: usize = 1000;
/// Children of one directory: nodes go to `data/t<k>/g<j / 32>/n<j % 32>`, so that no
/// directory's list of children nears the node-size limit.
const FANOUT: usize = 32;
/// Bytes of each node's value (xenstored's node-size quota is 2048).
const VALUE_LEN: usize = 2000;
/// The value every node gets.
static VALUE: [u8; VALUE_LEN] = [b'x'; VALUE_LEN];

/// Watches tried at most.
const MAX_WATCHES: usize = 4096;
/// Writes pushed at most without reading the response ring.
const MAX_FLOOD: u32 = 100_000;
/// How long the request ring may stay full before the flood stops (ms).
const FLOOD_STALL_MS: u64 = 500;
/// How long the flooder leaves its ring alone before reading it again (ms).
const FLOOD_PAUSE_MS: u64 = 2_000;
/// How long it may take to read every reply back (ms).
const DRAIN_MS: u64 = 30_000;

/// Opens the xenstore connection or reports why not and crashes the domain.
fn open(tag: &str) -> Xs {
    match Xs::open() {
        Ok(xs) => xs,
        Err(e) => {
            say!("{tag} FAIL (xenstore: {e})");
            xen::shutdown(xen::SHUTDOWN_CRASH)
        }
    }
}

/// Writes `data/<node>` and reads it back: the line `<tag> own store ok`, or a `FAIL`.
fn own_store_check(xs: &mut Xs, tag: &str) {
    let node = text::<64>(format_args!("data/{tag}-check"));
    let value = b"still-here";
    if let Err(e) = xs.write(0, node.as_bytes(), value) {
        say!("{tag} own store FAIL (write {node}: {e})");
        return;
    }
    match xs.read(0, node.as_bytes()) {
        Ok(v) if v == value => say!("{tag} own store ok"),
        Ok(v) => say!(
            "{tag} own store FAIL (read {node} gave '{}')",
            crate::console::Bytes(v)
        ),
        Err(e) => say!("{tag} own store FAIL (read {node}: {e})"),
    }
}

/// `test=xs-txn`: opens transactions until `XS_TRANSACTION_START` is refused, writes up to
/// [`NODES_PER_TRANSACTION`] nodes of [`VALUE_LEN`] bytes in each until a write is refused,
/// reports the first refusal, aborts them all and checks its own store.
pub fn txn() -> ! {
    let mut xs = open("xs-txn");
    let mut txs = [0u32; MAX_TRANSACTIONS];
    let mut n = 0;
    let start_err = loop {
        if n == MAX_TRANSACTIONS {
            break None;
        }
        match xs.transaction_start() {
            Ok(id) => {
                txs[n] = id;
                n += 1;
            }
            Err(e) => break Some(e),
        }
    };
    match start_err {
        Some(e) => say!("xs-txn transactions={n}, the next refused: {e}"),
        None => say!("xs-txn transactions={n}, none refused"),
    }
    if n == 0 {
        say!("xs-txn FAIL (no transaction)");
        xen::shutdown(xen::SHUTDOWN_CRASH)
    }

    let mut total = 0u64;
    let mut first: Option<(u64, XsError)> = None;
    let mut lost: Option<XsError> = None;
    for (k, &tx) in txs[..n].iter().enumerate() {
        let mut writes = 0;
        let mut stop = None;
        for j in 0..NODES_PER_TRANSACTION {
            let path = text::<48>(format_args!("data/t{k}/g{}/n{}", j / FANOUT, j % FANOUT));
            match xs.write(tx, path.as_bytes(), &VALUE) {
                Ok(()) => {
                    writes += 1;
                    total += 1;
                }
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            }
        }
        match stop {
            Some(e) => say!("xs-txn tx={tx} writes={writes} refused: {e}"),
            None => say!("xs-txn tx={tx} writes={writes} (all accepted)"),
        }
        if let Some(e) = stop {
            if e.server_name().is_none() {
                lost = Some(e);
                break;
            }
            first.get_or_insert((total, e));
        }
    }
    let kib = total * VALUE_LEN as u64 / 1024;
    match (first, lost) {
        (_, Some(e)) => say!("xs-txn connection lost after {total} writes: {e}"),
        (Some((after, e)), None) => say!(
            "xs-txn refused after {after} writes: {e} (accepted {total} writes, {kib} KiB, in {n} transactions)"
        ),
        (None, None) => say!("xs-txn FAIL (never refused: {total} writes, {kib} KiB)"),
    }
    if lost.is_none() {
        let mut ended = 0;
        for &tx in &txs[..n] {
            match xs.transaction_end(tx, false) {
                Ok(()) => ended += 1,
                Err(e) => say!("xs-txn abort of tx={tx}: {e}"),
            }
        }
        say!("xs-txn ended {ended}/{n} transactions");
    }
    own_store_check(&mut xs, "xs-txn");
    say!("xs-txn done, shutting down");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}

/// `test=watch-flood`: sets watches on `data/wf` until refused, pushes writes below it that
/// fire every watch without ever reading the response ring (until the request ring stays
/// full), leaves the ring alone a while, then reads everything back and checks that each
/// write was answered and that its own store still works.
pub fn watch_flood() -> ! {
    let mut xs = open("watch-flood");
    let mut watches = 0;
    let err = loop {
        if watches == MAX_WATCHES {
            break None;
        }
        let token = text::<16>(format_args!("t{watches}"));
        match xs.watch(b"data/wf", token.as_bytes()) {
            Ok(()) => watches += 1,
            Err(e) => break Some(e),
        }
    };
    match err {
        Some(e) if e.server_name().is_some() => {
            say!("watch-flood watches={watches}, the next refused: {e}")
        }
        Some(e) => {
            say!("watch-flood FAIL (watch {watches}: {e})");
            xen::shutdown(xen::SHUTDOWN_CRASH)
        }
        None => say!("watch-flood FAIL (watches={watches}, none refused)"),
    }

    // The flood: requests only, the response ring is never read.
    let mut pushed = 0u32;
    let mut stalled_since: Option<Deadline> = None;
    while pushed < MAX_FLOOD {
        let path = text::<32>(format_args!("data/wf/n{pushed}"));
        match xs.try_send(XS_WRITE, 0, &[path.as_bytes(), b"\0", b"v"]) {
            Ok(Some(_)) => {
                pushed += 1;
                stalled_since = None;
            }
            Ok(None) => {
                let limit =
                    *stalled_since.get_or_insert_with(|| Deadline::after_ms(FLOOD_STALL_MS));
                if limit.passed() {
                    break;
                }
                xs.kick();
                hvm::sched_yield();
            }
            Err(e) => {
                say!("watch-flood push {pushed}: {e}");
                break;
            }
        }
    }
    say!(
        "watch-flood pushed {pushed} writes unread, request ring {} bytes free, {} reply bytes waiting",
        xs.req_room(),
        xs.rsp_avail()
    );
    hvm::yield_until(Deadline::after_ms(FLOOD_PAUSE_MS), || false);

    // Read everything back.
    let (mut replies, mut errors, mut events) = (0u32, 0u32, 0u64);
    let deadline = Deadline::after_ms(DRAIN_MS);
    while replies < pushed {
        match xs.recv(deadline) {
            Ok(m) if m.ty == XS_WATCH_EVENT => events += 1,
            Ok(m) => {
                replies += 1;
                if m.ty == XS_ERROR {
                    errors += 1;
                }
            }
            Err(e) => {
                say!("watch-flood drain stopped after {replies} replies: {e}");
                break;
            }
        }
    }
    // Events still queued behind the last reply.
    while let Ok(m) = xs.recv(Deadline::after_ms(300)) {
        if m.ty == XS_WATCH_EVENT {
            events += 1;
        }
    }
    say!("watch-flood pushed={pushed} replies={replies} errors={errors} events={events}");
    own_store_check(&mut xs, "watch-flood");
    say!("watch-flood done, shutting down");
    xen::shutdown(xen::SHUTDOWN_POWEROFF)
}
