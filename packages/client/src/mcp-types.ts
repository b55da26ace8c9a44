/** An allowed tool of an MCP server as it lists it now, against the definition its owner approved. */
export interface McpToolStatus {
  name: string;
  /** Without hidden text (invisible characters, HTML comments). */
  description: string;
  /** `sha256:` of its name, description and input schema. */
  hash: string;
  /** `changed`: differs from what was registered or approved, so it is held back. */
  state: 'pinned' | 'new' | 'changed';
  flags: Array<'instructions' | 'hidden_text' | 'html_comment' | 'too_long'>;
  /** Whether models are offered it. */
  offered: boolean;
}
