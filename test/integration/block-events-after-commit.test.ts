import { Client } from 'pg';
import { startTestApp, type TestApp } from '../support/app';
import { createTestDatabase, serverPostgresUrl, type TestDatabase } from '../support/database';
import { addMember, createCanvas, registerUser, request, type TestUser } from '../support/http';
import { connectCanvas, join, type CanvasClient } from '../support/sockets';

type StoredBlock = { id: string; content: { text: string } };

/**
 * A collaborator who reads a canvas's blocks the moment a hand edit's room event reaches them reads
 * the edit: the event is sent once the change is committed. The commit is made slow on purpose (a
 * deferred trigger that sleeps at COMMIT, as a loaded disk's flush would be) on a real PostgreSQL
 * server, where a read on another connection sees the change only once its commit is done.
 */
describe('hand edits are announced to the room after their commit', () => {
  let database: TestDatabase;
  let t: TestApp;
  let admin: Client;
  const sockets: CanvasClient[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ server: serverPostgresUrl() });
    t = await startTestApp({ env: { DATABASE_URL: database.url } });
    admin = new Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`
      create function slow_commit() returns trigger language plpgsql as $$ begin perform pg_sleep(0.4); return null; end $$;
      create constraint trigger slow_commit after insert or update or delete on blocks
        deferrable initially deferred for each row execute function slow_commit();`);
  });

  afterAll(async () => {
    sockets.forEach((socket) => socket.close());
    await admin?.end();
    await t?.stop();
    await database?.drop();
  });

  /** Bea in the canvas's room, reading the stored blocks as soon as each event named `event` arrives. */
  async function readsOnEvent(bea: TestUser, canvasId: string) {
    const socket = await connectCanvas(t.url, bea.accessToken);
    sockets.push(socket);
    expect((await join(socket, canvasId)).ok).toBe(true);
    const stored = () =>
      request<{ blocks: StoredBlock[] }>('GET', `${t.api}/canvases/${canvasId}/blocks`, { token: bea.accessToken }).then((response) =>
        response.body.blocks.map((block) => block.content.text),
      );
    return (event: 'block_added' | 'block_updated' | 'block_deleted') =>
      new Promise<string[]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${event} within 10 s`)), 10_000);
        socket.once(event, () => {
          clearTimeout(timer);
          stored().then(resolve, reject);
        });
      });
  }

  test('given Bea reading the blocks on each event, she reads the added, moved, edited and deleted block at once', async () => {
    const [ada, bea] = await Promise.all([registerUser(t.api, 'Ada'), registerUser(t.api, 'Bea')]);
    const canvasId = await createCanvas(t.api, ada, 'Slow commits');
    await addMember(t.api, ada, canvasId, bea, 'editor');
    const onEvent = await readsOnEvent(bea, canvasId);
    const write = (method: 'POST' | 'PATCH' | 'DELETE', path: string, body?: object) =>
      request<{ block: StoredBlock }>(method, `${t.api}/canvases/${canvasId}/blocks${path}`, { token: ada.accessToken, body });

    let read = onEvent('block_added');
    const first = await write('POST', '', { type: 'text', content: { text: 'one' } });
    expect(first.status).toBe(201);
    expect(await read).toEqual(['one']);

    read = onEvent('block_added');
    const second = await write('POST', '', { type: 'text', content: { text: 'two' } });
    expect(await read).toEqual(['one', 'two']);

    read = onEvent('block_updated');
    expect((await write('PATCH', `/${second.body.block.id}`, { beforeId: first.body.block.id })).status).toBe(200);
    expect(await read).toEqual(['two', 'one']);

    read = onEvent('block_updated');
    expect((await write('PATCH', `/${first.body.block.id}`, { content: { text: 'one, edited' } })).status).toBe(200);
    expect(await read).toEqual(['two', 'one, edited']);

    read = onEvent('block_deleted');
    expect((await write('DELETE', `/${second.body.block.id}`)).status).toBe(204);
    expect(await read).toEqual(['one, edited']);
  });
});
