//! Tidy: every dependency resolves to one feature set across the three builds a developer runs
//! (`cargo build -p xtask`, the tests, the twin), so none is compiled twice. A dependency added
//! without `cargo hakari generate` fails here, naming the crate and the builds that differ.

use std::process::Command;

#[test]
fn every_dependency_has_one_feature_set_across_xtask_the_tests_and_the_twin() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "build", "--features-only"])
        .current_dir(e2e::workspace_root())
        .output()
        .expect("xtask runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "PASS every dependency resolves to one feature set across xtask, tests, twin"
        ),
        "{stdout}"
    );
}
