/** The page served at `/`: plain HTML and a small script, no build step. It talks to this server's /v1 API. */
export const playgroundHtml = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RecycleGPT Edge playground</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; }
  textarea { width: 100%; min-height: 6rem; font: inherit; box-sizing: border-box; }
  .row { display: flex; flex-wrap: wrap; gap: .8rem 1.2rem; align-items: center; margin: .8rem 0; }
  label { display: flex; gap: .4rem; align-items: center; }
  input[type=number] { width: 5.5rem; }
  #output { white-space: pre-wrap; border: 1px solid #c8cedb; border-radius: 6px; padding: .8rem; min-height: 6rem; background: #f7f8fb; }
  #stats { color: #4b5468; font-variant-numeric: tabular-nums; margin-top: .5rem; }
  .error { color: #b3261e; }
</style>
</head>
<body>
<h1>RecycleGPT Edge</h1>
<form id="form">
  <textarea id="prompt" placeholder="Write a prompt…">Once upon a time</textarea>
  <div class="row">
    <label>Model <select id="model"></select></label>
    <label>Endpoint <select id="endpoint"><option value="completions">completion</option><option value="chat">chat</option></select></label>
    <label>Decode <select id="mode"><option value="off">off</option><option value="fast">fast (recycled)</option><option value="exact">exact (verified)</option></select></label>
    <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
    <label>Max tokens <input id="maxTokens" type="number" min="1" step="1" value="128"></label>
    <label>API key <input id="apiKey" type="password" autocomplete="off" placeholder="(if required)"></label>
    <button id="submit" type="submit">Generate</button>
    <button id="stop" type="button" disabled>Stop</button>
  </div>
</form>
<div id="output" aria-live="polite"></div>
<div id="stats"></div>
<script type="module">
const $ = (id) => document.getElementById(id);
let controller;

function headers() {
  const h = { 'content-type': 'application/json' };
  if ($('apiKey').value) h.authorization = 'Bearer ' + $('apiKey').value;
  return h;
}

async function loadModels() {
  const res = await fetch('/v1/models', { headers: headers() });
  const body = await res.json();
  if (!res.ok) return showError(body);
  $('model').replaceChildren(...body.data.map((m) => new Option(m.id, m.id)));
}

function showError(body) {
  $('stats').className = 'error';
  $('stats').textContent = (body && body.error && body.error.message) || String(body);
}

function showStats(tokens, startedAt, firstAt, extra) {
  const seconds = (performance.now() - (firstAt ?? startedAt)) / 1000;
  const parts = [tokens + ' tokens', (tokens > 1 && seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : '–') + ' tok/s'];
  if (firstAt) parts.push('first token ' + Math.round(firstAt - startedAt) + ' ms');
  if (extra) {
    if (extra.tokens_per_second != null) parts.push('server ' + extra.tokens_per_second + ' tok/s');
    parts.push('mode ' + extra.decode_mode);
    parts.push('acceptance ' + (extra.acceptance_rate == null ? '–' : (extra.acceptance_rate * 100).toFixed(0) + '%'));
  }
  $('stats').className = '';
  $('stats').textContent = parts.join(' · ');
}

// Reads OpenAI-style server-sent events: "data: {json}" blocks separated by a blank line, ended by "data: [DONE]".
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\\n\\n')) >= 0) {
      const data = buffer.slice(0, end).replace(/^data: /, '');
      buffer = buffer.slice(end + 2);
      if (data === '[DONE]') return;
      yield JSON.parse(data);
    }
  }
}

async function generate(event) {
  event.preventDefault();
  controller = new AbortController();
  $('submit').disabled = true;
  $('stop').disabled = false;
  $('output').textContent = '';
  const chat = $('endpoint').value === 'chat';
  const request = {
    model: $('model').value,
    stream: true,
    temperature: Number($('temperature').value),
    max_tokens: Number($('maxTokens').value),
    recycle: { mode: $('mode').value },
    ...(chat ? { messages: [{ role: 'user', content: $('prompt').value }] } : { prompt: $('prompt').value }),
  };
  const startedAt = performance.now();
  let firstAt;
  let tokens = 0;
  try {
    const res = await fetch(chat ? '/v1/chat/completions' : '/v1/completions', { method: 'POST', headers: headers(), body: JSON.stringify(request), signal: controller.signal });
    if (!res.ok) return showError(await res.json());
    for await (const chunk of events(res)) {
      if (chunk.error) return showError(chunk);
      const choice = chunk.choices[0];
      const text = choice ? (chat ? choice.delta.content : choice.text) : '';
      if (text) {
        firstAt ??= performance.now();
        tokens++;
        $('output').textContent += text;
      }
      showStats(tokens, startedAt, firstAt, chunk.recyclegpt);
    }
  } catch (err) {
    if (err.name !== 'AbortError') showError(err.message);
  } finally {
    $('submit').disabled = false;
    $('stop').disabled = true;
  }
}

$('form').addEventListener('submit', generate);
$('stop').addEventListener('click', () => controller && controller.abort());
$('apiKey').addEventListener('change', loadModels);
loadModels();
</script>
</body>
</html>
`;
