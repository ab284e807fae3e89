/**
 * `chat.completion` and `chat.completion.chunk` objects, as api.openai.com sends them.
 *
 * A stream, per choice index: chatRoleChunk (delta `{role: 'assistant', content: '', refusal:
 * null}`), then chatDeltaChunk per piece of text, then chatFinishChunk (empty delta, the
 * finish_reason). With stream_options.include_usage every one of those has `usage: null`,
 * and chatUsageChunk (`choices: []`, the usage) comes last, before `data: [DONE]`.
 */
import type {
  ChatFinishReason,
  PositionLogprobs,
  ResponseMeta,
  TokenText,
  ToolCall,
  UsageCounts,
} from './types.ts';
import { metaFields, tokenBytes, wireLogprob, wireUsage, type WireUsage } from './wire.ts';

export interface WireTopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface WireTokenLogprob extends WireTopLogprob {
  top_logprobs: WireTopLogprob[];
}

export interface WireChatLogprobs {
  content: WireTokenLogprob[] | null;
  refusal: WireTokenLogprob[] | null;
}

export interface WireToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface WireChatMessage {
  role: 'assistant';
  content: string | null;
  refusal: null;
  tool_calls?: WireToolCall[];
}

export interface WireChatChoice {
  index: number;
  message: WireChatMessage;
  logprobs: WireChatLogprobs | null;
  finish_reason: ChatFinishReason;
}

export interface WireChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint?: string;
  choices: WireChatChoice[];
  usage: WireUsage;
}

export interface WireChatDelta {
  role?: 'assistant';
  content?: string;
  refusal?: null;
}

export interface WireChatChunkChoice {
  index: number;
  delta: WireChatDelta;
  logprobs: WireChatLogprobs | null;
  finish_reason: ChatFinishReason | null;
}

export interface WireChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  system_fingerprint?: string;
  choices: WireChatChunkChoice[];
  /** Present (null, or the totals on the last chunk) only with stream_options.include_usage. */
  usage?: WireUsage | null;
}

/** One finished choice, as the HTTP layer assembles it from the engine's output. */
export interface ChatChoiceOutput {
  /** Null when the turn is only tool calls. */
  readonly text: string | null;
  readonly finishReason: ChatFinishReason;
  /** Per generated token; give it when the request asked for logprobs. */
  readonly logprobs?: readonly PositionLogprobs[];
  readonly toolCalls?: readonly ToolCall[];
}

function topLogprob(token: TokenText): WireTopLogprob {
  return { token: token.token, logprob: wireLogprob(token.logprob), bytes: tokenBytes(token) };
}

/** Chat's logprobs format: `{content: [{token, logprob, bytes, top_logprobs}], refusal: null}`. */
export function chatLogprobs(positions: readonly PositionLogprobs[]): WireChatLogprobs {
  return {
    content: positions.map((p) => ({ ...topLogprob(p.chosen), top_logprobs: p.top.map(topLogprob) })),
    refusal: null,
  };
}

function wireToolCall(call: ToolCall): WireToolCall {
  return {
    id: call.id,
    type: 'function',
    function: { name: call.function.name, arguments: call.function.arguments },
  };
}

function chatChoice(choice: ChatChoiceOutput, index: number): WireChatChoice {
  const message: WireChatMessage = { role: 'assistant', content: choice.text, refusal: null };
  if (choice.toolCalls !== undefined && choice.toolCalls.length > 0) {
    message.tool_calls = choice.toolCalls.map(wireToolCall);
  }
  const logprobs = choice.logprobs === undefined ? null : chatLogprobs(choice.logprobs);
  return { index, message, logprobs, finish_reason: choice.finishReason };
}

/** A whole `chat.completion`; choice i gets index i. */
export function chatCompletion(
  meta: ResponseMeta,
  choices: readonly ChatChoiceOutput[],
  usage: UsageCounts,
): WireChatCompletion {
  return {
    ...metaFields(meta, 'chat.completion'),
    choices: choices.map(chatChoice),
    usage: wireUsage(usage),
  };
}

/** What every chunk of one stream shares. */
export interface ChatStreamMeta extends ResponseMeta {
  readonly includeUsage: boolean;
}

/** A chunk with the given choices; `usage: null` when the stream reports usage at the end. */
export function chatChunk(meta: ChatStreamMeta, choices: WireChatChunkChoice[]): WireChatCompletionChunk {
  const chunk: WireChatCompletionChunk = { ...metaFields(meta, 'chat.completion.chunk'), choices };
  if (meta.includeUsage) chunk.usage = null;
  return chunk;
}

/** The first chunk of a choice: the role, and empty content. */
export function chatRoleChunk(meta: ChatStreamMeta, index: number): WireChatCompletionChunk {
  const delta: WireChatDelta = { role: 'assistant', content: '', refusal: null };
  return chatChunk(meta, [{ index, delta, logprobs: null, finish_reason: null }]);
}

export interface ChatDelta {
  readonly text: string;
  /** The tokens behind this text, when the request asked for logprobs. */
  readonly logprobs?: readonly PositionLogprobs[];
}

/** A piece of a choice's text (and, with logprobs, the tokens behind it). */
export function chatDeltaChunk(
  meta: ChatStreamMeta,
  index: number,
  part: ChatDelta,
): WireChatCompletionChunk {
  const delta: WireChatDelta = { content: part.text };
  const logprobs = part.logprobs === undefined ? null : chatLogprobs(part.logprobs);
  return chatChunk(meta, [{ index, delta, logprobs, finish_reason: null }]);
}

/** The last chunk of a choice: an empty delta and why it ended. */
export function chatFinishChunk(
  meta: ChatStreamMeta,
  index: number,
  finishReason: ChatFinishReason,
): WireChatCompletionChunk {
  return chatChunk(meta, [{ index, delta: {}, logprobs: null, finish_reason: finishReason }]);
}

/** The extra last chunk of an include_usage stream: no choices, the request's usage. */
export function chatUsageChunk(meta: ChatStreamMeta, usage: UsageCounts): WireChatCompletionChunk {
  return { ...metaFields(meta, 'chat.completion.chunk'), choices: [], usage: wireUsage(usage) };
}
