//! How figures are written in the report and the chart.

pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "DNF".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        let s = format!("{:.0}", x);
        // thin spaces as thousands separators
        let neg = s.starts_with('-');
        let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
        let mut out = String::new();
        for (i, ch) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push('\u{202f}');
            }
            out.push(*ch);
        }
        if neg { format!("-{out}") } else { out }
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Short enough for a bar's label: 51.6k for 51 574.
pub fn fmt_short(x: f64) -> String {
    if x.is_finite() && x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else {
        fmt_num(x)
    }
}

/// A count (or a median of counts): no decimals unless it has some.
pub fn fmt_count(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 {
        if x >= 100.0 {
            fmt_num(x)
        } else {
            format!("{x:.0}")
        }
    } else if x.is_finite() {
        format!("{x:.1}")
    } else {
        fmt_num(x)
    }
}

pub fn fmt_bytes(x: f64) -> String {
    if x >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", x / 1024.0 / 1024.0)
    } else if x >= 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}

pub fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r < 0.01 => " (<0.01×)".into(),
        Some(r) => format!(" ({r:.2}×)"),
        None => String::new(),
    }
}

pub fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map(f).unwrap_or_else(|| "—".into())
}
