//! The forward pass of every architecture against a plain f64 reference, the batching invariant,
//! KV sequences, and vectors stored in F16.

mod common;

use common::reference::relative_error;
use common::*;

/// Straightforward decode in f64: returns logits per position.
fn reference_logits(spec: &Spec, m: &Built, tokens: &[u32], tied: bool) -> Vec<Vec<f64>> {
    let mut cache = reference::Cache::new(spec);
    let mut all_logits = Vec::new();
    for &token in tokens {
        let mut x = reference::embed(spec, &m.weights, token);
        reference::layers(spec, &m.weights, &mut x, &mut cache);
        let out = if tied { m.get(0, 0) } else { m.get(2, 0) };
        all_logits.push(reference::logits(spec, out, &reference::rms_norm(&x, m.get(1, 0), spec.eps)));
    }
    all_logits
}

/// The odd shape (rope_dim < head_dim, GQA, dim ≠ heads·head_dim) in each architecture; a context
/// long enough to pass Gemma's window and YaRN's original context.
fn architectures() -> Vec<(&'static str, Spec)> {
    let spec = Spec { ctx: 12, ..ODD };
    vec![
        ("llama", spec),
        ("llama3-yarn", Spec { arch: LLAMA3_YARN, ..spec }),
        ("linear", Spec { arch: LINEAR, ..spec }),
        ("qwen2", Spec { arch: QWEN2, ..spec }),
        ("qwen3", Spec { arch: QWEN3, ..spec }),
        ("gemma3", Spec { arch: GEMMA3, layers: 3, ..spec }),
    ]
}

