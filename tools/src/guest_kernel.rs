//! Which Debian kernel package the Linux guests boot.
//!
//! By default Debian's `linux-image-amd64` metapackage, followed through its `linux-image-*`
//! dependency to the ABI package it names today (bookworm's current ABI, as the machine's apt
//! lists say: `apt-get update` moves it on). `XENOLITH_GUEST_KERNEL=<package>[=<version>]`
//! chooses another: an ABI package (the pin [`PINNED_KERNEL`], say), another flavour's
//! metapackage (`linux-image-cloud-amd64`), another series (`linux-image-6.12-amd64`). apt
//! resolves it from its signed indexes (`apt-cache show`) and downloads it (`apt-get download`,
//! which checks the file against the index's SHA-256), so nothing is pinned by hash here.

use anyhow::{bail, Context, Result};
use std::process::Command;

pub use ::tests::scenarios::{guest_kernel, DEFAULT_GUEST_KERNEL, GUEST_KERNEL_ENV};

/// The ABI package the project was last pinned to, known to boot: `XENOLITH_GUEST_KERNEL=` it
/// (or `linux-image-6.1.0-56-amd64=6.1.192-2`) to boot it while Debian still carries it.
pub const PINNED_KERNEL: &str = "linux-image-6.1.0-56-amd64";

/// A kernel package as asked for: a name, and perhaps a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    /// The Debian package (`linux-image-...`).
    pub package: String,
    /// The version asked for; apt's candidate if none.
    pub version: Option<String>,
}

impl KernelSpec {
    /// Parses `name` or `name=version`: a Debian package name starting `linux-image-`.
    pub fn parse(s: &str) -> Result<KernelSpec> {
        let s = s.trim();
        let (name, version) = match s.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (s, None),
        };
        let name_ok = name.len() > "linux-image-".len()
            && name.starts_with("linux-image-")
            && name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c));
        if !name_ok {
            bail!(
                "{GUEST_KERNEL_ENV}={s:?}: not a Debian kernel package (linux-image-<flavour> or \
                 linux-image-<release>, perhaps with =<version>)"
            );
        }
        if let Some(v) = version {
            let ok = !v.is_empty()
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.~:".contains(&c));
            if !ok {
                bail!("{GUEST_KERNEL_ENV}={s:?}: {v:?} is not a Debian version");
            }
        }
        Ok(KernelSpec {
            package: name.to_string(),
            version: version.map(str::to_string),
        })
    }

    /// The package the environment chooses ([`guest_kernel`]).
    pub fn from_env() -> Result<KernelSpec> {
        KernelSpec::parse(&guest_kernel())
    }

    /// `name` or `name=version`, as apt takes it.
    pub fn apt_arg(&self) -> String {
        match &self.version {
            Some(v) => format!("{}={v}", self.package),
            None => self.package.clone(),
        }
    }
}

/// The fields of one `apt-cache show` stanza that resolving needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Depends`, each alternative group's first: (name, the version of an `(= ...)`).
    pub depends: Vec<(String, Option<String>)>,
    /// `SHA256` of the `.deb`.
    pub sha256: Option<String>,
}

/// The first stanza of `apt-cache show` output.
pub fn parse_stanza(text: &str) -> Result<Stanza> {
    let mut st = Stanza::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !st.package.is_empty() {
                break;
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Package" => st.package = value.to_string(),
            "Version" => st.version = value.to_string(),
            "SHA256" => st.sha256 = Some(value.to_string()),
            "Depends" => {
                for group in value.split(',') {
                    let first = group.split('|').next().unwrap_or("").trim();
                    let (name, rel) = match first.split_once('(') {
                        Some((n, r)) => (n.trim(), Some(r.trim_end_matches(')').trim())),
                        None => (first, None),
                    };
                    let exact = rel
                        .and_then(|r| r.strip_prefix('='))
                        .map(|v| v.trim().to_string());
                    let name = name.split(':').next().unwrap_or(name); // `pkg:any`
                    if !name.is_empty() {
                        st.depends.push((name.to_string(), exact));
                    }
                }
            }
            _ => {}
        }
    }
    if st.package.is_empty() || st.version.is_empty() {
        bail!("no package stanza in apt-cache's output");
    }
    Ok(st)
}

