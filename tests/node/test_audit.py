"""The audit log (node/audit.py) and ``ibledger audit verify``: the hash chain names the first
entry that was altered, removed, reordered or cut; a torn tail is cut and recorded at the next
start; a whole-chain rewrite without the node's key fails on the signed heads; a flood of
refusals costs one record per key and window; segments rotate with the chain continuing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from ibledger.cli.main import main
from ibledger.node.audit import (
    GOVERNANCE_HEAD_MIN_S,
    OTHER_CALLERS,
    STRING_CHARS_MAX,
    AuditLog,
    AuditSettings,
    Report,
    _bounded_general,
    bounded,
    caller_of,
    canonical_json,
    encode_record,
    head_signing_bytes,
    parse_record,
    record_hash,
    segments_in,
    verify,
)
from ibledger.node.crypto import KeyPair, generate_keypair, get_suite

SUITE = get_suite("ed25519-sha256")
# Timers that never fire during a test: windows are ended and heads written explicitly.
QUIET = AuditSettings(aggregate_interval_ms=3_600_000, head_interval_ms=3_600_000)
TX_ID = bytes(range(32))


@pytest.fixture
def key() -> KeyPair:
    return generate_keypair()


def _checker(key: KeyPair) -> Any:
    return lambda node, message, signature: SUITE.verify(key.public_key, message, signature)


def _write_log(directory: Path, key: KeyPair, settings: AuditSettings = QUIET) -> Path:
    """A closed log with refusals of two kinds and one governance action."""
    audit = AuditLog.open(directory, "node0", key.sign, settings)
    audit.refused("client.refused", "UNKNOWN_SENDER", "ipv4:10.0.0.1", sender="NOBODY")
    audit.refused("peer.refused", "GENESIS_MISMATCH", "node3", detail="another genesis")
    audit.governance(
        height=2,
        tx_id=TX_ID,
        tx_index=0,
        sender="ADMIN",
        event="identity.registered",
        attrs={"participant": "NEWCO", "roles": ["registrar"]},
    )
    audit.governed_through(2)
    audit.refused("client.refused", "UNKNOWN_SENDER", "ipv4:10.0.0.1", sender="NOBODY")
    audit.close()
    [segment] = segments_in(directory)
    return segment


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(path)]


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records as they are (hashes as given), in canonical form."""
    path.write_bytes(
        b"".join(
            json.dumps(r, sort_keys=True, separators=(",", ":")).encode() + b"\n" for r in records
        )
    )


def _rechain(records: list[dict[str, Any]], key: KeyPair | None = None) -> list[dict[str, Any]]:
    """Recompute every hash (and, with a key, every head signature) from the first record."""
    prev = records[0]["prev"]
    out = []
    for record in records:
        fields = dict(record["fields"])
        if record["kind"] == "audit.head":
            fields["signed_seq"] = record["seq"] - 1
            fields["signed_hash"] = prev
            if key is not None:
                signing = head_signing_bytes(fields["node"], record["seq"] - 1, prev)
                fields["signature"] = key.sign(signing).hex()
        line, digest = encode_record(record["seq"], record["time_ms"], record["kind"], fields, prev)
        out.append(json.loads(line))
        prev = digest
    return out


def _problem(report: Report) -> tuple[int | None, int]:
    assert report.problem is not None, report.to_dict()
    return report.problem.seq, report.problem.line


def test_an_intact_log_verifies_with_its_signed_heads(tmp_path: Path, key: KeyPair) -> None:
    segment = _write_log(tmp_path / "audit", key)
    report = verify([tmp_path / "audit"], verify_signature=_checker(key), require_signed=True)
    assert report.ok, report.to_dict()
    kinds = [r["kind"] for r in _records(segment)]
    assert kinds[0] == "audit.open" and kinds[-2:] == ["audit.close", "audit.head"]
    assert report.kinds["client.refused"] == 2  # the first at once, the repeat aggregated
    assert report.kinds["peer.refused"] == 1 and report.kinds["governance"] == 1
    assert report.node == "node0" and report.heads == 1
    assert report.signed_through_seq == len(kinds) - 2 and report.unsigned_records == 0
    governance = next(r for r in _records(segment) if r["kind"] == "governance")
    assert governance["fields"]["tx_id"] == TX_ID.hex()
    assert governance["fields"]["event"] == "identity.registered"


