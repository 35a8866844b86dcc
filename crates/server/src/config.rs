//! The command line (SPEC's `--listen`, `--database`, `--public-url`, plus limits and the create token).

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
}

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8787".into(),
            database: "sqlite://opencode-share.db".into(),
            public_url: None,
            limits: Limits::default(),
            create_token: None,
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
        }
    }
}

pub const USAGE: &str = "usage: opencode-share-server [options]
  --listen ADDR            where to listen (default 127.0.0.1:8787; port 0 picks a free port)
  --database URL           sqlite://PATH (default sqlite://opencode-share.db) or postgres://...
  --public-url URL         what share URLs start with (default http://<listen address>)
  --max-body-bytes N       largest request body (default 33554432)
  --max-item-bytes N       largest item (default 16777216)
  --max-share-bytes N      largest share, all items together (default 1073741824)
  --rate-limit N           requests per share per second, 0 = none (default 1000)
  --create-token TOKEN     require `authorization: Bearer TOKEN` to create shares
                           (or env OPENCODE_SHARE_CREATE_TOKEN, which keeps it out of `ps`)";

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
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag} takes a number, not {v:?}"))
            };
            match flag.as_str() {
                "--listen" => config.listen = value,
                "--database" => config.database = value,
                "--public-url" => config.public_url = Some(value.trim_end_matches('/').to_owned()),
                "--max-body-bytes" => config.limits.max_body_bytes = number(&value)? as usize,
                "--max-item-bytes" => config.limits.max_item_bytes = number(&value)? as usize,
                "--max-share-bytes" => config.limits.max_share_bytes = number(&value)?,
                "--rate-limit" => {
                    config.limits.rate_per_share = number(&value)?.min(u32::MAX as u64) as u32
                }
                "--create-token" => config.create_token = Some(value).filter(|t| !t.is_empty()),
                other => return Err(format!("unknown option {other}\n{USAGE}")),
            }
        }
        Ok(config)
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
        ])
        .unwrap();
        assert_eq!(
            (c.listen.as_str(), c.database.as_str()),
            ("127.0.0.1:0", "sqlite:///tmp/x.db")
        );
        assert_eq!(c.public_url.as_deref(), Some("https://s.example"));
        assert_eq!(c.limits.rate_per_share, 5);
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
        assert_eq!(parse(&[]).unwrap().listen, "127.0.0.1:8787");
    }
}
