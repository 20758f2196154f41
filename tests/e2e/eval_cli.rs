//! `switchboard eval run` and `eval compare` against the real binary and server: log-likelihoods
//! equal to the model's own logits, the results files, errors that name the problem, the
//! compare gate's exit codes, and agreement with lm-evaluation-harness.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use switchboard_engine::TextTokenizer;
use switchboard_model::{CausalLm, DType, Device, KvCache, LogitsWanted, LoraAdapter, SeqInput};

use super::harness::{golden, Files, Server};

/// Per-choice log-likelihoods of eval and of the hand computation agree to this.
const LL_TOLERANCE: f64 = 1e-4;

fn eval(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("eval")
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("switchboard runs")
}

/// `eval` with string arguments; panics with the output unless it succeeds.
fn eval_ok(args: &[&str]) -> Output {
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let output = eval(&os);
    assert!(
        output.status.success(),
        "eval {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("results file")).expect("json")
}

fn write_suite(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let path = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).expect("write suite");
    path
}

/// Items whose choices differ in length, so that `acc` and `acc_norm` can pick differently.
fn mc_items() -> Vec<Value> {
    vec![
        json!({"id": "b1", "domain": "biology", "question": "What do cells use to store energy?",
               "choices": ["ATP", "sand and small rocks", "light"], "answer": 0}),
        json!({"id": "b2", "domain": "biology", "question": "Where does photosynthesis happen?",
               "choices": ["in the chloroplast", "in bones", "nowhere at all, ever"], "answer": 0}),
        json!({"id": "h1", "domain": "history", "question": "Who built the pyramids of Giza?",
               "choices": ["Egyptians", "Romans", "the Vikings of Norway"], "answer": 0}),
        json!({"id": "h2", "domain": "history", "question": "When did the Roman republic end?",
               "choices": ["27 BC", "in 1990", "it never ended", "during the ice age"], "answer": 0}),
    ]
}

