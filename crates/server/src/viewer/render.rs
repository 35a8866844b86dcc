//! The viewer's HTML: the whole page (server-rendered, readable without JavaScript) and the
//! fragment of one item that the live stream sends. maud escapes every interpolated value;
//! Markdown goes through `markdown::to_html`, the only HTML not built by the template.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::{Value, json};

use super::markdown;
use crate::item::StoredItem;
use crate::store::Snapshot;

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

fn number(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_f64)
}

fn pretty(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// A role or part type as a CSS class: only known words, never the content's own text.
fn class_word<'a>(word: Option<&str>, known: &[&'a str]) -> &'a str {
    word.and_then(|w| known.iter().find(|k| **k == w).copied())
        .unwrap_or("other")
}

const ROLES: &[&str] = &["user", "assistant"];
const PART_TYPES: &[&str] = &[
    "text",
    "reasoning",
    "tool",
    "file",
    "step-start",
    "step-finish",
    "snapshot",
    "patch",
    "agent",
];

pub fn title(session: Option<&Value>) -> String {
    session
        .and_then(|s| text(s, &["title"]))
        .filter(|t| !t.is_empty())
        .unwrap_or("Untitled session")
        .to_owned()
}

fn session_header(session: Option<&Value>) -> Markup {
    html! {
        h1 id="title" { (title(session)) }
        @if let Some(s) = session {
            p class="meta" {
                @if let Some(v) = text(s, &["version"]) { span { "opencode " (v) } }
                @if let Some(d) = text(s, &["directory"]) { " · " span class="dir" { (d) } }
            }
        }
    }
}

fn tokens(v: &Value) -> Option<Markup> {
    let t = v.get("tokens")?;
    let n = |k: &[&str]| number(t, k).unwrap_or(0.0) as u64;
    Some(html! {
        span class="tokens" {
            (n(&["input"])) " in · " (n(&["output"])) " out"
            @if n(&["reasoning"]) > 0 { " · " (n(&["reasoning"])) " reasoning" }
            @if n(&["cache", "read"]) + n(&["cache", "write"]) > 0 {
                " · cache " (n(&["cache", "read"])) "/" (n(&["cache", "write"]))
            }
        }
    })
}

fn cost(v: &Value) -> Option<Markup> {
    number(v, &["cost"]).map(|c| html! { span class="cost" { "$" (format!("{c:.4}")) } })
}

fn message_head(m: &Value) -> Markup {
    let role = class_word(text(m, &["role"]), ROLES);
    html! {
        span class="role" { (role) }
        @if let Some(model) = text(m, &["modelID"]) {
            " · " span class="model" { (model) @if let Some(p) = text(m, &["providerID"]) { " (" (p) ")" } }
        }
        @if role == "assistant" {
            @if let Some(c) = cost(m) { " · " (c) }
            @if let Some(t) = tokens(m) { " · " (t) }
        }
        @if let Some(e) = m.get("error").filter(|e| !e.is_null()) {
            div class="error" { (text(e, &["data", "message"]).or(text(e, &["name"])).map(str::to_owned).unwrap_or_else(|| pretty(e))) }
        }
    }
}

