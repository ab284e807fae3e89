/**
 * A small, deterministic BPE trainer for test vocabularies: count adjacent symbol pairs over
 * a word list, merge the most frequent (ties: the smaller pair, by code units), repeat.
 */

import { seededRandom } from '../../util/seeded-random.ts';

const SEPARATOR = '\u0000';

interface Word {
  symbols: string[];
  readonly count: number;
}

function pairCounts(words: readonly Word[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { symbols, count } of words) {
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = `${symbols[i] ?? ''}${SEPARATOR}${symbols[i + 1] ?? ''}`;
      counts.set(key, (counts.get(key) ?? 0) + count);
    }
  }
  return counts;
}

function bestPair(counts: ReadonlyMap<string, number>): [string, string] | undefined {
  let best: string | undefined;
  let bestCount = 0;
  for (const [key, count] of counts) {
    if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
      best = key;
      bestCount = count;
    }
  }
  if (best === undefined) return undefined;
  const [left = '', right = ''] = best.split(SEPARATOR);
  return [left, right];
}

function applyMerge(symbols: readonly string[], left: string, right: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    const symbol = symbols[i] ?? '';
    if (symbol === left && symbols[i + 1] === right) {
      out.push(left + right);
      i++;
    } else {
      out.push(symbol);
    }
  }
  return out;
}

/**
 * Learns up to `maxMerges` merges from words (each a string of symbols, one per code point)
 * with their counts; fewer when every word is a single symbol.
 */
export function trainMerges(words: ReadonlyMap<string, number>, maxMerges: number): [string, string][] {
  const state: Word[] = [...words].map(([word, count]) => ({ symbols: Array.from(word), count }));
  const merges: [string, string][] = [];
  while (merges.length < maxMerges) {
    const pair = bestPair(pairCounts(state));
    if (pair === undefined) break;
    const [left, right] = pair;
    for (const word of state) word.symbols = applyMerge(word.symbols, left, right);
    merges.push(pair);
  }
  return merges;
}

/**
 * `count` more merges of two tokens from `pool` whose concatenation is not yet in `vocab`
 * (which gains each result): valid BPE merges that pad a vocabulary to a size.
 */
export function fillerMerges(
  pool: readonly string[],
  vocab: Set<string>,
  count: number,
  seed: number,
): [string, string][] {
  const random = seededRandom(seed);
  const pick = (): string => pool[Math.floor(random() * pool.length)] ?? '';
  const merges: [string, string][] = [];
  const maxTries = count * 64 + 1024;
  for (let tries = 0; merges.length < count; tries++) {
    if (tries > maxTries) throw new Error(`could not find ${count} new merges in a pool of ${pool.length}`);
    const left = pick();
    const right = pick();
    if (vocab.has(left + right)) continue;
    vocab.add(left + right);
    merges.push([left, right]);
  }
  return merges;
}
