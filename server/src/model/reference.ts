/**
 * A plain float64 forward pass of the llama-family decoder, written from the model's math
 * rather than from the ONNX graph, so it can judge the graph. Slow; for tests only.
 */
import { weightNames, type DecoderConfig } from './config.ts';
import { ropeInverseFrequencies } from './rope.ts';
import type { WeightSource, WeightTensor } from './weights.ts';
import { quantizedValues } from './build/weights.ts';

interface Linear {
  readonly w: Float64Array;
  readonly out: number;
  readonly inp: number;
  readonly b: Float64Array | undefined;
}

interface Layer {
  readonly inputNorm: Float64Array;
  readonly postNorm: Float64Array;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
}

export interface ReferenceOptions {
  /** Use the weights an int4 or int8 build stores (quantized linear layers, float embeddings). */
  readonly quantized?: 4 | 8;
}

function f64(a: Float32Array): Float64Array {
  return Float64Array.from(a);
}

export class ReferenceDecoder {
  readonly config: DecoderConfig;
  private readonly embed: Float64Array;
  private readonly head: Linear;
  private readonly finalNorm: Float64Array;
  private readonly layers: Layer[] = [];
  private readonly invFreq: Float64Array;

  constructor(src: WeightSource, options: ReferenceOptions = {}) {
    const c = src.config;
    this.config = c;
    const get = (name: string): WeightTensor => {
      const t = src.get(name);
      if (t === undefined) throw new Error(`missing weight ${name}`);
      return t;
    };
    const lin = (name: string, bias?: string): Linear => {
      const t = get(name);
      const [out, inp] = t.shape as [number, number];
      const w = options.quantized === undefined ? t.float32() : quantizedValues(t, options.quantized);
      return { w: f64(w), out, inp, b: bias === undefined ? undefined : f64(get(bias).float32()) };
    };
    this.embed = f64(get(weightNames.embed).float32());
    const untied = src.get(weightNames.lmHead) !== undefined;
    this.head = untied
      ? lin(weightNames.lmHead)
      : { w: this.embed, out: c.vocabSize, inp: c.hiddenSize, b: undefined };
    this.finalNorm = f64(get(weightNames.finalNorm).float32());
    for (let i = 0; i < c.numLayers; i++) {
      const n = weightNames.layer(i);
      const bias = (b: string) => (c.attentionBias ? b : undefined);
      this.layers.push({
        inputNorm: f64(get(n.inputNorm).float32()),
        postNorm: f64(get(n.postNorm).float32()),
        q: lin(n.q, bias(n.qBias)),
        k: lin(n.k, bias(n.kBias)),
        v: lin(n.v, bias(n.vBias)),
        o: lin(n.o),
        gate: lin(n.gate),
        up: lin(n.up),
        down: lin(n.down),
      });
    }
    this.invFreq = ropeInverseFrequencies(c, c.ropeScaling);
  }

  /** Logits for every position of `ids`, computed from scratch (no cache). */
  forward(ids: readonly number[]): Float64Array[] {
    const c = this.config;
    let x: Float64Array[] = ids.map((id) => this.embed.slice(id * c.hiddenSize, (id + 1) * c.hiddenSize));
    for (const layer of this.layers) {
      const h = x.map((v) => this.rmsNorm(v, layer.inputNorm));
      const q = h.map((v, p) => this.rope(apply(layer.q, v), c.numHeads, p));
      const k = h.map((v, p) => this.rope(apply(layer.k, v), c.numKvHeads, p));
      const v = h.map((vv) => apply(layer.v, vv));
      const attn = q.map((qp, p) => apply(layer.o, this.attend(qp, k.slice(0, p + 1), v.slice(0, p + 1))));
      x = x.map((xv, p) => add(xv, attn[p] as Float64Array));
      const m = x.map((xv) => {
        const hn = this.rmsNorm(xv, layer.postNorm);
        const g = apply(layer.gate, hn);
        const u = apply(layer.up, hn);
        for (let j = 0; j < g.length; j++) g[j] = ((g[j] ?? 0) / (1 + Math.exp(-(g[j] ?? 0)))) * (u[j] ?? 0);
        return apply(layer.down, g);
      });
      x = x.map((xv, p) => add(xv, m[p] as Float64Array));
    }
    return x.map((xv) => apply(this.head, this.rmsNorm(xv, this.finalNorm)));
  }

  private rmsNorm(x: Float64Array, w: Float64Array): Float64Array {
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + this.config.rmsNormEps);
    return x.map((v, i) => v * inv * (w[i] ?? 0));
  }

  private rope(x: Float64Array, heads: number, pos: number): Float64Array {
    const d = this.config.headDim;
    const half = d / 2;
    const out = new Float64Array(x.length);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const a = pos * (this.invFreq[i] ?? 0);
        const x1 = x[h * d + i] ?? 0;
        const x2 = x[h * d + half + i] ?? 0;
        out[h * d + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
        out[h * d + half + i] = x2 * Math.cos(a) + x1 * Math.sin(a);
      }
    }
    return out;
  }

  private attend(q: Float64Array, ks: Float64Array[], vs: Float64Array[]): Float64Array {
    const c = this.config;
    const d = c.headDim;
    const group = c.numHeads / c.numKvHeads;
    const out = new Float64Array(c.numHeads * d);
    for (let h = 0; h < c.numHeads; h++) {
      const kvh = Math.floor(h / group);
      const scores = ks.map((k) => {
        let s = 0;
        for (let i = 0; i < d; i++) s += (q[h * d + i] ?? 0) * (k[kvh * d + i] ?? 0);
        return s / Math.sqrt(d);
      });
      const max = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - max));
      const z = e.reduce((a, b) => a + b, 0);
      ks.forEach((_, t) => {
        const p = (e[t] ?? 0) / z;
        const v = vs[t] as Float64Array;
        for (let i = 0; i < d; i++) out[h * d + i] = (out[h * d + i] ?? 0) + p * (v[kvh * d + i] ?? 0);
      });
    }
    return out;
  }
}

function apply(l: Linear, x: Float64Array): Float64Array {
  const y = new Float64Array(l.out);
  for (let o = 0; o < l.out; o++) {
    let s = l.b?.[o] ?? 0;
    const base = o * l.inp;
    for (let i = 0; i < l.inp; i++) s += (l.w[base + i] ?? 0) * (x[i] ?? 0);
    y[o] = s;
  }
  return y;
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + (b[i] ?? 0));
}
