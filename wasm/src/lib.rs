//! C ABI of the engine (docs/ARCHITECTURE.md, "WASM C ABI"). Thin: checks raw
//! pointers and handles, forwards to `Model`, records the status for `rg_last_error`.
// The relaxed-SIMD module declares its instruction as an import taking v128 (kernels/relaxed.rs).
#![cfg_attr(feature = "relaxed-simd", feature(simd_ffi))]

pub mod blocks;
pub mod catalog;
pub mod config;
pub mod decoder;
pub mod error;
pub mod f16;
pub mod kernels;
pub mod model;
pub mod packed;
pub mod quant;
pub mod recycle;
pub mod rope;
pub mod tensor;

use std::alloc::{alloc, dealloc, Layout};
use std::cell::Cell;
use std::sync::Mutex;

use catalog::{Kind, Presence};
use config::Config;
use error::*;
use model::Model;
use quant::GgmlType;

/// Live models; a handle is index + 1 so that 0 can mean failure.
static MODELS: Mutex<Vec<Option<Box<Model>>>> = Mutex::new(Vec::new());
thread_local! {
    /// Status of this thread's last call (wasm has one thread; natively, tests run in parallel).
    static LAST_ERROR: Cell<Status> = const { Cell::new(OK) };
}

/// Alignment of `rg_alloc` buffers: enough for f32/u32 arrays and v128 loads.
const ALLOC_ALIGN: usize = 16;

/// Records the outcome of a call (OK or the error) and returns the value or `on_error`.
fn report<T>(result: Result<T, Status>, on_error: T) -> T {
    match result {
        Ok(value) => {
            LAST_ERROR.with(|e| e.set(OK));
            value
        }
        Err(code) => {
            LAST_ERROR.with(|e| e.set(code));
            on_error
        }
    }
}

/// Records and returns the status of a call that has no other result.
fn status(result: Result<(), Status>) -> Status {
    let code = result.err().unwrap_or(OK);
    LAST_ERROR.with(|e| e.set(code));
    code
}

fn with_model<T>(handle: u32, f: impl FnOnce(&mut Model) -> Result<T, Status>) -> Result<T, Status> {
    let mut models = MODELS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let slot = (handle as usize).checked_sub(1).and_then(|i| models.get_mut(i));
    match slot {
        Some(Some(model)) => f(model),
        _ => Err(ERR_BAD_HANDLE),
    }
}

/// Refuses a JS-provided pointer that is null or misaligned.
fn check_ptr<T>(ptr: *const T) -> Result<(), Status> {
    if ptr.is_null() || ptr as usize % std::mem::align_of::<T>() != 0 {
        return Err(ERR_BAD_ARGUMENT);
    }
    Ok(())
}

/// A slice over JS-provided memory, refused when null or misaligned.
unsafe fn js_slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], Status> {
    check_ptr(ptr)?;
    Ok(std::slice::from_raw_parts(ptr, len))
}

fn alloc_layout(bytes: u32) -> Option<Layout> {
    Layout::from_size_align((bytes as usize).max(1), ALLOC_ALIGN).ok()
}

#[no_mangle]
pub extern "C" fn rg_alloc(bytes: u32) -> *mut u8 {
    let result = alloc_layout(bytes).ok_or(ERR_TOO_LARGE).and_then(|layout| {
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc(layout) };
        if ptr.is_null() {
            Err(ERR_OUT_OF_MEMORY)
        } else {
            Ok(ptr)
        }
    });
    report(result, std::ptr::null_mut())
}

/// # Safety
/// `ptr` must come from `rg_alloc(bytes)` with the same `bytes`, freed once.
#[no_mangle]
pub unsafe extern "C" fn rg_free(ptr: *mut u8, bytes: u32) {
    if let (false, Some(layout)) = (ptr.is_null(), alloc_layout(bytes)) {
        dealloc(ptr, layout);
    }
}

