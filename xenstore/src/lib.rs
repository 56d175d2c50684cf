//! xenolith's xenstore server: the tree, watches, transactions and the shared-ring protocol
//! (`xs_wire.h`, `docs/misc/xenstore.txt`), with no privileged instruction.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
