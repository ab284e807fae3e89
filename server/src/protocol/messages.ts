/**
 * Chat messages, tools and tool_choice, shared by /v1/chat/completions and /tokenize.
 * Content is text: a string, or an array of `{type: 'text', text}` parts (joined with "\n",
 * as vLLM does for string-content templates). Image, audio and file parts are a clear 400.
 */
import { checkEach, isRecord, readerFor, type FieldReader, type Issues } from './fields.ts';
import { cloneJson } from './generation.ts';
import type { ChatMessage, ChatRole, ToolCall, ToolChoice, ToolDefinition } from './types.ts';

const ROLES: Readonly<Record<string, ChatRole>> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
  tool: 'tool',
};

/** Content part types OpenAI accepts that need a modality this server does not have. */
const NON_TEXT_PARTS = new Set(['image_url', 'input_audio', 'file', 'video_url', 'audio_url']);

function partText(issues: Issues, param: string, item: unknown, role: ChatRole): string | undefined {
  const part = readerFor(issues, param, item);
  if (part === undefined) return undefined;
  const type = part.required('type');
  if (type === 'text') return part.requiredString('text');
  if (type === 'refusal' && role === 'assistant') {
    return part.requiredString('refusal');
  }
  if (typeof type === 'string' && NON_TEXT_PARTS.has(type)) {
    issues.unsupportedValue(
      part.param('type'),
      `'${type}' content parts are not supported: this model reads text only.`,
    );
  } else if (type !== undefined) {
    issues.value(part.param('type'), `expected 'text', but got ${JSON.stringify(type)}.`);
  }
  return undefined;
}

/** The content as one string; undefined when absent (or invalid, with an issue). */
function parseContent(m: FieldReader, role: ChatRole): string | undefined {
  const value = m.raw('content');
  const param = m.param('content');
  if (value === undefined || typeof value === 'string') return value;
  if (!Array.isArray(value)) {
    m.issues.type(param, 'a string or an array of content parts', value);
    return undefined;
  }
  const before = m.issues.list.length;
  const texts = checkEach(value, param, (item, itemParam) => partText(m.issues, itemParam, item, role));
  return m.issues.list.length === before ? texts.join('\n') : undefined;
}

function parseToolCall(issues: Issues, param: string, value: unknown): ToolCall | undefined {
  const call = readerFor(issues, param, value);
  if (call === undefined) return undefined;
  const id = call.requiredString('id');
  const type = call.required('type');
  if (type !== undefined && type !== 'function') {
    issues.unsupportedValue(call.param('type'), `only 'function' tool calls are supported.`);
  }
  const fn = call.object('function');
  if (fn === undefined) {
    issues.missing(call.param('function'));
    return undefined;
  }
  const name = fn.requiredString('name');
  const args = fn.requiredString('arguments');
  if (id === undefined || name === undefined || args === undefined) return undefined;
  return { id, type: 'function', function: { name, arguments: args } };
}

function parseRole(m: FieldReader): ChatRole | undefined {
  const value = m.required('role');
  if (value === undefined) return undefined;
  const role = typeof value === 'string' ? ROLES[value] : undefined;
  if (role !== undefined) return role;
  if (value === 'function') {
    m.issues.unsupportedValue(
      m.param('role'),
      "'function' messages are deprecated and not supported; use 'tool'.",
    );
  } else {
    m.issues.value(
      m.param('role'),
      `expected one of 'system', 'developer', 'user', 'assistant', 'tool', but got ${JSON.stringify(value)}.`,
    );
  }
  return undefined;
}

/** An assistant turn: content may be left out when it calls tools. */
function assistantFields(m: FieldReader, content: string | undefined): Partial<ChatMessage> | undefined {
  const calls = m.array('tool_calls');
  const toolCalls = calls && checkEach(calls, m.param('tool_calls'), (c, p) => parseToolCall(m.issues, p, c));
  m.raw('refusal'); // a past refusal's text; it has no place in the prompt
  if (content === undefined && toolCalls === undefined) {
    m.issues.missing(m.param('content'));
    return undefined;
  }
  return toolCalls === undefined ? {} : { tool_calls: toolCalls };
}

function roleFields(
  m: FieldReader,
  role: ChatRole,
  content: string | undefined,
): Partial<ChatMessage> | undefined {
  if (role === 'assistant') return assistantFields(m, content);
  if (content === undefined && m.raw('content') === undefined) m.issues.missing(m.param('content'));
  if (role !== 'tool') return {};
  const id = m.requiredString('tool_call_id');
  return id === undefined ? undefined : { tool_call_id: id };
}

function parseMessage(issues: Issues, param: string, value: unknown): ChatMessage | undefined {
  const m = readerFor(issues, param, value);
  if (m === undefined) return undefined;
  const role = parseRole(m);
  if (role === undefined) return undefined;
  const content = parseContent(m, role);
  const name = m.string('name');
  const extra = roleFields(m, role, content);
  if (extra === undefined) return undefined;
  return { role, content: content ?? null, ...(name === undefined ? {} : { name }), ...extra };
}

