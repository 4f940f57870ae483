//! The tensor catalog: which tensors a model has (kinds, by ABI id), their shapes from
//! the config, and the types each accepts.

use crate::config::Config;
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
}

const KINDS: [Kind; 12] = [
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
];

/// Kinds 0..3 are global, the rest repeat per layer.
pub const GLOBAL_KINDS: usize = 3;
pub const LAYER_KINDS: usize = KINDS.len() - GLOBAL_KINDS;

impl Kind {
    pub fn from_id(id: u32) -> Result<Kind, Status> {
        KINDS.get(id as usize).copied().ok_or(ERR_UNKNOWN_KIND)
    }

    pub fn is_norm(self) -> bool {
        matches!(self, Kind::OutputNorm | Kind::AttnNorm | Kind::FfnNorm)
    }

    /// Index into the model's tensor slots; the layer is ignored for global kinds.
    pub fn slot(self, layer: usize, cfg: &Config) -> Result<usize, Status> {
        let id = self as usize;
        if id < GLOBAL_KINDS {
            Ok(id)
        } else if layer < cfg.n_layers {
            Ok(GLOBAL_KINDS + layer * LAYER_KINDS + (id - GLOBAL_KINDS))
        } else {
            Err(ERR_UNKNOWN_KIND)
        }
    }

    /// rows × cols the config implies.
    pub fn shape(self, cfg: &Config) -> (usize, usize) {
        match self {
            Kind::TokenEmbd | Kind::Output => (cfg.n_vocab, cfg.dim),
            Kind::OutputNorm | Kind::AttnNorm | Kind::FfnNorm => (1, cfg.dim),
            Kind::AttnQ => (cfg.q_dim, cfg.dim),
            Kind::AttnK | Kind::AttnV => (cfg.kv_dim, cfg.dim),
            Kind::AttnOutput => (cfg.dim, cfg.q_dim),
            Kind::FfnGate | Kind::FfnUp => (cfg.ffn_dim, cfg.dim),
            Kind::FfnDown => (cfg.dim, cfg.ffn_dim),
        }
    }

    /// Checks type and shape, then allocates the tensor.
    pub fn alloc(self, cfg: &Config, ty: GgmlType, rows: usize, cols: usize) -> Result<Tensor, Status> {
        if self.is_norm() && ty != GgmlType::F32 {
            return Err(ERR_UNSUPPORTED_TYPE);
        }
        if (rows, cols) != self.shape(cfg) {
            return Err(ERR_BAD_SHAPE);
        }
        Tensor::alloc(ty, rows, cols)
    }
}
