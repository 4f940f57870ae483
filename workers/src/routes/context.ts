import type { Context } from 'hono';
import type { Model } from 'recyclegpt';
import { modelNotFound, type ModelProvider } from '../provider.js';
import type { InFlight } from '../limits.js';
import { parseJsonObject, type Limits } from '../validate.js';

/** What every generation route needs from the app. */
export interface RouteDeps {
  models: ModelProvider;
  limits: Limits;
  inFlight: InFlight;
}

export async function readJson(c: Context): Promise<Record<string, unknown>> {
  return parseJsonObject(await c.req.text());
}

/** Unknown ids are a 404 before anything loads. */
export async function resolveModel(models: ModelProvider, id: string): Promise<Model> {
  const known = models.list().map((m) => m.id);
  if (!known.includes(id)) throw modelNotFound(id, known);
  return await models.get(id);
}
