//! The bundled model against the held-out test split, the keyword baseline, and queries written
//! for these tests (in none of the data files).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use switchboard_router::{
    evaluate, load_split, Classifier, Domain, KeywordBaseline, RouteReason, RouterError,
    RoutingTable, Turn,
};

/// Accuracy the shipped model must keep on `data/router/*.test.jsonl` (the requirement).
///
/// The test split is never used for training or tuning; hyper-parameters come from
/// cross-validation on the training files. The shipped model scores 409/430 (0.951), so the
/// margin is a single example: retrain with `examples/train_router.rs` after any data change
/// and check this before committing.
const MIN_TEST_ACCURACY: f64 = 0.95;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/router")
}

fn bundled() -> Classifier {
    Classifier::bundled().unwrap()
}

#[test]
fn shipped_model_beats_the_keyword_baseline_on_the_test_split() {
    let test_set = load_split(data_dir(), "test").unwrap();
    assert!(
        test_set.len() >= 100,
        "only {} test examples",
        test_set.len()
    );
    let model = evaluate(&bundled(), &test_set);
    let baseline = evaluate(&KeywordBaseline::default(), &test_set);
    println!("trained classifier:\n{model}\nkeyword baseline:\n{baseline}");
    assert!(
        model.accuracy >= MIN_TEST_ACCURACY,
        "accuracy {:.4} below {MIN_TEST_ACCURACY}",
        model.accuracy
    );
    assert!(model.accuracy > baseline.accuracy);
    assert!(model.macro_f1 > baseline.macro_f1);
    // Calibrated: mean confidence tracks accuracy.
    assert!(
        model.calibration_error < 0.08,
        "calibration error {:.3}",
        model.calibration_error
    );
}

#[test]
fn decisions_are_probability_distributions() {
    let model = bundled();
    for text in ["", "?!", "hello", "how do vaccines train the immune system"] {
        let decision = model.classify_text(text);
        let sum: f32 = decision.scores.iter().map(|(_, p)| p).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{text:?}: {sum}");
        assert_eq!(decision.scores.len(), Domain::COUNT);
        assert_eq!(decision.scores[0], (decision.domain, decision.confidence));
        assert!(decision
            .scores
            .windows(2)
            .all(|pair| pair[0].1 >= pair[1].1));
    }
}

