//! Every conversion between the wire (`straddle_proto`) and the domain, and every domain
//! error's gRPC status, in one place (as containerd's `convert.rs`).

use straddle_model::classify::Class;
use straddle_model::collective::{CollectiveMode, CollectiveOp};
use straddle_model::traffic::{CollectiveCounters, Communicator, JobTraffic, PeerCounters, RankHello, RankReport, TrafficError};
use straddle_proto as pb;
use tonic::Status;

use crate::decide::{LoopError, PlannerMode};
use crate::observe::RegistryError;
use crate::plane::PlaneError;
use crate::records::{Decision, DecisionKind, DecisionState, JobSpec, OpState, Operation, SiteMap};
use crate::state::StoreError;

/// A wire value the domain has no meaning for: the field and the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: unknown value {value}")]
pub struct BadValue {
    pub field: String,
    pub value: i32,
}

pub fn hello(h: &pb::Hello) -> RankHello {
    RankHello { job: h.job.clone(), rank: h.rank, world_size: h.world_size, node: h.node.clone(), incarnation: h.incarnation }
}

pub fn op_from(v: i32, field: &str) -> Result<CollectiveOp, BadValue> {
    let bad = || BadValue { field: field.to_string(), value: v };
    let p = pb::CollectiveOp::try_from(v).map_err(|_| bad())?;
    CollectiveOp::ALL.into_iter().find(|o| op_to(*o) == p).ok_or_else(bad)
}

pub fn op_to(o: CollectiveOp) -> pb::CollectiveOp {
    use pb::CollectiveOp as P;
    match o {
        CollectiveOp::Barrier => P::Barrier,
        CollectiveOp::Bcast => P::Bcast,
        CollectiveOp::Reduce => P::Reduce,
        CollectiveOp::Allreduce => P::Allreduce,
        CollectiveOp::Gather => P::Gather,
        CollectiveOp::Gatherv => P::Gatherv,
        CollectiveOp::Scatter => P::Scatter,
        CollectiveOp::Scatterv => P::Scatterv,
        CollectiveOp::Allgather => P::Allgather,
        CollectiveOp::Allgatherv => P::Allgatherv,
        CollectiveOp::Alltoall => P::Alltoall,
        CollectiveOp::Alltoallv => P::Alltoallv,
        CollectiveOp::Alltoallw => P::Alltoallw,
        CollectiveOp::ReduceScatter => P::ReduceScatter,
        CollectiveOp::ReduceScatterBlock => P::ReduceScatterBlock,
        CollectiveOp::Scan => P::Scan,
        CollectiveOp::Exscan => P::Exscan,
        CollectiveOp::NeighborAllgather => P::NeighborAllgather,
        CollectiveOp::NeighborAllgatherv => P::NeighborAllgatherv,
        CollectiveOp::NeighborAlltoall => P::NeighborAlltoall,
        CollectiveOp::NeighborAlltoallv => P::NeighborAlltoallv,
        CollectiveOp::NeighborAlltoallw => P::NeighborAlltoallw,
    }
}

pub fn mode_from(v: i32, field: &str) -> Result<CollectiveMode, BadValue> {
    match pb::CollectiveMode::try_from(v) {
        Ok(pb::CollectiveMode::Blocking) => Ok(CollectiveMode::Blocking),
        Ok(pb::CollectiveMode::Nonblocking) => Ok(CollectiveMode::Nonblocking),
        Ok(pb::CollectiveMode::Persistent) => Ok(CollectiveMode::Persistent),
        Ok(pb::CollectiveMode::SiteAware) => Ok(CollectiveMode::SiteAware),
        _ => Err(BadValue { field: field.to_string(), value: v }),
    }
}

pub fn mode_to(m: CollectiveMode) -> pb::CollectiveMode {
    match m {
        CollectiveMode::Blocking => pb::CollectiveMode::Blocking,
        CollectiveMode::Nonblocking => pb::CollectiveMode::Nonblocking,
        CollectiveMode::Persistent => pb::CollectiveMode::Persistent,
        CollectiveMode::SiteAware => pb::CollectiveMode::SiteAware,
    }
}

