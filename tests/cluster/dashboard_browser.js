// Drives the dashboard (docs/dashboard.md) in headless Chromium through playwright-core, for
// test_dashboard.py, which starts the cluster and passes a JSON config file as argv[2]:
//   {playwright, chromium, base, token, code_url, source, file_parts, file_original,
//    restore_target, artifacts, kill_peer, peers, timeout_ms}
// Prints "STEP ..." lines; prints "KILL N" and waits for a line on stdin once peer N should be
// killed (the harness does it); likewise "CHANGE" once the source's files should be changed for
// a second snapshot, and prints "DIFF {json}": the diff the page shows (the harness checks it);
// "REPAIR" once a repair should run (the harness runs `cairn repair`), and "SURVIVAL STAGE
// {json}": the health page's rows of what each snapshot survives (before the kill, after it,
// after the repair). Exits 0 when every step passed, 1 with the reason otherwise.
// Every wait is on a condition with a deadline (Playwright's timeouts), never a fixed sleep.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const {chromium} = require(path.join(cfg.playwright, 'node_modules', 'playwright-core'));
const T = cfg.timeout_ms;
const lines = readline.createInterface({input: process.stdin});
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

function step(text) { console.log('STEP ' + text); }
function check(cond, what) { if (!cond) throw new Error('check failed: ' + what); }
async function shot(page, name) {
  await page.screenshot({path: path.join(cfg.artifacts, name + '.png'), fullPage: true});
}
async function tab(page, name) {
  await page.click(`#tabs a[data-tab="${name}"]`);
  await page.waitForSelector(`#page-${name}:not([hidden])`, {timeout: T});
}
// The rows of the health page's "What each snapshot survives now" table.
async function survival(page) {
  return page.$$eval('#survival tbody tr', (rs) => rs.map((r) => ({
    id: r.dataset.snapshot, rate: r.dataset.rate, survives: r.querySelector('td.survives').textContent,
    hosts: r.querySelector('td.hosts').textContent, rebuild: r.querySelector('td.rebuild').textContent})));
}
// Waits until the table has `n` rows, each of whose survival text is `text` and which match
// `want`: {hosts: true (some single-point host) or false (none), rate, rebuild (a substring)}.
async function waitSurvival(page, n, text, want, timeout) {
  await page.waitForFunction(([n, text, want]) => {
    const rows = [...document.querySelectorAll('#survival tbody tr')];
    return rows.length === n && rows.every((r) => r.querySelector('td.survives').textContent === text &&
      (r.querySelector('td.hosts').textContent !== 'none') === want.hosts &&
      (want.rate === undefined || r.dataset.rate === want.rate) &&
      (want.rebuild === undefined || r.querySelector('td.rebuild').textContent.includes(want.rebuild)));
  }, [n, text, want], {timeout});
}
async function waitJob(page, kind, timeout) {
  const row = page.locator(`#jobs tr[data-kind="${kind}"]:is([data-state="done"],[data-state="failed"])`).first();
  await row.waitFor({timeout});
  const state = await row.getAttribute('data-state');
  check(state === 'done', `the ${kind} job ended ${state}: ${await row.innerText()}`);
}

