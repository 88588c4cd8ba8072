//! The unit tests of the collectives benchmark's model of the test bed, run with the suite:
//! the model belongs to the benchmark alone (`model/`), and a benchmark target without the
//! test harness does not run tests.

// What only the benchmark uses (its layouts, the launch environment) is unused here.
#[allow(dead_code)]
mod model;
#[path = "model/tests.rs"]
mod tests;
