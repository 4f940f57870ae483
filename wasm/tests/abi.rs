//! The C ABI refuses bad input with the documented status codes.

mod common;

use common::*;
use recyclegpt_wasm::error::*;
use recyclegpt_wasm::*;

const SPEC: Spec = Spec {
    vocab: 40,
    dim: 64,
    layers: 2,
    heads: 4,
    kv_heads: 2,
    ffn: 96,
    ctx: 8,
    head_dim: 16,
    rope_dim: 16,
    rope_base: 10000.0,
    eps: 1e-5,
    kv: KV_F16,
    max_batch: 3,
    // llama as the SDK passes it: RoPE factors allowed.
    arch: Arch { flags: ROPE_FACTORS, ..LLAMA },
};

fn new_with(words: &[u32]) -> (u32, i32) {
    // SAFETY: words is a live slice of words.len() u32.
    let handle = unsafe { rg_model_new(words.as_ptr(), words.len() as u32) };
    (handle, rg_last_error())
}

#[test]
fn model_new_validates_the_config() {
    let good = SPEC.words();
    let (handle, code) = new_with(&good);
    assert!(handle != 0 && code == OK);
    rg_model_free(handle);
    assert_eq!(new_with(&good[..12]), (0, ERR_INVALID_CONFIG));
    let mut bad = good;
    bad[4] = 3; // 4 heads over 3 kv heads
    assert_eq!(new_with(&bad), (0, ERR_INVALID_CONFIG));
    let mut huge = good;
    huge[6] = 1 << 24; // 16M-token context: the KV cache cannot fit in 32-bit memory
    huge[2] = 1 << 10;
    assert_eq!(new_with(&huge), (0, ERR_TOO_LARGE));
    // SAFETY: a null config is refused before it is read.
    assert_eq!(unsafe { rg_model_new(std::ptr::null(), 24) }, 0);
    assert_eq!(rg_last_error(), ERR_BAD_ARGUMENT);
}

#[test]
fn tensor_reserve_checks_kind_shape_type_and_duplicates() {
    let handle = new_model(&SPEC);
    let reserve = |kind, layer, ty, rows, cols| {
        let ptr = rg_tensor_reserve(handle, kind, layer, ty, rows, cols);
        (ptr.is_null(), rg_last_error())
    };
    assert_eq!(reserve(20, 0, F32, 1, 64), (true, ERR_UNKNOWN_KIND));
    assert_eq!(reserve(16, 0, F32, 1, 16), (true, ERR_UNKNOWN_KIND)); // attn_q_norm: not llama's
    assert_eq!(reserve(4, 2, Q8_0, 64, 64), (true, ERR_UNKNOWN_KIND)); // layer 2 of 2
    assert_eq!(reserve(4, 0, 16, 64, 64), (true, ERR_UNSUPPORTED_TYPE)); // IQ2_XXS
    assert_eq!(reserve(12, 0, F16, 1, 8), (true, ERR_UNSUPPORTED_TYPE)); // RoPE factors are F32
    assert_eq!(reserve(12, 0, F32, 1, 16), (true, ERR_BAD_SHAPE)); // rope_dim / 2 = 8
    let qwen2 = new_model(&Spec { arch: QWEN2, ..SPEC });
    assert!(rg_tensor_reserve(qwen2, 12, 0, F32, 1, 8).is_null()); // qwen2 has no RoPE factors
    assert_eq!(rg_last_error(), ERR_UNKNOWN_KIND);
    rg_model_free(qwen2);
    assert_eq!(reserve(3, 0, F16, 1, 64), (false, OK)); // a norm in F16 is widened
    assert_eq!(reserve(4, 0, 12, 64, 64), (true, ERR_BAD_SHAPE)); // Q4_K rows are whole 256-blocks
    assert_eq!(reserve(5, 0, Q8_0, 64, 64), (true, ERR_BAD_SHAPE)); // k is 32 × 64
    assert_eq!(reserve(0, 0, F32, 40, u32::MAX), (true, ERR_BAD_SHAPE));
    assert_eq!(reserve(4, 0, Q8_0, 64, 64), (false, OK));
    assert_eq!(reserve(4, 0, Q8_0, 64, 64), (true, ERR_DUPLICATE_TENSOR));
    assert_eq!(rg_tensor_reserve(999, 0, 0, F32, 40, 64), std::ptr::null_mut());
    assert_eq!(rg_last_error(), ERR_BAD_HANDLE);

    // Quantized rows must be whole 32-blocks.
    let odd = Spec { dim: 20, heads: 4, head_dim: 5, rope_dim: 4, ..SPEC };
    let odd_handle = new_model(&odd);
    assert!(rg_tensor_reserve(odd_handle, 0, 0, Q4_0, 40, 20).is_null());
    assert_eq!(rg_last_error(), ERR_BAD_SHAPE);
    assert!(!rg_tensor_reserve(odd_handle, 0, 0, F16, 40, 20).is_null());
    rg_model_free(odd_handle);

    assert_eq!(rg_model_ready(handle), ERR_MISSING_TENSOR);
    let tokens = [1u32];
    // SAFETY: tokens is a live array of one u32.
    assert_eq!(unsafe { rg_forward(handle, tokens.as_ptr(), 1, 0, 0) }, ERR_WRONG_STATE);
    rg_model_free(handle);
    assert_eq!(rg_model_ready(handle), ERR_BAD_HANDLE); // freed
}

