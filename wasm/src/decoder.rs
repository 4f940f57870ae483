//! The llama decoder stack shared by the base model and the recycle head: layer
//! weights, KV cache, scratch, and the forward through them (llama.cpp CPU
//! semantics, see docs/ARCHITECTURE.md "Numerics").

use crate::catalog::{Kind, GLOBAL_KINDS, LAYER_KINDS};
use crate::config::Config;
use crate::error::*;
use crate::kernels;
use crate::quant::PreparedInput;
use crate::tensor::{input_needs, Tensor};

pub struct Layer {
    attn_norm: Vec<f32>,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
    ffn_norm: Vec<f32>,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// Tensors reserved so far, indexed by `Kind::slot`, until their owner gets ready.
pub struct Slots(Vec<Option<Tensor>>);

impl Slots {
    pub fn new(cfg: &Config) -> Result<Slots, Status> {
        let count = GLOBAL_KINDS + cfg.n_layers * LAYER_KINDS;
        let mut slots = Vec::new();
        slots.try_reserve_exact(count).map_err(|_| ERR_OUT_OF_MEMORY)?;
        slots.resize_with(count, || None);
        Ok(Slots(slots))
    }

    /// Allocates the tensor of an empty slot and returns where its raw bytes go.
    pub fn fill(&mut self, slot: usize, alloc: impl FnOnce() -> Result<Tensor, Status>) -> Result<*mut u8, Status> {
        if self.0[slot].is_some() {
            return Err(ERR_DUPLICATE_TENSOR);
        }
        let mut tensor = alloc()?;
        let ptr = tensor.bytes_mut();
        self.0[slot] = Some(tensor);
        Ok(ptr)
    }

    /// ERR_MISSING_TENSOR unless every slot but the `Kind::Output` one is filled.
    pub fn check_complete(&self) -> Result<(), Status> {
        let optional = Kind::Output as usize;
        let missing = self.0.iter().enumerate().any(|(i, t)| t.is_none() && i != optional);
        if missing {
            Err(ERR_MISSING_TENSOR)
        } else {
            Ok(())
        }
    }

    /// Repacks every quantized matrix for the group kernels (see `packed`). Allocates only its
    /// scratch, before touching anything, so a failure leaves the slots as they were; packing
    /// twice (ready retried after an error) packs nothing again.
    pub fn pack_all(&mut self) -> Result<(), Status> {
        let scratch_bytes = self.0.iter().flatten().map(Tensor::pack_scratch_bytes).max().unwrap_or(0);
        let mut scratch = try_vec(scratch_bytes)?;
        for tensor in self.0.iter_mut().flatten() {
            tensor.pack(&mut scratch);
        }
        Ok(())
    }

    pub fn take(&mut self, kind: Kind, layer: usize, cfg: &Config) -> Result<Tensor, Status> {
        self.0[kind.slot(layer, cfg)?].take().ok_or(ERR_MISSING_TENSOR)
    }

    /// A norm weight's values (norms are reserved as F32 only).
    pub fn take_norm(&mut self, kind: Kind, layer: usize, cfg: &Config) -> Result<Vec<f32>, Status> {
        self.take(kind, layer, cfg)?.into_f32().ok_or(ERR_UNSUPPORTED_TYPE)
    }

    pub fn take_layers(&mut self, cfg: &Config) -> Result<Vec<Layer>, Status> {
        let mut layers = Vec::new();
        layers.try_reserve_exact(cfg.n_layers).map_err(|_| ERR_OUT_OF_MEMORY)?;
        for l in 0..cfg.n_layers {
            layers.push(Layer {
                attn_norm: self.take_norm(Kind::AttnNorm, l, cfg)?,
                wq: self.take(Kind::AttnQ, l, cfg)?,
                wk: self.take(Kind::AttnK, l, cfg)?,
                wv: self.take(Kind::AttnV, l, cfg)?,
                wo: self.take(Kind::AttnOutput, l, cfg)?,
                ffn_norm: self.take_norm(Kind::FfnNorm, l, cfg)?,
                gate: self.take(Kind::FfnGate, l, cfg)?,
                up: self.take(Kind::FfnUp, l, cfg)?,
                down: self.take(Kind::FfnDown, l, cfg)?,
            });
        }
        Ok(layers)
    }
}

/// Refuses a batch that does not fit the config: n, pos + n, logits_from, token ids.
pub fn check_batch(cfg: &Config, tokens: &[u32], pos: usize, logits_from: usize) -> Result<(), Status> {
    let n = tokens.len();
    let fits = pos.checked_add(n).map_or(false, |end| end <= cfg.ctx_len);
    if !(n >= 1 && n <= cfg.max_batch && fits && logits_from <= n) {
        return Err(ERR_BAD_ARGUMENT);
    }
    if tokens.iter().any(|&t| t as usize >= cfg.n_vocab) {
        return Err(ERR_BAD_TOKEN);
    }
    Ok(())
}

/// Layers, their KV cache and the per-batch buffers: everything a forward through
/// the decoder needs. Its input is `scratch.x`; its outputs `scratch.hidden` and `scratch.logits`.
pub struct Stack {
    layers: Vec<Layer>,
    kv: KvCache,
    pub scratch: Scratch,
    /// (n, logits_from) of the last completed forward.
    last: Option<(usize, usize)>,
}

impl Stack {
    /// Allocates the KV cache and scratch, then takes the layers out of `slots` (so that a
    /// failed allocation leaves them there). `input_cols`: widest matmul input the owner
    /// feeds through `scratch.input`.
    pub fn new(cfg: &Config, slots: &mut Slots, input_cols: usize) -> Result<Stack, Status> {
        let (kv, scratch) = (KvCache::new(cfg)?, Scratch::new(cfg, input_cols)?);
        Ok(Stack { layers: slots.take_layers(cfg)?, kv, scratch, last: None })
    }

