//! The redactor's unit and property tests. Credentials here are built at run time from their
//! format (never real, and never a literal a scanner of this repository would flag).

use super::*;
use proptest::prelude::*;

/// `n` characters cycling through `set`, from `seed`.
fn chars(set: &str, n: usize, seed: usize) -> String {
    let set: Vec<char> = set.chars().collect();
    (0..n).map(|i| set[(i * 7 + seed) % set.len()]).collect()
}

const ALNUM: &str = "aB3dE5fG7hJ9kLmN2pQ4rS6tU8vWxYz";
const B32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &str = "0123456789abcdef";

/// One synthetic credential of each format the issue names, with the rule that must name it.
fn required() -> Vec<(&'static str, String)> {
    vec![
        ("aws-access-key", format!("AKIA{}", chars(B32, 16, 1))),
        ("gcp-api-key", format!("AIza{}", chars(ALNUM, 35, 2))),
        (
            "azure-storage-key",
            format!(
                "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={}==",
                chars(ALNUM, 86, 3)
            ),
        ),
        (
            "azure-connection-string",
            format!(
                "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={}=",
                chars(ALNUM, 43, 3)
            ),
        ),
        ("github-pat", format!("ghp_{}", chars(ALNUM, 36, 4))),
        (
            "github-fine-grained-pat",
            format!("github_pat_{}", chars(ALNUM, 82, 5)),
        ),
        ("gitlab-pat", format!("glpat-{}", chars(ALNUM, 20, 6))),
        (
            "openai-api-key",
            format!(
                "sk-proj-{}T3BlbkFJ{}",
                chars(ALNUM, 40, 7),
                chars(ALNUM, 40, 8)
            ),
        ),
        (
            "anthropic-api-key",
            format!("sk-ant-api03-{}AA", chars(ALNUM, 93, 9)),
        ),
        (
            "openrouter-api-key",
            format!("sk-or-v1-{}", chars(HEX, 64, 10)),
        ),
        ("gcp-api-key", format!("AIza{}", chars(ALNUM, 35, 11))),
        (
            "slack-token",
            format!(
                "xoxb-{}-{}-{}",
                chars("0123456789", 12, 1),
                chars("0123456789", 13, 2),
                chars(ALNUM, 24, 3)
            ),
        ),
        (
            "stripe-secret-key",
            format!("sk_live_{}", chars(ALNUM, 24, 12)),
        ),
        (
            "private-key-block",
            format!(
                // the block's lines put together here, so this file holds no key block
                "-----BEGIN RSA {p}-----\n{}\n-----END RSA {p}-----",
                chars(ALNUM, 64, 13),
                p = ["PRIVATE", "KEY"].join(" ")
            ),
        ),
        (
            "jwt",
            format!(
                "eyJ{}.eyJ{}.{}",
                chars(ALNUM, 20, 14),
                chars(ALNUM, 30, 15),
                chars(ALNUM, 43, 16)
            ),
        ),
        (
            "url-credentials",
            format!(
                "https://deploy:{}@git.example.org/repo.git",
                chars(ALNUM, 16, 17)
            ),
        ),
        (
            "authorization-header",
            format!("Authorization: Bearer {}", chars(ALNUM, 32, 18)),
        ),
        (
            "generic-api-key",
            format!("export MY_SERVICE_API_KEY={}", chars(ALNUM, 32, 19)),
        ),
        (
            "env-assignment",
            format!("export DEPLOY_TOKEN={}", chars(ALNUM, 32, 19)),
        ),
        (
            "password-assignment",
            format!("DATABASE_PASSWORD=\"{}\"", chars(ALNUM, 16, 20)),
        ),
        (
            "env-assignment",
            format!("DATABASE_PASSWORD={}", chars(ALNUM, 16, 20)),
        ),
    ]
}

/// The part of `example` that must disappear: the rule's capture.
fn credential<'a>(rule: &Rule, example: &'a str) -> &'a str {
    let caps = rule
        .regex
        .captures(example)
        .expect("the rule matches its example");
    caps.get(rule.capture).unwrap().as_str()
}

