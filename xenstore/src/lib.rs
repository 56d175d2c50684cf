//! xenolith's xenstore server: the tree, watches, transactions and the shared-ring protocol
//! (`xs_wire.h`, `docs/misc/xenstore.txt`), with no privileged instruction.
//!
//! * [`Xenstore`] holds the node tree and one connection per introduced domain. The kernel
//!   calls [`Xenstore::process_ring`] when a domain kicks its store event channel (and for every
//!   domain [`Xenstore::pending_domains`] names); it consumes whole requests, queues replies and
//!   watch events, and writes them to the response ring in order, never interleaving two
//!   messages. The result says whether to signal the domain.
//! * dom0 (the hypervisor's own toolstack and backends) uses the in-process API
//!   ([`Xenstore::read`], [`Xenstore::write`], [`Xenstore::watch`], ...) with every right and no
//!   quota, and collects its watch events with [`Xenstore::take_backend_events`].
//! * [`toolstack::populate_domain`] writes what xl/libxl writes for an HVM domU.
//! * Everything a domain's requests make the store hold is charged to it
//!   ([`Xenstore::domain_bytes`]): the nodes it owns, its transactions' records and copies,
//!   watches, queued replies and events, its partial request. Each request is checked against
//!   the domain's memory quota ([`Config::max_memory`], [`Xenstore::set_memory_quota`]) before
//!   anything is allocated, and refused whole with `ENOMEM`; watch events past it are dropped.
//!   The node quota counts the nodes created in open transactions as well.
//!
//! Semantics follow C xenstored (`tools/xenstored`): permissions (`perm_for_conn`), error
//! names, quotas and their errors ([`Config`]), transaction conflicts by generation count,
//! watch events on removal, relative paths and relative watches.
//!
//! ```
//! use xenstore::{init_ring, toolstack, Xenstore};
//!
//! let mut xs = Xenstore::default();
//! let vifs = [toolstack::VifSpec::new([0x00, 0x16, 0x3e, 0, 0, 1])];
//! let spec = toolstack::DomainSpec {
//!     domid: 1,
//!     name: "guest",
//!     uuid: None,
//!     vcpus: 1,
//!     memory_kib: None,
//!     store_port: 1,
//!     store_gfn: 0xfeff9,
//!     console_port: 2,
//!     console_gfn: 0xfeff8,
//!     vifs: &vifs,
//!     vif_backend_features: toolstack::DEFAULT_VIF_BACKEND_FEATURES,
//! };
//! toolstack::populate_domain(&mut xs, &spec).unwrap();
//! xs.introduce_domain(1).unwrap();
//! xs.watch("/local/domain/1/device/vif/0/state", "vif1.0").unwrap();
//!
//! let mut page = [0u8; 4096]; // the guest's xenstore page
//! init_ring(&mut page);
//! // ... the guest writes requests and signals its store event channel ...
//! let out = xs.process_ring(1, &mut page);
//! // Signal domain 1 if `out.notify`; run `process_ring` for each of `out.wake`;
//! // hand `xs.take_backend_events()` to the backends.
//! assert!(!out.notify);
//! assert_eq!(xs.take_backend_events().len(), 1); // the watch's initial event
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod acct;
mod config;
mod conn;
mod error;
mod path;
mod perms;
mod proto;
mod ring;
pub mod toolstack;
mod tree;

pub use config::Config;
pub use error::XsError;
pub use path::{domain_path, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
pub use perms::{Access, Perm};
pub use ring::{
    init_ring, RingPage, CONNECTION_OFFSET, ERROR_OFFSET, REQ_CONS_OFFSET, REQ_OFFSET,
    REQ_PROD_OFFSET, RSP_CONS_OFFSET, RSP_OFFSET, RSP_PROD_OFFSET, SERVER_FEATURES,
    SERVER_FEATURES_OFFSET,
};

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use conn::{Connection, Watch};
use guest_abi::xenstore::{XENSTORE_CONNECTED, XENSTORE_RECONNECT};
use perms::{Who, RIGHT_READ};
use tree::{Fire, Tree, View};

/// A watch event for a dom0 backend: `path` changed, for the watch registered with `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The changed path (relative if the watch was relative to `/local/domain/0`).
    pub path: String,
    /// The token given to [`Xenstore::watch`].
    pub token: String,
}

