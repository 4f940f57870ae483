//! Shared helpers for the integration tests: a seeded RNG and a builder that
//! creates random models of every architecture through the C ABI, as the JS binding does.
#![allow(dead_code)] // each test binary uses a different part

pub mod reference;

use recyclegpt_wasm::f16::{f16_to_f32, f32_to_f16};
use recyclegpt_wasm::*;

pub const F32: u32 = 0;
pub const F16: u32 = 1;
pub const Q4_0: u32 = 2;
pub const Q8_0: u32 = 8;

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u32(&mut self) -> u32 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// Uniform in [-a, a).
    pub fn uniform(&mut self, a: f32) -> f32 {
        (self.next_u32() as f32 / 4_294_967_296.0 * 2.0 - 1.0) * a
    }
}

#[derive(Clone, Copy)]
pub struct Spec {
    pub vocab: u32,
    pub dim: u32,
    pub layers: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub ffn: u32,
    pub ctx: u32,
    pub head_dim: u32,
    pub rope_dim: u32,
    pub rope_base: f32,
    pub eps: f32,
    /// Config word 11: KV_F32, KV_F16 or KV_F16_WIDE.
    pub kv: u32,
    pub max_batch: u32,
    /// Config words 13..24: what sets the architecture apart from llama's.
    pub arch: Arch,
}

/// Config words 13..24 (docs/ARCHITECTURE.md), plus which optional tensors the builder adds.
#[derive(Clone, Copy)]
pub struct Arch {
    pub flags: u32,
    pub sequences: u32,
    /// 0 none, 1 linear, 2 yarn.
    pub rope_scaling: u32,
    pub rope_factor: f32,
    pub rope_attn_factor: f32,
    pub yarn_orig_ctx: u32,
    /// Sliding window (0: none), its layer pattern and RoPE base.
    pub window: u32,
    pub pattern: u32,
    pub swa_base: f32,
    /// The attention scale is 1/√attn_scale_dim (0: head_dim).
    pub attn_scale_dim: u32,
    pub softcap: f32,
    /// Q/K/V biases.
    pub biases: bool,
    /// RoPE frequency factors (rope_freqs.weight).
    pub rope_freqs: bool,
}

/// Architecture flags (config word 13).
pub const ROPE_NEOX: u32 = 1;
pub const QK_NORM: u32 = 2;
pub const POST_NORMS: u32 = 4;
pub const GELU: u32 = 8;
pub const SCALE_EMBEDDING: u32 = 16;
pub const SCALE_QUERIES: u32 = 32;
pub const ROPE_FACTORS: u32 = 64;

pub const LLAMA: Arch = Arch {
    flags: 0,
    sequences: 1,
    rope_scaling: 0,
    rope_factor: 1.0,
    rope_attn_factor: 1.0,
    yarn_orig_ctx: 64,
    window: 0,
    pattern: 0,
    swa_base: 0.0,
    attn_scale_dim: 0,
    softcap: 0.0,
    biases: false,
    rope_freqs: false,
};

/// Llama 3.1's options: frequency factors and YaRN scaling (a context longer than the original).
pub const LLAMA3_YARN: Arch = Arch { flags: ROPE_FACTORS, rope_freqs: true, rope_scaling: 2, rope_factor: 4.0, yarn_orig_ctx: 6, ..LLAMA };
/// Linear RoPE scaling with an attention factor.
pub const LINEAR: Arch = Arch { rope_scaling: 1, rope_factor: 2.0, rope_attn_factor: 0.9, ..LLAMA };
pub const QWEN2: Arch = Arch { flags: ROPE_NEOX, biases: true, ..LLAMA };
pub const QWEN3: Arch = Arch { flags: ROPE_NEOX | QK_NORM, ..LLAMA };
/// Gemma 3 with a window of 3 on two of every three layers and soft-capped logits.
pub const GEMMA3: Arch = Arch {
    flags: ROPE_NEOX | QK_NORM | POST_NORMS | GELU | SCALE_EMBEDDING | SCALE_QUERIES,
    window: 3,
    pattern: 3,
    swa_base: 500.0,
    attn_scale_dim: 12,
    softcap: 7.0,
    ..LLAMA
};

