/**
 * The app shell: sign-in, then a register (or head office) with its status bar and screens.
 * The client lives as long as the session; signing out is refused while the outbox holds
 * sales, and the sign-in warns when this device holds another register's unsent sales (each
 * register keeps them in its own database, and only that register sends them). An address
 * that is not the app's gets a not-found page.
 */
import { LedgerlineProvider, useStatus, useStore } from '@ledgerline/react'
import { useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react'
import { REGISTERS, STORES } from './catalog.ts'
import { otherRegistersUnsent, rememberUnsent } from './device-sales.ts'
import { inboxItems, registerName } from './inbox.ts'
import { formatCents } from './money.ts'
import {
  isNetworkOff,
  isSimulatedOffline,
  onNetworkChange,
  setSimulatedOffline,
} from './network.ts'
import { openClient, type PosClient, type PosStatus } from './pos-client.ts'
import { PosContext, usePos } from './pos-context.ts'
import { RegisterView } from './register-view.tsx'
import { HeadOfficeView } from './head-office-view.tsx'
import { HandoverPanel } from './crdt/handover-panel.tsx'
import {
  businessDate,
  lastSession,
  loadLimits,
  loadSession,
  type OfflineLimits,
  saveLimits,
  saveSession,
  type Session,
} from './session.ts'
import { StatusBar } from './status-bar.tsx'
import { onStoreHub, relayUrls, setStoreInternet, storeHub } from './store-hub.ts'
import { createStoreDataStore, pendingSales, type StoreData } from './store-data.ts'
import { DrawerView, InboxView, OrdersView, ReportView, SettingsView, StockView } from './views.tsx'

/** The app's own addresses; anything else is not found (see the relay note in README.md). */
const APP_PATHS: ReadonlySet<string> = new Set(['/', '/index.html'])

export function App() {
  if (!APP_PATHS.has(location.pathname)) return <NotFound path={location.pathname} />
  return <Signed />
}

function NotFound(props: { path: string }) {
  return (
    <main className="signin" data-testid="not-found">
      <section className="card signin-card">
        <h1>
          <span className="brand-mark" aria-hidden="true" /> Page not found
        </h1>
        <p>
          There is no page at <code>{props.path}</code>. The register lives at the start page.
        </p>
        <a className="button primary" href="/" data-testid="not-found-home">
          Go to the register
        </a>
      </section>
    </main>
  )
}

function Signed() {
  const [session, setSession] = useState<Session | undefined>(loadSession)
  const [signInNote, setSignInNote] = useState<string | undefined>()
  const [client, setClient] = useState<PosClient | undefined>()
  // The client backs off up to 30 s between connection attempts and does not listen for the
  // browser's `online` event; a fresh client over the same database connects at once, so the
  // register forwards its outbox as soon as the store's internet is back.
  const [generation, setGeneration] = useState(0)
  useEffect(() => {
    let wasOff = isNetworkOff()
    return onNetworkChange((off) => {
      if (wasOff && !off) setGeneration((g) => g + 1)
      wasOff = off
    })
  }, [])
  // The same when the store's internet comes back; and a page that learns it is served by a
  // store hub opens its client again with the relays [hub, head office].
  const hub = useSyncExternalStore(onStoreHub, storeHub)
  const relays = relayUrls(hub, '').join(' ')
  useEffect(() => {
    let wasCut = !storeHub().internet
    return onStoreHub(() => {
      const cut = !storeHub().internet
      if (wasCut && !cut) setGeneration((g) => g + 1)
      wasCut = cut
    })
  }, [])
  useEffect(() => {
    if (session === undefined) return undefined
    const c = openClient(session)
    clientSessions.set(c, session)
    setClient(c)
    return () => {
      void c.close()
    }
  }, [session, generation, relays])

  if (session !== undefined && (client === undefined || !clientMatches(client, session))) {
    return <main className="loading">Opening the register…</main>
  }
  if (session === undefined || client === undefined) {
    return (
      <SignIn
        note={signInNote}
        onSignIn={(s) => {
          saveSession(s)
          setSignInNote(undefined)
          setSession(s)
        }}
      />
    )
  }
  const leave = (note?: string) => {
    saveSession(undefined)
    setClient(undefined)
    setSignInNote(note)
    setSession(undefined)
  }
  return (
    <LedgerlineProvider client={client}>
      <Register
        session={session}
        client={client}
        onSignOut={() => leave()}
        onSignInAgain={() =>
          leave(
            `Head office did not accept ${registerName(session.register)}’s sign-in. Sign in again as ${registerName(session.register)}: its sales stay on this device until head office has them.`,
          )
        }
      />
    </LedgerlineProvider>
  )
}

function SignIn(props: { note: string | undefined; onSignIn: (s: Session) => void }) {
  const last = lastSession()
  const [store, setStore] = useState(last?.store ?? STORES[0]?.id ?? 's1')
  const [register, setRegister] = useState(last?.register ?? REGISTERS[0] ?? 'r1')
  const others = otherRegistersUnsent({ store, register })
  return (
    <main className="signin">
      <form
        className="card signin-card"
        onSubmit={(e) => {
          e.preventDefault()
          props.onSignIn({ store, register })
        }}
      >
        <h1>
          <span className="brand-mark" aria-hidden="true" /> Ledgerline Register
        </h1>
        <p className="muted">
          Pick the store and the register this browser is. Sales are kept on this device until head
          office has them.
        </p>
        {props.note === undefined ? null : (
          <p className="banner warn" data-testid="signin-note">
            {props.note}
          </p>
        )}
        <label>
          Store
          <select
            data-testid="signin-store"
            value={store}
            onChange={(e) => setStore(e.target.value)}
          >
            {STORES.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name} ({s.id})
              </option>
            ))}
          </select>
        </label>
        <label>
          Register
          <select
            data-testid="signin-register"
            value={register}
            onChange={(e) => setRegister(e.target.value)}
          >
            {REGISTERS.map((r) => (
              <option key={r} value={r}>
                Register {r.slice(1)}
              </option>
            ))}
            <option value="hq">Head office</option>
          </select>
        </label>
        {others.length === 0 ? null : (
          <div className="banner warn" role="alert" data-testid="signin-unsent">
            <span>
              This device still holds sales that head office does not have yet:{' '}
              {others
                .map(
                  (o) =>
                    `${STORES.find((s) => s.id === o.store)?.name ?? o.store} · ${registerName(o.register)} (${o.sales === 0 ? 'other changes' : `${o.sales} sale${o.sales === 1 ? '' : 's'}, ${formatCents(o.amount)}`})`,
                )
                .join('; ')}
              . Only that register sends them: sign in as it and let it reach head office first, or
              they stay on this device.
            </span>
          </div>
        )}
        <button className="primary" type="submit" data-testid="signin-submit">
          Open register
        </button>
      </form>
    </main>
  )
}

