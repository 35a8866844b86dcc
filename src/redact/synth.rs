//! Synthetic credentials for the tests and the benchmark: random strings of a rule's own
//! format, generated from its regex (never real credentials). A wildcard or a negated class
//! draws from letters, digits and `_`, so a sample stays one token of its format.

use regex_syntax::hir::{Class, Hir, HirKind};

/// A random string that `pattern` matches (ASCII only; word boundaries are left to the
/// caller, who puts the sample between spaces). Fails on a pattern `regex_syntax` refuses.
pub fn sample(pattern: &str, rng: &mut fastrand::Rng) -> Result<String, String> {
    let hir = regex_syntax::parse(pattern).map_err(|e| e.to_string())?;
    let mut out = String::new();
    walk(&hir, rng, &mut out);
    Ok(out)
}

/// Characters a wide class draws from.
const PLAIN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";

fn walk(hir: &Hir, rng: &mut fastrand::Rng, out: &mut String) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => out.push_str(&String::from_utf8_lossy(&lit.0)),
        HirKind::Class(class) => out.push(pick(class, rng)),
        HirKind::Repetition(rep) => {
            let max = rep.max.unwrap_or(rep.min + 8).min(rep.min + 8);
            for _ in 0..rng.u32(rep.min..=max) {
                walk(&rep.sub, rng, out);
            }
        }
        HirKind::Capture(cap) => walk(&cap.sub, rng, out),
        HirKind::Concat(parts) => parts.iter().for_each(|p| walk(p, rng, out)),
        HirKind::Alternation(alts) => walk(&alts[rng.usize(..alts.len())], rng, out),
    }
}

/// A character of `class`: from [`PLAIN`] when the class is wide and holds some of it, else
/// an ASCII character of it, else its first.
fn pick(class: &Class, rng: &mut fastrand::Rng) -> char {
    let ranges: Vec<(char, char)> = match class {
        Class::Unicode(c) => c.ranges().iter().map(|r| (r.start(), r.end())).collect(),
        Class::Bytes(c) => c
            .ranges()
            .iter()
            .map(|r| (char::from(r.start()), char::from(r.end())))
            .collect(),
    };
    let has = |c: char| ranges.iter().any(|&(a, b)| a <= c && c <= b);
    let size: u32 = ranges.iter().map(|&(a, b)| b as u32 - a as u32 + 1).sum();
    let plain: Vec<char> = PLAIN.chars().filter(|&c| has(c)).collect();
    if size > 100 && !plain.is_empty() {
        return plain[rng.usize(..plain.len())];
    }
    let ascii: Vec<char> = (' '..='~').filter(|&c| has(c)).collect();
    if !ascii.is_empty() {
        return ascii[rng.usize(..ascii.len())];
    }
    ranges[0].0
}
