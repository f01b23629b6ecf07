// Public API of the `footfall` package. Hand-written: wasm-bindgen's generated types
// describe the internal wasm boundary, not this API.

/** Options of `init()`. The script tag takes the same as `data-*` attributes. */
export interface FootfallOptions {
  /** Site id the events belong to. Default: `location.hostname`. (`data-site`) */
  site?: string
  /**
   * Base URL of the Footfall collector; events go to `${api}/api/batch`.
   * Default `"/"` (same origin); the script tag defaults to the script's own origin. (`data-api`)
   */
  api?: string
  /** Send nothing when the browser signals Do-Not-Track or Global Privacy Control. Default false. (`data-respect-dnt`) */
  respectDnt?: boolean
  /** Send nothing from localhost, 127.0.0.0/8, [::1] and file: pages. Default false. (`data-ignore-localhost`) */
  ignoreLocalhost?: boolean
  /** Record a `page_view` on load and on single-page-app navigation. Default true. (`data-auto-pageviews`) */
  autoPageviews?: boolean
  /** Record clicks on links and buttons, and `outbound` link clicks. Default true. (`data-auto-clicks`) */
  autoClicks?: boolean
  /** Record nothing until `consent(true)`. Default false. (`data-require-consent`) */
  requireConsent?: boolean
  /** Queued events that trigger a send at once. Default 20, at most 100. (`data-batch-size`) */
  batchSize?: number
  /** Longest time an event waits before it is sent, in ms. Default 5000. (`data-flush-interval`) */
  flushInterval?: number
  /** Events kept while the collector is unreachable; the oldest are dropped first. Default 500. (`data-max-queue`) */
  maxQueue?: number
  /** Where to load `footfall.wasm` from. Default: next to this module. */
  wasmUrl?: string | URL
}

/** Flat custom properties: at most 32 keys of at most 64 characters; strings are cut to 256 characters. */
export type Props = Record<string, string | number | boolean>

/**
 * Starts tracking. Returns at once; the promise resolves to whether this page is tracked
 * (false when an ignore rule applies or the wasm could not load). Never rejects.
 */
export function init(options?: FootfallOptions): Promise<boolean>

/**
 * Records a custom event. `name`: 1–64 of `A-Z a-z 0-9`, space and `_ . : - /`, starting
 * with a letter or digit. Calls before the tracker is ready are queued. Returns whether it was recorded
 * (`undefined` while queued).
 */
export function track(name: string, props?: Props): boolean | undefined

/** Attaches a user id (1–128 printable characters) to this tab's later events; `null` or `""` clears it. */
export function identify(userId: string | null): void

/** `false` stops recording and forgets queued events; `true` starts (again) and counts the current page. */
export function consent(granted: boolean): void

/** Counters for debugging. Never throws. */
export function stats(): FootfallStats

export interface FootfallStats {
  /** Events waiting to be sent (also persisted in localStorage). */
  queued?: number
  recorded?: number
  /** Events accepted by the collector or handed to sendBeacon. */
  sent?: number
  /** Events dropped because the queue was full, or too old to send. */
  dropped?: number
  /** Events the collector refused for good (400/413/415). */
  rejected?: number
  /** Failed sends that will be retried. */
  retries?: number
  /** Calls refused (invalid event name or user id). */
  invalid?: number
  /** Errors swallowed instead of thrown into the page. */
  errors: number
  /** Why this page is not tracked: `"dnt"`, `"localhost"` or `"opt-out"`. */
  ignored?: 'dnt' | 'localhost' | 'opt-out'
  consent?: 'granted' | 'denied'
  /** `false` until the wasm has loaded. */
  started?: boolean
}
