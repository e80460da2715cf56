// The Rhai script of a transition in CodeMirror 6: highlighting (Rust's mode, close to Rhai's
// syntax), the usual editing keys, and the server's problems with the script as markers at their
// line and column. Loaded only when a transition is opened (it is not in the initial bundle).
//
// The editor lives in a shadow root: CodeMirror's styles then go into a constructed style sheet
// (adoptedStyleSheets) instead of a <style> element, which the studio's CSP (no inline style)
// would refuse.

import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { StreamLanguage, defaultHighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { rust } from '@codemirror/legacy-modes/mode/rust';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers } from '@codemirror/view';
import { useEffect, useRef } from 'react';
import type { ScriptMark } from '../lib/problems';

export interface ScriptEditorProps {
  label: string;
  value: string;
  marks: ScriptMark[];
  onChange: (text: string) => void;
}

export default function ScriptEditor({ label, value, marks, onChange }: ScriptEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const change = useRef(onChange);
  useEffect(() => {
    change.current = onChange;
  }, [onChange]);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const shadow = el.shadowRoot ?? el.attachShadow({ mode: 'open' });
    const parent = document.createElement('div');
    shadow.replaceChildren(parent);
    const v = new EditorView({
      parent,
      root: shadow,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          history(),
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          StreamLanguage.define(rust),
          syntaxHighlighting(defaultHighlightStyle),
          lintGutter(),
          EditorView.lineWrapping,
          EditorView.contentAttributes.of({ 'aria-label': label }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) change.current(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // The editor is made once; the text follows below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [label]);

  // A change from outside (undo in the designer, another transition): the editor shows it.
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    }
  }, [value]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const length = v.state.doc.length;
    v.dispatch(
      setDiagnostics(
        v.state,
        marks.map((m) => ({
          from: Math.min(m.from, length),
          to: Math.min(m.to, length),
          severity: m.severity,
          message: m.message,
        })),
      ),
    );
  }, [marks]);

  return <div className="script-editor" ref={host} />;
}
