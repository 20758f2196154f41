//! The gradient the trainer uses is the true derivative of its loss.

use candle_core::{DType, Device, Tensor, Var};
use switchboard_engine::TextTokenizer;
use switchboard_model::{AdapterConfig, CausalLm, ForwardMode, Proj};
use switchboard_train::{batch_nll, parse_record, LoraParams, Renderer, TokenizedExample};

use crate::common::tiny_model;

fn examples() -> Vec<TokenizedExample> {
    let renderer = Renderer::new(
        TextTokenizer::from_dir(&tiny_model()).expect("tokenizer"),
        64,
    );
    [
        r#"{"instruction": "What is the capital of Zorbia?", "output": "Plimton"}"#,
        r#"{"text": "The river runs past the old mill."}"#,
    ]
    .iter()
    .map(|line| {
        renderer
            .render(&parse_record(line).expect("record").1)
            .expect("render")
    })
    .collect()
}

fn mean_loss(model: &CausalLm, params: &LoraParams, examples: &[TokenizedExample]) -> Tensor {
    let adapter = params.adapter().expect("adapter");
    let items: Vec<_> = examples.iter().map(|e| (e, Some(&adapter))).collect();
    let (nll, count) = batch_nll(model, &items, ForwardMode::Differentiable).expect("loss");
    (nll.to_dtype(DType::F64).expect("f64") / count as f64).expect("mean")
}

fn scalar(t: &Tensor) -> f64 {
    t.to_scalar::<f64>().expect("scalar")
}

/// Moves every variable by `eps * direction`.
fn shift(vars: &[(String, Var)], direction: &[Tensor], eps: f64) {
    for ((_, var), d) in vars.iter().zip(direction) {
        let moved = (var.as_tensor() + (d * eps).expect("scale")).expect("add");
        var.set(&moved).expect("set");
    }
}

#[test]
fn lora_gradients_match_central_finite_differences() {
    // f64 weights; the model keeps RMSNorm statistics and logits in f32, which bounds the
    // precision of the finite differences, hence the step size and tolerance below.
    let model = CausalLm::load(tiny_model(), DType::F64, &Device::Cpu).expect("model");
    let config = AdapterConfig::new(4, 8.0, &[Proj::QProj, Proj::VProj, Proj::DownProj]);
    let params =
        LoraParams::init(model.config(), config, 3, DType::F64, &Device::Cpu).expect("init");
    let vars = params.vars();
    // B starts at zero (so A would get no gradient): give it values first.
    for (k, (name, var)) in vars.iter().enumerate() {
        if name.contains("lora_B") {
            let n = var.elem_count();
            let values: Vec<f64> = (0..n)
                .map(|i| 0.05 * ((i * 7 + k * 13) as f64).sin())
                .collect();
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).expect("values"))
                .expect("set");
        }
    }
    let examples = examples();
    let loss = mean_loss(&model, &params, &examples);
    let grads = loss.backward().expect("backward");
    let grads: Vec<Tensor> = vars
        .iter()
        .map(|(name, v)| {
            grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"))
                .clone()
        })
        .collect();

    // Directional derivatives: along the gradient itself and along two fixed pseudo-random
    // directions, each normalised to unit length over all variables.
    let pseudo = |seed: usize| -> Vec<Tensor> {
        vars.iter()
            .enumerate()
            .map(|(k, (_, v))| {
                let values: Vec<f64> = (0..v.elem_count())
                    .map(|i| ((i * 31 + k * 17 + seed * 101) as f64 * 0.37).sin())
                    .collect();
                Tensor::from_vec(values, v.shape(), &Device::Cpu).expect("direction")
            })
            .collect()
    };
    for (label, direction) in [
        ("gradient", grads.clone()),
        ("random 1", pseudo(1)),
        ("random 2", pseudo(2)),
    ] {
        let norm: f64 = direction
            .iter()
            .map(|d| scalar(&d.sqr().expect("sqr").sum_all().expect("sum")))
            .sum::<f64>()
            .sqrt();
        let unit: Vec<Tensor> = direction
            .iter()
            .map(|d| (d / norm).expect("normalise"))
            .collect();
        let analytic: f64 = grads
            .iter()
            .zip(&unit)
            .map(|(g, d)| scalar(&(g * d).expect("mul").sum_all().expect("sum")))
            .sum();
        let eps = 1e-2;
        shift(&vars, &unit, eps);
        let plus = scalar(&mean_loss(&model, &params, &examples));
        shift(&vars, &unit, -2.0 * eps);
        let minus = scalar(&mean_loss(&model, &params, &examples));
        shift(&vars, &unit, eps);
        let numeric = (plus - minus) / (2.0 * eps);
        let error = (numeric - analytic).abs();
        eprintln!("{label}: analytic {analytic:.6}, finite difference {numeric:.6}");
        assert!(
            error <= 2e-3 * analytic.abs().max(0.05),
            "{label}: analytic {analytic:.6} vs finite difference {numeric:.6}"
        );
    }
}
