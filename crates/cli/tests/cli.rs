//! `opencode-share` end to end: a library run (in this process, with a spool folder) makes shares
//! on the real server behind the fault proxy and forgets them; the command, as a separate
//! process given nothing but the folder, lists them (never their secrets) and takes them down
//! by session id, share id, URL or all at once, and keeps a removal the service did not confirm.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use opencode_share::api;
use serde_json::Value;
use testkit::{Rule, Service, short_id};

const BIN: &str = env!("CARGO_BIN_EXE_opencode-share");

/// A session id as opencode makes them, with its own last 8 characters.
fn session(n: u32) -> String {
    format!("ses_cli{n:023}")
}

/// A host's run on `dir`: shares `sessions` with a content each, then shuts down (and so
/// forgets them). Their secrets.
fn host_run(service: &Service, dir: &Path, sessions: &[String]) -> Vec<String> {
    let config = serde_json::json!({
        "url": service.url(),
        "spool_dir": dir,
        "retry_initial_ms": 5,
        "retry_max_ms": 50,
    });
    api::init(Some(&config.to_string())).unwrap();
    let secrets = sessions
        .iter()
        .map(|s| {
            let created: Value = serde_json::from_str(&api::create(s).unwrap()).unwrap();
            api::sync(&format!("session/info/{s}"), r#"{"title":"cli"}"#).unwrap();
            created["secret"].as_str().unwrap().to_owned()
        })
        .collect();
    api::flush(Duration::from_secs(20)).unwrap();
    api::shutdown(Duration::from_secs(5)).unwrap();
    secrets
}

fn run(args: &[&str], env: &[(&str, &Path)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("OPENCODE_SHARE_SPOOL_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code(), text)
}

fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    t
}

fn listed(dir: &str) -> Vec<Value> {
    let (code, out) = run(&["--spool-dir", dir, "list", "--json"], &[]);
    assert_eq!(code, Some(0), "{out}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn lists_and_removes_forgotten_shares_by_session_id_url_and_all() {
    let _turn = testkit::turn();
    let service = Service::start();
    let t = private_dir();
    let dir = t.path().join("spool");
    let sessions: Vec<String> = (1..=4).map(session).collect();
    let secrets = host_run(&service, &dir, &sessions);
    let d = dir.to_str().unwrap();

    let (code, table) = run(&["--spool-dir", d, "list"], &[]);
    assert_eq!(code, Some(0), "{table}");
    assert!(table.contains("(4 shares)"), "{table}");
    let json = listed(d);
    assert_eq!(json.len(), 4);
    for secret in &secrets {
        assert!(!table.contains(secret.as_str()), "{table}");
        assert!(!format!("{json:?}").contains(secret.as_str()));
    }
    for s in &sessions {
        assert!(service.v1_data(s).is_some(), "{s} is shared");
    }

    // by session id, by share id, by URL
    let url = json[2]["url"].as_str().unwrap().to_owned();
    assert_eq!(json[2]["session"], sessions[2].as_str());
    for target in [sessions[0].as_str(), short_id(&sessions[1]), url.as_str()] {
        let (code, out) = run(&["--spool-dir", d, "remove", target], &[]);
        assert_eq!(code, Some(0), "{target}: {out}");
        assert!(out.contains("removed"), "{out}");
    }
    for s in &sessions[..3] {
        assert!(service.v1_data(s).is_none(), "{s} is still on the service");
    }
    assert!(service.v1_data(&sessions[3]).is_some());
    let (code, out) = run(&["--spool-dir", d, "remove", "ses_not_in_the_ledger"], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("no share of the ledger"), "{out}");

    let (code, out) = run(&["--spool-dir", d, "remove", "--all"], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(service.v1_data(&sessions[3]).is_none());
    assert!(listed(d).is_empty());
    for secret in &secrets {
        assert!(!out.contains(secret.as_str()), "{out}");
    }
}

#[test]
fn a_removal_the_service_refuses_stays_in_the_ledger_until_a_later_run() {
    let _turn = testkit::turn();
    let service = Service::start();
    let t = private_dir();
    // the plugin's default folder, under XDG_STATE_HOME
    let dir = t.path().join("opencode-share").join("spool");
    let sid = session(9);
    host_run(&service, &dir, std::slice::from_ref(&sid));
    let env = [("XDG_STATE_HOME", t.path())];
    let (code, out) = run(&["list"], &env);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&sid) && out.contains("shared"), "{out}");

    service.inject(Rule::path("/share_delete").times(1000).status(503));
    let (code, out) = run(&["remove", "--timeout-ms", "2000", &sid], &env);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("NOT removed"), "{out}");
    assert!(service.v1_data(&sid).is_some());
    let d = dir.to_str().unwrap();
    assert_eq!(listed(d)[0]["state"], "removing");

    service.clear_faults();
    let (code, out) = run(&["remove", "--all"], &env);
    assert_eq!(code, Some(0), "{out}");
    assert!(service.v1_data(&sid).is_none());
    assert!(listed(d).is_empty());
}