fn records<'a>(results: &'a Value, variant: &str) -> HashMap<&'a str, &'a Value> {
    results["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["variant"] == variant)
        .map(|r| (r["id"].as_str().expect("id"), r))
        .collect()
}

fn lls(record: &Value) -> Vec<f64> {
    record["loglikelihoods"]
        .as_array()
        .expect("loglikelihoods")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

/// lm-eval's split and sum, computed from the model's logits in this process: the context
/// `Question: q\nAnswer:` and `whole = context + " " + choice` are tokenized without special
/// tokens, the continuation is `whole[len(ctx):]`, and its tokens' log-softmax are summed.
struct Reference {
    model: CausalLm,
    tokenizer: TextTokenizer,
}

impl Reference {
    fn new(model_dir: &Path) -> Self {
        Self {
            model: CausalLm::load(model_dir, DType::F32, &Device::Cpu).expect("model"),
            tokenizer: TextTokenizer::from_dir(model_dir).expect("tokenizer"),
        }
    }

    fn ids(&self, text: &str) -> Vec<u32> {
        self.tokenizer
            .inner()
            .encode(text, false)
            .expect("encode")
            .get_ids()
            .to_vec()
    }

    fn loglikelihood(&self, adapter: Option<&LoraAdapter>, question: &str, choice: &str) -> f64 {
        let context = format!("Question: {question}\nAnswer:");
        let ctx = self.ids(&context);
        let whole = self.ids(&format!("{context} {choice}"));
        let ids: Vec<u32> = ctx.iter().chain(&whole[ctx.len()..]).copied().collect();
        let mut cache = KvCache::new(self.model.config());
        let logits = self
            .model
            .forward(
                &mut [SeqInput {
                    tokens: &ids,
                    cache: &mut cache,
                    adapter,
                    logits: LogitsWanted::All,
                }],
                Default::default(),
            )
            .expect("forward");
        let rows = logits[0].to_vec2::<f32>().expect("rows");
        (ctx.len()..ids.len())
            .map(|position| {
                let row: Vec<f64> = rows[position - 1].iter().map(|&l| f64::from(l)).collect();
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_z = max + row.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
                row[ids[position] as usize] - log_z
            })
            .sum()
    }
}

/// numpy's argmax: the first maximum.
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

#[test]
fn loglikelihoods_equal_a_hand_computation_from_the_logits() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let items = mc_items();
    let suite = write_suite(dir.path(), "tiny.jsonl", &items);
    let out = dir.path().join("results.json");
    eval_ok(&[
        "run",
        "--url",
        &server.base,
        "--suite",
        suite.to_str().expect("utf-8"),
        "--variants",
        "base,golden-a",
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ]);
    let results = read_json(&out);
    assert!(
        results["run"]["notes"].as_array().is_none_or(Vec::is_empty),
        "token prompts, no fallback: {}",
        results["run"]
    );
    let reference = Reference::new(&server.files.model);
    let adapter = LoraAdapter::load(
        server.files.adapters.join("golden-a"),
        reference.model.config(),
        DType::F32,
        &Device::Cpu,
    )
    .expect("adapter");
    for (variant, adapter) in [("base", None), ("golden-a", Some(&adapter))] {
        let got = records(&results, variant);
        let (mut acc, mut acc_norm) = (0, 0);
        for item in &items {
            let record = got[item["id"].as_str().expect("id")];
            let choices: Vec<&str> = item["choices"]
                .as_array()
                .expect("choices")
                .iter()
                .map(|c| c.as_str().expect("choice"))
                .collect();
            let question = item["question"].as_str().expect("question");
            let want: Vec<f64> = choices
                .iter()
                .map(|c| reference.loglikelihood(adapter, question, c))
                .collect();
            let have = lls(record);
            assert_eq!(have.len(), want.len());
            for (h, w) in have.iter().zip(&want) {
                assert!(
                    (h - w).abs() <= LL_TOLERANCE,
                    "{variant} {}: {have:?} vs {want:?}",
                    item["id"]
                );
            }
            let gold = item["answer"].as_u64().expect("answer") as usize;
            let pick = argmax(&want);
            let normalised: Vec<f64> = want
                .iter()
                .zip(&choices)
                .map(|(ll, c)| ll / c.chars().count() as f64)
                .collect();
            let pick_norm = argmax(&normalised);
            assert_eq!(record["predicted"], pick, "{variant} {}", item["id"]);
            assert_eq!(record["correct"], pick == gold);
            assert_eq!(record["correct_norm"], pick_norm == gold);
            acc += usize::from(pick == gold);
            acc_norm += usize::from(pick_norm == gold);
        }
        let overall = &results["variants"][variant]["overall"];
        let n = items.len() as f64;
        assert_eq!(overall["n"], items.len());
        assert!((overall["accuracy"].as_f64().expect("acc") - acc as f64 / n).abs() < 1e-12);
        assert!(
            (overall["acc_norm"].as_f64().expect("acc_norm") - acc_norm as f64 / n).abs() < 1e-12
        );
    }
}

#[test]
fn in_process_run_over_base_and_adapters_writes_json_markdown_chart_and_metrics() {
    let files = Files::new(4096).with_domain_adapters();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut items = mc_items();
    items.push(json!({"id": "g1", "domain": "history", "question": "Who was the first Roman emperor?", "reference": "Augustus"}));
    let suite = write_suite(dir.path(), "mixed.jsonl", &items);
    let (out, markdown, chart, textfile) = (
        dir.path().join("out/results.json"),
        dir.path().join("table.md"),
        dir.path().join("chart.png"),
        dir.path().join("eval.prom"),
    );
    let path = |p: &Path| p.to_str().expect("utf-8").to_string();
    let output = eval_ok(&[
        "run",
        "--model",
        &path(&files.model),
        "--adapters",
        &path(&files.adapters),
        "--suite",
        &path(&suite),
        "--variants",
        "base,golden-a,golden-b,adapter",
        "--max-tokens",
        "4",
        "--out",
        &path(&out),
        "--markdown",
        &path(&markdown),
        "--chart",
        &path(&chart),
        "--textfile",
        &path(&textfile),
        "--quiet",
    ]);

    let results = read_json(&out);
    assert_eq!(results["suite"], "mixed");
    assert_eq!(results["model"], "tiny", "the base's served name");
    assert!(results["run"]["endpoint"]
        .as_str()
        .is_some_and(|e| e.starts_with("in-process (http://127.0.0.1:")));
    for variant in ["base", "golden-a", "golden-b", "adapter"] {
        let scores = &results["variants"][variant];
        for domain in ["biology", "history", "overall"] {
            let score = &scores[domain];
            let accuracy = score["accuracy"].as_f64().expect("accuracy");
            let ci = score["ci95"].as_array().expect("ci95");
            assert!((0.0..=1.0).contains(&accuracy), "{variant} {domain}");
            assert!(ci[0].as_f64() <= Some(accuracy) && ci[1].as_f64() >= Some(accuracy));
        }
        assert_eq!(scores["overall"]["n"], items.len());
        assert_eq!(records(&results, variant).len(), items.len());
    }
    assert_eq!(
        results["items"].as_array().map(Vec::len),
        Some(4 * items.len())
    );
    let generated = records(&results, "golden-a")["g1"];
    assert_eq!(generated["scoring"], "generative");
    assert!(generated["output"].is_string() && generated["f1"].is_number());

    // Adapters change every item's log-likelihoods; `adapter` uses each item's domain adapter
    // (biology = a copy of golden-a, history = a copy of golden-b).
    let base = records(&results, "base");
    for item in mc_items() {
        let id = item["id"].as_str().expect("id");
        for variant in ["golden-a", "golden-b"] {
            assert_ne!(
                lls(records(&results, variant)[id]),
                lls(base[id]),
                "{variant} {id}"
            );
        }
        let own = records(&results, "adapter")[id];
        let (model, twin) = if id.starts_with('b') {
            ("biology", "golden-a")
        } else {
            ("history", "golden-b")
        };
        assert_eq!(own["model"], model);
        let (a, b) = (lls(own), lls(records(&results, twin)[id]));
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= LL_TOLERANCE),
            "{id}: {a:?} vs {b:?}"
        );
    }

    let table = std::fs::read_to_string(&markdown).expect("markdown");
    assert!(
        table.starts_with("| domain | base | golden-a | golden-b | adapter |"),
        "{table}"
    );
    assert!(table.contains("| overall |"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&table), "the table is printed: {stdout}");
    let png = std::fs::read(&chart).expect("chart");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "a PNG image"
    );
    let prom = std::fs::read_to_string(&textfile).expect("textfile");
    assert!(
        prom.contains("switchboard_eval_accuracy_ratio{") && prom.contains("variant=\"golden-a\""),
        "{prom}"
    );
}

