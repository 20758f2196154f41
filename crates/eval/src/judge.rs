//! `eval judge`: two variants answer the same prompts with the same sampling, and a judge model
//! (any OpenAI-compatible chat endpoint) grades both answers on a 1–5 rubric.
//!
//! Position bias is cancelled the way MT-Bench does it: every pair is judged twice, once in
//! each order, and the scores of the two orders are averaged; a preference counts only when both
//! orders agree, otherwise the pair is a tie. An answer "succeeds" when its mean rubric score
//! (over criteria and both orders) is at least 4.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ChatMessage as Message, OpenAiClient};
use crate::error::{EvalError, Result};
use crate::stats::wilson;
use crate::suite::read_jsonl;

/// Sampling of one chat request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Softmax temperature (0: greedy).
    pub temperature: f32,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Seed, for servers that honour it.
    pub seed: Option<u64>,
}

/// Something that answers chat requests: the server under test, or the judge's server.
pub trait ChatBackend {
    /// The assistant's reply to `messages` from `model`.
    fn chat(
        &self,
        model: &str,
        messages: &[Message],
        sampling: &Sampling,
    ) -> impl Future<Output = Result<String>> + Send;
}

impl ChatBackend for OpenAiClient {
    fn chat(
        &self,
        model: &str,
        messages: &[Message],
        sampling: &Sampling,
    ) -> impl Future<Output = Result<String>> + Send {
        OpenAiClient::chat(
            self,
            model,
            messages,
            sampling.max_tokens,
            sampling.temperature,
            sampling.seed,
        )
    }
}

/// One prompt of a judge set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgePrompt {
    /// Unique id.
    pub id: String,
    /// The conversation to answer (a lone `prompt` or `question` becomes one user message).
    pub messages: Vec<Message>,
    /// A reference answer that "deserves a 5", when the set has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Reads a JSONL prompt set: lines `{"id", "prompt" | "question" | "messages", "reference"?}`
/// (generative evaluation items work as they are).
pub fn load_prompts(path: &Path) -> Result<Vec<JudgePrompt>> {
    let prompts = read_jsonl(path, parse_prompt)?;
    if prompts.is_empty() {
        return Err(EvalError::BadFile {
            path: path.to_path_buf(),
            reason: "the prompt set is empty".to_string(),
        });
    }
    Ok(prompts)
}

fn parse_prompt(value: &Value, position: usize) -> std::result::Result<JudgePrompt, String> {
    let id = match value.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None => format!("{}", position + 1),
        Some(_) => return Err("`id` must be a string or a number".to_string()),
    };
    let messages = if let Some(messages) = value.get("messages") {
        serde_json::from_value::<Vec<Message>>(messages.clone())
            .map_err(|e| format!("`messages`: {e}"))?
    } else {
        let text = ["prompt", "question"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .ok_or("a prompt needs `prompt`, `question` or `messages`")?;
        vec![Message::new("user", text)]
    };
    if messages.is_empty() || messages.iter().all(|m| m.content.trim().is_empty()) {
        return Err("the prompt is empty".to_string());
    }
    let reference = value
        .get("reference")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(JudgePrompt {
        id,
        messages,
        reference,
    })
}

/// The rubric: criteria scored 1–5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rubric {
    /// `(name, what a 5 means)`, in the order the judge is asked.
    pub criteria: Vec<(String, String)>,
}

impl Default for Rubric {
    fn default() -> Self {
        let criteria = [
            (
                "helpfulness",
                "the answer is correct, complete and useful to the person asking",
            ),
            (
                "tone",
                "the tone is clear, respectful and suited to a learner",
            ),
            (
                "task_adherence",
                "the answer does exactly what was asked, in the form asked",
            ),
        ];
        Self {
            criteria: criteria
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
        }
    }
}

/// Scores of one answer by criterion.
pub type Scores = BTreeMap<String, f64>;

/// Which of the two answers shown the judge preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    /// The first answer shown.
    First,
    /// The second answer shown.
    Second,
    /// Neither.
    Tie,
}

/// One judgement of an ordered pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Scores of the answer shown first.
    pub first: Scores,
    /// Scores of the answer shown second.
    pub second: Scores,
    /// The judge's preference.
    pub better: Shown,
}

