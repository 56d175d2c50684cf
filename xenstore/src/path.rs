//! Path syntax (`xenstore.txt`; xenstored's `canonicalize`).
//!
//! Allowed characters are ASCII letters, digits and `-/_@`. A path starting with `/` is
//! absolute; one starting with `@` names a special watch (`@introduceDomain`,
//! `@releaseDomain`) and is only accepted where the operation allows it; anything else is
//! relative to the caller's `/local/domain/<domid>`. Trailing and doubled slashes are refused,
//! as is an empty path.

use crate::error::XsError;
use alloc::format;
use alloc::string::String;
use guest_abi::xenstore::XENSTORE_ABS_PATH_MAX;

/// `@introduceDomain`: fired when a domain is introduced.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// `@releaseDomain`: fired when a domain is released.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// `/local/domain/<domid>`: a domain's home, the base of its relative paths.
pub fn domain_path(domid: u32) -> String {
    format!("/local/domain/{domid}")
}

fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// Length of a leading `/local/domain/<up to 5 digits>/`, or 0 (xenstored measures the path
/// quota after it).
fn local_prefix_len(path: &str) -> usize {
    const PREFIX: &str = "/local/domain/";
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=5).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'/') {
        PREFIX.len() + digits + 1
    } else {
        0
    }
}

/// Validates `raw` and makes it absolute for `domid`.
///
/// `allow_special` admits `@` paths. `rel_max`, if set (unprivileged callers), limits the
/// length of the part after `/local/domain/<n>/`. Every path is limited to
/// `XENSTORE_ABS_PATH_MAX` (3072) bytes. Errors are `EINVAL`.
pub(crate) fn canonicalize(
    raw: &[u8],
    domid: u16,
    allow_special: bool,
    rel_max: Option<usize>,
) -> Result<String, XsError> {
    if raw.is_empty() || !raw.iter().all(|&c| valid_char(c)) {
        return Err(XsError::Inval);
    }
    if raw[0] == b'@' && !allow_special {
        return Err(XsError::Inval);
    }
    // Only ASCII passed the check above.
    let s = core::str::from_utf8(raw).map_err(|_| XsError::Inval)?;
    let name = if raw[0] == b'/' || raw[0] == b'@' {
        String::from(s)
    } else {
        format!("/local/domain/{domid}/{s}")
    };
    if (name.ends_with('/') && name != "/") || name.contains("//") {
        return Err(XsError::Inval);
    }
    if name.len() > XENSTORE_ABS_PATH_MAX {
        return Err(XsError::Inval);
    }
    if let Some(max) = rel_max {
        if name.len() - local_prefix_len(&name) > max {
            return Err(XsError::Inval);
        }
    }
    Ok(name)
}

/// The parent of a canonical path (`/a/b` → `/a`, `/a` → `/`, `@x` → `/`).
pub(crate) fn parent(path: &str) -> &str {
    match path.get(1..).and_then(|rest| rest.rfind('/')) {
        Some(i) => &path[..i + 1],
        None => "/",
    }
}

/// The last component of a canonical path other than `/`.
pub(crate) fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `parent/child` for a canonical parent.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `child` is `parent` or below it (xenstored's `is_child`; everything is below `/`).
pub(crate) fn is_child(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return true;
    }
    match child.strip_prefix(parent) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(canonicalize(b"/a/b", 3, false, None).unwrap(), "/a/b");
        assert_eq!(canonicalize(b"/", 3, false, None).unwrap(), "/");
        assert_eq!(
            canonicalize(b"device/vif", 3, false, None).unwrap(),
            "/local/domain/3/device/vif"
        );
        assert_eq!(
            canonicalize(b"@releaseDomain", 3, true, None).unwrap(),
            "@releaseDomain"
        );
        for bad in [
            &b""[..],
            b"/a/",
            b"/a//b",
            b"//",
            b"/a b",
            b"/a\0",
            b"/a.b",
            b"@releaseDomain",
            b"a/",
        ] {
            assert_eq!(
                canonicalize(bad, 3, false, None),
                Err(XsError::Inval),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn length_limits() {
        let mut long = alloc::vec![b'/'];
        long.extend(core::iter::repeat_n(b'a', XENSTORE_ABS_PATH_MAX - 1));
        assert!(canonicalize(&long, 0, false, None).is_ok());
        long.push(b'a');
        assert_eq!(canonicalize(&long, 0, false, None), Err(XsError::Inval));
        let rel = alloc::vec![b'x'; 2048];
        assert!(canonicalize(&rel, 7, false, Some(2048)).is_ok());
        let rel = alloc::vec![b'x'; 2049];
        assert_eq!(
            canonicalize(&rel, 7, false, Some(2048)),
            Err(XsError::Inval)
        );
        assert!(canonicalize(&rel, 7, false, None).is_ok());
    }

    #[test]
    fn parents_and_children() {
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(parent("@releaseDomain"), "/");
        assert_eq!(basename("/a/b/c"), "c");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_child("/a/b", "/a"));
        assert!(is_child("/a", "/a"));
        assert!(!is_child("/ab", "/a"));
        assert!(is_child("/anything", "/"));
        assert_eq!(local_prefix_len("/local/domain/12/x"), 17);
        assert_eq!(local_prefix_len("/local/domain/x"), 0);
    }
}
