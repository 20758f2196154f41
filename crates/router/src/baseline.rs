//! The keyword router that proxies commonly use, kept as the baseline the trained classifier
//! has to beat.

use std::collections::HashMap;

use crate::classifier::{Classify, Decision};
use crate::domain::{Domain, Turn};

const BIOLOGY: &str = "\
    biology cell cells dna rna gene genes genetic genetics protein proteins enzyme enzymes \
    organism organisms species evolution mitosis meiosis photosynthesis mitochondria \
    chromosome chromosomes bacteria virus viruses ecosystem ecology neuron neurons hormone \
    hormones immune metabolism anatomy physiology mutation plant plants animal animals \
    tissue membrane microbiology molecular";

const HISTORY: &str = "\
    history historical historian historians century centuries ancient medieval empire \
    empires war wars revolution dynasty king queen emperor treaty colonial colonialism \
    civilization civilisation battle monarchy renaissance reformation feudal pharaoh roman \
    rome ottoman byzantine napoleon wwi wwii cold independence reign archaeology";

const SECURITY: &str = "\
    security cybersecurity vulnerability vulnerabilities exploit exploits malware ransomware \
    phishing attack attacker attackers encryption encrypt firewall xss csrf injection cve \
    pentest penetration password passwords authentication tls ssl hash hashing threat breach \
    owasp privilege backdoor botnet ddos intrusion mfa siem secure hacker hacking";

const TEACHING: &str = "\
    teach teaching teacher lesson lessons student students classroom rubric rubrics \
    curriculum syllabus pedagogy tutor tutoring explain homework quiz exam exams grade \
    grading learners lecture course study studying assignment worksheet beginner intuition \
    intuitively";

/// Counts keyword hits per domain in the last user message; the domain with the most hits
/// wins (ties go to the earlier domain in [`Domain::ALL`]), and no hit at all means general.
#[derive(Debug, Clone)]
pub struct KeywordBaseline {
    keywords: HashMap<String, Domain>,
}

impl Default for KeywordBaseline {
    /// The built-in lists: a few dozen common words per adapter domain.
    fn default() -> Self {
        Self::new(
            [
                (Domain::Biology, BIOLOGY),
                (Domain::History, HISTORY),
                (Domain::Security, SECURITY),
                (Domain::Teaching, TEACHING),
            ]
            .map(|(domain, words)| (domain, words.split_whitespace())),
        )
    }
}

impl KeywordBaseline {
    /// A baseline over custom lists of single words, matched case-insensitively against whole
    /// words; a word listed for two domains counts for the first one given.
    pub fn new<Words>(lists: impl IntoIterator<Item = (Domain, Words)>) -> Self
    where
        Words: IntoIterator,
        Words::Item: AsRef<str>,
    {
        let mut keywords = HashMap::new();
        for (domain, words) in lists {
            for word in words {
                keywords
                    .entry(word.as_ref().to_lowercase())
                    .or_insert(domain);
            }
        }
        KeywordBaseline { keywords }
    }
}

impl Classify for KeywordBaseline {
    fn classify(&self, conversation: &[Turn<'_>]) -> Decision {
        let text = conversation
            .iter()
            .rev()
            .find(|turn| turn.role.eq_ignore_ascii_case("user"))
            .map_or("", |turn| turn.content);
        let mut hits = [0u32; Domain::COUNT];
        for word in text
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
        {
            if let Some(domain) = self.keywords.get(word) {
                hits[domain.index()] += 1;
            }
        }
        let total: u32 = hits.iter().sum();
        if total == 0 {
            let mut certain_general = [0.0; Domain::COUNT];
            certain_general[Domain::General.index()] = 1.0;
            return Decision::from_probabilities(certain_general);
        }
        // The hit shares double as "probabilities" so the decision has the usual shape.
        Decision::from_probabilities(hits.map(|count| count as f32 / total as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_hits_win_and_no_hit_is_general() {
        let baseline = KeywordBaseline::default();
        let decision = baseline.classify_text("Which enzyme breaks down proteins in the cell?");
        assert_eq!(decision.domain, Domain::Biology);
        assert_eq!(decision.confidence, 1.0);
        assert_eq!(
            baseline.classify_text("Plan a weekend in Lisbon").domain,
            Domain::General
        );
        let mixed = baseline.classify_text("A phishing attack on a cell phone");
        assert_eq!(mixed.domain, Domain::Security);
        assert!((mixed.probability(Domain::Biology) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn reads_only_the_last_user_turn() {
        let baseline = KeywordBaseline::default();
        let conversation = [
            Turn::user("tell me about ransomware"),
            Turn::assistant("ransomware encrypts files"),
            Turn::user("and the roman empire?"),
        ];
        assert_eq!(baseline.classify(&conversation).domain, Domain::History);
    }

    #[test]
    fn ties_go_to_the_earlier_domain() {
        let baseline =
            KeywordBaseline::new([(Domain::Security, ["lock"]), (Domain::History, ["castle"])]);
        assert_eq!(
            baseline.classify_text("castle lock").domain,
            Domain::History
        );
    }
}
