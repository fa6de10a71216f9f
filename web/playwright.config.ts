import { defineConfig } from '@playwright/test';

// Debian's Chromium, driven by Playwright; no tool here ever downloads a browser.
const chromium = process.env.CRM_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: './e2e',
  // The sign-in at an identity provider needs one started for it (tests/test_oidc_sign_in.py).
  testIgnore: process.env.CRM_OIDC_PROVIDER_URL ? [] : ['oidc.spec.ts'],
  timeout: 90_000,
  expect: { timeout: 20_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: process.env.CRM_GATEWAY_URL ?? 'http://127.0.0.1:8000',
    viewport: { width: 1440, height: 900 },
    locale: 'en-US',
    timezoneId: 'Europe/Berlin',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: chromium,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
