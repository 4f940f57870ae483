//! The decoder stack shared by the base model and the recycle head: layer weights, KV caches,
//! scratch, and the forward through them, with each architecture's options (config `ArchFlags`):
//! llama.cpp CPU semantics, see docs/ARCHITECTURE.md "Numerics".

use crate::catalog::{Kind, Presence};
use crate::config::{ArchFlags, Config};
use crate::error::*;
use crate::f16::{f16_to_f32, f32_to_f16};
use crate::kernels;
use crate::quant::PreparedInput;
use crate::rope::Rope;
use crate::tensor::{input_needs, Tensor};

pub struct Layer {
    attn_norm: Vec<f32>,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    q_bias: Option<Vec<f32>>,
    k_bias: Option<Vec<f32>>,
    v_bias: Option<Vec<f32>>,
    /// Per-head RMSNorm weights (head_dim) of queries and keys.
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    wo: Tensor,
    attn_post_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    ffn_post_norm: Option<Vec<f32>>,
}

/// Tensors reserved so far, indexed by `Kind::slot`, until their owner gets ready.
pub struct Slots(Vec<Option<Tensor>>);

impl Slots {
    pub fn new(cfg: &Config) -> Result<Slots, Status> {
        let count = Kind::slot_count(cfg);
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

    /// ERR_MISSING_TENSOR unless every kind `cfg` requires is filled.
    pub fn check_complete(&self, cfg: &Config) -> Result<(), Status> {
        let missing = self.0.iter().enumerate().any(|(slot, t)| {
            let (kind, _) = Kind::of_slot(slot);
            t.is_none() && kind.presence(cfg) == Presence::Required
        });
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

    /// A vector's values widened to f32 (norms, biases and RoPE factors may be stored as F16 and the like).
    pub fn take_vector(&mut self, kind: Kind, layer: usize, cfg: &Config) -> Result<Vec<f32>, Status> {
        let tensor = self.take(kind, layer, cfg)?;
        if tensor.ty == crate::quant::GgmlType::F32 {
            return tensor.into_f32().ok_or(ERR_UNSUPPORTED_TYPE);
        }
        let mut values = try_vec(tensor.cols)?;
        tensor.dequantize_row(0, &mut values);
        Ok(values)
    }

    /// An optional vector: None when it was not reserved.
    pub fn take_optional(&mut self, kind: Kind, layer: usize, cfg: &Config) -> Result<Option<Vec<f32>>, Status> {
        if self.0[kind.slot(layer, cfg)?].is_none() {
            return Ok(None);
        }
        self.take_vector(kind, layer, cfg).map(Some)
    }

    fn take_layers(&mut self, cfg: &Config) -> Result<Vec<Layer>, Status> {
        let mut layers = Vec::new();
        layers.try_reserve_exact(cfg.n_layers).map_err(|_| ERR_OUT_OF_MEMORY)?;
        for l in 0..cfg.n_layers {
            layers.push(Layer {
                attn_norm: self.take_vector(Kind::AttnNorm, l, cfg)?,
                wq: self.take(Kind::AttnQ, l, cfg)?,
                wk: self.take(Kind::AttnK, l, cfg)?,
                wv: self.take(Kind::AttnV, l, cfg)?,
                q_bias: self.take_optional(Kind::AttnQBias, l, cfg)?,
                k_bias: self.take_optional(Kind::AttnKBias, l, cfg)?,
                v_bias: self.take_optional(Kind::AttnVBias, l, cfg)?,
                q_norm: self.take_optional(Kind::AttnQNorm, l, cfg)?,
                k_norm: self.take_optional(Kind::AttnKNorm, l, cfg)?,
                wo: self.take(Kind::AttnOutput, l, cfg)?,
                attn_post_norm: self.take_optional(Kind::AttnPostNorm, l, cfg)?,
                ffn_norm: self.take_vector(Kind::FfnNorm, l, cfg)?,
                gate: self.take(Kind::FfnGate, l, cfg)?,
                up: self.take(Kind::FfnUp, l, cfg)?,
                down: self.take(Kind::FfnDown, l, cfg)?,
                ffn_post_norm: self.take_optional(Kind::FfnPostNorm, l, cfg)?,
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

/// Layers, their KV caches and the per-batch buffers: everything a forward through
/// the decoder needs. Its input is `scratch.x`; its outputs `scratch.hidden` and `scratch.logits`.
pub struct Stack {
    layers: Vec<Layer>,
    /// Global layers' RoPE, and the windowed layers' when there is a sliding window.
    rope: (Rope, Option<Rope>),
    /// Llama 3's per-pair RoPE frequency divisors (`rope_freqs.weight`).
    rope_factors: Option<Vec<f32>>,
    kv: KvCache,
    pub scratch: Scratch,
    /// (n, logits_from, logits row width) of the last completed forward.
    last: Option<(usize, usize, usize)>,
}

impl Stack {
    /// Allocates the KV caches and scratch, then takes the layers (and RoPE factors) out of `slots`
    /// (so that a failed allocation leaves them there). `input_cols`: widest matmul input the owner
    /// feeds through `scratch.input`.
    pub fn new(cfg: &Config, slots: &mut Slots, input_cols: usize) -> Result<Stack, Status> {
        let (kv, scratch) = (KvCache::new(cfg)?, Scratch::new(cfg, input_cols)?);
        let layers = slots.take_layers(cfg)?;
        let rope_factors = slots.take_optional(Kind::RopeFreqs, 0, cfg)?;
        Ok(Stack { layers, rope: Rope::for_config(cfg), rope_factors, kv, scratch, last: None })
    }

    /// Makes KV cache `sequence` the one forwards read and write; no data moves.
    pub fn select_sequence(&mut self, sequence: usize) -> Result<(), Status> {
        self.kv.select(sequence)
    }

    /// Copies positions 0..positions of KV cache `from` into KV cache `to` (a shared prefix taken
    /// into another sequence without running it again); the selection does not change.
    pub fn copy_sequence(&mut self, cfg: &Config, from: usize, to: usize, positions: usize) -> Result<(), Status> {
        self.kv.copy(cfg, from, to, positions)
    }

    /// Runs the n rows of `scratch.x` at positions pos..pos + n through every layer,
    /// writing their keys and values into the selected cache.
    pub fn run(&mut self, cfg: &Config, n: usize, pos: usize) {
        let Stack { layers, rope, rope_factors, kv, scratch: s, last } = self;
        *last = None;
        let (dim, q_dim, kv_dim, ffn, hd, rd) = (cfg.dim, cfg.q_dim, cfg.kv_dim, cfg.ffn_dim, cfg.head_dim, cfg.rope_dim);
        let factors = rope_factors.as_deref();
        // Each RoPE's tables for the batch: `[rope][token][rope_dim]`.
        for (i, r) in [Some(&rope.0), rope.1.as_ref()].iter().flatten().enumerate() {
            for t in 0..n {
                r.table(pos + t, factors, &mut s.rope[(i * n + t) * rd..][..rd]);
            }
        }
        let scale_queries = cfg.arch.has(ArchFlags::SCALE_QUERIES);
        let attn_scale = 1.0 / (cfg.attn_scale_dim as f32).sqrt();
        for (l, layer) in layers.iter().enumerate() {
            // Attention block.
            rms_norm(&s.x[..n * dim], &layer.attn_norm, cfg.rms_eps, &mut s.xb);
            prepare(&mut s.input, &s.xb[..n * dim], n, &[&layer.wq, &layer.wk, &layer.wv]);
            layer.wq.matmul(&s.xb, &s.input, n, &mut s.q);
            layer.wk.matmul(&s.xb, &s.input, n, &mut s.k);
            layer.wv.matmul(&s.xb, &s.input, n, &mut s.v);
            add_bias(&mut s.q[..n * q_dim], layer.q_bias.as_deref());
            add_bias(&mut s.k[..n * kv_dim], layer.k_bias.as_deref());
            add_bias(&mut s.v[..n * kv_dim], layer.v_bias.as_deref());
            if let (Some(q_norm), Some(k_norm)) = (&layer.q_norm, &layer.k_norm) {
                rms_norm_in_place(&mut s.q[..n * q_dim], q_norm, cfg.rms_eps);
                rms_norm_in_place(&mut s.k[..n * kv_dim], k_norm, cfg.rms_eps);
            }
            let (layer_rope, tables) = if cfg.is_windowed(l) {
                (rope.1.as_ref().unwrap_or(&rope.0), &s.rope[n * rd..])
            } else {
                (&rope.0, &s.rope[..])
            };
            for t in 0..n {
                let table = &tables[t * rd..][..rd];
                layer_rope.apply(&mut s.q[t * q_dim..][..q_dim], hd, table);
                layer_rope.apply(&mut s.k[t * kv_dim..][..kv_dim], hd, table);
            }
            if scale_queries {
                for v in &mut s.q[..n * q_dim] {
                    *v *= attn_scale;
                }
            }
            kv.store(cfg, l, pos, &s.k[..n * kv_dim], &s.v[..n * kv_dim]);
            let window = if cfg.is_windowed(l) { cfg.sliding_window.map(|w| w.size) } else { None };
            let score_scale = if scale_queries { None } else { Some(attn_scale) };
            kv.attend(cfg, l, pos, window, score_scale, &s.q[..n * q_dim], &mut s.att, &mut s.attention);
            project(&mut s.input, &layer.wo, &s.att[..n * q_dim], n, &mut s.xb2);
            if let Some(norm) = &layer.attn_post_norm {
                rms_norm_in_place(&mut s.xb2[..n * dim], norm, cfg.rms_eps);
            }
            add_in_place(&mut s.x[..n * dim], &s.xb2);

            // Feed-forward block: down(act(gate(x)) * up(x)), act SiLU or GELU.
            rms_norm(&s.x[..n * dim], &layer.ffn_norm, cfg.rms_eps, &mut s.xb);
            prepare(&mut s.input, &s.xb[..n * dim], n, &[&layer.gate, &layer.up]);
            layer.gate.matmul(&s.xb, &s.input, n, &mut s.hb);
            layer.up.matmul(&s.xb, &s.input, n, &mut s.hb2);
            if cfg.arch.has(ArchFlags::GELU) {
                for (g, &u) in s.hb[..n * ffn].iter_mut().zip(&s.hb2) {
                    *g = gelu(*g) * u;
                }
            } else {
                kernels::silu_mul(&mut s.hb[..n * ffn], &s.hb2[..n * ffn]);
            }
            project(&mut s.input, &layer.down, &s.hb[..n * ffn], n, &mut s.xb2);
            if let Some(norm) = &layer.ffn_post_norm {
                rms_norm_in_place(&mut s.xb2[..n * dim], norm, cfg.rms_eps);
            }
            add_in_place(&mut s.x[..n * dim], &s.xb2);
        }
    }

    /// Final RMSNorm of all n rows into `scratch.hidden`, then logits for rows logits_from..n
    /// (soft-capped when the config says so), one per row of `output` (at most n_vocab rows).
    pub fn finish(&mut self, cfg: &Config, norm: &[f32], output: &Tensor, n: usize, logits_from: usize) {
        let s = &mut self.scratch;
        let dim = cfg.dim;
        rms_norm(&s.x[..n * dim], norm, cfg.rms_eps, &mut s.hidden);
        let rows = n - logits_from;
        if rows > 0 {
            project(&mut s.input, output, &s.hidden[logits_from * dim..n * dim], rows, &mut s.logits);
            if let Some(cap) = cfg.final_logit_softcap {
                let inverse = 1.0 / cap;
                for l in &mut s.logits[..rows * output.rows] {
                    *l = (*l * inverse).tanh() * cap;
                }
            }
        }
        self.last = Some((n, logits_from, output.rows));
    }

    /// f32 `[(n - logits_from) × width]` of the last forward: width n_vocab, or a shortlist's rows.
    pub fn logits(&self) -> Option<&[f32]> {
        let (n, from, width) = self.last?;
        Some(&self.scratch.logits[..(n - from) * width])
    }

    /// f32 `[n × dim]` of the last forward (after the final RMSNorm).
    pub fn hidden(&self, cfg: &Config) -> Option<&[f32]> {
        let (n, _, _) = self.last?;
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

/// Per row of weight.len() values: `(x · 1/sqrt(mean(x²) + eps)) · w`, with ggml's f64 sum of squares.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let dim = weight.len();
    for (row, out_row) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let scale = rms_scale(row, eps);
        for ((o, &v), &w) in out_row.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
}

/// `rms_norm` of each weight.len()-long piece of x, in place (per-head Q/K norms, post norms).
fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(weight.len()) {
        let scale = rms_scale(row, eps);
        for (v, &w) in row.iter_mut().zip(weight) {
            *v = *v * scale * w;
        }
    }
}

fn rms_scale(row: &[f32], eps: f32) -> f32 {
    let sum: f64 = row.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / row.len() as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

/// Adds `bias` to each bias.len()-long row of x.
fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(bias) = bias {
        for row in x.chunks_exact_mut(bias.len()) {
            add_in_place(row, bias);
        }
    }
}

fn add_in_place(x: &mut [f32], delta: &[f32]) {
    for (a, &b) in x.iter_mut().zip(delta) {
        *a += b;
    }
}

/// ggml's CPU GELU (tanh approximation): looked up by the input rounded to f16 in a table of
/// f16-rounded results, the identity from 10 up and 0 from -10 down.
fn gelu(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let h = f16_to_f32(f32_to_f16(x));
        let y = 0.5 * h * (1.0 + (SQRT_2_OVER_PI * h * (1.0 + GELU_COEF_A * h * h)).tanh());
        f16_to_f32(f32_to_f16(y))
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

/// One sequence's keys and values for every layer and position: `[layer][pos][kv_dim]`.
enum KvStore {
    F32 { k: Vec<f32>, v: Vec<f32> },
    F16 { k: Vec<u16>, v: Vec<u16> },
    /// f16 values kept widened: the F16 cache's numbers without widening it on every pass.
    F16Wide { k: Vec<f32>, v: Vec<f32> },
}

/// `n_sequences` independent caches, one of them selected.
struct KvCache {
    stores: Vec<KvStore>,
    selected: usize,
}

impl KvCache {
    fn new(cfg: &Config) -> Result<KvCache, Status> {
        let len = cfg.n_layers * cfg.ctx_len * cfg.kv_dim; // bounded by Config::from_words
        let mut stores = Vec::new();
        stores.try_reserve_exact(cfg.n_sequences).map_err(|_| ERR_OUT_OF_MEMORY)?;
        for _ in 0..cfg.n_sequences {
            stores.push(match (cfg.kv_f16, cfg.kv_wide) {
                (false, _) => KvStore::F32 { k: try_vec(len)?, v: try_vec(len)? },
                (true, false) => KvStore::F16 { k: try_vec(len)?, v: try_vec(len)? },
                (true, true) => KvStore::F16Wide { k: try_vec(len)?, v: try_vec(len)? },
            });
        }
        Ok(KvCache { stores, selected: 0 })
    }

    fn select(&mut self, sequence: usize) -> Result<(), Status> {
        if sequence >= self.stores.len() {
            return Err(ERR_BAD_ARGUMENT);
        }
        self.selected = sequence;
        Ok(())
    }

    /// Copies positions 0..positions of every layer from cache `from` into cache `to`.
    fn copy(&mut self, cfg: &Config, from: usize, to: usize, positions: usize) -> Result<(), Status> {
        let count = self.stores.len();
        if from >= count || to >= count || positions > cfg.ctx_len {
            return Err(ERR_BAD_ARGUMENT);
        }
        if from == to {
            return Ok(());
        }
        // Two distinct stores, borrowed apart.
        let (source, target) = if from < to {
            let (low, high) = self.stores.split_at_mut(to);
            (&low[from], &mut high[0])
        } else {
            let (low, high) = self.stores.split_at_mut(from);
            (&high[0], &mut low[to])
        };
        let span = positions * cfg.kv_dim;
        for layer in 0..cfg.n_layers {
            let range = layer * cfg.ctx_len * cfg.kv_dim..layer * cfg.ctx_len * cfg.kv_dim + span;
            match (source, &mut *target) {
                (KvStore::F32 { k, v }, KvStore::F32 { k: tk, v: tv })
                | (KvStore::F16Wide { k, v }, KvStore::F16Wide { k: tk, v: tv }) => {
                    tk[range.clone()].copy_from_slice(&k[range.clone()]);
                    tv[range.clone()].copy_from_slice(&v[range]);
                }
                (KvStore::F16 { k, v }, KvStore::F16 { k: tk, v: tv }) => {
                    tk[range.clone()].copy_from_slice(&k[range.clone()]);
                    tv[range.clone()].copy_from_slice(&v[range]);
                }
                // Every store of a cache has the cache's type.
                _ => return Err(ERR_WRONG_STATE),
            }
        }
        Ok(())
    }

    /// Writes the batch's keys and values at positions pos..pos + n of `layer`.
    fn store(&mut self, cfg: &Config, layer: usize, pos: usize, keys: &[f32], values: &[f32]) {
        let at = (layer * cfg.ctx_len + pos) * cfg.kv_dim;
        match &mut self.stores[self.selected] {
            KvStore::F32 { k, v } => {
                k[at..][..keys.len()].copy_from_slice(keys);
                v[at..][..values.len()].copy_from_slice(values);
            }
            KvStore::F16Wide { k, v } => {
                // What the F16 cache stores, widened as it widens it.
                for (stored, new) in [(&mut k[at..][..keys.len()], keys), (&mut v[at..][..values.len()], values)] {
                    stored.copy_from_slice(new);
                    kernels::scalar::round_to_f16(stored);
                }
            }
            KvStore::F16 { k, v } => {
                crate::f16::f32_to_f16_row(keys, &mut k[at..][..keys.len()]);
                crate::f16::f32_to_f16_row(values, &mut v[at..][..values.len()]);
            }
        }
    }

    /// Causal attention for a batch whose first token sits at `pos`: token t's query (all heads)
    /// attends to positions 0..=pos + t of `layer`, or with a `window` only to the last `window` of them
    /// (llama.cpp masks the others: their probabilities are exactly 0). Scores are multiplied by
    /// `score_scale` (None where the queries were scaled instead); query head h reads kv head
    /// h / (n_heads / n_kv_heads). With an f16 cache the queries and the probabilities are rounded to f16,
    /// as ggml does for an f16 × f32 matmul, and each kv head's keys and values are widened to f32 once
    /// for all the batch's tokens and the query heads sharing them (F16Wide holds them widened already):
    /// widening is exact, so every dot and sum is the f16 one.
    #[allow(clippy::too_many_arguments)]
    fn attend(
        &self,
        cfg: &Config,
        layer: usize,
        pos: usize,
        window: Option<usize>,
        score_scale: Option<f32>,
        queries: &[f32],
        out: &mut [f32],
        work: &mut AttentionScratch,
    ) {
        let (hd, q_dim, kv_dim) = (cfg.head_dim, cfg.q_dim, cfg.kv_dim);
        let n = queries.len() / q_dim;
        let group = cfg.n_heads / cfg.n_kv_heads;
        let store = &self.stores[self.selected];
        let rounds_to_f16 = !matches!(store, KvStore::F32 { .. });
        let AttentionScratch { queries: rounded, keys, values, scores } = work;
        let queries = if rounds_to_f16 {
            rounded[..queries.len()].copy_from_slice(queries);
            kernels::round_to_f16(&mut rounded[..queries.len()]);
            &rounded[..queries.len()]
        } else {
            queries
        };
        // First position token t sees.
        let first = |t: usize| window.map_or(0, |w| (pos + t + 1).saturating_sub(w));
        for kv_head in 0..cfg.n_kv_heads {
            // Rows 0..pos + n of this kv head, `stride` apart (from first(0) on when widened).
            let start = layer * cfg.ctx_len * kv_dim + kv_head * hd;
            let (keys, values, stride, base) = match store {
                KvStore::F32 { k, v } | KvStore::F16Wide { k, v } => (&k[start..], &v[start..], kv_dim, 0),
                KvStore::F16 { k, v } => {
                    let (from, rows) = (first(0), (pos + n - first(0)) * hd);
                    kernels::widen_f16_rows(&k[start + from * kv_dim..], kv_dim, &mut keys[..rows], hd);
                    kernels::widen_f16_rows(&v[start + from * kv_dim..], kv_dim, &mut values[..rows], hd);
                    (&keys[..], &values[..], hd, from)
                }
            };
            for t in 0..n {
                let visible = first(t)..pos + t + 1;
                let scores = &mut scores[..visible.len()];
                let (keys, values) = (&keys[(visible.start - base) * stride..], &values[(visible.start - base) * stride..]);
                for h in kv_head * group..(kv_head + 1) * group {
                    let q = &queries[t * q_dim + h * hd..][..hd];
                    kernels::dot_f32_rows(keys, stride, q, scores);
                    if let Some(scale) = score_scale {
                        for s in scores.iter_mut() {
                            *s *= scale;
                        }
                    }
                    softmax(scores);
                    if rounds_to_f16 {
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
    /// cos, sin pairs per token's position, shared by all layers: `[table][token][rope_dim]`.
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
            rope: try_vec(cfg.rope_tables() * b * cfg.rope_dim)?,
            input: PreparedInput::new(input_cols, b)?,
            hidden: try_vec(b * cfg.dim)?,
            logits: try_vec(b * cfg.n_vocab)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_follows_ggml_f16_table() {
        assert_eq!(gelu(-10.0), 0.0);
        assert_eq!(gelu(10.5), 10.5);
        assert_eq!(gelu(0.0), 0.0);
        // 1.0 is exact in f16; gelu(1) = 0.841192 rounds to the f16 0.8413.
        assert_eq!(gelu(1.0), f16_to_f32(f32_to_f16(0.841_192)));
        // Inputs that round to the same half give the same output.
        assert_eq!(gelu(1.0001), gelu(1.0));
    }
}
