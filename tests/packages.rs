//! The release artifacts as their users get them, from `target/package/` (built by
//! `scripts/package`; `$CARGO_TARGET_DIR/package` when that is set, another folder with
//! `OPENCODE_SHARE_PACKAGE_DIR`): the C install tree
//! unpacked into a temporary prefix and used through pkg-config, shared and static; the npm
//! tarballs installed into an empty folder and used from Node and Bun (ES module, CommonJS)
//! and type-checked with `tsc --strict`, with no Rust toolchain on PATH (and the main package
//! alone, whose error names the platform package to install). Each runs against the real share
//! server (the testkit's, in-process, behind the fault proxy). The server's tarball: its systemd
//! unit passes `systemd-analyze verify` and starts the unpacked server from the example env
//! file; the library and the server need no glibc symbol newer than 2.17.
//!
//! Ignored by a plain `cargo test` (the artifacts need a release build); `scripts/test` runs
//! `scripts/package` and then `cargo test --test packages -- --ignored`. The Python wheel is
//! tested by its own pytest suite (bindings/python/tests), which scripts/test also runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use testkit::Service as ShareService;

/// Bound, in seconds, on every command these tests run (through coreutils' `timeout`).
const LIMIT_S: &str = "300";

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn package_dir() -> PathBuf {
    std::env::var_os("OPENCODE_SHARE_PACKAGE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(|t| repo().join(t).join("package")))
        .unwrap_or_else(|| repo().join("target/package"))
}

/// The one artifact of target/package whose name is `name`; fails with what to run if missing.
fn artifact(name: &str) -> PathBuf {
    let path = package_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/package first",
        path.display()
    );
    path
}

/// A fresh, empty folder for one test under cargo's per-test temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("packages-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    dir
}