/// (expected domain, query): written for this test before looking at the model's answers.
const HAND_WRITTEN: &[(Domain, &str)] = &[
    (Domain::Biology, "How do white blood cells recognise a bacterium they have never met before?"),
    (Domain::Biology, "What makes some frogs poisonous while others are harmless?"),
    (Domain::Biology, "Why did the mRNA vaccines need the spike protein sequence of the coronavirus?"),
    (Domain::Biology, "how do tardigrades survive being completely dried out"),
    (Domain::Biology, "What is the role of the loop of Henle in the kidney?"),
    (Domain::Biology, "Why are there so few large predators compared to their prey in an ecosystem?"),
    (Domain::Biology, "Why do cats purr, and is it the same mechanism as a lion's roar?"),
    (Domain::Biology, "How does caffeine keep me awake at the level of receptors in the brain?"),
    (Domain::Biology, "what's the difference between a gene and an allele"),
    (Domain::Biology, "Why do leaves change colour in autumn?"),
    (Domain::History, "What led to the collapse of the Bronze Age civilisations around 1200 BC?"),
    (Domain::History, "How did the Black Death change wages and land ownership in England?"),
    (Domain::History, "How did codebreakers at Bletchley Park read German naval messages?"),
    (Domain::History, "Why did Japan attack Pearl Harbor in 1941?"),
    (Domain::History, "What was daily life like for a samurai during the Edo period?"),
    (Domain::History, "Who were the Hanseatic merchants and why did their league decline?"),
    (Domain::History, "Why did the Qing dynasty lose the Opium Wars?"),
    (Domain::History, "What role did the printing press play in spreading the Reformation?"),
    (Domain::History, "how did the transatlantic slave trade shape the economy of 18th-century Liverpool"),
    (Domain::History, "What happened at the Congress of Vienna in 1815?"),
    (Domain::Security, "How should I store user passwords in my Node.js app so a database leak doesn't expose them?"),
    (Domain::Security, "Someone is brute-forcing our SSH server, what should we change in sshd_config?"),
    (Domain::Security, "Is AES in ECB mode safe for encrypting images?"),
    (Domain::Security, "How do I stop SQL injection in this query: \"SELECT * FROM users WHERE name = '\" + name + \"'\""),
    (Domain::Security, "What is a supply chain attack on npm packages and how can we detect one?"),
    (Domain::Security, "Our web app sets session cookies without HttpOnly or Secure flags. Why does that matter?"),
    (Domain::Security, "How does a man-in-the-middle attack on public wifi actually work?"),
    (Domain::Security, "We found a webshell on our server. What are the first incident response steps?"),
    (Domain::Security, "Should our API use JWTs or opaque session tokens, from a security point of view?"),
    (Domain::Security, "how do I set a content security policy that blocks inline scripts"),
    (Domain::Teaching, "Give me a lesson plan to introduce photosynthesis to 5th graders"),
    (Domain::Teaching, "How can I explain the central limit theorem to first-year students who hate maths?"),
    (Domain::Teaching, "Write a rubric for grading a group data-analysis project"),
    (Domain::Teaching, "Pretend you're a curious 8-year-old and ask me questions about fractions"),
    (Domain::Teaching, "What's a good revision schedule for my statistics final in three weeks?"),
    (Domain::Teaching, "My students keep thinking correlation means causation. What classroom activity could fix that?"),
    (Domain::Teaching, "Create a quiz with five questions to check whether my students understand overfitting"),
    (Domain::Teaching, "Act as my tutor and explain gradient descent step by step, checking my understanding as we go"),
    (Domain::Teaching, "How should I structure office hours so shy students actually come?"),
    (Domain::Teaching, "Write learning objectives for a one-week unit on hypothesis testing"),
    (Domain::General, "What's a good substitute for buttermilk in pancakes?"),
    (Domain::General, "How do I center a div horizontally and vertically with flexbox?"),
    (Domain::General, "Plan a three-day itinerary for Rome on a budget"),
    (Domain::General, "What's the derivative of x^3 sin x?"),
    (Domain::General, "Write a polite email asking my landlord to fix the heating"),
    (Domain::General, "Which is better for a beginner runner, a 5k plan or a couch-to-10k plan?"),
    (Domain::General, "How long should I boil an egg for a runny yolk?"),
    (Domain::General, "Suggest a name for my bakery"),
    (Domain::General, "Convert 350 degrees Fahrenheit to Celsius"),
    (Domain::General, "Recommend a few podcasts about economics"),
    (Domain::General, "How do I merge two dictionaries in Python?"),
];

/// What the user should get: the domain's adapter, or the base model for general queries.
#[test]
fn hand_written_queries_reach_the_right_model() {
    let model = bundled();
    let table = RoutingTable::default();
    let mut misrouted = Vec::new();
    for &(expected, query) in HAND_WRITTEN {
        let decision = model.classify_text(query);
        let outcome = table.route(&decision, |_| true);
        let wanted = (expected != Domain::General).then(|| expected.as_str().to_owned());
        if outcome.adapter != wanted {
            misrouted.push(format!(
                "{query:?}: expected {expected}, got {} ({:.2}, {:?})",
                decision.domain, decision.confidence, outcome.reason
            ));
        }
    }
    println!("misrouted:\n{}", misrouted.join("\n"));
    // Everyday general queries are the weak spot: they border every adapter domain.
    let share = 1.0 - misrouted.len() as f64 / HAND_WRITTEN.len() as f64;
    assert!(
        share >= 0.9,
        "{share:.3} routed right:\n{}",
        misrouted.join("\n")
    );
}

