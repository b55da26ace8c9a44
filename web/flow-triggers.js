// An agentflow's triggers (flows-page.js): what starts its published version unattended. The list
// shows each trigger's kind and state — a schedule's cron, time zone and next run (the API's
// `nextRunAt`, shown in the schedule's time zone and in the reader's), a webhook's URL, a
// connector's agent — and what its last fire did; a trigger is switched off and on, or deleted.
// The form adds a schedule (cron with presets, time zone, catch-up policy, the input each run
// gets), a webhook (its URL and signing secret shown once, until Done) or a connector trigger.
// Built with DOM calls only (names and inputs are user text).
import { el } from './blocks.js';
import { ask } from './confirm-dialog.js';
import { inputFields, inputKeys, readInputs } from './flow-inputs.js';

const PRESETS = [
  ['', 'Custom'],
  ['0 * * * *', 'Every hour, on the hour'],
  ['0 9 * * *', 'Every day at 09:00'],
  ['0 9 * * 1-5', 'Weekdays at 09:00'],
  ['0 9 * * 1', 'Mondays at 09:00'],
  ['0 0 1 * *', 'The first of each month at 00:00'],
];
const KINDS = { schedule: 'schedule', webhook: 'webhook', connector: 'connector' };
const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const timeZones = () => {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return [...new Set(['UTC', localZone(), ...zones])].sort();
};
/** A time in `timeZone`, with the zone's name. */
const at = (iso, timeZone) =>
  `${new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(new Date(iso))} ${timeZone}`;
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const errorItem = (text, path) =>
  el('li', { dataset: { testid: 'trigger-error', path: path ?? '' } }, path ? el('code', {}, path) : null, ` ${text}`);

