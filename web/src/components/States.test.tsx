import { MantineProvider } from '@mantine/core';
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import { I18nProvider } from '../i18n/I18nProvider';
import { ErrorState, NotFoundState } from './States';

function renderInApp(ui: React.ReactNode) {
  return render(
    <MantineProvider>
      <I18nProvider>{ui}</I18nProvider>
    </MantineProvider>,
  );
}

afterEach(cleanup);

describe('error states', () => {
  it("shows the problem's own detail, and retries on request", () => {
    const retry = vi.fn();
    const refused = new ApiError(409, {
      title: 'Conflict',
      status: 409,
      detail: 'the deal was changed by someone else',
    });
    renderInApp(<ErrorState error={refused} onRetry={retry} />);
    expect(screen.getByRole('alert').textContent).toContain('the deal was changed by someone else');
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(retry).toHaveBeenCalledOnce();
  });

  it('says plainly that an outage is temporary', () => {
    const outage = new ApiError(503, { title: 'Service unavailable', status: 503 }, 2);
    renderInApp(<ErrorState error={outage} />);
    expect(screen.getByRole('alert').textContent).toContain('try again in a moment');
  });

  it('tells a missing record from one the user may not see in the same words', () => {
    renderInApp(<NotFoundState />);
    expect(screen.getByRole('heading', { name: 'Not found' })).toBeTruthy();
    expect(screen.getByText('This page does not exist, or you may not see it.')).toBeTruthy();
  });
});
