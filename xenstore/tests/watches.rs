//! Watches: the initial event, descendants, removal, relative paths, permissions, ordering and
//! framing when the response ring is full, dom0 (backend) watches and special watches.

mod common;
use common::*;
use xenstore::{Access, Perm, WatchEvent, Xenstore};

fn ev(p: &str, t: &str) -> (String, String) {
    (p.to_string(), t.to_string())
}

#[test]
fn initial_event_follows_the_reply() {
    let (mut xs, mut g) = setup();
    let id = g.send(XS_WATCH, 0, b"/local/domain/5/x\0tok\0");
    g.pump(&mut xs);
    let reply = g.inbox.pop_front().unwrap();
    assert_eq!((reply.ty, reply.req_id), (XS_WATCH, id));
    assert_eq!(reply.payload, b"OK\0");
    let e = g.inbox.pop_front().unwrap();
    assert_eq!((e.ty, e.req_id, e.tx_id), (XS_WATCH_EVENT, 0, 0));
    assert_eq!(e.payload, b"/local/domain/5/x\0tok\0");
    assert!(g.inbox.is_empty());
}

#[test]
fn nonexistent_paths_and_descendants() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "/local/domain/5/dev", "t").unwrap();
    assert_eq!(g.events(), [ev("/local/domain/5/dev", "t")]);
    g.write(&mut xs, "dev/vif/0/state", "1").unwrap();
    assert_eq!(g.events(), [ev("/local/domain/5/dev/vif/0/state", "t")]);
    g.write(&mut xs, "dev", "x").unwrap();
    assert_eq!(g.events(), [ev("/local/domain/5/dev", "t")]);
    g.write(&mut xs, "device", "not below").unwrap();
    assert!(g.events().is_empty());
    g.mkdir(&mut xs, "dev/new").unwrap();
    assert_eq!(g.events(), [ev("/local/domain/5/dev/new", "t")]);
    // MKDIR of an existing node changes nothing and fires nothing.
    g.mkdir(&mut xs, "dev/new").unwrap();
    assert!(g.events().is_empty());
    g.set_perms(&mut xs, "dev/new", &["n5", "r0"]).unwrap();
    assert_eq!(g.events(), [ev("/local/domain/5/dev/new", "t")]);
}

#[test]
fn relative_watch_gives_relative_paths() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "device", "tok").unwrap();
    assert_eq!(g.events(), [ev("device", "tok")]);
    g.write(&mut xs, "device/vif/0/state", "4").unwrap();
    assert_eq!(g.events(), [ev("device/vif/0/state", "tok")]);
    xs.write("/local/domain/5/device/vif/0/mac", b"aa").unwrap();
    assert_eq!(xs.pending_domains(), [5]);
    g.pump(&mut xs);
    assert_eq!(g.events(), [ev("device/vif/0/mac", "tok")]);
    // UNWATCH takes the same relative form.
    g.unwatch(&mut xs, "device", "tok").unwrap();
    g.write(&mut xs, "device/x", "1").unwrap();
    assert!(g.events().is_empty());
}

#[test]
fn removal_events() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "a/b/c", "1").unwrap();
    g.write(&mut xs, "a/b/d", "2").unwrap();
    g.watch(&mut xs, "a", "top").unwrap();
    g.watch(&mut xs, "a/b/c", "leaf").unwrap();
    g.watch(&mut xs, "a/b/c/zz", "ghost").unwrap();
    g.events();
    g.rm(&mut xs, "a/b").unwrap();
    let mut got = g.events();
    got.sort();
    // The watcher above sees the removed root only; a watch on a removed descendant sees its
    // own path; a watch below any existing node sees nothing.
    assert_eq!(got, [ev("a/b", "top"), ev("a/b/c", "leaf")]);
    // Removing a missing node fires nothing.
    g.rm(&mut xs, "a/b").unwrap();
    assert!(g.events().is_empty());
}

