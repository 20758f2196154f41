//! # switchboard-engine
//!
//! The generation engine. So far: the model's tokenizer and special tokens
//! ([`TextTokenizer`]), chat templates rendered like transformers does ([`ChatTemplate`],
//! ChatML when a checkpoint has none), and incremental detokenization for streams
//! ([`IncrementalDecoder`]).
#![warn(missing_docs)]

mod chat_template;
mod detokenizer;
mod error;
mod params;
mod registry;
mod sampler;
mod stop;
mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use detokenizer::IncrementalDecoder;
pub use error::{EngineError, Result};
pub use params::{SamplingParams, MAX_N, MAX_TOP_LOGPROBS};
pub use tokenizer::TextTokenizer;
