//! A straightforward f64 llama reference, one token at a time, for the tests.

use super::{Spec, Weights};

pub fn matvec(w: &[f32], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(&a, b)| a as f64 * b).sum()).collect()
}

pub fn rms_norm(x: &[f64], w: &[f32], eps: f32) -> Vec<f64> {
    let scale = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64 + eps as f64).sqrt();
    x.iter().zip(w).map(|(v, &w)| v * scale * w as f64).collect()
}

fn rope(x: &mut [f64], spec: &Spec, pos: usize) {
    for head in x.chunks_exact_mut(spec.head_dim as usize) {
        for i in 0..(spec.rope_dim / 2) as usize {
            let theta = pos as f64 * (spec.rope_base as f64).powf(-2.0 * i as f64 / spec.rope_dim as f64);
            let (x0, x1) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = x0 * theta.cos() - x1 * theta.sin();
            head[2 * i + 1] = x0 * theta.sin() + x1 * theta.cos();
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

/// One token through every llama layer of `spec` (weights `w[(kind, layer)]`) at the
/// next position of `cache`; `x` is the residual stream.
pub fn layers(spec: &Spec, w: &Weights, x: &mut [f64], cache: &mut Cache) {
    let hd = spec.head_dim as usize;
    let group = (spec.heads / spec.kv_heads) as usize;
    let pos = cache.len();
    for l in 0..spec.layers {
        let li = l as usize;
        let xb = rms_norm(x, &w[&(3, l)], spec.eps);
        let mut q = matvec(&w[&(4, l)], &xb);
        let mut k = matvec(&w[&(5, l)], &xb);
        rope(&mut q, spec, pos);
        rope(&mut k, spec, pos);
        cache.keys[li].push(k);
        cache.values[li].push(matvec(&w[&(6, l)], &xb));
        let mut att = vec![0.0; q.len()];
        for h in 0..spec.heads as usize {
            let kvh = h / group;
            let qh = &q[h * hd..][..hd];
            let scores: Vec<f64> = cache.keys[li]
                .iter()
                .map(|k| qh.iter().zip(&k[kvh * hd..][..hd]).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt())
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = exps.iter().sum();
            for (p, v) in exps.iter().zip(&cache.values[li]) {
                for i in 0..hd {
                    att[h * hd + i] += p / total * v[kvh * hd + i];
                }
            }
        }
        for (a, b) in x.iter_mut().zip(matvec(&w[&(7, l)], &att)) {
            *a += b;
        }
        let xb = rms_norm(x, &w[&(8, l)], spec.eps);
        let gate = matvec(&w[&(9, l)], &xb);
        let up = matvec(&w[&(10, l)], &xb);
        let hidden: Vec<f64> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
        for (a, b) in x.iter_mut().zip(matvec(&w[&(11, l)], &hidden)) {
            *a += b;
        }
    }
}

/// max |got - want| / max |want|.
pub fn relative_error(got: &[f32], want: &[f64]) -> f64 {
    let max_diff = got.iter().zip(want).map(|(&g, w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    let max_abs = want.iter().map(|w| w.abs()).fold(0.0, f64::max);
    max_diff / max_abs
}
