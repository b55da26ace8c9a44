import { readScript, shownWord, substitutionsIn, UnreadableCommand, type Redirect } from './command-words';
import { gitRisks, pathRisks, type CommandRiskKind, type Found } from './command-targets';

/**
 * What a shell command would do that a person should know before approving it, read from its
 * shell words (./command-words) rather than matched in its text: `/usr/bin/sudo`, `FOO=1 sudo`,
 * `env nice sudo`, `sh -c "sudo …"`, `$(…)` and the commands after `;`, `&&` and `|` all count.
 * Some risks are refused whatever the approval ({@link COMMAND_RISKS} `denied`); the others are
 * named in the approval request. This is a convenience, not a sandbox: a command runs as the user
 * who runs the device, and a command this cannot read is reported as `unreadable`, never as safe.
 */

export type { CommandRiskKind };

/** Each risk: whether it is refused, and what it does in plain words (after "it"). */
export const COMMAND_RISKS: Record<CommandRiskKind, { denied: boolean; what: string }> = {
  superuser: { denied: true, what: 'runs as superuser' },
  power: { denied: true, what: 'shuts down or restarts the machine' },
  disk: { denied: true, what: 'formats or overwrites a disk' },
  fork_bomb: { denied: true, what: 'starts a fork bomb' },
  download_to_shell: { denied: true, what: 'pipes a download into a shell' },
  delete_root: { denied: true, what: 'deletes the root, home or parent folder' },
  system_permissions: { denied: true, what: 'changes the owner or permissions of the root folder' },
  force_push: { denied: true, what: 'force-pushes or rewrites a remote branch' },
  recursive_delete: { denied: false, what: 'deletes files recursively' },
  outside_project: { denied: false, what: 'writes outside the project folder' },
  discard_changes: { denied: false, what: 'discards uncommitted changes' },
  push: { denied: false, what: 'pushes to a remote repository' },
  network: { denied: false, what: 'downloads from the network' },
  unreadable: { denied: false, what: 'cannot be read here, so what it does is unknown' },
};

/** One risk found: its kind, whether it is refused, what it does, and the part of the command that does it. */
export interface CommandRisk {
  kind: CommandRiskKind;
  denied: boolean;
  what: string;
  where: string;
}

/** How deep `sh -c "…"`, `eval` and substitutions are followed; deeper is unreadable. */
const MAX_DEPTH = 4;
/** How many wrappers (`env`, `nice`, `sudo`, …) one command may stand behind. */
const MAX_WRAPPERS = 16;

const FORK_BOMB = /(\S+?)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1/;
const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'mksh', 'ash', 'fish', 'csh', 'tcsh']);
const INTERPRETER = /^(python[\d.]*|node|nodejs|perl|ruby|php|pwsh|bun|deno|lua)$/;
const DOWNLOADERS = new Set(['curl', 'wget', 'aria2c', 'fetch']);
const SUPERUSER = new Set(['sudo', 'su', 'doas', 'pkexec', 'run0']);
const POWER = new Set(['shutdown', 'reboot', 'halt', 'poweroff']);
const DISK = /^(mkfs(\..+)?|fdisk|sfdisk|cfdisk|gdisk|sgdisk|parted|diskpart|wipefs)$/;
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
/** Words that open or close a compound command: the command is what follows them. */
const KEYWORDS = new Set(['!', '{', '}', 'then', 'do', 'else', 'elif', 'if', 'while', 'until', 'fi', 'done', 'esac', '[[', ']]']);
/** Compound commands whose words are no command (`for x in …`, `case … in`). */
const NOT_COMMANDS = new Set(['for', 'select', 'case', 'function']);

/** Commands that run the command after their own options; the options that take a value. */
const WRAPPERS: Record<string, { valued: string[]; positional?: number }> = {
  sudo: { valued: ['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-T', '-U', '--user', '--group', '--chdir', '--host', '--prompt'] },
  doas: { valued: ['-u', '-C'] },
  pkexec: { valued: ['--user'] },
  run0: { valued: ['-u', '--user', '-D', '--chdir'] },
  env: { valued: ['-u', '--unset', '-C', '--chdir'] },
  command: { valued: [] },
  builtin: { valued: [] },
  exec: { valued: ['-a'] },
  nohup: { valued: [] },
  nice: { valued: ['-n', '--adjustment'] },
  timeout: { valued: ['-s', '--signal', '-k', '--kill-after'], positional: 1 },
  xargs: { valued: ['-I', '-L', '-n', '-P', '-d', '-E', '-s', '-a', '--arg-file', '--delimiter', '--max-args', '--max-procs'] },
  time: { valued: ['-f', '-o', '--format', '--output'] },
  setsid: { valued: [] },
  stdbuf: { valued: ['-i', '-o', '-e', '--input', '--output', '--error'] },
  ionice: { valued: ['-c', '-n', '--class', '--classdata'] },
  busybox: { valued: [] },
};

