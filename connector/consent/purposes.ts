// The purposes and channels an authorization covers, and which purposes need an authorization versus honour opt-outs.

/**
 * `authorization`: nothing is sent without an active, unexpired authorization (HIPAA marketing, 45 CFR 164.508(a)(3)).
 * `opt-out`: treatment communications need no authorization but stop on a revocation of their purpose.
 * Every purpose stops on a channel opt-out.
 */
export type PurposeModel = 'authorization' | 'opt-out';

export const purposeModels = {
  marketing: 'authorization',
  'treatment-reminder': 'opt-out',
  'appointment-reminder': 'opt-out',
  'refill-reminder': 'opt-out',
  'screening-reminder': 'opt-out',
  'care-gap-reminder': 'opt-out',
} as const satisfies Record<string, PurposeModel>;

export type Purpose = keyof typeof purposeModels;
export const purposeList = Object.keys(purposeModels) as Purpose[];

export const channelList = ['email'] as const;
export type Channel = (typeof channelList)[number];

/** The purpose of a channel-wide record: revoked = channel opt-out (every purpose stops), active = opt-out lifted. */
export const CHANNEL_WIDE = '*';
export type RecordPurpose = Purpose | typeof CHANNEL_WIDE;

export const statusList = ['active', 'revoked', 'expired'] as const;
export type AuthorizationStatus = (typeof statusList)[number];

export const sourceList = ['fhir-consent', 'signed-form', 'crm', 'unsubscribe-link', 'admin'] as const;
export type AuthorizationSource = (typeof sourceList)[number];

export function isPurpose(value: string): value is Purpose {
  return Object.hasOwn(purposeModels, value);
}

export function isChannel(value: string): value is Channel {
  return (channelList as readonly string[]).includes(value);
}
