//! # switchboard-data
//!
//! The path from course material to training records, as library calls behind `switchboard data`:
//!
//! * [`extract`]: Markdown, plain text (any encoding), PDF and Jupyter notebooks in a folder →
//!   cleaned, de-duplicated text chunks with their source file and position (JSONL).
//! * [`synth`]: each chunk → question–answer records written by a teacher model behind any
//!   OpenAI-compatible endpoint (validated, repaired or retried, rate limits honoured,
//!   resumable).
//! * [`records`]: filter, split (seeded, stratified, no near-duplicate across splits), convert
//!   between the six formats the trainer reads, and count (`stats`).
//!
//! [`jsonl`] holds what they share: reading JSONL with errors that name file and line, and
//! writing files atomically.
#![warn(missing_docs)]

pub mod extract;
pub mod jsonl;
pub mod records;
pub mod synth;
