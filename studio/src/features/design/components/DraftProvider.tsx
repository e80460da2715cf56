import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Outlet, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { ApiError, errorMessage } from '../../../lib/envelope';
import { deleteDraft, getDraft, saveDraft, validatePackage } from '../api/draft';
import { DraftContext, type Conflict, type DraftEditor, type SaveStatus } from '../hooks/draftContext';
import { record, redo, reset, undo, type History } from '../lib/history';
import { asPackage, type PackageJson } from '../lib/model';
import type { Problem } from '../lib/problems';
import { ConflictDialog } from './ConflictDialog';

const SAVE_AFTER_MS = 700;
const VALIDATE_AFTER_MS = 500;

function conflictOf(e: unknown): Conflict | null {
  if (!(e instanceof ApiError) || e.code !== 'VERSION_CONFLICT') return null;
  const d = (typeof e.details === 'object' && e.details !== null ? e.details : {}) as Record<string, unknown>;
  return {
    currentVersion: typeof d.current_version === 'number' ? d.current_version : 0,
    updatedBy: typeof d.updated_by === 'string' ? d.updated_by : null,
    updatedAt: typeof d.updated_at === 'string' ? d.updated_at : null,
  };
}

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

/**
 * Loads the tenant's draft and keeps it saved: every edit is saved within a second (with the
 * version it was read at: a save that lost a race is a conflict the admin resolves, never a
 * silent overwrite), and validated by the server as it changes.
 */
export function DraftProvider() {
  const tenant = useParams().tenant ?? '';
  const [loadError, setLoadError] = useState<string | null>(null);
  const [history, setHistory] = useState<History<PackageJson> | null>(null);
  const [version, setVersion] = useState(0);
  const [saved, setSaved] = useState<PackageJson | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [validating, setValidating] = useState(false);

  const load = useCallback(async () => {
    try {
      const draft = await getDraft(tenant);
      const pkg = asPackage(draft.package);
      if (!pkg) throw new Error('The draft is not a package: it has no tenant or no list of types.');
      setHistory(reset(pkg));
      setSaved(pkg);
      setVersion(draft.version);
      setConflict(null);
      setSaveError(null);
      setLoadError(null);
    } catch (e) {
      setLoadError(errorMessage(e));
    }
  }, [tenant]);

  useEffect(() => {
    // The first read of the draft (an external system: the server).
    const timer = setTimeout(() => void load(), 0);
    return () => {
      clearTimeout(timer);
    };
  }, [load]);

  const present = history?.present ?? null;

  // Autosave: the present package, some time after the last edit.
  const store = useCallback(
    async (pkg: PackageJson, at: number) => {
      setSaving(true);
      try {
        const answer = await saveDraft(tenant, at, pkg);
        setVersion(answer.version);
        setSaved(pkg);
        setSaveError(null);
      } catch (e) {
        const c = conflictOf(e);
        if (c) setConflict(c);
        else setSaveError(errorMessage(e));
      } finally {
        setSaving(false);
      }
    },
    [tenant],
  );

  useEffect(() => {
    if (!present || present === saved || saving || conflict || saveError) return;
    const timer = setTimeout(() => void store(present, version), SAVE_AFTER_MS);
    return () => {
      clearTimeout(timer);
    };
  }, [present, saved, saving, conflict, saveError, store, version]);

  // Validation: the server's problems with the present package (the last answer wins).
  const validation = useRef(0);
  useEffect(() => {
    if (!present) return;
    const id = ++validation.current;
    const timer = setTimeout(() => {
      setValidating(true);
      validatePackage(tenant, present)
        .then((found) => {
          if (id === validation.current) setProblems(found);
        })
        .catch((e: unknown) => {
          if (id === validation.current) {
            setProblems([{ severity: 'error', file: '', path: '', message: `Validation failed: ${errorMessage(e)}` }]);
          }
        })
        .finally(() => {
          if (id === validation.current) setValidating(false);
        });
    }, VALIDATE_AFTER_MS);
    return () => {
      clearTimeout(timer);
    };
  }, [present, tenant]);

  const edit = useCallback((pkg: PackageJson, coalesce?: string) => {
    setSaveError(null);
    setHistory((h) => (h ? record(h, pkg, coalesce ?? null) : h));
  }, []);
  const doUndo = useCallback(() => {
    setHistory((h) => (h ? undo(h) : h));
  }, []);
  const doRedo = useCallback(() => {
    setHistory((h) => (h ? redo(h) : h));
  }, []);

  // Ctrl/Cmd+Z, Ctrl/Cmd+Shift+Z and Ctrl+Y, except while typing (a field keeps its own undo).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || isTyping(e.target)) return;
      const key = e.key.toLowerCase();
      if (key === 'z' && !e.shiftKey) doUndo();
      else if ((key === 'z' && e.shiftKey) || key === 'y') doRedo();
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
    };
  }, [doUndo, doRedo]);

  const editor = useMemo<DraftEditor | null>(() => {
    if (!history) return null;
    let save: SaveStatus = 'saved';
    if (conflict) save = 'conflict';
    else if (saveError) save = 'failed';
    else if (saving) save = 'saving';
    else if (history.present !== saved) save = 'unsaved';
    return {
      tenant,
      pkg: history.present,
      version,
      save,
      saveError,
      conflict,
      problems,
      validating,
      canUndo: history.past.length > 0,
      canRedo: history.future.length > 0,
      edit,
      undo: doUndo,
      redo: doRedo,
      reload: load,
      overwrite: async () => {
        if (!conflict) return;
        setConflict(null);
        await store(history.present, conflict.currentVersion);
      },
      discard: async () => {
        await deleteDraft(tenant);
        await load();
      },
    };
  }, [history, conflict, saveError, saving, saved, tenant, version, problems, validating, edit, doUndo, doRedo, load, store]);

  if (loadError) return <Alert>{loadError}</Alert>;
  if (!editor) return <Loading />;
  return (
    <DraftContext.Provider value={editor}>
      {editor.conflict && <ConflictDialog />}
      <Outlet />
    </DraftContext.Provider>
  );
}
