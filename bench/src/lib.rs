//! The parts of the benchmark that the test suite also runs: the realistic order mix
//! ([`realistic`]), so that a short run of it against a real server is checked by `make test`
//! (`tests/tests/suite/realistic.rs`) and cannot rot. The benchmark binary (`src/main.rs`) uses
//! it for `BENCH_ONLY=realistic`.

pub mod realistic;
