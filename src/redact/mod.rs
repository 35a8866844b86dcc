//! Redaction of credentials before upload: every JSON string of a content (keys and values,
//! escapes decoded) is searched for credentials of well-known formats, and each one found is
//! replaced by `[redacted: RULE-ID]`, never echoing the value. The rules are data
//! (nosecrets-rules' TOML plus ours, [`rules`]), compiled once per process: one keyword pass
//! (Aho-Corasick) over the whole content finds every rule's keywords; only then are the
//! strings decoded and, in each, the rules whose keywords it holds run.
//! docs/redaction.md says what is covered and what is not.

mod json;
pub mod rules;
#[doc(hidden)]
pub mod synth;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;

use crate::error::{Error, Result};
pub use rules::{Origin, Rule};

/// Strings shorter than this are not searched (no credential with its context is as short).
const MIN_LEN: usize = 8;

/// A compiled set of rules with its keyword prefilter.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// The rules' keywords: one pass over a content finds every keyword of every string in it
    /// (when no `\u` escape hides one).
    keywords: Keywords,
    /// Rules without keywords: they run on every string.
    always: Vec<usize>,
}

/// The keywords' automaton and, for each keyword, the rules it lets run. Keywords in lower
/// case match in any ASCII case, those with an upper-case letter only as written: one DFA (the
/// fastest automaton for many keywords) finds all of them in any case, overlapping ones too,
/// and the latter are checked where it finds them; one pass instead of one per kind.
#[derive(Debug)]
struct Keywords {
    automaton: AhoCorasick,
    /// Each keyword, when it must match as written.
    exact: Vec<Option<String>>,
    rules: Vec<Vec<usize>>,
}

impl Keywords {
    fn new(rules: &[Rule]) -> std::result::Result<Keywords, String> {
        let mut words: Vec<&str> = Vec::new();
        let mut by_word: Vec<Vec<usize>> = Vec::new();
        for (n, rule) in rules.iter().enumerate() {
            for k in &rule.keywords {
                match words.iter().position(|w| w == k) {
                    Some(i) => by_word[i].push(n),
                    None => {
                        words.push(k);
                        by_word.push(vec![n]);
                    }
                }
            }
        }
        // no prefilter: for many short keywords in any case it mostly finds candidates the
        // DFA then rejects (in the benchmark it made redacting prose about a third slower)
        let automaton = AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(&words)
            .map_err(|e| e.to_string())?;
        let exact = words
            .iter()
            .map(|w| {
                w.bytes()
                    .any(|b| b.is_ascii_uppercase())
                    .then(|| w.to_string())
            })
            .collect();
        Ok(Keywords {
            automaton,
            exact,
            rules: by_word,
        })
    }
}

/// A keyword found in a text: its place, and which keyword.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    word: usize,
}

impl RuleSet {
    /// Compiles the prefilter over `rules`.
    pub fn new(rules: Vec<Rule>) -> std::result::Result<RuleSet, String> {
        let always = (0..rules.len())
            .filter(|&n| rules[n].keywords.is_empty())
            .collect();
        Ok(RuleSet {
            keywords: Keywords::new(&rules)?,
            rules,
            always,
        })
    }

