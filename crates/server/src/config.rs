//! The command line (SPEC's `--listen`, `--database`, `--public-url`, plus limits, timeouts,
//! trusted proxies, the create token and the log format), parsed by clap, each option also an
//! `OPENCODE_SHARE_*` environment variable; and the `Config` the server runs with.

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
    /// When set, the admin HTTP API (`/admin/...`) answers requests bearing this token.
    pub admin_token: Option<String>,
    /// Shares not written for this long are deleted (`--expire-after DAYS`); None keeps them.
    pub expire_after: Option<Duration>,
    /// How often the retention sweep runs.
    pub expire_sweep: Duration,
    /// Leave out `noindex` (pages, `X-Robots-Tag`, `/robots.txt`).
    pub allow_indexing: bool,
    /// Replace credentials in what clients write by a marker, before it is stored (`--redact`).
    pub redact: bool,
    /// Serve every route under this path (`/share-server`), for a reverse proxy that forwards a
    /// sub-path unchanged; "" = at the root.
    pub base_path: String,
}

/// What one client may ask of the server; each has a flag and a default (docs/server.md).
#[derive(Debug, Clone, PartialEq)]
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
            admin_token: None,
            expire_after: None,
            expire_sweep: Duration::from_secs(600),
            allow_indexing: false,
            base_path: String::new(),
            redact: false,
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

/// How log lines are written: for a person (`text`) or one JSON object a line (`json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The command line; every option has an `OPENCODE_SHARE_*` environment twin (the flag wins).
#[derive(Debug, clap::Parser)]
#[command(
    name = "opencode-share-server",
    version,
    about = "Self-hosted share service for opencode sessions (both share protocols, a live viewer)"
)]
pub struct Cli {
    /// Without a command, the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Where to listen, HOST:PORT (port 0 picks a free port). On 0.0.0.0 or :: the server needs
    /// --public-url, or it refuses to start rather than hand out http://0.0.0.0 links.
    #[arg(
        long,
        env = "OPENCODE_SHARE_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8787"
    )]
    pub listen: String,
    /// sqlite://PATH or postgres://...
    #[arg(
        long,
        env = "OPENCODE_SHARE_DATABASE",
        value_name = "URL",
        default_value = "sqlite://opencode-share.db",
        hide_env_values = true,
        global = true
    )]
    pub database: String,
    /// What share URLs start with [default: http://<listen address>]
    #[arg(long, env = "OPENCODE_SHARE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Log lines as text or as JSON, one object a line.
    #[arg(
        long,
        env = "OPENCODE_SHARE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Largest request body, in bytes.
    #[arg(long, env = "OPENCODE_SHARE_MAX_BODY_BYTES", value_name = "N", default_value_t = 32 << 20)]
    pub max_body_bytes: u64,
    /// Largest single item, in bytes.
    #[arg(long, env = "OPENCODE_SHARE_MAX_ITEM_BYTES", value_name = "N", default_value_t = 16 << 20)]
    pub max_item_bytes: u64,
    /// Largest share, all items together, in bytes.
    #[arg(long, env = "OPENCODE_SHARE_MAX_SHARE_BYTES", value_name = "N", default_value_t = 1 << 30)]
    pub max_share_bytes: u64,
    /// Requests per share per second, 0 = none.
    #[arg(
        long,
        env = "OPENCODE_SHARE_RATE_LIMIT",
        value_name = "N",
        default_value_t = 1000
    )]
    pub rate_limit: u64,
    /// Shares one client address may create per minute, 0 = none.
    #[arg(
        long,
        env = "OPENCODE_SHARE_CREATE_LIMIT",
        value_name = "N",
        default_value_t = 600
    )]
    pub create_limit: u64,
    /// Wrong secrets per client address per minute, 0 = none.
    #[arg(
        long,
        env = "OPENCODE_SHARE_WRONG_SECRET_LIMIT",
        value_name = "N",
        default_value_t = 60
    )]
    pub wrong_secret_limit: u64,
    /// Live streams open on one share.
    #[arg(
        long,
        env = "OPENCODE_SHARE_MAX_VIEWERS_PER_SHARE",
        value_name = "N",
        default_value_t = 2000
    )]
    pub max_viewers_per_share: u64,
    /// Live streams open in total.
    #[arg(
        long,
        env = "OPENCODE_SHARE_MAX_VIEWERS",
        value_name = "N",
        default_value_t = 20_000
    )]
    pub max_viewers: u64,
    /// Largest WebSocket message a client may send, in bytes.
    #[arg(long, env = "OPENCODE_SHARE_MAX_WS_MESSAGE_BYTES", value_name = "N", default_value_t = 64 << 10)]
    pub max_ws_message_bytes: u64,
    /// Seconds to send a request's headers, or to start the next request (1..=86400).
    #[arg(
        long,
        env = "OPENCODE_SHARE_HEADER_TIMEOUT_SECS",
        value_name = "N",
        default_value_t = 10
    )]
    pub header_timeout_secs: u64,
    /// Seconds to send a whole request body (1..=86400).
    #[arg(
        long,
        env = "OPENCODE_SHARE_BODY_TIMEOUT_SECS",
        value_name = "N",
        default_value_t = 60
    )]
    pub body_timeout_secs: u64,
    /// A connection silent both ways this many seconds is closed (1..=86400).
    #[arg(
        long,
        env = "OPENCODE_SHARE_IDLE_TIMEOUT_SECS",
        value_name = "N",
        default_value_t = 120
    )]
    pub idle_timeout_secs: u64,
    /// A client that reads nothing this many seconds is cut (1..=86400).
    #[arg(
        long,
        env = "OPENCODE_SHARE_WRITE_TIMEOUT_SECS",
        value_name = "N",
        default_value_t = 30
    )]
    pub write_timeout_secs: u64,
    /// A reverse proxy whose X-Forwarded-For names the client (repeat, or separate with commas).
    #[arg(long = "trusted-proxy", env = "OPENCODE_SHARE_TRUSTED_PROXIES", value_name = "ADDR", value_delimiter = ',', value_parser = parse_ip)]
    pub trusted_proxies: Vec<IpAddr>,
    /// Require `authorization: Bearer TOKEN` to create shares (prefer the environment variable,
    /// which keeps the token out of `ps`).
    #[arg(
        long,
        env = "OPENCODE_SHARE_CREATE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub create_token: Option<String>,
    /// Turn on the admin HTTP API (/admin/shares...) for requests with `authorization: Bearer
    /// TOKEN` (prefer the environment variable).
    #[arg(
        long,
        env = "OPENCODE_SHARE_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Delete shares nobody wrote to for DAYS days (swept every 10 minutes); unset keeps them.
    #[arg(long, env = "OPENCODE_SHARE_EXPIRE_AFTER", value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub expire_after: Option<u64>,
    /// Let search engines index shares (by default pages and answers say noindex and
    /// /robots.txt disallows everything).
    #[arg(long, env = "OPENCODE_SHARE_ALLOW_INDEXING")]
    pub allow_indexing: bool,
    /// Serve every route under PATH (e.g. /share-server), for a reverse proxy that forwards
    /// that sub-path unchanged; set --public-url to the proxy's URL with the same path.
    #[arg(long, env = "OPENCODE_SHARE_BASE_PATH", value_name = "PATH", default_value = "", value_parser = crate::web::check_base_path)]
    pub base_path: String,
    /// Replace credentials (API keys, tokens, private keys, passwords in URLs...) in everything
    /// clients write by a marker naming the rule, before it is stored: the client library's
    /// rule set, for clients that do not redact themselves.
    #[arg(long, env = "OPENCODE_SHARE_REDACT")]
    pub redact: bool,
}

