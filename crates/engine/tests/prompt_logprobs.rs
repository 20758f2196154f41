//! Prompt log-probabilities (what evaluation harnesses read through `echo`) on the golden tiny
//! model: they must be the log-softmax of the model's own logits at every prompt position, for
//! the base and for each adapter, whatever the batch and the chunking, and a token must get
//! the same log-probability whether it is generated or echoed back in a prompt.
#![allow(clippy::unwrap_used)]

mod common;

use common::Fixture;
use switchboard_engine::{
    Engine, EngineConfig, GenerateEvent, GenerateRequest, Prompt, PromptToken, SamplingParams,
};
use switchboard_model::{CausalLm, DType, Device, KvCache, LogitsWanted, LoraAdapter, SeqInput};

const TOLERANCE: f32 = 1e-4;
const TOP: usize = 5;
/// The base and the two golden adapters.
const VARIANTS: [Option<&str>; 3] = [None, Some("a"), Some("b")];

fn config(max_batched_tokens: usize) -> EngineConfig {
    EngineConfig {
        max_running_sequences: 8,
        max_batched_tokens,
        ..EngineConfig::default()
    }
}

fn prompt(tokenizer: &switchboard_engine::TextTokenizer) -> Vec<u32> {
    tokenizer
        .encode("The Roman republic ended after a long series of civil wars and the cell divides")
        .unwrap()
}

fn scored(prompt: Vec<u32>, adapter: Option<&str>, top: usize, n: usize) -> GenerateRequest {
    GenerateRequest::new(
        Prompt::Tokens(prompt),
        adapter,
        SamplingParams {
            prompt_logprobs: Some(top),
            n,
            ignore_eos: true,
            ..SamplingParams::greedy(2)
        },
    )
}

/// The log-softmax of every row of the model's logits over `prompt`, computed directly.
fn reference(model: &CausalLm, adapter: Option<&LoraAdapter>, prompt: &[u32]) -> Vec<Vec<f64>> {
    let mut cache = KvCache::new(model.config());
    let logits = model
        .forward(
            &mut [SeqInput {
                tokens: prompt,
                cache: &mut cache,
                adapter,
                logits: LogitsWanted::All,
            }],
            Default::default(),
        )
        .unwrap();
    let rows = logits[0].to_vec2::<f32>().unwrap();
    assert_eq!(rows.len(), prompt.len());
    rows.into_iter()
        .map(|row| {
            let row: Vec<f64> = row.into_iter().map(f64::from).collect();
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_z = max + row.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            row.into_iter().map(|l| l - log_z).collect()
        })
        .collect()
}

fn load_adapter(fixture: &Fixture, model: &CausalLm, name: Option<&str>) -> Option<LoraAdapter> {
    name.map(|name| {
        LoraAdapter::load(
            fixture.adapters.join(name),
            model.config(),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    })
}

fn prompt_logprobs(engine: &Engine, request: GenerateRequest) -> Vec<PromptToken> {
    let out = engine
        .submit_blocking(request)
        .unwrap()
        .collect_blocking()
        .unwrap();
    out.prompt_logprobs.expect("prompt logprobs were asked for")
}

fn max_abs_diff(a: &[PromptToken], b: &[PromptToken]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .filter_map(|(x, y)| Some((x.logprob? - y.logprob?).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn prompt_logprobs_are_the_log_softmax_of_every_position_for_base_and_adapters() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config(256));
    let (model, tokenizer) = fixture.model();
    let prompt = prompt(&tokenizer);
    // Submitted together, so the three variants share forward passes.
    let streams: Vec<_> = VARIANTS
        .iter()
        .map(|&variant| {
            engine
                .submit_blocking(scored(prompt.clone(), variant, TOP, 1))
                .unwrap()
        })
        .collect();
    for (stream, variant) in streams.into_iter().zip(VARIANTS) {
        let out = stream.collect_blocking().unwrap();
        assert_eq!(out.prompt_token_ids, prompt);
        let tokens = out.prompt_logprobs.unwrap();
        let adapter = load_adapter(&fixture, &model, variant);
        let expected = reference(&model, adapter.as_ref(), &prompt);

        assert_eq!(tokens.len(), prompt.len());
        assert_eq!(tokens.iter().map(|t| t.id).collect::<Vec<_>>(), prompt);
        assert_eq!(tokens[0].logprob, None, "nothing predicts the first token");
        assert!(tokens[0].top_logprobs.is_empty());
        for (i, token) in tokens.iter().enumerate().skip(1) {
            let row = &expected[i - 1];
            let want = row[token.id as usize] as f32;
            let got = token.logprob.unwrap();
            assert!(
                (got - want).abs() <= TOLERANCE,
                "{variant:?} position {i}: {got} vs {want}"
            );
            let mut order: Vec<u32> = (0..row.len() as u32).collect();
            order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            let top: Vec<u32> = token.top_logprobs.iter().map(|t| t.token).collect();
            assert_eq!(top, order[..TOP], "{variant:?} position {i}");
            for alt in &token.top_logprobs {
                assert!((alt.logprob - row[alt.token as usize] as f32).abs() <= TOLERANCE);
            }
        }
    }
}

#[test]
fn a_generated_token_gets_the_same_logprob_when_echoed_back() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config(256));
    let (_, tokenizer) = fixture.model();
    let prompt = tokenizer
        .encode("Enzymes speed up chemical reactions")
        .unwrap();
    for variant in VARIANTS {
        let generated = engine
            .submit_blocking(GenerateRequest::new(
                Prompt::Tokens(prompt.clone()),
                variant,
                SamplingParams {
                    logprobs: true,
                    ignore_eos: true,
                    ..SamplingParams::greedy(8)
                },
            ))
            .unwrap()
            .collect_blocking()
            .unwrap();
        let tokens = &generated.choices[0].tokens;
        assert_eq!(tokens.len(), 8);
        let mut echoed = prompt.clone();
        echoed.extend(tokens.iter().map(|t| t.id));
        let scored = prompt_logprobs(&engine, scored(echoed, variant, 0, 1));
        for (j, token) in tokens.iter().enumerate() {
            let as_prompt = &scored[prompt.len() + j];
            assert_eq!(as_prompt.id, token.id);
            let (g, p) = (token.logprob.unwrap(), as_prompt.logprob.unwrap());
            assert!(
                (g - p).abs() <= TOLERANCE,
                "{variant:?} token {j}: generated {g}, echoed {p}"
            );
            assert!(as_prompt.top_logprobs.is_empty(), "0 alternatives asked");
        }
    }
}

