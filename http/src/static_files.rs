//! Static files: the script-tag tracker, the demo site and the dashboard.
//!
//! A [`StaticFiles`] set is read once — from the files embedded in the binary, or from a
//! folder (`--assets-dir`) — and kept in memory, so answering does no file IO. Each file comes
//! with the variants `cargo xtask dist` precompressed next to it (`x.js.br`, `x.js.gz`); the
//! variant sent is negotiated from `Accept-Encoding`, with `Vary: Accept-Encoding`, the exact
//! `Content-Length`, and a strong `ETag` per variant (content hash), so revalidation is a
//! 304.
//!
//! A [`StaticService`] serves [`Mount`]s of the set at URL paths, each with its policy:
//!
//! | mount | URL | files | cache (fingerprinted names: a year, immutable) | cross-origin |
//! |---|---|---|---|---|
//! | [`Mount::tracker`] | `/footfall.js`, `/footfall-<hash>.wasm` | `tracker/` | 1 h + stale-while-revalidate | yes |
//! | [`Mount::demo`] | `/demo/` | `demo/` | `no-cache` | no |
//! | [`Mount::dashboard`] | `/dashboard/` (single-page app) | `dashboard/` | `no-cache` | no |
//!
//! Everything the tracker loads is served with `Access-Control-Allow-Origin: *` and
//! `Cross-Origin-Resource-Policy: cross-origin`: other sites' pages fetch it. That is
//! independent of the ingest allow-list, which decides who may *send events*.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use http::{HeaderMap, Method, StatusCode};
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::answer;
use crate::encoding::{vary_on_accept_encoding, AcceptEncoding, Coding};
use crate::{BoxFuture, Handler, ResponseBody};

/// Names with a content hash (`dashboard-0123456789.wasm`) never change: cache them forever.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Browsers re-check the tracker script hourly; a CDN may serve a stale copy for a day while
/// it revalidates. A deploy reaches every visitor within about an hour without a purge, and
/// the script names the wasm by its hash, so script and wasm never mismatch.
pub const TRACKER_SCRIPT_CACHE: &str = "public, max-age=3600, stale-while-revalidate=86400";
/// Pages are revalidated on every load (a 304 is cheap), so a deploy shows at once.
pub const PAGE_CACHE: &str = "no-cache";
/// The dashboard's page: same-origin everything, and no inline script (the page loads one
/// module that starts itself), so an injected `<script>` or event handler never runs; the
/// wasm needs 'wasm-unsafe-eval', the page's `<style>` and Yew's style attributes
/// 'unsafe-inline' for styles only.
pub const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// A folder of assets larger than this is refused: it is not a Footfall build.
pub const MAX_TOTAL_BYTES: u64 = 256 * 1024 * 1024;
/// Folder depth followed when reading a folder (guards against symlink loops).
const MAX_DEPTH: usize = 12;

/// Why an assets folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StaticFilesError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds more than {MAX_TOTAL_BYTES} bytes; is it a Footfall dist/ folder?")]
    TooLarge { path: PathBuf },
}

/// One file and its precompressed variants.
struct Asset {
    content_type: &'static str,
    identity: Bytes,
    br: Option<Bytes>,
    gzip: Option<Bytes>,
    /// Content hash of the identity bytes; each variant's `ETag` derives from it.
    hash: String,
}

impl Asset {
    fn variant(&self, coding: Coding) -> (&Bytes, String) {
        match coding {
            Coding::Brotli => match &self.br {
                Some(b) => (b, format!("\"{}-br\"", self.hash)),
                None => self.variant(Coding::Identity),
            },
            Coding::Gzip => match &self.gzip {
                Some(b) => (b, format!("\"{}-gz\"", self.hash)),
                None => self.variant(Coding::Identity),
            },
            Coding::Identity => (&self.identity, format!("\"{}\"", self.hash)),
        }
    }

    /// Does an `If-None-Match` value match any variant of this file? (Weak comparison, as
    /// the RFC asks for `If-None-Match`: a proxy may have weakened our tag.)
    fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(str::trim).any(|t| {
            let t = t.strip_prefix("W/").unwrap_or(t);
            t == "*"
                || t.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .is_some_and(|t| {
                        let base = t
                            .strip_suffix("-br")
                            .or_else(|| t.strip_suffix("-gz"))
                            .unwrap_or(t);
                        base == self.hash
                    })
        })
    }

    fn has_variants(&self) -> bool {
        self.br.is_some() || self.gzip.is_some()
    }
}

