/**
 * Prometheus text exposition (format 0.0.4) of a node's counters, for `GET /metrics`.
 */
import type { MeshNode } from '../../mesh/node.ts';
import type { StatusView } from './services.ts';

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderMetrics(node: MeshNode, status: StatusView): string {
  const lines: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[labels: string, value: number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  family('citizen_records_stored', 'gauge', 'Records in the store.', [['', status.records]]);
  family('citizen_households_known', 'gauge', 'Households in the directory.', [['', status.households_known]]);
  family('citizen_records_pending', 'gauge', 'Records waiting for their author key.', [['', node.pendingCount]]);
  family(
    'citizen_records_rejected_total',
    'counter',
    'Records refused, by reason.',
    [...node.rejected].map(([code, n]) => [`{reason="${escapeLabel(code)}"}`, n]),
  );
  // One series per link even when two links have the same spec (`--link X --link X`): the
  // second is labelled "X#2", the third "X#3", in the order of the status's links.
  const labelOf = new Map<StatusView['links'][number], string>();
  const seen = new Map<string, number>();
  for (const l of status.links) {
    const n = (seen.get(l.spec) ?? 0) + 1;
    seen.set(l.spec, n);
    labelOf.set(l, n === 1 ? l.spec : `${l.spec}#${n}`);
  }
  const linkLabel = (l: StatusView['links'][number]) => escapeLabel(labelOf.get(l)!);
  const link = (l: StatusView['links'][number]) => `{link="${linkLabel(l)}"}`;
  family('citizen_link_frames_sent_total', 'counter', 'Frames sent per link.', status.links.map((l) => [link(l), l.frames_out]));
  family('citizen_link_frames_received_total', 'counter', 'Frames received per link.', status.links.map((l) => [link(l), l.frames_in]));
  const extra = (l: StatusView['links'][number], key: string) => (typeof (l as Record<string, unknown>)[key] === 'number' ? ((l as Record<string, unknown>)[key] as number) : 0);
  family('citizen_link_bytes_sent_total', 'counter', 'Bytes sent per link.', status.links.map((l) => [link(l), extra(l, 'bytes_out')]));
  family('citizen_link_bytes_received_total', 'counter', 'Bytes received per link.', status.links.map((l) => [link(l), extra(l, 'bytes_in')]));
  family('citizen_link_airtime_ms_total', 'counter', 'Airtime used per link, in milliseconds.', status.links.map((l) => [link(l), l.airtime_ms]));
  family('citizen_link_neighbours', 'gauge', 'Neighbours heard (signed beacon) per link.', status.links.map((l) => [link(l), l.neighbours]));
  family(
    'citizen_link_dropped_total',
    'counter',
    'Frames and messages dropped per link, by reason.',
    status.links.flatMap((l) =>
      Object.entries(((l as Record<string, unknown>).dropped ?? {}) as Record<string, number>).map(
        ([reason, n]): [string, number] => [`{link="${linkLabel(l)}",reason="${escapeLabel(reason)}"}`, n],
      ),
    ),
  );
  family('citizen_sync_queue_length', 'gauge', 'Records queued for sending.', [['', typeof status.sync_queue === 'number' ? status.sync_queue : 0]]);
  return lines.join('\n') + '\n';
}
