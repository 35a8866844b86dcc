//! The `share_init` configuration: JSON parsing, validation, and the service URL's resolution.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The production share service (opencode's `https://api.opencode.ai`).
pub const PROD_API: &str = "https://api.opencode.ai";
/// The dev share service, used by `dev` and `0.0.0-…` snapshot installations.
pub const DEV_API: &str = "https://api.dev.opencode.ai";
/// opencode's hosted service for the successor protocol ("next").
pub const NEXT_API: &str = "https://opncd.ai";

/// Which wire protocol the library speaks (see [`crate::protocol`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolName {
    /// The legacy `Share` protocol: one key per request.
    V1,
    /// opencode's successor protocol (`ShareNext`): one request carries many items of one share.
    Next,
}

impl ProtocolName {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolName::V1 => "v1",
            ProtocolName::Next => "next",
        }
    }
}

/// An org account's credentials ("next" only). `Debug` is redacted: the token is a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Org {
    pub token: String,
    pub id: String,
}

impl std::fmt::Debug for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Org(<redacted>)")
    }
}

/// A validated configuration with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Base URL of the service, without a trailing slash.
    pub url: String,
    /// The same without any `user:password@`, for stats and messages.
    pub shown_url: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub concurrency: usize,
    pub max_retries: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_pending_bytes: usize,
    /// Largest content uploaded; a bigger one is dropped with an event (the hosted v1 service
    /// refuses a value over 131 072 bytes with 500).
    pub max_content_bytes: usize,
    /// Least time between the starts of two requests of one key.
    pub min_interval: Duration,
    pub user_agent: String,
    /// True when the URL's host is loopback (requests to it never go through a proxy).
    pub loopback: bool,
    pub protocol: ProtocolName,
    /// `token` + `org_id`: the org account the "next" requests go to.
    pub org: Option<Org>,
    /// The durable spool's folder (SPEC "Durability"); None: nothing touches the disk.
    pub spool_dir: Option<PathBuf>,
    /// Longest time an accepted content waits before the spool thread writes it.
    pub spool_interval: Duration,
    /// Longest time between two fsyncs of what the spool thread wrote.
    pub spool_fsync: Duration,
    /// Credential redaction before upload (`redact`, `redact_patterns`, `redact_allow`); None: off.
    pub redact: Option<std::sync::Arc<crate::redact::Policy>>,
}

/// The JSON object as the host wrote it; every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<String>,
    version: Option<String>,
    timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    concurrency: Option<u64>,
    max_retries: Option<u32>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    max_pending_bytes: Option<u64>,
    max_content_bytes: Option<u64>,
    min_interval_ms: Option<u64>,
    user_agent: Option<String>,
    allow_insecure: Option<bool>,
    protocol: Option<String>,
    token: Option<String>,
    org_id: Option<String>,
    spool_dir: Option<String>,
    spool_interval_ms: Option<u64>,
    spool_fsync_ms: Option<u64>,
    redact: Option<bool>,
    redact_patterns: Option<std::collections::BTreeMap<String, String>>,
    redact_allow: Option<Vec<String>>,
}

const MAX_CONCURRENCY: u64 = 64;
/// The hosted v1 service's limit on one stored value.
pub const DEFAULT_MAX_CONTENT_BYTES: u64 = 131_072;
/// A streaming part is rewritten per provider chunk; 25 ms (40 requests a second per key) is
/// below what a reader of the shared page can tell, and keeps the newest content within about
/// one round trip of a 20 ms service.
const DEFAULT_MIN_INTERVAL_MS: u64 = 25;
/// Under "next" a request carries the whole share's pending items, so a hot item costs more per
/// request and less per write: 100 ms (ten requests a second for a streaming part) keeps a
/// reader's page within about a tenth of a second of the writer.
const DEFAULT_NEXT_MIN_INTERVAL_MS: u64 = 100;
const MAX_MS: u64 = 24 * 3600 * 1000;

