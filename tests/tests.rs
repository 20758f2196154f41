//! End-to-end tests of the `switchboard` binary, compiled as one test binary.

mod e2e;