pub fn report(r: pb::Report) -> Result<RankReport, BadValue> {
    let mut collectives = Vec::with_capacity(r.collectives.len());
    for (i, c) in r.collectives.iter().enumerate() {
        collectives.push(CollectiveCounters {
            comm_id: c.comm_id,
            op: op_from(c.op, &format!("report.collectives[{i}].op"))?,
            mode: mode_from(c.mode, &format!("report.collectives[{i}].mode"))?,
            root: c.root,
            calls: c.calls,
            bytes: c.bytes,
        });
    }
    Ok(RankReport {
        seq: r.seq,
        peers: r
            .peers
            .iter()
            .map(|p| PeerCounters {
                dest: p.dest,
                p2p_bytes: p.p2p_bytes,
                p2p_messages: p.p2p_messages,
                rma_put_bytes: p.rma_put_bytes,
                rma_get_bytes: p.rma_get_bytes,
                rma_operations: p.rma_operations,
            })
            .collect(),
        communicators: r
            .communicators
            .into_iter()
            .map(|c| Communicator {
                comm_id: c.comm_id,
                world_ranks: c.world_ranks,
                inter: c.inter,
                remote_world_ranks: c.remote_world_ranks,
            })
            .collect(),
        collectives,
        dropped_records: r.dropped_records,
        regrouped_cross_site_bytes: r.regrouped_cross_site_bytes,
    })
}

pub fn site_map(m: &SiteMap) -> pb::SiteMap {
    pb::SiteMap { job: m.job.clone(), epoch: m.epoch, rank_site: m.rank_site.clone(), sites: m.sites.clone() }
}

pub fn job_spec(s: pb::JobSpec) -> JobSpec {
    JobSpec { job: s.job, world_size: s.world_size, cluster: s.cluster, rank_vms: s.rank_vms, credential: String::new() }
}

pub fn class(c: Option<Class>) -> pb::JobClass {
    match c {
        Some(Class::Network) => pb::JobClass::NetworkIntensive,
        Some(Class::Compute) => pb::JobClass::ComputeIntensive,
        None => pb::JobClass::Unspecified,
    }
}

pub fn decision(d: &Decision) -> pb::Decision {
    pb::Decision {
        id: d.id,
        unix_ms: d.unix_ms,
        job: d.job.clone(),
        class: class(d.class) as i32,
        reason: d.reason.clone(),
        predicted_gain_secs: d.predicted_gain_secs,
        migrations: d
            .migrations
            .iter()
            .map(|m| pb::Migration {
                vm: m.vm.clone(),
                from_host: m.from_host.clone(),
                to_host: m.to_host.clone(),
                from_site: m.from_site.clone(),
                to_site: m.to_site.clone(),
                predicted_seconds: m.predicted_seconds,
                predicted_downtime_ms: m.predicted_downtime_ms,
                operation: m.operation,
                outcome: m.outcome.map_or(pb::OperationState::Unspecified, op_state) as i32,
                actual: m.actual.map(|s| pb::MigrationStats {
                    total_seconds: s.total_s,
                    downtime_ms: s.downtime_s * 1e3,
                    transferred_bytes: s.transferred_bytes,
                    passes: s.passes,
                    dirty_bytes_per_second: s.dirty_bytes_per_s,
                    bandwidth_bytes_per_second: s.bandwidth_bytes_per_s,
                }),
            })
            .collect(),
        state: match d.state {
            DecisionState::Proposed => pb::DecisionState::Proposed,
            DecisionState::PendingApproval => pb::DecisionState::PendingApproval,
            DecisionState::Applying => pb::DecisionState::Applying,
            DecisionState::Applied => pb::DecisionState::Applied,
            DecisionState::Failed => pb::DecisionState::Failed,
            DecisionState::Rejected => pb::DecisionState::Rejected,
        } as i32,
        detail: d.detail.clone(),
        kind: match d.kind {
            DecisionKind::Classification => pb::DecisionKind::Classification,
            DecisionKind::Migration => pb::DecisionKind::Migration,
            DecisionKind::Observed => pb::DecisionKind::Observed,
        } as i32,
    }
}

