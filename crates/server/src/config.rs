//! The command line (SPEC's `--listen`, `--database`, `--public-url`, plus limits, timeouts,
//! trusted proxies and the create token).

use std::net::IpAddr;
use std::time::Duration;

/// Everything the server is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST:PORT` to bind; port 0 picks a free one.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://...`.
    pub database: String,
    /// What share URLs start with; default `http://<bound address>`.
    pub public_url: Option<String>,
    pub limits: Limits,
    /// When set, creating a share needs `authorization: Bearer <token>`.
    pub create_token: Option<String>,
    /// Peers whose `X-Forwarded-For` names the client (reverse proxies); others' is ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

/// What one client may ask of the server; each has a flag and a default (docs/server.md).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (413 above it).
    pub max_body_bytes: usize,
    /// Largest single item's JSON (413 above it).
    pub max_item_bytes: usize,
    /// Largest total of a share's items (413 for the write that would pass it).
    pub max_share_bytes: u64,
    /// Requests per share per second (429 + Retry-After above it); 0 = no limit.
    pub rate_per_share: u32,
    /// Shares one client address may create per minute (429 above it); 0 = no limit.
    pub creates_per_minute: u32,
    /// Wrong secrets one client address may send per minute (429 above it); 0 = no limit.
    pub wrong_secrets_per_minute: u32,
    /// Live streams (viewer SSE, legacy WebSocket) open on one share (503 above it).
    pub max_viewers_per_share: usize,
    /// Live streams open on the whole server (503 above it).
    pub max_viewers: usize,
    /// Largest WebSocket message a client may send (the connection is closed above it).
    pub max_ws_message_bytes: usize,
    /// Time a client has to send a request's headers, and to start the next one on a kept-alive
    /// connection.
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body (408 past it).
    pub body_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    pub idle_timeout: Duration,
    /// A write the client does not read within this long closes the connection (slow readers).
    pub write_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8787".into(),
            database: "sqlite://opencode-share.db".into(),
            public_url: None,
            limits: Limits::default(),
            create_token: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 << 20,
            max_item_bytes: 16 << 20,
            max_share_bytes: 1 << 30,
            rate_per_share: 1000,
            creates_per_minute: 600,
            wrong_secrets_per_minute: 60,
            max_viewers_per_share: 2000,
            max_viewers: 20_000,
            max_ws_message_bytes: 64 << 10,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
        }
    }
}

pub const USAGE: &str = "usage: opencode-share-server [options]
  --listen ADDR               where to listen (default 127.0.0.1:8787; port 0 picks a free port)
  --database URL              sqlite://PATH (default sqlite://opencode-share.db) or postgres://...
  --public-url URL            what share URLs start with (default http://<listen address>)
  --max-body-bytes N          largest request body (default 33554432)
  --max-item-bytes N          largest item (default 16777216)
  --max-share-bytes N         largest share, all items together (default 1073741824)
  --rate-limit N              requests per share per second, 0 = none (default 1000)
  --create-limit N            shares one client address may create per minute, 0 = none (default 600)
  --wrong-secret-limit N      wrong secrets per client address per minute, 0 = none (default 60)
  --max-viewers-per-share N   live streams open on one share (default 2000)
  --max-viewers N             live streams open in total (default 20000)
  --max-ws-message-bytes N    largest WebSocket message a client may send (default 65536)
  --header-timeout-secs N     to send a request's headers, or the next request's (default 10)
  --body-timeout-secs N       to send a whole request body (default 60)
  --idle-timeout-secs N       a connection silent both ways this long is closed (default 120)
  --write-timeout-secs N      a client that reads nothing this long is cut (default 30)
  --trusted-proxy ADDR        a reverse proxy whose X-Forwarded-For names the client
                              (repeat, or separate with commas; default none)
  --create-token TOKEN        require `authorization: Bearer TOKEN` to create shares
                              (or env OPENCODE_SHARE_CREATE_TOKEN, which keeps it out of `ps`)";

/// Where a numeric flag's value goes.
type Setter = fn(&mut Limits, u64);

/// The numeric limit flags.
const NUMBERS: &[(&str, Setter)] = &[
    ("--max-body-bytes", |l, n| l.max_body_bytes = n as usize),
    ("--max-item-bytes", |l, n| l.max_item_bytes = n as usize),
    ("--max-share-bytes", |l, n| l.max_share_bytes = n),
    ("--rate-limit", |l, n| l.rate_per_share = clamp32(n)),
    ("--create-limit", |l, n| l.creates_per_minute = clamp32(n)),
    ("--wrong-secret-limit", |l, n| {
        l.wrong_secrets_per_minute = clamp32(n)
    }),
    ("--max-viewers-per-share", |l, n| {
        l.max_viewers_per_share = n as usize
    }),
    ("--max-viewers", |l, n| l.max_viewers = n as usize),
    ("--max-ws-message-bytes", |l, n| {
        l.max_ws_message_bytes = n as usize
    }),
    ("--header-timeout-secs", |l, n| l.header_timeout = secs(n)),
    ("--body-timeout-secs", |l, n| l.body_timeout = secs(n)),
    ("--idle-timeout-secs", |l, n| l.idle_timeout = secs(n)),
    ("--write-timeout-secs", |l, n| l.write_timeout = secs(n)),
];

fn clamp32(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

/// Seconds as a timeout (at least one, at most a day).
fn secs(n: u64) -> Duration {
    Duration::from_secs(n.clamp(1, 86_400))
}

impl Config {
    /// Parses the arguments after the program name; `Err` carries a message for stderr.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut config = Config {
            create_token: std::env::var("OPENCODE_SHARE_CREATE_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            ..Config::default()
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.into());
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            config.set(&flag, value)?;
        }
        Ok(config)
    }

    fn set(&mut self, flag: &str, value: String) -> Result<(), String> {
        if let Some((_, setter)) = NUMBERS.iter().find(|(name, _)| *name == flag) {
            let n = value
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not {value:?}"))?;
            setter(&mut self.limits, n);
            return Ok(());
        }
        match flag {
            "--listen" => self.listen = value,
            "--database" => self.database = value,
            "--public-url" => self.public_url = Some(value.trim_end_matches('/').to_owned()),
            "--create-token" => self.create_token = Some(value).filter(|t| !t.is_empty()),
            "--trusted-proxy" => {
                for addr in value.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    let ip = addr
                        .parse::<IpAddr>()
                        .map_err(|_| format!("--trusted-proxy takes IP addresses, not {addr:?}"))?;
                    self.trusted_proxies.push(ip);
                }
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse_and_mistakes_are_explained() {
        let c = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--database",
            "sqlite:///tmp/x.db",
            "--public-url",
            "https://s.example/",
            "--rate-limit",
            "5",
            "--trusted-proxy",
            "10.0.0.1, ::1",
            "--write-timeout-secs",
            "7",
        ])
        .unwrap();
        assert_eq!(
            (c.listen.as_str(), c.database.as_str()),
            ("127.0.0.1:0", "sqlite:///tmp/x.db")
        );
        assert_eq!(c.public_url.as_deref(), Some("https://s.example"));
        assert_eq!(c.limits.rate_per_share, 5);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.limits.write_timeout, Duration::from_secs(7));
        assert!(parse(&["--listen"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&["--bogus", "1"])
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(
            parse(&["--max-body-bytes", "lots"])
                .unwrap_err()
                .contains("takes a number")
        );
        assert!(parse(&["--trusted-proxy", "proxy.lan"]).is_err());
        assert_eq!(parse(&[]).unwrap().listen, "127.0.0.1:8787");
    }
}
