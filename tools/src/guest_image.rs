//! The Linux guest image: Debian's stock kernel package (the one
//! [`crate::guest_kernel`] chooses: by default the current ABI of `linux-image-amd64`), the
//! uncompressed `vmlinux` taken out of its bzImage (whatever its compression:
//! [`crate::decompress`]), and an initramfs of busybox, the network modules ([`MODULES`],
//! unpacked to plain `.ko` when the package compresses them), the project's `/init`
//! (`guest/init`), and a few Debian programs ([`PROGRAMS`]: xenstore's client, iperf3) in
//! `/usr/bin` with the glibc, loader and shared libraries they need (found by their `DT_NEEDED`
//! entries, in [`LIBRARY_PACKAGES`]).
//!
//! Everything is cached under `build/guest/`: each kernel's files in a directory of its own,
//! `build/guest/<package>_<version>/` (the `.deb`, its tree, `vmlinuz`, `vmlinux`, the
//! initramfs), so switching kernels never reuses another's image; the userland packages, which
//! every kernel's initramfs shares, in `build/guest/cache/`.

use crate::decompress::{self, Compression};
use crate::guest_kernel::{self, ChosenRelease, KernelChoice, KernelSpec};
use crate::paths::Paths;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The release (`uname -r`) of the guest kernel, for messages: the chosen package's, once
/// [`ensure`] has built its image in this process ([`chosen_release`]).
pub static KERNEL_RELEASE: ChosenRelease = ChosenRelease;
/// The package providing a static busybox for the initramfs.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// Modules put into the initramfs (paths under `lib/modules/<release>/`). Neither depends on
/// another module (`depends=` is empty in their `.modinfo`): `insmod` each alone.
/// `e1000` is the NIC of the bare-Bochs network reference.
/// A package may ship each compressed (`.ko.xz`, `.ko.zst`, `.ko.gz`: Debian's 6.12 kernels
/// use xz); the initramfs gets it unpacked, at the `.ko` path.
pub const MODULES: &[&str] = &[
    "kernel/drivers/net/xen-netfront.ko",
    "kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
];

/// The [`MODULES`] a flavour may not build (the cloud kernels have no e1000): left out of its
/// initramfs with a note; only the bare-Bochs network reference loads it. A module the kernel
/// has built in (listed in `modules.builtin`) is left out too.
pub const OPTIONAL_MODULES: &[&str] = &["kernel/drivers/net/ethernet/intel/e1000/e1000.ko"];

/// A program taken from a Debian package into the initramfs, at the same path (`usr/bin/...`;
/// the guest's `PATH` must name `/usr/bin`), with the shared libraries it needs.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The Debian package (bookworm's candidate version; not pinned).
    pub package: &'static str,
    /// The executable's path in the package.
    pub path: &'static str,
    /// Other names of the same program in the package's directory (a multi-call binary's hard
    /// links), made symlinks to it.
    pub links: &'static [&'static str],
}

/// The guest's own tools: xenstore's client (one multi-call binary picking its command from
/// `argv[0]`) and iperf3.
pub const PROGRAMS: &[Program] = &[
    Program {
        package: "xenstore-utils",
        path: "usr/bin/xenstore",
        links: &[
            "xenstore-chmod",
            "xenstore-exists",
            "xenstore-list",
            "xenstore-ls",
            "xenstore-read",
            "xenstore-rm",
            "xenstore-watch",
            "xenstore-write",
        ],
    },
    Program {
        package: "iperf3",
        path: "usr/bin/iperf3",
        links: &[],
    },
];

/// The packages where the [`PROGRAMS`]' ELF interpreter and shared libraries (the closure of
/// their `DT_NEEDED` sonames) are looked up, in this order, after the programs' own packages.
/// Only the files needed go into the initramfs. A soname found in none of them fails the build
/// with its name: add the package that ships it here.
pub const LIBRARY_PACKAGES: &[&str] = &[
    "libc6",
    "libxenstore4",
    "libxentoolcore1",
    "libiperf0",
    "libsctp1",
    "libssl3",
    "libgcc-s1",
];

/// Sonames the programs load at run time with `dlopen`, which no `DT_NEEDED` names: glibc's
/// `pthread_cancel` (libxenstore cancels its watch thread when `xenstore-watch` exits) needs
/// libgcc's unwinder, and aborts with "libgcc_s.so.1 must be installed" without it.
pub const DLOPENED: &[&str] = &["libgcc_s.so.1"];

/// Where sonames are looked up in each package (the dynamic loader's default directories on
/// Debian, which the initramfs keeps: it has no `/etc/ld.so.cache`).
pub const LIBRARY_DIRS: &[&str] = &["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"];

/// The version of how `vmlinux` is made from the bzImage: bump it when that changes, and
/// cached images are made again. 2: PT_NOTE offsets follow the trimmed PT_LOAD data. 3: one
/// directory per kernel package, any bzImage compression.
const IMAGE_FORMAT: u32 = 3;

/// What `<kernel dir>/stamp` holds when `vmlinuz` and `vmlinux` are those of `choice`.
fn stamp(choice: &KernelChoice) -> String {
    format!(
        "{} {} sha256 {} format {IMAGE_FORMAT}\n",
        choice.package,
        choice.version,
        choice.sha256.as_deref().unwrap_or("-")
    )
}

/// The kernel this process builds and boots (resolved once), and its release once its image
/// is built.
static CHOSEN: Mutex<Option<(KernelChoice, Option<String>)>> = Mutex::new(None);

/// The release of the kernel whose image [`ensure`] built in this process.
pub fn chosen_release() -> Option<String> {
    CHOSEN.lock().ok()?.as_ref()?.1.clone()
}

/// The chosen kernel package, resolved once a process ([`guest_kernel::resolve`] through
/// apt's lists; when apt cannot, as root, after an `apt-get update`).
pub fn choice() -> Result<KernelChoice> {
    if let Some((c, _)) = CHOSEN.lock().ok().and_then(|g| g.clone()) {
        return Ok(c);
    }
    let c = resolve_now()?;
    if let Ok(mut g) = CHOSEN.lock() {
        *g = Some((c.clone(), None));
    }
    Ok(c)
}

fn resolve_now() -> Result<KernelChoice> {
    let spec = KernelSpec::from_env()?;
    match guest_kernel::resolve(&spec, guest_kernel::apt_show) {
        Ok(c) => Ok(c),
        Err(_) if apt_update_once()? => guest_kernel::resolve(&spec, guest_kernel::apt_show),
        Err(e) => Err(e),
    }
}

/// Runs `apt-get update` once a process, as root (a fresh machine has no lists; Debian
/// drops an ABI's packages once the next is out). Whether it ran now.
fn apt_update_once() -> Result<bool> {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !crate::setup::is_root() || DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(false);
    }
    println!("guest image: running apt-get update");
    let ok = Command::new("apt-get")
        .arg("update")
        .status()
        .context("running apt-get update")?
        .success();
    if !ok {
        println!("guest image: apt-get update failed");
    }
    Ok(ok)
}

/// The directory of `choice`'s image: `build/guest/<package>_<version>/`.
pub fn kernel_dir(paths: &Paths, choice: &KernelChoice) -> PathBuf {
    dir(paths).join(choice.key())
}

/// The files a Linux domain boots from.
#[derive(Debug, Clone)]
pub struct GuestImage {
    /// The uncompressed kernel ELF (entered at its 64-bit entry point).
    pub vmlinux: PathBuf,
    /// The bzImage as Debian ships it.
    pub bzimage: PathBuf,
    /// The initramfs (newc cpio, uncompressed).
    pub initramfs: PathBuf,
}

/// Where the image files live.
pub fn dir(paths: &Paths) -> PathBuf {
    paths.build_dir().join("guest")
}

/// Where `file` of the chosen kernel's guest image is (once [`ensure`] has run).
pub fn path(paths: &Paths, file: ::tests::GuestFile) -> PathBuf {
    // Unresolvable here means ensure() failed first, with the reason.
    let kdir = choice().map_or_else(|_| dir(paths).join("unresolved"), |c| kernel_dir(paths, &c));
    kdir.join(match file {
        ::tests::GuestFile::Vmlinux => "vmlinux",
        ::tests::GuestFile::BzImage => "vmlinuz",
        ::tests::GuestFile::Initramfs => "initramfs.cpio",
    })
}

