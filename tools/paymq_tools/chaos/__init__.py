"""The fault-injection suite: real worker processes against a private RabbitMQ node (or a
cluster of three), the sandbox provider with its effects ledger, and a checker that accounts
for every payment.

    scenario.py      what a scenario can say: workers, settings, provider faults, disturbances
    scenarios.py     the scenarios themselves, in suite order (data)
    workload.py      the payments of a run, with their expected outcomes and sandbox faults
    node.py          PrivateBroker: a RabbitMQ node of the suite's own, restartable
    nodectl.py       the RabbitMQ CLI against a node: forced closes, alarms, settings, depths
    cluster.py       PrivateCluster: three such nodes joined, killable, partitionable
    broker.py        Broker: what the runner takes, one node or a cluster
    queueview.py     a cluster's queues (leader, members online) and clients per node
    crew.py          worker processes, replaced when they die
    disturbances.py  kills, broker restarts, forced connection closes, alarms, on a schedule
    linkfaults.py    flapping and partitioned links between the workers and the broker or store
    storefaults.py   a database stopped as if killed, a SQLite write lock held by another process
    clusterfaults.py a node killed, a rolling restart, a node cut off, leaders moved
    recovery.py      the longest time without a result while a cluster fault lasted
    linkproxy.py     LinkProxy: a TCP fault proxy (pass, blackhole, reset-all, reset after N bytes)
    postgres.py      PrivatePostgres: a PostgreSQL server of the suite's own, stoppable
    wiring.py        where the store lives, and which links the workers go through
    sqlitelock.py    the other process that holds a SQLite store's write lock
    evidence.py      what the worker logs and the store show the faults did
    services.py      the sandbox, the payment store's schema, the reconciler
    publishing.py    paced publishing with confirms
    queues.py        what is left in the queues; dead letters and their reasons
    observations.py  what a run observed: published, result events, effects, dead letters
    checker.py       pure accounting: lost, duplicated effects, conflicting, stuck...
    runner.py        one scenario end to end; suite.py all of them; cli.py `paymq chaos run`
    runsettings.py   the settings of a run's processes: short retry tiers, its own topology
    stocktaking.py   a run's end: waiting until it settles, then what the checker is given
    runfigures.py    a run's figures, and the progress line's tally
"""
