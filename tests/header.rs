//! The committed header must be what build.rs generates from the current sources.

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/opencode_share.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/opencode_share.h");
    let committed = std::fs::read_to_string(path).expect("include/opencode_share.h exists");
    assert!(
        committed == generated,
        "include/opencode_share.h is stale: refresh it with `OPENCODE_SHARE_WRITE_HEADER=1 cargo build` and commit it"
    );
}
