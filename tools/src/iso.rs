//! The boot ISO of a scenario: `build/<scenario>/iso/boot/{xenolith.elf, modules, grub/grub.cfg}`
//! made into `build/<scenario>/xenolith.iso` by `grub-mkrescue` (layout in docs/protocol.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use ::tests::{ModuleSource, Scenario};
use anyhow::{bail, Context, Result};

use crate::emulator::{files, hv_cmdline, Emulator};
use crate::paths::Paths;

/// The hypervisor's file name on the ISO.
pub const HV_FILE: &str = "xenolith.elf";

/// Where a module's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file on the host, copied.
    File(PathBuf),
    /// Text written by the tool (the domain configurations).
    Text(String),
}

/// One module on the ISO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoModule {
    /// Its name: the file name under `/boot/` and its multiboot2 command line.
    pub name: String,
    /// Its bytes.
    pub content: Content,
}

/// The modules of a scenario in GRUB order: the images the domains need (each name once, in
/// order of first use), then `d1.cfg`, `d2.cfg`, ... in domain order.
pub fn modules(scenario: &Scenario, paths: &Paths) -> Result<Vec<IsoModule>> {
    let mut images: Vec<IsoModule> = Vec::new();
    for d in &scenario.domains {
        for m in &d.modules {
            check_name(&m.name)?;
            let path = match &m.source {
                ModuleSource::TestGuest => paths.test_guest_elf(),
                ModuleSource::File(p) if p.is_absolute() => p.clone(),
                ModuleSource::File(p) => paths.root.join(p),
                ModuleSource::Guest(f) => crate::guest_image::path(paths, *f),
            };
            match images.iter().find(|i| i.name == m.name) {
                Some(i) if i.content != Content::File(path.clone()) => {
                    bail!("two different files both named module {}", m.name)
                }
                Some(_) => {}
                None => images.push(IsoModule {
                    name: m.name.clone(),
                    content: Content::File(path),
                }),
            }
        }
    }
    for (i, d) in scenario.domains.iter().enumerate() {
        let name = Scenario::config_module_name(i);
        if images.iter().any(|m| m.name == name) {
            bail!("module name {name} is reserved for domain configurations");
        }
        images.push(IsoModule {
            name,
            content: Content::Text(d.config.clone()),
        });
    }
    Ok(images)
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name != HV_FILE
        && name != "grub"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!("bad module name {name:?}: want [A-Za-z0-9._-]+, not {HV_FILE} or grub");
    }
    Ok(())
}

/// The `grub.cfg` that boots the hypervisor with `cmdline` and the named modules.
pub fn render_grub_cfg(cmdline: &str, module_names: &[&str]) -> String {
    let mut s = String::from(
        "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\n\
         terminal_input serial\nterminal_output serial\nmenuentry \"xenolith\" {\n",
    );
    s.push_str(&format!("  multiboot2 /boot/{HV_FILE} {cmdline}\n"));
    for name in module_names {
        s.push_str(&format!("  module2 /boot/{name} {name}\n"));
    }
    s.push_str("  boot\n}\n");
    s
}

/// Lays out `build/<scenario>/iso/` and runs `grub-mkrescue`; returns the ISO's path.
pub fn make_iso(paths: &Paths, scenario: &Scenario, emulator: Emulator) -> Result<PathBuf> {
    make_iso_with(paths, scenario, &hv_cmdline(emulator, &scenario.hv_cmdline))
}

/// The hypervisor command line of an ISO made for any machine (`iso -o`): no emulator exit
/// port, so the machine halts once every domain has ended.
pub fn portable_cmdline(scenario: &Scenario) -> String {
    let mut words = vec!["loglvl=info".to_string()];
    words.extend(scenario.hv_cmdline.iter().cloned());
    words.join(" ")
}

/// [`make_iso`] with the hypervisor command line `cmdline`.
pub fn make_iso_with(paths: &Paths, scenario: &Scenario, cmdline: &str) -> Result<PathBuf> {
    let dir = paths.scenario_dir(&scenario.name);
    let tree = dir.join("iso");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    let boot = tree.join("boot");
    let grub = boot.join("grub");
    std::fs::create_dir_all(&grub).with_context(|| format!("creating {}", grub.display()))?;

    copy(&paths.kernel_elf(), &boot.join(HV_FILE), "the hypervisor")?;
    let mods = modules(scenario, paths)?;
    for m in &mods {
        let dest = boot.join(&m.name);
        match &m.content {
            Content::File(src) => copy(src, &dest, &format!("module {}", m.name))?,
            Content::Text(t) => {
                std::fs::write(&dest, t).with_context(|| format!("writing {}", dest.display()))?
            }
        }
    }
    let names: Vec<&str> = mods.iter().map(|m| m.name.as_str()).collect();
    let cfg = render_grub_cfg(cmdline, &names);
    std::fs::write(grub.join("grub.cfg"), cfg).context("writing grub.cfg")?;

    let iso = dir.join(files::ISO);
    let out = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&iso)
        .arg(&tree)
        .output()
        .context("starting grub-mkrescue (run `xenolith-tools setup`)")?;
    if !out.status.success() {
        bail!(
            "grub-mkrescue failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(iso)
}

fn copy(src: &Path, dest: &Path, what: &str) -> Result<()> {
    std::fs::copy(src, dest).with_context(|| format!("copying {what} from {}", src.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::tests::{DomainSpec, Module};

    fn paths() -> Paths {
        Paths {
            root: PathBuf::from("/repo"),
        }
    }

    #[test]
    fn grub_cfg_matches_protocol() {
        let cfg = render_grub_cfg("loglvl=info exit=bochs", &["test-guest.elf", "d1.cfg"]);
        assert_eq!(
            cfg,
            "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\n\
             terminal_input serial\nterminal_output serial\nmenuentry \"xenolith\" {\n  \
             multiboot2 /boot/xenolith.elf loglvl=info exit=bochs\n  \
             module2 /boot/test-guest.elf test-guest.elf\n  \
             module2 /boot/d1.cfg d1.cfg\n  boot\n}\n"
        );
    }

    #[test]
    fn modules_dedup_images_then_configs() {
        let s = ::tests::find("hostile-triple-fault").unwrap();
        let m = modules(&s, &paths()).unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["test-guest.elf", "d1.cfg", "d2.cfg"]);
        match &m[2].content {
            Content::Text(t) => assert!(t.contains("name = \"victim\"")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relative_module_files_are_under_root() {
        let s = Scenario::new("x").domain(DomainSpec {
            config: "name = \"l\"\n".to_string(),
            modules: vec![Module {
                name: "vmlinux".to_string(),
                source: ModuleSource::File(PathBuf::from("build/linux/vmlinux")),
            }],
        });
        let m = modules(&s, &paths()).unwrap();
        assert_eq!(
            m[0].content,
            Content::File(PathBuf::from("/repo/build/linux/vmlinux"))
        );
    }

    #[test]
    fn conflicting_or_bad_names_fail() {
        let dom = |name: &str, file: &str| DomainSpec {
            config: String::new(),
            modules: vec![Module {
                name: name.to_string(),
                source: ModuleSource::File(PathBuf::from(file)),
            }],
        };
        let s = Scenario::new("x")
            .domain(dom("k.elf", "a"))
            .domain(dom("k.elf", "b"));
        assert!(modules(&s, &paths()).is_err());
        for bad in ["", "a b", "../x", "d1.cfg", "xenolith.elf"] {
            let s = Scenario::new("x").domain(dom(bad, "a"));
            assert!(modules(&s, &paths()).is_err(), "{bad:?}");
        }
    }
}
