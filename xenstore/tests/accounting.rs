//! Memory accounting: every byte a guest makes the store hold is charged to it, against its
//! memory quota, and given back when it lets go.

mod common;
use common::*;
use xenstore::{Config, Xenstore};

/// What the store holds for domain 6 as a guest that keeps a few nodes and a watch.
fn bystander(xs: &mut Xenstore) -> Guest {
    let mut g = Guest::new(xs, 6);
    give_home(xs, 6);
    g.write(xs, "data", "x").unwrap();
    g.watch(xs, "data", "t").unwrap();
    g.events();
    g
}

/// The same requests still work for domain 6, and what it holds did not change.
fn bystander_unaffected(xs: &mut Xenstore, g: &mut Guest, bytes: usize) {
    assert_eq!(xs.domain_bytes(6), bytes);
    g.write(xs, "data", "y").unwrap();
    assert_eq!(g.read(xs, "data").unwrap(), b"y");
    assert_eq!(g.events(), [("data".into(), "t".into())]);
    g.write(xs, "data", "x").unwrap();
    g.events();
    assert_eq!(xs.domain_bytes(6), bytes);
}

#[test]
fn default_quota_is_4_mib_set_per_domain() {
    let (mut xs, _g) = setup();
    assert_eq!(Config::default().max_memory, 4 << 20);
    assert_eq!(xs.memory_quota(5), Some(4 << 20));
    xs.set_memory_quota(5, 1 << 20).unwrap();
    assert_eq!(xs.memory_quota(5), Some(1 << 20));
    // Kept over a reconnection, not over a release.
    xs.introduce_domain(5).unwrap();
    assert_eq!(xs.memory_quota(5), Some(1 << 20));
    assert_eq!(xs.set_memory_quota(9, 1), Err(xenstore::XsError::Noent));
    assert_eq!(xs.set_memory_quota(0, 1), Err(xenstore::XsError::Inval));
    xs.release_domain(5).unwrap();
    assert_eq!(xs.memory_quota(5), None);
}

#[test]
fn domain_bytes_follow_what_it_holds() {
    let (mut xs, mut g) = setup();
    let home = xs.domain_bytes(5);
    assert!(home > 0);
    g.write(&mut xs, "big", &"v".repeat(2000)).unwrap();
    let with_node = xs.domain_bytes(5);
    assert!(with_node >= home + 2000 + "/local/domain/5/big".len());
    assert!(with_node < home + 2000 + 600, "{}", with_node - home);
    g.rm(&mut xs, "big").unwrap();
    assert_eq!(xs.domain_bytes(5), home);
    // A watch, a transaction with a copy: charged, and given back.
    g.watch(&mut xs, "w", &"k".repeat(1000)).unwrap();
    g.events();
    assert!(xs.domain_bytes(5) > home + 1000);
    let t = g.start(&mut xs).unwrap();
    let before_copy = xs.domain_bytes(5);
    g.write_tx(&mut xs, t, "a", &"c".repeat(1500)).unwrap();
    assert!(xs.domain_bytes(5) > before_copy + 1500);
    g.end(&mut xs, t, false).unwrap();
    g.unwatch(&mut xs, "w", &"k".repeat(1000)).unwrap();
    assert_eq!(xs.domain_bytes(5), home);
}

#[test]
fn release_gives_every_byte_back() {
    let (mut xs, mut g) = setup();
    let mut other = bystander(&mut xs);
    let other_bytes = xs.domain_bytes(6);
    for i in 0..50 {
        g.write(&mut xs, &format!("n/{i}"), &"z".repeat(500))
            .unwrap();
    }
    g.watch(&mut xs, "/", "everything").unwrap();
    let t = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t, "n/0", "changed").unwrap();
    g.write_tx(&mut xs, t, "m/new", "v").unwrap();
    // Output queued and never read: a request half sent.
    for i in 0..30 {
        xs.write(&format!("/local/domain/5/n/{i}"), b"dom0")
            .unwrap();
    }
    g.send_raw(&encode(XS_READ, 1, 0, b"n/1\0")[..10]);
    xs.process_ring(5, &mut *g.page);
    assert!(xs.has_output(5));
    assert!(xs.domain_bytes(5) > 50 * 500);
    xs.release_domain(5).unwrap();
    assert_eq!(xs.domain_bytes(5), 0);
    // Domain 6 saw the removal, and holds what it held.
    assert_eq!(xs.domain_bytes(6), other_bytes);
    other.events();
    bystander_unaffected(&mut xs, &mut other, other_bytes);
}

