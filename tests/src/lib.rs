//! The end-to-end harness shared by the integration tests and benchmarks: build MPI
//! programs, launch them under the shim with a deadline, run the controller as a real
//! process, query it over gRPC, compute the traffic a test program must produce, and the
//! multi-site test bed (`bed`), and the agent's cluster segments between namespaces
//! (`segments`), and the controller driving agent daemons over them (`agents`).

pub mod agents;
pub mod bed;
pub mod controller;
pub mod expect;
pub mod mpi;
pub mod paths;
pub mod segments;
