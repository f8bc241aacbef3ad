//! How a run ended, and the exit code that says it.

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every phase passed.
    Passed,
    /// A phase failed (reported, torn down).
    Failed,
    /// Ctrl-C.
    Interrupted,
}

impl Outcome {
    /// 0 passed, 1 failed, 130 interrupted.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Failed => 1,
            Outcome::Interrupted => EXIT_INTERRUPTED,
        }
    }
}
