// An agent's runs on the Agents page: newest first, each with its log (when and how it started,
// what it processed and created, every error, how it ended). A run that is queued, waiting for its
// device or running is followed live: the list is read again every second until it ends (runs
// have no browser push of their own; a quiet page reads every 15 s for scheduled runs). A live run
// can be stopped.
import { el } from './blocks.js';
import { Poller, when } from './page-kit.js';

const PAGE = 20;
const LIVE_MS = 1_000;
const QUIET_MS = 15_000;
const ACTIVE = new Set(['queued', 'running', 'waiting_device']);
const STATUS_TEXT = {
  queued: 'queued',
  running: 'running',
  waiting_device: 'waiting for its device',
  success: 'succeeded',
  partial: 'partly succeeded',
  error: 'failed',
  cancelled: 'stopped',
};

/** The log lines of one run, oldest first. */
function logLines(run) {
  const lines = [[run.startedAt, `Started (${run.trigger === 'schedule' ? `scheduled for ${when(run.slot)}` : 'run now'})`]];
  if (run.deviceId) lines.push([null, `Device: ${run.deviceId}`]);
  if (run.status === 'waiting_device') lines.push([null, 'Waiting for the device to come online…']);
  if (run.itemsProcessed || run.itemsCreated || !ACTIVE.has(run.status))
    lines.push([null, `Processed ${run.itemsProcessed} item(s), created ${run.itemsCreated} suggestion(s)`]);
  for (const error of run.errors ?? []) lines.push([null, `Error: ${error}`, 'error']);
  if (run.completedAt) lines.push([run.completedAt, `Finished: ${STATUS_TEXT[run.status] ?? run.status}`]);
  return lines;
}

export class AgentRuns {
  constructor({ api, notify, root }) {
    this.api = api;
    this.notify = notify;
    this.root = root;
    this.agent = null;
    this.runs = [];
    /** Run ids queued from this page that the list does not show yet. */
    this.pending = new Set();
    this.poller = new Poller(() => this.load(), QUIET_MS);
    this.list = el('ol', { class: 'run-list', dataset: { testid: 'agent-run-list' } });
    this.state = el('p', { class: 'small', 'aria-live': 'polite', dataset: { testid: 'agent-runs-state' } });
    root.replaceChildren(el('h2', { id: 'runs-h' }, 'Runs'), this.state, this.list);
  }

  show(agent) {
    if (this.agent?.id !== agent.id) {
      this.runs = [];
      this.pending.clear();
      this.list.replaceChildren();
    }
    this.agent = agent;
    this.root.hidden = false;
    this.poller.start();
    void this.poller.now();
  }

  hide() {
    this.root.hidden = true;
    this.stop();
  }

  stop() {
    this.poller.stop();
    this.agent = null;
  }

  /** A run just queued: read at the live pace until it has ended. */
  follow(runId) {
    this.pending.add(runId);
    this.state.textContent = 'Run queued…';
    void this.poller.now();
  }

  async load() {
    const agent = this.agent;
    if (!agent) return;
    try {
      const { runs } = await this.api.get(`/agents/runs?agentId=${agent.id}&limit=${PAGE}`);
      if (this.agent?.id !== agent.id) return;
      this.runs = runs;
      for (const run of runs) if (!ACTIVE.has(run.status)) this.pending.delete(run.id);
      this.render();
    } catch (error) {
      this.state.textContent = `Could not load the runs: ${error.message}`;
    }
    const live = this.pending.size > 0 || this.runs.some((run) => ACTIVE.has(run.status));
    this.poller.ms = live ? LIVE_MS : QUIET_MS;
  }

  render() {
    const live = this.runs.filter((run) => ACTIVE.has(run.status)).length;
    this.state.textContent = this.runs.length
      ? `${this.runs.length === PAGE ? `The last ${PAGE} runs` : `${this.runs.length} run(s)`}${live ? `, ${live} live` : ''}.`
      : this.pending.size
        ? 'Run queued…'
        : 'No runs yet.';
    this.list.replaceChildren(
      ...this.runs.map((run) =>
        el(
          'li',
          { class: 'run', dataset: { testid: 'agent-run-item', runId: run.id, status: run.status } },
          el(
            'div',
            { class: 'run-head' },
            el(
              'span',
              { class: `badge status-${run.status}`, dataset: { testid: 'agent-run-status' } },
              STATUS_TEXT[run.status] ?? run.status,
            ),
            el('span', { class: 'small' }, when(run.startedAt)),
            ACTIVE.has(run.status)
              ? el(
                  'button',
                  { type: 'button', class: 'secondary', dataset: { testid: 'agent-run-stop' }, onclick: () => void this.cancel(run) },
                  'Stop',
                )
              : null,
          ),
          el(
            'ol',
            { class: 'log run-log', dataset: { testid: 'agent-run-log' } },
            ...logLines(run).map(([at, text, kind]) =>
              el('li', { class: kind ?? '' }, at ? el('time', { datetime: at }, `${when(at)} `) : '', text),
            ),
          ),
        ),
      ),
    );
  }

  async cancel(run) {
    try {
      await this.api.post(`/agents/runs/${run.id}/cancel`);
      this.notify('Stopping the run…');
      void this.poller.now();
    } catch (error) {
      this.notify(
        error.code === 'not_running' ? 'The run had already ended.' : `Could not stop the run: ${error.message}`,
        error.code !== 'not_running',
      );
      void this.poller.now();
    }
  }
}
