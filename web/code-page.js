// The Code page (`#/code`): the coding agents on a folder one of the user's devices serves. Pick a
// device with a project and an agent, ask; the turn is `POST /chat/stream` with `agent`, read as
// SSE: `agent` says who works and what it does, `plan` shows the Orchestrator's steps, `tool_call`
// and `tool_result` list the work, `approval_requested` shows a change's diff (or a command) with
// Approve and Reject (PUT /hitl/requests/:id/approve|reject), and `final`, `error` or `cancelled`
// end it; Stop is `POST /chat/sessions/:id/cancel`. The changes the device keeps are listed with
// Undo (`GET /devices/:id/changes`, `POST /devices/:id/changes/:changeId/undo`).
import { el } from './blocks.js';
import { describeError, pageRoot, setState, when, withCode } from './page-kit.js';

const AGENTS = [
  ['orchestrator', 'Orchestrator: picks the agent, or plans steps for several'],
  ['ask', 'Ask: answers questions, changes nothing'],
  ['coder', 'Coder: makes changes (you approve each diff)'],
  ['debug', 'Debug: runs commands (you approve each) and explains failures'],
  ['architect', 'Architect: plans, changes nothing'],
];

/** Code spans of a text as `<code>`; a lone backtick (an odd one out) stays as it is. */
function spans(text) {
  const last = text.lastIndexOf('`');
  return text.split('`').length % 2 ? withCode(text) : [...withCode(text.slice(0, last)), text.slice(last)];
}

/** An answer as Markdown code shows: fenced blocks (```) as `<pre>`, code spans (`…`) as `<code>`, never the backticks. */
export function codeText(text) {
  return text
    .split(/```[\w+-]*\n?([\s\S]*?)```/)
    .flatMap((part, index) => (index % 2 ? [el('pre', { class: 'code-block' }, part)] : spans(part)));
}

/** What a change did, in words: an undo says which change it undid (by its time) when the list still holds it. */
function changeVerb(change, changes) {
  if (change.tool !== 'undo_change') return change.deleted ? 'deleted' : change.created ? 'created' : 'changed';
  const undid = changes.find((other) => other.undoneBy === change.changeId);
  return `restored by an undo${undid ? ` of the change at ${when(undid.at)}` : ''}`;
}

