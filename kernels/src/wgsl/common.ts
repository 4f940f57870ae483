/** WGSL shared by every kernel: the per-forward Step uniform and the flat workgroup index. */

/** Threads per workgroup in every kernel (a safe size on all WebGPU adapters). */
export const WORKGROUP_SIZE = 64;

/** Binding 0 of every kernel: what changes per forward (tokens in the batch, first position, first logits row). */
export const stepUniform = /* wgsl */ `
struct Step { n: u32, pos: u32, logits_from: u32, pad: u32 }
@group(0) @binding(0) var<uniform> step: Step;
const WG: u32 = ${WORKGROUP_SIZE}u;
`;

/** Dispatches wider than 65535 workgroups wrap into y (see gpu.ts grid()); this undoes the wrap. */
export const flatIndex = /* wgsl */ `
fn flat_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/** Entry point of one thread per item, items spread over a wrapped grid. */
export const perItemEntry = /* wgsl */ `
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  item(flat_workgroup(wid, nwg) * WG + lid);
}
`;
