//! The toolchain the tracker and the dashboard builds share: the pinned npm tools, the
//! wasm32 build, the wasm-bindgen version check, folders, and content fingerprints.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::{cargo, run as sh};

/// Features rustc 1.95 emits for wasm32 that wasm-opt must be told about.
pub const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-mutable-globals",
];

/// `npm/node_modules/.bin`, after `npm ci` if any of `tools` is missing there.
pub fn npm_tools(npm: &Path, tools: &[&str]) -> anyhow::Result<PathBuf> {
    let bin = npm.join("node_modules/.bin");
    if tools.iter().any(|t| !bin.join(t).is_file()) {
        sh(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(npm))?;
    }
    Ok(bin)
}

/// Builds `package` for wasm32 with the `wasm-release` profile; the path of `artefact`.
pub fn build_wasm(root: &Path, package: &str, artefact: &str) -> anyhow::Result<PathBuf> {
    sh(cargo().args([
        "build",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
        "-p",
        package,
    ]))?;
    Ok(target_dir(root)
        .join("wasm32-unknown-unknown/wasm-release")
        .join(artefact))
}

/// wasm-bindgen's CLI and library must be the same version, or the glue does not match.
pub fn check_wasm_bindgen(root: &Path) -> anyhow::Result<()> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let locked = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasm-bindgen\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .context("wasm-bindgen is not in Cargo.lock")?;
    let out = Command::new("wasm-bindgen").arg("--version").output();
    let installed = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !installed.ends_with(&locked) {
        bail!(
            "wasm-bindgen CLI is {installed:?}, Cargo.lock has {locked}: \
             run .ci/install-wasm.sh (or `cargo install wasm-bindgen-cli --version {locked}`)"
        );
    }
    Ok(())
}

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { root.join(p) } else { p })
        .unwrap_or_else(|| root.join("target"))
}

/// An empty `dir`, whatever was there.
pub fn clean(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_dir(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// First 10 hex digits of FNV-1a/64: enough to tell builds apart in a file name
/// (`footfall-<hash>.wasm`), which lets the server cache it for a year.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")[..10].to_string()
}
