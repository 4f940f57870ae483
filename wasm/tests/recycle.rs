//! The recycle head: its forward against an f64 reference, batching and aliasing
//! invariants, and the validation of its C ABI.

mod common;

use common::reference::{self, relative_error};
use common::*;
use recyclegpt_wasm::error::*;
use recyclegpt_wasm::*;

/// The odd base shape shared with forward.rs (F32 weights only).
const BASE: Spec = ODD;

/// The head's own shape: GQA (6 heads over 2), its own head_dim, rope and eps.
const HEAD: Spec = Spec {
    layers: 1,
    heads: 6,
    kv_heads: 2,
    ffn: 26,
    ctx: 10,
    head_dim: 4,
    rope_dim: 2,
    rope_base: 500.0,
    eps: 1e-6,
    max_batch: 3,
    ..BASE
};

const TOKENS: [u32; 10] = [3, 36, 0, 17, 17, 5, 29, 11, 2, 30];

/// The head in f64 over a chain of (hidden row, next token) pairs from position 0:
/// (logits, head hidden) per position.
fn reference_head(
    head: &Spec,
    base: &Built,
    w: &Weights,
    rows: &[(Vec<f32>, u32)],
    tied: bool,
) -> Vec<(Vec<f64>, Vec<f64>)> {
    let dim = head.dim as usize;
    let mut cache = reference::Cache::new(head);
    let output = if tied { base.get(0, 0) } else { base.get(2, 0) };
    rows.iter()
        .map(|(h, token)| {
            let embedding = &base.get(0, 0)[*token as usize * dim..][..dim];
            let input: Vec<f64> = h.iter().chain(embedding).map(|&v| v as f64).collect();
            let mut x = reference::matvec(&w[&(0, 0)], &input);
            reference::layers(head, w, &mut x, &mut cache);
            let hidden = reference::rms_norm(&x, &w[&(1, 0)], head.eps);
            (reference::matvec(output, &hidden), hidden)
        })
        .collect()
}

/// Base hidden rows of TOKENS, one per position, each paired with the token that follows.
fn base_rows(spec: &Spec, base: &Built) -> Vec<(Vec<f32>, u32)> {
    let (_, hidden) = forward(spec, base.handle, &TOKENS[..5], 0, 5);
    let (_, more) = forward(spec, base.handle, &TOKENS[5..], 5, 5);
    let all = [hidden, more].concat();
    let dim = spec.dim as usize;
    (0..TOKENS.len() - 1).map(|t| (all[t * dim..][..dim].to_vec(), TOKENS[t + 1])).collect()
}

/// The head is a llama stack over any base: it reads the base's raw embedding rows (Gemma's √dim
/// scale is the base's own) and its output matrix (without the base's soft-capping).
#[test]
fn head_matches_f64_reference() {
    for (arch, tied) in [(LLAMA, false), (LLAMA, true), (QWEN2, false), (GEMMA3, true)] {
        for layers in [1, 2] {
            let spec = Spec { arch, layers: 3, ..BASE };
            let head = Spec { layers, ..HEAD };
            let base = build(&spec, F32, 7, tied);
            let w = attach_head(base.handle, &head, F32, 8);
            assert_eq!(rg_recycle_ready(base.handle), OK);
            let rows = base_rows(&spec, &base);
            let want = reference_head(&head, &base, &w, &rows, tied);
            for (pos, ((h, token), (want_logits, want_hidden))) in rows.iter().zip(&want).enumerate() {
                let (logits, hidden) = recycle_forward(&head, base.handle, h.as_ptr(), &[*token], pos as u32, 0);
                let err = relative_error(&logits, want_logits).max(relative_error(&hidden, want_hidden));
                assert!(err < 1e-4, "{} tied {tied} layers {layers} pos {pos}: relative error {err:e}", arch_name(&arch));
            }
            rg_model_free(base.handle);
        }
    }
}

