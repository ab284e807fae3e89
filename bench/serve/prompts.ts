/**
 * Prompts of an exact token length, as the server will count them: seeded random sequences
 * of common words that are one token each, trimmed or extended until the model's own
 * tokenizer (and, for chat, its chat template) gives exactly the asked length. Every
 * request gets a different prompt, so no server answers from a prefix cache.
 */
import type { Tokenizer } from '../../server/src/model/tokenizer/tokenizer.ts';
import type { Api } from './client.ts';
import { seededRandom } from '../../server/src/util/seeded-random.ts';

/** The length, in tokens, that a server gives a prompt text. */
export type TokenCounter = (text: string) => number;

// Common English words; those that are not one token (with a leading space) are dropped.
const WORDS = `the of and to in is was for on are with as at be by this from or have an
they which one you had word but not what all were when we there can out other use each
how she do their time if will way about many then them would write like so these her long
make thing see him two has look more day could go come did number sound no most people my
over know water than call first who may down side been now find any new work part take get
place made live where after back little only round man year came show every good me give
our under name very through just form great think say help low line turn cause much mean
before move right boy old too same tell does set three want air well also play small end
put home read hand port large spell add even land here must big high such follow act why
ask men change went light kind off need house picture try us again animal point mother
world near build self earth father head stand own page should country found answer school
grow study still learn plant cover food sun four thought let keep eye never last door
between city tree cross since hard start might story saw far sea draw left late run while
press close night real life few stop open seem together next white children begin got walk
example ease paper often always music those both mark book letter until mile river car
feet care second group carry took rain eat room friend began idea fish mountain north once
base hear horse cut sure watch color face wood main enough plain girl usual young ready
above ever red list though feel talk bird soon body dog family direct pose leave song`.split(/\s+/);

/** The words (a leading space each) that `encode` makes into a single token. */
export function singleTokenWords(encode: (text: string) => readonly number[]): string[] {
  return [...new Set(WORDS)].filter((w) => w !== '' && encode(` ${w}`).length === 1).map((w) => ` ${w}`);
}

/**
 * A text of random words from `words` that `count` says is exactly `tokens` long. Throws
 * when it cannot be: the template alone is longer, or lengths jump over the target.
 */
export function exactPrompt(
  count: TokenCounter,
  words: readonly string[],
  tokens: number,
  random: () => number,
): string {
  if (words.length === 0) throw new Error('no single-token words to build prompts from');
  const pick = (): string => words[Math.floor(random() * words.length)] ?? '';
  const parts: string[] = [];
  const overhead = count('');
  for (let i = overhead; i < tokens; i++) parts.push(pick());
  const budget = 4 * tokens + 16;
  for (let step = 0; step < budget; step++) {
    const n = count(parts.join(''));
    if (n === tokens) return parts.join('');
    if (n < tokens) parts.push(pick());
    else if (parts.length === 0) break;
    else parts.pop();
  }
  throw new Error(`cannot build a prompt of exactly ${tokens} tokens (the empty prompt is ${overhead})`);
}

/** `n` different prompts of exactly `tokens` tokens each, the same for a seed. */
export function exactPrompts(
  count: TokenCounter,
  words: readonly string[],
  tokens: number,
  n: number,
  seed: number,
): string[] {
  const random = seededRandom(seed);
  const out = new Set<string>();
  for (let tries = 0; out.size < n && tries < 4 * n; tries++)
    out.add(exactPrompt(count, words, tokens, random));
  if (out.size < n) throw new Error(`only ${out.size} distinct prompts of ${tokens} tokens`);
  return [...out];
}

/** How a server running this tokenizer counts a prompt sent through `api`. */
export function serverCounter(tokenizer: Tokenizer, api: Api): TokenCounter {
  if (api === 'completions') return (text) => tokenizer.encode(text).length;
  return (text) =>
    tokenizer.encode(
      tokenizer.applyChatTemplate([{ role: 'user', content: text }], { addGenerationPrompt: true }),
      { addSpecialTokens: false },
    ).length;
}