/// Points `build/guest/{vmlinuz,vmlinux,initramfs.cpio}` at the image just made in `kdir`
/// (relative symbolic links, replaced atomically), the stable paths that configurations
/// outside the tools name (`examples/`).
fn link_current(dir: &Path, kdir: &Path) -> Result<()> {
    let sub = kdir.strip_prefix(dir).unwrap_or(kdir);
    for name in ["vmlinuz", "vmlinux", "initramfs.cpio"] {
        let link = dir.join(name);
        let tmp = dir.join(format!(".{name}.link"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(sub.join(name), &tmp)
            .with_context(|| format!("linking {}", tmp.display()))?;
        std::fs::rename(&tmp, &link).with_context(|| format!("replacing {}", link.display()))?;
    }
    Ok(())
}

/// Builds the guest image if one of `scenarios` boots it.
pub fn ensure_for(paths: &Paths, scenarios: &[::tests::Scenario]) -> Result<()> {
    let needed = scenarios.iter().any(|s| {
        s.domains.iter().any(|d| {
            d.modules
                .iter()
                .any(|m| matches!(m.source, ::tests::ModuleSource::Guest(_)))
        })
    });
    if needed {
        ensure(paths)?;
    }
    Ok(())
}

/// Downloads, extracts and builds what is missing for the chosen kernel; returns the files.
pub fn ensure(paths: &Paths) -> Result<GuestImage> {
    let dir = dir(paths);
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let (choice, kernel_deb) = kernel_package(paths)?;
    let kdir = kernel_dir(paths, &choice);
    // Outputs of an older way of making them are made again.
    let stamp_path = kdir.join("stamp");
    let stamp = stamp(&choice);
    let stale = std::fs::read_to_string(&stamp_path).ok().as_deref() != Some(&stamp[..]);
    if stale {
        for old in [
            kdir.join("vmlinuz"),
            kdir.join("vmlinux"),
            kdir.join("stamp"),
        ] {
            let _ = std::fs::remove_file(old);
        }
        let _ = std::fs::remove_dir_all(kdir.join("kernel-root"));
    }
    let busybox_deb = download(&cache, BUSYBOX_PACKAGE, None)?;
    let kroot = extract(&kernel_deb, &kdir.join("kernel-root"))?;
    let broot = extract(&busybox_deb, &cache.join("busybox-root"))?;
    let release = kernel_release(&kroot, &choice)?;

    let bzimage = kdir.join("vmlinuz");
    let shipped = kroot.join(format!("boot/vmlinuz-{release}"));
    if !bzimage.exists() {
        let data =
            std::fs::read(&shipped).with_context(|| format!("reading {}", shipped.display()))?;
        write_atomic(&bzimage, &data)?;
    }
    let vmlinux = kdir.join("vmlinux");
    if !vmlinux.exists() {
        let bz = std::fs::read(&bzimage)?;
        let elf = vmlinux_from_bzimage(&bz)
            .with_context(|| format!("extracting vmlinux from {}", bzimage.display()))?;
        write_atomic(&vmlinux, &trim_elf(&elf)?)?;
    }
    if stale {
        write_atomic(&stamp_path, stamp.as_bytes())?;
    }
    let initramfs = kdir.join("initramfs.cpio");
    let init = std::fs::read(paths.root.join("guest/init")).context("reading guest/init")?;
    let busybox = std::fs::read(broot.join("bin/busybox")).context("reading busybox")?;
    let mut fs = Rootfs::default();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        fs.add(CpioEntry::dir(d));
    }
    fs.add(CpioEntry::file("bin/busybox", 0o755, busybox));
    fs.add(CpioEntry::file("bin/rdtsc", 0o755, rdtsc_elf()));
    fs.add(CpioEntry::file("init", 0o755, init));
    fs.add(CpioEntry::dir("test"));
    for (name, data) in test_scripts(&paths.root.join("guest/test"))? {
        fs.add(CpioEntry::file(&format!("test/{name}"), 0o644, data));
    }
    for note in add_modules(&mut fs, &kroot, &release, MODULES, OPTIONAL_MODULES)? {
        println!("guest image: {note}");
    }
    let userland = userland(&cache)?;
    add_programs(&mut fs, PROGRAMS, &userland, DLOPENED)?;
    let manifest: String = userland
        .iter()
        .map(|t| format!("{} {}\n", t.package, t.version))
        .collect();
    let manifest_path = kdir.join("userland");
    if std::fs::read_to_string(&manifest_path).ok().as_deref() != Some(&manifest[..]) {
        write_atomic(&manifest_path, manifest.as_bytes())?;
    }
    let files = fs.entries;
    let archive = cpio_newc(&files);
    // Rewritten only when it changed, and never in place: an ISO being built beside this
    // (`make test` while `make bench` prepares) reads the old file or the new one, whole.
    if std::fs::read(&initramfs).ok().as_deref() != Some(&archive[..]) {
        write_atomic(&initramfs, &archive)?;
    }
    if let Ok(mut g) = CHOSEN.lock() {
        *g = Some((choice, Some(release)));
    }
    link_current(&dir, &kdir)?;
    Ok(GuestImage {
        vmlinux,
        bzimage,
        initramfs,
    })
}

/// The chosen kernel package and its `.deb` (`<kernel dir>/kernel.deb`), fetched once: through
/// `apt-get download`, which checks it against apt's signed index, or taken from
/// `build/guest/cache/<package>.deb` when that file has the index's SHA-256 (an earlier
/// layout's download). When apt no longer has the file (its lists name an ABI Debian has
/// dropped), apt's lists are updated and the package resolved again. When apt knows nothing of
/// an ABI package asked for by name, a `.deb` put by hand at `build/guest/cache/<package>.deb`
/// (from snapshot.debian.org, say) is taken as it is.
fn kernel_package(paths: &Paths) -> Result<(KernelChoice, PathBuf)> {
    let cache = dir(paths).join("cache");
    let spec = KernelSpec::from_env()?;
    loop {
        let choice = match choice() {
            Ok(c) => c,
            Err(e) => {
                let by_hand = cache.join(format!("{}.deb", spec.package));
                if !by_hand.exists() {
                    return Err(e).context(format!(
                        "resolving the guest kernel {} (set {} to a package apt knows; \
                         `apt-cache policy {}`)",
                        spec.apt_arg(),
                        guest_kernel::GUEST_KERNEL_ENV,
                        spec.package
                    ));
                }
                let version = deb_version(&by_hand)?;
                if spec.version.as_ref().is_some_and(|v| *v != version) {
                    return Err(e).context(format!(
                        "{} is version {version}, not the one asked for",
                        by_hand.display()
                    ));
                }
                println!(
                    "guest image: apt does not know {}; taking {} ({version}) as it is, unverified",
                    spec.package,
                    by_hand.display()
                );
                let c = KernelChoice {
                    requested: spec.apt_arg(),
                    package: spec.package.clone(),
                    version,
                    sha256: None,
                };
                let kdir = kernel_dir(paths, &c);
                std::fs::create_dir_all(&kdir)?;
                let deb = kdir.join("kernel.deb");
                if !deb.exists() {
                    copy_atomic(&by_hand, &deb)?;
                }
                set_choice(&c);
                return Ok((c, deb));
            }
        };
        let kdir = kernel_dir(paths, &choice);
        std::fs::create_dir_all(&kdir).with_context(|| format!("creating {}", kdir.display()))?;
        let deb = kdir.join("kernel.deb");
        if deb.exists() {
            return Ok((choice, deb));
        }
        let earlier = cache.join(format!("{}.deb", choice.package));
        if let Some(sha) = &choice.sha256 {
            if earlier.exists() && sha256_file(&earlier)? == *sha {
                copy_atomic(&earlier, &deb)?;
                println!(
                    "guest image: {} {} from {} (SHA-256 as in apt's index)",
                    choice.package,
                    choice.version,
                    earlier.display()
                );
                return Ok((choice, deb));
            }
        }
        let spec_arg = format!("{}={}", choice.package, choice.version);
        match download_to(&deb, &spec_arg, &choice.package) {
            Ok(()) => {
                println!(
                    "guest image: kernel {} -> {} {}",
                    choice.requested, choice.package, choice.version
                );
                return Ok((choice, deb));
            }
            Err(e) => {
                if !apt_update_once()? {
                    return Err(e);
                }
                // The lists may now name another ABI: resolve again.
                if let Ok(mut g) = CHOSEN.lock() {
                    *g = None;
                }
            }
        }
    }
}

fn set_choice(c: &KernelChoice) {
    if let Ok(mut g) = CHOSEN.lock() {
        *g = Some((c.clone(), None));
    }
}

/// The release of the kernel in the package tree `kroot`: its one `boot/vmlinuz-<release>`,
/// checked to be one the scenarios expect of the package asked for
/// ([`::tests::scenarios::kernel_release_pattern`]).
fn kernel_release(kroot: &Path, choice: &KernelChoice) -> Result<String> {
    let boot = kroot.join("boot");
    let mut found: Vec<String> = std::fs::read_dir(&boot)
        .with_context(|| format!("reading {}", boot.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("vmlinuz-").map(str::to_string))
        .collect();
    found.sort();
    let [release] = &found[..] else {
        bail!(
            "{} {} ships {} kernels (boot/vmlinuz-*), not one: is it a kernel image package?",
            choice.package,
            choice.version,
            found.len()
        );
    };
    let pattern = ::tests::scenarios::kernel_release_pattern(&choice.requested);
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).context("release pattern")?;
    if !re.is_match(release) {
        bail!(
            "{} (for {}) ships release {release}, which the scenarios would not accept from \
             it (they expect /{pattern}/)",
            choice.package,
            choice.requested
        );
    }
    Ok(release.clone())
}

/// Adds `modules` (paths under `lib/modules/<release>/` ending `.ko`) from the kernel tree
/// `kroot` to `fs`, each as a plain `.ko`: a package's `.ko.xz`, `.ko.zst` or `.ko.gz` is
/// decompressed. A module the kernel has built in (`modules.builtin`), or one of `optional`
/// the package lacks, is left out; the returned notes say which.
fn add_modules(
    fs: &mut Rootfs,
    kroot: &Path,
    release: &str,
    modules: &[&str],
    optional: &[&str],
) -> Result<Vec<String>> {
    let moddir = format!("lib/modules/{release}");
    let builtin =
        std::fs::read_to_string(kroot.join(&moddir).join("modules.builtin")).unwrap_or_default();
    let mut notes = Vec::new();
    for m in modules {
        let base = kroot.join(&moddir).join(m);
        let mut data = None;
        for ext in ["", ".xz", ".zst", ".gz"] {
            let src = PathBuf::from(format!("{}{ext}", base.display()));
            let Ok(raw) = std::fs::read(&src) else {
                continue;
            };
            let plain = match Compression::from_extension(ext.trim_start_matches('.')) {
                None => raw,
                Some(kind) => {
                    if Compression::detect(&raw) != Some(kind) {
                        bail!("{} is not {kind} data", src.display());
                    }
                    decompress::decompress(kind, &raw, None)
                        .with_context(|| format!("unpacking {}", src.display()))?
                }
            };
            if !plain.starts_with(b"\x7fELF") {
                bail!("{} holds no ELF module", src.display());
            }
            data = Some(plain);
            break;
        }
        match data {
            Some(d) => fs.add(CpioEntry::file(&format!("{moddir}/{m}"), 0o644, d)),
            None if builtin.lines().any(|l| l.trim() == *m) => {
                notes.push(format!("{m} is built into {release}"))
            }
            None if optional.contains(m) => notes.push(format!(
                "{release} has no {m} (nor .xz, .zst, .gz): left out of the initramfs"
            )),
            None => bail!(
                "{} has no {m} (nor .xz, .zst, .gz), and the kernel has it not built in",
                kroot.join(&moddir).display()
            ),
        }
    }
    Ok(notes)
}

/// The per-mode scripts `guest/test/<mode>.sh` (name, content), sorted; none if the directory
/// is absent. `/init` sources `/test/<mode>.sh` for `xenolith.test=<mode>`.
fn test_scripts(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut v = Vec::new();
    for e in rd {
        let p = e?.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".sh") && p.is_file() {
            let data = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            v.push((name.to_string(), data));
        }
    }
    v.sort();
    Ok(v)
}

