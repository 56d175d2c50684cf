//! The virtual switch (an L2 learning bridge) that joins every vif, and the
//! built-in peer host on it, with no privileged instruction.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
