//! The server as an operator runs it: the binary's command line and environment, its access log
//! (JSON lines), start and stop, the probes and the metrics; and never a secret or token in any.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{http_client, part, session_id};

const BIN: &str = env!("CARGO_BIN_EXE_opencode-share-server");
const TOKEN: &str = "tok-Zq81-create-token-never-logged";

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0_and_mistakes_exit_2() {
    let help = run(&["--help"], &[("OPENCODE_SHARE_CREATE_TOKEN", TOKEN)]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--database",
        "--public-url",
        "--log-format",
        "OPENCODE_SHARE_LISTEN",
    ] {
        assert!(text.contains(flag), "{flag} missing from\n{text}");
    }
    assert!(
        !text.contains(TOKEN),
        "the help shows the token from the environment"
    );
    let version = run(&["--version"], &[]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    let wrong = run(&["--listen"], &[]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--listen"));
}

#[test]
fn an_unspecified_bind_address_without_a_public_url_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let out = run(&["--listen=0.0.0.0:0", "--database", &db], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "it listened");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-url"));
}

/// The binary configured by environment alone, its stderr lines collected.
struct Binary {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Binary {
    fn start(env: &[(&str, &str)]) -> Binary {
        let mut child = Command::new(BIN)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, lines) = (child.stderr.take().unwrap(), log.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                lines.lock().unwrap().push(line.unwrap());
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no address: {first:?}"))
            .to_owned();
        Binary {
            child,
            url,
            log,
            reader: Some(reader),
        }
    }

    /// SIGTERM, then the whole log once the process has ended (within 20 s).
    fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(self.child.wait().unwrap().success());
        self.reader.take().unwrap().join().unwrap();
        self.log.lock().unwrap().clone()
    }
}

#[test]
fn the_log_and_metrics_tell_what_happened_but_never_a_secret_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let server = Binary::start(&[
        ("OPENCODE_SHARE_LISTEN", "127.0.0.1:0"),
        ("OPENCODE_SHARE_DATABASE", &db),
        ("OPENCODE_SHARE_LOG_FORMAT", "json"),
        ("OPENCODE_SHARE_CREATE_TOKEN", TOKEN),
    ]);
    let http = http_client(Duration::from_secs(20));
    let base = server.url.clone();
    let send = |method: &str, path: &str, bearer: &str, body: Value| {
        let r = http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header("authorization", format!("Bearer {bearer}"))
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };
    let wrong_token = "tok-wrong-Yx55-never-logged";
    let sid = session_id();
    assert_eq!(
        send(
            "POST",
            "/api/share",
            wrong_token,
            json!({ "sessionID": sid })
        )
        .0,
        401
    );
    let (status, made) = send("POST", "/api/share", TOKEN, json!({ "sessionID": sid }));
    assert_eq!(status, 200, "{made}");
    let made: Value = serde_json::from_str(&made).unwrap();
    let (id, secret) = (
        made["id"].as_str().unwrap(),
        made["secret"].as_str().unwrap(),
    );
    let sync = format!("/api/share/{id}/sync");
    let data = json!([part("msg_1", "prt_1", "hello")]);
    assert_eq!(
        send("POST", &sync, "", json!({ "secret": secret, "data": data })).0,
        200
    );
    let wrong_secret = format!("{secret}-wrong");
    assert_eq!(
        send(
            "POST",
            &sync,
            "",
            json!({ "secret": wrong_secret, "data": data })
        )
        .0,
        403
    );
    // a parser's error quotes the input: the secret sent where data belongs
    let (status, answer) = send(
        "POST",
        &sync,
        "",
        json!({ "secret": secret, "data": secret }),
    );
    assert_eq!(status, 400, "{answer}");
    // secrets in a query string are never logged
    let legacy = format!("/share_data?id={id}&secret={secret}&token={TOKEN}");
    assert_eq!(send("GET", &legacy, "", json!({})).0, 200);
    assert_eq!(send("GET", "/healthz", "", json!({})), (200, "ok\n".into()));
    assert_eq!(
        send("GET", "/readyz", "", json!({})),
        (200, "ready\n".into())
    );
    let (status, metrics) = send("GET", "/metrics", "", json!({}));
    assert_eq!(status, 200);
    for expected in [
        r#"opencode_share_http_requests_total{method="POST",route="/api/share/{id}/sync",status="403"} 1"#,
        r#"opencode_share_http_requests_total{method="POST",route="/api/share",status="401"} 1"#,
        r#"opencode_share_http_request_duration_seconds_count{method="POST",route="/api/share/{id}/sync"} 3"#,
        r#"opencode_share_store_commit_duration_seconds_count{op="write",ok="true"} 1"#,
        "opencode_share_shares_created_total 1",
        "opencode_share_items_written_total 1",
        "opencode_share_open_streams 0",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from\n{metrics}"
        );
    }
    assert_eq!(
        send(
            "DELETE",
            &format!("/api/share/{id}"),
            "",
            json!({ "secret": secret })
        )
        .0,
        200
    );
    let log = server.terminate();
    let all = log.join("\n");
    for never in [TOKEN, wrong_token, secret, wrong_secret.as_str()] {
        assert!(!all.contains(never), "{never:?} in the log:\n{all}");
        assert!(!metrics.contains(never), "{never:?} in the metrics");
    }
    let lines: Vec<Value> = log
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |pred: &dyn Fn(&Value) -> bool| lines.iter().find(|l| pred(l)).cloned();
    let refused = find(&|l| l["status"] == 403).expect("a line for the 403");
    assert_eq!(refused["path"], sync.as_str());
    assert_eq!(refused["cause"], "wrong secret for this share");
    assert!(refused["latency_ms"].is_number());
    assert!(
        find(&|l| l["status"] == 401 && l["cause"].as_str().unwrap().contains("create token"))
            .is_some()
    );
    assert!(
        find(&|l| l["status"] == 400).is_some(),
        "a line for the 400"
    );
    assert!(
        find(&|l| l["path"] == "/share_data" && l["id"] == id).is_some(),
        "the legacy id"
    );
    assert!(find(&|l| l["message"] == "listening" && l["database"] == "sqlite").is_some());
    assert!(find(&|l| l["message"] == "stop requested" && l["signal"] == "SIGTERM").is_some());
    assert!(find(&|l| l["message"] == "stopped").is_some(), "{all}");
}

#[test]
fn readyz_answers_503_once_the_database_does_not_answer() {
    let s = support::Server::start();
    assert_eq!(s.get("/healthz").0, 200);
    // the SQLite file goes away before any read: the next read connection finds no tables
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let (status, body) = s.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(s.get("/healthz").0, 200, "the process still answers");
}
