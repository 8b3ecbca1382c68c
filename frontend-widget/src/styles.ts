// Shadow-DOM styles. `all: initial` on the host stops the helpdesk page's inherited CSS
// (fonts, colors, line heights) from leaking in; nothing here leaks out.
export const STYLES = `
:host { all: initial; display: block; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Apple SD Gothic Neo", "Malgun Gothic", sans-serif; color: #1f2328; background: #fff; }
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.root { padding: 12px; display: grid; gap: 12px; }
header { display: flex; align-items: baseline; justify-content: space-between; gap: 8px; }
h2 { font-size: 15px; margin: 0; }
h3 { font-size: 13px; margin: 0 0 6px; text-transform: uppercase; letter-spacing: .03em; color: #57606a; }
h4 { font-size: 12px; margin: 8px 0 4px; color: #57606a; }
section { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px; }
.body:focus { outline: none; }
p { margin: 0 0 6px; }
.ticket-ref, .meta, .muted { color: #57606a; font-size: 12px; }
.banner:empty { display: none; }
.banner { padding: 8px; border-radius: 6px; background: #f6f8fa; }
.answer { white-space: normal; overflow-wrap: anywhere; }
.answer.streaming { white-space: pre-wrap; }
.mark { font-size: 11px; vertical-align: super; text-decoration: none; }
.citations, .similar { list-style: none; margin: 0; padding: 0; display: grid; gap: 6px; }
.citation { display: flex; gap: 6px; align-items: flex-start; }
.citation:focus { outline: 2px solid #0969da; outline-offset: 2px; }
.citation .num { min-width: 18px; height: 18px; border-radius: 9px; background: #eaeef2; font-size: 11px; display: inline-flex; align-items: center; justify-content: center; }
.citation.is-internal .num { background: #fff1c2; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 10px; background: #eaeef2; color: #24292f; margin-left: 4px; }
.badge.internal { background: #fff1c2; color: #6b4a00; }
.badge.solved { background: #dafbe1; color: #116329; }
.snippet { color: #57606a; font-size: 12px; margin: 2px 0 0; }
a { color: #0969da; }
.row, .actions { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; align-items: center; }
button, select, input, textarea { font: inherit; color: inherit; }
button { border: 1px solid #d0d7de; background: #f6f8fa; border-radius: 6px; padding: 4px 10px; cursor: pointer; }
button:hover { background: #eef1f4; }
button.primary { background: #1f883d; border-color: #1a7f37; color: #fff; }
button.icon { padding: 2px 8px; }
button[aria-pressed="true"] { background: #ddf4ff; border-color: #54aeff; }
button:focus-visible, select:focus-visible, input:focus-visible, textarea:focus-visible, a:focus-visible { outline: 2px solid #0969da; outline-offset: 1px; }
button:disabled { opacity: .6; cursor: default; }
.feedback { display: flex; gap: 6px; align-items: center; margin-top: 8px; font-size: 12px; color: #57606a; }
.reasons { display: grid; gap: 6px; margin-top: 6px; font-size: 12px; }
.reasons label { display: grid; gap: 2px; }
.reasons select, .reasons input, textarea { border: 1px solid #d0d7de; border-radius: 6px; padding: 4px 6px; width: 100%; }
textarea { resize: vertical; min-height: 56px; }
.question { font-weight: 600; margin: 8px 0 4px; }
.notice { font-size: 12px; color: #116329; margin-top: 6px; }
.notice:empty { display: none; }
.error { color: #cf222e; }
.quota { color: #9a6700; }
.status { display: flex; gap: 6px; align-items: center; color: #57606a; }
.spinner { width: 12px; height: 12px; border-radius: 50%; border: 2px solid #d0d7de; border-top-color: #0969da; animation: spin 0.8s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation: none; } }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`;
