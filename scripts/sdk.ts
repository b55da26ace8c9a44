/**
 * Generates the API clients from the OpenAPI document (the one served at /api/v1/openapi.json).
 *
 *   npm run sdk                                   # both, into sdk/
 *   npm run sdk -- --python --output-dir out      # out/python/switchboard_client/
 *   npm run sdk -- --typescript                   # sdk/typescript/index.ts
 *   npm run sdk -- --python --output-dir clients  # clients/python: the pip-installable project
 *                                                 # (pip install ./clients/python), committed
 *
 * Neither flag means both. Unknown flags are errors (exit 2).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildOpenApiDocument } from '../src/http/openapi/document';
import { apiRoutes as apiOperations } from '../src/http/routes';
import { generateSdk, writeSdk } from '../src/sdkgen';

const USAGE = 'usage: npm run sdk -- [--typescript] [--python] [--output-dir DIR]   (neither flag: both; DIR default sdk/)';

function main(argv: string[]): number {
  let values: { typescript?: boolean; python?: boolean; 'output-dir'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        typescript: { type: 'boolean' },
        python: { type: 'boolean' },
        'output-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`sdk: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const both = !values.typescript && !values.python;
  const dir = resolve(values['output-dir'] || 'sdk');
  const files = generateSdk(buildOpenApiDocument(apiOperations), {
    typescript: both || Boolean(values.typescript),
    python: both || Boolean(values.python),
  });
  for (const path of writeSdk(dir, files)) process.stdout.write(`${path}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
