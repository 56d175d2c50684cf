//! Every wire operation, its errors by name, and relative paths.

mod common;
use common::*;
use xenstore::{Access, Perm, Xenstore};

#[test]
fn write_read_relative_and_absolute() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "a/b/c", "hello").unwrap();
    assert_eq!(g.read(&mut xs, "a/b/c").unwrap(), b"hello");
    assert_eq!(g.read(&mut xs, "/local/domain/5/a/b/c").unwrap(), b"hello");
    // Parents were created empty.
    assert_eq!(g.read(&mut xs, "a/b").unwrap(), b"");
    assert_eq!(xs.read("/local/domain/5/a/b/c").unwrap(), b"hello");
    // READ has no trailing NUL; values may be binary.
    let mut p = z("bin");
    p.extend_from_slice(b"x\0y");
    g.req(&mut xs, XS_WRITE, 0, &p).unwrap();
    assert_eq!(g.read(&mut xs, "bin").unwrap(), b"x\0y");
    // Overwrite, empty value.
    g.write(&mut xs, "a/b/c", "").unwrap();
    assert_eq!(g.read(&mut xs, "a/b/c").unwrap(), b"");
}

#[test]
fn read_errors() {
    let (mut xs, mut g) = setup();
    assert_eq!(g.read(&mut xs, "missing").unwrap_err(), "ENOENT");
    assert_eq!(g.read(&mut xs, "missing/deeper").unwrap_err(), "ENOENT");
    for bad in ["", "/a/", "a//b", "/a b", "@releaseDomain", "a.b"] {
        assert_eq!(g.read(&mut xs, bad).unwrap_err(), "EINVAL", "{bad:?}");
    }
    // Payload not exactly one NUL-terminated string.
    assert_eq!(g.req(&mut xs, XS_READ, 0, b"a").unwrap_err(), "EINVAL");
    assert_eq!(g.req(&mut xs, XS_READ, 0, b"a\0b\0").unwrap_err(), "EINVAL");
    assert_eq!(g.req(&mut xs, XS_READ, 0, b"").unwrap_err(), "EINVAL");
    // WRITE needs a NUL after the path.
    assert_eq!(
        g.req(&mut xs, XS_WRITE, 0, b"novalue").unwrap_err(),
        "EINVAL"
    );
}

#[test]
fn mkdir_and_directory() {
    let (mut xs, mut g) = setup();
    g.mkdir(&mut xs, "d/x").unwrap();
    g.mkdir(&mut xs, "d/y").unwrap();
    g.write(&mut xs, "d/a", "1").unwrap();
    // Creation order is kept.
    assert_eq!(g.dir(&mut xs, "d").unwrap(), ["x", "y", "a"]);
    assert_eq!(g.dir(&mut xs, "d/x").unwrap(), Vec::<String>::new());
    assert_eq!(g.req(&mut xs, XS_DIRECTORY, 0, &z("d/x")).unwrap(), b"");
    // MKDIR of an existing node leaves its value alone.
    g.mkdir(&mut xs, "d/a").unwrap();
    assert_eq!(g.read(&mut xs, "d/a").unwrap(), b"1");
    assert_eq!(g.dir(&mut xs, "nothing").unwrap_err(), "ENOENT");
}

#[test]
fn rm_semantics() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "t/a/b", "1").unwrap();
    g.write(&mut xs, "t/c", "2").unwrap();
    g.rm(&mut xs, "t/a").unwrap();
    assert_eq!(g.read(&mut xs, "t/a/b").unwrap_err(), "ENOENT");
    assert_eq!(g.read(&mut xs, "t/a").unwrap_err(), "ENOENT");
    assert_eq!(g.dir(&mut xs, "t").unwrap(), ["c"]);
    // Missing node with an existing parent: fine.
    g.rm(&mut xs, "t/a").unwrap();
    // Missing parent: ENOENT.
    assert_eq!(g.rm(&mut xs, "t/a/b").unwrap_err(), "ENOENT");
    // dom0 may not remove the root.
    assert_eq!(xs.rm("/"), Err(xenstore::XsError::Inval));
    // A domU may not even try.
    assert_eq!(g.rm(&mut xs, "/").unwrap_err(), "EACCES");
    let before = xs.node_count();
    g.write(&mut xs, "big/1/2/3", "x").unwrap();
    g.rm(&mut xs, "big").unwrap();
    assert_eq!(xs.node_count(), before);
}

#[test]
fn directory_part() {
    let (mut xs, mut g) = setup();
    for i in 0..3 {
        g.mkdir(&mut xs, &format!("p/c{i}")).unwrap();
    }
    let mut arg = z("p");
    arg.extend(z("0"));
    let r = g.req(&mut xs, XS_DIRECTORY_PART, 0, &arg).unwrap();
    let parts = split(&r);
    assert!(
        parts[0].parse::<u64>().is_ok(),
        "generation first: {parts:?}"
    );
    assert_eq!(&parts[1..], ["c0", "c1", "c2", ""]);
    let gen = parts[0].clone();
    let mut arg = z("p");
    arg.extend(z("3"));
    let r = g.req(&mut xs, XS_DIRECTORY_PART, 0, &arg).unwrap();
    assert_eq!(split(&r), [gen.as_str(), "c1", "c2", ""]);
    let mut arg = z("p");
    arg.extend(z("100"));
    let r = g.req(&mut xs, XS_DIRECTORY_PART, 0, &arg).unwrap();
    assert_eq!(split(&r), [gen.as_str(), ""]);
    // A change moves the generation.
    g.mkdir(&mut xs, "p/c3").unwrap();
    let mut arg = z("p");
    arg.extend(z("0"));
    let r = g.req(&mut xs, XS_DIRECTORY_PART, 0, &arg).unwrap();
    assert_ne!(split(&r)[0], gen);
    assert_eq!(
        g.req(&mut xs, XS_DIRECTORY_PART, 0, &z("p")).unwrap_err(),
        "EINVAL"
    );
}

