//! One test binary for the crate's integration tests (one link instead of one per file: a
//! fraction of the disk and the link time). Each module is what was once its own file's binary;
//! nextest still runs every test in its own process.

mod decisions;
mod dependent_loads;
mod features;
mod fuzz;
mod jsonlogic_conformance;
mod perf;
mod transitions;
