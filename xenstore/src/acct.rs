//! Memory accounting (xenstored's `ACC_MEM`): what the heap holds on a domain's behalf.
//!
//! Each figure is an upper bound of the heap bytes one item occupies: a heap block of `n` bytes
//! counts as `n` rounded up to 16 plus 16 (the allocator's granularity and some slack), an
//! entry of a `BTreeMap`, `Vec` or `VecDeque` as twice its inline size (B-tree nodes and grown
//! vectors are at least half full). A node is charged to its owner, including its name in its
//! parent's child list; everything a connection holds (transaction copies, watches, queued
//! output, the partial request) to the connection's domain.

use crate::conn::{OutMsg, Watch};
use crate::path::basename;
use crate::perms::Perm;
use crate::tree::{Node, Transaction, TxEntry};
use alloc::string::String;
use core::mem::size_of;

/// The heap bytes a block of `len` bytes may take (none for an empty vector).
pub(crate) const fn block(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len.div_ceil(16) * 16 + 16
    }
}

/// A child list's vector: a clone holds exactly `n` names, one push later at most `2n` (4 at
/// least).
fn child_list(n: usize) -> usize {
    block(n.saturating_mul(2).max(4) * size_of::<String>())
}

fn perms(p: &[Perm]) -> usize {
    block(core::mem::size_of_val(p))
}

/// A node at `path` in the global tree, charged to its owner: its map entry, path, value,
/// permissions, child-list vector and its own name in its parent's child list (so a parent's
/// list is paid for by the children in it).
pub(crate) fn tree_node(path: &str, n: &Node) -> usize {
    2 * size_of::<(String, Node)>()
        + block(path.len())
        + block(n.value.len())
        + perms(&n.perms)
        + child_list(0)
        + 2 * size_of::<String>()
        + block(basename(path).len())
}

/// A transaction's own copy of a node (the copy lives inline in its [`TxEntry`]).
pub(crate) fn node_copy(n: &Node) -> usize {
    block(n.value.len())
        + perms(&n.perms)
        + child_list(n.children.len())
        + n.children.iter().map(|c| block(c.len())).sum::<usize>()
}

/// One entry of a transaction's access record at `path`, without its copy.
pub(crate) fn tx_record(path: &str, orig_perms: Option<&[Perm]>) -> usize {
    2 * size_of::<(String, TxEntry)>() + block(path.len()) + orig_perms.map_or(0, perms)
}

/// One entry of a transaction's access record at `path`, with its copy if any.
pub(crate) fn tx_entry(path: &str, e: &TxEntry) -> usize {
    tx_record(path, e.orig_perms.as_deref())
        + match &e.local {
            Some(Some(n)) => node_copy(n),
            _ => 0,
        }
}

/// An open transaction, without its entries.
pub(crate) const TRANSACTION: usize = 2 * size_of::<(u32, Transaction)>();

/// A registered watch.
pub(crate) fn watch(w: &Watch) -> usize {
    2 * size_of::<Watch>() + block(w.path.len()) + block(w.token.len())
}

/// A queued message of `len` bytes (header included).
pub(crate) const fn out_msg(len: usize) -> usize {
    2 * size_of::<OutMsg>() + block(len)
}

/// A connection itself, in the server's connection map.
pub(crate) const CONNECTION: usize = 2 * size_of::<(u16, crate::conn::Connection)>();

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn blocks_round_up() {
        assert_eq!(block(0), 0);
        assert_eq!(block(1), 32);
        assert_eq!(block(16), 32);
        assert_eq!(block(17), 48);
    }

    #[test]
    fn a_node_costs_more_than_its_bytes() {
        let n = Node::new(vec![b'x'; 2048], vec![Perm::new(crate::Access::None, 5)]);
        let path = "/local/domain/5/data";
        let c = tree_node(path, &n);
        assert!(c > 2048 + path.len() + "data".len() + 4);
        assert!(c < 2048 + 512, "{c}");
    }
}
