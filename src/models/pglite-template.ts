import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate, migrationsHash } from './migrate';
import { PGLITE_EXTENSIONS } from './pglite-extensions';
import * as schema from './schema';

/** Prepared data directories, per checkout (git-ignored, like `npm start`'s bundle). */
const TEMPLATES_DIR = path.resolve(__dirname, '../../.build/pglite');

/**
 * A fresh embedded database starts from a copy of a prepared one: PGlite's initdb
 * costs ~4–6 s of CPU at every first start, copying its result ~0.1 s. The template is keyed by
 * PGlite's version and the migrations' contents, built once per checkout (initdb + migrations, in
 * a directory of its own, renamed into place when complete) and never opened again, only copied.
 * Returns false when it could not be used (read-only checkout, disk full): the caller then runs
 * initdb in place as before.
 */
export async function seedFromTemplate(dir: string): Promise<boolean> {
  try {
    const template = await directoryTemplate();
    // Copied beside the target first, then moved in: a copy cut short leaves no half a database.
    const staging = `${dir}.seed-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    cpSync(template, staging, { recursive: true });
    for (const entry of readdirSync(staging)) renameSync(path.join(staging, entry), path.join(dir, entry));
    rmSync(staging, { recursive: true, force: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * The same prepared database for in-memory PGlite (`memory://`, what every in-process test app
 * opens), as a tarball of its data directory for PGlite's `loadDataDir`: starting from it skips
 * initdb, ~1.5 s of CPU per database. Built once per checkout like the directory
 * template: an in-memory database migrated and dumped, written beside the target and renamed into
 * place. Returns undefined when it could not be used (read-only checkout, disk full): the caller
 * then runs initdb as before.
 */
export async function memoryTemplate(): Promise<Blob | undefined> {
  try {
    const tarball = await tarballTemplate();
    return new Blob([readFileSync(tarball)]);
  } catch (error) {
    process.emitWarning(`in-memory database template not used, running initdb: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/**
 * Builds both templates when missing (a test run does it once before its workers start, so they
 * never each build them at the same moment). Never throws: a template that cannot be built is
 * built, or done without, where it is used.
 */
export async function prepareTemplates(): Promise<void> {
  try {
    await directoryTemplate();
    await tarballTemplate();
  } catch {
    // the same fallbacks as at first use
  }
}

/** The prepared data directory's path, built first when missing. */
async function directoryTemplate(): Promise<string> {
  const template = path.join(TEMPLATES_DIR, templateKey());
  if (!existsSync(path.join(template, 'PG_VERSION'))) await build(template);
  return template;
}

/** The prepared dump's path, built first when missing. */
async function tarballTemplate(): Promise<string> {
  const tarball = path.join(TEMPLATES_DIR, `${templateKey()}.tar`);
  if (!existsSync(tarball)) await buildTarball(tarball);
  return tarball;
}

async function buildTarball(tarball: string): Promise<void> {
  mkdirSync(TEMPLATES_DIR, { recursive: true });
  const client = new PGlite({ extensions: PGLITE_EXTENSIONS });
  let dump: Blob;
  try {
    await migrate(drizzle(client, { schema }));
    dump = await client.dumpDataDir('none');
  } finally {
    await client.close();
  }
  const staging = `${tarball}.${process.pid}.tmp`;
  writeFileSync(staging, Buffer.from(await dump.arrayBuffer()));
  // A rename replaces atomically: a start at the same moment reads the whole file or none.
  renameSync(staging, tarball);
}

async function build(template: string): Promise<void> {
  const staging = `${template}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const client = new PGlite(staging, { extensions: PGLITE_EXTENSIONS });
  try {
    await migrate(drizzle(client, { schema }));
  } finally {
    await client.close();
  }
  try {
    renameSync(staging, template);
  } catch (error) {
    // Another process built it at the same moment: theirs is as good.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(path.join(template, 'PG_VERSION'))) throw error;
  }
}

/** PGlite's version and a hash of every migration: a new migration or PGlite makes a new template. */
function templateKey(): string {
  const entry = require.resolve('@electric-sql/pglite');
  let pkg = path.dirname(entry);
  while (!existsSync(path.join(pkg, 'package.json'))) pkg = path.dirname(pkg);
  const version = (JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { version: string }).version;
  return `${version}-${migrationsHash()}`;
}
