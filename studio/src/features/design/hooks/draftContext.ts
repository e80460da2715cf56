// The draft being edited, shared by the design pages (types, workflow, publish): its package with
// undo/redo, whether it is saved, a save conflict, and the server's problems with it.

import { createContext, useContext } from 'react';
import type { PackageJson } from '../lib/model';
import type { Problem } from '../lib/problems';

export type SaveStatus = 'saved' | 'unsaved' | 'saving' | 'conflict' | 'failed';

export interface Conflict {
  currentVersion: number;
  updatedBy: string | null;
  updatedAt: string | null;
}

export interface DraftEditor {
  tenant: string;
  pkg: PackageJson;
  /** The draft's version on the server (0: nothing saved yet, the live package). */
  version: number;
  save: SaveStatus;
  saveError: string | null;
  conflict: Conflict | null;
  problems: Problem[];
  validating: boolean;
  canUndo: boolean;
  canRedo: boolean;
  /** Records an edit; edits with the same `coalesce` key in a row are one undo step. */
  edit: (pkg: PackageJson, coalesce?: string) => void;
  undo: () => void;
  redo: () => void;
  /** Conflict: take the server's draft, dropping the edits made here. */
  reload: () => Promise<void>;
  /** Conflict: save this draft over the server's. */
  overwrite: () => Promise<void>;
  /** Published or discarded: start again from what the server has. */
  discard: () => Promise<void>;
}

export const DraftContext = createContext<DraftEditor | null>(null);

export function useDraft(): DraftEditor {
  const editor = useContext(DraftContext);
  if (!editor) throw new Error('useDraft outside a DraftProvider');
  return editor;
}
