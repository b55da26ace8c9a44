import { REBALANCE_THRESHOLD } from '../../src/models/lexorank';
import type { Repositories } from '../../src/models';
import { blocks as blocksTable } from '../../src/models/schema';

/**
 * Plants `left` and `right` on a canvas with ranks at the rebalance threshold, written straight to
 * the database: the next insert between them rebalances the canvas (decisions 0013, 0150).
 */
export async function plantCrowdedPair(db: Repositories['db'], canvasId: string, createdBy: string) {
  const prefix = 'V'.repeat(REBALANCE_THRESHOLD - 1);
  const [left, right] = await db
    .insert(blocksTable)
    .values([
      { canvasId, type: 'text', content: { text: 'left' }, rank: `${prefix}1`, createdBy },
      { canvasId, type: 'text', content: { text: 'right' }, rank: `${prefix}2`, createdBy },
    ])
    .returning();
  return { left, right };
}
