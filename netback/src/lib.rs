//! xenolith's network backend (netback): the XenbusState handshake with a
//! guest's netfront, and its TX/RX rings, reached through grants and event
//! channels, with no privileged instruction.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