#[test]
fn retrieval_and_routing_variants_record_sources_and_routes() {
    let server = Server::start_with(Files::new(4096).with_domain_adapters(), &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = write_suite(dir.path(), "tiny.jsonl", &mc_items());
    let out = dir.path().join("results.json");
    eval_ok(&[
        "run",
        "--url",
        &format!("{}/v1", server.base),
        "--suite",
        suite.to_str().expect("utf-8"),
        "--variants",
        "base,rag,adapter+rag,auto",
        "--rag-k",
        "2",
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ]);
    let results = read_json(&out);
    let base = records(&results, "base");
    for (id, record) in records(&results, "rag") {
        let sources = record["sources"].as_array().expect("rag retrieves");
        assert!(
            !sources.is_empty() && sources.len() <= 2,
            "{id}: {sources:?}"
        );
        assert_eq!(record["model"], "tiny");
        assert_ne!(
            lls(record),
            lls(base[id]),
            "passages change the context of {id}"
        );
    }
    for (id, record) in records(&results, "adapter+rag") {
        let domain = record["domain"].as_str().expect("domain");
        assert_eq!(record["model"], domain, "{id}");
        for source in record["sources"].as_array().expect("sources") {
            assert!(
                source.as_str().is_some_and(|s| s.starts_with(domain)),
                "{id}: {source}"
            );
        }
    }
    for (id, record) in records(&results, "auto") {
        let routed = record["routed_domain"]
            .as_str()
            .expect("auto records the route");
        let model = record["model"].as_str().expect("model");
        assert!(
            model == routed || model == "tiny",
            "{id}: {routed} → {model}"
        );
    }
    let notes = results["run"]["notes"].to_string();
    assert!(notes.contains("auto: the router sent"), "{notes}");
}

#[test]
fn an_adapter_that_changes_nothing_fails_the_run() {
    // PEFT initialises lora_B to zeros: an untrained adapter is the base exactly, which is what
    // a server ignoring adapters looks like from outside.
    let files = Files::new(4096);
    let zero = files.adapters.join("untrained");
    super::harness::copy_dir(&golden().join("adapter_a"), &zero);
    let weights = zero.join("adapter_model.safetensors");
    let tensors =
        candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).expect("load");
    let zeroed: HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if k.contains("lora_B") {
                t.zeros_like().expect("zeros")
            } else {
                t
            };
            (k, t)
        })
        .collect();
    candle_core::safetensors::save(&zeroed, &weights).expect("save");
    let server = Server::start_with(files, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = write_suite(dir.path(), "tiny.jsonl", &mc_items());
    let out = dir.path().join("results.json");
    let args = [
        "run",
        "--url",
        &server.base,
        "--suite",
        suite.to_str().expect("utf-8"),
        "--variants",
        "base,untrained",
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ];
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let output = eval(&os);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"untrained\"") && stderr.contains("ignored the adapter"),
        "{stderr}"
    );
    assert!(!out.exists(), "no results are written for a void run");
}