/// The initramfs' members, each path once (the first added wins), each parent directory made
/// before its first child.
#[derive(Default)]
struct Rootfs {
    entries: Vec<CpioEntry>,
    names: std::collections::BTreeSet<String>,
}

impl Rootfs {
    fn add(&mut self, e: CpioEntry) {
        for (i, _) in e.name.match_indices('/') {
            let d = &e.name[..i];
            if self.names.insert(d.to_string()) {
                self.entries.push(CpioEntry::dir(d));
            }
        }
        if self.names.insert(e.name.clone()) {
            self.entries.push(e);
        }
    }
}

/// An extracted Debian package.
#[derive(Debug, Clone)]
struct Package {
    package: String,
    version: String,
    root: PathBuf,
}

/// The [`PROGRAMS`]' packages, then the [`LIBRARY_PACKAGES`], downloaded and extracted under
/// `cache` (once).
fn userland(cache: &Path) -> Result<Vec<Package>> {
    let mut names: Vec<&str> = PROGRAMS.iter().map(|p| p.package).collect();
    names.extend_from_slice(LIBRARY_PACKAGES);
    let mut v: Vec<Package> = Vec::new();
    for name in names {
        if v.iter().any(|p| p.package == name) {
            continue;
        }
        let deb = download(cache, name, None)?;
        let root = extract(&deb, &cache.join(format!("{name}-root")))?;
        v.push(Package {
            package: name.to_string(),
            version: deb_version(&deb)?,
            root,
        });
    }
    Ok(v)
}

/// The `Version` field of a `.deb`.
fn deb_version(deb: &Path) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg("Version")
        .output()
        .context("running dpkg-deb -f")?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || v.is_empty() {
        bail!("dpkg-deb -f {} Version failed", deb.display());
    }
    Ok(v)
}

/// Adds `programs` (from `pkgs`) to `fs`, with their links,
/// ELF interpreter and the closure of their `DT_NEEDED` sonames, each found in the first of
/// `pkgs` (in [`LIBRARY_DIRS`]) that has it. Symlinks in a package stay symlinks.
fn add_programs(
    fs: &mut Rootfs,
    programs: &[Program],
    pkgs: &[Package],
    dlopened: &[&str],
) -> Result<()> {
    // (package index, file path, what needs it) still to be read for its DT_NEEDED.
    let mut todo: Vec<(usize, String, String)> = Vec::new();
    for prog in programs {
        let i = pkgs
            .iter()
            .position(|p| p.package == prog.package)
            .with_context(|| format!("package {} not downloaded", prog.package))?;
        let file = install(fs, &pkgs[i].root, prog.path)?;
        let (dir, base) = prog.path.rsplit_once('/').unwrap_or(("", prog.path));
        for link in prog.links {
            let at = format!("{dir}/{link}");
            if std::fs::symlink_metadata(pkgs[i].root.join(&at)).is_err() {
                bail!(
                    "{} has no {at} (is {link} still one of its names?)",
                    prog.package
                );
            }
            fs.add(CpioEntry::symlink(&at, base));
        }
        todo.push((i, file, format!("{} ({})", prog.path, prog.package)));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut done = std::collections::BTreeSet::new();
    while let Some((i, file, who)) = todo.pop() {
        if !done.insert(file.clone()) {
            continue;
        }
        let path = pkgs[i].root.join(&file);
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let info = dynamic_info(&data).with_context(|| format!("reading {}", path.display()))?;
        if let Some(interp) = info.interp {
            let rel = interp.trim_start_matches('/');
            let j = pkgs
                .iter()
                .position(|p| std::fs::symlink_metadata(p.root.join(rel)).is_ok())
                .with_context(|| {
                    format!(
                        "no package of {} has the ELF interpreter {interp} that {file} names",
                        package_list(pkgs)
                    )
                })?;
            let f = install(fs, &pkgs[j].root, rel)?;
            todo.push((j, f, file.clone()));
        }
        let extra = dlopened.iter().map(|s| s.to_string());
        for soname in info.needed.into_iter().chain(extra) {
            if !seen.insert(soname.clone()) {
                continue;
            }
            let found = pkgs.iter().enumerate().find_map(|(j, p)| {
                LIBRARY_DIRS
                    .iter()
                    .map(|d| format!("{d}/{soname}"))
                    .find(|rel| std::fs::symlink_metadata(p.root.join(rel)).is_ok())
                    .map(|rel| (j, rel))
            });
            let Some((j, rel)) = found else {
                bail!(
                    "shared library {soname} (needed by {file}, from {who}) is in none of {} \
                     (under {}): add the package that ships it to LIBRARY_PACKAGES in \
                     tools/src/guest_image.rs",
                    package_list(pkgs),
                    LIBRARY_DIRS.join(", ")
                );
            };
            let f = install(fs, &pkgs[j].root, &rel)?;
            todo.push((j, f, file.clone()));
        }
    }
    Ok(())
}

fn package_list(pkgs: &[Package]) -> String {
    pkgs.iter()
        .map(|p| p.package.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds `path` of the package tree `root` to `fs`: a symlink as a symlink, then what it points
/// at (inside `root`: an absolute target is taken from the package's root), until a regular
/// file, which is added with its permission bits. Returns that file's path.
fn install(fs: &mut Rootfs, root: &Path, path: &str) -> Result<String> {
    let mut path = path.trim_start_matches('/').to_string();
    for _ in 0..16 {
        let full = root.join(&path);
        let meta = std::fs::symlink_metadata(&full)
            .with_context(|| format!("{} is missing", full.display()))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full)?;
            let target = target
                .to_str()
                .with_context(|| format!("{} points at a non-UTF-8 name", full.display()))?;
            fs.add(CpioEntry::symlink(&path, target));
            path = resolve_link(&path, target);
            continue;
        }
        if !meta.is_file() {
            bail!("{} is not a regular file", full.display());
        }
        use std::os::unix::fs::PermissionsExt;
        let perm = meta.permissions().mode() & 0o777;
        let data = std::fs::read(&full).with_context(|| format!("reading {}", full.display()))?;
        fs.add(CpioEntry::file(&path, perm, data));
        return Ok(path);
    }
    bail!(
        "too many levels of symlinks at {}",
        root.join(&path).display()
    )
}

/// The path (relative to the root, normalized) that the symlink at `link` (relative to the root)
/// with the content `target` points at.
fn resolve_link(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut v: Vec<&str> = link.split('/').filter(|c| !c.is_empty()).collect();
        v.pop();
        v
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// What the dynamic loader needs of an ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicInfo {
    /// The `PT_INTERP` path (executables only).
    pub interp: Option<String>,
    /// The `DT_NEEDED` sonames, in order.
    pub needed: Vec<String>,
}

/// Checks that `elf` is a little-endian x86-64 ELF64 file; the offset, entry size and count
/// of its program headers.
fn program_headers(elf: &[u8]) -> Result<(usize, usize, usize)> {
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        bail!("not a little-endian ELF64 file");
    }
    if le(elf, 0x12, 2)? != 62 {
        bail!("not an x86-64 ELF (e_machine {})", le(elf, 0x12, 2)?);
    }
    let phoff = le(elf, 0x20, 8)? as usize;
    let phentsize = le(elf, 0x36, 2)? as usize;
    let phnum = le(elf, 0x38, 2)? as usize;
    if phentsize < 56 {
        bail!("bad program header size {phentsize}");
    }
    Ok((phoff, phentsize, phnum))
}

