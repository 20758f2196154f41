use switchboard_router::{load_split, train, TrainOptions};
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_default();
    let l2: f32 = std::env::args().nth(2).and_then(|v| v.parse().ok()).unwrap_or(0.003);
    let data = load_split(&dir, "train").unwrap_or_default();
    let model = match train(&data, &TrainOptions { l2, ..TrainOptions::default() }) { Ok(m) => m, Err(e) => { eprintln!("{e}"); return; } };
    for line in std::io::stdin().lines().map_while(|l| l.ok()) {
        let d = model.classify_text(&line);
        let s: Vec<String> = d.scores.iter().map(|(k, p)| format!("{}={:.2}", &k.as_str()[..3], p)).collect();
        println!("{:<60} {}", line, s.join(" "));
    }
}
