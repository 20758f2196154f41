//! `switchboard adapter promote` and `restore` against the real server on the bundled SmolLM2:
//! a good candidate replaces a broken served version (compare-and-swap, archived), a bad one is
//! rejected as a regression and leaves the server and the files as they were, and the archived
//! version comes back with one command.
//!
//! The adapters are made here so that their quality is certain: "good" has a zero LoRA delta
//! (it is the base model, which knows these easy facts), "bad" adds a large random delta to
//! every attention output, which drowns the context.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{Device, Tensor};
use serde_json::json;

use super::harness::{runtime, Files, Server};

const LAYERS: usize = 30;
const HIDDEN: usize = 576;
const RANK: usize = 4;

/// Questions a 135M instruction model answers by likelihood without fail.
const EASY: &[(&str, [&str; 4], usize)] = &[
    (
        "What color is the sky on a clear day?",
        ["green", "blue", "red", "black"],
        1,
    ),
    (
        "How many legs does a dog have?",
        ["two", "six", "four", "eight"],
        2,
    ),
    (
        "What is the capital of France?",
        ["Paris", "Berlin", "Madrid", "Rome"],
        0,
    ),
    ("What do bees make?", ["milk", "silk", "wool", "honey"], 3),
    ("Which animal barks?", ["cat", "dog", "fish", "bird"], 1),
    (
        "What is frozen water called?",
        ["steam", "sand", "ice", "glass"],
        2,
    ),
    (
        "Which star gives Earth daylight?",
        ["the Sun", "the Moon", "Mars", "Jupiter"],
        0,
    ),
    (
        "What do plants need from the sky to grow?",
        ["snow", "darkness", "noise", "sunlight"],
        3,
    ),
    (
        "How many days are in a week?",
        ["five", "seven", "ten", "twelve"],
        1,
    ),
    (
        "Which organ pumps blood through the body?",
        ["the lungs", "the skin", "the heart", "the hair"],
        2,
    ),
    (
        "What do fish use to breathe in water?",
        ["gills", "wings", "feathers", "horns"],
        0,
    ),
    (
        "What is the opposite of hot?",
        ["warm", "loud", "tall", "cold"],
        3,
    ),
    ("What do cows drink?", ["oil", "water", "ink", "paint"], 1),
    (
        "Which season is the coldest?",
        ["summer", "spring", "winter", "autumn"],
        2,
    ),
    (
        "What do we call a baby cat?",
        ["kitten", "puppy", "calf", "foal"],
        0,
    ),
    (
        "What gas do humans need to breathe?",
        ["helium", "neon", "argon", "oxygen"],
        3,
    ),
];

fn write_suite(path: &Path) {
    let lines: Vec<String> = EASY
        .iter()
        .enumerate()
        .map(|(i, (question, choices, answer))| {
            json!({"id": format!("easy-{i:02}"), "domain": "biology", "question": question,
                   "choices": choices, "answer": answer})
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").expect("suite");
}

/// A PEFT adapter on every `o_proj`: zero delta when `scale` is 0, else a large random one.
fn write_adapter(dir: &Path, scale: f32) {
    std::fs::create_dir_all(dir).expect("adapter dir");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                scale * (((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5)
            })
            .collect()
    };
    let mut tensors = HashMap::new();
    for layer in 0..LAYERS {
        let key = format!("base_model.model.model.layers.{layer}.self_attn.o_proj");
        let a = Tensor::from_vec(noise(RANK * HIDDEN), (RANK, HIDDEN), &Device::Cpu);
        let b = Tensor::from_vec(noise(HIDDEN * RANK), (HIDDEN, RANK), &Device::Cpu);
        tensors.insert(format!("{key}.lora_A.weight"), a.expect("A"));
        tensors.insert(format!("{key}.lora_B.weight"), b.expect("B"));
    }
    candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors"))
        .expect("safetensors");
    let config = json!({
        "peft_type": "LORA", "r": RANK, "lora_alpha": 2 * RANK, "lora_dropout": 0.0,
        "target_modules": ["o_proj"], "bias": "none", "task_type": "CAUSAL_LM",
    });
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).expect("config");
}

