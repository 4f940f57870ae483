/**
 * The page served at `/`: plain HTML and a small script, no build step. A chat with the model through this server's
 * /v1/chat/completions (the SDK's chat() renders each turn with the model's own template), which shows where each
 * token came from (the `recyclegpt.source` of each stream chunk) and how fast it came.
 */
export const playgroundHtml = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RecycleGPT Edge playground</title>
<style>
  :root { --pass: #1d2433; --recycled: #0a7d55; --recycled-bg: #dcf5ea; --line: #c8cedb; --muted: #5b6478; }
  * { box-sizing: border-box; }
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 50rem; margin: 1.5rem auto; padding: 0 1rem; color: var(--pass); }
  h1 { font-size: 1.35rem; margin: 0; }
  header { display: flex; flex-wrap: wrap; gap: .3rem 1rem; align-items: baseline; }
  #about { color: var(--muted); margin: .2rem 0 .8rem; }
  .row { display: flex; flex-wrap: wrap; gap: .6rem 1.1rem; align-items: center; margin: .6rem 0; }
  label { display: flex; gap: .4rem; align-items: center; }
  input[type=number] { width: 4.8rem; }
  .switch { display: inline-flex; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
  .switch input { position: absolute; opacity: 0; pointer-events: none; }
  .switch label { padding: .2rem .7rem; cursor: pointer; border-left: 1px solid var(--line); }
  .switch label:first-of-type { border-left: 0; }
  .switch input:checked + label { background: var(--pass); color: #fff; }
  .switch input:disabled + label { color: #aab; cursor: not-allowed; }
  #chat { border: 1px solid var(--line); border-radius: 8px; padding: .8rem; min-height: 12rem; background: #f7f8fb; }
  #chat:empty::before { content: 'Say something to start the conversation.'; color: var(--muted); }
  .turn { margin: .4rem 0; padding: .5rem .7rem; border-radius: 8px; white-space: pre-wrap; max-width: 92%; }
  .turn.user { background: #e4e9f4; margin-left: auto; width: fit-content; }
  .turn.assistant { background: #fff; border: 1px solid #e2e5ee; }
  .turn .meta { display: block; font-size: .8rem; color: var(--muted); white-space: normal; margin-top: .3rem; }
  .tok.recycled { color: var(--recycled); background: var(--recycled-bg); border-radius: 3px; }
  .tok.reasoning { font-style: italic; opacity: .7; }
  .legend { font-size: .85rem; color: var(--muted); }
  .legend .tok { padding: 0 .3rem; }
  #composer { display: flex; gap: .5rem; margin-top: .6rem; }
  #input { flex: 1; min-height: 3rem; font: inherit; padding: .4rem; }
  #stats { color: var(--muted); font-variant-numeric: tabular-nums; min-height: 1.5em; margin-top: .4rem; }
  .error { color: #b3261e !important; }
  details { margin-top: .4rem; color: var(--muted); }
</style>
</head>
<body>
<header><h1>RecycleGPT Edge</h1><label>Model <select id="model"></select></label></header>
<p id="about">…</p>
<div class="row">
  <span>Recycling</span>
  <span class="switch" id="mode" role="radiogroup" aria-label="Recycle mode">
    <input type="radio" name="mode" id="mode-off" value="off" checked><label for="mode-off" title="Every token from a full pass of the model">off</label>
    <input type="radio" name="mode" id="mode-exact" value="exact"><label for="mode-exact" title="The recycle head guesses the next token; the next full pass checks the guess: the same text as off">exact</label>
    <input type="radio" name="mode" id="mode-chain" value="chain"><label for="mode-chain" title="The head guesses several tokens; one full pass checks them all: the same text as off">chain</label>
    <input type="radio" name="mode" id="mode-fast" value="fast"><label for="mode-fast" title="The paper's mode: the head's guesses are kept unchecked">fast</label>
  </span>
  <label title="exact and chain measure what drafting costs here and stop drafting where it does not pay; checked, they draft at every step, so you see the head at work">
    <input id="alwaysDraft" type="checkbox" checked> draft every step</label>
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0"></label>
  <label>Max tokens <input id="maxTokens" type="number" min="1" step="1" value="64"></label>
</div>
<div id="chat" aria-live="polite"></div>
<p class="legend" id="legend"><span class="tok pass">token</span> from a full pass · <span class="tok recycled">token</span> <span id="recycled-meaning">the recycle head's guess, kept by the check</span></p>
<form id="composer">
  <textarea id="input" placeholder="Write a message… (Enter sends, Shift+Enter for a new line)">Tell me about the edge.</textarea>
  <div style="display:flex;flex-direction:column;gap:.3rem">
    <button id="send" type="submit">Send</button>
    <button id="stop" type="button" disabled>Stop</button>
    <button id="reset" type="button">New chat</button>
  </div>
</form>
<div id="stats"></div>
<details><summary>API key</summary><label>Bearer key <input id="apiKey" type="password" autocomplete="off" placeholder="(if the server needs one)"></label></details>
<script type="module">
const $ = (id) => document.getElementById(id);
/** The conversation so far, as OpenAI messages: every turn sends all of it (the server reuses the cached prefix). */
let messages = [];
let models = [];
let controller;

function headers() {
  const h = { 'content-type': 'application/json' };
  if ($('apiKey').value) h.authorization = 'Bearer ' + $('apiKey').value;
  return h;
}

const mode = () => document.querySelector('input[name=mode]:checked').value;
const count = (n) => (n >= 1e9 ? (n / 1e9).toFixed(1) + 'B' : n >= 1e6 ? Math.round(n / 1e6) + 'M' : n >= 1e3 ? Math.round(n / 1e3) + 'K' : String(n));

async function loadModels() {
  const res = await fetch('/v1/models', { headers: headers() });
  const body = await res.json();
  if (!res.ok) return showError(body);
  const chosen = $('model').value;
  models = body.data;
  $('model').replaceChildren(...models.map((m) => new Option(m.id, m.id, false, m.id === chosen)));
  describeModel();
}

/** The model that runs, in words: its description, and once it is loaded what it is. */
function describeModel() {
  const card = models.find((m) => m.id === $('model').value);
  const x = (card && card.recyclegpt) || {};
  const parts = [x.description];
  if (x.state === 'ready') {
    parts.push([x.parameters ? count(x.parameters) + ' parameters' : '', x.architecture, x.quantization].filter(Boolean).join(' '));
    parts.push('context ' + x.context_length + ' tokens');
    parts.push(x.chat_template === 'template' ? "chat turns rendered by the model's own template" : 'chat turns in the ' + x.chat_template + ' format (the GGUF has no usable template)');
    parts.push(x.recycle_head ? 'recycle head loaded' : 'no recycle head');
  } else parts.push('loads with the first message');
  $('about').textContent = parts.filter(Boolean).join(' · ');
  for (const input of document.querySelectorAll('input[name=mode]')) {
    input.disabled = x.recycle_head === false && input.value !== 'off';
    if (input.disabled && input.checked) $('mode-off').checked = true;
  }
  showLegend();
}

function showLegend() {
  $('recycled-meaning').textContent = mode() === 'fast' ? "the recycle head's guess, kept unchecked (fast mode)" : "the recycle head's guess, kept by the check";
}

function showError(body) {
  $('stats').className = 'error';
  $('stats').textContent = (body && body.error && body.error.message) || String(body);
}

function addTurn(role, text) {
  const turn = document.createElement('div');
  turn.className = 'turn ' + role;
  turn.textContent = text;
  $('chat').append(turn);
  turn.scrollIntoView({ block: 'end' });
  return turn;
}

/** The figures a visitor watches: live while tokens arrive, the server's own at the end. */
function showStats(s) {
  const now = performance.now();
  const decodeSeconds = s.firstAt ? (now - s.firstAt) / 1000 : 0;
  const parts = [s.tokens + ' tokens'];
  parts.push((s.tokens > 1 && decodeSeconds > 0 ? ((s.tokens - 1) / decodeSeconds).toFixed(1) : '–') + ' tok/s');
  parts.push('first token ' + (s.firstAt ? Math.round(s.firstAt - s.startedAt) + ' ms' : '…'));
  parts.push(s.recycled + ' recycled' + (s.tokens ? ' (' + Math.round((100 * s.recycled) / s.tokens) + '%)' : ''));
  const end = s.end;
  if (end) {
    parts.push('acceptance ' + (end.acceptance_rate == null ? '–' : Math.round(end.acceptance_rate * 100) + '%'));
    if (end.drafting_stopped) parts.push('drafting stopped: it cost more than it saved here');
    if (s.usage) parts.push('reused ' + end.reused_prompt_tokens + ' of ' + s.usage.prompt_tokens + ' prompt tokens');
    if (end.tokens_per_second != null) parts.push('server ' + end.tokens_per_second + ' tok/s');
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
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!block.startsWith('data: ')) continue; // a heartbeat comment while waiting for the model
      const data = block.slice(6);
      if (data === '[DONE]') return;
      yield JSON.parse(data);
    }
  }
}

async function send(event) {
  event.preventDefault();
  const text = $('input').value.trim();
  if (!text || controller) return;
  $('input').value = '';
  // This turn's conversation: "New chat" may start another one while this answer is still coming.
  const conversation = messages;
  conversation.push({ role: 'user', content: text });
  addTurn('user', text);
  const turn = addTurn('assistant', '');
  controller = new AbortController();
  $('send').disabled = true;
  $('stop').disabled = false;
  const s = { startedAt: performance.now(), firstAt: undefined, tokens: 0, recycled: 0, end: undefined, usage: undefined };
  let answer = '';
  let ended = 'stopped';
  const request = {
    model: $('model').value,
    messages: conversation,
    stream: true,
    stream_options: { include_usage: true },
    temperature: Number($('temperature').value),
    max_tokens: Number($('maxTokens').value),
    recycle: { mode: mode(), ...($('alwaysDraft').checked && { adaptive: false }) },
  };
  showStats(s);
  try {
    const res = await fetch('/v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(request), signal: controller.signal });
    if (!res.ok) {
      ended = 'error';
      return showError(await res.json());
    }
    for await (const chunk of events(res)) {
      if (chunk.error) {
        ended = 'error';
        return showError(chunk);
      }
      const delta = (chunk.choices[0] && chunk.choices[0].delta) || {};
      const piece = (delta.reasoning_content || '') + (delta.content || '');
      const source = chunk.recyclegpt && chunk.recyclegpt.source;
      if (source) {
        s.firstAt = s.firstAt || performance.now();
        s.tokens++;
        if (source === 'recycled') s.recycled++;
        const span = document.createElement('span');
        span.className = 'tok ' + source + (delta.reasoning_content ? ' reasoning' : '');
        span.title = source === 'recycled' ? "recycle head's guess" : 'full pass';
        span.textContent = piece;
        turn.append(span);
        answer += delta.content || '';
      }
      if (chunk.recyclegpt && chunk.recyclegpt.decode_mode) s.end = chunk.recyclegpt;
      if (chunk.choices[0] && chunk.choices[0].finish_reason) ended = chunk.choices[0].finish_reason;
      if (chunk.usage) s.usage = chunk.usage;
      showStats(s);
    }
  } catch (err) {
    if (err.name !== 'AbortError') {
      ended = 'error';
      showError(err.message);
    }
  } finally {
    // What was written stays in the conversation, a stopped answer too; a failed turn is taken back.
    if (ended === 'error' && !answer) {
      conversation.pop();
      turn.remove();
    } else {
      conversation.push({ role: 'assistant', content: answer });
      const meta = document.createElement('span');
      meta.className = 'meta';
      meta.textContent = (request.recycle.mode === 'off' ? 'no recycling' : request.recycle.mode + ' mode') + ' · ' + (ended === 'stopped' ? 'stopped' : ended === 'length' ? 'hit max tokens' : 'done');
      turn.append(meta);
    }
    controller = undefined;
    $('send').disabled = false;
    $('stop').disabled = true;
    loadModels();
  }
}

$('composer').addEventListener('submit', send);
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) send(e);
});
$('stop').addEventListener('click', () => controller && controller.abort());
$('reset').addEventListener('click', () => {
  if (controller) controller.abort();
  messages = [];
  $('chat').replaceChildren();
  $('stats').textContent = '';
});
$('model').addEventListener('change', describeModel);
$('mode').addEventListener('change', showLegend);
$('apiKey').addEventListener('change', loadModels);
loadModels();
</script>
</body>
</html>
`;
