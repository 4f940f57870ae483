//! Model hyper-parameters as passed to `rg_model_new` (docs/ARCHITECTURE.md, "Config words"),
//! validated so that every buffer size derived from them fits in 32-bit memory.

use crate::error::{Status, ERR_INVALID_CONFIG, ERR_TOO_LARGE};
use crate::quant::PreparedInput;

/// Each count is capped so products of two never overflow u64 before the size checks.
const MAX_COUNT: u32 = 1 << 24;
/// KV cache plus scratch must fit in one wasm32 address space with room for weights;
/// this also bounds each single buffer below isize::MAX on wasm32.
const MAX_RUNTIME_BYTES: u64 = i32::MAX as u64;

/// What sets one architecture's layers apart from llama's (config word 13, a bit each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ArchFlags(u32);

impl ArchFlags {
    /// RoPE rotates the pairs (i, i + rope_dim/2) (llama.cpp's NEOX mode), not (2i, 2i + 1).
    pub const ROPE_NEOX: u32 = 1;
    /// Per-head RMSNorm of queries and keys before RoPE (`attn_q_norm`, `attn_k_norm`).
    pub const QK_NORM: u32 = 2;
    /// RMSNorm of the attention and feed-forward outputs before the residual adds.
    pub const POST_NORMS: u32 = 4;
    /// Feed-forward gate through GELU (tanh approximation) instead of SiLU.
    pub const GELU: u32 = 8;
    /// Input embeddings multiplied by √dim.
    pub const SCALE_EMBEDDING: u32 = 16;
    /// Queries multiplied by the attention scale before attention (whose scores are then not scaled).
    pub const SCALE_QUERIES: u32 = 32;
    /// The architecture may carry RoPE frequency factors (Llama 3's `rope_freqs.weight`).
    pub const ROPE_FACTORS: u32 = 64;
    const ALL: u32 = 127;

    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }
}

/// RoPE frequency scaling (config word 15), as llama.cpp's `rope.scaling.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeScaling {
    None,
    Linear,
    Yarn,
}

/// Sliding-window attention: layer l attends only to the last `size` positions unless it is one of
/// every `pattern`-th layers (l % pattern == pattern - 1), which attend to all; windowed layers use
/// their own RoPE base and no frequency scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlidingWindow {
    pub size: usize,
    pub pattern: usize,
    pub rope_freq_base: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub n_vocab: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub ffn_dim: usize,
    pub ctx_len: usize,
    pub head_dim: usize,
    pub rope_dim: usize,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
    /// Keys and values rounded to f16, as llama.cpp's f16 cache holds them.
    pub kv_f16: bool,
    /// With kv_f16: kept widened in f32, so attention need not widen the cache on every pass
    /// (twice the memory, the same numbers).
    pub kv_wide: bool,
    pub max_batch: usize,
    pub arch: ArchFlags,
    /// Independent KV caches, one of which a forward reads and writes (`rg_select_sequence`).
    pub n_sequences: usize,
    pub rope_scaling: RopeScaling,
    /// `rope.scaling.factor` (1 when the file gives none).
    pub rope_scaling_factor: f32,
    /// `rope.scaling.attn_factor`: multiplies every cos/sin.
    pub rope_attn_factor: f32,
    /// YaRN's original context (`rope.scaling.original_context_length`, else the trained context).
    pub yarn_orig_ctx: usize,
    pub sliding_window: Option<SlidingWindow>,
    /// The attention scale is 1/√attn_scale_dim.
    pub attn_scale_dim: usize,
    /// Logits become cap·tanh(logits/cap) (Gemma's final soft-capping); None for plain logits.
    pub final_logit_softcap: Option<f32>,
    /// n_heads · head_dim
    pub q_dim: usize,
    /// n_kv_heads · head_dim
    pub kv_dim: usize,
}

impl Config {
    pub const WORDS: usize = 24;

    /// A config from its words, refused when they are inconsistent or when the KV cache and
    /// scratch they imply could not be allocated in 32-bit memory.
    pub fn from_words(w: &[u32]) -> Result<Config, Status> {
        let cfg = Config::parse(w)?;
        if cfg.runtime_bytes().map_or(true, |b| b.total() > MAX_RUNTIME_BYTES) {
            return Err(ERR_TOO_LARGE);
        }
        Ok(cfg)
    }

