//! The forward pass against a plain f64 reference, and the batching invariant.

mod common;

use common::*;

/// Odd sizes on purpose: dim ≠ n_heads·head_dim, GQA (4 heads over 2 kv heads),
/// rope_dim < head_dim, nothing a multiple of 32 (so F32 weights only).
const ODD: Spec = Spec {
    vocab: 37,
    dim: 20,
    layers: 2,
    heads: 4,
    kv_heads: 2,
    ffn: 30,
    ctx: 12,
    head_dim: 6,
    rope_dim: 4,
    rope_base: 10000.0,
    eps: 1e-5,
    kv_f16: false,
    max_batch: 5,
};

fn matvec(w: &[f32], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(&a, b)| a as f64 * b).sum()).collect()
}

fn rms_norm(x: &[f64], w: &[f32], eps: f32) -> Vec<f64> {
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

/// Straightforward llama decode in f64: returns logits per position.
fn reference(spec: &Spec, m: &Built, tokens: &[u32], tied: bool) -> Vec<Vec<f64>> {
    let (dim, hd) = (spec.dim as usize, spec.head_dim as usize);
    let group = (spec.heads / spec.kv_heads) as usize;
    let mut keys: Vec<Vec<Vec<f64>>> = vec![Vec::new(); spec.layers as usize];
    let mut values = keys.clone();
    let mut all_logits = Vec::new();
    for (pos, &token) in tokens.iter().enumerate() {
        let embd = m.get(0, 0);
        let mut x: Vec<f64> = embd[token as usize * dim..][..dim].iter().map(|&v| v as f64).collect();
        for l in 0..spec.layers {
            let li = l as usize;
            let xb = rms_norm(&x, m.get(3, l), spec.eps);
            let mut q = matvec(m.get(4, l), &xb);
            let mut k = matvec(m.get(5, l), &xb);
            rope(&mut q, spec, pos);
            rope(&mut k, spec, pos);
            keys[li].push(k);
            values[li].push(matvec(m.get(6, l), &xb));
            let mut att = vec![0.0; q.len()];
            for h in 0..spec.heads as usize {
                let kvh = h / group;
                let qh = &q[h * hd..][..hd];
                let scores: Vec<f64> = keys[li]
                    .iter()
                    .map(|k| qh.iter().zip(&k[kvh * hd..][..hd]).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt())
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                for (p, v) in exps.iter().zip(&values[li]) {
                    for i in 0..hd {
                        att[h * hd + i] += p / total * v[kvh * hd + i];
                    }
                }
            }
            for (a, b) in x.iter_mut().zip(matvec(m.get(7, l), &att)) {
                *a += b;
            }
            let xb = rms_norm(&x, m.get(8, l), spec.eps);
            let gate = matvec(m.get(9, l), &xb);
            let up = matvec(m.get(10, l), &xb);
            let hidden: Vec<f64> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
            for (a, b) in x.iter_mut().zip(matvec(m.get(11, l), &hidden)) {
                *a += b;
            }
        }
        let out = if tied { m.get(0, 0) } else { m.get(2, 0) };
        all_logits.push(matvec(out, &rms_norm(&x, m.get(1, 0), spec.eps)));
    }
    all_logits
}

fn relative_error(got: &[f32], want: &[f64]) -> f64 {
    let max_diff = got.iter().zip(want).map(|(&g, w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    let max_abs = want.iter().map(|w| w.abs()).fold(0.0, f64::max);
    max_diff / max_abs
}

#[test]
fn logits_match_f64_reference() {
    let tokens = [3u32, 36, 0, 17, 17, 5, 29, 11, 2, 30, 8, 1];
    for tied in [false, true] {
        let m = build(&ODD, F32, 7, tied);
        let want = reference(&ODD, &m, &tokens, tied);
        for (pos, &token) in tokens.iter().enumerate() {
            let (logits, _) = forward(&ODD, m.handle, &[token], pos as u32, 0);
            let err = relative_error(&logits, &want[pos]);
            assert!(err < 1e-4, "tied {tied} pos {pos}: relative error {err:e}");
        }
        // A batched prefill gives the same answers for every row.
        let (logits, _) = forward(&ODD, m.handle, &tokens[..5], 0, 0);
        for (row, want_row) in logits.chunks_exact(ODD.vocab as usize).zip(&want) {
            assert!(relative_error(row, want_row) < 1e-4);
        }
        recyclegpt_wasm::rg_model_free(m.handle);
    }
}

/// Runs `tokens` one at a time, then again in chunks of `chunk` from position 0
/// (overwriting the cache), and demands bit-identical logits and hidden states.
fn assert_batched_equals_single(spec: &Spec, ty: u32, chunk: usize) {
    let tokens: Vec<u32> = (0..spec.ctx).map(|i| (i * 7 + 3) % spec.vocab).collect();
    let m = build(spec, ty, 11 + ty as u64, ty == Q4_0);
    let singles: Vec<_> = tokens.iter().enumerate().map(|(p, &t)| forward(spec, m.handle, &[t], p as u32, 0)).collect();
    let (vocab, dim) = (spec.vocab as usize, spec.dim as usize);
    for (c, group) in tokens.chunks(chunk).enumerate() {
        let pos = c * chunk;
        // Ask for logits of the last two rows only: rows before logits_from are skipped.
        let logits_from = group.len().saturating_sub(2);
        let (logits, hidden) = forward(spec, m.handle, group, pos as u32, logits_from as u32);
        for (i, single) in singles[pos..pos + group.len()].iter().enumerate() {
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&hidden[i * dim..][..dim]), bits(&single.1), "type {ty} pos {}: hidden", pos + i);
            if i >= logits_from {
                let row = &logits[(i - logits_from) * vocab..][..vocab];
                assert_eq!(bits(row), bits(&single.0), "type {ty} pos {}: logits", pos + i);
            }
        }
    }
    recyclegpt_wasm::rg_model_free(m.handle);
}

#[test]
fn batched_forward_is_bit_identical_to_single_tokens() {
    let spec = Spec {
        vocab: 50,
        dim: 64,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        ffn: 96,
        ctx: 11,
        head_dim: 16,
        rope_dim: 8,
        rope_base: 10000.0,
        eps: 1e-6,
        kv_f16: true,
        max_batch: 4,
    };
    for ty in [F32, F16, Q8_0, Q4_0] {
        for kv_f16 in [true, false] {
            assert_batched_equals_single(&Spec { kv_f16, ..spec }, ty, 4);
        }
    }
    assert_batched_equals_single(&ODD, F32, 5);
}