export class FlowTriggers {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.flow = null;
    this.agents = null;
    // The form is built when first opened (and again for another flow): closed, none of its fields exist.
    this.root = el(
      'section',
      { class: 'card triggers', hidden: true, dataset: { testid: 'flow-triggers' }, 'aria-labelledby': 'flow-triggers-h' },
      el('h2', { id: 'flow-triggers-h' }, 'Triggers'),
      el(
        'p',
        { class: 'small' },
        'A trigger runs the published version without you: on a schedule, when a signed webhook arrives, or when one of your cloud agents fetches mail.',
      ),
      el('ul', { class: 'trigger-list', dataset: { testid: 'trigger-list' } }),
      el('div', { dataset: { testid: 'trigger-secret-slot' } }),
      el(
        'details',
        { class: 'create-box', dataset: { testid: 'trigger-add' }, ontoggle: (e) => e.target.open && this.openForm() },
        el('summary', {}, 'Add a trigger'),
        el('div', { dataset: { testid: 'trigger-form-slot' } }),
      ),
    );
  }

  /** The form of a new trigger, for the flow shown. */
  form() {
    const zone = el(
      'select',
      { dataset: { testid: 'trigger-timezone' } },
      timeZones().map((name) => el('option', { value: name }, name)),
    );
    zone.value = localZone();
    const preset = el(
      'select',
      { dataset: { testid: 'trigger-preset' }, onchange: (e) => e.target.value && (this.$('trigger-cron').value = e.target.value) },
      PRESETS.map(([cron, label]) => el('option', { value: cron }, label)),
    );
    const field = (label, path, control, hint) =>
      el(
        'div',
        { class: 'field', dataset: { path } },
        el('label', {}, el('span', { class: 'field-label' }, label), control),
        hint ? el('span', { class: 'small hint' }, hint) : null,
        el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
      );
    const catchUp = el(
      'select',
      { dataset: { testid: 'trigger-catch-up' } },
      el('option', { value: 'skip' }, 'Skip the runs missed while the server was down'),
      el('option', { value: 'run_once' }, 'Run once for the latest missed one'),
    );
    return el(
      'form',
      { class: 'trigger-create', dataset: { testid: 'trigger-create-form' }, onsubmit: (e) => (e.preventDefault(), void this.create()) },
      el(
        'div',
        { class: 'field-row' },
        field(
          'Trigger kind',
          'type',
          el(
            'select',
            { dataset: { testid: 'trigger-type' }, onchange: () => this.kindChanged() },
            el('option', { value: 'schedule' }, 'Schedule'),
            el('option', { value: 'webhook' }, 'Webhook'),
            el('option', { value: 'connector' }, 'Connector (a cloud agent’s mail)'),
          ),
        ),
        field(
          'Trigger name',
          'name',
          el('input', { maxlength: '200', required: true, autocomplete: 'off', dataset: { testid: 'trigger-name' } }),
        ),
      ),
      el(
        'fieldset',
        { class: 'sub', dataset: { testid: 'trigger-schedule-fields' } },
        el('legend', {}, 'Schedule'),
        el(
          'div',
          { class: 'field-row' },
          field('Repeat', 'preset', preset),
          field(
            'Cron',
            'cron',
            el('input', { class: 'code', spellcheck: 'false', value: '0 9 * * *', maxlength: '100', dataset: { testid: 'trigger-cron' } }),
            'minute hour day month weekday',
          ),
        ),
        el('div', { class: 'field-row' }, field('Time zone', 'timezone', zone), field('After downtime', 'catchUp', catchUp)),
        el('h4', {}, 'The input each run gets'),
        el(
          'div',
          { class: 'run-inputs', dataset: { testid: 'trigger-inputs' } },
          inputFields(inputKeys(this.flow.definition), { testid: 'trigger-input' }),
        ),
      ),
      el(
        'div',
        { hidden: true, dataset: { testid: 'trigger-connector-fields' } },
        field('Cloud agent', 'agentId', el('select', { dataset: { testid: 'trigger-agent' } })),
      ),
      el('button', { type: 'submit', dataset: { testid: 'trigger-create' } }, 'Add trigger'),
      el('ul', { class: 'flow-errors', role: 'alert', dataset: { testid: 'trigger-errors' } }),
    );
  }

  openForm() {
    const slot = this.$('trigger-form-slot');
    if (!slot.firstChild && this.flow) slot.replaceChildren(this.form());
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  async show(flow) {
    this.flow = flow;
    this.root.hidden = flow?.type !== 'agentflow';
    this.$('trigger-secret-slot').replaceChildren();
    this.$('trigger-add').open = false;
    this.$('trigger-form-slot').replaceChildren();
    if (flow?.type !== 'agentflow') return;
    await this.load();
  }

  async load() {
    const flow = this.flow;
    try {
      const { triggers } = await this.api.get(`/flows/${flow.id}/triggers`);
      if (this.flow !== flow) return;
      this.$('trigger-list').replaceChildren(...triggers.map((trigger) => this.item(trigger)));
      if (!triggers.length) this.$('trigger-list').append(el('li', { class: 'small' }, 'No triggers: it runs when you run it.'));
    } catch (error) {
      this.notify(`Could not list the triggers: ${error.message}`, true);
    }
  }

  /** One trigger: its kind, what starts it, its next run or URL, its last fire, and its controls. */
  item(trigger) {
    const details = [];
    if (trigger.type === 'schedule') {
      details.push(
        el(
          'p',
          {},
          el('code', {}, trigger.cron),
          ` in ${trigger.timezone} · after downtime: ${trigger.catchUp === 'run_once' ? 'run once' : 'skip'}`,
        ),
        el(
          'p',
          { dataset: { testid: 'trigger-next-run', at: trigger.nextRunAt ?? '' } },
          trigger.nextRunAt
            ? [
                el('strong', {}, 'Next run: '),
                at(trigger.nextRunAt, trigger.timezone),
                trigger.timezone === localZone() ? '' : ` (your time: ${at(trigger.nextRunAt, localZone())})`,
              ]
            : 'Not scheduled while it is off.',
        ),
      );
    } else if (trigger.type === 'webhook') {
      details.push(
        el(
          'p',
          {},
          'POST ',
          el('code', { dataset: { testid: 'trigger-url' } }, trigger.url),
          ' signed with its secret (Standard Webhooks)',
        ),
      );
    } else {
      const agent = this.agents?.find((candidate) => candidate.id === trigger.agentId);
      details.push(el('p', {}, `When ${agent ? `“${agent.name}”` : `agent ${trigger.agentId}`} fetches mail`));
    }
    if (trigger.lastError)
      details.push(el('p', { class: 'error small' }, `Last fire started nothing: ${trigger.lastError.code}: ${trigger.lastError.message}`));
    else if (trigger.lastFiredAt)
      details.push(
        el(
          'p',
          { class: 'small' },
          `Last fired ${when(trigger.lastFiredAt)}`,
          trigger.lastExecutionId
            ? [' · ', el('a', { href: `#/flows/${this.flow.id}/executions/${trigger.lastExecutionId}` }, 'its execution')]
            : null,
        ),
      );
    return el(
      'li',
      {
        class: 'trigger',
        dataset: { testid: 'flow-trigger', triggerId: trigger.id, type: trigger.type, enabled: String(trigger.enabled) },
      },
      el(
        'div',
        { class: 'row' },
        el('strong', {}, trigger.name),
        el('span', { class: 'badge', dataset: { testid: 'trigger-kind' } }, KINDS[trigger.type] ?? trigger.type),
        trigger.enabled ? null : el('span', { class: 'badge status-cancelled' }, 'off'),
      ),
      details,
      el(
        'div',
        { class: 'row' },
        el(
          'button',
          { type: 'button', class: 'secondary', dataset: { testid: 'trigger-toggle' }, onclick: () => void this.toggle(trigger) },
          trigger.enabled ? 'Switch off' : 'Switch on',
        ),
        el(
          'button',
          { type: 'button', class: 'danger', dataset: { testid: 'trigger-delete' }, onclick: () => void this.remove(trigger) },
          'Delete',
        ),
      ),
    );
  }

  /** The form shows the fields of the chosen kind (a connector's agents are read once). */
  kindChanged() {
    const type = this.$('trigger-type').value;
    this.$('trigger-schedule-fields').hidden = type !== 'schedule';
    this.$('trigger-connector-fields').hidden = type !== 'connector';
    if (type === 'connector' && !this.agents) void this.loadAgents();
  }

  async loadAgents() {
    try {
      this.agents = (await this.api.get('/agents/cloud?limit=200')).agents;
    } catch (error) {
      this.agents = null;
      return this.notify(`Could not list your cloud agents: ${error.message}`, true);
    }
    const select = this.$('trigger-agent');
    select.replaceChildren(
      el('option', { value: '' }, this.agents.length ? 'Choose a cloud agent' : 'You have no cloud agent'),
      ...this.agents.map((agent) => el('option', { value: agent.id }, agent.name)),
    );
  }

  async create() {
    const flow = this.flow;
    const type = this.$('trigger-type').value;
    const body = { type, name: this.$('trigger-name').value.trim() };
    if (type === 'schedule')
      Object.assign(body, {
        cron: this.$('trigger-cron').value.trim(),
        timezone: this.$('trigger-timezone').value,
        catchUp: this.$('trigger-catch-up').value,
        input: readInputs(this.$('trigger-inputs'), 'trigger-input'),
      });
    if (type === 'connector') body.agentId = this.$('trigger-agent').value;
    this.showProblems([]);
    const button = this.$('trigger-create');
    button.disabled = true;
    try {
      const { trigger, secret } = await this.api.post(`/flows/${flow.id}/triggers`, body);
      if (this.flow !== flow) return;
      this.$('trigger-name').value = '';
      if (secret) this.showSecret(trigger, secret);
      this.notify(`Trigger “${trigger.name}” added.`);
      await this.load();
    } catch (error) {
      const details = Array.isArray(error.details) ? error.details : [];
      this.showProblems(details.length ? details : [{ path: '', message: error.message }]);
    } finally {
      button.disabled = false;
    }
  }

  /** Each problem next to its field (by path), the rest in the list under the form. */
  showProblems(problems) {
    const form = this.$('trigger-create-form');
    for (const error of form.querySelectorAll('.field-error')) ((error.hidden = true), (error.textContent = ''));
    const rest = [];
    for (const problem of problems) {
      const parts = String(problem.path ?? '').split('.');
      let field = null;
      for (let n = parts.length; n > 0 && !field; n--)
        field = form.querySelector(`.field[data-path="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
      const error = field?.querySelector(':scope > .field-error');
      if (!error) rest.push(problem);
      else ((error.hidden = false), (error.textContent = `${error.textContent} ${problem.message}`.trim()));
    }
    this.$('trigger-errors').replaceChildren(...rest.map((problem) => errorItem(problem.message, problem.path)));
  }

  /** A new webhook's URL and signing secret, once: Copy, and Done, which removes it from the page. */
  showSecret(trigger, secret) {
    const field = el('input', { readonly: true, value: secret, 'aria-label': 'Signing secret', dataset: { testid: 'trigger-secret' } });
    const copied = el('span', { class: 'small', 'aria-live': 'polite' });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copied.textContent = 'Copied.';
      } catch {
        field.select();
        copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
      }
    };
    this.$('trigger-secret-slot').replaceChildren(
      el(
        'section',
        { class: 'secret-once', dataset: { testid: 'trigger-secret-box' } },
        el('h3', {}, `Webhook “${trigger.name}”`),
        el('p', {}, 'POST to ', el('code', { dataset: { testid: 'trigger-secret-url' } }, trigger.url)),
        el('p', {}, 'Its signing secret is shown this once: keep it where the sender signs its deliveries.'),
        el(
          'div',
          { class: 'row' },
          field,
          el('button', { type: 'button', class: 'secondary', onclick: () => void copy() }, 'Copy'),
          copied,
        ),
        el(
          'p',
          { class: 'small' },
          'Sign each delivery per Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature ',
          el('code', {}, 'v1,<base64 HMAC-SHA256 of "id.timestamp.body">'),
          '; the JSON body is the flow’s input.',
        ),
        el('button', { type: 'button', onclick: () => this.$('trigger-secret-slot').replaceChildren() }, 'Done'),
      ),
    );
  }

  async toggle(trigger) {
    try {
      await this.api.request('PATCH', `/flows/${this.flow.id}/triggers/${trigger.id}`, { enabled: !trigger.enabled });
      await this.load();
    } catch (error) {
      this.notify(`Could not switch the trigger ${trigger.enabled ? 'off' : 'on'}: ${error.message}`, true);
    }
  }

  async remove(trigger) {
    const answer = await ask({
      title: `Delete the trigger “${trigger.name}”?`,
      message:
        trigger.type === 'webhook' ? 'Its URL stops working at once; deliveries to it are refused.' : 'It no longer starts the flow.',
      actions: [{ value: 'delete', label: 'Delete', danger: true }],
      testid: 'trigger-delete-dialog',
    });
    if (answer !== 'delete') return;
    try {
      await this.api.request('DELETE', `/flows/${this.flow.id}/triggers/${trigger.id}`);
      this.notify(`Trigger “${trigger.name}” deleted.`);
      await this.load();
    } catch (error) {
      this.notify(`Could not delete the trigger: ${error.message}`, true);
    }
  }
}
