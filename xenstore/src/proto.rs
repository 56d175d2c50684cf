//! The wire operations (`xenstore.txt`), as xenstored's `process_message` dispatches them.
//!
//! Unknown types (and `WATCH_EVENT`, `ERROR`, the retired 20) are answered `ENOSYS`; the
//! privileged types (`CONTROL`, `INTRODUCE`, `RELEASE`, `IS_DOMAIN_INTRODUCED`, `RESUME`,
//! `SET_TARGET`, `GET/SET_FEATURE`, `GET/SET_QUOTA`) `EACCES`, since every ring belongs to an
//! unprivileged domain. A non-zero `tx_id` that names no open transaction is `ENOENT`, except
//! for `WATCH`/`UNWATCH`, which ignore it.

use crate::conn::{Request, Watch};
use crate::error::XsError;
use crate::path::{canonicalize, domain_path};
use crate::perms::{push_decimal, Perm};
use crate::tree::{commit, CommitQuota, Transaction, View};
use crate::Xenstore;
use alloc::string::String;
use alloc::vec::Vec;
use guest_abi::xenstore::*;

/// A successful reply: its payload, and for `WATCH` the initial event to queue after it.
struct Reply {
    payload: Vec<u8>,
    event: Option<(String, Vec<u8>)>,
}

impl Reply {
    fn data(payload: Vec<u8>) -> Result<Reply, XsError> {
        Ok(Reply {
            payload,
            event: None,
        })
    }

    fn ok() -> Result<Reply, XsError> {
        Reply::data(b"OK\0".to_vec())
    }
}

/// The NUL-terminated strings at the start of `payload` (bytes after the last NUL ignored).
fn strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = payload.split(|&b| b == 0).collect();
    v.pop();
    v
}

/// The single argument: the payload must be one string whose only NUL ends it.
fn onearg(payload: &[u8]) -> Result<&[u8], XsError> {
    match payload.iter().position(|&b| b == 0) {
        Some(i) if i + 1 == payload.len() => Ok(&payload[..i]),
        _ => Err(XsError::Inval),
    }
}

/// C `atoi` as xenstored uses it for domids: optional sign, leading digits, wrapping; then
/// printed unsigned.
fn atoi(s: &[u8]) -> u32 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let mut v: u32 = 0;
    for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
    }
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

