"""Runtime boundary and identity contract: genesis validation, sender/signer checks, dispatch,
strict arguments, identity operations with their uniqueness rules, key resolution, determinism,
block overlays, and the import purity of the contracts package."""

from __future__ import annotations

import ast
import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest

from ibledger.contracts import (
    OPERATIONS,
    Call,
    GenesisError,
    TxContext,
    execute,
    genesis_writes,
    key_fingerprint,
    resolve_key,
)
from ibledger.contracts.codec import canonical_decode
from ibledger.contracts.testing import (
    MemoryState,
    TestLedger,
    demo_genesis,
    demo_public_key,
    fabricate_lei,
    fabricate_uscc,
)

SMALL_ORDER_KEY = "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"


def new_key(seed: int) -> dict[str, str]:
    return {"suite": "ed25519-sha256", "public_key": demo_public_key(seed).hex()}


def test_genesis_writes_are_sorted_canonical_and_deterministic() -> None:
    first = genesis_writes(demo_genesis())
    second = genesis_writes(demo_genesis())
    assert first == second
    assert [k for k, _ in first] == sorted(k for k, _ in first)
    for _, value in first:
        canonical_decode(value)
    keys = {k for k, _ in first}
    assert b"id/p/BANK_A" in keys and b"id/lei/5493002ERZU2K9PZDL40" in keys
    assert b"cfg/calendar" in keys and b"cfg/params" in keys


def _broken(mutate: Any) -> dict[str, Any]:
    genesis = copy.deepcopy(demo_genesis())
    mutate(genesis)
    return genesis


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda g: g.update(participants=[]), "non-empty list"),
        (lambda g: g.update(participants=g["participants"][1:]), "consortium_admin"),
        (lambda g: g["participants"].append(dict(g["participants"][0])), "DUPLICATE_PARTICIPANT"),
        (lambda g: g["participants"][8].update(lei="5493002ERZU2K9PZDL40"), "DUPLICATE_LEI"),
        (lambda g: g["participants"][8].update(uscc="914403001922038216"), "DUPLICATE_USCC"),
        (
            lambda g: g["participants"][8].update(keys=g["participants"][7]["keys"]),
            "KEY_ALREADY_REGISTERED",
        ),
        (lambda g: g["participants"][4].update(lei="5493002ERZU2K9PZDL41"), "LEI_INVALID"),
        (lambda g: g["participants"][7].update(uscc="911000001000044477"), "USCC_INVALID"),
        (lambda g: g["participants"][4].update(bic="ICBKZZBJ"), "BIC_INVALID"),
        (lambda g: g["participants"][4].update(cnaps="1021"), "CNAPS_INVALID"),
        (lambda g: g["participants"][7].pop("uscc"), "enterprise"),
        (lambda g: g["participants"][4].pop("lei"), "bank"),
        (lambda g: g["participants"][0].update(roles=["king"]), "ROLE_INVALID"),
        (lambda g: g["participants"][0].update(roles=["bank", "bank"]), "ROLE_INVALID"),
        (lambda g: g["participants"][0].update(colour="red"), "colour"),
        (lambda g: g["participants"][0].update(id="A/B"), "participants[0].id"),
        (lambda g: g["participants"][0].update(keys=[]), "keys"),
        (
            lambda g: g["participants"][0].update(keys=[{"suite": "rsa", "public_key": "00" * 32}]),
            "suite",
        ),
        (
            lambda g: g["participants"][0].update(
                keys=[{"suite": "ed25519-sha256", "public_key": "00" * 31}]
            ),
            "32 bytes",
        ),
        (
            lambda g: g["participants"][0].update(
                keys=[{"suite": "ed25519-sha256", "public_key": SMALL_ORDER_KEY}]
            ),
            "small order",
        ),
        (
            lambda g: g["participants"][0].update(
                keys=[{"suite": "ed25519-sha256", "public_key": "ZZ" * 32}]
            ),
            "hexadecimal",
        ),
        (lambda g: g.update(calendar={"holidays": ["2024-13-01"]}), "calendar.holidays"),
        (lambda g: g.update(parameters={"presentment_window_days": "10"}), "parameters"),
    ],
)
def test_genesis_rejects_with_a_precise_message(mutate: Any, fragment: str) -> None:
    with pytest.raises(GenesisError) as raised:
        genesis_writes(_broken(mutate))
    assert fragment in str(raised.value)


def test_key_fingerprint_and_resolve_key() -> None:
    state = MemoryState(genesis_writes(demo_genesis()))
    public_key = demo_public_key(4)
    key_id = key_fingerprint(public_key)
    assert key_id == hashlib.sha256(public_key).digest()[:16]
    record = resolve_key(state, key_id)
    assert record is not None
    assert (record.participant_id, record.suite, record.public_key, record.active) == (
        "BANK_A",
        "ed25519-sha256",
        public_key,
        True,
    )
    assert resolve_key(state, b"\x00" * 16) is None


