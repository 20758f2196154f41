//! Whole training runs on the tiny model: learning, recall, resume, export, errors.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use switchboard_engine::{ChatMessage, TextTokenizer};
use switchboard_model::{CausalLm, ForwardMode, LogitsWanted, LoraAdapter, SeqInput};
use switchboard_train::{
    greedy_decode, train, LogRecord, Method, Renderer, Silent, TrainConfig, TrainSummary,
};

use crate::common::{quick_config, tiny_model, write_qa, QA};

fn train_losses(summary: &TrainSummary) -> Vec<f64> {
    summary
        .history
        .iter()
        .filter_map(|r| match r {
            LogRecord::Train(s) => Some(s.loss),
            LogRecord::Val(_) => None,
        })
        .collect()
}

fn run(config: &TrainConfig, method: Method) -> TrainSummary {
    train(config, method, &mut Silent).unwrap_or_else(|e| panic!("training failed: {e}"))
}

fn last_logits(model: &CausalLm, adapter: Option<&LoraAdapter>, tokens: &[u32]) -> Tensor {
    let mut cache = model.new_cache();
    let mut batch = [SeqInput {
        tokens,
        cache: &mut cache,
        adapter,
        logits: LogitsWanted::Last,
    }];
    model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("forward")
        .remove(0)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("diff")
}

#[test]
fn loss_falls_on_mixed_datasets_with_validation_log_and_plot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let qa = dir.path().join("qa.jsonl");
    write_qa(&qa);
    let text = dir.path().join("notes.jsonl");
    let lines: String = QA
        .iter()
        .map(|(q, a)| serde_json::json!({"text": format!("{q} {a}.")}).to_string() + "\n")
        .collect();
    std::fs::write(&text, lines).expect("write text data");
    let out = dir.path().join("adapter");
    let mut config = quick_config(&qa, &out);
    config.data = vec![
        format!("facts={}", qa.display()),
        text.display().to_string(),
    ];
    config.mix = "facts=0.7,notes=0.3".into();
    config.val_fraction = 0.1;
    config.eval_every = 5;
    config.epochs = 5;
    let summary = run(&config, Method::Lora);
    let losses = train_losses(&summary);
    assert_eq!(losses.len(), summary.total_steps);
    assert!(summary.completed);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let (first, last) = (mean(&losses[..3]), mean(&losses[losses.len() - 3..]));
    assert!(last < 0.7 * first, "loss did not fall enough: {losses:?}");
    assert!(summary.final_val_loss.is_some(), "validation ran");

    let log = std::fs::read_to_string(out.join("train_log.jsonl")).expect("log");
    let records: Vec<LogRecord> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    assert_eq!(records, summary.history, "the log holds the history");
    assert!(records.iter().any(|r| matches!(r, LogRecord::Val(_))));
    let png = std::fs::read(out.join("loss.png")).expect("plot");
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn adapter_trained_on_twenty_qa_pairs_recalls_the_answers_after_loading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let qa = dir.path().join("qa.jsonl");
    write_qa(&qa);
    let out = dir.path().join("facts");
    let mut config = quick_config(&qa, &out);
    config.epochs = 30;
    config.r = 16;
    config.lora_alpha = 32.0;
    config.lora_dropout = 0.05;
    let summary = run(&config, Method::Lora);
    eprintln!(
        "{} steps, final loss {:?}, {:.0} tokens/s",
        summary.total_steps, summary.final_loss, summary.tokens_per_s
    );

    // The PEFT files on disk, loaded the way the server hot-loads adapters.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).expect("config"))
            .expect("json");
    assert_eq!(saved["peft_type"], "LORA");
    assert_eq!(saved["task_type"], "CAUSAL_LM");
    assert_eq!(saved["r"], 16);
    assert_eq!(saved["use_rslora"], false);
    assert!(saved["base_model_name_or_path"].is_string());
    let model = CausalLm::load(tiny_model(), DType::F32, &Device::Cpu).expect("base");
    let adapter =
        LoraAdapter::load(&out, model.config(), DType::F32, &Device::Cpu).expect("load adapter");
    assert_eq!(adapter.name(), "facts");
    let tensors =
        candle_core::safetensors::load(out.join("adapter_model.safetensors"), &Device::Cpu)
            .expect("weights");
    assert!(tensors.contains_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    assert_eq!(tensors.len(), 2 * 7 * model.config().num_hidden_layers);

    let tokenizer = TextTokenizer::from_dir(&tiny_model()).expect("tokenizer");
    let stop: BTreeSet<u32> = tokenizer.eos_token_ids().clone();
    let renderer = Renderer::new(tokenizer, 512);
    let mut correct = 0;
    let mut changed = false;
    for (question, answer) in QA {
        let prompt = renderer
            .prompt_tokens(&[ChatMessage::new("user", question)])
            .expect("prompt");
        let ids = greedy_decode(&model, Some(&adapter), &prompt, 16, &stop).expect("decode");
        let text = renderer.tokenizer().decode(&ids, true).expect("text");
        if text.trim() == answer {
            correct += 1;
        } else {
            eprintln!("{question:?}: expected {answer:?}, got {text:?}");
        }
        let base = last_logits(&model, None, &prompt);
        let tuned = last_logits(&model, Some(&adapter), &prompt);
        changed |= max_abs_diff(&base, &tuned) > 1e-2;
    }
    assert!(
        changed,
        "the loaded adapter does not change the model's output"
    );
    assert!(
        correct >= 18,
        "exact-match recall {correct}/20 is below 90%"
    );
}

