// Builds wasm/ for wasm32-unknown-unknown twice and copies the modules into sdk/wasm/:
// recyclegpt.wasm (SIMD128) and recyclegpt-relaxed.wasm (plus relaxed-SIMD quantized kernels, for
// hosts that run them: workerd, Chrome, Deno). Run from the repository root: `node wasm/build.mjs`.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TARGET = 'wasm32-unknown-unknown';
const wasmDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(wasmDir);
const sdkWasm = join(root, 'sdk', 'wasm');

/** True when `rustc` has the wasm32 standard library installed. */
function hasWasmTarget(rustc) {
  const probe = spawnSync(rustc, ['--print', 'target-libdir', '--target', TARGET], { encoding: 'utf8' });
  if (probe.status !== 0) return false;
  const libdir = probe.stdout.trim();
  return existsSync(libdir) && readdirSync(libdir).some((f) => f.startsWith('libstd-'));
}

/** rustup's toolchain if it has the target, else Debian's rustc + cargo. */
function findToolchain() {
  const candidates = [
    { rustc: 'rustc', cargo: 'cargo' },
    { rustc: '/usr/bin/rustc', cargo: '/usr/bin/cargo' },
  ];
  return candidates.find((c) => hasWasmTarget(c.rustc) && spawnSync(c.cargo, ['--version']).status === 0);
}

const toolchain = findToolchain();
if (!toolchain) {
  console.error(
    `No Rust toolchain with the ${TARGET} target was found. Install one: ` +
      '`apt-get install -y rustc cargo libstd-rust-dev-wasm32` or `rustup target add wasm32-unknown-unknown`.',
  );
  process.exit(1);
}

/** Builds the crate with `features` into its own target directory; returns the module's path. */
function build(features, env = {}) {
  const targetDir = join(wasmDir, 'target', features.length > 0 ? features.join('+') : 'simd128');
  execFileSync(
    toolchain.cargo,
    ['build', '--release', '--target', TARGET, '--manifest-path', join(wasmDir, 'Cargo.toml'), '--target-dir', targetDir, ...features.flatMap((f) => ['--features', f])],
    { stdio: 'inherit', env: { ...process.env, RUSTC: toolchain.rustc, RUSTFLAGS: '-C target-feature=+simd128', ...env } },
  );
  return join(targetDir, TARGET, 'release', 'recyclegpt_wasm.wasm');
}

/** kernels/relaxed.rs's imports (module "relaxed-simd") → the instruction, as wabt 1.0.32 spells it. */
const RELAXED_INSTRUCTIONS = {
  'i32x4.relaxed_dot_i8x16_i7x16_add_s': 'i32x4.dot_i8x16_i7x16_add_s',
  'i16x8.relaxed_dot_i8x16_i7x16_s': 'i16x8.dot_i8x16_i7x16_s',
};

/**
 * The relaxed-SIMD module: kernels/relaxed.rs declares each instruction as an import with its
 * exact stack signature (rustc 1.63 has no intrinsics for them), so each call to such an import
 * becomes the instruction itself, in the text form, and the import goes. Names are generated
 * first so that removing imports renumbers nothing by hand.
 */
function relax(input, output) {
  for (const tool of ['wasm2wat', 'wat2wasm']) {
    if (spawnSync(tool, ['--version']).status !== 0) throw new Error(`${tool} is missing: apt-get install wabt (it assembles the relaxed-SIMD module)`);
  }
  let wat = execFileSync('wasm2wat', ['--enable-all', '--generate-names', input], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const counts = [];
  for (const [imported, instruction] of Object.entries(RELAXED_INSTRUCTIONS)) {
    const importLine = wat.split('\n').find((line) => line.includes(`(import "relaxed-simd" "${imported}"`));
    if (!importLine) continue; // no kernel uses it
    const name = /\(func (\$[^ ]+)/.exec(importLine)[1];
    const call = new RegExp(`^(\\s*)call ${name.replace(/\$/g, '\\$')}$`, 'gm');
    counts.push(`${(wat.match(call) ?? []).length} ${instruction}`);
    wat = wat.replace(importLine + '\n', '').replace(call, `$1${instruction}`);
    if (wat.includes(name)) throw new Error(`${name} is still referenced after the rewrite (not only by calls)`);
  }
  if (counts.length === 0) throw new Error(`${input} imports no relaxed-SIMD instruction: no kernel uses relaxed SIMD`);
  if (wat.includes('"relaxed-simd"')) throw new Error(`${input} imports a relaxed-SIMD instruction that RELAXED_INSTRUCTIONS does not name`);
  const text = join(dirname(input), 'relaxed.wat');
  writeFileSync(text, wat);
  execFileSync('wat2wasm', ['--enable-all', text, '-o', output]);
  console.log(`relaxed SIMD: ${counts.join(', ')} in ${output}`);
}

mkdirSync(sdkWasm, { recursive: true });
copyFileSync(build([]), join(sdkWasm, 'recyclegpt.wasm'));
console.log(`wrote ${join(sdkWasm, 'recyclegpt.wasm')}`);
// simd_ffi (a v128 in an extern signature) is a nightly feature of rustc 1.63; RUSTC_BOOTSTRAP admits it.
relax(build(['relaxed-simd'], { RUSTC_BOOTSTRAP: '1' }), join(sdkWasm, 'recyclegpt-relaxed.wasm'));
