//! `switchboard adapter merge` as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard_model::{CausalLm, DType, Device, ForwardMode, LogitsWanted, SeqInput};

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn switchboard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn merge_writes_a_checkpoint_that_matches_transformers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("merged");
    let (base, adapter) = (golden().join("base"), golden().join("adapter_a"));
    let run = switchboard(&[
        "adapter",
        "merge",
        "--base",
        path(&base),
        "--adapter",
        path(&adapter),
        "--out",
        path(&out),
    ]);
    assert!(
        run.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("merged 14 modules"));

    let model = CausalLm::load(&out, DType::F32, &Device::Cpu).expect("merged checkpoint loads");
    let expected = candle_core::safetensors::load(
        golden().join("expected_merged_a.safetensors"),
        &Device::Cpu,
    )
    .expect("golden");
    let prompt: Vec<u32> = expected["prompt2.input_ids"]
        .to_vec1::<i64>()
        .expect("ids")
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let mut cache = model.new_cache();
    let mut batch = [SeqInput {
        tokens: &prompt,
        cache: &mut cache,
        adapter: None,
        logits: LogitsWanted::All,
    }];
    let logits = model
        .forward(&mut batch, ForwardMode::Inference)
        .expect("forward")
        .remove(0);
    let diff = (logits - &expected["prompt2.logits"])
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("diff");
    assert!(
        diff <= 1e-4,
        "merged logits differ from transformers by {diff}"
    );
}

#[test]
fn merge_errors_name_the_file_and_fail() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = golden().join("base");
    let missing = tmp.path().join("no_such_adapter");
    let run = switchboard(&[
        "adapter",
        "merge",
        "--base",
        path(&base),
        "--adapter",
        path(&missing),
        "--out",
        path(&tmp.path().join("o")),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("no_such_adapter") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!tmp.path().join("o").exists(), "nothing written on failure");

    // Base and adapter swapped: the adapter directory is no checkpoint.
    let adapter = golden().join("adapter_a");
    let run = switchboard(&[
        "adapter",
        "merge",
        "--base",
        path(&adapter),
        "--adapter",
        path(&base),
        "--out",
        path(&tmp.path().join("o")),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("config.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
