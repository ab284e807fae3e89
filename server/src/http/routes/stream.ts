/**
 * The SSE side of a generation: choices are streamed as their pieces come, in whatever
 * order the engine produces them, and every stream ends with `data: [DONE]`. A failure
 * after the first byte becomes an error event, since the status line is already sent.
 */
import type { EngineEvent } from '../../engine/sequence.ts';
import type { GenerationResult } from '../../engine/types.ts';
import { AutoGLMError } from '../../errors.ts';
import { SSE_DONE, sseData, sseError } from '../../protocol/index.ts';
import type { ResponseWriter } from '../transport.ts';
import { chunked } from './choices.ts';

export interface StreamHandlers {
  /** Frames to send before any text of a choice (chat's role chunk). */
  begin(index: number): object[];
  piece(index: number, text: string, events: readonly EngineEvent[]): object | undefined;
  finish(index: number, result: GenerationResult): object[];
  /** Frames after every choice is done (the usage chunk). */
  end(results: readonly GenerationResult[]): object[];
}

/**
 * A generation that ended in error, or was ended by the server (a shutdown past its deadline;
 * a client that left never reads the answer), must not look like a finished one.
 */
export function failIfCutShort(reason: GenerationResult['finishReason']): void {
  if (reason === 'error') throw new AutoGLMError('internal', 'generation failed');
  if (reason === 'abort')
    throw new AutoGLMError('unavailable', 'the server is shutting down; generation was cut short');
}

export async function streamChoices(
  writer: ResponseWriter,
  choices: readonly AsyncIterable<EngineEvent>[],
  chunkTokens: () => number,
  h: StreamHandlers,
): Promise<GenerationResult[]> {
  writer.startStream();
  const results: GenerationResult[] = [];
  // Writes are serialized: choices interleave at frame boundaries, never inside one.
  let tail = Promise.resolve();
  const send = (frames: readonly object[]) => {
    tail = tail.then(async () => {
      for (const f of frames) await writer.write(sseData(f));
    });
    return tail;
  };
  try {
    await Promise.all(
      choices.map(async (events, index) => {
        await send(h.begin(index));
        for await (const piece of chunked(events, chunkTokens)) {
          const frame =
            piece.text === '' &&
            piece.events.every((e) => e.type !== 'delta' || e.delta.logprobs === undefined)
              ? undefined
              : h.piece(index, piece.text, piece.events);
          if (frame !== undefined) await send([frame]);
          if (piece.done !== undefined) {
            failIfCutShort(piece.done.finishReason);
            results[index] = piece.done;
            await send(h.finish(index, piece.done));
          }
        }
      }),
    );
    await send(h.end(results));
  } catch (err) {
    await tail.catch(() => undefined);
    await writer.write(sseError(err));
  }
  await tail.catch(() => undefined);
  await writer.write(SSE_DONE);
  await writer.endStream();
  return results;
}
