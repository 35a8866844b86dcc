//! `opencode-share-server admin ...`: the administrator's commands, run on the database the
//! `--database` URL names (a server may be running on it). Output is for scripts: JSON, one
//! share a line for `list`.

use std::io::Write;

use crate::config::AdminCommand;
use crate::hub::Hub;
use crate::store::{self, ADMIN_PAGE_MAX, StoreError};

/// Runs `command` on `database`, writing its answer to `out`; the error says what failed.
pub async fn run(
    database: &str,
    command: AdminCommand,
    out: &mut impl Write,
) -> Result<(), String> {
    let store = store::open(database).await?;
    let failed = |e: StoreError| match e {
        StoreError::NotFound => "no such share".to_owned(),
        StoreError::Backend(m) => m,
        other => format!("{other:?}"),
    };
    let print = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| format!("cannot write the answer: {e}"))
    };
    match command {
        AdminCommand::List { limit } => {
            let mut after = String::new();
            let mut left = if limit == 0 { usize::MAX } else { limit };
            while left > 0 {
                let page = store
                    .list(after.clone(), left.min(ADMIN_PAGE_MAX))
                    .await
                    .map_err(failed)?;
                for share in &page {
                    print(out, super::info_json(share).to_string())?;
                }
                left = left.saturating_sub(page.len());
                match page.last() {
                    Some(last) if page.len() == ADMIN_PAGE_MAX => after = last.id.clone(),
                    _ => break,
                }
            }
        }
        AdminCommand::Show { id } => {
            let info = store.info(id).await.map_err(failed)?;
            print(out, super::info_json(&info).to_string())?;
        }
        AdminCommand::Export { id } => {
            let whole = super::export(&*store, &id).await.map_err(failed)?;
            print(out, whole.to_string())?;
        }
        AdminCommand::Delete { id } => {
            // a hub of its own: this process has no viewers; on PostgreSQL the running servers
            // close theirs on the store's notification
            super::take_down(&*store, &Hub::new(&store), &id)
                .await
                .map_err(failed)?;
            print(out, format!("deleted {id}"))?;
        }
        AdminCommand::Backup { path } => {
            store.backup(path.clone()).await.map_err(failed)?;
            print(out, format!("backed up to {path}"))?;
        }
    }
    Ok(())
}
