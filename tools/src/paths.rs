//! Where things are: the repository root, the build outputs, the per-scenario directories.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The target the hypervisor and the test guest are built for.
pub const BARE_TARGET: &str = "x86_64-unknown-none";

/// Environment variable naming a prebuilt hypervisor ELF to use instead of building `kernel`.
pub const KERNEL_OVERRIDE_ENV: &str = "XENOLITH_KERNEL";
/// Environment variable naming a prebuilt test guest ELF to use instead of building `test-guest`.
pub const TEST_GUEST_OVERRIDE_ENV: &str = "XENOLITH_TEST_GUEST";

/// The repository's directories.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The workspace root (the directory holding the top-level `Cargo.toml`).
    pub root: PathBuf,
}

impl Paths {
    /// Finds the workspace root: the nearest ancestor of the current directory whose
    /// `Cargo.toml` has a `[workspace]` and that holds `tools/`; failing that, the root this
    /// binary was compiled in.
    pub fn discover() -> Result<Self> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        for dir in cwd.ancestors() {
            if is_workspace_root(dir) {
                return Ok(Paths {
                    root: dir.to_path_buf(),
                });
            }
        }
        let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        if is_workspace_root(&compiled) {
            let root = compiled
                .canonicalize()
                .with_context(|| format!("resolving {}", compiled.display()))?;
            return Ok(Paths { root });
        }
        bail!(
            "cannot find the xenolith workspace root from {} (run inside the repository)",
            cwd.display()
        )
    }

    /// The workspace's default cargo target directory (the freestanding builds always go here).
    pub fn target_dir(&self) -> PathBuf {
        self.root.join("target")
    }

    /// The release build of a freestanding binary of the workspace.
    pub fn bare_binary(&self, name: &str) -> PathBuf {
        self.target_dir()
            .join(BARE_TARGET)
            .join("release")
            .join(name)
    }

    /// The hypervisor ELF: `$XENOLITH_KERNEL` if set, else the release build of `kernel`.
    pub fn kernel_elf(&self) -> PathBuf {
        override_or(KERNEL_OVERRIDE_ENV, || self.bare_binary("kernel"))
    }

    /// The test guest ELF: `$XENOLITH_TEST_GUEST` if set, else the release build of `test-guest`.
    pub fn test_guest_elf(&self) -> PathBuf {
        override_or(TEST_GUEST_OVERRIDE_ENV, || self.bare_binary("test-guest"))
    }

    /// `build/`: every build output but cargo's.
    pub fn build_dir(&self) -> PathBuf {
        self.root.join("build")
    }

    /// `build/<scenario>/`: the scenario's ISO tree, ISO, emulator config and logs.
    pub fn scenario_dir(&self, scenario: &str) -> PathBuf {
        self.build_dir().join(scenario)
    }

    /// `path` relative to the root when it is inside it (for messages).
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

fn is_workspace_root(dir: &Path) -> bool {
    dir.join("tools").is_dir()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .map(|t| t.contains("[workspace]"))
            .unwrap_or(false)
}

fn override_or(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => default(),
    }
}