/// The messages asking the judge to grade `first` and `second` as answers to `prompt`.
pub fn judge_messages(
    rubric: &Rubric,
    prompt: &JudgePrompt,
    first: &str,
    second: &str,
) -> Vec<Message> {
    let criteria: Vec<String> = rubric
        .criteria
        .iter()
        .map(|(name, five)| format!("- {name}: 5 means {five}; 1 means the opposite."))
        .collect();
    let keys: Vec<String> = rubric
        .criteria
        .iter()
        .map(|(name, _)| format!("\"{name}\": <1-5>"))
        .collect();
    let system = format!(
        "You are an impartial judge of AI assistant answers. Grade each answer on every \
         criterion with an integer from 1 to 5:\n{}\nAvoid any position bias: the order of the \
         answers must not influence you. Do not let the length of an answer influence you. \
         Reply with JSON only, exactly in this form:\n{{\"answer_1\": {{{keys}}}, \"answer_2\": \
         {{{keys}}}, \"better\": \"1\" | \"2\" | \"tie\"}}",
        criteria.join("\n"),
        keys = keys.join(", "),
    );
    let conversation: Vec<String> = prompt
        .messages
        .iter()
        .map(|m| format!("{}: {}", m.role, m.content))
        .collect();
    let mut user = format!("[Conversation]\n{}\n", conversation.join("\n"));
    if let Some(reference) = &prompt.reference {
        user.push_str(&format!("\n[Reference answer, worth a 5]\n{reference}\n"));
    }
    user.push_str(&format!(
        "\n[Answer 1]\n{first}\n[End of answer 1]\n\n[Answer 2]\n{second}\n[End of answer 2]"
    ));
    vec![Message::new("system", system), Message::new("user", user)]
}

/// Reads the judge's reply: the first JSON object in it, with every criterion scored 1–5 for
/// both answers. `None` when it does not follow the format.
pub fn parse_verdict(reply: &str, rubric: &Rubric) -> Option<Verdict> {
    let value = first_json_object(reply)?;
    let scores = |key: &str| -> Option<Scores> {
        let object = value.get(key)?.as_object()?;
        rubric
            .criteria
            .iter()
            .map(|(name, _)| {
                let score = object.get(name)?;
                let score = score
                    .as_f64()
                    .or_else(|| score.as_str().and_then(|s| s.trim().parse().ok()))?;
                (1.0..=5.0).contains(&score).then(|| (name.clone(), score))
            })
            .collect()
    };
    let better = match value.get("better") {
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "answer_1" | "a" => Shown::First,
            "2" | "answer_2" | "b" => Shown::Second,
            "tie" | "none" | "equal" => Shown::Tie,
            _ => return None,
        },
        Some(Value::Number(n)) => match n.as_u64()? {
            1 => Shown::First,
            2 => Shown::Second,
            _ => return None,
        },
        _ => return None,
    };
    Some(Verdict {
        first: scores("answer_1")?,
        second: scores("answer_2")?,
        better,
    })
}