    /// Runs the n rows of `scratch.x` at positions pos..pos + n through every layer,
    /// writing their keys and values into the cache.
    pub fn run(&mut self, cfg: &Config, n: usize, pos: usize) {
        let Stack { layers, kv, scratch: s, last } = self;
        *last = None;
        let (dim, q_dim, kv_dim, ffn) = (cfg.dim, cfg.q_dim, cfg.kv_dim, cfg.ffn_dim);
        for t in 0..n {
            rope_table(cfg, pos + t, &mut s.rope[t * cfg.rope_dim..][..cfg.rope_dim]);
        }
        for (l, layer) in layers.iter().enumerate() {
            // Attention block.
            rms_norm(&s.x[..n * dim], &layer.attn_norm, cfg.rms_eps, &mut s.xb);
            prepare(&mut s.input, &s.xb[..n * dim], n, &[&layer.wq, &layer.wk, &layer.wv]);
            layer.wq.matmul(&s.xb, &s.input, n, &mut s.q);
            layer.wk.matmul(&s.xb, &s.input, n, &mut s.k);
            layer.wv.matmul(&s.xb, &s.input, n, &mut s.v);
            for t in 0..n {
                let table = &s.rope[t * cfg.rope_dim..][..cfg.rope_dim];
                apply_rope(&mut s.q[t * q_dim..][..q_dim], cfg.head_dim, table);
                apply_rope(&mut s.k[t * kv_dim..][..kv_dim], cfg.head_dim, table);
            }
            kv.store(cfg, l, pos, &s.k[..n * kv_dim], &s.v[..n * kv_dim]);
            kv.attend(cfg, l, pos, &s.q[..n * q_dim], &mut s.att, &mut s.attention);
            project(&mut s.input, &layer.wo, &s.att[..n * q_dim], n, &mut s.xb2);
            add_in_place(&mut s.x[..n * dim], &s.xb2);

            // Feed-forward block: down(silu(gate(x)) * up(x)).
            rms_norm(&s.x[..n * dim], &layer.ffn_norm, cfg.rms_eps, &mut s.xb);
            prepare(&mut s.input, &s.xb[..n * dim], n, &[&layer.gate, &layer.up]);
            layer.gate.matmul(&s.xb, &s.input, n, &mut s.hb);
            layer.up.matmul(&s.xb, &s.input, n, &mut s.hb2);
            kernels::silu_mul(&mut s.hb[..n * ffn], &s.hb2[..n * ffn]);
            project(&mut s.input, &layer.down, &s.hb[..n * ffn], n, &mut s.xb2);
            add_in_place(&mut s.x[..n * dim], &s.xb2);
        }
    }

    /// Final RMSNorm of all n rows into `scratch.hidden`, then logits for rows logits_from..n.
    pub fn finish(&mut self, cfg: &Config, norm: &[f32], output: &Tensor, n: usize, logits_from: usize) {
        let s = &mut self.scratch;
        let dim = cfg.dim;
        rms_norm(&s.x[..n * dim], norm, cfg.rms_eps, &mut s.hidden);
        let rows = n - logits_from;
        if rows > 0 {
            project(&mut s.input, output, &s.hidden[logits_from * dim..n * dim], rows, &mut s.logits);
        }
        self.last = Some((n, logits_from));
    }

    /// f32 `[(n - logits_from) × n_vocab]` of the last forward.
    pub fn logits(&self, cfg: &Config) -> Option<&[f32]> {
        let (n, from) = self.last?;
        Some(&self.scratch.logits[..(n - from) * cfg.n_vocab])
    }

