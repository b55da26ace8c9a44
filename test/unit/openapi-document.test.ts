import { apiRoutes, openApiJson } from '../../src/http/routes';

/**
 * The API builds its OpenAPI document on the first request for it, not at start: a registration
 * error (a duplicate operationId, an undeclared path parameter, a schema JSON Schema cannot
 * express) throws here, in the test run, instead.
 */
describe('the OpenAPI document of the declared routes', () => {
  test('builds, with one operation per declared route and every operationId once', () => {
    const doc = JSON.parse(openApiJson()) as { paths: Record<string, Record<string, { operationId: string }>> };
    const operations = Object.values(doc.paths).flatMap((item) => Object.values(item));
    const ids = operations.map((op) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(apiRoutes.map((route) => route.operationId).sort());
  });
});