/// The first balanced `{...}` in `text` that parses as JSON (judges wrap JSON in prose or
/// code fences).
fn first_json_object(text: &str) -> Option<Value> {
    for (start, _) in text.match_indices('{') {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (offset, ch) in text[start..].char_indices() {
            match ch {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '{' if !in_string => depth += 1,
                '}' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        let candidate = &text[start..start + offset + 1];
                        if let Ok(value) = serde_json::from_str::<Value>(candidate) {
                            return Some(value);
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// How the two variants compare on one prompt, both orders taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Both orders preferred variant A.
    AWins,
    /// Both orders preferred variant B.
    BWins,
    /// The judge called it a tie, or the two orders disagreed (position bias).
    Tie,
    /// No usable verdict in either order.
    Unjudged,
}

/// One prompt, both answers and their grades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedItem {
    /// The prompt's id.
    pub id: String,
    /// The last user message.
    pub prompt: String,
    /// Variant A's answer.
    pub answer_a: String,
    /// Variant B's answer.
    pub answer_b: String,
    /// A's scores averaged over the usable orders (empty when unjudged).
    pub scores_a: Scores,
    /// B's scores averaged over the usable orders.
    pub scores_b: Scores,
    /// The verdict with A shown first, if usable.
    pub a_first: Option<Verdict>,
    /// The verdict with B shown first, if usable.
    pub b_first: Option<Verdict>,
    /// The pairwise result.
    pub outcome: Outcome,
}

/// Grades of one variant over the whole set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    /// The variant (the `model` its answers came from).
    pub variant: String,
    /// Mean score per criterion.
    pub mean_scores: Scores,
    /// Mean over criteria.
    pub mean_overall: f64,
    /// Share of judged answers whose mean score is at least 4.
    pub success_rate: f64,
    /// 95% Wilson interval of `success_rate`.
    pub success_ci95: [f64; 2],
    /// Answers judged.
    pub n: usize,
}

/// What `eval judge` produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// The judge model.
    pub judge_model: String,
    /// Sampling used for both variants.
    pub sampling: Sampling,
    /// Variant A's grades.
    pub a: VariantSummary,
    /// Variant B's grades.
    pub b: VariantSummary,
    /// Prompts where both orders preferred A.
    pub a_wins: usize,
    /// Prompts where both orders preferred B.
    pub b_wins: usize,
    /// Ties, inconsistent orders included.
    pub ties: usize,
    /// Of the ties, those where the two orders disagreed.
    pub inconsistent: usize,
    /// Prompts with no usable verdict.
    pub unjudged: usize,
    /// Per prompt.
    pub items: Vec<JudgedItem>,
}

/// Who answers and who judges.
#[derive(Debug, Clone)]
pub struct JudgeSettings {
    /// Variant A (a `model` name on the candidates' server).
    pub variant_a: String,
    /// Variant B.
    pub variant_b: String,
    /// Sampling of both variants (the same for both).
    pub sampling: Sampling,
    /// The judge's model name.
    pub judge_model: String,
    /// The judge's sampling (temperature 0 by default).
    pub judge_sampling: Sampling,
    /// Tries per order when the judge's reply does not follow the format.
    pub attempts: usize,
    /// The rubric.
    pub rubric: Rubric,
}

/// Answers one prompt with both variants and judges the pair in both orders.
pub async fn judge_one<C: ChatBackend, J: ChatBackend>(
    candidates: &C,
    judge: &J,
    settings: &JudgeSettings,
    prompt: &JudgePrompt,
) -> Result<JudgedItem> {
    let answer_a = candidates
        .chat(&settings.variant_a, &prompt.messages, &settings.sampling)
        .await?;
    let answer_b = candidates
        .chat(&settings.variant_b, &prompt.messages, &settings.sampling)
        .await?;
    let a_first = ask_judge(judge, settings, prompt, &answer_a, &answer_b).await?;
    let b_first = ask_judge(judge, settings, prompt, &answer_b, &answer_a).await?;
    let (scores_a, scores_b) = combine_scores(a_first.as_ref(), b_first.as_ref());
    let outcome = outcome(a_first.as_ref(), b_first.as_ref());
    let last_user = prompt
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.clone())
        .unwrap_or_default();
    Ok(JudgedItem {
        id: prompt.id.clone(),
        prompt: last_user,
        answer_a,
        answer_b,
        scores_a,
        scores_b,
        a_first,
        b_first,
        outcome,
    })
}

async fn ask_judge<J: ChatBackend>(
    judge: &J,
    settings: &JudgeSettings,
    prompt: &JudgePrompt,
    first: &str,
    second: &str,
) -> Result<Option<Verdict>> {
    let messages = judge_messages(&settings.rubric, prompt, first, second);
    for attempt in 0..settings.attempts.max(1) {
        let mut sampling = settings.judge_sampling;
        // A greedy judge repeats itself: vary the seed so that a retry can differ.
        sampling.seed = sampling.seed.map(|s| s.wrapping_add(attempt as u64));
        let reply = judge
            .chat(&settings.judge_model, &messages, &sampling)
            .await?;
        if let Some(verdict) = parse_verdict(&reply, &settings.rubric) {
            return Ok(Some(verdict));
        }
        tracing::warn!(prompt = %prompt.id, attempt, "the judge's reply does not follow the format");
    }
    Ok(None)
}

