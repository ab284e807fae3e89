/**
 * A small but real byte-level BPE tokenizer for seeded random-weight test models: three
 * ChatML special tokens, the 256 byte tokens, then merges learned from a short embedded
 * English text, padded with seeded filler merges to exactly `vocabSize` tokens. It goes
 * through the same GGUF path as a real model, so it exercises the same files.
 */
import { AutoGLMError } from '../../errors.ts';
import type { GgufMetadata, GgufValue } from '../gguf/types.ts';
import { fillerMerges, trainMerges } from './bpeTrainer.ts';
import { BYTE_TO_CHAR, byteLevelEncode, GPT2_SPLIT_REGEX } from './byteLevel.ts';
import { tokenizerFilesFromGguf } from './fromGguf.ts';
import { TOKEN_TYPE } from './metadata.ts';
import type { TokenizerFiles } from './types.ts';

export const SYNTHETIC_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;
export const MIN_SYNTHETIC_VOCAB = 300;

/** ChatML, as Qwen2 and SmolLM2 use it (without a default system prompt). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TRAINING_TEXT = `
The small model reads a line of text and guesses the next word. It is not clever, but it is quick,
and that is what a test needs. When the server starts, it loads the weights, builds a cache for
the keys and values, and waits for requests. A user asks a question; the server turns the words
into numbers, runs the model one step at a time, and turns the numbers back into words.
Good tests check what the world looks like after the work is done: the answer has the right shape,
the stream ends with a final message, and every token that was counted was also sent.
There are 24 hours in a day, 60 minutes in an hour, and 7 days in a week. The year 2025 had
365 days. Prices went from $3.50 to $4.25, a rise of about 21 percent.
"Where is the station?" she asked. "Two streets down, then left at the bakery," he said.
They walked together through the quiet town, past the river, the old church and the market square,
where people were selling bread, cheese, apples, pears, flowers and fresh fish from the coast.
In the evening the children played in the garden while their parents talked about the weather,
the harvest, and the long journey they would make in the spring. Nobody wanted to leave early.
The system should be simple to run, easy to watch, and hard to break. If something fails, it
should say so clearly, and it should tell the operator what to do next.
`;

function wordCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of text.matchAll(new RegExp(GPT2_SPLIT_REGEX, 'gu'))) {
    const word = byteLevelEncode(match[0]);
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

/** The GGUF tokenizer metadata of the synthetic tokenizer (what a synthetic GGUF would carry). */
export function syntheticTokenizerMetadata(vocabSize: number, seed = 0): GgufMetadata {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_SYNTHETIC_VOCAB) {
    throw new AutoGLMError(
      'invalid_argument',
      `a synthetic tokenizer needs an integer vocabulary size of at least ${MIN_SYNTHETIC_VOCAB}, not ${vocabSize}`,
    );
  }
  const base = [...SYNTHETIC_SPECIAL_TOKENS, ...BYTE_TO_CHAR];
  const wanted = vocabSize - base.length;
  const learned = trainMerges(wordCounts(TRAINING_TEXT), wanted);
  // Two merges can build the same string ("a"+"bc", "ab"+"c"): it is one token.
  const vocab = new Set(base);
  const learnedTokens = learned.map(([l, r]) => l + r).filter((t) => !vocab.has(t) && vocab.add(t));
  const filler = fillerMerges(
    [...BYTE_TO_CHAR, ...learnedTokens],
    vocab,
    wanted - learnedTokens.length,
    seed,
  );
  const merges = [...learned, ...filler];
  const tokens = [...base, ...learnedTokens, ...filler.map(([l, r]) => l + r)];
  const types = tokens.map((_, id) =>
    id < SYNTHETIC_SPECIAL_TOKENS.length ? TOKEN_TYPE.control : TOKEN_TYPE.normal,
  );
  const entries: [string, GgufValue][] = [
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', 'gpt2'],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.merges', merges.map(([l, r]) => `${l} ${r}`)],
    ['tokenizer.ggml.bos_token_id', 0],
    ['tokenizer.ggml.eos_token_id', 2],
    ['tokenizer.ggml.padding_token_id', 0],
    ['tokenizer.ggml.add_bos_token', false],
    ['tokenizer.chat_template', CHATML_TEMPLATE],
  ];
  return new Map(entries);
}

/**
 * Tokenizer files with exactly `vocabSize` tokens (at least 300). The same arguments always
 * give the same files; `seed` picks the filler merges beyond what the embedded text yields.
 */
export function syntheticTokenizerFiles(vocabSize: number, seed = 0): TokenizerFiles {
  return tokenizerFilesFromGguf(syntheticTokenizerMetadata(vocabSize, seed));
}
