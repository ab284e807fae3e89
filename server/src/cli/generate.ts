import { generate } from '../engine/generate.ts';
import { GREEDY } from '../engine/sampler.ts';
import { AutoGLMError } from '../errors.ts';
import { DEVICES, DecoderSession } from '../runtime/decoder.ts';
import { Tokenizer } from '../model/tokenizer/tokenizer.ts';
import { resolveModel } from '../model/resolve.ts';
import { intArg, numArg, oneOf, parse } from './args.ts';

export const GENERATE_USAGE = `usage: autoglm generate "<prompt>" [options]

Generates a reply with the model's chat template, streaming it to stdout.

options:
  -m, --model <dir|source>  model folder or source (default: SmolLM2-135M-Instruct)
  --max-tokens <n>          most tokens to generate (default 128)
  --temperature <t>         0 is greedy (default 0)
  --top-p <p>               nucleus sampling mass (default 1)
  --seed <n>                sampling seed
  --system <text>           a system message
  --raw                     complete the prompt as plain text, no chat template
  --device auto|cuda|webgpu|cpu
  --threads <n>             CPU threads per op (0: one per core)`;

export async function generateCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      model: { type: 'string', short: 'm' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      system: { type: 'string' },
      raw: { type: 'boolean' },
      device: { type: 'string' },
      threads: { type: 'string' },
    },
    GENERATE_USAGE,
  );
  if (values.help === true) {
    console.log(GENERATE_USAGE);
    return;
  }
  const prompt = positionals.join(' ');
  if (prompt === '')
    throw new AutoGLMError('invalid_argument', 'give a prompt', {
      hint: GENERATE_USAGE.split('\n')[0] ?? '',
    });
  const maxTokens = intArg(values['max-tokens'], 'max-tokens', 128, 1);
  const device = oneOf(values.device, DEVICES, 'device', 'auto');
  const { dir, fileName } = await resolveModel(values.model, {
    onProgress: (m) => {
      console.error(m);
    },
  });
  const tokenizer = await Tokenizer.load(dir);
  const session = await DecoderSession.open(dir, {
    device,
    fileName,
    intraOpThreads: intArg(values.threads, 'threads', 0),
  });
  const skipped = session.skipped.length > 0 ? ` (not ${session.skipped.join('; ')})` : '';
  console.error(`autoglm: ${dir} on ${session.provider}${skipped}`);
  try {
    const messages = [
      ...(values.system === undefined ? [] : [{ role: 'system', content: values.system }]),
      { role: 'user', content: prompt },
    ];
    const text =
      values.raw === true ? prompt : tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    const ids = tokenizer.encode(text, { addSpecialTokens: values.raw === true });
    const decoder = tokenizer.incrementalDecoder({ skipSpecialTokens: true });
    const seed = values.seed === undefined ? undefined : intArg(values.seed, 'seed', 0);
    const sampling = {
      ...GREEDY,
      temperature: numArg(values.temperature, 'temperature', 0),
      topP: numArg(values['top-p'], 'top-p', 1),
      ...(seed === undefined ? {} : { seed }),
    };
    for await (const tok of generate(session, ids, {
      maxTokens,
      stopTokenIds: tokenizer.eosTokenIds,
      sampling,
    })) {
      if (tokenizer.eosTokenIds.includes(tok.id)) break;
      process.stdout.write(decoder.push(tok.id));
    }
    process.stdout.write(`${decoder.flush()}\n`);
  } finally {
    await session.dispose();
  }
}
