//! Static files: the script-tag tracker at `/footfall.js` (+ `/footfall.wasm` next to it) and
//! the demo site under `/demo/`. First-party and CDN-friendly: cache headers plus an `ETag`
//! so revalidation costs a 304.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use http::{HeaderMap, Method, StatusCode};
use hyper::Response;

use crate::api::ApiError;
use crate::ResponseBody;

/// Browsers re-check the tracker hourly; a CDN may serve a stale copy for a day while it
/// revalidates, so a deploy reaches every visitor within about an hour without a cache purge.
const TRACKER_CACHE: &str = "public, max-age=3600, stale-while-revalidate=86400";
const PAGE_CACHE: &str = "no-cache";

/// Which file a request path names, if it is one of ours.
pub(crate) fn resolve(dir: &Path, path: &str) -> Option<AssetPath> {
    match path {
        "/footfall.js" | "/footfall.wasm" => Some(AssetPath::File {
            file: dir.join("tracker").join(&path[1..]),
            cache: TRACKER_CACHE,
        }),
        "/demo" => Some(AssetPath::Redirect("/demo/")),
        _ => {
            let rest = path.strip_prefix("/demo/")?;
            let rest = if rest.is_empty() || rest.ends_with('/') {
                format!("{rest}index.html")
            } else {
                rest.to_string()
            };
            let mut file = dir.join("demo");
            for segment in rest.split('/') {
                // No traversal, no hidden files, no Windows separators.
                if segment.is_empty()
                    || segment.starts_with('.')
                    || segment.contains('\\')
                    || segment.contains('\0')
                {
                    return None;
                }
                file.push(segment);
            }
            Some(AssetPath::File {
                file,
                cache: PAGE_CACHE,
            })
        }
    }
}

pub(crate) enum AssetPath {
    File { file: PathBuf, cache: &'static str },
    Redirect(&'static str),
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

pub(crate) async fn serve(
    asset: AssetPath,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response<ResponseBody>, ApiError> {
    let (file, cache) = match asset {
        AssetPath::Redirect(to) => {
            let mut resp = Response::new(ResponseBody::default());
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            resp.headers_mut()
                .insert(LOCATION, HeaderValue::from_static(to));
            return Ok(resp);
        }
        AssetPath::File { file, cache } => (file, cache),
    };
    let meta = tokio::fs::metadata(&file)
        .await
        .map_err(|_| ApiError::NotFound)?;
    if !meta.is_file() {
        return Err(ApiError::NotFound);
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), mtime);
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::NotFound)?;

    let mut resp = if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut resp = Response::new(ResponseBody::default());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp
    } else {
        let bytes = tokio::fs::read(&file)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(bytes)
        };
        let mut resp = Response::new(ResponseBody::new(body));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
        resp
    };
    let h = resp.headers_mut();
    h.insert(ETAG, etag_value);
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    // The tracker is loaded by other sites' pages.
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_paths_only() {
        let dir = Path::new("/srv/assets");
        let file = |p: &str| match resolve(dir, p) {
            Some(AssetPath::File { file, .. }) => Some(file),
            _ => None,
        };
        assert_eq!(
            file("/footfall.js"),
            Some(PathBuf::from("/srv/assets/tracker/footfall.js"))
        );
        assert_eq!(
            file("/demo/"),
            Some(PathBuf::from("/srv/assets/demo/index.html"))
        );
        assert_eq!(
            file("/demo/shop/cart.html"),
            Some(PathBuf::from("/srv/assets/demo/shop/cart.html"))
        );
        assert_eq!(file("/demo/../secret"), None);
        assert_eq!(file("/demo/.env"), None);
        assert_eq!(file("/demo//etc/passwd"), None);
        assert_eq!(file("/other.js"), None);
        assert!(matches!(
            resolve(dir, "/demo"),
            Some(AssetPath::Redirect(_))
        ));
    }
}
