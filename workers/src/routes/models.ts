import { Hono } from 'hono';
import type { ModelProvider } from '../provider.js';
import { modelNotFound } from '../provider.js';

export function modelRoutes(models: ModelProvider): Hono {
  const app = new Hono();
  app.get('/v1/models', (c) => c.json({ object: 'list', data: models.list() }));
  app.get('/v1/models/:id', (c) => {
    const cards = models.list();
    const card = cards.find((m) => m.id === c.req.param('id'));
    if (!card) throw modelNotFound(c.req.param('id'), cards.map((m) => m.id));
    return c.json(card);
  });
  return app;
}