    /// f32 `[n × dim]` of the last forward (after the final RMSNorm).
    pub fn hidden(&self, cfg: &Config) -> Option<&[f32]> {
        let (n, _) = self.last?;
        Some(&self.scratch.hidden[..n * cfg.dim])
    }
}

/// `out = w · x` for n rows of x, converting x for w's type first.
pub fn project(input: &mut PreparedInput, w: &Tensor, x: &[f32], n: usize, out: &mut [f32]) {
    prepare(input, x, n, &[w]);
    w.matmul(x, input, n, out);
}

/// Converts a matmul input once per token for every weight type that consumes it.
fn prepare(input: &mut PreparedInput, x: &[f32], n: usize, consumers: &[&Tensor]) {
    input.prepare(x, n, input_needs(consumers));
}

/// Per row: `(x · 1/sqrt(mean(x²) + eps)) · w`, with ggml's f64 sum of squares.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let dim = weight.len();
    for (row, out_row) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum: f64 = row.iter().map(|&v| (v * v) as f64).sum();
        let mean = (sum / dim as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &w) in out_row.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
}

/// cos/sin pairs for one position, θ_i = pos · base^(-2i/rope_dim), built by
/// repeated multiplication in f32 as ggml's rope cache does.
fn rope_table(cfg: &Config, pos: usize, table: &mut [f32]) {
    let theta_scale = cfg.rope_freq_base.powf(-2.0 / cfg.rope_dim as f32);
    let mut theta = pos as f32;
    for pair in table.chunks_exact_mut(2) {
        pair[0] = theta.cos();
        pair[1] = theta.sin();
        theta *= theta_scale;
    }
}

/// llama.cpp "normal" RoPE: rotates adjacent pairs (2i, 2i+1) of each head's
/// first rope_dim values; the rest of the head is left as is.
fn apply_rope(row: &mut [f32], head_dim: usize, table: &[f32]) {
    for head in row.chunks_exact_mut(head_dim) {
        for (pair, cs) in head.chunks_exact_mut(2).zip(table.chunks_exact(2)) {
            let (x0, x1) = (pair[0], pair[1]);
            pair[0] = x0 * cs[0] - x1 * cs[1];
            pair[1] = x0 * cs[1] + x1 * cs[0];
        }
    }
}

fn add_in_place(x: &mut [f32], delta: &[f32]) {
    for (a, &b) in x.iter_mut().zip(delta) {
        *a += b;
    }
}

/// ggml's soft_max: subtract the max, exponentiate, normalise by the f64 sum.
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    kernels::exp_shifted(scores, max);
    let sum = scores.iter().fold(0.0f64, |sum, &s| sum + s as f64);
    let inverse = (1.0 / sum) as f32;
    for s in scores.iter_mut() {
        *s *= inverse;
    }
}

/// Keys and values for every layer and position: `[layer][pos][kv_dim]`.
enum KvCache {
    F32 { k: Vec<f32>, v: Vec<f32> },
    F16 { k: Vec<u16>, v: Vec<u16> },
    /// f16 values kept widened: the F16 cache's numbers without widening it on every pass.
    F16Wide { k: Vec<f32>, v: Vec<f32> },
}

impl KvCache {
    fn new(cfg: &Config) -> Result<KvCache, Status> {
        let len = cfg.n_layers * cfg.ctx_len * cfg.kv_dim; // bounded by Config::from_words
        Ok(match (cfg.kv_f16, cfg.kv_wide) {
            (false, _) => KvCache::F32 { k: try_vec(len)?, v: try_vec(len)? },
            (true, false) => KvCache::F16 { k: try_vec(len)?, v: try_vec(len)? },
            (true, true) => KvCache::F16Wide { k: try_vec(len)?, v: try_vec(len)? },
        })
    }

    fn rounds_to_f16(&self) -> bool {
        !matches!(self, KvCache::F32 { .. })
    }

    /// Writes the batch's keys and values at positions pos..pos + n of `layer`.
    fn store(&mut self, cfg: &Config, layer: usize, pos: usize, keys: &[f32], values: &[f32]) {
        let at = (layer * cfg.ctx_len + pos) * cfg.kv_dim;
        match self {
            KvCache::F32 { k, v } => {
                k[at..][..keys.len()].copy_from_slice(keys);
                v[at..][..values.len()].copy_from_slice(values);
            }
            KvCache::F16Wide { k, v } => {
                // What the F16 cache stores, widened as it widens it.
                for (stored, new) in [(&mut k[at..][..keys.len()], keys), (&mut v[at..][..values.len()], values)] {
                    stored.copy_from_slice(new);
                    kernels::scalar::round_to_f16(stored);
                }
            }
            KvCache::F16 { k, v } => {
                crate::f16::f32_to_f16_row(keys, &mut k[at..][..keys.len()]);
                crate::f16::f32_to_f16_row(values, &mut v[at..][..values.len()]);
            }
        }
    }