/// What [`Xenstore::process_ring`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingOutcome {
    /// Signal the domain's store event channel: requests were consumed, output produced, or
    /// the connection state changed.
    pub notify: bool,
    /// Other domains that now have output waiting (their watches fired): call
    /// [`Xenstore::process_ring`] for each and signal them as it says.
    pub wake: Vec<u16>,
    /// The pass stopped after [`Config::max_requests_per_pass`] requests with more input
    /// possibly waiting: call `process_ring` for this domain again soon (the guest will not
    /// necessarily signal again).
    pub more: bool,
}

/// The xenstore server. A clone is an independent snapshot (the fuzzers start each input
/// from one).
#[derive(Clone, Debug)]
pub struct Xenstore {
    config: Config,
    tree: Tree,
    conns: BTreeMap<u16, Connection>,
    backend_watches: Vec<Watch>,
    backend_events: VecDeque<WatchEvent>,
    dirty: BTreeSet<u16>,
}

impl Default for Xenstore {
    fn default() -> Xenstore {
        Xenstore::new(Config::default())
    }
}

impl Xenstore {
    /// A store with `/`, `/tool/xenstored`, `/local/domain/0` (`domid` = "0", `name` =
    /// "Domain-0") and the special nodes, all owned by dom0 and closed to other domains.
    pub fn new(config: Config) -> Xenstore {
        let mut xs = Xenstore {
            config,
            tree: Tree::new(&[INTRODUCE_DOMAIN, RELEASE_DOMAIN]),
            conns: BTreeMap::new(),
            backend_watches: Vec::new(),
            backend_events: VecDeque::new(),
            dirty: BTreeSet::new(),
        };
        for (p, v) in [
            ("/tool/xenstored", None),
            ("/local/domain/0/domid", Some(&b"0"[..])),
            ("/local/domain/0/name", Some(b"Domain-0")),
        ] {
            let r = match v {
                Some(v) => xs.write(p, v),
                None => xs.mkdir(p),
            };
            debug_assert!(r.is_ok());
        }
        xs
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of nodes in the tree (special nodes included).
    pub fn node_count(&self) -> usize {
        self.tree.len()
    }

    // ---- domains ----

    /// Opens a connection for `domid` (`INTRODUCE`) and fires `@introduceDomain`. Introducing
    /// an introduced domain resets its connection instead. `EINVAL` for domid 0, which is the
    /// in-process caller.
    pub fn introduce_domain(&mut self, domid: u16) -> Result<(), XsError> {
        if domid == 0 {
            return Err(XsError::Inval);
        }
        if let Some(c) = self.conns.get_mut(&domid) {
            c.reset();
            return Ok(());
        }
        let quota = self.config.max_memory;
        self.conns.insert(domid, Connection::new(domid, quota));
        self.fire_special(INTRODUCE_DOMAIN);
        Ok(())
    }

    /// Sets `domid`'s memory quota (xenstored's per-domain `memory` quota, `xenstore-control
    /// quota-set`): the bytes the store may hold on its behalf ([`domain_bytes`]). Requests
    /// that would go past it get `ENOMEM` and watch events for it are dropped; a lower quota
    /// than what it holds now removes nothing. `ENOENT` if not introduced, `EINVAL` for dom0.
    ///
    /// [`domain_bytes`]: Self::domain_bytes
    pub fn set_memory_quota(&mut self, domid: u16, bytes: usize) -> Result<(), XsError> {
        if domid == 0 {
            return Err(XsError::Inval);
        }
        self.conns.get_mut(&domid).ok_or(XsError::Noent)?.quota = bytes;
        Ok(())
    }

    /// `domid`'s memory quota in bytes, if it is introduced.
    pub fn memory_quota(&self, domid: u16) -> Option<usize> {
        self.conns.get(&domid).map(|c| c.quota)
    }

    /// The heap bytes the store holds on `domid`'s behalf, an upper bound: the nodes it owns
    /// (names, values, permissions, its entries in parents' child lists) and its connection
    /// (open transactions with their copies, watches, queued replies and events, the partial
    /// request). 0 once a domain is released and its nodes are gone.
    pub fn domain_bytes(&self, domid: u16) -> usize {
        self.tree.owned_bytes(domid) + self.conns.get(&domid).map_or(0, Connection::bytes)
    }

    /// Closes `domid`'s connection (`RELEASE`): its watches, transactions and queued output go,
    /// nodes it owns are removed (as xenstored; other watchers see the removal), permission
    /// entries naming it are dropped, and `@releaseDomain` fires. `ENOENT` if not introduced.
    pub fn release_domain(&mut self, domid: u16) -> Result<(), XsError> {
        if self.conns.remove(&domid).is_none() {
            return Err(XsError::Noent);
        }
        self.dirty.remove(&domid);
        let mut roots: Vec<String> = Vec::new();
        for p in self.tree.paths() {
            let owned = self.tree.get(p).is_some_and(|n| n.owner() == domid);
            let covered = roots.last().is_some_and(|r| path::is_child(p, r));
            if owned && p.starts_with('/') && p != "/" && !covered {
                roots.push(p.clone());
            }
        }
        for r in roots {
            // Cannot fail for dom0 on an existing node below an existing parent.
            let _ = self.dom0(|v| v.rm(&r));
        }
        self.tree.forget_domain(domid);
        self.fire_special(RELEASE_DOMAIN);
        Ok(())
    }

    /// Whether `domid` has a connection (`IS_DOMAIN_INTRODUCED`; dom0 always has).
    pub fn is_domain_introduced(&self, domid: u16) -> bool {
        domid == 0 || self.conns.contains_key(&domid)
    }

    /// `SET_TARGET`: `domid` gains the rights of `target` (a device-model stub domain).
    /// `ENOENT` if either is not introduced.
    pub fn set_target(&mut self, domid: u16, target: u16) -> Result<(), XsError> {
        if !self.conns.contains_key(&target) {
            return Err(XsError::Noent);
        }
        self.conns.get_mut(&domid).ok_or(XsError::Noent)?.target = Some(target);
        Ok(())
    }

    /// The protocol error that shut `domid`'s connection down (`XENSTORE_ERROR_*`), if any.
    pub fn connection_error(&self, domid: u16) -> Option<u32> {
        self.conns.get(&domid).and_then(|c| c.error)
    }

    /// Whether `domid` has replies or events queued that are not yet in its ring.
    pub fn has_output(&self, domid: u16) -> bool {
        self.conns.get(&domid).is_some_and(|c| c.has_output())
    }

    /// Drains the set of domains with output waiting since their last
    /// [`process_ring`](Self::process_ring) (their watches fired). Call `process_ring` for each.
    pub fn pending_domains(&mut self) -> Vec<u16> {
        core::mem::take(&mut self.dirty).into_iter().collect()
    }

    // ---- the ring ----

    /// Serves `domid`'s ring: advertises the server features, honours a reconnection request,
    /// writes queued output, reads and handles complete requests (keeping a partial one for
    /// the next call) and writes their replies and events, until nothing moves. Output that
    /// does not fit stays queued for the next call. Inconsistent indices or a payload length
    /// above 4096 shut the connection down and set the page's `error` field. A domain that is
    /// not introduced is ignored.
    pub fn process_ring<P: RingPage + ?Sized>(&mut self, domid: u16, page: &mut P) -> RingOutcome {
        let mut out = RingOutcome::default();
        if self.conns.contains_key(&domid) {
            (out.notify, out.more) = self.serve(domid, page);
        }
        self.dirty.remove(&domid);
        out.wake = self.pending_domains();
        out
    }

    /// One pass over `domid`'s ring: (signal the guest, stopped at the request budget).
    fn serve<P: RingPage + ?Sized>(&mut self, domid: u16, page: &mut P) -> (bool, bool) {
        let features = ring::read_u32(page, SERVER_FEATURES_OFFSET);
        if features & SERVER_FEATURES != SERVER_FEATURES {
            ring::write_u32(page, SERVER_FEATURES_OFFSET, features | SERVER_FEATURES);
        }
        if ring::read_u32(page, CONNECTION_OFFSET) == XENSTORE_RECONNECT {
            if let Some(c) = self.conns.get_mut(&domid) {
                c.reset();
            }
            for off in [
                REQ_CONS_OFFSET,
                REQ_PROD_OFFSET,
                RSP_CONS_OFFSET,
                RSP_PROD_OFFSET,
                ERROR_OFFSET,
            ] {
                ring::write_u32(page, off, 0);
            }
            page.barrier();
            ring::write_u32(page, CONNECTION_OFFSET, XENSTORE_CONNECTED);
            return (true, false);
        }
        let mut notify = false;
        let mut handled = 0;
        loop {
            let Some(c) = self.conns.get_mut(&domid) else {
                return (notify, false);
            };
            if c.error.is_some() {
                return (notify, false);
            }
            let written = match c.flush(page) {
                Ok(n) => n,
                Err(code) => return (self.fail(domid, page, code), false),
            };
            notify |= written > 0;
            if handled >= self.config.max_requests_per_pass {
                return (notify, true);
            }
            let mut consumed = 0;
            let mut request = None;
            if c.outstanding() < self.config.max_outstanding {
                match c.receive(page) {
                    Ok((n, r)) => (consumed, request) = (n, r),
                    Err(code) => return (self.fail(domid, page, code), false),
                }
            }
            notify |= consumed > 0;
            match request {
                Some(r) => {
                    self.handle(domid, r);
                    handled += 1;
                }
                None if written == 0 && consumed == 0 => return (notify, false),
                None => {}
            }
        }
    }

    /// Shuts `domid`'s connection down with `code`; the guest must be signalled.
    fn fail<P: RingPage + ?Sized>(&mut self, domid: u16, page: &mut P, code: u32) -> bool {
        if let Some(c) = self.conns.get_mut(&domid) {
            c.fail(code);
        }
        ring::write_u32(page, ERROR_OFFSET, code);
        true
    }

    // ---- dom0's in-process API ----

    /// Runs `f` on the tree as dom0 and delivers the watch events it caused.
    fn dom0<T>(
        &mut self,
        f: impl FnOnce(&mut View<'_>) -> Result<T, XsError>,
    ) -> Result<T, XsError> {
        let mut view = View::new(&mut self.tree, None, Who::DOM0, &self.config, None);
        let r = f(&mut view);
        let fires = core::mem::take(&mut view.fires);
        self.deliver(fires);
        r
    }

    fn dom0_path(path: &str, allow_special: bool) -> Result<String, XsError> {
        path::canonicalize(path.as_bytes(), 0, allow_special, None)
    }

    /// Reads a value. Relative paths are under `/local/domain/0`.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        let p = Self::dom0_path(path, false)?;
        self.dom0(|v| v.read(&p))
    }

    /// Writes a value, creating missing parents (they inherit their parent's permissions).
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let p = Self::dom0_path(path, false)?;
        self.dom0(|v| v.write(&p, value))
    }

