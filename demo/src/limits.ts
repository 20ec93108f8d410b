/**
 * Every bound of the point-of-sale demo in one place: the lists a ledger's state keeps, the
 * lengths a cashier may type, and how long the register waits for head office. A list that
 * reaches its bound keeps its newest items; totals are kept beside the lists, so a report never
 * depends on a list being complete.
 */

/** Notes (corrections and their resolutions) kept in an order's, drawer's or day's state. */
export const NOTES_MAX = 200

/**
 * Orders of a day the Orders screen lists, newest first (a `query` over the `dayTime` index: at
 * most QUERY_ROWS_MAX); the day report's totals count every sale, from the day ledger.
 */
export const DAY_ORDERS_SHOWN = 1_000

/** Money moves that arrived after the day was closed, listed in the day's state. */
export const AFTER_CLOSE_MAX = 200

/** Closed shifts a drawer's state keeps (about two months of three shifts a day). */
export const SHIFT_CLOSES_MAX = 200

/** Tenders in one sale: a gift card and then cash or a card. */
export const SALE_TENDERS_MAX = 2

/** Longest product name, in characters. */
export const PRODUCT_NAME_CHARS_MAX = 60

/** Names of one product waiting for head office's choice. */
export const NAME_CANDIDATES_MAX = 8

/** Longest refund or void reason, in characters. */
export const REFUND_REASON_CHARS_MAX = 120

/** Decimals a discount percentage may have (12.5 % and 12.25 %, not 12.125 %). */
export const DISCOUNT_DECIMALS_MAX = 2

/** How long the register waits for head office's decision on a request before it says so. */
export const DECISION_WAIT_MS = 10_000

/** How often a register served by a store hub asks it where the store's internet switch is. */
export const STORE_HUB_POLL_MS = 2_000

/** Entries of a ledger the history panel shows, newest first. */
export const HISTORY_ENTRIES_MAX = 50
