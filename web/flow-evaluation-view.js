// An evaluation's figures (flow-evaluations.js): the versions side by side on score (overall and
// per scorer), cost (of the executions, per finished row, of the judge), tokens and latency
// (p50, p95), the best version on score, cost per row and p95 marked; and each dataset row's
// answers per version with their score and a link to their execution.
import { el } from './blocks.js';

const score = (value) => (value === null || value === undefined ? '—' : value.toFixed(2));
const usd = (value) => (value === null || value === undefined ? '—' : `$${Number(value).toFixed(6)}`);
const ms = (value) => (value === null || value === undefined ? '—' : `${Math.round(value)} ms`);
const short = (value, max = 120) => {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  return text.length > max ? `${text.slice(0, max)}…` : text;
};

/** Draws the comparison into `view`; `refresh()` and `cancel()` are its buttons' actions. */
export function renderComparison(view, { evaluation, versions, best }, results, rows, { refresh, cancel }) {
  const scorerNames = [...new Set(versions.flatMap((v) => v.scorers.map((s) => s.scorer)))];
  const bestCell = (version, key, text, testid) =>
    el(
      'td',
      { class: best[key] === version ? 'best' : undefined, dataset: { testid, best: String(best[key] === version) } },
      text,
      best[key] === version ? el('span', { class: 'badge' }, 'best') : null,
    );
  const perRow = (v) => (v.scored + v.failed ? v.costUsd / (v.scored + v.failed) : null);
  // The answers a reader opened stay open while the figures are read again.
  const answersOpen = Boolean(view.querySelector('[data-testid="eval-answers"][open]'));
  view.replaceChildren(
    el(
      'h3',
      {},
      `${evaluation.versions.map((v) => `v${v}`).join(' vs ')} `,
      el(
        'span',
        { class: `badge status-${evaluation.status}`, dataset: { testid: 'eval-status', status: evaluation.status } },
        evaluation.status,
      ),
    ),
    evaluation.error ? el('p', { class: 'error' }, `${evaluation.error.code}: ${evaluation.error.message}`) : '',
    el(
      'div',
      { class: 'row' },
      el(
        'button',
        {
          type: 'button',
          class: 'secondary',
          dataset: { testid: 'eval-refresh' },
          onclick: refresh,
        },
        'Refresh',
      ),
      evaluation.status === 'running'
        ? el('button', { type: 'button', class: 'danger', dataset: { testid: 'eval-cancel' }, onclick: cancel }, 'Cancel')
        : null,
      el(
        'span',
        { class: 'small' },
        evaluation.status === 'running' ? 'Figures cover the rows finished so far; read again every few seconds.' : '',
      ),
    ),
    el(
      'div',
      { class: 'table-scroll' },
      el(
        'table',
        { class: 'eval-table', dataset: { testid: 'eval-comparison' } },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            [
              'Version',
              'Finished',
              'Score',
              ...scorerNames,
              'Cost',
              'Cost per row',
              'Judge cost',
              'Tokens',
              'Latency p50',
              'Latency p95',
            ].map((h) => el('th', { scope: 'col' }, h)),
          ),
        ),
        el(
          'tbody',
          {},
          versions.map((v) =>
            el(
              'tr',
              { dataset: { testid: 'eval-version-row', version: String(v.version) } },
              el('th', { scope: 'row' }, `v${v.version}`),
              el(
                'td',
                { dataset: { testid: 'eval-finished' } },
                `${v.scored + v.failed + v.cancelled} of ${v.rows}${v.failed ? ` (${v.failed} failed)` : ''}`,
              ),
              bestCell(v.version, 'score', score(v.meanScore), 'eval-score'),
              scorerNames.map((name) =>
                el(
                  'td',
                  { dataset: { testid: 'eval-scorer-score', scorer: name } },
                  score(v.scorers.find((s) => s.scorer === name)?.meanScore),
                ),
              ),
              el('td', { dataset: { testid: 'eval-cost' } }, usd(v.costUsd)),
              bestCell(v.version, 'costUsd', usd(perRow(v)), 'eval-cost-per-row'),
              el('td', {}, usd(v.judgeCostUsd)),
              el('td', {}, `${v.inputTokens} in / ${v.outputTokens} out`),
              el('td', { dataset: { testid: 'eval-latency-p50' } }, ms(v.latencyMs.p50)),
              bestCell(v.version, 'latencyP95Ms', ms(v.latencyMs.p95), 'eval-latency-p95'),
            ),
          ),
        ),
      ),
    ),
    answers(evaluation, results, rows),
  );
  view.querySelector('[data-testid="eval-answers"]').open = answersOpen;
  view.hidden = false;
}

/** Each row's answer per version: its score, output and execution. */
function answers(evaluation, results, rows) {
  const byRow = new Map();
  for (const result of results) byRow.set(result.position, [...(byRow.get(result.position) ?? []), result]);
  const rowOf = new Map(rows.map((row) => [row.position, row]));
  return el(
    'details',
    { class: 'eval-answers', dataset: { testid: 'eval-answers' } },
    el('summary', {}, `Answers by row (${byRow.size})`),
    el(
      'div',
      { class: 'table-scroll' },
      el(
        'table',
        { class: 'eval-table' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', {}, '#'),
            el('th', {}, 'Input'),
            el('th', {}, 'Expected'),
            evaluation.versions.map((v) => el('th', {}, `v${v}`)),
          ),
        ),
        el(
          'tbody',
          {},
          [...byRow.entries()].map(([position, list]) =>
            el(
              'tr',
              { dataset: { testid: 'eval-answer-row', position: String(position) } },
              el('td', {}, String(position + 1)),
              el('td', {}, rowOf.has(position) ? short(rowOf.get(position).input) : '…'),
              el('td', {}, rowOf.has(position) ? short(rowOf.get(position).expected) : '…'),
              evaluation.versions.map((version) => {
                const result = list.find((r) => r.version === version);
                if (!result) return el('td', {}, '—');
                return el(
                  'td',
                  { dataset: { testid: 'eval-answer', version: String(version), status: result.status } },
                  el('strong', {}, result.score === null ? result.status : score(result.score)),
                  result.error ? el('span', { class: 'small error' }, ` ${result.error.code}`) : null,
                  result.output !== null && result.output !== undefined ? el('div', { class: 'small' }, short(result.output)) : null,
                  result.executionId
                    ? el('a', { href: `#/flows/${evaluation.flowId}/executions/${result.executionId}` }, 'execution')
                    : null,
                );
              }),
            ),
          ),
        ),
      ),
    ),
  );
}
