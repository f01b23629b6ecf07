//! Content codings: which one a client accepts (`Accept-Encoding`, with q-values), and the
//! encoders for answers compressed on the fly. Static files are compressed at build time
//! (`cargo xtask dist` writes `.br` and `.gz` next to each file) at the highest settings;
//! on the fly we use fast settings, because the answer is made for one request.

use std::io::Write;

use http::header::{HeaderValue, ACCEPT_ENCODING, VARY};
use http::HeaderMap;

/// A content coding Footfall can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    /// The `Content-Encoding` value; `None` for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }
}

/// What a request's `Accept-Encoding` allows, as q-values (0 = not acceptable).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AcceptEncoding {
    br: f32,
    gzip: f32,
}

impl AcceptEncoding {
    /// Reads every `Accept-Encoding` line. Unknown codings are ignored; `*` stands for the
    /// codings not named; a malformed q-value counts as 0, so a garbled header never gets a
    /// coding the client did not ask for.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let (mut br, mut gzip, mut star) = (None, None, None);
        let parts = headers
            .get_all(ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        for part in parts {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for param in it {
                let param = param.trim();
                if let Some(v) = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="))
                {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0);
                }
            }
            match coding.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => star = Some(q),
                _ => {}
            }
        }
        AcceptEncoding {
            br: br.or(star).unwrap_or(0.0),
            gzip: gzip.or(star).unwrap_or(0.0),
        }
    }

    /// The best coding among those `available` (identity always is): the highest q-value,
    /// brotli on a tie because it is smaller.
    pub fn choose(&self, br_available: bool, gzip_available: bool) -> Coding {
        let br = if br_available { self.br } else { 0.0 };
        let gzip = if gzip_available { self.gzip } else { 0.0 };
        if br > 0.0 && br >= gzip {
            Coding::Brotli
        } else if gzip > 0.0 {
            Coding::Gzip
        } else {
            Coding::Identity
        }
    }
}

/// Adds `Accept-Encoding` to `Vary`, keeping what is there (CORS adds `Origin`).
pub fn vary_on_accept_encoding(headers: &mut HeaderMap) {
    let present = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"));
    if !present {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// Brotli quality for answers made per request: ~4 is the knee where more CPU buys little.
const ON_THE_FLY_BROTLI_QUALITY: u32 = 4;
/// 2^18 = 256 KiB window: our JSON answers are far smaller, and the window is memory.
const ON_THE_FLY_BROTLI_LGWIN: u32 = 18;

/// `bytes` compressed with `coding` using fast settings; `None` for identity (or if the
/// encoder fails, which writing into a `Vec` does not).
pub fn compress(coding: Coding, bytes: &[u8]) -> Option<Vec<u8>> {
    match coding {
        Coding::Identity => None,
        Coding::Brotli => {
            let mut out = Vec::with_capacity(bytes.len() / 3);
            {
                let mut w = brotli::CompressorWriter::new(
                    &mut out,
                    4096,
                    ON_THE_FLY_BROTLI_QUALITY,
                    ON_THE_FLY_BROTLI_LGWIN,
                );
                w.write_all(bytes).ok()?;
                w.flush().ok()?;
            }
            Some(out)
        }
        Coding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(bytes.len() / 3),
                flate2::Compression::fast(),
            );
            gz.write_all(bytes).ok()?;
            gz.finish().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> AcceptEncoding {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(v).expect("header"));
        AcceptEncoding::from_headers(&h)
    }

    #[test]
    fn negotiation() {
        assert_eq!(accept("br, gzip").choose(true, true), Coding::Brotli);
        assert_eq!(
            accept("gzip, deflate, br, zstd").choose(true, true),
            Coding::Brotli
        );
        assert_eq!(accept("br, gzip").choose(false, true), Coding::Gzip);
        assert_eq!(accept("gzip").choose(true, true), Coding::Gzip);
        assert_eq!(accept("br;q=0, gzip").choose(true, true), Coding::Gzip);
        assert_eq!(
            accept("br;q=0.5, gzip;q=0.8").choose(true, true),
            Coding::Gzip
        );
        assert_eq!(accept("*").choose(true, true), Coding::Brotli);
        assert_eq!(accept("*;q=0").choose(true, true), Coding::Identity);
        assert_eq!(accept("identity").choose(true, true), Coding::Identity);
        assert_eq!(accept("br;q=nonsense").choose(true, true), Coding::Identity);
        assert_eq!(accept("gzip;q=2").choose(true, true), Coding::Identity);
        assert_eq!(
            AcceptEncoding::from_headers(&HeaderMap::new()).choose(true, true),
            Coding::Identity
        );
    }

    #[test]
    fn vary_is_merged_not_replaced() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Origin"));
        vary_on_accept_encoding(&mut h);
        vary_on_accept_encoding(&mut h);
        let all: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(all, ["Origin", "Accept-Encoding"]);
    }

    #[test]
    fn compressed_answers_decode_back() {
        use std::io::Read;
        let body = br#"{"pageviews":12345,"top":["/a","/b","/c"]}"#.repeat(50);
        let br = compress(Coding::Brotli, &body).expect("br");
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut out)
            .expect("unbrotli");
        assert_eq!(out, body);
        assert!(br.len() < body.len() / 5);
        let gz = compress(Coding::Gzip, &body).expect("gzip");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, body);
        assert_eq!(compress(Coding::Identity, &body), None);
    }
}