/// KV cache kinds (config word 11): f32, f16, and f16 values kept widened in f32.
pub const KV_F32: u32 = 0;
pub const KV_F16: u32 = 1;
pub const KV_F16_WIDE: u32 = 2;

/// Odd sizes on purpose: dim ≠ n_heads·head_dim, GQA (4 heads over 2 kv heads),
/// rope_dim < head_dim, nothing a multiple of 32 (so F32 weights only).
pub const ODD: Spec = Spec {
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
    kv: KV_F32,
    max_batch: 5,
    arch: LLAMA,
};

/// The spec's architecture names, for messages.
pub fn arch_name(arch: &Arch) -> String {
    format!("flags {} scaling {} window {} biases {} freqs {}", arch.flags, arch.rope_scaling, arch.window, arch.biases, arch.rope_freqs)
}

impl Spec {
    pub fn words(&self) -> [u32; 24] {
        let a = &self.arch;
        [
            self.vocab,
            self.dim,
            self.layers,
            self.heads,
            self.kv_heads,
            self.ffn,
            self.ctx,
            self.head_dim,
            self.rope_dim,
            self.rope_base.to_bits(),
            self.eps.to_bits(),
            self.kv,
            self.max_batch,
            a.flags,
            a.sequences,
            a.rope_scaling,
            a.rope_factor.to_bits(),
            a.rope_attn_factor.to_bits(),
            a.yarn_orig_ctx,
            a.window,
            a.pattern,
            a.swa_base.to_bits(),
            a.attn_scale_dim,
            a.softcap.to_bits(),
        ]
    }

    /// (kind, rows, cols) of every vector the spec's architecture has, `blk.L` kinds included once.
    pub fn vectors(&self) -> Vec<(u32, u32, u32)> {
        let (q, kv) = (self.heads * self.head_dim, self.kv_heads * self.head_dim);
        let mut vectors = vec![(1, 1, self.dim), (3, 1, self.dim), (8, 1, self.dim)];
        if self.arch.rope_freqs {
            vectors.push((12, 1, self.rope_dim / 2));
        }
        if self.arch.biases {
            vectors.extend([(13, 1, q), (14, 1, kv), (15, 1, kv)]);
        }
        if self.arch.flags & QK_NORM != 0 {
            vectors.extend([(16, 1, self.head_dim), (17, 1, self.head_dim)]);
        }
        if self.arch.flags & POST_NORMS != 0 {
            vectors.extend([(18, 1, self.dim), (19, 1, self.dim)]);
        }
        vectors
    }

    /// (kind, rows, cols) of every matrix, `blk.L` kinds included once.
    pub fn matrices(&self) -> Vec<(u32, u32, u32)> {
        let (q, kv) = (self.heads * self.head_dim, self.kv_heads * self.head_dim);
        vec![
            (0, self.vocab, self.dim),
            (2, self.vocab, self.dim),
            (4, q, self.dim),
            (5, kv, self.dim),
            (6, kv, self.dim),
            (7, self.dim, q),
            (9, self.ffn, self.dim),
            (10, self.ffn, self.dim),
            (11, self.dim, self.ffn),
        ]
    }
}

/// Weights as the model sees them (dequantized), keyed by (kind, layer).
pub type Weights = std::collections::HashMap<(u32, u32), Vec<f32>>;

pub struct Built {
    pub handle: u32,
    pub weights: Weights,
}

impl Built {
    pub fn get(&self, kind: u32, layer: u32) -> &[f32] {
        &self.weights[&(kind, layer)]
    }
}

