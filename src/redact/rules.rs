//! The rule set as data: nosecrets-rules' TOML rules (crates.io, MIT; see NOTICE beside this
//! file) and ours (`ours.toml`, formats that data lacks), translated to what Rust's `regex`
//! runs in linear time, and compiled.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use regex::Regex;

/// A rule's regex, compiled when a content first needs it: most contents never reach most
/// rules, and compiling all of them at once held the first uploads back (about 155 ms in a
/// release build, seconds in a debug one, far more under valgrind). Its syntax is checked when
/// the rule is loaded; that every built-in rule compiles is checked by the tests.
pub struct LazyRegex {
    source: String,
    compiled: OnceLock<Regex>,
}

impl LazyRegex {
    /// `source` after a syntax check (parsing only; compiling waits for the first use).
    fn new(source: String, what: &str) -> Result<LazyRegex, String> {
        regex_syntax::Parser::new()
            .parse(&source)
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(LazyRegex {
            source,
            compiled: OnceLock::new(),
        })
    }

    /// A regex compiled already (a host's pattern, compiled at init to refuse a bad one there).
    fn compiled(regex: Regex) -> LazyRegex {
        LazyRegex {
            source: regex.as_str().to_owned(),
            compiled: OnceLock::from(regex),
        }
    }

    /// The pattern, without compiling it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Capture groups, group 0 included, without compiling.
    fn captures_len(&self) -> usize {
        regex_syntax::Parser::new()
            .parse(&self.source)
            .map_or(1, |hir| hir.properties().explicit_captures_len() + 1)
    }
}

impl Deref for LazyRegex {
    type Target = Regex;

    fn deref(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            // the syntax was checked at load and the tests compile every built-in rule; a rule
            // that still fails (a size limit) fails closed: the panic is caught on the worker,
            // whose items are then dropped with a `panic` event, never sent unredacted
            Regex::new(&self.source).expect("a built-in redaction rule compiles")
        })
    }
}

impl std::fmt::Debug for LazyRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LazyRegex").field(&self.source).finish()
    }
}

impl Clone for LazyRegex {
    fn clone(&self) -> LazyRegex {
        LazyRegex {
            source: self.source.clone(),
            compiled: self.compiled.clone(),
        }
    }
}

/// Where a rule comes from, for the docs and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The nosecrets-rules crate's data.
    Nosecrets,
    /// `ours.toml`: this library's additions.
    Ours,
    /// The host's `redact_patterns`.
    Config,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its id, as the marker and the `redacted` event name it.
    pub id: Arc<str>,
    pub regex: LazyRegex,
    /// The capture group that is the credential (0: the whole match).
    pub capture: usize,
    /// Words of which one must be in a string for the rule to run there (one in lower case in
    /// any case, one with an upper-case letter as written); none: the rule always runs.
    pub keywords: Vec<String>,
    /// A value matching one of these is not a credential (a placeholder, an example).
    pub allow: Vec<LazyRegex>,
    /// The rule names a context (`API_KEY=`, `Authorization:`) rather than a format; where it
    /// overlaps a format's rule, the marker names the format's, and a value holding one of
    /// [`STOPWORDS`] is a placeholder.
    pub generic: bool,
    /// The least Shannon entropy, in bits per character, of a value this rule replaces (0:
    /// any); for context rules whose values are long random strings ([`MIN_ENTROPY`]).
    pub min_entropy: f64,
    pub origin: Origin,
}

impl Rule {
    /// Whether `value`, which this rule's pattern found, is not a credential: it matches one
    /// of the rule's allow patterns, or the rule names a context and the value holds a
    /// placeholder's word or looks less random than the rule's values do.
    pub fn allows(&self, value: &str) -> bool {
        if self.allow.iter().any(|a| a.is_match(value)) {
            return true;
        }
        if !self.generic {
            return false;
        }
        let lower = value.to_ascii_lowercase();
        STOPWORDS.iter().any(|w| lower.contains(w)) || entropy(value) < self.min_entropy
    }
}

/// Words that make the value of a context rule (`API_KEY=...`, `secret: ...`) a placeholder
/// rather than a credential, in any case: the "stopwords" of gitleaks' generic rules, in our
/// own short list. A format's rule (`ghp_...`, `AKIA...`) ignores them: its format is the
/// evidence, whatever letters the value holds.
pub const STOPWORDS: &[&str] = &[
    "example",
    "sample",
    "dummy",
    "fake",
    "placeholder",
    "test",
    "xxxx",
    "changeme",
    "redacted",
];

/// Context rules whose values are long random strings (at least 16 or 20 characters), and
/// the least Shannon entropy, in bits per character, of a value they replace: as gitleaks'
/// generic rule does (it asks 3.5). 16 random characters of the rules' 64 letters score 3.8 on
/// average (5 in 100 000 under 3.0); a made-up value such as `00000000-0000-...` under 2.
const MIN_ENTROPY: &[(&str, f64)] = &[("generic-api-key", 3.0), ("generic-secret", 3.0)];

/// The Shannon entropy of `value`'s bytes, in bits per byte.
pub fn entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    value.bytes().for_each(|b| counts[usize::from(b)] += 1);
    let n = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Rules of the data not used, and why.
pub const DROPPED: &[(&str, &str)] = &[(
    "private-key",
    "it matches the BEGIN line only, leaving the key; ours.toml's private-key-block takes the whole block",
)];

/// Rules that name a context rather than a credential's format.
const GENERIC: &[&str] = &[
    "generic-api-key",
    "generic-secret",
    "password-assignment",
    "basic-auth",
    "env-assignment",
    "authorization-header",
    "bearer-token",
    "url-credentials",
];