export class CodePage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.controller = null;
    this.sessionId = null;
    ({ root: this.root, $: this.$ } = pageRoot('code-view'));
    const form = el(
      'form',
      { class: 'code-form', dataset: { testid: 'code-form' } },
      el('label', {}, 'Device ', el('select', { dataset: { testid: 'code-device' } })),
      el(
        'label',
        {},
        'Agent ',
        el('select', { dataset: { testid: 'code-agent' } }, ...AGENTS.map(([v, l]) => el('option', { value: v }, l))),
      ),
      el('textarea', {
        rows: 3,
        maxlength: 8000,
        placeholder: 'Ask about the code, or ask for a change',
        dataset: { testid: 'code-input' },
      }),
      el('button', { type: 'submit', dataset: { testid: 'code-send' } }, 'Send'),
      el('button', { type: 'button', hidden: true, dataset: { testid: 'code-stop' } }, 'Stop'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.send();
    });
    this.root.replaceChildren(
      el('h1', { id: 'code-h' }, 'Code'),
      el(
        'p',
        { class: 'small' },
        ...withCode(
          'The coding agents work on a folder your device serves (`switchboard device --project .`). ' +
            'Reads run at once; every change and command waits for your approval, and every change can be undone.',
        ),
      ),
      form,
      el('p', { class: 'state', 'aria-live': 'polite', dataset: { testid: 'code-state' } }),
      el('ol', { class: 'code-plan', hidden: true, dataset: { testid: 'code-plan' } }),
      el('div', { class: 'code-log', dataset: { testid: 'code-log' } }),
      el('h2', {}, 'Changes'),
      el('p', { class: 'state', dataset: { testid: 'code-changes-state' } }),
      el('ul', { class: 'item-list', dataset: { testid: 'code-changes' } }),
    );
    this.$('code-stop').addEventListener('click', () => void this.stop());
    this.$('code-device').addEventListener('change', () => void this.loadChanges());
  }

  async show() {
    await this.loadDevices();
  }

  reset() {
    this.controller?.abort();
    this.controller = null;
    this.sessionId = null;
    this.$('code-log').replaceChildren();
    this.$('code-plan').hidden = true;
  }

  async loadDevices() {
    const select = this.$('code-device');
    try {
      const { devices } = await this.api.get('/devices');
      const projects = devices.filter((d) => d.online && d.project);
      const current = select.value;
      select.replaceChildren(...projects.map((d) => el('option', { value: d.deviceId }, `${d.project.name} on ${d.deviceId}`)));
      if (projects.some((d) => d.deviceId === current)) select.value = current;
      const state = this.$('code-state');
      setState(state, '', projects.length ? 'ok' : 'error');
      if (!projects.length)
        state.replaceChildren(...withCode('No device serves a project: run `switchboard device --project .` in a folder.'));
      this.$('code-send').disabled = !projects.length;
      await this.loadChanges();
    } catch (error) {
      setState(this.$('code-state'), `Could not load your devices: ${describeError(error)}`, 'error');
    }
  }

  async loadChanges() {
    const deviceId = this.$('code-device').value;
    const list = this.$('code-changes');
    if (!deviceId) return void list.replaceChildren();
    try {
      const { changes } = await this.api.get(`/devices/${encodeURIComponent(deviceId)}/changes`);
      list.replaceChildren(...changes.map((change) => this.changeItem(deviceId, change, changes)));
      setState(this.$('code-changes-state'), changes.length ? '' : 'No change yet.');
    } catch (error) {
      setState(this.$('code-changes-state'), `Could not load the changes: ${describeError(error)}`, 'error');
    }
  }

  changeItem(deviceId, change, changes) {
    const undo = el('button', { type: 'button', dataset: { testid: 'code-undo' } }, 'Undo');
    // An undo is a change too: undoing it puts the undone change back.
    undo.disabled = Boolean(change.undoneBy);
    undo.addEventListener('click', async () => {
      undo.disabled = true;
      try {
        const undone = await this.api.post(`/devices/${encodeURIComponent(deviceId)}/changes/${encodeURIComponent(change.changeId)}/undo`);
        this.notify(`Restored ${undone.path}`);
      } catch (error) {
        this.notify(describeError(error), true);
      }
      await this.loadChanges();
    });
    return el(
      'li',
      { dataset: { testid: 'code-change', changeId: change.changeId, undone: String(Boolean(change.undoneBy)) } },
      el('code', {}, change.path),
      ' ',
      el('span', { class: 'small' }, `${changeVerb(change, changes)} · ${when(change.at)}${change.undoneBy ? ' · undone' : ''}`),
      ' ',
      undo,
    );
  }

  /** One line of the log: `kind` (you, agent, tool, answer, approval) styles it. */
  line(kind, ...children) {
    const node = el('div', { class: `code-line ${kind}`, dataset: { testid: `code-${kind}` } }, ...children);
    this.$('code-log').append(node);
    return node;
  }

  renderPlan(steps) {
    const plan = this.$('code-plan');
    plan.hidden = false;
    plan.replaceChildren(
      ...steps.map((step) =>
        el('li', { dataset: { testid: 'code-plan-step', status: step.status } }, `${step.agent}: ${step.task} (${step.status})`),
      ),
    );
  }

  approvalCard(data) {
    const card = el(
      'div',
      { class: 'code-approval', dataset: { testid: 'code-approval', approvalId: data.approvalId } },
      el('p', {}, el('strong', {}, data.toolName), ' — ', data.reason),
      data.parameters?.diff
        ? el('pre', { class: 'diff', dataset: { testid: 'code-diff' } }, data.parameters.diff)
        : el(
            'pre',
            { class: 'diff', dataset: { testid: 'code-command' } },
            data.parameters?.command ?? JSON.stringify(data.parameters, null, 2),
          ),
    );
    const decide = async (decision) => {
      for (const button of card.querySelectorAll('button')) button.disabled = true;
      try {
        await this.api.request('PUT', `/hitl/requests/${data.approvalId}/${decision}`);
      } catch (error) {
        this.notify(describeError(error), true);
      }
    };
    const approve = el('button', { type: 'button', dataset: { testid: 'code-approve' } }, 'Approve');
    const reject = el('button', { type: 'button', dataset: { testid: 'code-reject' } }, 'Reject');
    approve.addEventListener('click', () => void decide('approve'));
    reject.addEventListener('click', () => void decide('reject'));
    card.append(approve, reject);
    return card;
  }

  async send() {
    const input = this.$('code-input');
    const message = input.value.trim();
    const deviceId = this.$('code-device').value;
    if (!message || !deviceId || this.controller) return;
    input.value = '';
    this.$('code-log').replaceChildren();
    this.$('code-plan').hidden = true;
    this.line('you', message);
    const answer = this.line('answer', '');
    answer.dataset.status = 'streaming';
    const state = this.$('code-state');
    setState(state, 'Starting…', 'busy');
    this.controller = new AbortController();
    this.$('code-stop').hidden = false;
    const body = { message, deviceId, agent: this.$('code-agent').value };
    if (this.sessionId) body.sessionId = this.sessionId;
    try {
      await this.api.stream(
        '/chat/stream',
        body,
        ({ event, data }) => {
          if (data?.sessionId) this.sessionId = data.sessionId;
          switch (event) {
            case 'agent':
              setState(state, `${data.agent}: ${data.state}`, data.state === 'error' ? 'error' : 'busy');
              this.$('code-state').dataset.agent = data.agent;
              break;
            case 'plan':
              this.renderPlan(data.steps);
              break;
            case 'tool_call':
              answer.before(
                el(
                  'div',
                  { class: 'code-line tool', dataset: { testid: 'code-tool' } },
                  `${data.agent ?? ''} → ${data.name} ${JSON.stringify(data.arguments)}`,
                ),
              );
              break;
            case 'tool_result':
              answer.before(el('pre', { class: `code-line result ${data.ok ? 'ok' : 'error'}` }, data.content));
              break;
            case 'approval_requested':
              answer.before(this.approvalCard(data));
              setState(state, 'Waiting for your decision…', 'busy');
              break;
            case 'approval_resolved': {
              const card = this.$('code-log').querySelector(`[data-approval-id="${data.approvalId}"]`);
              if (card) card.dataset.status = data.status;
              break;
            }
            case 'text_chunk':
              answer.textContent += data.text;
              break;
            case 'final':
              answer.replaceChildren(...codeText(data.response));
              answer.dataset.status = 'done';
              setState(state, 'Done.');
              break;
            case 'cancelled':
              answer.replaceChildren(...codeText(data.response || answer.textContent));
              answer.dataset.status = 'cancelled';
              setState(state, 'Stopped.');
              break;
            case 'error':
              answer.dataset.status = 'error';
              setState(state, `Failed: ${data.message}`, 'error');
              break;
            default:
              break;
          }
        },
        this.controller.signal,
      );
    } catch (error) {
      if (error?.name !== 'AbortError') setState(state, describeError(error), 'error');
    } finally {
      this.controller = null;
      this.$('code-stop').hidden = true;
      await this.loadChanges();
    }
  }

  async stop() {
    if (!this.sessionId) return;
    try {
      await this.api.post(`/chat/sessions/${this.sessionId}/cancel`);
    } catch (error) {
      this.notify(describeError(error), true);
    }
  }
}