/// An in-memory set of assets, keyed by relative path (`tracker/footfall.js`).
pub struct StaticFiles {
    files: HashMap<String, Asset>,
    /// Where the files came from, for start-up logs and "not built" answers.
    source: String,
}

impl fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFiles")
            .field("source", &self.source)
            .field("files", &self.files.len())
            .finish()
    }
}

impl StaticFiles {
    /// No files: every mount answers that its part is not built.
    pub fn empty(source: impl Into<String>) -> Self {
        StaticFiles {
            files: HashMap::new(),
            source: source.into(),
        }
    }

    /// Files compiled into the binary: `(relative path, bytes)`, variants included.
    pub fn from_embedded(
        files: &'static [(&'static str, &'static [u8])],
        source: impl Into<String>,
    ) -> Self {
        Self::from_entries(
            files
                .iter()
                .map(|(name, bytes)| (name.to_string(), Bytes::from_static(bytes))),
            source.into(),
        )
    }

    /// Every file under `dir` (hidden ones skipped), read now and kept in memory.
    ///
    /// # Errors
    /// When `dir` or a file in it cannot be read, or it holds more than [`MAX_TOTAL_BYTES`].
    pub fn from_dir(dir: &Path) -> Result<Self, StaticFilesError> {
        let mut entries = Vec::new();
        let mut total = 0;
        read_dir(dir, "", 0, &mut entries, &mut total)?;
        Ok(Self::from_entries(
            entries.into_iter(),
            dir.display().to_string(),
        ))
    }

    fn from_entries(entries: impl Iterator<Item = (String, Bytes)>, source: String) -> Self {
        let mut all: HashMap<String, Bytes> = entries.collect();
        let names: Vec<String> = all.keys().cloned().collect();
        let is_variant = |name: &str| {
            [".br", ".gz"].iter().any(|ext| {
                name.strip_suffix(ext)
                    .is_some_and(|base| all.contains_key(base))
            })
        };
        let bases: Vec<String> = names.into_iter().filter(|n| !is_variant(n)).collect();
        let mut files = HashMap::with_capacity(bases.len());
        for name in bases {
            let Some(identity) = all.remove(&name) else {
                continue;
            };
            let br = all.remove(&format!("{name}.br"));
            let gzip = all.remove(&format!("{name}.gz"));
            let hash = blake3::hash(&identity).to_hex()[..20].to_string();
            files.insert(
                name.clone(),
                Asset {
                    content_type: content_type(&name),
                    identity,
                    br,
                    gzip,
                    hash,
                },
            );
        }
        StaticFiles { files, source }
    }

    /// Whether the set has `path` (`tracker/footfall.js`).
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

fn read_dir(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, Bytes)>,
    total: &mut u64,
) -> Result<(), StaticFilesError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StaticFilesError::Io { path, source }
    };
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symlinks: a deployment may link its build in.
        let meta = std::fs::metadata(&path).map_err(io(&path))?;
        let rel = format!("{prefix}{name}");
        if meta.is_dir() {
            read_dir(&path, &format!("{rel}/"), depth + 1, out, total)?;
        } else if meta.is_file() {
            *total += meta.len();
            if *total > MAX_TOTAL_BYTES {
                return Err(StaticFilesError::TooLarge {
                    path: dir.to_path_buf(),
                });
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            out.push((rel, Bytes::from(bytes)));
        }
    }
    Ok(())
}

