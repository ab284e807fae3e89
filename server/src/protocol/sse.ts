/**
 * Server-sent events as OpenAI streams them: one `data: <json>` line per event, a blank
 * line after each, and `data: [DONE]` at the end. JSON.stringify escapes newlines, so a
 * payload never spans two lines. An error mid-stream is a `data: {"error": …}` event (the
 * SDKs throw it as an APIError), after which the server ends the stream.
 */
import { openAIError } from './errors.ts';

/** Response headers for a stream; `x-accel-buffering: no` keeps nginx ingresses from buffering. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

export const SSE_DONE = 'data: [DONE]\n\n';

/** A comment line: clients ignore it; it keeps idle proxies from closing a slow stream. */
export const SSE_KEEPALIVE = ': keep-alive\n\n';

export function sseData(payload: object): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** The error event for anything thrown after the stream began (its status is already sent). */
export function sseError(err: unknown): string {
  return sseData(openAIError(err).body);
}
