/** OrtValues over memory someone else owns, or that a session's allocator hands out. */
import { check, create, ortApi } from './library.ts';
import { ELEMENT, type Ptr } from './ort-api.ts';

export type ElementType = keyof typeof ELEMENT;

export const ELEMENT_BYTES: Readonly<Record<ElementType, number>> = { float32: 4, int64: 8, float16: 2 };

function elements(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/**
 * A tensor over `data`, which the caller keeps valid (and, if it is JS memory, referenced)
 * for as long as the OrtValue or any binding of it lives.
 */
export function tensorAt(memoryInfo: Ptr, data: Ptr, dims: readonly number[], type: ElementType): Ptr {
  const shape = BigInt64Array.from(dims, (d) => BigInt(d));
  const bytes = elements(dims) * ELEMENT_BYTES[type];
  return create('CreateTensorWithDataAsOrtValue', (out) =>
    ortApi().CreateTensorWithDataAsOrtValue(memoryInfo, data, bytes, shape, dims.length, ELEMENT[type], out),
  );
}

/** A tensor whose memory `allocator` owns (device memory, for a device allocator); not zeroed. */
export function allocTensor(allocator: Ptr, dims: readonly number[], type: ElementType): Ptr {
  const shape = BigInt64Array.from(dims, (d) => BigInt(d));
  return create('CreateTensorAsOrtValue', (out) =>
    ortApi().CreateTensorAsOrtValue(allocator, shape, dims.length, ELEMENT[type], out),
  );
}

export function dataOf(value: Ptr): Ptr {
  return create('GetTensorMutableData', (out) => ortApi().GetTensorMutableData(value, out));
}

export function bind(binding: Ptr, io: 'input' | 'output', name: string, value: Ptr): void {
  const api = ortApi();
  if (io === 'input') check(api.BindInput(binding, name, value), `BindInput ${name}`);
  else check(api.BindOutput(binding, name, value), `BindOutput ${name}`);
}
