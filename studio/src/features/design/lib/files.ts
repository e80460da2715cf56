// A package as the files of its folder (`tenant.yaml`, `types/{name}.yaml`), what `switchyard
// tenant export` writes and consultants keep in git; and a zip of them, to download a draft or
// upload a package. Reading the files back gives the package they came from.

import { strFromU8, strToU8, unzipSync, zipSync } from 'fflate';
import { parse, stringify } from 'yaml';
import { asPackage, type PackageJson, type TypeJson } from './model';

export interface PackageFile {
  path: string;
  text: string;
}

const YAML_OPTIONS = { lineWidth: 100, aliasDuplicateObjects: false } as const;

export function packageFiles(pkg: PackageJson): PackageFile[] {
  return [
    { path: 'tenant.yaml', text: stringify(pkg.tenant, YAML_OPTIONS) },
    ...pkg.types.map((t) => ({ path: `types/${t.name}.yaml`, text: stringify(t, YAML_OPTIONS) })),
  ];
}

export type ReadResult = { ok: true; pkg: PackageJson } | { ok: false; errors: string[] };

/** The package of a folder's files; every file that does not read is reported with its path. */
export function readPackageFiles(files: PackageFile[]): ReadResult {
  const errors: string[] = [];
  let tenant: unknown = null;
  const types: TypeJson[] = [];
  // A zip of the folder may put everything under one top directory: strip it.
  const tops = new Set(files.map((f) => f.path.split('/')[0]));
  const strip = !files.some((f) => f.path === 'tenant.yaml') && tops.size === 1 && !tops.has('types');
  for (const f of files) {
    const path = strip ? f.path.split('/').slice(1).join('/') : f.path;
    if (!/\.ya?ml$/.test(path)) continue;
    let value: unknown;
    try {
      value = parse(f.text) as unknown;
    } catch (e) {
      errors.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    if (path === 'tenant.yaml') tenant = value;
    else if (path.startsWith('types/')) {
      const name = path.slice('types/'.length).replace(/\.ya?ml$/, '');
      if (typeof value !== 'object' || value === null || (value as { name?: unknown }).name !== name) {
        errors.push(`${path}: a type file holds one type whose name is the file's (${name})`);
      } else types.push(value as TypeJson);
    }
  }
  if (tenant === null) errors.push('tenant.yaml: missing');
  if (errors.length > 0) return { ok: false, errors };
  types.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pkg = asPackage({ tenant, types });
  return pkg ? { ok: true, pkg } : { ok: false, errors: ['tenant.yaml: not a tenant'] };
}

export function zipPackage(pkg: PackageJson): Uint8Array {
  const entries: Record<string, Uint8Array> = {};
  for (const f of packageFiles(pkg)) entries[f.path] = strToU8(f.text);
  return zipSync(entries, { level: 6 });
}

export function unzipPackage(zip: Uint8Array): ReadResult {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(zip, { filter: (f) => f.originalSize <= 4 * 1024 * 1024 });
  } catch (e) {
    return { ok: false, errors: [`not a zip file: ${e instanceof Error ? e.message : String(e)}`] };
  }
  return readPackageFiles(Object.entries(entries).map(([path, bytes]) => ({ path, text: strFromU8(bytes) })));
}
