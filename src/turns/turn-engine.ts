import { ModelCallCancelled } from '../ai/model-gateway';
import type { ToolSpec } from '../ai/model-tools';
import { invokeAgentAttributes } from '../observability/genai';
import { withSpan } from '../observability/tracing';
import { runToolLoop, type ParkedLoop, type ToolLoopOptions, type ToolLoopResult } from './tool-loop';

/**
 * What one turn of a feature adds to the engine's tool loop: tools of this server it offers (the
 * coding plan tool) and runs itself, and what happens to a round before it is parked (a coding
 * change's diff is computed first; a change that cannot be made is answered at once).
 */
export interface TurnHooks {
  /** Tools of this server offered besides the turn's own; their results are instructions, not outside text. */
  serverTools?: ToolSpec[];
  /** Runs a call of one of `serverTools`. */
  runServerTool?(name: string, args: unknown): string;
  /**
   * Before a round is parked: the waiting calls' previews by position, and the calls answered at
   * once instead (their error text). With answers, the loop goes on with them and may park again.
   */
  beforePark?(parked: ParkedLoop): Promise<{ previews: Map<number, Record<string, unknown>>; answered: Map<number, string> }>;
}

/**
 * A feature's turn spec, registered with the engine as a run kind registers its run spec with the
 * run kernel: `open` gives one turn's hooks from what the feature knows of that turn.
 */
export interface TurnSpec<C = unknown> {
  kind: string;
  open(context: C): TurnHooks;
}

/** How a turn's loop ended. */
export type TurnOutcome =
  | { type: 'answered'; result: ToolLoopResult }
  | { type: 'parked'; result: ToolLoopResult & { parked: ParkedLoop }; previews: Map<number, Record<string, unknown>> }
  /** Cancelled: `streamed` is what the person saw of the answer (kept); `usage` the cut-short call's, when it was. */
  | { type: 'cancelled'; streamed: string; usage?: ModelCallCancelled['usage'] };

/** One turn to run: the loop (without its text sink), how its text is published, and whether it may park. */
export interface TurnRun {
  loop: Omit<ToolLoopOptions, 'onText'>;
  /** Text a resumed turn had streamed before it parked. */
  streamed?: string;
  /** Text the turn's stream showed before this loop (a plan's earlier steps): this loop's first piece follows it after a blank line. */
  prior?: string;
  /** Each piece of streamed text, in order (a piece after `prior` starts with the blank line). */
  publish(piece: string): void;
  /**
   * Whether a round that needs a person parks (approvals are wired, the turn has a place to ask
   * each waiting call); else the loop answers. A function decides round by round.
   */
  canPark: boolean | ((parked: ParkedLoop) => boolean);
}

/** A turn's loop that parked on a round of approvals. */
export type ParkedOutcome = Extract<TurnOutcome, { type: 'parked' }>;

/** Who answers a driven turn, as its `invoke_agent` span names it: the agent, and the conversation the turn belongs to. */
export interface TurnAgent {
  name: string;
  conversationId?: string;
}

/**
 * A turn the engine drives from its first leg to its end. A leg is one loop of the turn (from the
 * person's message, from a resumed round, a plan's next step); the feature prepares each leg's
 * loop, and says what an answered leg leads to: the turn's answer, or its next leg. Parking,
 * finishing and ending cancelled or failed are the feature's life on the run kernel.
 */
export interface DrivenTurn<L, H extends TurnHooks, R> {
  readonly agent: TurnAgent;
  /** The leg's hooks (from the feature's turn spec) and loop. */
  prepare(leg: L): Promise<{ hooks: H; run: TurnRun }>;
  /** A leg answered: the turn's answer, or the next leg to run (a plan's next step). */
  answered(leg: L, result: ToolLoopResult, hooks: H): Promise<{ response: string } | { next: L }>;
  /** Stores the turn's answer and ends it. */
  finish(leg: L, response: string, result: ToolLoopResult): Promise<R>;
  /** Parks the turn on the round's approvals: no worker holds it while a person decides. */
  park(leg: L, outcome: ParkedOutcome): Promise<R>;
  /** Ends the turn cancelled, keeping what the person saw. */
  cancelled(leg: L, outcome: Extract<TurnOutcome, { type: 'cancelled' }>): Promise<R>;
  /** Anything that went wrong on the way (a cancel that surfaced as an error included): the feature ends the turn. */
  failed(leg: L, error: unknown): Promise<R>;
}

