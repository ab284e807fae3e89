/**
 * Streams a chat completion from an AutoGLM server with the official OpenAI SDK for Node.
 *
 *   AUTOGLM_BASE_URL  the OpenAI base URL: an AutoGLMDeployment's status.endpoint in the cluster
 *                     (`kubectl get agd <name> -o jsonpath='{.status.endpoint}'`), or
 *                     http://127.0.0.1:8000/v1 (the default) for `autoglm serve` or a port-forward
 *   AUTOGLM_API_KEY   one of the keys in runtime.apiKeySecret, where the server requires one
 *   AUTOGLM_MODEL     the served model name; by default the first one /v1/models lists
 *
 *   node examples/clients/openai-client.ts "Why is the sky blue?"
 */
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env['AUTOGLM_BASE_URL'] ?? 'http://127.0.0.1:8000/v1',
  // The SDK insists on a key; a server without runtime.apiKeySecret accepts any.
  apiKey: process.env['AUTOGLM_API_KEY'] ?? 'none',
});

const model = process.env['AUTOGLM_MODEL'] ?? (await client.models.list()).data[0]?.id;
if (model === undefined) throw new Error('the server lists no model; set AUTOGLM_MODEL');

const stream = await client.chat.completions.create({
  model,
  messages: [
    { role: 'system', content: 'You are a concise assistant.' },
    { role: 'user', content: process.argv[2] ?? 'Say hello in one sentence.' },
  ],
  max_completion_tokens: Number(process.env['AUTOGLM_MAX_TOKENS'] ?? 256),
  stream: true,
  stream_options: { include_usage: true },
});

// Tokens arrive as they are generated; the last chunk carries the usage and no choices.
for await (const chunk of stream) {
  process.stdout.write(chunk.choices[0]?.delta.content ?? '');
  if (chunk.usage) process.stderr.write(`\n[${String(chunk.usage.completion_tokens)} tokens]\n`);
}
process.stdout.write('\n');
