/** What a pull hands back: a GGUF file to build from, or a folder that already holds an ONNX model. */
export type PullResult =
  | { readonly kind: 'gguf'; readonly path: string }
  | {
      readonly kind: 'onnx';
      readonly dir: string;
      /** The graph to load, relative to `dir`, e.g. 'onnx/model.onnx' (its external data sits beside it). */
      readonly modelFile: string;
    };

/** Bytes moved for one file; `total` is undefined while the size is unknown. */
export interface PullProgress {
  readonly phase: 'download' | 'extract' | 'verify';
  /** The file being worked on, as the user would recognise it (a repo path or a file name). */
  readonly file: string;
  readonly done: number;
  readonly total: number | undefined;
}

/** The environment a pull reads (AUTOGLM_HOME, HF_*, PATH, AUTOGLM_PYTHON); process.env by default. */
export type PullEnv = Readonly<Record<string, string | undefined>>;

export interface PullOptions {
  /** Called often during transfers; the caller throttles what it prints. */
  readonly onProgress?: (progress: PullProgress) => void;
  /** One line about a choice or a fallback the pull made, e.g. which GGUF it picked. */
  readonly onMessage?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** ONNX graph variant ('q4f16', 'model_q4f16.onnx') or GGUF quantization ('Q8_0') to prefer. */
  readonly variant?: string;
  readonly env?: PullEnv;
}

/** The transfer-level subset of PullOptions that the helpers take. */
export type TransferOptions = Pick<PullOptions, 'onProgress' | 'onMessage' | 'signal'>;
