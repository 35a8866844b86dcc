//! The HTTP client: one reqwest blocking client (keep-alive pool, rustls, timeouts) shared by
//! every request, turning each request into a [`retry::Attempt`](crate::retry::Attempt). An org
//! account's headers are the client's own, so they go to the configured service only.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::blocking::Client;
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER,
};

use crate::config::Config;
use crate::protocol::{Method, Request};
use crate::retry::{Attempt, parse_retry_after};

/// The largest answer body read. The protocol's answers are a few hundred bytes; a service that
/// answers more (or never ends a chunked body) fails the attempt, and no more than this is buffered.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An answer with its body (read whole, up to [`MAX_ANSWER_BYTES`], so the connection goes back
/// to the pool).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// The header a service advertises its extensions in (docs/append-protocol.md).
pub const EXTENSIONS_HEADER: &str = "x-share-extensions";

/// What the service's newest create or sync answer advertised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Appends of grown strings instead of whole contents.
    pub append: bool,
    /// `content-encoding: gzip` request bodies.
    pub gzip: bool,
}

impl Extensions {
    /// Reads an `x-share-extensions` value: comma-separated tokens, unknown ones ignored.
    pub fn parse(value: &str) -> Extensions {
        let mut found = Extensions::default();
        for token in value.split(',').map(|t| t.trim().to_ascii_lowercase()) {
            match token.as_str() {
                "append" => found.append = true,
                "gzip" => found.gzip = true,
                _ => {}
            }
        }
        found
    }

    fn bits(self) -> u8 {
        u8::from(self.append) | (u8::from(self.gzip) << 1)
    }

    fn from_bits(bits: u8) -> Extensions {
        Extensions {
            append: bits & 1 != 0,
            gzip: bits & 2 != 0,
        }
    }
}

/// The service at one base URL.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    base: String,
    timeout: Duration,
    /// [`Extensions`] as bits, set by each 2xx answer to a create or a sync.
    extensions: Arc<AtomicU8>,
}

