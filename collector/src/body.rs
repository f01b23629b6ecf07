//! Reading request bodies under caps that are enforced *while* reading, never after: a
//! client cannot make the collector buffer more than the cap, compressed or inflated.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use footfall_http::log_limit::LogLimit;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::api::ApiError;

/// Inflation ratios above this are logged: legitimate JSON batches compress ~5–15×.
const GZIP_BOMB_RATIO_WARN: usize = 100;

/// Accepts `application/json`, `text/plain` (what `sendBeacon` with a string sends, which
/// avoids a CORS preflight) and a missing content type; refuses anything else.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let raw = value.to_str().unwrap_or("");
    let essence = raw.split(';').next().unwrap_or("").trim();
    // Compared without case, without building a lower-cased copy on every request.
    if ["application/json", "text/plain"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(raw.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    match headers.get(CONTENT_ENCODING) {
        None => Ok(Encoding::Identity),
        Some(v) => {
            let coding = v.to_str().unwrap_or("").trim();
            let is = |name: &str| coding.eq_ignore_ascii_case(name);
            if coding.is_empty() || is("identity") {
                Ok(Encoding::Identity)
            } else if is("gzip") || is("x-gzip") {
                Ok(Encoding::Gzip)
            } else {
                Err(ApiError::UnsupportedEncoding(coding.to_ascii_lowercase()))
            }
        }
    }
}

/// Reads the whole body: at most `limit` bytes on the wire, at most `inflated_limit` after
/// gzip. A `Content-Length` over the cap is refused before reading anything.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    inflated_limit: usize,
) -> Result<Bytes, ApiError> {
    let encoding = content_encoding(headers)?;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let collected = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BodyRead
        }
    })?;
    let raw = collected.to_bytes();
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => gunzip(&raw, inflated_limit).map(Bytes::from),
    }
}

/// Inflates gzip, stopping as soon as the output passes `limit`.
pub(crate) fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity((compressed.len() * 4).min(limit));
    // Reading one byte past the limit tells "exactly at the limit" from "over it".
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|_| ApiError::BadGzip)?;
    // Any client can send these at will: one line a minute at most (see `LogLimit`).
    static TOO_BIG: LogLimit = LogLimit::new(Duration::from_secs(60));
    static HIGH_RATIO: LogLimit = LogLimit::new(Duration::from_secs(60));
    if out.len() > limit {
        if let Some(suppressed) = TOO_BIG.allow() {
            tracing::warn!(
                compressed = compressed.len(),
                limit,
                suppressed,
                "gzip body inflates past the cap; refused"
            );
        }
        return Err(ApiError::PayloadTooLarge { limit });
    }
    if !compressed.is_empty() && out.len() / compressed.len() > GZIP_BOMB_RATIO_WARN {
        if let Some(suppressed) = HIGH_RATIO.allow() {
            tracing::warn!(
                compressed = compressed.len(),
                inflated = out.len(),
                suppressed,
                "unusually high gzip ratio"
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("write");
        enc.finish().expect("finish")
    }

    #[test]
    fn gunzip_at_limit_and_one_over() {
        let data = vec![b'a'; 1000];
        assert_eq!(gunzip(&gzip(&data), 1000).expect("at limit").len(), 1000);
        assert!(matches!(
            gunzip(&gzip(&data), 999),
            Err(ApiError::PayloadTooLarge { limit: 999 })
        ));
    }

    #[test]
    fn gzip_bomb_stops_early() {
        // 50 MB of zeros compresses to ~50 KB; inflating stops at the cap.
        let bomb = gzip(&vec![0u8; 50 * 1024 * 1024]);
        assert!(matches!(
            gunzip(&bomb, 1024 * 1024),
            Err(ApiError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_bad_gzip() {
        assert!(matches!(gunzip(b"not gzip", 100), Err(ApiError::BadGzip)));
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        for ok in [
            "application/json",
            "text/plain;charset=UTF-8",
            "Application/JSON; x=y",
        ] {
            h.insert(CONTENT_TYPE, ok.parse().expect("header"));
            assert!(check_content_type(&h).is_ok(), "{ok}");
        }
        h.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().expect("header"),
        );
        assert!(matches!(
            check_content_type(&h),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn encodings() {
        let mut h = HeaderMap::new();
        assert_eq!(content_encoding(&h).ok(), Some(Encoding::Identity));
        h.insert(CONTENT_ENCODING, "GZIP".parse().expect("header"));
        assert_eq!(content_encoding(&h).ok(), Some(Encoding::Gzip));
        h.insert(CONTENT_ENCODING, "br".parse().expect("header"));
        assert!(content_encoding(&h).is_err());
    }
}
