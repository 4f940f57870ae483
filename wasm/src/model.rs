//! The llama model: weights, KV cache, scratch and the forward pass
//! (llama.cpp CPU semantics, see docs/ARCHITECTURE.md "Numerics").

use crate::config::Config;
use crate::error::*;
use crate::f16::{f16_to_f32, f32_to_f16};
use crate::kernels;
use crate::quant::{GgmlType, PreparedInput};
use crate::tensor::{input_needs, Kind, Tensor, GLOBAL_KINDS, LAYER_KINDS};

pub struct Model {
    cfg: Config,
    /// Tensors reserved so far, by `Kind::slot`; emptied into `Runtime` by `ready`.
    slots: Vec<Option<Tensor>>,
    runtime: Option<Runtime>,
}

struct Layer {
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

struct Weights {
    token_embd: Tensor,
    output_norm: Vec<f32>,
    /// None: tied to token_embd.
    output: Option<Tensor>,
    layers: Vec<Layer>,
}

/// Keys and values for every layer and position: `[layer][pos][kv_dim]`.
enum KvCache {
    F32 { k: Vec<f32>, v: Vec<f32> },
    F16 { k: Vec<u16>, v: Vec<u16> },
}

/// Per-batch buffers, `[token][width]`, allocated once in `ready`.
struct Scratch {
    x: Vec<f32>,
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
    input: PreparedInput,
    hidden: Vec<f32>,
    logits: Vec<f32>,
}

struct AttentionScratch {
    /// One token's query rounded to f16 (dot against an f16 key cache).
    q_rounded: Vec<f32>,
    scores: Vec<f32>,
}

struct Runtime {
    weights: Weights,
    kv: KvCache,
    scratch: Scratch,
    /// (n, logits_from) of the last successful forward.
    last: Option<(usize, usize)>,
}

impl Model {
    pub fn new(cfg: Config) -> Result<Model, Status> {
        let slot_count = GLOBAL_KINDS + cfg.n_layers * LAYER_KINDS;
        let mut slots = Vec::new();
        slots.try_reserve_exact(slot_count).map_err(|_| ERR_OUT_OF_MEMORY)?;
        slots.resize_with(slot_count, || None);
        Ok(Model { cfg, slots, runtime: None })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Allocates one tensor and returns where its raw GGUF bytes go.
    pub fn reserve(&mut self, kind: u32, layer: u32, ty: u32, rows: u32, cols: u32) -> Result<*mut u8, Status> {
        if self.runtime.is_some() {
            return Err(ERR_WRONG_STATE);
        }
        let kind = Kind::from_id(kind)?;
        let slot = kind.slot(layer as usize, &self.cfg)?;
        let ty = GgmlType::from_id(ty).ok_or(ERR_UNSUPPORTED_TYPE)?;
        if self.slots[slot].is_some() {
            return Err(ERR_DUPLICATE_TENSOR);
        }
        let mut tensor = kind.alloc(&self.cfg, ty, rows as usize, cols as usize)?;
        let ptr = tensor.bytes_mut();
        self.slots[slot] = Some(tensor);
        Ok(ptr)
    }

    /// Checks that every required tensor is there, then allocates KV cache and scratch.
    pub fn ready(&mut self) -> Result<(), Status> {
        if self.runtime.is_some() {
            return Err(ERR_WRONG_STATE);
        }
        let optional = Kind::Output as usize;
        if self.slots.iter().enumerate().any(|(i, t)| t.is_none() && i != optional) {
            return Err(ERR_MISSING_TENSOR);
        }
        let kv = KvCache::new(&self.cfg)?;
        let scratch = Scratch::new(&self.cfg)?;
        let mut layers = Vec::new();
        layers.try_reserve_exact(self.cfg.n_layers).map_err(|_| ERR_OUT_OF_MEMORY)?;
        let (cfg, slots) = (&self.cfg, &mut self.slots);
        let mut take = |kind: Kind, layer: usize| slots[kind.slot(layer, cfg)?].take().ok_or(ERR_MISSING_TENSOR);
        let norm = |t: Tensor| t.into_f32().ok_or(ERR_UNSUPPORTED_TYPE);
        for l in 0..cfg.n_layers {
            layers.push(Layer {
                attn_norm: norm(take(Kind::AttnNorm, l)?)?,
                wq: take(Kind::AttnQ, l)?,
                wk: take(Kind::AttnK, l)?,
                wv: take(Kind::AttnV, l)?,
                wo: take(Kind::AttnOutput, l)?,
                ffn_norm: norm(take(Kind::FfnNorm, l)?)?,
                gate: take(Kind::FfnGate, l)?,
                up: take(Kind::FfnUp, l)?,
                down: take(Kind::FfnDown, l)?,
            });
        }
        let weights = Weights {
            token_embd: take(Kind::TokenEmbd, 0)?,
            output_norm: norm(take(Kind::OutputNorm, 0)?)?,
            output: take(Kind::Output, 0).ok(),
            layers,
        };
        self.runtime = Some(Runtime { weights, kv, scratch, last: None });
        Ok(())
    }

    /// Runs `tokens` at positions `pos..pos + n`; logits for rows `logits_from..n`.
    pub fn forward(&mut self, tokens: &[u32], pos: usize, logits_from: usize) -> Result<(), Status> {
        let cfg = &self.cfg;
        let rt = self.runtime.as_mut().ok_or(ERR_WRONG_STATE)?;
        let n = tokens.len();
        let fits = pos.checked_add(n).map_or(false, |end| end <= cfg.ctx_len);
        let in_range = n >= 1 && n <= cfg.max_batch && fits && logits_from <= n;
        if !in_range {
            return Err(ERR_BAD_ARGUMENT);
        }
        if tokens.iter().any(|&t| t as usize >= cfg.n_vocab) {
            return Err(ERR_BAD_TOKEN);
        }
        rt.last = None;
        let Runtime { weights: w, kv, scratch: s, last } = rt;
        let (dim, q_dim, kv_dim, ffn) = (cfg.dim, cfg.q_dim, cfg.kv_dim, cfg.ffn_dim);

        for (t, &token) in tokens.iter().enumerate() {
            w.token_embd.dequantize_row(token as usize, &mut s.x[t * dim..][..dim]);
            rope_table(cfg, pos + t, &mut s.rope[t * cfg.rope_dim..][..cfg.rope_dim]);
        }
        for (l, layer) in w.layers.iter().enumerate() {
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
            prepare(&mut s.input, &s.att[..n * q_dim], n, &[&layer.wo]);
            layer.wo.matmul(&s.att, &s.input, n, &mut s.xb2);
            add_in_place(&mut s.x[..n * dim], &s.xb2);

            // Feed-forward block: down(silu(gate(x)) * up(x)).
            rms_norm(&s.x[..n * dim], &layer.ffn_norm, cfg.rms_eps, &mut s.xb);
            prepare(&mut s.input, &s.xb[..n * dim], n, &[&layer.gate, &layer.up]);
            layer.gate.matmul(&s.xb, &s.input, n, &mut s.hb);
            layer.up.matmul(&s.xb, &s.input, n, &mut s.hb2);
            for (g, &u) in s.hb[..n * ffn].iter_mut().zip(&s.hb2) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
            prepare(&mut s.input, &s.hb[..n * ffn], n, &[&layer.down]);
            layer.down.matmul(&s.hb, &s.input, n, &mut s.xb2);
            add_in_place(&mut s.x[..n * dim], &s.xb2);
        }

        rms_norm(&s.x[..n * dim], &w.output_norm, cfg.rms_eps, &mut s.hidden);
        let rows = n - logits_from;
        if rows > 0 {
            let output = w.output.as_ref().unwrap_or(&w.token_embd);
            let hidden = &s.hidden[logits_from * dim..n * dim];
            prepare(&mut s.input, hidden, rows, &[output]);
            output.matmul(hidden, &s.input, rows, &mut s.logits);
        }
        *last = Some((n, logits_from));
        Ok(())
    }

    /// f32 `[(n - logits_from) × n_vocab]` of the last forward.
    pub fn logits(&self) -> Option<&[f32]> {
        let rt = self.runtime.as_ref()?;
        let (n, from) = rt.last?;
        Some(&rt.scratch.logits[..(n - from) * self.cfg.n_vocab])
    }

    /// f32 `[n × dim]` of the last forward (after the final RMSNorm).
    pub fn hidden(&self) -> Option<&[f32]> {
        let rt = self.runtime.as_ref()?;
        let (n, _) = rt.last?;
        Some(&rt.scratch.hidden[..n * self.cfg.dim])
    }
}

/// Converts a matmul input once per token for every weight type that consumes it.
fn prepare(input: &mut PreparedInput, x: &[f32], n: usize, consumers: &[&Tensor]) {
    let (want_f16, want_q8) = input_needs(consumers);
    input.prepare(x, n, want_f16, want_q8);
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
    let mut sum = 0.0f64;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s as f64;
    }
    let inverse = (1.0 / sum) as f32;
    for s in scores.iter_mut() {
        *s *= inverse;
    }
}

impl KvCache {
    fn new(cfg: &Config) -> Result<KvCache, Status> {
        let len = cfg.n_layers * cfg.ctx_len * cfg.kv_dim; // bounded by Config::from_words
        Ok(if cfg.kv_f16 {
            KvCache::F16 { k: try_vec(len)?, v: try_vec(len)? }
        } else {
            KvCache::F32 { k: try_vec(len)?, v: try_vec(len)? }
        })
    }

