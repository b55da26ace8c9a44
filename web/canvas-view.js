// One open canvas: its blocks (REST first, then live from the `/canvas` room), presence,
// cursors and members. Generation lives in generate-panel.js, the room's assistant in room-thread-panel.js.
import { blockBody, byRank, el } from './blocks.js';
import { CanvasSync, ROOM_EVENTS } from './canvas-sync.js';
import { ask } from './confirm-dialog.js';

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const CURSOR_INTERVAL_MS = 50;
const CURSOR_IDLE_MS = 10_000;

export class CanvasView {
  constructor({ api, socket, notify }) {
    this.api = api;
    this.socket = socket;
    this.notify = notify;
    this.canvasId = null;
    this.blocks = new Map();
    this.names = new Map();
    this.cursors = new Map();
    this.lastCursorAt = 0;
    this.cursorTimer = 0;
    this.pendingCursor = null;
    this.board = $('canvas-board');
    /** `decorate(node, block)` adds controls to a block's element (block-editor.js). */
    this.decorate = null;
    /** Called with the caller's role as soon as an opened canvas is loaded (block-editor.js). */
    this.onRole = null;
    /** Called with each room event after it is applied, in seq order (generation-banner.js). */
    this.roomListeners = [];
    /** Called with `(canvasId, seq)` once an opened canvas's room is joined and loaded (generation-banner.js). */
    this.joinListeners = [];
    /** Called with `canvasId` after a resync reloaded the blocks: the room no longer kept what was missed (room-thread-panel.js). */
    this.resyncListeners = [];
    // Room events by seq, exactly once, caught up after every reconnect (canvas-sync.js).
    this.sync = new CanvasSync({
      sync: (canvasId, afterSeq) => this.socket.timeout(10_000).emitWithAck('canvas:sync', { canvasId, afterSeq }),
      apply: (event, payload) => this.applyRoomEvent(event, payload),
      reload: async (canvasId) => {
        await this.reloadBlocks(canvasId);
        for (const listener of this.resyncListeners) listener(canvasId);
      },
    });
    this.bindSocket();
    this.board.addEventListener('mousemove', (event) => this.sendCursor(event));
    $('invite-form').addEventListener('submit', (event) => this.invite(event));
  }

  /** Shows canvas `canvasId`: loads it over REST, then joins its room. */
  async open(canvasId) {
    this.close();
    this.canvasId = canvasId;
    const [{ canvas, members, membersNextCursor }, blocks] = await Promise.all([
      this.api.get(`/canvases/${canvasId}`),
      this.loadAllBlocks(canvasId),
    ]);
    // Over 200 members: the rest come from the members list.
    if (membersNextCursor) members.push(...(await this.loadAllMembers(canvasId, membersNextCursor)));
    if (this.canvasId !== canvasId) return;
    $('canvas-title').textContent = canvas.title;
    $('canvas-role').textContent = canvas.role ?? '';
    this.role = canvas.role;
    this.ownerId = canvas.ownerId;
    this.title = canvas.title;
    this.onRole?.(canvas.role);
    $('invite-form').hidden = canvas.role !== 'owner';
    $('invite-result').textContent = '';
    this.renderMembers(members);
    for (const block of blocks) this.blocks.set(block.id, block);
    this.renderBlocks();
    await this.join();
  }

