// docs/sdks.md "Use the SDK": watch a canvas in ten lines (run by test/packages/pack.test.ts from a fresh project).
import { createSwitchboardClient, connectCanvas } from '@switchboard/client';

const sb = createSwitchboardClient({ baseUrl: process.env.SWITCHBOARD_URL ?? 'http://127.0.0.1:3000' });
await sb.auth.login({ email: process.env.SB_EMAIL ?? '', password: process.env.SB_PASSWORD ?? '' });
const room = await connectCanvas({ url: sb.serverUrl, token: () => sb.freshAccessToken() });
room.onEvent(({ event, payload }) => console.log(event, 'blocks' in payload ? payload.blocks.map((b) => b.content.text) : ''));
const ack = await room.join(process.argv[2], 10_000, () =>
  sb.blocks.listAll(process.argv[2]).then((bs) => console.log('loaded', bs.length)),
);
console.log(ack.ok ? 'watching' : ack.error.code);
