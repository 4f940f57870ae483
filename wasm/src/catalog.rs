//! The tensor catalog: which tensors a model has (kinds, by ABI id), their shapes from the
//! config, which the config requires, and the types each accepts. The typed mirror of
//! `sdk/src/contract/architectures.ts`'s kinds, checked against it through `rg_kind_info`.

use crate::config::{ArchFlags, Config};
use crate::error::{Status, ERR_BAD_SHAPE, ERR_UNKNOWN_KIND, ERR_UNSUPPORTED_TYPE};
use crate::quant::GgmlType;
use crate::tensor::Tensor;

/// Tensor kinds of the ABI (docs/ARCHITECTURE.md), in kind-id order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    TokenEmbd,
    OutputNorm,
    Output,
    AttnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnOutput,
    FfnNorm,
    FfnGate,
    FfnUp,
    FfnDown,
    RopeFreqs,
    AttnQBias,
    AttnKBias,
    AttnVBias,
    AttnQNorm,
    AttnKNorm,
    AttnPostNorm,
    FfnPostNorm,
}

pub const KINDS: [Kind; 20] = [
    Kind::TokenEmbd,
    Kind::OutputNorm,
    Kind::Output,
    Kind::AttnNorm,
    Kind::AttnQ,
    Kind::AttnK,
    Kind::AttnV,
    Kind::AttnOutput,
    Kind::FfnNorm,
    Kind::FfnGate,
    Kind::FfnUp,
    Kind::FfnDown,
    Kind::RopeFreqs,
    Kind::AttnQBias,
    Kind::AttnKBias,
    Kind::AttnVBias,
    Kind::AttnQNorm,
    Kind::AttnKNorm,
    Kind::AttnPostNorm,
    Kind::FfnPostNorm,
];

/// The kinds that exist once per model; every other kind exists once per layer.
const GLOBAL: [Kind; 4] = [Kind::TokenEmbd, Kind::OutputNorm, Kind::Output, Kind::RopeFreqs];
const PER_LAYER: usize = KINDS.len() - GLOBAL.len();

/// Whether a config's model has a kind, and must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    Absent,
}

impl Kind {
    pub fn from_id(id: u32) -> Result<Kind, Status> {
        KINDS.get(id as usize).copied().ok_or(ERR_UNKNOWN_KIND)
    }

    pub fn is_global(self) -> bool {
        GLOBAL.contains(&self)
    }

    /// A vector (norm weights, biases, RoPE factors): read once, widened to f32.
    pub fn is_vector(self) -> bool {
        !matches!(
            self,
            Kind::TokenEmbd
                | Kind::Output
                | Kind::AttnQ
                | Kind::AttnK
                | Kind::AttnV
                | Kind::AttnOutput
                | Kind::FfnGate
                | Kind::FfnUp
                | Kind::FfnDown
        )
    }

    /// One of a plain llama stack's per-layer kinds (ids 3..=11): what a recycle head's layers have.
    pub fn is_llama_layer(self) -> bool {
        (Kind::AttnNorm as usize..=Kind::FfnDown as usize).contains(&(self as usize))
    }

    /// Whether a model with `cfg` has this kind. Output (else tied to token_embd) and Q/K/V biases
    /// are optional everywhere, as in llama.cpp; the rest as the architecture's flags say.
    pub fn presence(self, cfg: &Config) -> Presence {
        let with = |flag: u32| if cfg.arch.has(flag) { Presence::Required } else { Presence::Absent };
        match self {
            Kind::Output | Kind::AttnQBias | Kind::AttnKBias | Kind::AttnVBias => Presence::Optional,
            Kind::RopeFreqs if cfg.arch.has(ArchFlags::ROPE_FACTORS) => Presence::Optional,
            Kind::RopeFreqs => Presence::Absent,
            Kind::AttnQNorm | Kind::AttnKNorm => with(ArchFlags::QK_NORM),
            Kind::AttnPostNorm | Kind::FfnPostNorm => with(ArchFlags::POST_NORMS),
            _ => Presence::Required,
        }
    }

