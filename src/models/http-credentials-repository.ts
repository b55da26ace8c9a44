import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './database';
import { httpCredentials, type HttpCredentialRow } from './schema';

/** What the API shows of a credential: never its value, sealed or not. */
export function toHttpCredentialView(
  row: Pick<HttpCredentialRow, 'name' | 'scheme' | 'headerName' | 'origins' | 'createdAt' | 'updatedAt'>,
) {
  return {
    name: row.name,
    scheme: row.scheme,
    headerName: row.headerName,
    origins: row.origins,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** A user's sealed HTTP tool credentials, always read and written as their owner. */
export class HttpCredentialsRepository {
  constructor(private readonly db: Db) {}

  /** Creates or replaces the owner's credential `name`; `created` tells which. */
  async put(input: {
    userId: string;
    name: string;
    scheme: HttpCredentialRow['scheme'];
    headerName: string | null;
    sealedValue: string;
    origins: string[];
  }): Promise<{ row: HttpCredentialRow; created: boolean }> {
    const before = await this.find(input.userId, input.name);
    const [row] = await this.db
      .insert(httpCredentials)
      .values(input)
      .onConflictDoUpdate({
        target: [httpCredentials.userId, httpCredentials.name],
        set: {
          scheme: input.scheme,
          headerName: input.headerName,
          sealedValue: input.sealedValue,
          origins: input.origins,
          updatedAt: sql`now()`,
        },
      })
      .returning();
    return { row, created: !before };
  }

  async count(userId: string): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(httpCredentials)
      .where(eq(httpCredentials.userId, userId));
    return row?.n ?? 0;
  }

  /** The owner's credentials by name (the sealed values are left out). */
  async list(userId: string) {
    return this.db
      .select({
        name: httpCredentials.name,
        scheme: httpCredentials.scheme,
        headerName: httpCredentials.headerName,
        origins: httpCredentials.origins,
        createdAt: httpCredentials.createdAt,
        updatedAt: httpCredentials.updatedAt,
      })
      .from(httpCredentials)
      .where(eq(httpCredentials.userId, userId))
      .orderBy(asc(httpCredentials.name))
      .limit(1_000);
  }

  async find(userId: string, name: string): Promise<HttpCredentialRow | null> {
    const rows = await this.db
      .select()
      .from(httpCredentials)
      .where(and(eq(httpCredentials.userId, userId), eq(httpCredentials.name, name)))
      .limit(1);
    return rows[0] ?? null;
  }

  /** The origins of each of `names` the owner has (null: stored before credentials had origins); absent names are left out. */
  async originsOf(userId: string, names: string[]): Promise<Map<string, string[] | null>> {
    if (!names.length) return new Map();
    const rows = await this.db
      .select({ name: httpCredentials.name, origins: httpCredentials.origins })
      .from(httpCredentials)
      .where(and(eq(httpCredentials.userId, userId), inArray(httpCredentials.name, names)));
    return new Map(rows.map((row) => [row.name, row.origins]));
  }

  async remove(userId: string, name: string): Promise<boolean> {
    const rows = await this.db
      .delete(httpCredentials)
      .where(and(eq(httpCredentials.userId, userId), eq(httpCredentials.name, name)))
      .returning({ id: httpCredentials.id });
    return rows.length > 0;
  }
}
