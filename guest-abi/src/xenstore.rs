//! The xenstore ring and wire protocol (`io/xs_wire.h`) and xenbus states (`io/xenbus.h`).

use crate::{assert_offset, assert_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XS_CONTROL` (alias `XS_DEBUG`).
pub const XS_CONTROL: u32 = 0;
/// `XS_DIRECTORY`: list children, reply NUL-separated names.
pub const XS_DIRECTORY: u32 = 1;
/// `XS_READ`: read a value (no trailing NUL in the reply).
pub const XS_READ: u32 = 2;
/// `XS_GET_PERMS`.
pub const XS_GET_PERMS: u32 = 3;
/// `XS_WATCH`: payload `path\0token\0`.
pub const XS_WATCH: u32 = 4;
/// `XS_UNWATCH`: payload `path\0token\0`.
pub const XS_UNWATCH: u32 = 5;
/// `XS_TRANSACTION_START`: reply `"<id>\0"`.
pub const XS_TRANSACTION_START: u32 = 6;
/// `XS_TRANSACTION_END`: payload `"T\0"` (commit) or `"F\0"` (abort).
pub const XS_TRANSACTION_END: u32 = 7;
/// `XS_INTRODUCE`.
pub const XS_INTRODUCE: u32 = 8;
/// `XS_RELEASE`.
pub const XS_RELEASE: u32 = 9;
/// `XS_GET_DOMAIN_PATH`.
pub const XS_GET_DOMAIN_PATH: u32 = 10;
/// `XS_WRITE`: payload `path\0value`.
pub const XS_WRITE: u32 = 11;
/// `XS_MKDIR`.
pub const XS_MKDIR: u32 = 12;
/// `XS_RM`.
pub const XS_RM: u32 = 13;
/// `XS_SET_PERMS`.
pub const XS_SET_PERMS: u32 = 14;
/// `XS_WATCH_EVENT`: server to client, payload `path\0token\0`.
pub const XS_WATCH_EVENT: u32 = 15;
/// `XS_ERROR`: reply carrying an errno name such as `"ENOENT\0"`.
pub const XS_ERROR: u32 = 16;
/// `XS_IS_DOMAIN_INTRODUCED`.
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
/// `XS_RESUME`.
pub const XS_RESUME: u32 = 18;
/// `XS_SET_TARGET`.
pub const XS_SET_TARGET: u32 = 19;
/// `XS_RESET_WATCHES` (20, `XS_RESTRICT`, was removed).
pub const XS_RESET_WATCHES: u32 = 21;
/// `XS_DIRECTORY_PART`.
pub const XS_DIRECTORY_PART: u32 = 22;
/// `XS_GET_FEATURE`.
pub const XS_GET_FEATURE: u32 = 23;
/// `XS_SET_FEATURE`.
pub const XS_SET_FEATURE: u32 = 24;
/// `XS_GET_QUOTA`.
pub const XS_GET_QUOTA: u32 = 25;
/// `XS_SET_QUOTA`.
pub const XS_SET_QUOTA: u32 = 26;
/// `XS_TYPE_COUNT`: number of message types.
pub const XS_TYPE_COUNT: u32 = 27;
/// `XS_INVALID`: never a valid type.
pub const XS_INVALID: u32 = 0xffff;

/// `XS_WATCH_PATH`: index of the path in a watch event's payload.
pub const XS_WATCH_PATH: usize = 0;
/// `XS_WATCH_TOKEN`: index of the token in a watch event's payload.
pub const XS_WATCH_TOKEN: usize = 1;

/// The name of a message type (`"XS_READ"`), for logging.
pub const fn xs_type_name(ty: u32) -> Option<&'static str> {
    Some(match ty {
        XS_CONTROL => "XS_CONTROL",
        XS_DIRECTORY => "XS_DIRECTORY",
        XS_READ => "XS_READ",
        XS_GET_PERMS => "XS_GET_PERMS",
        XS_WATCH => "XS_WATCH",
        XS_UNWATCH => "XS_UNWATCH",
        XS_TRANSACTION_START => "XS_TRANSACTION_START",
        XS_TRANSACTION_END => "XS_TRANSACTION_END",
        XS_INTRODUCE => "XS_INTRODUCE",
        XS_RELEASE => "XS_RELEASE",
        XS_GET_DOMAIN_PATH => "XS_GET_DOMAIN_PATH",
        XS_WRITE => "XS_WRITE",
        XS_MKDIR => "XS_MKDIR",
        XS_RM => "XS_RM",
        XS_SET_PERMS => "XS_SET_PERMS",
        XS_WATCH_EVENT => "XS_WATCH_EVENT",
        XS_ERROR => "XS_ERROR",
        XS_IS_DOMAIN_INTRODUCED => "XS_IS_DOMAIN_INTRODUCED",
        XS_RESUME => "XS_RESUME",
        XS_SET_TARGET => "XS_SET_TARGET",
        XS_RESET_WATCHES => "XS_RESET_WATCHES",
        XS_DIRECTORY_PART => "XS_DIRECTORY_PART",
        XS_GET_FEATURE => "XS_GET_FEATURE",
        XS_SET_FEATURE => "XS_SET_FEATURE",
        XS_GET_QUOTA => "XS_GET_QUOTA",
        XS_SET_QUOTA => "XS_SET_QUOTA",
        _ => return None,
    })
}

/// The errno names xenstore may put in an `XS_ERROR` reply (`xsd_errors[]`), in table order.
pub const XSD_ERRORS: &[&str] = &[
    "EINVAL",
    "EACCES",
    "EEXIST",
    "EISDIR",
    "ENOENT",
    "ENOMEM",
    "ENOSPC",
    "EIO",
    "ENOTEMPTY",
    "ENOSYS",
    "EROFS",
    "EBUSY",
    "EAGAIN",
    "EISCONN",
    "E2BIG",
    "EPERM",
];

/// `struct xsd_sockmsg` (16 bytes): the header of every xenstore message; `len` payload bytes
/// follow.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XsdSockmsg {
    /// `XS_*`.
    pub r#type: u32,
    /// Request id, echoed in the reply.
    pub req_id: u32,
    /// Transaction id (0 = none).
    pub tx_id: u32,
    /// Payload length (at most [`XENSTORE_PAYLOAD_MAX`]).
    pub len: u32,
}
assert_size!(XsdSockmsg, 16);

/// `XENSTORE_RING_SIZE`: size of each of the two rings.
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_PAYLOAD_MAX`: the largest message payload.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;
/// `XENSTORE_SERVER_FEATURE_RECONNECTION`.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `XENSTORE_SERVER_FEATURE_WATCHDEPTH`.
pub const XENSTORE_SERVER_FEATURE_WATCHDEPTH: u32 = 4;
/// `XENSTORE_SERVER_FEATURE_DOMID_ANY`.
pub const XENSTORE_SERVER_FEATURE_DOMID_ANY: u32 = 8;
/// `XENSTORE_CONNECTED`: the `connection` value at steady state (must be 0 at boot).
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`: reconnection in progress.
pub const XENSTORE_RECONNECT: u32 = 1;
/// `XENSTORE_ERROR_NONE`.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`.
pub const XENSTORE_ERROR_PROTO: u32 = 3;

/// `XENSTORE_RING_IDX`: free-running ring index.
pub type XenstoreRingIdx = u32;

/// `MASK_XENSTORE_IDX`: the byte offset of a free-running index in a ring.
pub const fn mask_xenstore_idx(idx: XenstoreRingIdx) -> usize {
    idx as usize & (XENSTORE_RING_SIZE - 1)
}

/// `struct xenstore_domain_interface` (2080 bytes): the xenstore ring page
/// (`HVM_PARAM_STORE_PFN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenstoreDomainInterface {
    /// Requests to the daemon.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// Request consumer index (server).
    pub req_cons: XenstoreRingIdx,
    /// Request producer index (guest).
    pub req_prod: XenstoreRingIdx,
    /// Response consumer index (guest).
    pub rsp_cons: XenstoreRingIdx,
    /// Response producer index (server).
    pub rsp_prod: XenstoreRingIdx,
    /// `XENSTORE_SERVER_FEATURE_*` bitmap.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
    /// Event channel of the ring (newer headers).
    pub evtchn_port: u32,
}
assert_size!(XenstoreDomainInterface, 2080);
assert_offset!(XenstoreDomainInterface, req_cons, 2048);
assert_offset!(XenstoreDomainInterface, error, 2072);

