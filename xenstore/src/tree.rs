//! The node database, transactions and the tree operations shared by the wire protocol and the
//! in-process API.
//!
//! Every operation runs on a [`View`]: the global tree, optionally seen through one
//! [`Transaction`]. A transaction records, for every node it touches, the node's global
//! generation count when first touched (or its absence) and keeps its own copy of every node it
//! modifies; reads see those copies. Commit fails with `EAGAIN` when any touched node's global
//! generation differs from the recorded one (xenstored's rule: a node read or written by the
//! transaction was changed by someone else since). Watch events of a transaction are recorded
//! per node and fire on commit only.
//!
//! Memory: the tree keeps the bytes each owner's nodes take ([`crate::acct`]), a transaction
//! the bytes of its record and copies. Before an unprivileged caller's operation changes
//! anything it computes what every affected domain would be charged and refuses with `ENOMEM`
//! when one would exceed its memory quota, so an operation either happens whole or not at all.

use crate::acct;
use crate::config::Config;
use crate::conn::Connection;
use crate::error::XsError;
use crate::path::{basename, join, parent};
use crate::perms::{Perm, Who, RIGHT_OWNER, RIGHT_READ, RIGHT_WRITE};
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// One node: value, children (in creation order) and permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// The value (binary, usually ASCII without NUL).
    pub value: Vec<u8>,
    /// Names of the immediate children, in creation order.
    pub children: Vec<String>,
    /// Owner + default access first, then grants; never empty.
    pub perms: Vec<Perm>,
    /// Generation count of the last change (unique across the store).
    pub generation: u64,
}

impl Node {
    /// A node with `value` and `perms`, no children, generation 0.
    pub(crate) fn new(value: Vec<u8>, perms: Vec<Perm>) -> Node {
        Node {
            value,
            children: Vec::new(),
            perms,
            generation: 0,
        }
    }

    /// The owning domain.
    pub fn owner(&self) -> u16 {
        self.perms.first().map_or(0, |p| p.domid)
    }

    /// Size counted by the node-size quota: value plus NUL-terminated child names.
    pub fn size(&self) -> usize {
        self.value.len() + self.children.iter().map(|c| c.len() + 1).sum::<usize>()
    }

    /// The children as the wire sends them: each name followed by a NUL.
    pub fn children_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size() - self.value.len());
        for c in &self.children {
            out.extend_from_slice(c.as_bytes());
            out.push(0);
        }
        out
    }
}

/// What one domain's nodes take: how many, and their bytes ([`acct::tree_node`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Nodes owned.
    pub nodes: u32,
    /// Heap bytes they take.
    pub bytes: usize,
}

/// Adds (`add`) or removes the node `n` at `path` from its owner's usage.
fn account(owned: &mut BTreeMap<u16, Usage>, path: &str, n: &Node, add: bool) {
    let bytes = acct::tree_node(path, n);
    let u = owned.entry(n.owner()).or_default();
    if add {
        u.nodes = u.nodes.saturating_add(1);
        u.bytes = u.bytes.saturating_add(bytes);
    } else {
        u.nodes = u.nodes.saturating_sub(1);
        u.bytes = u.bytes.saturating_sub(bytes);
    }
    if u.nodes == 0 {
        owned.remove(&n.owner());
    }
}

/// The global database: nodes by canonical path, plus per-owner usage.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    owned: BTreeMap<u16, Usage>,
    generation: u64,
}

impl Tree {
    /// A tree holding `/` and the special nodes, all owned by dom0 with no access for others.
    pub fn new(specials: &[&str]) -> Tree {
        let mut t = Tree {
            nodes: BTreeMap::new(),
            owned: BTreeMap::new(),
            generation: 0,
        };
        let dom0_only = vec![Perm::new(crate::perms::Access::None, 0)];
        for p in core::iter::once(&"/").chain(specials) {
            let mut n = Node::new(Vec::new(), dom0_only.clone());
            n.generation = t.next_gen();
            t.insert(String::from(*p), n);
        }
        t
    }