impl Config {
    /// Parses `json` (None or "" for all defaults); `env_api` is `OPENCODE_API`'s value.
    pub fn parse(json: Option<&str>, env_api: Option<&str>) -> Result<Config> {
        let raw: Raw = match json.map(str::trim) {
            None | Some("") => Raw::default(),
            Some(text) => {
                serde_json::from_str(text).map_err(|e| Error::invalid(format!("config: {e}")))?
            }
        };
        let protocol = protocol_of(raw.protocol.as_deref())?;
        let org = org_of(raw.token, raw.org_id, protocol)?;
        let url = match protocol {
            ProtocolName::V1 => resolve_url(
                raw.url.as_deref(),
                env_api,
                raw.version.as_deref().unwrap_or(""),
            ),
            ProtocolName::Next => resolve_url(raw.url.as_deref().or(Some(NEXT_API)), None, ""),
        };
        let shown_url = without_credentials(&url);
        let loopback = check_url(&url, raw.allow_insecure.unwrap_or(false), raw.url.is_none())?;

        let timeout = millis("timeout_ms", raw.timeout_ms, 30_000, 1)?;
        let connect_timeout = millis("connect_timeout_ms", raw.connect_timeout_ms, 5_000, 1)?;
        let retry_initial = millis("retry_initial_ms", raw.retry_initial_ms, 250, 1)?;
        let retry_max = millis("retry_max_ms", raw.retry_max_ms, 30_000, 1)?;
        let min_interval = millis(
            "min_interval_ms",
            raw.min_interval_ms,
            match protocol {
                ProtocolName::V1 => DEFAULT_MIN_INTERVAL_MS,
                ProtocolName::Next => DEFAULT_NEXT_MIN_INTERVAL_MS,
            },
            0,
        )?;
        if retry_max < retry_initial {
            return Err(Error::invalid(
                "config: retry_max_ms must not be below retry_initial_ms",
            ));
        }
        let concurrency = raw.concurrency.unwrap_or(8);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(Error::invalid(format!(
                "config: concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}"
            )));
        }
        let max_pending_bytes =
            at_least_one("max_pending_bytes", raw.max_pending_bytes, 256 << 20)?;
        let max_content_bytes = at_least_one(
            "max_content_bytes",
            raw.max_content_bytes,
            DEFAULT_MAX_CONTENT_BYTES,
        )?;
        let spool_interval = millis("spool_interval_ms", raw.spool_interval_ms, 20, 1)?;
        let spool_fsync = millis("spool_fsync_ms", raw.spool_fsync_ms, 1000, 1)?;
        let spool_dir = spool_dir_of(raw.spool_dir)?;
        let user_agent = user_agent_of(raw.user_agent)?;
        Ok(Config {
            url,
            shown_url,
            timeout,
            connect_timeout,
            concurrency: concurrency as usize,
            max_retries: raw.max_retries.unwrap_or(10),
            retry_initial,
            retry_max,
            max_pending_bytes,
            max_content_bytes,
            min_interval,
            user_agent,
            loopback,
            protocol,
            org,
            spool_dir,
            spool_interval,
            spool_fsync,
            redact: crate::redact::from_config(raw.redact, raw.redact_patterns, raw.redact_allow)
                .map_err(|e| Error::invalid(format!("config: {e}")))?,
        })
    }
}

/// `protocol`: "v1" (the default) or "next".
fn protocol_of(name: Option<&str>) -> Result<ProtocolName> {
    match name {
        None | Some("v1") => Ok(ProtocolName::V1),
        Some("next") => Ok(ProtocolName::Next),
        Some(other) => Err(Error::invalid(format!(
            "config: protocol must be \"v1\" or \"next\", got {other:?}"
        ))),
    }
}

/// `token` and `org_id`: an org account ("next" only), both or neither.
fn org_of(
    token: Option<String>,
    id: Option<String>,
    protocol: ProtocolName,
) -> Result<Option<Org>> {
    match (token, id) {
        (None, None) => Ok(None),
        (Some(token), Some(id)) => {
            if protocol != ProtocolName::Next {
                return Err(Error::invalid(
                    "config: token and org_id are for \"protocol\": \"next\" (org accounts)",
                ));
            }
            let printable = |v: &str| !v.is_empty() && v.bytes().all(|b| (0x21..0x7f).contains(&b));
            if !printable(&token) || !printable(&id) {
                return Err(Error::invalid(
                    "config: token and org_id must be non-empty printable ASCII without spaces",
                ));
            }
            Ok(Some(Org { token, id }))
        }
        _ => Err(Error::invalid(
            "config: token and org_id go together (an org account needs both)",
        )),
    }
}