#[test]
fn resumed_run_reproduces_the_uninterrupted_one_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let qa = dir.path().join("qa.jsonl");
    write_qa(&qa);
    let config = |out: &Path| TrainConfig {
        batch_size: 2,
        grad_accum: 2,
        epochs: 2,
        lora_dropout: 0.1,
        save_every: 3,
        keep_checkpoints: 2,
        ..quick_config(&qa, out)
    };
    let whole = run(&config(&dir.path().join("whole")), Method::Lora);

    let split_out = dir.path().join("split");
    let first = run(
        &TrainConfig {
            stop_after_steps: Some(7),
            ..config(&split_out)
        },
        Method::Lora,
    );
    assert!(!first.completed && first.steps_done == 7);
    assert!(
        !split_out.join("adapter_model.safetensors").exists(),
        "no export before the end"
    );
    let checkpoints: Vec<_> = std::fs::read_dir(split_out.join("checkpoints"))
        .expect("dir")
        .collect();
    assert_eq!(checkpoints.len(), 2, "older checkpoints are pruned");

    // Resuming with other settings is refused, naming the setting.
    let err = train(
        &TrainConfig {
            resume: Some("latest".into()),
            lr: 5e-3,
            ..config(&split_out)
        },
        Method::Lora,
        &mut Silent,
    )
    .expect_err("different lr");
    assert!(err.to_string().contains("`lr`"), "{err}");

    let resumed = run(
        &TrainConfig {
            resume: Some("latest".into()),
            ..config(&split_out)
        },
        Method::Lora,
    );
    assert!(resumed.completed);
    assert_eq!(
        train_losses(&resumed),
        train_losses(&whole),
        "losses differ after resuming"
    );
    let load = |out: &Path| -> HashMap<String, Tensor> {
        candle_core::safetensors::load(out.join("adapter_model.safetensors"), &Device::Cpu)
            .expect("weights")
    };
    let (a, b) = (load(&dir.path().join("whole")), load(&split_out));
    for (name, tensor) in &a {
        assert_eq!(max_abs_diff(tensor, &b[name]), 0.0, "{name} differs");
    }
}

