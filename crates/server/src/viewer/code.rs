//! Code and diffs as HTML: syntect's grammars (chosen by the file's extension) give each line's
//! tokens, which become flat `<span class="c-…">` runs of escaped text, one self-contained line
//! at a time (so a diff can put a line in any cell and the script can rearrange rows); similar
//! computes the diffs of texts given before and after. The classes are styled by the page's CSS for
//! light and dark alike, and nothing from the content ever reaches a tag or an attribute.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::Duration;

use maud::{Markup, PreEscaped, html};
use similar::{ChangeTag, TextDiff};
use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};

/// Text larger than this is shown without highlighting (the grammar engine is the page's cost).
const MAX_HIGHLIGHT_BYTES: usize = 64 * 1024;
/// Lines longer than this are shown plain (minified code would be slow and unreadable anyway).
const MAX_HIGHLIGHT_LINE: usize = 2_000;
/// Texts larger than this are not diffed: the stats are shown, the text on request of `/data`.
const MAX_DIFF_BYTES: usize = 512 * 1024;

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// The grammar for a file path, by extension (or the whole name, e.g. `Makefile`), or for a
/// Markdown code block's language (`lang:rust`).
fn syntax_for(path: &str) -> Option<&'static SyntaxReference> {
    if let Some(lang) = path.strip_prefix("lang:") {
        let set = syntaxes();
        let lang = lang.to_ascii_lowercase();
        return match lang.as_str() {
            "ts" | "typescript" | "tsx" | "jsx" => set.find_syntax_by_extension("js"),
            "sh" | "shell" | "zsh" | "console" => set.find_syntax_by_extension("sh"),
            other => set.find_syntax_by_token(other),
        }
        .filter(|s| s.name != "Plain Text");
    }
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or(name);
    // languages the default grammars lack, read with their nearest relative's
    let ext = match ext {
        "ts" | "tsx" | "mts" | "cts" | "jsx" | "mjs" | "cjs" => "js",
        "vue" | "svelte" | "astro" => "html",
        "kt" | "kts" => "java",
        other => other,
    };
    let set = syntaxes();
    set.find_syntax_by_extension(ext)
        .or_else(|| set.find_syntax_by_extension(name))
        .filter(|s| s.name != "Plain Text")
}

/// Escapes text for HTML content and attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The CSS class of a token: the category (first atom) of its innermost scope that has one.
fn class_of(stack: &ScopeStack) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "comment", "string", "constant", "keyword", "storage", "entity", "support", "variable",
        "invalid", "markup",
    ];
    stack.as_slice().iter().rev().find_map(|scope: &Scope| {
        let text = scope.build_string();
        let first = text.split('.').next().unwrap_or("");
        KNOWN.iter().find(|k| **k == first).copied()
    })
}

/// Highlights lines of one file in order, each line to self-contained HTML.
pub struct Highlighter {
    state: Option<(ParseState, ScopeStack)>,
}

impl Highlighter {
    /// For `path`'s language, or plain text when unknown or `budget` bytes is too much.
    pub fn new(path: &str, budget: usize) -> Highlighter {
        let state = (budget <= MAX_HIGHLIGHT_BYTES)
            .then(|| syntax_for(path))
            .flatten()
            .map(|s| (ParseState::new(s), ScopeStack::new()));
        Highlighter { state }
    }

    /// One line (without its newline) as escaped HTML with class spans.
    pub fn line(&mut self, line: &str) -> String {
        let mut out = String::with_capacity(line.len() + 16);
        if line.len() > MAX_HIGHLIGHT_LINE {
            self.state = None;
        }
        let Some((parse, stack)) = &mut self.state else {
            escape_into(&mut out, line);
            return out;
        };
        let with_newline = format!("{line}\n");
        let Ok(ops) = parse.parse_line(&with_newline, syntaxes()) else {
            // the grammar gave up (e.g. a backtracking limit): the rest of the file is plain
            self.state = None;
            escape_into(&mut out, line);
            return out;
        };
        let mut at = 0;
        for (pos, op) in ops {
            let pos = pos.min(line.len());
            if pos > at {
                span(&mut out, class_of(stack), &line[at..pos]);
                at = pos;
            }
            if stack.apply(&op).is_err() {
                self.state = None;
                escape_into(&mut out, &line[at..]);
                return out;
            }
        }
        if at < line.len() {
            span(&mut out, class_of(stack), &line[at..]);
        }
        out
    }
}

