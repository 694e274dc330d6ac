import type { Task } from '../api';
import type { LiveState } from '../events';

const text: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Live updates unavailable',
};

// Whether the server's live updates reach this page.
export function LiveBadge({ state }: { state: LiveState }) {
  return (
    <span class={`live live-${state}`} data-testid="live-state" role="status">
      {text[state]}
    </span>
  );
}

// The list with `t` replaced (or added) by a task event.
export function upsertTask(list: Task[] | undefined, t: Task): Task[] {
  const l = list ?? [];
  return l.some((x) => x.task_id === t.task_id) ? l.map((x) => (x.task_id === t.task_id ? t : x)) : [...l, t];
}
