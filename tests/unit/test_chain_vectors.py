"""Golden vectors for the chain hash (ledger/persistence/chain.py): fixed inputs, fixed digests.

The digests were computed once by the code before the hash was folded into one function and are
written here literally: any change to the byte layout (field order, widths, encodings) fails here,
whichever caller it goes through. tests/integration/test_chain_vectors.py checks the same vectors
against the recorder, ``ledger verify`` and the SQL of migration 0031."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.persistence.chain import (
    GENESIS,
    canonical_bytes,
    chain_hash,
    chain_hashes,
    id_bytes,
    link,
    topic_field,
)

OID = UUID("00112233-4455-6677-8899-aabbccddeeff")
# (originator_id, version, topic, state, expected hex); each row chains on the row before it when
# the id is the same, on GENESIS otherwise.
VECTORS = [
    (OID, 1, "ledger.domain.encounter:Encounter.Opened", b'{"a":1}',
     "25e09729dacf96d22daf54f34dcf21c6164b543692b49fc1ba5de637dc984c3f"),
    (OID, 2, "ledger.domain.encounter:Encounter.ServiceLineAdded", b"\x00\xff binary state",
     "6a2abed76c8ae3a946e109847882c291dc3ec89658487521c7f89241dc6da898"),
    (OID, 3, "", b"",
     "2203542ffb5c0a91fc89d54a6aa97359a74ae0931bf5a253d2aa58570e65216e"),
]
# An id that is not a UUID (hashed as its UTF-8 text), starting at version 7 from GENESIS.
TEXT_ID_VECTOR = ("not-a-uuid", 7, "t:\u00e9", b"x" * 300,
                  "5568a065215d58e20db58f2ed7ed515ffd17b051429822fdb0bbc41abc8d6684")


def test_chain_hash_golden_vectors():
    prev = GENESIS
    for oid, version, topic, state, expected in VECTORS:
        prev = chain_hash(prev, oid, version, topic, state)
        assert prev.hex() == expected, version
    oid, version, topic, state, expected = TEXT_ID_VECTOR
    assert chain_hash(GENESIS, oid, version, topic, state).hex() == expected


def test_every_form_gives_the_same_digests():
    """The raw-field form (hot loops: recorder, verify), the id-as-text form and the batch form."""
    prev = GENESIS
    for oid, version, topic, state, expected in VECTORS:
        assert link(prev, oid.bytes, version, topic_field(topic), state).hex() == expected
        assert chain_hash(prev, str(oid), version, topic, state).hex() == expected
        prev = bytes.fromhex(expected)
    events = [StoredEvent(originator_id=oid, originator_version=v, topic=t, state=st)
              for oid, v, t, st, _ in VECTORS]
    assert [h.hex() for h in chain_hashes(events, {})] == [v[4] for v in VECTORS]
    # Starting mid-chain: the previous hash comes from the caller (the stored one).
    assert [h.hex() for h in chain_hashes(events[1:], {OID: bytes.fromhex(VECTORS[0][4])})] == \
        [v[4] for v in VECTORS[1:]]
    assert id_bytes("not-a-uuid") == b"not-a-uuid"


def test_canonical_bytes_of_a_vector_are_literal():
    oid, version, topic, state, _ = VECTORS[0]
    assert canonical_bytes(GENESIS, oid, version, topic, state).hex() == (
        "00" * 32 + "00000010" + "00112233445566778899aabbccddeeff" + "0000000000000001"
        + "00000028" + topic.encode().hex() + "00000007" + state.hex())
