//! [`ResponseBody`]: what every handler answers with. Almost every answer is small and
//! complete when it is made (JSON, static files), and is kept as one buffer; an answer too
//! large to hold (a raw-event export) is a *stream* of chunks, pulled one at a time as the
//! client reads, so the server's memory stays flat however much is sent.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};

/// Why a streamed body stopped early. hyper then aborts the connection instead of ending
/// the body cleanly, so a client never takes a truncated stream for a whole one.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response Footfall's HTTP services produce.
pub struct ResponseBody(Kind);

enum Kind {
    Full(Full<Bytes>),
    Stream(BoxStream<'static, Result<Bytes, BodyError>>),
}

impl ResponseBody {
    /// A complete body.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        ResponseBody(Kind::Full(Full::new(bytes.into())))
    }

    /// A body sent as `stream` yields chunks (chunked transfer encoding). The stream is
    /// polled only when the connection can take more, so a slow reader holds back the
    /// producer instead of filling memory. An `Err` aborts the connection.
    pub fn stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BodyError>,
    {
        ResponseBody(Kind::Stream(stream.map(|r| r.map_err(Into::into)).boxed()))
    }

    /// Whether this body is a stream (which the response layer never buffers).
    pub fn is_stream(&self) -> bool {
        matches!(self.0, Kind::Stream(_))
    }

    /// The whole body of a complete one; `None` for a stream.
    pub fn into_full(self) -> Result<Full<Bytes>, Self> {
        match self.0 {
            Kind::Full(full) => Ok(full),
            kind @ Kind::Stream(_) => Err(ResponseBody(kind)),
        }
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        ResponseBody::new(Bytes::new())
    }
}

impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> Self {
        ResponseBody::new(bytes)
    }
}

impl From<String> for ResponseBody {
    fn from(s: String) -> Self {
        ResponseBody::new(s)
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(v: Vec<u8>) -> Self {
        ResponseBody::new(v)
    }
}

impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> Self {
        ResponseBody::new(s)
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Full(full) => f.debug_tuple("ResponseBody::Full").field(full).finish(),
            Kind::Stream(_) => f.write_str("ResponseBody::Stream"),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().0 {
            Kind::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never: Infallible| match never {}),
            Kind::Stream(stream) => loop {
                match stream.as_mut().poll_next(cx) {
                    // An empty chunk would read as the end of a chunked body: skip it.
                    Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                    other => return other.map(|item| item.map(|r| r.map(Frame::data))),
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(full) => full.is_end_stream(),
            Kind::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(full) => full.size_hint(),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use futures_util::stream;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_full_body_is_one_exact_frame() {
        let body = ResponseBody::from("hello".to_string());
        assert!(!body.is_stream());
        assert_eq!(body.size_hint().exact(), Some(5));
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }

    #[tokio::test]
    async fn a_stream_is_pulled_chunk_by_chunk_and_skips_empty_chunks() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let chunks = stream::iter(["a", "", "b", "c"]).map(move |s| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Bytes::from_static(s.as_bytes()))
        });
        let mut body = ResponseBody::stream(chunks);
        assert!(body.is_stream());
        assert_eq!(body.size_hint().exact(), None);
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().expect("data"), "a");
        // Nothing beyond the first chunk was produced before it was asked for.
        assert_eq!(pulled.load(Ordering::SeqCst), 1);
        let rest = body.collect().await.expect("body").to_bytes();
        assert_eq!(&rest[..], b"bc");
    }

    #[tokio::test]
    async fn a_failing_stream_is_an_error_not_an_end() {
        let chunks = stream::iter([
            Ok(Bytes::from_static(b"a")),
            Err(std::io::Error::other("store gone")),
        ]);
        let err = ResponseBody::stream(chunks)
            .collect()
            .await
            .expect_err("the failure reaches the connection");
        assert!(err.to_string().contains("store gone"));
    }
}
