//! The engine end to end on the golden tiny model: continuous batching across adapters,
//! sampling, stop strings, logprobs, cancellation, back-pressure and adapter hot swaps.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{golden, golden_generations, greedy, wait_for, Fixture};
use switchboard_engine::{
    ChatMessage, EngineConfig, EngineError, FinishReason, GenerateEvent, GenerateRequest, Prompt,
    SamplingParams, StopMatch,
};
use switchboard_model::{KvCache, LogitsWanted, SeqInput};

const PROMPTS: [&str; 8] = [
    "The cell",
    "Enzymes speed up chemical reactions by lowering",
    "In 1066 the Normans",
    "A buffer overflow happens when",
    "Explain variance to a student:",
    "Mitochondria",
    "The Roman republic ended after a long series of civil wars and",
    "Hash functions",
];

fn config() -> EngineConfig {
    EngineConfig {
        max_running_sequences: 16,
        // Small, so long prompts are prefilled in chunks beside other sequences' decodes.
        max_batched_tokens: 24,
        ..EngineConfig::default()
    }
}

#[test]
fn greedy_output_matches_transformers_for_base_and_adapters() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    for (variant, adapter) in [
        ("base", None),
        ("adapter_a", Some("a")),
        ("adapter_b", Some("b")),
    ] {
        for (prompt, expected) in golden_generations(variant) {
            let request = GenerateRequest::new(
                Prompt::Tokens(prompt.clone()),
                adapter,
                SamplingParams {
                    ignore_eos: true,
                    ..SamplingParams::greedy(expected.len())
                },
            );
            let out = engine
                .submit_blocking(request)
                .unwrap()
                .collect_blocking()
                .unwrap();
            assert_eq!(out.choices[0].token_ids(), expected, "{variant} {prompt:?}");
            assert_eq!(out.choices[0].finish_reason, Some(FinishReason::Length));
            assert_eq!(out.usage.prompt_tokens, prompt.len());
            assert_eq!(out.usage.completion_tokens, expected.len());
        }
    }
}

#[test]
fn sixteen_concurrent_requests_over_four_adapters_match_each_alone() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let adapters = [None, Some("a"), Some("b"), Some("c"), Some("d")];
    let requests: Vec<_> = (0..16)
        .map(|i| {
            greedy(
                PROMPTS[i % PROMPTS.len()],
                adapters[i % adapters.len()],
                12 + i,
            )
        })
        .collect();
    let alone: Vec<Vec<u32>> = requests
        .iter()
        .map(|r| {
            let out = engine
                .submit_blocking(r.clone())
                .unwrap()
                .collect_blocking()
                .unwrap();
            out.choices[0].token_ids()
        })
        .collect();
    // Different adapters must actually change the output, or this test proves nothing.
    // Requests 0 and 8 share a prompt; 0 runs on the base, 8 on adapter `c`.
    assert_ne!(alone[0][..12], alone[8][..12]);

    let streams: Vec<_> = requests
        .iter()
        .map(|r| engine.submit_blocking(r.clone()).unwrap())
        .collect();
    let together: Vec<Vec<u32>> = streams
        .into_iter()
        .map(|s| s.collect_blocking().unwrap().choices[0].token_ids())
        .collect();
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(
            a,
            t,
            "request {i} ({:?}) differs when batched",
            adapters[i % 5]
        );
    }
    let stats = engine.stats();
    assert_eq!(stats.finished_requests, 32);
    assert_eq!(stats.kv_reserved_tokens, 0);
}

