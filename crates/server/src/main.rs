//! `opencode-share-server [--listen ADDR] [--database URL] [--public-url URL] [limits]`

use std::process::ExitCode;

fn main() -> ExitCode {
    // logs go to stderr; stdout carries only the "listening on" line callers read
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match opencode_share_server::Config::from_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(message) => {
            // the usage text or a flag's mistake, for the person at the terminal (not a log line)
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
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
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
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