/// Head rows at every position one by one, then again in chunks of max_batch:
/// bit-identical logits and hidden rows.
fn assert_batched_head_equals_single(base: &Spec, head: &Spec, ty: u32) {
    let m = build(base, ty, 21 + ty as u64, ty == Q8_0);
    attach_head(m.handle, head, ty, 22);
    assert_eq!(rg_recycle_ready(m.handle), OK);
    let dim = base.dim as usize;
    let mut rng = Rng::new(23);
    let hidden: Vec<f32> = (0..head.ctx as usize * dim).map(|_| rng.uniform(2.0)).collect();
    let tokens: Vec<u32> = (0..head.ctx).map(|i| (i * 5 + 1) % base.vocab).collect();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let singles: Vec<_> = (0..tokens.len())
        .map(|p| recycle_forward(head, m.handle, hidden[p * dim..].as_ptr(), &tokens[p..][..1], p as u32, 0))
        .collect();
    let chunk = head.max_batch as usize;
    for start in (0..tokens.len()).step_by(chunk) {
        let group = &tokens[start..(start + chunk).min(tokens.len())];
        let from = group.len() / 2;
        let (logits, rows) =
            recycle_forward(head, m.handle, hidden[start * dim..].as_ptr(), group, start as u32, from as u32);
        for (i, (single_logits, single_hidden)) in singles[start..][..group.len()].iter().enumerate() {
            let at = start + i;
            assert_eq!(bits(&rows[i * dim..][..dim]), bits(single_hidden), "type {ty} pos {at}: hidden");
            if i >= from {
                let vocab = base.vocab as usize;
                assert_eq!(bits(&logits[(i - from) * vocab..][..vocab]), bits(single_logits), "type {ty} pos {at}");
            }
        }
    }
    rg_model_free(m.handle);
}

#[test]
fn batched_head_forward_is_bit_identical_to_single_rows() {
    let base = Spec { vocab: 50, dim: 64, ffn: 96, head_dim: 16, rope_dim: 8, kv: KV_F16, ..BASE };
    let head = Spec { heads: 4, kv_heads: 1, ffn: 64, head_dim: 16, rope_dim: 16, max_batch: 4, ..base };
    for ty in [F32, F16, Q8_0, Q4_0] {
        for kv in [KV_F16, KV_F16_WIDE, KV_F32] {
            assert_batched_head_equals_single(&base, &Spec { kv, ..head }, ty);
        }
    }
    assert_batched_head_equals_single(&BASE, &HEAD, F32);
}

/// The head follows the base's selected KV sequence, also when the sequence was selected before the
/// head got ready: interleaved drafts on two sequences equal each sequence's drafts alone.
#[test]
fn head_follows_the_selected_sequence() {
    let base_spec = Spec { arch: Arch { sequences: 2, ..LLAMA }, ..BASE };
    let base = build(&base_spec, F32, 41, false);
    assert_eq!(rg_select_sequence(base.handle, 1), OK);
    attach_head(base.handle, &HEAD, F32, 42);
    assert_eq!(rg_recycle_ready(base.handle), OK);
    let rows = base_rows(&base_spec, &base);
    let run = |seq: u32, p: usize| {
        assert_eq!(rg_select_sequence(base.handle, seq), OK);
        let (h, token) = &rows[if seq == 0 { p } else { rows.len() - 1 - p }];
        recycle_forward(&HEAD, base.handle, h.as_ptr(), &[*token], p as u32, 0).0
    };
    let alone: Vec<Vec<f32>> = (0..6).map(|p| run(1, p)).collect();
    let mut interleaved = Vec::new();
    for p in 0..6 {
        // Sequence 0 writes last at each position: a shared cache would hand its rows to sequence 1.
        interleaved.push(run(1, p));
        run(0, p);
    }
    assert_eq!(interleaved, alone);
    rg_model_free(base.handle);
}

#[test]
fn hidden_may_point_into_the_engines_own_buffers() {
    let base = build(&BASE, F32, 31, false);
    attach_head(base.handle, &HEAD, F32, 32);
    assert_eq!(rg_recycle_ready(base.handle), OK);
    let tokens = [4u32, 9, 13];
    let (_, base_hidden) = forward(&BASE, base.handle, &tokens, 0, 3);
    // From rg_hidden's buffer, then from a copy at the same positions.
    let aliased = recycle_forward(&HEAD, base.handle, rg_hidden(base.handle), &tokens, 0, 0);
    let copied = recycle_forward(&HEAD, base.handle, base_hidden.as_ptr(), &tokens, 0, 0);
    assert_eq!(aliased, copied);
    // A chained draft: the head's own hidden rows fed back, at the next positions.
    let drafts = [7u32, 1, 30];
    let (_, head_hidden) = copied;
    let chained = recycle_forward(&HEAD, base.handle, rg_recycle_hidden(base.handle), &drafts, 3, 1);
    let copied = recycle_forward(&HEAD, base.handle, head_hidden.as_ptr(), &drafts, 3, 1);
    assert_eq!(chained, copied);
    rg_model_free(base.handle);
}