    /// Creates a node (empty) and missing parents; nothing if it exists.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        let p = Self::dom0_path(path, false)?;
        self.dom0(|v| v.mkdir(&p))
    }

    /// Removes a node and its subtree; fine if missing when its parent exists, else `ENOENT`.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        let p = Self::dom0_path(path, false)?;
        self.dom0(|v| v.rm(&p))
    }

    /// The names of a node's children, in creation order.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let p = Self::dom0_path(path, false)?;
        self.dom0(|v| v.directory(&p))
    }

    /// Whether a node exists.
    pub fn exists(&mut self, path: &str) -> bool {
        match Self::dom0_path(path, true) {
            Ok(p) => self.dom0(|v| v.exists(&p)).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// A node's permissions (owner and default first).
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>, XsError> {
        let p = Self::dom0_path(path, true)?;
        self.dom0(|v| v.get_perms(&p))
    }

    /// Replaces a node's permissions (`perms[0]`: owner and default access). `EINVAL` if empty.
    pub fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), XsError> {
        let p = Self::dom0_path(path, true)?;
        self.dom0(|v| v.set_perms(&p, perms.to_vec()))
    }

    /// Registers a dom0 watch on `path` (or `@introduceDomain` / `@releaseDomain`); an initial
    /// event fires at once. Events are collected by [`take_backend_events`](Self::take_backend_events).
    /// `EEXIST` for a duplicate (path, token).
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let p = Self::dom0_path(path, true)?;
        let relative = !path.starts_with('/') && !path.starts_with('@');
        let token = token.as_bytes().to_vec();
        if self
            .backend_watches
            .iter()
            .any(|w| w.path == p && w.token == token)
        {
            return Err(XsError::Exist);
        }
        let w = Watch {
            prefix_len: if relative {
                "/local/domain/0/".len()
            } else {
                0
            },
            path: p,
            token,
        };
        self.backend_events.push_back(WatchEvent {
            path: String::from(w.event_path(&w.path)),
            token: String::from_utf8_lossy(&w.token).into_owned(),
        });
        self.backend_watches.push(w);
        Ok(())
    }

    /// Removes a dom0 watch; `ENOENT` if there is none.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let p = Self::dom0_path(path, true)?;
        let i = self
            .backend_watches
            .iter()
            .position(|w| w.path == p && w.token == token.as_bytes())
            .ok_or(XsError::Noent)?;
        self.backend_watches.remove(i);
        Ok(())
    }

    /// Takes the dom0 watch events queued so far, oldest first.
    pub fn take_backend_events(&mut self) -> Vec<WatchEvent> {
        self.backend_events.drain(..).collect()
    }

    /// Whether dom0 watch events are waiting.
    pub fn has_backend_events(&self) -> bool {
        !self.backend_events.is_empty()
    }

    // ---- watch delivery ----

    /// Fires the exact watches on a special node, for those who may read it.
    fn fire_special(&mut self, name: &str) {
        let perms = self
            .tree
            .get(name)
            .map(|n| alloc::vec![n.perms.clone()])
            .unwrap_or_default();
        self.deliver(alloc::vec![Fire {
            path: String::from(name),
            exact: true,
            perms,
        }]);
    }

    /// Queues the events for `fires` on every matching watch whose owner may see them.
    fn deliver(&mut self, fires: Vec<Fire>) {
        let max = self.config.max_queued_events;
        for f in &fires {
            for c in self.conns.values_mut() {
                let node_bytes = self.tree.owned_bytes(c.domid);
                if c.error.is_some() {
                    continue;
                }
                let who = c.who();
                if !f.perms.iter().any(|p| who.rights(p) & RIGHT_READ != 0) {
                    continue;
                }
                let hits: Vec<(String, Vec<u8>)> = c
                    .watches()
                    .iter()
                    .filter(|w| w.matches(&f.path, f.exact))
                    .map(|w| (String::from(w.event_path(&f.path)), w.token.clone()))
                    .collect();
                for (p, t) in hits {
                    if c.queue_event(&p, &t, max, node_bytes) {
                        self.dirty.insert(c.domid);
                    }
                }
            }
            for w in &self.backend_watches {
                if w.matches(&f.path, f.exact) {
                    self.backend_events.push_back(WatchEvent {
                        path: String::from(w.event_path(&f.path)),
                        token: String::from_utf8_lossy(&w.token).into_owned(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Request;
    use alloc::format;
    use guest_abi::xenstore::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Dom0Write(String),
        Dom0Rm(String),
        Dom0Perms(String, u16),
        Guest(u16, u32, u8, String, u8),
    }

    fn path() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                Just("/local/domain/5"),
                Just("/local/domain/6"),
                Just("rel"),
                Just("/other")
            ],
            proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 0..4),
        )
            .prop_map(|(base, parts)| {
                let mut p = String::from(base);
                for c in parts {
                    p.push('/');
                    p.push_str(c);
                }
                p
            })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            path().prop_map(Op::Dom0Write),
            path().prop_map(Op::Dom0Rm),
            (path(), 0u16..8).prop_map(|(p, d)| Op::Dom0Perms(p, d)),
            (
                prop_oneof![Just(5u16), Just(6u16)],
                0u32..4,
                0u8..8,
                path(),
                0u8..4
            )
                .prop_map(|(d, tx, kind, p, v)| Op::Guest(d, tx, kind, p, v)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random operations by dom0 and two guests, in and out of transactions, keep the tree
        /// consistent.
        #[test]
        fn random_operations_keep_the_tree_consistent(ops in proptest::collection::vec(op(), 1..80)) {
            let mut xs = Xenstore::default();
            for d in [5u16, 6] {
                xs.introduce_domain(d).unwrap();
                let home = format!("/local/domain/{d}");
                xs.mkdir(&home).unwrap();
                xs.set_perms(&home, &[Perm::new(Access::None, d), Perm::new(Access::Read, 11 - d)]).unwrap();
            }
            xs.watch("/", "all").unwrap();
            for op in ops {
                match op {
                    Op::Dom0Write(p) => { let _ = xs.write(&p, b"v"); }
                    Op::Dom0Rm(p) => { let _ = xs.rm(&p); }
                    Op::Dom0Perms(p, d) => {
                        let p = if p == "/other" { String::from(RELEASE_DOMAIN) } else { p };
                        let _ = xs.set_perms(&p, &[Perm::new(Access::Read, d), Perm::new(Access::Both, 5)]);
                    }
                    Op::Guest(d, tx, kind, p, v) => {
                        let (ty, payload): (u32, Vec<u8>) = match kind {
                            0 => (XS_WRITE, format!("{p}\0{v}").into_bytes()),
                            1 => (XS_MKDIR, format!("{p}\0").into_bytes()),
                            2 => (XS_RM, format!("{p}\0").into_bytes()),
                            3 => (XS_SET_PERMS, format!("{p}\0n{d}\0r{v}\0").into_bytes()),
                            4 => (XS_TRANSACTION_START, Vec::new()),
                            5 => (XS_TRANSACTION_END, if v % 2 == 0 { b"T\0".to_vec() } else { b"F\0".to_vec() }),
                            6 => (XS_WATCH, format!("{p}\0t{v}\0").into_bytes()),
                            _ => (XS_READ, format!("{p}\0").into_bytes()),
                        };
                        xs.handle(d, Request { ty, req_id: 0, tx_id: tx, payload });
                    }
                }
                prop_assert_eq!(xs.tree.check(), Ok(()));
                prop_assert!(xs.conns.values().all(Connection::check_bytes));
            }
            xs.release_domain(5).unwrap();
            prop_assert_eq!(xs.tree.check(), Ok(()));
            prop_assert_eq!(xs.domain_bytes(5), 0);
            prop_assert!(xs.tree.paths().all(|p| xs.tree.get(p).unwrap().perms.iter().all(|q| q.domid != 5)));
        }
    }
}
