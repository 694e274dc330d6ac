// Live updates pushed by the server (Server-Sent Events on /api/v1/events): overview, task and
// device events. Reconnecting is EventSource's own; nothing here polls.
import { useEffect, useState } from 'preact/hooks';
import type { Overview, Task } from './api';

export interface DeviceEvent {
  device_id: string;
  online: boolean;
  fw_version: string;
  sw_version: string;
  task_id?: number;
  state?: string;
  // The device's row of that task (as GET /tasks/{id} lists it).
  attempts?: number;
  progress?: number;
  package_id?: number | null;
  result_code?: number | null;
  description?: string;
}

export interface Handlers {
  overview?: (o: Overview) => void;
  task?: (t: Task) => void;
  device?: (d: DeviceEvent) => void;
}

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'closed';

// Subscribes while the component is mounted; `taskId` adds that task's device events.
export function useEvents(handlers: Handlers, taskId?: number): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  useEffect(() => {
    if (typeof EventSource === 'undefined') return undefined;
    const es = new EventSource('/api/v1/events' + (taskId ? `?task=${taskId}` : ''), {
      withCredentials: true,
    });
    const on = <T,>(name: string, fn?: (v: T) => void) => {
      if (!fn) return;
      es.addEventListener(name, (e) => {
        try {
          fn(JSON.parse((e as MessageEvent<string>).data) as T);
        } catch {
          /* a malformed event is skipped */
        }
      });
    };
    on('overview', handlers.overview);
    on('task', handlers.task);
    on('device', handlers.device);
    es.onopen = () => setState('live');
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
    return () => es.close();
    // The handlers are read once per subscription; they use state setters only.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [taskId]);
  return state;
}
