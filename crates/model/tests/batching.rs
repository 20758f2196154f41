//! Heterogeneous batching: sequences with different adapters (and none), prefill chunks and
//! decode steps mixed in the same forward calls, must give the logits each gets alone.

mod common;

use common::*;
use switchboard_model::{ForwardMode, KvCache, LogitsWanted, LoraAdapter, SeqInput, Tensor};

/// One sequence of the schedule: which golden prompt, which adapter variant, and the sizes of
/// the token chunks it is fed, one chunk per forward call (0 = sits this call out).
struct Plan {
    prompt: usize,
    variant: &'static str,
    chunks: Vec<usize>,
}

#[test]
fn mixed_adapters_prefill_and_decode_in_one_batch() {
    let model = load_model("base");
    let adapter_a = load_adapter(&model, "adapter_a");
    let adapter_b = load_adapter(&model, "adapter_b");
    let adapter_of = |variant: &str| -> Option<&LoraAdapter> {
        match variant {
            "adapter_a" => Some(&adapter_a),
            "adapter_b" => Some(&adapter_b),
            _ => None,
        }
    };
    let expected = |variant: &str| Expected::load(variant);
    let goldens = [
        expected("base"),
        expected("adapter_a"),
        expected("adapter_b"),
    ];
    let golden_of = |variant: &str| match variant {
        "adapter_a" => &goldens[1],
        "adapter_b" => &goldens[2],
        _ => &goldens[0],
    };

    // Prompt lengths are 1, 7 and 33. Chunked prefills overlap other sequences' decodes; the
    // same adapter appears in two non-adjacent sequences; one sequence joins late.
    let plans = [
        Plan {
            prompt: 2,
            variant: "adapter_a",
            chunks: vec![10, 23, 1, 1, 1, 1, 1, 1],
        },
        Plan {
            prompt: 1,
            variant: "adapter_b",
            chunks: vec![7, 1, 1, 1, 1, 1, 1, 1],
        },
        Plan {
            prompt: 0,
            variant: "base",
            chunks: vec![1, 1, 1, 1, 1, 1, 1, 1],
        },
        Plan {
            prompt: 1,
            variant: "adapter_a",
            chunks: vec![3, 0, 4, 1, 1, 1, 1, 1],
        },
        Plan {
            prompt: 2,
            variant: "base",
            chunks: vec![0, 0, 33, 1, 1, 1, 1, 1],
        },
        Plan {
            prompt: 0,
            variant: "adapter_b",
            chunks: vec![1, 1, 0, 1, 1, 1, 1, 1],
        },
    ];
    let streams: Vec<Vec<u32>> = plans
        .iter()
        .map(|p| golden_of(p.variant).stream(p.prompt))
        .collect();
    let mut caches: Vec<KvCache> = plans.iter().map(|_| model.new_cache()).collect();
    let mut fed = vec![0usize; plans.len()];
    let mut batched: Vec<Vec<(usize, Tensor)>> = vec![Vec::new(); plans.len()];

    for step in 0..plans[0].chunks.len() {
        let mut members = Vec::new();
        let mut batch = Vec::new();
        for (i, cache) in caches.iter_mut().enumerate() {
            let n = plans[i].chunks[step];
            if n == 0 {
                continue;
            }
            members.push(i);
            batch.push(SeqInput {
                tokens: &streams[i][fed[i]..fed[i] + n],
                cache,
                adapter: adapter_of(plans[i].variant),
                // One sequence asks for every position, to cover mixed `LogitsWanted`.
                logits: if i == 3 {
                    LogitsWanted::All
                } else {
                    LogitsWanted::Last
                },
            });
        }
        let out = model
            .forward(&mut batch, ForwardMode::Inference)
            .expect("mixed forward");
        for (i, logits) in members.into_iter().zip(out) {
            let n = plans[i].chunks[step];
            let first = if i == 3 { fed[i] } else { fed[i] + n - 1 };
            for (row, position) in (first..fed[i] + n).enumerate() {
                batched[i].push((position, logits.get(row).expect("row")));
            }
            fed[i] += n;
        }
    }

    for (i, plan) in plans.iter().enumerate() {
        let golden = golden_of(plan.variant);
        // Against transformers + peft.
        for (position, logits) in &batched[i] {
            let diff = max_abs_diff(logits, &golden.logits_at(plan.prompt, *position));
            assert!(
                diff <= LOGITS_TOL,
                "seq {i} ({}) pos {position}: {diff}",
                plan.variant
            );
        }
        // Against the same sequence run alone, with the same chunks.
        let mut cache = model.new_cache();
        let mut offset = 0;
        let mut alone = Vec::new();
        for &n in plan.chunks.iter().filter(|&&n| n > 0) {
            let mut batch = [SeqInput {
                tokens: &streams[i][offset..offset + n],
                cache: &mut cache,
                adapter: adapter_of(plan.variant),
                logits: LogitsWanted::All,
            }];
            let logits = model
                .forward(&mut batch, ForwardMode::Inference)
                .expect("alone");
            for row in 0..n {
                alone.push((offset + row, logits[0].get(row).expect("row")));
            }
            offset += n;
        }
        // GEMMs of different heights sum in different orders: allow float noise (HF's own
        // batched-vs-unbatched gap is 1.3e-5), far below what any real bug causes (> 1e-2).
        for (position, logits) in &batched[i] {
            let (_, solo) = alone
                .iter()
                .find(|(p, _)| p == position)
                .expect("same positions");
            let diff = max_abs_diff(logits, solo);
            assert!(
                diff <= 5e-5,
                "seq {i} pos {position}: batched vs alone differ by {diff}"
            );
        }
    }
}

