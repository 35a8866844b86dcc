//! The scenarios, one file each: its writes, the service's faults, its targets and its headings in
//! the report. This file lists them and says what the rest of the bench asks of one.

pub mod burst;
pub mod faults;
pub mod initial;
pub mod many;
pub mod next_burst;
pub mod next_exit;
pub mod next_faults;
pub mod next_stream;
pub mod soak;
pub mod stream;

use crate::workload::{Sizes, Texts, Workload, Write, len_part};

/// The run a workload is made for (the stream's length varies with both).
#[derive(Clone, Copy)]
pub struct At {
    pub latency: u64,
    pub run: usize,
}

/// Faults the service makes once the driver is set up: a share's first syncs answered 500 (the
/// successor protocol's service only), then seeded random resets and 500s, in % of syncs.
pub struct Faults {
    pub first_syncs_500: u32,
    pub reset_pct: u32,
    pub status_500_pct: u32,
    pub seed: u64,
}

/// One scenario.
pub struct Scenario {
    pub name: &'static str,
    /// The successor protocol's: its own runs (run/next.rs) and section of the report.
    pub next: bool,
    /// Its heading in report.md.
    pub title: fn(&Sizes) -> String,
    /// Its group's label on the chart (legacy scenarios).
    pub label: fn(&Sizes) -> String,
    /// Fills a fresh workload with its writes.
    pub writes: fn(&mut Workload, &Texts, &Sizes, At),
    /// Sync requests the original needs at least, one per key and one at a time (0: not bound by them).
    pub baseline_requests: fn(&Sizes) -> u64,
    /// The service's faults in run `run` (None: a clean service).
    pub faults: fn(&Sizes, usize) -> Option<Faults>,
}

/// The legacy protocol's scenarios run against the original module, in the report's order (the soak
/// runs on its own, after them).
pub const LEGACY: [&Scenario; 5] = [
    &burst::SCENARIO,
    &stream::SCENARIO,
    &initial::SCENARIO,
    &many::SCENARIO,
    &faults::SCENARIO,
];

/// The successor protocol's, against ShareNext's own client.
pub const NEXT: [&Scenario; 4] = [
    &next_burst::SCENARIO,
    &next_stream::SCENARIO,
    &next_faults::SCENARIO,
    &next_exit::SCENARIO,
];

/// The scenario of that name (names come from these lists and the runs made of them).
pub fn get(name: &str) -> &'static Scenario {
    LEGACY
        .into_iter()
        .chain(NEXT)
        .chain([&soak::SCENARIO])
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

pub fn is_next(name: &str) -> bool {
    get(name).next
}

/// What a scenario does not say: no writes, no chart group, no bound from the original, a clean
/// service (each scenario's `SCENARIO` starts from it).
pub const BASE: Scenario = Scenario {
    name: "",
    next: false,
    title: |_| String::new(),
    label: |_| String::new(),
    writes: |_, _, _, _| {},
    baseline_requests: |_| 0,
    faults: |_, _| None,
};

/// next-burst, next-faults, next-exit: new parts written at once.
pub const NEXT_PARTS: u64 = 200;

/// The successor protocol's new parts, written at once (sizes fixed: their targets and ShareNext's
/// figures are stated for them, also under `--quick`); `exit`: shut down right after them.
fn next_parts(w: &mut Workload, texts: &Texts, exit: bool) {
    w.next(texts, exit);
    w.writes = (0..NEXT_PARTS)
        .map(|k| Write::next_part(texts, k / 4, k, 0, k, len_part(k)))
        .collect();
}