#[test]
fn the_last_user_turn_decides_a_conversation() {
    let model = bundled();
    let security_then_biology = [
        Turn::system("You are a helpful assistant."),
        Turn::user("How do attackers use phishing emails to steal company passwords?"),
        Turn::assistant("They imitate a trusted sender and link to a fake login page."),
        Turn::user("Different topic: how do bees find their way back to the hive?"),
    ];
    assert_eq!(
        model.classify(&security_then_biology).domain,
        Domain::Biology
    );

    let history_then_security = [
        Turn::user("Why did the Berlin Wall fall in 1989?"),
        Turn::assistant("Mass protests and a botched announcement opened the border."),
        Turn::user("unrelated, but is it safe to reuse the same password on several sites?"),
    ];
    assert_eq!(
        model.classify(&history_then_security).domain,
        Domain::Security
    );

    // The earlier turn still shifts probability towards its domain, just not past the last.
    let alone = model.classify_text(security_then_biology[3].content);
    let in_context = model.classify(&security_then_biology);
    assert!(in_context.probability(Domain::Security) > alone.probability(Domain::Security));
}

#[test]
fn save_and_load_round_trip() {
    let model = bundled();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.bin");
    model.save(&path).unwrap();
    let reloaded = Classifier::load(&path).unwrap();
    // Weights were already quantised in the shipped file, so a second trip is exact.
    assert_eq!(reloaded, model);
    assert_eq!(Classifier::from_bytes(&model.to_bytes()).unwrap(), model);
    for &(_, query) in HAND_WRITTEN {
        assert_eq!(reloaded.classify_text(query), model.classify_text(query));
    }
}

#[test]
fn corrupt_or_missing_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = bundled().to_bytes();

    let truncated = dir.path().join("truncated.bin");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    let corrupt = dir.path().join("corrupt.bin");
    std::fs::write(&corrupt, &flipped).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are not weights").unwrap();

    for path in [&truncated, &corrupt, &text] {
        match Classifier::load(path) {
            Err(error @ RouterError::ModelFile { .. }) => {
                assert!(
                    error.to_string().contains(&*path.to_string_lossy()),
                    "{error}"
                );
            }
            other => panic!(
                "{}: expected a model file error, got {other:?}",
                path.display()
            ),
        }
    }
    let missing = dir.path().join("missing.bin");
    assert!(matches!(
        Classifier::load(&missing),
        Err(RouterError::Io { path, .. }) if path == missing
    ));
    assert!(Classifier::from_bytes(&[]).is_err());
}

#[test]
fn routing_reasons_with_the_real_model() {
    let model = bundled();
    let table = RoutingTable::default();
    let security =
        model.classify_text("How do I protect my login form against credential stuffing?");
    assert_eq!(security.domain, Domain::Security);

    let routed = table.route(&security, |_| true);
    assert_eq!(routed.adapter.as_deref(), Some("security"));
    assert_eq!(routed.reason, RouteReason::Routed);

    let not_loaded = table.route(&security, |name| name != "security");
    assert_eq!(
        (not_loaded.adapter, not_loaded.reason),
        (None, RouteReason::AdapterNotLoaded)
    );

    let strict = RoutingTable {
        threshold: 1.01,
        ..RoutingTable::default()
    };
    assert_eq!(
        strict.route(&security, |_| true).reason,
        RouteReason::BelowThreshold
    );

    let general = model.classify_text("How do I merge two dictionaries in Python?");
    assert_eq!(general.domain, Domain::General);
    assert_eq!(
        table.route(&general, |_| true).reason,
        RouteReason::GeneralDomain
    );

    let json = serde_json::to_value(table.route(&general, |_| true)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"adapter": null, "reason": "general_domain"})
    );
}
