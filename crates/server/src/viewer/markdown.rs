//! Markdown to safe HTML: pulldown-cmark renders, raw HTML in the source becomes escaped text,
//! and a link or image target that is not http(s), mailto or relative becomes `#`; images become
//! links (the page's CSP loads no remote image anyway). A fenced code block with a language is
//! highlighted by `code` (its own escaping; the language name only picks the grammar).

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};

use super::code;

pub fn to_html(source: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut block: Option<(String, String)> = None; // a fenced block's language and text so far
    let events =
        Parser::new_ext(source, options).filter_map(move |event| match (&mut block, event) {
            (None, Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang))))
                if !lang.trim().is_empty() =>
            {
                let lang = lang.split_whitespace().next().unwrap_or("").to_owned();
                block = Some((lang, String::new()));
                None
            }
            (Some((_, text)), Event::Text(t)) => {
                text.push_str(&t);
                None
            }
            (Some(_), Event::End(TagEnd::CodeBlock)) => {
                let (lang, text) = block.take()?;
                let html = code::code_block(&format!("lang:{lang}"), &text).into_string();
                Some(Event::Html(CowStr::from(html)))
            }
            (_, event) => Some(safe(event)),
        });
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// Raw HTML as text, link and image targets filtered, images as links.
fn safe(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        })
        | Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    }
}

/// Whether a URL may be a link target: a safe scheme, or no scheme at all.
pub fn is_safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        return true;
    }
    // relative: no scheme before the first '/', '?' or '#'
    let head = lower.split(['/', '?', '#']).next().unwrap_or("");
    !head.contains(':') && !lower.chars().any(|c| c.is_control())
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    if is_safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_hostile_html_is_inert() {
        assert!(to_html("**bold** `code`").contains("<strong>bold</strong>"));
        let evil = to_html(
            "<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)> [x](javascript:alert(1)) ![y](data:text/html,z)",
        );
        assert!(
            !evil.contains("<script") && !evil.contains("<img"),
            "{evil}"
        );
        assert!(
            evil.contains("&lt;script&gt;") && evil.contains("href=\"#\""),
            "{evil}"
        );
        assert!(!evil.contains("javascript:alert"), "{evil}");
        let block =
            to_html("```rust\nlet x = \"</code></pre><script>\";\n```\n\n```\n<b>plain</b>\n```");
        assert!(
            block.contains("<span class=\"c-storage\">let</span>"),
            "{block}"
        );
        assert!(
            !block.contains("<script") && !block.contains("<b>"),
            "{block}"
        );
        assert!(
            to_html("[ok](https://example.com/a?b=1)")
                .contains("href=\"https://example.com/a?b=1\"")
        );
        assert!(
            !is_safe_url(" JavaScript:x")
                && !is_safe_url("vbscript:x")
                && is_safe_url("/x/y:z")
                && is_safe_url("#top")
        );
    }
}