/// Runs `program args` (bounded by LIMIT_S) in `dir` with `env`; panics with its output
/// unless it succeeds. Returns its stdout.
fn run(dir: &Path, env: &[(&str, &str)], program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("timeout");
    cmd.arg(LIMIT_S).arg(program).args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let shown = format!("{program} {}", args.join(" "));
    let output: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{shown} failed ({}) in {}\n--- stdout ---\n{stdout}--- stderr ---\n{}",
        output.status,
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `sh -c script` (for the `$(pkg-config ...)` command lines exactly as a user types them).
fn sh(dir: &Path, env: &[(&str, &str)], script: &str) -> String {
    run(dir, env, "sh", &["-c", script])
}

fn needed(file: &Path) -> Vec<String> {
    let dynamic = run(repo(), &[], "readelf", &["-d", &file.to_string_lossy()]);
    dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

/// The share the README example created (of the fresh session it prints) must be on the
/// service, with its synced keys.
fn check_readme_share(service: &ShareService, output: &str) {
    let sid = output
        .lines()
        .find_map(|l| l.strip_prefix("session: "))
        .unwrap_or_else(|| panic!("the example prints its session: {output}"));
    assert!(
        sid.len() == 30 && sid.starts_with("ses_"),
        "opencode's id format: {sid}"
    );
    let data = service.data(sid).expect("the example's share exists");
    assert_eq!(data.len(), 2, "both writes arrived: {data:?}");
    let url = format!("/s/{}", &sid[sid.len() - 8..]);
    assert!(
        output
            .lines()
            .any(|l| l.starts_with("share URL: http") && l.ends_with(&url)),
        "the example prints the share URL: {output}"
    );
}

/// Unpacks the C install tree into a fresh scratch folder: (the folder, the tree's prefix).
fn unpack_c_tree(name: &str) -> (PathBuf, PathBuf) {
    let tree = format!("opencode-share-{VERSION}-linux-x86_64");
    let tarball = artifact(&format!("{tree}.tar.gz"));
    let dir = scratch(name);
    run(&dir, &[], "tar", &["-xzf", &tarball.to_string_lossy()]);
    let prefix = dir.join(&tree);
    (dir, prefix)
}

#[test]
#[ignore = "needs target/package from scripts/package (scripts/test runs it)"]
fn c_install_tree_builds_programs_with_pkg_config_shared_and_static() {
    let (dir, prefix) = unpack_c_tree("c");
    let lib = prefix.join("lib");

    // the usual links, and the SONAME programs record
    let link = |name: &str| {
        std::fs::read_link(lib.join(name))
            .unwrap_or_else(|e| panic!("lib/{name} is not a link: {e}"))
    };
    assert_eq!(
        link("libopencode_share.so"),
        Path::new("libopencode_share.so.0")
    );
    assert_eq!(
        link("libopencode_share.so.0"),
        PathBuf::from(format!("libopencode_share.so.{VERSION}"))
    );
    let real = lib.join(format!("libopencode_share.so.{VERSION}"));
    let dynamic = run(&dir, &[], "readelf", &["-d", &real.to_string_lossy()]);
    assert!(
        dynamic.contains("Library soname: [libopencode_share.so.0]"),
        "{dynamic}"
    );
    // shipped without debug info or a symbol table
    let sections = run(&dir, &[], "readelf", &["-S", "-W", &real.to_string_lossy()]);
    assert!(
        !sections.contains(".debug_") && !sections.contains(".symtab"),
        "{sections}"
    );
    let archive = lib.join("libopencode_share.a");
    let archive_sections = run(
        &dir,
        &[],
        "readelf",
        &["-S", "-W", &archive.to_string_lossy()],
    );
    assert!(
        !archive_sections.contains(".debug_info"),
        "the archive keeps debug info"
    );
    assert!(prefix.join("include/opencode_share.h").is_file());

    let pc_path = lib.join("pkgconfig");
    let pc_path = pc_path.to_string_lossy();
    let env = [("PKG_CONFIG_PATH", pc_path.as_ref())];
    let modversion = sh(&dir, &env, "pkg-config --modversion opencode_share");
    assert_eq!(modversion.trim(), VERSION);

    let app = dir.join("app.c");
    std::fs::copy(repo().join("tests/c/readme_example.c"), &app).expect("copy the example");
    let lib_s = lib.to_string_lossy();
    // compiles app.c with `link` (the pkg-config part of the command line), checks what the
    // program needs at run time, runs it against a fresh service and checks the share
    let build_and_run = |exe: &str, link: &str, run_env: &[(&str, &str)]| -> Vec<String> {
        sh(
            &dir,
            &env,
            &format!("cc -std=c99 -pedantic -Wall -Wextra -Werror -o {exe} app.c {link}"),
        );
        let service = ShareService::start();
        let out = run(&dir, run_env, &format!("./{exe}"), &[&service.url()]);
        check_readme_share(&service, &out);
        needed(&dir.join(exe))
    };

    // shared: `cc app.c $(pkg-config --cflags --libs opencode_share)`, run with the prefix's lib
    let deps = build_and_run(
        "app-shared",
        "$(pkg-config --cflags --libs opencode_share)",
        &[("LD_LIBRARY_PATH", &lib_s)],
    );
    assert!(
        deps.contains(&"libopencode_share.so.0".to_owned()),
        "the program records the SONAME: {deps:?}"
    );

    // static: the same with --static (and -Wl,-Bstatic, which picks the archive over the .so)
    let deps = build_and_run(
        "app-static",
        "-Wl,-Bstatic $(pkg-config --static --cflags --libs opencode_share)",
        &[],
    );
    assert!(
        !deps.iter().any(|d| d.contains("opencode_share")),
        "the static program needs no libopencode_share: {deps:?}"
    );
}

/// Symbols the dynamic library exports (defined, global, in .dynsym).
fn exported(lib: &Path) -> Vec<String> {
    let listing = run(
        repo(),
        &[],
        "nm",
        &["-D", "--defined-only", &lib.to_string_lossy()],
    );
    listing
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_addr, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
            kind.chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
                .then(|| name.to_owned())
        })
        .collect()
}

