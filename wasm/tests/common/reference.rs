//! A straightforward f64 reference of every architecture the engine runs, one token at a time,
//! written from the formulas (llama.cpp's graphs) rather than from the engine's code.

use super::{Spec, Weights, GELU, POST_NORMS, QK_NORM, ROPE_NEOX, SCALE_EMBEDDING};

pub fn matvec(w: &[f32], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(&a, b)| a as f64 * b).sum()).collect()
}

pub fn rms_norm(x: &[f64], w: &[f32], eps: f32) -> Vec<f64> {
    let scale = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64 + eps as f64).sqrt();
    x.iter().zip(w).map(|(v, &w)| v * scale * w as f64).collect()
}

/// rms_norm of each w.len()-long piece (per-head norms).
fn rms_norm_pieces(x: &[f64], w: &[f32], eps: f32) -> Vec<f64> {
    x.chunks_exact(w.len()).flat_map(|piece| rms_norm(piece, w, eps)).collect()
}

fn is_windowed(spec: &Spec, layer: u32) -> bool {
    spec.arch.window > 0 && layer % spec.arch.pattern < spec.arch.pattern - 1
}

/// The token's embedding row (times √dim where the architecture scales it).
pub fn embed(spec: &Spec, w: &Weights, token: u32) -> Vec<f64> {
    let dim = spec.dim as usize;
    let scale = if spec.arch.flags & SCALE_EMBEDDING != 0 { (dim as f64).sqrt() } else { 1.0 };
    w[&(0, 0)][token as usize * dim..][..dim].iter().map(|&v| v as f64 * scale).collect()
}

