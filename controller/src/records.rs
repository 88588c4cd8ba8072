//! The controller's domain records: what it keeps, decides and shows. Wire types stay at
//! the edge (`api::convert`); the store keeps these.

use serde::{Deserialize, Serialize};
use straddle_model::classify::Class;

/// A job a scheduler submitted: its ranks run on these VMs, in rank order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobSpec {
    pub job: String,
    pub world_size: u32,
    /// The virtual cluster it runs on.
    pub cluster: String,
    /// rank → VM name (index = world rank).
    pub rank_vms: Vec<String>,
    /// SHA-256 (hex) of the credential its ranks present; empty: none issued.
    #[serde(default)]
    pub credential: String,
}

/// Where each rank of a job runs; `epoch` rises with every applied placement change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteMap {
    pub job: String,
    pub epoch: u64,
    /// index = world rank, value = index into `sites`.
    pub rank_site: Vec<u32>,
    pub sites: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// A job's class changed.
    Classification,
    /// VMs to migrate.
    Migration,
    /// Something the controller found, not did (a VM moved by hand, a settled restart).
    Observed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionState {
    /// Dry-run: what the planner would do.
    Proposed,
    PendingApproval,
    Applying,
    Applied,
    Failed,
    Rejected,
}

impl DecisionState {
    pub fn is_final(self) -> bool {
        matches!(self, DecisionState::Applied | DecisionState::Failed | DecisionState::Rejected)
    }
}

/// One migration of a decision: what was predicted and, once run, what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRecord {
    pub vm: String,
    pub from_host: String,
    pub to_host: String,
    pub from_site: String,
    pub to_site: String,
    pub predicted_seconds: f64,
    pub predicted_downtime_ms: f64,
    /// The operation that runs it (0 until one is created).
    pub operation: u64,
    /// How its operation ended (`None`: not yet).
    #[serde(default)]
    pub outcome: Option<OpState>,
    /// What the hypervisor measured, once it completed.
    #[serde(default)]
    pub actual: Option<MigrationStats>,
}

/// A decision: why, what it predicted, what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: u64,
    pub unix_ms: u64,
    pub job: String,
    pub kind: DecisionKind,
    pub class: Option<Class>,
    pub reason: String,
    pub predicted_gain_secs: f64,
    pub migrations: Vec<MigrationRecord>,
    pub state: DecisionState,
    /// Inputs, outcome, failures.
    pub detail: String,
}

impl Decision {
    pub fn new(job: &str, kind: DecisionKind, class: Option<Class>, reason: String, state: DecisionState) -> Decision {
        Decision {
            id: 0,
            unix_ms: 0,
            job: job.to_string(),
            kind,
            class,
            reason,
            predicted_gain_secs: 0.0,
            migrations: vec![],
            state,
            detail: String::new(),
        }
    }
}

/// The states of a migration operation. `Created` waits for admission; the rest after
/// `Running` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    Created,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    /// The placement it was planned against changed before it ran: cancelled, not run.
    Stale,
}

impl OpState {
    pub fn is_final(self) -> bool {
        !matches!(self, OpState::Created | OpState::Running)
    }

    pub fn word(self) -> &'static str {
        match self {
            OpState::Created => "created",
            OpState::Running => "running",
            OpState::Succeeded => "succeeded",
            OpState::Failed => "failed",
            OpState::Cancelled => "cancelled",
            OpState::TimedOut => "timed out",
            OpState::Stale => "stale",
        }
    }

    /// The transitions an operation may take.
    pub fn may_become(self, next: OpState) -> bool {
        use OpState::*;
        matches!(
            (self, next),
            (Created, Running | Cancelled | TimedOut | Stale | Failed) | (Running, Succeeded | Failed | Cancelled | TimedOut)
        )
    }
}

/// What a finished migration measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MigrationStats {
    pub total_s: f64,
    pub downtime_s: f64,
    pub transferred_bytes: f64,
    /// Pre-copy passes (0: not reported).
    pub passes: u32,
    /// The guest's dirty rate and the copy's bandwidth as last measured (0: not reported).
    pub dirty_bytes_per_s: f64,
    pub bandwidth_bytes_per_s: f64,
}

/// One migration the executor owns: at most one per VM at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: u64,
    pub decision: u64,
    pub job: String,
    pub vm: String,
    pub from_host: String,
    pub to_host: String,
    /// The controller's placement epoch the plan saw; a VM of the job moved since by
    /// anything but this decision makes the operation stale.
    pub planned_epoch: u64,
    /// Order among the decision's operations (the planner's wave).
    pub wave: u32,
    pub state: OpState,
    pub created_unix_ms: u64,
    /// When the current state must end (wall clock, for operators).
    pub deadline_unix_ms: u64,
    pub predicted_seconds: f64,
    pub detail: String,
    pub stats: Option<MigrationStats>,
}