/// # Safety
/// `cfg` must point at `words` readable u32 values (or be null, which is refused).
#[no_mangle]
pub unsafe extern "C" fn rg_model_new(cfg: *const u32, words: u32) -> u32 {
    let result = (|| {
        if words as usize != Config::WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        let config = Config::from_words(js_slice(cfg, Config::WORDS)?)?;
        let model = Box::new(Model::new(config)?);
        let mut models = MODELS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = match models.iter().position(|m| m.is_none()) {
            Some(free) => free,
            None => {
                models.try_reserve(1).map_err(|_| ERR_OUT_OF_MEMORY)?;
                models.push(None);
                models.len() - 1
            }
        };
        models[index] = Some(model);
        Ok(index as u32 + 1)
    })();
    report(result, 0)
}

#[no_mangle]
pub extern "C" fn rg_tensor_reserve(
    model: u32,
    kind: u32,
    layer: u32,
    ggml_type: u32,
    rows: u32,
    cols: u32,
) -> *mut u8 {
    report(with_model(model, |m| m.reserve(kind, layer, ggml_type, rows, cols)), std::ptr::null_mut())
}

#[no_mangle]
pub extern "C" fn rg_model_ready(model: u32) -> i32 {
    status(with_model(model, |m| m.ready()))
}

/// # Safety
/// `tokens` must point at `n` readable u32 values when n is within the model's max_batch.
#[no_mangle]
pub unsafe extern "C" fn rg_forward(model: u32, tokens: *const u32, n: u32, pos: u32, logits_from: u32) -> i32 {
    let result = with_model(model, |m| {
        // Bound n before forming the slice; forward re-checks it with pos and logits_from.
        if n == 0 || n as usize > m.config().max_batch {
            return Err(ERR_BAD_ARGUMENT);
        }
        m.forward(js_slice(tokens, n as usize)?, pos as usize, logits_from as usize)
    });
    status(result)
}

#[no_mangle]
pub extern "C" fn rg_logits(model: u32) -> *const f32 {
    let result = with_model(model, |m| m.logits().map(|l| l.as_ptr()).ok_or(ERR_WRONG_STATE));
    report(result, std::ptr::null())
}

#[no_mangle]
pub extern "C" fn rg_hidden(model: u32) -> *const f32 {
    let result = with_model(model, |m| m.hidden().map(|h| h.as_ptr()).ok_or(ERR_WRONG_STATE));
    report(result, std::ptr::null())
}

/// # Safety
/// `cfg` must point at `words` readable u32 values (or be null, which is refused).
#[no_mangle]
pub unsafe extern "C" fn rg_recycle_new(model: u32, cfg: *const u32, words: u32) -> i32 {
    let result = with_model(model, |m| {
        if words as usize != Config::HEAD_WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        m.attach_recycle(js_slice(cfg, Config::HEAD_WORDS)?)
    });
    status(result)
}

#[no_mangle]
pub extern "C" fn rg_recycle_reserve(
    model: u32,
    kind: u32,
    layer: u32,
    ggml_type: u32,
    rows: u32,
    cols: u32,
) -> *mut u8 {
    let result = with_model(model, |m| m.recycle()?.reserve(kind, layer, ggml_type, rows, cols));
    report(result, std::ptr::null_mut())
}

#[no_mangle]
pub extern "C" fn rg_recycle_ready(model: u32) -> i32 {
    status(with_model(model, |m| m.recycle_ready()))
}

/// # Safety
/// When n is within the head's max_batch, `hidden` must point at n·dim readable f32
/// (it may point into `rg_hidden`'s or `rg_recycle_hidden`'s buffer) and `tokens` at n u32.
#[no_mangle]
pub unsafe extern "C" fn rg_recycle_forward(
    model: u32,
    hidden: *const f32,
    tokens: *const u32,
    n: u32,
    pos: u32,
    logits_from: u32,
) -> i32 {
    let result = with_model(model, |m| {
        // Bound n before touching either pointer; forward re-checks it with pos and logits_from.
        if n == 0 || n as usize > m.recycle()?.config().max_batch {
            return Err(ERR_BAD_ARGUMENT);
        }
        // Only checked here, not turned into a slice: it may alias buffers the forward writes.
        check_ptr(hidden)?;
        m.recycle_forward(hidden, js_slice(tokens, n as usize)?, pos as usize, logits_from as usize)
    });
    status(result)
}

