/**
 * Just enough of the Dockerfile and .dockerignore formats to check images/*.Dockerfile without
 * a Docker daemon: instructions per stage (line continuations joined, comments dropped), the
 * global ARG defaults, COPY's sources, and which context paths .dockerignore keeps.
 */

export interface Instruction {
  /** Upper-case: FROM, RUN, COPY, ... */
  readonly cmd: string;
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  /** The FROM image, with global ARG defaults substituted. */
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: ReadonlyMap<string, string>;
  readonly stages: readonly Stage[];
}

function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending !== '' && line.startsWith('#')) return;
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [cmd = '', ...rest] = full.split(/\s+/);
    out.push({ cmd: cmd.toUpperCase(), args: rest.join(' '), line: start });
  });
  return out;
}

const substitute = (s: string, args: ReadonlyMap<string, string>): string =>
  s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, name: string) => args.get(name) ?? m);

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: { image: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const ins of instructions(text)) {
    if (ins.cmd === 'FROM') {
      const [image = '', as, name] = ins.args.split(/\s+/);
      stages.push({
        image: substitute(image, globalArgs),
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        instructions: [],
      });
    } else if (stages.length === 0 && ins.cmd === 'ARG') {
      const [name = '', ...value] = ins.args.split('=');
      globalArgs.set(name, value.join('='));
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

export interface Copy {
  readonly from: string | undefined;
  readonly sources: readonly string[];
  readonly dest: string;
}

/** A stage's COPY instructions (shell form), with --from and the other flags read off. */
export function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.cmd === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      return { from, sources: paths.slice(0, -1), dest: paths.at(-1) ?? '' };
    });
}

/** The value of a stage's last instruction of a kind (e.g. USER, ENTRYPOINT). */
export function last(stage: Stage, cmd: string): string | undefined {
  return stage.instructions.filter((i) => i.cmd === cmd).at(-1)?.args;
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] ?? '';
    if (ch === '*' && pattern[i + 1] === '*') {
      // "**/" matches zero or more directories; a trailing "**" anything.
      re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += pattern[i + 2] === '/' ? 2 : 1;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether .dockerignore keeps a context path (relative, with "/"): its rules in order, the last
 * that matches the path or one of its parent folders deciding, "!" re-including.
 */
export function dockerignoreKeeps(ignoreFile: string, path: string): boolean {
  const rules = ignoreFile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const keep = l.startsWith('!');
      const pattern = (keep ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      return { keep, re: globToRegExp(pattern) };
    });
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let kept = true;
  for (const rule of rules) if (candidates.some((c) => rule.re.test(c))) kept = rule.keep;
  return kept;
}
