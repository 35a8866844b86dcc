//! Generates the C header with cbindgen into OUT_DIR. `tests/header.rs` fails when the
//! committed `include/opencode_share.h` differs from it; `OPENCODE_SHARE_WRITE_HEADER=1 cargo
//! build` refreshes the committed copy (cargo publish forbids writing into the source tree by
//! default).
//!
//! On Linux it also gives the shared library its SONAME, `libopencode_share.so.<major>`, so a
//! program linked against it keeps working across compatible releases (scripts/install lays out
//! the usual `.so -> .so.0 -> .so.0.2.0` links). cargo-c sets the same SONAME itself.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=src/error.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=OPENCODE_SHARE_WRITE_HEADER");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && env::var_os("CARGO_CFG_CARGO_C").is_none() {
        let major =
            env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libopencode_share.so.{major}");
    }
    let crate_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let header = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("opencode_share.h");
    header.write_to_file(&out);
    if env::var_os("OPENCODE_SHARE_WRITE_HEADER").is_some_and(|v| v == "1") {
        header.write_to_file(crate_dir.join("include/opencode_share.h"));
    }
}
