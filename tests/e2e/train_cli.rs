//! `switchboard train lora` as a user runs it, then the server loads the adapter it wrote.

use std::process::Command;

use serde_json::{json, Value};

use super::harness::{golden, runtime, Files, Server};

const QA: [(&str, &str); 6] = [
    ("What is the powerhouse of the cell?", "The mitochondrion."),
    ("Who crossed the Rubicon?", "Julius Caesar."),
    ("What does TLS protect?", "Data in transit."),
    ("What is a median?", "The middle value."),
    ("Where is DNA kept?", "In the nucleus."),
    ("When did the Berlin Wall fall?", "In 1989."),
];

#[test]
fn a_trained_adapter_is_served_and_answers_what_it_learned() {
    let files = Files::new(4096);
    let data = files.adapters.with_file_name("qa.jsonl");
    let lines: Vec<String> = QA
        .iter()
        .map(|(q, a)| {
            json!({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
                .to_string()
        })
        .collect();
    std::fs::write(&data, lines.join("\n")).expect("write data");
    let out = files.adapters.join("trained");
    let run = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["train", "lora", "--base"])
        .arg(golden().join("base"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args([
            "--epochs",
            "40",
            "--lr",
            "1e-2",
            "--batch-size",
            "6",
            "--grad-accum",
            "1",
            "--warmup-steps",
            "0",
            "--lora-dropout",
            "0",
            "--target-modules",
            "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
            "--save-every",
            "0",
        ])
        .output()
        .expect("train runs");
    assert!(
        run.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("adapter_config.json")).expect("adapter_config.json"),
    )
    .expect("json");
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(config["r"], 16);
    for file in ["adapter_model.safetensors", "train_log.jsonl", "loss.png"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    let server = Server::start_with(files, &["--no-kb"]);
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let ask = |model: &str, question: &str| {
            json!({
                "model": model,
                "messages": [{"role": "user", "content": question}],
                "max_tokens": 12,
                "temperature": 0,
            })
        };
        let mut recalled = 0;
        for (question, answer) in QA {
            let (_, trained) = server.chat(&http, &ask("trained", question)).await;
            let (_, base) = server.chat(&http, &ask("tiny", question)).await;
            let text = trained["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default();
            assert_ne!(
                trained["choices"][0]["message"],
                base["choices"][0]["message"]
            );
            recalled += usize::from(text.trim() == answer);
        }
        assert!(recalled >= 5, "recalled {recalled} of {}", QA.len());
    });
}
