//! Domains from the user's own `xl.cfg` files: `xenolith-tools run <a.cfg> ...` and
//! `xenolith-tools iso -o <file.iso> <a.cfg> ...`.
//!
//! Each file is checked with the hypervisor's own parser (crate `domcfg`), so a bad key is
//! reported here, with the file and line, before anything boots. The file keys (`kernel`,
//! `ramdisk`) are host paths, relative to the directory of the configuration file; each file
//! becomes a boot module and the configuration put on the ISO names the module instead (a
//! setting appended at its end, since the last setting of a key wins). A kernel must be an ELF
//! image or a bzImage.

use std::path::{Path, PathBuf};

use ::tests::{DomainSpec, Module, ModuleSource, Scenario};
use anyhow::{bail, Context, Result};

/// The name of the scenario (and `build/<name>/`) that boots the user's domains.
pub const SCENARIO_NAME: &str = "user";
/// The keys whose values are host files, in the order their modules are listed.
/// (`kernel` stands for the boot image: `firmware_override` or `firmware` when one is given.)
pub const FILE_KEYS: &[&str] = &["kernel", "ramdisk"];
/// How long `run` lets the user's domains run (a day: they end when they power off).
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether a `run`/`iso` argument names a configuration file rather than a scenario.
pub fn is_config_arg(arg: &str) -> bool {
    arg.ends_with(".cfg") || arg.contains('/')
}

/// Why the hypervisor could not boot `bytes` as a kernel: `None` for an ELF image or a
/// bzImage its loader takes (the same `loader::parse_bzimage` the hypervisor runs).
fn kernel_problem(bytes: &[u8], pvh_entry: bool) -> Option<String> {
    if bytes.starts_with(b"\x7fELF") {
        // A PVH domain or a firmware is entered through the image's PVH note, which the
        // hypervisor reads as this does; otherwise the ELF must be 64-bit (its entry is
        // entered in long mode).
        if !pvh_entry {
            return (bytes.get(4) == Some(&1)).then(|| {
                "is a 32-bit ELF: boot it through its PVH note (type = \"pvh\" or \
                 firmware_override)"
                    .to_string()
            });
        }
        return hypercalls::pvh::pvh_entry(bytes)
            .err()
            .map(|e| format!("has no usable PVH entry: {e}"));
    }
    match loader::parse_bzimage(bytes) {
        Ok(_) => None,
        Err(loader::BzImageError::NotBzImage) => {
            Some("is neither an ELF image nor a bzImage".to_string())
        }
        Err(e) => Some(format!("is a bzImage the hypervisor cannot boot: {e}")),
    }
}

/// A module name for host file `path`: its file name with anything outside `[A-Za-z0-9._-]`
/// made `_`, and `d<N>-` in front when another file already took that name.
fn module_name(path: &Path, domain: usize, taken: &[(String, PathBuf)]) -> String {
    let base: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = match base.as_str() {
        "" | "." | ".." | "grub" | "xenolith.elf" => format!("file-{base}"),
        b if b.starts_with('d') && b.ends_with(".cfg") => format!("file-{base}"),
        _ => base,
    };
    let clash = |n: &str| taken.iter().any(|(t, p)| t == n && p != path);
    if clash(&base) {
        format!("d{}-{base}", domain + 1)
    } else {
        base
    }
}

/// Where the ELF taken out of bzImage `bzimage` goes: `build/user-images/<name>.elf`, the name
/// made of the bzImage's canonical path so that two images never share a file.
fn extracted_elf_path(bzimage: &Path) -> Result<PathBuf> {
    let dir = crate::paths::Paths::discover()?
        .build_dir()
        .join("user-images");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let canonical = std::fs::canonicalize(bzimage).unwrap_or_else(|_| bzimage.to_path_buf());
    let name: String = canonical
        .to_string_lossy()
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(dir.join(format!("{name}.elf")))
}

