// A real `switchyard serve --demo` for the end-to-end tests: the binary cargo built
// ($SWITCHYARD_BIN, else target/debug/switchyard), its own SWITCHYARD_HOME (and so its own
// embedded Postgres) in a temporary folder, port 0 (the kernel picks a free one; the banner says
// which), serving the built studio (studio/dist).

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const studioDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = join(studioDir, '..');

export interface RunningServer {
  baseURL: string;
  /** Its SWITCHYARD_HOME (the embedded cluster is in `pgdata`, its socket there too). */
  home: string;
  banner: string[];
  stop: () => Promise<void>;
}

export async function startServer(): Promise<RunningServer> {
  const bin = resolve(process.env.SWITCHYARD_BIN ?? join(repoDir, 'target/debug/switchyard'));
  if (!existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: run \`cargo build -p switchyard-api --bin switchyard\` or set SWITCHYARD_BIN`);
  }
  const dist = join(studioDir, 'dist');
  if (!existsSync(join(dist, 'index.html'))) throw new Error('the studio is not built: run `npm run build` first');
  // A private parent (0700), as a checkout under /root or `mktemp -d` is.
  const parent = mkdtempSync(join(tmpdir(), 'switchyard-studio-e2e-'));
  chmodSync(parent, 0o700);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SWITCHYARD_HOME: join(parent, 'home'),
    SWITCHYARD_LISTEN: '127.0.0.1:0',
    SWITCHYARD_STUDIO_DIR: dist,
    RUST_LOG: process.env.E2E_SERVER_LOG ?? 'warn',
    // The suite signs the same accounts in some forty times in two minutes, from one address:
    // under the default limits (5 a minute per account, 20 per address) sign-ins were refused
    // with 429 at random. The limits themselves are tested in the Rust suite.
    SWITCHYARD_LOGIN_LIMIT: '600/m',
    SWITCHYARD_LOGIN_LIMIT_IP: '600/m',
  };
  delete env.DATABASE_URL;
  delete env.SWITCHYARD_JWT_SECRET;
  delete env.SWITCHYARD_APP_DATABASE_URL;
  const child = spawn(bin, ['serve', '--demo'], { cwd: repoDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', (e) => { stderr += `cannot run ${bin}: ${e.message}\n`; });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (process.env.E2E_SERVER_LOG) process.stderr.write(d);
  });
  const banner: string[] = [];
  const stop = () => stopServer(child, parent);
  try {
    const baseURL = await new Promise<string>((resolve, reject) => {
      const timeout = setTimeout(() => {
        reject(new Error(`the server did not start in 150 s\nstdout: ${banner.join('\n')}\nstderr: ${stderr}`));
      }, 150_000);
      child.on('exit', (code) => {
        clearTimeout(timeout);
        reject(new Error(`the server exited (${String(code)})\nstdout: ${banner.join('\n')}\nstderr: ${stderr}`));
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        banner.push(line);
        const m = /^Switchyard listening on (http:\/\/\S+)/.exec(line);
        if (m?.[1]) {
          clearTimeout(timeout);
          resolve(m[1]);
        }
      });
    });
    await waitReady(baseURL);
    return { baseURL, home: env.SWITCHYARD_HOME ?? '', banner, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function waitReady(baseURL: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${baseURL}/readyz`)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${baseURL}/readyz did not answer 200 in 60 s`);
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function stopServer(child: ChildProcess, parent: string): Promise<void> {
  if (running(child)) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
    child.kill('SIGTERM');
    // It stops its Postgres before exiting.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    clearTimeout(timer);
    if (running(child)) child.kill('SIGKILL');
  }
  rmSync(parent, { recursive: true, force: true });
}