    /// The node at a canonical path.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Drops every permission entry naming `domid` after the first, and gives nodes it still
    /// owns (only special nodes can be left) to dom0. Changed nodes get a new generation, so
    /// open transactions holding old copies fail to commit.
    pub fn forget_domain(&mut self, domid: u16) {
        let mut generation = self.generation;
        for (path, n) in self.nodes.iter_mut() {
            let names_it = n.perms.iter().any(|p| p.domid == domid);
            if !names_it {
                continue;
            }
            account(&mut self.owned, path, n, false);
            let mut first = true;
            n.perms
                .retain(|p| core::mem::take(&mut first) || p.domid != domid);
            if let Some(owner) = n.perms.first_mut().filter(|p| p.domid == domid) {
                owner.domid = 0;
            }
            generation += 1;
            n.generation = generation;
            account(&mut self.owned, path, n, true);
        }
        self.generation = generation;
    }

    /// Every node path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Number of nodes owned by `domid`.
    pub fn owned_count(&self, domid: u16) -> u32 {
        self.owned.get(&domid).map_or(0, |u| u.nodes)
    }

    /// Heap bytes the nodes owned by `domid` take.
    pub fn owned_bytes(&self, domid: u16) -> usize {
        self.owned.get(&domid).map_or(0, |u| u.bytes)
    }

    /// A new generation count.
    pub fn next_gen(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn insert(&mut self, path: String, node: Node) {
        account(&mut self.owned, &path, &node, true);
        if let Some(old) = self.nodes.get(&path) {
            account(&mut self.owned, &path, old, false);
        }
        self.nodes.insert(path, node);
    }

    fn remove(&mut self, path: &str) -> Option<Node> {
        let old = self.nodes.remove(path)?;
        account(&mut self.owned, path, &old, false);
        Some(old)
    }
}

/// The bytes `owner` may still be charged: its memory quota less what it holds (its nodes, its
/// connection and `extra`), or `None` without a limit (dom0, a domain without connection).
pub(crate) fn room(
    tree: &Tree,
    conns: &BTreeMap<u16, Connection>,
    owner: u16,
    extra: usize,
) -> Option<usize> {
    let c = conns.get(&owner)?;
    let used = tree.owned_bytes(owner) + c.bytes() + extra;
    Some(c.quota.saturating_sub(used))
}

/// Per-domain byte changes of one operation: (domid, bytes added, bytes freed).
#[derive(Default)]
struct Charges(Vec<(u16, usize, usize)>);

impl Charges {
    fn add(&mut self, domid: u16, add: usize, free: usize) {
        match self.0.iter_mut().find(|c| c.0 == domid) {
            Some(c) => {
                c.1 += add;
                c.2 += free;
            }
            None => self.0.push((domid, add, free)),
        }
    }

    /// `ENOMEM` if a domain would grow past the room `room` gives it.
    fn check(&self, mut room: impl FnMut(u16) -> Option<usize>) -> Result<(), XsError> {
        for &(domid, add, free) in &self.0 {
            let grow = add.saturating_sub(free);
            if grow > 0 && room(domid).is_some_and(|r| grow > r) {
                return Err(XsError::Nomem);
            }
        }
        Ok(())
    }
}

/// A transaction's record of one node.
#[derive(Clone, Debug)]
pub(crate) struct TxEntry {
    /// Global generation when first touched; `None` if the node did not exist.
    pub observed: Option<u64>,
    /// Global permissions when first touched (for the watch permission check on commit).
    pub orig_perms: Option<Vec<Perm>>,
    /// The transaction's own version (`Some(None)`: deleted in the transaction).
    pub local: Option<Option<Node>>,
    /// A watch event to fire on commit; `true` if only exact watches match.
    pub fire: Option<bool>,
}

impl TxEntry {
    /// Whether this entry creates a node that did not exist when first touched.
    fn creates(&self) -> bool {
        self.observed.is_none() && matches!(self.local, Some(Some(_)))
    }
}

/// An open transaction.
#[derive(Clone, Debug, Default)]
pub(crate) struct Transaction {
    accessed: BTreeMap<String, TxEntry>,
    failed: bool,
    /// Bytes of `accessed` ([`acct::tx_entry`] of each entry).
    bytes: usize,
    /// Entries that create a node (for the node quota of the caller's other requests).
    created: u32,
}

impl Transaction {
    /// Heap bytes this transaction holds.
    pub fn bytes(&self) -> usize {
        acct::TRANSACTION + self.bytes
    }

