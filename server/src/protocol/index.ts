/** The OpenAI wire layer: request parsing, response builders, SSE and errors. No engine imports. */
export * from './types.ts';
export { ISSUE_CODES, type IssueCode, type RequestIssue } from './fields.ts';
export { MAX_N, MAX_STOP_SEQUENCES, MAX_TOP_LOGPROBS } from './generation.ts';
export { parseChatRequest } from './chat-request.ts';
export { DEFAULT_COMPLETION_MAX_TOKENS, parseCompletionRequest } from './completion-request.ts';
export * from './tokenize.ts';
export * from './errors.ts';
export * from './chat-response.ts';
export * from './completion-response.ts';
export { MIN_LOGPROB, responseMeta, type WireUsage } from './wire.ts';
export * from './sse.ts';