/// Runs `eval` expecting failure; its stderr.
fn eval_err(args: &[&str]) -> String {
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let output = eval(&os);
    assert!(!output.status.success(), "eval {args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_inputs_fail_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.json");
    let out = out.to_str().expect("utf-8");
    let missing = dir.path().join("missing.jsonl");
    let missing = missing.to_str().expect("utf-8");
    let err = eval_err(&[
        "run",
        "--url",
        "http://127.0.0.1:9",
        "--suite",
        missing,
        "--out",
        out,
    ]);
    assert!(
        err.contains(missing) && err.contains("no such suite file"),
        "{err}"
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"1\", \"domain\": \"d\", \"question\": \"q\", \"reference\": \"r\"}\n{\"id\": 2, \"domain\": \n",
    )
    .expect("write");
    let err = eval_err(&[
        "run",
        "--url",
        "http://127.0.0.1:9",
        "--suite",
        bad.to_str().expect("utf-8"),
        "--out",
        out,
    ]);
    assert!(err.contains("bad.jsonl:2:"), "{err}");

    let suite = write_suite(dir.path(), "ok.jsonl", &mc_items());
    let suite = suite.to_str().expect("utf-8");
    // A port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = eval_err(&["run", "--url", &url, "--suite", suite, "--out", out]);
    assert!(
        err.contains(&format!("{url}/v1/models")) && err.contains("attempts"),
        "{err}"
    );
    let err = eval_err(&[
        "run",
        "--url",
        "localhost:8080",
        "--suite",
        suite,
        "--out",
        out,
    ]);
    assert!(err.contains("invalid server URL"), "{err}");
    let err = eval_err(&[
        "run",
        "--url",
        "ftp://api.example/v1",
        "--suite",
        suite,
        "--out",
        out,
    ]);
    assert!(err.contains("must start with http:// or https://"), "{err}");

    let server = Server::start(&[]);
    let err = eval_err(&[
        "run",
        "--url",
        &server.base,
        "--suite",
        suite,
        "--variants",
        "base,nope",
        "--out",
        out,
    ]);
    assert!(
        err.contains("variant \"nope\"")
            && err.contains("unknown variant")
            && err.contains("golden-a"),
        "{err}"
    );
    let err = eval_err(&[
        "run",
        "--url",
        &server.base,
        "--suite",
        suite,
        "--model",
        "gpt-9",
        "--out",
        out,
    ]);
    assert!(err.contains("\"gpt-9\" is not served"), "{err}");
    assert!(!Path::new(out).exists());
}

