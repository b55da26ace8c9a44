import { ApprovalService, toolApprovalHandler, type ApprovalServiceDeps } from '../../src/turns/approvals';
import { AppError } from '../../src/lib/errors';
import { createLogger } from '../../src/lib/logger';

/**
 * The one check every door passes: a decision that does not come from a signed-in person is
 * refused with 403 `person_required` before the request is even read, so it stays pending.
 */
describe('ApprovalService.decide: who decides', () => {
  const APPROVAL = '2c7e9a41-5b3d-4f60-8a1e-0d9c7b6a5f43';
  let reads = 0;
  const deps = {
    config: { hitl: { timeoutMs: 60_000 } },
    logger: createLogger({ level: 'silent' }),
    repos: {
      hitl: {
        findOwned: async () => {
          reads += 1;
          return null;
        },
      },
    },
  } as unknown as ApprovalServiceDeps;
  const service = new ApprovalService(deps);

  beforeEach(() => (reads = 0));

  test('a program with an API key: 403 person_required, nothing read', async () => {
    const refused = await service.decide({ userId: 'u1', person: false }, APPROVAL, true, 'http').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ status: 403, code: 'person_required' });
    expect(reads).toBe(0);
  });

  test('a person goes on to the request (here unknown: 404)', async () => {
    await expect(service.decide({ userId: 'u1', person: true }, APPROVAL, true, 'http')).rejects.toMatchObject({ status: 404 });
    expect(reads).toBe(1);
  });

  test("the devices' tool_approval answers the refusal as its ack code", async () => {
    const handle = toolApprovalHandler(service);
    expect(await handle({ id: 'u1', person: false }, 'laptop', { approvalId: APPROVAL, approved: true })).toEqual({
      error: { code: 'person_required', message: expect.any(String) },
    });
    expect(reads).toBe(0);
  });
});
