//! Model hyper-parameters as passed to `rg_model_new`, validated so that every
//! buffer size derived from them fits in 32-bit memory.

use crate::error::{Status, ERR_INVALID_CONFIG, ERR_TOO_LARGE};
use crate::quant::PreparedInput;

/// Each count is capped so products of two never overflow u64 before the size checks.
const MAX_COUNT: u32 = 1 << 24;
/// KV cache plus scratch must fit in one wasm32 address space with room for weights;
/// this also bounds each single buffer below isize::MAX on wasm32.
const MAX_RUNTIME_BYTES: u64 = i32::MAX as u64;

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
    /// n_heads · head_dim
    pub q_dim: usize,
    /// n_kv_heads · head_dim
    pub kv_dim: usize,
}

impl Config {
    pub const WORDS: usize = 13;

    pub fn from_words(w: &[u32]) -> Result<Config, Status> {
        if w.len() != Self::WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        let count =
            |i: usize| if (1..=MAX_COUNT).contains(&w[i]) { Ok(w[i] as usize) } else { Err(ERR_INVALID_CONFIG) };
        let (n_heads, n_kv_heads, head_dim) = (count(3)?, count(4)?, count(7)?);
        let rope_dim = w[8] as usize;
        let rope_freq_base = f32::from_bits(w[9]);
        let rms_eps = f32::from_bits(w[10]);
        let valid = n_heads % n_kv_heads == 0
            && rope_dim % 2 == 0
            && rope_dim <= head_dim
            && rope_freq_base.is_finite()
            && rope_freq_base > 0.0
            && rms_eps.is_finite()
            && rms_eps >= 0.0
            && w[11] <= 2;
        if !valid {
            return Err(ERR_INVALID_CONFIG);
        }
        let cfg = Config {
            n_vocab: count(0)?,
            dim: count(1)?,
            n_layers: count(2)?,
            n_heads,
            n_kv_heads,
            ffn_dim: count(5)?,
            ctx_len: count(6)?,
            head_dim,
            rope_dim,
            rope_freq_base,
            rms_eps,
            kv_f16: w[11] != 0,
            kv_wide: w[11] == 2,
            max_batch: count(12)?,
            q_dim: n_heads * head_dim,
            kv_dim: n_kv_heads * head_dim,
        };
        if cfg.runtime_bytes().map_or(true, |b| b > MAX_RUNTIME_BYTES) {
            return Err(ERR_TOO_LARGE);
        }
        Ok(cfg)
    }

    /// Words of `rg_recycle_new`: this config's words without n_vocab and dim.
    pub const HEAD_WORDS: usize = Self::WORDS - 2;

    /// The recycle head's config: `words` as for `rg_model_new` minus the first two,
    /// which the head takes from this (base) config: its logits span the base's vocabulary
    /// and its residual stream has the base's dim. Validated like a base config.
    pub fn recycle_head(&self, words: &[u32]) -> Result<Config, Status> {
        if words.len() != Self::HEAD_WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        let mut full = [0u32; Self::WORDS];
        full[0] = self.n_vocab as u32; // ≤ MAX_COUNT, so this cannot truncate
        full[1] = self.dim as u32;
        full[2..].copy_from_slice(words);
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

    /// Bytes of KV cache plus scratch that `rg_model_ready` will allocate (None on overflow).
    /// An upper bound that mirrors `Runtime::new`; checked once so later usize arithmetic cannot overflow.
    fn runtime_bytes(&self) -> Option<u64> {
        let u = |v: usize| v as u64;
        let kv_elem = if self.kv_packed_f16() { 2 } else { 4 };
        let kv =
            u(self.n_layers).checked_mul(u(self.ctx_len))?.checked_mul(u(self.kv_dim))?.checked_mul(2 * kv_elem)?;
        // x, xb, xb2, hidden: dim; q, att, q_rounded: q_dim; k, v: kv_dim; hb, hb2: ffn; logits: vocab; rope;
        // and the prepared matmul input.
        let per_token_f32 = 4 * u(self.dim)
            + 3 * u(self.q_dim)
            + 2 * u(self.kv_dim)
            + 2 * u(self.ffn_dim)
            + u(self.n_vocab)
            + u(self.rope_dim);
        let per_token_bytes = per_token_f32 * 4 + PreparedInput::bytes_per_token(u(self.max_input_cols()));
        let batch = u(self.max_batch).checked_mul(per_token_bytes)?;
        // Attention scores, plus one kv head's widened keys and values for an f16 cache kept narrow.
        let widened = if self.kv_packed_f16() { 2 * u(self.head_dim) } else { 0 };
        let fixed = u(self.ctx_len) * 4 * (1 + widened);
        kv.checked_add(batch)?.checked_add(fixed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> [u32; 13] {
        [256, 64, 2, 4, 2, 96, 32, 16, 8, 10000f32.to_bits(), 1e-5f32.to_bits(), 1, 4]
    }

    #[test]
    fn accepts_a_consistent_config() {
        let cfg = Config::from_words(&words()).unwrap();
        assert_eq!((cfg.q_dim, cfg.kv_dim, cfg.kv_f16, cfg.kv_wide), (64, 32, true, false));
        let mut wide = words();
        wide[11] = 2;
        let cfg = Config::from_words(&wide).unwrap();
        assert_eq!((cfg.kv_f16, cfg.kv_wide), (true, true));
    }

    #[test]
    fn rejects_inconsistent_or_absurd_configs() {
        let with = |i: usize, v: u32| {
            let mut w = words();
            w[i] = v;
            Config::from_words(&w)
        };
        assert_eq!(Config::from_words(&words()[..12]), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(0, 0), Err(ERR_INVALID_CONFIG)); // no vocab
        assert_eq!(with(4, 3), Err(ERR_INVALID_CONFIG)); // 4 heads over 3 kv heads
        assert_eq!(with(8, 7), Err(ERR_INVALID_CONFIG)); // odd rope_dim
        assert_eq!(with(8, 18), Err(ERR_INVALID_CONFIG)); // rope_dim > head_dim
        assert_eq!(with(9, f32::NAN.to_bits()), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(10, (-1.0f32).to_bits()), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(11, 3), Err(ERR_INVALID_CONFIG)); // kv_type
        assert_eq!(with(12, 0), Err(ERR_INVALID_CONFIG)); // max_batch
        assert_eq!(with(1, u32::MAX), Err(ERR_INVALID_CONFIG));
        assert_eq!(with(6, 1 << 24), Err(ERR_TOO_LARGE)); // 16M-token KV cache
        assert_eq!(with(12, 1 << 24), Err(ERR_TOO_LARGE)); // 16M-token batch of scratch
        assert!(with(0, 1 << 20).is_ok()); // a 1M vocab is large but fine
    }

    #[test]
    fn recycle_head_takes_vocab_and_dim_from_the_base() {
        let base = Config::from_words(&words()).unwrap();
        let head = base.recycle_head(&words()[2..]).unwrap();
        assert_eq!((head.n_vocab, head.dim), (256, 64));
        assert_eq!(base.recycle_head(&words()[1..]), Err(ERR_INVALID_CONFIG));
        let mut bad = words();
        bad[8] = 18; // rope_dim > head_dim
        assert_eq!(base.recycle_head(&bad[2..]), Err(ERR_INVALID_CONFIG));
    }
}