/// The domain of configuration file `cfg_path` (the `domain`-th, 0-based): its text checked,
/// its files found and named as modules. `taken` lists the module names given so far, with
/// their files; the new ones are added.
pub fn domain_from_config(
    cfg_path: &Path,
    domain: usize,
    taken: &mut Vec<(String, PathBuf)>,
) -> Result<DomainSpec> {
    let show = cfg_path.display();
    let text = std::fs::read_to_string(cfg_path).with_context(|| format!("{show}: reading it"))?;
    let cfg = domcfg::parse(&text).map_err(|e| anyhow::anyhow!("{show}: {e}"))?;
    let dir = cfg_path.parent().unwrap_or(Path::new("."));
    let mut config = text.clone();
    if !config.ends_with('\n') {
        config.push('\n');
    }
    config.push_str("# xenolith-tools: the boot modules holding the files named above\n");
    let mut modules = Vec::new();
    // A firmware (`firmware_override`, else `firmware`) names the boot image instead of `kernel`.
    let image_key = match (cfg.firmware, domcfg::key_line(&text, "firmware_override")) {
        (false, _) => "kernel",
        (true, Some(_)) => "firmware_override",
        (true, None) => "firmware",
    };
    let pvh_entry = cfg.pvh_entry();
    for &key in FILE_KEYS {
        let (key, value) = match key {
            "kernel" => (image_key, Some(cfg.kernel.as_str())),
            _ => (key, cfg.ramdisk.as_deref()),
        };
        let Some(value) = value else { continue };
        let at = format!(
            "{show}: line {}, key '{key}'",
            domcfg::key_line(&text, key).unwrap_or(0)
        );
        let file = dir.join(value);
        let bytes = std::fs::read(&file).with_context(|| format!("{at}: {}", file.display()))?;
        // A PVH domain or a firmware is entered through an ELF's PVH note: given a bzImage,
        // take the ELF out of it, as Xen's toolstack does (libxenguest's bzImage loader).
        let (file, bytes) =
            if key == image_key && pvh_entry && loader::parse_bzimage(&bytes).is_ok() {
                let elf = crate::guest_image::vmlinux_from_bzimage(&bytes)
                    .and_then(|elf| crate::guest_image::trim_elf(&elf))
                    .with_context(|| {
                        format!(
                            "{at}: {}: taking the ELF out of the bzImage",
                            file.display()
                        )
                    })?;
                let out = extracted_elf_path(&file)?;
                std::fs::write(&out, &elf).with_context(|| format!("writing {}", out.display()))?;
                (out, elf)
            } else {
                (file, bytes)
            };
        if let Some(problem) = (key == image_key)
            .then(|| kernel_problem(&bytes, pvh_entry))
            .flatten()
        {
            bail!("{at}: {} {problem}", file.display());
        }
        let file = std::fs::canonicalize(&file).unwrap_or(file);
        let name = module_name(&file, domain, taken);
        if !taken.iter().any(|(n, _)| *n == name) {
            taken.push((name.clone(), file.clone()));
        }
        config.push_str(&format!("{key} = \"{name}\"\n"));
        modules.push(Module {
            name,
            source: ModuleSource::File(file),
        });
    }
    Ok(DomainSpec { config, modules })
}

