// The parts of the agentflow form (flow-editor.js) for its HTTP tools: each tool's name, what it
// does (the model reads it), method, URL and the credential it sends (by name: the secret stays
// sealed on the server), and the origins those URLs may be on. The API checks every URL against
// the origins, and every credential against the owner's, when the flow is saved.
import { el } from './blocks.js';

/** The flow's HTTP tools, one row each, with Add and Remove; `editor` is the FlowEditor they edit. */
export function httpToolFields(editor) {
  const d = editor.def;
  const tools = (d.httpTools ??= []);
  return el(
    'section',
    { class: 'sub', 'aria-label': 'HTTP tools' },
    el('h3', {}, 'HTTP tools'),
    el(
      'ol',
      { class: 'http-tools' },
      tools.map((tool, index) => {
        const path = `httpTools.${index}`;
        const method = el(
          'select',
          { dataset: { testid: 'http-tool-method' }, onchange: (e) => ((tool.method = e.target.value), editor.changed()) },
          el('option', { value: 'GET' }, 'GET'),
          el('option', { value: 'POST' }, 'POST'),
        );
        method.value = tool.method ?? 'GET';
        return el(
          'li',
          { dataset: { testid: 'http-tool-editor' } },
          editor.field(
            'Name',
            `${path}.name`,
            el('input', {
              value: tool.name ?? '',
              maxlength: '64',
              dataset: { testid: 'http-tool-name' },
              onchange: (e) => ((tool.name = e.target.value.trim()), editor.render(), editor.changed()),
            }),
          ),
          editor.field(
            'What it does (the model reads this)',
            `${path}.description`,
            editor.input(tool.description, (v) => (tool.description = v), {
              maxlength: '500',
              dataset: { testid: 'http-tool-description' },
            }),
          ),
          editor.field('Method', `${path}.method`, method),
          editor.field(
            'URL',
            `${path}.url`,
            editor.input(tool.url, (v) => (tool.url = v.trim()), { type: 'url', maxlength: '2000', dataset: { testid: 'http-tool-url' } }),
          ),
          editor.field(
            'Credential (optional: one of yours, sent with every call)',
            `${path}.credential`,
            editor.input(tool.credential, (v) => (v.trim() ? (tool.credential = v.trim()) : delete tool.credential), {
              maxlength: '64',
              dataset: { testid: 'http-tool-credential' },
            }),
          ),
          el(
            'button',
            { type: 'button', class: 'danger', onclick: () => (tools.splice(index, 1), editor.render(), editor.changed()) },
            'Remove tool',
          ),
        );
      }),
    ),
    el(
      'button',
      {
        type: 'button',
        class: 'secondary',
        dataset: { testid: 'flow-add-http-tool' },
        onclick: () => (tools.push({ name: '', description: '', method: 'GET', url: '' }), editor.render(), editor.changed()),
      },
      'Add HTTP tool',
    ),
  );
}

/** The origins HTTP tools may reach, one field each, with Add and Remove. */
export function originFields(editor) {
  const d = editor.def;
  const origins = (d.allowedOrigins ??= []);
  return el(
    'section',
    { class: 'sub', 'aria-label': 'Allowed origins' },
    el('h3', {}, 'Origins HTTP tools may reach'),
    el(
      'ol',
      { class: 'origins' },
      origins.map((origin, index) =>
        el(
          'li',
          {},
          editor.field(
            `Origin ${index + 1}`,
            `allowedOrigins.${index}`,
            editor.input(origin, (v) => (origins[index] = v.trim()), {
              placeholder: 'https://api.example.com',
              dataset: { testid: 'flow-origin' },
            }),
          ),
          el(
            'button',
            { type: 'button', class: 'danger', onclick: () => (origins.splice(index, 1), editor.render(), editor.changed()) },
            'Remove',
          ),
        ),
      ),
    ),
    el(
      'button',
      {
        type: 'button',
        class: 'secondary',
        dataset: { testid: 'flow-add-origin' },
        onclick: () => (origins.push(''), editor.render(), editor.changed()),
      },
      'Add origin',
    ),
  );
}
