//! Cargo as xtask runs it: the same cargo binary, without the variables `cargo run` set for xtask
//! itself (`CARGO_PKG_NAME=xtask`, `CARGO_MANIFEST_DIR`, …).
//!
//! Build scripts watch some of those (ring's: `rerun-if-env-changed=CARGO_PKG_NAME`,
//! `CARGO_MANIFEST_DIR`, …), and cargo compares them with its own environment: a nested cargo
//! that inherited xtask's values reran ring's build script and rebuilt ring, rustls and
//! kube-client, and the next `cargo xtask` from the shell rebuilt them back.

use std::process::Command;

/// `$CARGO` (the cargo running xtask), else `cargo`, with [`scrub`] applied.
pub fn command() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    scrub(&mut cmd);
    cmd
}

/// Removes from `cmd`'s environment every variable cargo sets for a binary it runs.
pub fn scrub(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if let Some(key) = key.to_str().filter(|k| set_by_cargo_run(k)) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The variables cargo sets when it runs a crate's binary (the Cargo Book, "Environment
/// variables Cargo sets for crates"), except `CARGO` itself, which names the cargo to use.
fn set_by_cargo_run(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_MANIFEST_")
        || matches!(
            key,
            "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_cargo_run_sets_for_xtask_are_removed_and_cargo_kept() {
        for key in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(set_by_cargo_run(key), "{key}");
        }
        for key in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_TERM_COLOR",
            "PATH",
        ] {
            assert!(!set_by_cargo_run(key), "{key}");
        }
    }

    #[test]
    fn a_scrubbed_command_does_not_pass_them_on() {
        // The test binary runs under cargo, which set these for it as it does for xtask.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let mut cmd = Command::new("env");
        scrub(&mut cmd);
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert!(
            removed.contains(&"CARGO_PKG_NAME".to_string()),
            "{removed:?}"
        );
        assert!(
            removed.contains(&"CARGO_MANIFEST_DIR".to_string()),
            "{removed:?}"
        );
        let out = cmd.output().unwrap();
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(!env.contains("CARGO_PKG_NAME="), "{env}");
    }
}
