//! Precompression and the size table. Every servable file gets `.br` (brotli, quality 11)
//! and `.gz` (gzip -9) next to it, which the server sends by `Accept-Encoding`; sizes are
//! reported as delivered — the bytes a browser sending `Accept-Encoding: br, gzip` receives
//! (brotli), and what a gzip-only client receives — and budgets are checked on them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// What is worth compressing (text and wasm; images are compressed already).
const COMPRESSIBLE: &[&str] = &["js", "mjs", "wasm", "html", "css", "svg", "json", "txt"];

/// Writes `x.br` and `x.gz` next to every compressible file under `dir`; a variant that
/// would not be smaller is not written (the server then sends the file as it is).
pub fn precompress(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            precompress(&path)?;
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !COMPRESSIBLE.contains(&ext) {
            continue;
        }
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for (suffix, encoded) in [("br", brotli(&bytes)?), ("gz", gzip(&bytes)?)] {
            let out = variant(&path, suffix);
            if encoded.len() < bytes.len() {
                fs::write(&out, encoded).with_context(|| format!("writing {}", out.display()))?;
            } else if out.exists() {
                fs::remove_file(&out)?;
            }
        }
    }
    Ok(())
}

fn variant(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Brotli at its best setting: files are compressed once and sent millions of times.
pub fn brotli(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 24,
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).context("brotli")?;
    Ok(out)
}

pub fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

/// The bytes delivered for one file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    pub raw: usize,
    /// To a client sending `Accept-Encoding: br, gzip` (every current browser).
    pub br: usize,
    /// To a gzip-only client.
    pub gzip: usize,
}

impl Sizes {
    /// Reads a file and the variants `precompress` wrote for it.
    pub fn of(path: &Path) -> anyhow::Result<Sizes> {
        let raw = fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len() as usize;
        let len = |suffix| {
            fs::metadata(variant(path, suffix))
                .map(|m| m.len() as usize)
                .unwrap_or(raw)
        };
        Ok(Sizes {
            raw,
            br: len("br"),
            gzip: len("gz"),
        })
    }

    pub fn plus(self, other: Sizes) -> Sizes {
        Sizes {
            raw: self.raw + other.raw,
            br: self.br + other.br,
            gzip: self.gzip + other.gzip,
        }
    }
}

/// Prints one table: a row per file, then the totals.
pub fn table(title: &str, rows: &[(String, Sizes)], totals: &[(&str, Sizes)]) {
    println!("\n{title:<40} {:>9} {:>9} {:>9}", "bytes", "gzip", "br");
    for (name, s) in rows {
        println!("{name:<40} {:>9} {:>9} {:>9}", s.raw, s.gzip, s.br);
    }
    for (name, s) in totals {
        println!(
            "{:<40} {:>9} {:>9} {:>9}",
            format!("= {name}"),
            s.raw,
            s.gzip,
            s.br
        );
    }
}