#[test]
fn chunked_prefill_scores_the_prompt_the_same_and_keeps_stats_right() {
    let fixture = Fixture::new(512);
    let (_, tokenizer) = fixture.model();
    let mut prompt = prompt(&tokenizer);
    prompt.extend(prompt.clone());
    prompt.extend(prompt.clone());
    let whole = fixture.engine(config(256));
    let expected = prompt_logprobs(&whole, scored(prompt.clone(), Some("b"), 3, 1));

    // 9 tokens per step: the prompt is prefilled over many steps.
    let chunked = fixture.engine(config(9));
    assert!(prompt.len() > 4 * 9);
    let mut stream = chunked
        .submit_blocking(scored(prompt.clone(), Some("b"), 3, 2))
        .unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.blocking_next() {
        events.push(event);
    }
    let GenerateEvent::PromptLogprobs { tokens } = &events[0] else {
        panic!("the scored prompt comes before any output: {:?}", events[0]);
    };
    let scored_events = events
        .iter()
        .filter(|e| matches!(e, GenerateEvent::PromptLogprobs { .. }))
        .count();
    assert_eq!(scored_events, 1, "sent once whatever n is");
    assert!(max_abs_diff(tokens, &expected) <= TOLERANCE);
    for (a, b) in tokens.iter().zip(&expected) {
        let ids = |t: &PromptToken| t.top_logprobs.iter().map(|x| x.token).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b));
    }
    let Some(GenerateEvent::Done { usage }) = events.last() else {
        panic!("ends with Done");
    };
    assert_eq!(usage.prompt_tokens, prompt.len());
    assert_eq!(usage.completion_tokens, 4);
    let stats = chunked.stats();
    assert_eq!(
        stats.prompt_tokens,
        2 * prompt.len() as u64,
        "each choice prefills"
    );
    assert_eq!(stats.generated_tokens, 4);
    assert_eq!(stats.finished_requests, 1);
}

#[test]
fn adapters_score_the_prompt_differently_from_the_base() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config(256));
    let (_, tokenizer) = fixture.model();
    let prompt = prompt(&tokenizer);
    let base = prompt_logprobs(&engine, scored(prompt.clone(), None, 0, 1));
    for adapter in ["a", "b"] {
        let tuned = prompt_logprobs(&engine, scored(prompt.clone(), Some(adapter), 0, 1));
        assert!(
            max_abs_diff(&base, &tuned) > 1e-3,
            "adapter {adapter} scores the prompt like the base"
        );
    }
}

#[test]
fn prompt_scoring_is_opt_in_and_a_one_token_prompt_has_one_entry() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config(256));
    let plain = engine
        .submit_blocking(GenerateRequest::new(
            Prompt::Text("The cell".into()),
            None,
            SamplingParams::greedy(2),
        ))
        .unwrap();
    assert_eq!(plain.prompt_token_ids.len(), plain.prompt_tokens);
    let ids = plain.prompt_token_ids.clone();
    let out = plain.collect_blocking().unwrap();
    assert_eq!(out.prompt_logprobs, None, "no scoring unless asked");
    assert_eq!(out.prompt_token_ids, ids);

    let one = prompt_logprobs(&engine, scored(vec![ids[0]], None, 2, 1));
    assert_eq!(
        one,
        vec![PromptToken {
            id: ids[0],
            logprob: None,
            top_logprobs: Vec::new()
        }]
    );
}

#[test]
fn a_stop_token_is_reported_with_its_logprob_but_adds_no_text() {
    // lm-evaluation-harness reads `token_logprobs[ctxlen:-1]` of an echo with max_tokens 1:
    // the last entry must be the generated token even when that token ends the choice.
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config(256));
    let (_, tokenizer) = fixture.model();
    let prompt = tokenizer.encode("The cell divides").unwrap();
    let free = engine
        .submit_blocking(GenerateRequest::new(
            Prompt::Tokens(prompt.clone()),
            None,
            SamplingParams {
                logprobs: true,
                ignore_eos: true,
                ..SamplingParams::greedy(1)
            },
        ))
        .unwrap()
        .collect_blocking()
        .unwrap();
    let first = free.choices[0].tokens[0].clone();
    let stopped = engine
        .submit_blocking(GenerateRequest::new(
            Prompt::Tokens(prompt),
            None,
            SamplingParams {
                logprobs: true,
                stop_token_ids: vec![first.id],
                ..SamplingParams::greedy(4)
            },
        ))
        .unwrap()
        .collect_blocking()
        .unwrap();
    let choice = &stopped.choices[0];
    assert_eq!(choice.text, "", "a stop token adds no text");
    assert_eq!(
        choice.finish_reason,
        Some(switchboard_engine::FinishReason::Stop)
    );
    assert_eq!(
        choice.tokens,
        vec![first],
        "the stop token keeps its logprob"
    );
    assert_eq!(stopped.usage.completion_tokens, 1);
}
