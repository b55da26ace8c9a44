// The Agents page (`#/agents`, `#/agents/<id>`): the user's background agents. A form (never
// JSON) creates and edits local-directory and cloud (Gmail, Outlook, Teams) agents, with the
// schedule checked as it is typed and the server's verdict shown under it; an agent runs now, its
// runs and their logs follow live (agent-runs.js), and a cloud agent connects its account through
// the provider's consent page and comes back here (`#/agents?connected=<provider>&agentId=<id>`).
import { el } from './blocks.js';
import { AgentRuns } from './agent-runs.js';
import { confirmingButton, describeError, listOf, pageRoot, setState, when } from './page-kit.js';

const TYPES = {
  local_directory: 'Local folders (on your device)',
  gmail: 'Gmail',
  outlook: 'Outlook',
  teams: 'Microsoft Teams',
};
export const PROVIDER_NAMES = { gmail: 'Gmail', outlook: 'Outlook', teams: 'Microsoft Teams' };
/** The agent this tab is connecting, kept across the trip to the provider (the way back may not name it). */
const CONNECTING_KEY = 'switchboard.console.connecting-agent';
const DATA_TYPES = ['tasks', 'notes', 'checkpoints', 'projects'];
const CRON_FIELDS = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day of month', 1, 31],
  ['month', 1, 12],
  ['weekday', 0, 7],
];
const NAMES = /^(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT)$/i;

/** What is wrong with a five-field cron as typed (empty when it looks right; the server has the last word). */
export function cronProblem(text) {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 5) return `A schedule has 5 fields (minute hour day month weekday); this has ${fields.length}.`;
  for (const [index, field] of fields.entries()) {
    const [name, min, max] = CRON_FIELDS[index];
    for (const item of field.split(',')) {
      const match = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
      if (!match) return `The ${name} field "${field}" is not a number, a range (1-5), a list (1,3) or a step (*/15).`;
      if (match[2] !== undefined && Number(match[2]) < 1) return `The ${name} field's step must be 1 or more.`;
      for (const bound of match[1] === '*' ? [] : match[1].split('-')) {
        if (NAMES.test(bound) && (index === 3 || index === 4)) continue;
        if (!/^\d+$/.test(bound) || Number(bound) < min || Number(bound) > max)
          return `The ${name} field takes ${min}-${max}; "${bound}" is outside it.`;
      }
    }
  }
  return '';
}

const field = (label, control, hint) => el('label', {}, label, control, hint ? el('span', { class: 'small hint' }, hint) : null);