/// Limits the recycle head's logits to the k token ids at `ids` (rows of the base's output matrix,
/// in that order: `rg_recycle_logits` rows are then k wide), or lifts the limit when k = 0. Needs
/// the head ready.
///
/// # Safety
/// `ids` must point at k readable u32 when k ≤ the base's n_vocab (null is refused when k > 0).
#[no_mangle]
pub unsafe extern "C" fn rg_recycle_shortlist(model: u32, ids: *const u32, k: u32) -> i32 {
    let result = with_model(model, |m| {
        // Bound k before forming the slice; set_shortlist re-checks it.
        if k as usize > m.config().n_vocab {
            return Err(ERR_BAD_ARGUMENT);
        }
        let ids = if k == 0 { &[][..] } else { js_slice(ids, k as usize)? };
        m.recycle_shortlist(ids)
    });
    status(result)
}

#[no_mangle]
pub extern "C" fn rg_recycle_logits(model: u32) -> *const f32 {
    let result = with_model(model, |m| m.recycle()?.logits().map(|l| l.as_ptr()).ok_or(ERR_WRONG_STATE));
    report(result, std::ptr::null())
}

#[no_mangle]
pub extern "C" fn rg_recycle_hidden(model: u32) -> *const f32 {
    let result = with_model(model, |m| m.recycle()?.hidden().map(|h| h.as_ptr()).ok_or(ERR_WRONG_STATE));
    report(result, std::ptr::null())
}

/// Frees the model together with its recycle head.
#[no_mangle]
pub extern "C" fn rg_model_free(model: u32) {
    let mut models = MODELS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(slot) = (model as usize).checked_sub(1).and_then(|i| models.get_mut(i)) {
        *slot = None;
    }
}

/// Makes KV cache `sequence` (< the config's n_sequences) the one forwards of the model and its
/// recycle head read and write, now and after either gets ready. Nothing is copied.
#[no_mangle]
pub extern "C" fn rg_select_sequence(model: u32, sequence: u32) -> i32 {
    status(with_model(model, |m| m.select_sequence(sequence as usize)))
}

/// Copies positions 0..positions of KV cache `from` into KV cache `to` (both < n_sequences,
/// positions ≤ ctx_len), the model's and its recycle head's: a prefix one sequence holds, taken into
/// another without running it again. The selected sequence does not change.
#[no_mangle]
pub extern "C" fn rg_copy_sequence(model: u32, from: u32, to: u32, positions: u32) -> i32 {
    status(with_model(model, |m| m.copy_sequence(from as usize, to as usize, positions as usize)))
}

/// Writes the bytes a model with this config allocates besides its weights, as two u64 (four u32,
/// low word first): KV caches, then scratch. Reported even when too large for `rg_model_new`.
///
/// # Safety
/// `cfg` must point at `words` readable u32 and `out` at 4 writable u32 (null is refused).
#[no_mangle]
pub unsafe extern "C" fn rg_runtime_bytes(cfg: *const u32, words: u32, out: *mut u32) -> i32 {
    let result = (|| {
        if words as usize != Config::WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        let bytes = Config::parse(js_slice(cfg, Config::WORDS)?)?.runtime_bytes().ok_or(ERR_TOO_LARGE)?;
        write_out(out, &[bytes.kv as u32, (bytes.kv >> 32) as u32, bytes.scratch as u32, (bytes.scratch >> 32) as u32])
    })();
    status(result)
}

/// Which kernels this module runs: 0 scalar, 1 SIMD128, 2 relaxed SIMD (SIMD128 plus relaxed-SIMD
/// quantized kernels). The SDK reports it in a model's stats.
#[no_mangle]
pub extern "C" fn rg_kernel_set() -> u32 {
    if kernels::HAS_RELAXED {
        2
    } else {
        kernels::HAS_SIMD as u32
    }
}

/// 1 when the host runs this module's relaxed-SIMD kernels exactly (kernels/relaxed.rs), 0 when
/// it does not (then use the SIMD128 module) or this module has none.
#[no_mangle]
pub extern "C" fn rg_relaxed_ok() -> u32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
    return kernels::relaxed::kernels_are_exact() as u32;
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd")))]
    0
}

