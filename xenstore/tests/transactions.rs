//! Transactions: isolation, own writes visible, conflicts (`EAGAIN`), abort, watches on commit.

mod common;
use common::*;
use xenstore::{Access, Perm};

#[test]
fn own_writes_visible_others_see_commit() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "s", "1").unwrap();
    let t = g.start(&mut xs).unwrap();
    assert_ne!(t, 0);
    g.write_tx(&mut xs, t, "s", "2").unwrap();
    g.write_tx(&mut xs, t, "new/deep", "n").unwrap();
    assert_eq!(g.read_tx(&mut xs, t, "s").unwrap(), b"2");
    assert_eq!(g.read_tx(&mut xs, t, "new/deep").unwrap(), b"n");
    assert_eq!(g.dir_tx(&mut xs, t, "new").unwrap(), ["deep"]);
    // Outside the transaction nothing changed yet.
    assert_eq!(g.read(&mut xs, "s").unwrap(), b"1");
    assert_eq!(g.read(&mut xs, "new").unwrap_err(), "ENOENT");
    assert_eq!(xs.read("/local/domain/5/s").unwrap(), b"1");
    g.end(&mut xs, t, true).unwrap();
    assert_eq!(g.read(&mut xs, "s").unwrap(), b"2");
    assert_eq!(xs.read("/local/domain/5/new/deep").unwrap(), b"n");
    // The id is gone.
    assert_eq!(g.read_tx(&mut xs, t, "s").unwrap_err(), "ENOENT");
}

#[test]
fn rm_and_mkdir_inside() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "d/a", "1").unwrap();
    g.write(&mut xs, "d/b", "2").unwrap();
    let t = g.start(&mut xs).unwrap();
    g.rm_tx(&mut xs, t, "d/a").unwrap();
    g.req(&mut xs, XS_MKDIR, t, &z("d/c")).unwrap();
    assert_eq!(g.dir_tx(&mut xs, t, "d").unwrap(), ["b", "c"]);
    assert_eq!(g.read_tx(&mut xs, t, "d/a").unwrap_err(), "ENOENT");
    assert_eq!(g.dir(&mut xs, "d").unwrap(), ["a", "b"]);
    g.end(&mut xs, t, true).unwrap();
    assert_eq!(g.dir(&mut xs, "d").unwrap(), ["b", "c"]);
    // Created and removed inside one transaction: nothing left.
    let t = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t, "tmp/x", "1").unwrap();
    g.rm_tx(&mut xs, t, "tmp").unwrap();
    g.end(&mut xs, t, true).unwrap();
    assert_eq!(g.read(&mut xs, "tmp").unwrap_err(), "ENOENT");
}

#[test]
fn abort_discards() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "s", "1").unwrap();
    g.watch(&mut xs, "s", "w").unwrap();
    g.events();
    let t = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t, "s", "2").unwrap();
    g.end(&mut xs, t, false).unwrap();
    assert_eq!(g.read(&mut xs, "s").unwrap(), b"1");
    assert!(g.events().is_empty());
    assert_eq!(g.end(&mut xs, t, false).unwrap_err(), "ENOENT");
}

#[test]
fn conflict_on_read_node() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "state", "1").unwrap();
    let t = g.start(&mut xs).unwrap();
    assert_eq!(g.read_tx(&mut xs, t, "state").unwrap(), b"1");
    xs.write("/local/domain/5/state", b"5").unwrap();
    g.write_tx(&mut xs, t, "other", "x").unwrap();
    assert_eq!(g.end(&mut xs, t, true).unwrap_err(), "EAGAIN");
    // Nothing of it was applied, and it is gone.
    assert_eq!(g.read(&mut xs, "other").unwrap_err(), "ENOENT");
    assert_eq!(g.end(&mut xs, t, true).unwrap_err(), "ENOENT");
}

#[test]
fn conflict_on_written_node_and_on_deletion() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "a", "1").unwrap();
    let t = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t, "a", "2").unwrap();
    g.write(&mut xs, "a", "3").unwrap();
    assert_eq!(g.end(&mut xs, t, true).unwrap_err(), "EAGAIN");
    assert_eq!(g.read(&mut xs, "a").unwrap(), b"3");

    let t = g.start(&mut xs).unwrap();
    g.read_tx(&mut xs, t, "a").unwrap();
    xs.rm("/local/domain/5/a").unwrap();
    assert_eq!(g.end(&mut xs, t, true).unwrap_err(), "EAGAIN");

    // A node read as missing and then created by someone else conflicts too.
    let t = g.start(&mut xs).unwrap();
    assert_eq!(g.read_tx(&mut xs, t, "a").unwrap_err(), "ENOENT");
    g.write(&mut xs, "a", "4").unwrap();
    assert_eq!(g.end(&mut xs, t, true).unwrap_err(), "EAGAIN");
}

#[test]
fn unrelated_changes_do_not_conflict() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "a", "1").unwrap();
    g.write(&mut xs, "b", "1").unwrap();
    let t = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t, "a", "2").unwrap();
    g.write(&mut xs, "b", "2").unwrap();
    xs.write("/elsewhere", b"x").unwrap();
    g.end(&mut xs, t, true).unwrap();
    assert_eq!(g.read(&mut xs, "a").unwrap(), b"2");
    assert_eq!(g.read(&mut xs, "b").unwrap(), b"2");
}

