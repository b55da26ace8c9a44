// The console's entry: sign-in, the canvas list, and hash routing (`#/`, `#/canvases/<id>`,
// `#/assistant`, `#/usage`, `#/flows`, `#/flows/<id>`, `#/flows/<id>/executions/<executionId>`, and
// the account pages `#/agents`, `#/agents/<id>`, `#/knowledge`, `#/knowledge/<id>`, `#/devices`, `#/code`, `#/keys`,
// `#/webhooks`, `#/account`, `#/admin`).
import { io } from '/console/vendor/socket.io.esm.min.js';
import { Api } from './api.js';
import { ApprovalsPanel } from './approvals.js';
import { InputFormsPanel } from './input-forms.js';
import { AssistantPanel } from './assistant-panel.js';
import { BlockEditor } from './block-editor.js';
import { FlowsPage } from './flows-page.js';
import { CanvasView } from './canvas-view.js';
import { GeneratePanel } from './generate-panel.js';
import { GenerationBanner } from './generation-banner.js';
import { RoomThreadPanel } from './room-thread-panel.js';
import { UsagePage } from './usage-page.js';
import { AccountPage } from './account-page.js';
import { AdminPage } from './admin-page.js';
import { AgentsPage } from './agents-page.js';
import { DevicesPage } from './devices-page.js';
import { CodePage } from './code-page.js';
import { KeysPage } from './keys-page.js';
import { KnowledgePage } from './knowledge-page.js';
import { WebhooksPage } from './webhooks-page.js';
import { CanvasesPage } from './canvases-page.js';
import { SessionKeeper } from './session-keeper.js';

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
/**
 * The connection badge, and while the socket is down a banner above the board with Generate
 * disabled: a generation started then could not be watched, and its failure would read as the AI's.
 */
function setConnection(state) {
  const badge = $('connection-status');
  badge.textContent = state;
  badge.dataset.state = state;
  const offline = state === 'offline' && Boolean(api.session);
  $('offline-banner').hidden = !offline;
  generator.setOffline(offline);
}

const view = new CanvasView({ api, socket, notify });
const generator = new GeneratePanel({ api, view, notify });
const approvals = new ApprovalsPanel({ api, socket, notify });
const inputForms = new InputFormsPanel({ api, socket, notify });
new BlockEditor({ api, view, notify });
const keeper = new SessionKeeper({ api, socket, notify });
const canvases = new CanvasesPage({ api, notify });
const banner = new GenerationBanner({ api, view, notify, follows: (generationId) => generator.follows(generationId) });
generator.onAdopt = (generationId) => banner.end(generationId);
const roomThread = new RoomThreadPanel({ api, socket, view, notify });
const assistant = new AssistantPanel({ api, socket, notify });
const usage = new UsagePage({ api, notify });
const flows = new FlowsPage({ api, notify });
/** The account pages, by their hash (`#/agents`, `#/knowledge`…): each builds its own section `<name>-view`. */
const accountPages = {
  agents: new AgentsPage({ api, notify }),
  knowledge: new KnowledgePage({ api, notify }),
  devices: new DevicesPage({ api, notify }),
  code: new CodePage({ api, notify }),
  keys: new KeysPage({ api, notify }),
  webhooks: new WebhooksPage({ api, notify }),
  account: new AccountPage({ api, notify }),
  admin: new AdminPage({ api, notify }),
};
const ACCOUNT_PAGE = /^#\/(agents|knowledge|devices|code|keys|webhooks|account|admin)(?:\/([0-9a-f-]{36}))?(?:\?(.*))?$/i;
// The block editor listens for the role; the Generate panel follows it too (disabled for viewers),
// and so does the banner's Stop (editors and owners only).
const editorOnRole = view.onRole;
view.onRole = (role) => {
  editorOnRole?.(role);
  generator.setRole(role);
  banner.render();
};