type Tab =
  | 'register'
  | 'orders'
  | 'stock'
  | 'inbox'
  | 'drawer'
  | 'report'
  | 'settings'
  | 'head-office'

function Register(props: {
  session: Session
  client: PosClient
  onSignOut: () => void
  onSignInAgain: () => void
}) {
  const { session, client, onSignInAgain } = props
  // Each client gets its own grace to connect (a new one is made when the network returns).
  const openedAt = useMemo(() => Date.now(), [client])
  const [date] = useState(businessDate)
  const store = useMemo(() => createStoreDataStore(client, session, date), [client, session, date])
  const fresh = useStore(store)
  // While a new client loads after a reconnect, keep showing what the last one read.
  const last = useRef<{ session: Session; data: StoreData } | undefined>(undefined)
  if (fresh !== undefined) last.current = { session, data: fresh }
  const data = fresh ?? (last.current?.session === session ? last.current.data : undefined)
  const [limits, setLimitsState] = useState<OfflineLimits>(() => loadLimits(session))
  const pos = useMemo(
    () =>
      data === undefined
        ? null
        : {
            session,
            client,
            data,
            limits,
            openedAt,
            setLimits: (l: OfflineLimits) => {
              saveLimits(session, l)
              setLimitsState(l)
            },
            signInAgain: onSignInAgain,
          },
    [session, client, data, limits, openedAt, onSignInAgain],
  )
  if (pos === null) return <main className="loading">Opening the register…</main>
  return (
    <PosContext.Provider value={pos}>
      <Shell onSignOut={props.onSignOut} />
    </PosContext.Provider>
  )
}

