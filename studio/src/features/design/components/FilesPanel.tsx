import { useId, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { useDraft } from '../hooks/draftContext';
import { packageFiles, unzipPackage, zipPackage } from '../lib/files';

/**
 * The draft as the files of a package folder: read as YAML, downloaded as a zip, or replaced by
 * an uploaded zip (an edit like any other: it can be undone).
 */
export function FilesPanel() {
  const draft = useDraft();
  const id = useId();
  const [errors, setErrors] = useState<string[]>([]);
  const [imported, setImported] = useState(false);
  const slug = draft.pkg.tenant.slug ?? draft.tenant;

  const download = () => {
    const bytes = zipPackage(draft.pkg);
    const url = URL.createObjectURL(new Blob([bytes.slice().buffer], { type: 'application/zip' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `${slug}-draft.zip`;
    a.click();
    setTimeout(() => {
      URL.revokeObjectURL(url);
    }, 1000);
  };
  const upload = async (file: File) => {
    const result = unzipPackage(new Uint8Array(await file.arrayBuffer()));
    if (!result.ok) {
      setErrors(result.errors);
      setImported(false);
      return;
    }
    setErrors([]);
    setImported(true);
    draft.edit(result.pkg);
  };

  return (
    <section aria-labelledby={`${id}-h`} className="files">
      <h2 id={`${id}-h`}>Package files</h2>
      <div className="row wrap">
        <button type="button" className="secondary" onClick={download}>
          Download as zip
        </button>
        <label htmlFor={`${id}-upload`}>Import a package (zip)</label>
        <input
          id={`${id}-upload`}
          type="file"
          accept=".zip,application/zip"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void upload(file);
            e.target.value = '';
          }}
        />
      </div>
      {imported ? <p role="status">The package was imported into the draft (Undo takes it back).</p> : null}
      {errors.length > 0 && (
        <Alert>
          The zip is not a package:
          <ul>
            {errors.map((e) => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        </Alert>
      )}
      <h3>View as YAML</h3>
      {packageFiles(draft.pkg).map((f) => (
        <details key={f.path}>
          <summary>{f.path}</summary>
          <pre className="plan" aria-label={f.path}>
            {f.text}
          </pre>
        </details>
      ))}
    </section>
  );
}
