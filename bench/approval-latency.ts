/**
 * Approval fan-out (target p95 ≤ 250 ms): `node -r ./bench/register.cjs bench/approval-latency.ts [approvals]`
 * (default 40).
 *
 * Starts its own redis-server (or uses REDIS_URL), the whole app on PGlite with the offline demo
 * model, and one user with every surface open: a Socket.IO device (whose tools run the turn), a
 * plain-WebSocket device, a browser socket on `/canvas` that joined no canvas, and the
 * turn's `POST /chat/stream`. Each round asks "Delete task <id>", waits for `approval_requested` on
 * the stream, approves over HTTP, and times `approval_resolved` on each surface from the moment the
 * PUT was sent (and `approval_requested` from the stream's copy to each other surface).
 *
 * Every round is an assistant turn, so the user's `chatPerMinute` limit (30 on the free tier) would
 * refuse turns 31+ with 429 inside a minute: the app gets a limit of one minute's worth of this
 * run's turns. A turn that does not reach its approval (refused, failed, no `approval_requested`
 * on its stream) or a decision the server refuses stops the run with what happened; a copy that
 * never reaches a surface counts as a miss (Infinity, and in the `missed` column).
 */
import os from 'node:os';
import path from 'node:path';
import { demoResponder } from '../src/demo-model';
import { startEmbeddedRedis } from '../src/app/embedded-redis';
import { DeviceSimulator } from '@switchboard/client/testing';
import { startTestApp } from '../test/support/app';
import { registerUser, request } from '../test/support/http';
import { connectCanvas } from '../test/support/sockets';
import { readSse } from '../test/support/sse';
import { WsDevice } from '../test/support/ws-device';

const rounds = Number(process.argv[2] ?? 40);
const WARM_UP = 3;
const SURFACES = ['sse', 'device (Socket.IO)', 'device (WebSocket)', 'browser (/canvas)'] as const;
type Surface = (typeof SURFACES)[number];

const at = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const row = (label: string, samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const p95 = at(sorted, 0.95);
  const missed = samples.filter((sample) => !Number.isFinite(sample)).length;
  return `${label.padEnd(22)} p50 ${at(sorted, 0.5).toFixed(1).padStart(6)} ms   p95 ${p95.toFixed(1).padStart(6)} ms   max ${sorted.at(-1)!.toFixed(1).padStart(6)} ms   missed ${missed}/${samples.length}   ${p95 <= 250 ? 'PASS' : 'MISS'} (≤ 250 ms)`;
};

async function main() {
  const redis = process.env.REDIS_URL ? undefined : await startEmbeddedRedis(path.join(os.tmpdir(), 'switchboard-bench-approvals'));
  process.env.TEST_REDIS_URL = process.env.REDIS_URL ?? redis!.url;
  // Every turn this run starts fits in one minute's chat allowance (the limit is not under test).
  const tierLimits = JSON.stringify({ free: { chatPerMinute: Math.max(30, rounds + WARM_UP) } });
  const t = await startTestApp({ responder: demoResponder, env: { HITL_TIMEOUT_MS: '60000', TIER_LIMITS: tierLimits } });
  try {
    const user = await registerUser(t.api, 'Bench');
    const device = await DeviceSimulator.connect({
      url: t.url,
      accessToken: user.accessToken,
      deviceId: 'bench-laptop',
      reconnection: false,
    });
    const wsDevice = await WsDevice.hello(t.url, user.accessToken, 'bench-desktop');
    const browser = await connectCanvas(t.url, user.accessToken);
    const resolved: Record<Surface, number[]> = { sse: [], 'device (Socket.IO)': [], 'device (WebSocket)': [], 'browser (/canvas)': [] };
    const requested: Record<Exclude<Surface, 'sse'>, number[]> = {
      'device (Socket.IO)': [],
      'device (WebSocket)': [],
      'browser (/canvas)': [],
    };
    // Arrival times by approval id, per surface and event.
    const arrivals = new Map<string, number>();
    const mark = (surface: string, event: string, id: string) => arrivals.set(`${surface}|${event}|${id}`, performance.now());
    device.socket.on('approval_requested', (p) => mark('device (Socket.IO)', 'requested', p.approvalId));
    device.socket.on('approval_resolved', (p) => mark('device (Socket.IO)', 'resolved', p.approvalId));
    browser.on('approval_requested', (p) => mark('browser (/canvas)', 'requested', p.approvalId));
    browser.on('approval_resolved', (p) => mark('browser (/canvas)', 'resolved', p.approvalId));
    wsDevice.ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === 'approval_requested') mark('device (WebSocket)', 'requested', frame.approval_id);
      if (frame.type === 'approval_resolved') mark('device (WebSocket)', 'resolved', frame.approval_id);
    });

    for (let i = 0; i < rounds + WARM_UP; i++) {
      let approvalId = '';
      let requestedAt = 0;
      let sentAt = 0;
      let decided: ReturnType<typeof request> | undefined;
      const turn = await readSse(`${t.api}/chat/stream`, {
        method: 'POST',
        token: user.accessToken,
        body: { message: `Delete task 00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, deviceId: device.deviceId },
        timeoutMs: 30_000,
        onMessage: (message) => {
          if (message.event === 'approval_requested') {
            approvalId = message.data.approvalId;
            requestedAt = performance.now();
            sentAt = performance.now();
            decided = request('PUT', `${t.api}/hitl/requests/${approvalId}/approve`, { token: user.accessToken });
          }
          if (message.event === 'approval_resolved') mark('sse', 'resolved', message.data.approvalId);
        },
      });
      // No approval on the stream: nothing to time. Say why instead of scoring every surface a miss.
      if (!approvalId || !decided) {
        throw new Error(
          `round ${i}: the turn's stream carried no approval_requested (HTTP ${turn.status}${turn.body ? ` ${JSON.stringify(turn.body)}` : ''}; events: ${turn.messages.map((m) => m.event).join(', ') || 'none'})`,
        );
      }
      const decision = await decided;
      if (decision.status !== 200)
        throw new Error(`round ${i}: PUT …/approve answered ${decision.status} ${JSON.stringify(decision.body)}`);
      // Every surface has heard it by now or within a moment; wait for all before the next round.
      const deadline = Date.now() + 5_000;
      while (SURFACES.some((s) => !arrivals.has(`${s}|resolved|${approvalId}`)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
      if (i < WARM_UP) continue;
      for (const surface of SURFACES) {
        const got = arrivals.get(`${surface}|resolved|${approvalId}`);
        resolved[surface].push(got === undefined ? Number.POSITIVE_INFINITY : got - sentAt);
      }
      for (const surface of Object.keys(requested) as Array<keyof typeof requested>) {
        const got = arrivals.get(`${surface}|requested|${approvalId}`);
        // Relative to the stream's copy: how far apart the surfaces hear of the request.
        requested[surface].push(got === undefined ? Number.POSITIVE_INFINITY : Math.abs(got - requestedAt));
      }
    }
    process.stdout.write(
      `approval_resolved after PUT …/approve, ${rounds} approvals, every surface of one user (one process, all roles)\n`,
    );
    for (const surface of SURFACES) process.stdout.write(`${row(surface, resolved[surface])}\n`);
    process.stdout.write(`approval_requested: gap between the stream's copy and each other surface\n`);
    for (const surface of Object.keys(requested) as Array<keyof typeof requested>)
      process.stdout.write(`${row(surface, requested[surface])}\n`);
    device.close();
    wsDevice.close();
    browser.close();
  } finally {
    await t.stop();
    await redis?.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
