/**
 * The app shell: sign-in, then a register (or head office) with its status bar and screens.
 * The client lives as long as the session; signing out or switching register is refused while
 * the outbox holds entries, because clearing this browser profile would lose those sales.
 */
import { LedgerlineProvider, useStatus, useStore } from '@ledgerline/react'
import { useEffect, useMemo, useRef, useState } from 'react'
import { REGISTERS, STORES } from './catalog.ts'
import { inboxItems } from './inbox.ts'
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
import { createStoreDataStore, type StoreData } from './store-data.ts'
import { DrawerView, InboxView, OrdersView, ReportView, SettingsView, StockView } from './views.tsx'

export function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession)
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
  useEffect(() => {
    if (session === undefined) return undefined
    const c = openClient(session)
    clientSessions.set(c, session)
    setClient(c)
    return () => {
      void c.close()
    }
  }, [session, generation])

  if (session !== undefined && (client === undefined || !clientMatches(client, session))) {
    return <main className="loading">Opening the register…</main>
  }
  if (session === undefined || client === undefined) {
    return (
      <SignIn
        onSignIn={(s) => {
          saveSession(s)
          setSession(s)
        }}
      />
    )
  }
  return (
    <LedgerlineProvider client={client}>
      <Register
        session={session}
        client={client}
        onSignOut={() => {
          saveSession(undefined)
          setClient(undefined)
          setSession(undefined)
        }}
      />
    </LedgerlineProvider>
  )
}

function SignIn(props: { onSignIn: (s: Session) => void }) {
  const last = lastSession()
  const [store, setStore] = useState(last?.store ?? STORES[0]?.id ?? 's1')
  const [register, setRegister] = useState(last?.register ?? REGISTERS[0] ?? 'r1')
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

function Register(props: { session: Session; client: PosClient; onSignOut: () => void }) {
  const { session, client } = props
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
            setLimits: (l: OfflineLimits) => {
              saveLimits(session, l)
              setLimitsState(l)
            },
          },
    [session, client, data, limits],
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
  const [blocked, setBlocked] = useState<string | undefined>()
  const openItems = inboxItems(data, session.store).filter((i) => i.open).length
  const storeName = STORES.find((s) => s.id === session.store)?.name ?? session.store

  const tabs: [Tab, string][] = hq
    ? [
        ['head-office', 'Head office'],
        ['stock', 'Stock'],
        ['orders', 'Orders'],
        ['inbox', 'Inbox'],
        ['report', 'Day report'],
      ]
    : [
        ['register', 'Register'],
        ['orders', 'Orders'],
        ['stock', 'Stock'],
        ['inbox', 'Inbox'],
        ['drawer', 'Drawer'],
        ['report', 'Day report'],
        ['settings', 'Settings'],
      ]

  const signOut = () => {
    const outbox = status?.outboxEntries ?? 0
    if (outbox > 0) {
      setBlocked(
        `${outbox} entr${outbox === 1 ? 'y is' : 'ies are'} not yet at head office. Signing out or switching register now could lose these sales; reconnect and wait until the outbox is empty.`,
      )
      return
    }
    setBlocked(undefined)
    props.onSignOut()
  }

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
          <SimulateOfflineToggle />
          <button className="ghost" data-testid="sign-out" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <StatusBar />
      {blocked === undefined ? null : (
        <div className="banner error" role="alert" data-testid="sign-out-blocked">
          {blocked}
          <button className="ghost" onClick={() => setBlocked(undefined)}>
            Dismiss
          </button>
        </div>
      )}
      <main className="screen">
        {tab === 'register' ? <RegisterView /> : null}
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

const clientSessions = new WeakMap<PosClient, Session>()

function clientMatches(client: PosClient, session: Session): boolean {
  return clientSessions.get(client) === session
}
