//! The targets the report judges (README, "Targets, and how the report judges them"): their lists,
//! the two that span scenarios (the host's cost, overlapping syncs), and the tallies every
//! scenario's own target (in scenarios/) is judged with.

use crate::contenders::{Contender, Kind, contender};
use crate::report::format::{fmt_num, opt};
use crate::report::stats::{Cell, Results};
use crate::run::RunResult;
use crate::scenarios::{
    self, burst, faults, next_burst, next_exit, next_faults, next_stream, soak, stream,
};
use crate::workload::Sizes;

pub struct Target {
    pub name: String,
    pub pass: bool,
    pub figures: String,
}

/// The latency the targets are judged at.
pub const LAT: u64 = 20;
pub const LIBS: [&str; 3] = ["c-library", "bun-library", "node-library"];

pub fn targets(sizes: &Sizes, res: &Results, soak: Option<&RunResult>) -> Vec<Target> {
    [
        burst::target(res),
        stream::target(res),
        host_cost(res),
        faults::target(res),
        soak.map(|s| soak::target(sizes, s)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Figures per contender and whether all pass; None when no contender had both cells.
pub struct Tally {
    figs: Vec<String>,
    pass: bool,
    any: bool,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            figs: Vec::new(),
            pass: true,
            any: false,
        }
    }
    pub fn add(&mut self, pass: bool, figure: String) {
        self.any = true;
        self.pass &= pass;
        self.figs.push(figure);
    }
    pub fn target(self, name: String) -> Option<Target> {
        self.any.then(|| Target {
            name,
            pass: self.pass,
            figures: self.figs.join("; "),
        })
    }
}

/// Each library contender of `libs` with its cell of `sc` at 20 ms and its original's, where both ran.
pub fn pairs<'a>(
    res: &Results<'a>,
    sc: &str,
    libs: &[&str],
) -> Vec<(&'static Contender, Cell<'a>, Cell<'a>)> {
    libs.iter()
        .map(|lib| contender(lib))
        .filter_map(|c| Some((c, res.cell(sc, LAT, c.id)?, res.cell(sc, LAT, c.versus)?)))
        .collect()
}

/// Host cost per write no higher than the baseline's, same runtime, every scenario at 20 ms.
fn host_cost(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    for lib in ["bun-library", "node-library"] {
        for sc in scenarios::LEGACY
            .map(|s| s.name)
            .into_iter()
            .filter(|s| *s != "faults")
        {
            let Some((c, l, b)) = pairs(res, sc, &[lib]).pop() else {
                continue;
            };
            let lm = l.median(|r| r.host_cpu_us(), false);
            let bm = b.median(|r| r.host_cpu_us(), false);
            let ok = matches!((lm, bm), (Some(x), Some(y)) if x <= y);
            let figure = format!(
                "{} {sc}: {} vs {} µs{}",
                c.label,
                opt(lm, fmt_num),
                opt(bm, fmt_num),
                if ok { "" } else { " **(higher)**" }
            );
            t.add(ok, figure);
        }
    }
    t.target("host cost per write (JS thread CPU, START → drained) no higher than the original's in the same runtime, every scenario at 20 ms (faults excepted: the original stops working there)".into())
}

// ------------------------------------------------------------------------------------------
// The successor protocol (issue 10, item 6): the library under "next" against ShareNext's own
// client, at 20 ms. A target is "not measured" while no library-next contender ran (today's
// library refuses `"protocol": "next"`: its runs are "skipped").
// ------------------------------------------------------------------------------------------

/// A next target: None when not measured.
pub struct NextTarget {
    pub name: String,
    pub pass: Option<bool>,
    pub figures: String,
}

pub const NEXT_LIBS: [&str; 3] = ["c-library-next", "bun-library-next", "node-library-next"];
const SHARENEXTS: [&str; 2] = ["bun-sharenext", "node-sharenext"];

pub fn next_targets(res: &Results) -> Vec<NextTarget> {
    vec![
        next_burst::target(res),
        next_stream::target(res),
        next_faults::target(res),
        next_exit::target(res),
        overlap_target(res),
        next_stream::caller_cost(res),
    ]
}

/// Every run held every final content: (verdict, "got/expected" per run).
pub fn every_run_final(c: &Cell) -> Option<(bool, String)> {
    let got: Vec<String> = c
        .runs
        .iter()
        .map(|r| format!("{}/{}", r.keys_final, r.keys_expected))
        .collect();
    let all = c
        .runs
        .iter()
        .all(|r| r.keys_final == r.keys_expected && r.keys_expected > 0);
    Some((all, got.join(", ")))
}

/// The library-next contenders' cells of `sc` at 20 ms that really ran (not skipped).
pub fn ran<'a>(res: &Results<'a>, sc: &str, id: &str) -> Option<Cell<'a>> {
    let cell = res.cell(sc, LAT, id)?;
    let runs: Vec<&RunResult> = cell
        .runs
        .into_iter()
        .filter(|r| !r.outcome.starts_with("skipped"))
        .collect();
    (!runs.is_empty()).then_some(Cell { runs })
}

pub fn next_target(
    res: &Results,
    sc: &str,
    name: &str,
    judge: &dyn Fn(&Cell) -> Option<(bool, String)>,
) -> NextTarget {
    let mut figs = Vec::new();
    let mut pass: Option<bool> = None;
    for id in NEXT_LIBS {
        match ran(res, sc, id).and_then(|c| judge(&c)) {
            Some((ok, fig)) => {
                pass = Some(pass.unwrap_or(true) && ok);
                figs.push(format!("{}: {fig}", contender(id).label));
            }
            None if res.cell(sc, LAT, id).is_some() => {
                figs.push(format!("{}: skipped", contender(id).label))
            }
            None => {}
        }
    }
    for id in SHARENEXTS.into_iter().chain(["c-library"]) {
        if let Some((_, fig)) = ran(res, sc, id).and_then(|c| judge(&c)) {
            figs.push(format!("{}: {fig}", contender(id).label));
        }
    }
    NextTarget {
        name: name.to_string(),
        pass,
        figures: figs.join("; "),
    }
}

/// Never two syncs of one share in flight: 0 overlaps in every run of every next scenario.
fn overlap_target(res: &Results) -> NextTarget {
    let mut figs = Vec::new();
    let mut pass: Option<bool> = None;
    for id in NEXT_LIBS.into_iter().chain(SHARENEXTS) {
        let mut total = 0;
        let mut any = false;
        for sc in scenarios::NEXT.map(|s| s.name) {
            for r in ran(res, sc, id).map(|c| c.runs).unwrap_or_default() {
                any = true;
                total += r.next.as_ref().and_then(|n| n.overlaps).unwrap_or(0);
            }
        }
        if any {
            if contender(id).kind == Kind::Library {
                pass = Some(pass.unwrap_or(true) && total == 0);
            }
            figs.push(format!("{}: {total}", contender(id).label));
        }
    }
    NextTarget {
        name:
            "never two syncs of one share in flight: 0 overlaps, every run of every next scenario"
                .into(),
        pass,
        figures: figs.join("; "),
    }
}
