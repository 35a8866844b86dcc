//! The fault proxy as a process, for tests outside Rust (the TypeScript suites): it stands in
//! front of a running `opencode-share-server`, optionally playing opencode's hosted service over
//! it, and takes its rules as JSON lines on stdin, one JSON answer line each on stdout. Reads of
//! what the server stored go to the server's SQLite file. Exits when stdin closes.
//!
//! ```text
//! testkit-proxy [--hosted] [--org-id ID] [--database PATH] [--upstream HOST:PORT]
//!   (with --org-id, TESTKIT_ORG_TOKEN holds the account's token: an org account's service)
//! stdout: "listening on http://127.0.0.1:PORT", then one answer line per command:
//!   {"cmd":"upstream","addr":"127.0.0.1:4000"}            forward there from now on
//!   {"cmd":"rule","path":"/share_sync","times":2,"status":503}   (or "action":"reset"|"close",
//!       "reply":{...} with "status"; "method", "containing", "retry_after" narrow or add)
//!   {"cmd":"hold","path":"/api/share","times":1}          -> {"gate":N}  ("file": released
//!       when that file exists, for a test whose thread is blocked)
//!   {"cmd":"release","gate":N}   {"cmd":"gate","gate":N} -> {"arrived":n,"waiting":n}
//!   {"cmd":"latency","ms":100}   {"cmd":"logging","on":false}   {"cmd":"clear"}
//!   {"cmd":"log"}            -> {"log":[{method,path,headers,body,status,outcome,answer,flow,
//!                                        overlapped,at_ms,took_ms}]}
//!   {"cmd":"overlaps"}       -> {"overlaps":n}  (counted whether logging or not)
//!   {"cmd":"stored","id":"abcd1234"}       -> {"items":{key: data}|null}
//!   {"cmd":"data","session":"ses_…"}       -> {"data":{legacy key: content}|null}
//! A command it cannot do answers {"error":"…"}.
//! ```

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fault_proxy::{FaultProxy, Gate, Outcome, Passed, Rule, Semantics};
use serde_json::{Value, json};
use testkit::{Flows, hosted::Hosted, stored};

struct Options {
    hosted: bool,
    org_id: Option<String>,
    database: Option<PathBuf>,
    upstream: Option<SocketAddr>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        hosted: false,
        org_id: None,
        database: None,
        upstream: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--hosted" => o.hosted = true,
            "--org-id" => o.org_id = Some(value("--org-id")?),
            "--database" => o.database = Some(value("--database")?.into()),
            "--upstream" => {
                let addr = value("--upstream")?;
                o.upstream = Some(
                    addr.parse()
                        .map_err(|e| format!("--upstream {addr}: {e}"))?,
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("testkit-proxy: {message}");
            std::process::exit(2);
        }
    };
    let semantics: Arc<dyn Semantics> = match (&o.org_id, o.hosted) {
        (Some(org_id), _) => {
            let token = std::env::var("TESTKIT_ORG_TOKEN").unwrap_or_default();
            Arc::new(Hosted::org(&token, org_id))
        }
        (None, true) => Arc::new(Hosted::default()),
        (None, false) => Arc::new(Flows),
    };
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
    let proxy =
        FaultProxy::start_with(o.upstream.unwrap_or(nowhere), semantics).expect("the proxy starts");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", proxy.url());
    let _ = out.flush();
    let mut control = Control {
        proxy,
        database: o.database,
        gates: Vec::new(),
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(command) => control
                .run(&command)
                .unwrap_or_else(|e| json!({ "error": e })),
            Err(e) => json!({ "error": format!("not JSON: {e}") }),
        };
        if writeln!(out, "{answer}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}

/// The proxy and what the commands made of it.
struct Control {
    proxy: FaultProxy,
    database: Option<PathBuf>,
    gates: Vec<Gate>,
}

fn text<'a>(command: &'a Value, name: &str) -> Result<&'a str, String> {
    command[name].as_str().ok_or(format!("{name} is missing"))
}

fn number(command: &Value, name: &str) -> Option<u64> {
    command[name].as_u64()
}