pub fn operation(o: &Operation) -> pb::Operation {
    pb::Operation {
        id: o.id,
        decision: o.decision,
        job: o.job.clone(),
        vm: o.vm.clone(),
        from_host: o.from_host.clone(),
        to_host: o.to_host.clone(),
        state: op_state(o.state) as i32,
        planned_epoch: o.planned_epoch,
        created_unix_ms: o.created_unix_ms,
        deadline_unix_ms: o.deadline_unix_ms,
        predicted_seconds: o.predicted_seconds,
        detail: o.detail.clone(),
    }
}

pub fn mode_from_pb(v: i32) -> Option<PlannerMode> {
    match pb::PlannerMode::try_from(v) {
        Ok(pb::PlannerMode::Automatic) => Some(PlannerMode::Automatic),
        Ok(pb::PlannerMode::DryRun) => Some(PlannerMode::DryRun),
        Ok(pb::PlannerMode::Approve) => Some(PlannerMode::Approve),
        _ => None,
    }
}

/// Most pairs a traffic reply carries when the caller does not say, and at all.
pub const DEFAULT_MAX_PAIRS: usize = 10_000;
pub const MAX_PAIRS: usize = 100_000;
/// Most communicators and collective records a traffic reply carries.
pub const MAX_RECORDS: usize = 10_000;

/// One job's traffic on the wire: cumulative totals, or rates over `window` seconds; at most
/// `max_pairs` pairs (the largest by bytes), and every rank's exact totals.
pub fn traffic(j: &JobTraffic, now: crate::clock::Time, window: u32, max_pairs: u32) -> pb::TrafficMatrix {
    let view = if window == 0 { j.cumulative() } else { j.rate(now, u64::from(window)) };
    let n = j.world_size as usize;
    let (mut sent, mut msgs, mut recv, mut rma) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for p in &view.pairs {
        let (s, d) = (p.src as usize, p.dst as usize);
        sent[s] += p.bytes;
        msgs[s] += p.messages;
        recv[d] += p.bytes;
        rma[s] += p.rma_bytes;
        rma[d] += p.rma_bytes;
    }
    let limit = match usize::try_from(max_pairs).unwrap_or(usize::MAX) {
        0 => DEFAULT_MAX_PAIRS,
        m => m.min(MAX_PAIRS),
    };
    let mut pairs = view.pairs.clone();
    if pairs.len() > limit {
        pairs.sort_by(|a, b| b.bytes.total_cmp(&a.bytes).then((a.src, a.dst).cmp(&(b.src, b.dst))));
        pairs.truncate(limit);
        pairs.sort_by_key(|p| (p.src, p.dst));
    }
    pb::TrafficMatrix {
        job: j.job.clone(),
        world_size: j.world_size,
        rate: window != 0,
        window_secs: view.window_secs,
        pairs: pairs
            .iter()
            .map(|p| pb::PairTraffic {
                src: p.src,
                dst: p.dst,
                bytes: p.bytes,
                messages: p.messages,
                rma_bytes: p.rma_bytes,
                rma_operations: p.rma_operations,
            })
            .collect(),
        total_pairs: view.pairs.len() as u64,
        total_bytes: view.total_bytes(),
        total_messages: view.total_messages(),
        ranks: j
            .ranks
            .iter()
            .zip(0u32..)
            .map(|(r, i)| pb::RankInfo {
                rank: i,
                node: r.node.clone(),
                attached: r.attached > 0,
                reports: r.reports,
                last_report_unix_ms: r.last_report_ms,
                dropped_records: r.dropped.saturating_add(r.ignored_keys),
                regrouped_cross_site_bytes: r.regrouped,
                sent_bytes: sent[i as usize],
                sent_messages: msgs[i as usize],
                received_bytes: recv[i as usize],
                rma_bytes: rma[i as usize],
            })
            .collect(),
        communicators: j
            .communicators
            .iter()
            .take(MAX_RECORDS)
            .map(|(&(rank, _), c)| pb::CommunicatorSummary {
                reporter_rank: rank,
                info: Some(pb::CommunicatorInfo {
                    comm_id: c.comm_id,
                    world_ranks: c.world_ranks.clone(),
                    inter: c.inter,
                    remote_world_ranks: c.remote_world_ranks.clone(),
                }),
            })
            .collect(),
        collectives: j
            .collectives
            .iter()
            .take(MAX_RECORDS)
            .map(|(k, c)| pb::CollectiveSummary {
                rank: k.0,
                traffic: Some(pb::CollectiveTraffic {
                    comm_id: c.comm_id,
                    op: op_to(c.op) as i32,
                    mode: mode_to(c.mode) as i32,
                    root: c.root,
                    calls: c.calls,
                    bytes: c.bytes,
                }),
            })
            .collect(),
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        Status::unavailable(e.to_string())
    }
}

