"""The exact, compact set of keys that tracks which order versions had their items fetched."""

from orders_pipeline.storage.keyset import KeySet


def test_a_key_is_new_once_across_merges():
    with KeySet(merge_every=3) as keys:
        assert [keys.add(f"order-{n}") for n in range(10)] == [True] * 10
        assert [keys.add(f"order-{n}") for n in range(10)] == [False] * 10
        assert len(keys) == 10


def test_colliding_hashes_are_told_apart_by_the_spilled_keys():
    with KeySet(hash_key=lambda key: 7, merge_every=2) as keys:  # every key has the same hash
        assert [keys.add(key) for key in ("A\x1f1", "A\x1f2", "B\x1f1", "A\x1f1", "B\x1f1", "é\x1f1")] == [
            True, True, True, False, False, True,
        ]
        assert keys.add("A\x1f2") is False and keys.add("A\x1f3") is True
        assert len(keys) == 5


def test_hits_are_found_both_before_and_after_a_merge():
    with KeySet(hash_key=lambda key: len(key), merge_every=4) as keys:
        for key in ("aa", "bb", "ccc", "d"):  # the fourth add merges; "aa" and "bb" share a hash
            keys.add(key)
        keys.add("ee")  # recent, not merged, same hash as the merged "aa" and "bb"
        assert not keys.add("bb") and not keys.add("ee") and keys.add("ff")
