//! Redaction, measured (issue 19): recall on generated synthetic credentials of every rule's
//! format, false positives on real code and prose, and throughput on one core.
//!
//!     cargo bench --bench redact            # all three, figures on stdout
//!     cargo bench --bench redact -- --list  # and every false positive's rule and file
//!
//! The credentials are generated from each rule's own regex (redact::synth), never real. The
//! prose is the King James Bible's first 2.2 MB (public domain; corpus/README.md); the code is
//! this repository's own sources and the sample session examples/fixtures/session.jsonl.

use std::path::{Path, PathBuf};
use std::time::Instant;

use opencode_share::redact::{Policy, RuleSet, synth};

const SAMPLES_PER_RULE: usize = 200;
const RUNS: usize = 7;

fn main() {
    let list = std::env::args().any(|a| a == "--list");
    let policy = Policy::new(Vec::new(), Vec::new()).expect("the policy compiles");
    let start = Instant::now();
    RuleSet::builtin().expect("the rules compile");
    println!(
        "rules: {} compiled in {:.1} ms",
        RuleSet::builtin().unwrap().rules().len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    recall(&policy);
    let corpus = corpus();
    false_positives(&policy, &corpus, list);
    throughput(&policy, &corpus);
    if std::env::args().any(|a| a == "--prefilter") {
        let set = RuleSet::builtin().unwrap();
        let bytes: usize = corpus.iter().map(|c| c.1.len()).sum();
        let mut hits = 0;
        let t = median(|| {
            hits = corpus.iter().filter(|c| set.may_match(&c.1)).count();
        });
        println!(
            "prefilter: {:.0} MB/s, {hits} of {} contents pass",
            bytes as f64 / 1e6 / t,
            corpus.len()
        );
        let passing: Vec<&str> = corpus
            .iter()
            .filter(|c| set.may_match(&c.1))
            .map(|c| c.1.as_str())
            .collect();
        let bytes: usize = passing.iter().map(|c| c.len()).sum();
        for (what, find) in [("strings only", false), ("strings and rules", true)] {
            let t = median(|| {
                for c in &passing {
                    std::hint::black_box(policy.scan_only(c, find));
                }
            });
            println!(
                "  contents that pass, {what}: {:.0} MB/s",
                bytes as f64 / 1e6 / t
            );
        }
        let t = median(|| {
            for c in &passing {
                std::hint::black_box(policy.redact(c).unwrap());
            }
        });
        println!(
            "  contents that pass, redact: {:.0} MB/s",
            bytes as f64 / 1e6 / t
        );
    }
    if std::env::args().any(|a| a == "--rules") {
        per_rule(&corpus);
    }
    if std::env::args().any(|a| a == "--gate") {
        gate(&corpus);
    }
}

/// Which keywords let contents through the whole-content gate: for each keyword, the
/// contents holding it, and those it alone lets through.
fn gate(corpus: &[(String, String)]) {
    let rules = RuleSet::builtin().unwrap().rules();
    let mut words: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.keywords.iter().map(String::as_str))
        .collect();
    words.sort();
    words.dedup();
    let mut rows: Vec<(usize, usize, &str)> = words
        .iter()
        .map(|w| {
            let with: Vec<&str> = corpus
                .iter()
                .map(|c| c.1.as_str())
                .filter(|c| holds(c, w))
                .collect();
            let alone = with
                .iter()
                .filter(|c| words.iter().filter(|v| holds(c, v)).count() == 1)
                .count();
            (with.len(), alone, *w)
        })
        .filter(|r| r.0 > 0)
        .collect();
    rows.sort_by(|a, b| b.cmp(a));
    for (with, alone, w) in rows {
        println!("  keyword {w:?}: in {with} contents, the only one in {alone}");
    }
}

/// Each rule's regex alone over the contents holding one of its keywords (where the library
/// runs it), slowest first: where the time goes.
fn per_rule(corpus: &[(String, String)]) {
    let rules = RuleSet::builtin().unwrap().rules();
    let bytes: usize = corpus.iter().map(|c| c.1.len()).sum();
    let mut times: Vec<(f64, &str, usize)> = rules
        .iter()
        .map(|r| {
            let mine: Vec<&str> = corpus
                .iter()
                .map(|c| c.1.as_str())
                .filter(|c| r.keywords.iter().any(|k| holds(c, k)))
                .collect();
            let t = median(|| {
                for c in &mine {
                    std::hint::black_box(r.regex.captures_iter(c).count());
                }
            });
            (t, &*r.id, mine.len())
        })
        .collect();
    times.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = times.iter().map(|t| t.0).sum();
    println!(
        "rules on the contents holding their keywords: {:.1} ms in all ({:.0} MB/s of the corpus)",
        total * 1e3,
        bytes as f64 / 1e6 / total
    );
    for (t, id, hit) in times.iter().take(12) {
        println!(
            "  {id}: {:.2} ms, keywords in {hit} of {} contents",
            t * 1e3,
            corpus.len()
        );
    }
}