#[test]
fn full_fine_tune_writes_a_loadable_checkpoint_that_differs_from_the_base() {
    let dir = tempfile::tempdir().expect("tempdir");
    let qa = dir.path().join("qa.jsonl");
    write_qa(&qa);
    let out = dir.path().join("full");
    let config = TrainConfig {
        epochs: 1,
        lr: 1e-3,
        ..quick_config(&qa, &out)
    };
    let summary = run(&config, Method::Full);
    let losses = train_losses(&summary);
    assert!(losses[losses.len() - 1] < losses[0], "{losses:?}");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let base = CausalLm::load(tiny_model(), DType::F32, &Device::Cpu).expect("base");
    let tuned =
        CausalLm::load(&out, DType::F32, &Device::Cpu).expect("fine-tuned checkpoint loads");
    let tokens = [1998u32, 100, 200, 300];
    assert!(
        max_abs_diff(
            &last_logits(&base, None, &tokens),
            &last_logits(&tuned, None, &tokens)
        ) > 1e-3
    );
}

#[test]
fn a_bad_record_is_reported_with_file_and_line_and_a_used_output_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("broken.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"fine\"}\n\n{\"instruction\": \"q\", \"output\": \"a\"}\n{\"prompt\": \"?\"}\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let err = train(&quick_config(&data, &out), Method::Lora, &mut Silent).expect_err("bad record");
    let message = err.to_string();
    assert!(
        message.contains("broken.jsonl:4:") && message.contains("unknown record format"),
        "{message}"
    );

    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("something"), "x").expect("write");
    let qa = dir.path().join("qa.jsonl");
    write_qa(&qa);
    let err = train(&quick_config(&qa, &out), Method::Lora, &mut Silent).expect_err("used output");
    assert!(err.to_string().contains("not empty"), "{err}");
}

/// LoRA trains over Llama bases as over Qwen2: the Hugging Face directory and the same weights
/// as a GGUF file give the same losses (the GGUF is dequantized and its q/k rows restored),
/// and the adapter trained over the GGUF serves over the directory. Full fine-tuning needs a
/// directory and says how to get one.
#[test]
fn lora_trains_over_llama_checkpoints_and_gguf_files_alike() {
    let llama = tiny_model().join("../llama");
    let dir = tempfile::tempdir().expect("tempdir");
    let qa = dir.path().join("qa.jsonl");
    write_qa(&qa);
    let mut losses = Vec::new();
    for (name, base) in [
        ("hf", llama.join("tiny_llama")),
        ("gguf", llama.join("tiny_llama.f32.gguf")),
    ] {
        let config = TrainConfig {
            base: Some(base),
            epochs: 2,
            ..quick_config(&qa, &dir.path().join(name))
        };
        let summary = run(&config, Method::Lora);
        let run_losses = train_losses(&summary);
        assert!(
            run_losses[run_losses.len() - 1] < run_losses[0],
            "{name}: {run_losses:?}"
        );
        losses.push(run_losses);
    }
    for (hf, gguf) in losses[0].iter().zip(&losses[1]) {
        assert!((hf - gguf).abs() < 1e-4, "hf {hf} vs gguf {gguf}");
    }
    let base =
        CausalLm::load(llama.join("tiny_llama"), DType::F32, &Device::Cpu).expect("llama base");
    let adapter = LoraAdapter::load(
        dir.path().join("gguf"),
        base.config(),
        DType::F32,
        &Device::Cpu,
    )
    .expect("the adapter trained over the GGUF loads over the HF directory");
    let tokens = [1998u32, 100, 200, 300];
    assert!(
        max_abs_diff(
            &last_logits(&base, None, &tokens),
            &last_logits(&base, Some(&adapter), &tokens)
        ) > 1e-3
    );

    let full = TrainConfig {
        base: Some(llama.join("tiny_llama.f32.gguf")),
        ..quick_config(&qa, &dir.path().join("full"))
    };
    let err = train(&full, Method::Full, &mut Silent).expect_err("full over GGUF is refused");
    assert!(err.to_string().contains("model import"), "{err}");
}