fn part_body(p: &Value) -> Markup {
    let kind = class_word(text(p, &["type"]), PART_TYPES);
    match kind {
        "text" => {
            html! { div class="markdown" { (PreEscaped(markdown::to_html(text(p, &["text"]).unwrap_or("")))) } }
        }
        "reasoning" => html! {
            details class="reasoning" {
                summary { "Reasoning" }
                div class="markdown" { (PreEscaped(markdown::to_html(text(p, &["text"]).unwrap_or("")))) }
            }
        },
        "tool" => {
            let state = p.get("state").cloned().unwrap_or(Value::Null);
            let status = text(&state, &["status"]).unwrap_or("pending");
            html! {
                div class="tool-head" {
                    span class="tool-name" { (text(p, &["tool"]).unwrap_or("tool")) }
                    " " span class={ "status status-" (class_word(Some(status), &["pending", "running", "completed", "error"])) } { (status) }
                    @if let Some(t) = text(&state, &["title"]) { " " span class="tool-title" { (t) } }
                }
                @if let Some(input) = state.get("input").filter(|i| !i.is_null()) {
                    details class="tool-input" open { summary { "Input" } pre { (pretty(input)) } }
                }
                @if let Some(output) = state.get("output").filter(|o| !o.is_null()) {
                    details class="tool-output" { summary { "Output" } pre { (pretty(output)) } }
                }
                @if let Some(error) = state.get("error").filter(|e| !e.is_null()) {
                    pre class="error" { (pretty(error)) }
                }
            }
        }
        "file" => {
            let url = text(p, &["url"]).unwrap_or("");
            let mime = text(p, &["mime"]).unwrap_or("");
            let name = text(p, &["filename"])
                .or(text(p, &["source", "path"]))
                .unwrap_or("file");
            let image = mime.starts_with("image/")
                && url.starts_with("data:image/")
                && !mime.contains("svg")
                && !url.starts_with("data:image/svg");
            html! {
                div class="file" {
                    span class="file-name" { (name) } " " span class="mime" { (mime) }
                    @if image { div { img src=(url) alt=(name); } }
                }
            }
        }
        "step-finish" => html! {
            div class="step" {
                "step finished"
                @if let Some(c) = cost(p) { " · " (c) }
                @if let Some(t) = tokens(p) { " · " (t) }
            }
        },
        "step-start" => html! { div class="step" { "step" } },
        "snapshot" => html! {},
        "patch" => html! {
            div class="patch" {
                "changed files"
                ul { @for f in p.get("files").and_then(Value::as_array).into_iter().flatten() { li { (pretty(f)) } } }
            }
        },
        "agent" => html! { div class="agent" { "agent " (text(p, &["name"]).unwrap_or("")) } },
        _ => {
            html! { details class="unknown" { summary { (text(p, &["type"]).unwrap_or("part")) } pre { (pretty(p)) } } }
        }
    }
}

fn diff_lines(patch: &str) -> Markup {
    html! {
        pre class="diff" {
            @for line in patch.lines() {
                @let class = if line.starts_with("+++") || line.starts_with("---") { "meta" }
                    else if line.starts_with('+') { "add" } else if line.starts_with('-') { "del" }
                    else if line.starts_with("@@") { "hunk" } else { "ctx" };
                span class=(class) { (line) "\n" }
            }
        }
    }
}

fn diffs(d: Option<&Value>) -> Markup {
    let files = d.and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        @if !files.is_empty() {
            h2 { "Changes" }
            @for f in &files {
                details class="diff-file" {
                    summary {
                        span class="file-name" { (text(f, &["file"]).unwrap_or("?")) }
                        " " span class="add" { "+" (number(f, &["additions"]).unwrap_or(0.0) as u64) }
                        " " span class="del" { "-" (number(f, &["deletions"]).unwrap_or(0.0) as u64) }
                    }
                    @if let Some(patch) = text(f, &["patch"]) { (diff_lines(patch)) }
                    @else if let Some(after) = text(f, &["after"]) { pre { (after) } }
                }
            }
        }
    }
}

fn models(m: Option<&Value>) -> Markup {
    let list = m.and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        @if !list.is_empty() {
            "models: "
            @for (n, model) in list.iter().enumerate() {
                @if n > 0 { ", " }
                span class="model" { (text(model, &["name"]).or(text(model, &["id"])).unwrap_or("?")) }
            }
        }
    }
}

struct Message<'a> {
    id: &'a str,
    info: Option<Value>,
    parts: Vec<(&'a str, Value)>,
}

