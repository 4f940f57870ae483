/// <reference types="@cloudflare/workers-types" />
/** The Worker's entry (wrangler.toml's `main`): the OpenAI-compatible API over the GGUF in R2 (see r2-worker.ts). */
import { createWorker } from './r2-worker.js';

export type { Env } from './r2-worker.js';
export default createWorker();