/// The scenario that boots the domains of `configs`, in order (d1, d2, ...), with no
/// expectations beyond the standard ones and a day's timeout.
pub fn scenario_from_configs(configs: &[PathBuf]) -> Result<Scenario> {
    if configs.is_empty() {
        bail!("no domain configuration given");
    }
    let mut taken = Vec::new();
    let mut s = Scenario::new(SCENARIO_NAME).timeout(RUN_TIMEOUT);
    for (i, c) in configs.iter().enumerate() {
        s = s.domain(domain_from_config(c, i, &mut taken)?);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory of this test process.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xenolith-user-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A bzImage header the loader takes: boot protocol 2.15 with a 64-bit entry, one setup
    /// sector, a few bytes of kernel.
    fn fake_bzimage() -> Vec<u8> {
        let mut b = vec![0u8; 0x500];
        b[0x1F1] = 1;
        b[0x1FE] = 0x55;
        b[0x1FF] = 0xAA;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        b[0x236] = 1;
        b
    }

    #[test]
    fn files_are_relative_to_the_config_and_become_modules() {
        let d = scratch("ok");
        std::fs::create_dir_all(d.join("img")).unwrap();
        std::fs::write(d.join("img/vmlinuz"), fake_bzimage()).unwrap();
        std::fs::write(d.join("img/initrd 1.img"), b"cpio").unwrap();
        std::fs::write(d.join("k.elf"), b"\x7fELF....").unwrap();
        std::fs::write(
            d.join("a.cfg"),
            "name = 'a'\ntype = 'hvm'\nkernel = 'img/vmlinuz'\nramdisk = 'img/initrd 1.img'\n",
        )
        .unwrap();
        std::fs::write(
            d.join("b.cfg"),
            "name = 'b'\ntype = 'hvm'\nkernel = 'k.elf'",
        )
        .unwrap();
        let s = scenario_from_configs(&[d.join("a.cfg"), d.join("b.cfg")]).unwrap();
        assert_eq!(s.name, "user");
        let names: Vec<Vec<&str>> = s
            .domains
            .iter()
            .map(|d| d.modules.iter().map(|m| m.name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["vmlinuz", "initrd_1.img"], vec!["k.elf"]]);
        let cfg = domcfg::parse(&s.domains[0].config).unwrap();
        assert_eq!(
            (cfg.kernel.as_str(), cfg.ramdisk.as_deref()),
            ("vmlinuz", Some("initrd_1.img"))
        );
        assert_eq!(domcfg::parse(&s.domains[1].config).unwrap().kernel, "k.elf");
        match &s.domains[0].modules[0].source {
            ModuleSource::File(p) => assert!(p.ends_with("img/vmlinuz"), "{p:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn same_file_name_from_two_places_gets_a_domain_prefix() {
        let d = scratch("clash");
        for sub in ["x", "y"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            std::fs::write(d.join(sub).join("vmlinux"), b"\x7fELF").unwrap();
            std::fs::write(
                d.join(sub).join("d.cfg"),
                format!("name = '{sub}'\ntype = 'hvm'\nkernel = 'vmlinux'\n"),
            )
            .unwrap();
        }
        // The same file twice keeps one name.
        let s = scenario_from_configs(&[d.join("x/d.cfg"), d.join("y/d.cfg"), d.join("x/d.cfg")])
            .unwrap();
        let names: Vec<&str> = s
            .domains
            .iter()
            .map(|d| d.modules[0].name.as_str())
            .collect();
        assert_eq!(names, ["vmlinux", "d2-vmlinux", "vmlinux"]);
    }

    /// A minimal x86-64 ELF64: one PT_LOAD at 1 MiB holding a PT_NOTE with Xen's
    /// `XEN_ELFNOTE_PHYS32_ENTRY` = `entry`.
    fn pvh_elf(entry: u32) -> Vec<u8> {
        let note = hypercalls::pvh::encode_note(b"Xen", 18, &entry.to_le_bytes());
        let (phoff, phnum) = (64usize, 2usize);
        let note_off = phoff + 56 * phnum;
        let len = note_off + note.len() + 16;
        let mut e = vec![0u8; len];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2; // ELFCLASS64
        e[5] = 1; // little-endian
        e[6] = 1;
        e[16] = 2; // ET_EXEC
        e[18] = 62; // EM_X86_64
        e[20] = 1;
        e[24..32].copy_from_slice(&0x10_0000u64.to_le_bytes());
        e[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
        e[52] = 64;
        e[54] = 56;
        e[56] = phnum as u8;
        let ph = |e: &mut Vec<u8>, i: usize, ty: u32, off: u64, addr: u64, size: u64| {
            let p = phoff + 56 * i;
            e[p..p + 4].copy_from_slice(&ty.to_le_bytes());
            e[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            e[p + 16..p + 24].copy_from_slice(&(0xFFFF_FFFF_8000_0000 + addr).to_le_bytes());
            e[p + 24..p + 32].copy_from_slice(&addr.to_le_bytes());
            e[p + 32..p + 40].copy_from_slice(&size.to_le_bytes());
            e[p + 40..p + 48].copy_from_slice(&size.to_le_bytes());
        };
        ph(&mut e, 0, 1, 0, 0x10_0000, len as u64);
        ph(
            &mut e,
            1,
            4,
            note_off as u64,
            0x10_0000 + note_off as u64,
            note.len() as u64,
        );
        e[note_off..note_off + note.len()].copy_from_slice(&note);
        e[len - 16..].fill(0x90);
        e
    }

    /// [`fake_bzimage`] carrying `elf`, gzip-compressed, as its payload (boot protocol 2.08+:
    /// `payload_offset` from the protected-mode part, the uncompressed size appended).
    fn bzimage_of(elf: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(elf).unwrap();
        let mut payload = gz.finish().unwrap();
        payload.extend_from_slice(&(elf.len() as u32).to_le_bytes());
        let mut bz = fake_bzimage();
        bz.truncate(2 * 512 + 0x40);
        bz[0x248..0x24C].copy_from_slice(&0x40u32.to_le_bytes());
        bz[0x24C..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        bz.extend_from_slice(&payload);
        bz
    }

    /// As Xen's toolstack does, a PVH domain given a bzImage boots the ELF inside it.
    #[test]
    fn a_pvh_bzimage_becomes_the_elf_inside_it() {
        let d = scratch("pvh-bz");
        let elf = pvh_elf(0x10_0080);
        std::fs::write(d.join("vmlinuz"), bzimage_of(&elf)).unwrap();
        std::fs::write(
            d.join("p.cfg"),
            "name = 'p'\ntype = 'pvh'\nkernel = 'vmlinuz'\n",
        )
        .unwrap();
        let s = scenario_from_configs(&[d.join("p.cfg")]).unwrap();
        let m = &s.domains[0].modules[0];
        let ModuleSource::File(path) = &m.source else {
            panic!("{m:?}")
        };
        assert!(m.name.ends_with("vmlinuz.elf"), "{}", m.name);
        let extracted = std::fs::read(path).unwrap();
        assert_eq!(hypercalls::pvh::pvh_entry(&extracted), Ok(0x10_0080));
        assert!(s.domains[0]
            .config
            .contains(&format!("kernel = \"{}\"", m.name)));
        // The same bzImage for an HVM domain stays a bzImage.
        std::fs::write(
            d.join("h.cfg"),
            "name = 'h'\ntype = 'hvm'\nkernel = 'vmlinuz'\n",
        )
        .unwrap();
        let s = scenario_from_configs(&[d.join("h.cfg")]).unwrap();
        assert_eq!(s.domains[0].modules[0].name, "vmlinuz");
        // An ELF inside without the note is refused, naming the key.
        std::fs::write(
            d.join("nonote"),
            bzimage_of(&crate::guest_image::rdtsc_elf()),
        )
        .unwrap();
        std::fs::write(
            d.join("n.cfg"),
            "name = 'n'\ntype = 'pvh'\nkernel = 'nonote'\n",
        )
        .unwrap();
        let e = format!(
            "{:#}",
            scenario_from_configs(&[d.join("n.cfg")]).unwrap_err()
        );
        assert!(
            e.contains("line 3, key 'kernel'") && e.contains("has no usable PVH entry"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let d = scratch("err");
        let cfg = d.join("bad.cfg");
        let err = |text: &str| {
            std::fs::write(&cfg, text).unwrap();
            format!(
                "{:#}",
                scenario_from_configs(std::slice::from_ref(&cfg)).unwrap_err()
            )
        };
        let show = cfg.display().to_string();
        let e = err("name = 'a'\ntype = 'hvm'\nkernel = 'k'\nmemory = 'lots'\n");
        assert_eq!(
            e,
            format!("{show}: line 4, key 'memory': expected an integer, found \"lots\"")
        );
        let e = err("name = 'a'\ntype = 'hvm'\n\nkernel = 'missing'\n");
        assert!(
            e.starts_with(&format!("{show}: line 4, key 'kernel': ")),
            "{e}"
        );
        assert!(e.contains("missing"), "{e}");
        std::fs::write(d.join("notes.txt"), b"plain text").unwrap();
        let e = err("name = 'a'\ntype = 'hvm'\nkernel = 'notes.txt'\n");
        assert!(
            e.starts_with(&format!("{show}: line 3, key 'kernel': ")),
            "{e}"
        );
        assert!(e.ends_with("is neither an ELF image nor a bzImage"), "{e}");
        let mut old = fake_bzimage();
        old[0x206..0x208].copy_from_slice(&0x0200u16.to_le_bytes());
        std::fs::write(d.join("old-bz"), old).unwrap();
        let e = err("name = 'a'\ntype = 'hvm'\nkernel = 'old-bz'\n");
        assert!(e.contains("a bzImage the hypervisor cannot boot"), "{e}");
        std::fs::write(d.join("k"), b"\x7fELF").unwrap();
        let e = err("name = 'a'\ntype = 'hvm'\nkernel = 'k'\nramdisk = 'nope.img'\n");
        assert!(
            e.starts_with(&format!("{show}: line 4, key 'ramdisk': ")),
            "{e}"
        );
        // A 32-bit ELF has no 64-bit entry for an HVM direct boot.
        std::fs::write(d.join("k32"), b"\x7fELF\x01\x01\x01").unwrap();
        let e = err("name = 'a'\ntype = 'hvm'\nkernel = 'k32'\n");
        assert!(e.ends_with("is a 32-bit ELF: boot it through its PVH note (type = \"pvh\" or firmware_override)"), "{e}");
        // A PVH domain or a firmware needs the PVH entry note.
        let e = err("name = 'a'\ntype = 'pvh'\nkernel = 'k'\n");
        assert!(
            e.starts_with(&format!("{show}: line 3, key 'kernel': ")),
            "{e}"
        );
        assert!(e.contains("has no usable PVH entry"), "{e}");
        // A bzImage whose payload is not a kernel ELF: the extraction's error, at the key.
        std::fs::write(d.join("bz"), fake_bzimage()).unwrap();
        let e = err("name = 'a'\ntype = 'hvm'\nfirmware_override = 'bz'\n");
        assert!(
            e.starts_with(&format!("{show}: line 3, key 'firmware_override': ")),
            "{e}"
        );
        assert!(e.contains("taking the ELF out of the bzImage"), "{e}");
        let e = format!(
            "{:#}",
            scenario_from_configs(&[d.join("absent.cfg")]).unwrap_err()
        );
        assert!(e.contains("absent.cfg: reading it"), "{e}");
    }

    #[test]
    fn config_arguments_are_told_from_scenario_names() {
        assert!(is_config_arg("a.cfg"));
        assert!(is_config_arg("./dom"));
        assert!(!is_config_arg("linux-hvm"));
    }
}
