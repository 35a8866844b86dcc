//! The viewer's HTML: the page (server-rendered, readable without JavaScript), the next messages
//! of a long share (`?from=`), and the fragment of one item that the live stream sends. A long
//! share's page holds its first messages up to a byte budget; the script fetches the rest as the
//! reader nears the end (so the first screen is small and fast whatever the share's length), and
//! `?all=1` renders everything for readers without JavaScript.
//!
//! DOM ids: `m/<mid>` (message), `h/<mid>` (its head), `ps/<mid>` (its parts), `p/<mid>/<pid>`
//! (a part). A message id never holds a `/` (it is one segment of the item key), so two different
//! (message, part) pairs never make the same id.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::{Value, json};

use super::code;
use super::json;
use super::model::{Message, Share, date, number, text};
use super::parts::{PART_TYPES, ROLES, class_word, cost, count, message_head, part_body};
use crate::item::StoredItem;

/// The first page holds messages up to about this much HTML (the rest on request).
const FIRST_BYTES: usize = 96 * 1024;
/// And at most this many messages.
const FIRST_MESSAGES: usize = 60;
/// Each later request brings about this much.
const MORE_BYTES: usize = 256 * 1024;
const MORE_MESSAGES: usize = 200;

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
                @if let Some(v) = text(s, &["version"]) { span class="version" { "opencode " (v) } }
                @if let Some(d) = number(s, &["time", "created"]).and_then(date) { " · " time { (d) } }
                @if let Some(d) = text(s, &["directory"]) { " · " span class="dir" { (d) } }
            }
        }
    }
}

fn summary(share: &Share) -> Markup {
    let t = share.totals();
    let models = share.models_used();
    let prompts = share
        .messages
        .iter()
        .filter(|m| m.role() == Some("user"))
        .count();
    html! {
        dl id="summary" class="summary" {
            @if !models.is_empty() {
                div { dt { "Models" } dd { @for (n, m) in models.iter().enumerate() { @if n > 0 { ", " } span class="model" { (m) } } } }
            }
            div { dt { "Messages" } dd { (count(share.messages.len() as u64)) " (" (count(prompts as u64)) " prompts)" } }
            div { dt { "Cost" } dd class="cost" { (cost(t.cost)) } }
            div { dt { "Tokens" } dd class="tokens" {
                (count(t.input)) " in · " (count(t.output)) " out"
                @if t.reasoning > 0 { " · " (count(t.reasoning)) " reasoning" }
                @if t.cache_read + t.cache_write > 0 { " · cache " (count(t.cache_read)) " read, " (count(t.cache_write)) " written" }
            } }
        }
    }
}

/// The changed files' diffs take at most about this much HTML; files past it show their counts.
const DIFFS_BYTES: usize = 128 * 1024;

/// The changed files: each file's diff (from its patch, or computed from before and after).
fn diffs(d: Option<&Value>) -> Markup {
    let files = d
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut spent = 0;
    let mut shown = Vec::with_capacity(files.len());
    for f in files {
        let name = text(f, &["file"]).unwrap_or("?");
        let lines = match (
            text(f, &["patch"]),
            text(f, &["before"]),
            text(f, &["after"]),
        ) {
            _ if spent >= DIFFS_BYTES => None,
            (Some(patch), _, _) => Some(code::parse_unified(patch)),
            (None, None, None) => None,
            (None, before, after) => code::diff_texts(before.unwrap_or(""), after.unwrap_or("")),
        };
        let (added, removed) = lines.as_deref().map(code::stats).unwrap_or((
            number(f, &["additions"]).unwrap_or(0.0).max(0.0) as usize,
            number(f, &["deletions"]).unwrap_or(0.0).max(0.0) as usize,
        ));
        let body = match &lines {
            Some(lines) if !lines.is_empty() => code::diff_table(name, lines),
            Some(_) => html! { p class="meta" { "No textual change." } },
            None => {
                html! { p class="meta" { "Not shown here (too large); the share's data has it." } }
            }
        };
        spent += body.0.len();
        shown.push((name, added, removed, body));
    }
    html! {
        @if !files.is_empty() {
            h2 id="changes" { "Changed files (" (files.len()) ")" }
            @for (name, added, removed, body) in shown {
                details class="diff-file" open[files.len() <= 8] {
                    summary {
                        span class="file-name" { (name) }
                        " " span class="add" { "+" (added) }
                        " " span class="del" { "−" (removed) }
                    }
                    (body)
                }
            }
        }
    }
}

fn models(m: Option<&Value>) -> Markup {
    let list = m
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    html! {
        @if !list.is_empty() {
            "Models available: "
            @for (n, model) in list.iter().enumerate() {
                @if n > 0 { ", " }
                span class="model" { (text(model, &["name"]).or(text(model, &["id"])).unwrap_or("?")) }
            }
        }
    }
}

fn message_article(m: &Message) -> Markup {
    let role = class_word(m.role(), ROLES);
    html! {
        article class={ "message role-" (role) } id={ "m/" (m.id) } data-id=(m.id) {
            a class="anchor" href={ "#m/" (m.id) } aria-label="Link to this message" { "#" }
            div class="msg-head" id={ "h/" (m.id) } { @if let Some(i) = &m.info { (message_head(i)) } }
            div class="parts" id={ "ps/" (m.id) } {
                @for (pid, raw) in &m.parts {
                    @let p = json::parse(raw);
                    div class={ "part part-" (class_word(text(&p, &["type"]), PART_TYPES)) } id={ "p/" (m.id) "/" (pid) } data-id=(pid) { (part_body(&p)) }
                }
            }
        }
    }
}

