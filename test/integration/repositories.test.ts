import { createHash, randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { AI_AGENT_USER_ID } from '../../config';
import type { BlockInput } from '../../src/schemas/blocks';
import { openDatabase, type Database } from '../../src/models/database';
import { createRepositories, type Repositories } from '../../src/models';
import { PlacementError } from '../../src/models/blocks-repository';
import { WEBHOOK_ATTEMPTS_KEPT } from '../../src/models/webhooks-repository';
import { migrate, rowsOf } from '../../src/models/migrate';
import { blocks as blocksTable, systemAudit, users } from '../../src/models/schema';
import { createTestDatabase, type TestDatabase } from '../support/database';

/**
 * The same suite runs on every backend we can reach: in-memory PGlite always, and the PostgreSQL
 * server too when DATABASE_URL is set (each run on a fresh database of its own).
 */
interface Backend {
  name: string;
  server: boolean;
  create(): Promise<TestDatabase>;
}

const backends: Backend[] = [
  { name: 'PGlite (in memory)', server: false, create: async () => ({ url: 'memory://', drop: async () => undefined }) },
];
if (process.env.DATABASE_URL) backends.push({ name: 'PostgreSQL server', server: true, create: createTestDatabase });

const UNUSED_DATA_DIR = path.join(os.tmpdir(), 'switchboard-repositories-test');
const MIGRATION_FILES = readdirSync(path.join(__dirname, '../../src/models/migrations')).filter((file) => file.endsWith('.sql'));

const text = (value: string): BlockInput => ({ type: 'text', content: { text: value } });
const texts = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => text(`${prefix} ${index}`));
const labels = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix} ${index}`);
const hash = (token: string) => createHash('sha256').update(token).digest('hex');
const textsOf = (list: { content: Record<string, unknown> }[]) => list.map((block) => block.content.text);

function expectStrictlyIncreasing(ranks: string[]): void {
  for (let index = 1; index < ranks.length; index++) expect(ranks[index - 1] < ranks[index]).toBe(true);
}

describe.each(backends)('repositories on $name', (backend) => {
  let testDb: TestDatabase;
  let database: Database;
  let repos: Repositories;

  beforeAll(async () => {
    testDb = await backend.create();
    database = await openDatabase({ url: testDb.url, dataDir: UNUSED_DATA_DIR });
    repos = createRepositories(database.db);
  });

  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  const newUser = async (name = 'User') => {
    const user = await repos.users.create({
      email: `${name.toLowerCase()}-${randomUUID()}@example.com`,
      name,
      passwordHash: 'argon2-hash',
    });
    if (!user) throw new Error('user was not created');
    return user;
  };

  const newCanvas = async () => {
    const owner = await newUser('Owner');
    const canvas = await repos.canvases.create(owner.id, 'Launch plan');
    return { owner, canvas };
  };

  /** Inserts `inputs` in a transaction of their own, as the generation persist step does. */
  const insertMany = (
    canvasId: string,
    inputs: BlockInput[],
    options: { afterId?: string; beforeId?: string; generationId?: string | null } = {},
  ) =>
    repos.db.transaction((tx) =>
      repos.blocks.insertMany(tx, {
        canvasId,
        createdBy: AI_AGENT_USER_ID,
        inputs,
        placement: { afterId: options.afterId, beforeId: options.beforeId },
        generationSessionId: options.generationId ?? null,
      }),
    );

  describe('migrations', () => {
    test('given a migrated database, the AI service user exists with its fixed id and no password', async () => {
      const ai = await repos.users.findById(AI_AGENT_USER_ID);

      expect(ai).toMatchObject({ id: AI_AGENT_USER_ID, role: 'service', passwordHash: null });
    });

    test('given a migrated database, running migrate again applies nothing', async () => {
      await expect(migrate(database.db)).resolves.toEqual([]);

      const applied = rowsOf<{ name: string }>(await database.db.execute(sql`select name from schema_migrations order by name`));
      expect(applied.map((row) => row.name)).toEqual([...MIGRATION_FILES].sort());
    });

    if (backend.server) {
      test('given a fresh server database, two processes opening it at once both succeed and migrate it once', async () => {
        const fresh = await createTestDatabase();
        const opened: Database[] = [];
        try {
          const results = await Promise.allSettled([
            openDatabase({ url: fresh.url, dataDir: UNUSED_DATA_DIR, poolSize: 2 }),
            openDatabase({ url: fresh.url, dataDir: UNUSED_DATA_DIR, poolSize: 2 }),
          ]);
          for (const result of results) if (result.status === 'fulfilled') opened.push(result.value);

          expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
          const counts = rowsOf<{ migrations: number; ai: number }>(
            await opened[0].db.execute(
              sql`select (select count(*)::int from schema_migrations) as migrations, (select count(*)::int from users where id = ${AI_AGENT_USER_ID}) as ai`,
            ),
          );
          expect(counts[0]).toEqual({ migrations: MIGRATION_FILES.length, ai: 1 });
        } finally {
          await Promise.all(opened.map((db) => db.close()));
          await fresh.drop();
        }
      });
    }
  });

  describe('users', () => {
    test('given a new email, create stores it lower-cased; the same email in other case returns null', async () => {
      const email = `Ada.${randomUUID()}@Example.COM`;

      const created = await repos.users.create({ email, name: 'Ada', passwordHash: 'h' });
      const duplicate = await repos.users.create({ email: email.toUpperCase(), name: 'Impostor', passwordHash: 'h2' });

      expect(created).toMatchObject({ email: email.toLowerCase(), name: 'Ada', tier: 'free', role: 'user' });
      expect(duplicate).toBeNull();
    });

    test('given a stored user, findByEmail finds it whatever the case; an unknown email finds nothing', async () => {
      const user = await newUser('Grace');

      await expect(repos.users.findByEmail(user.email.toUpperCase())).resolves.toMatchObject({ id: user.id });
      await expect(repos.users.findByEmail(`nobody-${randomUUID()}@example.com`)).resolves.toBeNull();
    });

    test('given setTier, the user has the new tier', async () => {
      const user = await newUser();

      await repos.users.setTier(user.id, 'pro');

      await expect(repos.users.findById(user.id)).resolves.toMatchObject({ tier: 'pro' });
    });
  });

  describe('refresh tokens', () => {
    const issue = async (userId: string, familyId: string, expiresAt = new Date(Date.now() + 60_000)) => {
      const token = randomUUID();
      await repos.users.insertRefreshToken({ userId, familyId, tokenHash: hash(token), expiresAt });
      return hash(token);
    };

    test('given a token, the first consume is ok, the second is reuse, and revoking the family kills its other tokens', async () => {
      const user = await newUser();
      const familyId = randomUUID();
      const first = await issue(user.id, familyId);
      const rotated = await issue(user.id, familyId);

      const consumed = await repos.users.consumeRefreshToken(first);
      const replayed = await repos.users.consumeRefreshToken(first);
      await repos.users.revokeFamily(familyId);
      const afterRevoke = await repos.users.consumeRefreshToken(rotated);

      expect(consumed).toMatchObject({ status: 'ok', token: { userId: user.id, familyId } });
      expect(replayed).toMatchObject({ status: 'reused', token: { familyId } });
      expect(afterRevoke).toEqual({ status: 'invalid' });
    });

    test('given two refreshes racing with one token, exactly one succeeds', async () => {
      const user = await newUser();
      const token = await issue(user.id, randomUUID());

      const results = await Promise.all([repos.users.consumeRefreshToken(token), repos.users.consumeRefreshToken(token)]);

      expect(results.map((result) => result.status).sort()).toEqual(['ok', 'reused']);
    });

    test('given an expired or unknown token, consume says invalid', async () => {
      const user = await newUser();
      const expired = await issue(user.id, randomUUID(), new Date(Date.now() - 1_000));

      await expect(repos.users.consumeRefreshToken(expired)).resolves.toEqual({ status: 'invalid' });
      await expect(repos.users.consumeRefreshToken(hash('never issued'))).resolves.toEqual({ status: 'invalid' });
    });

    /** Two sessions (refresh-token families) of the user: one standing, one revoked. */
    const liveAndRevokedSessions = async (userId: string) => {
      const [live, revoked] = [randomUUID(), randomUUID()];
      await issue(userId, live);
      await issue(userId, revoked);
      await repos.users.revokeFamily(revoked);
      return { live, revoked };
    };

    test('given sessions, sessionStands is true for a live user and session and false once the family is revoked or the user is gone', async () => {
      const user = await newUser();
      const { live, revoked } = await liveAndRevokedSessions(user.id);

      const answers = await Promise.all([
        repos.users.sessionStands(user.id),
        repos.users.sessionStands(user.id, live),
        repos.users.sessionStands(user.id, revoked),
        repos.users.sessionStands(randomUUID(), live),
        repos.users.sessionStands('not-a-uuid'),
      ]);
      await repos.db.delete(users).where(eq(users.id, user.id));
      const afterDelete = await Promise.all([repos.users.sessionStands(user.id), repos.users.sessionStands(user.id, live)]);

      expect(answers).toEqual([true, true, false, false, false]);
      expect(afterDelete).toEqual([false, false]);
    });

    test('sessionTier answers the tier stored now for a standing session, null otherwise; changePlan moves it and audits', async () => {
      const user = await newUser();
      const { live, revoked } = await liveAndRevokedSessions(user.id);
      expect(await repos.users.sessionTier(user.id, live)).toBe('free');

      const changed = await repos.users.changePlan(user.id, { tier: 'enterprise' }, { actorId: user.id, details: { via: 'test' } });
      const missing = await repos.users.changePlan(randomUUID(), { tier: 'pro' }, { actorId: user.id });

      expect(changed?.tier).toBe('enterprise');
      expect(missing).toBeNull();
      expect(await Promise.all([repos.users.sessionTier(user.id, live), repos.users.sessionTier(user.id, revoked)])).toEqual([
        'enterprise',
        null,
      ]);
      const audit = await repos.db.select().from(systemAudit).where(eq(systemAudit.targetId, user.id));
      expect(audit.map((row) => [row.action, row.details])).toEqual([
        ['user.tier_changed', { via: 'test', from: 'free', to: 'enterprise' }],
      ]);
    });

    test('given a canvas, sessionAndCanvasRole answers the session check and the role on that canvas together', async () => {
      const { owner, canvas } = await newCanvas();
      const stranger = await newUser('Stranger');
      const { live, revoked } = await liveAndRevokedSessions(owner.id);

      const answers = await Promise.all([
        repos.users.sessionAndCanvasRole(owner.id, live, canvas.id),
        repos.users.sessionAndCanvasRole(owner.id, undefined, canvas.id),
        repos.users.sessionAndCanvasRole(stranger.id, undefined, canvas.id),
        repos.users.sessionAndCanvasRole(owner.id, live, randomUUID()),
        repos.users.sessionAndCanvasRole(owner.id, revoked, canvas.id),
        repos.users.sessionAndCanvasRole(randomUUID(), undefined, canvas.id),
        repos.users.sessionAndCanvasRole(owner.id, live, 'not-a-uuid'),
      ]);

      // A standing session also answers the user's tier and plan as stored now (the token's claim may be older).
      const plan = { tier: 'free', limitOverrides: null, updatedAt: expect.any(Date) };
      expect(answers).toEqual([
        { stands: true, role: 'owner', tier: 'free', plan },
        { stands: true, role: 'owner', tier: 'free', plan },
        { stands: true, role: null, tier: 'free', plan },
        { stands: true, role: null, tier: 'free', plan },
        { stands: false, role: null },
        { stands: false, role: null },
        { stands: false, role: null },
      ]);
    });

    test('given a revoked family, tokens of other families still work', async () => {
      const user = await newUser();
      const revokedFamily = randomUUID();
      await issue(user.id, revokedFamily);
      const otherToken = await issue(user.id, randomUUID());

      await repos.users.revokeFamily(revokedFamily);

      await expect(repos.users.consumeRefreshToken(otherToken)).resolves.toMatchObject({ status: 'ok' });
    });
  });

  describe('canvases', () => {
    test('given a new canvas, its creator is its owner member', async () => {
      const { owner, canvas } = await newCanvas();

      expect(canvas).toMatchObject({ title: 'Launch plan', ownerId: owner.id, role: 'owner' });
      await expect(repos.canvases.roleOf(canvas.id, owner.id)).resolves.toBe('owner');
      await expect(repos.canvases.listMembers(canvas.id)).resolves.toEqual([
        { userId: owner.id, name: 'Owner', email: owner.email, role: 'owner' },
      ]);
    });

    test('given a member added then promoted, roleOf follows; strangers and unknown canvases get null', async () => {
      const { canvas } = await newCanvas();
      const member = await newUser('Member');
      const stranger = await newUser('Stranger');

      await repos.canvases.upsertMember(canvas.id, member.id, 'viewer');
      const asViewer = await repos.canvases.roleOf(canvas.id, member.id);
      await repos.canvases.upsertMember(canvas.id, member.id, 'editor');

      expect(asViewer).toBe('viewer');
      await expect(repos.canvases.roleOf(canvas.id, member.id)).resolves.toBe('editor');
      await expect(repos.canvases.roleOf(canvas.id, stranger.id)).resolves.toBeNull();
      await expect(repos.canvases.roleOf(randomUUID(), member.id)).resolves.toBeNull();
    });

    test('given canvases of several owners, each user lists only the canvases they belong to, with their role', async () => {
      const alice = await newUser('Alice');
      const bob = await newUser('Bob');
      const loner = await newUser('Loner');
      const aliceCanvas = await repos.canvases.create(alice.id, 'Alice private');
      const shared = await repos.canvases.create(bob.id, 'Shared');
      await repos.canvases.upsertMember(shared.id, alice.id, 'editor');

      const forAlice = await repos.canvases.listForMember(alice.id);
      const forBob = await repos.canvases.listForMember(bob.id);

      expect(forAlice.map((canvas) => [canvas.id, canvas.role])).toEqual([
        [aliceCanvas.id, 'owner'],
        [shared.id, 'editor'],
      ]);
      expect(forBob.map((canvas) => [canvas.id, canvas.role])).toEqual([[shared.id, 'owner']]);
      await expect(repos.canvases.listForMember(loner.id)).resolves.toEqual([]);
      await expect(repos.canvases.findForMember(aliceCanvas.id, bob.id)).resolves.toBeNull();
    });
  });

  describe('blocks', () => {
    test('given two blocks, insertMany puts 200 blocks between them in one batch of strictly increasing ranks', async () => {
      const { owner, canvas } = await newCanvas();
      const first = await repos.blocks.create(canvas.id, owner.id, text('first'), {});
      const last = await repos.blocks.create(canvas.id, owner.id, text('last'), {});
      const generationId = randomUUID();

      const inserted = await insertMany(canvas.id, texts('generated', 200), { afterId: first.id, generationId });

      const ranks = inserted.map((block) => block.rank);
      expect(inserted).toHaveLength(200);
      expect(new Set(ranks).size).toBe(200);
      expectStrictlyIncreasing([first.rank, ...ranks, last.rank]);
      expect(inserted.every((block) => block.generationSessionId === generationId && block.createdBy === AI_AGENT_USER_ID)).toBe(true);
      const listed = await repos.blocks.list(canvas.id);
      expect(textsOf(listed)).toEqual(['first', ...labels('generated', 200), 'last']);
      expectStrictlyIncreasing(listed.map((block) => block.rank));
    });

    /** The count the canvas row keeps and the count of its blocks. */
    const stored = async (canvasId: string) => {
      const [row] = rowsOf<{ kept: number; counted: number }>(
        await database.db.execute(
          sql`select block_count as kept, (select count(*)::int from blocks where canvas_id = ${canvasId}::uuid) as counted from canvases where id = ${canvasId}::uuid`,
        ),
      );
      return row;
    };

    /** The PostgreSQL error code of a failed statement (drizzle keeps the driver's error as its cause). */
    const pgCode = (error: unknown) =>
      (error as { code?: string }).code ?? ((error as { cause?: { code?: string } }).cause?.code as string | undefined);

    test('a block names a canvas that exists: an insert naming a missing one is refused whole with the foreign key error; a block never moves', async () => {
      const { owner, canvas } = await newCanvas();
      const other = await newCanvas();
      const missing = randomUUID();

      const refused = await database.db
        .execute(
          sql`insert into blocks (canvas_id, type, content, rank, created_by) values
            (${canvas.id}::uuid, 'text', '{}'::jsonb, 'a', ${owner.id}::uuid),
            (${missing}::uuid, 'text', '{}'::jsonb, 'b', ${owner.id}::uuid)`,
        )
        .then(
          () => null,
          (error: unknown) => error,
        );
      expect(pgCode(refused)).toBe('23503');
      expect(await stored(canvas.id)).toEqual({ kept: 0, counted: 0 });
      await expect(insertMany(missing, texts('orphan', 3))).rejects.toThrow();

      const block = await repos.blocks.create(canvas.id, owner.id, text('stays'), {});
      const moved = await database.db
        .execute(sql`update blocks set canvas_id = ${other.canvas.id}::uuid where id = ${block.id}::uuid`)
        .then(
          () => null,
          (error: unknown) => error,
        );
      expect(pgCode(moved)).toBe('23503');
      expect(textsOf(await repos.blocks.list(canvas.id))).toEqual(['stays']);
      expect(await stored(other.canvas.id)).toEqual({ kept: 0, counted: 0 });
    });

    test('deleting canvases deletes their blocks, and only theirs, in the same statement', async () => {
      const doomed = [await newCanvas(), await newCanvas()];
      const kept = await newCanvas();
      for (const { canvas } of [...doomed, kept]) await insertMany(canvas.id, texts('block', 5));

      await database.db.execute(sql`delete from canvases where id in (${doomed[0].canvas.id}::uuid, ${doomed[1].canvas.id}::uuid)`);

      const [left] = rowsOf<{ n: number }>(
        await database.db.execute(
          sql`select count(*)::int as n from blocks where canvas_id in (${doomed[0].canvas.id}::uuid, ${doomed[1].canvas.id}::uuid)`,
        ),
      );
      expect(left.n).toBe(0);
      expect(await stored(kept.canvas.id)).toEqual({ kept: 5, counted: 5 });
    });

    test("an insert racing its canvas's deletion either lands before it (and goes with it) or is refused: no block outlives its canvas", async () => {
      for (let round = 0; round < 10; round += 1) {
        const { canvas } = await newCanvas();
        const [, deleted] = await Promise.allSettled([insertMany(canvas.id, texts('racing', 20)), repos.canvases.delete(canvas.id)]);
        expect(deleted.status).toBe('fulfilled');
        const [left] = rowsOf<{ n: number }>(
          await database.db.execute(sql`select count(*)::int as n from blocks where canvas_id = ${canvas.id}::uuid`),
        );
        expect(left.n).toBe(0);
      }
    });

    test('appends racing into one canvas all land, each batch in one piece, with distinct ranks and the count kept', async () => {
      const { canvas } = await newCanvas();

      await Promise.all(Array.from({ length: 8 }, (_, i) => insertMany(canvas.id, texts(`batch ${i}`, 20))));

      const listed = await repos.blocks.list(canvas.id);
      expect(listed).toHaveLength(160);
      expect(new Set(listed.map((block) => block.rank)).size).toBe(160);
      expectStrictlyIncreasing(listed.map((block) => block.rank));
      // Each batch went in whole after the one before it committed: 20 of a kind in a row.
      const runs = textsOf(listed)
        .map((label) => String(label).replace(/ \d+$/, ''))
        .filter((label, i, all) => i === 0 || all[i - 1] !== label);
      expect(runs).toHaveLength(8);
      expect(await stored(canvas.id)).toEqual({ kept: 160, counted: 160 });

      // Under a cap, each append reads the count its predecessor left: exactly the cap lands.
      const capped = await newCanvas();
      const landed = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          repos.db.transaction((tx) =>
            repos.blocks.insertMany(tx, {
              canvasId: capped.canvas.id,
              createdBy: AI_AGENT_USER_ID,
              inputs: texts(`capped ${i}`, 20),
              placement: {},
              generationSessionId: null,
              maxBlocks: 150,
              whenFull: 'truncate',
            }),
          ),
        ),
      );
      expect(landed.reduce((sum, batch) => sum + batch.length, 0)).toBe(150);
      expect(await stored(capped.canvas.id)).toEqual({ kept: 150, counted: 150 });
    });

    test('the canvas row keeps its block count through inserts, deletes, an undo and a second canvas, and the cap reads it', async () => {
      const { owner, canvas } = await newCanvas();
      const other = await newCanvas();
      const single = await repos.blocks.create(canvas.id, owner.id, text('one'), {});
      const generationId = randomUUID();
      await insertMany(canvas.id, texts('generated', 30), { generationId });
      await insertMany(other.canvas.id, texts('elsewhere', 5));
      expect(await stored(canvas.id)).toEqual({ kept: 31, counted: 31 });
      expect(await stored(other.canvas.id)).toEqual({ kept: 5, counted: 5 });

      await repos.blocks.delete(canvas.id, single.id);
      await repos.db.transaction((tx) => repos.blocks.removeGeneration(tx, { canvasId: canvas.id, generationId, force: false }));
      await repos.blocks.create(canvas.id, owner.id, text('two'), {});
      expect(await stored(canvas.id)).toEqual({ kept: 1, counted: 1 });
      expect(await stored(other.canvas.id)).toEqual({ kept: 5, counted: 5 });

      // The cap counts what the row keeps: 5 held, 3 of 6 fit under 8, the next is refused.
      const capped = (inputs: BlockInput[], whenFull: 'refuse' | 'truncate') =>
        repos.db.transaction((tx) =>
          repos.blocks.insertMany(tx, {
            canvasId: other.canvas.id,
            createdBy: AI_AGENT_USER_ID,
            inputs,
            placement: {},
            generationSessionId: null,
            maxBlocks: 8,
            whenFull,
          }),
        );
      expect(await capped(texts('more', 6), 'truncate')).toHaveLength(3);
      await expect(capped(texts('over', 1), 'refuse')).rejects.toThrow();
      expect(await stored(other.canvas.id)).toEqual({ kept: 8, counted: 8 });
    });

    test('given no placement, new blocks go to the end; beforeId puts them before that block', async () => {
      const { owner, canvas } = await newCanvas();
      const tail = await repos.blocks.create(canvas.id, owner.id, text('b'), {});
      await repos.blocks.create(canvas.id, owner.id, text('c'), {});

      await repos.blocks.create(canvas.id, owner.id, text('a'), { beforeId: tail.id });
      await insertMany(canvas.id, texts('end', 2));

      expect(textsOf(await repos.blocks.list(canvas.id))).toEqual(['a', 'b', 'c', 'end 0', 'end 1']);
    });

    test('given an anchor of another canvas or anchors out of order, the insert is refused', async () => {
      const { owner, canvas } = await newCanvas();
      const other = await newCanvas();
      const foreign = await repos.blocks.create(other.canvas.id, other.owner.id, text('elsewhere'), {});
      const a = await repos.blocks.create(canvas.id, owner.id, text('a'), {});
      const b = await repos.blocks.create(canvas.id, owner.id, text('b'), {});

      await expect(insertMany(canvas.id, texts('x', 1), { afterId: foreign.id })).rejects.toBeInstanceOf(PlacementError);
      await expect(insertMany(canvas.id, texts('x', 1), { afterId: b.id, beforeId: a.id })).rejects.toBeInstanceOf(PlacementError);
      expect(textsOf(await repos.blocks.list(canvas.id))).toEqual(['a', 'b']);
    });

    test('given insertMany inside a transaction that then fails, no block is kept', async () => {
      const { owner, canvas } = await newCanvas();
      await repos.blocks.create(canvas.id, owner.id, text('kept'), {});
      const generationId = randomUUID();

      const persist = repos.db.transaction(async (tx) => {
        await repos.blocks.insertMany(tx, {
          canvasId: canvas.id,
          createdBy: AI_AGENT_USER_ID,
          inputs: texts('lost', 50),
          placement: {},
          generationSessionId: generationId,
        });
        await repos.audit.write({ actorId: AI_AGENT_USER_ID, action: 'generation.persisted', canvasId: canvas.id }, tx);
        throw new Error('crash after insert');
      });

      await expect(persist).rejects.toThrow('crash after insert');
      expect(textsOf(await repos.blocks.list(canvas.id))).toEqual(['kept']);
      await expect(repos.blocks.listByGeneration(generationId)).resolves.toEqual([]);
      await expect(repos.audit.listForCanvas(canvas.id)).resolves.toEqual([]);
    });

    test('given blocks of two generations and a manual one, removeGeneration removes only that generation', async () => {
      const { owner, canvas } = await newCanvas();
      const manual = await repos.blocks.create(canvas.id, owner.id, text('manual'), {});
      const undone = randomUUID();
      const kept = randomUUID();
      const undoneBlocks = await insertMany(canvas.id, texts('undone', 3), { generationId: undone });
      await insertMany(canvas.id, texts('kept', 2), { afterId: manual.id, generationId: kept });

      const { removed, keptIds } = await repos.db.transaction((tx) =>
        repos.blocks.removeGeneration(tx, { canvasId: canvas.id, generationId: undone, force: false }),
      );

      expect(removed.map((block) => block.id)).toEqual(undoneBlocks.map((block) => block.id));
      expect(keptIds).toEqual([]);
      expect(textsOf(await repos.blocks.list(canvas.id))).toEqual(['manual', 'kept 0', 'kept 1']);
    });

    test('given a rebalance and a hand edit, removeGeneration keeps only the edited block, and restore puts the rest back as they were', async () => {
      const { owner, canvas } = await newCanvas();
      const generationId = randomUUID();
      const generated = await insertMany(canvas.id, texts('generated', 3), { generationId });
      await repos.db.transaction((tx) => repos.blocks.rebalance(tx, canvas.id));
      await repos.blocks.update(canvas.id, generated[1].id, { content: { text: 'by hand' }, editedBy: owner.id });
      const before = await repos.blocks.list(canvas.id);

      const { removed, keptIds } = await repos.db.transaction((tx) =>
        repos.blocks.removeGeneration(tx, { canvasId: canvas.id, generationId, force: false }),
      );

      expect(removed.map((block) => block.id)).toEqual([generated[0].id, generated[2].id]);
      expect(keptIds).toEqual([generated[1].id]);
      const restored = await repos.db.transaction((tx) => repos.blocks.restore(tx, { canvasId: canvas.id, generationId, rows: removed }));
      expect(restored).toEqual({ restored: true, blocks: [before[0], before[2]] });
      expect(await repos.blocks.list(canvas.id)).toEqual(before);
      const again = await repos.db.transaction((tx) => repos.blocks.restore(tx, { canvasId: canvas.id, generationId, rows: removed }));
      expect(again).toEqual({ restored: false, reason: 'taken' });
    });

    test('given a generation id with the wrong canvas, removeGeneration removes nothing', async () => {
      const { canvas } = await newCanvas();
      const other = await newCanvas();
      const generationId = randomUUID();
      await insertMany(canvas.id, texts('mine', 2), { generationId });

      const { removed } = await repos.db.transaction((tx) =>
        repos.blocks.removeGeneration(tx, { canvasId: other.canvas.id, generationId, force: true }),
      );

      expect(removed).toEqual([]);
      await expect(repos.blocks.listByGeneration(generationId)).resolves.toHaveLength(2);
    });

    test('given long ranks from repeated inserts into one gap, rebalance keeps the order and shortens every rank', async () => {
      const { owner, canvas } = await newCanvas();
      const first = await repos.blocks.create(canvas.id, owner.id, text('first'), {});
      await repos.blocks.create(canvas.id, owner.id, text('last'), {});
      let anchor = first.id;
      for (let index = 0; index < 30; index++)
        anchor = (await repos.blocks.create(canvas.id, owner.id, text(`deep ${index}`), { afterId: anchor })).id;
      const before = await repos.blocks.list(canvas.id);

      await repos.db.transaction((tx) => repos.blocks.rebalance(tx, canvas.id));

      const after = await repos.blocks.list(canvas.id);
      expect(after.map((block) => block.id)).toEqual(before.map((block) => block.id));
      expectStrictlyIncreasing(after.map((block) => block.rank));
      const longest = (list: { rank: string }[]) => Math.max(...list.map((block) => block.rank.length));
      expect(longest(before)).toBeGreaterThan(2);
      expect(longest(after)).toBeLessThanOrEqual(1);
    });

    test('given a canvas that grows at its end (120 batches of 20, as generations append), no rank is ever rewritten: the first batch keeps its ranks', async () => {
      const { canvas } = await newCanvas();
      const first = await insertMany(canvas.id, texts('batch 0', 20), {});
      for (let batch = 1; batch < 120; batch++) await insertMany(canvas.id, texts(`batch ${batch}`, 20), {});

      const listed = await repos.blocks.list(canvas.id);
      expect(listed).toHaveLength(2_400);
      expect(listed.slice(0, 20).map((block) => [block.id, block.rank])).toEqual(first.map((block) => [block.id, block.rank]));
      expectStrictlyIncreasing(listed.map((block) => block.rank));
      expect(Math.max(...listed.map((block) => block.rank.length))).toBeLessThanOrEqual(4);
    });

    test('given neighbours whose ranks are near the length limit, an insert between them rebalances the canvas first', async () => {
      const { owner, canvas } = await newCanvas();
      const prefix = 'V'.repeat(47);
      await repos.db.insert(blocksTable).values([
        { canvasId: canvas.id, type: 'text', content: { text: 'left' }, rank: `${prefix}1`, createdBy: owner.id },
        { canvasId: canvas.id, type: 'text', content: { text: 'right' }, rank: `${prefix}2`, createdBy: owner.id },
      ]);
      const [left] = await repos.db
        .select()
        .from(blocksTable)
        .where(eq(blocksTable.rank, `${prefix}1`));

      await insertMany(canvas.id, texts('middle', 3), { afterId: left.id });

      const listed = await repos.blocks.list(canvas.id);
      expect(textsOf(listed)).toEqual(['left', 'middle 0', 'middle 1', 'middle 2', 'right']);
      expectStrictlyIncreasing(listed.map((block) => block.rank));
      expect(listed.every((block) => block.rank.length <= 2)).toBe(true);
    });

    test('given 20 concurrent creates at the same position, all succeed with distinct ranks', async () => {
      const { owner, canvas } = await newCanvas();
      const anchor = await repos.blocks.create(canvas.id, owner.id, text('anchor'), {});
      await repos.blocks.create(canvas.id, owner.id, text('tail'), {});

      const created = await Promise.all(
        Array.from({ length: 20 }, (_, index) => repos.blocks.create(canvas.id, owner.id, text(`racer ${index}`), { afterId: anchor.id })),
      );

      expect(new Set(created.map((block) => block.rank)).size).toBe(20);
      const listed = await repos.blocks.list(canvas.id);
      expect(listed).toHaveLength(22);
      expect(new Set(listed.map((block) => block.rank)).size).toBe(22);
      expect(listed[0].id).toBe(anchor.id);
      expect(listed[21].content.text).toBe('tail');
    });

    test('given an update with new content and a move, the block changes and moves', async () => {
      const { owner, canvas } = await newCanvas();
      const a = await repos.blocks.create(canvas.id, owner.id, text('a'), {});
      const b = await repos.blocks.create(canvas.id, owner.id, text('b'), {});

      const updated = await repos.blocks.update(canvas.id, b.id, {
        content: { text: 'b!' },
        placement: { beforeId: a.id },
        editedBy: owner.id,
      });

      expect(updated).toMatchObject({ id: b.id, content: { text: 'b!' } });
      expect(textsOf(await repos.blocks.list(canvas.id))).toEqual(['b!', 'a']);
      await expect(repos.blocks.update(canvas.id, randomUUID(), { content: { text: 'ghost' }, editedBy: owner.id })).resolves.toBeNull();
    });
  });

  describe('generations', () => {
    test('given a new generation, it is queued; creating it again with the same id changes nothing', async () => {
      const { owner, canvas } = await newCanvas();
      const id = randomUUID();

      await repos.generations.create({ id, canvasId: canvas.id, userId: owner.id, prompt: 'Plan the launch', afterId: null });
      await repos.generations.create({ id, canvasId: canvas.id, userId: owner.id, prompt: 'A different prompt', afterId: null });

      await expect(repos.generations.find(id)).resolves.toMatchObject({
        status: 'queued',
        prompt: 'Plan the launch',
        attempts: 0,
        blockCount: 0,
      });
      await expect(repos.generations.countActive(owner.id)).resolves.toBe(1);
      await expect(repos.generations.findOnCanvas(randomUUID(), id)).resolves.toBeNull();
      const found = await repos.generations.findOnCanvas(canvas.id, id);
      expect(found).toMatchObject({ id, canvasId: canvas.id, startedAt: null });
      expect(Math.abs(found!.createdAt.getTime() - Date.now())).toBeLessThan(60_000);
    });

    test('given a generation created with its run, both are written in one statement, or neither when the row is refused', async () => {
      const { owner, canvas } = await newCanvas();
      const id = randomUUID();
      const run = { kind: 'generation' as const, id, userId: owner.id, queue: 'generation', jobId: id };

      await repos.generations.createWithRun({ id, canvasId: canvas.id, userId: owner.id, prompt: 'Plan the launch', afterId: null }, run);

      await expect(repos.generations.find(id)).resolves.toMatchObject({ status: 'queued', prompt: 'Plan the launch', canvasId: canvas.id });
      await expect(repos.runs.find('generation', id)).resolves.toMatchObject({ status: 'queued', queue: 'generation', jobId: id });

      // A canvas that does not exist: the row's foreign key refuses it, and its run goes with it.
      const orphan = randomUUID();
      await expect(
        repos.generations.createWithRun(
          { id: orphan, canvasId: randomUUID(), userId: owner.id, prompt: 'p', afterId: null },
          { ...run, id: orphan, jobId: orphan },
        ),
      ).rejects.toThrow();
      await expect(repos.generations.find(orphan)).resolves.toBeNull();
      await expect(repos.runs.find('generation', orphan)).resolves.toBeNull();
    });

    test("given a generation's persist lock, it reads the canvas's block count, and null once the generation's row is gone", async () => {
      const { owner, canvas } = await newCanvas();
      const id = randomUUID();
      await repos.generations.create({ id, canvasId: canvas.id, userId: owner.id, prompt: 'p', afterId: null });
      await repos.blocks.create(canvas.id, owner.id, text('a'), {});
      await repos.blocks.create(canvas.id, owner.id, text('b'), {});

      const counted = await repos.db.transaction((tx) => repos.blocks.lockForGeneration(tx, canvas.id, id));
      expect(counted).toBe(2);
      // Another canvas's id with this generation: not its canvas, so nothing is locked.
      const other = await newCanvas();
      await expect(repos.db.transaction((tx) => repos.blocks.lockForGeneration(tx, other.canvas.id, id))).resolves.toBeNull();
      await repos.db.transaction((tx) => repos.generations.deleteOnCanvas(canvas.id, tx));
      await expect(repos.db.transaction((tx) => repos.blocks.lockForGeneration(tx, canvas.id, id))).resolves.toBeNull();
    });

    test("given a start, the generation's row comes back from the same statement: as the start left it, or as it is when nothing started", async () => {
      const { owner, canvas } = await newCanvas();
      const id = randomUUID();
      const move = { from: ['queued', 'running'] as const, unlessCancelRequested: true };
      await repos.generations.create({ id, canvasId: canvas.id, userId: owner.id, prompt: 'Plan the launch', afterId: null });

      // No run yet: nothing starts, and the row is still read.
      await expect(repos.generations.start(id, move)).resolves.toMatchObject({ run: null, started: false, row: { id, status: 'queued' } });

      await repos.runs.insert({ kind: 'generation', id, userId: owner.id, queue: 'generation', jobId: id });
      const started = await repos.generations.start(id, move);
      expect(started).toMatchObject({ started: true, run: { id, status: 'running' } });
      expect(started.row).toEqual(await repos.generations.find(id));
      expect(started.row).toMatchObject({ status: 'running', attempts: 1, prompt: 'Plan the launch', canvasId: canvas.id, afterId: null });
      expect(started.row!.startedAt).toBeInstanceOf(Date);

      // A generation whose row is gone (its canvas was deleted): no row, whatever its run does.
      await repos.db.transaction((tx) => repos.generations.deleteOnCanvas(canvas.id, tx));
      await expect(repos.generations.start(id, move)).resolves.toMatchObject({ run: { id }, row: null });
    });

    test('given raw SQL, dates, timestamps, intervals and numeric arrays come back as the text drizzle parses, in and out of a transaction', async () => {
      const query = sql`select timestamptz '2026-01-02 03:04:05+00' as at, timestamp '2026-01-02 03:04:05' as local, date '2026-01-02' as day, interval '1 day' as span, array[1.5, 2]::numeric[] as numbers, 7::int4 as count, true as yes`;
      const outside = rowsOf<Record<string, unknown>>(await repos.db.execute(query))[0];
      const inside = await repos.db.transaction(async (tx) => rowsOf<Record<string, unknown>>(await tx.execute(query))[0]);

      for (const row of [outside, inside]) {
        expect(typeof row.at).toBe('string');
        expect(new Date(String(row.at)).toISOString()).toBe('2026-01-02T03:04:05.000Z');
        expect(row).toMatchObject({ local: '2026-01-02 03:04:05', day: '2026-01-02', count: 7, yes: true });
        expect(typeof row.span).toBe('string');
        expect(String(row.numbers)).toBe('{1.5,2}');
      }
    });

    test('given a lock inside a transaction, the row can be read and updated there and the change is committed', async () => {
      const { owner, canvas } = await newCanvas();
      const id = randomUUID();
      await repos.generations.create({ id, canvasId: canvas.id, userId: owner.id, prompt: 'p', afterId: null });
      await repos.runs.insert({ kind: 'generation', id, userId: owner.id, queue: 'generation', jobId: id });
      await expect(repos.generations.start(id, { from: ['queued', 'running'], unlessCancelRequested: true })).resolves.toMatchObject({
        started: true,
        run: { id, status: 'running' },
      });

      const locked = await repos.db.transaction(async (tx) => {
        const row = await repos.generations.lock(id, tx);
        await repos.generations.update(
          id,
          { status: 'completed', blockCount: 3, inputTokens: 120, outputTokens: 45, completedAt: new Date() },
          tx,
        );
        return row;
      });

      expect(locked).toMatchObject({ id, status: 'running', attempts: 1 });
      // Timestamps read as Dates, inside a transaction as outside (PGlite reads them as text for drizzle).
      expect(locked!.startedAt).toBeInstanceOf(Date);
      expect(Math.abs(locked!.startedAt!.getTime() - Date.now())).toBeLessThan(60_000);
      await expect(repos.generations.find(id)).resolves.toMatchObject({
        status: 'completed',
        blockCount: 3,
        inputTokens: 120,
        outputTokens: 45,
      });
      await expect(repos.generations.countActive(owner.id)).resolves.toBe(0);
      await expect(repos.db.transaction((tx) => repos.generations.lock(randomUUID(), tx))).resolves.toBeNull();
    });

    test('given a finished run, start leaves it and its generation finished', async () => {
      const { owner, canvas } = await newCanvas();
      const id = randomUUID();
      await repos.generations.create({ id, canvasId: canvas.id, userId: owner.id, prompt: 'p', afterId: null });
      await repos.runs.insert({ kind: 'generation', id, userId: owner.id, queue: 'generation', jobId: id });
      await repos.runs.move('generation', id, { to: 'succeeded', from: ['queued'], unlessCancelRequested: true });
      await repos.generations.update(id, { status: 'undone', undoneAt: new Date() });

      const start = await repos.generations.start(id, { from: ['queued', 'running'], unlessCancelRequested: true });

      expect(start).toMatchObject({ started: false, run: { id, status: 'succeeded' } });
      expect(start.run!.endedAt).toBeInstanceOf(Date);
      await expect(repos.generations.find(id)).resolves.toMatchObject({ status: 'undone', attempts: 0 });
    });

    test('given a cancel request on a queued run, start refuses to start it', async () => {
      const { owner, canvas } = await newCanvas();
      const id = randomUUID();
      await repos.generations.create({ id, canvasId: canvas.id, userId: owner.id, prompt: 'p', afterId: null });
      await repos.runs.insert({ kind: 'generation', id, userId: owner.id, queue: 'generation', jobId: id });
      await repos.runs.requestCancel('generation', id, owner.id);

      const start = await repos.generations.start(id, { from: ['queued', 'running'], unlessCancelRequested: true });

      expect(start).toMatchObject({ started: false, run: { status: 'queued', cancelRequestedBy: owner.id } });
      expect(start.run!.cancelRequestedAt).toBeInstanceOf(Date);
      await expect(repos.generations.find(id)).resolves.toMatchObject({ status: 'queued', attempts: 0 });
    });
  });

  describe('audit', () => {
    test("given entries on two canvases, listForCanvas returns that canvas's entries in order, with details", async () => {
      const { owner, canvas } = await newCanvas();
      const other = await newCanvas();
      const generationId = randomUUID();

      await repos.audit.write({
        actorId: AI_AGENT_USER_ID,
        onBehalfOf: owner.id,
        action: 'generation.persisted',
        canvasId: canvas.id,
        targetType: 'generation',
        targetId: generationId,
        details: { blockCount: 3 },
      });
      await repos.db.transaction((tx) =>
        repos.audit.write(
          { actorId: owner.id, action: 'generation.undone', canvasId: canvas.id, targetType: 'generation', targetId: generationId },
          tx,
        ),
      );
      await repos.audit.write({ actorId: other.owner.id, action: 'canvas.renamed', canvasId: other.canvas.id });

      const rows = await repos.audit.listForCanvas(canvas.id);

      expect(rows).toEqual([
        expect.objectContaining({
          actorId: AI_AGENT_USER_ID,
          onBehalfOf: owner.id,
          action: 'generation.persisted',
          targetId: generationId,
          details: { blockCount: 3 },
        }),
        expect.objectContaining({ actorId: owner.id, onBehalfOf: null, action: 'generation.undone', details: {} }),
      ]);
      expect(typeof rows[0].createdAt).toBe('string');
    });
  });

  describe('webhook deliveries', () => {
    test('every attempt is logged, numbered, and a delivery keeps its newest ones; they go with the delivery', async () => {
      const owner = await newUser('Hooked');
      const endpoint = await repos.webhooks.createEndpoint({
        userId: owner.id,
        flowId: null,
        url: 'https://hooks.example.com/in',
        description: '',
        events: ['run.succeeded'],
        secretSealed: 'sealed',
      });
      const [delivery, other] = await repos.webhooks.createDeliveries(
        owner.id,
        [endpoint.id, endpoint.id],
        'run.succeeded',
        () => '{}',
        10,
      );
      const total = WEBHOOK_ATTEMPTS_KEPT + 2;
      for (let attempt = 1; attempt < total; attempt++)
        await repos.webhooks.recordAttempt(delivery.id, { status: 'retrying', responseStatus: 500, error: 'HTTP 500' });
      await repos.webhooks.recordAttempt(delivery.id, { status: 'delivered', responseStatus: 204, error: null });
      await repos.webhooks.recordAttempt(other.id, { status: 'failed', responseStatus: null, error: 'could not connect (ECONNREFUSED)' });

      const [logged, otherLogged] = await repos.webhooks.withAttempts(
        (await repos.webhooks.listDeliveries(owner.id, endpoint.id, { limit: 10 })).sort((a, b) =>
          a.id === delivery.id ? -1 : b.id === delivery.id ? 1 : 0,
        ),
      );
      expect(logged).toMatchObject({ id: delivery.id, attempts: total, status: 'delivered', responseStatus: 204 });
      expect(logged.attemptLog.map((row) => row.attempt)).toEqual(
        Array.from({ length: WEBHOOK_ATTEMPTS_KEPT }, (_, i) => total - WEBHOOK_ATTEMPTS_KEPT + 1 + i),
      );
      expect(logged.attemptLog.at(-1)).toMatchObject({ status: 'delivered', responseStatus: 204, error: null });
      expect(logged.attemptLog[0]).toMatchObject({ status: 'retrying', responseStatus: 500, error: 'HTTP 500' });
      expect(logged.attemptLog.every((row) => row.attemptedAt instanceof Date)).toBe(true);
      expect(otherLogged.attemptLog).toEqual([
        expect.objectContaining({ attempt: 1, status: 'failed', responseStatus: null, error: 'could not connect (ECONNREFUSED)' }),
      ]);

      expect(await repos.webhooks.deleteEndpoint(owner.id, endpoint.id)).toBe(true);
      const left = await repos.db.execute(
        sql`select count(*)::int as n from webhook_delivery_attempts where delivery_id in (${delivery.id}, ${other.id})`,
      );
      expect(rowsOf<{ n: number }>(left)[0].n).toBe(0);
    });
  });
});
