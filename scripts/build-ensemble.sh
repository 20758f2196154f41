#!/usr/bin/env bash
# Rebuilds the bundled ensemble from the repository's text: splits data/train/, trains the four
# domain adapters on the bundled SmolLM2 base with train/<domain>.toml, installs them in
# adapters/<domain>/, and measures base / adapter / RAG / adapter+RAG / auto on evals/ into the
# table between the ensemble-table markers of README.md.
#
#   scripts/build-ensemble.sh            # everything (about 2 h 10 min on 2 cores: 50 min training,
#                                        # ~80 min eval, of which ~24 min per retrieval variant)
#   scripts/build-ensemble.sh train      # splits and adapters only
#   scripts/build-ensemble.sh eval       # the table only, over the installed adapters
#
# JOBS trainings run at once, each on CORES / JOBS threads (default: one per core, which on
# small CPUs trains more tokens per second in total than one run on every core).
set -euo pipefail
cd "$(dirname "$0")/.."

step="${1:-all}"
case "$step" in all | train | eval) ;; *) echo "usage: $0 [all|train|eval]" >&2; exit 2 ;; esac
domains=(biology history security teaching)
work=target/ensemble
sb="${SWITCHBOARD:-target/release/switchboard}"
if [ -z "${SWITCHBOARD:-}" ]; then
  cargo build --release --quiet
fi
cores="$(nproc)"
jobs="${JOBS:-$cores}"
threads=$(( cores / jobs > 0 ? cores / jobs : 1 ))

split() {
  rm -rf "$work/data"
  for set in "${domains[@]}" general; do
    # Same seed, same files: the same split on every machine. No test split: evals/ is the test.
    "$sb" data split --in data/train/"$set"/*.jsonl --out-dir "$work/data/$set" \
      --ratios 0.9,0.1 --seed 7 >/dev/null
  done
}

train_one() {
  local domain="$1" out="$work/adapters/$1"
  rm -rf "$out"
  mkdir -p "$work/logs"
  local started=$SECONDS
  RAYON_NUM_THREADS="$threads" "$sb" train lora --config "train/$domain.toml" \
    >"$work/logs/$domain.log" 2>&1 || { cat "$work/logs/$domain.log" >&2; return 1; }
  echo "$domain: trained in $(( SECONDS - started )) s ($(tail -n 1 "$work/logs/$domain.log"))"
}

install_one() {
  local domain="$1" from="$work/adapters/$1" to="adapters/$1"
  local tmp="adapters/.$domain.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # The adapter and how it was made; training checkpoints stay behind.
  cp "$from"/adapter_config.json "$from"/adapter_model.safetensors "$from"/train_log.jsonl \
    "$from"/loss.png "$tmp"/
  cp "train/$domain.toml" "$tmp/train.toml"
  rm -rf "$to" && mv "$tmp" "$to"
}

train_all() {
  split
  local pids=() running=0
  for domain in "${domains[@]}"; do
    train_one "$domain" &
    pids+=($!)
    running=$(( running + 1 ))
    if [ "$running" -ge "$jobs" ]; then
      wait -n
      running=$(( running - 1 ))
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  for domain in "${domains[@]}"; do install_one "$domain"; done
}

eval_all() {
  mkdir -p "$work" docs
  "$sb" eval run --variants base,adapter,rag,adapter+rag,auto --rag-k "${RAG_K:-2}" \
    --out "$work/results.json" --markdown "$work/table.md" --chart docs/ensemble.png --quiet
  # The table replaces what stands between the markers in README.md.
  awk -v table="$work/table.md" '
    /<!-- ensemble-table:start -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- ensemble-table:end -->/ { skip = 0 }
    !skip { print }
  ' README.md >README.md.tmp && mv README.md.tmp README.md
  echo "wrote $work/results.json, docs/ensemble.png and the table in README.md"
}

started=$SECONDS
case "$step" in
  all) train_all; eval_all ;;
  train) train_all ;;
  eval) eval_all ;;
esac
echo "done in $(( (SECONDS - started) / 60 )) min"