#[test]
fn seeded_sampling_is_reproducible_under_concurrency() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let sampled = |seed: u64| {
        GenerateRequest::new(
            Prompt::Text("The cell".into()),
            Some("a"),
            SamplingParams {
                temperature: 0.9,
                top_p: 0.95,
                top_k: 50,
                seed: Some(seed),
                max_tokens: Some(24),
                ignore_eos: true,
                ..SamplingParams::default()
            },
        )
    };
    let alone = engine
        .submit_blocking(sampled(7))
        .unwrap()
        .collect_blocking()
        .unwrap();
    let other_seed = engine
        .submit_blocking(sampled(8))
        .unwrap()
        .collect_blocking()
        .unwrap();
    assert_ne!(alone.choices[0].tokens, other_seed.choices[0].tokens);

    // The same request among unseeded neighbours, submitted in the middle of them.
    let mut noise = Vec::new();
    for (i, prompt) in PROMPTS.iter().enumerate() {
        let params = SamplingParams {
            temperature: 1.0,
            max_tokens: Some(30),
            ignore_eos: true,
            ..SamplingParams::default()
        };
        let adapter = ["b", "c", "d"][i % 3];
        let request = GenerateRequest::new(Prompt::Text(prompt.to_string()), Some(adapter), params);
        noise.push(engine.submit_blocking(request).unwrap());
        if i == 3 {
            noise.push(engine.submit_blocking(sampled(7)).unwrap());
        }
    }
    let outputs: Vec<_> = noise
        .into_iter()
        .map(|s| s.collect_blocking().unwrap())
        .collect();
    assert_eq!(outputs[4].choices[0].tokens, alone.choices[0].tokens);
}

#[test]
fn stop_strings_match_across_token_boundaries_and_are_not_returned() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let (_, tokenizer) = fixture.model();
    let full = engine
        .submit_blocking(greedy("In 1066 the Normans", Some("b"), 40))
        .unwrap()
        .collect_blocking()
        .unwrap();
    let text = &full.choices[0].text;
    let ids = full.choices[0].token_ids();

    // A stop string made of the end of one token's text and the start of the next one's.
    let pieces: Vec<String> = ids
        .iter()
        .map(|&id| tokenizer.decode(&[id], true).unwrap())
        .collect();
    let boundary = (5..pieces.len() - 1)
        .find(|&i| {
            let ok = |s: &str| s.len() >= 2 && s.is_ascii();
            ok(&pieces[i]) && ok(&pieces[i + 1])
        })
        .expect("two ASCII tokens in a row");
    let (left, right) = (&pieces[boundary], &pieces[boundary + 1]);
    let stop = format!("{}{}", &left[left.len() - 2..], &right[..2]);
    let cut = text
        .find(&stop)
        .expect("the stop string occurs in the text");

    let request = GenerateRequest::new(
        Prompt::Text("In 1066 the Normans".into()),
        Some("b"),
        SamplingParams {
            stop: vec!["a string that never occurs".into(), stop.clone()],
            ignore_eos: true,
            ..SamplingParams::greedy(40)
        },
    );
    let out = engine
        .submit_blocking(request)
        .unwrap()
        .collect_blocking()
        .unwrap();
    let choice = &out.choices[0];
    assert_eq!(choice.text, text[..cut], "stop string {stop:?}");
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert_eq!(choice.stop, Some(StopMatch::String(stop)));
    assert!(out.usage.completion_tokens < 40);
}

