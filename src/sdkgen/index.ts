import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { OpenApiDocument } from '../http/openapi/document';
import { buildSdkModel } from './model';
import { renderPython } from './python';
import { renderTypeScript } from './typescript';

export interface SdkTargets {
  typescript: boolean;
  python: boolean;
}

/**
 * The generated clients as files (path relative to the output directory → content):
 * `python/switchboard_client/…` and `typescript/index.ts`. Pure: the same document gives the same
 * bytes (everything is sorted; no dates, no environment).
 */
export function generateSdk(document: OpenApiDocument, targets: SdkTargets): Record<string, string> {
  const model = buildSdkModel(document);
  const files: Record<string, string> = {};
  if (targets.python) for (const [path, text] of Object.entries(renderPython(model))) files[`python/${path}`] = text;
  if (targets.typescript) for (const [path, text] of Object.entries(renderTypeScript(model))) files[`typescript/${path}`] = text;
  return files;
}

/** Writes the files under `dir` (creating folders; files of the same name are replaced). */
export function writeSdk(dir: string, files: Record<string, string>): string[] {
  const written: string[] = [];
  for (const path of Object.keys(files).sort()) {
    const target = join(dir, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, files[path]);
    written.push(target);
  }
  return written;
}
