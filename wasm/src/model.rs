//! A model of any supported architecture: its global tensors around a decoder `Stack`, and
//! the optional recycle head that shares its embedding and output matrix.

use crate::catalog::Kind;
use crate::config::{ArchFlags, Config};
use crate::decoder::{check_batch, Slots, Stack};
use crate::error::*;
use crate::quant::GgmlType;
use crate::recycle::RecycleHead;
use crate::tensor::Tensor;

pub struct Model {
    cfg: Config,
    /// The KV cache (of the base and of its head) forwards use.
    sequence: usize,
    slots: Slots,
    runtime: Option<Runtime>,
    recycle: Option<RecycleHead>,
}

/// The base's tensors the recycle head reads too.
pub struct SharedTensors {
    pub token_embd: Tensor,
    /// None: tied to token_embd.
    output: Option<Tensor>,
}

impl SharedTensors {
    /// The output matrix: output.weight, or token_embd when tied.
    pub fn output(&self) -> &Tensor {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

struct Runtime {
    shared: SharedTensors,
    output_norm: Vec<f32>,
    stack: Stack,
}

impl Model {
    pub fn new(cfg: Config) -> Result<Model, Status> {
        Ok(Model { slots: Slots::new(&cfg)?, cfg, sequence: 0, runtime: None, recycle: None })
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
        let cfg = &self.cfg;
        self.slots.fill(slot, || kind.alloc(cfg, ty, rows as usize, cols as usize))
    }

    /// Checks that every required tensor is there, then allocates KV cache and scratch.
    pub fn ready(&mut self) -> Result<(), Status> {
        if self.runtime.is_some() {
            return Err(ERR_WRONG_STATE);
        }
        self.slots.check_complete(&self.cfg)?;
        self.slots.pack_all()?;
        let (cfg, slots) = (&self.cfg, &mut self.slots);
        let mut stack = Stack::new(cfg, slots, cfg.max_input_cols())?;
        stack.select_sequence(self.sequence)?;
        let shared = SharedTensors {
            token_embd: slots.take(Kind::TokenEmbd, 0, cfg)?,
            output: slots.take(Kind::Output, 0, cfg).ok(),
        };
        let output_norm = slots.take_vector(Kind::OutputNorm, 0, cfg)?;
        self.runtime = Some(Runtime { shared, output_norm, stack });
        Ok(())
    }

    /// Runs `tokens` at positions `pos..pos + n`; logits for rows `logits_from..n`.
    pub fn forward(&mut self, tokens: &[u32], pos: usize, logits_from: usize) -> Result<(), Status> {
        let cfg = &self.cfg;
        let rt = self.runtime.as_mut().ok_or(ERR_WRONG_STATE)?;
        check_batch(cfg, tokens, pos, logits_from)?;
        let n = tokens.len();
        // Gemma scales its embeddings by √dim (in f32, as llama.cpp's ggml_scale).
        let scale = cfg.arch.has(ArchFlags::SCALE_EMBEDDING).then(|| (cfg.dim as f32).sqrt());
        for (t, &token) in tokens.iter().enumerate() {
            let row = &mut rt.stack.scratch.x[t * cfg.dim..][..cfg.dim];
            rt.shared.token_embd.dequantize_row(token as usize, row);
            if let Some(scale) = scale {
                for v in row.iter_mut() {
                    *v *= scale;
                }
            }
        }
        rt.stack.run(cfg, n, pos);
        rt.stack.finish(cfg, &rt.output_norm, rt.shared.output(), n, logits_from);
        Ok(())
    }

    /// f32 `[(n - logits_from) × n_vocab]` of the last forward.
    pub fn logits(&self) -> Option<&[f32]> {
        self.runtime.as_ref()?.stack.logits(&self.cfg)
    }

    /// f32 `[n × dim]` of the last forward (after the final RMSNorm).
    pub fn hidden(&self) -> Option<&[f32]> {
        self.runtime.as_ref()?.stack.hidden(&self.cfg)
    }

    /// Makes KV cache `sequence` (< n_sequences) the one the base and its head read and write
    /// from now on (also for a head readied later). Nothing is copied.
    pub fn select_sequence(&mut self, sequence: usize) -> Result<(), Status> {
        if sequence >= self.cfg.n_sequences {
            return Err(ERR_BAD_ARGUMENT);
        }
        self.sequence = sequence;
        if let Some(rt) = self.runtime.as_mut() {
            rt.stack.select_sequence(sequence)?;
        }
        match self.recycle.as_mut() {
            Some(head) => head.select_sequence(sequence),
            None => Ok(()),
        }
    }

    /// Attaches a recycle head configured by `words` (see `Config::recycle_head`); once only.
    pub fn attach_recycle(&mut self, words: &[u32]) -> Result<(), Status> {
        if self.recycle.is_some() {
            return Err(ERR_WRONG_STATE);
        }
        self.recycle = Some(RecycleHead::new(self.cfg.recycle_head(words)?)?);
        Ok(())
    }

    /// The attached head; ERR_WRONG_STATE when there is none.
    pub fn recycle(&mut self) -> Result<&mut RecycleHead, Status> {
        self.recycle.as_mut().ok_or(ERR_WRONG_STATE)
    }

    /// Readies the head once the base is ready and the head's tensors are all there.
    pub fn recycle_ready(&mut self) -> Result<(), Status> {
        let head = self.recycle.as_mut().ok_or(ERR_WRONG_STATE)?;
        if self.runtime.is_none() {
            return Err(ERR_WRONG_STATE);
        }
        head.ready()?;
        head.select_sequence(self.sequence)
    }

    /// Runs the head on n (hidden row, token) pairs at positions pos..pos + n.
    ///
    /// # Safety
    /// `hidden` must point at `tokens.len() · dim` readable f32; it may alias the
    /// engine's own hidden buffers (the rows are copied before anything is written).
    pub unsafe fn recycle_forward(
        &mut self,
        hidden: *const f32,
        tokens: &[u32],
        pos: usize,
        logits_from: usize,
    ) -> Result<(), Status> {
        let head = self.recycle.as_mut().ok_or(ERR_WRONG_STATE)?;
        let base = self.runtime.as_ref().ok_or(ERR_WRONG_STATE)?;
        head.forward(&base.shared, hidden, tokens, pos, logits_from)
    }
}
