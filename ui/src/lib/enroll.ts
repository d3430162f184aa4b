const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Why the typed gate address cannot be used yet, or null. The desk checks it again and has the
 * last word; this only saves a round trip for the common mistakes. Plain http:// would send the
 * enrollment code and the credential unencrypted, so it is only for a gate on this computer.
 */
export function gateUrlProblem(typed: string): string | null {
  const v = typed.trim();
  if (v === '') return null;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'Enter a full address, e.g. https://gate.example.bank';
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') {
    return LOOPBACK.test(url.hostname)
      ? null
      : 'Use https://. Plain http:// is only for a gate on this computer (localhost).';
  }
  return 'The address starts with https://';
}
