//! `opencode-share`: the shares a ledger folder holds (the library's `spool_dir`; by default the
//! opencode plugin's), listed, and taken down from the service by session id, share id or URL,
//! or all of them, even when the session that made them is long deleted (issue 19).
//!
//! `folders.rs` finds the folders, `ledger.rs` reads one and matches targets, `remove.rs` runs
//! the library on a folder to take shares down. The library is used through its Rust API.

mod folders;
mod ledger;
mod remove;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// List and take down the shares opencode-share made: every share stays in its ledger (the
/// spool folder) until the service confirmed its deletion.
#[derive(Debug, Parser)]
#[command(name = "opencode-share", version)]
struct Cli {
    /// A ledger folder (the library's spool_dir; repeat for several). Default: the opencode
    /// plugin's, $OPENCODE_SHARE_SPOOL_DIR or $XDG_STATE_HOME/opencode-share/spool (and its
    /// -2 to -8 slots that exist).
    #[arg(long = "spool-dir", value_name = "DIR", global = true)]
    spool_dirs: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the shares of the ledger (never their secrets).
    List {
        /// The list as JSON, as share_list gives it.
        #[arg(long)]
        json: bool,
    },
    /// Takes shares down from their service and, once it confirms, out of the ledger.
    Remove {
        /// A session id, share id or share URL of the ledger.
        #[arg(
            value_name = "SESSION|ID|URL",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        target: Option<String>,
        /// Every share of the ledger.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        service: remove::ServiceArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dirs = match folders::chosen(cli.spool_dirs) {
        Ok(dirs) => dirs,
        Err(message) => {
            eprintln!("opencode-share: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::List { json } => ledger::list(&dirs, json),
        Command::Remove {
            target,
            all,
            service,
        } => remove::run(&dirs, target.as_deref().filter(|_| !all), &service),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("opencode-share: {message}");
            ExitCode::from(2)
        }
    }
}