#[test]
fn two_transactions_creating_siblings() {
    let (mut xs, mut g) = setup();
    g.mkdir(&mut xs, "dir").unwrap();
    let t1 = g.start(&mut xs).unwrap();
    let t2 = g.start(&mut xs).unwrap();
    assert_ne!(t1, t2);
    g.write_tx(&mut xs, t1, "dir/x", "1").unwrap();
    g.write_tx(&mut xs, t2, "dir/y", "2").unwrap();
    g.end(&mut xs, t1, true).unwrap();
    // Both changed dir's child list: the second loses and retries.
    assert_eq!(g.end(&mut xs, t2, true).unwrap_err(), "EAGAIN");
    let t2 = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t2, "dir/y", "2").unwrap();
    g.end(&mut xs, t2, true).unwrap();
    assert_eq!(g.dir(&mut xs, "dir").unwrap(), ["x", "y"]);
}

#[test]
fn watches_fire_on_commit_only() {
    let (mut xs, mut g) = setup();
    let mut other = Guest::new(&mut xs, 6);
    g.write(&mut xs, "dev/state", "1").unwrap();
    g.set_perms(&mut xs, "dev", &["n5", "r6"]).unwrap();
    g.set_perms(&mut xs, "dev/state", &["n5", "r6"]).unwrap();
    g.watch(&mut xs, "dev", "mine").unwrap();
    other
        .watch(&mut xs, "/local/domain/5/dev", "theirs")
        .unwrap();
    xs.watch("/local/domain/5/dev", "be").unwrap();
    g.events();
    other.events();
    xs.take_backend_events();

    let t = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t, "dev/state", "4").unwrap();
    g.write_tx(&mut xs, t, "dev/ring-ref", "8").unwrap();
    assert!(g.events().is_empty());
    assert!(!xs.has_backend_events());
    other.pump(&mut xs);
    assert!(other.events().is_empty());

    g.end(&mut xs, t, true).unwrap();
    let mut mine = g.events();
    mine.sort();
    assert_eq!(
        mine,
        [
            ("dev/ring-ref".to_string(), "mine".to_string()),
            ("dev/state".to_string(), "mine".to_string())
        ]
    );
    assert_eq!(g.woken, [6]);
    other.pump(&mut xs);
    let mut theirs = other.events();
    theirs.sort();
    assert_eq!(
        theirs,
        [
            (
                "/local/domain/5/dev/ring-ref".to_string(),
                "theirs".to_string()
            ),
            (
                "/local/domain/5/dev/state".to_string(),
                "theirs".to_string()
            )
        ]
    );
    assert_eq!(xs.take_backend_events().len(), 2);
}

#[test]
fn transaction_errors() {
    let (mut xs, mut g) = setup();
    assert_eq!(g.read_tx(&mut xs, 99, "x").unwrap_err(), "ENOENT");
    let t = g.start(&mut xs).unwrap();
    assert_eq!(
        g.req(&mut xs, XS_TRANSACTION_START, t, b"\0").unwrap_err(),
        "EBUSY"
    );
    assert_eq!(
        g.req(&mut xs, XS_TRANSACTION_START, 99, b"\0").unwrap_err(),
        "ENOENT"
    );
    assert_eq!(
        g.req(&mut xs, XS_TRANSACTION_END, t, b"X\0").unwrap_err(),
        "EINVAL"
    );
    assert_eq!(
        g.req(&mut xs, XS_TRANSACTION_END, t, b"T").unwrap_err(),
        "EINVAL"
    );
    assert_eq!(
        g.req(&mut xs, XS_TRANSACTION_END, 0, b"T\0").unwrap_err(),
        "ENOENT"
    );
    // Transaction ids belong to their connection.
    let mut other = Guest::new(&mut xs, 6);
    assert_eq!(
        other
            .req(&mut xs, XS_GET_DOMAIN_PATH, t, &z("6"))
            .unwrap_err(),
        "ENOENT"
    );
    g.end(&mut xs, t, true).unwrap();
}

#[test]
fn linux_switch_state_retry_loop() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "device/vif/0/state", "1").unwrap();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let t = g.start(&mut xs).unwrap();
        let _cur = g.read_tx(&mut xs, t, "device/vif/0/state").unwrap();
        if attempts == 1 {
            // Someone else touches the node between read and commit.
            xs.write("/local/domain/5/device/vif/0/state", b"1")
                .unwrap();
        }
        g.write_tx(&mut xs, t, "device/vif/0/state", "4").unwrap();
        match g.end(&mut xs, t, true) {
            Ok(()) => break,
            Err(e) => assert_eq!(e, "EAGAIN"),
        }
    }
    assert_eq!(attempts, 2);
    assert_eq!(xs.read("/local/domain/5/device/vif/0/state").unwrap(), b"4");
}

#[test]
fn release_drops_transactions_and_watches() {
    let (mut xs, mut g) = setup();
    let t = g.start(&mut xs).unwrap();
    g.write_tx(&mut xs, t, "x", "1").unwrap();
    g.watch(&mut xs, "x", "w").unwrap();
    xs.release_domain(5).unwrap();
    xs.introduce_domain(5).unwrap();
    let mut g = Guest::attach(5);
    xs.mkdir("/local/domain/5").unwrap();
    xs.set_perms("/local/domain/5", &[Perm::new(Access::None, 5)])
        .unwrap();
    assert_eq!(g.read_tx(&mut xs, t, "x").unwrap_err(), "ENOENT");
    g.write(&mut xs, "x", "2").unwrap();
    assert!(g.events().is_empty());
}