def test_a_tampered_field_is_named_by_its_sequence_number(tmp_path: Path, key: KeyPair) -> None:
    segment = _write_log(tmp_path, key)
    records = _records(segment)
    records[2]["fields"]["caller"] = "node2"  # the hash is left as it was
    _rewrite(segment, records)
    report = verify([segment])
    assert _problem(report) == (2, 3)
    assert report.problem is not None and "altered" in report.problem.message


def test_one_changed_byte_anywhere_in_a_line_is_caught(tmp_path: Path, key: KeyPair) -> None:
    segment = _write_log(tmp_path, key)
    original = segment.read_bytes()
    line_start = sum(len(line) for line in _lines(segment)[:3])
    digit = original.index(b'"time_ms":', line_start) + len(b'"time_ms":') + 3
    changed = bytearray(original)
    changed[digit] = ord("0") + (original[digit] - ord("0") + 1) % 10
    segment.write_bytes(bytes(changed))
    assert _problem(verify([segment])) == (3, 4)
    # Still the same record to a JSON reader, but not the bytes that were hashed.
    segment.write_bytes(original[: line_start + 1] + b" " + original[line_start + 1 :])
    report = verify([segment])
    assert _problem(report) == (3, 4)
    assert report.problem is not None and "canonical" in report.problem.message


def test_a_deleted_line_is_reported_missing(tmp_path: Path, key: KeyPair) -> None:
    segment = _write_log(tmp_path, key)
    lines = _lines(segment)
    segment.write_bytes(b"".join(lines[:2] + lines[3:]))
    report = verify([segment])
    assert _problem(report) == (2, 3)
    assert report.problem is not None and "missing" in report.problem.message


def test_reordered_lines_are_reported(tmp_path: Path, key: KeyPair) -> None:
    segment = _write_log(tmp_path, key)
    lines = _lines(segment)
    lines[2], lines[3] = lines[3], lines[2]
    segment.write_bytes(b"".join(lines))
    assert _problem(verify([segment])) == (2, 3)


def test_an_entry_rehashed_alone_breaks_the_next_link(tmp_path: Path, key: KeyPair) -> None:
    segment = _write_log(tmp_path, key)
    records = _records(segment)
    records[2]["fields"]["caller"] = "node2"
    body = {k: v for k, v in records[2].items() if k != "hash"}
    line, _ = encode_record(
        body["seq"], body["time_ms"], body["kind"], body["fields"], body["prev"]
    )
    records[2] = json.loads(line)
    _rewrite(segment, records)
    report = verify([segment])
    assert _problem(report) == (2, 4)  # found at the next line, which names seq 2
    assert report.problem is not None and "entry seq 2" in report.problem.message


def test_records_cut_from_the_end_fail_only_when_a_signed_end_is_required(
    tmp_path: Path, key: KeyPair
) -> None:
    segment = _write_log(tmp_path, key)
    lines = _lines(segment)
    segment.write_bytes(b"".join(lines[:-1]))  # the closing head is gone
    assert verify([segment], verify_signature=_checker(key)).ok  # a live node's log looks so
    report = verify([segment], verify_signature=_checker(key), require_signed=True)
    assert report.problem is not None and "after the last signed head" in report.problem.message


def test_an_anchor_from_an_earlier_verify_catches_a_cut_end_and_a_rewrite(
    tmp_path: Path, key: KeyPair
) -> None:
    segment = _write_log(tmp_path, key)
    records = _records(segment)
    head = (records[-1]["seq"], records[-1]["hash"])
    assert verify([segment], anchor=head).ok
    segment.write_bytes(b"".join(_lines(segment)[:-2]))  # back to an earlier point: looks intact
    assert verify([segment]).ok
    report = verify([segment], anchor=head)
    assert report.problem is not None and "cut from its end" in report.problem.message
    rewritten = [*records[:2], records[2] | {"time_ms": 1}, *records[3:]]
    _rewrite(segment, _rechain(rewritten, key))  # even by the key holder
    report = verify([segment], verify_signature=_checker(key), anchor=head)
    assert report.problem is not None and "rewritten" in report.problem.message
    assert report.problem.seq == head[0]