  /** Every block of a canvas over HTTP, following `nextCursor` (the list comes in pages of ≤ 200). */
  async loadAllBlocks(canvasId) {
    const blocks = [];
    let cursor;
    do {
      const page = await this.api.get(`/canvases/${canvasId}/blocks${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
      blocks.push(...page.blocks);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return blocks;
  }

  /** Every member, following `nextCursor` (the list comes in pages of up to 200). */
  async loadAllMembers(canvasId, from) {
    const members = [];
    let cursor = from;
    do {
      const page = await this.api.get(`/canvases/${canvasId}/members${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
      members.push(...page.members);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return members;
  }

  /** The canvas's blocks over HTTP: the truth after a resync. */
  async reloadBlocks(canvasId) {
    const blocks = await this.loadAllBlocks(canvasId);
    if (this.canvasId !== canvasId) return;
    this.blocks = new Map(blocks.map((block) => [block.id, block]));
    this.renderBlocks();
  }

  close() {
    if (this.canvasId && this.socket.connected) this.socket.emit('canvas:leave', this.canvasId);
    this.canvasId = null;
    this.sync.stop();
    this.blocks.clear();
    this.names.clear();
    for (const cursor of this.cursors.values()) cursor.node.remove();
    this.cursors.clear();
    $('block-list').replaceChildren();
    $('draft-list').replaceChildren();
    $('presence-list').replaceChildren();
    $('member-list').replaceChildren();
  }

  async join() {
    const canvasId = this.canvasId;
    if (!canvasId || !this.socket.connected) return;
    const reply = await this.socket
      .timeout(10_000)
      .emitWithAck('canvas:join', canvasId)
      .catch(() => null);
    if (this.canvasId !== canvasId) return;
    if (!reply?.ok) {
      const code = reply?.error?.code ?? 'timeout';
      this.notify(`Could not join the canvas room (${code})`, true);
      // A passing failure (slow server, busy socket) is tried again; a refusal (not_found) is final.
      if (code !== 'not_found' && code !== 'validation_failed') setTimeout(() => this.canvasId === canvasId && void this.join(), 2_000);
      return;
    }
    this.renderPresence(reply.presence);
    // Joined again after a reconnect that lost the rooms: continue from the last applied seq.
    if (this.sync.state?.canvasId === canvasId) return this.catchUp();
    // First join: follow from the ack's seq; events wait until the blocks (read after it) are in.
    this.sync.start(canvasId, reply.seq);
    await this.reloadBlocks(canvasId).catch((error) => this.notify(`Could not load the blocks: ${error.message}`, true));
    if (this.canvasId !== canvasId) return;
    this.sync.loaded();
    for (const listener of this.joinListeners) listener(canvasId, reply.seq);
  }

  /**
   * The room's last `count` events up to `seq` (from its replay log): what was under way before this
   * tab joined. None when the log no longer keeps them all, or cannot be asked.
   */
  async eventsBefore(canvasId, seq, count) {
    const reply = await this.socket
      .timeout(10_000)
      .emitWithAck('canvas:sync', { canvasId, afterSeq: Math.max(0, seq - count) })
      .catch((error) => {
        // Unanswered (timed out, disconnected): the banner then learns of earlier generations at their next stage.
        console.warn('Could not read the room’s recent events:', error.message);
        return null;
      });
    if (!reply?.ok || reply.resync || this.canvasId !== canvasId) return [];
    return reply.events.filter((entry) => entry.seq <= seq);
  }

  /** After EVERY reconnect, recovered or not: Socket.IO's replay can miss a packet. */
  async onReconnect() {
    if (!this.canvasId) return;
    if (this.socket.recovered && this.sync.state?.canvasId === this.canvasId) return this.catchUp();
    return this.join();
  }

  async catchUp() {
    await this.sync.catchUp().catch(() => {
      // Timed out: ask again shortly while connected (a new connection asks by itself).
      setTimeout(() => this.socket.connected && void this.catchUp(), 1_000);
    });
  }

  bindSocket() {
    const mine = (payload) => payload && payload.canvasId === this.canvasId;
    this.socket.on('connect', () => void this.onReconnect());
    for (const name of ROOM_EVENTS) this.socket.on(name, (payload) => this.sync.receive(name, payload));
    this.socket.on('presence', (p) => mine(p) && this.renderPresence(p.users));
    this.socket.on('cursor', (p) => this.canvasId && this.showCursor(p));
  }

  /** One room event, in seq order and exactly once (from CanvasSync). */
  applyRoomEvent(event, p) {
    if (event === 'block_added' || event === 'block_updated') this.upsert([p.block]);
    else if (event === 'blocks_bulk_added_chunk') this.upsert(p.blocks);
    else if (event === 'block_deleted') this.remove([p.blockId]);
    else if (event === 'generation_undone') this.remove(p.blockIds);
    else if (event === 'generation_redone') this.upsert(p.blocks);
    // For tests and curious operators: how far this board is, and how many events it applied.
    const list = $('block-list');
    list.dataset.lastSeq = String(this.sync.lastSeq);
    list.dataset.applied = String(this.sync.applied);
    for (const listener of this.roomListeners) listener(event, p);
  }

  /** Adds or replaces blocks (idempotent: the same block from SSE and from the room is one block). */
  upsert(blocks) {
    for (const block of blocks) if (block.canvasId === this.canvasId) this.blocks.set(block.id, block);
    this.renderBlocks();
  }

  remove(ids) {
    for (const id of ids) this.blocks.delete(id);
    this.renderBlocks();
  }

  /** Re-renders in rank order, keeping the elements of unchanged blocks (and their focus). */
  renderBlocks() {
    const list = $('block-list');
    const existing = new Map([...list.children].map((node) => [node.dataset.blockId, node]));
    const ordered = [...this.blocks.values()].sort(byRank);
    const nodes = ordered.map((block) => {
      const node = existing.get(block.id);
      // A block open in the editor keeps its element (and the text being typed) until saved or closed.
      if (node && (node.dataset.updatedAt === block.updatedAt || node.dataset.editing === 'true')) return node;
      const onToggle = this.role === 'viewer' || block.type !== 'todo' ? undefined : (checked) => this.toggleTodo(block, checked);
      const item = el(
        'li',
        {
          class: 'block',
          dataset: { testid: 'block', blockId: block.id, blockType: block.type, rank: block.rank, updatedAt: block.updatedAt },
        },
        blockBody(block, { onToggle }),
      );
      this.decorate?.(item, block);
      return item;
    });
    const focusedId = document.activeElement?.closest?.('[data-testid="block"]')?.dataset.blockId;
    // Move only what is out of place: a node that stays put keeps its focus.
    let at = list.firstChild;
    for (const node of nodes) {
      if (node === at) at = at.nextSibling;
      else list.insertBefore(node, at);
    }
    while (at) {
      const next = at.nextSibling;
      at.remove();
      at = next;
    }
    // A re-rendered block (an edited todo) gets the focus its old element had.
    if (focusedId && !list.contains(document.activeElement))
      list.querySelector(`[data-block-id="${focusedId}"] input, [data-block-id="${focusedId}"]`)?.focus?.();
    $('board-empty').hidden = nodes.length > 0 || $('draft-list').children.length > 0;
  }

  async toggleTodo(block, checked) {
    try {
      const { block: updated } = await this.api.request('PATCH', `/canvases/${this.canvasId}/blocks/${block.id}`, {
        content: { ...block.content, checked },
      });
      this.upsert([updated]);
    } catch (error) {
      this.notify(`Could not update the todo: ${error.message}`, true);
      // Redraw from the stored block: the checkbox shows the state the server kept.
      document.querySelector(`[data-block-id="${block.id}"]`)?.removeAttribute('data-updated-at');
      this.renderBlocks();
    }
  }

  /**
   * A block the requester's generation has streamed but not saved yet, shown greyed below the
   * board's blocks; `complete` replaces the drafts with the saved blocks.
   */
  showDraft(index, block) {
    const label = el('span', { class: 'draft-label', dataset: { testid: 'draft-label' } }, 'Draft · not saved yet');
    $('draft-list').append(
      el(
        'li',
        { class: 'block draft', dataset: { testid: 'draft-block', index: String(index), blockType: block.type } },
        label,
        blockBody(block),
      ),
    );
    $('board-empty').hidden = true;
  }

  /** Removes the drafts whose index is `fromIndex` or more. */
  dropDrafts(fromIndex) {
    for (const item of [...$('draft-list').children]) if (Number(item.dataset.index) >= fromIndex) item.remove();
  }

  clearDrafts() {
    $('draft-list').replaceChildren();
    $('board-empty').hidden = this.blocks.size > 0;
  }

  renderPresence(users) {
    this.names = new Map(users.map((user) => [user.userId, user.name]));
    const me = this.api.user?.id;
    $('presence-list').replaceChildren(
      ...users.map((user) =>
        el('li', { dataset: { testid: 'presence-user', userId: user.userId } }, user.name, user.userId === me ? ' (you)' : ''),
      ),
    );
    for (const [userId, cursor] of this.cursors) {
      if (!this.names.has(userId)) {
        cursor.node.remove();
        this.cursors.delete(userId);
      }
    }
  }

  /** A member's (or present user's) name, for "Ada is generating…". */
  memberName(userId) {
    return this.memberNames?.get(userId) ?? this.names.get(userId) ?? null;
  }

  renderMembers(members) {
    this.memberNames = new Map(members.map((member) => [member.userId ?? member.id, member.name]));
    $('member-list').replaceChildren(
      ...members.map((member) =>
        el(
          'li',
          { dataset: { testid: 'member', userId: member.userId ?? member.id } },
          `${member.name} `,
          el('span', { class: 'small' }, `${member.email ?? ''} · ${member.role}`),
          // Owners remove members here too (not the canvas's creator, not themselves).
          this.role === 'owner' && (member.userId ?? member.id) !== this.ownerId && (member.userId ?? member.id) !== this.api.user?.id
            ? el(
                'button',
                {
                  type: 'button',
                  class: 'secondary member-remove',
                  'aria-label': `Remove ${member.name}`,
                  dataset: { testid: 'member-remove' },
                  onclick: () => void this.removeMember(member),
                },
                'Remove',
              )
            : null,
        ),
      ),
    );
  }

  async removeMember(member) {
    const canvasId = this.canvasId;
    const answer = await ask({
      title: `Remove ${member.name}?`,
      message: `${member.name} will no longer see “${this.title}”. You can share it with them again later.`,
      actions: [{ value: 'remove', label: 'Remove', danger: true }],
      testid: 'remove-member-dialog',
    });
    if (answer !== 'remove' || this.canvasId !== canvasId) return;
    try {
      await this.api.request('DELETE', `/canvases/${canvasId}/members/${member.userId ?? member.id}`);
      $('invite-result').textContent = `${member.name} was removed.`;
      this.renderMembers(await this.loadAllMembers(canvasId));
    } catch (error) {
      $('invite-result').textContent = `Could not remove ${member.name}: ${error.message}`;
    }
  }

  async invite(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const result = $('invite-result');
    try {
      const { member } = await this.api.post(`/canvases/${this.canvasId}/members`, {
        email: String(data.get('email')).trim(),
        role: data.get('role'),
      });
      result.textContent = `${member.name} is now ${/^[aeiou]/.test(member.role) ? 'an' : 'a'} ${member.role}.`;
      form.reset();
      this.renderMembers(await this.loadAllMembers(this.canvasId));
    } catch (error) {
      result.textContent = `Invite failed: ${error.message}`;
    }
  }

  /**
   * Board coordinates (CSS px from the board's top-left, scroll included), at most one every
   * CURSOR_INTERVAL_MS; the last position of a burst is sent when the interval ends, so others
   * see where the pointer stopped.
   */
  sendCursor(event) {
    if (!this.canvasId) return;
    const box = this.board.getBoundingClientRect();
    this.pendingCursor = {
      canvasId: this.canvasId,
      x: Math.round(event.clientX - box.left + this.board.scrollLeft),
      y: Math.round(event.clientY - box.top + this.board.scrollTop),
    };
    if (this.cursorTimer) return;
    const wait = Math.max(0, this.lastCursorAt + CURSOR_INTERVAL_MS - performance.now());
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = 0;
      this.lastCursorAt = performance.now();
      if (this.socket.connected && this.pendingCursor?.canvasId === this.canvasId)
        this.socket.volatile.emit('canvas:cursor', this.pendingCursor);
      this.pendingCursor = null;
    }, wait);
  }

  showCursor({ userId, x, y }) {
    if (userId === this.api.user?.id) return;
    let cursor = this.cursors.get(userId);
    if (!cursor) {
      const node = el(
        'div',
        { class: 'cursor', dataset: { testid: 'cursor', userId }, 'aria-hidden': 'true' },
        el('span', { class: 'label' }),
      );
      this.board.append(node);
      cursor = { node, timer: 0 };
      this.cursors.set(userId, cursor);
    }
    cursor.node.querySelector('.label').textContent = this.names.get(userId) ?? 'someone';
    // Positioned through CSS custom properties (the CSP forbids inline style attributes, not CSSOM).
    cursor.node.style.setProperty('--x', `${x}px`);
    cursor.node.style.setProperty('--y', `${y}px`);
    cursor.node.hidden = false;
    clearTimeout(cursor.timer);
    cursor.timer = setTimeout(() => (cursor.node.hidden = true), CURSOR_IDLE_MS);
  }
}