fn switchboard(args: &[OsString]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn served_generation(http: &reqwest::Client, server: &Server, name: &str) -> u64 {
    let listing: serde_json::Value = http
        .get(server.url("/v1/lora_adapters"))
        .send()
        .await
        .expect("lora_adapters")
        .json()
        .await
        .expect("json");
    listing["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["generation"].as_u64())
        .unwrap_or_else(|| panic!("{name} is not served: {listing}"))
}

fn config_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("adapter_model.safetensors")).expect("live adapter")
}

#[test]
fn a_good_candidate_is_promoted_a_bad_one_rejected_and_the_archive_restores() {
    let files = Files::new(512);
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path().join("adapters");
    let (good, bad) = (work.path().join("good"), work.path().join("bad"));
    write_adapter(&good, 0.0);
    write_adapter(&bad, 2.0);
    write_adapter(&root.join("biology"), 2.0); // the server starts with the broken version
    let suite = work.path().join("easy.jsonl");
    write_suite(&suite);

    let args: Vec<OsString> = vec!["--adapters".into(), root.clone().into(), "--no-kb".into()];
    let server = Server::spawn(files, &args, &[]);
    let promote = |candidate: &PathBuf, out: &str| {
        switchboard(&[
            "adapter".into(),
            "promote".into(),
            "--candidate".into(),
            candidate.into(),
            "--name".into(),
            "biology".into(),
            "--url".into(),
            server.url("").into(),
            "--adapter-root".into(),
            root.clone().into(),
            "--suite".into(),
            suite.clone().into(),
            "--out".into(),
            work.path().join(out).into(),
            "--quiet".into(),
        ])
    };
    let http = reqwest::Client::new();
    let rt = runtime();
    assert_eq!(rt.block_on(served_generation(&http, &server, "biology")), 1);

    let promoted = promote(&good, "first");
    assert_eq!(promoted.status.code(), Some(0), "{}", text(&promoted));
    assert!(text(&promoted).contains("adapter restore --name biology --version"));
    assert_eq!(rt.block_on(served_generation(&http, &server, "biology")), 2);
    assert_eq!(config_bytes(&root.join("biology")), config_bytes(&good));
    let archive = root.join(".archive/biology");
    let versions: Vec<_> = std::fs::read_dir(&archive).expect("archive").collect();
    assert_eq!(versions.len(), 1, "the broken version is archived");
    let comparison: serde_json::Value = serde_json::from_slice(
        &std::fs::read(work.path().join("first/comparison.json")).expect("comparison.json"),
    )
    .expect("json");
    assert_eq!(comparison["verdict"], "promote", "{comparison}");

    let rejected = promote(&bad, "second");
    assert_eq!(rejected.status.code(), Some(1), "{}", text(&rejected));
    assert!(
        text(&rejected).contains("regression"),
        "{}",
        text(&rejected)
    );
    assert_eq!(
        rt.block_on(served_generation(&http, &server, "biology")),
        2,
        "a rejected candidate leaves the server as it was"
    );
    assert_eq!(config_bytes(&root.join("biology")), config_bytes(&good));
    assert_eq!(std::fs::read_dir(&archive).expect("archive").count(), 1);
    let staging = root.join(".staging");
    assert_eq!(std::fs::read_dir(&staging).map_or(0, |d| d.count()), 0);

    let restore = |extra: &[&str]| {
        let mut args: Vec<OsString> = vec!["adapter".into(), "restore".into()];
        args.extend(extra.iter().map(OsString::from));
        args.extend([
            "--name".into(),
            "biology".into(),
            "--url".into(),
            server.url("").into(),
            "--adapter-root".into(),
            root.clone().into(),
        ]);
        switchboard(&args)
    };
    let restored = restore(&[]);
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(rt.block_on(served_generation(&http, &server, "biology")), 3);
    assert_eq!(config_bytes(&root.join("biology")), config_bytes(&bad));
    let listed = restore(&["--list"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        2,
        "the restore archived the version it replaced: {}",
        text(&listed)
    );

    let missing = restore(&["--version", "19700101T000000Z"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no archived version"),
        "{}",
        text(&missing)
    );
}
