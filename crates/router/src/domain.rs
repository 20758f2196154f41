//! The labels the router chooses between, and the conversation turns it reads.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::RouterError;

/// A routing label: one of the four adapter domains, or `General` for the base model.
///
/// The declaration order is the model's class order; it is also the order of [`Domain::ALL`]
/// and the order used by the `Ord` impl (so `BTreeMap<Domain, _>` iterates in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// Life sciences: cells, genetics, physiology, ecology, evolution.
    Biology,
    /// Past events, periods, people and historiography.
    History,
    /// Computer and information security.
    Security,
    /// Pedagogy and tutoring: explaining data-science, statistics and ML concepts as a teaching
    /// assistant, lesson plans, rubrics, classroom dialogue, study and exam strategy.
    Teaching,
    /// Anything else; answered by the base model.
    General,
}

impl Domain {
    /// Every domain, in class order.
    pub const ALL: [Domain; 5] = [
        Domain::Biology,
        Domain::History,
        Domain::Security,
        Domain::Teaching,
        Domain::General,
    ];

    /// Number of domains (the classifier's number of classes).
    pub const COUNT: usize = Self::ALL.len();

    /// The lowercase name, as used in JSON, config files and data labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Biology => "biology",
            Domain::History => "history",
            Domain::Security => "security",
            Domain::Teaching => "teaching",
            Domain::General => "general",
        }
    }

    /// Position of this domain in [`Domain::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The domain at a position of [`Domain::ALL`], if in range.
    pub fn from_index(index: usize) -> Option<Domain> {
        Self::ALL.get(index).copied()
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Domain {
    type Err = RouterError;

    /// Parses a name case-insensitively, ignoring surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|domain| domain.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| RouterError::UnknownDomain(s.to_owned()))
    }
}

/// One message of a conversation, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn<'a> {
    /// `user`, `assistant`, `system`, `tool`...; only user turns (and, weakly, assistant turns)
    /// count towards the decision.
    pub role: &'a str,
    /// The message text.
    pub content: &'a str,
}

impl<'a> Turn<'a> {
    /// A user turn.
    pub fn user(content: &'a str) -> Self {
        Turn {
            role: "user",
            content,
        }
    }

    /// An assistant turn.
    pub fn assistant(content: &'a str) -> Self {
        Turn {
            role: "assistant",
            content,
        }
    }

    /// A system turn.
    pub fn system(content: &'a str) -> Self {
        Turn {
            role: "system",
            content,
        }
    }
}

/// An owned conversation message, as stored in training examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The role (`user`, `assistant`, `system`...).
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// Borrows this message as a [`Turn`].
    pub fn as_turn(&self) -> Turn<'_> {
        Turn {
            role: &self.role,
            content: &self.content,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for domain in Domain::ALL {
            assert_eq!(domain.as_str().parse::<Domain>().unwrap(), domain);
            let json = serde_json::to_string(&domain).unwrap();
            assert_eq!(json, format!("\"{}\"", domain.as_str()));
            assert_eq!(serde_json::from_str::<Domain>(&json).unwrap(), domain);
            assert_eq!(Domain::from_index(domain.index()), Some(domain));
        }
        assert_eq!(" Security ".parse::<Domain>().unwrap(), Domain::Security);
        assert!(matches!(
            "chemistry".parse::<Domain>(),
            Err(RouterError::UnknownDomain(name)) if name == "chemistry"
        ));
        assert_eq!(Domain::from_index(Domain::COUNT), None);
    }
}