fn with_nul(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

impl Xenstore {
    /// Handles one complete request from `domid` and queues its reply.
    pub(crate) fn handle(&mut self, domid: u16, req: Request) {
        let result = self.dispatch(domid, &req);
        let Some(c) = self.conns.get_mut(&domid) else {
            return;
        };
        let nb = self.tree.owned_bytes(domid);
        match result {
            Ok(r) if r.payload.len() <= XENSTORE_PAYLOAD_MAX => {
                c.queue_reply(req.ty, req.req_id, req.tx_id, &r.payload, nb);
                if let Some((path, token)) = r.event {
                    c.queue_event(&path, &token, self.config.max_queued_events, nb);
                }
            }
            Ok(_) => c.queue_reply(XS_ERROR, req.req_id, req.tx_id, b"E2BIG\0", nb),
            Err(e) => {
                let name = with_nul(e.name());
                c.queue_reply(XS_ERROR, req.req_id, req.tx_id, &name, nb);
            }
        }
    }

    fn path(&self, domid: u16, raw: &[u8], allow_special: bool) -> Result<String, XsError> {
        canonicalize(raw, domid, allow_special, Some(self.config.max_path_len))
    }

    /// Runs `f` on the tree as `domid` sees it through transaction `tx_id` (0: none), then
    /// delivers the watch events it caused.
    fn as_domain<T>(
        &mut self,
        domid: u16,
        tx_id: u32,
        f: impl FnOnce(&mut View<'_>) -> Result<T, XsError>,
    ) -> Result<T, XsError> {
        let c = self.conns.get_mut(&domid).ok_or(XsError::Inval)?;
        let who = c.who();
        let mut tx = match tx_id {
            0 => None,
            id => Some(c.transactions.remove(&id).ok_or(XsError::Noent)?),
        };
        let mut view = View::new(
            &mut self.tree,
            tx.as_mut(),
            who,
            &self.config,
            Some(&self.conns),
        );
        let r = f(&mut view);
        let fires = core::mem::take(&mut view.fires);
        if let (Some(tx), Some(c)) = (tx, self.conns.get_mut(&domid)) {
            c.transactions.insert(tx_id, tx);
        }
        self.deliver(fires);
        r
    }

    fn dispatch(&mut self, domid: u16, req: &Request) -> Result<Reply, XsError> {
        let p = &req.payload[..];
        let tx = req.tx_id;
        match req.ty {
            XS_DIRECTORY | XS_READ | XS_GET_PERMS | XS_WATCH | XS_UNWATCH
            | XS_TRANSACTION_START | XS_TRANSACTION_END | XS_GET_DOMAIN_PATH | XS_WRITE
            | XS_MKDIR | XS_RM | XS_SET_PERMS | XS_RESET_WATCHES | XS_DIRECTORY_PART => {}
            XS_CONTROL
            | XS_INTRODUCE
            | XS_RELEASE
            | XS_IS_DOMAIN_INTRODUCED
            | XS_RESUME
            | XS_SET_TARGET
            | XS_GET_FEATURE
            | XS_SET_FEATURE
            | XS_GET_QUOTA
            | XS_SET_QUOTA => return Err(XsError::Acces),
            _ => return Err(XsError::Nosys),
        }
        let c = self.conns.get(&domid).ok_or(XsError::Inval)?;
        if tx != 0 && !matches!(req.ty, XS_WATCH | XS_UNWATCH) && !c.transactions.contains_key(&tx)
        {
            return Err(XsError::Noent);
        }
        match req.ty {
            XS_READ => {
                let path = self.path(domid, onearg(p)?, false)?;
                Reply::data(self.as_domain(domid, tx, |v| v.read(&path))?)
            }
            XS_WRITE => {
                let nul = p.iter().position(|&b| b == 0).ok_or(XsError::Inval)?;
                let path = self.path(domid, &p[..nul], false)?;
                let value = &p[nul + 1..];
                self.as_domain(domid, tx, |v| v.write(&path, value))?;
                Reply::ok()
            }
            XS_MKDIR => {
                let path = self.path(domid, onearg(p)?, false)?;
                self.as_domain(domid, tx, |v| v.mkdir(&path))?;
                Reply::ok()
            }
            XS_RM => {
                let path = self.path(domid, onearg(p)?, false)?;
                self.as_domain(domid, tx, |v| v.rm(&path))?;
                Reply::ok()
            }
            XS_DIRECTORY => {
                let path = self.path(domid, onearg(p)?, false)?;
                Reply::data(self.as_domain(domid, tx, |v| v.directory_blob(&path))?.1)
            }
            XS_DIRECTORY_PART => {
                let args = strings(p);
                if p.iter().filter(|&&b| b == 0).count() != 2 {
                    return Err(XsError::Inval);
                }
                let path = self.path(domid, args[0], false)?;
                let off = atoi(args[1]) as usize;
                let (generation, children) =
                    self.as_domain(domid, tx, |v| v.directory_blob(&path))?;
                Reply::data(directory_part(generation, &children, off))
            }
            XS_GET_PERMS => {
                let path = self.path(domid, onearg(p)?, true)?;
                let perms = self.as_domain(domid, tx, |v| v.get_perms(&path))?;
                let mut out = Vec::new();
                for perm in perms {
                    perm.write_to(&mut out);
                    out.push(0);
                }
                Reply::data(out)
            }
            XS_SET_PERMS => {
                let args = strings(p);
                if args.len() < 2 {
                    return Err(XsError::Inval);
                }
                let perms = args[1..]
                    .iter()
                    .map(|s| Perm::parse(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let path = self.path(domid, args[0], true)?;
                self.as_domain(domid, tx, |v| v.set_perms(&path, perms))?;
                Reply::ok()
            }
            XS_WATCH => self.do_watch(domid, p),
            XS_UNWATCH => {
                let args = strings(p);
                if args.len() != 2 {
                    return Err(XsError::Inval);
                }
                let path = self.path(domid, args[0], true)?;
                let c = self.conns.get_mut(&domid).ok_or(XsError::Inval)?;
                let i = c
                    .watches()
                    .iter()
                    .position(|w| w.path == path && w.token == args[1])
                    .ok_or(XsError::Noent)?;
                c.remove_watch(i);
                Reply::ok()
            }
            XS_TRANSACTION_START => {
                if tx != 0 {
                    return Err(XsError::Busy);
                }
                let max = self.config.max_transactions as usize;
                let nb = self.tree.owned_bytes(domid);
                let c = self.conns.get_mut(&domid).ok_or(XsError::Inval)?;
                if c.transactions.len() >= max {
                    return Err(XsError::Nospc);
                }
                if Transaction::default().bytes() > c.room(nb) {
                    return Err(XsError::Nomem);
                }
                let id = c.alloc_tx_id();
                c.transactions.insert(id, Transaction::default());
                let mut out = Vec::new();
                push_decimal(&mut out, u64::from(id));
                out.push(0);
                Reply::data(out)
            }
            XS_TRANSACTION_END => {
                let commit_it = match onearg(p)? {
                    b"T" => true,
                    b"F" => false,
                    _ => return Err(XsError::Inval),
                };
                let c = self.conns.get_mut(&domid).ok_or(XsError::Inval)?;
                let t = c.transactions.remove(&tx).ok_or(XsError::Noent)?;
                if commit_it {
                    let mut fires = Vec::new();
                    let quota = CommitQuota {
                        domid,
                        max_nodes: self.config.max_nodes,
                        conns: &self.conns,
                    };
                    let r = commit(&mut self.tree, t, Some(quota), &mut fires);
                    self.deliver(fires);
                    r?;
                }
                Reply::ok()
            }
            XS_GET_DOMAIN_PATH => Reply::data(with_nul(&domain_path(atoi(onearg(p)?)))),
            XS_RESET_WATCHES => {
                let c = self.conns.get_mut(&domid).ok_or(XsError::Inval)?;
                c.clear_watches();
                c.transactions.clear();
                Reply::ok()
            }
            _ => Err(XsError::Nosys),
        }
    }

    fn do_watch(&mut self, domid: u16, p: &[u8]) -> Result<Reply, XsError> {
        let args = strings(p);
        if args.len() != 2 {
            return Err(XsError::Inval);
        }
        let raw = args[0];
        let path = self.path(domid, raw, true)?;
        let relative = !raw.starts_with(b"/") && !raw.starts_with(b"@");
        let max = self.config.max_watches as usize;
        let nb = self.tree.owned_bytes(domid);
        let c = self.conns.get_mut(&domid).ok_or(XsError::Inval)?;
        if c.watches()
            .iter()
            .any(|w| w.path == path && w.token == args[1])
        {
            return Err(XsError::Exist);
        }
        if c.watches().len() >= max {
            return Err(XsError::Nospc);
        }
        let prefix_len = if relative {
            domain_path(u32::from(domid)).len() + 1
        } else {
            0
        };
        let w = Watch {
            path,
            token: args[1].to_vec(),
            prefix_len,
        };
        if crate::acct::watch(&w) > c.room(nb) {
            return Err(XsError::Nomem);
        }
        let event = (String::from(w.event_path(&w.path)), w.token.clone());
        c.add_watch(w);
        Ok(Reply {
            payload: b"OK\0".to_vec(),
            event: Some(event),
        })
    }
}

/// The `DIRECTORY_PART` reply (xenstored's `send_directory_part`): `<generation>\0`, then the
/// child list from byte `off`, as much as fits in a payload, and a final empty string once the
/// list is complete.
fn directory_part(generation: u64, children: &[u8], off: usize) -> Vec<u8> {
    let mut out = Vec::new();
    push_decimal(&mut out, generation);
    out.push(0);
    if off >= children.len() {
        out.push(0);
        return out;
    }
    let maxlen = XENSTORE_PAYLOAD_MAX - out.len() - 1;
    let mut len = 0;
    let mut rest = &children[off..];
    loop {
        let name_len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if len + name_len >= maxlen {
            break;
        }
        let step = (name_len + 1).min(rest.len());
        len += step;
        rest = &rest[step..];
        if off + len >= children.len() {
            break;
        }
    }
    out.extend_from_slice(&children[off..off + len]);
    if off + len >= children.len() {
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_helpers() {
        assert_eq!(onearg(b"a\0"), Ok(&b"a"[..]));
        assert_eq!(onearg(b"a"), Err(XsError::Inval));
        assert_eq!(onearg(b"a\0b\0"), Err(XsError::Inval));
        assert_eq!(onearg(b""), Err(XsError::Inval));
        assert_eq!(strings(b"a\0b\0c"), [&b"a"[..], b"b"]);
        assert!(strings(b"").is_empty());
        assert_eq!(atoi(b"12"), 12);
        assert_eq!(atoi(b" 7x"), 7);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b"-1"), u32::MAX);
    }

    #[test]
    fn directory_part_chunks() {
        assert_eq!(directory_part(5, b"a\0bc\0", 0), b"5\0a\0bc\0\0");
        assert_eq!(directory_part(5, b"a\0bc\0", 2), b"5\0bc\0\0");
        assert_eq!(directory_part(5, b"a\0bc\0", 5), b"5\0\0");
        assert_eq!(directory_part(5, b"", 0), b"5\0\0");
        // A list longer than one payload comes in pieces that reassemble.
        let mut list = Vec::new();
        for i in 0..600 {
            list.extend_from_slice(alloc::format!("child{i}").as_bytes());
            list.push(0);
        }
        let mut off = 0;
        let mut got = Vec::new();
        loop {
            let part = directory_part(9, &list, off);
            assert!(part.len() <= XENSTORE_PAYLOAD_MAX);
            let body = &part[2..];
            if body.ends_with(b"\0\0") || body == b"\0" {
                got.extend_from_slice(&body[..body.len() - 1]);
                break;
            }
            got.extend_from_slice(body);
            off += body.len();
        }
        assert_eq!(got, list);
    }
}