#[test]
fn stop_token_ids_and_eos_end_generation() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let full = engine
        .submit_blocking(greedy("Hash functions", None, 20))
        .unwrap()
        .collect_blocking()
        .unwrap();
    let ids = full.choices[0].token_ids();
    let request = GenerateRequest::new(
        Prompt::Text("Hash functions".into()),
        None,
        SamplingParams {
            stop_token_ids: vec![ids[4]],
            ignore_eos: true,
            ..SamplingParams::greedy(20)
        },
    );
    let out = engine
        .submit_blocking(request)
        .unwrap()
        .collect_blocking()
        .unwrap();
    let first = ids.iter().position(|&t| t == ids[4]).unwrap();
    // The stop token is the last output token (as in vLLM) but adds no text.
    assert_eq!(out.choices[0].token_ids(), ids[..=first]);
    assert_eq!(out.choices[0].stop, Some(StopMatch::Token(ids[4])));
    assert_eq!(
        out.usage.completion_tokens,
        first + 1,
        "the stop token is counted"
    );

    // EOS (forced with logit_bias) ends generation unless ignore_eos.
    let eos = 1999;
    let forced = |ignore_eos| {
        let params = SamplingParams {
            logit_bias: [(eos, 100.0)].into(),
            ignore_eos,
            ..SamplingParams::greedy(5)
        };
        let request = GenerateRequest::new(Prompt::Text("Hash".into()), None, params);
        engine
            .submit_blocking(request)
            .unwrap()
            .collect_blocking()
            .unwrap()
    };
    let stopped = forced(false);
    assert_eq!(stopped.choices[0].token_ids(), vec![eos]);
    assert_eq!(stopped.choices[0].text, "");
    assert_eq!(stopped.choices[0].stop, Some(StopMatch::Token(eos)));
    let ignored = forced(true);
    assert_eq!(ignored.choices[0].token_ids(), vec![eos; 5]);
    assert_eq!(ignored.choices[0].finish_reason, Some(FinishReason::Length));
}

#[test]
fn n_choices_share_the_prompt_and_sum_their_usage() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let request = |temperature: f32| {
        GenerateRequest::new(
            Prompt::Chat(vec![ChatMessage::new("user", "What is a cell?")]),
            Some("c"),
            SamplingParams {
                n: 2,
                temperature,
                seed: Some(3),
                max_tokens: Some(16),
                ignore_eos: true,
                ..SamplingParams::default()
            },
        )
    };
    let sampled = engine
        .submit_blocking(request(1.0))
        .unwrap()
        .collect_blocking()
        .unwrap();
    assert_eq!(sampled.choices.len(), 2);
    assert_ne!(sampled.choices[0].tokens, sampled.choices[1].tokens);
    assert_eq!(sampled.usage.completion_tokens, 32);
    let again = engine
        .submit_blocking(request(1.0))
        .unwrap()
        .collect_blocking()
        .unwrap();
    assert_eq!(again, sampled, "seeded n=2 is reproducible");

    let greedy = engine
        .submit_blocking(request(0.0))
        .unwrap()
        .collect_blocking()
        .unwrap();
    assert_eq!(greedy.choices[0].tokens, greedy.choices[1].tokens);
    assert!(greedy
        .choices
        .iter()
        .all(|c| c.finish_reason == Some(FinishReason::Length)));
}

#[test]
fn logprobs_are_the_log_softmax_of_the_model_logits() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let (model, tokenizer) = fixture.model();
    let adapter = switchboard_model::LoraAdapter::load(
        fixture.adapters.join("a"),
        model.config(),
        switchboard_model::DType::F32,
        &switchboard_model::Device::Cpu,
    )
    .unwrap();
    let prompt = tokenizer.encode("Enzymes speed up").unwrap();
    let request = GenerateRequest::new(
        Prompt::Tokens(prompt.clone()),
        Some("a"),
        SamplingParams {
            logprobs: true,
            top_logprobs: 5,
            temperature: 0.7,
            seed: Some(11),
            ..SamplingParams::greedy(6)
        },
    );
    let out = engine
        .submit_blocking(request)
        .unwrap()
        .collect_blocking()
        .unwrap();
    let mut context = prompt.clone();
    for token in &out.choices[0].tokens {
        let mut cache = KvCache::new(model.config());
        let logits = model
            .forward(
                &mut [SeqInput {
                    tokens: &context,
                    cache: &mut cache,
                    adapter: Some(&adapter),
                    logits: LogitsWanted::Last,
                }],
                Default::default(),
            )
            .unwrap();
        let logits: Vec<f64> = logits[0]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let log_z = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        let logprob = |id: u32| (logits[id as usize] - log_z) as f32;
        assert!((token.logprob.unwrap() - logprob(token.id)).abs() < 1e-4);
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        let top: Vec<u32> = token.top_logprobs.iter().map(|t| t.token).collect();
        assert_eq!(top, order[..5]);
        for t in &token.top_logprobs {
            assert!((t.logprob - logprob(t.token)).abs() < 1e-4);
        }
        context.push(token.id);
    }
}