#[test]
fn head_can_be_attached_before_the_base_is_ready() {
    let early = build_unready(&BASE, F32, 41, true);
    let w = attach_head(early.handle, &HEAD, F32, 42);
    assert_eq!(rg_recycle_ready(early.handle), ERR_WRONG_STATE); // base not ready yet
    assert_eq!(rg_model_ready(early.handle), OK);
    assert_eq!(rg_recycle_ready(early.handle), OK);
    let late = build(&BASE, F32, 41, true);
    assert_eq!(attach_head(late.handle, &HEAD, F32, 42), w);
    assert_eq!(rg_recycle_ready(late.handle), OK);
    let h = vec![0.5f32; 2 * BASE.dim as usize];
    let run = |handle| recycle_forward(&HEAD, handle, h.as_ptr(), &[3, 8], 0, 0);
    assert_eq!(run(early.handle), run(late.handle));
    rg_model_free(early.handle);
    rg_model_free(late.handle);
}

/// rg_recycle_reserve's (null?, rg_last_error()).
fn reserve_on(handle: u32, kind: u32, layer: u32, ty: u32, rows: u32, cols: u32) -> (bool, i32) {
    let ptr = rg_recycle_reserve(handle, kind, layer, ty, rows, cols);
    (ptr.is_null(), rg_last_error())
}