/// Whether `content` holds the keyword `word` (in lower case: in any case).
fn holds(content: &str, word: &str) -> bool {
    if word.bytes().any(|b| b.is_ascii_uppercase()) {
        content.contains(word)
    } else {
        content.to_ascii_lowercase().contains(word)
    }
}

/// One synthetic credential of `rule`'s format in each of the places a session carries one.
fn contexts(keyword: &str, sample: &str) -> Vec<String> {
    let escaped: String = serde_json::to_string(sample)
        .unwrap()
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 1 && c.is_ascii_alphanumeric() {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect();
    vec![
        serde_json::json!({"type": "text", "text": format!("Here is what I found ({keyword}): {sample} , as asked.")}).to_string(),
        serde_json::json!({"type": "tool", "tool": "bash", "state": {"input": {"command": "cat .env"}, "output": format!("# {keyword}\nNODE_ENV=production\n{sample}\nPORT=8080\n")}}).to_string(),
        serde_json::json!({"type": "tool", "tool": "read", "state": {"output": format!("{{\n  \"{keyword}\": \"{sample}\"\n}}")}}).to_string(),
        format!(
            r#"{{"type":"text","text":"{keyword} \n{}"}}"#,
            &escaped[1..escaped.len() - 1]
        ),
    ]
}

fn recall(policy: &Policy) {
    let mut rng = fastrand::Rng::with_seed(19);
    let (mut total, mut found) = (0usize, 0usize);
    let mut worst: Vec<(f64, String)> = Vec::new();
    for rule in RuleSet::builtin().unwrap().rules() {
        let keyword = rule.keywords.first().map_or("credential", String::as_str);
        let (mut n, mut ok) = (0, 0);
        while n < SAMPLES_PER_RULE * 4 {
            let sample = synth::sample(rule.regex.as_str(), &mut rng).unwrap();
            let line = format!(" {sample} ");
            let Some(caps) = rule.regex.captures(&line) else {
                continue;
            };
            let secret = caps.get(rule.capture).unwrap().as_str().to_string();
            if rule.allows(&secret) {
                continue; // a placeholder by the rule's own allow-list: not a credential
            }
            for content in contexts(keyword, &sample) {
                n += 1;
                let out = policy.redact(&content).expect("synthetic content redacts");
                let plain = serde_json::from_str::<serde_json::Value>(&out.text)
                    .unwrap()
                    .to_string();
                let gone = out.count > 0 && (secret.len() < 8 || !plain.contains(&secret));
                ok += usize::from(gone);
                if !gone && std::env::var("REDACT_SHOW").is_ok_and(|r| r == *rule.id) {
                    println!("  missed {content}");
                }
            }
        }
        total += n;
        found += ok;
        worst.push((ok as f64 / n as f64, rule.id.to_string()));
    }
    worst.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "recall: {:.2}% of {total} synthetic credentials ({} rules x {SAMPLES_PER_RULE} samples x 4 contexts)",
        100.0 * found as f64 / total as f64,
        worst.len()
    );
    let low: Vec<String> = worst
        .iter()
        .filter(|w| w.0 < 1.0)
        .map(|(r, id)| format!("{id} {:.1}%", r * 100.0))
        .collect();
    println!(
        "  rules below 100%: {}",
        if low.is_empty() {
            "none".into()
        } else {
            low.join(", ")
        }
    );
}

/// Contents as a session would carry them: each line of the sample session, and every file of
/// code and prose cut into tool outputs of about 4 KiB.
fn corpus() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src", "crates", "tests", "benches", "bindings", "docs", "examples", "scripts", "include",
    ] {
        walk(&root.join(dir), &mut files);
    }
    for f in [
        "README.md",
        "ARCHITECTURE.md",
        "CHANGELOG.md",
        "Cargo.toml",
        "build.rs",
    ] {
        files.push(root.join(f));
    }
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let name = file.strip_prefix(root).unwrap().display().to_string();
        if name.ends_with(".jsonl") {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                out.push((name.clone(), line.to_string()));
            }
            continue;
        }
        let mut chunk = String::new();
        for line in text.split_inclusive('\n') {
            chunk.push_str(line);
            if chunk.len() >= 4096 {
                out.push((name.clone(), tool_output(&chunk)));
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            out.push((name.clone(), tool_output(&chunk)));
        }
    }
    out
}