def test_a_torn_tail_fails_then_is_cut_and_recorded_at_the_next_start(
    tmp_path: Path, key: KeyPair
) -> None:
    directory = tmp_path / "audit"
    segment = _write_log(directory, key)
    lines = _lines(segment)
    torn = lines[-1][:40]
    segment.write_bytes(b"".join(lines[:-1]) + torn)
    report = verify([directory])
    assert _problem(report) == (len(lines) - 1, len(lines))
    assert report.problem is not None and "incomplete" in report.problem.message

    AuditLog.open(directory, "node0", key.sign, QUIET).close()
    report = verify([directory], verify_signature=_checker(key), require_signed=True)
    assert report.ok, report.to_dict()
    [recorded] = report.torn_tails
    assert recorded["bytes"] == len(torn)
    assert recorded["offset"] == sum(len(line) for line in lines[:-1])
    assert recorded["recorded_at_seq"] == len(lines) - 1  # the new run's audit.open
    kept = b"".join(lines[:-1])
    after_cut = segment.read_bytes()
    assert after_cut.startswith(kept)
    assert json.loads(after_cut[len(kept) :].split(b"\n")[0])["kind"] == "audit.open"


def test_a_whole_chain_rewritten_without_the_key_fails_on_its_heads(
    tmp_path: Path, key: KeyPair
) -> None:
    segment = _write_log(tmp_path, key)
    records = _records(segment)
    records[1]["fields"]["reason"] = "NOTHING_HAPPENED"
    forged = _rechain(records)  # every hash recomputed; the old signatures kept
    _rewrite(segment, forged)
    assert verify([segment]).ok  # the chain alone cannot tell
    report = verify([segment], verify_signature=_checker(key))
    assert report.problem is not None and "does not verify" in report.problem.message
    assert report.problem.seq == len(records) - 1

    # Re-signed with another key: still refused.
    _rewrite(segment, _rechain(records, generate_keypair()))
    assert not verify([segment], verify_signature=_checker(key)).ok

    # Heads dropped altogether: no signature vouches for anything.
    stripped = [r for r in records if r["kind"] != "audit.head"]
    for seq, record in enumerate(stripped):
        record["seq"] = seq
    _rewrite(segment, _rechain(stripped))
    assert verify([segment], verify_signature=_checker(key)).signed_through_seq is None
    report = verify([segment], verify_signature=_checker(key), require_signed=True)
    assert report.problem is not None

    # The genuine chain, re-signed by the node's own key, verifies: the check is the key.
    _rewrite(segment, _rechain(records, key))
    assert verify([segment], verify_signature=_checker(key), require_signed=True).ok


def test_a_flood_of_refusals_costs_one_record_per_key_and_window(
    tmp_path: Path, key: KeyPair
) -> None:
    directory = tmp_path / "audit"
    audit = AuditLog.open(directory, "node0", key.sign, dataclasses.replace(QUIET, callers_max=4))
    for n in range(5_000):
        audit.refused("client.refused", "RATE_LIMITED", "ipv4:10.0.0.9", n=n)
    audit.roll_window()
    for n in range(5_000):  # the same key in the next window: counted only
        audit.refused("client.refused", "RATE_LIMITED", "ipv4:10.0.0.9", n=n)
    for n in range(100):  # 100 callers: four are tracked, the rest folded together
        audit.refused("client.refused", "UNKNOWN_SENDER", f"ipv4:10.1.0.{n}", n=n)
    audit.close()
    records = [r for r in _records(segments_in(directory)[0]) if r["kind"] == "client.refused"]
    flood = [r["fields"] for r in records if r["fields"]["reason"] == "RATE_LIMITED"]
    assert [(f["count"], f["example"]["n"]) for f in flood] == [(1, 0), (4_999, 1), (5_000, 0)]
    assert flood[1]["aggregated"] is True
    callers = [r["fields"] for r in records if r["fields"]["reason"] != "RATE_LIMITED"]
    # The flooder holds one of the four keys; three callers get theirs, written at once.
    tracked = [f for f in callers if f["caller"] != OTHER_CALLERS]
    assert [(f["caller"], f["count"]) for f in tracked] == [
        (f"ipv4:10.1.0.{n}", 1) for n in range(3)
    ]
    # The other 97 share one key: its first at once, the rest as one aggregate.
    other = [f for f in callers if f["caller"] == OTHER_CALLERS]
    assert [f["count"] for f in other] == [1, 96]
    assert [f["example"]["caller"] for f in other] == ["ipv4:10.1.0.3", "ipv4:10.1.0.4"]
    assert verify([directory]).ok