    /// Nodes this transaction would create on commit.
    pub fn created(&self) -> u32 {
        self.created
    }

    /// Whether the cached byte and creation counts match the entries (tests).
    #[cfg(test)]
    pub fn check_bytes(&self) -> bool {
        let bytes: usize = self
            .accessed
            .iter()
            .map(|(p, e)| acct::tx_entry(p, e))
            .sum();
        let created = self.accessed.values().filter(|e| e.creates()).count();
        bytes == self.bytes && created == self.created as usize
    }
}

/// A watch event to deliver: `path` changed. The event reaches a watcher that may read one of
/// `perms` (the node's old and new permissions and its parent's).
#[derive(Clone, Debug)]
pub(crate) struct Fire {
    /// The changed node.
    pub path: String,
    /// Only watches on exactly `path` match (descendants removed with a subtree).
    pub exact: bool,
    /// Permission lists of which one readable one suffices.
    pub perms: Vec<Vec<Perm>>,
}

/// Permission lists relevant to an event on `path` in `tree`, plus `extra`.
fn fire_perms(tree: &Tree, path: &str, extra: Option<Vec<Perm>>) -> Vec<Vec<Perm>> {
    let mut perms: Vec<Vec<Perm>> = extra.into_iter().collect();
    if let Some(n) = tree.get(path) {
        perms.push(n.perms.clone());
    }
    if path != "/" {
        if let Some(p) = tree.get(parent(path)) {
            perms.push(p.perms.clone());
        }
    }
    perms
}

/// The quotas a commit by an unprivileged domain is checked against.
pub(crate) struct CommitQuota<'a> {
    /// The committing domain.
    pub domid: u16,
    /// Its node quota.
    pub max_nodes: u32,
    /// Every connection (the transaction already taken out of its own), for memory quotas.
    pub conns: &'a BTreeMap<u16, Connection>,
}

/// Commits `tx` into `tree`: `EAGAIN` on conflict, `ENOMEM` if it had failed or a domain would
/// exceed its memory quota, `ENOSPC` if the caller would own too many nodes. Watch events go
/// to `fires`.
pub(crate) fn commit(
    tree: &mut Tree,
    tx: Transaction,
    quota: Option<CommitQuota<'_>>,
    fires: &mut Vec<Fire>,
) -> Result<(), XsError> {
    if tx.failed {
        return Err(XsError::Nomem);
    }
    for (path, e) in &tx.accessed {
        if tree.get(path).map(|n| n.generation) != e.observed {
            return Err(XsError::Again);
        }
    }
    if let Some(q) = quota {
        let delta = owned_delta(tree, &tx, q.domid);
        if delta > 0 && i64::from(tree.owned_count(q.domid)) + delta > i64::from(q.max_nodes) {
            return Err(XsError::Nospc);
        }
        let mut charges = Charges::default();
        for (path, e) in &tx.accessed {
            if let Some(local) = &e.local {
                if let Some(old) = tree.get(path) {
                    charges.add(old.owner(), 0, acct::tree_node(path, old));
                }
                if let Some(new) = local {
                    charges.add(new.owner(), acct::tree_node(path, new), 0);
                }
            }
        }
        charges.check(|d| room(tree, q.conns, d, 0))?;
    }
    let mut to_fire = Vec::new();
    for (path, e) in tx.accessed {
        if let Some(exact) = e.fire {
            to_fire.push((path.clone(), exact, e.orig_perms));
        }
        match e.local {
            Some(Some(mut node)) => {
                node.generation = tree.next_gen();
                tree.insert(path, node);
            }
            Some(None) => {
                tree.remove(&path);
            }
            None => {}
        }
    }
    for (path, exact, orig) in to_fire {
        let perms = fire_perms(tree, &path, orig);
        fires.push(Fire { path, exact, perms });
    }
    Ok(())
}