#[test]
fn recycle_abi_validates_its_arguments() {
    let base = build(&BASE, F32, 51, false);
    let handle = base.handle;
    let words = HEAD.words();
    let head_words = &words[2..];
    let reserve = |kind, layer, ty, rows, cols| reserve_on(handle, kind, layer, ty, rows, cols);
    let dim = BASE.dim;
    let h = vec![0.25f32; (HEAD.max_batch * dim) as usize];
    let tokens = [1u32, 2, 3, 4];
    let call = |hidden: *const f32, tokens: &[u32], n, pos, from| {
        // SAFETY: hidden holds max_batch rows and tokens max_batch + 1 ids; larger n are refused first.
        unsafe { rg_recycle_forward(handle, hidden, tokens.as_ptr(), n, pos, from) }
    };

    // No head yet.
    assert_eq!(reserve(1, 0, F32, 1, dim), (true, ERR_WRONG_STATE));
    assert_eq!(rg_recycle_ready(handle), ERR_WRONG_STATE);
    assert_eq!(call(h.as_ptr(), &tokens, 1, 0, 0), ERR_WRONG_STATE);
    assert!(rg_recycle_logits(handle).is_null());

    // Config words.
    // SAFETY: each pointer covers the word count passed, or is null (refused before reading).
    unsafe {
        assert_eq!(rg_recycle_new(handle, head_words.as_ptr(), 10), ERR_INVALID_CONFIG);
        assert_eq!(rg_recycle_new(handle, std::ptr::null(), 11), ERR_BAD_ARGUMENT);
        assert_eq!(rg_recycle_new(999, head_words.as_ptr(), 11), ERR_BAD_HANDLE);
        let odd_rope = Spec { rope_dim: 6, ..HEAD }.words(); // rope_dim > head_dim
        assert_eq!(rg_recycle_new(handle, odd_rope[2..].as_ptr(), 11), ERR_INVALID_CONFIG);
        let bad_gqa = Spec { kv_heads: 4, ..HEAD }.words(); // 6 heads over 4
        assert_eq!(rg_recycle_new(handle, bad_gqa[2..].as_ptr(), 11), ERR_INVALID_CONFIG);
        assert_eq!(rg_recycle_new(handle, head_words.as_ptr(), 11), OK);
        assert_eq!(rg_recycle_new(handle, head_words.as_ptr(), 11), ERR_WRONG_STATE);
        // twice
    }

    // Tensors: kinds, layers, shapes (the head's dim is the base's), types, duplicates.
    let q_dim = HEAD.heads * HEAD.head_dim;
    assert_eq!(reserve(2, 0, F32, BASE.vocab, dim), (true, ERR_UNKNOWN_KIND)); // no own output
    assert_eq!(reserve(12, 0, F32, 1, HEAD.rope_dim / 2), (true, ERR_UNKNOWN_KIND)); // a llama stack: no RoPE factors
    assert_eq!(reserve(13, 0, F32, 1, q_dim), (true, ERR_UNKNOWN_KIND)); // nor biases
    assert_eq!(reserve(20, 0, F32, 1, dim), (true, ERR_UNKNOWN_KIND));
    assert_eq!(reserve(4, 1, F32, q_dim, dim), (true, ERR_UNKNOWN_KIND)); // layer 1 of 1
    assert_eq!(reserve(0, 0, F32, dim, dim), (true, ERR_BAD_SHAPE)); // proj needs 2·dim cols
    assert_eq!(reserve(0, 0, F32, BASE.vocab, dim), (true, ERR_BAD_SHAPE)); // not an embedding
    assert_eq!(reserve(0, 0, Q8_0, dim, 2 * dim), (true, ERR_BAD_SHAPE)); // 40 cols: no whole blocks
    assert_eq!(reserve(4, 0, F32, q_dim, 2 * dim), (true, ERR_BAD_SHAPE)); // q reads the base's dim
    assert_eq!(reserve(1, 0, F32, 1, 2 * dim), (true, ERR_BAD_SHAPE));
    assert_eq!(reserve(4, 0, 16, q_dim, dim), (true, ERR_UNSUPPORTED_TYPE)); // IQ2_XXS
    assert_eq!(reserve(3, 0, F16, 1, dim), (false, OK)); // a norm in F16 is widened
    assert_eq!(reserve(0, 0, F16, dim, 2 * dim), (false, OK));
    assert_eq!(reserve(0, 0, F16, dim, 2 * dim), (true, ERR_DUPLICATE_TENSOR));
    assert_eq!(rg_recycle_ready(handle), ERR_MISSING_TENSOR);
    assert_eq!(call(h.as_ptr(), &tokens, 1, 0, 0), ERR_WRONG_STATE); // forward before ready
    rg_model_free(handle);
    assert_eq!(rg_recycle_ready(handle), ERR_BAD_HANDLE); // freed together with its base

    // Forward arguments, on a complete head.
    let base = build(&BASE, F32, 52, false);
    let handle = base.handle;
    attach_head(handle, &HEAD, F32, 53);
    assert_eq!(rg_recycle_ready(handle), OK);
    assert_eq!(rg_recycle_ready(handle), ERR_WRONG_STATE); // ready twice
    assert_eq!(reserve_on(handle, 1, 0, F32, 1, dim), (true, ERR_WRONG_STATE)); // reserve after ready
    assert!(rg_recycle_hidden(handle).is_null()); // no head forward yet
    assert_eq!(rg_last_error(), ERR_WRONG_STATE);
    let call = |hidden: *const f32, tokens: &[u32], n, pos, from| {
        // SAFETY: as above.
        unsafe { rg_recycle_forward(handle, hidden, tokens.as_ptr(), n, pos, from) }
    };
    assert_eq!(call(h.as_ptr(), &tokens, 0, 0, 0), ERR_BAD_ARGUMENT); // empty batch
    assert_eq!(call(h.as_ptr(), &tokens, 4, 0, 0), ERR_BAD_ARGUMENT); // over the head's max_batch
    assert_eq!(call(h.as_ptr(), &tokens, 3, 8, 0), ERR_BAD_ARGUMENT); // past the head's ctx_len
    assert_eq!(call(h.as_ptr(), &tokens, 3, u32::MAX, 0), ERR_BAD_ARGUMENT); // pos + n overflows
    assert_eq!(call(h.as_ptr(), &tokens, 3, 0, 4), ERR_BAD_ARGUMENT); // logits_from > n
    assert_eq!(call(std::ptr::null(), &tokens, 1, 0, 0), ERR_BAD_ARGUMENT);
    // SAFETY: a misaligned pointer is refused before it is read.
    let misaligned = unsafe { (h.as_ptr() as *const u8).add(1) } as *const f32;
    assert_eq!(call(misaligned, &tokens, 1, 0, 0), ERR_BAD_ARGUMENT);
    assert_eq!(call(h.as_ptr(), &[BASE.vocab], 1, 0, 0), ERR_BAD_TOKEN);
    assert_eq!(call(h.as_ptr(), &tokens, 3, 7, 3), OK); // last positions, hidden only
    assert!(!rg_recycle_hidden(handle).is_null());
    assert!(!rg_recycle_logits(handle).is_null()); // zero rows of logits
    rg_model_free(handle);
}