#[test]
fn logits_match_f64_reference() {
    let tokens = [3u32, 36, 0, 17, 17, 5, 29, 11, 2, 30, 8, 1];
    for (name, spec) in architectures() {
        // GELU goes through f16 as in ggml: its rounding shows at ~1e-3.
        let limit = if spec.arch.flags & GELU != 0 { 5e-3 } else { 1e-4 };
        for tied in [false, true] {
            let m = build(&spec, F32, 7, tied);
            let want = reference_logits(&spec, &m, &tokens, tied);
            for (pos, &token) in tokens.iter().enumerate() {
                let (logits, _) = forward(&spec, m.handle, &[token], pos as u32, 0);
                let err = relative_error(&logits, &want[pos]);
                assert!(err < limit, "{name} tied {tied} pos {pos}: relative error {err:e}");
            }
            // A batched prefill gives the same answers for every row.
            let (logits, _) = forward(&spec, m.handle, &tokens[..5], 0, 0);
            for (row, want_row) in logits.chunks_exact(spec.vocab as usize).zip(&want) {
                assert!(relative_error(row, want_row) < limit, "{name}: batched");
            }
            recyclegpt_wasm::rg_model_free(m.handle);
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Runs `tokens` one at a time, then again in chunks of `chunk` from position 0
/// (overwriting the cache), and demands bit-identical logits and hidden states.
fn assert_batched_equals_single(spec: &Spec, ty: u32, chunk: usize) {
    let tokens: Vec<u32> = (0..spec.ctx).map(|i| (i * 7 + 3) % spec.vocab).collect();
    let m = build(spec, ty, 11 + ty as u64, ty == Q4_0);
    let singles: Vec<_> = tokens.iter().enumerate().map(|(p, &t)| forward(spec, m.handle, &[t], p as u32, 0)).collect();
    let (vocab, dim) = (spec.vocab as usize, spec.dim as usize);
    let what = arch_name(&spec.arch);
    for (c, group) in tokens.chunks(chunk).enumerate() {
        let pos = c * chunk;
        // Ask for logits of the last two rows only: rows before logits_from are skipped.
        let logits_from = group.len().saturating_sub(2);
        let (logits, hidden) = forward(spec, m.handle, group, pos as u32, logits_from as u32);
        for (i, single) in singles[pos..pos + group.len()].iter().enumerate() {
            assert_eq!(bits(&hidden[i * dim..][..dim]), bits(&single.1), "{what} type {ty} pos {}: hidden", pos + i);
            if i >= logits_from {
                let row = &logits[(i - logits_from) * vocab..][..vocab];
                assert_eq!(bits(row), bits(&single.0), "{what} type {ty} pos {}: logits", pos + i);
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
        layers: 3,
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
        arch: LLAMA,
    };
    for arch in [LLAMA, LLAMA3_YARN, LINEAR, QWEN2, QWEN3, GEMMA3] {
        for ty in [F32, F16, Q8_0, Q4_0] {
            for kv in [KV_F16, KV_F16_WIDE, KV_F32] {
                assert_batched_equals_single(&Spec { kv, arch: Arch { yarn_orig_ctx: 4, ..arch }, ..spec }, ty, 4);
            }
        }
    }
    for (_, spec) in architectures() {
        assert_batched_equals_single(&spec, F32, 5);
    }
}

/// An f16 cache kept widened in f32 holds the same numbers: logits and hidden states bit for bit.
#[test]
fn widened_f16_cache_equals_f16_cache() {
    for arch in [LLAMA, GEMMA3] {
        let spec = Spec { kv: KV_F16, arch, layers: 3, ..ODD };
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
            (bits(&out.0), bits(&out.1))
        };
        let (narrow, wide, plain) = (run(KV_F16), run(KV_F16_WIDE), run(KV_F32));
        assert_eq!(narrow, wide);
        assert_ne!(narrow.0, plain.0, "the f16 rounding shows against an f32 cache");
    }
}

/// Two conversations interleaved on two KV sequences give what each gives alone, bit for bit, and
/// selecting one moves nothing: the other's cache is untouched.
#[test]
fn sequences_keep_interleaved_conversations_apart() {
    let spec = Spec { arch: Arch { sequences: 2, ..GEMMA3 }, layers: 3, kv: KV_F16, ..ODD };
    let (a, b): (Vec<u32>, Vec<u32>) = ((0..10).map(|i| (i * 3 + 1) % 37).collect(), (0..10).map(|i| (i * 11 + 5) % 37).collect());
    let m = build(&spec, F32, 5, false);
    let alone = |tokens: &[u32]| -> Vec<Vec<u32>> {
        assert_eq!(recyclegpt_wasm::rg_select_sequence(m.handle, 0), 0);
        tokens.iter().enumerate().map(|(p, &t)| bits(&forward(&spec, m.handle, &[t], p as u32, 0).0)).collect()
    };
    let (want_a, want_b) = (alone(&a), alone(&b));
    let mut got = (Vec::new(), Vec::new());
    for p in 0..a.len() {
        for (seq, tokens, out) in [(0, &a, &mut got.0), (1, &b, &mut got.1)] {
            assert_eq!(recyclegpt_wasm::rg_select_sequence(m.handle, seq), 0);
            out.push(bits(&forward(&spec, m.handle, &[tokens[p]], p as u32, 0).0));
        }
    }
    assert_eq!((got.0, got.1), (want_a, want_b));
    assert_eq!(recyclegpt_wasm::rg_select_sequence(m.handle, 2), recyclegpt_wasm::error::ERR_BAD_ARGUMENT);
    recyclegpt_wasm::rg_model_free(m.handle);
}

/// Norm and bias vectors stored as F16 are widened: the model equals one given those widened values in F32.
#[test]
fn f16_vectors_are_widened() {
    let spec = Spec { arch: Arch { biases: true, ..GEMMA3 }, layers: 3, ..ODD };
    let tokens = [3u32, 36, 0, 17];
    let from_f16 = build_with_vectors(&spec, (F32, F16), 9, false);
    assert_eq!(recyclegpt_wasm::rg_model_ready(from_f16.handle), 0);
    let (want, _) = forward(&spec, from_f16.handle, &tokens, 0, 0);
    let reference = reference_logits(&spec, &from_f16, &tokens, false);
    for (row, want_row) in want.chunks_exact(spec.vocab as usize).zip(&reference) {
        assert!(relative_error(row, want_row) < 5e-3);
    }
    recyclegpt_wasm::rg_model_free(from_f16.handle);
}