fn span(out: &mut String, class: Option<&str>, text: &str) {
    match class {
        Some(c) => {
            let _ = write!(out, "<span class=\"c-{c}\">");
            escape_into(out, text);
            out.push_str("</span>");
        }
        None => escape_into(out, text),
    }
}

/// A file's text, highlighted by its path's language (or `lang:<name>`).
pub fn code_block(path: &str, text: &str) -> Markup {
    let mut h = Highlighter::new(path, text.len());
    let mut html = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        html.push_str(&h.line(line));
        html.push('\n');
    }
    maud::html! { pre class="code" { code { (PreEscaped(html)) } } }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Context,
    Added,
    Removed,
}

/// One line of a diff: a hunk header, or a line with its numbers in the old and new file.
#[derive(Debug, PartialEq)]
pub enum Line {
    Hunk(String),
    Row {
        kind: Kind,
        old: Option<u32>,
        new: Option<u32>,
        text: String,
    },
}

/// The lines of a unified diff (`diff -u`, git's or opencode's `metadata.diff`); file headers skipped.
pub fn parse_unified(patch: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let (mut old, mut new, mut in_hunk) = (0u32, 0u32, false);
    for raw in patch.lines() {
        if let Some(rest) = raw.strip_prefix("@@") {
            let mut nums = rest.split_whitespace().take(2).map(|r| {
                r.trim_start_matches(['-', '+'])
                    .split(',')
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(1)
            });
            old = nums.next().unwrap_or(1);
            new = nums.next().unwrap_or(1);
            in_hunk = true;
            lines.push(Line::Hunk(raw.to_owned()));
            continue;
        }
        if !in_hunk || raw.starts_with('\\') {
            continue;
        }
        let (kind, text) = match raw.as_bytes().first() {
            Some(b'+') => (Kind::Added, &raw[1..]),
            Some(b'-') => (Kind::Removed, &raw[1..]),
            Some(b' ') => (Kind::Context, &raw[1..]),
            None => (Kind::Context, ""),
            _ => {
                in_hunk = false; // the next file's header
                continue;
            }
        };
        let (o, n) = match kind {
            Kind::Added => (None, Some(new)),
            Kind::Removed => (Some(old), None),
            Kind::Context => (Some(old), Some(new)),
        };
        old += u32::from(o.is_some());
        new += u32::from(n.is_some());
        lines.push(Line::Row {
            kind,
            old: o,
            new: n,
            text: text.to_owned(),
        });
    }
    lines
}

/// The diff of two texts with 3 lines of context, or `None` when they are too large to diff here.
pub fn diff_texts(before: &str, after: &str) -> Option<Vec<Line>> {
    if before.len() + after.len() > MAX_DIFF_BYTES {
        return None;
    }
    let diff = TextDiff::configure()
        .timeout(Duration::from_millis(200))
        .diff_lines(before, after);
    let mut lines = Vec::new();
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (o, n) = (first.old_range(), first.new_range());
        let (oe, ne) = (last.old_range().end, last.new_range().end);
        lines.push(Line::Hunk(format!(
            "@@ -{},{} +{},{} @@",
            o.start + 1,
            oe - o.start,
            n.start + 1,
            ne - n.start
        )));
        for op in &group {
            for change in diff.iter_changes(op) {
                let kind = match change.tag() {
                    ChangeTag::Equal => Kind::Context,
                    ChangeTag::Insert => Kind::Added,
                    ChangeTag::Delete => Kind::Removed,
                };
                let number = |i: Option<usize>| i.map(|i| i as u32 + 1);
                lines.push(Line::Row {
                    kind,
                    old: number(change.old_index()),
                    new: number(change.new_index()),
                    text: change.value().trim_end_matches(['\n', '\r']).to_owned(),
                });
            }
        }
    }
    Some(lines)
}

