// The Devices page (`#/devices`): the user's desktop apps, online or not (`GET /devices`: those
// connected now, then those a local agent names), what each said it runs, and which of the
// user's agents use it. Presence follows live: read again every 5 s while the page is shown and
// the tab visible.
import { el } from './blocks.js';
import { Poller, pageRoot, when } from './page-kit.js';

const REFRESH_MS = 5_000;

export class DevicesPage {
  constructor({ api }) {
    this.api = api;
    ({ root: this.root, $: this.$ } = pageRoot('devices-view'));
    this.poller = new Poller(() => this.load(), REFRESH_MS);
    this.root.replaceChildren(
      el('h1', { id: 'devices-h' }, 'Devices'),
      el(
        'p',
        { class: 'small' },
        'Your desktop apps connect here to hold your tasks, notes and projects, run tool calls for the assistant and read folders for local agents. ',
        'A device is listed while it is online, and whenever one of your local agents runs on it.',
      ),
      el('p', { class: 'state', 'aria-live': 'polite', dataset: { testid: 'devices-state' } }),
      el('ul', { class: 'item-list devices', dataset: { testid: 'device-list' } }),
    );
  }

  async show() {
    this.poller.start();
    await this.poller.now();
  }

  reset() {
    this.poller.stop();
  }

  async load() {
    try {
      const { devices } = await this.api.get('/devices');
      this.render(devices);
      const online = devices.filter((d) => d.online).length;
      this.$('devices-state').textContent = `${online} of ${devices.length} online · checked ${when(new Date().toISOString())}`;
    } catch (error) {
      this.$('devices-state').textContent = `Could not load your devices: ${error.message}`;
    }
  }

  render(devices) {
    const list = this.$('device-list');
    list.replaceChildren(
      ...devices.map((device) =>
        el(
          'li',
          { class: 'device', dataset: { testid: 'device-item', deviceId: device.deviceId, online: String(device.online) } },
          el('strong', {}, device.deviceId),
          el(
            'span',
            { class: `badge ${device.online ? 'online' : 'offline'}`, dataset: { testid: 'device-presence' } },
            device.online ? 'online' : 'offline',
          ),
          device.online ? el('span', { class: 'small' }, `connected ${when(device.connectedAt)}`) : null,
          device.agents.length
            ? el(
                'span',
                { class: 'small' },
                'Agents: ',
                ...device.agents.flatMap((agent, i) => [i ? ', ' : '', el('a', { href: `#/agents/${agent.id}` }, agent.name)]),
              )
            : null,
        ),
      ),
    );
    if (!devices.length)
      list.append(
        el('li', { class: 'small', dataset: { testid: 'device-none' } }, 'No device yet: start the desktop app and sign in there.'),
      );
  }
}