function Shell(props: { onSignOut: () => void }) {
  const { session, data } = usePos()
  const hq = session.register === 'hq'
  const [tab, setTab] = useState<Tab>(hq ? 'head-office' : 'register')
  const status = useStatus<PosStatus>()
  const [signOutTried, setSignOutTried] = useState(false)
  const openItems = inboxItems(data, session.store).filter((i) => i.open).length
  const storeName = STORES.find((s) => s.id === session.store)?.name ?? session.store
  const outbox = status?.outboxEntries ?? 0
  const pending = pendingSales(data)
  // Remember what this register still has to send, for the sign-in's warning.
  useEffect(() => {
    if (status === undefined) return
    rememberUnsent(session, {
      sales: pending.count,
      amount: pending.amount,
      outbox,
      at: Date.now(),
    })
  }, [session, status, outbox, pending.count, pending.amount])

  const tabs: [Tab, string][] = hq
    ? [
        ['head-office', 'Head office'],
        ['stock', 'Stock'],
        ['orders', 'Sales'],
        ['inbox', 'Inbox'],
        ['report', 'Day report'],
      ]
    : [
        ['register', 'Register'],
        ['orders', 'Sales'],
        ['stock', 'Stock'],
        ['inbox', 'Inbox'],
        ['drawer', 'Drawer'],
        ['report', 'Day report'],
        ['settings', 'Settings'],
      ]

  const signOut = () => {
    if (outbox > 0) {
      setSignOutTried(true)
      return
    }
    setSignOutTried(false)
    props.onSignOut()
  }
  // The warning lasts as long as its cause: once everything is sent, it goes.
  const blocked = signOutTried && outbox > 0

  return (
    <div className="shell">
      <header className="topbar">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <div>
            <strong>{storeName}</strong>
            <span className="muted" data-testid="who">
              {hq ? 'Head office' : `Register ${session.register.slice(1)}`} · {session.store}
            </span>
          </div>
        </div>
        <nav className="tabs" aria-label="Screens">
          {tabs.map(([id, label]) => (
            <button
              key={id}
              className={tab === id ? 'tab active' : 'tab'}
              data-testid={`tab-${id}`}
              onClick={() => setTab(id)}
            >
              {label}
              {id === 'inbox' && openItems > 0 ? (
                <span className="badge" data-testid="inbox-badge">
                  {openItems}
                </span>
              ) : null}
            </button>
          ))}
        </nav>
        <div className="topbar-actions">
          <StoreInternetToggle />
          <SimulateOfflineToggle />
          <button className="ghost" data-testid="sign-out" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <StatusBar />
      {blocked ? (
        <div className="banner error" role="alert" data-testid="sign-out-blocked">
          <span>
            {pending.count > 0
              ? `${pending.count} sale${pending.count === 1 ? ' is' : 's are'} (${formatCents(pending.amount)})`
              : 'Some changes (counts, shifts, notes) are'}{' '}
            not yet at head office. Signing out now would leave them on this device; wait until they
            are sent, then sign out.
          </span>
          <button className="ghost" onClick={() => setSignOutTried(false)}>
            Dismiss
          </button>
        </div>
      ) : null}
      <main className="screen">
        {hq ? null : (
          // Kept mounted while other screens show, so a cart survives a look at the Drawer.
          <div hidden={tab !== 'register'}>
            <RegisterView />
          </div>
        )}
        {tab === 'orders' ? <OrdersView /> : null}
        {tab === 'stock' ? <StockView /> : null}
        {tab === 'inbox' ? <InboxView /> : null}
        {tab === 'drawer' ? (
          <div className="stack">
            <DrawerView />
            <HandoverPanel />
          </div>
        ) : null}
        {tab === 'report' ? <ReportView /> : null}
        {tab === 'settings' ? <SettingsView /> : null}
        {tab === 'head-office' ? <HeadOfficeView /> : null}
      </main>
    </div>
  )
}

function SimulateOfflineToggle() {
  const [off, setOff] = useState(isSimulatedOffline)
  useEffect(() => onNetworkChange(() => setOff(isSimulatedOffline())), [])
  return (
    <label
      className="toggle"
      title="Cut this register's connection to head office, as when the store's internet is down"
    >
      <input
        type="checkbox"
        data-testid="simulate-offline"
        checked={off}
        onChange={(e) => setSimulatedOffline(e.target.checked)}
      />
      Simulate offline
    </label>
  )
}

/**
 * Only on a page served by a store hub: cuts and restores the store's internet (the hub's link
 * to head office, and this store's registers' direct way to it).
 */
function StoreInternetToggle() {
  const hub = useSyncExternalStore(onStoreHub, storeHub)
  const [failed, setFailed] = useState(false)
  if (!hub.isHub) return null
  return (
    <label
      className={`toggle${failed ? ' warn' : ''}`}
      title={
        failed
          ? 'The store hub did not answer: the switch is on the hub'
          : 'The store hub’s link to head office: off, the store works as one, cut off'
      }
    >
      <input
        type="checkbox"
        data-testid="store-internet"
        data-internet={hub.internet ? 'on' : 'off'}
        checked={hub.internet}
        onChange={(e) => {
          void setStoreInternet(e.target.checked).then((ok) => setFailed(!ok))
        }}
      />
      Store internet: {hub.internet ? 'on' : 'off'}
    </label>
  )
}

const clientSessions = new WeakMap<PosClient, Session>()

function clientMatches(client: PosClient, session: Session): boolean {
  return clientSessions.get(client) === session
}
