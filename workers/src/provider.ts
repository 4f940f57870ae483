import type { Model } from 'recyclegpt';
import { OpenAIError } from './errors.js';

/** One entry of GET /v1/models, in OpenAI's shape. */
export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** Where a model stands, for /healthz. `failed`: the last load failed (the next request tries again). */
export type ModelState = { state: 'not_loaded' | 'loading' | 'ready' } | { state: 'failed'; error: string };

/** Where the routes get models from. `get` may load lazily; callers share one instance per id. */
export interface ModelProvider {
  list(): ModelCard[];
  get(id: string): Promise<Model>;
  /** Optional: lets /healthz tell a loaded model from one that is loading or failed. */
  state?(id: string): ModelState;
  /** Optional: the model if it is loaded already (its card then gives its details), without loading it. */
  loaded?(id: string): Model | undefined;
  /** Optional: a line for people about the model, e.g. "a 5M-parameter test model that does not write sensible text". */
  description?(id: string): string | undefined;
}

export interface ModelEntry {
  id: string;
  load: () => Promise<Model>;
  description?: string;
}

/**
 * Loads each model on first use and keeps it. Concurrent first callers share one load; a load that
 * fails is forgotten, so the next request tries again instead of failing forever.
 */
export function lazyModels(entries: ModelEntry[], ownedBy = 'recyclegpt'): ModelProvider {
  const created = Math.floor(Date.now() / 1000);
  const loads = new Map<string, Promise<Model>>();
  const states = new Map<string, ModelState>();
  const ready = new Map<string, Model>();
  return {
    list: () => entries.map((e) => ({ id: e.id, object: 'model', created, owned_by: ownedBy })),
    get(id) {
      const entry = entries.find((e) => e.id === id);
      if (!entry) return Promise.reject(modelNotFound(id, entries.map((e) => e.id)));
      let load = loads.get(id);
      if (!load) {
        load = entry.load();
        loads.set(id, load);
        states.set(id, { state: 'loading' });
        load.then(
          (model) => (ready.set(id, model), states.set(id, { state: 'ready' })),
          (error: unknown) => {
            loads.delete(id);
            states.set(id, { state: 'failed', error: error instanceof Error ? error.message : String(error) });
          },
        );
      }
      return load;
    },
    state: (id) => states.get(id) ?? { state: 'not_loaded' },
    loaded: (id) => ready.get(id),
    description: (id) => entries.find((e) => e.id === id)?.description,
  };
}

export function modelNotFound(id: string, known: string[]): OpenAIError {
  return new OpenAIError(404, 'not_found_error', `The model '${id}' does not exist. Available: ${known.join(', ') || 'none'}.`, 'model', 'model_not_found');
}
