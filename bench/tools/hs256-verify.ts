/**
 * What verifying one access token costs: jose's `jwtVerify` given the secret's bytes (the key
 * imported per call) against `verifyHs256` (jose with the key imported once, and the server's strict
 * checks around it), on the same tokens, with the options the server uses. Sequential latency per token and the process's CPU
 * per token (user + system, so the thread pool's work counts), in alternating rounds.
 *
 *   node -r ./bench/register.cjs bench/tools/hs256-verify.ts [tokens=5000] [rounds=3]
 */
import { SignJWT, jwtVerify } from 'jose';
import { verifyHs256 } from '../../src/auth/jose-hs256-verifier';

const [count = 5_000, rounds = 3] = process.argv.slice(2).map(Number);
const secret = new TextEncoder().encode('bench-secret-bench-secret-bench-secret-0123456789');
const expected = { issuer: 'switchboard', audience: 'switchboard-api' };

async function measure(name: string, tokens: string[], verify: (token: string) => Promise<unknown>): Promise<void> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (const token of tokens) if (!(await verify(token))) throw new Error(`${name} refused a valid token`);
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const micros = (value: number) => (value / tokens.length).toFixed(1).padStart(7);
  console.log(`${name.padEnd(11)} latency ${micros(wall * 1000)} µs   CPU ${micros(used.user + used.system)} µs per token`);
}

async function main(): Promise<void> {
  const tokens = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      new SignJWT({ email: `u${i}@example.test`, name: `User ${i}`, tier: 'free', role: 'user', sid: `s-${i}` })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(`user-${i}`)
        .setIssuer(expected.issuer)
        .setAudience(expected.audience)
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(secret),
    ),
  );
  console.log(`node ${process.version}, ${count} tokens`);
  const jose = (token: string) => jwtVerify(token, secret, { algorithms: ['HS256'], ...expected, requiredClaims: ['exp', 'sub'] });
  const ours = async (token: string) => verifyHs256(token, secret, expected);
  await measure('warm-up', tokens.slice(0, 500), jose);
  await measure('warm-up', tokens.slice(0, 500), ours);
  for (let round = 0; round < rounds; round += 1) {
    await measure('jose', tokens, jose);
    await measure('verifyHs256', tokens, ours);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
