//! `opencode-share-server [--listen ADDR] [--database URL] [--public-url URL] [--log-format json] [limits]`
//! (`--help` lists every option and its `OPENCODE_SHARE_*` environment variable).

use std::process::ExitCode;

fn main() -> ExitCode {
    // --help and --version print to stdout and exit 0; a mistake is explained on stderr, exit 2
    let cli = <opencode_share_server::Cli as clap::Parser>::parse();
    init_logs(cli.log_format);
    if let Some(opencode_share_server::Command::Admin(command)) = cli.command {
        return admin(&cli.database, command);
    }
    let config = cli.config();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(64)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let signal = tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => "SIGTERM",
        };
        tracing::info!(signal, "stop requested");
    };
    match runtime.block_on(opencode_share_server::serve(config, stop, |url| {
        println!("listening on {url}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// `opencode-share-server admin ...`: one command on the database, its answer on stdout.
fn admin(database: &str, command: opencode_share_server::AdminCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    match runtime.block_on(opencode_share_server::run_admin(
        database, command, &mut out,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("opencode-share-server admin: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries only the "listening on" line callers read), as text for a
/// person or as JSON lines for a log collector.
fn init_logs(format: opencode_share_server::LogFormat) {
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        opencode_share_server::LogFormat::Text => logs
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        opencode_share_server::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// Each connection is a file: raise the soft RLIMIT_NOFILE (often 1024) to the hard limit, so the
/// connection limits and timeouts decide who is refused, not the kernel's default.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let from = limit.current;
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::info!(?from, to = ?limit.current, "raised the open file limit"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
        }
    }
}
