/**
 * vLLM's POST /tokenize and POST /detokenize.
 *   /tokenize   {model?, prompt, add_special_tokens? = true, return_token_strs?}
 *            or {model?, messages, add_generation_prompt? = true, continue_final_message?,
 *                add_special_tokens? = false, tools?, return_token_strs?}
 *            → {count, max_model_len, tokens, token_strs?}
 *   /detokenize {model?, tokens} → {prompt}
 */
import { deepFreeze, type FieldReader } from './fields.ts';
import { bodyReader, checkTokenIds, finishBody } from './generation.ts';
import { parseMessages, parseTemplateFlags, parseTools } from './messages.ts';
import type { DetokenizeRequest, ParseOptions, TokenizeRequest } from './types.ts';

function chatForm(r: FieldReader, model: string | undefined, returnTokenStrs: boolean): TokenizeRequest {
  const messages = parseMessages(r);
  const tools = parseTools(r);
  const flags = parseTemplateFlags(r, messages);
  return { kind: 'chat', model, messages, tools, ...flags, returnTokenStrs };
}

function promptForm(r: FieldReader, model: string | undefined, returnTokenStrs: boolean): TokenizeRequest {
  const prompt = r.requiredString('prompt') ?? '';
  const addSpecialTokens = r.booleanOr('add_special_tokens', true);
  return { kind: 'prompt', model, prompt, addSpecialTokens, returnTokenStrs };
}

/** Parses a /tokenize body; `messages` selects the chat form, otherwise `prompt` is required. */
export function parseTokenizeRequest(body: unknown): TokenizeRequest {
  const r = bodyReader(body);
  const model = r.string('model');
  const returnTokenStrs = r.booleanOr('return_token_strs', false);
  const chat = r.present('messages');
  if (chat && r.present('prompt')) {
    r.issues.value(r.param('prompt'), "give either 'prompt' or 'messages', not both.");
  }
  const request = chat ? chatForm(r, model, returnTokenStrs) : promptForm(r, model, returnTokenStrs);
  finishBody(r);
  return deepFreeze(request);
}

/** Parses a /detokenize body. */
export function parseDetokenizeRequest(body: unknown, options: ParseOptions = {}): DetokenizeRequest {
  const r = bodyReader(body);
  const model = r.string('model');
  const value = r.required('tokens');
  const tokens =
    value === undefined ? [] : (checkTokenIds(r.issues, r.param('tokens'), value, options) ?? []);
  finishBody(r);
  return deepFreeze({ model, tokens });
}

export interface TokenizeResponseBody {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs?: string[];
}

export interface DetokenizeResponseBody {
  prompt: string;
}

/** The /tokenize reply; give `tokenStrs` when the request asked for return_token_strs. */
export function tokenizeResponse(
  tokens: readonly number[],
  maxModelLen: number,
  tokenStrs?: readonly string[],
): TokenizeResponseBody {
  const reply: TokenizeResponseBody = {
    count: tokens.length,
    max_model_len: maxModelLen,
    tokens: [...tokens],
  };
  if (tokenStrs !== undefined) reply.token_strs = [...tokenStrs];
  return reply;
}

export function detokenizeResponse(text: string): DetokenizeResponseBody {
  return { prompt: text };
}
