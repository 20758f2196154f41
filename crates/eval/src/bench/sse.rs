//! Server-sent events as OpenAI-compatible servers stream them, parsed incrementally: the
//! network hands over arbitrary pieces, so a line (or a UTF-8 character) may be split across
//! reads. Follows the WHATWG event-stream rules that matter here: lines end in `\n`, `\r\n` or
//! `\r`; a blank line ends an event; `:` lines are comments (keep-alives); several `data:`
//! lines of one event are joined with `\n`; other fields (`event`, `id`, `retry`) are ignored
//! because OpenAI streams carry everything in `data`.

use serde::Deserialize;

/// Splits a byte stream into the `data` payloads of its events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The line being read (bytes, so a split UTF-8 character is joined before decoding).
    line: Vec<u8>,
    /// `data` of the event being read.
    data: String,
    has_data: bool,
    /// The previous byte was `\r`: a `\n` right after it ends the same line.
    after_cr: bool,
}

impl SseParser {
    /// Feeds the next piece of the stream; returns the payloads of the events it completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &byte in bytes {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' => self.end_line(&mut events),
                b'\r' => {
                    self.end_line(&mut events);
                    self.after_cr = true;
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    /// The stream ended: an event still open is returned rather than dropped (the standard
    /// drops it, but some servers close without the final blank line and their last chunk
    /// carries the usage).
    pub fn finish(&mut self) -> Option<String> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events);
        }
        self.end_line(&mut events);
        events.pop()
    }

    fn end_line(&mut self, events: &mut Vec<String>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if std::mem::take(&mut self.has_data) {
                events.push(std::mem::take(&mut self.data));
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (&line[..], &[][..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(&String::from_utf8_lossy(value));
            self.has_data = true;
        }
    }
}

/// What one `data` payload of a completion stream means for the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// `[DONE]`: nothing follows.
    Done,
    /// A chunk: whether it carries generated text, and the usage if it is the usage chunk.
    Chunk {
        /// Some choice has non-empty `text` (completions) or `delta.content` (chat).
        content: bool,
        /// `usage`, sent last when `stream_options.include_usage` is set.
        usage: Option<Usage>,
    },
    /// The server reported an error inside the stream, or sent something that is not a chunk.
    Error(String),
}

/// Token counts of a finished request, as the server counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Prompt tokens (chat: after the template).
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Generated tokens.
    #[serde(default)]
    pub completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChoiceChunk>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChoiceChunk {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    delta: Option<Delta>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    /// Reasoning models stream their thinking here first; it is generated output all the same
    /// (vLLM's benchmark counts it for TTFT too).
    #[serde(default)]
    reasoning_content: Option<String>,
}

/// Interprets one `data` payload of a completions or chat-completions stream.
pub fn interpret(data: &str) -> StreamItem {
    let data = data.trim();
    if data == "[DONE]" {
        return StreamItem::Done;
    }
    let chunk: Chunk = match serde_json::from_str(data) {
        Ok(chunk) => chunk,
        Err(e) => return StreamItem::Error(format!("unparseable stream chunk ({e})")),
    };
    if let Some(error) = chunk.error {
        return StreamItem::Error(error_text(&error));
    }
    let non_empty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    let content = chunk.choices.iter().any(|c| {
        non_empty(&c.text)
            || c.delta
                .as_ref()
                .is_some_and(|d| non_empty(&d.content) || non_empty(&d.reasoning_content))
    });
    StreamItem::Chunk {
        content,
        usage: chunk.usage,
    }
}

/// The message of an OpenAI error object (`{"message": ...}`), or a string error, or the JSON.
pub fn error_text(error: &serde_json::Value) -> String {
    error
        .get("message")
        .and_then(serde_json::Value::as_str)
        .or_else(|| error.as_str())
        .map_or_else(|| error.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_are_reassembled() {
        let stream = "data: {\"a\":1}\n\ndata: {\"b\":\"é\"}\n\ndata: [DONE]\n\n".as_bytes();
        // Every split point, including inside the two-byte `é`.
        for cut in 0..stream.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&stream[..cut]);
            events.extend(parser.push(&stream[cut..]));
            assert_eq!(parser.finish(), None);
            assert_eq!(
                events,
                ["{\"a\":1}", "{\"b\":\"é\"}", "[DONE]"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn one_byte_at_a_time_with_crlf_comments_and_multiline_data() {
        let stream = b": keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata:x\r\ndata: y\r\n\r\n:ping\r\rdata: z\r\r";
        let mut parser = SseParser::default();
        let events: Vec<String> = stream.iter().flat_map(|b| parser.push(&[*b])).collect();
        assert_eq!(events, ["x\ny", "z"]);
    }

    #[test]
    fn an_unterminated_last_event_is_kept() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: {\"usage\":{}}").is_empty());
        assert_eq!(parser.finish().as_deref(), Some("{\"usage\":{}}"));
        assert_eq!(parser.finish(), None);
    }

    #[test]
    fn chunks_are_interpreted() {
        assert_eq!(interpret(" [DONE] "), StreamItem::Done);
        let text = |content| StreamItem::Chunk {
            content,
            usage: None,
        };
        assert_eq!(interpret(r#"{"choices":[{"text":"hi"}]}"#), text(true));
        assert_eq!(interpret(r#"{"choices":[{"text":""}]}"#), text(false));
        assert_eq!(
            interpret(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#),
            text(false)
        );
        assert_eq!(
            interpret(r#"{"choices":[{"delta":{"content":"x"}}]}"#),
            text(true)
        );
        assert_eq!(
            interpret(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#),
            text(true)
        );
        assert_eq!(
            interpret(r#"{"choices":[],"usage":{"prompt_tokens":16,"completion_tokens":8}}"#),
            StreamItem::Chunk {
                content: false,
                usage: Some(Usage {
                    prompt_tokens: Some(16),
                    completion_tokens: Some(8)
                })
            }
        );
        assert_eq!(
            interpret(r#"{"error":{"message":"boom","type":"server_error"}}"#),
            StreamItem::Error("boom".into())
        );
        assert!(matches!(interpret("{not json"), StreamItem::Error(_)));
    }
}
