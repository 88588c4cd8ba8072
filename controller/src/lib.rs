//! The straddle controller: observe what MPI jobs send, decide where their VMs belong, act
//! through the hypervisor, and tell the ranks. The pure model (topology, traffic,
//! classifier, planner) is the `straddle-model` crate; this crate runs it.
//!
//! - `clock`: the one clock every time read goes through.
//! - `records`: the domain records the controller keeps and shows.
//! - `credential`: tokens issued to jobs and operators, kept as digests.
//! - `observe`: jobs' traffic from the shims (per run), and the site maps pushed back.
//! - `plane`: placements, submitted jobs, pins, drains, scenario arrivals; durable first.
//! - `scenario`: a scheduler's scenario file, checked whole.
//! - `decide`: the control loop (classify → plan → submit operations) and the decision log.
//! - `act`: migration operations, the executor that owns them, settling after a restart.
//! - `agents`: the per-host agents: registrations, usage, the fabric pushed to them.
//! - `hypervisor`: the `Hypervisor` trait and the simulated backend.
//! - `state`: the durable store behind a trait (redb, memory).
//! - `health`: supervision of the long-running tasks.
//! - `api`: the gRPC edge (services, conversions, the server).

pub mod act;
pub mod agents;
pub mod api;
pub mod clock;
pub mod credential;
pub mod decide;
pub mod health;
pub mod hypervisor;
pub mod observe;
pub mod plane;
pub mod records;
pub mod scenario;
pub mod state;

pub use straddle_model as model;
