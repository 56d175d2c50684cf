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

use crate::config::Config;
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
    fn new(value: Vec<u8>, perms: Vec<Perm>) -> Node {
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

/// The global database: nodes by canonical path, plus per-owner node counts.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    owned: BTreeMap<u16, u32>,
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
        let mut moved = 0;
        for n in self.nodes.values_mut() {
            let before = n.perms.len();
            let mut first = true;
            n.perms
                .retain(|p| core::mem::take(&mut first) || p.domid != domid);
            let mut changed = n.perms.len() != before;
            if n.perms[0].domid == domid {
                n.perms[0].domid = 0;
                moved += 1;
                changed = true;
            }
            if changed {
                generation += 1;
                n.generation = generation;
            }
        }
        self.generation = generation;
        if moved > 0 {
            self.count(domid, -moved);
            self.count(0, moved);
        }
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
        self.owned.get(&domid).copied().unwrap_or(0)
    }

    /// A new generation count.
    pub fn next_gen(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn count(&mut self, owner: u16, delta: i32) {
        let c = self.owned.entry(owner).or_insert(0);
        *c = c.saturating_add_signed(delta);
        if *c == 0 {
            self.owned.remove(&owner);
        }
    }

    fn insert(&mut self, path: String, node: Node) {
        self.count(node.owner(), 1);
        if let Some(old) = self.nodes.insert(path, node) {
            self.count(old.owner(), -1);
        }
    }

    fn remove(&mut self, path: &str) -> Option<Node> {
        let old = self.nodes.remove(path)?;
        self.count(old.owner(), -1);
        Some(old)
    }
}

/// A transaction's record of one node.
#[derive(Debug)]
struct TxEntry {
    /// Global generation when first touched; `None` if the node did not exist.
    observed: Option<u64>,
    /// Global permissions when first touched (for the watch permission check on commit).
    orig_perms: Option<Vec<Perm>>,
    /// The transaction's own version (`Some(None)`: deleted in the transaction).
    local: Option<Option<Node>>,
    /// A watch event to fire on commit; `true` if only exact watches match.
    fire: Option<bool>,
}

/// An open transaction.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    accessed: BTreeMap<String, TxEntry>,
    failed: bool,
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

/// Commits `tx` into `tree`: `EAGAIN` on conflict, `ENOMEM` if it had failed, `ENOSPC` if the
/// caller (`quota`: domid and node limit) would own too many nodes. Watch events go to `fires`.
pub(crate) fn commit(
    tree: &mut Tree,
    tx: Transaction,
    quota: Option<(u16, u32)>,
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
    if let Some((domid, max)) = quota {
        let delta = owned_delta(tree, &tx, domid);
        if delta > 0 && i64::from(tree.owned_count(domid)) + delta > i64::from(max) {
            return Err(XsError::Nospc);
        }
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
    /// Events to deliver once the operation is done.
    pub fires: Vec<Fire>,
}

impl<'a> View<'a> {
    /// A view for `who`, through `tx` if given.
    pub fn new(
        tree: &'a mut Tree,
        tx: Option<&'a mut Transaction>,
        who: Who,
        config: &'a Config,
    ) -> View<'a> {
        View {
            tree,
            tx,
            who,
            config,
            fires: Vec::new(),
        }
    }

    /// Records a first access in the transaction (`ENOSPC` past the per-transaction limit).
    fn touch(&mut self, path: &str) -> Result<(), XsError> {
        let Some(tx) = self.tx.as_deref_mut() else {
            return Ok(());
        };
        if tx.accessed.contains_key(path) {
            return Ok(());
        }
        if !self.who.privileged && tx.accessed.len() >= self.config.max_transaction_nodes {
            tx.failed = true;
            return Err(XsError::Nospc);
        }
        let g = self.tree.get(path);
        tx.accessed.insert(
            path.to_string(),
            TxEntry {
                observed: g.map(|n| n.generation),
                orig_perms: g.map(|n| n.perms.clone()),
                local: None,
                fire: None,
            },
        );
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

    /// Replaces (or with `None` deletes) the node at `path`.
    fn put(&mut self, path: &str, node: Option<Node>) -> Result<(), XsError> {
        self.touch(path)?;
        let node = node.map(|mut n| {
            n.generation = self.tree.next_gen();
            n
        });
        match self.tx.as_deref_mut() {
            Some(tx) => {
                if let Some(e) = tx.accessed.get_mut(path) {
                    e.local = Some(node);
                }
            }
            None => match node {
                Some(n) => self.tree.insert(path.to_string(), n),
                None => {
                    self.tree.remove(path);
                }
            },
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

    /// Nodes owned by `domid`, counting this view's transaction.
    fn owned_count(&self, domid: u16) -> i64 {
        let base = i64::from(self.tree.owned_count(domid));
        match self.tx.as_deref() {
            Some(tx) => base + owned_delta(self.tree, tx, domid),
            None => base,
        }
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
                self.put(path, Some(n))?;
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
        let mut parent_path = top_path;
        while let Some(name) = missing.pop() {
            top.children.push(basename(&name).to_string());
            let mut perms = top.perms.clone();
            if !self.who.privileged {
                perms[0].domid = self.who.domid;
            }
            self.put(&parent_path, Some(top))?;
            let v = if missing.is_empty() {
                value.to_vec()
            } else {
                Vec::new()
            };
            top = Node::new(v, perms);
            parent_path = name;
        }
        self.put(&parent_path, Some(top))
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
        // Pre-order walk; reversed, every node comes after all its descendants.
        let mut order = Vec::new();
        let mut stack = vec![(path.to_string(), node)];
        while let Some((p, n)) = stack.pop() {
            for c in &n.children {
                let cp = join(&p, c);
                if let Some(cn) = self.get(&cp)? {
                    stack.push((cp, cn));
                }
            }
            order.push(p);
        }
        order.reverse();
        for p in &order {
            self.fire(p, p != path, None);
        }
        for p in &order {
            self.put(p, None)?;
        }
        let base = basename(path);
        par.children.retain(|c| c != base);
        self.put(parent(path), Some(par))
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
        self.put(path, Some(n))?;
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
        let mut counts: BTreeMap<u16, u32> = BTreeMap::new();
        for (p, n) in &self.nodes {
            if n.perms.is_empty() {
                return Err(format!("{p}: no perms"));
            }
            *counts.entry(n.owner()).or_insert(0) += 1;
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