/// Net change of the number of nodes owned by `domid` that committing `tx` would make.
fn owned_delta(tree: &Tree, tx: &Transaction, domid: u16) -> i64 {
    let mut delta = 0i64;
    for (path, e) in &tx.accessed {
        if let Some(local) = &e.local {
            let before = tree.get(path).is_some_and(|n| n.owner() == domid);
            let after = local.as_ref().is_some_and(|n| n.owner() == domid);
            delta += i64::from(after) - i64::from(before);
        }
    }
    delta
}

/// The tree as one caller sees it, optionally through a transaction. Operations take canonical
/// paths; watch events they cause collect in `fires` (non-transactional) or in the transaction.
pub(crate) struct View<'a> {
    tree: &'a mut Tree,
    tx: Option<&'a mut Transaction>,
    who: Who,
    config: &'a Config,
    /// The connections, for the memory quotas of an unprivileged caller (`None` for dom0).
    conns: Option<&'a BTreeMap<u16, Connection>>,
    /// Events to deliver once the operation is done.
    pub fires: Vec<Fire>,
}

impl<'a> View<'a> {
    /// A view for `who`, through `tx` if given. `conns` (every connection, with `tx` taken out
    /// of its own) gives the memory quotas an unprivileged caller is checked against.
    pub fn new(
        tree: &'a mut Tree,
        tx: Option<&'a mut Transaction>,
        who: Who,
        config: &'a Config,
        conns: Option<&'a BTreeMap<u16, Connection>>,
    ) -> View<'a> {
        View {
            tree,
            tx,
            who,
            config,
            conns,
            fires: Vec::new(),
        }
    }

    /// The bytes `domid` may still be charged by this caller, or `None` without a limit.
    fn room(&self, domid: u16) -> Option<usize> {
        if self.who.privileged {
            return None;
        }
        let extra = match self.tx.as_deref() {
            Some(tx) if domid == self.who.domid => tx.bytes(),
            _ => 0,
        };
        room(self.tree, self.conns?, domid, extra)
    }

    /// Records a first access in the transaction: `ENOSPC` past the per-transaction node
    /// limit, `ENOMEM` past the caller's memory quota; either fails the transaction (as
    /// xenstored's `access_node`).
    fn touch(&mut self, path: &str) -> Result<(), XsError> {
        if self
            .tx
            .as_deref()
            .is_none_or(|tx| tx.accessed.contains_key(path))
        {
            return Ok(());
        }
        let g = self.tree.get(path);
        let entry = TxEntry {
            observed: g.map(|n| n.generation),
            orig_perms: g.map(|n| n.perms.clone()),
            local: None,
            fire: None,
        };
        let bytes = acct::tx_entry(path, &entry);
        let room = self.room(self.who.domid);
        let limited = !self.who.privileged;
        let Some(tx) = self.tx.as_deref_mut() else {
            return Ok(());
        };
        if limited && tx.accessed.len() >= self.config.max_transaction_nodes {
            tx.failed = true;
            return Err(XsError::Nospc);
        }
        if room.is_some_and(|r| bytes > r) {
            tx.failed = true;
            return Err(XsError::Nomem);
        }
        tx.accessed.insert(path.to_string(), entry);
        tx.bytes += bytes;
        Ok(())
    }

    /// The node at `path` as this view sees it.
    fn get(&mut self, path: &str) -> Result<Option<Node>, XsError> {
        self.touch(path)?;
        if let Some(tx) = self.tx.as_deref() {
            if let Some(TxEntry {
                local: Some(local), ..
            }) = tx.accessed.get(path)
            {
                return Ok(local.clone());
            }
        }
        Ok(self.tree.get(path).cloned())
    }

    /// Replaces (or with `None` deletes) the node at each path of `puts`, all or none: every
    /// path is touched first, then what each domain would be charged is checked against its
    /// memory quota (`ENOMEM`). The paths must be distinct.
    fn put(&mut self, puts: Vec<(String, Option<Node>)>) -> Result<(), XsError> {
        for (path, _) in &puts {
            self.touch(path)?;
        }
        if !self.who.privileged {
            let mut charges = Charges::default();
            for (path, node) in &puts {
                match self.tx.as_deref() {
                    Some(tx) => {
                        let Some(e) = tx.accessed.get(path) else {
                            continue;
                        };
                        let new = acct::tx_record(path, e.orig_perms.as_deref())
                            + node.as_ref().map_or(0, acct::node_copy);
                        charges.add(self.who.domid, new, acct::tx_entry(path, e));
                    }
                    None => {
                        if let Some(old) = self.tree.get(path) {
                            charges.add(old.owner(), 0, acct::tree_node(path, old));
                        }
                        if let Some(new) = node {
                            charges.add(new.owner(), acct::tree_node(path, new), 0);
                        }
                    }
                }
            }
            charges.check(|d| self.room(d))?;
        }
        for (path, node) in puts {
            let node = node.map(|mut n| {
                n.generation = self.tree.next_gen();
                n
            });
            match self.tx.as_deref_mut() {
                Some(tx) => {
                    if let Some(e) = tx.accessed.get_mut(&path) {
                        let (bytes, created) = (acct::tx_entry(&path, e), e.creates());
                        e.local = Some(node);
                        tx.bytes = tx.bytes - bytes + acct::tx_entry(&path, e);
                        tx.created = tx.created - u32::from(created) + u32::from(e.creates());
                    }
                }
                None => match node {
                    Some(n) => self.tree.insert(path, n),
                    None => {
                        self.tree.remove(&path);
                    }
                },
            }
        }
        Ok(())
    }

    /// Records a watch event on `path` (`old`: permissions before a `SET_PERMS`).
    fn fire(&mut self, path: &str, exact: bool, old: Option<Vec<Perm>>) {
        match self.tx.as_deref_mut() {
            Some(tx) => match tx.accessed.get_mut(path) {
                Some(e) => e.fire = Some(e.fire.map_or(exact, |was| was && exact)),
                None => tx.failed = true,
            },
            None => {
                let perms = fire_perms(self.tree, path, old);
                self.fires.push(Fire {
                    path: path.to_string(),
                    exact,
                    perms,
                });
            }
        }
    }

    /// Nodes owned by `domid`, counting this view's transaction and the nodes created in the
    /// caller's other open transactions.
    fn owned_count(&self, domid: u16) -> i64 {
        let mut n = i64::from(self.tree.owned_count(domid));
        if let Some(tx) = self.tx.as_deref() {
            n += owned_delta(self.tree, tx, domid);
        }
        if let Some(c) = self.conns.and_then(|c| c.get(&domid)) {
            n += c
                .transactions
                .values()
                .map(|t| i64::from(t.created()))
                .sum::<i64>();
        }
        n
    }

    /// The error for a missing node (xenstored's `errno_from_parents`): `ENOENT` if the closest
    /// existing ancestor grants any of `need`, else `EACCES` (so nothing leaks).
    fn missing(&mut self, path: &str, need: u8) -> XsError {
        let mut p = path;
        loop {
            p = parent(p);
            match self.get(p) {
                Err(e) => return e,
                Ok(Some(n)) => {
                    return if self.who.rights(&n.perms) & need != 0 {
                        XsError::Noent
                    } else {
                        XsError::Acces
                    }
                }
                Ok(None) if p == "/" => return XsError::Acces,
                Ok(None) => {}
            }
        }
    }

    /// The node at `path` if it exists and the caller has all of `need` on it.
    fn lookup(&mut self, path: &str, need: u8) -> Result<Node, XsError> {
        match self.get(path)? {
            Some(n) if self.who.rights(&n.perms) & need == need => Ok(n),
            Some(_) => Err(XsError::Acces),
            None => Err(self.missing(path, need)),
        }
    }

    /// Whether `path` exists (no permission check).
    pub fn exists(&mut self, path: &str) -> Result<bool, XsError> {
        Ok(self.get(path)?.is_some())
    }

    /// `READ`.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        Ok(self.lookup(path, RIGHT_READ)?.value)
    }

    /// `DIRECTORY`: the child names.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        Ok(self.lookup(path, RIGHT_READ)?.children)
    }

    /// `DIRECTORY_PART`: the generation count and the NUL-separated child list.
    pub fn directory_blob(&mut self, path: &str) -> Result<(u64, Vec<u8>), XsError> {
        let n = self.lookup(path, RIGHT_READ)?;
        Ok((n.generation, n.children_blob()))
    }

    /// `GET_PERMS`.
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Perm>, XsError> {
        Ok(self.lookup(path, RIGHT_READ)?.perms)
    }

    /// `WRITE`: sets the value, creating the node and missing parents.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        match self.get(path)? {
            Some(mut n) => {
                if self.who.rights(&n.perms) & RIGHT_WRITE == 0 {
                    return Err(XsError::Acces);
                }
                if !self.who.privileged
                    && value.len() + n.size() - n.value.len() > self.config.max_node_size
                {
                    return Err(XsError::Nospc);
                }
                n.value = value.to_vec();
                self.put(vec![(path.to_string(), Some(n))])?;
            }
            None => {
                let e = self.missing(path, RIGHT_WRITE);
                if e != XsError::Noent {
                    return Err(e);
                }
                self.create(path, value)?;
            }
        }
        self.fire(path, false, None);
        Ok(())
    }

    /// `MKDIR`: creates the node (empty) and missing parents; nothing if it exists.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        match self.get(path)? {
            Some(n) if self.who.rights(&n.perms) & RIGHT_WRITE != 0 => Ok(()),
            Some(_) => Err(XsError::Acces),
            None => {
                let e = self.missing(path, RIGHT_WRITE);
                if e != XsError::Noent {
                    return Err(e);
                }
                self.create(path, &[])?;
                self.fire(path, false, None);
                Ok(())
            }
        }
    }

    /// Creates `path` with `value` and any missing parents. New nodes inherit their parent's
    /// permissions; a domU becomes the owner of what it creates.
    fn create(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut missing = vec![path.to_string()];
        let mut top_path = parent(path).to_string();
        let mut top = loop {
            match self.get(&top_path)? {
                Some(n) => break n,
                None if top_path == "/" => return Err(XsError::Io),
                None => {
                    let up = parent(&top_path).to_string();
                    missing.push(core::mem::replace(&mut top_path, up));
                }
            }
        };
        if !self.who.privileged {
            let c = self.config;
            let first = missing.last().map_or("", |p| basename(p));
            if value.len() > c.max_node_size
                || top.size() + first.len() + 1 > c.max_node_size
                || self.owned_count(self.who.domid) + missing.len() as i64 > i64::from(c.max_nodes)
            {
                return Err(XsError::Nospc);
            }
        }
        let mut puts = Vec::with_capacity(missing.len() + 1);
        let mut parent_path = top_path;
        while let Some(name) = missing.pop() {
            top.children.push(basename(&name).to_string());
            let mut perms = top.perms.clone();
            if !self.who.privileged {
                if let Some(owner) = perms.first_mut() {
                    owner.domid = self.who.domid;
                }
            }
            puts.push((parent_path, Some(top)));
            let v = if missing.is_empty() {
                value.to_vec()
            } else {
                Vec::new()
            };
            top = Node::new(v, perms);
            parent_path = name;
        }
        puts.push((parent_path, Some(top)));
        self.put(puts)
    }

    /// `RM`: removes `path` and its subtree. Fine if it is missing but its parent exists.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        let Some(node) = self.get(path)? else {
            let e = self.missing(path, RIGHT_WRITE);
            if e != XsError::Noent {
                return Err(e);
            }
            return match self.get(parent(path))? {
                Some(_) => Ok(()),
                None => Err(XsError::Noent),
            };
        };
        if self.who.rights(&node.perms) & RIGHT_WRITE == 0 {
            return Err(XsError::Acces);
        }
        if path == "/" {
            return Err(XsError::Inval);
        }
        let Some(mut par) = self.get(parent(path))? else {
            return Err(XsError::Inval);
        };
        // Pre-order walk (holding child names, not nodes); reversed, every node comes after
        // all its descendants.
        let mut order = Vec::new();
        let mut stack = vec![(path.to_string(), node.children)];
        while let Some((p, children)) = stack.pop() {
            for c in children {
                let cp = join(&p, &c);
                if let Some(cn) = self.get(&cp)? {
                    stack.push((cp, cn.children));
                }
            }
            order.push(p);
        }
        order.reverse();
        // The events name the removed nodes' permissions: take them before removing.
        let fires: Vec<Fire> = match self.tx {
            Some(_) => Vec::new(),
            None => order
                .iter()
                .map(|p| Fire {
                    path: p.clone(),
                    exact: p != path,
                    perms: fire_perms(self.tree, p, None),
                })
                .collect(),
        };
        let base = basename(path);
        par.children.retain(|c| c != base);
        let mut puts: Vec<(String, Option<Node>)> =
            order.iter().map(|p| (p.clone(), None)).collect();
        puts.push((parent(path).to_string(), Some(par)));
        self.put(puts)?;
        if self.tx.is_some() {
            for p in &order {
                self.fire(p, p != path, None);
            }
        }
        self.fires.extend(fires);
        Ok(())
    }

    /// `SET_PERMS`: needs write and owner rights; a domU may not change the owner.
    pub fn set_perms(&mut self, path: &str, perms: Vec<Perm>) -> Result<(), XsError> {
        if perms.is_empty() {
            return Err(XsError::Inval);
        }
        if !self.who.privileged && perms.len() > self.config.max_perms {
            return Err(XsError::Nospc);
        }
        let need = RIGHT_WRITE | RIGHT_OWNER;
        let mut n = match self.get(path)? {
            Some(n) if self.who.rights(&n.perms) & need == need => n,
            Some(_) => return Err(XsError::Acces),
            None => return Err(self.missing(path, need)),
        };
        if !self.who.privileged && perms[0].domid != n.owner() {
            return Err(XsError::Perm);
        }
        let old = core::mem::replace(&mut n.perms, perms);
        self.put(vec![(path.to_string(), Some(n))])?;
        self.fire(path, false, Some(old));
        Ok(())
    }
}

#[cfg(test)]
impl Tree {
    /// Structural invariants: parents list their children exactly once and vice versa, every
    /// node has permissions, and the per-owner counts match.
    pub fn check(&self) -> Result<(), String> {
        use alloc::format;
        if self.get("/").is_none() {
            return Err("no root".into());
        }
        let mut counts: BTreeMap<u16, Usage> = BTreeMap::new();
        for (p, n) in &self.nodes {
            if n.perms.is_empty() {
                return Err(format!("{p}: no perms"));
            }
            let u = counts.entry(n.owner()).or_default();
            u.nodes += 1;
            u.bytes += acct::tree_node(p, n);
            for c in &n.children {
                if self.get(&join(p, c)).is_none() {
                    return Err(format!("{p}: child {c} missing"));
                }
            }
            if p != "/" && p.starts_with('/') {
                let par = self
                    .get(parent(p))
                    .ok_or_else(|| format!("{p}: no parent"))?;
                let b = basename(p);
                if par.children.iter().filter(|c| *c == b).count() != 1 {
                    return Err(format!("{p}: not listed once in its parent"));
                }
            }
        }
        if counts != self.owned {
            return Err(format!("counts {counts:?} != {:?}", self.owned));
        }
        Ok(())
    }
}
