//! The forward pass against a plain f64 reference, and the batching invariant.

mod common;

use common::reference::relative_error;
use common::*;

/// Straightforward llama decode in f64: returns logits per position.
fn reference_logits(spec: &Spec, m: &Built, tokens: &[u32], tied: bool) -> Vec<Vec<f64>> {
    let dim = spec.dim as usize;
    let mut cache = reference::Cache::new(spec);
    let mut all_logits = Vec::new();
    for &token in tokens {
        let embd = m.get(0, 0);
        let mut x: Vec<f64> = embd[token as usize * dim..][..dim].iter().map(|&v| v as f64).collect();
        reference::layers(spec, &m.weights, &mut x, &mut cache);
        let out = if tied { m.get(0, 0) } else { m.get(2, 0) };
        all_logits.push(reference::matvec(out, &reference::rms_norm(&x, m.get(1, 0), spec.eps)));
    }
    all_logits
}

#[test]
fn logits_match_f64_reference() {
    let tokens = [3u32, 36, 0, 17, 17, 5, 29, 11, 2, 30, 8, 1];
    for tied in [false, true] {
        let m = build(&ODD, F32, 7, tied);
        let want = reference_logits(&ODD, &m, &tokens, tied);
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
        kv: KV_F16,
        max_batch: 4,
    };
    for ty in [F32, F16, Q8_0, Q4_0] {
        for kv in [KV_F16, KV_F16_WIDE, KV_F32] {
            assert_batched_equals_single(&Spec { kv, ..spec }, ty, 4);
        }
    }
    assert_batched_equals_single(&ODD, F32, 5);
}

/// An f16 cache kept widened in f32 holds the same numbers: logits and hidden states bit for bit.
#[test]
fn widened_f16_cache_equals_f16_cache() {
    let spec = Spec { kv: KV_F16, ..ODD };
    let tokens: Vec<u32> = (0..spec.ctx).map(|i| (i * 5 + 1) % spec.vocab).collect();
    let run = |kv: u32| {
        let spec = Spec { kv, ..spec };
        let m = build(&spec, F32, 3, false);
        let mut out = forward(&spec, m.handle, &tokens[..4], 0, 0);
        for (p, &t) in tokens.iter().enumerate().skip(4) {
            let (logits, hidden) = forward(&spec, m.handle, &[t], p as u32, 0);
            out.0.extend(logits);
            out.1.extend(hidden);
        }
        recyclegpt_wasm::rg_model_free(m.handle);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        (bits(&out.0), bits(&out.1))
    };
    let (narrow, wide, plain) = (run(KV_F16), run(KV_F16_WIDE), run(KV_F32));
    assert_eq!(narrow, wide);
    assert_ne!(narrow.0, plain.0, "the f16 rounding shows against an f32 cache");
}