impl Http {
    /// Builds the client (milliseconds of work: do it once, on a library thread).
    pub fn new(config: &Config) -> Result<Http, String> {
        // rustls on ring (see Cargo.toml); a provider the process installed first is kept
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            // a redirect would turn the POST into a GET or carry the secret elsewhere
            .redirect(reqwest::redirect::Policy::none())
            // idle connections the service may close on its side are retried, not lost
            .pool_idle_timeout(Duration::from_secs(30));
        if config.loopback {
            builder = builder.no_proxy();
        }
        if let Some(org) = &config.org {
            builder = builder.default_headers(org_headers(&org.token, &org.id)?);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))?;
        Ok(Http {
            client,
            base: config.url.clone(),
            timeout: config.timeout,
            extensions: Arc::default(),
        })
    }

    /// What the service's newest create or sync answer advertised (nothing before one came).
    pub fn extensions(&self) -> Extensions {
        Extensions::from_bits(self.extensions.load(Ordering::Relaxed))
    }

    /// Sends `request` (its body JSON), giving up after `timeout` (at most the configured one).
    pub fn send(&self, request: Request, timeout: Duration) -> Result<Answer, Attempt> {
        let Request {
            method,
            path,
            body,
            learns,
        } = request;
        let path = path.as_str();
        let url = format!("{}{}", self.base, path);
        let builder = match method {
            Method::Post => self.client.post(url),
            Method::Delete => self.client.delete(url),
        };
        let verb = method.as_str();
        let mut builder = builder
            .header(CONTENT_TYPE, "application/json")
            .timeout(timeout.min(self.timeout));
        builder = match gzipped(&body, self.extensions().gzip) {
            Some(packed) => builder.header(CONTENT_ENCODING, "gzip").body(packed),
            None => builder.body(body),
        };
        let response = builder
            .send()
            .map_err(|e| Attempt::Network(describe(verb, path, &e)))?;
        let status = response.status().as_u16();
        if learns && response.status().is_success() {
            let advertised = response
                .headers()
                .get(EXTENSIONS_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(Extensions::parse)
                .unwrap_or_default();
            self.extensions.store(advertised.bits(), Ordering::Relaxed);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_long(verb, path)); // dropped unread: the connection is closed, not pooled
        }
        let body = read_capped(response, MAX_ANSWER_BYTES)
            .map_err(|e| Attempt::Network(format!("{verb} {path} failed reading the answer: {e}")))?
            .ok_or_else(|| too_long(verb, path))?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

/// Request bodies from this size on go gzip-compressed to a service that advertises it.
pub const GZIP_FROM_BYTES: usize = 4096;

/// `body` gzip-compressed, if the service takes that and it is worth it.
fn gzipped(body: &str, accepted: bool) -> Option<Vec<u8>> {
    use std::io::Write;
    if !accepted || body.len() < GZIP_FROM_BYTES {
        return None;
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(body.as_bytes()).ok()?;
    let packed = encoder.finish().ok()?;
    (packed.len() < body.len()).then_some(packed)
}

/// The most characters of a service's reason an error message quotes.
pub const MAX_REASON_CHARS: usize = 200;

impl Answer {
    pub fn attempt(&self) -> Attempt {
        Attempt::Answered {
            status: self.status,
            retry_after: self.retry_after,
        }
    }

    /// What the service said in a failed answer, for an error message: the `error` (or
    /// `message`) text of a JSON body, else the body as text; control characters turned to
    /// spaces, every `hidden` value (a secret, a token) masked, cut at [`MAX_REASON_CHARS`].
    /// None for a body with nothing to say.
    pub fn reason(&self, hidden: &[&str]) -> Option<String> {
        let text = String::from_utf8_lossy(&self.body);
        let said = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                ["error", "message"]
                    .iter()
                    .find_map(|k| v.get(k)?.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| text.into_owned());
        let mut clean = said
            .split(|c: char| c.is_control() || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        for value in hidden.iter().filter(|v| !v.is_empty()) {
            clean = clean.replace(value, crate::content::MASK);
        }
        if clean.chars().count() > MAX_REASON_CHARS {
            clean = clean.chars().take(MAX_REASON_CHARS).collect::<String>() + "…";
        }
        (!clean.is_empty()).then_some(clean)
    }
}

/// Reads `body` to its end if it holds at most `cap` bytes; None past the cap (having buffered at
/// most `cap + 1` bytes).
pub fn read_capped(body: impl Read, cap: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    body.take(cap as u64 + 1).read_to_end(&mut out)?;
    Ok((out.len() <= cap).then_some(out))
}

fn too_long(verb: &str, path: &str) -> Attempt {
    Attempt::BadAnswer(format!(
        "{verb} {path} answered a body over {MAX_ANSWER_BYTES} bytes; not read"
    ))
}

/// `authorization: Bearer <token>` (marked sensitive: never in reqwest's debug output) and
/// `x-org-id`.
fn org_headers(token: &str, org_id: &str) -> Result<HeaderMap, String> {
    let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "config: token is not a valid header value".to_string())?;
    auth.set_sensitive(true);
    let org = HeaderValue::from_str(org_id)
        .map_err(|_| "config: org_id is not a valid header value".to_string())?;
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    headers.insert("x-org-id", org);
    Ok(headers)
}

/// A network error in one line: what failed, and the innermost cause (reqwest's own message
/// names the URL, which holds no secret).
fn describe(verb: &str, path: &str, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("{verb} {path} {what}: {}", chain(e))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_tokens_and_unknown_ones_are_ignored() {
        let both = Extensions::parse(" Append ,gzip, zstd;q=1, future");
        assert_eq!(
            both,
            Extensions {
                append: true,
                gzip: true
            }
        );
        assert_eq!(Extensions::from_bits(both.bits()), both);
        assert_eq!(Extensions::parse("appendix"), Extensions::default());
        assert!(!Extensions::parse("gzip").append);
    }

    #[test]
    fn large_bodies_are_gzipped_only_where_the_service_takes_it() {
        let body = r#"{"text":"a streamed answer"}"#.repeat(200);
        assert_eq!(gzipped(&body, false), None);
        assert_eq!(gzipped(&body[..GZIP_FROM_BYTES - 1], true), None);
        let packed = gzipped(&body, true).expect("compressed");
        assert!(packed.len() < body.len() / 10);
        let mut unpacked = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, body);
    }

    #[test]
    fn bodies_past_the_cap_are_refused_after_reading_one_byte_more() {
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_capped(&b"abcd"[..], 3).unwrap(), None);
        // an endless body: only cap + 1 bytes are ever read
        let mut endless = std::io::repeat(b'x');
        let mut counted = CountingReader(&mut endless, 0);
        assert_eq!(read_capped(&mut counted, 1000).unwrap(), None);
        assert_eq!(counted.1, 1001);
    }

    fn answer(body: &str) -> Answer {
        Answer {
            status: 409,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_reason_is_the_services_text_bounded_on_one_line_without_the_secret() {
        let json = answer(r#"{"error":"a share with this id exists already"}"#);
        assert_eq!(
            json.reason(&[]).as_deref(),
            Some("a share with this id exists already")
        );
        let text = answer("wrong secret 0b5e-7f\r\n\u{1b}[31mfor\tses_1\n");
        assert_eq!(
            text.reason(&["0b5e-7f", ""]).as_deref(),
            Some("wrong secret [secret removed] [31mfor ses_1")
        );
        // escaped in JSON, the secret is masked once decoded
        let escaped = answer(r#"{"message":"secret \u0030b5e-7f"}"#);
        assert_eq!(
            escaped.reason(&["0b5e-7f"]).as_deref(),
            Some("secret [secret removed]")
        );
        let long = answer(&"é".repeat(5000)).reason(&[]).unwrap();
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(answer(" \n").reason(&[]), None);
    }

    struct CountingReader<'a>(&'a mut dyn Read, usize);

    impl Read for CountingReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }
}
