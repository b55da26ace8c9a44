// The Usage page (`#/usage`): the signed-in user's budget (`GET /usage/budget`: tier, and per
// window the limits, what was used and reserved, when it resets), then model tokens and cost by
// day, provider and model, from `GET /usage?from&to` (the user's own calls). Admins also get "All
// users" (`all=true`) and the "User plan" form (`PUT /admin/users/:id/tier|limits`); both are only
// shown to them, so nobody else's page ever asks for them.
import { el } from './blocks.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of a Date, in UTC (the API's days are UTC days). */
const isoDay = (date) => date.toISOString().slice(0, 10);
const integer = new Intl.NumberFormat('en-US');
/** Four decimals (model calls cost fractions of a cent); a non-zero amount below that says so. */
const dollars = (n) => (n > 0 && n < 0.00005 ? '< $0.0001' : `$${Number(n).toFixed(4)}`);
/** `used / limit`; a null limit is "unlimited". */
const ofLimit = (used, limit, format) => `${format(used)} / ${limit === null ? 'unlimited' : format(limit)}`;
/** `2026-11-24 19:00 UTC` */
const utcMinute = (iso) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
/** The budget limits an admin may override, in the form's order. */
const LIMIT_KEYS = ['tokensPerHour', 'tokensPerMonth', 'costUsdPerMonth', 'requestsPerMonth'];
const LIMIT_LABELS = {
  tokensPerHour: 'Tokens per hour',
  tokensPerMonth: 'Tokens per month',
  costUsdPerMonth: 'Cost per month',
  requestsPerMonth: 'Requests per month',
};

/** A bar and a percentage of `limit` used; a dash when unlimited. */
function share(used, limit) {
  if (limit === null) return '—';
  const percent = limit > 0 ? Math.min(100, Math.round((used * 100) / limit)) : 100;
  return el(
    'span',
    { class: 'share' },
    el('progress', { max: 100, value: percent, 'aria-label': `${percent}% of the limit used` }),
    ` ${percent}%`,
  );
}