/// A results file whose `variant` got `outcomes[domain][i]` right on item `domain-i`.
fn crafted(dir: &Path, name: &str, variant: &str, outcomes: &[(&str, Vec<bool>)]) -> PathBuf {
    let mut items = Vec::new();
    for (domain, answers) in outcomes {
        for (i, correct) in answers.iter().enumerate() {
            items.push(json!({
                "id": format!("{domain}-{i}"), "domain": domain, "variant": variant,
                "model": variant, "correct": correct, "scoring": "loglikelihood",
            }));
        }
    }
    let path = dir.join(name);
    std::fs::write(
        &path,
        json!({"suite": "s", "model": "m", "variants": {}, "items": items}).to_string(),
    )
    .expect("write");
    path
}

fn answers(right: usize, n: usize) -> Vec<bool> {
    (0..n).map(|i| i < right).collect()
}

#[test]
fn compare_exit_codes_are_the_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let baseline = crafted(
        dir.path(),
        "base.json",
        "base",
        &[("biology", answers(20, 60)), ("history", answers(50, 60))],
    );
    let cases = [
        // +50 points on biology, history untouched.
        ("promote", answers(50, 60), answers(50, 60), 0),
        // Biology better, history falls from 50 to 20 right.
        ("regression", answers(50, 60), answers(20, 60), 1),
        // The very same answers: the gain's interval is [0, 0].
        ("no-gain", answers(20, 60), answers(50, 60), 2),
        // Two more right out of 60: could be chance.
        ("inconclusive", answers(22, 60), answers(50, 60), 3),
    ];
    for (name, biology, history, code) in cases {
        let candidate = crafted(
            dir.path(),
            &format!("{name}.json"),
            "biology",
            &[("biology", biology), ("history", history)],
        );
        let output = eval_ok_or_code(&[
            "compare",
            "--baseline",
            baseline.to_str().expect("utf-8"),
            "--candidate",
            candidate.to_str().expect("utf-8"),
        ]);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{name}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Verdict"),
            "{name}"
        );
    }
    let output = eval_ok_or_code(&[
        "compare",
        "--baseline",
        baseline.to_str().expect("utf-8"),
        "--candidate",
        dir.path().join("absent.json").to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(4), "no verdict: not 1-3");
    assert!(String::from_utf8_lossy(&output.stderr).contains("absent.json"));
}

fn eval_ok_or_code(args: &[&str]) -> Output {
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    eval(&os)
}

