/** POST /v1/chat/completions: the body, parsed strictly into a frozen ChatRequest. */
import { deepFreeze, type FieldReader } from './fields.ts';
import {
  bodyReader,
  finishBody,
  MAX_TOP_LOGPROBS,
  parseGeneration,
  refuse,
  type Refused,
} from './generation.ts';
import { parseMessages, parseTemplateFlags, parseToolChoice, parseTools } from './messages.ts';
import type { ChatRequest, ParseOptions } from './types.ts';

const CHAT_REFUSED: readonly Refused[] = [
  { key: 'audio', why: 'is not supported: this server generates text only.' },
  {
    key: 'modalities',
    accepts: (v) => Array.isArray(v) && v.every((m) => m === 'text'),
    why: "is not supported beyond ['text']: this server generates text only.",
  },
  { key: 'prediction', why: 'is not supported: there are no predicted outputs.' },
  { key: 'web_search_options', why: 'is not supported: this server has no web search.' },
  { key: 'functions', why: "is deprecated and not supported; use 'tools'." },
  { key: 'function_call', why: "is deprecated and not supported; use 'tool_choice'." },
];

/** `logprobs` (boolean) and `top_logprobs` (0..20, only with logprobs: true). */
function parseChatLogprobs(r: FieldReader): { logprobs: boolean; topLogprobs: number } {
  const logprobs = r.booleanOr('logprobs', false);
  const top = r.number('top_logprobs', { integer: true, min: 0, max: MAX_TOP_LOGPROBS });
  if (top !== undefined && !logprobs) {
    r.issues.value(r.param('top_logprobs'), "'logprobs' must be set to true when 'top_logprobs' is used.");
  }
  return { logprobs, topLogprobs: logprobs ? (top ?? 0) : 0 };
}

/** max_completion_tokens wins over the deprecated max_tokens, as in vLLM. */
function parseMaxTokens(r: FieldReader): number | undefined {
  const rule = { integer: true, min: 1 };
  const legacy = r.number('max_tokens', rule);
  return r.number('max_completion_tokens', rule) ?? legacy;
}

/**
 * Parses a chat completion request. Throws InvalidRequestError listing every problem, each
 * with its `param` (such as `messages[1].content`). Fields it does not know are ignored, as
 * the HTTP layer's clients expect of an OpenAI-compatible server, and listed in
 * `ignoredFields`; fields whose effect it cannot honour are refused.
 */
export function parseChatRequest(body: unknown, options: ParseOptions = {}): ChatRequest {
  const r = bodyReader(body);
  const generation = parseGeneration(r, parseMaxTokens(r), options);
  const messages = parseMessages(r);
  const tools = parseTools(r);
  const toolChoice = parseToolChoice(r, tools);
  const flags = parseTemplateFlags(r, messages);
  const logprobs = parseChatLogprobs(r);
  r.boolean('parallel_tool_calls'); // accepted: tool calls are whatever the model writes
  refuse(r, CHAT_REFUSED);
  const ignoredFields = finishBody(r);
  return deepFreeze({
    kind: 'chat',
    ...generation,
    ...logprobs,
    messages,
    tools,
    toolChoice,
    ...flags,
    ignoredFields,
  });
}