export class UsagePage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.admin = false;
    $('usage-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.load();
    });
    $('usage-all').addEventListener('change', () => void this.load());
    $('plan-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.savePlan();
    });
    $('plan-clear').addEventListener('click', () => void this.clearOverrides());
    $('plan-load').addEventListener('click', () => void this.loadPlan());
  }

  /** From `/me`: admins may see everyone's usage. */
  setAdmin(admin) {
    this.admin = admin === true;
    $('usage-all-label').hidden = !this.admin;
    if (!this.admin) $('usage-all').checked = false;
    $('plan-panel').hidden = !this.admin;
  }

  async show() {
    // The last 30 days by default.
    if (!$('usage-to').value) $('usage-to').value = isoDay(new Date());
    if (!$('usage-from').value) $('usage-from').value = isoDay(new Date(Date.now() - 29 * DAY_MS));
    await Promise.all([this.loadBudget(), this.load()]);
  }

  async loadBudget() {
    const state = $('budget-state');
    state.textContent = 'Loading…';
    try {
      this.renderBudget(await this.api.get('/usage/budget'));
      state.textContent = '';
    } catch (error) {
      state.textContent = `Could not load the budget: ${error.message}`;
    }
  }

  renderBudget({ tier, windows }) {
    $('budget-tier').textContent = tier;
    $('budget-rows').replaceChildren(
      ...windows.map((w) =>
        el(
          'tr',
          { dataset: { testid: 'budget-window', window: w.window } },
          el('th', { scope: 'row' }, w.window === 'hour' ? 'This hour' : 'This month'),
          el('td', { class: 'num', dataset: { testid: 'budget-tokens' } }, ofLimit(w.usedTokens, w.limitTokens, integer.format)),
          el('td', { dataset: { testid: 'budget-share' } }, share(w.usedTokens, w.limitTokens)),
          el('td', { class: 'num', dataset: { testid: 'budget-reserved' } }, integer.format(w.reservedTokens)),
          el('td', { class: 'num', dataset: { testid: 'budget-requests' } }, ofLimit(w.usedRequests, w.limitRequests, integer.format)),
          el('td', { class: 'num', dataset: { testid: 'budget-cost' } }, ofLimit(w.usedCostUsd, w.limitCostUsd, dollars)),
          el('td', {}, el('time', { datetime: w.resetsAt, dataset: { testid: 'budget-resets' } }, utcMinute(w.resetsAt))),
        ),
      ),
    );
    $('budget-table').hidden = false;
  }

  /** Sends the form: the tier if one is chosen, then the limits entered (replacing the user's earlier overrides). */
  async savePlan() {
    const tier = $('plan-tier').value;
    const limits = {};
    for (const key of LIMIT_KEYS) {
      const value = $(`plan-${key}`).value;
      if (value !== '') limits[key] = Number(value);
    }
    const hasLimits = Object.keys(limits).length > 0;
    if (!tier && !hasLimits) {
      this.planState('Choose a tier or enter a limit.', 'error');
      return;
    }
    await this.changePlan(async (path) => {
      let plan;
      if (tier) plan = await this.api.request('PUT', `${path}/tier`, { tier });
      if (hasLimits) plan = await this.api.request('PUT', `${path}/limits`, { limits });
      return plan;
    });
  }

  /** Shows the user's plan now, and puts their overrides in the form (so a save keeps what it does not change). */
  async loadPlan() {
    if (!$('plan-user').reportValidity()) return;
    const id = $('plan-user').value.trim();
    this.planState('Loading…', 'busy');
    try {
      const { user } = await this.api.get(`/admin/users/${encodeURIComponent(id)}/plan`);
      for (const key of LIMIT_KEYS) {
        const value = user.limitOverrides?.[key];
        $(`plan-${key}`).value = value === undefined || value === null ? '' : String(value);
      }
      this.renderPlan(user);
      this.planState(`${user.id} is on ${user.tier}.`, 'ok');
    } catch (error) {
      $('plan-result').hidden = true;
      this.planState(error.message, 'error');
    }
  }

  /** Back to the tier's limits: the user's overrides are removed. */
  async clearOverrides() {
    if (!$('plan-form').reportValidity()) return;
    await this.changePlan((path) => this.api.request('PUT', `${path}/limits`, { limits: null }));
  }

  /** Runs `send(path)` for the form's user and shows the limits now in effect, or the API's error. */
  async changePlan(send) {
    const id = $('plan-user').value.trim();
    this.planState('Saving…', 'busy');
    $('plan-result').hidden = true;
    try {
      const { user } = await send(`/admin/users/${encodeURIComponent(id)}`);
      this.renderPlan(user);
      this.planState(`Saved: ${user.id} is on ${user.tier}.`, 'ok');
      // An admin changing their own plan sees their budget follow.
      if (user.id === this.api.user?.id) await this.loadBudget();
    } catch (error) {
      this.planState(error.message, 'error');
    }
  }

  planState(text, status) {
    const state = $('plan-state');
    state.textContent = text;
    state.dataset.status = status;
  }

  renderPlan(user) {
    const term = (label, value, testid) => [el('dt', {}, label), el('dd', { dataset: { testid } }, value)];
    $('plan-result').replaceChildren(
      ...term('Tier', user.tier, 'plan-result-tier'),
      ...LIMIT_KEYS.flatMap((key) => {
        const value = user.limits[key];
        const shown = value === null ? 'unlimited' : key === 'costUsdPerMonth' ? dollars(value) : integer.format(value);
        return term(LIMIT_LABELS[key], shown, `plan-result-${key}`);
      }),
    );
    $('plan-result').hidden = false;
  }

  async load() {
    const from = $('usage-from').value;
    const to = $('usage-to').value;
    const all = this.admin && $('usage-all').checked;
    const query = new URLSearchParams({ from, to });
    if (all) query.set('all', 'true');
    const state = $('usage-state');
    state.textContent = 'Loading…';
    try {
      const { days } = await this.api.get(`/usage?${query}`);
      this.render(days, all);
      state.textContent = `${all ? 'All users' : 'Your usage'}, ${from} to ${to} (UTC days).`;
    } catch (error) {
      state.textContent = `Could not load the usage: ${error.message}`;
    }
  }

  render(days, all) {
    const totals = days.reduce(
      (sum, row) => ({
        inputTokens: sum.inputTokens + row.inputTokens,
        outputTokens: sum.outputTokens + row.outputTokens,
        costUsd: sum.costUsd + row.costUsd,
      }),
      { inputTokens: 0, outputTokens: 0, costUsd: 0 },
    );
    $('usage-summary').replaceChildren(
      el(
        'div',
        { class: 'figure' },
        el('span', { class: 'small' }, 'Input tokens'),
        el('strong', { dataset: { testid: 'usage-total-input' } }, integer.format(totals.inputTokens)),
      ),
      el(
        'div',
        { class: 'figure' },
        el('span', { class: 'small' }, 'Output tokens'),
        el('strong', { dataset: { testid: 'usage-total-output' } }, integer.format(totals.outputTokens)),
      ),
      el(
        'div',
        { class: 'figure' },
        el('span', { class: 'small' }, 'Cost'),
        el('strong', { dataset: { testid: 'usage-total-cost' } }, dollars(totals.costUsd)),
      ),
    );
    $('usage-rows').replaceChildren(
      ...days.map((row) =>
        el(
          'tr',
          { dataset: { testid: 'usage-row', day: row.day, model: row.model, provider: row.provider } },
          el('td', {}, row.day),
          el('td', {}, row.provider),
          el('td', {}, row.model),
          el('td', { class: 'num' }, integer.format(row.inputTokens)),
          el('td', { class: 'num' }, integer.format(row.outputTokens)),
          el('td', { class: 'num' }, dollars(row.costUsd)),
        ),
      ),
    );
    $('usage-empty').hidden = days.length > 0;
    $('usage-table').hidden = days.length === 0;
    $('usage-table').dataset.scope = all ? 'all' : 'mine';
  }
}
