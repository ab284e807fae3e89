/**
 * One error type for the whole data plane. Each code is stable: it is what clients,
 * logs and operator conditions key on, so codes are never renamed, only added.
 */
export const ERROR_CATALOG = {
  // model files and builds
  gguf_truncated: { http: 422, reason: 'ModelCorrupt' },
  gguf_corrupt: { http: 422, reason: 'ModelCorrupt' },
  unsupported_architecture: { http: 422, reason: 'ModelUnsupported' },
  unsupported_quantization: { http: 422, reason: 'ModelUnsupported' },
  unsupported_tokenizer: { http: 422, reason: 'ModelUnsupported' },
  checksum_mismatch: { http: 422, reason: 'ModelCorrupt' },
  model_not_found: { http: 404, reason: 'ModelNotFound' },
  model_source_invalid: { http: 400, reason: 'ModelSourceInvalid' },
  download_failed: { http: 502, reason: 'ModelDownloadFailed' },
  model_access_denied: { http: 502, reason: 'ModelAccessDenied' },
  pip_missing: { http: 500, reason: 'ModelDownloadFailed' },
  disk_full: { http: 507, reason: 'InsufficientStorage' },
  invalid_argument: { http: 400, reason: 'InvalidSpec' },
  internal: { http: 500, reason: 'InternalError' },
  // the OpenAI-compatible API (server/src/protocol maps these to OpenAI's error bodies)
  invalid_request: { http: 400, reason: 'InvalidRequest' },
  unsupported_parameter: { http: 400, reason: 'UnsupportedParameter' },
  context_length_exceeded: { http: 400, reason: 'ContextLengthExceeded' },
  unauthorized: { http: 401, reason: 'Unauthorized' },
  not_found: { http: 404, reason: 'NotFound' },
  payload_too_large: { http: 413, reason: 'PayloadTooLarge' },
  queue_full: { http: 429, reason: 'QueueFull' },
  unavailable: { http: 503, reason: 'Unavailable' },
} as const satisfies Record<string, { http: number; reason: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export class AutoGLMError extends Error {
  readonly code: ErrorCode;
  /** What the user can do about it, shown after the message. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AutoGLMError';
    this.code = code;
    this.hint = options?.hint;
  }

  get httpStatus(): number {
    return ERROR_CATALOG[this.code].http;
  }

  get reason(): string {
    return ERROR_CATALOG[this.code].reason;
  }

  /** One line for a terminal: the problem, then what to do. */
  toUserMessage(): string {
    return this.hint === undefined ? this.message : `${this.message}\n  ${this.hint}`;
  }
}

/** Maps a Node system error about storage to our catalog, so "no space" reads as such. */
export function asStorageError(err: unknown, path: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new AutoGLMError('disk_full', `no space left on the device while writing ${path}`, {
      hint: 'free some disk space or point AUTOGLM_HOME at a larger volume, then run the command again',
      cause: err,
    });
  }
  return err;
}