    /// Index into a model's tensor slots: the global kinds first, then each layer's.
    pub fn slot(self, layer: usize, cfg: &Config) -> Result<usize, Status> {
        if let Some(i) = GLOBAL.iter().position(|&k| k == self) {
            return Ok(i);
        }
        if layer >= cfg.n_layers {
            return Err(ERR_UNKNOWN_KIND);
        }
        let within = KINDS.iter().filter(|k| !k.is_global()).position(|&k| k == self).unwrap_or(0);
        Ok(GLOBAL.len() + layer * PER_LAYER + within)
    }

    /// Slots a model with `cfg` has.
    pub fn slot_count(cfg: &Config) -> usize {
        GLOBAL.len() + cfg.n_layers * PER_LAYER
    }

    /// The kind and layer of a slot (the inverse of `slot`).
    pub fn of_slot(slot: usize) -> (Kind, usize) {
        if slot < GLOBAL.len() {
            return (GLOBAL[slot], 0);
        }
        let (layer, within) = ((slot - GLOBAL.len()) / PER_LAYER, (slot - GLOBAL.len()) % PER_LAYER);
        let kind = KINDS.iter().copied().filter(|k| !k.is_global()).nth(within).unwrap_or(Kind::AttnNorm);
        (kind, layer)
    }

    /// rows × cols the config implies.
    pub fn shape(self, cfg: &Config) -> (usize, usize) {
        match self {
            Kind::TokenEmbd | Kind::Output => (cfg.n_vocab, cfg.dim),
            Kind::OutputNorm | Kind::AttnNorm | Kind::FfnNorm | Kind::AttnPostNorm | Kind::FfnPostNorm => (1, cfg.dim),
            Kind::AttnQ => (cfg.q_dim, cfg.dim),
            Kind::AttnK | Kind::AttnV => (cfg.kv_dim, cfg.dim),
            Kind::AttnOutput => (cfg.dim, cfg.q_dim),
            Kind::FfnGate | Kind::FfnUp => (cfg.ffn_dim, cfg.dim),
            Kind::FfnDown => (cfg.dim, cfg.ffn_dim),
            Kind::RopeFreqs => (1, cfg.rope_dim / 2),
            Kind::AttnQBias => (1, cfg.q_dim),
            Kind::AttnKBias | Kind::AttnVBias => (1, cfg.kv_dim),
            Kind::AttnQNorm | Kind::AttnKNorm => (1, cfg.head_dim),
        }
    }

    /// Checks presence, type and shape, then allocates the tensor. Vectors of any engine type are
    /// widened later, except RoPE factors, which llama.cpp reads as F32 only.
    pub fn alloc(self, cfg: &Config, ty: GgmlType, rows: usize, cols: usize) -> Result<Tensor, Status> {
        if self.presence(cfg) == Presence::Absent {
            return Err(ERR_UNKNOWN_KIND);
        }
        if self == Kind::RopeFreqs && ty != GgmlType::F32 {
            return Err(ERR_UNSUPPORTED_TYPE);
        }
        if (rows, cols) != self.shape(cfg) {
            return Err(ERR_BAD_SHAPE);
        }
        Tensor::alloc(ty, rows, cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cover_every_kind_and_layer_once() {
        let mut w = [0u32; Config::WORDS];
        w[..13].copy_from_slice(&[16, 8, 3, 2, 2, 8, 4, 4, 4, 10000f32.to_bits(), 0, 0, 1]);
        w[14] = 1;
        w[17] = 1f32.to_bits();
        w[18] = 4;
        let cfg = Config::from_words(&w).unwrap();
        let mut seen = vec![false; Kind::slot_count(&cfg)];
        for kind in KINDS {
            let layers = if kind.is_global() { 1 } else { cfg.n_layers };
            for layer in 0..layers {
                let slot = kind.slot(layer, &cfg).unwrap();
                assert!(!seen[slot], "{kind:?} {layer}");
                seen[slot] = true;
                assert_eq!(Kind::of_slot(slot), (kind, layer));
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(Kind::AttnQ.slot(3, &cfg), Err(ERR_UNKNOWN_KIND));
    }
}