    /// The built-in rules' prefilter, built once per process (at the first `share_init` with
    /// redaction on); each rule's regex is compiled when a content first needs it.
    pub fn builtin() -> std::result::Result<&'static RuleSet, &'static str> {
        static BUILTIN: OnceLock<std::result::Result<RuleSet, String>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| RuleSet::new(rules::builtin()?))
            .as_ref()
            .map_err(String::as_str)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether a rule could match somewhere in `text` (raw JSON without `\u` escapes, or a
    /// decoded string).
    #[doc(hidden)]
    pub fn may_match(&self, text: &str) -> bool {
        let mut hits = Vec::new();
        self.hits(text, &mut hits);
        !self.always.is_empty() || !hits.is_empty()
    }

    /// Every keyword in `text` (overlapping ones too) into `hits`, by start.
    fn hits(&self, text: &str, hits: &mut Vec<Hit>) {
        hits.clear();
        if self.rules.len() == self.always.len() {
            return; // no keywords (a host's patterns only)
        }
        let k = &self.keywords;
        let found = k.automaton.find_overlapping_iter(text).filter_map(|m| {
            let word = m.pattern().as_usize();
            let written = k.exact[word]
                .as_ref()
                .is_none_or(|w| text.as_bytes()[m.range()] == *w.as_bytes());
            written.then_some(Hit {
                start: m.start(),
                end: m.end(),
                word,
            })
        });
        hits.extend(found);
        hits.sort_unstable_by_key(|h| h.start);
    }

    /// Adds the credentials found in the string `s` to `found`, skipping allowed values.
    /// `span` is the place of its raw inside in the content, and `content` the keywords of the
    /// whole content; None when they must be looked for in `s` itself (a `\u` escape may
    /// hide one in the raw text). Only the rules whose keywords are in `s` run.
    fn find<'r>(
        &'r self,
        s: &str,
        span: Range<usize>,
        content: Option<&[Hit]>,
        scratch: &mut Vec<Hit>,
        allow: &HashSet<String>,
        found: &mut Vec<Span<'r>>,
    ) {
        // the shortest credential any rule finds is longer; most strings are keys and ids
        if s.len() < MIN_LEN {
            return;
        }
        // a keyword holds no character JSON escapes but `\u`, so without those it is in the
        // raw inside wherever it is in the decoded string
        let mine = match content {
            Some(hits) => {
                let first = hits.partition_point(|h| h.start < span.start);
                let within = hits[first..]
                    .iter()
                    .take_while(|h| h.start < span.end)
                    .filter(|h| h.end <= span.end);
                scratch.clear();
                scratch.extend(within);
                &scratch[..]
            }
            None => {
                self.hits(s, scratch);
                &scratch[..]
            }
        };
        if mine.is_empty() && self.always.is_empty() {
            return;
        }
        let mut run = vec![false; self.rules.len()];
        for &n in &self.always {
            run[n] = true;
        }
        for h in mine {
            for &n in &self.keywords.rules[h.word] {
                run[n] = true;
            }
        }
        for (_, rule) in self.rules.iter().enumerate().filter(|(n, _)| run[*n]) {
            for caps in rule.regex.captures_iter(s) {
                let Some(m) = caps.get(rule.capture).or_else(|| caps.get(0)) else {
                    continue;
                };
                let value = m.as_str();
                if value.is_empty() || allow.contains(value) || rule.allows(value) {
                    continue;
                }
                found.push(Span {
                    start: m.start(),
                    end: m.end(),
                    rule: &rule.id,
                    generic: rule.generic,
                });
            }
        }
    }
}

/// One credential found in a string.
struct Span<'r> {
    start: usize,
    end: usize,
    rule: &'r Arc<str>,
    generic: bool,
}

/// What the host configured: redaction on, its extra patterns and allowed values. `Debug`
/// shows the patterns' ids and the number of allowed values, never the values.
pub struct Policy {
    extra: RuleSet,
    allow: HashSet<String>,
    /// The configuration as given, for equality.
    source: (Vec<(String, String)>, Vec<String>),
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field(
                "patterns",
                &self.source.0.iter().map(|p| &p.0).collect::<Vec<_>>(),
            )
            .field("allowed_values", &self.allow.len())
            .finish()
    }
}

impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        self.source == other.source
    }
}

/// What redaction did to one content.
#[derive(Debug, PartialEq)]
pub struct Redacted<'a> {
    /// The content to send.
    pub text: Cow<'a, str>,
    /// The ids of the rules that matched, sorted, once each.
    pub rules: Vec<Arc<str>>,
    /// How many credentials were replaced.
    pub count: usize,
}

/// The marker a credential found by `rule` becomes.
pub fn marker(rule: &str) -> String {
    format!("[redacted: {rule}]")
}

