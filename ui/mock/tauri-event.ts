// Test-only stand-in for @tauri-apps/api/event, used by `vite build --mode mock`.
export type UnlistenFn = () => void;
type Handler<T> = (event: { event: string; id: number; payload: T }) => void;

const handlers = new Map<string, Set<Handler<unknown>>>();

export async function listen<T>(event: string, handler: Handler<T>): Promise<UnlistenFn> {
  const set = handlers.get(event) ?? new Set();
  set.add(handler as Handler<unknown>);
  handlers.set(event, set);
  return () => set.delete(handler as Handler<unknown>);
}

export function emitMock(event: string, payload: unknown): void {
  for (const h of handlers.get(event) ?? []) h({ event, id: 0, payload });
}
