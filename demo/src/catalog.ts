/**
 * The demo merchant's catalog, stores and registers: static data shared by the app and the
 * schema module the relay loads. Prices here are the list prices before head office changes
 * any (changes live in `price/<store>:<sku>` ledgers); `opening` is each store's stock before
 * its first movement. Money is integer cents everywhere.
 */

export interface CatalogItem {
  readonly sku: string
  /** The EAN-13 printed on the item (in-store range 20…): what a barcode scanner types. */
  readonly barcode: string
  /** The built-in name; head office renames items in `product/<store>:<sku>` ledgers. */
  readonly name: string
  readonly category: string
  /** List price in cents until head office sets another. */
  readonly price: number
  /** Units on hand in every store before its first stock movement. */
  readonly opening: number
  readonly color: string
}

export const TENANT = 'harbour-coffee'

export const CATALOG: readonly CatalogItem[] = [
  {
    sku: 'espresso',
    barcode: '2000000000015',
    name: 'Espresso',
    category: 'Drinks',
    price: 280,
    opening: 500,
    color: '#6b4f3a',
  },
  {
    sku: 'flat-white',
    barcode: '2000000000022',
    name: 'Flat white',
    category: 'Drinks',
    price: 420,
    opening: 500,
    color: '#b08b62',
  },
  {
    sku: 'filter',
    barcode: '2000000000039',
    name: 'Filter coffee',
    category: 'Drinks',
    price: 350,
    opening: 500,
    color: '#8a6a4a',
  },
  {
    sku: 'chai',
    barcode: '2000000000046',
    name: 'Chai latte',
    category: 'Drinks',
    price: 450,
    opening: 300,
    color: '#c28b4b',
  },
  {
    sku: 'croissant',
    barcode: '2000000000053',
    name: 'Croissant',
    category: 'Bakery',
    price: 320,
    opening: 24,
    color: '#d9a441',
  },
  {
    sku: 'cinnamon-bun',
    barcode: '2000000000060',
    name: 'Cinnamon bun',
    category: 'Bakery',
    price: 390,
    opening: 18,
    color: '#b5651d',
  },
  {
    sku: 'banana-bread',
    barcode: '2000000000077',
    name: 'Banana bread',
    category: 'Bakery',
    price: 360,
    opening: 12,
    color: '#c9a25a',
  },
  {
    sku: 'beans-1kg',
    barcode: '2000000000084',
    name: 'House beans 1 kg',
    category: 'Retail',
    price: 3200,
    opening: 8,
    color: '#3e2b20',
  },
  {
    sku: 'beans-250g',
    barcode: '2000000000091',
    name: 'Single origin 250 g',
    category: 'Retail',
    price: 1450,
    opening: 15,
    color: '#5a3d2b',
  },
  {
    sku: 'grinder',
    barcode: '2000000000107',
    name: 'Hand grinder',
    category: 'Retail',
    price: 6900,
    opening: 1,
    color: '#4a5560',
  },
  {
    sku: 'mug',
    barcode: '2000000000114',
    name: 'Enamel mug',
    category: 'Retail',
    price: 1800,
    opening: 10,
    color: '#2f6f8f',
  },
  {
    sku: 'keep-cup',
    barcode: '2000000000121',
    name: 'Keep cup',
    category: 'Retail',
    price: 2200,
    opening: 6,
    color: '#3f8f6f',
  },
]

export interface Store {
  readonly id: string
  readonly name: string
}

export const STORES: readonly Store[] = [
  { id: 's1', name: 'Harbour Street' },
  { id: 's2', name: 'Station Square' },
  { id: 's3', name: 'Market Hall' },
  { id: 's4', name: 'Old Town' },
  { id: 's5', name: 'Riverside' },
  { id: 's6', name: 'Airport' },
  { id: 's7', name: 'Pier Road' },
  { id: 's8', name: 'University' },
  { id: 's9', name: 'Canal Street' },
  { id: 's10', name: 'Hospital' },
]

export const REGISTERS: readonly string[] = ['r1', 'r2', 'r3']

/** The simulated card processor declines every card whose number ends in these digits. */
export const DECLINING_LAST4 = '0002'

export function findItem(sku: string): CatalogItem | undefined {
  return CATALOG.find((item) => item.sku === sku)
}
