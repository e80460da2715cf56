// The example packages of the repository (examples/*), read as the studio receives a package:
// `{tenant, types}`. For unit tests only (Node's fs).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { PackageJson, TypeJson } from './model';

const examples = join(import.meta.dirname, '../../../../../examples');

export function examplePackages(): [string, PackageJson][] {
  return readdirSync(examples, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const dir = join(examples, d.name);
      const tenant = parse(readFileSync(join(dir, 'tenant.yaml'), 'utf8')) as PackageJson['tenant'];
      const types = readdirSync(join(dir, 'types'))
        .filter((f) => f.endsWith('.yaml'))
        .sort()
        .map((f) => parse(readFileSync(join(dir, 'types', f), 'utf8')) as TypeJson);
      return [d.name, { tenant, types }];
    });
}

export function chemichemi(): PackageJson {
  const found = examplePackages().find(([name]) => name === 'chemichemi');
  if (!found) throw new Error('examples/chemichemi is missing');
  return found[1];
}