/// The `PT_INTERP` path and `DT_NEEDED` sonames of a little-endian x86-64 ELF64 file (none for
/// a static one). `DT_STRTAB` is an address, mapped to the file through the `PT_LOAD`s.
pub fn dynamic_info(elf: &[u8]) -> Result<DynamicInfo> {
    let (phoff, phentsize, phnum) = program_headers(elf)?;
    let cstr = |b: &[u8]| -> Result<String> {
        let end = b
            .iter()
            .position(|&c| c == 0)
            .context("unterminated string")?;
        Ok(std::str::from_utf8(&b[..end])
            .context("non-UTF-8 string")?
            .to_string())
    };
    let mut info = DynamicInfo::default();
    // (vaddr, offset, filesz) of each PT_LOAD.
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff
            .checked_add(i * phentsize)
            .context("program header out of range")?;
        let off = le(elf, ph + 8, 8)? as usize;
        let filesz = le(elf, ph + 32, 8)? as usize;
        let data = elf
            .get(off..off.checked_add(filesz).context("segment out of range")?)
            .with_context(|| format!("segment {i} out of range"))?;
        match le(elf, ph, 4)? {
            1 => loads.push((le(elf, ph + 16, 8)?, off, filesz)),
            2 => dynamic = Some(data),
            3 => info.interp = Some(cstr(data).context("PT_INTERP")?),
            _ => {}
        }
    }
    let Some(dynamic) = dynamic else {
        return Ok(info);
    };
    let (mut strtab, mut strsz, mut needed) = (None, None, Vec::new());
    for d in dynamic.chunks_exact(16) {
        let (tag, val) = (le(d, 0, 8)?, le(d, 8, 8)?);
        match tag {
            0 => break,
            1 => needed.push(val as usize),
            5 => strtab = Some(val),
            10 => strsz = Some(val as usize),
            _ => {}
        }
    }
    if needed.is_empty() {
        return Ok(info);
    }
    let strtab = strtab.context("DT_NEEDED without DT_STRTAB")?;
    let off = loads
        .iter()
        .find(|&&(va, _, sz)| va <= strtab && strtab - va < sz as u64)
        .map(|&(va, off, _)| off + (strtab - va) as usize)
        .context("DT_STRTAB is in no PT_LOAD")?;
    let end = strsz.map_or(elf.len(), |n| off.saturating_add(n).min(elf.len()));
    let table = elf.get(off..end).context("DT_STRTAB out of range")?;
    for n in needed {
        let s = table
            .get(n..)
            .context("DT_NEEDED out of the string table")?;
        info.needed.push(cstr(s).context("DT_NEEDED")?);
    }
    Ok(info)
}

/// A 189-byte static x86-64 Linux program that prints the TSC in decimal and
/// exits: `/bin/rdtsc`, which busybox lacks. Under Bochs with `clock:
/// sync=none` the TSC counts emulated instructions since power-on, so the
/// bare-Bochs benchmark reads its cost to `/init` from inside the guest.
pub fn rdtsc_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    #[rustfmt::skip]
    let code: [u8; 69] = [
        0x0F, 0x31,                         // rdtsc
        0x48, 0xC1, 0xE2, 0x20,             // shl rdx, 32
        0x48, 0x09, 0xD0,                   // or rax, rdx
        0x48, 0x8D, 0x74, 0x24, 0xF0,       // lea rsi, [rsp-16]
        0xC6, 0x06, 0x0A,                   // mov byte [rsi], '\n'
        0xB9, 0x0A, 0x00, 0x00, 0x00,       // mov ecx, 10
        0x31, 0xD2,                         // 1: xor edx, edx
        0x48, 0xF7, 0xF1,                   // div rcx
        0x80, 0xC2, 0x30,                   // add dl, '0'
        0x48, 0xFF, 0xCE,                   // dec rsi
        0x88, 0x16,                         // mov [rsi], dl
        0x48, 0x85, 0xC0,                   // test rax, rax
        0x75, 0xEE,                         // jnz 1b
        0x48, 0x8D, 0x54, 0x24, 0xF1,       // lea rdx, [rsp-15]
        0x48, 0x29, 0xF2,                   // sub rdx, rsi
        0xB8, 0x01, 0x00, 0x00, 0x00,       // mov eax, 1 (write)
        0xBF, 0x01, 0x00, 0x00, 0x00,       // mov edi, 1
        0x0F, 0x05,                         // syscall
        0xB8, 0x3C, 0x00, 0x00, 0x00,       // mov eax, 60 (exit)
        0x31, 0xFF,                         // xor edi, edi
        0x0F, 0x05,                         // syscall
    ];
    let total = (64 + 56 + code.len()) as u64;
    let mut e = Vec::with_capacity(total as usize);
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3Eu16.to_le_bytes()); // x86-64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + 120).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0, BASE, BASE, total, total, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&code);
    e
}

/// `apt-get download` of `package` (at `version`) into `cache` as `<package>.deb`, once.
fn download(cache: &Path, package: &str, version: Option<&str>) -> Result<PathBuf> {
    let dest = cache.join(format!("{package}.deb"));
    if dest.exists() {
        return Ok(dest);
    }
    let spec = match version {
        Some(v) => format!("{package}={v}"),
        None => package.to_string(),
    };
    let mut got = download_to(&dest, &spec, package);
    if got.is_err() && apt_update_once()? {
        got = download_to(&dest, &spec, package);
    }
    got?;
    println!(
        "guest image: downloaded {package} {}",
        deb_version(&dest).unwrap_or_else(|_| "(version unknown)".into())
    );
    Ok(dest)
}