/// Our rules, in the data's format.
const OURS: &str = include_str!("ours.toml");

/// Every built-in rule, compiled; a rule of the data that does not compile is an error (the
/// tests load them all, so a new version of the data is checked before it ships).
pub fn builtin() -> Result<Vec<Rule>, String> {
    let data = nosecrets_rules::load_builtin_rules().map_err(|e| e.to_string())?;
    let ours = nosecrets_rules::parse_rules(OURS, "ours.toml").map_err(|e| e.to_string())?;
    let data = data
        .into_iter()
        .filter(|r| !DROPPED.iter().any(|(id, _)| *id == r.id))
        .map(|r| (r, Origin::Nosecrets));
    data.chain(ours.into_iter().map(|r| (r, Origin::Ours)))
        .map(|(r, origin)| compile(r, origin))
        .collect()
}

/// Compiles one rule of the data's format.
fn compile(rule: nosecrets_rules::Rule, origin: Origin) -> Result<Rule, String> {
    let regex = LazyRegex::new(translate(&rule.pattern), &format!("rule {}", rule.id))?;
    let capture = if rule.capture < regex.captures_len() {
        rule.capture
    } else {
        0
    };
    let allow = rule
        .allow
        .map(|a| a.patterns)
        .unwrap_or_default()
        .iter()
        .map(|p| LazyRegex::new(p.clone(), &format!("rule {} allow", rule.id)))
        .collect::<Result<_, _>>()?;
    let keywords = match KEYWORDS.iter().find(|(id, _)| *id == rule.id) {
        Some((_, words)) => words.iter().map(|w| w.to_string()).collect(),
        None => rule.keywords.iter().filter_map(|k| keyword(k)).collect(),
    };
    let min_entropy = MIN_ENTROPY
        .iter()
        .find(|(id, _)| *id == rule.id)
        .map_or(0.0, |(_, e)| *e);
    Ok(Rule {
        generic: GENERIC.contains(&rule.id.as_str()),
        min_entropy,
        keywords,
        id: rule.id.into(),
        regex,
        capture,
        allow,
        origin,
    })
}

/// A host's `redact_patterns` entry: always runs; group 1 is the credential if the pattern
/// has one, else the whole match.
pub fn custom(id: &str, pattern: &str) -> Result<Rule, String> {
    let regex = LazyRegex::compiled(
        Regex::new(pattern).map_err(|e| format!("redact_patterns {id:?}: {e}"))?,
    );
    Ok(Rule {
        id: id.into(),
        capture: usize::from(regex.captures_len() > 1),
        regex,
        keywords: Vec::new(),
        allow: Vec::new(),
        generic: false,
        min_entropy: 0.0,
        origin: Origin::Config,
    })
}

/// The data's regexes, for Rust's `regex`: a word boundary is an ASCII one (as in the
/// engines the data was written for; a Unicode one would stop the fast DFA on non-ASCII
/// text), and a closing quote-or-space class also accepts the end of the string (a JSON
/// string ends where the value ends: `"AWS_SECRET=…"`).
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('b') => out.push_str("(?-u:\\b)"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    if let Some(open) = out.rfind('[') {
        let class = &out[open..];
        if class.ends_with(']') && class.contains("\\s") && class.contains('\'') {
            let class = class.to_string();
            out.truncate(open);
            out.push_str(&format!("(?:{class}|$)"));
        }
    }
    out
}

/// A keyword as the prefilter looks for it in raw JSON text: cut at a character JSON may
/// escape (`/` may come as `\/`), keeping the longest piece.
fn keyword(k: &str) -> Option<String> {
    k.split(['/', '"', '\\'])
        .max_by_key(|p| p.len())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// Keywords of the data replaced, and why. The data's keywords are alternatives (a rule runs
/// where any one is); a word that is common in code and prose while another keyword is part
/// of every match of the rule's pattern only lets the rule run where it cannot match, so it is
/// dropped (`secret` for `aws-secret-key`, whose matches all hold `aws`). A word this common
/// gates nothing (`key` is in most code). The unit test
/// `replaced_keywords_are_in_every_match` checks that each match holds a keyword still.
pub(crate) const KEYWORDS: &[(&str, &[&str])] = &[
    // pattern (?:account.?key|storage.?key): "key" and "azure" add nothing the others miss
    ("azure-storage-key", &["account", "storage"]),
    // pattern (?i)aws.{0,20}secret...: "secret" alone cannot match
    ("aws-secret-key", &["aws"]),
    // pattern \b(v1\.0-...): "cloudflare" alone cannot match
    ("cloudflare-origin-ca-key", &["v1.0-"]),
    // pattern ...-us[0-9]: "mailchimp" alone cannot match
    ("mailchimp-api-key", &["-us"]),
    // pattern \b(key-[a-f0-9]{32}): "mailgun" alone cannot match
    ("mailgun-api-key", &["key-"]),
    // pattern (?i)\bjdbc:...: "password" alone cannot match
    ("jdbc-password-param", &["jdbc"]),
    // pattern (?i)supabase.{0,20}anon...: "anon" alone cannot match
    ("supabase-anon-key", &["supabase"]),
    // pattern (?i)supabase.{0,20}service[_-]?role...: "service_role" alone cannot match
    ("supabase-service-role-key", &["supabase"]),
    // pattern (?i)authorization\s*[=:]\s*['"]?basic...: "basic" alone cannot match
    ("basic-auth", &["authorization"]),
    // pattern (?i)paypal.{0,20}...: "client_secret" alone cannot match
    ("paypal-client-secret", &["paypal"]),
];