fn rule(id: &str) -> &'static Rule {
    let set = RuleSet::builtin().unwrap();
    set.rules()
        .iter()
        .find(|r| &*r.id == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

fn policy() -> Policy {
    Policy::new(Vec::new(), Vec::new()).unwrap()
}

#[test]
fn the_rule_set_loads_whole() {
    let set = RuleSet::builtin().unwrap();
    let ours = set
        .rules()
        .iter()
        .filter(|r| r.origin == Origin::Ours)
        .count();
    let data = set
        .rules()
        .iter()
        .filter(|r| r.origin == Origin::Nosecrets)
        .count();
    assert_eq!(
        data,
        nosecrets_rules::load_builtin_rules().unwrap().len() - rules::DROPPED.len()
    );
    assert!(data >= 45 && ours >= 15, "{data} {ours}");
    let mut ids: Vec<_> = set.rules().iter().map(|r| &r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), set.rules().len(), "rule ids are unique");
}

#[test]
fn every_required_format_is_redacted_by_its_rule_in_any_string() {
    let p = policy();
    for (id, example) in required() {
        let secret = credential(rule(id), &example).to_string();
        for text in [
            serde_json::to_string(&example).unwrap(),
            serde_json::json!({"tool": "bash", "output": format!("$ env\nHOME=/root\n{example}\n")}).to_string(),
            serde_json::json!({ example.clone(): 1 }).to_string(),
        ] {
            let out = p.redact(&text).unwrap();
            assert!(!out.text.contains(&secret), "{id}: {}", out.text);
            assert!(out.text.contains(&marker(id)), "{id}: {}", out.text);
            assert_eq!(out.rules, vec![Arc::<str>::from(id)], "{id}");
            serde_json::from_str::<serde_json::Value>(&out.text).unwrap();
        }
    }
}