/// The kernel package resolved: the package that ships the kernel, at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelChoice {
    /// What was asked for (`linux-image-amd64`).
    pub requested: String,
    /// The package holding `boot/vmlinuz-*` (`linux-image-6.1.0-57-amd64`).
    pub package: String,
    /// Its version (`6.1.192-3`).
    pub version: String,
    /// The `.deb`'s SHA-256 in apt's index (none for a package put in the cache by hand).
    pub sha256: Option<String>,
}

impl KernelChoice {
    /// The name of the image's directory under `build/guest/`: `<package>_<version>`.
    pub fn key(&self) -> String {
        let v: String = self
            .version
            .chars()
            .map(|c| if c == ':' { '_' } else { c })
            .collect();
        format!("{}_{v}", self.package)
    }

    /// The release (`uname -r`) the package's name gives (`6.1.0-57-amd64`).
    pub fn release_from_name(&self) -> String {
        let r = self
            .package
            .strip_prefix("linux-image-")
            .unwrap_or(&self.package);
        r.strip_suffix("-unsigned").unwrap_or(r).to_string()
    }
}

/// Resolves `spec` through `show` (`apt-cache show --no-all-versions` of `name[=version]`):
/// while a package depends on a `linux-image-*` package (not a `-dbg` one), that package
/// (at the version an `(= ...)` names) is taken instead.
pub fn resolve(spec: &KernelSpec, show: impl Fn(&str) -> Result<String>) -> Result<KernelChoice> {
    let mut arg = spec.apt_arg();
    for _ in 0..4 {
        let st = parse_stanza(&show(&arg)?).with_context(|| format!("apt-cache show {arg}"))?;
        let next = st
            .depends
            .iter()
            .find(|(n, _)| n.starts_with("linux-image-") && !n.ends_with("-dbg"));
        match next {
            Some((n, Some(v))) => arg = format!("{n}={v}"),
            Some((n, None)) => arg = n.clone(),
            None => {
                return Ok(KernelChoice {
                    requested: spec.apt_arg(),
                    package: st.package,
                    version: st.version,
                    sha256: st.sha256,
                })
            }
        }
    }
    bail!(
        "{} depends on linux-image packages too deep",
        spec.apt_arg()
    )
}

