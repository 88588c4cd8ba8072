//! Decide: the control loop (observe → classify → plan → submit operations → record), the
//! decision log, and the planner's modes.

pub mod control_loop;
pub mod log;

pub use control_loop::{ControlLoop, LoopConfig, LoopError};
pub use log::DecisionLog;

/// What the loop does with its plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannerMode {
    /// Submit the migrations.
    Automatic,
    /// Record what it would do.
    DryRun,
    /// Record and wait for an operator.
    Approve,
}

impl PlannerMode {
    pub fn word(self) -> &'static str {
        match self {
            PlannerMode::Automatic => "automatic",
            PlannerMode::DryRun => "dry-run",
            PlannerMode::Approve => "approve",
        }
    }

    pub fn from_word(s: &str) -> Option<PlannerMode> {
        [PlannerMode::Automatic, PlannerMode::DryRun, PlannerMode::Approve].into_iter().find(|m| m.word() == s)
    }
}
