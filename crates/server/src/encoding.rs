//! Request bodies sent `content-encoding: gzip` (advertised with the append extension,
//! docs/append-protocol.md), decoded before the protocols read them. The body limit applies to
//! the body as decoded: one that decodes past it is refused with 413 whatever its compressed
//! size (a zip bomb costs the server at most the limit plus one byte).

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Decodes a gzip body in place (within `max_body_bytes`); other encodings are refused (400),
/// bodies without one pass untouched.
pub async fn decode_request(state: State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(encoding) = request.headers().get(header::CONTENT_ENCODING) else {
        return next.run(request).await;
    };
    let encoding = encoding.to_str().unwrap_or("").trim().to_ascii_lowercase();
    if encoding == "identity" {
        return next.run(request).await;
    }
    if encoding != "gzip" {
        let said = format!("content-encoding {encoding:?} is not supported; send gzip or none");
        return ApiError::BadRequest(said).into_response();
    }
    let limit = state.shares.limits.max_body_bytes;
    let (mut parts, body) = request.into_parts();
    let packed = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) if timed_out(&e) => return ApiError::Timeout.into_response(),
        Err(_) => return too_large().into_response(),
    };
    let decoded = match gunzip(&packed, limit) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return too_large().into_response(),
        Err(e) => {
            return ApiError::BadRequest(format!("the gzip body does not decode: {e}"))
                .into_response();
        }
    };
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::CONTENT_LENGTH);
    next.run(Request::from_parts(parts, Body::from(decoded)))
        .await
}

/// Whether reading the body failed at its deadline (`conn::BodyTimedOut` among the causes).
fn timed_out(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if cause.is::<crate::conn::BodyTimedOut>() {
            return true;
        }
        source = cause.source();
    }
    false
}

fn too_large() -> ApiError {
    ApiError::TooLarge("the request body passes the server's limit once decoded".into())
}

/// `packed` gunzipped, or None when it decodes past `limit` bytes (reading at most one more).
fn gunzip(packed: &[u8], limit: usize) -> std::io::Result<Option<Bytes>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(packed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)?;
    Ok((out.len() <= limit).then(|| Bytes::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_body_decodes_within_the_limit_and_a_bomb_does_not() {
        assert_eq!(
            gunzip(&gzip(b"{}"), 2).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        let bomb = gzip(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 20 << 10, "{} bytes", bomb.len());
        assert_eq!(gunzip(&bomb, 1 << 20).unwrap(), None);
        assert!(gunzip(b"not gzip", 100).is_err());
    }
}
