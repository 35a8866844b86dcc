//! The library as a C program sees it: every `tests/c/*.c` is compiled against
//! `include/opencode_share.h` with a strict C11 compiler, linked once to the shared and once to
//! the static library, run under valgrind memcheck against the real share server playing the
//! hosted service (the testkit's, behind the fault proxy), and the server's final state is checked. The header alone must also compile as C and as C++.
//!
//! Needs `cc`/`c++` (or `CC`/`CXX`) and valgrind. Without valgrind the test fails, unless
//! `OPENCODE_SHARE_NO_VALGRIND=1` is set, in which case the programs run bare.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{Passed, Service as ShareService};

/// Warnings are errors: the header must be clean for the strictest C users.
const CFLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"];

/// What the static library needs from the system, from
/// `cargo rustc --lib --crate-type staticlib -- --print native-static-libs` (x86_64 Linux, glibc);
/// refresh it when dependencies change.
const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// valgrind's exit status when it found errors (definite leaks included).
const VALGRIND_ERROR_EXIT: i32 = 99;

/// Bound on one compiler run.
const COMPILE_LIMIT: Duration = Duration::from_secs(120);
/// Bound on one test program under valgrind.
const RUN_LIMIT: Duration = Duration::from_secs(240);
/// Bound on the fallback `cargo build`.
const BUILD_LIMIT: Duration = Duration::from_secs(1200);

/// Session ids the C programs use (see tests/c/api_test.c and tests/c/threads_test.c).
const KEEP: &str = "ses_ctest_keep000000000001";
const ASYNC: &str = "ses_ctest_async00000000002";
const BLOCKING: &str = "ses_ctest_blocking00000003";
const NEVER: &str = "ses_ctest_never_shared0004";
const UNKNOWN: &str = "ses_ctest_unknown000000005";
const THREADS: &str = "ses_ctest_threads000000007";
const LEDGER: &str = "ses_ctest_ledger0000000008";
const POLLED: &str = "ses_ctest_polled0000000009";

#[test]
fn the_header_compiles_alone_as_c_and_as_cpp() {
    let include = repo().join("include");
    let c_probe = "#include \"opencode_share.h\"\n#include \"opencode_share.h\"\nint main(void) { return SHARE_OK; }\n";
    let mut c = Command::new(compiler("CC", "cc"));
    c.args(CFLAGS)
        .args(["-fsyntax-only", "-x", "c", "-I"])
        .arg(&include)
        .arg("-");
    must_succeed(c, Some(c_probe), COMPILE_LIMIT, "the header as C11");

    // extern "C" linkage and the callback types as a C++ host uses them
    let cpp_probe = r#"#include "opencode_share.h"
static_assert(SHARE_OK == 0 && SHARE_ERR_PANIC == 9, "status values");
extern "C" void on_events(void *) {}
extern "C" void on_op(void *, uint32_t, share_status) {}
int main() {
  share_status (*init)(const char *) = share_init;
  share_event_notify notify = on_events;
  share_op_callback done = on_op;
  (void)init; (void)notify; (void)done;
  return 0;
}
"#;
    let mut cpp = Command::new(compiler("CXX", "c++"));
    cpp.args([
        "-std=c++11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-fsyntax-only",
        "-x",
        "c++",
        "-I",
    ])
    .arg(&include)
    .arg("-");
    must_succeed(cpp, Some(cpp_probe), COMPILE_LIMIT, "the header as C++11");
}

#[test]
fn c_programs_linked_to_the_shared_library_pass_under_valgrind() {
    run_all(Link::Shared);
}

#[test]
fn c_programs_linked_to_the_static_library_pass_under_valgrind() {
    run_all(Link::Static);
}

/// How a test program is linked.
#[derive(Clone, Copy, Debug)]
enum Link {
    Shared,
    Static,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Shared => "shared",
            Link::Static => "static",
        }
    }
}

