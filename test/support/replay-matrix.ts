import { startTestApp, type TestApp } from './app';
import type { ReplayProfile } from './provider-profiles';
import { ANSWER_TAIL, REASONING_MARK, startProviderReplay, type ReplayServer } from './provider-replay';
import { REPORTED } from './provider-wire';
import { hasNoteSections } from '../../src/assistant/ticket-notes';
import { expectedOf, PATHS, runPath, usageOf, type PathContext, type PathName } from './replay-paths';

/*
 * The provider replay matrix: every given provider's stream shape (provider-profiles.ts, each with
 * its sources) on every user path, through the real API, workers, queues, database and the real
 * @langchain/openai client over HTTP. Each cell asserts what a user of any provider is owed: the
 * demo model's result (newlines and unicode intact), usage recorded as the provider reported it
 * (an estimate when it reported none), no reasoning text anywhere in the answer, no hang; and where
 * the profile has a failure scenario, a clear `error` with the code and the reason. A new user (and
 * canvas, session, flow, agent, device) per cell; one app serves the profiles in turn through the
 * replay server's chosen profile (an app holds no state about its model endpoint, except what a
 * profile marked `ownEndpoint` teaches it: such a profile gets an app of its own).
 */

const CELL_MS = 30_000;

/** Declares the matrix for `profiles` (one describe block per profile). */
export function describeReplayMatrix(profiles: ReplayProfile[]): void {
  const shared = profiles.filter((profile) => !profile.ownEndpoint);
  const groups = [...(shared.length ? [shared] : []), ...profiles.filter((profile) => profile.ownEndpoint).map((profile) => [profile])];
  describe.each(groups.map((group) => [group.map((profile) => profile.name).join(', '), group] as const))(
    'an app served %s',
    (_names, group) => {
      let replay: ReplayServer;
      let t: TestApp;
      let ctx: PathContext;

      beforeAll(async () => {
        replay = await startProviderReplay();
        // A user per cell, all from this one client: more registrations than the hourly limit per client.
        t = await startTestApp({
          llmBaseURL: replay.chosenBaseUrl,
          env: { SWITCHBOARD_ROLES: 'api,worker', REGISTRATIONS_PER_IP_PER_HOUR: '1000' },
        });
        ctx = { app: t.app, api: t.api, url: t.url, replay, devices: [] };
      }, 60_000);

      afterEach(() => {
        for (const device of ctx?.devices.splice(0) ?? []) device.close();
      });

      afterAll(async () => {
        await t?.stop();
        await replay?.close();
      }, 60_000);

      describe.each(group.map((profile) => [profile.name, profile] as const))('provider %s', (_name, profile: ReplayProfile) => {
        beforeAll(() => replay.choose(profile));
        describeCells(() => ({ t, ctx }), profile);
      });
    },
  );
}

/** The cells of one profile: every path, and every path under its failure scenario. */
function describeCells(app: () => { t: TestApp; ctx: PathContext }, profile: ReplayProfile): void {
  test.each(PATHS.map((path) => [path] as const))(
    '%s: the demo model’s result, usage as reported, no reasoning shown',
    async (path: PathName) => {
      const { t, ctx } = app();
      const result = await runPath(ctx, path);
      if (!result.ok) throw new Error(`${path} failed on ${profile.name}: ${result.code ?? ''} ${result.message}`);
      expect(result.played.length).toBeGreaterThan(0);
      expect(result.text).toBe(expectedOf(path, result.played));
      // Streamed text is the answer, piece for piece.
      if (path === 'chat' || path === 'chat-device' || path === 'chatflow' || path === 'notes') expect(result.extra).toBe(result.text);
      // Unicode on its own line survives every provider's framing (CRLF, byte splits, parts).
      if (path === 'generation') expect(result.text).toContain(JSON.stringify(`\n${ANSWER_TAIL}`).slice(1, -1));
      else if (path !== 'notes' && path !== 'agent-run') expect(result.text).toContain(`\n${ANSWER_TAIL}`);
      expect(JSON.stringify(result)).not.toContain(REASONING_MARK);

      // The model calls' lines: a session's embedding, queued once its notes are stored, is the
      // embeddings endpoint's (the same on every profile) and may or may not have landed yet.
      const lines = (await usageOf(t.app, result.user.id)).filter((line) => line.purpose !== 'embedding');
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) {
        expect(line.estimated).toBe(!profile.sendsUsage);
        expect(line.inputTokens).toBeGreaterThan(0);
        if (profile.sendsUsage) {
          expect(line.inputTokens % REPORTED.prompt).toBe(0);
          expect(line.outputTokens % REPORTED.completion).toBe(0);
        }
      }
    },
    CELL_MS,
  );

  const failure = profile.failure;
  if (failure)
    test.each(PATHS.map((path) => [path] as const))(
      `%s: the failure scenario ends with ${failure.code} and its reason`,
      async (path: PathName) => {
        const result = await runPath(app().ctx, path, true);
        if (path === 'notes') {
          // Notes fall back to the ones built from the session without a model, and still end [DONE].
          expect(result.ok).toBe(true);
          if (!result.ok) return;
          expect(hasNoteSections(result.text)).toBe(true);
          expect(result.text).toContain('Restarted the printer.');
          return;
        }
        expect(result.ok).toBe(false);
        if (result.ok) return;
        // Agent runs say it in their errors; the others carry the code.
        if (path !== 'agent-run') expect(result.code).toBe(failure.code);
        expect(result.message).toMatch(failure.reason);
        // An answer stopped early says its code in words too (the model's reason is the news); the
        // notes fall back to notes built without a model instead.
        if (failure.code !== 'llm_unavailable' && failure.code !== 'llm_auth_failed' && path === 'agent-run')
          expect(result.message).toContain(failure.code);
      },
      CELL_MS,
    );
}
