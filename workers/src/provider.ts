import type { Model } from 'recyclegpt';
import { HttpError } from './errors.js';

/** One entry of GET /v1/models, in OpenAI's shape. */
export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** Where the routes get models from. `get` may load lazily; callers share one instance per id. */
export interface ModelProvider {
  list(): ModelCard[];
  get(id: string): Promise<Model>;
}

export interface ModelEntry {
  id: string;
  load: () => Promise<Model>;
}

/**
 * Loads each model on first use and keeps it. Concurrent first callers share one load; a load that
 * fails is forgotten, so the next request tries again instead of failing forever.
 */
export function lazyModels(entries: ModelEntry[], ownedBy = 'recyclegpt'): ModelProvider {
  const created = Math.floor(Date.now() / 1000);
  const loads = new Map<string, Promise<Model>>();
  return {
    list: () => entries.map((e) => ({ id: e.id, object: 'model', created, owned_by: ownedBy })),
    get(id) {
      const entry = entries.find((e) => e.id === id);
      if (!entry) return Promise.reject(modelNotFound(id, entries.map((e) => e.id)));
      let load = loads.get(id);
      if (!load) {
        load = entry.load();
        loads.set(id, load);
        load.catch(() => loads.delete(id));
      }
      return load;
    },
  };
}

export function modelNotFound(id: string, known: string[]): HttpError {
  return new HttpError(404, 'not_found_error', `The model '${id}' does not exist. Available: ${known.join(', ') || 'none'}.`, 'model', 'model_not_found');
}
