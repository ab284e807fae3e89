/**
 * A small imperative builder over ModelDef: every op call returns its output names, so a
 * decoder reads like the math it computes.
 */
import {
  DataType,
  type AttributeValue,
  type GraphDef,
  type NodeDef,
  type TensorDef,
  type ValueInfo,
} from './model.ts';

export type Attr =
  number | string | readonly number[] | { readonly float: number } | { readonly floats: readonly number[] };

function toAttribute(v: Attr): AttributeValue {
  if (typeof v === 'number') return { kind: 'int', value: v };
  if (typeof v === 'string') return { kind: 'string', value: v };
  if ('float' in v) return { kind: 'float', value: v.float };
  if ('floats' in v) return { kind: 'floats', value: v.floats };
  return { kind: 'ints', value: v };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export class GraphBuilder {
  private readonly nodes: NodeDef[] = [];
  private readonly initializers = new Map<string, TensorDef>();
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly counters = new Map<string, number>();
  private scope = '';

  /** Prefixes generated names, e.g. `/model/layers.3/`, so graphs stay readable in Netron. */
  withScope<T>(scope: string, fn: () => T): T {
    const saved = this.scope;
    this.scope = scope;
    try {
      return fn();
    } finally {
      this.scope = saved;
    }
  }

  private fresh(base: string): string {
    const key = `${this.scope}${base}`;
    const n = this.counters.get(key) ?? 0;
    this.counters.set(key, n + 1);
    return n === 0 ? key : `${key}_${n}`;
  }

  input(name: string, elemType: DataType, shape: readonly (number | string)[]): string {
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  output(name: string, elemType: DataType, shape: readonly (number | string)[]): void {
    this.outputs.push({ name, elemType, shape });
  }

  /** Adds a node; returns its outputs (named `outputs` or generated). */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, Attr>> = {},
    options: { outputs?: number | readonly string[]; domain?: string } = {},
  ): string[] {
    const name = this.fresh(opType);
    const outs = options.outputs ?? 1;
    const outputs =
      typeof outs === 'number' ? Array.from({ length: outs }, (_, i) => `${name}/output_${i}`) : [...outs];
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(attrs)) attributes[k] = toAttribute(v);
    this.nodes.push({ opType, domain: options.domain ?? '', name, inputs, outputs, attributes });
    return outputs;
  }

  /** Single-output op. */
  op1(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, Attr>> = {},
    domain = '',
  ): string {
    const [out] = this.op(opType, inputs, attrs, { domain });
    return out as string;
  }

  ms(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, Attr>> = {}): string {
    return this.op1(opType, inputs, attrs, 'com.microsoft');
  }

  initializer(name: string, dataType: DataType, dims: readonly number[], data: ArrayBufferView): string {
    if (this.initializers.has(name)) throw new Error(`duplicate initializer ${name}`);
    this.initializers.set(name, { name, dataType, dims, raw: bytesOf(data) });
    return name;
  }

  /** Small constants are deduplicated by value. */
  constI64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = `/const/i64/${dims.join('x')}/${values.join('_')}`;
    if (!this.initializers.has(name)) {
      this.initializer(name, DataType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
    }
    return name;
  }

  constF32(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = `/const/f32/${dims.join('x')}/${values.join('_')}`;
    if (!this.initializers.has(name)) this.initializer(name, DataType.FLOAT, dims, Float32Array.from(values));
    return name;
  }

  constF16(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = `/const/f16/${dims.join('x')}/${values.join('_')}`;
    if (!this.initializers.has(name))
      this.initializer(name, DataType.FLOAT16, dims, Float16Array.from(values));
    return name;
  }

  build(name: string): GraphDef {
    return {
      name,
      nodes: this.nodes,
      initializers: [...this.initializers.values()],
      inputs: this.inputs,
      outputs: this.outputs,
    };
  }
}