#[test]
fn events_from_others_and_wakeups() {
    let (mut xs, mut g5) = setup();
    let mut g6 = Guest::new(&mut xs, 6);
    give_home(&mut xs, 6);
    // Domain 6 may read one of 5's nodes.
    g5.write(&mut xs, "shared", "0").unwrap();
    g5.set_perms(&mut xs, "shared", &["n5", "r6"]).unwrap();
    g6.watch(&mut xs, "/local/domain/5/shared", "s").unwrap();
    g6.events();
    g5.write(&mut xs, "shared", "1").unwrap();
    // Domain 5's ring pass names domain 6 as needing a kick.
    assert_eq!(g5.woken, [6]);
    g6.pump(&mut xs);
    assert_eq!(g6.events(), [ev("/local/domain/5/shared", "s")]);
    assert_eq!(g6.read(&mut xs, "/local/domain/5/shared").unwrap(), b"1");
}

#[test]
fn no_events_without_read_permission() {
    let (mut xs, mut g5) = setup();
    let mut g6 = Guest::new(&mut xs, 6);
    g5.write(&mut xs, "secret", "0").unwrap();
    // The watch is accepted and fires its initial event (xenstored does too) ...
    g6.watch(&mut xs, "/local/domain/5/secret", "s").unwrap();
    assert_eq!(g6.events(), [ev("/local/domain/5/secret", "s")]);
    // ... but changes stay invisible.
    g5.write(&mut xs, "secret", "1").unwrap();
    g5.rm(&mut xs, "secret").unwrap();
    assert!(g5.woken.is_empty());
    g6.pump(&mut xs);
    assert!(g6.events().is_empty());
}

#[test]
fn duplicate_and_malformed_watches() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "x", "t").unwrap();
    assert_eq!(g.watch(&mut xs, "x", "t").unwrap_err(), "EEXIST");
    assert_eq!(
        g.watch(&mut xs, "/local/domain/5/x", "t").unwrap_err(),
        "EEXIST"
    );
    g.watch(&mut xs, "x", "t2").unwrap();
    assert_eq!(g.req(&mut xs, XS_WATCH, 0, b"x\0").unwrap_err(), "EINVAL");
    assert_eq!(
        g.req(&mut xs, XS_WATCH, 0, b"x\0a\0b\0").unwrap_err(),
        "EINVAL"
    );
    assert_eq!(g.watch(&mut xs, "x/", "t").unwrap_err(), "EINVAL");
    assert_eq!(g.unwatch(&mut xs, "y", "t").unwrap_err(), "ENOENT");
    // The tx_id of WATCH is ignored, even an unknown one.
    assert_eq!(
        g.req(&mut xs, XS_WATCH, 77, b"z\0t\0").unwrap(),
        b"OK\0".to_vec()
    );
}

#[test]
fn events_in_order_when_the_ring_is_full() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "q", "t").unwrap();
    g.events();
    // The guest stops reading; dom0 makes many changes.
    for i in 0..200 {
        xs.write(&format!("/local/domain/5/q/{i}"), b"v").unwrap();
    }
    assert!(xs.has_output(5));
    let out = xs.process_ring(5, &mut *g.page);
    assert!(out.notify);
    // Only what fits went out; the rest is still queued.
    assert!(xs.has_output(5));
    g.pump(&mut xs);
    let got = g.events();
    let want: Vec<_> = (0..200).map(|i| ev(&format!("q/{i}"), "t")).collect();
    assert_eq!(got, want);
    assert!(!xs.has_output(5));
}

#[test]
fn no_event_inside_a_reply() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "w", "tok").unwrap();
    g.events();
    xs.write("/local/domain/5/big", &[b'x'; 1000]).unwrap();
    // Occupy part of the response ring and leave it unread.
    let gid = g.send(XS_GET_DOMAIN_PATH, 0, &z("5"));
    xs.process_ring(5, &mut *g.page);
    // A reply larger than what is free: it goes out in part.
    let rid = g.send(XS_READ, 0, &z("big"));
    xs.process_ring(5, &mut *g.page);
    assert!(xs.has_output(5));
    // An event arrives while the reply is half written; the ring stays full.
    xs.write("/local/domain/5/w", b"1").unwrap();
    xs.process_ring(5, &mut *g.page);
    // The guest reads a byte stream that parses into whole messages, reply before event.
    g.pump(&mut xs);
    let kinds: Vec<(u32, u32)> = g.inbox.iter().map(|m| (m.ty, m.req_id)).collect();
    assert_eq!(
        kinds,
        [
            (XS_GET_DOMAIN_PATH, gid),
            (XS_READ, rid),
            (XS_WATCH_EVENT, 0)
        ]
    );
    assert_eq!(g.inbox[1].payload, vec![b'x'; 1000]);
    assert_eq!(g.inbox[2].event(), ev("w", "tok"));
}