/// Compiles every tests/c/*.c with `link`, runs each against a fresh service, and checks it.
fn run_all(link: Link) {
    let valgrind = use_valgrind(); // fails here, before any work, when valgrind is missing
    let mut sources: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/c"))
        .expect("read tests/c")
        .map(|entry| entry.expect("read tests/c").path())
        .filter(|path| path.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no C test programs in tests/c");
    for source in &sources {
        let stem = source
            .file_stem()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let exe = compile(source, &stem, link);
        let service = ShareService::start_hosted();
        let started = Instant::now();
        let (status, output) = run_program(&exe, &service.url(), valgrind);
        let elapsed = started.elapsed();
        let what = format!("{stem} ({} library)", link.name());
        match status {
            None => panic!(
                "{what} did not finish within {RUN_LIMIT:?}; it was killed. Output:\n{output}"
            ),
            Some(status) if status.code() == Some(VALGRIND_ERROR_EXIT) => {
                panic!(
                    "{what}: valgrind found errors (exit {VALGRIND_ERROR_EXIT}). Output:\n{output}"
                )
            }
            Some(status) if !status.success() => {
                panic!("{what} failed ({status}). Output:\n{output}")
            }
            Some(_) => {}
        }
        match stem.as_str() {
            "api_test" => check_api_test(&service),
            "threads_test" => check_threads_test(&service),
            "ledger_test" => check_ledger_test(&service),
            _ => {} // other programs (readme_example.c): their exit status and valgrind's verdict
        }
        println!("{what}: passed in {:.1} s", elapsed.as_secs_f64());
        for line in output.lines().filter(|l| {
            ["checks passed", "writes:", "ERROR SUMMARY"]
                .iter()
                .any(|s| l.contains(s))
        }) {
            println!("  {line}");
        }
    }
}

/// What ledger_test.c must have left on the service: its share made, then deleted by the
/// second run from the ledger alone.
fn check_ledger_test(service: &ShareService) {
    let deletes = service.requests_to("/share_delete");
    let of_ledger = |p: &&Passed| p.json().is_some_and(|j| j["sessionID"] == LEDGER);
    let statuses: Vec<_> = deletes.iter().filter(of_ledger).map(|p| p.status).collect();
    assert_eq!(statuses, [Some(200)], "ledger_test's deletes");
    assert!(
        service.stored(testkit::short_id(LEDGER)).is_none(),
        "ledger_test's share is still on the service"
    );
}

/// What api_test.c must have left on the service.
fn check_api_test(service: &ShareService) {
    let keep = service.data(KEEP).expect("KEEP is still shared");
    let info = &keep[&format!("session/info/{KEEP}")];
    assert_eq!(
        info["title"], "rewrite 99",
        "the key rewritten 100 times holds the last write: {info}"
    );
    assert_eq!(info["n"], 99);
    assert!(
        info["share"]["url"].is_string(),
        "the share's url stays: {info}"
    );
    assert!(
        info["share"].get("secret").is_none(),
        "the member equal to the secret is stripped: {info}"
    );
    assert_eq!(
        info["tool"]["input"]["secret"], "hunter2",
        "other secret fields stay: {info}"
    );
    let expected = BTreeMap::from([
        (format!("session/info/{KEEP}"), info.clone()),
        (
            format!("session/message/{KEEP}/msg_1"),
            json!({"id": "msg_1", "role": "user"}),
        ),
        (
            format!("session/part/{KEEP}/msg_1/prt_1"),
            json!({"id": "prt_1", "text": "hello"}),
        ),
        (format!("session/part/{KEEP}/msg_1/prt_2"), json!([1, 2, 3])),
        (
            format!("session/part/{KEEP}/msg_1/prt_3"),
            json!("just a string"),
        ),
        (
            format!("session/part/{KEEP}/msg_1/prt_4"),
            json!({"id": "prt_4"}),
        ),
        // sent in the second run, once the share record told the library the secret again
        (
            format!("session/message/{KEEP}/msg_cycle2"),
            json!({"cycle": 2}),
        ),
    ]);
    assert_eq!(keep, expected, "KEEP's keys on the service");

    // the rewritten key went out in write order, each content once
    let ns: Vec<u64> = syncs(service, KEEP)
        .iter()
        .filter(|(key, _, _)| key == &format!("session/info/{KEEP}"))
        .map(|(_, content, _)| content["n"].as_u64().expect("n"))
        .collect();
    assert!(
        ns.windows(2).all(|w| w[0] < w[1]),
        "info contents out of write order: {ns:?}"
    );
    assert_eq!(ns.last(), Some(&99));

    // removed shares are gone, and no sync of theirs came after the delete
    let deletes = service.requests_to("/share_delete");
    for sid in [ASYNC, BLOCKING, POLLED] {
        assert!(service.data(sid).is_none(), "{sid} was removed");
        let delete = deletes
            .iter()
            .find(|r| r.status == Some(200) && field(r, "sessionID") == sid)
            .unwrap_or_else(|| panic!("no successful delete of {sid}"));
        for (key, _, at) in syncs(service, sid) {
            assert!(
                at < delete.at,
                "{key} reached the service after {sid}'s delete"
            );
        }
    }
    let failed_deletes = deletes
        .iter()
        .filter(|r| field(r, "sessionID") == UNKNOWN && r.status == Some(500))
        .count();
    assert!(
        failed_deletes >= 2,
        "both removes with a wrong secret reached the service"
    );
    assert!(
        syncs(service, NEVER).is_empty(),
        "a session without a share sent nothing"
    );
    assert!(
        syncs(service, ASYNC).len() == 1,
        "ASYNC's one content before its remove"
    );

    // no content sent carries its share's secret
    for r in service.requests_to("/share_sync") {
        let secret = field(&r, "secret");
        let content = r
            .json()
            .map(|j| j["content"].to_string())
            .unwrap_or_default();
        assert!(
            !secret.is_empty() && !content.contains(&secret),
            "a secret in sent content: {}",
            r.body
        );
    }
    assert!(
        service.overlaps().is_empty(),
        "a key had two requests at once"
    );
}

/// What threads_test.c must have left on the service: every key its thread's last write.
fn check_threads_test(service: &ShareService) {
    let data = service.data(THREADS).expect("THREADS is shared");
    for t in 0..8 {
        for k in 0..10 {
            let key = format!("session/part/{THREADS}/msg_t{t}/prt_{k:02}");
            assert_eq!(
                data.get(&key),
                Some(&json!({"t": t, "i": 990 + k})),
                "{key}"
            );
        }
    }
    assert_eq!(data.len(), 80, "keys on the service");
    assert!(
        service.overlaps().is_empty(),
        "a key had two requests at once"
    );
}

/// The string member `name` of a logged request's JSON body ("" if missing).
fn field(r: &Passed, name: &str) -> String {
    r.json()
        .and_then(|j| j[name].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The accepted (200) syncs of `sid`, as (key, content, arrival), in the order answered.
fn syncs(service: &ShareService, sid: &str) -> Vec<(String, Value, Duration)> {
    service
        .requests_to("/share_sync")
        .into_iter()
        .filter(|r| r.status == Some(200) && field(r, "sessionID") == sid)
        .map(|r| {
            let content = r.json().map(|j| j["content"].clone()).unwrap_or_default();
            (field(&r, "key"), content, r.at)
        })
        .collect()
}

/// Compiles `source` linked per `link` into target/<profile>/c-tests/; returns the executable.
fn compile(source: &Path, stem: &str, link: Link) -> PathBuf {
    let libs = libs();
    let dir = libs.out_dir.clone();
    std::fs::create_dir_all(&dir).expect("create the c-tests directory");
    let exe = dir.join(format!("{stem}-{}", link.name()));
    // Built under a private name and renamed, so concurrent `cargo test` runs never see half an
    // executable.
    let tmp = dir.join(format!("{stem}-{}.{}.tmp", link.name(), std::process::id()));
    let mut cc = Command::new(compiler("CC", "cc"));
    cc.args(CFLAGS)
        .arg("-I")
        .arg(repo().join("include"))
        .arg(source)
        .arg("-o")
        .arg(&tmp);
    match link {
        Link::Shared => {
            cc.arg("-L")
                .arg(&libs.dir)
                .arg("-lopencode_share")
                .arg(rpath(&libs.dir))
                .arg("-pthread");
        }
        Link::Static => {
            cc.arg(&libs.static_lib).args(NATIVE_STATIC_LIBS);
        }
    }
    must_succeed(
        cc,
        None,
        COMPILE_LIMIT,
        &format!("compiling {} ({} library)", source.display(), link.name()),
    );
    std::fs::rename(&tmp, &exe).expect("move the executable into place");
    exe
}

/// `-Wl,-rpath,<dir>`.
fn rpath(dir: &Path) -> OsString {
    let mut arg = OsString::from("-Wl,-rpath,");
    arg.push(dir);
    arg
}

/// Runs a test program with the service URL, under valgrind if `valgrind`.
fn run_program(exe: &Path, url: &str, valgrind: bool) -> (Option<ExitStatus>, String) {
    let mut cmd = if valgrind {
        let mut cmd = Command::new("valgrind");
        cmd.args([
            &format!("--error-exitcode={VALGRIND_ERROR_EXIT}"),
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ]);
        cmd.arg(exe);
        cmd
    } else {
        Command::new(exe)
    };
    cmd.arg(url);
    run_bounded(cmd, None, RUN_LIMIT)
}

/// Whether the programs run under valgrind: yes when it is installed; without it the test fails
/// unless OPENCODE_SHARE_NO_VALGRIND=1 asks for bare runs (which that variable always does).
fn use_valgrind() -> bool {
    static USE: OnceLock<bool> = OnceLock::new();
    *USE.get_or_init(|| {
        if std::env::var_os("OPENCODE_SHARE_NO_VALGRIND").is_some_and(|v| v == "1") {
            println!("OPENCODE_SHARE_NO_VALGRIND=1: running the C programs without valgrind");
            return false;
        }
        let found = Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "valgrind is needed to run the C API tests (e.g. `apt-get install valgrind`); \
             set OPENCODE_SHARE_NO_VALGRIND=1 to run them without it"
        );
        true
    })
}

/// The built libraries and where the C programs go.
struct Libs {
    /// Holds libopencode_share.so and libopencode_share.a.
    dir: PathBuf,
    static_lib: PathBuf,
    /// target/<profile>/c-tests/
    out_dir: PathBuf,
}

/// Finds the libraries. `cargo test` builds the library with every crate type for the test
/// binaries and leaves the cdylib and staticlib beside them in target/<profile>/deps/ (it copies
/// them up to target/<profile>/ only for `cargo build`), so the C programs test exactly the
/// sources this binary was built from. If they are not there, `cargo build --lib` makes them.
fn libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        let deps = exe.parent().expect("deps directory").to_path_buf();
        let profile_dir = deps.parent().expect("profile directory").to_path_buf();
        let out_dir = profile_dir.join("c-tests");
        let has_libs = |dir: &Path| {
            dir.join("libopencode_share.so").is_file() && dir.join("libopencode_share.a").is_file()
        };
        let dir = if has_libs(&deps) {
            deps
        } else {
            build_libs(&profile_dir);
            assert!(
                has_libs(&profile_dir),
                "cargo build left no libraries in {}",
                profile_dir.display()
            );
            profile_dir
        };
        // the .so's SONAME is libopencode_share.so.0 (build.rs): the name programs linked
        // against it load, which cargo's output folder lacks (an install has the link)
        let soname = dir.join("libopencode_share.so.0");
        if std::fs::symlink_metadata(&soname).is_err() {
            let _ = std::os::unix::fs::symlink("libopencode_share.so", &soname);
        }
        Libs {
            static_lib: dir.join("libopencode_share.a"),
            dir,
            out_dir,
        }
    })
}