/// The `Content-Type` of a file name. wasm must be `application/wasm`, or browsers refuse
/// to compile it while it downloads (`instantiateStreaming`).
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `dashboard-0123456789.wasm`: a name with a content hash, safe to cache forever.
pub fn is_fingerprinted(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A folder of the set served at a URL path, with its caching and cross-origin policy.
#[derive(Debug, Clone)]
pub struct Mount {
    /// URL path: `/` (files of the folder at the top level, nothing else) or a prefix ending
    /// in `/` (`/demo/`; the path without the slash redirects to it).
    pub at: &'static str,
    /// Folder in the set.
    pub from: &'static str,
    /// The file whose presence means this part is built (`footfall.js`, `index.html`).
    pub entry: &'static str,
    /// A single-page app: paths without a file extension get `index.html`.
    pub spa: bool,
    /// Loaded by other sites' pages: `Access-Control-Allow-Origin: *` and
    /// `Cross-Origin-Resource-Policy: cross-origin`.
    pub cross_origin: bool,
    /// `Cache-Control` of names without a content hash.
    pub cache: &'static str,
    /// `Content-Security-Policy` of its HTML pages.
    pub csp: Option<&'static str>,
    /// What it is, for people ("the tracker").
    pub name: &'static str,
}

impl Mount {
    /// `/footfall.js` and the wasm it names, for pages on any origin.
    pub fn tracker() -> Mount {
        Mount {
            at: "/",
            from: "tracker",
            entry: "footfall.js",
            spa: false,
            cross_origin: true,
            cache: TRACKER_SCRIPT_CACHE,
            csp: None,
            name: "the tracker (/footfall.js)",
        }
    }

    /// The demo site at `/demo/`.
    pub fn demo() -> Mount {
        Mount {
            at: "/demo/",
            from: "demo",
            entry: "index.html",
            spa: false,
            cross_origin: false,
            cache: PAGE_CACHE,
            csp: None,
            name: "the demo site (/demo/)",
        }
    }

    /// The dashboard at `/dashboard/`.
    pub fn dashboard() -> Mount {
        Mount {
            at: "/dashboard/",
            from: "dashboard",
            entry: "index.html",
            spa: true,
            cross_origin: false,
            cache: PAGE_CACHE,
            csp: Some(DASHBOARD_CSP),
            name: "the dashboard (/dashboard/)",
        }
    }

    fn owns(&self, path: &str, files: &StaticFiles) -> bool {
        if self.at == "/" {
            let Some(rest) = path.strip_prefix('/') else {
                return false;
            };
            !rest.is_empty()
                && !rest.contains('/')
                && (rest == self.entry || files.contains(&format!("{}/{rest}", self.from)))
        } else {
            path == self.at.trim_end_matches('/') || path.starts_with(self.at)
        }
    }

    /// Whether `files` has this part.
    pub fn is_built(&self, files: &StaticFiles) -> bool {
        files.contains(&format!("{}/{}", self.from, self.entry))
    }
}

/// Serves [`Mount`]s of one [`StaticFiles`] set. Cheap to clone.
#[derive(Clone)]
pub struct StaticService {
    files: Arc<StaticFiles>,
    mounts: Arc<[Mount]>,
}

impl StaticService {
    pub fn new(files: Arc<StaticFiles>, mounts: Vec<Mount>) -> Self {
        StaticService {
            files,
            mounts: mounts.into(),
        }
    }

    /// Whether one of the mounts answers `path`.
    pub fn owns(&self, path: &str) -> bool {
        self.mounts.iter().any(|m| m.owns(path, &self.files))
    }

    /// The answer to a request for `path`; a 404 when no mount owns it.
    pub fn answer(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<ResponseBody> {
        let Some(mount) = self.mounts.iter().find(|m| m.owns(path, &self.files)) else {
            return answer::not_found();
        };
        if method != Method::GET && method != Method::HEAD {
            return answer::method_not_allowed("GET, HEAD");
        }
        if mount.at != "/" && path == mount.at.trim_end_matches('/') {
            return answer::redirect(mount.at);
        }
        if !mount.is_built(&self.files) {
            return answer::text(
                StatusCode::NOT_FOUND,
                format!(
                    "{} is not in this footfall build (assets: {}).\n\
                     Build the assets with `cargo xtask dist` before building footfall, or \
                     start footfall with --assets-dir pointing at a dist/ folder.\n",
                    mount.name, self.files.source
                ),
            );
        }
        let rest = &path[mount.at.len()..];
        let not_found = || answer::text(StatusCode::NOT_FOUND, "not found\n");
        let Some(rel) = clean(rest) else {
            return not_found();
        };
        let rel = if rel.is_empty() || rel.ends_with('/') {
            format!("{rel}index.html")
        } else {
            rel.to_string()
        };
        let key = format!("{}/{rel}", mount.from);
        let found = self.files.files.get_key_value(&key).or_else(|| {
            // A deep link into the app gets the app; a missing *file* (it has an extension)
            // stays a 404, so a stale page asking for an old wasm fails loudly.
            let last = rel.rsplit('/').next().unwrap_or("");
            (mount.spa && !last.contains('.'))
                .then(|| {
                    self.files
                        .files
                        .get_key_value(&format!("{}/index.html", mount.from))
                })
                .flatten()
        });
        match found {
            Some((name, asset)) => respond(name, asset, mount, method, headers),
            None => not_found(),
        }
    }
}

/// The relative path, or `None` when a segment tries to leave the folder or reach a hidden
/// file (`..`, `.env`, empty segments, backslashes, NUL). The set holds only its own files,
/// so nothing outside could be reached anyway; this keeps the rule visible.
fn clean(rest: &str) -> Option<&str> {
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, s) in segments.iter().enumerate() {
        let trailing_slash = i == last && s.is_empty();
        if (s.is_empty() && !trailing_slash)
            || s.starts_with('.')
            || s.contains('\\')
            || s.contains('\0')
        {
            return None;
        }
    }
    Some(rest)
}

fn respond(
    name: &str,
    asset: &Asset,
    mount: &Mount,
    method: &Method,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    let coding =
        AcceptEncoding::from_headers(headers).choose(asset.br.is_some(), asset.gzip.is_some());
    let (bytes, etag) = asset.variant(coding);
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| asset.matches(v));
    let mut resp = if not_modified {
        let mut resp = Response::new(ResponseBody::default());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp
    } else if method == Method::HEAD {
        let mut resp = Response::new(ResponseBody::default());
        resp.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        resp
    } else {
        // `Bytes` clones share the buffer: no copy per request.
        Response::new(ResponseBody::new(bytes.clone()))
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, tag);
    }
    let cache = if is_fingerprinted(name) {
        IMMUTABLE
    } else {
        mount.cache
    };
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if let (Some(value), false) = (coding.header(), not_modified) {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(value));
    }
    if asset.has_variants() {
        vary_on_accept_encoding(h);
    }
    if mount.cross_origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("cross-origin"),
        );
    }
    if let Some(csp) = mount.csp {
        if asset.content_type.starts_with("text/html") {
            h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
        }
    }
    resp
}

