//! The bundled model, measured: load time and resident memory of the SmolLM2-135M-Instruct
//! Q4_1 GGUF, a 128-token prefill, and decode steps at batch 1 and 16 (128 tokens of context).
//!
//! * `cargo bench --bench bundled_model`: the real file; prints one line per measurement
//!   (median of the repetitions) in tokens per second.
//! * `cargo test --bench bundled_model`: one quick repetition on the tiny Llama GGUF fixture,
//!   so CI checks that the bench builds and runs.
//!
//! Weights are dequantized to f32 at load in this version; the numbers are what the server
//! computes with today.

use std::path::{Path, PathBuf};
use std::time::Instant;

use switchboard_model::{CausalLm, DType, Device, ForwardMode, KvCache, LogitsWanted, SeqInput};

const CONTEXT: usize = 128;

/// `VmRSS` and `VmHWM` (peak) of this process, in MiB (Linux).
fn resident_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn prompt(seed: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len)
        .map(|i| ((seed * 7919 + i * 104_729) % (vocab - 100) + 50) as u32)
        .collect()
}

fn run(model: &CausalLm, caches: &mut [KvCache], inputs: &[Vec<u32>]) {
    let mut batch: Vec<SeqInput> = caches
        .iter_mut()
        .zip(inputs)
        .map(|(cache, tokens)| SeqInput {
            tokens,
            cache,
            adapter: None,
            logits: LogitsWanted::Last,
        })
        .collect();
    model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("forward");
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (path, reps, steps): (PathBuf, usize, usize) = if bench_mode {
        let file = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
        (root.join(file), 5, 32)
    } else {
        (
            root.join("tests/fixtures/golden/llama/tiny_llama.q8_0.gguf"),
            1,
            2,
        )
    };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    println!("{} ({threads} threads)", path.display());

    let (rss_before, _) = resident_mib();
    let started = Instant::now();
    let model = CausalLm::load(&path, DType::F32, &Device::Cpu).expect("model loads");
    let load_s = started.elapsed().as_secs_f64();
    let (rss, peak) = resident_mib();
    println!(
        "load {load_s:.2} s, resident {:.0} MiB (model {:.0} MiB), peak {peak:.0} MiB",
        rss,
        rss - rss_before
    );

    let vocab = model.config().vocab_size;
    let prompts: Vec<Vec<u32>> = (0..16).map(|s| prompt(s, CONTEXT, vocab)).collect();
    let mut caches: Vec<KvCache> = (0..16).map(|_| model.new_cache()).collect();

    let times = (0..reps)
        .map(|_| {
            caches[0].truncate(0);
            let t = Instant::now();
            run(&model, &mut caches[..1], &prompts[..1]);
            t.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "prefill {CONTEXT} tokens: {:.1} tok/s",
        CONTEXT as f64 / median(times)
    );

    for c in caches.iter_mut().skip(1) {
        c.truncate(0);
    }
    run(&model, &mut caches[1..], &prompts[1..]);
    for batch in [1usize, 16] {
        let times = (0..reps)
            .map(|r| {
                let t = Instant::now();
                for step in 0..steps {
                    let next: Vec<Vec<u32>> = (0..batch)
                        .map(|s| prompt(s * 64 + r * 8 + step, 1, vocab))
                        .collect();
                    run(&model, &mut caches[..batch], &next);
                }
                let elapsed = t.elapsed().as_secs_f64();
                caches.iter_mut().for_each(|c| c.truncate(CONTEXT));
                elapsed
            })
            .collect();
        let tok_s = (batch * steps) as f64 / median(times);
        println!("decode batch {batch:>2} at {CONTEXT} context: {tok_s:.1} tok/s");
    }
}
