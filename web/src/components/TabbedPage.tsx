import { Stack, Tabs, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import { useSearchParams } from 'react-router';

export interface PageTab {
  name: string;
  label: string;
  panel: ReactNode;
}

/** A page of tabs whose open tab is in the URL (`?tab=`), so each tab is a link; the
 *  first tab is the default and leaves the URL clean. */
export function TabbedPage({ title, tabs }: { title: string; tabs: PageTab[] }) {
  const [params, setParams] = useSearchParams();
  const first = tabs[0]?.name ?? '';
  const asked = params.get('tab') ?? '';
  const tab = tabs.some((t) => t.name === asked) ? asked : first;
  return (
    <Stack gap="md">
      <Title order={1} size="h2">
        {title}
      </Title>
      <Tabs
        value={tab}
        onChange={(value) => setParams(value && value !== first ? { tab: value } : {})}
        keepMounted={false}
      >
        <Tabs.List>
          {tabs.map((t) => (
            <Tabs.Tab key={t.name} value={t.name}>
              {t.label}
            </Tabs.Tab>
          ))}
        </Tabs.List>
        {tabs.map((t) => (
          <Tabs.Panel key={t.name} value={t.name} pt="md">
            {t.panel}
          </Tabs.Panel>
        ))}
      </Tabs>
    </Stack>
  );
}
