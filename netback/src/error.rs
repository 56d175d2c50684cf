//! Why a vif was disconnected.

use core::fmt;
use hypercalls::gnttab::GrantError;
use xenstore::XsError;

/// Which ring (or ring page) an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingKind {
    /// The guest's transmit ring (requests: packets to send).
    Tx,
    /// The guest's receive ring (requests: empty buffers).
    Rx,
}

impl fmt::Display for RingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingKind::Tx => "TX",
            RingKind::Rx => "RX",
        })
    }
}

/// A protocol violation by the frontend (or a failure to publish the backend
/// state). Each one disconnects the vif.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A xenstore key the frontend must write is missing.
    MissingKey(alloc::string::String),
    /// A xenstore key holds something that is not what the protocol allows.
    BadKey {
        /// The key's path.
        path: alloc::string::String,
        /// Its value (lossily decoded, shortened).
        value: alloc::string::String,
    },
    /// `request-rx-copy` is not 1 (page flipping is not offered).
    NoRxCopy,
    /// `multi-queue-num-queues` is 0 or above what the backend offered.
    QueueCount {
        /// What the frontend asked for.
        requested: u32,
        /// `multi-queue-max-queues`.
        max: u32,
    },
    /// An event channel is not an unbound or bound port of the guest whose
    /// remote end is domain 0.
    BadPort(u32),
    /// The same grant reference names two ring pages.
    RingRefReused(u32),
    /// The frontend's `state` is not a XenbusState.
    BadFrontendState(alloc::string::String),
    /// A ring page's grant cannot be used.
    RingGrant {
        /// TX or RX ring.
        ring: RingKind,
        /// The queue.
        queue: u32,
        /// The grant reference.
        gref: u32,
        /// Why.
        err: GrantError,
    },
    /// `req_prod` is more than a ring's worth ahead of what the backend consumed.
    RingOverflow {
        /// TX or RX ring.
        ring: RingKind,
        /// The queue.
        queue: u32,
        /// The frontend's `req_prod`.
        req_prod: u32,
        /// The backend's `req_cons`.
        req_cons: u32,
    },
    /// A data grant (packet or receive buffer) cannot be used.
    DataGrant {
        /// TX or RX ring.
        ring: RingKind,
        /// The ring index of the request.
        slot: u32,
        /// The grant reference.
        gref: u32,
        /// Why.
        err: GrantError,
    },
    /// A TX packet's first request has size 0.
    EmptyPacket {
        /// The ring index of the request.
        slot: u32,
    },
    /// A TX request's data crosses the end of its page.
    CrossesPage {
        /// The ring index of the request.
        slot: u32,
        /// The request's offset.
        offset: u16,
        /// The bytes in that slot.
        size: u32,
    },
    /// The continuation slots of a TX packet hold more than its total size.
    FragmentTooBig {
        /// The ring index of the offending request.
        slot: u32,
        /// Its size.
        size: u16,
        /// What was left of the packet's total.
        remaining: u32,
    },
    /// A TX packet uses more slots than [`MAX_TX_SLOTS`](crate::MAX_TX_SLOTS),
    /// or more extra-info slots than there are extra types.
    TooManySlots {
        /// The ring index of the packet's first request.
        slot: u32,
    },
    /// A TX packet continues (`more_data` or an extra-info flag) past `req_prod`.
    Incomplete {
        /// The ring index of the packet's first request.
        slot: u32,
    },
    /// An extra-info slot of an unknown type.
    BadExtra {
        /// The ring index of the slot.
        slot: u32,
        /// Its `type`.
        ty: u8,
    },
    /// A GSO extra-info slot with an unknown GSO type or a segment size
    /// below [`MIN_GSO_SIZE`](crate::MIN_GSO_SIZE).
    BadGso {
        /// The ring index of the slot.
        slot: u32,
        /// `u.gso.type`.
        ty: u8,
        /// `u.gso.size`.
        size: u16,
    },
    /// Writing the backend's state to xenstore failed.
    Xenstore(XsError),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::MissingKey(p) => write!(f, "frontend key {p} missing"),
            ErrorKind::BadKey { path, value } => write!(f, "frontend key {path} = '{value}' invalid"),
            ErrorKind::NoRxCopy => f.write_str("frontend does not request rx-copy"),
            ErrorKind::QueueCount { requested, max } => {
                write!(f, "frontend asks for {requested} queues (1..={max} offered)")
            }
            ErrorKind::BadPort(p) => write!(f, "event channel {p} is not open to domain 0"),
            ErrorKind::RingRefReused(r) => write!(f, "grant {r} names two ring pages"),
            ErrorKind::BadFrontendState(s) => write!(f, "frontend state '{s}' invalid"),
            ErrorKind::RingGrant {
                ring,
                queue,
                gref,
                err,
            } => write!(
                f,
                "queue {queue} {ring} ring grant {gref}: {} ({})",
                grant_error(*err),
                err.status()
            ),
            ErrorKind::RingOverflow {
                ring,
                queue,
                req_prod,
                req_cons,
            } => write!(
                f,
                "queue {queue} {ring} ring: req_prod {req_prod} is {} requests past req_cons {req_cons} (ring size {})",
                req_prod.wrapping_sub(*req_cons),
                crate::RING_SIZE
            ),
            ErrorKind::DataGrant {
                ring,
                slot,
                gref,
                err,
            } => write!(
                f,
                "{ring} slot {slot}: grant {gref}: {} ({})",
                grant_error(*err),
                err.status()
            ),
            ErrorKind::EmptyPacket { slot } => write!(f, "TX slot {slot}: packet of size 0"),
            ErrorKind::CrossesPage { slot, offset, size } => write!(
                f,
                "TX slot {slot}: offset {offset} + size {size} crosses the page"
            ),
            ErrorKind::FragmentTooBig {
                slot,
                size,
                remaining,
            } => write!(
                f,
                "TX slot {slot}: size {size} exceeds the {remaining} bytes left of the packet"
            ),
            ErrorKind::TooManySlots { slot } => {
                write!(f, "TX slot {slot}: packet uses too many slots")
            }
            ErrorKind::Incomplete { slot } => {
                write!(f, "TX slot {slot}: packet continues past req_prod")
            }
            ErrorKind::BadExtra { slot, ty } => {
                write!(f, "TX slot {slot}: extra info of unknown type {ty}")
            }
            ErrorKind::BadGso { slot, ty, size } if *size < crate::MIN_GSO_SIZE => write!(
                f,
                "TX slot {slot}: GSO type {ty} size {size} is below the minimum {}",
                crate::MIN_GSO_SIZE
            ),
            ErrorKind::BadGso { slot, ty, size } => {
                write!(f, "TX slot {slot}: bad GSO type {ty} size {size}")
            }
            ErrorKind::Xenstore(e) => write!(f, "xenstore: {}", e.name()),
        }
    }
}

fn grant_error(e: GrantError) -> &'static str {
    match e {
        GrantError::BadRef => "bad grant reference",
        GrantError::PermissionDenied => "not granted to domain 0",
        GrantError::BadPage => "granted frame is not guest RAM",
        GrantError::BadRange => "range outside the page",
    }
}

/// A vif was disconnected because of `kind`. Its `Display` is the line the
/// kernel logs: `netback: d<domid> vif<devid>: <what>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VifError {
    /// The guest.
    pub domid: u16,
    /// The vif's device id.
    pub devid: u32,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for VifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "netback: d{} vif{}: {}",
            self.domid, self.devid, self.kind
        )
    }
}
