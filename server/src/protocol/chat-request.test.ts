import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChatRequest } from './chat-request.ts';

const USER = { role: 'user', content: 'Hello' };

function isDeepFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

describe('parseChatRequest accepts', () => {
  it('a minimal request, with OpenAI defaults, deeply frozen', () => {
    const req = parseChatRequest({ model: 'm', messages: [USER] });
    assert.deepEqual(req, {
      kind: 'chat',
      model: 'm',
      sampling: {
        temperature: 1,
        topK: 0,
        topP: 1,
        minP: 0,
        presencePenalty: 0,
        frequencyPenalty: 0,
        repetitionPenalty: 1,
      },
      stopping: { maxTokens: undefined, stopStrings: [], stopTokenIds: [], ignoreEos: false },
      logitBias: [],
      n: 1,
      stream: false,
      includeUsage: false,
      user: undefined,
      logprobs: false,
      topLogprobs: 0,
      messages: [{ role: 'user', content: 'Hello' }],
      tools: undefined,
      toolChoice: undefined,
      addGenerationPrompt: true,
      continueFinalMessage: false,
      addSpecialTokens: false,
      ignoredFields: [],
    });
    assert.ok(isDeepFrozen(req));
  });

  it('every sampling and stopping field, mapped to the engine names', () => {
    const req = parseChatRequest({
      messages: [USER],
      temperature: 0.7,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      presence_penalty: -2,
      frequency_penalty: 2,
      repetition_penalty: 1.1,
      seed: -7,
      max_tokens: 100,
      max_completion_tokens: 50,
      stop: ['\n\n', '', 'END'],
      stop_token_ids: [2, 3],
      ignore_eos: true,
      n: 16,
      logit_bias: { '50256': -100, '7': 2.5 },
      user: 'u-1',
    });
    assert.equal(req.model, undefined);
    assert.deepEqual(req.sampling, {
      temperature: 0.7,
      topK: 40,
      topP: 0.9,
      minP: 0.05,
      presencePenalty: -2,
      frequencyPenalty: 2,
      repetitionPenalty: 1.1,
      seed: -7,
    });
    // max_completion_tokens wins; the empty stop string is dropped.
    assert.deepEqual(req.stopping, {
      maxTokens: 50,
      stopStrings: ['\n\n', 'END'],
      stopTokenIds: [2, 3],
      ignoreEos: true,
    });
    assert.deepEqual(req.logitBias, [
      { tokenId: 7, bias: 2.5 },
      { tokenId: 50256, bias: -100 },
    ]);
    assert.equal(req.n, 16);
    assert.equal(req.user, 'u-1');
  });

  it('max_tokens alone, and a single stop string', () => {
    const req = parseChatRequest({ messages: [USER], max_tokens: 8, stop: 'STOP' });
    assert.equal(req.stopping.maxTokens, 8);
    assert.deepEqual(req.stopping.stopStrings, ['STOP']);
  });

  it('top_k -1 and 0 as disabled, top_p 0 as greedy', () => {
    assert.equal(parseChatRequest({ messages: [USER], top_k: -1 }).sampling.topK, 0);
    assert.equal(parseChatRequest({ messages: [USER], top_k: 0 }).sampling.topK, 0);
    const greedy = parseChatRequest({ messages: [USER], top_p: 0, temperature: 1.5 }).sampling;
    assert.equal(greedy.temperature, 0);
    assert.equal(greedy.topP, 1);
  });

  it('null for any optional field, as the SDKs send it', () => {
    const req = parseChatRequest({
      messages: [USER],
      temperature: null,
      top_p: null,
      max_tokens: null,
      stop: null,
      seed: null,
      n: null,
      stream: null,
      stream_options: null,
      logprobs: null,
      top_logprobs: null,
      response_format: null,
      tools: null,
      tool_choice: null,
      logit_bias: null,
      user: null,
    });
    assert.equal(req.sampling.temperature, 1);
    assert.equal(req.n, 1);
    assert.equal(req.tools, undefined);
    assert.deepEqual(req.ignoredFields, []);
  });

  it('streaming with usage, logprobs with top_logprobs, response_format text', () => {
    const req = parseChatRequest({
      messages: [USER],
      stream: true,
      stream_options: { include_usage: true, include_obfuscation: false },
      logprobs: true,
      top_logprobs: 20,
      response_format: { type: 'text' },
    });
    assert.equal(req.stream, true);
    assert.equal(req.includeUsage, true);
    assert.equal(req.logprobs, true);
    assert.equal(req.topLogprobs, 20);
    assert.equal(parseChatRequest({ messages: [USER], logprobs: true }).topLogprobs, 0);
  });

  it('every message form: roles, text parts, tool calls and results', () => {
    const call = {
      id: 'call_1',
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
    };
    const req = parseChatRequest({
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'system', content: [{ type: 'text', text: 'Rules.' }] },
        {
          role: 'user',
          name: 'ann',
          content: [
            { type: 'text', text: 'Line one' },
            { type: 'text', text: 'Line two', cache_control: { type: 'ephemeral' } },
          ],
        },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: '12°C' }] },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }], refusal: 'No.' },
        USER,
      ],
    });
    assert.deepEqual(req.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'system', content: 'Rules.' },
      { role: 'user', content: 'Line one\nLine two', name: 'ann' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', content: '12°C', tool_call_id: 'call_1' },
      { role: 'assistant', content: 'No.' },
      { role: 'user', content: 'Hello' },
    ]);
  });

  it('tools and every tool_choice form, passed through', () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const tools = [
      {
        type: 'function',
        function: { name: 'get_weather', description: 'Weather', parameters, strict: true },
      },
      { type: 'function', function: { name: 'now' } },
    ];
    for (const choice of ['none', 'auto', 'required', { type: 'function', function: { name: 'now' } }]) {
      const req = parseChatRequest({
        messages: [USER],
        tools,
        tool_choice: choice,
        parallel_tool_calls: false,
      });
      assert.deepEqual(req.tools, tools);
      assert.deepEqual(req.toolChoice, choice);
    }
    // The schema is a copy: freezing the request leaves the caller's body alone.
    assert.equal(Object.isFrozen(parameters), false);
    assert.equal(parseChatRequest({ messages: [USER], tool_choice: 'none' }).toolChoice, 'none');
  });

  it('continue_final_message, which turns the generation prompt off by default', () => {
    const body = {
      messages: [USER, { role: 'assistant', content: 'Once upon' }],
      continue_final_message: true,
      add_special_tokens: true,
    };
    const req = parseChatRequest(body);
    assert.equal(req.continueFinalMessage, true);
    assert.equal(req.addGenerationPrompt, false);
    assert.equal(req.addSpecialTokens, true);
    assert.equal(
      parseChatRequest({ messages: [USER], add_generation_prompt: false }).addGenerationPrompt,
      false,
    );
  });

  it('unknown fields, which are ignored and listed', () => {
    const req = parseChatRequest({
      messages: [USER],
      store: true,
      metadata: { a: 'b' },
      reasoning_effort: 'low',
      chat_template_kwargs: {},
    });
    assert.deepEqual(req.ignoredFields, ['store', 'metadata', 'reasoning_effort', 'chat_template_kwargs']);
  });

  it("refused parameters at their accepted values (modalities ['text'], echo-like defaults)", () => {
    const req = parseChatRequest({
      messages: [USER],
      modalities: ['text'],
      use_beam_search: false,
      min_tokens: 0,
      include_stop_str_in_output: false,
    });
    assert.deepEqual(req.ignoredFields, []);
  });
});
