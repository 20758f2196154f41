//! Query latency: the real kb (its evaluation questions as queries) and a synthetic 10k-chunk
//! index. Prints p50/p99 over a few thousand queries, then runs the criterion benchmarks.
//!
//! `cargo bench -p switchboard-rag --bench search`; under `cargo test` it runs a short smoke
//! version so the bench keeps compiling and working.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;
use switchboard_rag::{
    load_eval_set, ChunkOptions, Document, KnowledgeBase, SearchOptions, DOMAINS,
};

/// Synthetic documents × sections: one chunk per section, 10 000 chunks.
const SYNTHETIC_DOCUMENTS: usize = 1_000;
const SECTIONS_PER_DOCUMENT: usize = 10;
const WORDS_PER_SECTION: usize = 150;
const VOCABULARY: usize = 30_000;

fn main() {
    let full_run = std::env::args().any(|arg| arg == "--bench");
    let loop_queries = if full_run { 5_000 } else { 200 };

    let kb_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kb");
    let real = kb_dir.join("eval").is_dir().then(|| {
        let kb = KnowledgeBase::in_ram(&kb_dir).expect("index the kb");
        let questions = load_eval_set(kb_dir.join("eval")).expect("load the eval sets");
        let queries: Vec<String> = questions.into_iter().map(|q| q.question).collect();
        (kb, queries)
    });
    let started = Instant::now();
    let synthetic = synthetic_kb();
    println!(
        "synthetic index: {} chunks built in {:.2?}",
        synthetic.stats().chunks,
        started.elapsed()
    );
    let mut rng = Rng(0x5eed);
    let synthetic_queries: Vec<String> = (0..500).map(|_| sentence(&mut rng, 8)).collect();

    let top5 = SearchOptions::top(5);
    let in_domain = SearchOptions::top(5).in_domain("history");
    if let Some((kb, queries)) = &real {
        println!(
            "kb: {} documents, {} chunks",
            kb.stats().documents,
            kb.stats().chunks
        );
        latency_report("kb, top 5", kb, queries, &top5, loop_queries);
        latency_report(
            "kb, top 5 in one domain",
            kb,
            queries,
            &in_domain,
            loop_queries,
        );
    }
    latency_report(
        "synthetic 10k, top 5",
        &synthetic,
        &synthetic_queries,
        &top5,
        loop_queries,
    );

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    if let Some((kb, queries)) = &real {
        bench_queries(&mut criterion, "kb/top5", kb, queries, &top5);
        bench_queries(&mut criterion, "kb/top5_domain", kb, queries, &in_domain);
    }
    bench_queries(
        &mut criterion,
        "synthetic10k/top5",
        &synthetic,
        &synthetic_queries,
        &top5,
    );
    criterion.final_summary();
}

/// One benchmark iteration is one query, cycling through `queries`.
fn bench_queries(
    c: &mut Criterion,
    name: &str,
    kb: &KnowledgeBase,
    queries: &[String],
    options: &SearchOptions,
) {
    let mut next = queries.iter().cycle();
    c.bench_function(name, |b| {
        b.iter(|| {
            let query = next.next().map_or("", String::as_str);
            black_box(kb.search(black_box(query), options).expect("search"))
        })
    });
}

/// Times `count` queries one by one and prints the percentiles.
fn latency_report(
    label: &str,
    kb: &KnowledgeBase,
    queries: &[String],
    options: &SearchOptions,
    count: usize,
) {
    // Warm the caches (doc store blocks, term dictionaries) like a server that has run a while.
    for query in queries.iter().take(100) {
        black_box(kb.search(query, options).expect("search"));
    }
    let mut samples: Vec<Duration> = queries
        .iter()
        .cycle()
        .take(count)
        .map(|query| {
            let start = Instant::now();
            black_box(kb.search(query, options).expect("search"));
            start.elapsed()
        })
        .collect();
    samples.sort();
    let at = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile).round() as usize];
    println!(
        "{label:<26} {count} queries: p50 {:>8.1?}  p90 {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    );
}

/// 10k chunks of Zipf-distributed made-up words across the four domains.
fn synthetic_kb() -> KnowledgeBase {
    let mut rng = Rng(42);
    let documents: Vec<Document> = (0..SYNTHETIC_DOCUMENTS)
        .map(|n| {
            let body = (0..SECTIONS_PER_DOCUMENT)
                .map(|s| {
                    format!(
                        "## Section {s} {}\n\n{}",
                        word(&mut rng),
                        sentence(&mut rng, WORDS_PER_SECTION)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n\n");
            let domain = DOMAINS[n % DOMAINS.len()];
            Document {
                path: format!("{domain}/doc-{n}.md"),
                title: format!("{} {}", word(&mut rng), word(&mut rng)),
                domain: domain.to_owned(),
                tags: Vec::new(),
                body,
            }
        })
        .collect();
    let options = ChunkOptions {
        max_words: WORDS_PER_SECTION + 20,
        ..ChunkOptions::default()
    };
    KnowledgeBase::from_documents_with(&documents, &options).expect("index synthetic documents")
}

fn sentence(rng: &mut Rng, words: usize) -> String {
    (0..words).map(|_| word(rng)).collect::<Vec<_>>().join(" ") + "."
}

/// A pronounceable word; rank drawn log-uniformly, so a few words are everywhere and most are
/// rare, like real text.
fn word(rng: &mut Rng) -> String {
    let rank = ((VOCABULARY as f64).powf(rng.unit()) as usize).saturating_sub(1);
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "dan", "gol", "hin", "jor", "pel",
        "quo", "zet",
    ];
    let mut n = rank;
    let mut out = String::new();
    loop {
        out.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    out
}

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