def _ctx(sender: str, key_id: bytes) -> TxContext:
    return TxContext("test-chain", 1, 1_709_258_400_000, 0, b"\x01" * 32, sender, key_id)


def test_sender_checks() -> None:
    state = MemoryState(genesis_writes(demo_genesis()))
    call = Call("identity.update_details", {"participant": "ENT_A", "name": "x"})
    bank_key = key_fingerprint(demo_public_key(4))
    admin_key = key_fingerprint(demo_public_key(0))
    assert execute(state, call, _ctx("NOBODY", bank_key)).code == "UNKNOWN_SENDER"
    assert execute(state, call, _ctx("a/b", bank_key)).code == "UNKNOWN_SENDER"
    assert execute(state, call, _ctx("ADMIN", bank_key)).code == "SIGNER_NOT_SENDER"
    assert execute(state, call, _ctx("ADMIN", b"\x07" * 16)).code == "SIGNER_NOT_SENDER"
    outcome = execute(state, Call("no.such", {}), _ctx("ADMIN", admin_key))
    assert outcome.code == "UNKNOWN_OPERATION" and outcome.writes == ()
    assert execute(state, call, _ctx("ADMIN", admin_key)).code == "OK"


def test_bad_arguments_name_the_field(world: Any) -> None:
    out = world.fails(
        "BAD_ARGUMENT",
        "ADMIN",
        "identity.update_details",
        participant="ENT_A",
        name="x",
        nickname="y",
    )
    assert "'nickname'" in out.message
    out = world.fails("BAD_ARGUMENT", "ADMIN", "identity.deactivate", participant=7)
    assert "'participant'" in out.message
    number = "510210009999620240301000000990"
    out = world.fails("BAD_ARGUMENT", "ENT_A", "bill.issue", package_no=number)
    assert "'kind'" in out.message


@pytest.mark.parametrize(
    ("operation", "args", "code"),
    [
        ("asset.register", {"isin": "US03783310051"}, "ISIN_INVALID"),  # 13 characters
        ("asset.register", {"isin": "us0378331005"}, "ISIN_INVALID"),  # charset
        ("asset.register", {"isin": "US0378331006"}, "ISIN_INVALID"),  # check digit
        ("asset.transfer", {"isin": 378331005}, "ISIN_INVALID"),  # not even text
        ("asset.transfer", {"isin": "X" * 300}, "ISIN_INVALID"),  # past any text limit
        ("bill.issue", {"package_no": "1"}, "BILL_NO_INVALID"),
        ("bill.endorse", {"package_no": "5" * 31}, "BILL_NO_INVALID"),
    ],
)
def test_identifier_arguments_get_their_identifiers_code(
    world: Any, operation: str, args: dict[str, Any], code: str
) -> None:
    out = world.fails(code, "REGISTRAR", operation, **args)
    assert len(out.message) < 200  # a long input is named by its start only


def registration(pid: str, seed: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "name": f"Firm {pid}",
        "roles": ["enterprise"],
        "uscc": fabricate_uscc(100 + seed),
        "keys": [new_key(100 + seed)],
        **extra,
    }


def test_register_participant_and_uniqueness(world: Any) -> None:
    out = world.ok("ADMIN", "identity.register", **registration("ENT_X", 1))
    assert [e.kind for e in out.events] == ["identity.registered"]
    assert world.ledger.query("participant", {"id": "ENT_X"})["roles"] == ["enterprise"]
    world.fails("FORBIDDEN", "BANK_A", "identity.register", **registration("ENT_Y", 2))
    world.fails("DUPLICATE_PARTICIPANT", "ADMIN", "identity.register", **registration("ENT_X", 3))
    world.fails(
        "DUPLICATE_USCC",
        "ADMIN",
        "identity.register",
        **registration("ENT_Y", 4, uscc=fabricate_uscc(101)),
    )
    world.fails(
        "DUPLICATE_LEI",
        "ADMIN",
        "identity.register",
        **registration("ENT_Y", 5, lei="5493002ERZU2K9PZDL40"),
    )
    world.fails(
        "KEY_ALREADY_REGISTERED",
        "ADMIN",
        "identity.register",
        **registration("ENT_Y", 6, keys=[new_key(101)]),
    )
    world.fails(
        "KEY_INVALID",
        "ADMIN",
        "identity.register",
        **registration(
            "ENT_Y",
            7,
            keys=[{"suite": "ed25519-sha256", "public_key": bytes.fromhex(SMALL_ORDER_KEY)}],
        ),
    )
    world.fails(
        "LEI_INVALID",
        "ADMIN",
        "identity.register",
        **registration("ENT_Y", 8, lei="5493002ERZU2K9PZDL00"),
    )
    world.fails(
        "ROLE_INVALID", "ADMIN", "identity.register", **registration("ENT_Y", 9, roles=["bank"])
    )  # a bank needs an LEI
    world.ok(
        "ADMIN",
        "identity.register",
        **registration("BANK_Y", 10, roles=["bank"], lei=fabricate_lei(77)),
    )
    # One admin may not mint another admin: that would let it outvote the others.
    admin_x = registration("ADMIN_X", 11, roles=["consortium_admin"])
    del admin_x["uscc"]
    out = world.fails("GOVERNANCE_REQUIRED", "ADMIN", "identity.register", **admin_x)
    assert "consortium_admin" in out.message
    out = world.propose("ADMIN", "identity.register", **admin_x)
    assert out.code == "OK" and "identity.registered" in [e.kind for e in out.events]