/// `apt-cache show --no-all-versions <arg>` (apt's candidate, or the version `arg` names).
pub fn apt_show(arg: &str) -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["show", "--no-all-versions", arg])
        .output()
        .context("running apt-cache show")?;
    if !out.status.success() {
        bail!(
            "apt-cache show {arg} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The chosen kernel's release, for messages: the one the image was built from (once
/// [`crate::guest_image::ensure`] has run in this process), else the one the chosen package's
/// name gives, else the package asked for.
#[derive(Debug, Clone, Copy)]
pub struct ChosenRelease;

impl std::fmt::Display for ChosenRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match crate::guest_image::chosen_release() {
            Some(r) => f.write_str(&r),
            None => f.write_str(&guest_kernel()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = "Package: linux-image-amd64\nSource: linux-signed-amd64 (6.1.192+3)\n\
        Version: 6.1.192-3\nDepends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)\n\
        SHA256: 4bf7\n\n";
    const ABI: &str = "Package: linux-image-6.1.0-57-amd64\nVersion: 6.1.192-3\n\
        Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool\n\
        Recommends: firmware-linux-free, apparmor\nSHA256: 14d2\nDescription: Linux 6.1\n";

    #[test]
    fn specs_parse() {
        let s = KernelSpec::parse(" linux-image-amd64 ").unwrap();
        assert_eq!((s.package.as_str(), s.version), ("linux-image-amd64", None));
        let s = KernelSpec::parse("linux-image-6.12.117+deb12-amd64=6.12.117-1~deb12u1").unwrap();
        assert_eq!(s.version.as_deref(), Some("6.12.117-1~deb12u1"));
        assert_eq!(
            s.apt_arg(),
            "linux-image-6.12.117+deb12-amd64=6.12.117-1~deb12u1"
        );
        for bad in [
            "",
            "busybox",
            "linux-image-",
            "linux-image-amd64; rm",
            "linux-image-x=",
            "Linux-image-amd64",
        ] {
            assert!(KernelSpec::parse(bad).is_err(), "{bad:?}");
        }
        assert!(KernelSpec::parse(PINNED_KERNEL).is_ok());
        assert!(KernelSpec::parse(DEFAULT_GUEST_KERNEL).is_ok());
    }

    #[test]
    fn stanzas_parse() {
        let st = parse_stanza(ABI).unwrap();
        assert_eq!(st.package, "linux-image-6.1.0-57-amd64");
        assert_eq!(st.version, "6.1.192-3");
        assert_eq!(st.sha256.as_deref(), Some("14d2"));
        let names: Vec<&str> = st.depends.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(names, ["kmod", "linux-base", "initramfs-tools"]);
        assert_eq!(st.depends[1].1, None, ">= is no exact version");
        let st = parse_stanza(META).unwrap();
        assert_eq!(
            st.depends,
            [(
                "linux-image-6.1.0-57-amd64".to_string(),
                Some("6.1.192-3".to_string())
            )]
        );
        // Only the first of several stanzas.
        let two = format!("{META}{ABI}");
        assert_eq!(parse_stanza(&two).unwrap().package, "linux-image-amd64");
        assert!(parse_stanza("").is_err());
    }

    #[test]
    fn metapackages_resolve_to_their_abi_package() {
        let asked = std::cell::RefCell::new(Vec::new());
        let show = |arg: &str| -> Result<String> {
            asked.borrow_mut().push(arg.to_string());
            match arg {
                "linux-image-amd64" => Ok(META.into()),
                "linux-image-6.1.0-57-amd64=6.1.192-3" | "linux-image-6.1.0-57-amd64" => {
                    Ok(ABI.into())
                }
                _ => bail!("E: No packages found"),
            }
        };
        let c = resolve(&KernelSpec::parse("linux-image-amd64").unwrap(), show).unwrap();
        assert_eq!(c.package, "linux-image-6.1.0-57-amd64");
        assert_eq!(c.version, "6.1.192-3");
        assert_eq!(c.sha256.as_deref(), Some("14d2"));
        assert_eq!(c.requested, "linux-image-amd64");
        assert_eq!(c.key(), "linux-image-6.1.0-57-amd64_6.1.192-3");
        assert_eq!(c.release_from_name(), "6.1.0-57-amd64");
        assert_eq!(
            *asked.borrow(),
            ["linux-image-amd64", "linux-image-6.1.0-57-amd64=6.1.192-3"]
        );
        // An ABI package resolves to itself.
        let c = resolve(
            &KernelSpec::parse("linux-image-6.1.0-57-amd64").unwrap(),
            show,
        )
        .unwrap();
        assert_eq!(c.package, "linux-image-6.1.0-57-amd64");
        // A package apt does not know fails with apt's words.
        let e = resolve(
            &KernelSpec::parse("linux-image-6.1.0-1-amd64").unwrap(),
            show,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("No packages found"), "{e:#}");
        // A loop of dependencies ends.
        let looped = |_: &str| -> Result<String> {
            Ok("Package: linux-image-a\nVersion: 1\nDepends: linux-image-a\n".into())
        };
        assert!(resolve(&KernelSpec::parse("linux-image-a").unwrap(), looped).is_err());
    }

    #[test]
    fn keys_and_releases() {
        let c = KernelChoice {
            requested: "x".into(),
            package: "linux-image-6.12.117+deb12-cloud-amd64-unsigned".into(),
            version: "1:6.12.117-1~deb12u1".into(),
            sha256: None,
        };
        assert_eq!(c.release_from_name(), "6.12.117+deb12-cloud-amd64");
        assert_eq!(
            c.key(),
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned_1_6.12.117-1~deb12u1"
        );
    }
}
