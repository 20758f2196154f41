//! Integration tests of the training crate on the tiny golden model (one test binary).

mod common;
mod gradients;
mod runs;
