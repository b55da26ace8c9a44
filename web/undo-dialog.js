// The question before an undo that involves hand-edited blocks (the API's 409 `edited_blocks`,
// asked for with `askIfEdited`): keep the edited blocks, or remove them too (`force`).
import { blockSummary } from './blocks.js';
import { ask } from './confirm-dialog.js';

/**
 * Resolves 'keep', 'force' or null (cancelled). `blocks` maps ids to the blocks on the board, to
 * show what was edited; ids not on the board are counted.
 */
export function askUndoEdited(editedIds, blocks) {
  const details = editedIds.map((id) => {
    const block = blocks.get(id);
    return block ? `${block.type.replace('_', ' ')}: ${blockSummary(block).slice(0, 120)}` : 'a block not shown here';
  });
  const count = editedIds.length === 1 ? '1 block' : `${editedIds.length} blocks`;
  return ask({
    title: 'Undo this generation?',
    message: `People have edited ${count} of this generation since it was written. Keep those and remove the rest, or remove them too?`,
    details,
    actions: [
      { value: 'keep', label: 'Keep edited blocks' },
      { value: 'force', label: 'Undo anyway (remove them too)', danger: true },
    ],
    testid: 'undo-dialog',
  });
}
