import { execFileSync } from 'node:child_process';

/**
 * Every document of a YAML file, parsed by PyYAML (as test/faults/compose-structure.test.ts does
 * for docker-compose.yml): no YAML parser is a declared dependency, and python3 with PyYAML is on
 * every machine the tests run on.
 */
export function loadYamlDocuments(file: string): any[] {
  const script = 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))';
  return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' }));
}
