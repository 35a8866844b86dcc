//! `remove`: runs the library on each ledger folder, once per service its shares live on, and
//! removes each share named with the secret the ledger holds (`api::remove_known`). A share
//! leaves the ledger once its service answers the delete with 2xx, 404 or 410; any other end
//! leaves it there, being removed, and every later run on the folder (this command or a host's
//! `share_init`) sends it again.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use opencode_share::api;
use opencode_share::spool::Entry;
use serde_json::json;

use crate::ledger;

/// Where to send the deletes of shares whose ledger entry does not say (a version 1 spool), and
/// the credentials an org account's service needs.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service of shares the ledger does not name one for (kept by an older version).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The protocol of those shares: v1 or next.
    #[arg(long, value_name = "v1|next", default_value = "v1")]
    protocol: String,
    /// An org account's token ("next"), as the library's `token`.
    #[arg(long, env = "OPENCODE_SHARE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An org account's id ("next"), as the library's `org_id`.
    #[arg(long)]
    org_id: Option<String>,
    /// How long one delete may take, retries included.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    timeout_ms: u64,
}

/// Removes the shares `target` names (every share without one) from each folder. Exit status 0
/// when every one left its ledger, 1 when some are still there, 2 when none is named.
pub fn run(
    dirs: &[impl AsRef<Path>],
    target: Option<&str>,
    args: &ServiceArgs,
) -> Result<ExitCode, String> {
    let mut named = 0;
    let mut failed = 0;
    for dir in dirs {
        let dir = dir.as_ref();
        let entries: Vec<Entry> = ledger::read(dir)?
            .into_iter()
            .filter(|e| target.is_none_or(|t| ledger::names(e, t)))
            .collect();
        named += entries.len();
        for (service, protocol, group) in by_service(entries, args)? {
            failed += remove_group(dir, &service, &protocol, &group, args)?;
        }
    }
    if named == 0 {
        match target {
            Some(t) => eprintln!("opencode-share: no share of the ledger is named {t:?}"),
            None => println!("the ledger holds no share"),
        }
        return Ok(ExitCode::from(if target.is_some() { 2 } else { 0 }));
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The entries grouped by the service (base URL, protocol) they live on.
fn by_service(
    entries: Vec<Entry>,
    args: &ServiceArgs,
) -> Result<Vec<(String, String, Vec<Entry>)>, String> {
    let mut groups: Vec<(String, String, Vec<Entry>)> = Vec::new();
    for e in entries {
        let service = match (&e.share.service, &args.url) {
            (Some(s), _) => s.to_string(),
            (None, Some(url)) => url.trim_end_matches('/').to_owned(),
            (None, None) => {
                return Err(format!(
                    "the ledger does not say which service the share of {} lives on (an older \
                     version kept it): pass --url (and --protocol next if it is one)",
                    e.share.session
                ));
            }
        };
        let protocol = e
            .share
            .protocol
            .as_deref()
            .unwrap_or(&args.protocol)
            .to_owned();
        match groups
            .iter_mut()
            .find(|(s, p, _)| *s == service && *p == protocol)
        {
            Some((_, _, group)) => group.push(e),
            None => groups.push((service, protocol, vec![e])),
        }
    }
    Ok(groups)
}

/// Runs the library on `dir` against one service and removes `group`'s shares; how many are
/// still in the ledger after.
fn remove_group(
    dir: &Path,
    service: &str,
    protocol: &str,
    group: &[Entry],
    args: &ServiceArgs,
) -> Result<usize, String> {
    let mut config = json!({
        "url": service,
        "protocol": protocol,
        "spool_dir": dir,
        "timeout_ms": args.timeout_ms,
        // it was allowed when the share was made (plain http beyond loopback needs it)
        "allow_insecure": service.starts_with("http://"),
    });
    if let Some(token) = &args.token {
        config["token"] = json!(token);
    }
    if let Some(org) = &args.org_id {
        config["org_id"] = json!(org);
    }
    api::init(Some(&config.to_string())).map_err(|e| {
        format!(
            "ledger {}: starting the library for {service}: {e}",
            dir.display()
        )
    })?;
    let mut left = 0;
    for e in group {
        let session = &e.share.session;
        let said = api::remove_known(session);
        let still = api::list()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|k| k.share.session == *session);
        let url = e.share.url.as_deref().unwrap_or(service);
        match (still, said) {
            (false, Ok(())) => println!("removed {session} ({url})"),
            (false, Err(_)) => println!("removed {session} ({url}): the service no longer had it"),
            (true, said) => {
                left += 1;
                let why = said.err().map_or_else(String::new, |e| format!(": {e}"));
                println!("NOT removed {session} ({url}){why}; it stays in the ledger, run again");
            }
        }
    }
    let _ = api::shutdown(Duration::from_secs(5));
    Ok(left)
}