/// A duration in milliseconds between `min` and `MAX_MS`.
fn millis(name: &str, value: Option<u64>, default: u64, min: u64) -> Result<Duration> {
    let v = value.unwrap_or(default);
    if v < min || v > MAX_MS {
        return Err(Error::invalid(format!(
            "config: {name} must be between {min} and {MAX_MS}, got {v}"
        )));
    }
    Ok(Duration::from_millis(v))
}

/// A byte count of at least 1.
fn at_least_one(name: &str, value: Option<u64>, default: u64) -> Result<usize> {
    let v = value.unwrap_or(default);
    if v == 0 {
        return Err(Error::invalid(format!("config: {name} must be at least 1")));
    }
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

/// `spool_dir`: a non-empty path without NUL, if given.
fn spool_dir_of(dir: Option<String>) -> Result<Option<PathBuf>> {
    match dir {
        None => Ok(None),
        Some(dir) if dir.is_empty() || dir.contains('\0') => Err(Error::invalid(
            "config: spool_dir must be a non-empty path without NUL",
        )),
        Some(dir) => Ok(Some(PathBuf::from(dir))),
    }
}

/// `user_agent`: non-empty printable text (default `opencode-share/<version>`).
fn user_agent_of(agent: Option<String>) -> Result<String> {
    let agent = agent.unwrap_or_else(|| format!("opencode-share/{}", env!("CARGO_PKG_VERSION")));
    if agent.is_empty() || agent.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            "config: user_agent must be non-empty printable text",
        ));
    }
    Ok(agent)
}

/// The base URL: the `url` key, else `OPENCODE_API`, else dev or production by `version`
/// (`dev`, or a `0.0.0…` snapshot, picks dev). Trailing slashes are dropped.
pub fn resolve_url(url: Option<&str>, env_api: Option<&str>, version: &str) -> String {
    let chosen = url
        .or(env_api.filter(|v| !v.is_empty()))
        .unwrap_or_else(|| {
            if version == "dev" || version.starts_with("0.0.0") {
                DEV_API
            } else {
                PROD_API
            }
        });
    chosen.trim_end_matches('/').to_string()
}