def test_segments_rotate_with_the_chain_continuing_and_the_oldest_removed(
    tmp_path: Path, key: KeyPair
) -> None:
    directory = tmp_path / "audit"
    settings = dataclasses.replace(QUIET, segment_bytes_max=4096, segments_max=3)
    audit = AuditLog.open(directory, "node0", key.sign, settings)
    for n in range(200):
        audit.governance(
            height=n, tx_id=TX_ID, tx_index=0, sender="ADMIN", event="identity.x", attrs={}
        )
    audit.close()
    segments = segments_in(directory)
    assert len(segments) == 3
    report = verify([directory], verify_signature=_checker(key), require_signed=True)
    assert report.ok, report.to_dict()
    assert report.starts_mid_chain and report.first_seq is not None and report.first_seq > 0
    assert report.kinds["audit.removed"] >= 1 and report.kinds["audit.segment"] >= 2
    for segment in segments[:-1]:  # every closed segment ends with a signed head
        assert _records(segment)[-1]["kind"] == "audit.head"
    # A segment left out of the middle is a gap.
    report = verify([segments[0], segments[2]])
    assert report.problem is not None and "missing" in report.problem.message


def test_a_restart_continues_the_chain(tmp_path: Path, key: KeyPair) -> None:
    directory = tmp_path / "audit"
    _write_log(directory, key)
    audit = AuditLog.open(directory, "node0", key.sign, QUIET)
    assert audit.recorded.ledger_height == 2
    audit.refused("client.refused", "MALFORMED_REQUEST", "ipv4:10.0.0.1", bytes=7)
    audit.close()
    report = verify([directory], verify_signature=_checker(key), require_signed=True)
    assert report.ok and report.kinds["audit.open"] == 2, report.to_dict()
    assert len(segments_in(directory)) == 1


def test_governance_after_the_last_marker_is_known_after_a_crash(
    tmp_path: Path, key: KeyPair
) -> None:
    directory = tmp_path / "audit"
    audit = AuditLog.open(directory, "node0", key.sign, QUIET, start=False)
    audit.governed_through(4)
    audit.refused("client.refused", "X", "c")
    audit.sign_head()
    audit.flush()
    audit.governance(height=5, tx_id=TX_ID, tx_index=0, sender="A", event="identity.y", attrs={})
    audit.flush()  # then the process dies: no close
    reopened = AuditLog.open(directory, "node0", key.sign, QUIET)
    assert reopened.recorded.ledger_height == 4
    assert reopened.recorded.take((5, TX_ID.hex(), "identity.y"))
    assert not reopened.recorded.take((5, TX_ID.hex(), "identity.y"))
    reopened.close()
    assert verify([directory]).ok


def test_files_are_private_and_fields_bounded(tmp_path: Path, key: KeyPair) -> None:
    directory = tmp_path / "audit"
    audit = AuditLog.open(directory, "node0", key.sign, QUIET)
    audit.refused(
        "client.refused", "BAD_ARGUMENT", "c", message="x" * 100_000, items=list(range(999))
    )
    audit.close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [segment] = segments_in(directory)
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    example = _records(segment)[1]["fields"]["example"]
    assert len(example["message"]) == STRING_CHARS_MAX + 3
    assert len(example["items"]) == 33


def test_a_write_failure_stops_the_log_without_raising(tmp_path: Path, key: KeyPair) -> None:
    audit = AuditLog.open(tmp_path / "audit", "node0", key.sign, QUIET, start=False)
    audit._handle.close()  # the disk is gone, as far as the writer can tell
    audit.refused("client.refused", "X", "c")
    audit.flush()
    assert audit.broken
    audit.refused("client.refused", "Y", "c")
    audit.close()


def test_the_caller_is_the_address_without_its_port() -> None:
    assert caller_of("ipv4:127.0.0.1:54321") == "ipv4:127.0.0.1"
    assert caller_of("ipv6:[::1]:54321") == "ipv6:[::1]"
    assert caller_of("node2") == "node2"
    assert caller_of("") == "(unknown)"