#[test]
fn a_long_prompt_is_prefilled_in_chunks_while_others_keep_decoding() {
    let fixture = Fixture::new(4096);
    let engine = fixture.engine(config()); // 24 tokens per step
    let mut decoding = engine
        .submit_blocking(greedy("The cell", None, 2000))
        .unwrap();
    assert!(decoding.blocking_next().is_some());
    while decoding.try_next().is_some() {}

    let long_prompt = Prompt::Tokens((0..480).map(|i| (i * 7 % 1997) as u32).collect());
    let request = GenerateRequest::new(long_prompt, None, SamplingParams::greedy(1));
    let mut long = engine.submit_blocking(request).unwrap();
    assert!(matches!(
        long.blocking_next(),
        Some(GenerateEvent::Delta { .. })
    ));
    let mut decoded_meanwhile = 0;
    while let Some(event) = decoding.try_next() {
        if let GenerateEvent::Delta { tokens, .. } = event {
            decoded_meanwhile += tokens.len();
        }
    }
    // 480 prompt tokens take at least 480 / 23 steps, each with a decode of the first request.
    assert!(
        decoded_meanwhile >= 20,
        "only {decoded_meanwhile} tokens decoded meanwhile"
    );
}

#[test]
fn dropping_a_stream_cancels_the_request_and_frees_its_slot() {
    let fixture = Fixture::new(32768);
    let engine = fixture.engine(config());
    let mut stream = engine
        .submit_blocking(greedy("The cell", Some("a"), 30000))
        .unwrap();
    assert!(matches!(
        stream.blocking_next(),
        Some(GenerateEvent::Delta { .. })
    ));
    let busy = wait_for(&engine, "the request to run", |s| s.running_sequences == 1);
    assert!(busy.kv_reserved_tokens > 30000);
    drop(stream);
    let freed = wait_for(&engine, "the slot to be freed", |s| {
        s.running_sequences == 0 && s.kv_reserved_tokens == 0
    });
    assert_eq!(freed.cancelled_requests, 1);
    assert_eq!(freed.finished_requests, 0);
    assert_eq!(freed.kv_allocated_bytes, 0);
    // The engine keeps serving.
    let out = engine
        .submit_blocking(greedy("The cell", None, 3))
        .unwrap()
        .collect_blocking()
        .unwrap();
    assert_eq!(out.usage.completion_tokens, 3);
}

#[test]
fn a_full_queue_refuses_with_overloaded() {
    let fixture = Fixture::new(32768);
    let engine = fixture.engine(EngineConfig {
        max_running_sequences: 1,
        max_waiting_requests: 1,
        ..config()
    });
    let running = engine
        .submit_blocking(greedy("The cell", None, 30000))
        .unwrap();
    wait_for(&engine, "admission", |s| {
        s.running_requests == 1 && s.waiting_requests == 0
    });
    let waiting = engine
        .submit_blocking(greedy("Mitochondria", None, 4))
        .unwrap();
    match engine.submit_blocking(greedy("Hash functions", None, 4)) {
        Err(EngineError::Overloaded { waiting }) => assert_eq!(waiting, 1),
        other => panic!("expected Overloaded, got {other:?}"),
    }
    // Cancelling the long request lets the waiting one run.
    drop(running);
    let out = waiting.collect_blocking().unwrap();
    assert_eq!(out.usage.completion_tokens, 4);
    wait_for(&engine, "an empty queue", |s| s.waiting_requests == 0);
    assert!(engine
        .submit_blocking(greedy("Hash functions", None, 4))
        .is_ok());
}

