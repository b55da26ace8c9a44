// Rendering of canvas blocks, one element per block, built with DOM calls (never innerHTML:
// block content is user and model text).

/** `el('p', {class: 'x', dataset: {a: 1}}, 'text', child)` */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The element showing one block's content (no wrapper). `onToggle(checked)` makes todos editable. */
export function blockBody(block, { onToggle } = {}) {
  const c = block.content ?? {};
  switch (block.type) {
    case 'heading': {
      // h1 is the page's; levels 1-3 become h2-h4.
      const level = Math.min(3, Math.max(1, Number(c.level) || 1));
      return el(`h${level + 1}`, { class: `block-heading level-${level}` }, c.text);
    }
    case 'text':
      return el('p', { class: 'block-text' }, c.text);
    case 'todo': {
      const box = el('input', { type: 'checkbox', checked: Boolean(c.checked), disabled: !onToggle, 'aria-label': `Done: ${c.text}` });
      if (onToggle) box.addEventListener('change', () => onToggle(box.checked));
      return el('label', { class: `block-todo${c.checked ? ' done' : ''}` }, box, el('span', {}, c.text));
    }
    case 'bullet_list':
      return el(
        'ul',
        { class: 'block-list' },
        (Array.isArray(c.items) ? c.items : []).map((item) => el('li', {}, item)),
      );
    case 'code':
      return el('pre', { class: 'block-code', dataset: { language: c.language ?? '' } }, el('code', {}, c.code));
    case 'quote':
      return el('blockquote', { class: 'block-quote' }, c.text);
    case 'divider':
      return el('hr', { class: 'block-divider' });
    case 'image':
      return el(
        'figure',
        { class: 'block-image' },
        el('img', { src: c.url, alt: c.alt ?? '', loading: 'lazy', referrerpolicy: 'no-referrer' }),
        c.alt ? el('figcaption', {}, c.alt) : null,
      );
    default:
      return el('pre', { class: 'block-unknown' }, JSON.stringify(c));
  }
}

/** Ranks are base-62 strings over `0-9A-Za-z`, which is ASCII order: plain comparison sorts them. */
export function byRank(a, b) {
  if (a.rank !== b.rank) return a.rank < b.rank ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A one-line summary of a block, for the generation log. */
export function blockSummary(block) {
  const c = block.content ?? {};
  if (block.type === 'bullet_list') return `${(c.items ?? []).length} item(s): ${(c.items ?? []).join(', ')}`;
  if (block.type === 'code') return `${c.language ?? ''} code`;
  if (block.type === 'image') return c.alt || c.url;
  if (block.type === 'divider') return '—';
  return c.text ?? '';
}
