import type { DeskFailure } from './backend';

/** A failure in words: a short title, and what to do. The backend's own message is kept as detail. */
export interface Explained {
  code: string;
  title: string;
  help: string;
  detail: string;
}

const TITLES: Record<string, [string, string]> = {
  not_enrolled: ['This desk is not enrolled', 'Enter the gate address and your enrollment code.'],
  already_enrolled: [
    'This desk is already enrolled',
    'Restart the app to open the existing account.',
  ],
  keyring_unavailable: [
    'The OS keyring is not available',
    'Your signing key lives only in the OS keyring (Secret Service). Log in to a desktop session or start gnome-keyring, then try again. Countersign never stores keys in a file.',
  ],
  keyring_locked: [
    'The OS keyring is locked',
    'Unlock your keyring (usually by logging in to the desktop session) and try again.',
  ],
  gate_unreachable: [
    'The gate cannot be reached',
    'Check the gate address and your network connection.',
  ],
  gate_refused: ['The gate refused the request', 'Read the gate’s reason below.'],
  invalid_decision: ['The decision is not valid', 'Fix the highlighted fields and try again.'],
  not_found: ['Not found', 'The item is no longer on this desk; the queue has been refreshed.'],
  already_decided: [
    'Already decided',
    'This item version already has your decision; nothing was changed.',
  ],
  lease_lost: [
    'The item is no longer yours',
    'The gate withdrew or reassigned it. The next sync records what happened.',
  ],
  log_inconsistent: [
    'The audit log did not verify',
    'The gate’s log does not extend the checkpoint this desk saw last. Stop and tell your supervisor: this may mean history was rewritten.',
  ],
  storage: ['Local storage failed', 'The desk could not read or write its database.'],
  invalid_input: ['Invalid input', 'Check the values you entered.'],
  not_supervisor: [
    'Only supervisors and admins may do this',
    'Your account’s role does not include the supervisor views.',
  ],
  bundle_unverified: [
    'The exported bundle did not verify',
    'The bundle was written but failed its own check; do not hand it to an auditor. Tell the gate’s operators.',
  ],
  internal: ['Something went wrong', 'The app reported an unexpected error.'],
};

export function explain(failure: DeskFailure): Explained {
  const [title, help] = TITLES[failure.code] ?? [`Error: ${failure.code}`, ''];
  return { code: failure.code, title, help, detail: failure.message };
}