/// A's and B's scores averaged over the usable orders.
fn combine_scores(a_first: Option<&Verdict>, b_first: Option<&Verdict>) -> (Scores, Scores) {
    let mut a: Vec<&Scores> = Vec::new();
    let mut b: Vec<&Scores> = Vec::new();
    if let Some(v) = a_first {
        a.push(&v.first);
        b.push(&v.second);
    }
    if let Some(v) = b_first {
        a.push(&v.second);
        b.push(&v.first);
    }
    (mean_scores(&a), mean_scores(&b))
}

fn mean_scores(all: &[&Scores]) -> Scores {
    let mut sums: Scores = BTreeMap::new();
    for scores in all {
        for (name, score) in scores.iter() {
            *sums.entry(name.clone()).or_default() += score;
        }
    }
    for sum in sums.values_mut() {
        *sum /= all.len() as f64;
    }
    sums
}

fn outcome(a_first: Option<&Verdict>, b_first: Option<&Verdict>) -> Outcome {
    // Map each order's preference back to the variants.
    let from_a_first = a_first.map(|v| match v.better {
        Shown::First => Outcome::AWins,
        Shown::Second => Outcome::BWins,
        Shown::Tie => Outcome::Tie,
    });
    let from_b_first = b_first.map(|v| match v.better {
        Shown::First => Outcome::BWins,
        Shown::Second => Outcome::AWins,
        Shown::Tie => Outcome::Tie,
    });
    match (from_a_first, from_b_first) {
        (Some(x), Some(y)) if x == y => x,
        (Some(_), Some(_)) => Outcome::Tie,
        // One usable order cannot cancel position bias: no preference.
        (Some(_), None) | (None, Some(_)) => Outcome::Tie,
        (None, None) => Outcome::Unjudged,
    }
}

/// Whether a tie came from the two orders disagreeing.
fn is_inconsistent(item: &JudgedItem) -> bool {
    match (&item.a_first, &item.b_first) {
        (Some(x), Some(y)) => {
            let x = match x.better {
                Shown::First => Outcome::AWins,
                Shown::Second => Outcome::BWins,
                Shown::Tie => Outcome::Tie,
            };
            let y = match y.better {
                Shown::First => Outcome::BWins,
                Shown::Second => Outcome::AWins,
                Shown::Tie => Outcome::Tie,
            };
            x != y
        }
        _ => false,
    }
}

/// Summarises judged items into a report.
pub fn summarize(items: Vec<JudgedItem>, settings: &JudgeSettings) -> JudgeReport {
    let count = |o: Outcome| items.iter().filter(|i| i.outcome == o).count();
    let a = variant_summary(&settings.variant_a, items.iter().map(|i| &i.scores_a));
    let b = variant_summary(&settings.variant_b, items.iter().map(|i| &i.scores_b));
    JudgeReport {
        judge_model: settings.judge_model.clone(),
        sampling: settings.sampling,
        a,
        b,
        a_wins: count(Outcome::AWins),
        b_wins: count(Outcome::BWins),
        ties: count(Outcome::Tie),
        inconsistent: items.iter().filter(|i| is_inconsistent(i)).count(),
        unjudged: count(Outcome::Unjudged),
        items,
    }
}

fn variant_summary<'a>(variant: &str, scores: impl Iterator<Item = &'a Scores>) -> VariantSummary {
    let judged: Vec<&Scores> = scores.filter(|s| !s.is_empty()).collect();
    let overall: Vec<f64> = judged
        .iter()
        .map(|s| s.values().sum::<f64>() / s.len() as f64)
        .collect();
    let successes = overall.iter().filter(|&&o| o >= 4.0).count();
    let n = judged.len();
    let mean = |xs: &[f64]| {
        if xs.is_empty() {
            0.0
        } else {
            xs.iter().sum::<f64>() / xs.len() as f64
        }
    };
    VariantSummary {
        variant: variant.to_string(),
        mean_scores: mean_scores(&judged),
        mean_overall: mean(&overall),
        success_rate: if n == 0 {
            0.0
        } else {
            successes as f64 / n as f64
        },
        success_ci95: wilson(successes, n),
        n,
    }
}