/** The command a word names (`/usr/bin/SUDO` is `sudo`), or null when it is only known when it runs. */
export function commandName(word: string): string | null {
  if (word !== '[' && word !== '[[' && /[\uE000$*?[\]{}`]/.test(word)) return null;
  const name = word
    .split('/')
    .pop()!
    .toLowerCase()
    .replace(/\.exe$/, '');
  return name || null;
}

/** The index after the options of a wrapper at `at` (and its positional arguments). */
function afterOptions(words: string[], at: number, valued: readonly string[], positional = 0): number {
  let i = at;
  while (i < words.length && words[i].startsWith('-') && words[i] !== '-') {
    if (words[i] === '--') return i + 1 + positional;
    if (valued.includes(words[i])) i += 1;
    i += 1;
  }
  return i + positional;
}

/** `pre{a,b}post` as the words a shell expands it to (one level, no nesting). */
function expandBraces(words: string[]): string[] {
  return words.flatMap((word) => {
    const m = /^([^{]*)\{([^{}]*,[^{}]*)\}(.*)$/.exec(word);
    return m ? m[2].split(',').map((part) => `${m[1]}${part}${m[3]}`) : [word];
  });
}

const show = (words: string[]) => {
  const text = words.map(shownWord).join(' ');
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
};

/** A script being read: where its risks go, and what its substitutions do. */
interface Reading {
  found: Found;
  depth: number;
  /** Per substitution of the script: whether it downloads. */
  downloads: boolean[];
}

/** What a simple command is, for the pipeline around it. */
interface Outcome {
  downloads: boolean;
  interpreter: string | null;
}

const NOTHING: Outcome = { downloads: false, interpreter: null };

/** Reads `source` and every script it runs; whether it downloads. */
function readAll(source: string, depth: number, found: Found): boolean {
  if (depth > MAX_DEPTH) {
    found('unreadable', 'commands nested too deep');
    return false;
  }
  if (FORK_BOMB.test(source)) found('fork_bomb', show([source]));
  let script;
  try {
    script = readScript(source);
  } catch (error) {
    if (!(error instanceof UnreadableCommand)) throw error;
    found('unreadable', error.message);
    return false;
  }
  const reading: Reading = { found, depth, downloads: script.substitutions.map((inner) => readAll(inner, depth + 1, found)) };
  let downloaded = false;
  for (const command of script.commands) {
    const outcome = readCommand(command.words, command.redirects, reading);
    if (command.stage > 0 && outcome.interpreter && downloaded) found('download_to_shell', `… | ${outcome.interpreter}`);
    downloaded ||= outcome.downloads;
  }
  return downloaded || reading.downloads.some(Boolean);
}

/** Whether a word holds a substitution that downloads. */
const fetches = (word: string, reading: Reading) => substitutionsIn(word).some((n) => reading.downloads[n]);

/** Reads one simple command (wrappers, then the command itself). */
function readCommand(raw: string[], redirects: Redirect[], reading: Reading): Outcome {
  const { found } = reading;
  for (const r of redirects) pathRisks.redirect(r, found);
  const words = expandBraces(raw);
  const downloads = words.some((word) => fetches(word, reading));
  let i = 0;
  for (let wrapped = 0; wrapped < MAX_WRAPPERS; wrapped += 1) {
    while (i < words.length && ASSIGNMENT.test(words[i])) i += 1;
    if (i >= words.length) return { downloads, interpreter: null };
    if (KEYWORDS.has(words[i])) {
      i += 1;
      continue;
    }
    const name = commandName(words[i]);
    if (name === null) {
      found('unreadable', `the command's name is only known when it runs (${show([words[i]])})`);
      return { downloads, interpreter: null };
    }
    if (NOT_COMMANDS.has(name)) return NOTHING;
    if (SUPERUSER.has(name)) found('superuser', show(words.slice(i)));
    // `su` takes a user, not a command; `command -v x` only looks x up.
    if (name === 'su' || (name === 'command' && /^-[vV]$/.test(words[i + 1] ?? ''))) return NOTHING;
    if (name === 'env') {
      const split = words.findIndex((w, at) => at > i && /^(-S|--split-string)(=|$)/.test(w));
      if (split > 0) {
        const inline = words[split].includes('=') ? words[split].slice(words[split].indexOf('=') + 1) : (words[split + 1] ?? '');
        readAll(inline, reading.depth + 1, found);
        return NOTHING;
      }
    }
    const wrapper = WRAPPERS[name];
    if (!wrapper) return { ...finalCommand(name, words.slice(i), redirects, reading), downloads: downloads || DOWNLOADERS.has(name) };
    i = afterOptions(words, i + 1, wrapper.valued, wrapper.positional);
  }
  found('unreadable', 'too many wrapper commands');
  return NOTHING;
}

