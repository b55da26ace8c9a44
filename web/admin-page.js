// The Admin page (`#/admin`), for admins only (`/me` says so; the nav entry is hidden from
// everyone else and the page asks nothing of the admin routes for them): users, searched by
// email or name (`GET /admin/users`); one user's plan — tier and budget limits — read and changed
// (`GET /admin/users/:id/plan`, `PUT …/tier`, `PUT …/limits`, audited by the API); the audit log
// (`GET /admin/audit`, filtered, older pages on demand); and the queue dashboard's link.
import { el } from './blocks.js';
import { describeError, pageRoot, setState, when } from './page-kit.js';

const TIERS = ['free', 'pro', 'enterprise'];
const LIMITS = [
  ['tokensPerHour', 'Tokens per hour', '1'],
  ['tokensPerMonth', 'Tokens per month', '1'],
  ['costUsdPerMonth', 'Cost per month (USD)', 'any'],
  ['requestsPerMonth', 'Requests per month', '1'],
];
const PAGE = 50;

export class AdminPage {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.admin = false;
    this.user = null;
    this.auditCursor = null;
    ({ root: this.root, $: this.$ } = pageRoot('admin-view'));
    this.build();
  }

  build() {
    const submit = (handler) => (event) => (event.preventDefault(), void handler());
    this.root.replaceChildren(
      el('h1', { id: 'admin-h' }, 'Admin'),
      el('p', { class: 'small', hidden: true, dataset: { testid: 'admin-denied' } }, 'This page is for admins only.'),
      el(
        'div',
        { dataset: { testid: 'admin-body' }, hidden: true },
        el(
          'p',
          {},
          el(
            'a',
            { href: '/admin/queues', target: '_blank', rel: 'noopener', dataset: { testid: 'admin-queues-link' } },
            'Open the queue dashboard',
          ),
          el('span', { class: 'small' }, ' (Bull Board; your browser asks for the dashboard credentials)'),
        ),
        el(
          'section',
          { class: 'card', 'aria-labelledby': 'users-h' },
          el('h2', { id: 'users-h' }, 'Users'),
          el(
            'form',
            { class: 'inline', dataset: { testid: 'admin-user-search' }, onsubmit: submit(() => this.loadUsers()) },
            el(
              'label',
              {},
              'Email or name',
              el('input', { name: 'q', type: 'search', maxlength: '200', dataset: { testid: 'admin-user-q' } }),
            ),
            el('button', { type: 'submit', dataset: { testid: 'admin-user-search-submit' } }, 'Search'),
          ),
          el('p', { class: 'state', 'aria-live': 'polite', dataset: { testid: 'admin-users-state' } }),
          el(
            'table',
            { class: 'usage-table' },
            el('thead', {}, el('tr', {}, ...['Email', 'Name', 'Tier', 'Joined', ''].map((h) => el('th', { scope: 'col' }, h)))),
            el('tbody', { dataset: { testid: 'admin-user-rows' } }),
          ),
          el(
            'button',
            {
              type: 'button',
              class: 'secondary',
              hidden: true,
              dataset: { testid: 'admin-users-more' },
              onclick: () => void this.loadUsers(true),
            },
            'More users',
          ),
        ),
        el(
          'form',
          {
            class: 'card narrow',
            hidden: true,
            novalidate: true,
            dataset: { testid: 'admin-plan-form' },
            onsubmit: submit(() => this.savePlan()),
          },
          el('h2', { dataset: { testid: 'admin-plan-title' } }, 'Plan'),
          el(
            'label',
            {},
            'Tier',
            el(
              'select',
              { name: 'tier', dataset: { testid: 'admin-plan-tier' } },
              ...TIERS.map((tier) => el('option', { value: tier }, tier)),
            ),
          ),
          el('p', { class: 'small' }, 'Limits over the tier: empty uses the tier’s. Saving replaces the user’s earlier overrides.'),
          ...LIMITS.map(([key, label, step]) =>
            el('label', {}, label, el('input', { name: key, type: 'number', min: '0', step, dataset: { testid: `admin-plan-${key}` } })),
          ),
          el(
            'div',
            { class: 'row' },
            el('button', { type: 'submit', dataset: { testid: 'admin-plan-save' } }, 'Save'),
            el(
              'button',
              { type: 'button', class: 'secondary', dataset: { testid: 'admin-plan-clear' }, onclick: () => void this.clearLimits() },
              'Clear overrides',
            ),
          ),
          el('p', { class: 'state', role: 'status', dataset: { testid: 'admin-plan-state' } }),
          el('dl', { class: 'plan-result', dataset: { testid: 'admin-plan-limits' } }),
        ),
        el(
          'section',
          { class: 'card', 'aria-labelledby': 'audit-h' },
          el('h2', { id: 'audit-h' }, 'Audit log'),
          el(
            'form',
            { class: 'inline', dataset: { testid: 'admin-audit-filter' }, onsubmit: submit(() => this.loadAudit()) },
            el(
              'label',
              {},
              'Action',
              el('input', { name: 'action', placeholder: 'user.tier_changed', dataset: { testid: 'admin-audit-action' } }),
            ),
            el('label', {}, 'User id', el('input', { name: 'actorId', autocomplete: 'off', dataset: { testid: 'admin-audit-actor' } })),
            el('button', { type: 'submit' }, 'Filter'),
          ),
          el('p', { class: 'state', 'aria-live': 'polite', dataset: { testid: 'admin-audit-state' } }),
          el(
            'table',
            { class: 'usage-table audit' },
            el(
              'thead',
              {},
              el('tr', {}, ...['When', 'Who', 'Action', 'Target', 'Details', 'From'].map((h) => el('th', { scope: 'col' }, h))),
            ),
            el('tbody', { dataset: { testid: 'admin-audit-rows' } }),
          ),
          el(
            'button',
            {
              type: 'button',
              class: 'secondary',
              hidden: true,
              dataset: { testid: 'admin-audit-more' },
              onclick: () => void this.loadAudit(true),
            },
            'Older entries',
          ),
        ),
      ),
    );
  }

  /** From `/me`: only admins get the page's content and requests. */
  setAdmin(admin) {
    this.admin = admin === true;
  }

  async show() {
    this.$('admin-denied').hidden = this.admin;
    this.$('admin-body').hidden = !this.admin;
    if (!this.admin) return;
    await Promise.all([this.loadUsers(), this.loadAudit()]);
  }

  async loadUsers(more = false) {
    const state = this.$('admin-users-state');
    const query = new URLSearchParams({ limit: String(PAGE) });
    const q = this.$('admin-user-q').value.trim();
    if (q) query.set('q', q);
    if (more && this.usersCursor) query.set('cursor', this.usersCursor);
    setState(state, 'Loading…', 'busy');
    try {
      const { users, nextCursor } = await this.api.get(`/admin/users?${query}`);
      this.usersCursor = nextCursor;
      const rows = users.map((user) =>
        el(
          'tr',
          { dataset: { testid: 'admin-user-row', userId: user.id } },
          el('td', {}, user.email, user.admin ? el('span', { class: 'badge' }, 'admin') : ''),
          el('td', {}, user.name),
          el('td', { dataset: { testid: 'admin-user-tier' } }, user.tier),
          el('td', {}, when(user.createdAt)),
          el(
            'td',
            {},
            el(
              'button',
              { type: 'button', class: 'secondary', dataset: { testid: 'admin-user-manage' }, onclick: () => void this.openPlan(user) },
              'Plan',
            ),
          ),
        ),
      );
      if (more) this.$('admin-user-rows').append(...rows);
      else this.$('admin-user-rows').replaceChildren(...rows);
      this.$('admin-users-more').hidden = !nextCursor;
      setState(state, users.length || more ? '' : q ? `No user matches "${q}".` : 'No users.');
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }

  async openPlan(user) {
    this.user = user;
    const form = this.$('admin-plan-form');
    form.hidden = false;
    this.$('admin-plan-title').textContent = `Plan of ${user.email}`;
    setState(this.$('admin-plan-state'), 'Loading…', 'busy');
    try {
      const { user: plan } = await this.api.get(`/admin/users/${user.id}/plan`);
      this.plan = plan;
      form.elements.tier.value = plan.tier;
      for (const [key] of LIMITS) form.elements[key].value = plan.limitOverrides?.[key] ?? '';
      this.renderPlan(plan);
      setState(this.$('admin-plan-state'), `${user.email} is on ${plan.tier}.`);
      form.elements.tier.focus();
    } catch (error) {
      setState(this.$('admin-plan-state'), describeError(error), 'error');
    }
  }

  renderPlan(plan) {
    const shown = (value) => (value === null || value === undefined ? 'unlimited' : String(value));
    this.$('admin-plan-limits').replaceChildren(
      el('dt', {}, 'Tier'),
      el('dd', { dataset: { testid: 'admin-plan-current-tier' } }, plan.tier),
      ...LIMITS.flatMap(([key, label]) => [el('dt', {}, label), el('dd', {}, shown(plan.limits[key]))]),
      el('dt', {}, 'Enabled agents'),
      el('dd', {}, shown(plan.limits.maxEnabledAgents)),
    );
  }

  /** Saves the tier if it changed, then the limits entered (replacing earlier overrides) if any differ. */
  async savePlan() {
    const form = this.$('admin-plan-form');
    const path = `/admin/users/${this.user.id}`;
    const limits = {};
    for (const [key] of LIMITS) if (form.elements[key].value !== '') limits[key] = Number(form.elements[key].value);
    setState(this.$('admin-plan-state'), 'Saving…', 'busy');
    const tier = form.elements.tier.value;
    const current = this.plan.limitOverrides ?? {};
    const limitsChanged = LIMITS.some(([key]) => (limits[key] ?? null) !== (current[key] ?? null));
    if (tier === this.plan.tier && !limitsChanged) return setState(this.$('admin-plan-state'), 'Nothing changed.');
    try {
      let plan = this.plan;
      if (tier !== plan.tier) ({ user: plan } = await this.api.request('PUT', `${path}/tier`, { tier }));
      if (limitsChanged) {
        // The form's four limits replace theirs; other overrides (feature switches) stay.
        const next = Object.fromEntries(Object.entries(current).filter(([key]) => !LIMITS.some(([k]) => k === key)));
        Object.assign(next, limits);
        ({ user: plan } = await this.api.request('PUT', `${path}/limits`, { limits: Object.keys(next).length ? next : null }));
      }
      this.plan = plan;
      this.renderPlan(plan);
      setState(this.$('admin-plan-state'), `Saved: ${this.user.email} is on ${plan.tier}.`);
      await Promise.all([this.loadUsers(), this.loadAudit()]);
    } catch (error) {
      setState(this.$('admin-plan-state'), describeError(error), 'error');
    }
  }

  async clearLimits() {
    try {
      const { user: plan } = await this.api.request('PUT', `/admin/users/${this.user.id}/limits`, { limits: null });
      for (const [key] of LIMITS) this.$('admin-plan-form').elements[key].value = '';
      this.plan = plan;
      this.renderPlan(plan);
      setState(this.$('admin-plan-state'), `Cleared: ${this.user.email} has the ${plan.tier} tier's limits.`);
      await this.loadAudit();
    } catch (error) {
      setState(this.$('admin-plan-state'), describeError(error), 'error');
    }
  }

  async loadAudit(more = false) {
    const form = this.$('admin-audit-filter');
    const query = new URLSearchParams({ limit: String(PAGE) });
    for (const name of ['action', 'actorId']) if (form.elements[name].value.trim()) query.set(name, form.elements[name].value.trim());
    if (more && this.auditCursor) query.set('cursor', this.auditCursor);
    const state = this.$('admin-audit-state');
    try {
      const { audit, nextCursor } = await this.api.get(`/admin/audit?${query}`);
      this.auditCursor = nextCursor;
      const rows = audit.map((entry) =>
        el(
          'tr',
          { dataset: { testid: 'admin-audit-row', action: entry.action } },
          el('td', {}, when(entry.createdAt)),
          el('td', {}, el('code', {}, entry.actorId ?? '')),
          el('td', {}, entry.action),
          el('td', {}, [entry.targetType, entry.targetId].filter(Boolean).join(' ')),
          el('td', {}, el('code', { class: 'details' }, entry.details ? JSON.stringify(entry.details) : '')),
          el('td', { class: 'small' }, [entry.ip, entry.deviceId].filter(Boolean).join(' · ')),
        ),
      );
      if (more) this.$('admin-audit-rows').append(...rows);
      else this.$('admin-audit-rows').replaceChildren(...rows);
      this.$('admin-audit-more').hidden = !nextCursor;
      setState(state, audit.length || more ? '' : 'No entries.');
    } catch (error) {
      setState(state, describeError(error), 'error');
    }
  }
}
