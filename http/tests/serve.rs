//! The shared stack over real sockets: static files as a browser and a CDN see them
//! (encodings, lengths, validators, cache and cross-origin headers), the response layer on
//! every answer, routing, panic isolation, and streamed answers under a slow reader.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use footfall_http::static_files::{IMMUTABLE, TRACKER_SCRIPT_CACHE};
use footfall_http::{
    answer, serve, BoxFuture, Handler, Mount, ResponseBody, Router, ServerLimits, StaticFiles,
    StaticService,
};
use futures_util::StreamExt;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    async fn start(handler: impl Handler) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(
            listener,
            Arc::new(handler),
            ServerLimits::default(),
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            stop: Some(stop),
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers).await
    }

    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = client
            .request(req.body(Full::default()).expect("request"))
            .await
            .expect("response");
        let (parts, body) = resp.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("body").to_bytes(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliCompress(
        &mut &bytes[..],
        &mut out,
        &brotli::enc::BrotliEncoderParams::default(),
    )
    .expect("brotli");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("unbrotli");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

const SCRIPT: &str = "/* the tracker */ new URL('footfall-0123abcdef.wasm', src)";

/// A dist/ folder as `cargo xtask dist` writes it, variants included.
fn dist() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, bytes: &[u8]| {
        let path = tmp.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    let wasm = b"\0asm\x01\0\0\0".repeat(300);
    for (rel, bytes) in [
        ("tracker/footfall.js", SCRIPT.repeat(20).into_bytes()),
        ("tracker/footfall-0123abcdef.wasm", wasm),
        ("demo/index.html", b"<html>demo</html>".to_vec()),
        ("demo/shop/cart.html", b"<html>cart</html>".to_vec()),
        ("dashboard/index.html", b"<html>app</html>".to_vec()),
        ("dashboard/dashboard-0123abcdef.js", b"export{}".to_vec()),
    ] {
        write(rel, &bytes);
        write(&format!("{rel}.br"), &brotli(&bytes));
        write(&format!("{rel}.gz"), &gzip(&bytes));
    }
    write(".hidden", b"secret");
    tmp
}

fn everything(files: StaticFiles) -> StaticService {
    StaticService::new(
        Arc::new(files),
        vec![Mount::tracker(), Mount::demo(), Mount::dashboard()],
    )
}

async fn static_server(files: StaticFiles) -> Server {
    let service = everything(files);
    let owner = service.clone();
    Server::start(Router::new().route(move |p| owner.owns(p), service)).await
}

#[tokio::test]
async fn the_tracker_is_delivered_compressed_cross_origin_and_cacheable() {
    let dir = dist();
    let server = static_server(StaticFiles::from_dir(dir.path()).expect("read dist")).await;
    let raw = std::fs::read(dir.path().join("tracker/footfall.js")).expect("read");

    let br = server
        .get("/footfall.js", &[("accept-encoding", "br, gzip")])
        .await;
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(br.header("vary"), "Accept-Encoding");
    assert_eq!(br.header("content-length"), br.body.len().to_string());
    assert_eq!(unbrotli(&br.body), raw);
    assert_eq!(br.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(br.header("cache-control"), TRACKER_SCRIPT_CACHE);
    assert_eq!(br.header("access-control-allow-origin"), "*");
    assert_eq!(br.header("cross-origin-resource-policy"), "cross-origin");
    assert_eq!(br.header("x-content-type-options"), "nosniff");

    let gz = server
        .get("/footfall.js", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(gz.header("content-encoding"), "gzip");
    let plain = server.get("/footfall.js", &[]).await;
    assert_eq!(plain.header("content-encoding"), "");
    assert_eq!(plain.body, raw);
    let etags = [br.header("etag"), gz.header("etag"), plain.header("etag")];
    assert!(etags.iter().all(|t| t.starts_with('"')));
    assert_ne!(etags[0], etags[1], "one validator per encoding");

    let again = server
        .get(
            "/footfall.js",
            &[("accept-encoding", "br, gzip"), ("if-none-match", etags[0])],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etags[0]);
    assert_eq!(again.header("access-control-allow-origin"), "*");

    let wasm = server
        .get(
            "/footfall-0123abcdef.wasm",
            &[("accept-encoding", "br, gzip")],
        )
        .await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.header("content-type"), "application/wasm");
    assert_eq!(wasm.header("cache-control"), IMMUTABLE);
    assert_eq!(wasm.header("access-control-allow-origin"), "*");
    assert_eq!(wasm.header("content-encoding"), "br");

    let head = server
        .send(Method::HEAD, "/footfall.js", &[("accept-encoding", "br")])
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), br.body.len().to_string());
    let post = server.send(Method::POST, "/footfall.js", &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), "GET, HEAD");
}

