//! Cross-checks against candle-transformers' stock Qwen2 on the same weights, and the
//! differentiable path that the trainer will use.

mod common;

use std::collections::HashMap;

use candle_core::Var;
use candle_nn::{VarBuilder, VarMap};
use common::*;
use switchboard_model::{
    AdapterConfig, CausalLm, DType, Device, ForwardMode, LogitsWanted, LoraAdapter, LoraPair, Proj,
    SeqInput, Tensor,
};

#[test]
fn base_matches_candle_transformers_qwen2() {
    use candle_transformers::models::qwen2 as stock;
    let model = load_model("base");
    let cfg = model.config();
    // The stock Config has no serde defaults (`sliding_window: null` does not parse), so it is
    // built by hand from ours.
    let stock_cfg = stock::Config {
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_hidden_layers: cfg.num_hidden_layers,
        num_attention_heads: cfg.num_attention_heads,
        num_key_value_heads: cfg.num_kv_heads(),
        max_position_embeddings: cfg.max_positions(),
        sliding_window: cfg.max_positions(),
        max_window_layers: cfg.num_hidden_layers,
        tie_word_embeddings: cfg.tie_word_embeddings,
        rope_theta: cfg.rope_theta(),
        rms_norm_eps: cfg.rms_norm_eps,
        use_sliding_window: false,
        hidden_act: candle_nn::Activation::Silu,
    };
    let weights = [golden().join("base/model.safetensors")];
    // SAFETY: fixture files are not modified while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, &Device::Cpu) }
        .expect("mmap");
    let mut theirs = stock::ModelForCausalLM::new(&stock_cfg, vb).expect("stock model");

    let expected = Expected::load("base");
    for i in 0..3 {
        let prompt = expected.ids(&format!("prompt{i}.input_ids"));
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("ids");
        theirs.clear_kv_cache();
        let stock_logits = theirs.forward(&input, 0).expect("stock forward"); // [1, 1, vocab]
        let mut cache = model.new_cache();
        let mut batch = [SeqInput {
            tokens: &prompt,
            cache: &mut cache,
            adapter: None,
            logits: LogitsWanted::Last,
        }];
        let ours = model
            .forward(&mut batch, ForwardMode::Inference)
            .expect("forward")
            .remove(0);
        let diff = max_abs_diff(&ours, &stock_logits);
        assert!(
            diff <= LOGITS_TOL,
            "prompt{i}: ours vs candle-transformers differ by {diff}"
        );
    }
}

fn next_token_loss(logits: &Tensor, tokens: &[u32]) -> Tensor {
    // Predict token t+1 from position t.
    let n = tokens.len();
    let targets = Tensor::new(&tokens[1..], &Device::Cpu).expect("targets");
    let logits = logits.narrow(0, 0, n - 1).expect("narrow");
    candle_nn::loss::cross_entropy(&logits, &targets).expect("loss")
}

#[test]
fn lora_variables_receive_gradients_and_training_lowers_the_loss() {
    let model = load_model("base");
    let cfg = model.config().clone();
    let tokens = Expected::load("base").stream(1);
    // Fresh LoRA variables on every projection: A random, B zero (PEFT's default init).
    let mut vars = Vec::new();
    let mut layers: Vec<[Option<LoraPair>; 7]> = Vec::new();
    for _ in 0..cfg.num_hidden_layers {
        let mut pairs: [Option<LoraPair>; 7] = Default::default();
        for (slot, proj) in pairs.iter_mut().zip(Proj::ALL) {
            let (i, o) = (cfg.proj_in_features(proj), cfg.proj_out_features(proj));
            let a = Var::randn(0f32, 0.1, (4, i), &Device::Cpu).expect("a");
            let b = Var::zeros((o, 4), DType::F32, &Device::Cpu).expect("b");
            *slot = Some(LoraPair {
                a: a.as_tensor().clone(),
                b: b.as_tensor().clone(),
                scale: 2.0,
            });
            vars.push(a);
            vars.push(b);
        }
        layers.push(pairs);
    }
    let adapter = LoraAdapter::from_pairs(
        "trained".into(),
        AdapterConfig::new(4, 8.0, &Proj::ALL),
        layers,
        &cfg,
    )
    .expect("adapter from vars");
    let mut optimizer = candle_nn::AdamW::new_lr(vars.clone(), 1e-2).expect("optimizer");
    use candle_nn::Optimizer;

    let mut losses = Vec::new();
    for step in 0..8 {
        let mut cache = model.new_cache();
        let mut batch = [SeqInput {
            tokens: &tokens,
            cache: &mut cache,
            adapter: Some(&adapter),
            logits: LogitsWanted::All,
        }];
        let logits = model
            .forward(&mut batch, ForwardMode::Differentiable)
            .expect("forward")
            .remove(0);
        let loss = next_token_loss(&logits, &tokens);
        losses.push(loss.to_scalar::<f32>().expect("scalar"));
        let grads = loss.backward().expect("backward");
        if step == 0 {
            // B starts at zero, so only B's gradient is non-zero at step 0; every B must get one.
            for (k, var) in vars.iter().enumerate().filter(|(k, _)| k % 2 == 1) {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("no gradient for var {k}"));
                let norm = g
                    .sqr()
                    .and_then(|g| g.sum_all())
                    .and_then(|g| g.to_scalar::<f32>())
                    .expect("norm");
                assert!(norm > 0.0, "zero gradient for lora_B {k}");
            }
        }
        optimizer.step(&grads).expect("step");
    }
    assert!(losses[7] < losses[0] * 0.8, "loss did not fall: {losses:?}");
}

#[test]
fn every_base_weight_can_be_a_trainable_variable() {
    let model_dir = golden().join("base");
    let cfg = switchboard_model::Checkpoint::open(&model_dir)
        .expect("open")
        .config;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = CausalLm::new(&cfg, vb).expect("model over variables");
    // Copy the golden weights into the variables, then check the logits are the golden ones.
    let weights: HashMap<String, Tensor> =
        candle_core::safetensors::load(model_dir.join("model.safetensors"), &Device::Cpu)
            .expect("load");
    {
        let data = varmap.data().lock().expect("varmap lock");
        assert_eq!(
            data.len(),
            weights.len(),
            "one variable per checkpoint tensor"
        );
        for (name, var) in data.iter() {
            var.set(&weights[name]).expect("set");
        }
    }
    let tokens = Expected::load("base").ids("prompt1.input_ids");
    let mut cache = model.new_cache();
    let mut batch = [SeqInput {
        tokens: &tokens,
        cache: &mut cache,
        adapter: None,
        logits: LogitsWanted::All,
    }];
    let logits = model
        .forward(&mut batch, ForwardMode::Differentiable)
        .expect("forward")
        .remove(0);
    assert!(max_abs_diff(&logits, Expected::load("base").tensor("prompt1.logits")) <= LOGITS_TOL);
    let loss = next_token_loss(&logits, &tokens);
    let grads = loss.backward().expect("backward");
    for var in varmap.all_vars() {
        let g = grads
            .get(var.as_tensor())
            .expect("every weight gets a gradient");
        let norm = g
            .sqr()
            .and_then(|g| g.sum_all())
            .and_then(|g| g.to_scalar::<f32>())
            .expect("norm");
        assert!(
            norm > 0.0 && norm.is_finite(),
            "gradient norm {norm} for a {:?} weight",
            var.dims()
        );
    }
}
