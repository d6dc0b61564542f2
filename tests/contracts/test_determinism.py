"""Replica determinism across processes: the same scenario run under different hash seeds (so
set and dict-of-set iteration orders differ) yields byte-identical outcomes and state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCENARIO = textwrap.dedent(
    """
    import hashlib
    from ibledger.contracts.codec import canonical_encode
    from ibledger.contracts.testing import TestLedger, demo_genesis

    ledger = TestLedger(demo_genesis())
    digest = hashlib.sha256()
    request_ids = []

    def run(sender, operation, **args):
        outcome = ledger.submit(sender, operation, args)
        digest.update(canonical_encode([outcome.code, outcome.message,
                                        [list(w) for w in outcome.writes],
                                        [[e.kind, dict(e.attrs)] for e in outcome.events]]))
        for event in outcome.events:
            if event.kind == "bill.requested":
                request_ids.append(event.attrs["request_id"])
        return outcome

    p = "5102100099996202403010000000" + "10"
    run("ENT_A", "bill.issue", package_no=p, kind="BANK", amount="1200000.00", currency="CNY",
        maturity_date="2024-08-30", acceptor="BANK_A", payee="ENT_B", splittable=True)
    for sender, operation, signer, args in [
        ("ENT_A", "bill.request_acceptance", "BANK_A", {}),
        ("ENT_A", "bill.request_receipt", "ENT_B", {}),
        ("BANK_A", "bill.guarantee", "BANK_C", {"guarantor": "BANK_C", "capacity": "ACCEPTOR"}),
        ("ENT_B", "bill.endorse", "ENT_C", {"range": "1-120000000", "amount_fen": 7,
                                            "endorsee": "ENT_C", "non_transferable": True}),
    ]:
        run(sender, operation, package_no=p, **args)
        run(signer, "bill.sign", request_id=request_ids[-1])
    ledger.set_date("2024-08-30")
    run("ENT_C", "bill.present", package_no=p, range="1-7")
    run("BANK_A", "bill.reject", request_id=request_ids[-1], reason="no funds")
    run("ENT_C", "bill.recourse", package_no=p, range="1-7", recoursee="GHOST")
    run("ENT_C", "bill.recourse", package_no=p, range="1-7", recoursee="ENT_D")
    run("ENT_C", "bill.endorse", package_no=p, range="1-7", endorsee="ENT_D", flavour="x")
    run("ADMIN", "governance.propose", action="identity.update_roles",
        args={"participant": "ENT_A", "roles": ["regulator", "enterprise", "bank"]},
        expires_at_ms=ledger.timestamp_ms + 86_400_000)
    for _, value in ledger.state.items():
        digest.update(value)
    print(digest.hexdigest())
    """
)


def test_outcomes_do_not_depend_on_hash_seed() -> None:
    digests = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", SCENARIO],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1