#[test]
fn identical_pending_events_collapse() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "k", "t").unwrap();
    g.events();
    xs.write("/local/domain/5/k", b"1").unwrap();
    xs.write("/local/domain/5/k", b"2").unwrap();
    xs.write("/local/domain/5/k/sub", b"3").unwrap();
    g.pump(&mut xs);
    assert_eq!(g.events(), [ev("k", "t"), ev("k/sub", "t")]);
}

#[test]
fn backend_watches() {
    let (mut xs, mut g) = setup();
    xs.watch("backend/vif", "be").unwrap();
    assert_eq!(
        xs.take_backend_events(),
        [WatchEvent {
            path: "backend/vif".into(),
            token: "be".into()
        }]
    );
    assert_eq!(xs.watch("backend/vif", "be"), Err(xenstore::XsError::Exist));
    xs.watch("/local/domain/5/device", "fe").unwrap();
    xs.take_backend_events();
    // A guest write reaches dom0's watch.
    g.write(&mut xs, "device/vif/0/state", "4").unwrap();
    assert!(xs.has_backend_events());
    assert_eq!(
        xs.take_backend_events(),
        [WatchEvent {
            path: "/local/domain/5/device/vif/0/state".into(),
            token: "fe".into()
        }]
    );
    // dom0's own writes too, with relative paths for a relative watch.
    xs.write("/local/domain/0/backend/vif/5/0/state", b"2")
        .unwrap();
    assert_eq!(
        xs.take_backend_events(),
        [WatchEvent {
            path: "backend/vif/5/0/state".into(),
            token: "be".into()
        }]
    );
    xs.unwatch("backend/vif", "be").unwrap();
    assert_eq!(
        xs.unwatch("backend/vif", "be"),
        Err(xenstore::XsError::Noent)
    );
    xs.write("/local/domain/0/backend/vif/5/0/state", b"4")
        .unwrap();
    assert!(xs.take_backend_events().is_empty());
}

#[test]
fn special_watches() {
    let mut xs = Xenstore::default();
    xs.watch("@introduceDomain", "in").unwrap();
    xs.watch("@releaseDomain", "out").unwrap();
    xs.take_backend_events();
    let mut g = Guest::new(&mut xs, 3);
    let got = xs.take_backend_events();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].path.as_str(), got[0].token.as_str()),
        ("@introduceDomain", "in")
    );
    // A domU may watch special paths; it sees only the initial event unless allowed to read.
    g.watch(&mut xs, "@releaseDomain", "r").unwrap();
    assert_eq!(g.events(), [ev("@releaseDomain", "r")]);
    let mut g4 = Guest::new(&mut xs, 4);
    g4.watch(&mut xs, "@releaseDomain", "r4").unwrap();
    g4.events();
    xs.set_perms(
        "@releaseDomain",
        &[Perm::new(Access::None, 0), Perm::new(Access::Read, 4)],
    )
    .unwrap();
    // Changing a node's permissions is a change too.
    g4.pump(&mut xs);
    assert_eq!(g4.events(), [ev("@releaseDomain", "r4")]);
    xs.take_backend_events();
    xs.release_domain(3).unwrap();
    let got = xs.take_backend_events();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].path.as_str(), got[0].token.as_str()),
        ("@releaseDomain", "out")
    );
    assert_eq!(xs.pending_domains(), [4]);
    g4.pump(&mut xs);
    assert_eq!(g4.events(), [ev("@releaseDomain", "r4")]);
    // The released domain is gone.
    assert!(!xs.is_domain_introduced(3));
    let out = xs.process_ring(3, &mut *g.page);
    assert!(!out.notify);
}