#[test]
fn huge_tensors_are_refused_not_aborted() {
    let big = Spec { vocab: 1 << 24, dim: 1 << 12, max_batch: 1, ..SPEC };
    let handle = new_model(&big);
    // 2^24 × 2^12 f32 = 256 GiB: more than any buffer may hold.
    assert!(rg_tensor_reserve(handle, 0, 0, F32, 1 << 24, 1 << 12).is_null());
    assert_eq!(rg_last_error(), ERR_TOO_LARGE);
    rg_model_free(handle);
}

#[test]
fn forward_checks_its_arguments() {
    let m = build(&SPEC, Q8_0, 1, true);
    let call = |tokens: &[u32], n: u32, pos: u32, from: u32| {
        // SAFETY: the engine only reads n tokens after checking n ≤ max_batch ≤ tokens.len() here.
        unsafe { rg_forward(m.handle, tokens.as_ptr(), n, pos, from) }
    };
    let three = [1u32, 2, 3, 4];
    assert_eq!(call(&three, 0, 0, 0), ERR_BAD_ARGUMENT); // empty batch
    assert_eq!(call(&three, 4, 0, 0), ERR_BAD_ARGUMENT); // over max_batch
    assert_eq!(call(&three, 3, 6, 0), ERR_BAD_ARGUMENT); // past ctx_len
    assert_eq!(call(&three, 3, 0, 4), ERR_BAD_ARGUMENT); // logits_from > n
    assert_eq!(call(&three, 3, u32::MAX, 0), ERR_BAD_ARGUMENT); // pos + n overflows
    assert_eq!(call(&[40], 1, 0, 0), ERR_BAD_TOKEN); // id == vocab
    assert!(rg_logits(m.handle).is_null()); // no successful forward yet
    assert_eq!(rg_last_error(), ERR_WRONG_STATE);
    assert_eq!(call(&three, 3, 5, 3), OK); // last positions, hidden only
    assert_eq!(rg_last_error(), OK);
    assert!(!rg_hidden(m.handle).is_null());
    assert_eq!(rg_model_ready(m.handle), ERR_WRONG_STATE); // ready twice
    assert!(rg_tensor_reserve(m.handle, 2, 0, F32, 40, 64).is_null()); // after ready
    assert_eq!(rg_last_error(), ERR_WRONG_STATE);
    rg_model_free(m.handle);

    // A batch larger than the whole context is refused, not wrapped around.
    let wide = Spec { max_batch: 12, ..SPEC };
    let m = build(&wide, F32, 2, false);
    let many = [1u32; 12];
    // SAFETY: many holds 12 tokens.
    assert_eq!(unsafe { rg_forward(m.handle, many.as_ptr(), 12, 0, 0) }, ERR_BAD_ARGUMENT);
    assert_eq!(unsafe { rg_forward(m.handle, many.as_ptr(), 8, 0, 0) }, OK);
    rg_model_free(m.handle);
}

#[test]
fn alloc_and_free_round_trip() {
    let ptr = rg_alloc(100);
    assert!(!ptr.is_null() && ptr as usize % 16 == 0);
    // SAFETY: ptr came from rg_alloc(100).
    unsafe { rg_free(ptr, 100) };
    let empty = rg_alloc(0);
    assert!(!empty.is_null());
    // SAFETY: empty came from rg_alloc(0).
    unsafe { rg_free(empty, 0) };
}
