//! Status codes returned through the C ABI (mirrored in `sdk/src/binding.ts`).
//!
//! 0 is success; every failure is a negative code. Functions that return a
//! pointer or handle return 0 on failure and leave the code in `rg_last_error()`.

pub type Status = i32;

pub const OK: Status = 0;
/// `rg_model_new` / `rg_recycle_new`: a config word is zero, out of range or inconsistent
/// (e.g. n_heads not a multiple of n_kv_heads, odd rope_dim, rope_dim > head_dim).
pub const ERR_INVALID_CONFIG: Status = -1;
/// An allocation failed: the module's memory cannot grow that far.
pub const ERR_OUT_OF_MEMORY: Status = -2;
/// The model handle is 0, unknown or already freed.
pub const ERR_BAD_HANDLE: Status = -3;
/// `rg_tensor_reserve` / `rg_recycle_reserve`: unknown tensor kind, a kind the config's architecture does not
/// have (for a head: kind 2 and kinds ≥ 12), or layer ≥ n_layers.
pub const ERR_UNKNOWN_KIND: Status = -4;
/// `rg_tensor_reserve`: rows × cols differ from what the config implies for that kind,
/// or a quantized type's cols are not a multiple of 32.
pub const ERR_BAD_SHAPE: Status = -5;
/// `rg_tensor_reserve` / `rg_kernel_dot` / `rg_type_info`: a ggml type the engine does not run
/// (RoPE factors must be F32).
pub const ERR_UNSUPPORTED_TYPE: Status = -6;
/// `rg_tensor_reserve`: that tensor was already reserved.
pub const ERR_DUPLICATE_TENSOR: Status = -7;
/// `rg_model_ready`: a tensor the architecture requires was never reserved.
pub const ERR_MISSING_TENSOR: Status = -8;
/// Call out of order: reserve after ready, ready twice, forward before ready; a recycle call
/// without a head, a second head, or a head readied before its base.
pub const ERR_WRONG_STATE: Status = -9;
/// `rg_forward` / `rg_recycle_forward` / `rg_kernel_dot`: n, pos or logits_from out of range,
/// a KV sequence ≥ n_sequences, or a null or misaligned pointer.
pub const ERR_BAD_ARGUMENT: Status = -10;
/// `rg_forward` / `rg_recycle_forward`: a token id ≥ n_vocab.
pub const ERR_BAD_TOKEN: Status = -11;
/// A size computed from the arguments overflows or exceeds what 32-bit memory can hold.
pub const ERR_TOO_LARGE: Status = -12;

/// A zeroed vector of `len` items, or ERR_OUT_OF_MEMORY instead of aborting
/// when the memory cannot grow that far.
pub fn try_vec<T: Clone + Default>(len: usize) -> Result<Vec<T>, Status> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| ERR_OUT_OF_MEMORY)?;
    v.resize(len, T::default());
    Ok(v)
}