/// Issue 10's flood: 10 transactions of about 990 nodes of 2 KiB each came to 40 MiB of the
/// hypervisor's heap. Now the nodes created in open transactions count towards the node quota,
/// and every copy towards the memory quota.
#[test]
fn transaction_flood_is_refused() {
    let (mut xs, mut g) = setup();
    let mut other = bystander(&mut xs);
    let other_bytes = xs.domain_bytes(6);
    let value = "x".repeat(2000);
    let ids: Vec<u32> = (0..10).map(|_| g.start(&mut xs).unwrap()).collect();
    let mut created = 0;
    let mut refused = None;
    'flood: for &t in &ids {
        for i in 0..990 {
            match g.write_tx(&mut xs, t, &format!("t{t}/n{i}"), &value) {
                Ok(()) => created += 1,
                Err(e) => {
                    refused = Some(e);
                    break 'flood;
                }
            }
        }
    }
    // The node quota (1000, the home directory being one) counts all open transactions.
    assert_eq!(refused.as_deref(), Some("ENOSPC"));
    assert!(created < 1000, "{created}");
    assert!(xs.domain_bytes(5) <= 4 << 20, "{}", xs.domain_bytes(5));
    bystander_unaffected(&mut xs, &mut other, other_bytes);
    for t in ids {
        let _ = g.end(&mut xs, t, false);
    }
    assert!(xs.domain_bytes(5) < 4096);
}

/// Copies of existing nodes create nothing: the memory quota stops them (`ENOMEM`, as
/// xenstored's `domain_memory_add`), and the transaction fails.
#[test]
fn transaction_copies_count_towards_the_memory_quota() {
    let (mut xs, mut g) = setup_with(Config {
        max_memory: 512 << 10,
        ..Config::default()
    });
    let mut other = bystander(&mut xs);
    let other_bytes = xs.domain_bytes(6);
    let value = "x".repeat(2000);
    for i in 0..60 {
        g.write(&mut xs, &format!("n{i}"), &value).unwrap();
    }
    let live = xs.domain_bytes(5);
    assert!(live > 120_000 && live < 180_000, "{live}");
    let ids: Vec<u32> = (0..10).map(|_| g.start(&mut xs).unwrap()).collect();
    let mut refused = None;
    'flood: for &t in &ids {
        for i in 0..60 {
            if let Err(e) = g.write_tx(&mut xs, t, &format!("n{i}"), &value) {
                refused = Some((t, e));
                break 'flood;
            }
        }
    }
    let (t, e) = refused.expect("the copies must hit the quota");
    assert_eq!(e, "ENOMEM");
    assert!(xs.domain_bytes(5) <= 512 << 10);
    assert_ne!(t, ids[0], "one transaction's copies fit");
    bystander_unaffected(&mut xs, &mut other, other_bytes);
    // The first transaction commits; the others then conflict.
    g.end(&mut xs, ids[0], true).unwrap();
    assert_eq!(g.end(&mut xs, t, true).unwrap_err(), "EAGAIN");
    for &i in &ids[1..] {
        if i != t {
            g.end(&mut xs, i, false).unwrap();
        }
    }
    assert_eq!(xs.domain_bytes(5), live);
}

