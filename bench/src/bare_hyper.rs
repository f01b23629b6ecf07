//! The baseline of the ingest benchmark: the same hyper 1.x + tokio stack as the collector,
//! doing nothing but reading the body and answering 204. What standalone achieves is
//! reported as a ratio of this, measured in the same run on the same machine.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18099".into())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(addr).await?;
    eprintln!("bare-hyper listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                // Read the body like the collector must, so the comparison is fair.
                let _ = req.into_body().collect().await;
                let mut resp = Response::new(Empty::<Bytes>::new());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                Ok::<_, Infallible>(resp)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
