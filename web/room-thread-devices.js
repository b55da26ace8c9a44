// The devices lent to a room thread (`GET …/threads/:id/devices`): who lent each, Take back for
// one's own, Lend for an editor's online devices not lent yet, and the device a message may name.
// A call of another member's turn on a lent device is asked of its owner, whatever the policy.
import { el } from './blocks.js';

export class ThreadDevices {
  /**
   * @param {object} deps
   * @param {import('./api.js').Api} deps.api
   * @param {(userId: string) => string | null} deps.nameOf
   * @param {(message: string, isError?: boolean) => void} deps.notify
   */
  constructor({ api, nameOf, notify }) {
    this.api = api;
    this.nameOf = nameOf;
    this.notify = notify;
    this.base = null;
    this.loans = [];
    this.list = el('ul', { class: 'thread-devices small', dataset: { testid: 'thread-devices' } });
    this.mine = el('select', { 'aria-label': 'One of your online devices', dataset: { testid: 'thread-lend-select' } });
    this.lendForm = el(
      'form',
      { class: 'row', hidden: true, dataset: { testid: 'thread-lend-form' } },
      this.mine,
      el('button', { type: 'submit', class: 'secondary', dataset: { testid: 'thread-lend' } }, 'Lend to the thread'),
    );
    this.lendForm.addEventListener('submit', (event) => {
      event.preventDefault();
      if (this.mine.value) void this.lend(this.mine.value);
    });
    /** Where a message's turn may run device tools: none, or a lent device. */
    this.choice = el('select', { 'aria-label': 'Device for this message', hidden: true, dataset: { testid: 'thread-device-select' } });
    this.node = el('div', { class: 'thread-devices-box' }, this.list, this.lendForm);
  }

  /** Shows the loans of `base` (`/canvases/:id/threads/:threadId`); `editor`: may lend. */
  async load(base, editor) {
    this.base = base;
    try {
      const [{ devices: loans }, online] = await Promise.all([
        this.api.get(`${base}/devices`),
        editor ? this.api.get('/devices').then(({ devices }) => devices.filter((device) => device.online)) : [],
      ]);
      if (this.base !== base) return;
      this.loans = loans;
      this.render(online);
    } catch (error) {
      if (this.base === base) this.list.replaceChildren(el('li', {}, `Could not list the lent devices: ${error.message}`));
    }
  }

  clear() {
    this.base = null;
    this.loans = [];
    this.render([]);
  }

  render(online) {
    const me = this.api.user?.id;
    this.list.replaceChildren(
      ...this.loans.map((loan) =>
        el(
          'li',
          { dataset: { testid: 'thread-device', deviceId: loan.deviceId, ownerId: loan.ownerId } },
          `${loan.deviceId} · lent by ${loan.ownerId === me ? 'you' : (this.nameOf(loan.ownerId) ?? 'a member')} `,
          loan.ownerId === me
            ? el(
                'button',
                {
                  type: 'button',
                  class: 'link-button',
                  dataset: { testid: 'thread-device-withdraw' },
                  onclick: () => void this.withdraw(loan.deviceId),
                },
                'Take back',
              )
            : null,
        ),
      ),
    );
    const lendable = online.filter((device) => !this.loans.some((loan) => loan.deviceId === device.deviceId));
    this.mine.replaceChildren(...lendable.map((device) => el('option', { value: device.deviceId }, device.deviceId)));
    this.lendForm.hidden = lendable.length === 0;
    const chosen = this.choice.value;
    this.choice.replaceChildren(
      el('option', { value: '' }, 'No device'),
      ...this.loans.map((loan) => el('option', { value: loan.deviceId }, `On ${loan.deviceId}`)),
    );
    this.choice.value = this.loans.some((loan) => loan.deviceId === chosen) ? chosen : '';
    this.choice.hidden = this.loans.length === 0;
  }

  async lend(deviceId) {
    try {
      await this.api.request('PUT', `${this.base}/devices/${encodeURIComponent(deviceId)}`);
      this.notify(`${deviceId} is lent to the thread: you are asked before another member's turn uses it.`);
    } catch (error) {
      this.notify(`Could not lend ${deviceId}: ${error.message}`, true);
    }
  }

  async withdraw(deviceId) {
    try {
      await this.api.request('DELETE', `${this.base}/devices/${encodeURIComponent(deviceId)}`);
    } catch (error) {
      this.notify(`Could not take ${deviceId} back: ${error.message}`, true);
    }
  }
}