    /// Writes the batch's keys and values at positions pos..pos + n of `layer`.
    fn store(&mut self, cfg: &Config, layer: usize, pos: usize, keys: &[f32], values: &[f32]) {
        let at = (layer * cfg.ctx_len + pos) * cfg.kv_dim;
        match self {
            KvCache::F32 { k, v } => {
                k[at..][..keys.len()].copy_from_slice(keys);
                v[at..][..values.len()].copy_from_slice(values);
            }
            KvCache::F16 { k, v } => {
                crate::f16::f32_to_f16_row(keys, &mut k[at..][..keys.len()]);
                crate::f16::f32_to_f16_row(values, &mut v[at..][..values.len()]);
            }
        }
    }

    /// Causal attention for a batch whose first token sits at `pos`: token t's query
    /// (all heads) attends to positions 0..=pos + t of `layer`.
    fn attend(
        &self,
        cfg: &Config,
        layer: usize,
        pos: usize,
        queries: &[f32],
        out: &mut [f32],
        work: &mut AttentionScratch,
    ) {
        let q_dim = cfg.q_dim;
        for (t, q) in queries.chunks_exact(q_dim).enumerate() {
            self.attend_one(cfg, layer, pos + t + 1, q, &mut out[t * q_dim..][..q_dim], work);
        }
    }

