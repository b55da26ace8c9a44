// Replay from a step in the execution view (flow-execution.js): on an ended execution, each node
// offers "Replay from here", a small form with the node's prompt and model and the execution's
// input as JSON. Submitting it posts `POST /flows/:id/executions/:executionId/replay`; the new
// execution then opens in the same view and is followed live, its reused nodes marked "reused".
// The API's problems (`details[].path`: `changes.prompt`, `changes.model`, `changes.input.<key>`,
// `fromNode`) show next to their field. A replay that runs a version other than the published one
// offers "Publish this version".
import { el } from './blocks.js';

const modelKey = (m) => (m ? `${m.provider}/${m.model}` : '');
const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The field a problem at `path` belongs next to: prompt, model, input, else the form as a whole. */
function fieldOf(path) {
  const at = String(path ?? '');
  if (at.startsWith('changes.prompt') || /\.prompt$/.test(at)) return 'prompt';
  if (at.startsWith('changes.model') || /\.model(\.|$)/.test(at)) return 'model';
  if (at.startsWith('changes.input') || at === 'input') return 'input';
  return 'form';
}

export class ReplayForms {
  /** `view`: the ExecutionView; its `flow`, `execution` and `definition` are the ones replayed. */
  constructor(view) {
    this.view = view;
    /** The open forms by node id: kept across redraws so what was typed stays. */
    this.forms = new Map();
    this.models = null;
  }

  reset() {
    this.forms.clear();
  }

  /** The node card's "Replay from here" and, once opened, its form. */
  controls(node, definition) {
    const open = this.forms.get(node.id);
    return el(
      'div',
      { class: 'replay' },
      open
        ? open
        : el(
            'button',
            {
              type: 'button',
              class: 'secondary',
              dataset: { testid: 'execution-replay' },
              onclick: () => {
                this.forms.set(node.id, this.form(node, definition));
                this.view.render();
              },
            },
            'Replay from here',
          ),
    );
  }

  form(node, definition) {
    const x = this.view.execution;
    const error = (name) => el('p', { class: 'field-error', hidden: true, dataset: { testid: 'replay-error', field: name } });
    const errors = { prompt: error('prompt'), model: error('model'), input: error('input'), form: error('form') };
    const hasPrompt = typeof definition?.prompt === 'string';
    const prompt = hasPrompt
      ? el('textarea', { rows: '3', maxlength: '8000', dataset: { testid: 'replay-prompt' } }, definition.prompt)
      : null;
    const model = hasPrompt
      ? el(
          'select',
          { dataset: { testid: 'replay-model' } },
          el('option', { value: '' }, definition.model ? `Unchanged (${modelKey(definition.model)})` : 'Unchanged'),
        )
      : null;
    if (model) void this.fillModels(model);
    const input = el(
      'textarea',
      { rows: '3', class: 'code', spellcheck: 'false', dataset: { testid: 'replay-input' } },
      JSON.stringify(x.input ?? {}, null, 2),
    );
    const submit = el('button', { type: 'submit', dataset: { testid: 'replay-submit' } }, 'Replay');
    const labelled = (label, control, err) => (control ? el('label', { class: 'field' }, label, control, err) : null);
    const show = (problems) => {
      for (const e of Object.values(errors)) e.hidden = true;
      for (const p of problems) {
        const target = errors[fieldOf(p.path)];
        target.textContent = target.hidden ? p.message : `${target.textContent}; ${p.message}`;
        target.hidden = false;
      }
    };
    const form = el(
      'form',
      {
        class: 'replay-form sub',
        dataset: { testid: 'replay-form', nodeId: node.id },
        onsubmit: (e) => {
          e.preventDefault();
          void this.submit(node, definition, { prompt, model, input, submit, show });
        },
      },
      el('h4', {}, `Replay from “${node.id}”`),
      el('p', { class: 'small' }, 'The nodes it does not re-run keep their outputs: no model call, no cost.'),
      labelled('Prompt', prompt, errors.prompt),
      labelled('Model', model, errors.model),
      labelled('Input (JSON, laid over the execution’s input key by key)', input, errors.input),
      errors.form,
      el(
        'div',
        { class: 'row' },
        submit,
        el(
          'button',
          {
            type: 'button',
            class: 'secondary',
            onclick: () => {
              this.forms.delete(node.id);
              this.view.render();
            },
          },
          'Cancel',
        ),
      ),
    );
    return form;
  }

  async fillModels(select) {
    try {
      this.models ??= (await this.view.api.get('/models')).models;
    } catch {
      this.models = [];
    }
    for (const m of this.models) select.append(el('option', { value: modelKey(m) }, `${m.provider} · ${m.model}`));
  }

  async submit(node, definition, { prompt, model, input, submit, show }) {
    const { flow, execution } = this.view;
    const changes = {};
    if (prompt && prompt.value !== definition.prompt) changes.prompt = prompt.value;
    const chosen = model?.value ? this.models?.find((m) => modelKey(m) === model.value) : null;
    if (chosen) changes.model = { provider: chosen.provider, model: chosen.model };
    let values;
    try {
      values = JSON.parse(input.value.trim() || '{}');
    } catch {
      return show([{ path: 'changes.input', message: 'Not valid JSON.' }]);
    }
    if (!values || typeof values !== 'object' || Array.isArray(values))
      return show([{ path: 'changes.input', message: 'An object of input values.' }]);
    const changedInput = Object.fromEntries(Object.entries(values).filter(([key, value]) => !same(execution.input?.[key], value)));
    if (Object.keys(changedInput).length) changes.input = changedInput;
    show([]);
    submit.disabled = true;
    try {
      const started = await this.view.api.post(`/flows/${flow.id}/executions/${execution.id}/replay`, { fromNode: node.id, changes });
      this.forms.clear();
      this.view.notify(
        `Replaying from ${node.id} as v${started.flowVersion}${started.draft ? ' (a draft)' : ''}; ${started.reusedNodes.length} node(s) reused.`,
      );
      location.hash = `#/flows/${flow.id}/executions/${started.executionId}`;
    } catch (error) {
      submit.disabled = false;
      show(error.details?.length ? error.details : [{ path: 'form', message: error.message }]);
    }
  }

  /** "Publish this version" for a replay that runs a version other than the published one. */
  publishButton() {
    const { flow, execution: x } = this.view;
    if (!x.replayOf || x.flowVersion === flow.publishedVersion) return null;
    return el(
      'button',
      { type: 'button', dataset: { testid: 'execution-publish' }, onclick: (e) => void this.publish(e.target) },
      `Publish this version (v${x.flowVersion})`,
    );
  }

  async publish(button) {
    const { flow, execution: x } = this.view;
    button.disabled = true;
    try {
      const answer = await this.view.api.post(`/flows/${flow.id}/versions/${x.flowVersion}/publish`, {});
      // The page holds this very flow object: it sees the new published version too.
      Object.assign(flow, answer.flow ?? { publishedVersion: x.flowVersion });
      this.view.notify(`Version ${x.flowVersion} published.`);
      this.view.render();
    } catch (error) {
      button.disabled = false;
      this.view.notify(`Could not publish version ${x.flowVersion}: ${error.message}`, true);
    }
  }
}