/// RoPE of one layer: NEOX or adjacent pairs, frequency factors, linear or YaRN scaling; windowed
/// layers use their own base and no scaling.
fn rope(x: &mut [f64], spec: &Spec, w: &Weights, pos: usize, layer: u32) {
    let a = &spec.arch;
    let windowed = is_windowed(spec, layer);
    let base = if windowed { a.swa_base as f64 } else { spec.rope_base as f64 };
    let scaled = a.rope_scaling != 0 && !windowed;
    let freq_scale = if scaled { 1.0 / a.rope_factor as f64 } else { 1.0 };
    let yarn = a.rope_scaling == 2;
    let rd = spec.rope_dim as f64;
    // YaRN: the ramp between the pairs that turn 32 and 1 times over the original context, and
    // scaled layers' magnitude 1 + 0.1·ln(factor); all times the attention factor.
    let corr = |turns: f64| rd * (a.yarn_orig_ctx as f64 / (turns * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln());
    let (low, high) = (corr(32.0).floor().max(0.0), corr(1.0).ceil().min(rd - 1.0));
    let yarn_magnitude = if yarn && scaled { 1.0 + 0.1 * (a.rope_factor as f64).ln() } else { 1.0 };
    let mscale = a.rope_attn_factor as f64 * yarn_magnitude;
    let half = spec.rope_dim as usize / 2;
    for head in x.chunks_exact_mut(spec.head_dim as usize) {
        for i in 0..half {
            let factor = if a.rope_freqs { w[&(12, 0)][i] as f64 } else { 1.0 };
            let extrapolated = pos as f64 * base.powf(-2.0 * i as f64 / rd) / factor;
            let mut theta = freq_scale * extrapolated;
            if yarn {
                let ramp = 1.0 - ((i as f64 - low) / (high - low).max(0.001)).clamp(0.0, 1.0);
                theta = theta * (1.0 - ramp) + extrapolated * ramp;
            }
            let (j, k) = if a.flags & ROPE_NEOX != 0 { (i, i + half) } else { (2 * i, 2 * i + 1) };
            let (x0, x1) = (head[j], head[k]);
            head[j] = (x0 * theta.cos() - x1 * theta.sin()) * mscale;
            head[k] = (x0 * theta.sin() + x1 * theta.cos()) * mscale;
        }
    }
}

/// Keys and values per layer, one entry per position so far.
pub struct Cache {
    keys: Vec<Vec<Vec<f64>>>,
    values: Vec<Vec<Vec<f64>>>,
}

impl Cache {
    pub fn new(spec: &Spec) -> Cache {
        Cache { keys: vec![Vec::new(); spec.layers as usize], values: vec![Vec::new(); spec.layers as usize] }
    }

    /// Positions cached so far: the next token's position.
    pub fn len(&self) -> usize {
        self.keys[0].len()
    }
}

fn plus_bias(mut x: Vec<f64>, w: &Weights, kind: u32, layer: u32) -> Vec<f64> {
    if let Some(bias) = w.get(&(kind, layer)) {
        for (v, &b) in x.iter_mut().zip(bias) {
            *v += b as f64;
        }
    }
    x
}

/// One token through every layer of `spec` (weights `w[(kind, layer)]`) at the next position
/// of `cache`; `x` is the residual stream.
pub fn layers(spec: &Spec, w: &Weights, x: &mut [f64], cache: &mut Cache) {
    let a = &spec.arch;
    let hd = spec.head_dim as usize;
    let group = (spec.heads / spec.kv_heads) as usize;
    let pos = cache.len();
    let scale_dim = if a.attn_scale_dim == 0 { spec.head_dim } else { a.attn_scale_dim };
    let post_norm = |v: Vec<f64>, kind: u32, l: u32| if a.flags & POST_NORMS != 0 { rms_norm(&v, &w[&(kind, l)], spec.eps) } else { v };
    for l in 0..spec.layers {
        let li = l as usize;
        let xb = rms_norm(x, &w[&(3, l)], spec.eps);
        let mut q = plus_bias(matvec(&w[&(4, l)], &xb), w, 13, l);
        let mut k = plus_bias(matvec(&w[&(5, l)], &xb), w, 14, l);
        let v = plus_bias(matvec(&w[&(6, l)], &xb), w, 15, l);
        if a.flags & QK_NORM != 0 {
            q = rms_norm_pieces(&q, &w[&(16, l)], spec.eps);
            k = rms_norm_pieces(&k, &w[&(17, l)], spec.eps);
        }
        rope(&mut q, spec, w, pos, l);
        rope(&mut k, spec, w, pos, l);
        cache.keys[li].push(k);
        cache.values[li].push(v);
        let first = if is_windowed(spec, l) { (pos + 1).saturating_sub(a.window as usize) } else { 0 };
        let mut att = vec![0.0; q.len()];
        for h in 0..spec.heads as usize {
            let kvh = h / group;
            let qh = &q[h * hd..][..hd];
            let scores: Vec<f64> = cache.keys[li][first..]
                .iter()
                .map(|k| qh.iter().zip(&k[kvh * hd..][..hd]).map(|(a, b)| a * b).sum::<f64>() / (scale_dim as f64).sqrt())
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = exps.iter().sum();
            for (p, v) in exps.iter().zip(&cache.values[li][first..]) {
                for i in 0..hd {
                    att[h * hd + i] += p / total * v[kvh * hd + i];
                }
            }
        }
        for (x, o) in x.iter_mut().zip(post_norm(matvec(&w[&(7, l)], &att), 18, l)) {
            *x += o;
        }
        let xb = rms_norm(x, &w[&(8, l)], spec.eps);
        let gate = matvec(&w[&(9, l)], &xb);
        let up = matvec(&w[&(10, l)], &xb);
        let act = |g: f64| {
            if a.flags & GELU != 0 {
                0.5 * g * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g * g * g)).tanh())
            } else {
                g / (1.0 + (-g).exp())
            }
        };
        let hidden: Vec<f64> = gate.iter().zip(&up).map(|(&g, u)| act(g) * u).collect();
        for (x, d) in x.iter_mut().zip(post_norm(matvec(&w[&(11, l)], &hidden), 19, l)) {
            *x += d;
        }
    }
}

/// Logits from the final hidden state: the output matrix, then Gemma's soft-capping if any.
pub fn logits(spec: &Spec, output: &[f32], hidden: &[f64]) -> Vec<f64> {
    let cap = spec.arch.softcap as f64;
    matvec(output, hidden).into_iter().map(|l| if cap > 0.0 { (l / cap).tanh() * cap } else { l }).collect()
}

/// max |got - want| / max |want|.
pub fn relative_error(got: &[f32], want: &[f64]) -> f64 {
    let max_diff = got.iter().zip(want).map(|(&g, w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    let max_abs = want.iter().map(|w| w.abs()).fold(0.0, f64::max);
    max_diff / max_abs
}