/// What the binary does besides serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Administer the database directly (a server may be running on it): list, show, export,
    /// delete shares, back it up
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// The administrator's commands (docs/server.md, "Admin").
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Every share, one JSON object a line: id, sessionID, items, bytes, created, updated (Unix seconds)
    List {
        /// At most N shares, 0 = all
        #[arg(long, value_name = "N", default_value_t = 0)]
        limit: usize,
    },
    /// One share's row as JSON
    Show { id: String },
    /// One share with all its items, as JSON
    Export { id: String },
    /// Delete a share and its items, without its secret (a takedown)
    Delete { id: String },
    /// Copy the SQLite database, consistent, to a new file PATH while the server runs (for
    /// PostgreSQL use pg_dump)
    Backup { path: String },
}

/// An IP address, spaces around it allowed (`10.0.0.1, ::1`).
fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("takes IP addresses, not {text:?}"))
}

fn clamp32(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

fn clamp_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Seconds as a timeout (at least one, at most a day).
fn secs(n: u64) -> Duration {
    Duration::from_secs(n.clamp(1, 86_400))
}

impl Cli {
    /// The server's configuration from the parsed command line.
    pub fn config(&self) -> Config {
        Config {
            listen: self.listen.clone(),
            database: self.database.clone(),
            public_url: self
                .public_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(|u| u.trim_end_matches('/').to_owned()),
            limits: Limits {
                max_body_bytes: clamp_usize(self.max_body_bytes),
                max_item_bytes: clamp_usize(self.max_item_bytes),
                max_share_bytes: self.max_share_bytes,
                rate_per_share: clamp32(self.rate_limit),
                creates_per_minute: clamp32(self.create_limit),
                wrong_secrets_per_minute: clamp32(self.wrong_secret_limit),
                max_viewers_per_share: clamp_usize(self.max_viewers_per_share),
                max_viewers: clamp_usize(self.max_viewers),
                max_ws_message_bytes: clamp_usize(self.max_ws_message_bytes),
                header_timeout: secs(self.header_timeout_secs),
                body_timeout: secs(self.body_timeout_secs),
                idle_timeout: secs(self.idle_timeout_secs),
                write_timeout: secs(self.write_timeout_secs),
            },
            create_token: self.create_token.clone().filter(|t| !t.is_empty()),
            trusted_proxies: self.trusted_proxies.clone(),
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            expire_after: self.expire_after.map(|d| Duration::from_secs(d * 86_400)),
            allow_indexing: self.allow_indexing,
            base_path: self.base_path.clone(),
            redact: self.redact,
            ..Config::default()
        }
    }
}

/// Why a server bound to `addr` cannot start: an unspecified address (0.0.0.0, ::) is not one a
/// browser can reach, so without `--public-url` every share link would be `http://0.0.0.0:PORT/...`.
pub fn unreachable_links(addr: std::net::SocketAddr, public_url: Option<&str>) -> Option<String> {
    (public_url.is_none() && addr.ip().is_unspecified()).then(|| {
        format!(
            "listening on {addr} needs --public-url (or OPENCODE_SHARE_PUBLIC_URL): share links \
             would otherwise name http://{addr}, which no browser can open; set it to the address \
             people reach this server by, e.g. --public-url https://share.example.com"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("opencode-share-server").chain(args.iter().copied()))
    }

    #[test]
    fn flags_parse_in_both_spellings_and_mistakes_are_explained() {
        let c = parse(&[
            "--listen=127.0.0.1:0",
            "--database",
            "sqlite:///tmp/x.db",
            "--public-url",
            "https://s.example/",
            "--rate-limit=5",
            "--trusted-proxy",
            "10.0.0.1, ::1",
            "--trusted-proxy=10.0.0.2",
            "--write-timeout-secs",
            "7",
            "--log-format=json",
        ])
        .unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        let c = c.config();
        assert_eq!(
            (c.listen.as_str(), c.database.as_str()),
            ("127.0.0.1:0", "sqlite:///tmp/x.db")
        );
        assert_eq!(c.public_url.as_deref(), Some("https://s.example"));
        assert_eq!(c.limits.rate_per_share, 5);
        assert_eq!(c.trusted_proxies.len(), 3);
        assert_eq!(c.limits.write_timeout, Duration::from_secs(7));
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        assert_eq!(kind(&["--listen"]), ErrorKind::InvalidValue);
        assert_eq!(kind(&["--bogus", "1"]), ErrorKind::UnknownArgument);
        assert_eq!(
            kind(&["--max-body-bytes", "lots"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["--trusted-proxy", "proxy.lan"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&["--log-format", "xml"]), ErrorKind::InvalidValue);
        assert_eq!(kind(&["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["--version"]), ErrorKind::DisplayVersion);
    }

    #[test]
    fn the_defaults_are_the_configs_defaults() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Text);
        let (parsed, default) = (cli.config(), Config::default());
        assert_eq!(parsed.listen, default.listen);
        assert_eq!(parsed.database, default.database);
        assert_eq!(parsed.limits, default.limits);
        assert!(parsed.public_url.is_none() && parsed.trusted_proxies.is_empty());
    }

    #[test]
    fn the_help_names_every_environment_variable() {
        let help = parse(&["--help"]).unwrap_err().to_string();
        for name in [
            "OPENCODE_SHARE_LISTEN",
            "OPENCODE_SHARE_DATABASE",
            "OPENCODE_SHARE_CREATE_TOKEN",
            "OPENCODE_SHARE_TRUSTED_PROXIES",
            "OPENCODE_SHARE_LOG_FORMAT",
            "OPENCODE_SHARE_ADMIN_TOKEN",
            "OPENCODE_SHARE_EXPIRE_AFTER",
            "OPENCODE_SHARE_ALLOW_INDEXING",
            "OPENCODE_SHARE_BASE_PATH",
            "OPENCODE_SHARE_REDACT",
        ] {
            assert!(help.contains(name), "{name} missing from\n{help}");
        }
    }

    #[test]
    fn admin_commands_take_the_database_before_or_after_them() {
        let c = parse(&["admin", "show", "abc12345", "--database", "sqlite:///x.db"]).unwrap();
        assert_eq!(c.database, "sqlite:///x.db");
        assert!(
            matches!(c.command, Some(Command::Admin(AdminCommand::Show { ref id })) if id == "abc12345")
        );
        let c = parse(&[
            "--database=postgres://h/db",
            "admin",
            "list",
            "--limit",
            "5",
        ])
        .unwrap();
        assert_eq!(c.database, "postgres://h/db");
        assert!(matches!(
            c.command,
            Some(Command::Admin(AdminCommand::List { limit: 5 }))
        ));
        assert_eq!(
            parse(&["admin", "drop"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
        let c = parse(&["--expire-after", "30", "--admin-token=t"])
            .unwrap()
            .config();
        assert_eq!(c.expire_after, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        assert_eq!(
            parse(&["--expire-after", "0"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn an_unspecified_address_without_a_public_url_is_refused() {
        let any: std::net::SocketAddr = "0.0.0.0:8787".parse().unwrap();
        let any6: std::net::SocketAddr = "[::]:8787".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:8787".parse().unwrap();
        assert!(
            unreachable_links(any, None)
                .unwrap()
                .contains("--public-url")
        );
        assert!(unreachable_links(any6, None).is_some());
        assert!(unreachable_links(any, Some("https://s.example")).is_none());
        assert!(unreachable_links(local, None).is_none());
    }
}