def test_keys_add_revoke_and_signing(world: Any) -> None:
    ledger: TestLedger = world.ledger
    public_key = demo_public_key(200)
    world.ok("ENT_A", "identity.add_key", suite="ed25519-sha256", public_key=public_key)
    world.fails(
        "KEY_ALREADY_REGISTERED",
        "ENT_B",
        "identity.add_key",
        suite="ed25519-sha256",
        public_key=public_key,
    )
    world.fails(
        "FORBIDDEN",
        "ENT_B",
        "identity.add_key",
        participant="ENT_A",
        suite="ed25519-sha256",
        public_key=demo_public_key(201),
    )
    new_id = key_fingerprint(public_key)
    call = ("identity.update_details", {"participant": "ENT_A", "name": "x"})
    # the new key signs for ENT_A
    assert (
        ledger.submit(
            "ENT_A", "identity.revoke_key", {"key_id": ledger.keys["ENT_A"].hex()}, key_id=new_id
        ).code
        == "OK"
    )
    assert ledger.submit("ENT_A", *call).code == "SIGNER_NOT_SENDER"  # old key revoked
    # An admin acting on another participant's keys is sent to governance ...
    out = world.fails(
        "GOVERNANCE_REQUIRED",
        "ADMIN",
        "identity.revoke_key",
        participant="ENT_A",
        key_id=new_id.hex(),
    )
    assert "governance.propose" in out.message
    world.fails(
        "GOVERNANCE_REQUIRED",
        "ADMIN",
        "identity.add_key",
        participant="ENT_A",
        suite="ed25519-sha256",
        public_key=demo_public_key(202),
    )
    # ... where the same key rules apply.
    for code, participant, key_id in (
        ("KEY_ALREADY_REVOKED", "ENT_A", ledger.keys["ENT_A"].hex()),
        ("KEY_LAST_ACTIVE", "ENT_A", new_id.hex()),
        ("KEY_NOT_FOUND", "ENT_B", new_id.hex()),
    ):
        world.fails(
            code,
            "ADMIN",
            "governance.propose",
            action="identity.revoke_key",
            args={"participant": participant, "key_id": key_id},
            expires_at_ms=ledger.timestamp_ms + 86_400_000,
        )
    record = resolve_key(ledger.state, ledger.keys["ENT_A"])
    assert record is not None and not record.active


def _refused_proposal(world: Any, code: str, action: str, **args: Any) -> None:
    world.fails(
        code,
        "ADMIN",
        "governance.propose",
        action=action,
        args=args,
        expires_at_ms=world.ledger.timestamp_ms + 86_400_000,
    )


def _executed(world: Any, action: str, **args: Any) -> None:
    out = world.propose("ADMIN", action, **args)
    assert out.code == "OK", (out.code, out.message)
    assert "governance.executed" in [e.kind for e in out.events]


def test_roles_deactivate_and_last_admin(world: Any) -> None:
    for operation, args in (
        ("identity.update_roles", {"participant": "ENT_D", "roles": ["enterprise"]}),
        ("identity.deactivate", {"participant": "ENT_D"}),
        ("identity.reactivate", {"participant": "ENT_D"}),
        ("identity.deactivate", {"participant": "ADMIN"}),
    ):
        world.fails("GOVERNANCE_REQUIRED", "ADMIN", operation, **args)
        world.fails("FORBIDDEN", "BANK_A", operation, **args)
    _refused_proposal(
        world, "LAST_ADMIN", "identity.update_roles", participant="ADMIN", roles=["regulator"]
    )
    _refused_proposal(world, "LAST_ADMIN", "identity.deactivate", participant="ADMIN")
    _executed(
        world,
        "identity.update_roles",
        participant="REGULATOR",
        roles=["regulator", "consortium_admin"],
    )
    _executed(world, "identity.deactivate", participant="ENT_D")
    _refused_proposal(world, "PARTICIPANT_INACTIVE", "identity.deactivate", participant="ENT_D")
    world.fails(
        "SENDER_INACTIVE",
        "ENT_D",
        "identity.add_key",
        suite="ed25519-sha256",
        public_key=demo_public_key(300),
    )
    _refused_proposal(world, "UNKNOWN_PARTICIPANT", "identity.deactivate", participant="GHOST")
    _refused_proposal(
        world,
        "ROLE_INVALID",
        "identity.update_roles",
        participant="REGULATOR",
        roles=["enterprise"],
    )  # no USCC on record
    _executed(world, "identity.reactivate", participant="ENT_D")
    _refused_proposal(world, "PARTICIPANT_ACTIVE", "identity.reactivate", participant="ENT_D")
    world.ok(
        "ADMIN",
        "identity.update_details",
        participant="BANK_A",
        lei_status="LAPSED",
        bic="ICBKCNBJXXX",
    )
    world.fails(
        "BIC_INVALID", "ADMIN", "identity.update_details", participant="BANK_A", bic="ICBKCNB"
    )