/**
 * The turn engine: runs the tool loop of any tool-using turn (the chat turn, the coding turn, the
 * agentflow node) with the hooks its feature's spec gives, and says how it ended: answered,
 * parked on a round of approvals, or cancelled (with what the person saw, which the turn keeps).
 * `drive` owns a whole turn's course, leg after leg (a coding plan's steps are legs); storing the
 * answer, parking the round and ending the run stay with the feature's life on the run kernel.
 * The engine holds no worker slot and reads no store of its own.
 */
export class TurnEngine {
  private readonly specs = new Map<string, TurnSpec<never>>();

  /** Registers a feature's turn spec; a kind is registered once. */
  register<C>(spec: TurnSpec<C>): this {
    if (this.specs.has(spec.kind)) throw new Error(`The turn kind ${spec.kind} is registered already`);
    this.specs.set(spec.kind, spec as TurnSpec<never>);
    return this;
  }

  /** One turn's hooks from its kind's spec. */
  open<C>(kind: string, context: C): TurnHooks {
    const spec = this.specs.get(kind) as TurnSpec<C> | undefined;
    if (!spec) throw new Error(`No turn spec is registered for ${kind}`);
    return spec.open(context);
  }

  /** Runs (or resumes) a turn's loop with `hooks`; never throws for the model's or the tools' failures. */
  async run(hooks: TurnHooks, turn: TurnRun): Promise<TurnOutcome> {
    let streamed = turn.streamed ?? '';
    // A plan step's text follows the earlier answers after a blank line (the chunks still concatenate to the answer).
    let separate = Boolean(turn.prior) && !streamed;
    const server = new Set((hooks.serverTools ?? []).map((tool) => tool.name));
    const loop: ToolLoopOptions = {
      ...turn.loop,
      tools: [...turn.loop.tools, ...(hooks.serverTools ?? [])],
      trustedResults: new Set([...(turn.loop.trustedResults ?? []), ...server]),
      executeTool: (name, args, step) =>
        server.has(name) && hooks.runServerTool
          ? Promise.resolve(hooks.runServerTool(name, args))
          : turn.loop.executeTool(name, args, step),
      onText: (text) => {
        streamed += text;
        const piece = separate ? `\n\n${text}` : text;
        separate = false;
        turn.publish(piece);
      },
    };
    try {
      let result = await runToolLoop(loop);
      let previews = new Map<number, Record<string, unknown>>();
      const canPark = (parked: ParkedLoop) => (typeof turn.canPark === 'function' ? turn.canPark(parked) : turn.canPark);
      while (result.parked && canPark(result.parked) && hooks.beforePark) {
        const prepared = await hooks.beforePark(result.parked);
        previews = prepared.previews;
        if (!prepared.answered.size) break;
        result = await runToolLoop({ ...loop, messages: [], resume: { state: result.parked, results: prepared.answered } });
      }
      if (result.parked && canPark(result.parked))
        return { type: 'parked', result: result as ToolLoopResult & { parked: ParkedLoop }, previews };
      return { type: 'answered', result };
    } catch (error) {
      // The gateway recorded the cut-short call's usage already; the turn's total includes it.
      if (error instanceof ModelCallCancelled) return { type: 'cancelled', streamed, usage: error.usage };
      if (turn.loop.signal?.aborted) return { type: 'cancelled', streamed };
      throw error;
    }
  }

  /**
   * Drives a turn from `leg` to its end, leg after leg: each leg's loop runs, then the turn parks,
   * ends cancelled, or goes on with the next leg its answer leads to, until it has its answer.
   * What fails on the way is handed to the turn's `failed`, once. The drive is one `invoke_agent`
   * span (the turn's first job, and each resume after a park): its model and tool calls are its children.
   */
  drive<L, H extends TurnHooks, R>(turn: DrivenTurn<L, H, R>, leg: L): Promise<R> {
    return withSpan(`invoke_agent ${turn.agent.name}`, 'internal', invokeAgentAttributes(turn.agent), () => this.legs(turn, leg));
  }

  private async legs<L, H extends TurnHooks, R>(turn: DrivenTurn<L, H, R>, leg: L): Promise<R> {
    for (;;) {
      try {
        const { hooks, run } = await turn.prepare(leg);
        const outcome = await this.run(hooks, run);
        if (outcome.type === 'cancelled') return await turn.cancelled(leg, outcome);
        if (outcome.type === 'parked') return await turn.park(leg, outcome);
        const after = await turn.answered(leg, outcome.result, hooks);
        if ('response' in after) return await turn.finish(leg, after.response, outcome.result);
        leg = after.next;
      } catch (error) {
        return turn.failed(leg, error);
      }
    }
  }
}
