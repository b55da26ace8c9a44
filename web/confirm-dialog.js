// A modal question with named answers, on the native <dialog> (focus trapped, Escape cancels):
// `await ask({title, message, details, actions: [{value, label, danger?}]})` resolves with the
// chosen action's `value`, or null when cancelled. Text only (DOM calls, never innerHTML).
import { el } from './blocks.js';

export function ask({ title, message, details = [], actions, testid = 'confirm-dialog' }) {
  return new Promise((resolve) => {
    const dialog = el(
      'dialog',
      { class: 'confirm', dataset: { testid }, 'aria-labelledby': `${testid}-title` },
      el('h2', { id: `${testid}-title` }, title),
      el('p', { dataset: { testid: `${testid}-message` } }, message),
      details.length
        ? el(
            'ul',
            { class: 'confirm-details', dataset: { testid: `${testid}-details` } },
            details.map((d) => el('li', {}, d)),
          )
        : null,
      el(
        'form',
        { method: 'dialog', class: 'row wrap' },
        actions.map((action) =>
          el(
            'button',
            {
              value: action.value,
              class: action.danger ? 'danger' : action.secondary ? 'secondary' : '',
              dataset: { testid: `${testid}-${action.value}` },
            },
            action.label,
          ),
        ),
        el('button', { value: '', class: 'secondary', dataset: { testid: `${testid}-cancel` } }, 'Cancel'),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue || null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