def test_same_calls_give_byte_identical_outcomes() -> None:
    ledgers = [TestLedger(demo_genesis()), TestLedger(demo_genesis())]
    outcomes = []
    for ledger in ledgers:
        outcomes.append(ledger.submit("ADMIN", "identity.register", registration("ENT_Z", 1)))
        outcomes.append(ledger.submit("ENT_Z", "identity.add_key", new_key(400)))
    assert outcomes[:2] == outcomes[2:]
    assert ledgers[0].state.items() == ledgers[1].state.items()


def test_block_overlay_makes_earlier_writes_visible() -> None:
    ledger = TestLedger(demo_genesis())
    outcomes = ledger.block(
        [
            ("ADMIN", "identity.register", registration("ENT_Z", 1)),
            ("ENT_Z", "identity.add_key", new_key(401)),  # ENT_Z exists only in the overlay
            ("ADMIN", "identity.register", registration("ENT_Z", 2)),
        ]
    )
    assert [o.code for o in outcomes] == ["OK", "OK", "DUPLICATE_PARTICIPANT"]
    assert resolve_key(ledger.state, key_fingerprint(demo_public_key(401))) is not None


def test_outcome_writes_are_sorted(world: Any) -> None:
    out = world.ok("ADMIN", "identity.register", **registration("ENT_Q", 1))
    keys = [k for k, _ in out.writes]
    assert keys == sorted(keys) and len(keys) == len(set(keys))


def test_every_operation_is_namespaced() -> None:
    assert all(
        name.split(".")[0] in {"identity", "governance", "asset", "bill"} for name in OPERATIONS
    )


FORBIDDEN_MODULES = {
    "grpc",
    "plyvel",
    "asyncio",
    "time",
    "random",
    "os",
    "socket",
    "threading",
    "uuid",
    "secrets",
    "subprocess",
    "ibledger",
}


def test_contracts_import_nothing_impure() -> None:
    package = Path(__file__).resolve().parents[2] / "contracts"
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level else [node.module or ""]
            else:
                if isinstance(node, ast.Attribute) and node.attr in ("now", "today"):
                    assert not (
                        isinstance(node.value, ast.Name) and node.value.id in ("datetime", "date")
                    ), path
                if isinstance(node, ast.Name) and path.name != "codec.py":  # codec rejects floats
                    assert node.id != "float", f"{path.name}: float"
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name}: {name}"


def _sm2_key(seed: int) -> dict[str, str]:
    from ibledger.node.crypto import SM2_SM3, get_suite

    secret = hashlib.sha256(seed.to_bytes(4, "big")).digest()
    return {"suite": SM2_SM3, "public_key": get_suite(SM2_SM3).public_key_from_seed(secret).hex()}


@pytest.mark.parametrize("chain_suite", ["ed25519-sha256", "sm2-sm3"])
def test_keys_of_another_suite_than_the_chains_are_refused_by_name(chain_suite: str) -> None:
    genesis = demo_genesis()
    genesis["crypto_suite"] = chain_suite
    ledger = TestLedger(genesis)
    own, foreign, other = (new_key(300), _sm2_key(300), new_key(301))
    if chain_suite == "sm2-sm3":
        own, foreign, other = foreign, own, _sm2_key(301)
    out = ledger.submit("ENT_A", "identity.add_key", foreign)
    assert out.code == "SUITE_MISMATCH" and out.writes == ()
    assert f"this chain's genesis names {chain_suite}" in out.message
    out = ledger.submit("ADMIN", "identity.register", registration("ENT_Q", 30, keys=[foreign]))
    assert out.code == "SUITE_MISMATCH" and "keys[0].suite" in out.message
    assert ledger.submit("ENT_A", "identity.add_key", own).code == "OK"
    assert (
        ledger.submit("ADMIN", "identity.register", registration("ENT_Q", 31, keys=[other])).code
        == "OK"
    )