#[tokio::test]
async fn pages_and_the_single_page_app() {
    let dir = dist();
    let server = static_server(StaticFiles::from_dir(dir.path()).expect("read dist")).await;
    let demo = server.get("/demo/", &[]).await;
    assert_eq!(
        (demo.status, &demo.body[..]),
        (StatusCode::OK, &b"<html>demo</html>"[..])
    );
    assert_eq!(demo.header("cache-control"), "no-cache");
    assert_eq!(demo.header("access-control-allow-origin"), "");
    assert_eq!(demo.header("x-frame-options"), "DENY");
    let redirect = server.get("/demo", &[]).await;
    assert_eq!(redirect.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(redirect.header("location"), "/demo/");
    assert_eq!(
        server.get("/demo/shop/cart.html", &[]).await.status,
        StatusCode::OK
    );
    for bad in [
        "/demo/../tracker/footfall.js",
        "/demo/.hidden",
        "/demo//etc/passwd",
        "/demo/nope.html",
    ] {
        assert_eq!(
            server.get(bad, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }

    let deep = server.get("/dashboard/history/today", &[]).await;
    assert_eq!(
        (deep.status, &deep.body[..]),
        (StatusCode::OK, &b"<html>app</html>"[..])
    );
    assert!(deep
        .header("content-security-policy")
        .contains("frame-ancestors 'none'"));
    let js = server
        .get(
            "/dashboard/dashboard-0123abcdef.js",
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(js.header("cache-control"), IMMUTABLE);
    assert_eq!(js.header("content-encoding"), "gzip");
    let stale = server
        .get("/dashboard/dashboard-ffffffffff.wasm", &[])
        .await;
    assert_eq!(
        stale.status,
        StatusCode::NOT_FOUND,
        "a missing file is not the app"
    );

    let unknown = server.get("/nothing-here", &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.header("content-type"), answer::JSON);
    assert_eq!(
        server.get("/.hidden", &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_build_without_assets_says_so_at_every_asset_path() {
    let server = static_server(StaticFiles::empty("none embedded in this binary")).await;
    for path in ["/footfall.js", "/demo/", "/dashboard/", "/dashboard/x"] {
        let reply = server.get(path, &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            text.contains("is not in this footfall build"),
            "{path}: {text}"
        );
        assert!(text.contains("cargo xtask dist") && text.contains("--assets-dir"));
        assert!(text.contains("none embedded in this binary"));
    }
}

/// A handler answering a large JSON body, and panicking on `/boom`.
struct BigJson;

impl Handler for BigJson {
    fn handle(
        &self,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let path = req.uri().path().to_string();
        Box::pin(async move {
            assert_ne!(path, "/api/boom", "a bug hit by this request");
            let pages: Vec<String> = (0..200).map(|i| format!("/page/{i}")).collect();
            let mut resp = answer::json(StatusCode::OK, &pages);
            // The layer overrides any cache policy under /api/.
            resp.headers_mut().insert(
                "cache-control",
                http::HeaderValue::from_static("max-age=60"),
            );
            resp
        })
    }
}

#[tokio::test]
async fn large_api_answers_are_compressed_never_cached_and_a_panic_is_a_500() {
    let server = Server::start(BigJson).await;
    let plain = server.get("/api/stats/breakdown", &[]).await;
    assert!(plain.body.len() > 1024);
    assert_eq!(plain.header("cache-control"), "no-store");
    assert_eq!(plain.header("vary"), "Accept-Encoding");
    assert_eq!(
        plain.header("content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
    let br = server
        .get("/api/stats/breakdown", &[("accept-encoding", "br, gzip")])
        .await;
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(br.header("content-length"), br.body.len().to_string());
    assert_eq!(unbrotli(&br.body), plain.body);
    assert!(br.body.len() < plain.body.len() / 3);

    let boom = server.get("/api/boom", &[]).await;
    assert_eq!(boom.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = serde_json::from_slice(&boom.body).expect("json");
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(
        server.get("/api/stats/summary", &[]).await.status,
        StatusCode::OK,
        "the server survives"
    );
}

/// A handler streaming `CHUNKS` chunks of `CHUNK` bytes, counting how many it has produced.
struct Streamer {
    produced: Arc<std::sync::atomic::AtomicUsize>,
}

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 1024;

impl Handler for Streamer {
    fn handle(
        &self,
        _req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let produced = self.produced.clone();
        Box::pin(async move {
            let chunks = futures_util::stream::iter(0..CHUNKS).map(move |_| {
                produced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(Bytes::from(vec![b'x'; CHUNK]))
            });
            let mut resp = Response::new(ResponseBody::stream(chunks));
            resp.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/x-ndjson"),
            );
            resp
        })
    }
}

#[tokio::test]
async fn a_streamed_answer_is_chunked_and_produced_only_as_fast_as_it_is_read() {
    use std::sync::atomic::Ordering;

    let produced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = Server::start(Streamer {
        produced: produced.clone(),
    })
    .await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::get(format!("http://{}/api/export/events", server.addr))
        .header("accept-encoding", "br")
        .body(Full::default())
        .expect("request");
    let resp = client.request(req).await.expect("response");
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    assert!(!resp.headers().contains_key("content-encoding"));
    assert!(!resp.headers().contains_key("content-length"));
    let mut body = resp.into_body().into_data_stream();
    let first = body.next().await.expect("a chunk").expect("data");
    assert!(!first.is_empty());
    // A reader that stops: the server stops producing once the socket buffers are full,
    // far short of the 64 MiB answer — nothing is built up in memory.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ahead = produced.load(Ordering::SeqCst);
    assert!(
        ahead < CHUNKS / 4,
        "{ahead} of {CHUNKS} chunks produced for a reader that took one"
    );
    let mut total = first.len();
    while let Some(chunk) = body.next().await {
        total += chunk.expect("data").len();
    }
    assert_eq!(total, CHUNK * CHUNKS);
    assert_eq!(produced.load(Ordering::SeqCst), CHUNKS);
}