impl Policy {
    /// The built-in rules plus `patterns` (id, regex: the id must be 1 to 64 of `a-z0-9-_`),
    /// with `allow`: values never redacted.
    pub fn new(
        patterns: Vec<(String, String)>,
        allow: Vec<String>,
    ) -> std::result::Result<Policy, String> {
        let extra = patterns
            .iter()
            .map(|(id, pattern)| {
                let ok = (1..=64).contains(&id.len())
                    && id.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    });
                if !ok {
                    return Err(format!(
                        "redact_patterns: the id {id:?} must be 1 to 64 of a-z, 0-9, '-', '_'"
                    ));
                }
                rules::custom(id, pattern)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Policy {
            extra: RuleSet::new(extra)?,
            allow: allow.iter().cloned().collect(),
            source: (patterns, allow),
        })
    }

    #[doc(hidden)]
    /// For the benchmark: the strings read and searched, nothing replaced (which rules ran).
    pub fn scan_only(&self, text: &str, find: bool) -> usize {
        let builtin = RuleSet::builtin().unwrap();
        let (mut found, mut hits, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        let escaped = text.contains("\\u");
        if find && !escaped {
            builtin.hits(text, &mut hits);
        }
        let _ = json::map_strings(text, |span, s| {
            if find {
                let content = (!escaped).then_some(&hits[..]);
                builtin.find(s, span, content, &mut scratch, &self.allow, &mut found);
            }
            None
        });
        found.len()
    }

    /// The content with every credential replaced by its marker. Fails, and the content must
    /// not be sent, when a string cannot be read or the rules could not be compiled.
    pub fn redact<'a>(&self, text: &'a str) -> Result<Redacted<'a>> {
        let builtin = RuleSet::builtin().map_err(not_sent)?;
        let unchanged = Redacted {
            text: Cow::Borrowed(text),
            rules: Vec::new(),
            count: 0,
        };
        // one pass over the raw text finds the keywords of all its strings: without one (and
        // no `\u` escape that could hide one) no rule can match any of its strings
        let escaped = text.contains("\\u");
        let (mut hits, mut extra_hits, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        if !escaped {
            builtin.hits(text, &mut hits);
            self.extra.hits(text, &mut extra_hits);
            let always = !builtin.always.is_empty() || !self.extra.always.is_empty();
            if hits.is_empty() && extra_hits.is_empty() && !always {
                return Ok(unchanged);
            }
        }
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut count = 0;
        let mut found = Vec::new();
        let out = json::map_strings(text, |span, s| {
            found.clear();
            let content = (!escaped).then_some(&hits[..]);
            builtin.find(
                s,
                span.clone(),
                content,
                &mut scratch,
                &self.allow,
                &mut found,
            );
            if !self.extra.rules.is_empty() {
                let content = (!escaped).then_some(&extra_hits[..]);
                self.extra
                    .find(s, span, content, &mut scratch, &self.allow, &mut found);
            }
            if found.is_empty() {
                return None;
            }
            let (new, n) = replace(s, &mut found, &mut names);
            count += n;
            Some(new)
        })
        .map_err(|why| not_sent(&why))?;
        names.sort();
        names.dedup();
        Ok(Redacted {
            text: out,
            rules: names,
            count,
        })
    }
}

/// The policy a configuration asks for: None when `redact` is false. `patterns` and `allow`
/// are the `redact_patterns` (id to regex) and `redact_allow` keys.
pub fn from_config(
    on: Option<bool>,
    patterns: Option<std::collections::BTreeMap<String, String>>,
    allow: Option<Vec<String>>,
) -> std::result::Result<Option<Arc<Policy>>, String> {
    if on == Some(false) {
        if patterns.is_some() || allow.is_some() {
            return Err("redact_patterns and redact_allow need redact on".into());
        }
        return Ok(None);
    }
    // the built-in prefilter is built here, at init, so the first uploads do not wait for it
    // and a rule set that cannot load is refused with a status, not found content by content
    RuleSet::builtin().map_err(|e| format!("redact: the built-in rules do not load: {e}"))?;
    let patterns = patterns.unwrap_or_default().into_iter().collect();
    Policy::new(patterns, allow.unwrap_or_default()).map(|p| Some(Arc::new(p)))
}

/// `text` (the content with the share's secret removed) redacted under `policy`, if any:
/// the text to send, the rules that matched and the number of credentials replaced.
pub fn apply<'a>(
    policy: Option<&Policy>,
    text: Cow<'a, str>,
) -> Result<(Cow<'a, str>, Vec<Arc<str>>, usize)> {
    let Some(policy) = policy else {
        return Ok((text, Vec::new(), 0));
    };
    match text {
        Cow::Borrowed(t) => {
            let r = policy.redact(t)?;
            Ok((r.text, r.rules, r.count))
        }
        Cow::Owned(t) => {
            let Redacted { text, rules, count } = policy.redact(&t)?;
            let new = match text {
                Cow::Owned(new) => Some(new),
                Cow::Borrowed(_) => None,
            };
            Ok((Cow::Owned(new.unwrap_or(t)), rules, count))
        }
    }
}

/// The error of a content that redaction could not make safe.
fn not_sent(why: &str) -> Error {
    Error::invalid(format!(
        "redaction could not read the content ({why}); not sent"
    ))
}

/// `s` with the spans in `found` replaced by markers: overlapping spans become one, named for
/// a format's rule rather than a generic one. Returns the text and the number of markers.
fn replace(s: &str, found: &mut [Span<'_>], names: &mut Vec<Arc<str>>) -> (String, usize) {
    found.sort_by_key(|f| (f.start, f.generic, std::cmp::Reverse(f.end)));
    let mut out = String::with_capacity(s.len());
    let (mut at, mut count, mut i) = (0, 0, 0);
    while i < found.len() {
        let (start, mut end, mut best) = (found[i].start, found[i].end, &found[i]);
        i += 1;
        while i < found.len() && found[i].start < end {
            end = end.max(found[i].end);
            if best.generic && !found[i].generic {
                best = &found[i];
            }
            i += 1;
        }
        out.push_str(&s[at..start]);
        out.push_str(&marker(best.rule));
        names.push(best.rule.clone());
        count += 1;
        at = end;
    }
    out.push_str(&s[at..]);
    (out, count)
}

#[cfg(test)]
mod tests;
