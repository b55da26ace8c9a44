// One agentflow execution (`#/flows/<id>/executions/<executionId>`): its status, input, output
// or error, and per node the prompt it was given, its answer, model, tokens, cost, timing,
// attempts, tool calls and error, and its control flow (flow-execution-control.js: skipped nodes,
// the branch taken, a foreach's items, a loop's iterations, a subflow's child). The stored record
// (`GET …/executions/:id`) is drawn first, with the definition of the version it runs; the
// execution's events (`GET …/executions/:id/events`, replayed from the start, then live) update
// it while it runs, and the record is read again once it ends.
import { el } from './blocks.js';
import { readEventStream } from './event-stream.js';
import { ControlState, controlDetails } from './flow-execution-control.js';
import { ReplayForms } from './flow-replay.js';
import { argumentList, toolSentence } from './tool-sentences.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const text = (value) => (value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value, null, 2));
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');
const seconds = (from, to) => (from && to ? `${((Date.parse(to) - Date.parse(from)) / 1000).toFixed(2)} s` : from ? 'running…' : '—');
const tokens = (usage) => (usage ? `${usage.inputTokens ?? 0} in / ${usage.outputTokens ?? 0} out` : '—');
const cost = (usage) => (usage?.costUsd ? `$${Number(usage.costUsd).toFixed(6)}` : '$0');

/** A prompt with its references filled as the runner fills them (inputs, and the outputs of finished nodes). */
export function fillPrompt(prompt, input, outputs) {
  return String(prompt ?? '').replace(/\{\{([^{}]*)\}\}/g, (whole, expression) => {
    const inputRef = /^\s*input\.([A-Za-z0-9_-]{1,64})\s*$/.exec(expression);
    if (inputRef) return typeof input?.[inputRef[1]] === 'string' ? input[inputRef[1]] : JSON.stringify(input?.[inputRef[1]] ?? null);
    const nodeRef = /^\s*nodes\.([A-Za-z0-9_-]{1,64})\.output\s*$/.exec(expression);
    if (nodeRef) return outputs.has(nodeRef[1]) ? text(outputs.get(nodeRef[1])) : whole;
    return whole;
  });
}

