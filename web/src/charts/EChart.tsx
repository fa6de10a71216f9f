import { Skeleton } from '@mantine/core';
import type { EChartsOption } from 'echarts';
import { useEffect, useRef, useState } from 'react';

type Instance = ReturnType<(typeof import('./echarts'))['echarts']['init']>;

/**
 * One chart. ECharts is loaded the first time a chart is shown, never with the
 * application. The canvas is an image to assistive technology; the table beside each
 * chart carries the same numbers.
 */
export function EChart({
  option,
  label,
  height = 280,
  testId,
}: {
  option: EChartsOption;
  label: string;
  height?: number;
  testId?: string;
}) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<Instance | null>(null);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    let disposed = false;
    let observer: ResizeObserver | null = null;
    void import('./echarts').then(({ echarts }) => {
      if (disposed || !element.current) return;
      const instance = echarts.init(element.current, undefined, { renderer: 'canvas' });
      chart.current = instance;
      observer = new ResizeObserver(() => instance.resize());
      observer.observe(element.current);
      setReady(true);
    });
    return () => {
      disposed = true;
      observer?.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    if (ready) chart.current?.setOption(option, { notMerge: true });
  }, [ready, option]);

  return (
    <div style={{ position: 'relative', height }}>
      {ready ? null : <Skeleton height={height} radius="md" style={{ position: 'absolute', inset: 0 }} />}
      <div ref={element} role="img" aria-label={label} data-testid={testId} style={{ height }} />
    </div>
  );
}