#[test]
#[ignore = "needs target/package from scripts/package (scripts/test runs it)"]
fn the_shared_library_exports_only_share_symbols_and_the_archive_no_unprefixed_c() {
    let (dir, prefix) = unpack_c_tree("symbols");
    let lib = prefix.join("lib");
    let symbols = exported(&lib.join(format!("libopencode_share.so.{VERSION}")));
    assert!(symbols.len() >= 20, "share_* symbols: {symbols:?}");
    let foreign: Vec<&String> = symbols
        .iter()
        .filter(|s| !s.starts_with("share_"))
        .collect();
    assert!(foreign.is_empty(), "exported beyond share_*: {foreign:?}");

    // The archive's global symbols: ours (share_*), Rust's (mangled, or LLVM's `anon.<hash>`
    // constants and `DW.ref.` personality references: no C name clashes), the Rust runtime's,
    // and ring's C and assembly, which is prefixed with its version (ring_core_0_17_14_).
    let listing = run(
        &dir,
        &[],
        "nm",
        &[
            "-g",
            "--defined-only",
            "--format=posix",
            &lib.join("libopencode_share.a").to_string_lossy(),
        ],
    );
    let unprefixed: std::collections::BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?;
            let kind = parts.next()?;
            (kind.len() == 1 && !name.ends_with(':')).then_some(name)
        })
        .filter(|name| {
            !(name.starts_with("share_")
                || name.starts_with("_ZN")
                || name.starts_with("_R")
                || name.starts_with("__rust")
                || name.starts_with("rust_")
                || name.starts_with("ring_core_")
                || name.starts_with("anon.")
                || name.starts_with("DW.ref."))
        })
        .filter(|name| !is_compiler_builtin(name))
        .collect();
    assert!(
        unprefixed.is_empty(),
        "global C symbols in the archive that could clash with another copy: {unprefixed:?}"
    );
}

/// compiler-builtins' runtime routines (`__udivti3`, `memcpy` fallbacks...): weak or the same
/// as libgcc's, as in every Rust static library.
fn is_compiler_builtin(name: &str) -> bool {
    name.starts_with("__")
        || ["memcpy", "memmove", "memset", "memcmp", "bcmp", "strlen"].contains(&name)
}

#[test]
#[ignore = "needs target/package from scripts/package (scripts/test runs it)"]
fn npm_tarballs_install_and_run_in_node_and_bun_without_rust() {
    let main = artifact(&format!("opencode-share-{VERSION}.tgz"));
    let platform = artifact(&format!("opencode-share-linux-x64-gnu-{VERSION}.tgz"));
    let dir = scratch("npm");
    for file in ["esm.mjs", "cjs.cjs", "consumer.ts", "tsconfig.json"] {
        std::fs::copy(repo().join("tests/packages/npm").join(file), dir.join(file))
            .expect("copy a consumer");
    }
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"consumer","private":true,"type":"module"}"#,
    )
    .expect("write package.json");

    // A PATH with node and npm but no Rust toolchain (cargo, rustc).
    let node = which("node");
    let node_dir = node
        .parent()
        .expect("node's folder")
        .to_string_lossy()
        .into_owned();
    let path = format!("{node_dir}:/usr/local/bin:/usr/bin:/bin");
    let bindings = repo().join("bindings/typescript");
    let bun = bun(&bindings);
    for tool in ["cargo", "rustc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env("PATH", &path)
            .output()
            .expect("sh");
        assert!(
            !found.status.success(),
            "{tool} is on the consumer's PATH {path}"
        );
    }
    // Offline: koffi, typescript and @types/node come from npm's cache (scripts/test fills it),
    // in the versions of the bindings' lockfile.
    let lock: Value = serde_json::from_str(
        &std::fs::read_to_string(bindings.join("package-lock.json")).expect("read the lockfile"),
    )
    .expect("the lockfile is JSON");
    let pinned = |name: &str| {
        let version = lock["packages"][format!("node_modules/{name}")]["version"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} is not in bindings/typescript/package-lock.json"));
        format!("{name}@{version}")
    };
    let (typescript, types_node) = (pinned("typescript"), pinned("@types/node"));
    let env = [
        ("PATH", path.as_str()),
        ("npm_config_update_notifier", "false"),
    ];
    npm_install(
        &dir,
        &env,
        &[
            &main.to_string_lossy(),
            &platform.to_string_lossy(),
            &typescript,
            &types_node,
        ],
    );
    let installed = dir.join("node_modules/opencode-share-linux-x64-gnu/libopencode_share.so");
    assert!(
        installed.is_file(),
        "the platform package carries the library"
    );
    assert!(
        dir.join("node_modules/opencode-share/dist/node.js")
            .is_file(),
        "prepack built dist/"
    );

    let service = ShareService::start();
    let url = service.url();
    let runs: [(&str, &Path, &str, &str); 4] = [
        ("node", &node, "esm.mjs", "koffi"),
        ("node", &node, "cjs.cjs", "koffi"),
        ("bun", &bun, "esm.mjs", "bun:ffi"),
        ("bun", &bun, "cjs.cjs", "bun:ffi"),
    ];
    for (i, (runtime, exe, script, backend)) in runs.into_iter().enumerate() {
        let session = format!("ses_npmconsumer0000000000{i:02}");
        let out = run(
            &dir,
            &env,
            &exe.to_string_lossy(),
            &[script, &url, &session],
        );
        let line: Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{runtime} {script} printed no JSON line ({e}): {out}"));
        assert_eq!(line["backend"], backend, "{runtime} {script}: {line}");
        assert_eq!(line["version"], VERSION);
        let loaded = Path::new(line["path"].as_str().unwrap_or_default());
        assert_eq!(
            loaded.canonicalize().ok(),
            installed.canonicalize().ok(),
            "{runtime} {script} loaded the platform package's library: {line}"
        );
        assert!(
            line["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&session[session.len() - 8..])),
            "{line}"
        );
        let data = service.data(&session).expect("the consumer's share exists");
        assert_eq!(data.len(), 1, "{runtime} {script}: {data:?}");
    }

    run(
        &dir,
        &env,
        "node",
        &["node_modules/typescript/bin/tsc", "-p", "."],
    );
}