/// The side-by-side Markdown report.
pub fn markdown(report: &JudgeReport) -> String {
    let mut out = format!(
        "# Judge: {} vs {}\n\nJudge model `{}`; both variants sampled at temperature {} \
         (max {} tokens); every pair judged in both orders.\n\n",
        report.a.variant,
        report.b.variant,
        report.judge_model,
        report.sampling.temperature,
        report.sampling.max_tokens
    );
    let criteria: Vec<&String> = report.a.mean_scores.keys().collect();
    out.push_str("| variant | n |");
    for c in &criteria {
        out.push_str(&format!(" {c} |"));
    }
    out.push_str(" mean | success (≥ 4) |\n|---|---|");
    out.push_str(&"---|".repeat(criteria.len() + 2));
    out.push('\n');
    for summary in [&report.a, &report.b] {
        out.push_str(&format!("| {} | {} |", summary.variant, summary.n));
        for c in &criteria {
            let score = summary.mean_scores.get(*c).copied().unwrap_or(0.0);
            out.push_str(&format!(" {score:.2} |"));
        }
        out.push_str(&format!(
            " {:.2} | {:.1}% [{:.1}, {:.1}] |\n",
            summary.mean_overall,
            100.0 * summary.success_rate,
            100.0 * summary.success_ci95[0],
            100.0 * summary.success_ci95[1]
        ));
    }
    out.push_str(&format!(
        "\nPairwise: {} wins {}, {} wins {}, ties {} ({} from the two orders disagreeing), \
         unjudged {}.\n",
        report.a.variant,
        report.a_wins,
        report.b.variant,
        report.b_wins,
        report.ties,
        report.inconsistent,
        report.unjudged
    ));
    for item in &report.items {
        out.push_str(&format!(
            "\n## {}\n\n> {}\n\n| {} | {} |\n|---|---|\n| {} | {} |\n| {} | {} |\n\nOutcome: {:?}\n",
            item.id,
            item.prompt.replace('\n', "\n> "),
            report.a.variant,
            report.b.variant,
            table_cell(&item.answer_a),
            table_cell(&item.answer_b),
            score_cell(&item.scores_a),
            score_cell(&item.scores_b),
            item.outcome
        ));
    }
    out
}

fn table_cell(text: &str) -> String {
    text.trim().replace('|', "\\|").replace('\n', "<br>")
}