#[test]
fn get_and_set_perms() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "pp", "v").unwrap();
    assert_eq!(g.get_perms(&mut xs, "pp").unwrap(), ["n5"]);
    g.set_perms(&mut xs, "pp", &["r5", "b7", "w0"]).unwrap();
    assert_eq!(g.get_perms(&mut xs, "pp").unwrap(), ["r5", "b7", "w0"]);
    assert_eq!(
        xs.get_perms("/local/domain/5/pp").unwrap(),
        [
            Perm::new(Access::Read, 5),
            Perm::new(Access::Both, 7),
            Perm::new(Access::Write, 0)
        ]
    );
    assert_eq!(g.set_perms(&mut xs, "pp", &["x5"]).unwrap_err(), "EINVAL");
    assert_eq!(g.set_perms(&mut xs, "pp", &["r"]).unwrap_err(), "EINVAL");
    assert_eq!(
        g.req(&mut xs, XS_SET_PERMS, 0, &z("pp")).unwrap_err(),
        "EINVAL"
    );
    assert_eq!(g.set_perms(&mut xs, "nope", &["n5"]).unwrap_err(), "ENOENT");
    // Special nodes have permissions too (dom0's, closed).
    assert_eq!(
        g.get_perms(&mut xs, "@releaseDomain").unwrap_err(),
        "EACCES"
    );
    assert_eq!(
        xs.get_perms("@releaseDomain").unwrap(),
        [Perm::new(Access::None, 0)]
    );
}

#[test]
fn get_domain_path_and_misc() {
    let (mut xs, mut g) = setup();
    assert_eq!(
        g.req(&mut xs, XS_GET_DOMAIN_PATH, 0, &z("5")).unwrap(),
        b"/local/domain/5\0"
    );
    assert_eq!(
        g.req(&mut xs, XS_GET_DOMAIN_PATH, 0, &z("12")).unwrap(),
        b"/local/domain/12\0"
    );
    assert_eq!(
        g.req(&mut xs, XS_GET_DOMAIN_PATH, 0, b"5").unwrap_err(),
        "EINVAL"
    );
    // req_id is echoed, including odd values.
    g.send_raw(&encode(XS_GET_DOMAIN_PATH, 0xdead_beef, 0, &z("1")));
    g.pump(&mut xs);
    let m = g.inbox.pop_front().unwrap();
    assert_eq!(
        (m.ty, m.req_id, m.tx_id),
        (XS_GET_DOMAIN_PATH, 0xdead_beef, 0)
    );
}

#[test]
fn unknown_and_privileged_types() {
    let (mut xs, mut g) = setup();
    for ty in [XS_WATCH_EVENT, XS_ERROR, 20, 27, 1000, XS_INVALID] {
        assert_eq!(
            g.req(&mut xs, ty, 0, b"").unwrap_err(),
            "ENOSYS",
            "type {ty}"
        );
    }
    for ty in [
        XS_CONTROL,
        XS_INTRODUCE,
        XS_RELEASE,
        XS_IS_DOMAIN_INTRODUCED,
        XS_RESUME,
        XS_SET_TARGET,
        XS_GET_FEATURE,
        XS_SET_FEATURE,
        XS_GET_QUOTA,
        XS_SET_QUOTA,
    ] {
        assert_eq!(
            g.req(&mut xs, ty, 0, &z("1")).unwrap_err(),
            "EACCES",
            "type {ty}"
        );
    }
    // Nothing happened: domain 1 was not introduced by the INTRODUCE attempt.
    assert!(!xs.is_domain_introduced(1));
}

#[test]
fn reset_watches_clears_watches_and_transactions() {
    let (mut xs, mut g) = setup();
    g.write(&mut xs, "w", "0").unwrap();
    g.watch(&mut xs, "w", "tok").unwrap();
    let tx = g.start(&mut xs).unwrap();
    assert_eq!(g.read_tx(&mut xs, tx, "w").unwrap(), b"0");
    g.events();
    g.req(&mut xs, XS_RESET_WATCHES, 0, b"\0").unwrap();
    assert_eq!(g.read_tx(&mut xs, tx, "w").unwrap_err(), "ENOENT");
    g.write(&mut xs, "w", "1").unwrap();
    assert!(g.events().is_empty());
    assert_eq!(g.unwatch(&mut xs, "w", "tok").unwrap_err(), "ENOENT");
}

#[test]
fn dom0_api() {
    let mut xs = Xenstore::default();
    assert_eq!(xs.read("/local/domain/0/name").unwrap(), b"Domain-0");
    assert_eq!(xs.read("name").unwrap(), b"Domain-0");
    xs.write("/x/y", b"1").unwrap();
    assert!(xs.exists("/x"));
    assert_eq!(xs.directory("/x").unwrap(), ["y"]);
    xs.rm("/x").unwrap();
    assert!(!xs.exists("/x"));
    assert_eq!(xs.rm("/x/y"), Err(xenstore::XsError::Noent));
    assert_eq!(xs.read("bad path"), Err(xenstore::XsError::Inval));
    assert_eq!(xs.set_perms("/local", &[]), Err(xenstore::XsError::Inval));
    assert_eq!(xs.introduce_domain(0), Err(xenstore::XsError::Inval));
    assert!(xs.is_domain_introduced(0));
    assert_eq!(xs.release_domain(9), Err(xenstore::XsError::Noent));
}