/** `messages`: required, at least one. */
export function parseMessages(r: FieldReader): ChatMessage[] {
  const value = r.required('messages');
  const param = r.param('messages');
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    r.issues.type(param, 'an array of messages', value);
    return [];
  }
  if (value.length === 0) r.issues.value(param, 'at least one message is required.');
  return checkEach(value, param, (item, itemParam) => parseMessage(r.issues, itemParam, item));
}

function parseFunction(t: FieldReader): ToolDefinition['function'] | undefined {
  const fn = t.object('function');
  if (fn === undefined) {
    t.issues.missing(t.param('function'));
    return undefined;
  }
  const name = fn.requiredString('name');
  if (name === '') t.issues.value(fn.param('name'), 'a function name must not be empty.');
  const description = fn.string('description');
  const parameters = fn.raw('parameters');
  if (parameters !== undefined && !isRecord(parameters)) {
    t.issues.type(fn.param('parameters'), 'a JSON Schema object', parameters);
  }
  const strict = fn.boolean('strict');
  if (name === undefined || name === '') return undefined;
  return {
    name,
    ...(description === undefined ? {} : { description }),
    ...(isRecord(parameters) ? { parameters: cloneJson(parameters) } : {}),
    ...(strict === undefined ? {} : { strict }),
  };
}

function parseTool(issues: Issues, param: string, value: unknown): ToolDefinition | undefined {
  const t = readerFor(issues, param, value);
  if (t === undefined) return undefined;
  const type = t.required('type');
  if (type !== undefined && type !== 'function') {
    issues.unsupportedValue(
      t.param('type'),
      `only 'function' tools are supported, but got ${JSON.stringify(type)}.`,
    );
  }
  const fn = parseFunction(t);
  return fn === undefined ? undefined : { type: 'function', function: fn };
}

/** `tools`: passed to the chat template as given (after checking). */
export function parseTools(r: FieldReader): ToolDefinition[] | undefined {
  const list = r.array('tools');
  if (list === undefined) return undefined;
  return checkEach(list, r.param('tools'), (item, itemParam) => parseTool(r.issues, itemParam, item));
}

function namedChoice(
  r: FieldReader,
  value: unknown,
  tools: readonly ToolDefinition[],
): ToolChoice | undefined {
  const param = r.param('tool_choice');
  const choice = readerFor(r.issues, param, value);
  const type = choice?.required('type');
  if (choice === undefined || type === undefined) return undefined;
  if (type !== 'function') {
    r.issues.unsupportedValue(
      choice.param('type'),
      `only 'function' is supported, but got ${JSON.stringify(type)}.`,
    );
    return undefined;
  }
  const fn = choice.object('function');
  if (fn === undefined) r.issues.missing(choice.param('function'));
  const name = fn?.requiredString('name');
  if (name === undefined) return undefined;
  if (!tools.some((tool) => tool.function.name === name)) {
    r.issues.value(`${param}.function.name`, `no tool named '${name}' is in 'tools'.`);
  }
  return { type: 'function', function: { name } };
}

/** `tool_choice`: 'none' | 'auto' | 'required' | a named function. Passed on, not enforced. */
export function parseToolChoice(
  r: FieldReader,
  tools: readonly ToolDefinition[] | undefined,
): ToolChoice | undefined {
  const value = r.raw('tool_choice');
  const param = r.param('tool_choice');
  if (value === undefined) return undefined;
  if (value === 'none' || value === 'auto') return value;
  if (typeof value === 'string' && value !== 'required') {
    r.issues.value(param, `expected 'none', 'auto', 'required' or a named function, but got '${value}'.`);
    return undefined;
  }
  if (tools === undefined || tools.length === 0) {
    r.issues.value(param, "a tool can only be required when 'tools' are given.");
    return undefined;
  }
  return value === 'required' ? value : namedChoice(r, value, tools);
}

export interface TemplateFlags {
  readonly addGenerationPrompt: boolean;
  readonly continueFinalMessage: boolean;
  readonly addSpecialTokens: boolean;
}

/** vLLM's template controls: add_generation_prompt, continue_final_message, add_special_tokens. */
export function parseTemplateFlags(r: FieldReader, messages: readonly ChatMessage[]): TemplateFlags {
  const continueFinalMessage = r.booleanOr('continue_final_message', false);
  const add = r.boolean('add_generation_prompt');
  if (continueFinalMessage && add === true) {
    r.issues.value(
      r.param('add_generation_prompt'),
      "cannot be true together with 'continue_final_message'.",
    );
  }
  const last = messages.at(-1);
  if (continueFinalMessage && last !== undefined && last.role !== 'assistant') {
    r.issues.value(
      r.param('continue_final_message'),
      'the last message must be an assistant message to continue it.',
    );
  }
  return {
    addGenerationPrompt: add ?? !continueFinalMessage,
    continueFinalMessage,
    addSpecialTokens: r.booleanOr('add_special_tokens', false),
  };
}
