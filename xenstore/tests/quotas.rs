//! Quotas and size limits, with the errors xenstored answers.

mod common;
use common::*;
use xenstore::{Config, Xenstore};

fn setup(config: Config) -> (Xenstore, Guest) {
    setup_with(config)
}

#[test]
fn defaults_are_xenstoreds() {
    let c = Config::default();
    assert_eq!(
        (
            c.max_nodes,
            c.max_watches,
            c.max_transactions,
            c.max_node_size,
            c.max_perms
        ),
        (1000, 128, 10, 2048, 5)
    );
    assert_eq!(c.max_path_len, 2048);
}

#[test]
fn node_quota_is_enospc() {
    let (mut xs, mut g) = setup(Config {
        max_nodes: 10,
        ..Config::default()
    });
    // The home directory counts: it is owned by 5.
    for i in 0..9 {
        g.write(&mut xs, &format!("n{i}"), "v").unwrap();
    }
    assert_eq!(g.write(&mut xs, "n9", "v").unwrap_err(), "ENOSPC");
    // Creating several nodes at once is all or nothing.
    g.rm(&mut xs, "n8").unwrap();
    assert_eq!(g.write(&mut xs, "a/b", "v").unwrap_err(), "ENOSPC");
    assert_eq!(g.read(&mut xs, "a").unwrap_err(), "ENOENT");
    // Rewriting existing nodes is fine; dom0 has no quota.
    g.write(&mut xs, "n0", "w").unwrap();
    for i in 0..20 {
        xs.write(&format!("/local/domain/5/dom0/{i}"), b"x")
            .unwrap();
    }
}

#[test]
fn node_quota_in_transactions() {
    let (mut xs, mut g) = setup(Config {
        max_nodes: 6,
        ..Config::default()
    });
    g.mkdir(&mut xs, "a").unwrap();
    g.mkdir(&mut xs, "b").unwrap();
    let t = g.start(&mut xs).unwrap();
    for i in 0..3 {
        g.write_tx(&mut xs, t, &format!("a/n{i}"), "v").unwrap();
    }
    assert_eq!(g.write_tx(&mut xs, t, "a/n3", "v").unwrap_err(), "ENOSPC");
    // The open transaction's nodes count outside it too.
    assert_eq!(g.write(&mut xs, "b/x", "v").unwrap_err(), "ENOSPC");
    // Meanwhile dom0 (no quota) makes a node owned by 5; the commit sees the total.
    xs.write("/local/domain/5/b/x", b"v").unwrap();
    assert_eq!(g.end(&mut xs, t, true).unwrap_err(), "ENOSPC");
    assert_eq!(g.dir(&mut xs, "a").unwrap(), Vec::<String>::new());
}

#[test]
fn node_size_is_enospc() {
    let (mut xs, mut g) = setup(Config::default());
    let big = "x".repeat(2048);
    g.write(&mut xs, "ok", &big).unwrap();
    let bigger = "x".repeat(2049);
    assert_eq!(g.write(&mut xs, "ok", &bigger).unwrap_err(), "ENOSPC");
    assert_eq!(g.write(&mut xs, "new", &bigger).unwrap_err(), "ENOSPC");
    // Child names count towards the parent's size.
    g.write(&mut xs, "p", &"y".repeat(2040)).unwrap();
    g.mkdir(&mut xs, "p/abc").unwrap();
    assert_eq!(g.mkdir(&mut xs, "p/defgh").unwrap_err(), "ENOSPC");
    // dom0 is not limited.
    xs.write("/local/domain/5/huge", &[b'z'; 4000]).unwrap();
}

#[test]
fn watch_quota_is_enospc() {
    let (mut xs, mut g) = setup(Config {
        max_watches: 3,
        ..Config::default()
    });
    for i in 0..3 {
        g.watch(&mut xs, &format!("w{i}"), "t").unwrap();
    }
    assert_eq!(g.watch(&mut xs, "w3", "t").unwrap_err(), "ENOSPC");
    g.unwatch(&mut xs, "w0", "t").unwrap();
    g.watch(&mut xs, "w3", "t").unwrap();
}

#[test]
fn transaction_quota_is_enospc() {
    let (mut xs, mut g) = setup(Config::default());
    let ids: Vec<u32> = (0..10).map(|_| g.start(&mut xs).unwrap()).collect();
    assert_eq!(g.start(&mut xs).unwrap_err(), "ENOSPC");
    g.end(&mut xs, ids[0], false).unwrap();
    g.start(&mut xs).unwrap();
}

#[test]
fn permission_count_is_enospc() {
    let (mut xs, mut g) = setup(Config::default());
    g.write(&mut xs, "p", "v").unwrap();
    g.set_perms(&mut xs, "p", &["n5", "r1", "r2", "r3", "r4"])
        .unwrap();
    assert_eq!(
        g.set_perms(&mut xs, "p", &["n5", "r1", "r2", "r3", "r4", "r6"])
            .unwrap_err(),
        "ENOSPC"
    );
}

#[test]
fn path_length_limits() {
    let (mut xs, mut g) = setup(Config::default());
    let base = format!("{}/", "s".repeat(99)).repeat(20);
    let rel = format!("{base}{}", "a".repeat(48));
    assert_eq!(rel.len(), 2048);
    g.write(&mut xs, &rel, "v").unwrap();
    let rel = format!("{base}{}", "a".repeat(49));
    assert_eq!(g.write(&mut xs, &rel, "v").unwrap_err(), "EINVAL");
    // The same path as absolute: measured after /local/domain/5/.
    assert_eq!(
        g.write(&mut xs, &format!("/local/domain/5/{rel}"), "v")
            .unwrap_err(),
        "EINVAL"
    );
}

#[test]
fn reply_over_payload_max_is_e2big() {
    let (mut xs, mut g) = setup(Config::default());
    // dom0 builds a directory whose child list exceeds 4096 bytes.
    for i in 0..300 {
        xs.mkdir(&format!("/local/domain/5/many/child-number-{i:04}"))
            .unwrap();
    }
    assert_eq!(g.dir(&mut xs, "many").unwrap_err(), "E2BIG");
    // DIRECTORY_PART reads it in pieces.
    let mut names = Vec::new();
    let mut off = 0usize;
    loop {
        let mut arg = z("many");
        arg.extend(z(&off.to_string()));
        let r = g.req(&mut xs, XS_DIRECTORY_PART, 0, &arg).unwrap();
        assert!(r.len() <= XENSTORE_PAYLOAD_MAX);
        let body = &r[r.iter().position(|&b| b == 0).unwrap() + 1..];
        let done = body.ends_with(b"\0\0") || body == b"\0";
        let list = if done { &body[..body.len() - 1] } else { body };
        off += list.len();
        names.extend(split(list));
        if done {
            break;
        }
    }
    assert_eq!(names.len(), 300);
    assert_eq!(names[299], "child-number-0299");
}

#[test]
fn queued_events_are_bounded() {
    let (mut xs, mut g) = setup(Config {
        max_queued_events: 5,
        ..Config::default()
    });
    g.watch(&mut xs, "e", "t").unwrap();
    g.events();
    for i in 0..50 {
        xs.write(&format!("/local/domain/5/e/{i}"), b"x").unwrap();
    }
    g.pump(&mut xs);
    assert_eq!(g.events().len(), 5);
}
