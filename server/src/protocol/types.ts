/**
 * The normalized requests that the parsers produce, and the outputs that the response
 * builders take. They are protocol/'s own: field names mirror the engine's options
 * (SamplingOptions, StoppingOptions) so that the HTTP layer maps them field for field, but
 * nothing here depends on the engine.
 */

/** Mirrors the engine's SamplingOptions, with OpenAI's defaults filled in. */
export interface SamplingParams {
  /** 0 is greedy. Default 1. */
  readonly temperature: number;
  /** 0 disables (the wire's -1 and 0 both read as 0). Default 0. */
  readonly topK: number;
  /** In (0, 1]; the wire's top_p 0 reads as greedy (temperature 0, topP 1). Default 1. */
  readonly topP: number;
  /** 0 disables. Default 0. */
  readonly minP: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  /** 1 disables. */
  readonly repetitionPenalty: number;
  readonly seed?: number;
}

/** Mirrors the engine's StoppingOptions. */
export interface StopParams {
  /**
   * The request's max_tokens (chat: max_completion_tokens wins over max_tokens), or undefined
   * for "the rest of the context". contextLengthCheck() turns it into the engine's number.
   */
  readonly maxTokens: number | undefined;
  /** Up to 16 non-empty strings. */
  readonly stopStrings: readonly string[];
  readonly stopTokenIds: readonly number[];
  readonly ignoreEos: boolean;
}

/** One logit_bias entry: add `bias` (-100..100) to the logit of `tokenId` before sampling. */
export interface LogitBias {
  readonly tokenId: number;
  readonly bias: number;
}

/** What chat and completion requests share. */
export interface GenerationParams {
  /** Undefined when the client left it out: the HTTP layer serves its default model then. */
  readonly model: string | undefined;
  readonly sampling: SamplingParams;
  readonly stopping: StopParams;
  /** Empty when none was given. The engine must apply it or the HTTP layer must reject it. */
  readonly logitBias: readonly LogitBias[];
  /** Choices per prompt, 1..16. */
  readonly n: number;
  readonly stream: boolean;
  /** stream_options.include_usage: a last chunk with `choices: []` and the usage. */
  readonly includeUsage: boolean;
  /** Return the chosen tokens' log-probabilities. */
  readonly logprobs: boolean;
  /** Alternatives per position, 0..20 (0 when logprobs is false). */
  readonly topLogprobs: number;
  readonly user: string | undefined;
  /** Top-level fields the parser did not recognize; they had no effect. For a log line. */
  readonly ignoredFields: readonly string[];
}

/** `developer` messages are normalized to `system`, which every chat template knows. */
export const CHAT_ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type ChatRole = (typeof CHAT_ROLES)[number];

export interface ToolCall {
  readonly id: string;
  readonly type: 'function';
  readonly function: { readonly name: string; readonly arguments: string };
}

/**
 * One turn, shaped as chat templates read it (snake_case tool fields, as in transformers).
 * Text content parts are joined with "\n". A type alias, not an interface, so that it is
 * assignable to index-signature types such as the template's message type.
 */
export type ChatMessage = {
  readonly role: ChatRole;
  readonly content: string | null;
  readonly name?: string;
  readonly tool_calls?: readonly ToolCall[];
  readonly tool_call_id?: string;
};

/** A function tool, in OpenAI's wire shape: the shape chat templates expect. */
export type ToolDefinition = {
  readonly type: 'function';
  readonly function: {
    readonly name: string;
    readonly description?: string;
    readonly parameters?: Readonly<Record<string, unknown>>;
    readonly strict?: boolean;
  };
};

export type ToolChoice =
  'none' | 'auto' | 'required' | { readonly type: 'function'; readonly function: { readonly name: string } };

export interface ChatRequest extends GenerationParams {
  readonly kind: 'chat';
  readonly messages: readonly ChatMessage[];
  /** Undefined when none were given; passed to the chat template. */
  readonly tools: readonly ToolDefinition[] | undefined;
  /** Undefined when not given; not enforced (no constrained decoding), only passed on. */
  readonly toolChoice: ToolChoice | undefined;
  /** Default: true, unless continueFinalMessage. */
  readonly addGenerationPrompt: boolean;
  /** Render the last (assistant) message open, so the model continues it. */
  readonly continueFinalMessage: boolean;
  /** Add the tokenizer's special tokens (BOS) around the rendered template. Default false. */
  readonly addSpecialTokens: boolean;
}

/** A prompt as text (to tokenize) or as token ids (used as given). */
export type Prompt =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'tokens'; readonly tokenIds: readonly number[] };

export interface CompletionRequest extends GenerationParams {
  readonly kind: 'completion';
  /** One or more; each gets `n` choices, with index `promptIndex * n + sample`. */
  readonly prompts: readonly Prompt[];
  /** Add the tokenizer's special tokens (BOS) to text prompts. Default true. */
  readonly addSpecialTokens: boolean;
}

/** POST /tokenize, in either of vLLM's two forms. */
export type TokenizeRequest =
  | {
      readonly kind: 'prompt';
      readonly model: string | undefined;
      readonly prompt: string;
      /** Default true. */
      readonly addSpecialTokens: boolean;
      readonly returnTokenStrs: boolean;
    }
  | {
      readonly kind: 'chat';
      readonly model: string | undefined;
      readonly messages: readonly ChatMessage[];
      readonly tools: readonly ToolDefinition[] | undefined;
      readonly addGenerationPrompt: boolean;
      readonly continueFinalMessage: boolean;
      /** Default false: the template already has them. */
      readonly addSpecialTokens: boolean;
      readonly returnTokenStrs: boolean;
    };

export interface DetokenizeRequest {
  readonly model: string | undefined;
  readonly tokens: readonly number[];
}

/** Bounds that depend on the served model; given, they are checked with the rest. */
export interface ParseOptions {
  /** Token ids (prompts, stop_token_ids, logit_bias, detokenize) must be below it. */
  readonly vocabSize?: number;
}

// ---- what the response builders take ----

export type ChatFinishReason = 'stop' | 'length' | 'tool_calls';
export type CompletionFinishReason = 'stop' | 'length';

/** A token as the client sees it. `bytes` defaults to the UTF-8 of `token`. */
export interface TokenText {
  readonly token: string;
  readonly logprob: number;
  /**
   * The token's raw bytes; give them for byte-level tokens whose text alone is not valid
   * UTF-8 (the text then holds U+FFFD). Null when the token has no byte form.
   */
  readonly bytes?: readonly number[] | null;
}

/** One generated position: the chosen token and the most likely alternatives, best first. */
export interface PositionLogprobs {
  readonly chosen: TokenText;
  readonly top: readonly TokenText[];
}

export interface UsageCounts {
  /** Counted once per prompt, however many choices (n) it has. */
  readonly promptTokens: number;
  /** Summed over all choices. */
  readonly completionTokens: number;
  /** Prompt tokens served from a prefix cache; reported as prompt_tokens_details.cached_tokens. */
  readonly cachedTokens?: number;
}

/** What every object of one response shares. */
export interface ResponseMeta {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
  readonly systemFingerprint?: string;
}