fn tool_output(text: &str) -> String {
    serde_json::json!({"id": "prt_1", "type": "tool", "tool": "read", "state": {"status": "completed", "output": text}}).to_string()
}

/// Files of code and prose under `dir`, without build output, lock files or this benchmark's
/// own generated credentials' tests.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if !["target", "node_modules", ".git", "report"].contains(&name.as_str()) {
                walk(&p, out);
            }
        } else if [
            ".rs", ".md", ".txt", ".toml", ".ts", ".js", ".py", ".c", ".h", ".sh", ".jsonl",
            ".json", ".html", ".yml",
        ]
        .iter()
        .any(|x| name.ends_with(x))
            && !name.ends_with("lock.json")
        {
            out.push(p);
        }
    }
}

fn false_positives(policy: &Policy, corpus: &[(String, String)], list: bool) {
    let mut by_kind = [(0usize, 0usize); 2]; // (bytes, hits): code, prose
    let mut hits: Vec<String> = Vec::new();
    for (name, content) in corpus {
        let out = policy.redact(content).expect("the corpus redacts");
        let kind = usize::from(name.ends_with("kjv.txt"));
        by_kind[kind].0 += content.len();
        by_kind[kind].1 += out.count;
        if out.count > 0 {
            // where: the marker with a little text around it (the value itself is gone)
            let text = serde_json::from_str::<serde_json::Value>(&out.text)
                .unwrap()
                .to_string();
            for (at, _) in text.match_indices("[redacted: ") {
                let before: Vec<char> = text[..at].chars().rev().take(50).collect();
                let before: String = before.into_iter().rev().collect();
                let after: String = text[at..].chars().take(60).collect();
                hits.push(format!("{name}: {before}{after}"));
            }
        }
    }
    let mb = |b: usize| b as f64 / 1e6;
    let bytes = by_kind[0].0 + by_kind[1].0;
    let n = by_kind[0].1 + by_kind[1].1;
    println!(
        "false positives: {n} in {:.2} MB ({:.2} per MB); code and session {} in {:.2} MB, prose {} in {:.2} MB",
        mb(bytes),
        n as f64 / mb(bytes),
        by_kind[0].1,
        mb(by_kind[0].0),
        by_kind[1].1,
        mb(by_kind[1].0)
    );
    if list {
        hits.iter().for_each(|h| println!("  {h}"));
    }
}

fn throughput(policy: &Policy, corpus: &[(String, String)]) {
    let plain: Vec<&str> = corpus
        .iter()
        .map(|(_, c)| c.as_str())
        .filter(|c| policy.redact(c).unwrap().count == 0)
        .collect();
    let prose: Vec<&str> = corpus
        .iter()
        .filter(|(n, _)| n.ends_with("kjv.txt"))
        .map(|(_, c)| c.as_str())
        .collect();
    let code: Vec<&str> = corpus
        .iter()
        .filter(|(n, c)| !n.ends_with("kjv.txt") && policy.redact(c).unwrap().count == 0)
        .map(|(_, c)| c.as_str())
        .collect();
    let secret = opencode_share::registry::Secret::new("0b5e7f3c-5a1d-4c55-9b8e-2f4f0e2a9c61");
    for (what, set) in [
        ("all contents without a credential", &plain),
        ("code and session", &code),
        ("prose", &prose),
    ] {
        let bytes: usize = set.iter().map(|c| c.len()).sum();
        let redact = median(|| {
            for c in set.iter() {
                std::hint::black_box(policy.redact(c).unwrap());
            }
        });
        let strip = median(|| {
            for c in set.iter() {
                std::hint::black_box(opencode_share::content::redact(c, &secret).unwrap());
            }
        });
        println!(
            "throughput, {what} ({:.2} MB): redaction {:.0} MB/s, the secret's removal {:.0} MB/s (medians of {RUNS}, this thread's CPU time)",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / redact,
            bytes as f64 / 1e6 / strip
        );
    }
}

/// This thread's CPU time, in seconds: the cost on one core, whatever else the machine runs
/// (wall time on a shared machine measures the others' load as much as ours).
fn cpu_time() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// The median of `RUNS` timings of `f`, in seconds of this thread's CPU time.
fn median(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = cpu_time();
            f();
            cpu_time() - start
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[RUNS / 2]
}