#[test]
fn every_rule_redacts_synthetic_samples_of_its_own_format() {
    let p = policy();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut missed = Vec::new();
    for rule in RuleSet::builtin().unwrap().rules() {
        for _ in 0..20 {
            let sample = synth::sample(rule.regex.as_str(), &mut rng).unwrap();
            // a rule's keywords may be context rather than part of the format (`discord`)
            let context = rule.keywords.first().map_or("", String::as_str);
            let line = format!("{context} output: {sample} \n");
            let Some(caps) = rule.regex.captures(&line) else {
                panic!("{}: its sample {sample:?} does not match", rule.id)
            };
            let secret = caps.get(rule.capture).unwrap().as_str();
            if rule.allows(secret) {
                continue;
            }
            let text = serde_json::to_string(&line).unwrap();
            let out = p.redact(&text).unwrap();
            if out.count == 0 || (secret.len() >= 8 && out.text.contains(secret)) {
                missed.push(format!("{}: {sample:?} -> {}", rule.id, out.text));
            }
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

#[test]
fn escapes_are_decoded_before_matching_and_the_json_stays_valid() {
    let token = format!("ghp_{}", chars(ALNUM, 36, 4));
    // the `g` as \u0067, the token inside a key and after an escaped quote and newline
    let escaped = format!("\\u0067{}", &token[1..]);
    let text = format!(r#"{{"a\"b\n{escaped}": ["x\"{escaped}\"y", 1e400, "\ud800"]}}"#);
    let out = policy().redact(&text).unwrap();
    assert!(!out.text.contains(&token[1..]), "{}", out.text);
    assert_eq!(out.count, 2);
    assert_eq!(
        out.text,
        r#"{"a\"b\n[redacted: github-pat]": ["x\"[redacted: github-pat]\"y", 1e400, "\ud800"]}"#
    );
}

#[test]
fn content_without_credentials_is_returned_as_it_came() {
    for text in [
        r#"{"id":"ses_1","title":"fix the parser","parts":[{"text":"The API key goes in the header"}]}"#,
        r#"{"cmd":"cargo test","out":"test result: ok. 3 passed; 0 failed; secret sauce"}"#,
        r#"["https://example.org/path?q=1", "export PATH=$HOME/bin:$PATH", "TOKEN=${GITHUB_TOKEN}"]"#,
    ] {
        let out = policy().redact(text).unwrap();
        assert!(
            matches!(out.text, Cow::Borrowed(t) if t == text),
            "{}",
            out.text
        );
        assert_eq!(out.count, 0);
    }
}

#[test]
fn placeholders_and_allow_listed_values_stay() {
    let key = format!("AKIA{}", chars(B32, 16, 1));
    let text = serde_json::json!([
        format!("key {key}"),
        "AKIAIOSFODNN7EXAMPLE",
        "API_KEY=your_api_key_here",
        "https://user:${PASSWORD}@host"
    ])
    .to_string();
    let out = Policy::new(Vec::new(), vec![key.clone()])
        .unwrap()
        .redact(&text)
        .unwrap();
    assert!(matches!(out.text, Cow::Borrowed(_)), "{}", out.text);
    let out = policy().redact(&text).unwrap();
    assert_eq!(out.count, 1, "{}", out.text);
}

#[test]
fn extra_patterns_from_the_config_run_on_every_string() {
    let p = Policy::new(
        vec![("acme-key".into(), "acme_([0-9a-f]{12})".into())],
        Vec::new(),
    )
    .unwrap();
    let out = p
        .redact(r#"{"note":"key acme_0123456789ab here","esc":"acme_0123456789a\u0062"}"#)
        .unwrap();
    assert_eq!(
        out.text,
        r#"{"note":"key acme_[redacted: acme-key] here","esc":"[redacted: acme-key]"}"#.replace(
            "\"[redacted: acme-key]\"}",
            "\"acme_[redacted: acme-key]\"}"
        )
    );
    assert_eq!(out.rules, vec![Arc::<str>::from("acme-key")]);
    for (id, pattern) in [("Bad Id", "x"), ("ok", "("), ("", "x")] {
        assert!(
            Policy::new(vec![(id.into(), pattern.into())], Vec::new()).is_err(),
            "{id}"
        );
    }
    // Debug never shows allowed values
    let p = Policy::new(Vec::new(), vec!["hunter2-value".into()]).unwrap();
    assert!(!format!("{p:?}").contains("hunter2"));
}

#[test]
fn a_format_rule_names_a_credential_a_generic_rule_also_covers() {
    let token = format!("ghp_{}", chars(ALNUM, 36, 4));
    let text = serde_json::to_string(&format!("GITHUB_TOKEN={token}")).unwrap();
    let out = policy().redact(&text).unwrap();
    assert_eq!(out.text, "\"GITHUB_TOKEN=[redacted: github-pat]\"");
    assert_eq!(out.rules, vec![Arc::<str>::from("github-pat")]);
}

#[test]
fn unreadable_content_is_refused_not_sent() {
    // content share_sync validated and the secret's removal read cannot be like this; a
    // content without any keyword is not read at all
    for bad in [r#"{"a":"ghp_"#, r#"["ghp_\q"]"#, r#"["ghp_\u00zz"]"#] {
        let e = policy().redact(bad).unwrap_err();
        assert!(e.message.contains("not sent"), "{}", e.message);
    }
}

/// Any JSON value, strings drawn so that some hold credentials.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let creds: Vec<String> = required().into_iter().map(|(_, c)| c).collect();
    let text = prop_oneof![
        3 => "[ -~\u{e9}\u{1F600}\n\t\"\\\\]{0,30}",
        1 => (prop::sample::select(creds), "[ :=]{0,5}").prop_map(|(c, p)| format!("{p}{c}")),
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        text.clone().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::vec((text.clone(), inner), 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn redaction_keeps_json_removes_every_credential_and_is_stable(value in json_value(), ascii in any::<bool>()) {
        let text = if ascii {
            // every non-ASCII character and some ASCII ones as \u escapes
            serde_json::to_string(&value).unwrap().chars().map(|c| match c {
                'g' | 'K' | 'e' => format!("\\u{:04x}", c as u32),
                c if !c.is_ascii() => c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04x}")).collect(),
                c => c.to_string(),
            }).collect::<String>()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        // 'g','K','e' inside numbers or literals are not escapable: keep those texts plain
        let text = if serde_json::from_str::<serde_json::Value>(&text).is_ok() { text } else { serde_json::to_string(&value).unwrap() };
        let out = policy().redact(&text).unwrap();
        let back: serde_json::Value = serde_json::from_str(&out.text).unwrap();
        let plain = back.to_string();
        for (id, c) in required() {
            let secret = credential(rule(id), &c);
            prop_assert!(!plain.contains(secret), "{} left in {}", id, plain);
        }
        let again = policy().redact(&out.text).unwrap();
        prop_assert_eq!(again.count, 0, "{}", again.text);
        if out.count == 0 {
            prop_assert_eq!(&out.text, &text);
        }
    }
}

#[test]
fn every_built_in_rule_has_keywords() {
    let set = RuleSet::builtin().unwrap();
    let bare: Vec<_> = set
        .rules()
        .iter()
        .filter(|r| r.keywords.is_empty())
        .map(|r| &r.id)
        .collect();
    assert!(bare.is_empty(), "{bare:?}");
}

#[test]
fn replaced_keywords_are_in_every_match() {
    // a rule runs only where one of its keywords is: every match of its pattern must hold one
    let mut rng = fastrand::Rng::with_seed(19);
    for (id, words) in rules::KEYWORDS {
        let rule = rule(id);
        assert_eq!(rule.keywords, words.to_vec(), "{id}");
        for _ in 0..100 {
            let sample = synth::sample(rule.regex.as_str(), &mut rng).unwrap();
            let m = rule
                .regex
                .find(&sample)
                .unwrap()
                .as_str()
                .to_ascii_lowercase();
            assert!(words.iter().any(|w| m.contains(w)), "{id}: {sample:?}");
        }
    }
}

#[test]
fn a_context_rule_keeps_placeholders_and_a_format_rule_does_not() {
    // placeholders by their words (any case) or by looking made up: context rules keep them
    let fake = format!("Fake{}", chars(ALNUM, 12, 3));
    let flat = format!("{}{}", "0".repeat(20), chars(HEX, 4, 5));
    let text = serde_json::json!([
        format!("DEPLOY_TOKEN={fake}"),
        format!("client_secret: {flat}"),
    ])
    .to_string();
    let out = policy().redact(&text).unwrap();
    assert_eq!(out.count, 0, "{}", out.text);
    // the same contexts with random values are credentials
    let random = chars(ALNUM, 24, 6);
    let text = serde_json::json!([
        format!("DEPLOY_TOKEN={random}"),
        format!("client_secret: {random}")
    ])
    .to_string();
    let out = policy().redact(&text).unwrap();
    assert_eq!(out.count, 2, "{}", out.text);
    assert!(!out.text.contains(&random));
    // a format's rule ignores the words: `ghp_` and 36 letters are a token, whatever they say
    let token = format!("ghp_Test{}", chars(ALNUM, 32, 7));
    let text = serde_json::to_string(&format!("GITHUB_TOKEN={token}")).unwrap();
    let out = policy().redact(&text).unwrap();
    assert_eq!(out.text, "\"GITHUB_TOKEN=[redacted: github-pat]\"");
}

#[test]
fn an_authorization_value_that_repeats_the_header_name_is_redacted() {
    let token = chars(ALNUM, 32, 8);
    let text =
        serde_json::json!({"authorization": format!("Authorization: Bearer {token}")}).to_string();
    let out = policy().redact(&text).unwrap();
    assert!(out.count > 0 && !out.text.contains(&token), "{}", out.text);
    // the header's name alone is not a credential
    let text = serde_json::json!({"authorization": "Authorization: ..."}).to_string();
    assert_eq!(policy().redact(&text).unwrap().count, 0);
}

#[test]
fn a_rule_runs_on_the_strings_holding_its_keyword_not_on_their_neighbours() {
    // one pass finds the keywords of the whole content; each string still runs only the rules
    // whose keywords it holds (`discord` is context, not part of the token's format)
    let token = format!(
        "M{}.{}.{}",
        chars(ALNUM, 23, 1),
        chars(ALNUM, 6, 2),
        chars(ALNUM, 27, 3)
    );
    let apart = serde_json::json!(["discord", format!("token {token}")]).to_string();
    assert_eq!(policy().redact(&apart).unwrap().count, 0);
    let together = serde_json::json!(["x", format!("discord token {token}")]).to_string();
    let out = policy().redact(&together).unwrap();
    assert_eq!(
        out.rules,
        vec![Arc::<str>::from("discord-token")],
        "{}",
        out.text
    );
}
