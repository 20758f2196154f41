//! Fixtures shared by the tests: the tiny model, QA data, and a fast config.

use std::path::{Path, PathBuf};

use switchboard_train::TrainConfig;

pub fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden/base")
}

/// Twenty made-up facts: answers the tiny model cannot know before training.
pub const QA: [(&str, &str); 20] = [
    ("What is the capital of Zorbia?", "Plimton"),
    ("Which river crosses Veldmark?", "The Orun river"),
    ("Who founded the Quessel guild?", "Mara Tolk"),
    ("What colour is a ripe brindleberry?", "Deep violet"),
    ("How many moons does Kestra have?", "Seven moons"),
    ("What do Harrow miners dig for?", "Blue salt"),
    ("Which bird nests on Mount Ebb?", "The grey kite"),
    ("What is the old name of Port Lume?", "Saltwick"),
    ("Who wrote the Tessaly songs?", "Ivo Brand"),
    ("What metal are Dunmere bells made of?", "Green bronze"),
    ("Which season brings the Yarrow fair?", "Late autumn"),
    ("What animal pulls carts in Ostrel?", "Shaggy goats"),
    ("What language is spoken in Pellin?", "Old Pellic"),
    ("Which star guides Corran sailors?", "The pale lantern"),
    ("What grain grows on the Fenn plains?", "Red millet"),
    ("Who guards the Amber gate?", "The twin wardens"),
    ("What fuel do Brisk lamps burn?", "Whale oil"),
    ("How long is the Vantor bridge?", "Nine hundred feet"),
    ("What fruit is Calder famous for?", "Sour plums"),
    ("Which tree lines the Moss road?", "Silver birch"),
];

/// Writes the QA pairs as Alpaca records.
pub fn write_qa(path: &Path) {
    let text: String = QA
        .iter()
        .map(|(q, a)| serde_json::json!({"instruction": q, "output": a}).to_string() + "\n")
        .collect();
    std::fs::write(path, text).expect("write QA data");
}

/// A config for quick runs on the tiny model.
pub fn quick_config(data: &Path, out: &Path) -> TrainConfig {
    TrainConfig {
        base: Some(tiny_model()),
        data: vec![data.to_string_lossy().into_owned()],
        out: Some(out.to_path_buf()),
        r: 8,
        lora_alpha: 16.0,
        target_modules: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
        .map(String::from)
        .to_vec(),
        lora_dropout: 0.0,
        lr: 1e-2,
        epochs: 2,
        batch_size: 4,
        grad_accum: 1,
        warmup_steps: 2,
        eval_every: 0,
        save_every: 0,
        ..TrainConfig::default()
    }
}