/// `XenbusStateUnknown`.
pub const XENBUS_STATE_UNKNOWN: u32 = 0;
/// `XenbusStateInitialising`.
pub const XENBUS_STATE_INITIALISING: u32 = 1;
/// `XenbusStateInitWait`: backend waiting for the frontend's details.
pub const XENBUS_STATE_INIT_WAIT: u32 = 2;
/// `XenbusStateInitialised`.
pub const XENBUS_STATE_INITIALISED: u32 = 3;
/// `XenbusStateConnected`.
pub const XENBUS_STATE_CONNECTED: u32 = 4;
/// `XenbusStateClosing`.
pub const XENBUS_STATE_CLOSING: u32 = 5;
/// `XenbusStateClosed`.
pub const XENBUS_STATE_CLOSED: u32 = 6;
/// `XenbusStateReconfiguring`.
pub const XENBUS_STATE_RECONFIGURING: u32 = 7;
/// `XenbusStateReconfigured`.
pub const XENBUS_STATE_RECONFIGURED: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_masks() {
        assert_eq!(xs_type_name(XS_READ), Some("XS_READ"));
        assert_eq!(xs_type_name(20), None);
        assert_eq!(xs_type_name(XS_INVALID), None);
        assert_eq!(mask_xenstore_idx(1025), 1);
        assert_eq!(XSD_ERRORS.len(), 16);
    }
}
