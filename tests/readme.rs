//! The README's C example is the file the C tests compile and run.

#[test]
fn readme_shows_the_c_example_the_tests_compile() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/tests/c/readme_example.c")).unwrap();
    let shown = readme
        .split("<!-- readme_example.c -->\n```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```\n<!-- /readme_example.c -->").next())
        .expect("README has the marked C example");
    assert_eq!(
        shown, example,
        "README's C example differs from tests/c/readme_example.c"
    );
}