impl From<PlaneError> for Status {
    fn from(e: PlaneError) -> Status {
        match &e {
            PlaneError::Exists(_) => Status::already_exists(e.to_string()),
            PlaneError::UnknownJob(_) | PlaneError::UnknownVmName(_) | PlaneError::UnknownSite(_) => Status::not_found(e.to_string()),
            PlaneError::NoTopology => Status::failed_precondition(e.to_string()),
            PlaneError::Store(_) => Status::unavailable(e.to_string()),
            PlaneError::Registry(r) => Status::from(r.clone()),
            _ => Status::invalid_argument(e.to_string()),
        }
    }
}

impl From<RegistryError> for Status {
    fn from(e: RegistryError) -> Status {
        match &e {
            RegistryError::UnknownJob(_) => Status::not_found(e.to_string()),
            RegistryError::TooManyJobs { .. } => Status::resource_exhausted(e.to_string()),
            RegistryError::Traffic(TrafficError::WorldSizeMismatch { .. }) => Status::failed_precondition(e.to_string()),
            RegistryError::Traffic(TrafficError::RankOutsideJob { .. }) => Status::out_of_range(e.to_string()),
            RegistryError::Traffic(
                TrafficError::TooManyPairs { .. } | TrafficError::WorldTooLarge { .. } | TrafficError::TooManyStreams { .. },
            ) => Status::resource_exhausted(e.to_string()),
            _ => Status::invalid_argument(e.to_string()),
        }
    }
}

impl From<LoopError> for Status {
    fn from(e: LoopError) -> Status {
        match &e {
            LoopError::NotPending(_) => Status::failed_precondition(e.to_string()),
            LoopError::Store(_) => Status::unavailable(e.to_string()),
            LoopError::Exec(crate::act::ExecError::Store(_)) => Status::unavailable(e.to_string()),
            LoopError::Exec(_) => Status::failed_precondition(e.to_string()),
        }
    }
}

impl From<BadValue> for Status {
    fn from(e: BadValue) -> Status {
        Status::invalid_argument(e.to_string())
    }
}

fn op_state(s: OpState) -> pb::OperationState {
    match s {
        OpState::Created => pb::OperationState::OperationCreated,
        OpState::Running => pb::OperationState::OperationRunning,
        OpState::Succeeded => pb::OperationState::OperationSucceeded,
        OpState::Failed => pb::OperationState::OperationFailed,
        OpState::Cancelled => pb::OperationState::OperationCancelled,
        OpState::TimedOut => pb::OperationState::OperationTimedOut,
        OpState::Stale => pb::OperationState::OperationStale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_collective_op_round_trips_and_unknown_values_name_the_field() {
        for o in CollectiveOp::ALL {
            assert_eq!(op_from(op_to(o) as i32, "x").unwrap(), o);
        }
        assert_eq!(op_from(99, "report.collectives[3].op").unwrap_err().to_string(), "report.collectives[3].op: unknown value 99");
        assert!(op_from(0, "op").is_err(), "unspecified is not an operation");
        assert!(mode_from(0, "mode").is_err());
    }
}
