//! The command line: `cargo bench --bench compare -- [--quick] [--runs N] ...` (README's table).

use std::path::PathBuf;

pub struct Opts {
    pub quick: bool,
    pub runs: usize,
    pub only: Option<Vec<String>>,
    pub latencies: Option<Vec<u64>>,
    pub contenders: Option<Vec<String>>,
    pub cap_s: Option<u64>,
    pub soak: bool,
    pub out: PathBuf,
}

pub fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        quick: false,
        runs: 0,
        only: None,
        latencies: None,
        contenders: None,
        cap_s: None,
        soak: true,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/report"),
    };
    let list = |v: &str| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--quick" => o.quick = true,
            "--no-soak" => o.soak = false,
            "--runs" => o.runs = value()?.parse().map_err(|_| "--runs needs a number")?,
            "--only" => o.only = Some(list(&value()?)),
            "--latencies" => {
                o.latencies = Some(
                    list(&value()?)
                        .iter()
                        .map(|s| s.parse().map_err(|_| format!("bad latency {s}")))
                        .collect::<Result<_, _>>()?,
                )
            }
            "--contenders" => o.contenders = Some(list(&value()?)),
            "--cap-s" => o.cap_s = Some(value()?.parse().map_err(|_| "--cap-s needs a number")?),
            "--out" => o.out = PathBuf::from(value()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.runs == 0 {
        o.runs = if o.quick { 1 } else { 3 };
    }
    Ok(o)
}