    /// `from_words` without the size limit (to report the sizes of a config too large to run).
    pub fn parse(w: &[u32]) -> Result<Config, Status> {
        if w.len() != Self::WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        let count =
            |i: usize| if (1..=MAX_COUNT).contains(&w[i]) { Ok(w[i] as usize) } else { Err(ERR_INVALID_CONFIG) };
        let float = |i: usize| f32::from_bits(w[i]);
        let positive = |v: f32| v.is_finite() && v > 0.0;
        let (n_heads, n_kv_heads, head_dim) = (count(3)?, count(4)?, count(7)?);
        let rope_dim = w[8] as usize;
        let rope_scaling = match w[15] {
            0 => RopeScaling::None,
            1 => RopeScaling::Linear,
            2 => RopeScaling::Yarn,
            _ => return Err(ERR_INVALID_CONFIG),
        };
        let sliding_window = match w[19] {
            0 => None,
            _ => Some(SlidingWindow { size: count(19)?, pattern: count(20)?, rope_freq_base: float(21) }),
        };
        let softcap = float(23);
        let valid = n_heads % n_kv_heads == 0
            && rope_dim % 2 == 0
            && rope_dim <= head_dim
            && positive(float(9))
            && float(10).is_finite()
            && float(10) >= 0.0
            && w[11] <= 2
            && w[13] & !ArchFlags::ALL == 0
            && (w[16] == 0 || positive(float(16)))
            && positive(float(17))
            && sliding_window.map_or(true, |s| positive(s.rope_freq_base))
            && softcap.is_finite()
            && softcap >= 0.0;
        if !valid {
            return Err(ERR_INVALID_CONFIG);
        }
        Ok(Config {
            n_vocab: count(0)?,
            dim: count(1)?,
            n_layers: count(2)?,
            n_heads,
            n_kv_heads,
            ffn_dim: count(5)?,
            ctx_len: count(6)?,
            head_dim,
            rope_dim,
            rope_freq_base: float(9),
            rms_eps: float(10),
            kv_f16: w[11] != 0,
            kv_wide: w[11] == 2,
            max_batch: count(12)?,
            arch: ArchFlags(w[13]),
            n_sequences: count(14)?,
            rope_scaling,
            rope_scaling_factor: if w[16] == 0 { 1.0 } else { float(16) },
            rope_attn_factor: float(17),
            yarn_orig_ctx: count(18)?,
            sliding_window,
            attn_scale_dim: if w[22] == 0 { head_dim } else { count(22)? },
            final_logit_softcap: if softcap == 0.0 { None } else { Some(softcap) },
            q_dim: n_heads * head_dim,
            kv_dim: n_kv_heads * head_dim,
        })
    }

    /// Words of `rg_recycle_new`: words 2..13 of a base's (the llama stack's own), without n_vocab and dim.
    pub const HEAD_WORDS: usize = 11;

    /// The recycle head's config: `words` as words 2..13 of `rg_model_new`'s. The head takes n_vocab and dim
    /// from this (base) config: its logits span the base's vocabulary and its residual stream has the
    /// base's dim; it keeps as many KV caches as the base. Otherwise it is a plain llama stack.
    /// Validated like a base config.
    pub fn recycle_head(&self, words: &[u32]) -> Result<Config, Status> {
        if words.len() != Self::HEAD_WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        let mut full = [0u32; Self::WORDS];
        full[0] = self.n_vocab as u32; // ≤ MAX_COUNT, so this cannot truncate
        full[1] = self.dim as u32;
        full[2..13].copy_from_slice(words);
        full[14] = self.n_sequences as u32;
        full[17] = 1f32.to_bits();
        full[18] = words[4]; // ctx_len: YaRN is off, any valid count
        Config::from_words(&full)
    }

    /// An f16 cache stored at 2 bytes a value, which attention widens on every pass.
    pub fn kv_packed_f16(&self) -> bool {
        self.kv_f16 && !self.kv_wide
    }

    /// Widest matmul input (the Q8_0 / f16 activation buffers are sized for it).
    pub fn max_input_cols(&self) -> usize {
        self.dim.max(self.q_dim).max(self.ffn_dim)
    }

    /// Whether layer `layer` attends through the sliding window.
    pub fn is_windowed(&self, layer: usize) -> bool {
        self.sliding_window.map_or(false, |s| layer % s.pattern < s.pattern - 1)
    }

    /// RoPE tables a forward builds per position: the global one, and the windowed layers' own.
    pub fn rope_tables(&self) -> usize {
        if self.sliding_window.is_some() {
            2
        } else {
            1
        }
    }

    /// Bytes of KV cache and of scratch that `rg_model_ready` will allocate (None on overflow).
    /// An upper bound that mirrors `Stack::new`; checked once so later usize arithmetic cannot overflow.
    pub fn runtime_bytes(&self) -> Option<RuntimeBytes> {
        let u = |v: usize| v as u64;
        let kv_elem = if self.kv_packed_f16() { 2 } else { 4 };
        let kv = u(self.n_sequences)
            .checked_mul(u(self.n_layers))?
            .checked_mul(u(self.ctx_len))?
            .checked_mul(u(self.kv_dim))?
            .checked_mul(2 * kv_elem)?;
        // x, xb, xb2, hidden: dim; q, att, q_rounded: q_dim; k, v: kv_dim; hb, hb2: ffn; logits: vocab; rope
        // tables; and the prepared matmul input.
        let per_token_f32 = 4 * u(self.dim)
            + 3 * u(self.q_dim)
            + 2 * u(self.kv_dim)
            + 2 * u(self.ffn_dim)
            + u(self.n_vocab)
            + u(self.rope_tables() * self.rope_dim);
        let per_token_bytes = per_token_f32 * 4 + PreparedInput::bytes_per_token(u(self.max_input_cols()));
        let batch = u(self.max_batch).checked_mul(per_token_bytes)?;
        // Attention scores, plus one kv head's widened keys and values for an f16 cache kept narrow.
        let widened = if self.kv_packed_f16() { 2 * u(self.head_dim) } else { 0 };
        let scratch = batch.checked_add(u(self.ctx_len) * 4 * (1 + widened))?;
        Some(RuntimeBytes { kv, scratch })
    }
}