#[test]
fn forward_errors_leave_caches_untouched() {
    let model = load_model("base");
    let mut good = model.new_cache();
    let mut bad = model.new_cache();
    let prompt = [781u32, 1064, 1891];
    let vocab = model.config().vocab_size as u32;
    let out_of_vocab = [1u32, vocab];
    let mut batch = [
        SeqInput {
            tokens: &prompt,
            cache: &mut good,
            adapter: None,
            logits: LogitsWanted::Last,
        },
        SeqInput {
            tokens: &out_of_vocab,
            cache: &mut bad,
            adapter: None,
            logits: LogitsWanted::Last,
        },
    ];
    let err = model
        .forward(&mut batch, ForwardMode::Inference)
        .expect_err("token id past vocab");
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    assert_eq!((good.len(), bad.len()), (0, 0));

    let mut batch = [SeqInput {
        tokens: &[],
        cache: &mut good,
        adapter: None,
        logits: LogitsWanted::Last,
    }];
    assert!(
        model.forward(&mut batch, ForwardMode::Inference).is_err(),
        "empty sequence"
    );
    assert!(
        model.forward(&mut [], ForwardMode::Inference).is_err(),
        "empty batch"
    );

    // Past the context: refused, cache intact.
    let max = model.config().max_positions();
    let long = vec![5u32; max + 1];
    let mut batch = [SeqInput {
        tokens: &long,
        cache: &mut good,
        adapter: None,
        logits: LogitsWanted::Last,
    }];
    let err = model
        .forward(&mut batch, ForwardMode::Inference)
        .expect_err("too long");
    assert!(err.to_string().contains("max_position_embeddings"), "{err}");
    assert_eq!(good.len(), 0);
}

#[test]
fn cache_grows_and_truncates() {
    let model = load_model("base");
    let expected = Expected::load("base");
    let stream = expected.stream(2); // 33 prompt + 20 generated tokens
    let mut cache = model.new_cache();
    // Feed 40 tokens one by one (several buffer reallocations), then rewind to 33 and redo
    // the first decode step: the logits must be those of position 33 again.
    for (p, token) in stream.iter().take(40).enumerate() {
        let mut batch = [SeqInput {
            tokens: &[*token],
            cache: &mut cache,
            adapter: None,
            logits: LogitsWanted::Last,
        }];
        let logits = model
            .forward(&mut batch, ForwardMode::Inference)
            .expect("step")
            .remove(0);
        assert!(
            max_abs_diff(&logits, &expected.logits_at(2, p)) <= LOGITS_TOL,
            "position {p}"
        );
    }
    assert_eq!(cache.len(), 40);
    assert!(cache.capacity() >= 40);
    assert!(cache.allocated_bytes() > 0);
    cache.truncate(33);
    let mut batch = [SeqInput {
        tokens: &stream[33..34],
        cache: &mut cache,
        adapter: None,
        logits: LogitsWanted::Last,
    }];
    let logits = model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("step")
        .remove(0);
    assert!(max_abs_diff(&logits, &expected.logits_at(2, 33)) <= LOGITS_TOL);
}
