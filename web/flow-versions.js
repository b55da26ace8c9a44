// A flow's versions: every save is one, numbered from 1 and never changed. The panel lists them
// (newest first, the published one marked), publishes one (publishing an older one rolls back),
// and shows the line diff of two versions' definitions as formatted JSON. Built with DOM nodes
// only (definitions hold user text), never innerHTML.
import { el } from './blocks.js';

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
/** JSON with sorted keys, one value per line: two versions differ only where their content does. */
const canonical = (value) =>
  Array.isArray(value)
    ? value.map(canonical)
    : value && typeof value === 'object'
      ? Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((key) => [key, canonical(value[key])]),
        )
      : value;
const linesOf = (definition) => JSON.stringify(canonical(definition), null, 2).split('\n');

/**
 * The line diff of `a` to `b` by their longest common subsequence: `[' ', line]` kept, `['-', line]`
 * only in `a`, `['+', line]` only in `b`. Definitions are a few hundred lines at most.
 */
export function lineDiff(a, b) {
  const lengths = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      lengths[i][j] = a[i] === b[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) (out.push([' ', a[i++]]), j++);
    else if (lengths[i + 1][j] >= lengths[i][j + 1]) out.push(['-', a[i++]]);
    else out.push(['+', b[j++]]);
  }
  while (i < a.length) out.push(['-', a[i++]]);
  while (j < b.length) out.push(['+', b[j++]]);
  return out;
}

export class FlowVersions {
  /** `onPublished(flow)`: the flow as the API answered it after a publish. */
  constructor({ api, notify, onPublished }) {
    this.api = api;
    this.notify = notify;
    this.onPublished = onPublished;
    this.flow = null;
    this.versions = [];
    this.root = el(
      'section',
      { class: 'card versions', hidden: true, dataset: { testid: 'flow-versions' }, 'aria-labelledby': 'flow-versions-h' },
      el('h2', { id: 'flow-versions-h' }, 'Versions'),
      el(
        'p',
        { class: 'small' },
        'Every save is a version. The published one runs; executions and embeds keep the version they started with.',
      ),
      el('ul', { class: 'version-list', dataset: { testid: 'flow-version-list' } }),
      el(
        'form',
        { class: 'row', dataset: { testid: 'flow-diff-form' }, onsubmit: (e) => (e.preventDefault(), void this.compare()) },
        el('label', {}, 'Compare ', el('select', { dataset: { testid: 'flow-diff-from' } })),
        el('label', {}, ' with ', el('select', { dataset: { testid: 'flow-diff-to' } })),
        el('button', { type: 'submit', class: 'secondary', dataset: { testid: 'flow-diff-show' } }, 'Show changes'),
      ),
      el('pre', { class: 'flow-diff', hidden: true, dataset: { testid: 'flow-diff' }, 'aria-live': 'polite' }),
    );
  }

  $(id) {
    return this.root.querySelector(`[data-testid="${id}"]`);
  }

  async show(flow) {
    this.flow = flow;
    this.root.hidden = !flow;
    this.$('flow-diff').hidden = true;
    if (!flow) return;
    try {
      // The newest 200: older ones stay reachable through the API's pages.
      this.versions = (await this.api.get(`/flows/${flow.id}/versions?limit=200`)).versions;
    } catch (error) {
      this.versions = [];
      this.notify(`Could not list the versions: ${error.message}`, true);
    }
    if (this.flow !== flow) return;
    this.render();
  }

  render() {
    this.$('flow-version-list').replaceChildren(
      ...this.versions.map((v) =>
        el(
          'li',
          { dataset: { testid: 'flow-version', version: String(v.version) } },
          el('strong', {}, `v${v.version}`),
          ` ${when(v.createdAt)} `,
          v.published
            ? el('span', { class: 'badge', dataset: { testid: 'flow-version-published' } }, 'published')
            : el(
                'button',
                {
                  type: 'button',
                  class: 'secondary',
                  dataset: { testid: 'flow-version-publish' },
                  onclick: () => void this.publish(v.version),
                },
                v.version < this.flow.publishedVersion ? 'Roll back to this' : 'Publish',
              ),
        ),
      ),
    );
    const options = () =>
      this.versions.map((v) => el('option', { value: String(v.version) }, `v${v.version}${v.published ? ' (published)' : ''}`));
    this.$('flow-diff-from').replaceChildren(...options());
    this.$('flow-diff-to').replaceChildren(...options());
    // By default: the version before the newest, against the newest.
    if (this.versions[1]) this.$('flow-diff-from').value = String(this.versions[1].version);
    if (this.versions[0]) this.$('flow-diff-to').value = String(this.versions[0].version);
    this.$('flow-diff-form').hidden = this.versions.length < 2;
  }

  async publish(version) {
    try {
      const { flow } = await this.api.post(`/flows/${this.flow.id}/versions/${version}/publish`, {});
      this.notify(`Version ${version} published.`);
      this.onPublished(flow);
    } catch (error) {
      this.notify(`Could not publish version ${version}: ${error.message}`, true);
    }
  }

  async compare() {
    const from = this.$('flow-diff-from').value;
    const to = this.$('flow-diff-to').value;
    const out = this.$('flow-diff');
    try {
      const [a, b] = await Promise.all([from, to].map((n) => this.api.get(`/flows/${this.flow.id}/versions/${n}`)));
      const diff = lineDiff(linesOf(a.version.definition), linesOf(b.version.definition));
      const changed = diff.some(([mark]) => mark !== ' ');
      out.replaceChildren(
        el('div', { class: 'diff-head' }, `v${from} → v${to}${changed ? '' : ': no changes'}`),
        ...diff.map(([mark, line]) =>
          el(
            'div',
            {
              class: mark === '+' ? 'diff-add' : mark === '-' ? 'diff-del' : 'diff-same',
              dataset: { testid: mark === ' ' ? 'diff-same' : mark === '+' ? 'diff-add' : 'diff-del' },
            },
            `${mark} ${line}`,
          ),
        ),
      );
      out.hidden = false;
    } catch (error) {
      this.notify(`Could not compare the versions: ${error.message}`, true);
    }
  }
}
