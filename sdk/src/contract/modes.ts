/** Decode modes, backend and kernel names: the one list of each, for the SDK's options, the CLI and the Worker routes. */

/**
 * How tokens after the first are produced. `off`: plain decoding; `fast`: RecycleGPT (unverified recycled tokens);
 * `exact`: recycled tokens verified by the next full pass (output identical to `off`); `chain`: k drafted tokens
 * verified at once.
 */
export const DECODE_MODES = ['off', 'fast', 'exact', 'chain'] as const;
export type DecodeMode = (typeof DECODE_MODES)[number];

/** Engines a model runs on. */
export const BACKENDS = ['wasm', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** What `LoadOptions.backend` takes: an engine, or 'auto' (WebGPU when it can run the model, else WASM). */
export const BACKEND_CHOICES = ['auto', ...BACKENDS] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/**
 * The WASM engine's kernels, by rg_kernel_set's number. The SDK ships two modules (sdk/wasm/): `simd128`
 * (recyclegpt.wasm, every host) and `relaxed` (recyclegpt-relaxed.wasm: SIMD128 plus relaxed-SIMD quantized kernels,
 * computing the same bits faster where the host has relaxed SIMD); `scalar` is an engine built without SIMD.
 */
export const KERNEL_SETS = ['scalar', 'simd128', 'relaxed'] as const;
export type KernelSet = (typeof KERNEL_SETS)[number];

/** What `LoadOptions.kernels` takes: a shipped module's kernels, or 'auto' (relaxed where the host runs it exactly). */
export const KERNEL_CHOICES = ['auto', 'relaxed', 'simd128'] as const;
export type KernelChoice = (typeof KERNEL_CHOICES)[number];

export function isDecodeMode(value: unknown): value is DecodeMode {
  return (DECODE_MODES as readonly unknown[]).includes(value);
}

export function isBackendChoice(value: unknown): value is BackendChoice {
  return (BACKEND_CHOICES as readonly unknown[]).includes(value);
}

export function isKernelChoice(value: unknown): value is KernelChoice {
  return (KERNEL_CHOICES as readonly unknown[]).includes(value);
}