impl Handler for StaticService {
    fn handle(
        &self,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let resp = self.answer(req.method(), req.uri().path(), req.headers());
        Box::pin(async move { resp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_and_types() {
        assert!(is_fingerprinted("dashboard/dashboard-0123abcdef.wasm"));
        assert!(is_fingerprinted("footfall-0123abcdef.wasm"));
        assert!(!is_fingerprinted("footfall.js"));
        assert!(!is_fingerprinted("my-page.html"));
        assert!(!is_fingerprinted("x-12.js"));
        assert_eq!(content_type("a/b.wasm"), "application/wasm");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn variants_pair_with_their_file_only() {
        static FILES: &[(&str, &[u8])] = &[
            ("tracker/footfall.js", b"js"),
            ("tracker/footfall.js.br", b"br"),
            ("tracker/footfall.js.gz", b"gz"),
            ("demo/data.gz", b"a real gzip download"),
        ];
        let set = StaticFiles::from_embedded(FILES, "test");
        assert_eq!(set.len(), 2);
        assert!(set.contains("tracker/footfall.js"));
        assert!(!set.contains("tracker/footfall.js.br"));
        assert!(set.contains("demo/data.gz"), "no base file: not a variant");
        let js = &set.files["tracker/footfall.js"];
        assert_eq!(js.br.as_deref(), Some(&b"br"[..]));
        assert_eq!(js.gzip.as_deref(), Some(&b"gz"[..]));
    }

    #[test]
    fn paths_that_try_to_leave_are_refused() {
        assert_eq!(clean(""), Some(""));
        assert_eq!(clean("a/b.html"), Some("a/b.html"));
        assert_eq!(clean("shop/"), Some("shop/"));
        for bad in [
            "../secret",
            ".env",
            "a//b",
            "/etc/passwd",
            "a\\b",
            "a/.git/x",
            "a\0",
        ] {
            assert_eq!(clean(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn etags_match_any_variant_weakly() {
        static FILES: &[(&str, &[u8])] = &[("t/x.js", b"x"), ("t/x.js.br", b"y")];
        let set = StaticFiles::from_embedded(FILES, "test");
        let a = &set.files["t/x.js"];
        let (_, br_tag) = a.variant(Coding::Brotli);
        let (_, plain) = a.variant(Coding::Identity);
        let (_, gz) = a.variant(Coding::Gzip);
        assert_eq!(gz, plain, "no gzip variant: identity");
        assert!(a.matches(&br_tag));
        assert!(a.matches(&format!("W/{plain}")));
        assert!(a.matches(&format!("\"other\", {br_tag}")));
        assert!(a.matches("*"));
        assert!(!a.matches("\"other\""));
    }
}
