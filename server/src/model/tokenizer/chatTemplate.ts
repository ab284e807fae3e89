/**
 * Chat templates: the Jinja template a model ships in tokenizer_config.json, rendered with
 * @huggingface/jinja and the variables transformers passes (messages, add_generation_prompt,
 * tools, documents, and the special tokens by name).
 */
import { Template } from '@huggingface/jinja';
import { AutoGLMError } from '../../errors.ts';

/** One conversation turn. Fields beyond role and content (tool_calls, name, …) reach the template as given. */
export interface ChatMessage {
  readonly role: string;
  readonly content: string | null;
  readonly [field: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the opening of an assistant turn, so the model answers. */
  readonly addGenerationPrompt?: boolean;
  /** Tool definitions (JSON Schema function specs) for templates that describe tools. */
  readonly tools?: readonly unknown[];
  /** More template variables, as `apply_chat_template(**kwargs)` takes them. */
  readonly variables?: Readonly<Record<string, unknown>>;
}

/** The special-token names transformers exposes to templates. */
export const TEMPLATE_TOKEN_NAMES = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;

/** A token in tokenizer_config.json: a string, or an AddedToken object with its content. */
export function configToken(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (
    typeof value === 'object' &&
    value !== null &&
    'content' in value &&
    typeof value.content === 'string'
  ) {
    return value.content;
  }
  return undefined;
}

function namedTemplates(raw: unknown): ReadonlyMap<string, string> {
  if (typeof raw === 'string') return new Map([['default', raw]]);
  const out = new Map<string, string>();
  if (!Array.isArray(raw)) return out;
  for (const entry of raw as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { name, template } = entry as { name?: unknown; template?: unknown };
    if (typeof name === 'string' && typeof template === 'string') out.set(name, template);
  }
  return out;
}

export class ChatTemplate {
  readonly #templates: ReadonlyMap<string, string>;
  readonly #tokens: Readonly<Record<string, string>>;
  readonly #compiled = new Map<string, Template>();

  /** `config` is tokenizer_config.json as parsed. */
  constructor(config: Readonly<Record<string, unknown>>) {
    this.#templates = namedTemplates(config['chat_template']);
    const tokens: Record<string, string> = {};
    for (const name of TEMPLATE_TOKEN_NAMES) {
      const token = configToken(config[name]);
      if (token !== undefined) tokens[name] = token;
    }
    this.#tokens = tokens;
  }

  get available(): boolean {
    return this.#templates.size > 0;
  }

  /** The template source used for these options: "tool_use" when tools are given and it exists. */
  source(options: ChatTemplateOptions = {}): string {
    const wanted = options.tools !== undefined && this.#templates.has('tool_use') ? 'tool_use' : 'default';
    const source =
      this.#templates.get(wanted) ??
      (this.#templates.size === 1 ? [...this.#templates.values()][0] : undefined);
    if (source === undefined) {
      throw new AutoGLMError('unsupported_tokenizer', 'the model has no chat template', {
        hint: 'use the completions endpoint, or serve a model whose tokenizer_config.json has chat_template',
      });
    }
    return source;
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const template = this.#compile(this.source(options));
    try {
      return template.render({
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        tools: options.tools ?? null,
        documents: null,
        ...this.#tokens,
        ...options.variables,
      });
    } catch (err) {
      // Templates reject conversations they cannot express (raise_exception): the request's fault.
      const reason = err instanceof Error ? err.message : String(err);
      throw new AutoGLMError('invalid_argument', `the chat template rejected the messages: ${reason}`, {
        cause: err,
      });
    }
  }

  #compile(source: string): Template {
    let template = this.#compiled.get(source);
    if (template === undefined) {
      try {
        template = new Template(source);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new AutoGLMError(
          'unsupported_tokenizer',
          `the model's chat template does not parse: ${reason}`,
          {
            cause: err,
          },
        );
      }
      this.#compiled.set(source, template);
    }
    return template;
  }
}