/// `apt-get download <spec>` (of `package`) to the file `dest`. apt checks what it fetched
/// against the SHA-256 in its index, whose signature it checked at `apt-get update`.
fn download_to(dest: &Path, spec: &str, package: &str) -> Result<()> {
    let parent = dest.parent().context("download destination")?;
    // Into a directory of its own: two builds at once (`make test` beside `make bench`) each
    // find only their own file, and `dest` appears whole.
    let tmp = parent.join(format!(".download-{package}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let out = Command::new("apt-get")
        .arg("download")
        .arg(spec)
        .current_dir(&tmp)
        .output()
        .context("running apt-get download")?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        bail!(
            "apt-get download {spec} failed (run `apt-get update`; if Debian no longer \
             carries that version, choose another with {} or put the package at {}):\n{}",
            guest_kernel::GUEST_KERNEL_ENV,
            dest.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let found = std::fs::read_dir(&tmp)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .with_context(|| format!("apt-get download left no {package} package"));
    let moved = found.and_then(|f| Ok(std::fs::rename(f, dest)?));
    let _ = std::fs::remove_dir_all(&tmp);
    moved
}

/// The SHA-256 of `file`, in hex.
fn sha256_file(file: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        use std::io::Read;
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", file.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Copies `from` to `to` through a temporary file beside `to` and a rename.
fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    std::fs::copy(from, &tmp).with_context(|| format!("copying {}", from.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("renaming to {}", to.display()))
}

/// `dpkg-deb -x` of `deb` into `root`, once.
fn extract(deb: &Path, root: &Path) -> Result<PathBuf> {
    if root.exists() {
        return Ok(root.to_path_buf());
    }
    let tmp = root.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&tmp)
        .status()
        .context("running dpkg-deb")?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    // Another build may have extracted it meanwhile: then its copy stays.
    if let Err(e) = std::fs::rename(&tmp, root) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !root.exists() {
            return Err(e).with_context(|| format!("moving {} into place", root.display()));
        }
    }
    Ok(root.to_path_buf())
}

fn le(b: &[u8], off: usize, n: usize) -> Result<u64> {
    let s = b.get(off..off + n).context("truncated image")?;
    Ok(s.iter().rev().fold(0, |a, &x| (a << 8) | x as u64))
}

/// The compressed payload of a bzImage (boot protocol `payload_offset`/`payload_length`).
pub fn bzimage_payload(bz: &[u8]) -> Result<&[u8]> {
    if le(bz, 0x202, 4)? != u32::from_le_bytes(*b"HdrS") as u64 {
        bail!("not a bzImage (no HdrS)");
    }
    let setup_sects = match bz[0x1F1] {
        0 => 4,
        n => n as usize,
    };
    let start = (setup_sects + 1) * 512 + le(bz, 0x248, 4)? as usize;
    let len = le(bz, 0x24C, 4)? as usize;
    bz.get(start..start + len)
        .context("bzImage payload out of range")
}

/// The compression of a bzImage's payload, by its magic.
pub fn bzimage_compression(bz: &[u8]) -> Result<Compression> {
    let payload = bzimage_payload(bz)?;
    Compression::detect(payload).with_context(|| {
        format!(
            "the bzImage payload starts {:02x?}: none of {}",
            &payload[..payload.len().min(8)],
            Compression::ALL.map(Compression::name).join(", ")
        )
    })
}

/// The uncompressed kernel ELF inside a bzImage: its payload (gzip, bzip2, lzma, xz, lzo, lz4
/// or zstd, told by its magic) decompressed, checked against the size word that ends the
/// payload, and checked to be an x86-64 ELF64 executable with loadable segments.
pub fn vmlinux_from_bzimage(bz: &[u8]) -> Result<Vec<u8>> {
    let payload = bzimage_payload(bz)?;
    let kind = bzimage_compression(bz)?;
    let size = le(payload, payload.len().saturating_sub(4), 4)? as usize;
    let elf = decompress::decompress(kind, payload, Some(size))
        .with_context(|| format!("the {kind} payload"))?;
    let segments = load_segments(&elf)?;
    if segments.is_empty() {
        bail!("the kernel ELF has no PT_LOAD segment");
    }
    Ok(elf)
}

/// One PT_LOAD program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// Guest-physical load address.
    pub paddr: u64,
    /// Virtual address.
    pub vaddr: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// Bytes in memory (the rest zero-filled).
    pub memsz: u64,
}

/// The entry point and PT_LOAD segments of a little-endian x86-64 ELF64 executable.
pub fn load_segments(elf: &[u8]) -> Result<Vec<LoadSegment>> {
    let (phoff, phentsize, phnum) = program_headers(elf)?;
    let mut v = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if le(elf, ph, 4)? != 1 {
            continue;
        }
        let seg = LoadSegment {
            vaddr: le(elf, ph + 16, 8)?,
            paddr: le(elf, ph + 24, 8)?,
            filesz: le(elf, ph + 32, 8)?,
            memsz: le(elf, ph + 40, 8)?,
        };
        let off = le(elf, ph + 8, 8)? as usize;
        if elf.len() < off.saturating_add(seg.filesz as usize) || seg.filesz > seg.memsz {
            bail!("PT_LOAD segment {i} out of range");
        }
        v.push(seg);
    }
    Ok(v)
}

/// Writes `data` to `path` through a temporary file beside it and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// A one-line description of the image files, for `xenolith-tools guest-image`.
pub fn describe(paths: &Paths, img: &GuestImage) -> Result<String> {
    let c = choice()?;
    let bz = std::fs::read(&img.bzimage)?;
    let mut s = format!(
        "guest image: Debian {} {} ({} asked for; {}=<package> chooses), release {}, \
         {} bzImage\n",
        c.package,
        c.version,
        c.requested,
        guest_kernel::GUEST_KERNEL_ENV,
        KERNEL_RELEASE,
        bzimage_compression(&bz)?,
    );
    if let Some(sha) = &c.sha256 {
        s.push_str(&format!("  .deb SHA-256 {sha} (apt's index)\n"));
    }
    for (what, p) in [
        ("bzImage", &img.bzimage),
        ("vmlinux", &img.vmlinux),
        ("initramfs", &img.initramfs),
    ] {
        let len = std::fs::metadata(p)
            .with_context(|| format!("reading {}", p.display()))?
            .len();
        s.push_str(&format!("  {what:<10} {} ({len} bytes)\n", paths.show(p)));
    }
    if let Ok(m) = std::fs::read_to_string(kernel_dir(paths, &c).join("userland")) {
        s.push_str("  initramfs userland packages (Debian, unpinned):\n");
        for line in m.lines() {
            s.push_str(&format!("    {line}\n"));
        }
    }
    let elf = std::fs::read(&img.vmlinux)?;
    s.push_str(&format!("  vmlinux entry {:#x}\n", le(&elf, 0x18, 8)?));
    for seg in load_segments(&elf)? {
        s.push_str(&format!(
            "  PT_LOAD paddr {:#010x} vaddr {:#x} filesz {:#x} memsz {:#x}\n",
            seg.paddr, seg.vaddr, seg.filesz, seg.memsz
        ));
    }
    Ok(s)
}

/// Rewrites an ELF64 so that each PT_LOAD segment's file data drops its
/// trailing zeros (the loader zero-fills up to `p_memsz`) and section headers
/// go: about half of Debian's vmlinux is zeros, and the hypervisor's boot
/// modules are read through the BIOS. Other segments with file data (PT_NOTE:
/// the Xen and PVH ELF notes) keep pointing at their bytes: inside the kept
/// part of a PT_LOAD they move with it, elsewhere they are copied to the end.
pub fn trim_elf(elf: &[u8]) -> Result<Vec<u8>> {
    if elf.get(..4) != Some(b"\x7fELF") || elf[4] != 2 {
        bail!("not an ELF64 file");
    }
    let phoff = le(elf, 0x20, 8)? as usize;
    let phentsize = le(elf, 0x36, 2)? as usize;
    let phnum = le(elf, 0x38, 2)? as usize;
    let headers_end = phoff + phentsize * phnum;
    let mut out = elf
        .get(..headers_end)
        .context("truncated headers")?
        .to_vec();
    // (old offset, kept length, new offset) of each PT_LOAD.
    let mut moved: Vec<(usize, usize, usize)> = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if le(elf, ph, 4)? != 1 {
            continue;
        }
        let off = le(elf, ph + 8, 8)? as usize;
        let filesz = le(elf, ph + 32, 8)? as usize;
        let data = elf
            .get(off..off.saturating_add(filesz))
            .context("segment out of range")?;
        let keep = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let new_off = out.len().next_multiple_of(4096);
        out.resize(new_off, 0);
        out.extend_from_slice(&data[..keep]);
        out[ph + 8..ph + 16].copy_from_slice(&(new_off as u64).to_le_bytes());
        out[ph + 32..ph + 40].copy_from_slice(&(keep as u64).to_le_bytes());
        moved.push((off, keep, new_off));
    }
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let filesz = le(elf, ph + 32, 8)? as usize;
        if le(elf, ph, 4)? == 1 || filesz == 0 {
            continue;
        }
        let off = le(elf, ph + 8, 8)? as usize;
        let end = off.saturating_add(filesz);
        let inside = moved
            .iter()
            .find(|&&(o, k, _)| o <= off && end <= o + k)
            .map(|&(o, _, n)| n + (off - o));
        let new_off = match inside {
            Some(n) => n,
            None => {
                let data = elf.get(off..end).context("segment out of range")?;
                let n = out.len().next_multiple_of(8);
                out.resize(n, 0);
                out.extend_from_slice(data);
                n
            }
        };
        out[ph + 8..ph + 16].copy_from_slice(&(new_off as u64).to_le_bytes());
    }
    // No section headers.
    out[0x28..0x30].fill(0);
    out[0x3C..0x40].fill(0);
    Ok(out)
}