/// Renders messages from `start` until about `bytes` of HTML or `max` messages (at least one);
/// returns the HTML and the index of the first message not rendered.
fn render_messages(share: &Share, start: usize, bytes: usize, max: usize) -> (String, usize) {
    let mut out = String::new();
    let mut at = start;
    while at < share.messages.len() && (at == start || (out.len() < bytes && at - start < max)) {
        out.push_str(&message_article(&share.messages[at]).into_string());
        at += 1;
    }
    (out, at)
}

/// A prompt's first words for the navigation.
fn snippet(m: &Message) -> String {
    let first = m.parts.iter().map(|(_, raw)| json::parse(raw)).find(|p| {
        text(p, &["type"]) == Some("text") && p.get("synthetic") != Some(&Value::Bool(true))
    });
    let first = first
        .as_ref()
        .and_then(|p| text(p, &["text"]))
        .unwrap_or("(no text)");
    let mut s: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = s.char_indices().nth(80) {
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn navigation(share: &Share, loaded: usize) -> Markup {
    html! {
        nav id="nav" aria-label="Prompts" {
            h2 { "Prompts" }
            ol {
                @for (i, m) in share.messages.iter().enumerate().filter(|(_, m)| m.role() == Some("user")) {
                    li { a href={ @if i >= loaded { "?all=1" } "#m/" (m.id) } data-target=(m.id) { (snippet(m)) } }
                }
            }
        }
    }
}

/// The whole page of share `id` (`all`: every message; else the first ones; `indexable`: no
/// robots `noindex`). Its files and live stream are named under `base` (`--base-path`, the
/// sub-path a reverse proxy serves the server at; "" at the root).
pub fn page(
    id: &str,
    share: &Share,
    public_url: &str,
    base: &str,
    all: bool,
    indexable: bool,
) -> String {
    let (messages, loaded) = if all {
        render_messages(share, 0, usize::MAX, usize::MAX)
    } else {
        render_messages(share, 0, FIRST_BYTES, FIRST_MESSAGES)
    };
    let next = share.messages.get(loaded).map(|m| m.id);
    let title = title(share.session.as_ref());
    let used = share.models_used();
    let description = format!(
        "An opencode session: {} messages{}{}",
        share.messages.len(),
        used.first().map(|m| format!(", {m}")).unwrap_or_default(),
        share
            .session
            .as_ref()
            .and_then(|s| text(s, &["version"]))
            .map(|v| format!(", opencode {v}"))
            .unwrap_or_default(),
    );
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if !indexable {
                    meta name="robots" content="noindex, nofollow";
                }
                meta name="color-scheme" content="light dark";
                title { (title) " · opencode share" }
                meta name="description" content=(description);
                meta property="og:type" content="article";
                meta property="og:site_name" content="opencode share";
                meta property="og:title" content=(title);
                meta property="og:description" content=(description);
                meta property="og:url" content={ (public_url) "/share/" (id) };
                meta name="twitter:card" content="summary";
                link rel="stylesheet" href={ (base) "/assets/viewer.css" };
                script src={ (base) "/assets/viewer.js" } defer {}
            }
            body {
                a class="skip" href="#messages" { "Skip to the conversation" }
                div class="topbar" {
                    span class="brand" { "opencode share" }
                    span class="tools" {
                        button type="button" id="diff-mode" hidden aria-pressed="false" { "Split diffs" }
                        button type="button" id="theme" hidden aria-pressed="false" { "Dark theme" }
                    }
                }
                div class="layout" {
                    (navigation(share, loaded))
                    main id="share" data-id=(id) data-base=(base) data-seq=(share.seq) data-next=[next] {
                        header id="session" { (session_header(share.session.as_ref())) }
                        (summary(share))
                        p id="models" class="meta" { (models(share.models.as_ref())) }
                        section id="diffs" aria-label="Changed files" { (diffs(share.diff.as_ref())) }
                        section id="messages" aria-label="Conversation" { (PreEscaped(messages)) }
                        @if next.is_some() {
                            div id="more" {
                                a href="?all=1" { "Show all " (share.messages.len()) " messages" }
                            }
                        }
                        footer id="status" role="status" { "static page (JavaScript off, or not yet connected)" }
                    }
                }
            }
        }
    };
    markup.into_string()
}

/// The messages after `from` (inclusive) for a page that holds those before: `{html, next, seq}`.
pub fn more(share: &Share, from: &str) -> String {
    let start = share.messages.partition_point(|m| m.id < from);
    let (html, at) = render_messages(share, start, MORE_BYTES, MORE_MESSAGES);
    json!({
        "html": html,
        "next": share.messages.get(at).map(|m| m.id),
        "seq": share.seq,
    })
    .to_string()
}

/// A page for a share that does not exist (or was deleted).
pub fn not_found(id: &str, base: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="robots" content="noindex, nofollow";
                title { "Not found · opencode share" }
                link rel="stylesheet" href={ (base) "/assets/viewer.css" };
            }
            body { main { h1 { "Not found" } p { "There is no share " code { (id) } " on this server." } } }
        }
    }
    .into_string()
}

/// The live stream's payload for one item: where it goes and its HTML.
pub fn fragment(item: &StoredItem) -> String {
    let data = json::parse(&item.data);
    let mut seg = item.key.splitn(3, '/');
    let (kind, mid, pid) = (seg.next().unwrap_or(""), seg.next(), seg.next());
    let mut payload = match kind {
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
    payload["seq"] = json!(item.seq);
    payload.to_string()
}
