//! The straddle gRPC contract, version 1. Everything that crosses a process boundary
//! (shim ↔ controller, scheduler and operator ↔ controller, controller ↔ agent) is one of
//! these messages.

pub mod v1 {
    tonic::include_proto!("straddle.v1");
}

pub use v1::*;
