/**
 * One span per inference request, after the OpenTelemetry GenAI semantic conventions:
 * named `{gen_ai.operation.name} {gen_ai.request.model}` (`chat qwen2.5-0.5b`), carrying
 * the request parameters, the response id, finish reasons, token usage and time to first
 * token. The caller's W3C trace context (traceparent) is continued when the incoming
 * headers are passed. When tracing is off this costs a non-recording span and nothing else.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { AutoGLMError } from '../../errors.ts';
import type { GenerationResult } from '../../engine/types.ts';
import { requestPhases } from './series.ts';

export const TRACER_NAME = 'autoglm';
/** gen_ai.provider.name (and the older gen_ai.system) for spans served by AutoGLM. */
export const GEN_AI_PROVIDER = 'autoglm';

export type GenAIOperation = 'chat' | 'text_completion';

export interface RequestSpanInit {
  readonly operation: GenAIOperation;
  /** The model the request asked for. */
  readonly model: string;
  /** The x-request-id. */
  readonly requestId: string;
  readonly maxTokens?: number | undefined;
  readonly temperature?: number | undefined;
  readonly topP?: number | undefined;
  readonly topK?: number | undefined;
  readonly frequencyPenalty?: number | undefined;
  readonly presencePenalty?: number | undefined;
  readonly seed?: number | undefined;
  readonly stopSequences?: readonly string[] | undefined;
  /** The number of choices asked for (`n`). */
  readonly choiceCount?: number | undefined;
  /** Incoming headers: a traceparent there makes this span its child. */
  readonly headers?: IncomingHttpHeaders | undefined;
}

function requestAttributes(init: RequestSpanInit): Attributes {
  const all: Record<string, string | number | readonly string[] | undefined> = {
    'gen_ai.operation.name': init.operation,
    'gen_ai.provider.name': GEN_AI_PROVIDER,
    'gen_ai.system': GEN_AI_PROVIDER,
    'gen_ai.request.model': init.model,
    'gen_ai.request.max_tokens': init.maxTokens,
    'gen_ai.request.temperature': init.temperature,
    'gen_ai.request.top_p': init.topP,
    'gen_ai.request.top_k': init.topK,
    'gen_ai.request.frequency_penalty': init.frequencyPenalty,
    'gen_ai.request.presence_penalty': init.presencePenalty,
    'gen_ai.request.seed': init.seed,
    'gen_ai.request.stop_sequences': init.stopSequences,
    'gen_ai.request.choice.count': init.choiceCount,
    'autoglm.request_id': init.requestId,
  };
  const out: Attributes = {};
  for (const [k, v] of Object.entries(all)) {
    if (v !== undefined) out[k] = typeof v === 'object' ? [...v] : v;
  }
  return out;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class RequestSpan {
  readonly span: Span;
  /** The context holding this span: run downstream work in it with context.with(). */
  readonly context: Context;
  readonly #model: string;
  #firstTokenRecorded = false;
  #ended = false;

  private constructor(span: Span, ctx: Context, model: string) {
    this.span = span;
    this.context = ctx;
    this.#model = model;
  }

  /** Starts the span now, as a child of the caller's trace when `headers` carry one. */
  static start(init: RequestSpanInit): RequestSpan {
    const active = context.active();
    const parent = init.headers === undefined ? active : propagation.extract(active, init.headers);
    const span = trace
      .getTracer(TRACER_NAME)
      .startSpan(
        `${init.operation} ${init.model}`,
        { kind: SpanKind.SERVER, attributes: requestAttributes(init) },
        parent,
      );
    return new RequestSpan(span, trace.setSpan(parent, span), init.model);
  }

  /** For log lines: the trace this request belongs to (all zeros when not sampled). */
  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  get spanId(): string {
    return this.span.spanContext().spanId;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** The first token is out: an event at this moment, and the TTFT attribute. */
  recordFirstToken(secondsSinceArrival: number): void {
    if (this.#ended || this.#firstTokenRecorded) return;
    this.#firstTokenRecorded = true;
    this.span.setAttribute('gen_ai.server.time_to_first_token', secondsSinceArrival);
    this.span.addEvent('gen_ai.first_token', {
      'gen_ai.server.time_to_first_token': secondsSinceArrival,
    });
  }

  /**
   * Ends the span with the response: its id, each choice's finish reason, and token usage
   * summed over the choices. A choice that finished with `error` marks the span failed.
   */
  end(responseId: string, ...results: readonly GenerationResult[]): void {
    if (this.#ended) return;
    const first = results[0];
    if (!this.#firstTokenRecorded && first?.timeToFirstToken !== undefined) {
      this.recordFirstToken(first.timeToFirstToken);
    }
    const tpot = first === undefined ? undefined : requestPhases(first).timePerOutputToken;
    this.span.setAttributes({
      'gen_ai.response.id': responseId,
      'gen_ai.response.model': this.#model,
      'gen_ai.response.finish_reasons': results.map((r) => r.finishReason),
      'gen_ai.usage.input_tokens': first?.promptTokens ?? 0,
      'gen_ai.usage.output_tokens': results.reduce((n, r) => n + r.completionTokens, 0),
      ...(tpot === undefined ? {} : { 'gen_ai.server.time_per_output_token': tpot }),
    });
    if (results.some((r) => r.finishReason === 'error')) {
      this.span.setAttribute('error.type', 'generation_error');
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: 'generation failed' });
    }
    this.#finish();
  }

  /** Ends the span as failed: `error.type` is the catalog code, the exception is recorded. */
  fail(err: unknown, httpStatus?: number): void {
    if (this.#ended) return;
    const code = err instanceof AutoGLMError ? err.code : 'internal';
    this.span.setAttribute('error.type', code);
    if (httpStatus !== undefined) this.span.setAttribute('http.response.status_code', httpStatus);
    if (err instanceof Error) this.span.recordException(err);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
    this.#finish();
  }

  #finish(): void {
    this.#ended = true;
    this.span.end();
  }
}
