//! One message's head and each part's body, by part type and, for tool calls, by tool: opencode's
//! built-in tools each get their own view (bash as a terminal, edits as diffs, reads and writes as
//! highlighted code, todo lists, searches, fetches, subtasks); anything else shows its input and
//! output as text. maud escapes every value; code and diffs come from `code`, Markdown from
//! `markdown`.

use maud::{Markup, PreEscaped, html};
use serde_json::Value;

use super::code;
use super::markdown;
use super::model::{number, text};

pub fn pretty(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// A role or part type as a CSS class: only known words, never the content's own text.
pub fn class_word<'a>(word: Option<&str>, known: &[&'a str]) -> &'a str {
    word.and_then(|w| known.iter().find(|k| **k == w).copied())
        .unwrap_or("other")
}

pub const ROLES: &[&str] = &["user", "assistant"];
pub const PART_TYPES: &[&str] = &[
    "text",
    "reasoning",
    "tool",
    "file",
    "step-start",
    "step-finish",
    "snapshot",
    "patch",
    "agent",
    "subtask",
    "compaction",
    "retry",
];

/// `12 345`-style grouping for token counts.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

fn tokens(v: &Value) -> Option<Markup> {
    let t = v.get("tokens")?;
    let n = |k: &[&str]| number(t, k).unwrap_or(0.0).max(0.0) as u64;
    Some(html! {
        span class="tokens" {
            (count(n(&["input"]))) " in · " (count(n(&["output"]))) " out"
            @if n(&["reasoning"]) > 0 { " · " (count(n(&["reasoning"]))) " reasoning" }
            @if n(&["cache", "read"]) + n(&["cache", "write"]) > 0 {
                " · cache " (count(n(&["cache", "read"]))) " read, " (count(n(&["cache", "write"]))) " written"
            }
        }
    })
}

pub fn cost(c: f64) -> String {
    format!("${c:.4}")
}

pub fn message_head(m: &Value) -> Markup {
    let role = class_word(text(m, &["role"]), ROLES);
    html! {
        span class="role" { (if role == "other" { "message" } else { role }) }
        @if let Some(model) = text(m, &["modelID"]) {
            " · " span class="model" { (model) @if let Some(p) = text(m, &["providerID"]) { " (" (p) ")" } }
        }
        @if let Some(agent) = text(m, &["mode"]).or(text(m, &["agent"])) { " · " span class="agent-name" { (agent) } }
        @if role == "assistant" {
            @if let Some(c) = number(m, &["cost"]) { " · " span class="cost" { (cost(c)) } }
            @if let Some(t) = tokens(m) { " · " (t) }
        }
        @if let Some(e) = m.get("error").filter(|e| !e.is_null()) {
            div class="error" role="note" {
                strong { (text(e, &["name"]).unwrap_or("Error")) } ": "
                (text(e, &["data", "message"]).map(str::to_owned).unwrap_or_else(|| pretty(e)))
            }
        }
    }
}

/// The known part types; a `tool` part's view is chosen by its tool.
pub fn part_body(p: &Value) -> Markup {
    let kind = class_word(text(p, &["type"]), PART_TYPES);
    match kind {
        // opencode's own additions to a prompt (file contents it attached) are not shown
        "text" if p.get("synthetic") == Some(&Value::Bool(true)) => html! {},
        "text" => markdown_div(text(p, &["text"]).unwrap_or("")),
        "reasoning" => html! {
            details class="reasoning" {
                summary { "Thinking" }
                (markdown_div(text(p, &["text"]).unwrap_or("")))
            }
        },
        "tool" => tool(p),
        "file" => file(p),
        // opencode hides the steps (their cost and tokens are summed in the message's head) and
        // the snapshots and patches of the files (the changed files are the session's diff)
        "step-start" | "step-finish" | "snapshot" | "patch" => html! {},
        "agent" => {
            html! { div class="agent" { "Agent " strong { (text(p, &["name"]).unwrap_or("")) } } }
        }
        "subtask" => html! {
            div class="subtask" {
                "Subtask for agent " strong { (text(p, &["agent"]).unwrap_or("?")) }
                @if let Some(d) = text(p, &["description"]) { ": " (d) }
                @if let Some(prompt) = text(p, &["prompt"]) {
                    details { summary { "Prompt" } (markdown_div(prompt)) }
                }
            }
        },
        "compaction" => html! {
            div class="compaction" role="separator" {
                @if p.get("auto").and_then(Value::as_bool) == Some(true) { "Session compacted automatically" } @else { "Session compacted" }
            }
        },
        "retry" => html! {
            div class="error" { "Retry " (number(p, &["attempt"]).unwrap_or(0.0) as u64) ": "
                (p.get("error").map(|e| text(e, &["data", "message"]).map(str::to_owned).unwrap_or_else(|| pretty(e))).unwrap_or_default()) }
        },
        _ => html! {
            details class="unknown" { summary { (text(p, &["type"]).unwrap_or("part")) } pre { (pretty(p)) } }
        },
    }
}