export class AgentsPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.agents = [];
    this.agent = null;
    ({ root: this.root, $: this.$ } = pageRoot('agents-view'));
    this.build();
    this.runs = new AgentRuns({ api, notify, root: this.$('agent-runs') });
  }

  build() {
    const input = (name, props = {}) => el('input', { name, dataset: { testid: `agent-${name}` }, ...props });
    this.root.replaceChildren(
      el('h1', { id: 'agents-h' }, 'Agents'),
      el(
        'div',
        { class: 'page-columns' },
        el(
          'aside',
          { class: 'card', 'aria-label': 'Your agents' },
          el('h2', {}, 'Your agents'),
          el('ul', { class: 'item-list', dataset: { testid: 'agent-list' } }),
          el('a', { href: '#/agents', class: 'button-link', dataset: { testid: 'agent-new' } }, 'New agent'),
        ),
        el(
          'div',
          { class: 'page-main' },
          el(
            'form',
            { class: 'card', novalidate: true, dataset: { testid: 'agent-form' }, onsubmit: (e) => (e.preventDefault(), void this.save()) },
            el('h2', { dataset: { testid: 'agent-form-title' } }, 'New agent'),
            field(
              'Type',
              el(
                'select',
                { name: 'type', dataset: { testid: 'agent-type' }, onchange: () => this.showTypeFields() },
                ...Object.entries(TYPES).map(([value, label]) => el('option', { value }, label)),
              ),
            ),
            field('Name', input('name', { required: true, maxlength: '200' })),
            el(
              'fieldset',
              { class: 'checks' },
              el('legend', {}, 'What to extract'),
              ...DATA_TYPES.map((type) =>
                el(
                  'label',
                  { class: 'check' },
                  el('input', { type: 'checkbox', name: 'dataTypes', value: type, dataset: { testid: `agent-data-${type}` } }),
                  ` ${type}`,
                ),
              ),
            ),
            field(
              'Instructions',
              el('textarea', { name: 'promptTemplate', rows: '3', required: true, maxlength: '8000', dataset: { testid: 'agent-prompt' } }),
              'What the model should pull out of each file or message.',
            ),
            el(
              'div',
              { class: 'local-fields', dataset: { testid: 'agent-local-fields' } },
              field('Device', input('deviceId', { list: 'agent-devices', autocomplete: 'off' }), 'The desktop app that reads the folders.'),
              el('datalist', { id: 'agent-devices' }),
              field(
                'Folders',
                el('textarea', { name: 'directoryPaths', rows: '2', dataset: { testid: 'agent-folders' } }),
                'Absolute paths, one per line.',
              ),
              field('File extensions', input('fileExtensions', { value: '.md, .txt' }), 'Comma separated, e.g. .md, .txt'),
            ),
            el(
              'div',
              { class: 'cloud-fields', dataset: { testid: 'agent-cloud-fields' } },
              field('Labels or folders', input('labels'), 'Comma separated; empty reads every message.'),
              field('Senders', input('senders'), 'Comma separated addresses; empty accepts anyone.'),
              el(
                'div',
                { class: 'row' },
                field('Messages from', input('from', { type: 'date' })),
                field('Messages to', input('to', { type: 'date' })),
              ),
              el(
                'label',
                { class: 'check', dataset: { testid: 'agent-channels-label' } },
                el('input', { type: 'checkbox', name: 'channels', dataset: { testid: 'agent-channels' } }),
                ' Also read the channels of my teams',
              ),
            ),
            el(
              'div',
              { class: 'row' },
              field(
                'Schedule (cron)',
                input('scheduleCron', { placeholder: '0 9 * * 1-5', autocomplete: 'off', oninput: () => this.checkCron() }),
                'minute hour day month weekday; empty: only when you run it.',
              ),
              field('Time zone', input('timezone', { value: 'UTC', autocomplete: 'off' })),
            ),
            el('p', { class: 'state', 'aria-live': 'polite', dataset: { testid: 'agent-cron-state' } }),
            el(
              'label',
              { class: 'check' },
              el('input', { type: 'checkbox', name: 'enabled', checked: true, dataset: { testid: 'agent-enabled' } }),
              ' Enabled (scheduled runs happen)',
            ),
            el(
              'div',
              { class: 'row' },
              el('button', { type: 'submit', dataset: { testid: 'agent-save' } }, 'Save'),
              el(
                'button',
                { type: 'button', hidden: true, dataset: { testid: 'agent-run' }, onclick: () => void this.runNow() },
                'Run now',
              ),
              el('span', { dataset: { testid: 'agent-delete-slot' } }),
            ),
            el('p', { class: 'state', role: 'status', dataset: { testid: 'agent-state' } }),
          ),
          el(
            'section',
            { class: 'card', hidden: true, 'aria-labelledby': 'connection-h', dataset: { testid: 'agent-connection' } },
            el('h2', { id: 'connection-h' }, 'Account'),
            el('p', { dataset: { testid: 'agent-connection-status' } }),
            el(
              'div',
              { class: 'row' },
              el('button', { type: 'button', dataset: { testid: 'agent-connect' }, onclick: () => void this.connect() }, 'Connect'),
              el('span', { dataset: { testid: 'agent-disconnect-slot' } }),
            ),
          ),
          el('section', { class: 'card', hidden: true, 'aria-labelledby': 'runs-h', dataset: { testid: 'agent-runs' } }),
        ),
      ),
    );
    this.form = this.$('agent-form');
  }

  reset() {
    this.runs.stop();
  }

  /** Shows the page: the list, then the agent `id` (or a new one); `query` is what the OAuth return put in the hash. */
  async show(id, query = new URLSearchParams()) {
    if (query.has('connected') || query.has('oauthError')) {
      this.reportConnection(query);
      id = query.get('agentId') ?? sessionStorage.getItem(CONNECTING_KEY) ?? id;
      sessionStorage.removeItem(CONNECTING_KEY);
      history.replaceState(null, '', id ? `#/agents/${id}` : '#/agents');
    }
    void this.loadDevices();
    // A new agent's form is ready at once: what is typed while the list loads stays.
    if (!id) this.open(null);
    await this.loadList();
    if (!id) return;
    const agent = this.agents.find((a) => a.id === id);
    if (!agent) this.notify('That agent does not exist (any more).', true);
    this.open(agent ?? null);
  }

  reportConnection(query) {
    if (query.has('connected')) {
      this.notify(`${PROVIDER_NAMES[query.get('connected')] ?? query.get('connected')} is connected.`);
      return;
    }
    const code = query.get('oauthError');
    const why = {
      oauth_denied: 'you declined the consent',
      invalid_state: 'the consent link was used already, expired, or was opened in another browser',
      invalid_grant: 'the provider refused the code',
      provider_unavailable: 'the provider did not answer',
    };
    this.notify(`The account was not connected: ${why[code] ?? code}. Try Connect again.`, true);
  }

  async loadList() {
    const read = async (kind) => {
      const all = [];
      let cursor;
      do {
        const page = await this.api.get(`/agents/${kind}?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        all.push(...page.agents.map((agent) => ({ ...agent, kind })));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return all;
    };
    try {
      const [local, cloud] = await Promise.all([read('local'), read('cloud')]);
      this.agents = [...local, ...cloud].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    } catch (error) {
      this.notify(`Could not load your agents: ${error.message}`, true);
    }
    this.renderList();
  }

  renderList() {
    const list = this.$('agent-list');
    list.replaceChildren(
      ...this.agents.map((agent) =>
        el(
          'li',
          { dataset: { testid: 'agent-item', agentId: agent.id }, class: agent.id === this.agent?.id ? 'current' : '' },
          el('a', { href: `#/agents/${agent.id}` }, agent.name),
          el('span', { class: 'badge' }, agent.kind === 'local' ? 'local' : PROVIDER_NAMES[agent.provider]),
          agent.enabled ? null : el('span', { class: 'badge' }, 'disabled'),
        ),
      ),
    );
    if (!this.agents.length) list.append(el('li', { class: 'small' }, 'No agents yet.'));
  }

  async loadDevices() {
    try {
      const { devices } = await this.api.get('/devices');
      this.root
        .querySelector('#agent-devices')
        .replaceChildren(...devices.map((d) => el('option', { value: d.deviceId }, d.online ? `${d.deviceId} (online)` : d.deviceId)));
    } catch {
      // Suggestions only: the field still takes any id.
    }
  }

  /** Fills the form from `agent`, or empties it for a new one. */
  open(agent) {
    this.agent = agent;
    const f = this.form.elements;
    const type = agent ? (agent.kind === 'local' ? 'local_directory' : agent.provider) : 'local_directory';
    f.type.value = type;
    f.type.disabled = Boolean(agent);
    f.name.value = agent?.name ?? '';
    for (const box of this.form.querySelectorAll('input[name=dataTypes]'))
      box.checked = agent ? agent.dataTypes.includes(box.value) : box.value === 'tasks';
    f.promptTemplate.value = agent?.promptTemplate ?? '';
    f.deviceId.value = agent?.deviceId ?? '';
    f.directoryPaths.value = (agent?.directoryPaths ?? []).join('\n');
    f.fileExtensions.value = (agent?.fileExtensions ?? ['.md', '.txt']).join(', ');
    const filter = agent?.filterConfig ?? {};
    f.labels.value = (filter.labels ?? []).join(', ');
    f.senders.value = (filter.senders ?? []).join(', ');
    f.from.value = filter.dateRange?.from?.slice(0, 10) ?? '';
    f.to.value = filter.dateRange?.to?.slice(0, 10) ?? '';
    f.channels.checked = filter.channels === true;
    f.scheduleCron.value = agent?.scheduleCron ?? '';
    f.timezone.value = agent?.timezone ?? 'UTC';
    f.enabled.checked = agent?.enabled ?? true;
    this.$('agent-form-title').textContent = agent ? `Edit "${agent.name}"` : 'New agent';
    this.$('agent-run').hidden = !agent;
    this.$('agent-delete-slot').replaceChildren(
      agent
        ? confirmingButton(
            'Delete',
            'Click again to delete',
            () => this.remove(),
            { dataset: { testid: 'agent-delete' } },
            { key: `agent-delete:${agent.id}` },
          )
        : '',
    );
    setState(this.$('agent-state'), agent ? this.scheduleText(agent) : '');
    this.showTypeFields();
    this.checkCron();
    this.renderConnection();
    this.renderList();
    if (agent) this.runs.show(agent);
    else this.runs.hide();
  }

  scheduleText(agent) {
    if (!agent.scheduleCron) return 'Runs only when you run it.';
    if (!agent.enabled) return 'Disabled: the schedule is kept but does not run.';
    return `Next scheduled run: ${when(agent.nextRunAt)}${agent.lastRunAt ? ` · last run ${when(agent.lastRunAt)}` : ''}`;
  }

  showTypeFields() {
    const type = this.form.elements.type.value;
    this.$('agent-local-fields').hidden = type !== 'local_directory';
    this.$('agent-cloud-fields').hidden = type === 'local_directory';
    this.$('agent-channels-label').hidden = type !== 'teams';
  }

  checkCron() {
    const text = this.form.elements.scheduleCron.value.trim();
    const problem = text ? cronProblem(text) : '';
    this.form.elements.scheduleCron.setAttribute('aria-invalid', problem ? 'true' : 'false');
    setState(this.$('agent-cron-state'), problem || (text ? 'The schedule looks right.' : ''), problem ? 'error' : 'ok');
    return problem;
  }

  /** The request body the form describes (only what the agent's kind accepts). */
  body() {
    const f = this.form.elements;
    const type = f.type.value;
    const cron = f.scheduleCron.value.trim();
    const body = {
      name: f.name.value.trim(),
      dataTypes: [...this.form.querySelectorAll('input[name=dataTypes]:checked')].map((box) => box.value),
      promptTemplate: f.promptTemplate.value.trim(),
      scheduleCron: cron || null,
      timezone: f.timezone.value.trim() || 'UTC',
      enabled: f.enabled.checked,
    };
    if (type === 'local_directory') {
      Object.assign(body, {
        deviceId: f.deviceId.value.trim(),
        directoryPaths: listOf(f.directoryPaths.value, /\n/),
        fileExtensions: listOf(f.fileExtensions.value).map((ext) => (ext.startsWith('.') ? ext : `.${ext}`)),
      });
    } else {
      const dateRange = {};
      if (f.from.value) dateRange.from = f.from.value;
      if (f.to.value) dateRange.to = f.to.value;
      body.filterConfig = { labels: listOf(f.labels.value), senders: listOf(f.senders.value), dateRange };
      if (type === 'teams') body.filterConfig.channels = f.channels.checked;
      if (!this.agent) body.provider = type;
    }
    return { type, body };
  }

  async save() {
    const state = this.$('agent-state');
    const { type, body } = this.body();
    if (!body.name) return setState(state, 'Give the agent a name.', 'error');
    if (!body.dataTypes.length) return setState(state, 'Choose at least one thing to extract.', 'error');
    if (!body.promptTemplate) return setState(state, 'Write the instructions.', 'error');
    if (this.checkCron()) return setState(state, 'Fix the schedule first.', 'error');
    const kind = type === 'local_directory' ? 'local' : 'cloud';
    setState(state, 'Saving…', 'busy');
    try {
      const saved = this.agent
        ? await this.api.request('PUT', `/agents/${kind}/${this.agent.id}`, body)
        : await this.api.post(`/agents/${kind}`, body);
      await this.loadList();
      // The form is drawn again before the notice: nothing filled after it is redrawn away.
      if (this.agent?.id === saved.id) this.open(this.agents.find((a) => a.id === saved.id) ?? { ...saved, kind });
      else location.hash = `#/agents/${saved.id}`;
      this.notify(`Saved "${saved.name}".`);
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }

  async remove() {
    const { kind, id, name } = this.agent;
    try {
      await this.api.request('DELETE', `/agents/${kind}/${id}`);
      this.notify(`Deleted "${name}".`);
      location.hash = '#/agents';
    } catch (error) {
      setState(this.$('agent-state'), describeError(error), 'error');
    }
  }

  async runNow() {
    try {
      const { runId } = await this.api.post(`/agents/${this.agent.id}/run`);
      this.runs.follow(runId);
      setState(this.$('agent-state'), 'Run queued.');
    } catch (error) {
      setState(this.$('agent-state'), describeError(error), 'error');
    }
  }

  renderConnection() {
    const agent = this.agent;
    const panel = this.$('agent-connection');
    panel.hidden = !agent || agent.kind !== 'cloud';
    if (panel.hidden) return;
    const provider = PROVIDER_NAMES[agent.provider];
    const status = this.$('agent-connection-status');
    status.dataset.connected = String(agent.connected);
    status.textContent = !agent.connected
      ? `Not connected: connect your ${provider} account so the agent can read it.`
      : agent.status === 'reauth_required'
        ? `${provider} revoked the connection: connect again.`
        : `Connected to ${provider}.`;
    this.$('agent-connect').textContent = agent.connected ? `Reconnect ${provider}` : `Connect ${provider}`;
    this.$('agent-disconnect-slot').replaceChildren(
      agent.connected
        ? confirmingButton(
            'Disconnect',
            'Click again to disconnect',
            () => this.disconnect(),
            { dataset: { testid: 'agent-disconnect' } },
            { key: `agent-disconnect:${agent.id}` },
          )
        : '',
    );
  }

  /** Sends this tab to the provider's consent page; the provider sends it back to the API, which sends it back here. */
  async connect() {
    try {
      const { url } = await this.api.get(`/oauth/${this.agent.provider}/authorize?agentId=${this.agent.id}`);
      sessionStorage.setItem(CONNECTING_KEY, this.agent.id);
      location.assign(url);
    } catch (error) {
      this.notify(`Could not start connecting: ${error.message}`, true);
    }
  }

  async disconnect() {
    try {
      const agent = await this.api.request('DELETE', `/agents/cloud/${this.agent.id}/connection`);
      await this.loadList();
      this.open(this.agents.find((a) => a.id === agent.id) ?? null);
      this.notify(`${PROVIDER_NAMES[agent.provider]} is disconnected.`);
    } catch (error) {
      this.notify(`Could not disconnect: ${error.message}`, true);
    }
  }
}
