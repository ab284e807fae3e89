/**
 * A protobuf encoder for the subset of onnx.proto a decoder export needs. Messages are
 * encoded into lists of chunks with known lengths, so multi-hundred-megabyte weights are
 * never copied into one buffer: the file is written chunk by chunk.
 */

export interface Encoded {
  readonly chunks: readonly Uint8Array[];
  readonly length: number;
}

const EMPTY: Encoded = { chunks: [], length: 0 };

function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

/** Builds one message; fields are appended in the order they are called. */
export class MessageWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.byteLength;
  }

  private tag(field: number, wireType: number): void {
    this.push(varint((field << 3) | wireType));
  }

  int(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.push(varint(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.push(varint(value.byteLength));
    if (value.byteLength > 0) this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Encoded): this {
    this.tag(field, 2);
    this.push(varint(value.length));
    for (const c of value.chunks) this.push(c);
    return this;
  }

  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const parts = values.map((v) => varint(v));
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    this.tag(field, 2);
    this.push(varint(total));
    for (const p of parts) this.push(p);
    return this;
  }

  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => {
      dv.setFloat32(i * 4, v, true);
    });
    return this.bytes(field, b);
  }

  done(): Encoded {
    return this.length === 0 ? EMPTY : { chunks: this.chunks, length: this.length };
  }
}