/// Runs `cargo build --lib` for the profile whose output directory is `profile_dir`.
fn build_libs(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--lib", "--manifest-path"])
        .arg(repo().join("Cargo.toml"));
    // target/<profile> (or target/<triple>/<profile>: the same arithmetic holds)
    cmd.arg("--target-dir")
        .arg(profile_dir.parent().expect("target directory"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => panic!("unexpected target layout: {}", profile_dir.display()),
    }
    println!("libraries not found beside the test binary; running {cmd:?}");
    must_succeed(cmd, None, BUILD_LIMIT, "cargo build --lib");
}

/// Runs `cmd` and panics, with its output, unless it succeeds in time.
fn must_succeed(cmd: Command, stdin: Option<&str>, limit: Duration, what: &str) {
    let shown = format!("{cmd:?}");
    match run_bounded(cmd, stdin, limit) {
        (Some(status), _) if status.success() => {}
        (Some(status), output) => panic!("{what} failed ({status}): {shown}\n{output}"),
        (None, output) => panic!("{what} took more than {limit:?}: {shown}\n{output}"),
    }
}

/// Runs `cmd` with `stdin` as its input, killing it once `limit` has passed. Returns its exit
/// status (None if killed) and its stdout followed by its stderr.
fn run_bounded(
    mut cmd: Command,
    stdin: Option<&str>,
    limit: Duration,
) -> (Option<ExitStatus>, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .expect("write the child's input");
    }
    // read both pipes on their own threads so a chatty child never blocks on a full pipe
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("wait for the child") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    let output = format!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    (status, output)
}

/// The compiler named by env `var`, else `default`.
fn compiler(var: &str, default: &str) -> OsString {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.into())
}

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