    /// Causal attention for a batch whose first token sits at `pos`: token t's query
    /// (all heads) attends to positions 0..=pos + t of `layer`. Scores use 1/sqrt(head_dim);
    /// query head h reads kv head h / (n_heads / n_kv_heads). With an f16 cache the queries
    /// and the probabilities are rounded to f16, as ggml does for an f16 × f32 matmul, and
    /// each kv head's keys and values are widened to f32 once for all the batch's tokens and
    /// the query heads sharing them (F16Wide holds them widened already): widening is exact,
    /// so every dot and sum is the f16 one.
    fn attend(
        &self,
        cfg: &Config,
        layer: usize,
        pos: usize,
        queries: &[f32],
        out: &mut [f32],
        work: &mut AttentionScratch,
    ) {
        let (hd, q_dim, kv_dim) = (cfg.head_dim, cfg.q_dim, cfg.kv_dim);
        let n = queries.len() / q_dim;
        let group = cfg.n_heads / cfg.n_kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let AttentionScratch { queries: rounded, keys, values, scores } = work;
        let queries = if self.rounds_to_f16() {
            rounded[..queries.len()].copy_from_slice(queries);
            kernels::round_to_f16(&mut rounded[..queries.len()]);
            &rounded[..queries.len()]
        } else {
            queries
        };
        for kv_head in 0..cfg.n_kv_heads {
            // Rows 0..pos + n of this kv head, `stride` apart.
            let first = layer * cfg.ctx_len * kv_dim + kv_head * hd;
            let (keys, values, stride) = match self {
                KvCache::F32 { k, v } | KvCache::F16Wide { k, v } => (&k[first..], &v[first..], kv_dim),
                KvCache::F16 { k, v } => {
                    let rows = (pos + n) * hd;
                    kernels::widen_f16_rows(&k[first..], kv_dim, &mut keys[..rows], hd);
                    kernels::widen_f16_rows(&v[first..], kv_dim, &mut values[..rows], hd);
                    (&keys[..], &values[..], hd)
                }
            };
            for t in 0..n {
                let scores = &mut scores[..pos + t + 1];
                for h in kv_head * group..(kv_head + 1) * group {
                    let q = &queries[t * q_dim + h * hd..][..hd];
                    kernels::dot_f32_rows(keys, stride, q, scores);
                    for s in scores.iter_mut() {
                        *s *= scale;
                    }
                    softmax(scores);
                    if self.rounds_to_f16() {
                        kernels::round_to_f16(scores); // ggml multiplies f16 V by f16 probabilities
                    }
                    let out = &mut out[t * q_dim + h * hd..][..hd];
                    out.fill(0.0);
                    kernels::axpy_rows(out, scores, values, stride);
                }
            }
        }
    }
}

/// Per-batch buffers, `[token][width]`, allocated once when the owner gets ready.
pub struct Scratch {
    /// The decoder's input rows; the residual stream while layers run.
    pub x: Vec<f32>,
    xb: Vec<f32>,
    xb2: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    attention: AttentionScratch,
    /// cos, sin pairs per token's position, shared by all layers.
    rope: Vec<f32>,
    pub input: PreparedInput,
    pub hidden: Vec<f32>,
    pub logits: Vec<f32>,
}

struct AttentionScratch {
    /// The batch's queries rounded to f16 (dots against an f16 key cache).
    queries: Vec<f32>,
    /// One kv head's keys and values at every position, widened from an f16 cache.
    keys: Vec<f32>,
    values: Vec<f32>,
    scores: Vec<f32>,
}

impl Scratch {
    fn new(cfg: &Config, input_cols: usize) -> Result<Scratch, Status> {
        // Sizes are bounded by Config::from_words, so these products cannot overflow.
        let b = cfg.max_batch;
        let widened = if cfg.kv_packed_f16() { cfg.ctx_len * cfg.head_dim } else { 0 };
        Ok(Scratch {
            x: try_vec(b * cfg.dim)?,
            xb: try_vec(b * cfg.dim)?,
            xb2: try_vec(b * cfg.dim)?,
            q: try_vec(b * cfg.q_dim)?,
            k: try_vec(b * cfg.kv_dim)?,
            v: try_vec(b * cfg.kv_dim)?,
            att: try_vec(b * cfg.q_dim)?,
            hb: try_vec(b * cfg.ffn_dim)?,
            hb2: try_vec(b * cfg.ffn_dim)?,
            attention: AttentionScratch {
                queries: try_vec(b * cfg.q_dim)?,
                keys: try_vec(widened)?,
                values: try_vec(widened)?,
                scores: try_vec(cfg.ctx_len)?,
            },
            rope: try_vec(b * cfg.rope_dim)?,
            input: PreparedInput::new(input_cols, b)?,
            hidden: try_vec(b * cfg.dim)?,
            logits: try_vec(b * cfg.n_vocab)?,
        })
    }
}