/// Contract hook: the block layout of a ggml type the engine runs, `out` = [values per block, bytes
/// per block]; ERR_UNSUPPORTED_TYPE for any other id.
///
/// # Safety
/// `out` must point at 2 writable u32 (null is refused).
#[no_mangle]
pub unsafe extern "C" fn rg_type_info(ggml_type: u32, out: *mut u32) -> i32 {
    let result = (|| {
        let ty = GgmlType::from_id(ggml_type).ok_or(ERR_UNSUPPORTED_TYPE)?;
        let (size, bytes) = (ty.block_size(), ty.block_bytes());
        write_out(out, &[size as u32, bytes as u32])
    })();
    status(result)
}

/// Contract hook: what tensor `kind` is in a model with config `cfg`: `out` = [rows, cols, flags,
/// presence] with flags bit 0 = once per model (not per layer), bit 1 = a vector widened to f32;
/// presence 0 = absent (refused), 1 = optional, 2 = required.
///
/// # Safety
/// `cfg` must point at `words` readable u32 and `out` at 4 writable u32 (null is refused).
#[no_mangle]
pub unsafe extern "C" fn rg_kind_info(kind: u32, cfg: *const u32, words: u32, out: *mut u32) -> i32 {
    let result = (|| {
        if words as usize != Config::WORDS {
            return Err(ERR_INVALID_CONFIG);
        }
        let config = Config::parse(js_slice(cfg, Config::WORDS)?)?;
        let kind = Kind::from_id(kind)?;
        let (rows, cols) = kind.shape(&config);
        let flags = kind.is_global() as u32 | (kind.is_vector() as u32) << 1;
        let presence = match kind.presence(&config) {
            Presence::Absent => 0,
            Presence::Optional => 1,
            Presence::Required => 2,
        };
        write_out(out, &[rows as u32, cols as u32, flags, presence])
    })();
    status(result)
}

/// Copies `values` to JS-provided memory at `out`, refused when null or misaligned.
unsafe fn write_out(out: *mut u32, values: &[u32]) -> Result<(), Status> {
    check_ptr(out as *const u32)?;
    std::ptr::copy_nonoverlapping(values.as_ptr(), out, values.len());
    Ok(())
}

#[no_mangle]
pub extern "C" fn rg_last_error() -> i32 {
    LAST_ERROR.with(|e| e.get())
}

/// Test hook: one weight row (raw GGUF bytes) · one f32 activation of n values,
/// through the scalar (`use_simd` = 0) or SIMD128 kernels. NaN on error, and for Q8_0 / Q4_0
/// also when the kernel paths of `kernels::dot_row` (activation quantizers, packed-group and
/// raw-row kernels, 1..=MAX_TOKENS tokens) disagree in a single bit.
///
/// # Safety
/// `w` must point at one row's bytes of `ggml_type` and `x` at n readable f32.
#[no_mangle]
pub unsafe extern "C" fn rg_kernel_dot(ggml_type: u32, use_simd: u32, w: *const u8, x: *const f32, n: u32) -> f32 {
    let result = (|| {
        let ty = GgmlType::from_id(ggml_type).ok_or(ERR_UNSUPPORTED_TYPE)?;
        let row_bytes = ty.row_bytes(n as usize).ok_or(ERR_BAD_ARGUMENT)?;
        kernels::dot_row(ty, use_simd != 0, js_slice(w, row_bytes)?, js_slice(x, n as usize)?)
    })();
    report(result, f32::NAN)
}

/// Test hook: one of the element-wise kernels (`kernels::map`: 0 round to f16, 1 exp(x - arg),
/// 2 f16 narrowing and widening, 3 silu(x) · arg) on n f32 in place, scalar (`use_simd` = 0) or
/// SIMD128.
///
/// # Safety
/// `values` must point at n writable f32.
#[no_mangle]
pub unsafe extern "C" fn rg_kernel_map(op: u32, use_simd: u32, values: *mut f32, n: u32, arg: f32) -> i32 {
    let result = check_ptr(values)
        .and_then(|()| kernels::map(op, use_simd != 0, std::slice::from_raw_parts_mut(values, n as usize), arg));
    status(result)
}