/// Random bytes for `rows × cols` values of `ty`, plus their dequantized values.
pub fn random_tensor(rng: &mut Rng, ty: u32, rows: u32, cols: u32, amplitude: f32) -> (Vec<u8>, Vec<f32>) {
    let n = (rows * cols) as usize;
    let mut bytes = Vec::new();
    let mut values = Vec::with_capacity(n);
    match ty {
        F32 | F16 => {
            for _ in 0..n {
                let v = rng.uniform(amplitude);
                if ty == F32 {
                    bytes.extend_from_slice(&v.to_le_bytes());
                    values.push(v);
                } else {
                    let h = f32_to_f16(v);
                    bytes.extend_from_slice(&h.to_le_bytes());
                    values.push(f16_to_f32(h));
                }
            }
        }
        _ => {
            for _ in 0..n / 32 {
                let d = f32_to_f16(amplitude * (0.5 + rng.uniform(0.5).abs()) / if ty == Q8_0 { 127.0 } else { 8.0 });
                bytes.extend_from_slice(&d.to_le_bytes());
                let d = f16_to_f32(d);
                if ty == Q8_0 {
                    for _ in 0..32 {
                        let q = rng.next_u32() as u8;
                        bytes.push(q);
                        values.push(q as i8 as f32 * d);
                    }
                } else {
                    let packed: Vec<u8> = (0..16).map(|_| rng.next_u32() as u8).collect();
                    values.extend(packed.iter().map(|p| ((p & 15) as i32 - 8) as f32 * d));
                    values.extend(packed.iter().map(|p| ((p >> 4) as i32 - 8) as f32 * d));
                    bytes.extend_from_slice(&packed);
                }
            }
        }
    }
    (bytes, values)
}

/// `rg_tensor_reserve` or `rg_recycle_reserve`.
pub type ReserveFn = extern "C" fn(u32, u32, u32, u32, u32, u32) -> *mut u8;

fn reserve_and_write(reserve: ReserveFn, handle: u32, at: (u32, u32), ty: u32, rows: u32, cols: u32, bytes: &[u8]) {
    let (kind, layer) = at;
    let ptr = reserve(handle, kind, layer, ty, rows, cols);
    assert!(!ptr.is_null(), "reserve kind {kind} layer {layer}: error {}", rg_last_error());
    // SAFETY: the engine reserved exactly this tensor's byte size at ptr.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
}

pub fn new_model(spec: &Spec) -> u32 {
    let words = spec.words();
    // SAFETY: words is a live array of 24 u32.
    let handle = unsafe { rg_model_new(words.as_ptr(), words.len() as u32) };
    assert_ne!(handle, 0, "rg_model_new: error {}", rg_last_error());
    handle
}

/// Kinds that exist once per model (token_embd, output_norm, output, rope_freqs).
pub fn is_global(kind: u32) -> bool {
    kind < 3 || kind == 12
}

/// Reserves and writes random weights of type `ty` for every (kind, rows, cols) of `matrices`
/// and every vector of the spec's architecture (of type `vector_ty`; RoPE factors F32), through
/// `reserve`; returns their values by (kind, layer).
fn fill_tensors(
    reserve: ReserveFn,
    handle: u32,
    spec: &Spec,
    matrices: &[(u32, u32, u32)],
    (ty, vector_ty): (u32, u32),
    rng: &mut Rng,
) -> Weights {
    let mut weights = Weights::new();
    let layers = |kind: u32| if is_global(kind) { 1 } else { spec.layers };
    for &(kind, rows, cols) in matrices {
        for layer in 0..layers(kind) {
            let (bytes, values) = random_tensor(rng, ty, rows, cols, 1.0 / (cols as f32).sqrt());
            reserve_and_write(reserve, handle, (kind, layer), ty, rows, cols, &bytes);
            weights.insert((kind, layer), values);
        }
    }
    for (kind, rows, cols) in spec.vectors() {
        // Norm weights near 1, biases near 0, RoPE factors from 1 to 8.
        let (ty, (center, spread)) = match kind {
            12 => (F32, (4.5, 3.5)),
            13..=15 => (vector_ty, (0.0, 0.5)),
            _ => (vector_ty, (1.0, 0.2)),
        };
        for layer in 0..layers(kind) {
            let values: Vec<f32> = (0..cols).map(|_| center + rng.uniform(spread)).collect();
            let (bytes, values) = encode(ty, &values);
            reserve_and_write(reserve, handle, (kind, layer), ty, rows, cols, &bytes);
            weights.insert((kind, layer), values);
        }
    }
    weights
}

/// F32 or F16 bytes of `values`, and the values they hold.
pub fn encode(ty: u32, values: &[f32]) -> (Vec<u8>, Vec<f32>) {
    match ty {
        F32 => (values.iter().flat_map(|v| v.to_le_bytes()).collect(), values.to_vec()),
        _ => {
            let halves: Vec<u16> = values.iter().map(|&v| f32_to_f16(v)).collect();
            (halves.iter().flat_map(|h| h.to_le_bytes()).collect(), halves.iter().map(|&h| f16_to_f32(h)).collect())
        }
    }
}

