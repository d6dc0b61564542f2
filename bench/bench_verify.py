"""Signature verification: raw library rates on one thread, and the batched verifier's rate.

    python -m bench verify [--count N] [--repeats R] [--workers W]

Prints medians of R runs in one process.  The batched verifier's run uses a fresh verifier each
time, so its cache never helps; a second table shows the cached path (a transaction seen again
inside a pre-prepare).
"""

from __future__ import annotations

import argparse
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from ibledger.node.crypto import generate_keypair, get_suite
from ibledger.node.tx import build_transaction, decode_envelope
from ibledger.node.verifier import BatchVerifier, SignerKey

from ._util import median_rate, print_table


def signed_items(count: int) -> list[tuple[bytes, bytes, bytes]]:
    """``count`` (public key, message, signature) triples of bill endorsements by 16 signers."""
    signers = [generate_keypair() for _ in range(16)]
    return [
        (signers[i % 16].public_key, t.signing_message, t.signature)
        for i, t in enumerate(
            decode_envelope(
                build_transaction(
                    signers[i % 16],
                    chain_id="bench",
                    sender=f"P{i % 16}",
                    operation="bill.endorse",
                    args={"bill": f"1{i:029d}", "to": "BANK_B", "amount": "100000.00"},
                    nonce=i,
                )
            )
            for i in range(count)
        )
    ]


def single_core_rate(count: int = 5_000, repeats: int = 3) -> float:
    """Ed25519 verifications per second on one thread (the suite's libsodium path), the
    median of ``repeats`` runs over ``count`` signatures: the machine's speed, in one figure."""
    suite = get_suite("ed25519-sha256")
    items = signed_items(count)

    def run() -> int:
        assert all(suite.verify_many(items))
        return len(items)

    rate, _ = median_rate(run, repeats)
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench verify")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    options = parser.parse_args(argv)

    suite = get_suite("ed25519-sha256")
    signers = [generate_keypair() for _ in range(16)]
    directory = {k.key_id: SignerKey(f"P{i}", k.public_key) for i, k in enumerate(signers)}
    txs = [
        decode_envelope(
            build_transaction(
                signers[i % 16],
                chain_id="bench",
                sender=f"P{i % 16}",
                operation="bill.endorse",
                args={"bill": f"1{i:029d}", "to": "BANK_B", "amount": "100000.00"},
                nonce=i,
            )
        )
        for i in range(options.count)
    ]
    items = [(directory[t.key_id].public_key, t.signing_message, t.signature) for t in txs]

    def raw_suite() -> int:
        assert all(suite.verify_many(items))
        return len(items)

    def raw_pynacl() -> int:
        keys = {pk: VerifyKey(pk) for pk, _, _ in items}
        for pk, message, signature in items:
            keys[pk].verify(message, signature)
        return len(items)

    def raw_openssl() -> int:
        keys = {pk: Ed25519PublicKey.from_public_bytes(pk) for pk, _, _ in items}
        for pk, message, signature in items:
            keys[pk].verify(signature, message)
        return len(items)

    def batched() -> int:
        with BatchVerifier(suite, directory.get, workers=options.workers) as verifier:
            assert all(v.ok for v in verifier.verify(txs))
        return len(txs)

    cached_verifier = BatchVerifier(suite, directory.get, workers=options.workers)
    cached_verifier.verify(txs)

    def cached() -> int:
        assert all(v.ok for v in cached_verifier.verify(txs))
        return len(txs)

    repeats = options.repeats
    suite_rate, _ = median_rate(raw_suite, repeats)
    nacl_rate, _ = median_rate(raw_pynacl, repeats)
    openssl_rate, _ = median_rate(raw_openssl, repeats)
    batched_rate, batched_runs = median_rate(batched, repeats)
    cached_rate, _ = median_rate(cached, repeats)
    cached_verifier.close()
    print_table(
        f"Ed25519 verification, {options.count} signatures, median of {repeats} runs, "
        f"{os.cpu_count()} cores",
        [
            ("PyNaCl VerifyKey.verify, 1 thread", f"{nacl_rate:,.0f}/s"),
            ("cryptography (OpenSSL), 1 thread", f"{openssl_rate:,.0f}/s"),
            ("suite.verify_many (libsodium), 1 thread", f"{suite_rate:,.0f}/s"),
            (
                f"BatchVerifier, {options.workers} workers",
                f"{batched_rate:,.0f}/s  (runs: {', '.join(f'{r:,.0f}' for r in batched_runs)})",
            ),
            ("ratio batched / raw 1 thread", f"{batched_rate / suite_rate:.2f}x"),
            ("BatchVerifier, all cached", f"{cached_rate:,.0f}/s"),
        ],
    )


if __name__ == "__main__":
    main()