fn message_article(m: &Message) -> Markup {
    let role = class_word(m.info.as_ref().and_then(|i| text(i, &["role"])), ROLES);
    html! {
        article class={ "message role-" (role) } id={ "m-" (m.id) } data-id=(m.id) {
            div class="msg-head" id={ "h-" (m.id) } { @if let Some(i) = &m.info { (message_head(i)) } }
            div class="parts" id={ "ps-" (m.id) } {
                @for (pid, p) in &m.parts {
                    div class={ "part part-" (class_word(text(p, &["type"]), PART_TYPES)) } id={ "p-" (m.id) "-" (pid) } data-id=(pid) { (part_body(p)) }
                }
            }
        }
    }
}

/// The whole page of share `id`.
pub fn page(id: &str, snapshot: &Snapshot) -> String {
    let mut session = None;
    let mut diff = None;
    let mut model = None;
    let mut messages: Vec<Message> = Vec::new();
    for stored in &snapshot.items {
        let Ok(data) = serde_json::from_str::<Value>(&stored.data) else {
            continue;
        };
        let mut seg = stored.key.splitn(3, '/');
        match (seg.next(), seg.next(), seg.next()) {
            (Some("session"), None, None) => session = Some(data),
            (Some("session_diff"), None, None) => diff = Some(data),
            (Some("model"), None, None) => model = Some(data),
            (Some(kind @ ("message" | "part")), Some(mid), pid) => {
                if messages.last().is_none_or(|m| m.id != mid) {
                    match messages.iter().position(|m| m.id == mid) {
                        Some(pos) => {
                            let m = messages.remove(pos);
                            messages.push(m);
                        }
                        None => messages.push(Message {
                            id: mid,
                            info: None,
                            parts: vec![],
                        }),
                    }
                }
                let m = messages.last_mut().expect("pushed above");
                match (kind, pid) {
                    ("message", None) => m.info = Some(data),
                    (_, Some(pid)) => m.parts.push((pid, data)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    messages.sort_by(|a, b| a.id.cmp(b.id));
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title(session.as_ref())) " · opencode share" }
                link rel="stylesheet" href="/assets/viewer.css";
                script src="/assets/viewer.js" defer {}
            }
            body {
                main id="share" data-id=(id) data-seq=(snapshot.seq()) {
                    header id="session" { (session_header(session.as_ref())) }
                    p id="models" class="meta" { (models(model.as_ref())) }
                    section id="messages" { @for m in &messages { (message_article(m)) } }
                    section id="diffs" { (diffs(diff.as_ref())) }
                    footer id="status" { "static page (JavaScript off, or not yet connected)" }
                }
            }
        }
    };
    markup.into_string()
}

/// A page for a share that does not exist (or was deleted).
pub fn not_found(id: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Not found · opencode share" } link rel="stylesheet" href="/assets/viewer.css"; }
            body { main { h1 { "Not found" } p { "There is no share " code { (id) } " on this server." } } }
        }
    }
    .into_string()
}

/// The live stream's payload for one item: where it goes and its HTML.
pub fn fragment(item: &StoredItem) -> String {
    let data: Value = serde_json::from_str(&item.data).unwrap_or(Value::Null);
    let mut seg = item.key.splitn(3, '/');
    let (kind, mid, pid) = (seg.next().unwrap_or(""), seg.next(), seg.next());
    let payload = match kind {
        "session" => {
            json!({ "kind": "session", "title": title(Some(&data)), "html": session_header(Some(&data)).into_string() })
        }
        "message" => json!({
            "kind": "message", "mid": mid,
            "role": class_word(text(&data, &["role"]), ROLES),
            "html": message_head(&data).into_string(),
        }),
        "part" => json!({
            "kind": "part", "mid": mid, "pid": pid,
            "class": class_word(text(&data, &["type"]), PART_TYPES),
            "html": part_body(&data).into_string(),
        }),
        "session_diff" => {
            json!({ "kind": "session_diff", "html": diffs(Some(&data)).into_string() })
        }
        "model" => json!({ "kind": "model", "html": models(Some(&data)).into_string() }),
        other => json!({ "kind": other }),
    };
    let mut payload = payload;
    payload["seq"] = json!(item.seq);
    payload.to_string()
}
