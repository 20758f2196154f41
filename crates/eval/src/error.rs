//! Errors of the evaluation crate.

use std::path::PathBuf;

/// What can go wrong while evaluating or benchmarking.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of a JSONL file is not a valid item.
    #[error("{path}:{line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A file is valid line by line but unusable as a whole (empty, duplicate ids, ...).
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A Pushgateway refused or could not be reached.
    #[error("pushing to {url}: {reason}")]
    Push {
        /// The URL pushed to.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A server URL that cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A request got no answer (connection refused, timeout, ...), after every retry.
    #[error("{url}: {reason}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// Why, with the number of attempts.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Api {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's error message (OpenAI's `error.message`, or the body).
        message: String,
    },
    /// The server answered, but not in the shape the request needs.
    #[error("{url}: unexpected response: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What does not fit.
        reason: String,
    },
    /// A variant of `eval run` that cannot be run against this server.
    #[error("variant {variant:?}: {reason}")]
    BadVariant {
        /// The variant as given.
        variant: String,
        /// Why it cannot run.
        reason: String,
    },
    /// An adapter variant scored exactly like its reference on every item: the server
    /// answered with the base weights (lm-evaluation-harness#2432), so its numbers are void.
    #[error(
        "variant {variant:?} gave the same log-likelihoods as {reference:?} on all {items} items it \
         sent to an adapter: the server ignored the adapter"
    )]
    AdapterIgnored {
        /// The adapter variant.
        variant: String,
        /// The variant it was compared with (`base`, or `rag` for `adapter+rag`).
        reference: String,
        /// Items compared.
        items: usize,
    },
    /// Retrieval failed for a question.
    #[error("retrieving passages for {query:?}: {reason}")]
    Retrieval {
        /// The question.
        query: String,
        /// Why.
        reason: String,
    },
    /// An item could not be scored with what the server returned (wrong kind of item, one
    /// log-likelihood missing, ...).
    #[error("item {id:?}: {reason}")]
    Scoring {
        /// The item's id.
        id: String,
        /// What does not fit.
        reason: String,
    },
    /// A multiple-choice item has more choices than the letters A-Z it would be asked with.
    #[error("{choices} choices cannot be lettered A-Z (at most 26)")]
    TooManyChoices {
        /// How many choices the item has.
        choices: usize,
    },
    /// A comparison asked for a variant that a results file does not have.
    #[error("{path}: no variant {requested:?}; it has: {}", available.join(", "))]
    UnknownVariant {
        /// The results file.
        path: PathBuf,
        /// The variant asked for.
        requested: String,
        /// The variants it has.
        available: Vec<String>,
    },
    /// A results file has several variants and none was chosen.
    #[error(
        "{path}: {} variants ({}); choose with --variant or --baseline-variant/--candidate-variant",
        available.len(),
        available.join(", ")
    )]
    AmbiguousVariant {
        /// The results file.
        path: PathBuf,
        /// The variants it has.
        available: Vec<String>,
    },
    /// A comparison's target domain is not among the compared items' domains.
    #[error("no domain {requested:?} among the compared items; there are: {}", available.join(", "))]
    UnknownDomain {
        /// The domain asked for.
        requested: String,
        /// The domains present (and `overall`).
        available: Vec<String>,
    },
    /// Two runs share no item id, so there is nothing to pair.
    #[error(
        "{baseline} ({baseline_variant}) and {candidate} ({candidate_variant}) have no item id in common"
    )]
    NoCommonItems {
        /// The baseline results file.
        baseline: PathBuf,
        /// The baseline variant.
        baseline_variant: String,
        /// The candidate results file.
        candidate: PathBuf,
        /// The candidate variant.
        candidate_variant: String,
    },
    /// A chart could not be drawn or encoded.
    #[error("drawing the chart: {reason}")]
    Chart {
        /// Why.
        reason: String,
    },
    /// A load-benchmark setting that cannot be run (named as its `switchboard bench` flag).
    #[error("--{setting}: {reason}")]
    BadSetting {
        /// The setting, as its flag is spelled without `--`.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
