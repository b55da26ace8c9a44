// The console's entry: sign-in, the canvas list, and hash routing (`#/`, `#/canvases/<id>`,
// `#/assistant`, `#/usage`, `#/flows`, `#/flows/<id>`).
import { io } from '/console/vendor/socket.io.esm.min.js';
import { Api } from './api.js';
import { ApprovalsPanel } from './approvals.js';
import { AssistantPanel } from './assistant-panel.js';
import { BlockEditor } from './block-editor.js';
import { el } from './blocks.js';
import { FlowsPage } from './flows-page.js';
import { CanvasView } from './canvas-view.js';
import { GeneratePanel } from './generate-panel.js';
import { GenerationBanner } from './generation-banner.js';
import { UsagePage } from './usage-page.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const api = new Api();

let noticeTimer = 0;
function notify(message, isError = false) {
  const notice = $('notice');
  notice.textContent = message;
  notice.classList.toggle('error', isError);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.textContent = ''), 6_000);
}

// One socket for the tab. `auth` is a function so every (re)connect presents the current token.
// WebSocket first (no polling-then-upgrade round trips), long-polling only when it cannot open.
const socket = io('/canvas', {
  autoConnect: false,
  transports: ['websocket', 'polling'],
  tryAllTransports: true,
  auth: (send) => send({ token: api.accessToken }),
});
socket.on('connect', () => setConnection('live'));
socket.on('disconnect', () => setConnection('offline'));
socket.on('connect_error', async (error) => {
  setConnection('offline');
  if (error.message !== 'unauthorized' || !api.session) return;
  // An expired access token: refresh once, then reconnect (a failed refresh signs out).
  try {
    await api.refresh();
    socket.connect();
  } catch {
    notify('Your session ended; please sign in again.', true);
  }
});
function setConnection(state) {
  const badge = $('connection-status');
  badge.textContent = state;
  badge.dataset.state = state;
}

const view = new CanvasView({ api, socket, notify });
const generator = new GeneratePanel({ api, view, notify });
const approvals = new ApprovalsPanel({ api, socket, notify });
new BlockEditor({ api, view, notify });
const banner = new GenerationBanner({ api, view });
const assistant = new AssistantPanel({ api, socket, notify });
const usage = new UsagePage({ api, notify });
const flows = new FlowsPage({ api, notify });

function show(name) {
  for (const section of ['auth-view', 'home-view', 'canvas-view', 'assistant-view', 'usage-view', 'flows-view'])
    $(section).hidden = section !== name;
}

async function route() {
  if (!/^#\/flows(\/|$)/.test(location.hash) || !api.session) flows.reset();
  if (!api.session) {
    view.close();
    generator.reset();
    banner.reset();
    assistant.reset();
    show('auth-view');
    return;
  }
  const flowMatch = /^#\/flows(?:\/([0-9a-f-]{36}))?$/i.exec(location.hash);
  if (flowMatch) {
    view.close();
    generator.reset();
    banner.reset();
    show('flows-view');
    await flows.show(flowMatch[1]?.toLowerCase());
    return;
  }
  if (location.hash === '#/assistant' || location.hash === '#/usage') {
    view.close();
    generator.reset();
    banner.reset();
    const page = location.hash === '#/assistant' ? 'assistant' : 'usage';
    show(`${page}-view`);
    await (page === 'assistant' ? assistant.show() : usage.show());
    return;
  }
  const match = /^#\/canvases\/([0-9a-f-]{36})$/i.exec(location.hash);
  if (match) {
    if (view.canvasId === match[1].toLowerCase()) return show('canvas-view');
    generator.reset();
    banner.reset();
    show('canvas-view');
    try {
      await view.open(match[1].toLowerCase());
      $('canvas-title').focus?.();
    } catch (error) {
      notify(`Could not open the canvas: ${error.message}`, true);
      location.hash = '#/';
    }
    return;
  }
  view.close();
  generator.reset();
  banner.reset();
  show('home-view');
  await loadCanvases();
}

async function loadCanvases() {
  try {
    // Newest first, in pages of up to 200: follow nextCursor to list them all.
    const canvases = [];
    let cursor;
    do {
      const page = await api.get(`/canvases?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      canvases.push(...page.canvases);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    $('canvas-list').replaceChildren(
      ...canvases.map((canvas) =>
        el(
          'li',
          { dataset: { testid: 'canvas-list-item', canvasId: canvas.id } },
          el('a', { href: `#/canvases/${canvas.id}`, dataset: { testid: 'open-canvas' } }, canvas.title),
          el('span', { class: 'badge' }, canvas.role ?? ''),
        ),
      ),
    );
    if (canvases.length === 0) $('canvas-list').append(el('li', { class: 'small' }, 'No canvases yet.'));
  } catch (error) {
    notify(`Could not load canvases: ${error.message}`, true);
  }
}

/**
 * Shows the dashboard link to admins. `/me` says whether the caller is one, so a non-admin's
 * browser never requests the guarded dashboard (no 403 in its console).
 */
async function probeAdmin() {
  const link = $('admin-link');
  link.hidden = true;
  try {
    const { user } = await api.get('/me');
    link.hidden = user?.admin !== true;
    usage.setAdmin(user?.admin === true);
  } catch {
    link.hidden = true;
    usage.setAdmin(false);
  }
}

api.onSessionChange = (session) => {
  $('account').hidden = !session;
  $('current-user').textContent = session ? `${session.user.name} (${session.user.email})` : '';
  if (!session) {
    socket.disconnect();
    approvals.stop();
    void route();
  }
};

async function signedIn() {
  api.onSessionChange(api.session);
  socket.connect();
  approvals.start();
  void probeAdmin();
  await route();
}

function authForm(id, action) {
  $(id).addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    $('auth-error').textContent = '';
    try {
      await action(new FormData(form));
      form.reset();
      await signedIn();
    } catch (error) {
      $('auth-error').textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
}
authForm('signin-form', (data) => api.signIn(String(data.get('email')).trim(), String(data.get('password'))));
authForm('signup-form', (data) =>
  api.signUp(String(data.get('name')).trim(), String(data.get('email')).trim(), String(data.get('password'))),
);

$('signout').addEventListener('click', () => {
  location.hash = '#/';
  api.signOut();
});

$('create-canvas-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    const { canvas } = await api.post('/canvases', { title: String(new FormData(form).get('title')).trim() });
    form.reset();
    location.hash = `#/canvases/${canvas.id}`;
  } catch (error) {
    notify(`Could not create the canvas: ${error.message}`, true);
  }
});

window.addEventListener('hashchange', () => void route());

if (api.session) void signedIn();
else void route();
