//! # switchboard-router
//!
//! Chooses the LoRA adapter for `model: "auto"` requests: biology, history, security, teaching,
//! or the base model for anything else, in a few microseconds and in-process.
//!
//! * [`Classifier`]: multinomial logistic regression over hashed word unigrams, bigrams and
//!   character 3-5-grams, with a calibrated softmax. [`Classifier::bundled`] is the model
//!   trained on `data/router`, compiled into the binary. [`Classifier::classify`] reads a whole
//!   conversation (the last user turn weighs most) and returns a [`Decision`].
//! * [`RoutingTable`]: domain to adapter, a confidence threshold, and the [`RouteReason`] for
//!   every request the base model answers instead.
//! * [`train`], [`load_examples`], [`evaluate`]: training on JSONL files, and accuracy /
//!   per-domain F1 / confusion reports, also for the [`KeywordBaseline`] it replaces.
//!
//! ```
//! use switchboard_router::{Classifier, RouteReason, RoutingTable, Turn};
//!
//! let classifier = Classifier::bundled()?;
//! let decision = classifier.classify(&[
//!     Turn::system("You are a helpful assistant."),
//!     Turn::user("How do I keep attackers from brute-forcing our SSH server?"),
//! ]);
//! let outcome = RoutingTable::default().route(&decision, |adapter| adapter == "security");
//! assert_eq!(outcome.adapter.as_deref(), Some("security"));
//! assert_eq!(outcome.reason, RouteReason::Routed);
//! # Ok::<(), switchboard_router::RouterError>(())
//! ```
#![warn(missing_docs)]

mod baseline;
mod classifier;
mod data;
mod domain;
mod error;
mod eval;
mod features;
mod format;
mod routing;
mod train;

pub use baseline::KeywordBaseline;
pub use classifier::{Classifier, Classify, Decision};
pub use data::{load_examples, load_split, Example};
pub use domain::{Domain, Message, Turn};
pub use error::{Result, RouterError};
pub use eval::{evaluate, ClassMetrics, EvalReport};
pub use features::DEFAULT_BUCKETS;
pub use routing::{Route, RouteOutcome, RouteReason, RoutingTable, DEFAULT_THRESHOLD};
pub use train::{train, TrainOptions};