#[test]
fn kv_budget_makes_requests_wait_instead_of_over_committing() {
    let fixture = Fixture::new(512);
    let bytes_per_token = 2 * 2 * 2 * 16 * 4; // layers, k+v, kv heads, head dim, f32
    let engine = fixture.engine(EngineConfig {
        kv_cache_bytes: 100 * bytes_per_token,
        ..config()
    });
    assert_eq!(engine.stats().kv_budget_tokens, 100);
    // Each request reserves 2 + 40 positions: two fit, the third waits for one to finish.
    let streams: Vec<_> = (0..4)
        .map(|_| {
            engine
                .submit_blocking(greedy("The cell", None, 40))
                .unwrap()
        })
        .collect();
    let mut peak = 0;
    while engine.stats().finished_requests < 4 {
        let stats = engine.stats();
        assert!(stats.kv_reserved_tokens <= 100, "{stats:?}");
        peak = peak.max(stats.running_requests);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(peak <= 2);
    let outs: Vec<_> = streams
        .into_iter()
        .map(|s| s.collect_blocking().unwrap())
        .collect();
    assert!(outs.windows(2).all(|w| w[0] == w[1]));
    match engine.submit_blocking(greedy("The cell", None, 200)) {
        Err(EngineError::KvBudgetExceeded {
            budget_tokens: 100, ..
        }) => {}
        other => panic!("expected KvBudgetExceeded, got {other:?}"),
    }
}

#[test]
fn unload_and_replace_during_a_request() {
    let fixture = Fixture::new(4096);
    let engine = fixture.engine(config());
    let registry = engine.registry();
    let alone_a = engine
        .submit_blocking(greedy("The cell", Some("a"), 300))
        .unwrap()
        .collect_blocking()
        .unwrap();

    // Replace `a` with b's weights while a request on `a` runs: it keeps generation 1.
    let mut stream = engine
        .submit_blocking(greedy("The cell", Some("a"), 300))
        .unwrap();
    assert_eq!(stream.adapter.as_ref().unwrap().generation, 1);
    let mut events = vec![stream.blocking_next().unwrap()];
    match registry.load("a", &fixture.adapters.join("b"), Some(7)) {
        Err(EngineError::GenerationMismatch {
            expected: 7,
            actual: 1,
            ..
        }) => {}
        other => panic!("expected GenerationMismatch, got {other:?}"),
    }
    let info = registry
        .load("a", &fixture.adapters.join("b"), Some(1))
        .unwrap();
    assert_eq!(info.generation, 2);
    while let Some(event) = stream.blocking_next() {
        events.push(event);
    }
    assert!(matches!(events.last(), Some(GenerateEvent::Done { .. })));
    let in_flight: Vec<u32> = events
        .iter()
        .flat_map(|e| match e {
            GenerateEvent::Delta { tokens, .. } => tokens.iter().map(|t| t.id).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        in_flight,
        alone_a.choices[0].token_ids(),
        "kept the old version"
    );
    let after = engine
        .submit_blocking(greedy("The cell", Some("a"), 20))
        .unwrap();
    assert_eq!(after.adapter.as_ref().unwrap().generation, 2);
    let b = engine
        .submit_blocking(greedy("The cell", Some("b"), 20))
        .unwrap()
        .collect_blocking()
        .unwrap();
    assert_eq!(
        after.collect_blocking().unwrap().choices[0].tokens,
        b.choices[0].tokens
    );

    // Unload `c` while a request on it runs: the request finishes, the next one is refused.
    let running = engine
        .submit_blocking(greedy("Mitochondria", Some("c"), 300))
        .unwrap();
    registry.unload("c").unwrap();
    let out = running.collect_blocking().unwrap();
    assert_eq!(out.usage.completion_tokens, 300);
    match engine.submit_blocking(greedy("Mitochondria", Some("c"), 5)) {
        Err(EngineError::AdapterNotFound(name)) => assert_eq!(name, "c"),
        other => panic!("expected AdapterNotFound, got {other:?}"),
    }
    let stats = registry.info("a").unwrap().stats;
    assert!(
        stats.requests >= 3 && stats.generated_tokens >= 600,
        "{stats:?}"
    );
}

#[test]
fn invalid_requests_are_refused_with_typed_errors() {
    let fixture = Fixture::new(64);
    let engine = fixture.engine(config());
    let submit = |prompt: Prompt, adapter: Option<&str>, params: SamplingParams| {
        engine.submit_blocking(GenerateRequest::new(prompt, adapter, params))
    };
    let text = || Prompt::Text("The cell".into());
    let long = Prompt::Tokens(vec![42; 64]);
    assert!(matches!(
        submit(long, None, SamplingParams::default()),
        Err(EngineError::ContextLengthExceeded {
            prompt_tokens: 64,
            max_model_len: 64,
            ..
        })
    ));
    assert!(matches!(
        submit(text(), None, SamplingParams::greedy(63)),
        Err(EngineError::ContextLengthExceeded { max_tokens: 63, .. })
    ));
    assert!(matches!(
        submit(text(), Some("nope"), SamplingParams::default()),
        Err(EngineError::AdapterNotFound(_))
    ));
    for (prompt, param) in [
        (Prompt::Tokens(vec![]), "prompt"),
        (Prompt::Tokens(vec![2000]), "prompt"),
        (Prompt::Text(String::new()), "prompt"),
        (Prompt::Chat(vec![]), "messages"),
    ] {
        match submit(prompt, None, SamplingParams::default()) {
            Err(EngineError::InvalidParam { param: p, .. }) => assert_eq!(p, param),
            other => panic!("expected InvalidParam({param}), got {other:?}"),
        }
    }
    let too_many = SamplingParams {
        n: 17,
        ..SamplingParams::default()
    };
    assert!(matches!(
        submit(text(), None, too_many),
        Err(EngineError::InvalidParam { param: "n", .. })
    ));
    let temperature = SamplingParams {
        temperature: -1.0,
        ..SamplingParams::default()
    };
    assert!(matches!(
        submit(text(), None, temperature),
        Err(EngineError::InvalidParam {
            param: "temperature",
            ..
        })
    ));
    // Without max_tokens a request may fill the rest of the context.
    let out = submit(
        text(),
        None,
        SamplingParams {
            ignore_eos: true,
            temperature: 0.0,
            ..SamplingParams::default()
        },
    )
    .unwrap()
    .collect_blocking()
    .unwrap();
    assert_eq!(out.usage.total_tokens(), 64);
    assert_eq!(out.choices[0].finish_reason, Some(FinishReason::Length));
}

#[test]
fn chat_prompts_use_the_model_template() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden().join("tokenize.json")).unwrap())
            .unwrap();
    for case in cases["chat_template_cases"].as_array().unwrap() {
        if case["add_generation_prompt"] != true {
            continue;
        }
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
        let stream = engine
            .submit_blocking(GenerateRequest::new(
                Prompt::Chat(messages),
                None,
                SamplingParams::greedy(1),
            ))
            .unwrap();
        assert_eq!(stream.prompt_tokens, case["ids"].as_array().unwrap().len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_submission_streams_deltas_then_done() {
    let fixture = Fixture::new(512);
    let engine = fixture.engine(config());
    let mut stream = engine
        .submit(greedy("The cell", Some("d"), 8))
        .await
        .unwrap();
    let mut tokens = 0;
    let mut finished = false;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .unwrap();
        match event {
            Some(GenerateEvent::Delta { tokens: t, .. }) => {
                assert!(!finished);
                tokens += t.len();
            }
            Some(GenerateEvent::Finished { reason, .. }) => {
                assert_eq!(reason, FinishReason::Length);
                finished = true;
            }
            Some(GenerateEvent::Done { usage }) => {
                assert!(finished);
                assert_eq!(usage.completion_tokens, 8);
                break;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(tokens, 8);
    assert!(stream.next().await.is_none());
    engine.shutdown();
    assert!(matches!(
        engine.submit(greedy("The cell", None, 2)).await,
        Err(EngineError::Shutdown)
    ));
    assert!(engine.stats().stopped);
}
