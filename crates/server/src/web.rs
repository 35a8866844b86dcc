//! How the server behaves on the public web: compressed answers (gzip or br, as the client's
//! `accept-encoding` allows), kept out of search engines unless `--allow-indexing`, and served
//! under `--base-path` for a reverse proxy that forwards a sub-path as it is.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Pages, `/data` and the assets compressed; not live streams (SSE: each event must go out at
/// once) nor small bodies (tower-http's default predicate). Level 4: brotli's and gzip's fast
/// range, a 3 MB page costs milliseconds, not the seconds of brotli's maximum.
pub fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .quality(CompressionLevel::Precise(4))
        .compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new("text/event-stream")),
        )
}

const NO_INDEX: HeaderValue = HeaderValue::from_static("noindex, nofollow");

/// Every answer says `X-Robots-Tag: noindex, nofollow` (pages also carry the meta tag): shares
/// are links for the people they were given to, not for search results.
pub async fn no_index(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::HeaderName::from_static("x-robots-tag"), NO_INDEX);
    response
}

/// `/robots.txt`: every path disallowed, or all allowed with `--allow-indexing`.
pub fn robots<S: Clone + Send + Sync + 'static>(allow_indexing: bool) -> Router<S> {
    let text = if allow_indexing {
        "User-agent: *\nAllow: /\n"
    } else {
        "User-agent: *\nDisallow: /\n"
    };
    Router::new().route("/robots.txt", get(move || async move { text }))
}

/// Why `path` cannot be a `--base-path`: it must be "" or `/segment[/segment...]` of URL-safe
/// characters, without a trailing slash.
pub fn check_base_path(path: &str) -> Result<String, String> {
    let path = path.trim_end_matches('/');
    let fine = path.is_empty()
        || (path.starts_with('/')
            && path[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            }));
    if fine {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "--base-path must look like /share or /tools/share (letters, digits, - . _ ~), not {path:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::check_base_path;

    #[test]
    fn a_base_path_is_slash_separated_safe_segments() {
        assert_eq!(check_base_path("").unwrap(), "");
        assert_eq!(check_base_path("/").unwrap(), "");
        assert_eq!(check_base_path("/share/").unwrap(), "/share");
        assert_eq!(check_base_path("/a/b-c").unwrap(), "/a/b-c");
        for bad in ["share", "/a//b", "/a/../b", "/a b", "/a?b", "/<x>"] {
            assert!(check_base_path(bad).is_err(), "{bad}");
        }
    }
}
