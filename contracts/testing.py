"""In-memory state, a block overlay and a small ledger harness for tests and simulations.

Theory of operation
-------------------
``MemoryState`` is a sorted in-memory key/value store implementing ``StateView``.
``BlockOverlay`` is what the real ledger does within a block: writes of earlier transactions are
visible to later ones, and the block's net write set is applied to the base at the end.
``TestLedger`` strings these together with a genesis document, an agreed clock that tests move
explicitly, and deterministic transaction ids, so a test reads like a sequence of signed calls.

Nothing here is used by the contracts themselves; the production ledger provides its own view.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import ed25519
from .args import day_to_iso, parse_iso_date
from .codec import canonical_encode
from .core import MS_PER_DAY, SHANGHAI_OFFSET_MS, Call, Outcome, TxContext
from .identifiers import lei_check_digits, uscc_check_char
from .identity import key_fingerprint
from .overlay import BlockOverlay
from .runtime import execute, genesis_writes, query

__all__ = [
    "DEMO_CALENDAR",
    "SETTLEMENT_AGENT_ID",
    "BlockOverlay",
    "LedgerSnapshot",
    "MemoryState",
    "TestLedger",
    "demo_genesis",
    "demo_public_key",
    "fabricate_lei",
    "fabricate_uscc",
    "timestamp_ms_of",
    "with_dvp_settlement",
]


class MemoryState:
    """A sorted dict of bytes -> bytes implementing ``StateView``."""

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        for key, value in items:
            self.set(key, value)

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        index = bisect.bisect_left(self._keys, prefix)
        keys = self._keys
        while index < len(keys) and keys[index].startswith(prefix):
            key = keys[index]
            yield key, self._data[key]
            index += 1

    def set(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            if key in self._data:
                del self._data[key]
                self._keys.pop(bisect.bisect_left(self._keys, key))
            return
        if key not in self._data:
            bisect.insort(self._keys, key)
        self._data[key] = value

    def apply(self, writes: Iterable[tuple[bytes, bytes | None]]) -> None:
        for key, value in writes:
            self.set(key, value)

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(key, self._data[key]) for key in self._keys]


# A valid Ed25519 public key without a private key: a multiple of the base point (y = 4/5).
_BASE = ed25519.decode_point(
    (4 * pow(5, ed25519.P - 2, ed25519.P) % ed25519.P).to_bytes(32, "little")
)


def demo_public_key(seed: int) -> bytes:
    """Encoding of ``[seed + 1] * B``: a distinct, valid, prime-order Ed25519 public key."""
    assert _BASE is not None
    scalar = seed + 1
    result = (0, 1)
    addend = _BASE
    while scalar:
        if scalar & 1:
            result = ed25519.add(result, addend)
        addend = ed25519.add(addend, addend)
        scalar >>= 1
    return ed25519.encode_point(result)


def timestamp_ms_of(iso_date: str, hour: int = 10) -> int:
    """Agreed timestamp (UTC ms) of ``hour``:00 Asia/Shanghai on ``iso_date``."""
    day = parse_iso_date(iso_date)
    if day is None:
        raise ValueError(f"not a date: {iso_date}")
    return day * MS_PER_DAY - SHANGHAI_OFFSET_MS + hour * 3_600_000


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """A ``TestLedger`` frozen: state items (sorted by key), clock, keys and counters."""

    state: tuple[tuple[bytes, bytes], ...]
    chain_id: str
    height: int
    timestamp_ms: int
    keys: tuple[tuple[str, bytes], ...]
    tx_counter: int
    suite: str = "ed25519-sha256"


class TestLedger:
    """Genesis + blocks in memory; each ``submit`` is one transaction in its own block."""

    __test__ = False  # not a pytest test class

    def __init__(self, genesis: Mapping[str, Any], start_date: str = "2024-03-01") -> None:
        self.state = MemoryState(genesis_writes(genesis))
        self.chain_id = "test-chain"
        self.suite = str(genesis.get("crypto_suite", "ed25519-sha256"))
        self.height = 0
        self.timestamp_ms = timestamp_ms_of(start_date)
        self.keys: dict[str, bytes] = {}
        for entry in genesis["participants"]:
            key = entry["keys"][0]["public_key"]
            raw = bytes.fromhex(key) if isinstance(key, str) else key
            self.keys[entry["id"]] = key_fingerprint(raw)
        self._tx_counter = 0

    def fork(self) -> TestLedger:
        """An independent copy (state, clock, keys): cheaper than replaying genesis."""
        return TestLedger.from_snapshot(self.snapshot())

    def snapshot(self) -> LedgerSnapshot:
        """An immutable copy of everything a ledger holds, to start many ledgers from."""
        return LedgerSnapshot(
            state=tuple(self.state.items()),
            chain_id=self.chain_id,
            height=self.height,
            timestamp_ms=self.timestamp_ms,
            keys=tuple(sorted(self.keys.items())),
            tx_counter=self._tx_counter,
            suite=self.suite,
        )

    @classmethod
    def from_snapshot(cls, snapshot: LedgerSnapshot) -> TestLedger:
        ledger = cls.__new__(cls)
        ledger.state = MemoryState()
        ledger.state._data = dict(snapshot.state)
        ledger.state._keys = [key for key, _ in snapshot.state]  # items() is sorted by key
        ledger.chain_id = snapshot.chain_id
        ledger.suite = snapshot.suite
        ledger.height = snapshot.height
        ledger.timestamp_ms = snapshot.timestamp_ms
        ledger.keys = dict(snapshot.keys)
        ledger._tx_counter = snapshot.tx_counter
        return ledger

    @property
    def today(self) -> str:
        return day_to_iso((self.timestamp_ms + SHANGHAI_OFFSET_MS) // MS_PER_DAY)

    def set_date(self, iso_date: str, hour: int = 10) -> None:
        timestamp = timestamp_ms_of(iso_date, hour)
        if timestamp < self.timestamp_ms:
            raise ValueError("the agreed clock never goes backwards")
        self.timestamp_ms = timestamp

    def advance_days(self, days: int) -> None:
        self.timestamp_ms += days * MS_PER_DAY

    def _context(self, sender: str, key_id: bytes | None, index: int, call: Call) -> TxContext:
        self._tx_counter += 1
        payload = canonical_encode(
            {"n": self._tx_counter, "sender": sender, "op": call.operation, "args": call.args}
        )
        return TxContext(
            chain_id=self.chain_id,
            height=self.height,
            timestamp_ms=self.timestamp_ms,
            tx_index=index,
            tx_id=hashlib.sha256(payload).digest(),
            sender=sender,
            signer_key_id=self.keys.get(sender, b"\x00" * 16) if key_id is None else key_id,
            suite=self.suite,
        )

    def block(self, calls: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[Outcome]:
        """Execute ``(sender, operation, args)`` calls as one block over an overlay."""
        self.height += 1
        self.timestamp_ms += 1  # block times strictly increase
        overlay = BlockOverlay(self.state)
        outcomes = []
        for index, (sender, operation, args) in enumerate(calls):
            call = Call(operation, dict(args))
            outcome = execute(overlay, call, self._context(sender, None, index, call))
            overlay.apply(outcome.writes)
            self._learn(call, outcome)
            outcomes.append(outcome)
        self.state.apply(overlay.writes())
        return outcomes

    def submit(
        self, sender: str, operation: str, args: Mapping[str, Any], *, key_id: bytes | None = None
    ) -> Outcome:
        self.height += 1
        self.timestamp_ms += 1
        call = Call(operation, dict(args))
        outcome = execute(self.state, call, self._context(sender, key_id, 0, call))
        self.state.apply(outcome.writes)
        self._learn(call, outcome)
        return outcome

    def _learn(self, call: Call, outcome: Outcome) -> None:
        """Remember the first key of a newly registered participant as its signing key."""
        if outcome.code == "OK" and call.operation == "identity.register":
            key = call.args["keys"][0]["public_key"]
            raw = bytes.fromhex(key) if isinstance(key, str) else key
            self.keys[call.args["id"]] = key_fingerprint(raw)

    def query(
        self, name: str, args: Mapping[str, Any] | None = None, viewer: str | None = None
    ) -> Any:
        return query(self.state, name, args or {}, viewer)


def fabricate_lei(serial: int) -> str:
    """A checksum-valid LEI with a fictitious LOU prefix ``9999`` (never a real entity)."""
    base = f"9999{serial:014d}"
    return base + lei_check_digits(base)


def fabricate_uscc(serial: int) -> str:
    """A checksum-valid USCC (authority 9, enterprise, division 310000) for test parties."""
    first17 = f"91310000{serial:09d}"
    return first17 + uscc_check_char(first17)


# Mainland 2024 public holidays and make-up working weekend days (调休).
DEMO_CALENDAR: dict[str, list[str]] = {
    "holidays": [
        "2024-01-01",
        "2024-02-10",
        "2024-02-11",
        "2024-02-12",
        "2024-02-13",
        "2024-02-14",
        "2024-02-15",
        "2024-02-16",
        "2024-02-17",
        "2024-04-04",
        "2024-04-05",
        "2024-04-06",
        "2024-05-01",
        "2024-05-02",
        "2024-05-03",
        "2024-05-04",
        "2024-05-05",
        "2024-06-10",
        "2024-09-15",
        "2024-09-16",
        "2024-09-17",
        "2024-10-01",
        "2024-10-02",
        "2024-10-03",
        "2024-10-04",
        "2024-10-05",
        "2024-10-06",
        "2024-10-07",
    ],
    "working_weekend_days": [
        "2024-02-04",
        "2024-02-18",
        "2024-04-07",
        "2024-04-28",
        "2024-05-11",
        "2024-09-14",
        "2024-09-29",
        "2024-10-12",
    ],
}


SETTLEMENT_AGENT_ID = "LVPS"


def with_dvp_settlement(genesis: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    """``genesis`` with a settlement agent (the large-value payment system, ``LVPS``) and the
    ``dvp_settlement`` switch on, plus any other ``parameters``."""
    participants = list(genesis["participants"])
    participants.append(
        {
            "id": SETTLEMENT_AGENT_ID,
            "name": "Large-value payment system",
            "roles": ["settlement_agent"],
            "keys": [{"suite": "ed25519-sha256", "public_key": demo_public_key(90).hex()}],
        }
    )
    merged = {**genesis.get("parameters", {}), "dvp_settlement": True, **parameters}
    return {**genesis, "participants": participants, "parameters": merged}


def demo_genesis() -> dict[str, Any]:
    """A small consortium: operator, regulator, registrar, central bank, 3 banks, 4 firms."""
    cast: list[tuple[str, str, list[str], dict[str, str]]] = [
        ("ADMIN", "Consortium operator", ["consortium_admin"], {}),
        ("REGULATOR", "Supervisor", ["regulator"], {}),
        ("REGISTRAR", "Central depository", ["registrar"], {"lei": fabricate_lei(1)}),
        ("PBOC", "Central bank branch", ["central_bank"], {"lei": fabricate_lei(2)}),
        (
            "BANK_A",
            "ICBC",
            ["bank"],
            {
                "lei": "5493002ERZU2K9PZDL40",
                "uscc": "91100000100003962T",
                "bic": "ICBKCNBJ",
                "cnaps": "102100099996",
            },
        ),
        (
            "BANK_B",
            "Industrial Bank",
            ["bank"],
            {"lei": "300300C1030935001303", "cnaps": "309391000011"},
        ),
        ("BANK_C", "SPDB", ["bank"], {"lei": "300300C1031031001330", "uscc": "91310000631295002H"}),
        ("ENT_A", "Huawei", ["enterprise"], {"uscc": "914403001922038216"}),
        ("ENT_B", "Supplier B", ["enterprise"], {"uscc": fabricate_uscc(2)}),
        ("ENT_C", "Supplier C", ["enterprise"], {"uscc": fabricate_uscc(3)}),
        ("ENT_D", "Supplier D", ["enterprise"], {"uscc": fabricate_uscc(4)}),
    ]
    participants = []
    for index, (pid, name, roles, codes) in enumerate(cast):
        participants.append(
            {
                "id": pid,
                "name": name,
                "roles": roles,
                **codes,
                "keys": [{"suite": "ed25519-sha256", "public_key": demo_public_key(index).hex()}],
            }
        )
    return {
        "chain_id": "test-chain",
        "participants": participants,
        "governance": {"admin_quorum": 1},
        # A fresh copy: a caller that edits its genesis must not edit every later one's.
        "calendar": {name: list(days) for name, days in DEMO_CALENDAR.items()},
    }


# --- governance ---------------------------------------------------------------------------------

DAY_MS = MS_PER_DAY


def consortium_genesis(quorum: int = 2, admins: int = 3) -> dict[str, Any]:
    """The demo consortium with ``admins`` consortium admins and the given quorum."""
    genesis = demo_genesis()
    for n in range(2, admins + 1):
        genesis["participants"].append(
            {
                "id": f"ADMIN{n}",
                "name": f"Operator {n}",
                "roles": ["consortium_admin"],
                "keys": [{"suite": "ed25519-sha256", "public_key": demo_public_key(900 + n).hex()}],
            }
        )
    genesis["governance"] = {"admin_quorum": quorum}
    return genesis


class Consortium:
    """A ``TestLedger`` of ``consortium_genesis`` with the governance moves of its admins."""

    def __init__(self, quorum: int = 2, admins: int = 3) -> None:
        self.ledger = TestLedger(consortium_genesis(quorum, admins))

    def call(self, sender: str, operation: str, **args: Any) -> Outcome:
        return self.ledger.submit(sender, operation, args)

    def expect(self, code: str, sender: str, operation: str, **args: Any) -> Outcome:
        before = self.ledger.state.items()
        outcome = self.call(sender, operation, **args)
        assert outcome.code == code, (outcome.code, outcome.message)
        if code != "OK":
            assert outcome.writes == () and outcome.events == ()
            assert self.ledger.state.items() == before
        return outcome

    def propose(
        self, sender: str, action: str, *, code: str = "OK", lifetime_ms: int = DAY_MS, **args: Any
    ) -> Outcome:
        return self.expect(
            code,
            sender,
            "governance.propose",
            action=action,
            args=args,
            expires_at_ms=self.ledger.timestamp_ms + lifetime_ms,
        )

    def proposal_id(self, outcome: Outcome) -> str:
        (event,) = [e for e in outcome.events if e.kind == "governance.proposed"]
        return str(event.attrs["proposal"])

    def vote(self, sender: str, verb: str, proposal: str, code: str = "OK") -> Outcome:
        return self.expect(code, sender, f"governance.{verb}", proposal=proposal)

    def keys_of(self, pid: str) -> list[str]:
        return list(self.ledger.query("participant", {"id": pid})["keys"])

    def show(self, proposal: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ledger.query("governance_proposal", {"id": proposal})
        return result


def kinds(outcome: Outcome) -> list[str]:
    return [event.kind for event in outcome.events]
