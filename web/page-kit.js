// Small helpers the account pages share (agents, devices, API keys, account, admin): a page's
// root section, times, the API's error details, a two-step confirmation, polling while shown.
import { el } from './blocks.js';

/** The page's section, and a lookup of `data-testid` inside it. */
export function pageRoot(testid) {
  const root = document.querySelector(`[data-testid="${testid}"]`);
  return { root, $: (id) => root.querySelector(`[data-testid="${id}"]`) };
}

/** `2026-11-24 19:00:05` in the browser's zone; empty for null. */
export const when = (iso) => {
  if (!iso) return '';
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
};

/**
 * A text whose Markdown code spans (`…`) become `<code>` elements, as nodes for `el(…)`: help texts
 * name headers and values the way the docs do, and the page shows them as code, not backticks.
 */
export function withCode(text) {
  return text.split('`').map((part, index) => (index % 2 ? el('code', {}, part) : part));
}

/** The API error as one line, followed by its problems (`details: [{path, message}]`) when it lists them. */
export function describeError(error) {
  const problems = Array.isArray(error?.details) ? error.details : [];
  const lines = problems.map((p) => `${p.path ? `${Array.isArray(p.path) ? p.path.join('.') : p.path}: ` : ''}${p.message ?? ''}`);
  return [error?.message ?? String(error), ...lines].join('\n');
}

/** Shows `text` in a state line; `status` (busy, ok, error) styles it. */
export function setState(node, text, status = 'ok') {
  node.textContent = text;
  node.dataset.status = status;
}

/** Until when each keyed confirming button stays armed, by its key. */
const armedUntil = new Map();

/**
 * A button that acts on the second click: the first turns it into "`confirmText`" for 5 s. No
 * modal dialog, so keyboard and screen-reader users confirm in place. With a `key` (what it acts
 * on), a button drawn again while armed, because its list was loaded again, comes back armed for
 * the rest of its 5 s: the second click still confirms.
 */
export function confirmingButton(label, confirmText, onConfirm, props = {}, { key } = {}) {
  let armed = 0;
  let until = 0;
  const button = el('button', { type: 'button', class: 'danger', ...props }, label);
  const disarm = () => {
    clearTimeout(armed);
    armed = 0;
    if (key && armedUntil.get(key) === until) armedUntil.delete(key);
  };
  const arm = (at) => {
    until = at;
    if (key) armedUntil.set(key, at);
    button.textContent = confirmText;
    button.dataset.confirm = 'true';
    armed = setTimeout(() => {
      disarm();
      button.textContent = label;
      delete button.dataset.confirm;
    }, at - Date.now());
  };
  if (key && (armedUntil.get(key) ?? 0) > Date.now()) arm(armedUntil.get(key));
  button.addEventListener('click', async () => {
    if (!armed) {
      arm(Date.now() + 5_000);
      return;
    }
    disarm();
    button.disabled = true;
    try {
      await onConfirm();
    } finally {
      button.disabled = false;
      button.textContent = label;
      delete button.dataset.confirm;
    }
  });
  return button;
}

/**
 * Calls `tick` every `ms` while started and the tab is visible (a hidden tab asks nothing; it
 * catches up as soon as it is shown again). `tick` runs one at a time.
 */
export class Poller {
  constructor(tick, ms) {
    this.tick = tick;
    this.ms = ms;
    this.timer = 0;
    this.running = false;
    this.onVisible = () => {
      if (document.visibilityState === 'visible' && this.running) void this.now();
    };
  }

  start() {
    if (this.running) return;
    this.running = true;
    document.addEventListener('visibilitychange', this.onVisible);
    this.schedule();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisible);
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => void this.now(), this.ms);
  }

  /** Ticks now; a call while a tick runs makes one more tick follow it. */
  async now() {
    clearTimeout(this.timer);
    if (!this.running || document.visibilityState !== 'visible') return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        await this.tick();
      } while (this.again && this.running);
    } finally {
      this.busy = false;
      this.schedule();
    }
  }
}

/** Splits "a, b\nc" into ["a", "b", "c"]. */
export const listOf = (text, separator = /[,\n]/) =>
  String(text)
    .split(separator)
    .map((part) => part.trim())
    .filter(Boolean);
