//! The contenders (the library from C, Bun and Node; the original in Bun and Node; the drivers
//! alone; for the successor protocol: ShareNext's own client in Bun and Node and the library under
//! `"protocol": "next"`) and how their driver is started.

use std::path::PathBuf;
use std::process::Command;

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Library,
    Baseline,
    /// The driver alone, writing nowhere: the cost of its own pacing (a reference for stream).
    Null,
    /// ShareNext's own client (benches/compare/baseline/share-next.ts), the next-* scenarios' anchor.
    ShareNext,
}

#[derive(Clone, Copy)]
pub struct Contender {
    pub id: &'static str,
    pub label: &'static str,
    pub runtime: &'static str,
    pub kind: Kind,
    /// The baseline a library contender is compared with (C has none of its own: Bun's, the
    /// runtime opencode ran the original in).
    pub versus: &'static str,
    pub color: &'static str,
    /// The protocol it speaks: "v1", or "next" (the library with `"protocol": "next"`, ShareNext)
    pub protocol: &'static str,
}

pub const CONTENDERS: [Contender; 13] = [
    Contender {
        id: "c-library",
        label: "library · C",
        runtime: "c",
        kind: Kind::Library,
        versus: "bun-baseline",
        color: "#1f4e99",
        protocol: "v1",
    },
    Contender {
        id: "bun-library",
        label: "library · Bun",
        runtime: "bun",
        kind: Kind::Library,
        versus: "bun-baseline",
        color: "#3b82d6",
        protocol: "v1",
    },
    Contender {
        id: "node-library",
        label: "library · Node",
        runtime: "node",
        kind: Kind::Library,
        versus: "node-baseline",
        color: "#22a39a",
        protocol: "v1",
    },
    Contender {
        id: "bun-baseline",
        label: "original · Bun",
        runtime: "bun",
        kind: Kind::Baseline,
        versus: "",
        color: "#f08c2e",
        protocol: "v1",
    },
    Contender {
        id: "node-baseline",
        label: "original · Node",
        runtime: "node",
        kind: Kind::Baseline,
        versus: "",
        color: "#d64541",
        protocol: "v1",
    },
    Contender {
        id: "c-none",
        label: "driver alone · C",
        runtime: "c",
        kind: Kind::Null,
        versus: "",
        color: "#999999",
        protocol: "v1",
    },
    Contender {
        id: "bun-none",
        label: "driver alone · Bun",
        runtime: "bun",
        kind: Kind::Null,
        versus: "",
        color: "#999999",
        protocol: "v1",
    },
    Contender {
        id: "node-none",
        label: "driver alone · Node",
        runtime: "node",
        kind: Kind::Null,
        versus: "",
        color: "#999999",
        protocol: "v1",
    },
    Contender {
        id: "c-library-next",
        label: "library next · C",
        runtime: "c",
        kind: Kind::Library,
        versus: "bun-sharenext",
        color: "#1f4e99",
        protocol: "next",
    },
    Contender {
        id: "bun-library-next",
        label: "library next · Bun",
        runtime: "bun",
        kind: Kind::Library,
        versus: "bun-sharenext",
        color: "#3b82d6",
        protocol: "next",
    },
    Contender {
        id: "node-library-next",
        label: "library next · Node",
        runtime: "node",
        kind: Kind::Library,
        versus: "node-sharenext",
        color: "#22a39a",
        protocol: "next",
    },
    Contender {
        id: "bun-sharenext",
        label: "ShareNext · Bun",
        runtime: "bun",
        kind: Kind::ShareNext,
        versus: "",
        color: "#f08c2e",
        protocol: "next",
    },
    Contender {
        id: "node-sharenext",
        label: "ShareNext · Node",
        runtime: "node",
        kind: Kind::ShareNext,
        versus: "",
        color: "#d64541",
        protocol: "next",
    },
];

/// The contenders of the legacy scenarios that are compared (not the drivers-alone references).
pub fn compared() -> impl Iterator<Item = &'static Contender> {
    CONTENDERS
        .iter()
        .filter(|c| c.protocol == "v1" && matches!(c.kind, Kind::Library | Kind::Baseline))
}

pub fn contender(id: &str) -> &'static Contender {
    CONTENDERS
        .iter()
        .find(|c| c.id == id)
        .expect("known contender")
}

pub struct Paths {
    pub root: PathBuf,
    pub driver_c: PathBuf,
    pub driver_js: PathBuf,
    pub bun: PathBuf,
    pub bindings_dist: PathBuf,
    pub logs: PathBuf,
    /// Where the workload files are written for the drivers (see workload.rs).
    pub workloads: PathBuf,
}

impl Paths {
    pub fn new() -> Paths {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let work = root.join("target/bench-compare");
        // To evaluate a change of the bindings or of the JS driver without touching the tree:
        // COMPARE_BINDINGS_DIST=<a dist/ folder>, COMPARE_DRIVER_JS=<a compiled driver.js>.
        let var =
            |name: &str, default: PathBuf| std::env::var_os(name).map_or(default, PathBuf::from);
        Paths {
            driver_c: work.join("driver_c"),
            driver_js: var("COMPARE_DRIVER_JS", work.join("js/driver.js")),
            bun: root.join("bindings/typescript/node_modules/.bin/bun"),
            bindings_dist: var(
                "COMPARE_BINDINGS_DIST",
                root.join("bindings/typescript/dist"),
            ),
            logs: work.join("logs"),
            workloads: work.join("workloads"),
            root,
        }
    }

    pub fn command(&self, c: &Contender) -> Command {
        let mut cmd = match c.runtime {
            "c" => Command::new(&self.driver_c),
            "bun" => {
                let mut cmd = Command::new(&self.bun);
                cmd.arg(&self.driver_js);
                cmd
            }
            _ => {
                let mut cmd = Command::new("node");
                cmd.arg(&self.driver_js);
                cmd
            }
        };
        let kind = match c.kind {
            Kind::Library => "library",
            Kind::Baseline => "baseline",
            Kind::Null => "none",
            Kind::ShareNext => "sharenext",
        };
        cmd.args(["--contender", kind]);
        if c.protocol == "next" && c.kind == Kind::Library {
            cmd.args(["--protocol", "next"]);
        }
        if c.runtime != "c" {
            cmd.arg("--bindings").arg(&self.bindings_dist);
        }
        cmd.current_dir(&self.root);
        cmd
    }

    pub fn check(&self) -> Result<(), String> {
        for (what, p) in [
            ("the C driver", &self.driver_c),
            ("the JS driver", &self.driver_js),
            ("bun", &self.bun),
            (
                "the bindings (dist/node.js)",
                &self.bindings_dist.join("node.js"),
            ),
        ] {
            if !p.exists() {
                return Err(format!(
                    "{what} is missing: {} (run scripts/bench, which builds it)",
                    p.display()
                ));
            }
        }
        Ok(())
    }
}