/// What `rg_model_ready` allocates besides the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeBytes {
    pub kv: u64,
    pub scratch: u64,
}

impl RuntimeBytes {
    pub fn total(&self) -> u64 {
        self.kv + self.scratch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> [u32; Config::WORDS] {
        let mut w = [0u32; Config::WORDS];
        w[..13].copy_from_slice(&[256, 64, 2, 4, 2, 96, 32, 16, 8, 10000f32.to_bits(), 1e-5f32.to_bits(), 1, 4]);
        w[14] = 1;
        w[17] = 1f32.to_bits();
        w[18] = 32;
        w
    }

    fn with(i: usize, v: u32) -> Result<Config, Status> {
        let mut w = words();
        w[i] = v;
        Config::from_words(&w)
    }

    #[test]
    fn accepts_a_consistent_config() {
        let cfg = Config::from_words(&words()).unwrap();
        assert_eq!((cfg.q_dim, cfg.kv_dim, cfg.kv_f16, cfg.kv_wide), (64, 32, true, false));
        assert_eq!((cfg.attn_scale_dim, cfg.rope_scaling_factor, cfg.sliding_window), (16, 1.0, None));
        let cfg = with(11, 2).unwrap();
        assert_eq!((cfg.kv_f16, cfg.kv_wide), (true, true));
        let mut swa = words();
        swa[19..22].copy_from_slice(&[8, 3, 10000f32.to_bits()]);
        let cfg = Config::from_words(&swa).unwrap();
        let windowed: Vec<bool> = (0..6).map(|l| cfg.is_windowed(l)).collect();
        assert_eq!(windowed, [true, true, false, true, true, false]);
    }

    #[test]
    fn rejects_inconsistent_or_absurd_configs() {
        assert_eq!(Config::from_words(&words()[..13]), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(0, 0), Err(ERR_INVALID_CONFIG)); // no vocab
        assert_eq!(with(4, 3), Err(ERR_INVALID_CONFIG)); // 4 heads over 3 kv heads
        assert_eq!(with(8, 7), Err(ERR_INVALID_CONFIG)); // odd rope_dim
        assert_eq!(with(8, 18), Err(ERR_INVALID_CONFIG)); // rope_dim > head_dim
        assert_eq!(with(9, f32::NAN.to_bits()), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(10, (-1.0f32).to_bits()), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(11, 3), Err(ERR_INVALID_CONFIG)); // kv_type
        assert_eq!(with(12, 0), Err(ERR_INVALID_CONFIG)); // max_batch
        assert_eq!(with(13, 128), Err(ERR_INVALID_CONFIG)); // unknown arch flag
        assert_eq!(with(14, 0), Err(ERR_INVALID_CONFIG)); // no KV cache
        assert_eq!(with(15, 3), Err(ERR_INVALID_CONFIG)); // unknown RoPE scaling
        assert_eq!(with(16, (-2.0f32).to_bits()), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(17, 0), Err(ERR_INVALID_CONFIG)); // attn factor 0
        assert_eq!(with(19, 8), Err(ERR_INVALID_CONFIG)); // a window without a pattern
        assert_eq!(with(23, f32::INFINITY.to_bits()), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(1, u32::MAX), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(6, 1 << 24), Err(ERR_TOO_LARGE)); // 16M-token KV cache
        assert_eq!(with(12, 1 << 24), Err(ERR_TOO_LARGE)); // 16M-token batch of scratch
        assert!(with(0, 1 << 20).is_ok()); // a 1M vocab is large but fine
    }

    #[test]
    fn sequences_multiply_the_kv_cache() {
        let one = Config::from_words(&words()).unwrap().runtime_bytes().unwrap();
        let four = with(14, 4).unwrap().runtime_bytes().unwrap();
        assert_eq!((four.kv, four.scratch), (4 * one.kv, one.scratch));
        assert_eq!(one.kv, 2 * 32 * 32 * 2 * 2); // layers · ctx · kv_dim · (k, v) · f16
    }

    #[test]
    fn recycle_head_takes_vocab_dim_and_sequences_from_the_base() {
        let base = with(14, 3).unwrap();
        let head = base.recycle_head(&words()[2..13]).unwrap();
        assert_eq!((head.n_vocab, head.dim, head.n_sequences), (256, 64, 3));
        assert_eq!((head.arch, head.rope_scaling, head.sliding_window), (ArchFlags::default(), RopeScaling::None, None));
        assert_eq!(base.recycle_head(&words()[1..13]), Err(ERR_INVALID_CONFIG));
        let mut bad = words();
        bad[8] = 18; // rope_dim > head_dim
        assert_eq!(base.recycle_head(&bad[2..13]), Err(ERR_INVALID_CONFIG));
    }
}