#[test]
fn refused_writes_change_nothing() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "keep", "v").unwrap();
    let used = xs.domain_bytes(5);
    xs.set_memory_quota(5, used + 600).unwrap();
    // Creating a/b/c needs three nodes: all or none.
    assert_eq!(
        g.write(&mut xs, "a/b/c", &"v".repeat(300)).unwrap_err(),
        "ENOMEM"
    );
    assert_eq!(g.read(&mut xs, "a").unwrap_err(), "ENOENT");
    assert_eq!(g.dir(&mut xs, "/local/domain/5").unwrap(), ["keep"]);
    assert_eq!(
        g.write(&mut xs, "keep", &"v".repeat(700)).unwrap_err(),
        "ENOMEM"
    );
    assert_eq!(g.read(&mut xs, "keep").unwrap(), b"v");
    assert_eq!(xs.domain_bytes(5), used);
    // Small changes still fit; removal always does.
    g.write(&mut xs, "keep", "w").unwrap();
    g.rm(&mut xs, "keep").unwrap();
    // dom0 is never refused, and charges the owner.
    let before = xs.domain_bytes(5);
    xs.write("/local/domain/5/by-dom0", &[b'd'; 4000]).unwrap();
    assert!(xs.domain_bytes(5) > before + 4000);
    // A domain over its quota: requests that allocate get ENOMEM, the others still work.
    assert_eq!(g.write(&mut xs, "x", "v").unwrap_err(), "ENOMEM");
    assert_eq!(g.watch(&mut xs, "x", "t").unwrap_err(), "ENOMEM");
    assert_eq!(g.start(&mut xs).unwrap_err(), "ENOMEM");
    assert_eq!(g.read(&mut xs, "by-dom0").unwrap_err(), "ENOMEM");
    assert_eq!(g.read(&mut xs, "nothing").unwrap_err(), "ENOENT");
    g.rm(&mut xs, "by-dom0").unwrap();
    g.write(&mut xs, "x", "v").unwrap();
}

#[test]
fn writes_to_another_domains_node_are_charged_to_its_owner() {
    let (mut xs, mut g) = setup();
    let mut other = bystander(&mut xs);
    // 6 lets 5 write one of its nodes.
    other.write(&mut xs, "shared", "s").unwrap();
    other.set_perms(&mut xs, "shared", &["n6", "b5"]).unwrap();
    let (b5, b6) = (xs.domain_bytes(5), xs.domain_bytes(6));
    g.write(&mut xs, "/local/domain/6/shared", &"v".repeat(1000))
        .unwrap();
    assert_eq!(xs.domain_bytes(5), b5);
    assert!(
        xs.domain_bytes(6) >= b6 + 950,
        "{} {b6}",
        xs.domain_bytes(6)
    );
    // Past 6's quota: refused, whoever asks.
    xs.set_memory_quota(6, xs.domain_bytes(6) + 100).unwrap();
    assert_eq!(
        g.write(&mut xs, "/local/domain/6/shared", &"v".repeat(2000))
            .unwrap_err(),
        "ENOMEM"
    );
}

/// A guest that never reads its ring: watch events pile up only to its memory quota (and the
/// event count limit), then are dropped as xenstored's `send_event` drops them; replies still
/// flow once it reads again.
#[test]
fn watch_event_flood_is_bounded() {
    let (mut xs, mut g) = setup_with(Config {
        max_memory: 256 << 10,
        ..Config::default()
    });
    let mut other = bystander(&mut xs);
    xs.set_perms(
        "/local/domain/6",
        &[
            xenstore::Perm::new(xenstore::Access::None, 6),
            xenstore::Perm::new(xenstore::Access::Read, 5),
        ],
    )
    .unwrap();
    let token = "t".repeat(2000);
    for i in 0..4 {
        g.watch(&mut xs, &format!("/local/domain/6/d{i}"), &token)
            .unwrap();
    }
    g.events();
    for i in 0..2000 {
        xs.write(&format!("/local/domain/6/d{}/n{i}", i % 4), b"v")
            .unwrap();
        // Domain 5 is woken but never reads.
        xs.process_ring(5, &mut *g.page);
    }
    let held = xs.domain_bytes(5);
    assert!(held <= 256 << 10, "{held}");
    assert!(held > 200 << 10, "{held}");
    // Domain 6 is not held up.
    other.write(&mut xs, "data", "still").unwrap();
    // The guest reads again: what was queued arrives, then replies as usual.
    g.pump(&mut xs);
    let got = g.events().len();
    assert!(got > 50 && got < 200, "{got}");
    assert_eq!(g.read(&mut xs, "/local/domain/6/d0/n1996").unwrap(), b"v");
    let calm = xs.domain_bytes(5);
    assert!(calm < 16 << 10, "{calm}");
}