/// One member of a cpio archive.
pub struct CpioEntry {
    name: String,
    mode: u32,
    data: Vec<u8>,
}

impl CpioEntry {
    /// A directory.
    pub fn dir(name: &str) -> Self {
        CpioEntry {
            name: name.to_string(),
            mode: 0o040_755,
            data: Vec::new(),
        }
    }
    /// A regular file with permission bits `perm`.
    pub fn file(name: &str, perm: u32, data: Vec<u8>) -> Self {
        CpioEntry {
            name: name.to_string(),
            mode: 0o100_000 | perm,
            data,
        }
    }
    /// A symbolic link to `target`.
    pub fn symlink(name: &str, target: &str) -> Self {
        CpioEntry {
            name: name.to_string(),
            mode: 0o120_777,
            data: target.as_bytes().to_vec(),
        }
    }
}

/// An uncompressed "newc" cpio archive, as the kernel's initramfs unpacker reads it.
pub fn cpio_newc(entries: &[CpioEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let pad4 = |out: &mut Vec<u8>| out.resize(out.len().next_multiple_of(4), 0);
    let trailer = CpioEntry {
        name: "TRAILER!!!".into(),
        mode: 0,
        data: Vec::new(),
    };
    for (ino, e) in entries.iter().chain(std::iter::once(&trailer)).enumerate() {
        let fields = [
            ino as u32 + 1,
            e.mode,
            0,
            0,
            1,
            0,
            e.data.len() as u32,
            0,
            0,
            0,
            0,
            e.name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(e.name.as_bytes());
        out.push(0);
        pad4(&mut out);
        out.extend_from_slice(&e.data);
        pad4(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_found_from_the_setup_header() {
        let mut bz = vec![0u8; 5 * 512 + 64];
        bz[0x1F1] = 4;
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x248..0x24C].copy_from_slice(&16u32.to_le_bytes());
        bz[0x24C..0x250].copy_from_slice(&8u32.to_le_bytes());
        bz[5 * 512 + 16..5 * 512 + 24].copy_from_slice(b"\xfd7zXZ\0ab");
        assert_eq!(bzimage_payload(&bz).unwrap(), b"\xfd7zXZ\0ab");
        bz[0x202] = b'X';
        assert!(bzimage_payload(&bz).is_err());
    }

    /// A bzImage-like buffer: a 1-sector setup, then the protected-mode part with `payload` at
    /// offset 0x40 (as in Linux's boot protocol 2.08+).
    fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let mut bz = vec![0u8; 2 * 512 + 0x40];
        bz[0x1F1] = 1;
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x248..0x24C].copy_from_slice(&0x40u32.to_le_bytes());
        bz[0x24C..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        bz.extend_from_slice(payload);
        bz.extend_from_slice(&[0xAA; 100]); // what follows the payload in a real image
        bz
    }

    use crate::decompress::testing::compress;

    /// A payload as Linux's build makes it: `data` compressed, then its size (`size_append`).
    fn payload(kind: Compression, data: &[u8]) -> Vec<u8> {
        let mut p = compress(kind, data);
        p.extend_from_slice(&(data.len() as u32).to_le_bytes());
        p
    }

    /// A small real x86-64 ELF standing in for the kernel, padded (as a kernel's image is
    /// mostly zeros and code) so that every format has work to do.
    fn small_kernel() -> Vec<u8> {
        let mut elf = rdtsc_elf();
        elf.extend((0..20_000u32).map(|i| (i % 7) as u8));
        elf
    }

    #[test]
    fn vmlinux_comes_out_of_a_bzimage_in_every_compression() {
        let elf = small_kernel();
        for kind in Compression::ALL {
            let bz = fake_bzimage(&payload(kind, &elf));
            assert_eq!(bzimage_compression(&bz).unwrap(), kind);
            let out = vmlinux_from_bzimage(&bz).unwrap_or_else(|e| panic!("{kind}: {e:#}"));
            assert!(out == elf, "{kind}: wrong vmlinux");
            let segs = load_segments(&out).unwrap();
            assert_eq!(segs.len(), 1);
            assert_eq!(segs[0].paddr, 0x40_0000);

            // A size word that does not match.
            let mut p = payload(kind, &elf);
            let n = p.len();
            p[n - 4] ^= 1;
            let e = vmlinux_from_bzimage(&fake_bzimage(&p)).unwrap_err();
            assert!(format!("{e:#}").contains("size word"), "{kind}: {e:#}");
            // Compressed right, but not an ELF inside.
            let text = b"plain text, not an ELF, plain text, not an ELF";
            let e = vmlinux_from_bzimage(&fake_bzimage(&payload(kind, text))).unwrap_err();
            assert!(format!("{e:#}").contains("ELF64"), "{kind}: {e:#}");
        }
        // An unknown compression is named by its first bytes.
        let e = vmlinux_from_bzimage(&fake_bzimage(b"\x7fELFnot compressed")).unwrap_err();
        assert!(format!("{e:#}").contains("none of gzip, bzip2"), "{e:#}");
    }

    #[test]
    fn modules_are_unpacked_to_plain_ko() {
        let base = std::env::temp_dir().join(format!("xenolith-mods-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let rel = "6.12.117+deb12-amd64";
        let md = base.join(format!("lib/modules/{rel}"));
        let put = |path: &str, data: &[u8]| {
            let p = md.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        let ko = |name: &str| {
            let mut v = b"\x7fELF\x02\x01\x01".to_vec();
            v.extend_from_slice(name.as_bytes());
            v.extend(vec![0u8; 3000]);
            v
        };
        put("kernel/a.ko.xz", &compress(Compression::Xz, &ko("a")));
        put("kernel/b.ko.zst", &compress(Compression::Zstd, &ko("b")));
        put("kernel/c.ko.gz", &compress(Compression::Gzip, &ko("c")));
        put("kernel/d.ko", &ko("d"));
        put("modules.builtin", b"kernel/e.ko\nkernel/other.ko\n");
        let all = [
            "kernel/a.ko",
            "kernel/b.ko",
            "kernel/c.ko",
            "kernel/d.ko",
            "kernel/e.ko",
            "kernel/f.ko",
        ];
        let mut fs = Rootfs::default();
        let notes = add_modules(&mut fs, &base, rel, &all, &["kernel/f.ko"]).unwrap();
        let files: std::collections::BTreeMap<&str, &[u8]> = fs
            .entries
            .iter()
            .filter(|e| e.mode & 0o170_000 == 0o100_000)
            .map(|e| (e.name.as_str(), &e.data[..]))
            .collect();
        let mods = format!("lib/modules/{rel}");
        for m in ["a", "b", "c", "d"] {
            let name = format!("{mods}/kernel/{m}.ko");
            assert_eq!(files.get(name.as_str()), Some(&&ko(m)[..]), "{name}");
        }
        assert_eq!(files.len(), 4, "{:?}", files.keys());
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("built into"), "{notes:?}");
        assert!(notes[1].contains("has no kernel/f.ko"), "{notes:?}");
        // A required module that is missing fails with its name.
        let e = add_modules(&mut Rootfs::default(), &base, rel, &["kernel/f.ko"], &[]).unwrap_err();
        assert!(format!("{e:#}").contains("kernel/f.ko"), "{e:#}");
        // A file whose data is not what its name says fails.
        put("kernel/g.ko.xz", &compress(Compression::Gzip, &ko("g")));
        let e = add_modules(&mut Rootfs::default(), &base, rel, &["kernel/g.ko"], &[]).unwrap_err();
        assert!(format!("{e:#}").contains("not xz data"), "{e:#}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_kernel_release_is_the_packaged_one() {
        let base = std::env::temp_dir().join(format!("xenolith-rel-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("boot")).unwrap();
        std::fs::write(base.join("boot/vmlinuz-6.1.0-57-amd64"), b"bz").unwrap();
        std::fs::write(base.join("boot/config-6.1.0-57-amd64"), b"cfg").unwrap();
        let mut c = KernelChoice {
            requested: "linux-image-amd64".into(),
            package: "linux-image-6.1.0-57-amd64".into(),
            version: "6.1.192-3".into(),
            sha256: None,
        };
        assert_eq!(kernel_release(&base, &c).unwrap(), "6.1.0-57-amd64");
        // A cloud metapackage would not lead to an amd64 release.
        c.requested = "linux-image-cloud-amd64".into();
        let e = kernel_release(&base, &c).unwrap_err();
        assert!(format!("{e:#}").contains("would not accept"), "{e:#}");
        // Two kernels in one package.
        std::fs::write(base.join("boot/vmlinuz-6.1.0-58-amd64"), b"bz").unwrap();
        assert!(kernel_release(&base, &c).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn sha256_of_a_file() {
        let p = std::env::temp_dir().join(format!("xenolith-sha-{}", std::process::id()));
        std::fs::write(&p, b"abc").unwrap();
        let h = sha256_file(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn load_segments_checks_the_machine() {
        let mut elf = rdtsc_elf();
        assert_eq!(load_segments(&elf).unwrap().len(), 1);
        elf[0x12] = 3; // EM_386
        assert!(load_segments(&elf).is_err());
        assert!(load_segments(b"\x7fELF").is_err());
    }

    #[test]
    fn test_scripts_are_the_sh_files() {
        let d = std::env::temp_dir().join(format!("xenolith-tests-{}", std::process::id()));
        assert!(test_scripts(&d).unwrap().is_empty(), "absent dir");
        std::fs::create_dir_all(d.join("sub.sh")).unwrap();
        std::fs::write(d.join("b.sh"), "B").unwrap();
        std::fs::write(d.join("a.sh"), "A").unwrap();
        std::fs::write(d.join("notes.txt"), "x").unwrap();
        let names: Vec<String> = test_scripts(&d).unwrap().into_iter().map(|t| t.0).collect();
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(names, ["a.sh", "b.sh"]);
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let p = std::env::temp_dir().join(format!("xenolith-atomic-{}", std::process::id()));
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        std::fs::remove_file(&p).unwrap();
    }

    fn elf_with_segment(data: &[u8], memsz: u64) -> Vec<u8> {
        let mut e = vec![0u8; 0x1000];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2;
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x28..0x30].copy_from_slice(&0x999u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3A].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        e[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        e[ph + 8..ph + 16].copy_from_slice(&0x1000u64.to_le_bytes());
        e[ph + 32..ph + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
        e[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        e.extend_from_slice(data);
        e
    }

    #[test]
    fn trimming_keeps_data_and_drops_trailing_zeros() {
        let mut data = vec![7u8; 100];
        data.extend(vec![0u8; 5000]);
        let t = trim_elf(&elf_with_segment(&data, 8192)).unwrap();
        let ph = 64;
        let off = le(&t, ph + 8, 8).unwrap() as usize;
        assert_eq!(le(&t, ph + 32, 8).unwrap(), 100);
        assert_eq!(le(&t, ph + 40, 8).unwrap(), 8192, "memsz kept");
        assert_eq!(&t[off..off + 100], &[7u8; 100][..]);
        assert_eq!(t.len(), off + 100);
        assert_eq!(le(&t, 0x28, 8).unwrap(), 0);
        assert!(trim_elf(b"not an elf at all").is_err());
    }

    /// Adds a second program header of type `p_type` over `off..off+len` to an
    /// [`elf_with_segment`] file.
    fn add_segment(e: &mut [u8], p_type: u32, off: u64, len: u64) {
        e[0x38..0x3A].copy_from_slice(&2u16.to_le_bytes());
        let ph = 64 + 56;
        e[ph..ph + 4].copy_from_slice(&p_type.to_le_bytes());
        e[ph + 8..ph + 16].copy_from_slice(&off.to_le_bytes());
        e[ph + 32..ph + 40].copy_from_slice(&len.to_le_bytes());
        e[ph + 40..ph + 48].copy_from_slice(&len.to_le_bytes());
    }

    #[test]
    fn trimming_keeps_notes_pointing_at_their_bytes() {
        // A note inside the PT_LOAD's data moves with it.
        let mut data = b"....NOTE-BYTES..".to_vec();
        data.extend(vec![0u8; 3000]);
        let mut e = elf_with_segment(&data, 8192);
        add_segment(&mut e, 4, 0x1004, 10);
        let t = trim_elf(&e).unwrap();
        let ph = 64 + 56;
        let off = le(&t, ph + 8, 8).unwrap() as usize;
        assert_eq!(&t[off..off + 10], b"NOTE-BYTES");
        assert_eq!(le(&t, ph + 32, 8).unwrap(), 10);

        // A note outside every PT_LOAD (here, in the headers' page) is copied to the end.
        let mut e = elf_with_segment(&data, 8192);
        e[0x800..0x808].copy_from_slice(b"XENNOTE!");
        add_segment(&mut e, 4, 0x800, 8);
        let t = trim_elf(&e).unwrap();
        let off = le(&t, ph + 8, 8).unwrap() as usize;
        assert_eq!(&t[off..off + 8], b"XENNOTE!");
        assert_eq!(off % 8, 0);
    }

    #[test]
    fn rdtsc_program_prints_a_number() {
        let dir = std::env::temp_dir().join(format!("xenolith-rdtsc-{}", std::process::id()));
        std::fs::write(&dir, rdtsc_elf()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new(&dir).output().unwrap();
        let _ = std::fs::remove_file(&dir);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.ends_with('\n'));
        assert!(text.trim().parse::<u64>().unwrap() > 0, "{text:?}");
    }

    #[test]
    fn cpio_layout() {
        let a = cpio_newc(&[
            CpioEntry::dir("bin"),
            CpioEntry::file("init", 0o755, b"#!/bin/sh\n".to_vec()),
        ]);
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 4, 0);
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("init\0"));
        assert!(text.contains("#!/bin/sh"));
        assert!(text.contains("TRAILER!!!"));
        // Mode of the file entry: 0100755.
        assert!(text.contains("000081ed"));
    }

    /// A dynamically linked x86-64 ELF64 executable (nothing runnable): one PT_LOAD over the
    /// whole file at 0x40_0000, PT_INTERP `interp` if any, PT_DYNAMIC with `needed`.
    fn dyn_elf(interp: Option<&str>, needed: &[&str]) -> Vec<u8> {
        const BASE: u64 = 0x40_0000;
        let mut strtab = vec![0u8];
        let mut offs = Vec::new();
        for n in needed {
            offs.push(strtab.len() as u64);
            strtab.extend_from_slice(n.as_bytes());
            strtab.push(0);
        }
        let phnum = 3u64;
        let interp_off = 64 + 56 * phnum;
        let interp_bytes = interp.map_or(Vec::new(), |i| format!("{i}\0").into_bytes());
        let str_off = interp_off + interp_bytes.len() as u64;
        let dyn_off = (str_off + strtab.len() as u64).next_multiple_of(8);
        let mut dynamic: Vec<(u64, u64)> = offs.iter().map(|&o| (1, o)).collect();
        dynamic.push((5, BASE + str_off));
        dynamic.push((10, strtab.len() as u64));
        dynamic.push((0, 0));
        let total = dyn_off + 16 * dynamic.len() as u64;
        let mut e = Vec::new();
        e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        e.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
        e.extend_from_slice(&0x3Eu16.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&BASE.to_le_bytes());
        e.extend_from_slice(&64u64.to_le_bytes());
        e.extend_from_slice(&0u64.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, phnum as u16, 64, 0, 0] {
            e.extend_from_slice(&v.to_le_bytes());
        }
        let ph = |e: &mut Vec<u8>, t: u32, off: u64, len: u64| {
            e.extend_from_slice(&t.to_le_bytes());
            e.extend_from_slice(&4u32.to_le_bytes());
            for v in [off, BASE + off, BASE + off, len, len, 8] {
                e.extend_from_slice(&v.to_le_bytes());
            }
        };
        ph(&mut e, 1, 0, total);
        // With no interpreter, a PT_NOTE stands in its slot.
        ph(
            &mut e,
            if interp.is_some() { 3 } else { 4 },
            interp_off,
            interp_bytes.len() as u64,
        );
        ph(&mut e, 2, dyn_off, 16 * dynamic.len() as u64);
        e.extend_from_slice(&interp_bytes);
        e.extend_from_slice(&strtab);
        e.resize(dyn_off as usize, 0);
        for (t, v) in dynamic {
            e.extend_from_slice(&t.to_le_bytes());
            e.extend_from_slice(&v.to_le_bytes());
        }
        e
    }

    #[test]
    fn dynamic_info_reads_interp_and_needed() {
        let e = dyn_elf(
            Some("/lib64/ld-linux-x86-64.so.2"),
            &["libfoo.so.1", "libc.so.6"],
        );
        let info = dynamic_info(&e).unwrap();
        assert_eq!(info.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(info.needed, ["libfoo.so.1", "libc.so.6"]);
        // A library: no interpreter.
        let info = dynamic_info(&dyn_elf(None, &["libc.so.6"])).unwrap();
        assert_eq!(info.interp, None);
        assert_eq!(info.needed, ["libc.so.6"]);
        // A static program: nothing.
        assert_eq!(dynamic_info(&rdtsc_elf()).unwrap(), DynamicInfo::default());
        // Broken files fail rather than miss a library.
        assert!(dynamic_info(b"\x7fELF").is_err());
        let mut bad = e.clone();
        bad.truncate(bad.len() - 40); // the dynamic array runs off the end
        assert!(dynamic_info(&bad).is_err());
        let mut i386 = e;
        i386[0x12] = 3;
        assert!(dynamic_info(&i386).is_err());
    }

    #[test]
    fn dynamic_info_agrees_with_the_host_shell() {
        // Debian's /bin/sh (dash) is dynamically linked against glibc.
        let Ok(sh) = std::fs::read("/bin/sh") else {
            return;
        };
        let info = dynamic_info(&sh).unwrap();
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{info:?}");
        assert!(info.interp.is_some_and(|i| i.contains("ld-linux")));
    }

    /// (name, mode, data) of each member of a newc archive, up to the trailer.
    fn cpio_members(a: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let field = |at: usize, i: usize| {
            let s = std::str::from_utf8(&a[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
            u32::from_str_radix(s, 16).unwrap() as usize
        };
        let mut v = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(&a[at..at + 6], b"070701");
            let (mode, size, namesize) = (field(at, 1), field(at, 6), field(at, 11));
            let name = std::str::from_utf8(&a[at + 110..at + 110 + namesize - 1]).unwrap();
            let data_at = (at + 110 + namesize).next_multiple_of(4);
            if name == "TRAILER!!!" {
                return v;
            }
            v.push((
                name.to_string(),
                mode as u32,
                a[data_at..data_at + size].to_vec(),
            ));
            at = (data_at + size).next_multiple_of(4);
        }
    }

    #[test]
    fn cpio_symlinks_hold_their_target() {
        let a = cpio_newc(&[
            CpioEntry::dir("usr/bin"),
            CpioEntry::file("usr/bin/xenstore", 0o755, b"ELF".to_vec()),
            CpioEntry::symlink("usr/bin/xenstore-ls", "xenstore"),
            CpioEntry::symlink("lib64/ld.so", "/lib/x86_64-linux-gnu/ld.so"),
        ]);
        let m = cpio_members(&a);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[2],
            (
                "usr/bin/xenstore-ls".into(),
                0o120_777,
                b"xenstore".to_vec()
            )
        );
        assert_eq!(m[3].2, b"/lib/x86_64-linux-gnu/ld.so");
        assert_eq!(m[1].1, 0o100_755);
        assert_eq!(m[0].1, 0o040_755);
    }

    #[test]
    fn rootfs_makes_parents_first_and_each_path_once() {
        let mut fs = Rootfs::default();
        fs.add(CpioEntry::file("a/b/c", 0o644, b"1".to_vec()));
        fs.add(CpioEntry::file("a/b/c", 0o644, b"2".to_vec()));
        fs.add(CpioEntry::dir("a"));
        fs.add(CpioEntry::symlink("a/d", "b/c"));
        let names: Vec<&str> = fs.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c", "a/d"]);
        assert_eq!(fs.entries[2].data, b"1");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        assert_eq!(
            resolve_link(
                "usr/lib/x86_64-linux-gnu/libxenstore.so.4",
                "libxenstore.so.4.0"
            ),
            "usr/lib/x86_64-linux-gnu/libxenstore.so.4.0"
        );
        assert_eq!(
            resolve_link(
                "lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
            ),
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        );
        assert_eq!(resolve_link("usr/bin/x", "../lib/./y"), "usr/lib/y");
    }

    #[test]
    fn programs_come_with_their_library_closure() {
        use std::os::unix::fs::symlink;
        let base = std::env::temp_dir().join(format!("xenolith-closure-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let put = |pkg: &str, path: &str, data: &[u8]| {
            let p = base.join(pkg).join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
        };
        let link = |pkg: &str, path: &str, target: &str| {
            let p = base.join(pkg).join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            symlink(target, p).unwrap();
        };
        let interp = "/lib64/ld-linux-x86-64.so.2";
        put(
            "tool",
            "usr/bin/tool",
            &dyn_elf(Some(interp), &["libfoo.so.1", "libc.so.6"]),
        );
        put("tool", "usr/bin/tool-ls", b"hard link");
        put(
            "libfoo",
            "usr/lib/x86_64-linux-gnu/libfoo.so.1.2",
            &dyn_elf(None, &["libc.so.6"]),
        );
        link(
            "libfoo",
            "usr/lib/x86_64-linux-gnu/libfoo.so.1",
            "libfoo.so.1.2",
        );
        put(
            "libc",
            "lib/x86_64-linux-gnu/libc.so.6",
            &dyn_elf(None, &["ld-linux-x86-64.so.2"]),
        );
        put(
            "libc",
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            &dyn_elf(None, &[]),
        );
        put(
            "libc",
            "lib/x86_64-linux-gnu/libm.so.6",
            &dyn_elf(None, &[]),
        );
        link(
            "libc",
            "lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        );
        let pkgs: Vec<Package> = ["tool", "libfoo", "libc"]
            .iter()
            .map(|p| Package {
                package: p.to_string(),
                version: "1".into(),
                root: base.join(p),
            })
            .collect();
        let progs = [Program {
            package: "tool",
            path: "usr/bin/tool",
            links: &["tool-ls"],
        }];
        let mut fs = Rootfs::default();
        add_programs(&mut fs, &progs, &pkgs, &[]).unwrap();
        let got: std::collections::BTreeMap<&str, (u32, &[u8])> = fs
            .entries
            .iter()
            .filter(|e| e.mode & 0o170_000 != 0o040_000)
            .map(|e| (e.name.as_str(), (e.mode & 0o170_000, &e.data[..])))
            .collect();
        let names: Vec<&str> = got.keys().copied().collect();
        assert_eq!(
            names,
            [
                "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "lib/x86_64-linux-gnu/libc.so.6",
                "lib64/ld-linux-x86-64.so.2",
                "usr/bin/tool",
                "usr/bin/tool-ls",
                "usr/lib/x86_64-linux-gnu/libfoo.so.1",
                "usr/lib/x86_64-linux-gnu/libfoo.so.1.2",
            ],
            "libm is not needed and stays out"
        );
        assert_eq!(got["usr/bin/tool-ls"], (0o120_000, &b"tool"[..]));
        // A soname only dlopen()ed is taken when listed.
        let mut with_libm = Rootfs::default();
        add_programs(&mut with_libm, &progs, &pkgs, &["libm.so.6"]).unwrap();
        assert!(
            with_libm
                .entries
                .iter()
                .any(|e| e.name.ends_with("/libm.so.6")),
            "a listed dlopened library goes in"
        );
        assert_eq!(
            got["lib64/ld-linux-x86-64.so.2"],
            (
                0o120_000,
                &b"/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"[..]
            )
        );
        assert_eq!(got["usr/lib/x86_64-linux-gnu/libfoo.so.1"].0, 0o120_000);
        assert_eq!(got["lib/x86_64-linux-gnu/libc.so.6"].0, 0o100_000);

        // A soname no package has fails with its name.
        put(
            "tool",
            "usr/bin/tool",
            &dyn_elf(Some(interp), &["libmissing.so.7"]),
        );
        let e = add_programs(&mut Rootfs::default(), &progs, &pkgs, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("libmissing.so.7"), "{e:#}");
        // So does a link name the package lacks.
        let bad = [Program {
            links: &["tool-rm"],
            ..progs[0]
        }];
        let e = add_programs(&mut Rootfs::default(), &bad, &pkgs, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("tool-rm"), "{e:#}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
