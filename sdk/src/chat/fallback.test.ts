import { describe, expect, it } from 'vitest';
import { FALLBACK_RENDERERS, detectFallback } from './fallback.js';
import type { TemplateMessage } from './messages.js';

const messages: TemplateMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Bye' },
];

// Excerpts of the real templates as they appear in GGUF metadata.
const TEMPLATES = {
  chatml: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
  llama3: "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}",
  llama2: "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}",
  zephyr: "{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + eos_token }}{% endif %}",
  phi3: "{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}",
  gemma: "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}",
};

const render = (name: keyof typeof FALLBACK_RENDERERS) => FALLBACK_RENDERERS[name](messages);

describe('fallback chat formats', () => {
  it('recognise the well-known formats by their markers, anything else as plain', () => {
    for (const [name, template] of Object.entries(TEMPLATES)) expect(detectFallback((m) => template.includes(m))).toBe(name);
    expect(detectFallback(() => false)).toBe('plain');
    expect(detectFallback((m) => '{{ messages }}'.includes(m))).toBe('plain');
  });

  it('render each format with the assistant turn open at the end', () => {
    expect(render('chatml').text).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(render('llama3').text).toBe(
      '<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(render('llama2').text).toBe('[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]');
    expect(render('zephyr').text).toBe('<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nBye</s>\n<|assistant|>\n');
    expect(render('phi3').text).toBe('<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n');
    expect(render('gemma').text).toBe(
      '<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n',
    );
  });

  it('fall back to plain User:/Assistant: turns that stop at the next user turn', () => {
    expect(render('plain')).toEqual({ text: 'Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Bye\nAssistant:', stop: ['\nUser:'] });
  });

  it("keep the whitespace an answer starts with after plain's Assistant:, so that a reply sent back extends the prompt it answered", () => {
    const asked = FALLBACK_RENDERERS.plain([{ role: 'user', content: 'Hi' }]).text;
    for (const reply of ['\n\nHello.', ' Hello.']) {
      const next = FALLBACK_RENDERERS.plain([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: reply }, { role: 'user', content: 'Bye' }]).text;
      expect(next.startsWith(asked + reply)).toBe(true);
    }
  });
});
