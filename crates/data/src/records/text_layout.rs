//! A conversation laid out as plain text, for converting chat records to `{text}` and back.
//!
//! Each message is a header line naming its role, then its content; messages are separated by
//! one newline:
//!
//! ```text
//! <|system|>
//! Be brief.
//! <|user|>
//! What is 2 + 2?
//! <|assistant|>
//! 4
//! ```
//!
//! The layout converts back exactly (content may hold any text, blank lines and trailing
//! newlines included) unless a content line is itself exactly a header line; such a
//! conversation is refused rather than converted into text that would read back differently.
//!
//! A `{text}` record trains on every token, so a chat converted to text also teaches the model
//! the user's and system's words and the headers, unlike the chat, which trains on the
//! assistant's replies only, through the model's own chat template.

use switchboard_engine::ChatMessage;

const ROLES: [&str; 3] = ["system", "user", "assistant"];

fn header(role: &str) -> String {
    format!("<|{role}|>")
}

fn role_of_header(line: &str) -> Option<&'static str> {
    ROLES
        .iter()
        .copied()
        .find(|role| line == header(role).as_str())
}

/// Lays `messages` out as text; `Err` says why the layout could not be read back exactly.
pub fn chat_to_text(messages: &[ChatMessage]) -> Result<String, String> {
    let mut parts = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        if !ROLES.contains(&message.role.as_str()) {
            return Err(format!("message {i} has role {:?}", message.role));
        }
        if message
            .content
            .split('\n')
            .any(|l| role_of_header(l).is_some())
        {
            return Err(format!(
                "message {i} contains a line that is a role header of the text layout"
            ));
        }
        parts.push(format!("{}\n{}", header(&message.role), message.content));
    }
    Ok(parts.join("\n"))
}

/// Reads a text in the layout back into messages; `None` when it is not in the layout.
pub fn text_to_chat(text: &str) -> Option<Vec<ChatMessage>> {
    let mut messages: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for line in text.split('\n') {
        match role_of_header(line) {
            Some(role) => messages.push((role, Vec::new())),
            None => messages.last_mut()?.1.push(line),
        }
    }
    if messages.is_empty() {
        return None;
    }
    messages
        .into_iter()
        // A header is always followed by a newline, so its content has at least one line.
        .map(|(role, lines)| {
            if lines.is_empty() {
                None
            } else {
                Some(ChatMessage::new(role, lines.join("\n")))
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chat(items: &[(&str, &str)]) -> Vec<ChatMessage> {
        items
            .iter()
            .map(|(r, c)| ChatMessage::new(*r, *c))
            .collect()
    }

    #[test]
    fn conversations_round_trip_exactly() {
        for messages in [
            chat(&[("user", "hi"), ("assistant", "hello")]),
            chat(&[("system", "be brief"), ("user", "q"), ("assistant", "a")]),
            chat(&[("user", ""), ("assistant", "x\n\n")]),
            chat(&[
                ("user", "line\n\nmore\n"),
                ("assistant", "<|user|> inline is fine"),
            ]),
        ] {
            let text = chat_to_text(&messages).unwrap();
            assert_eq!(text_to_chat(&text).unwrap(), messages, "{text:?}");
        }
        assert_eq!(
            chat_to_text(&chat(&[("user", "q"), ("assistant", "a")])).unwrap(),
            "<|user|>\nq\n<|assistant|>\na"
        );
    }

    #[test]
    fn ambiguous_or_foreign_text_is_refused() {
        assert!(chat_to_text(&chat(&[("user", "a\n<|assistant|>\nb")])).is_err());
        assert_eq!(text_to_chat("plain prose"), None);
        assert_eq!(text_to_chat("<|user|>"), None);
    }
}
