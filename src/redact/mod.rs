//! Redaction of credentials before upload: every JSON string of a content (keys and values,
//! escapes decoded) is searched for credentials of well-known formats, and each one found is
//! replaced by `[redacted: RULE-ID]`, never echoing the value. The rules are data
//! (nosecrets-rules' TOML plus ours, [`rules`]), compiled once per process: a keyword
//! prefilter (Aho-Corasick) over the whole content decides in one pass whether any rule could
//! match; only then are the strings decoded and the rules whose keywords they hold run.
//! docs/redaction.md says what is covered and what is not.

mod json;
pub mod rules;
#[doc(hidden)]
pub mod synth;

use std::borrow::Cow;
use std::collections::HashSet;
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
    /// The rules' keywords in lower case, matched in any ASCII case; then those with an
    /// upper-case letter, matched as written.
    keywords: [Keywords; 2],
    /// The same keywords for the whole content's first pass: a DFA (the fastest automaton for
    /// many keywords in any case), and a leftmost one (SIMD for a few keywords as written).
    gate: [AhoCorasick; 2],
    /// Rules without keywords: they run on every string.
    always: Vec<usize>,
}

/// One keyword automaton and, for each of its keywords, the rules it lets run.
#[derive(Debug)]
struct Keywords {
    automaton: AhoCorasick,
    rules: Vec<Vec<usize>>,
}

impl Keywords {
    fn new(rules: &[Rule], folded: bool) -> std::result::Result<Keywords, String> {
        let mut words: Vec<&str> = Vec::new();
        let mut by_word: Vec<Vec<usize>> = Vec::new();
        for (n, rule) in rules.iter().enumerate() {
            let mine = rule
                .keywords
                .iter()
                .filter(|k| folded != k.bytes().any(|b| b.is_ascii_uppercase()));
            for k in mine {
                match words.iter().position(|w| w == k) {
                    Some(i) => by_word[i].push(n),
                    None => {
                        words.push(k);
                        by_word.push(vec![n]);
                    }
                }
            }
        }
        let automaton = AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(folded)
            .build(&words)
            .map_err(|e| e.to_string())?;
        Ok(Keywords {
            automaton,
            rules: by_word,
        })
    }
}

impl RuleSet {
    /// Compiles the prefilter over `rules`.
    pub fn new(rules: Vec<Rule>) -> std::result::Result<RuleSet, String> {
        let always = (0..rules.len())
            .filter(|&n| rules[n].keywords.is_empty())
            .collect();
        let words = |upper: bool| -> Vec<&str> {
            let mut w: Vec<&str> = rules
                .iter()
                .flat_map(|r| r.keywords.iter().map(String::as_str))
                .filter(|w| upper == w.bytes().any(|b| b.is_ascii_uppercase()))
                .collect();
            w.sort();
            w.dedup();
            w
        };
        // many keywords in any case: a DFA, the fastest automaton for them; a few as written:
        // a leftmost automaton, which gets a SIMD prefilter
        let folded = AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .build(words(false));
        let exact = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(words(true));
        let gate = [
            folded.map_err(|e| e.to_string())?,
            exact.map_err(|e| e.to_string())?,
        ];
        Ok(RuleSet {
            gate,
            keywords: [Keywords::new(&rules, true)?, Keywords::new(&rules, false)?],
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
        !self.always.is_empty() || self.gate.iter().any(|g| g.is_match(text))
    }

    /// Adds the credentials found in `s` to `found`, skipping allowed values.
    fn find<'r>(&'r self, s: &str, allow: &HashSet<String>, found: &mut Vec<Span<'r>>) {
        // the shortest credential any rule finds is longer; most strings are keys and ids
        if s.len() < MIN_LEN || (self.always.is_empty() && !self.may_match(s)) {
            return;
        }
        let mut run = vec![false; self.rules.len()];
        for &n in &self.always {
            run[n] = true;
        }
        let mut any = !self.always.is_empty();
        for k in &self.keywords {
            for m in k.automaton.find_overlapping_iter(s) {
                for &n in &k.rules[m.pattern().as_usize()] {
                    run[n] = true;
                    any = true;
                }
            }
        }
        if !any {
            return;
        }
        for (_, rule) in self.rules.iter().enumerate().filter(|(n, _)| run[*n]) {
            for caps in rule.regex.captures_iter(s) {
                let Some(m) = caps.get(rule.capture).or_else(|| caps.get(0)) else {
                    continue;
                };
                let value = m.as_str();
                if value.is_empty()
                    || allow.contains(value)
                    || rule.allow.iter().any(|a| a.is_match(value))
                {
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
        let mut found = Vec::new();
        let _ = json::map_strings(text, |s| {
            if find {
                builtin.find(s, &self.allow, &mut found);
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
        // one pass over the raw text: without a keyword (and no `\u` escape that could hide
        // one) no rule can match any of its strings
        let escaped =
            text.contains("\\u") || (!self.extra.always.is_empty() && text.contains('\\'));
        if !escaped && !builtin.may_match(text) && !self.extra.may_match(text) {
            return Ok(unchanged);
        }
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut count = 0;
        let mut found = Vec::new();
        let out = json::map_strings(text, |s| {
            found.clear();
            builtin.find(s, &self.allow, &mut found);
            if !self.extra.rules.is_empty() {
                self.extra.find(s, &self.allow, &mut found);
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