impl Control {
    fn run(&mut self, command: &Value) -> Result<Value, String> {
        match text(command, "cmd")? {
            "upstream" => {
                let addr = text(command, "addr")?;
                self.proxy
                    .set_upstream(addr.parse().map_err(|e| format!("addr {addr}: {e}"))?);
            }
            "rule" => self.proxy.inject(rule(command)?),
            "hold" => return Ok(json!({ "gate": self.hold(command) })),
            "release" => self.gate(command)?.release(),
            "gate" => {
                let gate = self.gate(command)?;
                return Ok(json!({ "arrived": gate.arrived(), "waiting": gate.waiting() }));
            }
            "latency" => {
                let ms = number(command, "ms").unwrap_or(0);
                self.proxy.set_latency(Duration::from_millis(ms));
            }
            "logging" => self
                .proxy
                .set_logging(command["on"].as_bool().unwrap_or(true)),
            "clear" => self.proxy.clear(),
            "log" => {
                let log = self.proxy.passed().iter().map(passed).collect::<Vec<_>>();
                return Ok(json!({ "log": log }));
            }
            "overlaps" => return Ok(json!({ "overlaps": self.proxy.overlap_count() })),
            "stored" => {
                let items = stored::items(self.database()?, text(command, "id")?)?;
                return Ok(json!({ "items": items }));
            }
            "data" => {
                let data = stored::legacy_data(self.database()?, text(command, "session")?)?;
                return Ok(json!({ "data": data }));
            }
            other => return Err(format!("unknown command {other:?}")),
        }
        Ok(json!({}))
    }

    fn database(&self) -> Result<&std::path::Path, String> {
        self.database
            .as_deref()
            .ok_or("started without --database".into())
    }

    fn hold(&mut self, command: &Value) -> usize {
        let gate = Gate::new();
        let times = number(command, "times").map_or(usize::MAX, |n| n as usize);
        let prefix = command["path"].as_str().unwrap_or("/");
        let mut rule = Rule::path(prefix).times(times);
        if let Some(method) = command["method"].as_str() {
            rule = rule.method(method);
        }
        self.proxy.inject(rule.hold(&gate));
        if let Some(file) = command["file"].as_str() {
            let (gate, file) = (gate.clone(), PathBuf::from(file));
            std::thread::spawn(move || {
                while !file.exists() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                gate.release();
            });
        }
        self.gates.push(gate);
        self.gates.len() - 1
    }

    fn gate(&self, command: &Value) -> Result<&Gate, String> {
        let n = number(command, "gate").ok_or("gate is missing")?;
        self.gates.get(n as usize).ok_or(format!("no gate {n}"))
    }
}

/// The rule a "rule" command describes.
fn rule(command: &Value) -> Result<Rule, String> {
    let mut rule = Rule::path(command["path"].as_str().unwrap_or("/"));
    rule = rule.times(number(command, "times").map_or(1, |n| n as usize));
    if let Some(method) = command["method"].as_str() {
        rule = rule.method(method);
    }
    if let Some(text) = command["containing"].as_str() {
        rule = rule.containing(text);
    }
    let status = number(command, "status").map(|s| s as u16);
    Ok(match (command["action"].as_str(), status) {
        (Some("reset"), _) => rule.reset(),
        (Some("close"), _) => rule.close(),
        (Some(other), _) => return Err(format!("unknown action {other:?}")),
        (None, Some(status)) if !command["reply"].is_null() => {
            rule.reply(status, &command["reply"].to_string())
        }
        (None, Some(status)) => match number(command, "retry_after") {
            Some(seconds) => rule.status_retry_after(status, seconds),
            None => rule.status(status),
        },
        (None, None) => return Err("a rule needs a status or an action".into()),
    })
}

/// A logged request as JSON; bodies that are JSON stay JSON.
fn passed(p: &Passed) -> Value {
    let parse = |s: &str| serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()));
    let headers: serde_json::Map<String, Value> = p
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), Value::String(v.clone())))
        .collect();
    let outcome = match p.outcome {
        Outcome::Forwarded => "forwarded",
        Outcome::Injected => "injected",
        Outcome::Reset => "reset",
        Outcome::Closed => "closed",
        Outcome::UpstreamFailed => "upstream_failed",
    };
    json!({
        "method": p.method,
        "path": p.path,
        "headers": headers,
        "body": parse(&p.body),
        "status": p.status.unwrap_or(0),
        "outcome": outcome,
        "answer": parse(&p.answer),
        "flow": p.flow,
        "overlapped": p.overlapped,
        "at_ms": p.at.as_secs_f64() * 1000.0,
        "took_ms": p.took.as_secs_f64() * 1000.0,
    })
}