/** The index of the script a shell runs with `-c` (`-c`, `-lc`, `--command`), or -1. */
function shellScriptAt(words: string[]): number {
  let command = false;
  for (let i = 1; i < words.length; i += 1) {
    const w = words[i];
    if (w === '--') return command ? i + 1 : -1;
    if (/^-[A-Za-z]*c[A-Za-z]*$/.test(w) || w === '--command') command = true;
    else if (/^[-+][oO]$|^--(rcfile|init-file)$/.test(w)) i += 1;
    else if (!/^[-+]/.test(w)) return command ? i : -1;
  }
  return -1;
}

/** The risks of the command itself, `words[0]` being its name (`name`). */
function finalCommand(name: string, words: string[], redirects: Redirect[], reading: Reading): Outcome {
  const { found, depth } = reading;
  const args = words.slice(1);
  const runs = (script: string) => {
    if (fetches(script, reading)) found('download_to_shell', show(words));
    readAll(script, depth + 1, found);
  };
  if (SHELLS.has(name) || INTERPRETER.test(name)) {
    const at = SHELLS.has(name) ? shellScriptAt(words) : -1;
    if (at > 0 && at < words.length) runs(words[at]);
    else if (args.some((word) => fetches(word, reading))) found('download_to_shell', show(words));
    for (const r of redirects) if (r.op === '<<<' && SHELLS.has(name)) runs(r.target);
    return { downloads: false, interpreter: name };
  }
  if (name === 'eval') {
    runs(args.join(' '));
    return NOTHING;
  }
  if (name === 'source' || name === '.') {
    if (args.some((word) => fetches(word, reading))) found('download_to_shell', show(words));
    return NOTHING;
  }
  if (POWER.has(name)) found('power', show(words));
  if ((name === 'init' || name === 'telinit') && /^[06]$/.test(args[0] ?? '')) found('power', show(words));
  if (name === 'systemctl' && args.some((a) => /^(poweroff|reboot|halt|kexec)$/.test(a))) found('power', show(words));
  if (DISK.test(name) || (name === 'format' && /^[a-z]:$/i.test(args[0] ?? ''))) found('disk', show(words));
  if (DOWNLOADERS.has(name)) found('network', show(words));
  if (name === 'git') gitRisks(args, found, show(words));
  if (name === 'find') findRisks(args, reading, show(words));
  pathRisks.command(name, args, found, show(words));
  return NOTHING;
}

/** `find … -delete` deletes what it finds; `find … -exec cmd {} ;` runs cmd. */
function findRisks(args: string[], reading: Reading, shown: string) {
  if (args.includes('-delete')) reading.found('recursive_delete', shown);
  args.forEach((arg, at) => {
    if (!/^-(exec|execdir|ok|okdir)$/.test(arg)) return;
    const end = args.findIndex((w, i) => i > at && (w === ';' || w === '+'));
    readCommand(args.slice(at + 1, end < 0 ? undefined : end), [], { ...reading, depth: reading.depth + 1 });
  });
}

/** Every risk of `command`, the refused ones first, each once. */
export function commandRisks(command: string): CommandRisk[] {
  const risks = new Map<string, CommandRisk>();
  readAll(command, 0, (kind, where) => {
    const key = `${kind}\u0000${where}`;
    if (!risks.has(key)) risks.set(key, { kind, ...COMMAND_RISKS[kind], where });
  });
  return [...risks.values()].sort((a, b) => Number(b.denied) - Number(a.denied));
}

/** The risks as a sentence: "it deletes files recursively (rm -r build); it writes outside …". */
export const describeCommandRisks = (risks: readonly CommandRisk[]): string =>
  risks.map((risk) => `it ${risk.what} (${risk.where})`).join('; ');
