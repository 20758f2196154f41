//! Stop strings matched across token boundaries.
//!
//! Streamed text passes through a [`StopMatcher`], which releases text only once it can no longer
//! be the start of a stop string. So a stop string split over several tokens is still found, and
//! no part of it ever reaches the client.

/// What one push released.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct StopOutcome {
    /// Text safe to emit (before any stop string).
    pub text: String,
    /// The stop string found; generation ends here.
    pub stopped: Option<String>,
}

/// Per-sequence stop-string state.
#[derive(Debug, Clone, Default)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    /// Text not released yet because it may begin a stop string.
    held: String,
}

impl StopMatcher {
    /// A matcher for `stops` (none: every push is released at once).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds newly decoded text; returns what can be emitted and whether a stop string matched.
    pub fn push(&mut self, piece: &str) -> StopOutcome {
        if self.stops.is_empty() {
            return StopOutcome {
                text: piece.to_string(),
                stopped: None,
            };
        }
        self.held.push_str(piece);
        // Everything released earlier was checked, and the held text is the only place a match
        // can begin: the earliest match wins, the longer stop on a tie.
        let found = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()).map(|at| (at, stop)))
            .min_by(|a, b| a.0.cmp(&b.0).then(b.1.len().cmp(&a.1.len())));
        if let Some((at, stop)) = found {
            let stop = stop.clone();
            let text = self.held[..at].to_string();
            self.held.clear();
            return StopOutcome {
                text,
                stopped: Some(stop),
            };
        }
        let keep = self.partial_match_len();
        let text = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        StopOutcome {
            text,
            stopped: None,
        }
    }

    /// The held text at the end of a sequence: nothing more can complete a stop string.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest suffix of the held text that is a proper prefix of a stop string.
    fn partial_match_len(&self) -> usize {
        let held = self.held.as_str();
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let start = held.len().saturating_sub(longest.saturating_sub(1));
        (start..held.len())
            .filter(|&i| held.is_char_boundary(i))
            .find(|&i| {
                let suffix = &held[i..];
                self.stops.iter().any(|stop| stop.starts_with(suffix))
            })
            .map_or(0, |i| held.len() - i)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<String>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for piece in pieces {
            let o = m.push(piece);
            out.push_str(&o.text);
            if o.stopped.is_some() {
                return (out, o.stopped);
            }
        }
        out.push_str(&m.flush());
        (out, None)
    }

    #[test]
    fn a_stop_split_over_pieces_is_found_and_not_emitted() {
        assert_eq!(
            run(&["END"], &["Hello E", "N", "D and more"]),
            ("Hello ".to_string(), Some("END".to_string()))
        );
    }

    #[test]
    fn held_text_is_released_when_the_match_fails() {
        let mut m = StopMatcher::new(&["###".to_string()]);
        assert_eq!(m.push("a #").text, "a ");
        assert_eq!(m.push("#").text, "");
        assert_eq!(m.push("b").text, "##b");
        assert_eq!(run(&["###"], &["a ##"]), ("a ##".to_string(), None));
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        assert_eq!(
            run(&["world", "lo w"], &["hello world"]),
            ("hel".to_string(), Some("lo w".to_string()))
        );
    }

    #[test]
    fn multibyte_text_is_never_cut_inside_a_character() {
        assert_eq!(run(&["é!"], &["café", "?"]), ("café?".to_string(), None));
        assert_eq!(
            run(&["é!"], &["caf", "é", "!"]),
            ("caf".to_string(), Some("é!".to_string()))
        );
    }

    #[test]
    fn without_stops_everything_passes_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".to_string(), None));
    }
}
