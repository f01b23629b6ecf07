//! The admin dashboard's static files at `/dashboard/`, from `<assets-dir>/dashboard/` as
//! `cargo xtask dist` writes them.
//!
//! It is a single-page app: `/dashboard/` and any sub-path that is not a file get
//! `index.html`, so a reload on a deep link works. Caching follows the build: the wasm and
//! JS carry a content hash in their names (`dashboard-<10 hex>.wasm`) and are cached for a
//! year as immutable; everything else, above all `index.html`, is `no-cache`, so a deploy is
//! picked up on the next load. The files are public (the data is what the token guards).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
/// Same-origin everything; the inline bootstrap script and styles of `index.html` need
/// 'unsafe-inline', the wasm needs 'wasm-unsafe-eval'.
const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Serves `/dashboard/`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// `<assets-dir>/dashboard`; `None` when the server was started without assets.
    dir: Option<PathBuf>,
}

impl Dashboard {
    /// Files from `<assets_dir>/dashboard/`.
    pub fn new(assets_dir: &Path) -> Self {
        Dashboard {
            dir: Some(assets_dir.join("dashboard")),
        }
    }

    /// Whether `path` is the dashboard's.
    pub fn owns(path: &str) -> bool {
        path == "/dashboard" || path.starts_with("/dashboard/")
    }

    pub async fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        if path == "/dashboard" {
            let mut resp = text(StatusCode::MOVED_PERMANENTLY, "");
            resp.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/dashboard/"));
            return resp;
        }
        let Some(dir) = &self.dir else {
            return not_built();
        };
        let rest = path.strip_prefix("/dashboard/").unwrap_or("");
        let Some(target) = resolve(dir, rest) else {
            return text(StatusCode::NOT_FOUND, "not found");
        };
        let head = req.method() == Method::HEAD;
        match target {
            Target::File(file) => match tokio::fs::read(&file).await {
                Ok(bytes) => file_response(&file, bytes, head),
                // A missing file that looks like one (has an extension) is a 404, not the
                // app: a stale index.html asking for an old wasm should fail loudly.
                Err(_) if has_extension(&file) => text(StatusCode::NOT_FOUND, "not found"),
                Err(_) => self.index(dir, head).await,
            },
            Target::Index => self.index(dir, head).await,
        }
    }

    async fn index(&self, dir: &Path, head: bool) -> Response<Full<Bytes>> {
        let file = dir.join("index.html");
        match tokio::fs::read(&file).await {
            Ok(bytes) => file_response(&file, bytes, head),
            Err(_) => not_built(),
        }
    }
}

enum Target {
    File(PathBuf),
    Index,
}

/// The file a sub-path names, `Index` for the app's own routes, `None` for a path that tries
/// to leave the folder (`..`, hidden files, backslashes, NUL).
fn resolve(dir: &Path, rest: &str) -> Option<Target> {
    if rest.is_empty() || rest.ends_with('/') {
        return Some(Target::Index);
    }
    let mut file = dir.to_path_buf();
    for segment in rest.split('/') {
        if segment.is_empty()
            || segment.starts_with('.')
            || segment.contains('\\')
            || segment.contains('\0')
        {
            return None;
        }
        file.push(segment);
    }
    Some(Target::File(file))
}

fn has_extension(file: &Path) -> bool {
    file.extension().is_some()
}