/// A model with random weights of type `ty` (vectors F32), not yet ready. `tied`: no output.weight.
pub fn build_unready(spec: &Spec, ty: u32, seed: u64, tied: bool) -> Built {
    build_with_vectors(spec, (ty, F32), seed, tied)
}

/// As `build_unready`, with vectors (norms, biases) of type `types.1`.
pub fn build_with_vectors(spec: &Spec, types: (u32, u32), seed: u64, tied: bool) -> Built {
    let handle = new_model(spec);
    let matrices: Vec<_> = spec.matrices().into_iter().filter(|&(kind, _, _)| !(kind == 2 && tied)).collect();
    let weights = fill_tensors(rg_tensor_reserve, handle, spec, &matrices, types, &mut Rng::new(seed));
    Built { handle, weights }
}

/// A ready model with random weights of type `ty` (vectors F32). `tied`: no output.weight.
pub fn build(spec: &Spec, ty: u32, seed: u64, tied: bool) -> Built {
    let built = build_unready(spec, ty, seed, tied);
    assert_eq!(rg_model_ready(built.handle), 0, "rg_model_ready");
    built
}

/// Attaches a recycle head to `base` (ready or not) and fills it with random weights:
/// `head` gives the head's config (its vocab and dim must be the base's); kind 0 is
/// recycle.proj.weight (dim × 2·dim). The caller readies the head.
pub fn attach_head(base: u32, head: &Spec, ty: u32, seed: u64) -> Weights {
    let words = head.words();
    // SAFETY: words[2..] is a live array of 11 u32.
    assert_eq!(unsafe { rg_recycle_new(base, words[2..].as_ptr(), 11) }, 0, "rg_recycle_new");
    let mut matrices = head.matrices();
    matrices.retain(|&(kind, _, _)| kind != 2);
    matrices[0] = (0, head.dim, 2 * head.dim);
    let head = Spec { arch: LLAMA, ..*head };
    fill_tensors(rg_recycle_reserve, base, &head, &matrices, (ty, F32), &mut Rng::new(seed))
}

/// Runs rg_recycle_forward on hidden rows at `hidden` and copies out (logits rows
/// logits_from..n, head hidden rows 0..n).
pub fn recycle_forward(
    spec: &Spec,
    handle: u32,
    hidden: *const f32,
    tokens: &[u32],
    pos: u32,
    logits_from: u32,
) -> (Vec<f32>, Vec<f32>) {
    let n = tokens.len() as u32;
    // SAFETY: the callers pass n·dim readable f32 at hidden and n tokens.
    let status = unsafe { rg_recycle_forward(handle, hidden, tokens.as_ptr(), n, pos, logits_from) };
    assert_eq!(status, 0, "rg_recycle_forward");
    // SAFETY: the engine documents these lengths for the last head forward.
    unsafe { copy_outputs(spec, rg_recycle_logits(handle), rg_recycle_hidden(handle), n, logits_from) }
}

unsafe fn copy_outputs(spec: &Spec, logits: *const f32, hidden: *const f32, n: u32, from: u32) -> (Vec<f32>, Vec<f32>) {
    let logits = std::slice::from_raw_parts(logits, ((n - from) * spec.vocab) as usize).to_vec();
    let hidden = std::slice::from_raw_parts(hidden, (n * spec.dim) as usize).to_vec();
    (logits, hidden)
}

/// Runs rg_forward and copies out (logits rows logits_from..n, hidden rows 0..n).
pub fn forward(spec: &Spec, handle: u32, tokens: &[u32], pos: u32, logits_from: u32) -> (Vec<f32>, Vec<f32>) {
    let n = tokens.len() as u32;
    // SAFETY: tokens is a live slice of n u32.
    let status = unsafe { rg_forward(handle, tokens.as_ptr(), n, pos, logits_from) };
    assert_eq!(status, 0, "rg_forward");
    // SAFETY: the engine documents these lengths for the last forward.
    unsafe { copy_outputs(spec, rg_logits(handle), rg_hidden(handle), n, logits_from) }
}
