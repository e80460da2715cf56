import { strToU8, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { packageFiles, readPackageFiles, unzipPackage, zipPackage } from './files';
import { examplePackages } from './testPackages';

describe('package files', () => {
  it.each(examplePackages())('%s: files and zip give the package back', (_, pkg) => {
    const sorted = { ...pkg, types: [...pkg.types].sort((a, b) => (a.name < b.name ? -1 : 1)) };
    const files = packageFiles(pkg);
    expect(files[0]?.path).toBe('tenant.yaml');
    expect(files.map((f) => f.path)).toContain(`types/${pkg.types[0]?.name ?? ''}.yaml`);
    expect(readPackageFiles(files)).toEqual({ ok: true, pkg: sorted });
    expect(unzipPackage(zipPackage(pkg))).toEqual({ ok: true, pkg: sorted });
  });

  it('reads a zip of the folder itself (one top directory)', () => {
    const zip = zipSync({
      'acme/tenant.yaml': strToU8('slug: acme\nname: Acme\n'),
      'acme/types/ticket.yaml': strToU8('name: ticket\n'),
      'acme/README.md': strToU8('# hi'),
    });
    expect(unzipPackage(zip)).toEqual({ ok: true, pkg: { tenant: { slug: 'acme', name: 'Acme' }, types: [{ name: 'ticket' }] } });
  });

  it('says which files do not read', () => {
    expect(
      readPackageFiles([
        { path: 'types/a.yaml', text: 'name: b\n' },
        { path: 'types/c.yaml', text: 'name: [\n' },
      ]),
    ).toMatchObject({ ok: false, errors: [expect.stringContaining('types/a.yaml'), expect.stringContaining('types/c.yaml'), 'tenant.yaml: missing'] });
    expect(unzipPackage(strToU8('not a zip'))).toMatchObject({ ok: false });
  });
});