/// Checks the URL's shape; plain http needs a loopback host unless `allow_insecure`.
/// Returns whether the host is loopback.
/// `url` without the `user:password@` of its authority, if any (credentials stay out of stats
/// and messages; requests still use them).
pub fn without_credentials(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

fn check_url(url: &str, allow_insecure: bool, from_env: bool) -> Result<bool> {
    let origin = if from_env {
        "OPENCODE_API"
    } else {
        "config: url"
    };
    let parsed = reqwest::Url::parse(url);
    let url = without_credentials(url);
    let parsed =
        parsed.map_err(|e| Error::invalid(format!("{origin} {url:?} is not a URL: {e}")))?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(Error::invalid(format!("{origin} {url:?} has no host")));
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback || allow_insecure => {}
        "http" => {
            return Err(Error::invalid(format!(
                "{origin} {url:?} is plain http to a host that is not loopback: \
                 set allow_insecure to true to permit it"
            )));
        }
        other => {
            return Err(Error::invalid(format!(
                "{origin} {url:?}: scheme {other:?} is not http or https"
            )));
        }
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::invalid(format!(
            "{origin} {url:?} must not have a query or fragment"
        )));
    }
    Ok(loopback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn err(json: &str) -> String {
        let e = Config::parse(Some(json), None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        e.message
    }

    #[test]
    fn defaults() {
        for json in [None, Some(""), Some("  "), Some("{}")] {
            let c = Config::parse(json, None).unwrap();
            assert_eq!(c.url, PROD_API);
            assert_eq!(c.timeout, Duration::from_secs(30));
            assert_eq!(c.connect_timeout, Duration::from_secs(5));
            assert_eq!(c.concurrency, 8);
            assert_eq!(c.max_retries, 10);
            assert_eq!(c.retry_initial, Duration::from_millis(250));
            assert_eq!(c.retry_max, Duration::from_secs(30));
            assert_eq!(c.max_pending_bytes, 268_435_456);
            assert_eq!(c.max_content_bytes, 131_072);
            assert_eq!(c.min_interval, Duration::from_millis(25));
            assert_eq!(
                c.user_agent,
                format!("opencode-share/{}", env!("CARGO_PKG_VERSION"))
            );
            assert!(!c.loopback);
            assert_eq!(c.spool_dir, None);
            assert_eq!(
                (c.spool_interval, c.spool_fsync),
                (Duration::from_millis(20), Duration::from_secs(1))
            );
        }
    }

    #[test]
    fn credentials_in_the_url_are_kept_for_requests_and_hidden_elsewhere() {
        for (given, shown) in [
            ("http://u:pw@127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://u@api.test/base", "https://api.test/base"),
            ("https://a@b:c@api.test", "https://api.test"),
            ("https://api.test/p@th", "https://api.test/p@th"),
            ("https://api.test", "https://api.test"),
            ("user:pw@host:1", "host:1"), // no scheme: still hidden
        ] {
            assert_eq!(without_credentials(given), shown, "{given}");
        }
        let c = Config::parse(Some(r#"{"url":"http://u:hunter2@localhost:9"}"#), None).unwrap();
        assert_eq!(c.url, "http://u:hunter2@localhost:9");
        assert_eq!(c.shown_url, "http://localhost:9");
        let message = err(r#"{"url":"http://u:hunter2@example.com"}"#);
        assert!(
            message.contains("allow_insecure") && !message.contains("hunter2"),
            "{message}"
        );
    }

    #[test]
    fn every_key_is_read() {
        let c = Config::parse(
            Some(
                r#"{"url":"http://10.0.0.5:8080/","version":"1.0.0","timeout_ms":100,
                "connect_timeout_ms":50,"concurrency":1,"max_retries":0,"retry_initial_ms":5,
                "retry_max_ms":10,"max_pending_bytes":1000,"min_interval_ms":0,"user_agent":"host/1",
                "allow_insecure":true,"spool_dir":"/var/spool/x","spool_interval_ms":5,
                "spool_fsync_ms":50}"#,
            ),
            None,
        )
        .unwrap();
        assert_eq!(c.url, "http://10.0.0.5:8080");
        assert_eq!(
            (c.timeout, c.connect_timeout),
            (Duration::from_millis(100), Duration::from_millis(50))
        );
        assert_eq!(c.min_interval, Duration::ZERO);
        assert_eq!(
            (c.concurrency, c.max_retries, c.max_pending_bytes),
            (1, 0, 1000)
        );
        assert_eq!(
            (c.retry_initial, c.retry_max),
            (Duration::from_millis(5), Duration::from_millis(10))
        );
        assert_eq!(c.user_agent, "host/1");
        assert_eq!(
            c.spool_dir.as_deref(),
            Some(std::path::Path::new("/var/spool/x"))
        );
        assert_eq!(
            (c.spool_interval, c.spool_fsync),
            (Duration::from_millis(5), Duration::from_millis(50))
        );
    }

    #[test]
    fn the_next_protocol_has_its_own_url_interval_and_org_account() {
        let c = Config::parse(
            Some(r#"{"protocol":"next"}"#),
            Some("https://ignored.example"),
        )
        .unwrap();
        assert_eq!(c.protocol, ProtocolName::Next);
        assert_eq!(c.url, NEXT_API, "OPENCODE_API names the legacy service");
        assert_eq!(
            c.min_interval,
            Duration::from_millis(DEFAULT_NEXT_MIN_INTERVAL_MS)
        );
        assert_eq!(c.org, None);
        assert_eq!(
            Config::parse(None, None).unwrap().protocol,
            ProtocolName::V1
        );
        let c = Config::parse(
            Some(
                r#"{"protocol":"next","token":"tok-5e3cret","org_id":"org_1","min_interval_ms":7}"#,
            ),
            None,
        )
        .unwrap();
        let org = c.org.clone().unwrap();
        assert_eq!(
            (org.token.as_str(), org.id.as_str()),
            ("tok-5e3cret", "org_1")
        );
        assert_eq!(c.min_interval, Duration::from_millis(7));
        assert!(
            !format!("{c:?}").contains("5e3cret"),
            "the token is redacted"
        );
        assert!(err(r#"{"protocol":"v2"}"#).contains("protocol"));
        assert!(err(r#"{"protocol":"next","token":"t"}"#).contains("go together"));
        assert!(err(r#"{"token":"t","org_id":"o"}"#).contains("next"));
        let bad = err(r#"{"protocol":"next","token":"a b-5e3cret","org_id":"o"}"#);
        assert!(
            bad.contains("printable") && !bad.contains("5e3cret"),
            "{bad}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        assert!(err(r#"{"urll":"x"}"#).contains("unknown field `urll`"));
        assert!(err(r#"{"concurrency":"8"}"#).contains("config"));
        assert!(err(r#"{"timeout_ms":-1}"#).contains("config"));
        assert!(err("[1]").contains("config"));
        assert!(err("not json").contains("config"));
        assert!(err(r#"{} {}"#).contains("config"));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(err(r#"{"concurrency":0}"#).contains("concurrency"));
        assert!(err(r#"{"concurrency":65}"#).contains("concurrency"));
        assert!(err(r#"{"timeout_ms":0}"#).contains("timeout_ms"));
        assert!(err(r#"{"retry_initial_ms":100,"retry_max_ms":50}"#).contains("retry_max_ms"));
        assert!(err(r#"{"max_pending_bytes":0}"#).contains("max_pending_bytes"));
        assert!(err(r#"{"max_content_bytes":0}"#).contains("max_content_bytes"));
        assert!(err(r#"{"user_agent":""}"#).contains("user_agent"));
        assert!(err("{\"user_agent\":\"a\\nb\"}").contains("user_agent"));
        assert!(err(r#"{"spool_dir":""}"#).contains("spool_dir"));
        assert!(err(r#"{"spool_interval_ms":0}"#).contains("spool_interval_ms"));
        assert!(err(r#"{"spool_fsync_ms":0}"#).contains("spool_fsync_ms"));
    }

    #[test]
    fn url_resolution() {
        assert_eq!(
            resolve_url(Some("https://x.test/"), Some("https://env.test"), "dev"),
            "https://x.test"
        );
        assert_eq!(
            resolve_url(None, Some("https://env.test//"), "dev"),
            "https://env.test"
        );
        assert_eq!(resolve_url(None, Some(""), "dev"), DEV_API);
        assert_eq!(resolve_url(None, None, "dev"), DEV_API);
        assert_eq!(resolve_url(None, None, "0.0.0-202507011200"), DEV_API);
        assert_eq!(resolve_url(None, None, "0.3.110"), PROD_API);
        assert_eq!(resolve_url(None, None, ""), PROD_API);
        assert_eq!(resolve_url(None, None, "development"), PROD_API);
        let c = Config::parse(Some(r#"{"version":"dev"}"#), Some("http://127.0.0.1:9")).unwrap();
        assert_eq!(c.url, "http://127.0.0.1:9");
        assert!(c.loopback);
    }

    #[test]
    fn plain_http_needs_loopback_or_allow_insecure() {
        for ok in [
            "http://127.0.0.1:1",
            "http://127.9.9.9",
            "http://localhost:3000",
            "http://[::1]:80",
            "https://share.example",
        ] {
            assert!(
                Config::parse(Some(&format!(r#"{{"url":"{ok}"}}"#)), None).is_ok(),
                "{ok}"
            );
        }
        assert!(err(r#"{"url":"http://10.1.2.3"}"#).contains("allow_insecure"));
        assert!(err(r#"{"url":"http://share.example"}"#).contains("allow_insecure"));
        assert!(err(r#"{"url":"ftp://share.example"}"#).contains("scheme"));
        assert!(err(r#"{"url":"share.example"}"#).contains("not a URL"));
        assert!(err(r#"{"url":"https://share.example/?a=1"}"#).contains("query"));
        let e = Config::parse(None, Some("http://share.example")).unwrap_err();
        assert!(e.message.contains("OPENCODE_API"), "{}", e.message);
    }
}