function show(name) {
  for (const section of [
    'auth-view',
    'home-view',
    'canvas-view',
    'assistant-view',
    'usage-view',
    'flows-view',
    ...Object.keys(accountPages).map((p) => `${p}-view`),
  ])
    $(section).hidden = section !== name;
}

async function route() {
  if (!/^#\/flows(\/|$)/.test(location.hash) || !api.session) flows.reset();
  const accountMatch = ACCOUNT_PAGE.exec(location.hash);
  const accountPage = api.session ? accountMatch?.[1].toLowerCase() : undefined;
  for (const [name, page] of Object.entries(accountPages)) if (name !== accountPage) page.reset?.();
  if (!api.session) {
    view.close();
    generator.reset();
    banner.reset();
    assistant.reset();
    show('auth-view');
    return;
  }
  const flowMatch = /^#\/flows(?:\/([0-9a-f-]{36})(?:\/executions\/([0-9a-f-]{36}))?)?$/i.exec(location.hash);
  if (flowMatch) {
    view.close();
    generator.reset();
    banner.reset();
    show('flows-view');
    await flows.show(flowMatch[1]?.toLowerCase(), flowMatch[2]?.toLowerCase());
    return;
  }
  if (accountPage) {
    view.close();
    generator.reset();
    banner.reset();
    show(`${accountPage}-view`);
    await accountPages[accountPage].show(accountMatch[2]?.toLowerCase(), new URLSearchParams(accountMatch[3] ?? ''));
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
    roomThread.reset();
    show('canvas-view');
    try {
      await view.open(match[1].toLowerCase());
      $('canvas-title').focus?.();
      // This tab's last generation here (still running, or to undo), or the newest one to undo.
      void generator.restore(view.canvasId);
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
  await canvases.show();
}

/**
 * Shows the dashboard link to admins. `/me` says whether the caller is one, so a non-admin's
 * browser never requests the guarded dashboard (no 403 in its console).
 */
async function probeAdmin() {
  const link = $('admin-link');
  link.hidden = true;
  setAdminPage(false);
  try {
    const { user } = await api.get('/me');
    link.hidden = user?.admin !== true;
    usage.setAdmin(user?.admin === true);
    setAdminPage(user?.admin === true);
  } catch {
    link.hidden = true;
    usage.setAdmin(false);
    setAdminPage(false);
  }
}

/** The Admin page's nav entry and content follow `/me`; an open Admin page is shown again once it is known. */
function setAdminPage(admin) {
  $('nav-admin').hidden = !admin;
  accountPages.admin.setAdmin(admin);
  if (/^#\/admin$/i.test(location.hash)) void accountPages.admin.show();
}

/** True while this tab runs a session (socket, keeper, approvals started). */
let active = false;

function showAccount(session) {
  $('account').hidden = !session;
  $('current-user').textContent = session ? `${session.user.name} (${session.user.email})` : '';
}

api.onSessionChange = (session) => {
  showAccount(session);
  if (!session) {
    active = false;
    keeper.stop();
    socket.disconnect();
    approvals.stop();
    inputForms.stop();
    void route();
  } else if (!active) {
    // Signed in here (the form) or in another tab: this tab starts its session.
    void signedIn();
  }
};

/** Starts this tab's session: called once per session, while `active` is false. */
async function signedIn() {
  active = true;
  showAccount(api.session);
  socket.connect();
  keeper.start();
  approvals.start();
  inputForms.start();
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
      // The new session starts the tab (socket, approvals, the page at the address) through onSessionChange: once.
      await action(new FormData(form));
      form.reset();
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

$('signout').addEventListener('click', async () => {
  location.hash = '#/';
  // Revoked on the server too: the refresh token stops working, and every socket of the session closes.
  if (!(await api.signOut())) notify('Signed out here; the server could not be reached to end the session.', true);
});

window.addEventListener('hashchange', () => void route());

// A tab without a session of its own (a new tab) takes the browser's from the session cookie.
if (api.session) void signedIn();
else void api.resume().then((resumed) => (resumed ? undefined : route()));
