// Go durations (`8760h`, `1h30m`, `90m`), as kubeadm's certificateValidityPeriod takes them.
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const SEGMENT = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;

/** Milliseconds in a Go duration; undefined when the text is not one (or not positive). */
export function parseGoDuration(text: string): number | undefined {
  let total = 0;
  let at = 0;
  SEGMENT.lastIndex = 0;
  while (at < text.length) {
    SEGMENT.lastIndex = at;
    const match = SEGMENT.exec(text);
    if (!match?.[1] || !match[2]) return undefined;
    total += Number(match[1]) * (UNIT_MS[match[2]] ?? Number.NaN);
    at = SEGMENT.lastIndex;
  }
  return at > 0 && total > 0 && Number.isFinite(total) ? Math.round(total) : undefined;
}

/**
 * Residual time as kubeadm's `certs check-expiration` prints it (apimachinery
 * duration.ShortHumanDuration): `45s`, `12m`, `5h`, `364d`, `9y`; `<invalid>` once expired.
 */
export function shortHumanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 24) return `${hours}h`;
  if (hours < 24 * 365) return `${Math.trunc(hours / 24)}d`;
  return `${Math.trunc(hours / 24 / 365)}y`;
}
