#!/usr/bin/env node
/** recyclegpt: inspect GGUF files and run models from the command line (Node). */
import { parseArgs } from 'node:util';
import { readGGUFHeader } from './gguf/load.js';
import { summarizeGGUF } from './gguf/summary.js';
import { BACKEND_CHOICES, DECODE_MODES, isBackendChoice, isDecodeMode } from './contract/modes.js';
import { RecycleGPTError } from './errors.js';
import { modelShape } from './model-file.js';
import { loadModel, provideNodeWebGPU } from './node.js';
import type { GenerateOptions, LoadOptions } from './types.js';

const USAGE = `usage:
  recyclegpt info <model.gguf> [--json]
  recyclegpt run --model <model.gguf> --prompt <text> [--max-tokens N] [--temperature T] [--seed S]
                 [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--stop TEXT]... [--context N]
                 [--backend ${BACKEND_CHOICES.join('|')}] [--recycle <head.gguf> --mode ${DECODE_MODES.join('|')} [--draft-length K]] [--json]`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'info') return info(rest);
  if (command === 'run') return run(rest);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return;
  }
  throw new UsageError(`unknown command '${command}'`);
}

async function info(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError('info takes exactly one GGUF path');
  const header = await readGGUFHeader(positionals[0]);
  const summary = summarizeGGUF(header);
  // A file the engine does not run is still described, with the reason.
  let shape: ReturnType<typeof modelShape> | undefined;
  let unsupported: string | undefined;
  try {
    shape = modelShape(header);
  } catch (error) {
    if (!(error instanceof RecycleGPTError)) throw error;
    unsupported = error.message;
  }
  if (values.json) {
    console.log(JSON.stringify({ ...summary, shape, unsupported }, null, 2));
    return;
  }
  const rows: [string, unknown][] = [
    ['architecture', summary.architecture ?? 'unknown'],
    ['name', summary.name ?? ''],
    ['gguf version', summary.version],
    ['parameters', summary.parameterCount.toLocaleString('en-US')],
    ['tensors', `${summary.tensorCount} (${(summary.tensorBytes / 2 ** 20).toFixed(1)} MiB)`],
    ['types', summary.types.map((t) => `${t.name} ×${t.tensors} (${(t.bytes / 2 ** 20).toFixed(1)} MiB)`).join(', ')],
    ['tokenizer', `${summary.tokenizerModel ?? 'none'}, ${summary.vocabSize ?? '?'} tokens`],
    ['context length', summary.contextLength ?? 'unknown'],
  ];
  if (shape) {
    rows.push(
      ['embedding', shape.dim],
      ['layers', shape.layers],
      ['heads', `${shape.heads} (kv ${shape.kvHeads}, head dim ${shape.headDim})`],
      ['feed forward', shape.ffnDim],
      ['rope', `dim ${shape.ropeDim}, base ${shape.ropeFreqBase}, scaling ${shape.ropeScaling.type} ×${shape.ropeScaling.factor}`],
    );
    if (shape.slidingWindow) rows.push(['sliding window', `${shape.slidingWindow.size} tokens, 1 global layer in ${shape.slidingWindow.pattern}`]);
  }
  if (unsupported) rows.push(['runs', `no: ${unsupported}`]);
  for (const [key, value] of rows) console.log(`${key.padEnd(15)} ${String(value)}`);
}

function number(name: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${raw}'`);
  }
  return value;
}

async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      seed: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'min-p': { type: 'string' },
      'repeat-penalty': { type: 'string' },
      stop: { type: 'string', multiple: true },
      context: { type: 'string' },
      backend: { type: 'string' },
      recycle: { type: 'string' },
      mode: { type: 'string' },
      'draft-length': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.model) throw new UsageError('run needs --model <model.gguf>');
  if (values.prompt === undefined) throw new UsageError('run needs --prompt <text>');
  const mode = values.mode ?? 'off';
  if (!isDecodeMode(mode)) throw new UsageError(`--mode must be one of ${DECODE_MODES.join(', ')}, got '${mode}'`);

  const options: GenerateOptions = {
    maxTokens: number('max-tokens', values['max-tokens'], true) ?? 128,
    temperature: number('temperature', values.temperature, false),
    seed: number('seed', values.seed, true),
    topK: number('top-k', values['top-k'], true),
    topP: number('top-p', values['top-p'], false),
    minP: number('min-p', values['min-p'], false),
    repeatPenalty: number('repeat-penalty', values['repeat-penalty'], false),
    stop: values.stop,
    decode: { mode, draftLength: number('draft-length', values['draft-length'], true) },
  };
  if (mode !== 'off' && !values.recycle) throw new UsageError(`--mode ${mode} needs --recycle <head.gguf>`);
  const backend = values.backend ?? 'wasm';
  if (!isBackendChoice(backend)) throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(', ')}, got '${backend}'`);
  const gpu = backend === 'wasm' ? undefined : await provideNodeWebGPU();
  if (typeof gpu === 'string' && backend === 'webgpu') throw new Error(`--backend webgpu: ${gpu}`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  options.signal = controller.signal;

  const showProgress = !values.json && process.stderr.isTTY;
  try {
    // Without Dawn, `auto` falls back to WASM; say why in Dawn's words rather than 'no navigator.gpu'.
    const noGpu = typeof gpu === 'string' ? gpu : undefined;
    await generate(values.model, values.prompt, options, noGpu, {
      backend,
      recycle: values.recycle,
      contextLength: number('context', values.context, true),
      onProgress: showProgress
        ? ({ loaded, total, phase }) =>
            process.stderr.write(`\rloading ${phase} ${total ? `${Math.round((100 * loaded) / total)}%` : `${loaded} bytes`}`)
        : undefined,
    }, values.json === true);
  } finally {
    if (typeof gpu === 'object') gpu.release();
  }
}

async function generate(path: string, prompt: string, options: GenerateOptions, noGpu: string | undefined, load: LoadOptions, json: boolean): Promise<void> {
  const model = await loadModel(path, load);
  const backendReason = noGpu && model.info.backend === 'wasm' ? noGpu : model.info.backendReason;
  if (load.onProgress) process.stderr.write('\r\x1b[K');
  try {
    if (json) {
      const { text, tokens, stats } = await model.complete(prompt, options);
      console.log(JSON.stringify({ text, tokens, stats, backend: model.info.backend, backendReason, kernels: model.info.kernels }));
      return;
    }
    const stream = model.generate(prompt, options);
    for await (const token of stream) process.stdout.write(token.text);
    const stats = await stream.stats;
    process.stdout.write('\n');
    const recycled = stats.acceptanceRate === undefined ? '' : `, ${(100 * stats.acceptanceRate).toFixed(0)}% of recycled tokens kept`;
    console.error(
      `[${model.info.backend}${model.info.kernels ? ` ${model.info.kernels}` : ''}, ${stats.generatedTokens} tokens, prefill ${stats.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${stats.decodeTokensPerSecond.toFixed(1)} tok/s (${stats.decodeMode}${recycled}), ${stats.finishReason}]`,
    );
  } finally {
    model.dispose();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  // node:util parseArgs reports unknown or malformed options with ERR_PARSE_ARGS_* codes.
  const usage = error instanceof UsageError || String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
  console.error(`recyclegpt: error: ${message.split('\n')[0]}${usage ? ' (see recyclegpt --help)' : ''}`);
  process.exitCode = usage ? 2 : 1;
});
