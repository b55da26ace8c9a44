import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createWebhookSchema } from '../../src/http/routes/webhook-routes';
import { TEST_EVENT, WEBHOOK_EVENTS } from '../../src/webhooks/webhook-service';

/** The `type` column of the Events table in docs/webhooks.md: what a reader takes as subscribable. */
function documentedEvents(): string[] {
  const doc = readFileSync(path.resolve(__dirname, '../../docs/webhooks.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Events'), doc.indexOf('\n## ', doc.indexOf('## Events') + 1));
  // The rows after the header (`type` | when | data) and its rule.
  const rows = section
    .split('\n')
    .filter((line) => line.startsWith('| '))
    .slice(1);
  return rows.map((row) => /^\| `([\w.]+)` \|/.exec(row)?.[1] ?? row);
}

describe('the webhook events a reader can subscribe to', () => {
  test('the events table lists exactly the events an endpoint takes, and not the test message', () => {
    expect(documentedEvents()).toEqual([...WEBHOOK_EVENTS]);
    expect(documentedEvents()).not.toContain(TEST_EVENT);
  });

  test('an endpoint asking for the test message, or any other type, is refused', () => {
    const body = (events: string[]) => ({ url: 'https://hooks.example.com/in', events });
    expect(createWebhookSchema.safeParse(body([...WEBHOOK_EVENTS])).success).toBe(true);
    expect(createWebhookSchema.safeParse(body([TEST_EVENT])).success).toBe(false);
    expect(createWebhookSchema.safeParse(body(['run.succeeded', TEST_EVENT])).success).toBe(false);
  });
});
