/**
 * `autoglm`: the one binary for building, serving and operating. Errors print one clear
 * message and what to do, and exit non-zero; stack traces only with AUTOGLM_DEBUG=1.
 */
import { AutoGLMError } from '../errors.ts';
import { GENERATE_USAGE, generateCommand } from './generate.ts';
import { MODEL_USAGE, modelCommand } from './model.ts';
import { SERVE_USAGE, serveCommand } from './serve.ts';

const USAGE = `usage: autoglm <command> [options]

commands:
  model pull [source]    download a model and build it to ONNX (default: SmolLM2-135M-Instruct)
  model build <gguf>     convert a GGUF file (or --random <size>) to an ONNX model folder
  generate "<prompt>"    generate a reply on the command line
  serve                  serve a model over the OpenAI API
  operator               run the Kubernetes operator (AutoGLMDeployment)
  start                  set up and serve the default model (what \`npm start\` does)

Run \`autoglm <command> --help\` for a command's options.`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; usage: string }> = {
  model: { run: modelCommand, usage: MODEL_USAGE },
  generate: { run: generateCommand, usage: GENERATE_USAGE },
  serve: { run: serveCommand, usage: SERVE_USAGE },
  start: {
    run: serveCommand,
    usage: 'usage: autoglm start [serve options]: pulls and builds the default model, then serves it',
  },
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined)
    throw new AutoGLMError('invalid_argument', `unknown command "${name}"`, { hint: 'run autoglm --help' });
  await cmd.run(rest);
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof AutoGLMError) {
    console.error(`error: ${err.toUserMessage()}`);
  } else {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (process.env['AUTOGLM_DEBUG'] === '1') console.error(err);
  process.exitCode = 1;
}
