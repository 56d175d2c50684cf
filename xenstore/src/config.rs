//! Per-domain limits. They apply to unprivileged domains only; dom0 (the in-process API) has
//! none.

/// Quotas and protocol limits, with the defaults of C xenstored (`tools/xenstored/domain.c`,
/// `quotas[]`) and the errors it answers when they are hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Nodes a domain may own (`nodes`, default 1000), counting those created in its open
    /// transactions (checked as they are created, and again on commit). Creating more:
    /// `ENOSPC`.
    pub max_nodes: u32,
    /// Watches per domain (`watches`, default 128). One more: `ENOSPC` (xenstored answered
    /// `E2BIG` until its commit 70fcc2531c, 2026, made every quota error `ENOSPC`).
    pub max_watches: u32,
    /// Open transactions per domain (`transactions`, default 10). One more: `ENOSPC`.
    pub max_transactions: u32,
    /// Size of one node: value plus its NUL-terminated child names (`node-size`, default
    /// 2048; xenstored also counts a header and the permissions). Larger: `ENOSPC`.
    pub max_node_size: usize,
    /// Permission entries per node (`node-permissions`, default 5). More: `ENOSPC`.
    pub max_perms: usize,
    /// Path length after `/local/domain/<n>/` (`path-max`, default 2048,
    /// `XENSTORE_REL_PATH_MAX`). Longer: `EINVAL`. Every path is also limited to 3072 bytes
    /// (`XENSTORE_ABS_PATH_MAX`), for every caller.
    pub max_path_len: usize,
    /// Distinct nodes one transaction may touch (`transaction-nodes`, default 1024). More:
    /// `ENOSPC`, and the transaction can then only fail (`ENOMEM` on commit, as xenstored).
    pub max_transaction_nodes: usize,
    /// Replies queued for a domain before the server stops reading its requests (xenstored's
    /// `outstanding`, default 20). This is flow control, not an error.
    pub max_outstanding: usize,
    /// Requests handled in one [`process_ring`](crate::Xenstore::process_ring) pass before it
    /// returns with `more` set, so that a guest feeding its ring from another vCPU cannot keep
    /// the server busy forever. Default 64.
    pub max_requests_per_pass: usize,
    /// Watch events queued for a domain; further events are dropped (xenstored drops events
    /// past its memory quota). Default 1024.
    pub max_queued_events: usize,
    /// Bytes the store may hold on a domain's behalf (`memory`, its hard quota): the nodes it
    /// owns, its transactions' records and copies, watches, queued output and partial request,
    /// as counted by [`Xenstore::domain_bytes`](crate::Xenstore::domain_bytes). A request
    /// that would go past it gets `ENOMEM` (a reply over 16 bytes too, as xenstored's
    /// `send_reply`); a watch event that would is dropped (xenstored's `send_event`).
    /// [`Xenstore::set_memory_quota`](crate::Xenstore::set_memory_quota) sets it per domain.
    ///
    /// Default 4 MiB, from xenstored's 2.5 MiB (`2 * 1024 * 1024 + 512 * 1024`), which counts
    /// names and payloads only: this also counts the allocator's and the maps' overhead, about
    /// 500 bytes a node, so the `nodes` quota's 1000 nodes of 2 KiB take 2.4 MiB here, and
    /// 4 MiB leaves 1.6 MiB for transaction copies (about 2.6 KiB each) and output.
    pub max_memory: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_nodes: 1000,
            max_watches: 128,
            max_transactions: 10,
            max_node_size: 2048,
            max_perms: 5,
            max_path_len: guest_abi::xenstore::XENSTORE_REL_PATH_MAX,
            max_transaction_nodes: 1024,
            max_outstanding: 20,
            max_requests_per_pass: 64,
            max_queued_events: 1024,
            max_memory: 4 << 20,
        }
    }
}
