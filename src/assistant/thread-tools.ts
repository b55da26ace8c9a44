import { BLOCK_TOOL_SPECS, checkToolCall, TOOL_BLOCK_TYPES } from '../ai/block-tools';
import type { ToolSpec } from '../ai/model-tools';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { CanvasFullError } from '../models/blocks-repository';
import type { CanvasRoom, StagedCanvasEvent } from '../schemas/canvas-room';
import { runToolCall } from '../turns/tool-call';

/** The turn a thread tool call belongs to: its sender (who the blocks are written as) and the thread's canvas. */
export interface ThreadToolTurn {
  userId: string;
  sessionId: string;
  canvasId: string;
}

/**
 * The canvas tools of a room thread's turns: a generation's `create_<type>` tools (the block
 * content schemas as arguments), run here on the server against the thread's canvas. A block is
 * written as the member whose message started the turn, only while they may still edit the
 * canvas, in one transaction with its `block_added` room event (as `POST /canvases/:id/blocks`
 * writes one); every refusal is `Error: …` text for the model, and the turn goes on.
 */
export class ThreadTools {
  readonly specs: readonly ToolSpec[] = BLOCK_TOOL_SPECS;

  constructor(
    private readonly deps: {
      repos: Pick<Repositories, 'blocks' | 'canvases'>;
      room: Pick<CanvasRoom, 'stage' | 'notify'>;
      maxBlocks: number;
      logger: Logger;
    },
  ) {}

  /** Whether `name` is one of these tools. */
  has(name: string): boolean {
    return name in TOOL_BLOCK_TYPES;
  }

  /** Runs one call through the tool-call pipeline: offered → arguments → the sender's role → execute. */
  run(turn: ThreadToolTurn, offered: Iterable<string>, name: string, rawArgs: unknown): Promise<string> {
    return runToolCall({
      name,
      args: rawArgs,
      offered,
      // The sender's standing now, not when they posted: a member demoted or removed since writes nothing.
      limit: async () => {
        const role = await this.deps.repos.canvases.roleOf(turn.canvasId, turn.userId);
        if (role === 'editor' || role === 'owner') return null;
        return {
          outcome: 'not_allowed',
          text: `Error: ${name} was NOT run: the member who asked can no longer edit this canvas. Tell them it was not done.`,
        };
      },
      execute: async (args) => ({ text: await this.createBlock(turn, name, args) }),
    });
  }

  private async createBlock(turn: ThreadToolTurn, name: string, args: unknown): Promise<string> {
    const checked = checkToolCall(name, args);
    if (!checked.ok) return `Error: ${checked.error}`;
    const { canvasId } = turn;
    let staged: StagedCanvasEvent | undefined;
    let reranked = false;
    try {
      const block = await this.deps.repos.blocks.create(
        canvasId,
        turn.userId,
        checked.block,
        {},
        this.deps.maxBlocks,
        async (created) => {
          staged = await this.deps.room.stage(canvasId, 'block_added', { canvasId, block: created });
        },
        () => (reranked = true),
      );
      await staged?.send();
      if (reranked) await this.deps.room.notify(canvasId, 'blocks_reranked', { canvasId });
      return `Created ${block.type} block ${block.id}.`;
    } catch (error) {
      if (error instanceof CanvasFullError) return `Error: ${name} was NOT run: the canvas is full (${error.limit} blocks).`;
      this.deps.logger.warn({ err: error, canvasId, tool: name }, 'thread canvas tool failed');
      return `Error: ${name} failed; the block was not added.`;
    }
  }
}