#[test]
#[ignore = "needs target/package from scripts/package (scripts/test runs it)"]
fn npm_main_package_without_its_platform_package_names_the_package_to_install() {
    let main = artifact(&format!("opencode-share-{VERSION}.tgz"));
    let dir = scratch("npm-no-platform");
    std::fs::copy(
        repo().join("tests/packages/npm/no-platform.mjs"),
        dir.join("no-platform.mjs"),
    )
    .expect("copy the consumer");
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"consumer","private":true,"type":"module"}"#,
    )
    .expect("write package.json");
    let env = [("npm_config_update_notifier", "false")];
    // offline, the optional platform package cannot be fetched: npm skips it, as it does on a
    // platform without one or with optional dependencies omitted
    npm_install(&dir, &env, &[&main.to_string_lossy()]);
    assert!(
        !dir.join("node_modules/opencode-share-linux-x64-gnu")
            .exists(),
        "the platform package was installed"
    );
    let out = run(&dir, &env, "node", &["no-platform.mjs"]);
    let line: Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON line ({e}): {out}"));
    assert_eq!(line["code"], "SHARE_ERR_LIBRARY", "{line}");
    let message = line["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`npm install opencode-share-linux-x64-gnu`"),
        "the error names the package to install: {message}"
    );
}

/// `npm install --offline` of `packages` into `dir` (npm's cache holds the registry's ones).
fn npm_install(dir: &Path, env: &[(&str, &str)], packages: &[&str]) {
    let mut args = vec!["install", "--offline", "--no-audit", "--no-fund"];
    args.extend_from_slice(packages);
    run(dir, env, "npm", &args);
}

/// The bindings' Bun: node_modules/.bin/bun once bun's postinstall ran, else the platform
/// package's binary (as bindings/typescript/scripts/test.sh finds it).
fn bun(bindings: &Path) -> PathBuf {
    let linked = bindings.join("node_modules/.bin/bun");
    let works = |exe: &Path| {
        Command::new(exe)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&linked) {
        return linked;
    }
    std::fs::read_dir(bindings.join("node_modules/@oven"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin/bun"))
        .find(|exe| works(exe))
        .unwrap_or_else(|| {
            panic!(
                "no working bun in {}/node_modules (npm ci)",
                bindings.display()
            )
        })
}

fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh");
    assert!(out.status.success(), "{program} is not on PATH");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The newest glibc symbol version `file` needs, as the minor of `GLIBC_2.<minor>` (objdump -T,
/// what the dynamic loader checks).
fn newest_glibc_minor(file: &Path) -> u32 {
    let symbols = run(repo(), &[], "objdump", &["-T", &file.to_string_lossy()]);
    symbols
        .split("GLIBC_2.")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or_else(|| panic!("{} uses no versioned glibc symbol", file.display()))
}

/// Unpacks the server's tarball into a fresh scratch folder: (the folder, the tree).
fn unpack_server_tree(name: &str) -> (PathBuf, PathBuf) {
    let tree = format!("opencode-share-server-{VERSION}-linux-x86_64");
    let tarball = artifact(&format!("{tree}.tar.gz"));
    let dir = scratch(name);
    run(&dir, &[], "tar", &["-xzf", &tarball.to_string_lossy()]);
    (dir.clone(), dir.join(tree))
}

#[test]
#[ignore = "needs target/package from scripts/package (scripts/test runs it)"]
fn release_library_and_server_need_no_glibc_newer_than_2_17() {
    let (_dir, prefix) = unpack_c_tree("glibc-c");
    let (_sdir, server) = unpack_server_tree("glibc-server");
    for file in [
        prefix.join(format!("lib/libopencode_share.so.{VERSION}")),
        server.join("bin/opencode-share-server"),
    ] {
        let minor = newest_glibc_minor(&file);
        assert!(
            minor <= 17,
            "{} needs GLIBC_2.{minor}: the release build must link against glibc 2.17 \
             (scripts/package's cargo zigbuild; did it fall back to the plain build?)",
            file.display()
        );
    }
}

/// `NAME=value` pairs of a systemd unit's `Environment=` lines and then of an env file (later
/// ones win), as systemd reads them.
fn unit_environment(unit: &str, env_file: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let lines = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .chain(env_file.lines());
    for line in lines.map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not NAME=value: {line}"));
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_owned(), value.to_owned()));
    }
    vars
}

