import { Hono } from 'hono';
import type { Model } from 'recyclegpt';
import type { ModelCard, ModelProvider } from '../provider.js';
import { modelNotFound } from '../provider.js';

/** The weights' type: the one most matrices have (norms stay F32 in every file). */
function quantization(model: Model): string | null {
  const types = Object.entries(model.info.tensorTypes).filter(([type]) => type !== 'F32');
  return types.sort((a, b) => b[1] - a[1])[0]?.[0] ?? (model.info.tensorTypes.F32 ? 'F32' : null);
}

/** How chat() renders a conversation for this model: its GGUF's own template, or the fallback format used. */
function chatTemplate(model: Model): string | null {
  try {
    return model.renderChat([{ role: 'user', content: 'x' }]).renderer;
  } catch {
    return null;
  }
}

/**
 * A model's card with the `recyclegpt` extension: a description for people, whether it is loaded, and once it is,
 * what it is (the playground shows this). Listing never loads a model.
 */
function card(models: ModelProvider, card: ModelCard) {
  const model = models.loaded?.(card.id);
  const details = model && {
    name: model.info.name || null,
    architecture: model.info.architecture,
    parameters: model.info.parameters,
    quantization: quantization(model),
    context_length: model.info.contextLength,
    recycle_head: model.info.hasRecycleHead,
    chat_template: chatTemplate(model),
    backend: model.info.backend,
    // The engine module's kernels on the wasm backend ('relaxed' or 'simd128': the same results), else null.
    kernels: model.info.kernels ?? null,
  };
  return { ...card, recyclegpt: { description: models.description?.(card.id) ?? null, state: models.state?.(card.id).state ?? null, ...details } };
}

export function modelRoutes(models: ModelProvider): Hono {
  const app = new Hono();
  app.get('/v1/models', (c) => c.json({ object: 'list', data: models.list().map((m) => card(models, m)) }));
  app.get('/v1/models/:id', (c) => {
    const cards = models.list();
    const found = cards.find((m) => m.id === c.req.param('id'));
    if (!found) throw modelNotFound(c.req.param('id'), cards.map((m) => m.id));
    return c.json(card(models, found));
  });
  return app;
}