/// Counts of added and removed lines.
pub fn stats(lines: &[Line]) -> (usize, usize) {
    lines.iter().fold((0, 0), |(a, r), l| match l {
        Line::Row {
            kind: Kind::Added, ..
        } => (a + 1, r),
        Line::Row {
            kind: Kind::Removed,
            ..
        } => (a, r + 1),
        _ => (a, r),
    })
}

/// A diff as a table (old number, new number, line), highlighted by `path`'s language; the
/// script turns it into a split view on request.
pub fn diff_table(path: &str, lines: &[Line]) -> Markup {
    let budget: usize = lines
        .iter()
        .map(|l| match l {
            Line::Row { text, .. } => text.len() + 1,
            Line::Hunk(_) => 0,
        })
        .sum();
    // two streams: the old file's lines and the new file's, so each side's state is right
    let mut old_side = Highlighter::new(path, budget);
    let mut new_side = Highlighter::new(path, budget);
    let number = |n: &Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    html! {
        table class="diff" {
            colgroup { col class="ln"; col class="ln"; col; }
            thead class="sr-only" { tr { th scope="col" { "old line" } th scope="col" { "new line" } th scope="col" { "change" } } }
            tbody {
                @for line in lines {
                    @match line {
                        Line::Hunk(h) => tr class="hunk" { td colspan="3" { (h) } },
                        Line::Row { kind, old, new, text } => {
                            @let (class, sign, html) = match kind {
                                Kind::Added => ("add", "+", new_side.line(text)),
                                Kind::Removed => ("del", "-", old_side.line(text)),
                                Kind::Context => { let h = new_side.line(text); old_side.line(text); ("ctx", " ", h) }
                            };
                            tr class=(class) {
                                td class="ln" { (number(old)) }
                                td class="ln" { (number(new)) }
                                td class="src" { span class="sign" aria-hidden="true" { (sign) } (PreEscaped(html)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_and_computed_diffs_agree() {
        let patch = "Index: a.rs\n===\n--- a.rs\n+++ a.rs\n@@ -1,3 +1,3 @@\n fn a() {}\n-let x = 1;\n+let x = 2;\n fn b() {}\n\\ No newline at end of file\n";
        let parsed = parse_unified(patch);
        let computed = diff_texts(
            "fn a() {}\nlet x = 1;\nfn b() {}\n",
            "fn a() {}\nlet x = 2;\nfn b() {}\n",
        )
        .unwrap();
        assert_eq!(parsed, computed);
        assert_eq!(stats(&parsed), (1, 1));
        assert!(matches!(
            &parsed[2],
            Line::Row {
                kind: Kind::Removed,
                old: Some(2),
                new: None,
                ..
            }
        ));
    }

    #[test]
    fn highlighting_marks_tokens_and_escapes_everything() {
        let mut h = Highlighter::new("x.rs", 100);
        let line = h.line(r#"let s = "<script>alert('x')</script>"; // <b>"#);
        assert!(
            line.contains("<span class=\"c-storage\">let</span>"),
            "{line}"
        );
        assert!(
            line.contains("c-string") && line.contains("c-comment"),
            "{line}"
        );
        assert!(!line.contains("<script") && !line.contains("<b>"), "{line}");
        assert!(line.contains("&lt;script&gt;alert(&#39;x&#39;)"), "{line}");
        let plain = Highlighter::new("x.unknownext", 10).line("<i>&");
        assert_eq!(plain, "&lt;i&gt;&amp;");
        let table = diff_table(
            "a\"><script>.rs",
            &parse_unified("@@ -1 +1 @@\n-<img src=x>\n+\"'&"),
        )
        .into_string();
        assert!(
            !table.contains("<img")
                && table.contains("&lt;</span>img src")
                && !table.contains("<script"),
            "{table}"
        );
    }
}