/// The unit's ExecStart as words, `${NAME}` replaced from `vars` (each one argument, as systemd
/// does); panics on a variable that nothing sets.
fn exec_start(unit: &str, vars: &[(String, String)]) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    line.split_whitespace()
        .map(
            |word| match word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
                Some(name) => vars
                    .iter()
                    .find(|(n, _)| n == name)
                    .unwrap_or_else(|| panic!("ExecStart uses ${{{name}}}, which nothing sets"))
                    .1
                    .clone(),
                None => word.to_owned(),
            },
        )
        .collect()
}

#[test]
#[ignore = "needs target/package from scripts/package (scripts/test runs it)"]
fn server_tarball_carries_a_unit_that_verifies_and_starts_the_server_from_its_env_file() {
    let (dir, tree) = unpack_server_tree("server");
    let binary = tree.join("bin/opencode-share-server");
    for file in [
        "systemd/opencode-share-server.service",
        "etc/opencode-share-server.env",
        "docs/server.md",
        "LICENSE",
        "README.md",
    ] {
        assert!(tree.join(file).is_file(), "the server tarball lacks {file}");
    }
    let unit = std::fs::read_to_string(tree.join("systemd/opencode-share-server.service"))
        .expect("read the unit");
    let env_file = std::fs::read_to_string(tree.join("etc/opencode-share-server.env"))
        .expect("read the env file");
    for hardening in [
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/opencode-share",
        "LimitNOFILE=",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(hardening), "the unit lacks {hardening:?}");
    }

    // systemd's own check, with ExecStart pointing at the unpacked binary (verify wants it to
    // exist): no error and no warning (an unknown key is only a warning, exit status 0)
    let installed = "/usr/local/bin/opencode-share-server";
    assert!(unit.contains(installed), "ExecStart runs {installed}");
    let checked = dir.join("opencode-share-server.service");
    std::fs::write(&checked, unit.replace(installed, &binary.to_string_lossy()))
        .expect("write the unit to verify");
    let verify = Command::new("timeout")
        .args([LIMIT_S, "systemd-analyze", "verify"])
        .arg(&checked)
        .output()
        .expect("run systemd-analyze (Debian: apt-get install systemd; scripts/setup does)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        verify.status
    );

    // the command line systemd would run, from the unit's defaults and the example env file,
    // with the address and database moved into the scratch folder: the server takes every flag
    let db = format!("sqlite://{}/opencode-share.db", dir.display());
    let mut vars = unit_environment(&unit, &env_file);
    for (name, value) in [
        ("OPENCODE_SHARE_LISTEN", "127.0.0.1:0"),
        ("OPENCODE_SHARE_DATABASE", &db),
    ] {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_owned(), value.to_owned()));
    }
    let argv = exec_start(&unit, &vars);
    assert_eq!(argv[0], installed);
    let mut server = Command::new(&binary)
        .args(&argv[1..])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the unpacked server");
    let mut first = String::new();
    let read = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().expect("stdout")),
        &mut first,
    );
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .map(str::to_owned);
    let answer = addr.as_deref().map(|addr| {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(addr).expect("connect to the server");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("set a read timeout");
        conn.write_all(b"GET / HTTP/1.0\r\nhost: localhost\r\n\r\n")
            .expect("send GET /");
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        answer
    });
    let _ = server.kill();
    let output = server.wait_with_output().expect("wait for the server");
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.0 200") || a.starts_with("HTTP/1.1 200")),
        "the server started as the unit runs it ({argv:?}) answers GET /: {read:?} {first:?} {answer:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