export class ExecutionView {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.controller = null;
    this.replays = new ReplayForms(this);
    this.root = el('section', {
      class: 'card execution-view',
      hidden: true,
      dataset: { testid: 'flow-execution-view' },
      'aria-labelledby': 'execution-h',
    });
  }

  close() {
    this.controller?.abort();
    this.controller = null;
    this.root.hidden = true;
    this.root.replaceChildren();
    this.replays.reset();
    this.execution = null;
  }

  /** Shows the execution and follows it live until it ends. `onEnd()` when it ends while shown. */
  async open(flow, executionId, { onEnd } = {}) {
    this.close();
    this.flow = flow;
    const controller = (this.controller = new AbortController());
    try {
      const { execution } = await this.api.get(`/flows/${flow.id}/executions/${executionId}`);
      if (controller.signal.aborted) return;
      this.execution = execution;
      this.definition = await this.definitionOf(flow, execution.flowVersion);
      if (controller.signal.aborted) return;
      this.toolCalls = new Map();
      this.waiting = new Map();
      this.control = new ControlState();
      this.render();
      this.root.hidden = false;
      this.root.scrollIntoView({ block: 'start' });
      await this.follow(controller);
      if (controller.signal.aborted) return;
      const fresh = await this.api.get(`/flows/${flow.id}/executions/${executionId}`);
      if (controller.signal.aborted) return;
      this.execution = fresh.execution;
      this.waiting.clear();
      this.render();
      onEnd?.();
    } catch (error) {
      if (error.name !== 'AbortError') this.notify(`Could not open the execution: ${error.message}`, true);
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  }

  /** The definition of the version an execution runs (an evaluation's, a draft's), else the published one. */
  async definitionOf(flow, version) {
    if (!version || version === flow.publishedVersion) return flow.definition;
    try {
      return (await this.api.get(`/flows/${flow.id}/versions/${version}`)).version.definition;
    } catch {
      return flow.definition;
    }
  }

  /** Applies the execution's events (a finished one's replay too: it carries the tool calls and items). */
  async follow(controller) {
    const execution = this.execution;
    const node = (id) => execution.nodes.find((n) => n.id === id);
    await readEventStream(this.api, `/flows/${this.flow.id}/executions/${execution.id}/events`, {
      signal: controller.signal,
      onMessage: ({ event, data }) => {
        const now = new Date().toISOString();
        const target = data?.nodeId ? node(data.nodeId) : null;
        switch (event) {
          case 'execution_started':
            if (!TERMINAL.has(execution.status)) execution.status = 'running';
            break;
          case 'node_started':
            if (target && !TERMINAL.has(target.status)) Object.assign(target, { status: 'running', attempts: data.attempt ?? 1 });
            if (target) target.startedAt ??= now;
            break;
          case 'node_completed':
            if (target)
              Object.assign(target, {
                status: 'completed',
                output: data.output,
                usage: data.usage,
                reused: data.reused ?? target.reused,
                completedAt: target.completedAt ?? now,
              });
            this.waiting.delete(data.nodeId);
            break;
          case 'node_skipped':
            if (target && !TERMINAL.has(target.status)) target.status = 'skipped';
            break;
          case 'item_completed':
          case 'subflow_started':
            this.control.apply(event, data);
            break;
          case 'node_failed':
            if (target) Object.assign(target, { status: 'failed', error: data.error, completedAt: target.completedAt ?? now });
            this.waiting.delete(data.nodeId);
            break;
          case 'tool_called':
            if (!this.toolCalls.has(data.nodeId)) this.toolCalls.set(data.nodeId, []);
            this.toolCalls.get(data.nodeId).push(data);
            this.waiting.delete(data.nodeId);
            break;
          case 'approval_requested':
            this.waiting.set(data.nodeId, { ...data, request: null });
            void this.readApproval(data.nodeId, data.approvalId);
            break;
          case 'execution_completed':
            Object.assign(execution, { status: 'completed', output: data.output, usage: data.usage });
            break;
          case 'execution_failed':
            Object.assign(execution, { status: 'failed', error: data.error });
            break;
          case 'cancelled':
            execution.status = 'cancelled';
            break;
          default:
            return;
        }
        this.render();
      },
    });
  }

  /** The request behind a waiting node (its arguments), to decide it here. */
  async readApproval(nodeId, approvalId) {
    try {
      const request = await this.api.get(`/hitl/requests/${approvalId}`);
      const waiting = this.waiting.get(nodeId);
      if (waiting?.approvalId !== approvalId) return;
      waiting.request = request;
      this.render();
    } catch {
      // the Approvals panel still lists it
    }
  }

  async decide(nodeId, decision) {
    const waiting = this.waiting.get(nodeId);
    if (!waiting?.request) return;
    try {
      waiting.request = await this.api.request('PUT', `/hitl/requests/${waiting.approvalId}/${decision}`);
    } catch (error) {
      if (error.status !== 409) return this.notify(`Could not ${decision}: ${error.message}`, true);
      waiting.request = await this.api.get(`/hitl/requests/${waiting.approvalId}`).catch(() => waiting.request);
    }
    if (this.waiting.get(nodeId) === waiting) this.render();
  }

  /** "<tool> wants to …" with its arguments, and Approve / Reject while it waits. */
  approvalCard(nodeId, waiting) {
    const request = waiting.request;
    if (!request) return el('p', { class: 'waiting' }, `Waiting for your approval of ${waiting.tool}…`);
    const pending = request.status === 'pending';
    return el(
      'div',
      { class: 'chat-approval', dataset: { testid: 'execution-approval', status: request.status } },
      toolSentence(request.toolName, request.parameters),
      argumentList(request.parameters),
      pending
        ? el(
            'div',
            { class: 'row' },
            el(
              'button',
              { type: 'button', dataset: { testid: 'execution-approve' }, onclick: () => void this.decide(nodeId, 'approve') },
              'Approve',
            ),
            el(
              'button',
              {
                type: 'button',
                class: 'secondary',
                dataset: { testid: 'execution-reject' },
                onclick: () => void this.decide(nodeId, 'reject'),
              },
              'Reject',
            ),
          )
        : el('p', { class: 'decision' }, { approved: 'Approved.', rejected: 'Rejected.', timeout: 'Timed out: not run.' }[request.status]),
    );
  }

  async cancel() {
    const { flow, execution } = this;
    if (!execution) return;
    try {
      await this.api.post(`/flows/${flow.id}/executions/${execution.id}/cancel`);
      this.root.querySelector('[data-testid="execution-cancel"]').disabled = true;
    } catch (error) {
      this.notify(error.status === 409 ? 'It had already ended.' : `Could not cancel: ${error.message}`, error.status !== 409);
    }
  }

  render() {
    const x = this.execution;
    const outputs = new Map(x.nodes.filter((n) => n.status === 'completed').map((n) => [n.id, n.output]));
    const definitionNodes = new Map((this.definition?.nodes ?? []).map((n) => [n.id, n]));
    const parts = [
      el('a', { href: `#/flows/${this.flow.id}`, dataset: { testid: 'execution-back' } }, `← ${this.flow.name}`),
      el(
        'h2',
        { id: 'execution-h' },
        `Execution of v${x.flowVersion} `,
        el('span', { class: `badge status-${x.status}`, dataset: { testid: 'execution-status', status: x.status } }, x.status),
      ),
      TERMINAL.has(x.status)
        ? null
        : el(
            'button',
            { type: 'button', class: 'danger', dataset: { testid: 'execution-cancel' }, onclick: () => void this.cancel() },
            'Cancel',
          ),
      TERMINAL.has(x.status) ? this.replays.publishButton() : null,
      el(
        'dl',
        { class: 'execution-meta' },
        el('dt', {}, 'Id'),
        el('dd', {}, el('code', {}, x.id)),
        x.replayOf?.executionId
          ? [
              el('dt', {}, 'Replay of'),
              el(
                'dd',
                { dataset: { testid: 'execution-replay-of' } },
                el('a', { href: `#/flows/${this.flow.id}/executions/${x.replayOf.executionId}` }, 'the execution'),
                ` from “${x.replayOf.fromNode}”`,
              ),
            ]
          : null,
        el('dt', {}, 'Created'),
        el('dd', {}, new Date(x.createdAt).toLocaleString()),
        el('dt', {}, 'Duration'),
        el('dd', {}, seconds(x.startedAt, x.completedAt)),
        el('dt', {}, 'Tokens'),
        el('dd', { dataset: { testid: 'execution-tokens' } }, `${tokens(x.usage)} · ${cost(x.usage)}`),
      ),
      el('h3', {}, 'Input'),
      argumentList(x.input, 'execution-input'),
      x.error
        ? el('p', { class: 'error', dataset: { testid: 'execution-error' } }, `${x.error.code}: ${x.error.message}`)
        : x.output !== null && x.output !== undefined
          ? el(
              'div',
              {},
              el('h3', {}, 'Output'),
              el('pre', { class: 'flow-output', dataset: { testid: 'execution-output' } }, text(x.output)),
            )
          : null,
      el('h3', {}, 'Nodes'),
      el(
        'ol',
        { class: 'execution-nodes' },
        x.nodes.map((n) => this.nodeCard(n, definitionNodes.get(n.id), outputs)),
      ),
    ];
    // Details a reader opened stay open while the live events redraw the view.
    const open = new Set([...this.root.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
    this.root.replaceChildren(...parts.filter(Boolean));
    for (const details of this.root.querySelectorAll('details[data-key]')) if (open.has(details.dataset.key)) details.open = true;
  }

  nodeCard(n, definition, outputs) {
    const calls = this.toolCalls.get(n.id) ?? [];
    const waiting = this.waiting.get(n.id);
    const started = n.status !== 'pending' && n.status !== 'skipped';
    return el(
      'li',
      { class: 'execution-node', dataset: { testid: 'execution-node', nodeId: n.id, status: n.status } },
      el(
        'div',
        { class: 'row' },
        el('strong', {}, n.id),
        el('span', { class: `badge status-${n.status}`, dataset: { testid: 'execution-node-status' } }, n.status),
        n.attempts > 1 ? el('span', { class: 'small' }, `attempt ${n.attempts}`) : null,
        n.reused
          ? el(
              'span',
              {
                class: 'badge',
                title: 'Taken over from the replayed execution: no model call',
                dataset: { testid: 'execution-node-reused' },
              },
              'reused',
            )
          : null,
      ),
      el(
        'dl',
        { class: 'execution-meta' },
        el('dt', {}, 'Model'),
        el('dd', {}, n.usage?.model ? `${n.usage.provider} · ${n.usage.model}` : '—'),
        el('dt', {}, 'Started'),
        el('dd', {}, when(n.startedAt)),
        el('dt', {}, 'Took'),
        el('dd', { dataset: { testid: 'execution-node-time' } }, started ? seconds(n.startedAt, n.completedAt) : '—'),
        el('dt', {}, 'Tokens'),
        el('dd', { dataset: { testid: 'execution-node-tokens' } }, n.usage ? `${tokens(n.usage)} · ${cost(n.usage)}` : '—'),
      ),
      waiting ? this.approvalCard(n.id, waiting) : null,
      controlDetails(n, definition, this.control),
      definition?.prompt !== undefined && started
        ? el(
            'details',
            { class: 'node-io', dataset: { key: `${n.id}:input` } },
            el('summary', {}, 'Input (the prompt it was given)'),
            el('pre', { dataset: { testid: 'execution-node-input' } }, fillPrompt(definition.prompt, this.execution.input, outputs)),
          )
        : null,
      n.output !== null && n.output !== undefined
        ? el(
            'div',
            {},
            el('span', { class: 'small' }, 'Output'),
            el('pre', { dataset: { testid: 'execution-node-output' } }, text(n.output)),
          )
        : null,
      n.error ? el('p', { class: 'error', dataset: { testid: 'execution-node-error' } }, `${n.error.code}: ${n.error.message}`) : null,
      TERMINAL.has(this.execution.status) && n.status !== 'skipped' ? this.replays.controls(n, definition) : null,
      calls.length
        ? el(
            'details',
            { class: 'node-io', open: true },
            el('summary', {}, `Tool calls (${calls.length})`),
            el(
              'ol',
              {},
              calls.map((call) =>
                el(
                  'li',
                  { dataset: { testid: 'execution-tool-call', ok: String(call.ok) } },
                  el('code', {}, call.tool),
                  ` ${call.kind} · ${call.ok ? 'ok' : 'failed'} · ${call.durationMs} ms`,
                  argumentList(call.args),
                  el('pre', {}, call.result),
                ),
              ),
            ),
          )
        : null,
    );
  }
}