/// `dashboard-0123456789.wasm`: a name with a content hash, safe to cache forever.
fn is_fingerprinted(file: &Path) -> bool {
    let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else {
        return false;
    };
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
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

fn file_response(file: &Path, bytes: Vec<u8>, head: bool) -> Response<Full<Bytes>> {
    let len = bytes.len();
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(bytes)
    };
    let mut resp = Response::new(Full::new(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(file)));
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    let cache = if is_fingerprinted(file) {
        IMMUTABLE
    } else {
        NO_CACHE
    };
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if content_type(file).starts_with("text/html") {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    resp
}

fn not_built() -> Response<Full<Bytes>> {
    text(
        StatusCode::NOT_FOUND,
        "The dashboard is not built: run `cargo xtask dist` (it writes dist/dashboard/) \
         and start footfall with --assets-dir pointing at dist/.",
    )
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn get(d: &Dashboard, path: &str) -> (StatusCode, String, String, String) {
        let req = Request::get(path).body(()).expect("request");
        let resp = d.handle(&req).await;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (ct, cache) = (header(CONTENT_TYPE), header(CACHE_CONTROL));
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            ct,
            cache,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn built() -> (tempfile::TempDir, Dashboard) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("dashboard");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("index.html"), "<html>app</html>").expect("write");
        std::fs::write(dir.join("dashboard-0123abcdef.wasm"), b"\0asm").expect("write");
        std::fs::write(dir.join("dashboard-0123abcdef.js"), "export{}").expect("write");
        std::fs::write(dir.join("robots.txt"), "no").expect("write");
        std::fs::write(tmp.path().join("secret"), "s").expect("write");
        let d = Dashboard::new(tmp.path());
        (tmp, d)
    }

    #[tokio::test]
    async fn serves_files_with_types_and_caching() {
        let (_tmp, d) = built();
        let (s, ct, cache, body) = get(&d, "/dashboard/").await;
        assert_eq!(
            (s, ct.as_str(), cache.as_str()),
            (StatusCode::OK, "text/html; charset=utf-8", "no-cache")
        );
        assert_eq!(body, "<html>app</html>");
        let (s, ct, cache, _) = get(&d, "/dashboard/dashboard-0123abcdef.wasm").await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/wasm"));
        assert_eq!(cache, IMMUTABLE);
        let (_, ct, cache, _) = get(&d, "/dashboard/dashboard-0123abcdef.js").await;
        assert_eq!(ct, "text/javascript; charset=utf-8");
        assert_eq!(cache, IMMUTABLE);
        let (_, _, cache, _) = get(&d, "/dashboard/robots.txt").await;
        assert_eq!(cache, "no-cache");
    }

    #[tokio::test]
    async fn unknown_routes_get_the_app_but_missing_files_do_not() {
        let (_tmp, d) = built();
        let (s, ct, cache, body) = get(&d, "/dashboard/history/today").await;
        assert_eq!(s, StatusCode::OK);
        assert!(ct.starts_with("text/html"));
        assert_eq!(cache, "no-cache");
        assert_eq!(body, "<html>app</html>");
        let (s, _, _, _) = get(&d, "/dashboard/dashboard-ffffffffff.wasm").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn stays_inside_its_folder() {
        let (_tmp, d) = built();
        for path in [
            "/dashboard/../secret",
            "/dashboard/.env",
            "/dashboard//etc/passwd",
        ] {
            assert_eq!(get(&d, path).await.0, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[tokio::test]
    async fn redirect_method_and_not_built() {
        let (_tmp, d) = built();
        let req = Request::get("/dashboard").body(()).expect("request");
        let resp = d.handle(&req).await;
        assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            resp.headers().get(LOCATION).map(|v| v.as_bytes()),
            Some(&b"/dashboard/"[..])
        );
        let req = Request::post("/dashboard/").body(()).expect("request");
        assert_eq!(
            d.handle(&req).await.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        let empty = tempfile::tempdir().expect("tempdir");
        let (s, _, _, body) = get(&Dashboard::new(empty.path()), "/dashboard/").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(body.contains("cargo xtask dist"));
        assert_eq!(
            get(&Dashboard::default(), "/dashboard/").await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn fingerprints() {
        assert!(is_fingerprinted(Path::new("dashboard-0123abcdef.wasm")));
        assert!(!is_fingerprinted(Path::new("index.html")));
        assert!(!is_fingerprinted(Path::new("my-page.html")));
        assert!(!is_fingerprinted(Path::new("x-12.js")));
        assert!(Dashboard::owns("/dashboard"));
        assert!(Dashboard::owns("/dashboard/x"));
        assert!(!Dashboard::owns("/dashboards"));
    }
}
