// The scorers of a new evaluation (flow-evaluations.js), one row each: exact (case-sensitive or
// not), contains (a text, or the row's expected output), regex (a pattern and its flags), JSON
// Schema (the answer as JSON must validate), or an LLM judge (a rubric and, optionally, its model).
// `value()` is the list the API receives, or the problems the form can tell first (a schema that
// is not JSON); the API's problems come back at `scorers.<i>.<field>` and are shown there.
import { el } from './blocks.js';

const TYPES = [
  ['exact', 'Exact: the answer equals the expected output'],
  ['contains', 'Contains: the answer contains a text'],
  ['regex', 'Regex: the answer matches a pattern'],
  ['json_schema', 'JSON Schema: the answer validates'],
  ['llm_judge', 'LLM judge: a model scores it by a rubric'],
];
const BLANK = {
  exact: () => ({ type: 'exact', caseSensitive: true }),
  contains: () => ({ type: 'contains', value: '', caseSensitive: false }),
  regex: () => ({ type: 'regex', pattern: '', flags: '' }),
  json_schema: () => ({ type: 'json_schema', schemaText: '{"type": "object"}' }),
  llm_judge: () => ({ type: 'llm_judge', rubric: '' }),
};
const modelKey = (model) => (model ? `${model.provider}:${model.model}` : '');

export class ScorerList {
  constructor() {
    this.models = [];
    this.scorers = [BLANK.exact()];
    this.root = el('div', { class: 'scorers', dataset: { testid: 'eval-scorers' } });
    this.render();
  }

  setModels(models) {
    this.models = models ?? [];
    this.render();
  }

  /** `{scorers, problems}`: the scorers as the API takes them. */
  value() {
    const problems = [];
    const scorers = this.scorers.map((s, index) => {
      switch (s.type) {
        case 'exact':
          return { type: 'exact', caseSensitive: s.caseSensitive };
        case 'contains':
          return { type: 'contains', ...(s.value ? { value: s.value } : {}), caseSensitive: s.caseSensitive };
        case 'regex':
          return { type: 'regex', pattern: s.pattern, flags: s.flags };
        case 'json_schema':
          try {
            return { type: 'json_schema', schema: JSON.parse(s.schemaText) };
          } catch (error) {
            problems.push({ path: `scorers.${index}.schema`, message: `Not valid JSON: ${error.message}` });
            return { type: 'json_schema', schema: {} };
          }
        default:
          return { type: 'llm_judge', rubric: s.rubric, ...(s.model ? { model: s.model } : {}) };
      }
    });
    return { scorers, problems };
  }

  field(label, path, control, hint) {
    return el(
      'div',
      { class: 'field', dataset: { path } },
      el('label', {}, el('span', { class: 'field-label' }, label), control),
      hint ? el('span', { class: 'small hint' }, hint) : null,
      el('p', { class: 'field-error', hidden: true, dataset: { testid: 'field-error' } }),
    );
  }

  text(scorer, key, props = {}) {
    const tag = props.rows ? 'textarea' : 'input';
    const control = el(tag, { autocomplete: 'off', ...props, oninput: (e) => (scorer[key] = e.target.value) });
    control.value = scorer[key] ?? '';
    return control;
  }

  caseField(scorer) {
    return el(
      'label',
      { class: 'check' },
      el('input', { type: 'checkbox', checked: scorer.caseSensitive, onchange: (e) => (scorer.caseSensitive = e.target.checked) }),
      ' Case-sensitive',
    );
  }

  fieldsOf(scorer, path) {
    switch (scorer.type) {
      case 'exact':
        return [this.caseField(scorer)];
      case 'contains':
        return [
          this.field(
            'Text (empty: the expected output)',
            `${path}.value`,
            this.text(scorer, 'value', { dataset: { testid: 'scorer-value' } }),
          ),
          this.caseField(scorer),
        ];
      case 'regex':
        return [
          el(
            'div',
            { class: 'field-row' },
            this.field(
              'Pattern',
              `${path}.pattern`,
              this.text(scorer, 'pattern', { class: 'code', dataset: { testid: 'scorer-pattern' } }),
            ),
            this.field(
              'Flags (i, m, s, u)',
              `${path}.flags`,
              this.text(scorer, 'flags', { maxlength: '4', dataset: { testid: 'scorer-flags' } }),
            ),
          ),
        ];
      case 'json_schema':
        return [
          this.field(
            'JSON Schema',
            `${path}.schema`,
            this.text(scorer, 'schemaText', { rows: '3', class: 'code', spellcheck: 'false', dataset: { testid: 'scorer-schema' } }),
          ),
        ];
      default: {
        const options = this.models;
        const select = el(
          'select',
          {
            dataset: { testid: 'scorer-model' },
            onchange: (e) => {
              const choice = options.find((m) => modelKey(m) === e.target.value);
              scorer.model = choice ? { provider: choice.provider, model: choice.model } : undefined;
            },
          },
          el('option', { value: '' }, 'The deployment’s default model'),
          options.map((m) => el('option', { value: modelKey(m) }, `${m.provider} · ${m.model}`)),
        );
        select.value = modelKey(scorer.model);
        return [
          this.field(
            'Rubric: what a good answer is',
            `${path}.rubric`,
            this.text(scorer, 'rubric', { rows: '2', dataset: { testid: 'scorer-rubric' } }),
          ),
          this.field('Judge', `${path}.model`, select, 'Its calls are reserved against your budget like any model call.'),
        ];
      }
    }
  }

  render() {
    this.root.replaceChildren(
      el('h4', {}, 'Scorers (an answer’s score is their mean, from 0 to 1)'),
      el(
        'ol',
        { class: 'scorer-list' },
        this.scorers.map((scorer, index) => {
          const path = `scorers.${index}`;
          const type = el(
            'select',
            {
              dataset: { testid: 'scorer-type' },
              onchange: (e) => {
                this.scorers[index] = BLANK[e.target.value]();
                this.render();
              },
            },
            TYPES.map(([value, label]) => el('option', { value }, label)),
          );
          type.value = scorer.type;
          return el(
            'li',
            { dataset: { testid: 'eval-scorer', index: String(index) } },
            this.field('Scorer', path, type),
            this.fieldsOf(scorer, path),
            el(
              'button',
              {
                type: 'button',
                class: 'danger',
                disabled: this.scorers.length === 1,
                onclick: () => (this.scorers.splice(index, 1), this.render()),
              },
              'Remove scorer',
            ),
          );
        }),
      ),
      el(
        'button',
        {
          type: 'button',
          class: 'secondary',
          disabled: this.scorers.length >= 10,
          dataset: { testid: 'eval-add-scorer' },
          onclick: () => (this.scorers.push(BLANK.contains()), this.render()),
        },
        'Add scorer',
      ),
    );
  }
}
