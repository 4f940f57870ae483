//! The RecycleGPT recycle head: from the base's last hidden state h_t and the
//! embedding of token x_{t+1} it predicts x_{t+2}:
//! `z = proj · [h_t ; embed(x_{t+1})]`, then the head's own llama layers (own KV
//! caches), its own final RMSNorm, then the base's output matrix. It is a llama stack
//! whatever the base's architecture: `embed` is the base's raw embedding row (unscaled).

use crate::catalog::Kind;
use crate::config::Config;
use crate::decoder::{check_batch, project, Slots, Stack};
use crate::error::*;
use crate::model::SharedTensors;
use crate::quant::GgmlType;
use crate::tensor::Tensor;

pub struct RecycleHead {
    cfg: Config,
    slots: Slots,
    runtime: Option<Runtime>,
}

struct Runtime {
    /// `recycle.proj.weight`: dim × 2·dim.
    proj: Tensor,
    output_norm: Vec<f32>,
    stack: Stack,
    /// Rows `[h ; embed(token)]` of the batch, `[max_batch][2·dim]`.
    input: Vec<f32>,
}

impl RecycleHead {
    /// A head with `cfg` (from `Config::recycle_head`); tensors come through `reserve`.
    pub fn new(cfg: Config) -> Result<RecycleHead, Status> {
        Ok(RecycleHead { slots: Slots::new(&cfg)?, cfg, runtime: None })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Allocates one head tensor. Kinds are the base's ids (docs/ARCHITECTURE.md) of a llama
    /// stack, except that kind 0 is `recycle.proj.weight` (dim × 2·dim) and kind 2 (output) does
    /// not exist: the head always uses the base's output matrix.
    pub fn reserve(&mut self, kind: u32, layer: u32, ty: u32, rows: u32, cols: u32) -> Result<*mut u8, Status> {
        if self.runtime.is_some() {
            return Err(ERR_WRONG_STATE);
        }
        let kind = Kind::from_id(kind)?;
        if !(kind == Kind::TokenEmbd || kind == Kind::OutputNorm || kind.is_llama_layer()) {
            return Err(ERR_UNKNOWN_KIND);
        }
        let slot = kind.slot(layer as usize, &self.cfg)?;
        let ty = GgmlType::from_id(ty).ok_or(ERR_UNSUPPORTED_TYPE)?;
        let cfg = &self.cfg;
        let (rows, cols) = (rows as usize, cols as usize);
        self.slots.fill(slot, || {
            if kind != Kind::TokenEmbd {
                kind.alloc(cfg, ty, rows, cols)
            } else if (rows, cols) == (cfg.dim, 2 * cfg.dim) {
                Tensor::alloc(ty, rows, cols)
            } else {
                Err(ERR_BAD_SHAPE)
            }
        })
    }

    /// Checks that every head tensor is there, then allocates the head's KV cache and scratch.
    /// The caller checks that the base is ready.
    pub fn ready(&mut self) -> Result<(), Status> {
        if self.runtime.is_some() {
            return Err(ERR_WRONG_STATE);
        }
        self.slots.check_complete(&self.cfg)?;
        self.slots.pack_all()?;
        let (cfg, slots) = (&self.cfg, &mut self.slots);
        // The projection's input is the widest: 2·dim per row.
        let input_cols = cfg.max_input_cols().max(2 * cfg.dim);
        let input = try_vec(cfg.max_batch * 2 * cfg.dim)?; // < the bounded scratch sizes
        let stack = Stack::new(cfg, slots, input_cols)?;
        let proj = slots.take(Kind::TokenEmbd, 0, cfg)?;
        let output_norm = slots.take_vector(Kind::OutputNorm, 0, cfg)?;
        self.runtime = Some(Runtime { proj, output_norm, stack, input });
        Ok(())
    }

    /// Makes KV cache `sequence` the one the head reads and writes (the model selects it again
    /// once the head is ready).
    pub fn select_sequence(&mut self, sequence: usize) -> Result<(), Status> {
        match self.runtime.as_mut() {
            Some(rt) => rt.stack.select_sequence(sequence),
            None => Ok(()),
        }
    }

    /// Row i: hidden row `hidden[i·dim..]` and `tokens[i]` at position pos + i.
    ///
    /// # Safety
    /// `hidden` must point at `tokens.len() · dim` readable f32. It may point into the
    /// engine's own buffers (the base's or this head's hidden rows): all rows are copied
    /// into the head's input before anything is written.
    pub unsafe fn forward(
        &mut self,
        base: &SharedTensors,
        hidden: *const f32,
        tokens: &[u32],
        pos: usize,
        logits_from: usize,
    ) -> Result<(), Status> {
        let cfg = &self.cfg;
        let rt = self.runtime.as_mut().ok_or(ERR_WRONG_STATE)?;
        check_batch(cfg, tokens, pos, logits_from)?;
        let (n, dim) = (tokens.len(), cfg.dim);
        for (i, (row, &token)) in rt.input.chunks_exact_mut(2 * dim).zip(tokens).enumerate() {
            let (h, embedding) = row.split_at_mut(dim);
            // `copy`, not a slice: the source may be a buffer this engine writes below.
            std::ptr::copy(hidden.add(i * dim), h.as_mut_ptr(), dim);
            base.token_embd.dequantize_row(token as usize, embedding);
        }
        let s = &mut rt.stack.scratch;
        project(&mut s.input, &rt.proj, &rt.input[..n * 2 * dim], n, &mut s.x);
        rt.stack.run(cfg, n, pos);
        rt.stack.finish(cfg, &rt.output_norm, base.output(), n, logits_from);
        Ok(())
    }

    /// f32 `[(n - logits_from) × n_vocab]` of the last forward.
    pub fn logits(&self) -> Option<&[f32]> {
        self.runtime.as_ref()?.stack.logits(&self.cfg)
    }

    /// f32 `[n × dim]` of the last forward (after the head's final RMSNorm).
    pub fn hidden(&self) -> Option<&[f32]> {
        self.runtime.as_ref()?.stack.hidden(&self.cfg)
    }
}