fn score_cell(scores: &Scores) -> String {
    if scores.is_empty() {
        return "unjudged".to_string();
    }
    scores
        .iter()
        .map(|(k, v)| format!("{k} {v:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(h: f64, t: f64, a: f64) -> Scores {
        [("helpfulness", h), ("task_adherence", a), ("tone", t)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    fn verdict(first: Scores, second: Scores, better: Shown) -> Verdict {
        Verdict {
            first,
            second,
            better,
        }
    }

    #[test]
    fn parses_json_wrapped_in_prose_and_refuses_out_of_range_scores() {
        let rubric = Rubric::default();
        let reply = "Sure! ```json\n{\"answer_1\": {\"helpfulness\": 4, \"tone\": \"5\", \
                     \"task_adherence\": 3}, \"answer_2\": {\"helpfulness\": 2, \"tone\": 2, \
                     \"task_adherence\": 1}, \"better\": \"1\"}\n``` {not json}";
        let v = parse_verdict(reply, &rubric).expect("verdict");
        assert_eq!(v.first, scores(4.0, 5.0, 3.0));
        assert_eq!(v.better, Shown::First);
        let bad = reply.replace("\"tone\": \"5\"", "\"tone\": 7");
        assert!(parse_verdict(&bad, &rubric).is_none());
        let missing = reply.replace("\"task_adherence\": 1", "\"other\": 1");
        assert!(parse_verdict(&missing, &rubric).is_none());
        assert!(parse_verdict("no json here", &rubric).is_none());
    }

    #[test]
    fn both_orders_must_agree_for_a_win() {
        let good = scores(5.0, 5.0, 5.0);
        let poor = scores(2.0, 3.0, 2.0);
        // A shown first and preferred; B shown first, A (second) preferred: A wins.
        let a_first = verdict(good.clone(), poor.clone(), Shown::First);
        let b_first = verdict(poor.clone(), good.clone(), Shown::Second);
        assert_eq!(outcome(Some(&a_first), Some(&b_first)), Outcome::AWins);
        // A judge that always prefers the first answer shown: the orders disagree, a tie.
        let biased = verdict(poor.clone(), good.clone(), Shown::First);
        assert_eq!(outcome(Some(&a_first), Some(&biased)), Outcome::Tie);
        assert_eq!(outcome(None, Some(&b_first)), Outcome::Tie);
        assert_eq!(outcome(None, None), Outcome::Unjudged);
        let (sa, sb) = combine_scores(Some(&a_first), Some(&biased));
        // In `biased`, B is shown first and A (shown second) still gets the good scores.
        assert_eq!(sa, good);
        assert_eq!(sb, poor);
    }

    #[test]
    fn summary_counts_successes_and_inconsistencies() {
        let settings = JudgeSettings {
            variant_a: "base".into(),
            variant_b: "teaching".into(),
            sampling: Sampling {
                temperature: 0.0,
                max_tokens: 64,
                seed: Some(1),
            },
            judge_model: "judge".into(),
            judge_sampling: Sampling {
                temperature: 0.0,
                max_tokens: 256,
                seed: Some(1),
            },
            attempts: 2,
            rubric: Rubric::default(),
        };
        let item = |id: &str, a: Scores, b: Scores, o: Outcome, inconsistent: bool| JudgedItem {
            id: id.into(),
            prompt: "q".into(),
            answer_a: "x | y\nz".into(),
            answer_b: "w".into(),
            a_first: Some(verdict(a.clone(), b.clone(), Shown::First)),
            b_first: Some(verdict(
                b.clone(),
                a.clone(),
                if inconsistent {
                    Shown::First
                } else {
                    Shown::Second
                },
            )),
            scores_a: a,
            scores_b: b,
            outcome: o,
        };
        let items = vec![
            item(
                "1",
                scores(4.0, 4.0, 4.0),
                scores(5.0, 5.0, 5.0),
                Outcome::AWins,
                false,
            ),
            item(
                "2",
                scores(3.0, 4.0, 4.0),
                scores(5.0, 5.0, 5.0),
                Outcome::Tie,
                true,
            ),
        ];
        let report = summarize(items, &settings);
        assert_eq!(report.a.n, 2);
        assert_eq!(report.a.success_rate, 0.5, "3.67 < 4 fails");
        assert_eq!(report.b.success_rate, 1.0);
        assert_eq!((report.a_wins, report.ties, report.inconsistent), (1, 1, 1));
        let md = markdown(&report);
        assert!(md.contains("| base | 2 |"), "{md}");
        assert!(md.contains("x \\| y<br>z"), "{md}");
    }

    #[test]
    fn prompt_sets_accept_prompts_questions_and_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"a\", \"prompt\": \"Explain osmosis.\"}\n\
             {\"question\": \"Q?\", \"reference\": \"R\"}\n\
             {\"id\": 3, \"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"u\"}]}\n",
        )
        .expect("write");
        let prompts = load_prompts(&path).expect("load");
        assert_eq!(prompts.len(), 3);
        assert_eq!(prompts[1].id, "2");
        assert_eq!(prompts[1].reference.as_deref(), Some("R"));
        assert_eq!(prompts[2].messages.len(), 2);
        std::fs::write(&path, "{\"id\": \"x\"}\n").expect("write");
        let err = load_prompts(&path).expect_err("no prompt").to_string();
        assert!(
            err.contains("p.jsonl:1") && err.contains("needs `prompt`"),
            "{err}"
        );
        let messages = judge_messages(&Rubric::default(), &prompts[1], "one", "two");
        assert!(messages[1]
            .content
            .contains("[Reference answer, worth a 5]\nR"));
        assert!(messages[0].content.contains("\"better\""));
    }
}
