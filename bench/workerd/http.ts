/**
 * JSON requests on a fresh connection each: fetch's pooled keep-alive connections race workerd closing idle
 * ones, and the next request then fails at once with "other side closed".
 */
import { request } from 'node:http';

/** GET (no body) or POST `body` as JSON to `base` + `path`; the answer's status and text. */
export function requestJson(base: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = payload === undefined ? {} : { 'content-type': 'application/json' };
    const req = request(url, { method: payload === undefined ? 'GET' : 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** requestJson, the answer parsed; a status other than 200 throws with the answer's text. */
export async function callJson<T>(base: string, path: string, body?: unknown): Promise<T> {
  const { status, text } = await requestJson(base, path, body);
  if (status !== 200) throw new Error(`${base}${path} answered ${status}: ${text.slice(0, 2000)}`);
  return JSON.parse(text) as T;
}
