// The server side of the designer: the tenant's draft (kept on the server, saved with the
// version read for optimistic concurrency), validation of a package, the dry run of a
// transition with the draft, and publishing (plan, apply).

import { api, unwrap } from '../../../api/client';
import type { PackageJson } from '../lib/model';
import type { Problem } from '../lib/problems';

const path = (tenant: string) => ({ params: { path: { tenant } } });

/** `GET …/config/draft`: the stored draft, or the live package as version 0. */
export async function getDraft(tenant: string) {
  return unwrap(await api.GET('/api/v1/t/{tenant}/config/draft', path(tenant)));
}

/** `PUT …/config/draft`: saves `pkg` over the draft of `version`; a stale version is a 409. */
export async function saveDraft(tenant: string, version: number, pkg: PackageJson) {
  return unwrap(
    await api.PUT('/api/v1/t/{tenant}/config/draft', { ...path(tenant), body: { version, package: pkg } }),
  );
}

/** `DELETE …/config/draft`: the draft is discarded (the next read starts from the live version). */
export async function deleteDraft(tenant: string) {
  const result = await api.DELETE('/api/v1/t/{tenant}/config/draft', path(tenant));
  if (!result.response.ok) unwrap(result);
}

/** `POST …/config/validate`: the server's static analysis of a package. */
export async function validatePackage(tenant: string, pkg: PackageJson): Promise<Problem[]> {
  const answer = unwrap(await api.POST('/api/v1/t/{tenant}/config/validate', { ...path(tenant), body: pkg }));
  return answer.problems;
}

/** `POST …/config/plan`: what publishing `pkg` would change. */
export async function planPackage(tenant: string, pkg: PackageJson) {
  return unwrap(await api.POST('/api/v1/t/{tenant}/config/plan', { ...path(tenant), body: pkg }));
}

/** `POST …/config/apply`: publishes `pkg` as the tenant's new version, with what the admin says of it. */
export async function applyPackage(tenant: string, pkg: PackageJson, comment?: string) {
  const query = comment?.trim() ? { comment: comment.trim() } : {};
  return unwrap(await api.POST('/api/v1/t/{tenant}/config/apply', { params: { path: { tenant }, query }, body: pkg }));
}

export interface TemplatePreviewRequest {
  template: string;
  kind: 'title' | 'number';
  data: Record<string, unknown>;
  seq?: number;
}

/** `POST …/config/draft/preview-template`: the template rendered by the server over `data`. */
export async function previewTemplate(tenant: string, body: TemplatePreviewRequest) {
  return unwrap(await api.POST('/api/v1/t/{tenant}/config/draft/preview-template', { ...path(tenant), body }));
}

export interface DryRunRequest {
  type: string;
  id: string;
  transition: string;
  input: Record<string, unknown>;
  act_as?: string;
  package: PackageJson;
}

/** `POST …/config/draft/dry-run`: the transition run with `package` on a live entity, rolled back. */
export async function dryRun(tenant: string, body: DryRunRequest): Promise<unknown> {
  return unwrap(await api.POST('/api/v1/t/{tenant}/config/draft/dry-run', { ...path(tenant), body }));
}

/** Entities of a type matching a search (for picking one to try a transition on). */
export async function searchEntities(tenant: string, type: string, q: string) {
  const query = q.trim() === '' ? { limit: 20 } : { q: q.trim(), limit: 20 };
  return unwrap(await api.GET('/api/v1/t/{tenant}/entities/{type}', { params: { path: { tenant, type }, query } }))
    .data;
}

/** The tenant's users (to act as one of them in a dry run). */
export async function listUsers(tenant: string) {
  return unwrap(await api.GET('/api/v1/t/{tenant}/users', path(tenant))).data;
}

/** `GET …/config/versions`: the published versions, oldest first. */
export async function listVersions(tenant: string) {
  return unwrap(await api.GET('/api/v1/t/{tenant}/config/versions', path(tenant))).data;
}

/** `GET …/config/versions/{version}`: a published version's package. */
export async function getVersion(tenant: string, version: number): Promise<unknown> {
  return unwrap(
    await api.GET('/api/v1/t/{tenant}/config/versions/{version}', { params: { path: { tenant, version } } }),
  );
}

/** `GET …/config/export`: the live version's package. */
export async function getLive(tenant: string): Promise<unknown> {
  return unwrap(await api.GET('/api/v1/t/{tenant}/config/export', path(tenant)));
}

/** `POST …/rules/evaluate`: one JSON-Logic rule over data (the rules playground). */
export async function evaluateRule(tenant: string, logic: unknown, data: unknown): Promise<unknown> {
  const answer = unwrap(await api.POST('/api/v1/t/{tenant}/rules/evaluate', { ...path(tenant), body: { logic, data } }));
  return answer.result;
}

/** `GET /auth/me`: who is signed in (the actor of the playground's context). */
export async function whoAmI() {
  return unwrap(await api.GET('/api/v1/auth/me'));
}

/** `POST …/config/migrate`: moves in-flight entities to a version (or, dry, says what would happen). */
export async function migrate(tenant: string, to: number, stateMap: Record<string, string>, dryRun: boolean) {
  return unwrap(
    await api.POST('/api/v1/t/{tenant}/config/migrate', {
      ...path(tenant),
      body: { to, state_map: stateMap, dry_run: dryRun },
    }),
  );
}

/** `POST …/decisions/{name}/evaluate`: a decision table of the live version on `inputs`. */
export async function evaluateDecision(tenant: string, name: string, inputs: Record<string, unknown>): Promise<unknown> {
  return unwrap(
    await api.POST('/api/v1/t/{tenant}/decisions/{name}/evaluate', { params: { path: { tenant, name } }, body: { inputs } }),
  );
}