async function main() {
  const browser = await chromium.launch({executablePath: cfg.chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']});
  try {
    const context = await browser.newContext({acceptDownloads: true, viewport: {width: 1280, height: 720}});
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // Failed requests (the wrong token's 401) are logged by Chromium itself; only script errors count.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push('console: ' + m.text());
    });

    step('login with a wrong token is refused');
    await page.goto(cfg.base);
    await page.waitForSelector('#login:not([hidden])', {timeout: T});
    await page.fill('#token', 'not-the-token');
    await page.click('#login-form button');
    await page.locator('#login-error', {hasText: 'refused'}).waitFor({timeout: T});
    await shot(page, 'login');

    step('login with the pasted token');
    await page.fill('#token', cfg.token);
    await page.click('#login-form button');
    await page.waitForSelector('#tabs:not([hidden])', {timeout: T});
    await page.locator('#whoami', {hasText: 'peer 1'}).waitFor({timeout: T});

    step('log out; log in with the one-time link of `cairn ui`');
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])', {timeout: T});
    await page.goto('about:blank');
    await page.goto(cfg.code_url);
    await page.waitForSelector('#tabs:not([hidden])', {timeout: T});
    check(!page.url().includes('code='), 'the login code is dropped from the address bar: ' + page.url());
    const other = await (await browser.newContext()).newPage();
    await other.goto(cfg.code_url);
    await other.locator('#login-error', {hasText: 'unknown, used or expired'}).waitFor({timeout: T});
    await other.context().close();

    step(`cluster: ${cfg.peers} peers alive`);
    await page.waitForFunction((n) => document.querySelectorAll('#peers tbody tr[data-state="alive"]').length === n,
      cfg.peers, {timeout: T});
    await shot(page, 'cluster');

    step('sources: add the source');
    await tab(page, 'sources');
    await page.fill('#source-path', cfg.source);
    await page.click('#source-form button');
    await page.locator(`#sources tr[data-source="${cfg.source}"]`).waitFor({timeout: T});

    step('jobs: start a backup of the source and see it finish');
    await tab(page, 'jobs');
    await page.waitForFunction((src) => [...document.querySelectorAll('#backup-source option')]
      .some((o) => o.textContent === src), cfg.source, {timeout: T});
    await page.selectOption('#backup-source', {label: cfg.source});
    await page.click('#backup-form button');
    await page.locator('#backup-state', {hasText: 'started'}).waitFor({timeout: T});
    await waitJob(page, 'backup', 3 * T);
    await shot(page, 'jobs');

    step('snapshots: browse to the file and download it');
    await tab(page, 'snapshots');
    await page.locator('#snapshots tbody tr button').first().click();
    for (const dir of cfg.file_parts.slice(0, -1)) {
      await page.locator(`#entries tr[data-name="${dir}"][data-type="dir"] td:first-child button`).click();
      await page.locator('#browse-path', {hasText: dir}).waitFor({timeout: T});
    }
    const name = cfg.file_parts[cfg.file_parts.length - 1];
    const link = page.locator(`#entries tr[data-name="${name}"][data-type="file"] button.download`);
    await link.waitFor({timeout: T});
    await shot(page, 'snapshots');
    const [download] = await Promise.all([page.waitForEvent('download', {timeout: 3 * T}), link.click()]);
    const saved = path.join(cfg.artifacts, 'downloaded-' + name);
    await download.saveAs(saved);
    const got = fs.readFileSync(saved), want = fs.readFileSync(cfg.file_original);
    check(got.length === want.length, `downloaded ${got.length} bytes, the file has ${want.length}`);
    check(got.equals(want), 'the downloaded bytes equal the original file');

    step('snapshots: restore this directory');
    await page.fill('#restore-target', cfg.restore_target);
    await page.click('#restore-form button');
    await page.locator('#restore-state', {hasText: 'started'}).waitFor({timeout: T});
    await tab(page, 'jobs');
    await waitJob(page, 'restore', 3 * T);

    step('snapshots: a second snapshot after changing, adding and removing files; diff the two');
    console.log('CHANGE');
    await nextLine();
    await tab(page, 'jobs');
    await page.selectOption('#backup-source', {label: cfg.source});
    await page.click('#backup-form button');
    const backupRows = '#jobs tr[data-kind="backup"]';
    await page.waitForFunction((rows) => document.querySelectorAll(rows).length === 2 &&
      document.querySelectorAll(rows + ':not([data-state="running"])').length === 2, backupRows, {timeout: 3 * T});
    const states = await page.$$eval(backupRows, (rs) => rs.map((r) => r.dataset.state + ': ' + r.innerText));
    check(states.every((st) => st.startsWith('done')), 'both backups done: ' + states.join('; '));
    await tab(page, 'snapshots');
    await page.waitForFunction(() => document.querySelectorAll('#snapshots tbody tr').length === 2 &&
      document.querySelectorAll('#diff-a option').length === 2, null, {timeout: T});
    // The pickers list the newest first: from the older (index 1) to the newer (index 0).
    await page.selectOption('#diff-a', {index: 1});
    await page.selectOption('#diff-b', {index: 0});
    await page.click('#diff-form button');
    await page.waitForSelector('#diff-result:not([hidden])', {timeout: T});
    const diff = await page.evaluate(() => ({
      title: document.querySelector('#diff-title').textContent,
      totals: document.querySelector('#diff-totals').textContent,
      rows: [...document.querySelectorAll('#diff tbody tr')].map((r) => [...r.cells].map((c) => c.textContent)),
      // Markup in a file name is shown as text, never parsed.
      markup: document.querySelectorAll('#diff b, #diff script, #diff img').length,
    }));
    console.log('DIFF ' + JSON.stringify(diff));
    check(diff.markup === 0, 'no markup from file names in the diff');
    await shot(page, 'diff');

    step('health: run a check');
    await tab(page, 'health');
    await page.click('#check-start');
    await page.locator('#check-result', {hasText: 'healthy'}).waitFor({timeout: 3 * T});
    await page.locator('#check-result tr[data-snapshot]').first().waitFor({timeout: T});
    step('health: both snapshots survive any 1 peer (2 copies on 3 storage peers)');
    await waitSurvival(page, 2, 'survives any 1 peer', {hosts: false}, 2 * T);
    console.log('SURVIVAL before ' + JSON.stringify(await survival(page)));
    await shot(page, 'health');

    step(`cluster: peer ${cfg.kill_peer} killed turns suspect, then dead`);
    await tab(page, 'cluster');
    console.log('KILL ' + cfg.kill_peer);
    await nextLine();
    const row = `#peers tr[data-peer="${cfg.kill_peer}"]`;
    await page.waitForSelector(`${row}:is([data-state="suspect"],[data-state="dead"])`, {timeout: T});
    const first = await page.getAttribute(row, 'data-state');
    step(`peer ${cfg.kill_peer} shown ${first}`);
    await shot(page, 'cluster-' + first);
    await page.waitForSelector(`${row}[data-state="dead"]`, {timeout: T});
    await shot(page, 'cluster-dead');

    step(`health: without peer ${cfg.kill_peer} the snapshots survive no peer loss`);
    await tab(page, 'health');
    await waitSurvival(page, 2, 'survives no peer loss', {hosts: true}, 2 * T);
    console.log('SURVIVAL dead ' + JSON.stringify(await survival(page)));
    await shot(page, 'health-dead');

    step('health: after a repair, any 1 peer again, rebuilt at the measured repair rate');
    console.log('REPAIR');
    await nextLine();
    await waitSurvival(page, 2, 'survives any 1 peer', {hosts: false, rate: 'repair', rebuild: ' in ~'}, 2 * T);
    console.log('SURVIVAL repaired ' + JSON.stringify(await survival(page)));
    await shot(page, 'health-repaired');
    check(pageErrors.length === 0, 'no script errors on the page: ' + pageErrors.join('; '));
    step('done');
  } finally {
    await browser.close();
    lines.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.log('FAIL ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
