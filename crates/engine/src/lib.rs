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
mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use detokenizer::IncrementalDecoder;
pub use error::{EngineError, Result};
pub use tokenizer::TextTokenizer;
