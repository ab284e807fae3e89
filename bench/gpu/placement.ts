/**
 * `node bench/gpu/placement.ts <model dir>…`: which nodes onnxruntime leaves off the CUDA
 * provider. Opens each model with verbose logging, where onnxruntime lists every node it
 * placed on a provider other than the one asked for; prints those lines only.
 */
import ort from 'onnxruntime-node';
import { join } from 'node:path';

for (const dir of process.argv.slice(2)) {
  console.log(`== ${dir}`);
  const s = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'), {
    executionProviders: ['cuda'],
    logSeverityLevel: 0,
  });
  await s.release();
}