#[test]
fn event_count_limit_drops_events_while_replies_flow() {
    let (mut xs, mut g) = setup();
    g.watch(&mut xs, "e", "t").unwrap();
    g.events();
    for i in 0..3000 {
        xs.write(&format!("/local/domain/5/e/{i}"), b"x").unwrap();
    }
    let held = xs.domain_bytes(5);
    let id = g.send(XS_READ, 0, b"e/5\0");
    g.pump(&mut xs);
    assert_eq!(g.events().len(), 1024);
    assert!(g.inbox.iter().any(|m| m.req_id == id && m.payload == b"x"));
    // 1024 events at most were queued, each a few dozen bytes.
    let queued = held - xs.domain_bytes(5);
    assert!(queued > 1024 * 40 && queued < 1024 * 200, "{queued}");
}

#[test]
fn large_replies_past_the_quota_are_enomem() {
    let (mut xs, mut g) = setup();
    xs.write("/local/domain/5/big", &[b'b'; 2000]).unwrap();
    let used = xs.domain_bytes(5);
    xs.set_memory_quota(5, used + 1000).unwrap();
    assert_eq!(g.read(&mut xs, "big").unwrap_err(), "ENOMEM");
    xs.set_memory_quota(5, used + 3000).unwrap();
    assert_eq!(g.read(&mut xs, "big").unwrap().len(), 2000);
}

#[test]
fn watches_are_charged_by_size() {
    let (mut xs, mut g) = setup();
    let used = xs.domain_bytes(5);
    xs.set_memory_quota(5, used + 3000).unwrap();
    g.watch(&mut xs, "a", &"t".repeat(1500)).unwrap();
    g.events();
    assert_eq!(
        g.watch(&mut xs, "b", &"t".repeat(1500)).unwrap_err(),
        "ENOMEM"
    );
    g.watch(&mut xs, "b", "short").unwrap();
}

/// The node quota counts the nodes of every open transaction and outside them.
#[test]
fn node_quota_spans_open_transactions() {
    let (mut xs, mut g) = setup_with(Config {
        max_nodes: 11,
        ..Config::default()
    });
    for d in ["tx1", "tx2", "out"] {
        g.mkdir(&mut xs, d).unwrap();
    }
    let t1 = g.start(&mut xs).unwrap();
    let t2 = g.start(&mut xs).unwrap();
    for i in 0..3 {
        g.write_tx(&mut xs, t1, &format!("tx1/{i}"), "v").unwrap();
        g.write_tx(&mut xs, t2, &format!("tx2/{i}"), "v").unwrap();
    }
    // 1 (home) + 3 + 3 + 3 + 1.
    g.write(&mut xs, "out/c", "v").unwrap();
    assert_eq!(g.write(&mut xs, "out/d", "v").unwrap_err(), "ENOSPC");
    assert_eq!(g.write_tx(&mut xs, t1, "tx1/3", "v").unwrap_err(), "ENOSPC");
    // Ending one gives its nodes back.
    g.end(&mut xs, t2, false).unwrap();
    g.write(&mut xs, "out/d", "v").unwrap();
    g.end(&mut xs, t1, true).unwrap();
    assert_eq!(g.dir(&mut xs, "tx1").unwrap(), ["0", "1", "2"]);
    assert_eq!(g.dir(&mut xs, "out").unwrap(), ["c", "d"]);
}
