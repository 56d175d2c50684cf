//! Checks for (and on a fresh Debian machine, as root, installs) what building ISOs and running
//! the emulators needs. Cheap when everything is present.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::paths::BARE_TARGET;

/// A command the tooling runs, and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// A command looked up in `PATH`, or an absolute file path.
    pub what: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
}

/// What every ISO build and Bochs run needs.
pub const BASE_NEEDS: &[Need] = &[
    Need {
        what: "bochs-bin",
        package: "bochs",
    },
    Need {
        what: "/usr/share/bochs/BIOS-bochs-latest",
        package: "bochsbios",
    },
    Need {
        what: "/usr/share/vgabios/vgabios.bin",
        package: "vgabios",
    },
    Need {
        what: "grub-mkrescue",
        package: "grub-common",
    },
    Need {
        what: "/usr/lib/grub/i386-pc",
        package: "grub-pc-bin",
    },
    Need {
        what: "xorriso",
        package: "xorriso",
    },
    Need {
        what: "mformat",
        package: "mtools",
    },
    Need {
        what: "xz",
        package: "xz-utils",
    },
    // libFuzzer, which `libfuzzer-sys` builds for the fuzz targets, is C++.
    Need {
        what: "g++",
        package: "g++",
    },
];

/// What the QEMU/KVM path needs besides [`BASE_NEEDS`].
pub const QEMU_NEEDS: &[Need] = &[Need {
    what: "qemu-system-x86_64",
    package: "qemu-system-x86",
}];

/// The packages installed when anything in [`BASE_NEEDS`] is missing (all of them, so one
/// install brings a fresh machine up to date).
pub const BASE_PACKAGES: &[&str] = &[
    "bochs",
    "bochsbios",
    "vgabios",
    "grub-pc-bin",
    "grub-common",
    "xorriso",
    "mtools",
    "xz-utils",
    "g++",
];

/// What is missing, and the commands that would fix it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Human-readable names of the missing pieces.
    pub missing: Vec<String>,
    /// The commands to run, each as argv.
    pub commands: Vec<Vec<String>>,
}

impl Plan {
    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Works out the plan from what is present: `present(what)` for each [`Need`],
/// `target_installed` for the rustup target [`BARE_TARGET`].
pub fn plan(need_qemu: bool, present: impl Fn(&str) -> bool, target_installed: bool) -> Plan {
    let mut plan = Plan::default();
    let mut needs: Vec<&Need> = BASE_NEEDS.iter().collect();
    if need_qemu {
        needs.extend(QEMU_NEEDS.iter());
    }
    let missing: Vec<&&Need> = needs.iter().filter(|n| !present(n.what)).collect();
    if !missing.is_empty() {
        plan.missing.extend(
            missing
                .iter()
                .map(|n| format!("{} (package {})", n.what, n.package)),
        );
        plan.commands
            .push(vec!["apt-get".to_string(), "update".to_string()]);
        let mut install: Vec<String> = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
            .iter()
            .chain(["install", "-y"].iter())
            .map(|s| s.to_string())
            .collect();
        install.extend(BASE_PACKAGES.iter().map(|s| s.to_string()));
        if need_qemu {
            install.extend(QEMU_NEEDS.iter().map(|n| n.package.to_string()));
        }
        plan.commands.push(install);
    }
    if !target_installed {
        plan.missing.push(format!("rust target {BARE_TARGET}"));
        plan.commands.push(
            ["rustup", "target", "add", BARE_TARGET]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
    }
    plan
}

/// Whether `what` is present: an absolute path that exists, or a command found in `PATH`.
pub fn is_present(what: &str) -> bool {
    if what.starts_with('/') {
        return Path::new(what).exists();
    }
    find_in_path(what).is_some()
}

/// The first executable file called `cmd` in `PATH`.
pub fn find_in_path(cmd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(cmd))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Whether the rustup target for the freestanding builds is installed (asks rustup; without
/// rustup, looks in the active toolchain's sysroot).
pub fn bare_target_installed() -> bool {
    if let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == BARE_TARGET);
        }
    }
    Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(BARE_TARGET)
                .is_dir()
        })
        .unwrap_or(false)
}

/// Whether this process runs as root (effective uid 0, read from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The commands as one shell line for a user who is not root: `sudo` before the apt-get ones
/// (rustup is per user and runs as the user).
pub fn shown_for_user(commands: &[Vec<String>]) -> String {
    commands
        .iter()
        .map(|c| {
            let line = c.join(" ");
            if c[0] == "rustup" {
                line
            } else {
                format!("sudo {line}")
            }
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Makes sure everything is present, installing what is missing when running as root; fails
/// with the exact commands to run otherwise. Prints nothing when all is present and `quiet`.
pub fn ensure(need_qemu: bool, quiet: bool) -> Result<()> {
    let plan = plan(need_qemu, is_present, bare_target_installed());
    if plan.is_empty() {
        if !quiet {
            println!("setup: everything needed is present");
        }
        return Ok(());
    }
    println!("setup: missing: {}", plan.missing.join(", "));
    if !is_root() {
        bail!(
            "setup: missing tools and not running as root; run:\n  {}",
            shown_for_user(&plan.commands)
        );
    }
    for cmd in &plan.commands {
        println!("setup: running {}", cmd.join(" "));
        let status = Command::new(&cmd[0])
            .args(&cmd[1..])
            .status()
            .with_context(|| format!("starting {}", cmd[0]))?;
        if !status.success() {
            bail!("setup: `{}` failed with {status}", cmd.join(" "));
        }
    }
    let after = self::plan(need_qemu, is_present, bare_target_installed());
    if !after.is_empty() {
        bail!(
            "setup: still missing after installing: {}",
            after.missing.join(", ")
        );
    }
    println!("setup: done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_missing_means_empty_plan() {
        assert!(plan(true, |_| true, true).is_empty());
    }

    #[test]
    fn missing_grub_files_installs_all_packages() {
        let p = plan(false, |w| w != "/usr/lib/grub/i386-pc", true);
        assert_eq!(
            p.missing,
            vec!["/usr/lib/grub/i386-pc (package grub-pc-bin)"]
        );
        assert_eq!(p.commands[0], vec!["apt-get", "update"]);
        let install = p.commands[1].join(" ");
        assert_eq!(
            install,
            "env DEBIAN_FRONTEND=noninteractive apt-get install -y bochs bochsbios vgabios \
             grub-pc-bin grub-common xorriso mtools xz-utils g++"
        );
    }

    #[test]
    fn qemu_only_when_asked() {
        let p = plan(false, |w| w != "qemu-system-x86_64", true);
        assert!(p.is_empty());
        let p = plan(true, |w| w != "qemu-system-x86_64", true);
        assert!(p.commands[1].contains(&"qemu-system-x86".to_string()));
    }

    #[test]
    fn missing_target_uses_rustup() {
        let p = plan(false, |_| true, false);
        assert_eq!(
            p.commands,
            vec![vec!["rustup", "target", "add", "x86_64-unknown-none"]]
        );
    }

    #[test]
    fn user_command_line() {
        let p = plan(false, |w| w != "xorriso", false);
        assert_eq!(
            shown_for_user(&p.commands),
            "sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
             bochs bochsbios vgabios grub-pc-bin grub-common xorriso mtools xz-utils g++ && \
             rustup target add x86_64-unknown-none"
        );
    }

    #[test]
    fn path_lookup() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("surely-not-a-command-xenolith").is_none());
        assert!(is_present("/"));
    }
}
