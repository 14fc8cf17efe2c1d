import { useLayoutEffect, useState } from 'preact/hooks';

export interface AsyncState<T> {
  loading: boolean;
  error: Error | null;
  data: T | undefined;
}

// useAsync runs fn whenever deps change, aborting the previous run. It starts in a layout
// effect, right after the render rather than after the next paint: a request started a
// frame earlier answers a frame earlier.
export function useAsync<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> & { reload: () => void } {
  const [state, setState] = useState<AsyncState<T>>({ loading: true, error: null, data: undefined });
  const [n, setN] = useState(0);
  useLayoutEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ loading: true, error: null, data: s.data }));
    fn(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ loading: false, error: null, data }),
      (error) => !ctl.signal.aborted && setState({ loading: false, error, data: undefined }),
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  return { ...state, reload: () => setN((x) => x + 1) };
}