def test_cli_verify_exits_zero_when_intact_and_names_the_entry_when_not(
    tmp_path: Path, key: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "audit"
    segment = _write_log(directory, key)
    key_hex = key.public_key.hex()
    assert main(["audit", "verify", str(directory), "--public-key", key_hex]) == 0
    out = capsys.readouterr().out
    assert out.startswith("intact:") and "signed through seq" in out
    [anchor] = [line.split("--anchor ")[1] for line in out.splitlines() if "--anchor" in line]
    assert main(["audit", "verify", str(directory), "--anchor", anchor]) == 0
    capsys.readouterr()
    records = _records(segment)
    records[3]["fields"]["sender"] = "SOMEONE_ELSE"
    _rewrite(segment, records)
    assert main(["audit", "verify", str(directory), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False
    assert report["problem"]["seq"] == 3 and report["problem"]["line"] == 4
    assert json.loads(captured.err)["code"] == "AUDIT_BROKEN"
    assert main(["audit", "show", str(directory), "--kind", "governance", "--json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)["records"]
    assert shown["fields"]["sender"] == "SOMEONE_ELSE"
    assert "altered" in shown["problem"]


def test_governance_in_every_block_signs_at_most_one_head_per_interval(
    tmp_path: Path, key: KeyPair
) -> None:
    # A chain whose every block carries governance (a busy registrar) must not pay for a head
    # signature per block; one per GOVERNANCE_HEAD_MIN_S still vouches for each record soon.
    now = [100.0]
    directory = tmp_path / "audit"
    audit = AuditLog.open(
        directory, "node0", key.sign, QUIET, monotonic=lambda: now[0], start=False
    )

    def heads() -> int:
        [segment] = segments_in(directory)
        return sum(1 for r in _records(segment) if r["kind"] == "audit.head")

    for height in range(1, 5):  # four blocks within one interval
        now[0] += GOVERNANCE_HEAD_MIN_S / 8
        audit.governance(
            height=height, tx_id=TX_ID, tx_index=0, sender="A", event="identity.x", attrs={}
        )
        audit.flush()
    assert heads() == 0
    now[0] += GOVERNANCE_HEAD_MIN_S
    audit.flush()  # the interval has passed: the held-back head is written now
    assert heads() == 1
    for height in range(5, 9):
        now[0] += GOVERNANCE_HEAD_MIN_S / 8
        audit.governance(
            height=height, tx_id=TX_ID, tx_index=0, sender="A", event="identity.x", attrs={}
        )
        audit.flush()
    assert heads() == 1
    now[0] += GOVERNANCE_HEAD_MIN_S
    audit.flush()
    assert heads() == 2
    audit.close()
    assert verify([directory], verify_signature=_checker(key), require_signed=True).ok


def test_flush_writes_every_queued_record_of_a_batch(tmp_path: Path, key: KeyPair) -> None:
    directory = tmp_path / "audit"
    audit = AuditLog.open(directory, "node0", key.sign, QUIET)
    for n in range(5):
        audit.governance(
            height=n + 1, tx_id=TX_ID, tx_index=0, sender="A", event="identity.x", attrs={}
        )
    assert audit.flush(timeout_s=30)  # does not wait for the batch timer
    [segment] = segments_in(directory)
    assert sum(1 for r in _records(segment) if r["kind"] == "governance") == 5
    audit.close()


def _reference_line(
    seq: int, time_ms: int, kind: str, fields: dict[str, Any], prev: str
) -> tuple[bytes, str]:
    """A record encoded whole, twice, as the format defines it (the spliced encoder's oracle)."""
    body = {"fields": fields, "kind": kind, "prev": prev, "seq": seq, "time_ms": time_ms}
    digest = record_hash(body)
    return canonical_json(body | {"hash": digest}) + b"\n", digest


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"reason": "X", "caller": "ipv4:10.0.0.1", "count": 3, "example": {"n": [1, None]}},
        {"participant": 'Caf\u00e9 "quoted" \\ \u2603', "roles": ["a", "b"], "ok": True},
        {"hash": "shadowing a record key inside the fields", "seq": -1, "nested": {"z": {}}},
    ],
)
def test_a_record_line_is_the_canonical_encoding_of_the_whole_record(
    fields: dict[str, Any],
) -> None:
    for seq, time_ms, kind in [(0, 0, "audit.open"), (12_345, 1_700_000_000_000, 'k\u00e9"')]:
        prev = hashlib.sha256(kind.encode()).hexdigest()
        line, digest = encode_record(seq, time_ms, kind, fields, prev)
        assert (line, digest) == _reference_line(seq, time_ms, kind, fields, prev)
        assert parse_record(line[:-1])["hash"] == digest


class _Str(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"participant": "CSDC", "fields": ["name"]},
        {"b": b"\x01\x02", 3: "int key", "a": (1, 2), "x" * 600: "long key"},
        {f"k{n}": n for n in range(40)},  # more than ITEMS_MAX: cut after sorting
        [list(range(40)), ("t",), {"deep": {"deeper": {"deepest": {"bottom": [1]}}}}],
        {"1": "string one", 1: "int one"},  # keys that collide as strings: the later one wins
        {"s": _Str("subclass"), "f": 1.5, "n": None, "t": True, "big": "y" * 1000},
    ],
)
def test_the_fast_paths_of_bounded_give_what_the_general_rule_gives(value: Any) -> None:
    assert canonical_json(bounded(value)) == canonical_json(_bounded_general(value, 0))