/// A text's markdown. Markdown drops a text's trailing whitespace, so `data-trail` keeps the fact
/// for the page's live tail: the next streamed words then start after a space, not glued on.
fn markdown_div(source: &str) -> Markup {
    let trail = source.ends_with(char::is_whitespace).then_some("1");
    html! { div class="markdown" data-trail=[trail] { (PreEscaped(markdown::to_html(source))) } }
}

fn file(p: &Value) -> Markup {
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

fn tool(p: &Value) -> Markup {
    let state = p.get("state").unwrap_or(&Value::Null);
    let status = text(state, &["status"]).unwrap_or("pending");
    let status_class = class_word(Some(status), &["pending", "running", "completed", "error"]);
    let name = text(p, &["tool"]).unwrap_or("tool");
    let (label, target) = tool_label(name, state);
    let body = tool_body(name, state);
    html! {
        div class="tool-head" {
            span class="tool-name" data-tool=(class_word(Some(name), TOOLS)) { (label) }
            @if let Some(t) = target { " " span class="tool-title" { (t) } }
            @if status != "completed" { " " span class={ "status status-" (status_class) } { (status) } }
            @else { " " span class="status status-completed sr-only" { (status) } }
            @if let (Some(start), Some(end)) = (number(state, &["time", "start"]), number(state, &["time", "end"])) {
                @if end - start >= 2000.0 && end - start < 1e10 { " " span class="duration" { (format!("{:.1}", (end - start) / 1000.0)) " s" } }
            }
        }
        (body)
        @if let Some(error) = state.get("error").filter(|e| !e.is_null()) {
            pre class="error" { (pretty(error)) }
        }
    }
}

/// A tool call's label and what it acted on (a file, a pattern, a command's description).
fn tool_label<'a>(name: &'a str, state: &'a Value) -> (&'a str, Option<&'a str>) {
    let input = state.get("input").unwrap_or(&Value::Null);
    let s = |k: &str| text(input, &[k]);
    match name {
        "bash" => ("Shell", s("description")),
        "read" => ("Read", s("filePath")),
        "write" => ("Write", s("filePath")),
        "edit" => ("Edit", s("filePath")),
        "multiedit" => ("Edit", s("filePath")),
        "patch" | "apply_patch" => ("Patch", text(state, &["title"])),
        "grep" => ("Grep", s("pattern")),
        "glob" => ("Glob", s("pattern")),
        "list" => ("List", s("path")),
        "todowrite" | "todoread" => ("Plan", None),
        "webfetch" => ("Fetch", s("url")),
        "websearch" | "codesearch" => ("Search", s("query")),
        "task" => ("Task", s("description")),
        _ => (name, text(state, &["title"])),
    }
}

/// What a tool call shows below its head: its command and output, the file read or written, the
/// edit's diff, the plan, the results.
fn tool_body(name: &str, state: &Value) -> Markup {
    let input = state.get("input").unwrap_or(&Value::Null);
    let meta = state.get("metadata").unwrap_or(&Value::Null);
    let output = state.get("output").filter(|o| !o.is_null());
    let s = |k: &str| text(input, &[k]);
    match name {
        "bash" => html! {
            pre class="terminal" {
                span class="prompt" aria-hidden="true" { "$ " } (s("command").unwrap_or(""))
                @if let Some(out) = output.map(pretty).or_else(|| text(meta, &["output"]).map(str::to_owned)) {
                    "\n" (out)
                }
            }
        },
        "read" => match output.and_then(Value::as_str) {
            Some(out) => folded(
                "tool-output",
                "File contents",
                read_view(s("filePath").unwrap_or(""), out),
            ),
            None => html! {},
        },
        "write" => match s("content") {
            Some(content) => code::code_block(s("filePath").unwrap_or(""), content),
            None => html! {},
        },
        "edit" => edit_view(s("filePath").unwrap_or(""), input, meta),
        "multiedit" => html! {
            @for e in input.get("edits").and_then(Value::as_array).into_iter().flatten() {
                (edit_view(s("filePath").unwrap_or(""), e, &Value::Null))
            }
        },
        "patch" | "apply_patch" => {
            let patch = text(meta, &["diff"]).or(s("patchText")).unwrap_or("");
            let lines = code::parse_unified(patch);
            if lines.is_empty() {
                html! { pre { (patch) } }
            } else {
                code::diff_table("", &lines)
            }
        }
        "todowrite" | "todoread" => todos(input.get("todos").or(meta.get("todos"))),
        "grep" | "glob" | "list" => html! {
            @if let Some(n) = number(meta, &["matches"]).or(number(meta, &["count"])) {
                span class="tool-count" { (n as u64) @if n as u64 == 1 { " result" } @else { " results" } }
            }
            @if let Some(out) = output { (folded("tool-output", "Results", html! { pre { (pretty(out)) } })) }
        },
        "webfetch" => html! {
            @if let Some(url) = s("url").filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
                a href=(url) rel="noopener noreferrer nofollow" { (url) }
            }
            @if let Some(out) = output { (folded("tool-output", "Fetched content", html! { pre { (pretty(out)) } })) }
        },
        "task" => html! {
            @if let Some(agent) = s("subagent_type") { span class="agent-name" { "agent " (agent) } }
            @if let Some(prompt) = s("prompt") { (folded("tool-input", "Prompt", markdown_div(prompt))) }
            @if let Some(summary) = meta.get("summary").and_then(Value::as_array) {
                ul class="task-steps" {
                    @for step in summary {
                        li { code { (text(step, &["tool"]).unwrap_or("?")) } " " (text(step, &["state", "title"]).unwrap_or("")) }
                    }
                }
            }
            @if let Some(out) = output { (folded("tool-output", "Result", markdown_div(&pretty(out)))) }
        },
        _ => html! {
            @if !input.is_null() { (folded_open("tool-input", "Input", html! { pre { (pretty(input)) } })) }
            @if let Some(out) = output { (folded("tool-output", "Output", html! { pre { (pretty(out)) } })) }
        },
    }
}