/// lm-evaluation-harness (`local-completions` with the server's remote tokenizer) and
/// `switchboard eval run` on the same 20 items of the biology suite, with the bundled SmolLM2:
/// the same per-choice log-likelihoods, hence the same `acc` and `acc_norm`.
#[test]
fn lm_evaluation_harness_agrees_with_eval_run() {
    let Some(lm_eval) = std::env::var_os("SWITCHBOARD_LM_EVAL") else {
        let required = std::env::var("SWITCHBOARD_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SWITCHBOARD_REQUIRE_EXTERNAL=1 but SWITCHBOARD_LM_EVAL is not set"
        );
        println!("skipped: set SWITCHBOARD_LM_EVAL to the lm_eval executable to compare with lm-evaluation-harness");
        return;
    };
    const ITEMS: usize = 20;
    const TASK: &str = "sb_eval_cli_biology_mc";
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = dir.path().join("biology20.jsonl");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("evals/biology.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&source)
        .expect("evals/biology.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(ITEMS)
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), ITEMS);
    std::fs::write(&suite, lines.join("\n") + "\n").expect("write subset");
    // The shipped task file, with its data path made absolute (lm-eval resolves relative paths
    // against its working directory).
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("evals/lm_eval/sb_biology_mc.yaml"),
    )
    .expect("shipped task");
    let task = shipped
        .replace("task: sb_biology_mc", &format!("task: {TASK}"))
        .replace(
            "test: evals/biology.jsonl",
            &format!("test: {}", suite.display()),
        );
    assert!(task.contains(TASK) && task.contains(&suite.display().to_string()));
    let tasks = dir.path().join("tasks");
    std::fs::create_dir_all(&tasks).expect("tasks dir");
    std::fs::write(tasks.join(format!("{TASK}.yaml")), task).expect("write task");

    let files = Files::new(512);
    let args: Vec<std::ffi::OsString> = vec![
        "--kb-index".into(),
        files.adapters.with_file_name("kb-index").into(),
    ];
    let server = Server::spawn(files, &args, &[]);
    let model = "smollm2-135m-instruct";
    let lm_out = dir.path().join("lm_eval");
    let output = Command::new(&lm_eval)
        .args(["--model", "local-completions", "--model_args"])
        .arg(format!(
            "model={model},base_url={}/v1/completions,num_concurrent=4,max_retries=1,tokenized_requests=True",
            server.base
        ))
        .args(["--tasks", TASK, "--include_path"])
        .arg(&tasks)
        .arg("--output_path")
        .arg(&lm_out)
        .arg("--log_samples")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_DATASETS_CACHE", dir.path().join("hf-datasets"))
        .output()
        .expect("lm_eval runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "lm_eval failed:\n{}\n{log}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        log.contains("remote tokenizer"),
        "lm_eval used the server's tokenizer:\n{log}"
    );
    let (lm_results, lm_samples) = lm_eval_outputs(&lm_out);
    let lm_scores = &lm_results["results"][TASK];
    let lm_acc = lm_scores["acc,none"].as_f64().expect("acc");
    let lm_acc_norm = lm_scores["acc_norm,none"].as_f64().expect("acc_norm");

    let out = dir.path().join("switchboard.json");
    eval_ok(&[
        "run",
        "--url",
        &format!("{}/v1/completions", server.base),
        "--suite",
        suite.to_str().expect("utf-8"),
        "--variants",
        "base",
        "--concurrency",
        "4",
        "--out",
        out.to_str().expect("utf-8"),
        "--quiet",
    ]);
    let ours = read_json(&out);
    let overall = &ours["variants"]["base"]["overall"];
    let acc = overall["accuracy"].as_f64().expect("acc");
    let acc_norm = overall["acc_norm"].as_f64().expect("acc_norm");
    println!("lm-eval: acc {lm_acc} acc_norm {lm_acc_norm}; switchboard eval: acc {acc} acc_norm {acc_norm} ({ITEMS} items, {model})");

    // Item by item: the same log-likelihood for every choice (same tokens, same server).
    let mine = records(&ours, "base");
    assert_eq!(lm_samples.len(), ITEMS);
    for sample in &lm_samples {
        let id = sample["doc"]["id"].as_str().expect("doc id");
        let theirs: Vec<f64> = sample["filtered_resps"]
            .as_array()
            .expect("filtered_resps")
            .iter()
            .map(|r| number(&r[0]))
            .collect();
        let have = lls(mine[id]);
        assert_eq!(theirs.len(), have.len(), "{id}");
        for (a, b) in have.iter().zip(&theirs) {
            assert!(
                (a - b).abs() <= LL_TOLERANCE,
                "{id}: {have:?} vs lm-eval {theirs:?}"
            );
        }
    }
    // Equal log-likelihoods make equal picks, so the accuracies agree exactly.
    assert!(
        (acc - lm_acc).abs() < 1e-12,
        "acc {acc} vs lm-eval {lm_acc}"
    );
    assert!(
        (acc_norm - lm_acc_norm).abs() < 1e-12,
        "acc_norm {acc_norm} vs lm-eval {lm_acc_norm}"
    );
}

/// lm-eval logs numbers as strings in its samples.
fn number(value: &Value) -> f64 {
    match value {
        Value::String(s) => s.parse().expect("a number"),
        other => other.as_f64().expect("a number"),
    }
}

/// The `results_*.json` and the lines of `samples_*.jsonl` lm-eval wrote under `dir`.
fn lm_eval_outputs(dir: &Path) -> (Value, Vec<Value>) {
    let mut results = None;
    let mut samples = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .expect("read dir")
                    .map(|e| e.expect("entry").path()),
            );
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).expect("read");
        if name.starts_with("results_") && name.ends_with(".json") {
            results = Some(serde_json::from_str(&text).expect("results json"));
        } else if name.starts_with("samples_") {
            samples.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).expect("sample")),
            );
        }
    }
    (results.expect("lm_eval wrote results"), samples)
}