    /// One token over positions 0..len. Scores use 1/sqrt(head_dim); query head h reads
    /// kv head h / (n_heads / n_kv_heads). With an f16 cache the query and the probabilities
    /// are rounded to f16 first, as ggml does for an f16 × f32 matmul.
    fn attend_one(
        &self,
        cfg: &Config,
        layer: usize,
        len: usize,
        q: &[f32],
        out: &mut [f32],
        work: &mut AttentionScratch,
    ) {
        let (hd, kv_dim) = (cfg.head_dim, cfg.kv_dim);
        let group = cfg.n_heads / cfg.n_kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let base = layer * cfg.ctx_len * kv_dim;
        let scores = &mut work.scores[..len];
        if let KvCache::F16 { .. } = self {
            for (r, &v) in work.q_rounded.iter_mut().zip(q) {
                *r = f16_to_f32(f32_to_f16(v));
            }
        }
        for h in 0..cfg.n_heads {
            let offset = base + (h / group) * hd;
            let row = |j: usize| offset + j * kv_dim;
            let out = &mut out[h * hd..][..hd];
            out.fill(0.0);
            match self {
                KvCache::F32 { k, v } => {
                    let qh = &q[h * hd..][..hd];
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = kernels::dot_f32(&k[row(j)..][..hd], qh) * scale;
                    }
                    softmax(scores);
                    for (j, &p) in scores.iter().enumerate() {
                        kernels::axpy_f32(out, p, &v[row(j)..][..hd]);
                    }
                }
                KvCache::F16 { k, v } => {
                    let qh = &work.q_rounded[h * hd..][..hd];
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = kernels::dot_f16(&k[row(j)..][..hd], qh) * scale;
                    }
                    softmax(scores);
                    // ggml multiplies f16 V by the probabilities converted to f16.
                    for (j, &p) in scores.iter().enumerate() {
                        kernels::axpy_f16(out, f16_to_f32(f32_to_f16(p)), &v[row(j)..][..hd]);
                    }
                }
            }
        }
    }
}

impl Scratch {
    fn new(cfg: &Config) -> Result<Scratch, Status> {
        // Sizes are bounded by Config::from_words, so these products cannot overflow.
        let b = cfg.max_batch;
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
            attention: AttentionScratch { q_rounded: try_vec(cfg.q_dim)?, scores: try_vec(cfg.ctx_len)? },
            rope: try_vec(b * cfg.rope_dim)?,
            input: PreparedInput::new(cfg.max_input_cols(), b)?,
            hidden: try_vec(b * cfg.dim)?,
            logits: try_vec(b * cfg.n_vocab)?,
        })
    }
}
