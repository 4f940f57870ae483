// Builds wasm/ for wasm32-unknown-unknown with SIMD128 and copies the module to
// sdk/wasm/recyclegpt.wasm. Run from the repository root: `node wasm/build.mjs`.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TARGET = 'wasm32-unknown-unknown';
const wasmDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(wasmDir);
const targetDir = join(wasmDir, 'target');
const output = join(root, 'sdk', 'wasm', 'recyclegpt.wasm');

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

execFileSync(
  toolchain.cargo,
  ['build', '--release', '--target', TARGET, '--manifest-path', join(wasmDir, 'Cargo.toml'), '--target-dir', targetDir],
  {
    stdio: 'inherit',
    env: { ...process.env, RUSTC: toolchain.rustc, RUSTFLAGS: '-C target-feature=+simd128' },
  },
);
mkdirSync(dirname(output), { recursive: true });
copyFileSync(join(targetDir, TARGET, 'release', 'recyclegpt_wasm.wasm'), output);
console.log(`wrote ${output}`);
