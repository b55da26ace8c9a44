import { MAX_INPUT_CHARS } from '../../src/flows/definition';
import { connectorInput } from '../../src/triggers/flow-triggers';
import { concurrencyKeyOf, latestSlot, nextSlot, shortestInterval } from '../../src/triggers/trigger-definition';

describe('flow trigger definitions', () => {
  test('the shortest interval of a cron is its closest pair of fires, not its usual spacing', () => {
    expect(shortestInterval('0 * * * *', 'UTC')).toBe(3600);
    expect(shortestInterval('*/5 * * * *', 'UTC')).toBe(300);
    expect(shortestInterval('0,1 * * * *', 'UTC')).toBe(60);
    expect(shortestInterval('0 9 * * 1-5', 'Europe/Berlin')).toBe(24 * 3600);
    // Every minute, on the first of the month only: still every minute while it fires.
    expect(shortestInterval('* * 1 * *', 'UTC', new Date('2026-03-15T00:00:00Z'))).toBe(60);
  });

  test('slots are read in the time zone: 09:00 in Tokyo is 00:00 UTC, and the latest slot includes an exact tick', () => {
    const now = new Date('2026-06-01T12:00:00Z');
    expect(nextSlot('0 9 * * *', 'Asia/Tokyo', now).toISOString()).toBe('2026-06-02T00:00:00.000Z');
    expect(latestSlot('0 * * * *', 'UTC', new Date('2026-06-01T12:00:00Z')).toISOString()).toBe('2026-06-01T12:00:00.000Z');
    expect(latestSlot('0 * * * *', 'UTC', new Date('2026-06-01T12:59:59Z')).toISOString()).toBe('2026-06-01T12:00:00.000Z');
  });

  test('a concurrency key renders its input references; no key is one limit for every fire; long values are hashed', () => {
    expect(concurrencyKeyOf({}, { customerId: 'c-1' })).toBe('');
    expect(concurrencyKeyOf({ concurrency: { key: 'cust:{{input.customerId}}', limit: 1 } }, { customerId: 'c-1' })).toBe('cust:c-1');
    expect(concurrencyKeyOf({ concurrency: { key: '{{ input.order }}', limit: 1 } }, { order: { id: 7 } })).toBe('{"id":7}');
    expect(concurrencyKeyOf({ concurrency: { key: '{{input.missing}}', limit: 1 } }, {})).toBe('null');
    expect(concurrencyKeyOf({ concurrency: { key: '{{input.long}}', limit: 1 } }, { long: 'x'.repeat(500) })).toMatch(
      /^sha256:[0-9a-f]{64}$/,
    );
  });

  test("a connector fire's input keeps the items in order, clipped, within the input bound", () => {
    const items = Array.from({ length: 100 }, (_, i) => ({
      id: `m${i}`,
      kind: 'email' as const,
      subject: `Subject ${i}`,
      sender: 'a@example.test',
      date: '2026-01-01T00:00:00Z',
      text: 'y'.repeat(5_000),
    }));
    const input = connectorInput({ agentId: 'a1', userId: 'u1', runId: 'r1', provider: 'gmail', items });
    const kept = input.items as Array<{ id: string; text: string }>;
    expect(JSON.stringify(input).length).toBeLessThanOrEqual(MAX_INPUT_CHARS);
    expect(kept.length).toBeGreaterThan(5);
    expect(kept.map((item) => item.id)).toEqual(items.slice(0, kept.length).map((item) => item.id));
    expect(kept[0].text).toHaveLength(2_000);
    expect(input).toMatchObject({ agentId: 'a1', runId: 'r1', provider: 'gmail' });
  });
});