const TOOLS: &[&str] = &[
    "bash",
    "read",
    "write",
    "edit",
    "multiedit",
    "patch",
    "apply_patch",
    "grep",
    "glob",
    "list",
    "todowrite",
    "todoread",
    "webfetch",
    "websearch",
    "codesearch",
    "task",
];

fn folded(class: &str, summary: &str, body: Markup) -> Markup {
    html! { details class=(class) { summary { (summary) } (body) } }
}

fn folded_open(class: &str, summary: &str, body: Markup) -> Markup {
    html! { details class=(class) open { summary { (summary) } (body) } }
}

/// opencode's read output: the file's lines as `00012| text` inside `<file>` tags, then a note
/// such as `(End of file - total 20 lines)`; shown as highlighted code when it has that shape.
fn read_view(path: &str, out: &str) -> Markup {
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    for line in out.lines() {
        match line.split_once('|') {
            Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                lines.push(rest.strip_prefix(' ').unwrap_or(rest))
            }
            _ if line.starts_with('(') => notes.push(line),
            _ if line.trim().is_empty() || line == "<file>" || line == "</file>" => {}
            _ => return html! { pre { (out) } },
        }
    }
    if lines.is_empty() {
        return html! { pre { (out) } };
    }
    html! {
        (code::code_block(path, &lines.join("\n")))
        @for note in notes { p class="meta" { (note) } }
    }
}

fn edit_view(path: &str, input: &Value, meta: &Value) -> Markup {
    let lines = match text(meta, &["diff"]) {
        Some(patch) => code::parse_unified(patch),
        None => match (text(input, &["oldString"]), text(input, &["newString"])) {
            (Some(old), Some(new)) => code::diff_texts(old, new).unwrap_or_default(),
            _ => Vec::new(),
        },
    };
    if lines.is_empty() {
        return html! {};
    }
    let (added, removed) = code::stats(&lines);
    html! {
        div class="diff-stats" { span class="add" { "+" (added) } " " span class="del" { "−" (removed) } }
        (code::diff_table(path, &lines))
    }
}

fn todos(list: Option<&Value>) -> Markup {
    let items = list
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    html! {
        ul class="todos" {
            @for t in items {
                @let status = class_word(text(t, &["status"]), &["pending", "in_progress", "completed", "cancelled"]);
                li class={ "todo todo-" (status) } {
                    span class="todo-mark" aria-hidden="true" { (match status { "completed" => "✓", "in_progress" => "▸", "cancelled" => "✕", _ => "○" }) }
                    span class="sr-only" { (status) ": " }
                    (text(t, &["content"]).unwrap_or(""))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::part_body;

    #[test]
    fn a_tool_call_shows_its_label_target_status_and_body() {
        let bash = json!({"type": "tool", "tool": "bash", "state": {
            "status": "running", "input": {"description": "list files", "command": "ls -a"},
            "output": "a\nb"}});
        let html = part_body(&bash).into_string();
        assert!(html.contains(r#"data-tool="bash">Shell</span>"#), "{html}");
        assert!(
            html.contains(r#"<span class="tool-title">list files</span>"#),
            "{html}"
        );
        assert!(html.contains("status-running"), "{html}");
        assert!(html.contains("ls -a\na\nb</pre>"), "{html}");
        let unknown = json!({"type": "tool", "tool": "mcp_x", "state": {
            "status": "completed", "title": "did x", "input": {"k": 1}}});
        let html = part_body(&unknown).into_string();
        assert!(html.contains(">mcp_x</span>"), "{html}");
        assert!(html.contains("did x"), "{html}");
        assert!(html.contains("Input"), "{html}");
    }
}
