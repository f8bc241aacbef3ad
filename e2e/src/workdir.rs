//! Where the cluster tier keeps its files: `target/e2e/` (or `$E2E_WORK_DIR`), one directory per
//! run, and how paths are shown in messages and plans.

use std::path::{Path, PathBuf};

/// Root of everything the cluster tier writes: `target/e2e`, or `$E2E_WORK_DIR` (tests use a temp
/// dir so they never collide with real runs).
pub fn work_dir() -> PathBuf {
    match std::env::var_os("E2E_WORK_DIR") {
        // Absolute: paths are printed for the user to reuse from any directory.
        Some(dir) if !dir.is_empty() => {
            std::path::absolute(&dir).unwrap_or_else(|_| PathBuf::from(dir))
        }
        _ => crate::workspace_root().join("target").join("e2e"),
    }
}

/// A path for messages and plans: relative to the workspace root when inside it, so output is
/// the same on every machine.
pub fn display_path(path: &Path) -> String {
    let root = crate::workspace_root();
    match path.strip_prefix(&root) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Where one run keeps its files: `<work_dir>/<name>/{kubeconfig,artifacts/,summary.md,junit.xml}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPaths {
    /// `<work_dir>/<name>/`.
    pub dir: PathBuf,
    /// The kubeconfig kind writes for this run (never `~/.kube/config`).
    pub kubeconfig: PathBuf,
    /// Logs, targets, config and reports collected for CI.
    pub artifacts: PathBuf,
    /// The run's `summary.md` (for `$GITHUB_STEP_SUMMARY`).
    pub summary: PathBuf,
    /// The assert phase's JUnit XML (one test case per check).
    pub junit: PathBuf,
}

impl RunPaths {
    /// The paths of run `name` under `work_dir` (nothing is created).
    pub fn new(work_dir: &Path, name: &str) -> Self {
        let dir = work_dir.join(name);
        RunPaths {
            kubeconfig: dir.join("kubeconfig"),
            artifacts: dir.join("artifacts"),
            summary: dir.join("summary.md"),
            junit: dir.join("junit.xml"),
            dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_paths_layout() {
        let p = RunPaths::new(Path::new("/w"), "pme2e-x");
        assert_eq!(p.kubeconfig, Path::new("/w/pme2e-x/kubeconfig"));
        assert_eq!(p.artifacts, Path::new("/w/pme2e-x/artifacts"));
        assert_eq!(p.summary, Path::new("/w/pme2e-x/summary.md"));
        assert_eq!(p.junit, Path::new("/w/pme2e-x/junit.xml"));
    }
}
