"""Network faults between validators on separate hosts (one network namespace each), made with
nftables on the hosts' links: a disconnected backup (N1), an isolated primary (N2), a 2-2 split
(N3), hosts cut and healed one by one (N4), a primary that sends but hears nothing (N5) and
random packet loss on every link (N6). Real node processes, a ``network init --hosts`` network
started from its bundles; what a node did is read from its metrics (height, view) and its
public API (``ibledger status``), what a client saw from its receipts.

Every wait is for an event, with a deadline that only bounds a hang: nothing here asserts how
much happens in a given time."""

from __future__ import annotations

import random
import time

import pytest

from .conftest import HostsNetwork
from .hosts import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.netns]

EVENT_TIMEOUT_S = 90


def test_n1_a_disconnected_backup_is_caught_up_after_healing(network: HostsNetwork) -> None:
    start = network.wait_converged()
    primary = network.primary()
    backups = [node for node in network.node_ids if node != primary]
    cut_off, submit_to = backups[-1], backups[0]
    network.lab.isolate(network.host(cut_off))
    stuck_at = network.height(cut_off)

    # The other three keep committing.
    first = network.commit("Registrar N1 first", via=submit_to)
    second = network.commit("Registrar N1 second", via=primary)
    assert start < first < second
    assert network.height(cut_off) == stuck_at, "a node cut off from every peer committed"

    network.lab.heal(network.host(cut_off))
    network.wait_converged(at_least=second)  # same height and block hash on all four


def test_n2_an_isolated_primary_is_replaced_and_rejoins(network: HostsNetwork) -> None:
    network.wait_converged()
    old_primary = network.primary()
    old_view = network.view(old_primary)
    backups = [node for node in network.node_ids if node != old_primary]
    network.lab.isolate(network.host(old_primary))
    stuck_at = network.height(old_primary)
    # A client on the primary's own host still reaches it: it holds work it cannot commit alone.
    pending = network.submit("Registrar N2 on the isolated primary", via=old_primary,
                             from_host=True)  # fmt: skip

    # The backups elect a new primary (a view change) and keep committing.
    committed = network.commit("Registrar N2 under a new primary", via=backups[0])
    assert all(network.view(node) > old_view for node in backups)
    statuses = [network.status(node) for node in backups]
    assert {s["primary_node_id"] for s in statuses} != {old_primary}
    assert len({s["primary_node_id"] for s in statuses}) == 1, statuses
    assert network.height(old_primary) == stuck_at, "the isolated primary committed"

    network.lab.heal(network.host(old_primary))
    # It rejoins: what it held commits, and all four converge on one chain.
    assert network.wait_committed(pending, via=old_primary) > stuck_at
    network.wait_converged(at_least=committed)
    wait_for("the old primary to enter the new view",
             lambda: network.view(old_primary) > old_view, EVENT_TIMEOUT_S)  # fmt: skip


def test_n3_a_two_two_split_commits_nothing_until_healed(network: HostsNetwork) -> None:
    split_at = network.wait_converged()
    primary = network.primary()
    ids = network.node_ids
    halves = (ids[:2], ids[2:])
    views = {node: network.view(node) for node in ids}
    for mine, other in (halves, halves[::-1]):
        for node in mine:
            network.lab.cut(network.host(node), [network.host(peer) for peer in other])
    # Work on each side, given to a backup (which forwards it, then suspects the primary).
    pending = []
    for half in halves:
        backup = next(node for node in half if node != primary)
        pending.append((backup, network.submit(f"Registrar N3 split {backup}", via=backup)))

    # Wait until each side has tried and failed: a backup on it started a view change because
    # its request did not commit. Only then is "nothing committed" worth checking.
    def both_sides_suspected_the_primary() -> bool:
        return all(any(network.view(node) > views[node] for node in half) for half in halves)

    wait_for("a view change attempt on each side", both_sides_suspected_the_primary,
             EVENT_TIMEOUT_S)  # fmt: skip
    heights = network.heights()
    assert heights == dict.fromkeys(ids, split_at), f"a side of the split committed: {heights}"

    network.lab.heal_all()
    after = network.commit("Registrar N3 after healing", via=ids[0])
    for node, tx_id in pending:
        assert network.wait_committed(tx_id, via=node) > split_at
    network.wait_converged(at_least=after)


def test_n4_swizzle_clog_cuts_hosts_one_by_one_and_heals_them_in_random_order(
    network: HostsNetwork,
) -> None:
    """N4 (FoundationDB's swizzle-clog): each round picks two hosts at random, cuts them off one
    after the other a second apart, then heals them in random order a second apart, with work
    submitted to a node left connected. The pacing is the fault's shape, not a measurement:
    afterwards everything submitted commits and all four converge on one chain."""
    rng = random.Random(1744)
    network.wait_converged()
    pending: list[tuple[str, str]] = []
    for round_number in range(3):
        chosen = rng.sample(network.node_ids, 2)
        connected = [node for node in network.node_ids if node not in chosen]
        for node in chosen:
            network.lab.isolate(network.host(node))
            time.sleep(1)
        via = rng.choice(connected)
        pending.append((via, network.submit(f"Registrar N4 round {round_number}", via=via)))
        for node in rng.sample(chosen, len(chosen)):
            network.lab.heal(network.host(node))
            time.sleep(1)
    after = network.commit("Registrar N4 after the rounds", via=rng.choice(network.node_ids))
    for via, tx_id in pending:
        network.wait_committed(tx_id, via=via)
    network.wait_converged(at_least=after)


def test_n5_a_deaf_primary_costs_one_view_change_not_a_storm(network: HostsNetwork) -> None:
    """N5: the primary's host sends but receives nothing. The others must replace it and go on
    committing without a view-change storm: at most 3 views entered while it stays deaf."""
    network.wait_converged()
    deaf = network.primary()
    others = [node for node in network.node_ids if node != deaf]
    views = {node: network.view(node) for node in others}
    network.lab.deafen(network.host(deaf))
    committed = [network.commit(f"Registrar N5 {i}", via=others[i % len(others)]) for i in range(6)]
    assert committed == sorted(committed)
    entered = {node: network.view(node) - views[node] for node in others}
    assert all(1 <= n <= 3 for n in entered.values()), f"views entered while deaf: {entered}"
    statuses = [network.status(node) for node in others]
    assert len({s["primary_node_id"] for s in statuses} - {deaf}) == 1, statuses

    network.lab.heal(network.host(deaf))
    network.wait_converged(at_least=committed[-1])


def test_n6_transactions_commit_under_random_loss_on_every_link(network: HostsNetwork) -> None:
    start = network.wait_converged()
    for host in network.lab.hosts:
        network.lab.lose(host, 20)  # 20 % of what each host sends, so of each link's packets
    committed = network.commit("Registrar N6 under loss", via=network.node_ids[1])
    assert committed > start
    network.lab.heal_all()
    network.wait_converged(at_least=committed)
