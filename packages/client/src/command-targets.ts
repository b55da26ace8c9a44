import type { Redirect } from './command-words';

/**
 * The checks of ./command-risk on what a command touches: the paths it deletes or writes (its
 * redirections, `rm`, `cp`, `chmod`, `dd of=`, …) and the remote branches `git` rewrites.
 */

export type CommandRiskKind =
  | 'superuser'
  | 'power'
  | 'disk'
  | 'fork_bomb'
  | 'download_to_shell'
  | 'delete_root'
  | 'system_permissions'
  | 'force_push'
  | 'recursive_delete'
  | 'outside_project'
  | 'discard_changes'
  | 'push'
  | 'network'
  | 'unreadable';

/** Records a risk: its kind and the part of the command that shows it. */
export type Found = (kind: CommandRiskKind, where: string) => void;

/** Block devices: writing one destroys a disk. */
const DISK_DEVICE = /^\/dev\/(sd|hd|vd|xvd|nvme|mmcblk|disk|rdisk|mapper\/|md\d|loop)/;
/** Devices writing to which changes no file. */
const HARMLESS_DEVICE = /^\/dev\/(null|zero|stdout|stderr|tty|fd\/\d+)$/;
const WRITES = new Set(['>', '>>', '>|', '&>', '&>>', '<>', '>&']);

/** The segments of a path without `.`, empty ones and a last `*`: `/./*` is `[]`, absolute. */
function segments(path: string): { absolute: boolean; parts: string[] } {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.at(-1) === '*') parts.pop();
  return { absolute: path.startsWith('/'), parts };
}

const isHome = (part: string) => /^~[\w.-]*$/.test(part) || part === '$HOME';

/** Whether deleting `path` deletes the root folder, a home folder, or the parent of the project. */
function isRootHomeOrParent(path: string): boolean {
  const { absolute, parts } = segments(path);
  if (absolute) return parts.every((part) => part === '..');
  if (parts.length === 0) return false;
  return parts.every((part) => part === '..') || (isHome(parts[0]) && parts.slice(1).every((part) => part === '..'));
}

/** Whether `path` leaves the project folder: absolute, in a home folder, a variable, or up through `..`. */
export function isOutsideProject(path: string): boolean {
  if (HARMLESS_DEVICE.test(path)) return false;
  if (path.startsWith('/') || path.startsWith('~') || path.startsWith('$')) return true;
  let depth = 0;
  for (const part of segments(path).parts) {
    depth += part === '..' ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

/** The arguments that are not options (everything after `--`), skipping the values of `valued` options. */
function operands(args: string[], valued: readonly string[] = []): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === '--') return [...out, ...args.slice(i + 1)];
    if (args[i].startsWith('-') && args[i] !== '-') {
      if (valued.includes(args[i])) i += 1;
    } else out.push(args[i]);
  }
  return out;
}

/** Whether the options of `args` include a short flag among `letters` or one of `long`. */
const hasFlag = (args: string[], letters: string, long: readonly string[]) =>
  args.some(
    (arg) =>
      long.some((name) => arg === name || arg.startsWith(`${name}=`)) ||
      (/^-[A-Za-z]+$/.test(arg) && [...arg.slice(1)].some((c) => letters.includes(c))),
  );

/** The value of `-t DIR` / `--target-directory=DIR`, the destination of cp, mv, ln and install. */
function targetDirectory(args: string[]): string | undefined {
  const at = args.indexOf('-t');
  if (at >= 0) return args[at + 1];
  return args.find((arg) => arg.startsWith('--target-directory='))?.slice('--target-directory='.length);
}

/** What the paths a command writes or deletes would do. */
export const pathRisks = {
  redirect(r: Redirect, found: Found) {
    if (!WRITES.has(r.op) || (r.op === '>&' && /^(\d+-?|-)$/.test(r.target))) return;
    if (DISK_DEVICE.test(r.target)) found('disk', `${r.op} ${r.target}`);
    else if (isOutsideProject(r.target)) found('outside_project', `${r.op} ${r.target}`);
  },

  command(name: string, args: string[], found: Found, shown: string) {
    const outside = (paths: Array<string | undefined>) => {
      if (paths.some((path) => path !== undefined && isOutsideProject(path))) found('outside_project', shown);
    };
    switch (name) {
      case 'rm': {
        const targets = operands(args);
        if (args.includes('--no-preserve-root') || targets.some(isRootHomeOrParent)) found('delete_root', shown);
        if (hasFlag(args, 'rR', ['--recursive'])) found('recursive_delete', shown);
        return outside(targets);
      }
      case 'rmdir':
      case 'tee':
      case 'touch':
      case 'mkdir':
      case 'shred':
        return outside(operands(args));
      case 'truncate':
        return outside(operands(args, ['-s', '--size', '-r', '--reference']));
      case 'mv':
        return outside([...operands(args, ['-t', '-S']), targetDirectory(args)]);
      case 'cp':
      case 'ln':
      case 'install':
      case 'rsync':
        return outside([operands(args, ['-t', '-S', '-m', '-o', '-g']).at(-1), targetDirectory(args)]);
      case 'chmod':
      case 'chown':
      case 'chgrp': {
        const [, ...targets] = operands(args);
        if (targets.some((path) => segments(path).absolute && segments(path).parts.length === 0)) found('system_permissions', shown);
        return outside(targets);
      }
      case 'dd': {
        const output = args.find((arg) => arg.startsWith('of='))?.slice(3);
        if (output !== undefined && DISK_DEVICE.test(output)) found('disk', shown);
        else outside([output]);
        return;
      }
      default:
        return;
    }
  },
};

/** Global options of git that take a value (`git -C dir push`). */
const GIT_VALUED = ['-C', '-c', '--git-dir', '--work-tree', '--namespace', '--exec-path', '--config-env'];

/** What a git command would do to remote branches and uncommitted work. */
export function gitRisks(args: string[], found: Found, shown: string) {
  let at = 0;
  while (at < args.length && args[at].startsWith('-')) at += GIT_VALUED.includes(args[at]) ? 2 : 1;
  const [sub, ...rest] = args.slice(at);
  if (sub === 'push') {
    const refspecs = operands(rest, ['-o', '--push-option', '--repo', '--receive-pack', '--exec']).slice(1);
    const rewrites =
      hasFlag(rest, 'fd', ['--force', '--force-with-lease', '--force-if-includes', '--mirror', '--delete', '--prune']) ||
      refspecs.some((spec) => spec.startsWith('+') || /^:./.test(spec));
    found(rewrites ? 'force_push' : 'push', shown);
  }
  if (sub === 'reset' && rest.includes('--hard')) found('discard_changes', shown);
  if (sub === 'clean' && hasFlag(rest, 'f', ['--force'])) found('discard_changes', shown);
  if ((sub === 'checkout' || sub === 'switch') && hasFlag(rest, 'f', ['--force', '--discard-changes'])) found('discard_changes', shown);
}
